//! The account-health service end to end: portfolio, subscriptions, signal
//! ingestion, health scores, triggers, overrides, scorecards and revenue
//! metrics, through the real binary on SQLite and PostgreSQL.

use std::time::Duration;

use contracts::pb::common::v1::{HealthBand, Money, Motion, Segment, WatchEventsOptions};
use contracts::pb::health::v1 as pb;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::harness::{Backend, Server};
use crate::on_both_databases;

on_both_databases!(
    portfolio_and_subscription_lifecycle,
    signals_drive_health_and_capacity_trigger,
    red_account_suppresses_triggers_until_overridden,
    stream_signals_and_custom_scorecard,
    bad_input_is_refused_and_stores_nothing,
    revenue_metrics_follow_the_seed,
    health_lists_sort_filter_and_page,
    a_moved_fiscal_year_opens_and_closes_its_trigger_at_once,
    scorecards_keep_their_name_and_versions,
    time_zone_decides_the_default_day_of_a_change,
    a_read_after_an_acknowledged_write_shows_it,
    an_upgraded_database_scores_from_every_signal_it_held,
);

type Client = AccountHealthServiceClient<Channel>;

fn money(currency: &str, amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: currency.into(),
        amount: amount.into(),
    })
}

fn field_of(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"))
        .field_violations[0]
        .field
        .clone()
}

/// A fiscal year starting half a year from now, so that no fiscal-year
/// trigger fires whatever day the suite runs.
fn distant_fiscal_month() -> i32 {
    use chrono::Datelike;
    let month = i32::try_from(chrono::Utc::now().month()).unwrap();
    (month + 5) % 12 + 1
}

async fn account(client: &mut Client, crm: &str, since: &str) -> String {
    client
        .upsert_account(pb::UpsertAccountRequest {
            fiscal_year_start_month: distant_fiscal_month(),
            external_ref: Some(pb::ExternalRef {
                system: "hubspot".into(),
                id: crm.into(),
            }),
            name: format!("Account {crm}"),
            segment: Segment::MidMarket as i32,
            customer_since: since.into(),
            owner_csm: "carla.csm".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .account_id
}

async fn product(client: &mut Client, name: &str) -> String {
    client
        .upsert_product(pb::UpsertProductRequest {
            request_id: String::new(),
            product: Some(pb::Product {
                name: name.into(),
                family: "core".into(),
                tiers: vec!["STARTER".into(), "PROFESSIONAL".into(), "ENTERPRISE".into()],
                fits_segments: vec![Segment::MidMarket as i32, Segment::Enterprise as i32],
                wallet_estimates: vec![pb::SegmentWallet {
                    segment: Segment::MidMarket as i32,
                    annual_wallet: money("USD", "60000"),
                }],
                margin_percent: "70".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap()
        .product_id
}

async fn subscribe(
    client: &mut Client,
    account: &str,
    product: &str,
    mrr: Option<Money>,
    start: &str,
) -> pb::Subscription {
    client
        .upsert_subscription(pb::UpsertSubscriptionRequest {
            subscription: Some(pb::Subscription {
                account_id: account.into(),
                product_id: product.into(),
                tier: "STARTER".into(),
                mrr,
                start_date: start.into(),
                quota_limit: 100,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap()
}

fn signal(
    account: &str,
    product: &str,
    kind: pb::SignalKind,
    value: &str,
    limit: &str,
    external: &str,
) -> pb::Signal {
    pb::Signal {
        account_id: account.into(),
        product_id: product.into(),
        kind: kind as i32,
        value: value.into(),
        limit: limit.into(),
        source: "product-telemetry".into(),
        external_id: external.into(),
        ..Default::default()
    }
}

async fn record(client: &mut Client, signals: Vec<pb::Signal>) -> pb::RecordSignalsResponse {
    client
        .record_signals(pb::RecordSignalsRequest {
            request_id: String::new(),
            signals,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn health(client: &mut Client, account: &str) -> pb::AccountHealth {
    client
        .get_account_health(pb::GetAccountHealthRequest {
            account_id: account.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .health
        .unwrap()
}

async fn triggers(
    client: &mut Client,
    account: &str,
    statuses: &[pb::TriggerStatus],
) -> Vec<pb::Trigger> {
    client
        .list_triggers(pb::ListTriggersRequest {
            account_id: account.into(),
            statuses: statuses.iter().map(|s| *s as i32).collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .triggers
}

async fn portfolio_and_subscription_lifecycle(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let acme = account(&mut c, "acme", "2025-01-10").await;
    let crm = product(&mut c, "CRM").await;
    let analytics = product(&mut c, "Analytics").await;

    // Pages of one product each, then the end.
    let first = c
        .list_products(pb::ListProductsRequest {
            page_size: 1,
            fits_segment: Segment::MidMarket as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.products.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let second = c
        .list_products(pb::ListProductsRequest {
            page_size: 1,
            fits_segment: Segment::MidMarket as i32,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.products.len(), 1);
    assert_ne!(first.products[0].product_id, second.products[0].product_id);
    let mismatched = c
        .list_products(pb::ListProductsRequest {
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&mismatched), "page_token");
    let smb = c
        .list_products(pb::ListProductsRequest {
            fits_segment: Segment::Smb as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(smb.products.is_empty());

    let sub = subscribe(&mut c, &acme, &crm, money("USD", "1000.00"), "2026-01-01").await;
    assert_eq!(sub.status, pb::SubscriptionStatus::Active as i32);
    // An MRR change is an amendment; the subscription keeps its id.
    let raise = pb::UpsertSubscriptionRequest {
        subscription: Some(pb::Subscription {
            subscription_id: sub.subscription_id.clone(),
            account_id: acme.clone(),
            product_id: crm.clone(),
            tier: "PROFESSIONAL".into(),
            mrr: money("USD", "1500.00"),
            start_date: "2026-01-01".into(),
            ..Default::default()
        }),
        mrr_effective_date: "2026-03-01".into(),
        ..Default::default()
    };
    let raised = c
        .upsert_subscription(raise.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!raised.created);
    let raised = raised.subscription.unwrap();
    assert_eq!(
        (raised.subscription_id.as_str(), raised.mrr.clone()),
        (sub.subscription_id.as_str(), money("USD", "1500.00"))
    );
    // Sent again (a connector's re-sync), it changes nothing and tells
    // nobody: the log holds the creation and the raise, nothing more.
    let again = c.upsert_subscription(raise).await.unwrap().into_inner();
    assert!(!again.created);
    assert_eq!(again.subscription.unwrap(), raised);
    let mut log = c
        .watch_events(pb::WatchEventsRequest {
            options: Some(WatchEventsOptions {
                after_cursor: String::new(),
                event_types: vec!["health.subscription.".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    while let Ok(Ok(Some(event))) =
        tokio::time::timeout(Duration::from_millis(500), log.message()).await
    {
        kinds.push(event.event.unwrap().event_type);
    }
    assert_eq!(
        kinds,
        ["health.subscription.created", "health.subscription.updated"]
    );
    let wrong_tier = c
        .upsert_subscription(pb::UpsertSubscriptionRequest {
            subscription: Some(pb::Subscription {
                account_id: acme.clone(),
                product_id: analytics.clone(),
                tier: "PLATINUM".into(),
                mrr: money("USD", "10"),
                start_date: "2026-01-01".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&wrong_tier), "subscription.tier");

    let mut events = c
        .watch_events(pb::WatchEventsRequest {
            options: Some(WatchEventsOptions {
                after_cursor: String::new(),
                event_types: vec!["health.subscription.cancelled".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let cancel = |date: &str| pb::CancelSubscriptionRequest {
        request_id: String::new(),
        subscription_id: sub.subscription_id.clone(),
        cancel_date: date.into(),
        reason: "moved to a competitor".into(),
        time_zone: String::new(),
    };
    let cancelled = c
        .cancel_subscription(cancel("2026-06-30"))
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(cancelled.status, pb::SubscriptionStatus::Cancelled as i32);
    assert_eq!(cancelled.cancel_reason, "moved to a competitor");
    // The same cancellation again is a no-op; another date is refused.
    c.cancel_subscription(cancel("2026-06-30")).await.unwrap();
    let again = c
        .cancel_subscription(cancel("2026-07-31"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let event = tokio::time::timeout(Duration::from_secs(10), events.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .event
        .unwrap();
    assert_eq!(event.subject_id, sub.subscription_id);
    let data = event.data.unwrap().fields;
    let text = |k: &str| match data.get(k).and_then(|v| v.kind.clone()) {
        Some(prost_types::value::Kind::StringValue(s)) => s,
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(text("cancel_date"), "2026-06-30");
    assert_eq!(text("mrr"), "1500.00");

    let listed = c
        .list_subscriptions(pb::ListSubscriptionsRequest {
            account_id: acme.clone(),
            status: pb::SubscriptionStatus::Cancelled as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.subscriptions.len(), 1);
    assert!(listed.next_page_token.is_empty());
}

async fn signals_drive_health_and_capacity_trigger(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let acme = account(&mut c, "acme-usage", "2025-03-01").await;
    let storage = product(&mut c, "Storage").await;
    subscribe(&mut c, &acme, &storage, money("USD", "800"), "2025-03-01").await;

    let batch = vec![
        signal(&acme, &storage, pb::SignalKind::Usage, "92", "100", "u-1"),
        signal(&acme, "", pb::SignalKind::Nps, "9", "", "nps-1"),
        signal(&acme, "", pb::SignalKind::CsmSentiment, "4", "", "s-1"),
    ];
    let first = record(&mut c, batch.clone()).await;
    assert_eq!((first.accepted, first.duplicates), (3, 0));
    let replay = record(&mut c, batch).await;
    assert_eq!((replay.accepted, replay.duplicates), (0, 3));

    let h = health(&mut c, &acme).await;
    let overall = h.overall.unwrap();
    // usage 92% → 100 (weight 30), NPS 9 → 100 (weight 15), and no ticket or
    // escalation in their windows: counts of 0 → 100 each (weights 10 and
    // 10). 100, GREEN, with 65% of the weight covered (adoption and CSAT
    // have no data).
    assert_eq!(overall.score, "100");
    assert_eq!(overall.band, HealthBand::Green as i32);
    assert_eq!(overall.coverage_percent, "65");
    assert_eq!(
        overall.csm_sentiment, "4",
        "sentiment shown beside the score"
    );
    assert!(
        overall
            .breakdown
            .iter()
            .any(|m| m.name == "usage" && m.has_data && m.score == "100")
    );
    assert_eq!(h.products.len(), 1);
    assert_eq!(h.products[0].product_id, storage);

    let open = triggers(&mut c, &acme, &[pb::TriggerStatus::Ready]).await;
    assert_eq!(open.len(), 1, "{open:?}");
    let t = &open[0];
    assert_eq!(t.kind, pb::TriggerKind::UsageCapacity as i32);
    assert_eq!(t.suggested_motion, Motion::UpsellCapacity as i32);
    assert_eq!(t.priority, pb::TriggerPriority::High as i32);
    assert_eq!(t.product_id, storage);
    let got = c
        .get_trigger(pb::GetTriggerRequest {
            trigger_id: t.trigger_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .trigger
        .unwrap();
    assert_eq!(&got, t);

    // More usage signals don't open a second trigger; usage falling below
    // 80% closes it.
    record(
        &mut c,
        vec![signal(
            &acme,
            &storage,
            pb::SignalKind::Usage,
            "95",
            "100",
            "u-2",
        )],
    )
    .await;
    assert_eq!(
        triggers(&mut c, &acme, &[pb::TriggerStatus::Ready])
            .await
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    record(
        &mut c,
        vec![signal(
            &acme,
            &storage,
            pb::SignalKind::Usage,
            "40",
            "100",
            "u-3",
        )],
    )
    .await;
    assert!(
        triggers(&mut c, &acme, &[pb::TriggerStatus::Ready])
            .await
            .is_empty()
    );
    let closed = triggers(&mut c, &acme, &[pb::TriggerStatus::Closed]).await;
    assert_eq!(closed.len(), 1);
    assert!(closed[0].close_time.is_some());

    let history = c
        .get_health_history(pb::GetHealthHistoryRequest {
            account_id: acme.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(history.points.len() >= 2, "{history:?}");
    let latest = health(&mut c, &acme).await.overall.unwrap();
    assert_eq!(latest.trend_vs_previous, pb::Trend::Down as i32);
}

async fn red_account_suppresses_triggers_until_overridden(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let acme = account(&mut c, "acme-red", "2025-03-01").await;
    let crm = product(&mut c, "CRM").await;
    subscribe(&mut c, &acme, &crm, money("USD", "500"), "2025-03-01").await;
    let mut signals: Vec<pb::Signal> = (0..2)
        .map(|i| {
            signal(
                &acme,
                "",
                pb::SignalKind::Escalation,
                "1",
                "",
                &format!("esc-{i}"),
            )
        })
        .collect();
    signals.push(signal(
        &acme,
        &crm,
        pb::SignalKind::PremiumWorkaround,
        "1",
        "",
        "pw-1",
    ));
    record(&mut c, signals).await;

    let overall = health(&mut c, &acme).await.overall.unwrap();
    assert_eq!(overall.band, HealthBand::Red as i32, "{overall:?}");
    let suppressed = triggers(&mut c, &acme, &[pb::TriggerStatus::Suppressed]).await;
    assert_eq!(suppressed.len(), 1);
    assert_eq!(
        suppressed[0].kind,
        pb::TriggerKind::PremiumWorkaround as i32
    );
    assert_eq!(suppressed[0].suggested_motion, Motion::UpsellTier as i32);
    assert!(
        suppressed[0].suppression_reason.contains("RED"),
        "{:?}",
        suppressed[0]
    );

    let no_reason = c
        .override_health(pb::OverrideHealthRequest {
            account_id: acme.clone(),
            score: 80,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&no_reason), "reason");
    let overridden = c
        .override_health(pb::OverrideHealthRequest {
            account_id: acme.clone(),
            score: 80,
            reason: "escalations resolved in the QBR".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .health
        .unwrap()
        .overall
        .unwrap();
    assert_eq!(overridden.score, "80");
    assert_eq!(overridden.band, HealthBand::Green as i32);
    assert_eq!(overridden.computed_score, overall.computed_score);
    let o = overridden.r#override.unwrap();
    assert_eq!((o.principal.as_str(), o.score), ("local", 80));
    // The account is no longer RED, but the product the trigger grows from
    // still is: "fix product CRM first".
    let still = triggers(&mut c, &acme, &[pb::TriggerStatus::Suppressed]).await;
    assert_eq!(still.len(), 1);
    assert!(
        still[0].suppression_reason.contains("product CRM"),
        "{:?}",
        still[0]
    );
    c.override_health(pb::OverrideHealthRequest {
        account_id: acme.clone(),
        product_id: crm.clone(),
        score: 85,
        reason: "CRM escalations closed".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let ready = triggers(&mut c, &acme, &[pb::TriggerStatus::Ready]).await;
    assert_eq!(ready.len(), 1, "the overrides lift the suppression");
    assert_eq!(ready[0].trigger_id, suppressed[0].trigger_id);
}

async fn stream_signals_and_custom_scorecard(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let acme = account(&mut c, "acme-stream", "2025-03-01").await;
    let messages: Vec<pb::StreamSignalsRequest> = (0..3)
        .map(|b| pb::StreamSignalsRequest {
            signals: (0..50)
                .map(|i| {
                    signal(
                        &acme,
                        "",
                        pb::SignalKind::Login,
                        "1",
                        "",
                        &format!("login-{b}-{i}"),
                    )
                })
                .collect(),
        })
        .collect();
    let summary = c
        .stream_signals(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.accepted, summary.duplicates, summary.batches),
        (150, 0, 3)
    );
    // 150 logins in 30 days: power users → complementary cross-sell.
    let open = triggers(&mut c, &acme, &[pb::TriggerStatus::Ready]).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].kind, pb::TriggerKind::PowerUsers as i32);
    assert_eq!(
        open[0].suggested_motion,
        Motion::CrossSellComplementary as i32
    );

    // A scorecard of logins only: 150 ≥ 100 → 90, GREEN under custom bands.
    let card = c
        .upsert_scorecard(pb::UpsertScorecardRequest {
            request_id: String::new(),
            scorecard: Some(pb::Scorecard {
                measures: vec![pb::Measure {
                    name: "engagement".into(),
                    signal_kind: pb::SignalKind::Login as i32,
                    aggregation: pb::Aggregation::Sum as i32,
                    window_days: 30,
                    weight: "1".into(),
                    thresholds: vec![
                        pb::Threshold {
                            min_value: "100".into(),
                            score: 90,
                        },
                        pb::Threshold {
                            min_value: "0".into(),
                            score: 10,
                        },
                    ],
                    ..Default::default()
                }],
                bands: vec![
                    pb::BandBound {
                        band: HealthBand::Red as i32,
                        upper: 40,
                    },
                    pb::BandBound {
                        band: HealthBand::Yellow as i32,
                        upper: 85,
                    },
                    pb::BandBound {
                        band: HealthBand::Green as i32,
                        upper: 100,
                    },
                ],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .scorecard
        .unwrap();
    assert_eq!(card.version, 1);
    let overall = health(&mut c, &acme).await.overall.unwrap();
    assert_eq!(
        (overall.score.as_str(), overall.scorecard_version),
        ("90", 1)
    );
    assert_eq!(overall.band, HealthBand::Green as i32);
    assert_eq!(overall.coverage_percent, "100");

    let bad = c
        .upsert_scorecard(pb::UpsertScorecardRequest {
            request_id: String::new(),
            scorecard: Some(pb::Scorecard::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&bad), "scorecard.measures");
}

async fn bad_input_is_refused_and_stores_nothing(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let acme = account(&mut c, "acme-bad", "2025-03-01").await;
    let crm = product(&mut c, "CRM").await;
    let ghost = domain::AccountId::new().to_string();

    let unknown = c
        .record_signals(pb::RecordSignalsRequest {
            request_id: String::new(),
            signals: vec![
                signal(&acme, "", pb::SignalKind::Nps, "8", "", "ok-1"),
                signal(&ghost, "", pb::SignalKind::Nps, "8", "", "ok-2"),
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(
        (unknown.code(), field_of(&unknown).as_str()),
        (Code::InvalidArgument, "signals[1].account_id")
    );
    let nps = c
        .record_signals(pb::RecordSignalsRequest {
            request_id: String::new(),
            signals: vec![signal(&acme, "", pb::SignalKind::Nps, "11", "", "nps-11")],
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&nps), "signals[0].value");
    // Neither batch stored anything: the account still has no score.
    let overall = health(&mut c, &acme).await.overall.unwrap();
    assert!(!overall.has_score, "{overall:?}");

    let sub = |edit: &dyn Fn(&mut pb::Subscription)| {
        let mut s = pb::Subscription {
            account_id: acme.clone(),
            product_id: crm.clone(),
            mrr: money("USD", "100"),
            start_date: "2026-01-01".into(),
            ..Default::default()
        };
        edit(&mut s);
        pb::UpsertSubscriptionRequest {
            subscription: Some(s),
            ..Default::default()
        }
    };
    for (req, field) in [
        (
            sub(&|s| s.mrr = money("USD", "-100")),
            "subscription.mrr.amount",
        ),
        (
            sub(&|s| s.end_date = "2025-12-31".into()),
            "subscription.end_date",
        ),
        (
            sub(&|s| s.mrr = money("XYZ", "100")),
            "subscription.mrr.currency_code",
        ),
        (
            sub(&|s| s.account_id = ghost.clone()),
            "subscription.account_id",
        ),
        (
            sub(&|s| s.product_id = domain::ProductId::new().to_string()),
            "subscription.product_id",
        ),
    ] {
        let err = c.upsert_subscription(req).await.unwrap_err();
        assert_eq!(
            (err.code(), field_of(&err)),
            (Code::InvalidArgument, field.to_owned())
        );
    }
    let none = c
        .list_subscriptions(pb::ListSubscriptionsRequest {
            account_id: acme.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        none.subscriptions.is_empty(),
        "refused upserts stored nothing"
    );

    for (req, field) in [
        (
            pb::GetRevenueMetricsRequest {
                month: "2026-02".into(),
                time_zone: "Mars/Olympus".into(),
                ..Default::default()
            },
            "time_zone",
        ),
        (
            pb::GetRevenueMetricsRequest {
                month: "2026-13".into(),
                ..Default::default()
            },
            "month",
        ),
        (
            pb::GetRevenueMetricsRequest {
                start_date: "2026-03-01".into(),
                end_date: "2026-02-01".into(),
                ..Default::default()
            },
            "end_date",
        ),
    ] {
        let err = c.get_revenue_metrics(req).await.unwrap_err();
        assert_eq!(
            (err.code(), field_of(&err)),
            (Code::InvalidArgument, field.to_owned())
        );
    }
    let missing = c
        .get_account_health(pb::GetAccountHealthRequest { account_id: ghost })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let page = c
        .list_accounts(pb::ListAccountsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&page), "page_size");
}

async fn revenue_metrics_follow_the_seed(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let base = product(&mut c, "Billing").await;
    let module = product(&mut c, "Module").await;
    let service = product(&mut c, "Service").await;
    let brl = |a: &str| money("BRL", a);
    // X: contract in January, a R$200 module in February → cross-sell.
    let x = account(&mut c, "x", "2026-01-05").await;
    subscribe(&mut c, &x, &base, brl("300.00"), "2026-01-05").await;
    subscribe(&mut c, &x, &module, brl("200.00"), "2026-02-10").await;
    // Y: contract in February with two recurring sales, R$400 → New MRR.
    let y = account(&mut c, "y", "2026-02-03").await;
    subscribe(&mut c, &y, &base, brl("250.00"), "2026-02-03").await;
    subscribe(&mut c, &y, &module, brl("100.00"), "2026-02-03").await;
    subscribe(&mut c, &y, &service, brl("50.00"), "2026-02-03").await;
    // Z: contract in January, a new R$500 contract in February → cross-sell.
    let z = account(&mut c, "z", "2026-01-20").await;
    subscribe(&mut c, &z, &base, brl("400.00"), "2026-01-20").await;
    subscribe(&mut c, &z, &service, brl("500.00"), "2026-02-15").await;

    let february = c
        .get_revenue_metrics(pb::GetRevenueMetricsRequest {
            month: "2026-02".into(),
            time_zone: "America/Sao_Paulo".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (february.start_date.as_str(), february.end_date.as_str()),
        ("2026-02-01", "2026-03-01")
    );
    assert_eq!(february.currencies.len(), 1);
    let m = &february.currencies[0];
    assert_eq!(m.cross_sell_mrr, brl("700.00"));
    assert_eq!(m.new_mrr, brl("400.00"));
    assert_eq!(m.expansion_mrr, brl("700.00"));
    // Expansion share 700 / (400 + 700).
    assert_eq!(m.expansion_share, "0.6364");
    // Starting cohort X and Z (700) grew to 1400: NRR 2, GRR 1.
    assert_eq!((m.nrr.as_str(), m.grr.as_str()), ("2.0000", "1.0000"));
    // All three accounts hold ≥ 2 products on Feb 28.
    assert_eq!(m.cross_sell_penetration, "1.0000");
}

async fn health_lists_sort_filter_and_page(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let storage = product(&mut c, "Storage").await;
    let mut ids = Vec::new();
    for (i, usage) in ["95", "35", "5"].iter().enumerate() {
        let a = account(&mut c, &format!("list-{i}"), "2025-01-01").await;
        record(
            &mut c,
            vec![signal(
                &a,
                &storage,
                pb::SignalKind::Usage,
                usage,
                "100",
                &format!("l-{i}"),
            )],
        )
        .await;
        ids.push(a);
    }
    let list = |sort: pb::HealthSortOrder, bands: Vec<i32>, page_token: String| {
        pb::ListAccountHealthRequest {
            page_size: 2,
            page_token,
            bands,
            sort: sort as i32,
            owner_csm: String::new(),
        }
    };
    let first = c
        .list_account_health(list(
            pb::HealthSortOrder::ScoreDescending,
            vec![],
            String::new(),
        ))
        .await
        .unwrap()
        .into_inner();
    let scores: Vec<&str> = first.scores.iter().map(|s| s.score.as_str()).collect();
    // Usage 95% → 100, 35% → 70, 5% → 10 (weight 30), beside no ticket and no
    // escalation → 100 each (weights 10 and 10): (30×70 + 2000) / 50 = 82,
    // (30×10 + 2000) / 50 = 46.
    assert_eq!(scores, vec!["100", "82"]);
    let second = c
        .list_account_health(list(
            pb::HealthSortOrder::ScoreDescending,
            vec![],
            first.next_page_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.scores.len(), 1);
    assert_eq!(second.scores[0].account_id, ids[2]);
    assert!(second.next_page_token.is_empty());
    let red = c
        .list_account_health(list(
            pb::HealthSortOrder::ScoreAscending,
            vec![HealthBand::Red as i32],
            String::new(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(red.scores.len(), 1);
    assert_eq!(
        (
            red.scores[0].account_id.as_str(),
            red.scores[0].score.as_str()
        ),
        (ids[2].as_str(), "46")
    );

    let accounts = c
        .list_accounts(pb::ListAccountsRequest {
            owner_csm: "carla.csm".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accounts.accounts.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_make_health_retries_safe() {
    let backend = Backend::sqlite();
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let mut upsert = pb::UpsertAccountRequest {
        request_id: "crm-sync-42".into(),
        external_ref: Some(pb::ExternalRef {
            system: "hubspot".into(),
            id: "retry-1".into(),
        }),
        name: "Retry Inc".into(),
        ..Default::default()
    };
    let first = c.upsert_account(upsert.clone()).await.unwrap().into_inner();
    let retry = c.upsert_account(upsert.clone()).await.unwrap().into_inner();
    assert_eq!(first, retry, "a retry returns the first response");
    assert!(retry.created);
    upsert.name = "Retry Incorporated".into();
    let reused = c.upsert_account(upsert).await.unwrap_err();
    assert_eq!(field_of(&reused), "request_id");

    let signals = pb::RecordSignalsRequest {
        request_id: "batch-7".into(),
        signals: vec![signal(
            &first.account.unwrap().account_id,
            "",
            pb::SignalKind::Nps,
            "9",
            "",
            "nps-retry",
        )],
    };
    let sent = c
        .record_signals(signals.clone())
        .await
        .unwrap()
        .into_inner();
    let again = c.record_signals(signals).await.unwrap().into_inner();
    assert_eq!((sent.accepted, again.accepted), (1, 1));
}

async fn a_moved_fiscal_year_opens_and_closes_its_trigger_at_once(backend: Backend) {
    use chrono::Datelike;
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let acme = account(&mut c, "fiscal", "2025-01-01").await;
    let erp = product(&mut c, "ERP").await;
    subscribe(&mut c, &acme, &erp, money("USD", "1000"), "2025-02-01").await;
    let open = [pb::TriggerStatus::Ready, pb::TriggerStatus::Suppressed];
    let fiscal = |ts: &[pb::Trigger]| {
        ts.iter()
            .filter(|t| t.kind == pb::TriggerKind::FiscalYearWindow as i32)
            .count()
    };
    assert_eq!(fiscal(&triggers(&mut c, &acme, &open).await), 0);

    // The CRM says the fiscal year starts next month: the trigger opens on the
    // next read, not at tomorrow's sweep.
    let next_month = i32::try_from(chrono::Utc::now().month() % 12 + 1).unwrap();
    let moved = |month: i32| pb::UpsertAccountRequest {
        account_id: acme.clone(),
        name: "Account fiscal".into(),
        segment: Segment::MidMarket as i32,
        customer_since: "2025-01-01".into(),
        fiscal_year_start_month: month,
        owner_csm: "carla.csm".into(),
        ..Default::default()
    };
    c.upsert_account(moved(next_month)).await.unwrap();
    assert_eq!(fiscal(&triggers(&mut c, &acme, &open).await), 1);
    // And back: it closes.
    c.upsert_account(moved(distant_fiscal_month()))
        .await
        .unwrap();
    assert_eq!(fiscal(&triggers(&mut c, &acme, &open).await), 0);
    let closed = triggers(&mut c, &acme, &[pb::TriggerStatus::Closed]).await;
    assert_eq!(fiscal(&closed), 1, "{closed:?}");
}

/// Scorecards a user can read and trust: the name given is kept, every
/// version can be read back with the one in force marked, and CSM
/// sentiment can't be a measure (it is shown beside the score).
async fn scorecards_keep_their_name_and_versions(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    // Before any is written, the built-in scorecard (version 0) is in force.
    let built_in = c
        .get_scorecard(pb::GetScorecardRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(built_in.in_force);
    let card = built_in.scorecard.unwrap();
    assert_eq!((card.scorecard_id.as_str(), card.version), ("default", 0));
    assert_eq!(card.measures.len(), 6);

    let mut written = card.clone();
    written.name = "Enterprise health, FY27".into();
    written.measures.truncate(3);
    let stored = c
        .upsert_scorecard(pb::UpsertScorecardRequest {
            request_id: String::new(),
            scorecard: Some(written.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .scorecard
        .unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.version),
        ("Enterprise health, FY27", 1)
    );
    let latest = c
        .get_scorecard(pb::GetScorecardRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(latest.in_force);
    assert_eq!(
        latest.scorecard.as_ref().unwrap().name,
        "Enterprise health, FY27"
    );
    assert_eq!(latest.scorecard.unwrap().measures.len(), 3);
    let versions = c
        .list_scorecards(pb::ListScorecardsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<(i32, String)> = versions
        .scorecards
        .iter()
        .map(|s| (s.version, s.name.clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (1, "Enterprise health, FY27".to_owned()),
            (0, "Built-in health scorecard".to_owned())
        ]
    );
    assert_eq!(versions.in_force_version, 1);
    // Paged one at a time, the same two.
    let first = c
        .list_scorecards(pb::ListScorecardsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let second = c
        .list_scorecards(pb::ListScorecardsRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (first.scorecards[0].version, second.scorecards[0].version),
        (1, 0)
    );
    let unknown = c
        .get_scorecard(pb::GetScorecardRequest {
            scorecard_id: "enterprise".into(),
            version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    written.measures[0].signal_kind = pb::SignalKind::CsmSentiment as i32;
    let err = c
        .upsert_scorecard(pb::UpsertScorecardRequest {
            request_id: String::new(),
            scorecard: Some(written),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "scorecard.measures[0].signal_kind");
}

/// SPEC §2: `time_zone` decides which day is "today" for an amendment or a
/// cancellation sent without its date.
async fn time_zone_decides_the_default_day_of_a_change(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let acme = account(&mut c, "acme-tz", "2025-01-01").await;
    let storage = product(&mut c, "Storage").await;
    // UTC+14 and UTC−11: at least one of them is on another day than UTC.
    for (zone, crm) in [
        ("Pacific/Kiritimati", "tz-east"),
        ("Pacific/Pago_Pago", "tz-west"),
    ] {
        let today = domain::TimeZoneName::parse(zone)
            .unwrap()
            .date_of(chrono::Utc::now())
            .to_string();
        let sub = subscribe(&mut c, &acme, &storage, money("USD", "100"), "2025-01-01").await;
        let mut amend = sub.clone();
        amend.mrr = money("USD", "150");
        c.upsert_subscription(pb::UpsertSubscriptionRequest {
            subscription: Some(amend),
            time_zone: zone.into(),
            ..Default::default()
        })
        .await
        .unwrap();
        let cancelled = c
            .cancel_subscription(pb::CancelSubscriptionRequest {
                subscription_id: sub.subscription_id.clone(),
                reason: format!("moved away ({crm})"),
                time_zone: zone.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .subscription
            .unwrap();
        assert_eq!(cancelled.cancel_date, today, "{zone}");
    }
    let err = c
        .cancel_subscription(pb::CancelSubscriptionRequest {
            subscription_id: domain::SubscriptionId::new().to_string(),
            reason: "x".into(),
            time_zone: "Mars/Olympus".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "time_zone");
}

/// Renames a product of the core family (the other fields as created).
async fn rename_product(c: &mut Client, product_id: &str, name: &str) {
    c.upsert_product(pb::UpsertProductRequest {
        request_id: String::new(),
        product: Some(pb::Product {
            product_id: product_id.to_owned(),
            name: name.into(),
            family: "core".into(),
            tiers: vec!["STARTER".into()],
            fits_segments: vec![Segment::MidMarket as i32],
            margin_percent: "70".into(),
            ..Default::default()
        }),
    })
    .await
    .unwrap();
}

/// Reads are answered from memory between writes on SQLite (and from the
/// database on PostgreSQL): either way a read that follows an acknowledged
/// write shows it — with other callers reading all the while — and an
/// override stops showing when it expires, with no write in between.
async fn a_read_after_an_acknowledged_write_shows_it(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let acme = account(&mut c, "acme-fresh", "2025-03-01").await;
    let storage = product(&mut c, "Storage").await;
    subscribe(&mut c, &acme, &storage, money("USD", "800"), "2025-03-01").await;
    record(
        &mut c,
        vec![signal(
            &acme,
            &storage,
            pb::SignalKind::Usage,
            "50",
            "100",
            "u-0",
        )],
    )
    .await;
    let first = health(&mut c, &acme).await;
    assert_eq!(health(&mut c, &acme).await, first, "a read changes nothing");

    // Other callers read the account without pause while it is written.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, acme) = (stop.clone(), acme.clone());
            let mut reader = c.clone();
            tokio::spawn(async move {
                let mut reads = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    health(&mut reader, &acme).await;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for (i, sentiment) in [3, 5, 1, 4, 2, 5, 3, 1, 2, 4]
        .iter()
        .cycle()
        .take(30)
        .enumerate()
    {
        record(
            &mut c,
            vec![signal(
                &acme,
                "",
                pb::SignalKind::CsmSentiment,
                &sentiment.to_string(),
                "",
                &format!("s-{i}"),
            )],
        )
        .await;
        let overall = health(&mut c, &acme).await.overall.unwrap();
        assert_eq!(
            overall.csm_sentiment,
            sentiment.to_string(),
            "after signal s-{i}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }

    // A product renamed: its name in the next read.
    rename_product(&mut c, &storage, "Object Storage").await;
    let renamed = health(&mut c, &acme).await;
    assert_eq!(renamed.products[0].product_name, "Object Storage");

    // The lists GetWhitespace reads: a page read before a write, then again.
    let products = pb::ListProductsRequest {
        page_size: 10,
        ..Default::default()
    };
    let subscriptions = pb::ListSubscriptionsRequest {
        account_id: acme.clone(),
        page_size: 10,
        ..Default::default()
    };
    let listed = |c: &mut Client| {
        let (mut c, products, subscriptions) = (c.clone(), products.clone(), subscriptions.clone());
        async move {
            let p = c.list_products(products).await.unwrap().into_inner();
            let s = c
                .list_subscriptions(subscriptions)
                .await
                .unwrap()
                .into_inner();
            (p.products[0].name.clone(), s.subscriptions[0].clone())
        }
    };
    let (name, subscription) = listed(&mut c).await;
    assert_eq!(name, "Object Storage");
    assert_eq!(subscription.product_name, "Object Storage");
    rename_product(&mut c, &storage, "Block Storage").await;
    let (name, subscription) = listed(&mut c).await;
    assert_eq!(name, "Block Storage");
    assert_eq!(subscription.product_name, "Block Storage");
    record(
        &mut c,
        vec![signal(
            &acme,
            &storage,
            pb::SignalKind::Usage,
            "75",
            "100",
            "u-1",
        )],
    )
    .await;
    let (_, subscription) = listed(&mut c).await;
    assert_eq!(subscription.latest_usage.unwrap().value, "75");
    // The account, read, then renamed through its CRM reference: read again.
    let get = pb::GetAccountRequest {
        account_id: acme.clone(),
        ..Default::default()
    };
    let name = |r: pb::GetAccountResponse| r.account.unwrap().name;
    let before = name(c.get_account(get.clone()).await.unwrap().into_inner());
    assert_eq!(before, "Account acme-fresh");
    assert_eq!(account(&mut c, "acme-fresh", "2025-03-01").await, acme);
    c.upsert_account(pb::UpsertAccountRequest {
        fiscal_year_start_month: distant_fiscal_month(),
        external_ref: Some(pb::ExternalRef {
            system: "hubspot".into(),
            id: "acme-fresh".into(),
        }),
        name: "Acme Fresh Foods".into(),
        segment: Segment::MidMarket as i32,
        customer_since: "2025-03-01".into(),
        owner_csm: "carla.csm".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let after = name(c.get_account(get).await.unwrap().into_inner());
    assert_eq!(after, "Acme Fresh Foods");
    let renamed = health(&mut c, &acme).await;

    // An override for two seconds: shown at once, gone when it expires.
    let computed = renamed.overall.unwrap().computed_score;
    let expires = chrono::Utc::now() + chrono::Duration::seconds(2);
    c.override_health(pb::OverrideHealthRequest {
        account_id: acme.clone(),
        score: 7,
        reason: "escalation open".into(),
        expire_time: Some(prost_types::Timestamp {
            seconds: expires.timestamp(),
            nanos: i32::try_from(expires.timestamp_subsec_nanos()).unwrap(),
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let overridden = health(&mut c, &acme).await.overall.unwrap();
    assert_eq!(
        (overridden.score.as_str(), overridden.r#override.is_some()),
        ("7", true)
    );
    assert_eq!(health(&mut c, &acme).await.overall.unwrap(), overridden);
    let left = expires - chrono::Utc::now();
    tokio::time::sleep(left.to_std().unwrap_or_default() + Duration::from_millis(50)).await;
    let expired = health(&mut c, &acme).await.overall.unwrap();
    assert!(expired.r#override.is_none(), "{expired:?}");
    assert_eq!(expired.score, computed);
}

/// The signals of the upgrade test: `n` over three accounts and four kinds,
/// spread over the last 40 days, as (account, kind, value, at).
fn upgrade_signals(n: i64) -> Vec<(usize, pb::SignalKind, String, chrono::DateTime<chrono::Utc>)> {
    let now = chrono::Utc::now();
    let kinds = [
        pb::SignalKind::Nps,
        pb::SignalKind::Login,
        pb::SignalKind::SupportTicket,
        pb::SignalKind::CsmSentiment,
    ];
    (0..n)
        .map(|i| {
            let kind = kinds[usize::try_from(i).unwrap() % kinds.len()];
            let value = match kind {
                pb::SignalKind::Nps => i % 11,
                pb::SignalKind::CsmSentiment => 1 + i % 5,
                _ => 1 + i % 3,
            };
            let at = now - chrono::Duration::minutes(i * 577 % (40 * 24 * 60));
            (usize::try_from(i % 3).unwrap(), kind, value.to_string(), at)
        })
        .collect()
}

/// The same account as [`account`] makes, written by the store itself.
fn upgrade_account(n: usize) -> account_health::model::AccountInput {
    account_health::model::AccountInput {
        key: account_health::model::AccountKey::External(
            domain::ExternalId::parse("hubspot", &format!("upgraded-{n}")).unwrap(),
        ),
        external: None,
        name: format!("Account upgraded-{n}"),
        segment: Some(domain::Segment::MidMarket),
        customer_since: Some(chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap()),
        fiscal_year_start_month: u32::try_from(distant_fiscal_month()).unwrap(),
        owner_csm: Some("carla.csm".into()),
        parent: None,
    }
}

/// A database made by the schema before the last migration, holding
/// accounts and signals, is upgraded when the new binary starts on it: no
/// signal is lost, and every account scores exactly as on a database that
/// received the same signals after the upgrade — also once more signals
/// arrive on top.
async fn an_upgraded_database_scores_from_every_signal_it_held(backend: Backend) {
    use account_health::model::signal::{NewSignal, SignalKind};
    use migrations::MigratorTrait;
    use sea_orm::ConnectionTrait;

    const HELD: i64 = 300;
    let signals = upgrade_signals(HELD + 60);
    let (held, later) = signals.split_at(usize::try_from(HELD).unwrap());
    let kind_of = |kind: pb::SignalKind| match kind {
        pb::SignalKind::Nps => SignalKind::Nps,
        pb::SignalKind::Login => SignalKind::Login,
        pb::SignalKind::SupportTicket => SignalKind::SupportTicket,
        _ => SignalKind::CsmSentiment,
    };

    // The last landed version's schema, and its data.
    let url = backend.database_url("health");
    let before = migrations::health::Migrator::migrations().len() - 1;
    let db = storage::connect(&url).await.unwrap();
    migrations::health::Migrator::up(&db, Some(u32::try_from(before).unwrap()))
        .await
        .unwrap();
    let store = account_health::store::Store::new(db.clone());
    let mut old_ids = Vec::new();
    for n in 0..3 {
        let (row, _) = store
            .upsert_account(&upgrade_account(n), "test")
            .await
            .unwrap();
        old_ids.push(row.id);
    }
    let batch: Vec<NewSignal> = held
        .iter()
        .enumerate()
        .map(|(i, (account, kind, value, at))| NewSignal {
            account_id: domain::AccountId::parse(&old_ids[*account]).unwrap(),
            product_id: None,
            kind: kind_of(*kind),
            value_e4: value.parse::<i64>().unwrap() * 10_000,
            limit_e4: None,
            occurred_at: *at,
            source: "product-telemetry".into(),
            external_id: Some(format!("up-{i}")),
            detail: None,
        })
        .collect();
    store.record_signals("signals", &batch).await.unwrap();
    drop(store);
    db.close().await.unwrap();

    let control_backend = if backend.is_postgres() {
        Backend::postgres().await.unwrap()
    } else {
        Backend::sqlite()
    };
    let upgraded = Server::start(&backend, &[]);
    let control = Server::start(&control_backend, &[]);
    let mut u = upgraded.health().await;
    let mut c = control.health().await;
    let mut new_ids = Vec::new();
    for n in 0..3 {
        new_ids.push(account(&mut c, &format!("upgraded-{n}"), "2025-03-01").await);
    }
    let as_pb =
        |ids: &[String],
         from: usize,
         list: &[(usize, pb::SignalKind, String, chrono::DateTime<chrono::Utc>)]| {
            list.iter()
                .enumerate()
                .map(|(i, (account, kind, value, at))| pb::Signal {
                    account_id: ids[*account].clone(),
                    kind: *kind as i32,
                    value: value.clone(),
                    occur_time: Some(prost_types::Timestamp {
                        seconds: at.timestamp(),
                        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap(),
                    }),
                    source: "product-telemetry".into(),
                    external_id: format!("up-{}", from + i),
                    ..Default::default()
                })
                .collect::<Vec<_>>()
        };
    record(&mut c, as_pb(&new_ids, 0, held)).await;

    let stored = backend.connect("health").await;
    let count = |sql: &'static str| {
        let stored = &stored;
        async move {
            let row = stored
                .query_one_raw(sea_orm::Statement::from_string(
                    stored.get_database_backend(),
                    sql,
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM signals").await,
        HELD,
        "no signal lost"
    );
    if !backend.is_postgres() {
        assert_eq!(
            count("SELECT COUNT(*) FROM signal_index").await,
            HELD,
            "every signal held is indexed by account"
        );
        assert_eq!(
            count("SELECT indexed_through FROM signal_index_mark").await,
            count("SELECT MAX(seq) FROM signals").await,
        );
    }

    let scores = |h: pb::AccountHealth| {
        let o = h.overall.unwrap();
        let breakdown: Vec<(String, bool, String)> = o
            .breakdown
            .into_iter()
            .map(|m| (m.name, m.has_data, m.score))
            .collect();
        (
            o.score,
            o.band,
            o.coverage_percent,
            o.csm_sentiment,
            breakdown,
        )
    };
    for n in 0..3 {
        let got = scores(health(&mut u, &old_ids[n]).await);
        assert!(
            got.4.iter().any(|m| m.1),
            "account {n} scored from its signals: {got:?}"
        );
        assert_eq!(
            got,
            scores(health(&mut c, &new_ids[n]).await),
            "account {n}"
        );
    }

    // More signals on top: found beside those indexed, until they are too.
    record(&mut u, as_pb(&old_ids, held.len(), later)).await;
    record(&mut c, as_pb(&new_ids, held.len(), later)).await;
    for n in 0..3 {
        assert_eq!(
            scores(health(&mut u, &old_ids[n]).await),
            scores(health(&mut c, &new_ids[n]).await),
            "account {n} after more signals"
        );
    }
}
