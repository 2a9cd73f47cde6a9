//! The whole expansion story through gRPC, as one process, as three
//! processes (each service with its own database), and on a secured server
//! where each step is taken by a person whose API key's role allows it (the
//! connector, Carla the CSM, Alex the AE, RevOps, an admin), on SQLite and
//! PostgreSQL:
//!
//! signals make an account GREEN and fire a capacity trigger (and a data
//! export one) → a CSM creates opportunities from them → requests a handoff →
//! an AE accepts → stages advance through the gates → CLOSED_WON → the credit
//! ledger shows 25% CSM origination / 75% AE delivery (plus the account-team
//! overlay) → health has the new subscriptions → the account's whitespace
//! loses the cross-sold product and the month's cross-sell MRR grows.

use std::time::{Duration, Instant};

use chrono::{Datelike, Utc};
use contracts::pb::common::v1::{HealthBand, Motion, Segment};
use contracts::pb::credit::v1 as credit;
use contracts::pb::health::v1 as health;
use contracts::pb::pipeline::v1 as pipeline;

use contracts::client::{AuthChannel, ClientOptions};
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_client::OpportunityPipelineServiceClient;

use crate::harness::{Backend, Server, create_key, usd};
use crate::on_both_databases;

on_both_databases!(
    story_in_one_process,
    story_in_three_processes,
    story_with_api_keys
);

/// Where each service of the story is served (the same server, or three).
struct Services<'a> {
    health: &'a Server,
    pipeline: &'a Server,
    credit: &'a Server,
}

/// The API key each person (or system) of the story calls with; all `None`
/// on an open server, where every caller is `local`.
#[derive(Default)]
struct Keys {
    connector: Option<String>,
    csm: Option<String>,
    ae: Option<String>,
    revops: Option<String>,
    admin: Option<String>,
}

/// The services as one caller reaches them.
#[derive(Clone, Copy)]
struct As<'a> {
    at: &'a Services<'a>,
    key: Option<&'a str>,
}

impl As<'_> {
    async fn channel(&self, server: &Server) -> AuthChannel {
        let options = ClientOptions::default().with_api_key(self.key.map(str::to_owned));
        contracts::client::connect(&server.addr, &options)
            .await
            .unwrap()
    }

    async fn health(&self) -> AccountHealthServiceClient<AuthChannel> {
        AccountHealthServiceClient::new(self.channel(self.at.health).await)
    }

    async fn pipeline(&self) -> OpportunityPipelineServiceClient<AuthChannel> {
        OpportunityPipelineServiceClient::new(self.channel(self.at.pipeline).await)
    }

    async fn credit(&self) -> CompensationCreditServiceClient<AuthChannel> {
        CompensationCreditServiceClient::new(self.channel(self.at.credit).await)
    }
}

async fn story_in_one_process(backend: Backend) {
    let server = Server::start(&backend, &[]);
    story(
        &Services {
            health: &server,
            pipeline: &server,
            credit: &server,
        },
        &Keys::default(),
    )
    .await;
}

/// The story on a secured server, each step by a person whose role allows
/// it; the names of their keys are what the records show.
async fn story_with_api_keys(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.json");
    let keys = Keys {
        connector: Some(create_key(&file, "salesforce-sync", "connector")),
        csm: Some(create_key(&file, "carla.csm", "csm")),
        ae: Some(create_key(&file, "alex.ae", "ae")),
        revops: Some(create_key(&file, "rita.revops", "revops")),
        admin: Some(create_key(&file, "ops", "admin")),
    };
    let keys_file = file.display().to_string();
    let server = Server::start(&backend, &["--keys-file", &keys_file]);
    story(
        &Services {
            health: &server,
            pipeline: &server,
            credit: &server,
        },
        &keys,
    )
    .await;
}

async fn story_in_three_processes(backend: Backend) {
    // Each service gets a database of its own, of the same kind.
    let other = || async {
        if backend.is_postgres() {
            Backend::postgres().await.expect("PostgreSQL")
        } else {
            Backend::sqlite()
        }
    };
    let (pipeline_db, credit_db) = (other().await, other().await);
    let credit_server = Server::start(&credit_db, &["--service", "credit"]);
    let health_server = Server::start(
        &backend,
        &["--service", "health", "--credit-addr", &credit_server.addr],
    );
    let pipeline_server = Server::start(
        &pipeline_db,
        &[
            "--service",
            "pipeline",
            "--health-addr",
            &health_server.addr,
            "--credit-addr",
            &credit_server.addr,
        ],
    );
    story(
        &Services {
            health: &health_server,
            pipeline: &pipeline_server,
            credit: &credit_server,
        },
        &Keys::default(),
    )
    .await;
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most `wait`.
async fn eventually<T, F, Fut>(what: &str, wait: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + wait;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Portfolio {
    account: String,
    /// Owned since 2025; its usage runs out of capacity.
    storage: String,
    /// Adjacent to Storage, not owned: whitespace.
    analytics: String,
}

async fn portfolio(who: As<'_>) -> Portfolio {
    let mut h = who.health().await;
    let account = h
        .upsert_account(health::UpsertAccountRequest {
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: "001-story".into(),
            }),
            name: "Story Logistics".into(),
            segment: Segment::Enterprise as i32,
            customer_since: "2025-01-01".into(),
            owner_csm: "carla.csm".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .account_id;
    let product = |name: &str, adjacent_to: Option<&str>| {
        let request = health::UpsertProductRequest {
            request_id: String::new(),
            product: Some(health::Product {
                name: name.into(),
                family: "data".into(),
                tiers: vec!["STARTER".into(), "ENTERPRISE".into()],
                fits_segments: vec![Segment::Enterprise as i32],
                adjacencies: adjacent_to
                    .map(|core| health::ProductAdjacency {
                        product_id: core.into(),
                        adjacency: health::Adjacency::Adjacent as i32,
                    })
                    .into_iter()
                    .collect(),
                wallet_estimates: vec![health::SegmentWallet {
                    segment: Segment::Enterprise as i32,
                    annual_wallet: usd("120000"),
                }],
                ..Default::default()
            }),
        };
        let mut h = h.clone();
        async move {
            h.upsert_product(request)
                .await
                .unwrap()
                .into_inner()
                .product
                .unwrap()
                .product_id
        }
    };
    let storage = product("Storage", None).await;
    let analytics = product("Analytics", Some(&storage)).await;
    h.upsert_subscription(health::UpsertSubscriptionRequest {
        subscription: Some(health::Subscription {
            account_id: account.clone(),
            product_id: storage.clone(),
            tier: "STARTER".into(),
            mrr: usd("2000.00"),
            start_date: "2025-02-01".into(),
            quantity: 1,
            quota_limit: 100,
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: "sub-story-storage".into(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    Portfolio {
        account,
        storage,
        analytics,
    }
}

fn signal(
    p: &Portfolio,
    product: &str,
    kind: health::SignalKind,
    value: &str,
    limit: &str,
    id: &str,
) -> health::Signal {
    health::Signal {
        account_id: p.account.clone(),
        product_id: product.into(),
        kind: kind as i32,
        value: value.into(),
        limit: limit.into(),
        occur_time: Some(contracts::wire::timestamp(
            Utc::now() - chrono::Duration::hours(1),
        )),
        source: "telemetry".into(),
        external_id: id.into(),
        detail: String::new(),
    }
}

/// The account's open trigger of `kind`, once health has computed it.
async fn trigger(who: As<'_>, account: &str, kind: health::TriggerKind) -> health::Trigger {
    let mut h = who.health().await;
    eventually(
        &format!("a {kind:?} trigger"),
        Duration::from_secs(30),
        || {
            let mut h = h.clone();
            async move {
                h.list_triggers(health::ListTriggersRequest {
                    account_id: account.into(),
                    kind: kind as i32,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .triggers
                .into_iter()
                .next()
            }
        },
    )
    .await;
    h.list_triggers(health::ListTriggersRequest {
        account_id: account.into(),
        kind: kind as i32,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .triggers
    .remove(0)
}

fn stakeholders() -> Vec<pipeline::Stakeholder> {
    vec![pipeline::Stakeholder {
        name: "Dana Reyes".into(),
        role: "CFO".into(),
        budget_holder: true,
        decision_maker: true,
        ..Default::default()
    }]
}

/// From IDENTIFIED to CLOSED_WON the way the team works it: the CSM
/// qualifies, hands off to the AE, the AE proposes, negotiates and closes.
async fn work_to_won(
    csm: As<'_>,
    ae: As<'_>,
    mut opp: pipeline::Opportunity,
    close_date: &str,
) -> String {
    let mut p = csm.pipeline().await;
    let mut p_ae = ae.pipeline().await;
    opp = p
        .update_opportunity(pipeline::UpdateOpportunityRequest {
            request_id: String::new(),
            opportunity: Some(pipeline::Opportunity {
                opportunity_id: opp.opportunity_id.clone(),
                etag: opp.etag.clone(),
                stakeholders: stakeholders(),
                qualification: Some(pipeline::Qualification {
                    need_confirmed: true,
                    budget_status: pipeline::BudgetStatus::Allocated as i32,
                    decision_process_known: true,
                    relationship_strength: 8,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: vec!["stakeholders".into(), "qualification".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    let advance = |p: &OpportunityPipelineServiceClient<AuthChannel>,
                   opp: pipeline::Opportunity,
                   to: pipeline::Stage| {
        let mut p = p.clone();
        async move {
            p.advance_stage(pipeline::AdvanceStageRequest {
                opportunity_id: opp.opportunity_id.clone(),
                etag: opp.etag.clone(),
                to_stage: to as i32,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|status| panic!("to {to:?}: {status:?}"))
            .into_inner()
            .opportunity
            .unwrap()
        }
    };
    opp = advance(&p, opp, pipeline::Stage::Exploring).await;
    opp = advance(&p, opp, pipeline::Stage::Qualified).await;
    assert_eq!(
        opp.health_snapshot.as_ref().map(|s| s.account_band),
        Some(HealthBand::Green as i32),
        "the gates saw a GREEN account"
    );

    let handoff = p
        .request_handoff(pipeline::RequestHandoffRequest {
            occur_time: None,
            request_id: String::new(),
            opportunity_id: opp.opportunity_id.clone(),
            package: Some(pipeline::HandoffPackage {
                discovery_summary: "outgrowing the plan; exports data to a BI tool".into(),
                pain_points: vec!["capacity".into(), "manual reporting".into()],
                stakeholders: stakeholders(),
                decision_process: "CFO signs after a security review".into(),
                budget_status: pipeline::BudgetStatus::Allocated as i32,
                timing: "this quarter".into(),
                competitive_landscape: "an in-house script".into(),
                joint_call_time: None,
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .handoff
        .unwrap();
    assert_eq!(handoff.status, pipeline::HandoffStatus::Requested as i32);
    if csm.key.is_some() {
        assert_eq!(handoff.requested_by, "carla.csm");
    }
    opp = p_ae
        .accept_handoff(pipeline::AcceptHandoffRequest {
            request_id: String::new(),
            handoff_id: handoff.handoff_id,
            owner: "alex.ae".into(),
            owner_team: "enterprise-sales".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(opp.owner, "alex.ae");
    opp = advance(&p_ae, opp, pipeline::Stage::Proposed).await;
    opp = advance(&p_ae, opp, pipeline::Stage::Negotiating).await;
    let closed = p_ae
        .close_opportunity(pipeline::CloseOpportunityRequest {
            request_id: String::new(),
            opportunity_id: opp.opportunity_id.clone(),
            etag: opp.etag.clone(),
            won: true,
            lost_reason: String::new(),
            close_date: close_date.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(closed.stage, pipeline::Stage::ClosedWon as i32);
    closed.opportunity_id
}

/// (participant, role, amount) of a deal's credit entries, once they landed.
async fn credits_of(who: As<'_>, deal: &str) -> Vec<(String, i32, String)> {
    let mut c = who.credit().await;
    let credits = eventually("the deal's credits", Duration::from_secs(30), || {
        let mut c = c.clone();
        async move {
            c.get_deal_credits(credit::GetDealCreditsRequest {
                deal_id: deal.into(),
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().credits)
        }
    })
    .await;
    let mut out: Vec<(String, i32, String)> = credits
        .entries
        .iter()
        .map(|e| {
            (
                e.participant_id.clone(),
                e.role,
                e.amount.clone().unwrap().amount,
            )
        })
        .collect();
    out.sort();
    // Nothing more arrives later (a repeated delivery would add entries).
    let entries = c
        .list_ledger_entries(credit::ListLedgerEntriesRequest {
            deal_id: deal.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(entries.len(), out.len(), "{entries:?}");
    out
}

/// The month's USD `(cross-sell MRR, upsell MRR)`.
async fn month_usd(who: As<'_>, month: &str) -> (String, String) {
    let metrics = who
        .health()
        .await
        .get_revenue_metrics(health::GetRevenueMetricsRequest {
            month: month.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let usd = metrics.currencies.iter().find(|c| c.currency_code == "USD");
    let amount = |m: Option<&contracts::pb::common::v1::Money>| {
        m.map_or_else(|| "0.00".to_owned(), |m| m.amount.clone())
    };
    (
        amount(usd.and_then(|c| c.cross_sell_mrr.as_ref())),
        amount(usd.and_then(|c| c.upsell_mrr.as_ref())),
    )
}

async fn whitespace(who: As<'_>, account: &str) -> Vec<String> {
    who.pipeline()
        .await
        .get_whitespace(pipeline::GetWhitespaceRequest {
            account_id: account.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .whitespace
        .into_iter()
        .map(|w| w.product_id)
        .collect()
}

async fn story(at: &Services<'_>, keys: &Keys) {
    fn who<'a>(at: &'a Services<'a>, key: &'a Option<String>) -> As<'a> {
        As {
            at,
            key: key.as_deref(),
        }
    }
    let (connector, csm, ae, revops, admin) = (
        who(at, &keys.connector),
        who(at, &keys.csm),
        who(at, &keys.ae),
        who(at, &keys.revops),
        who(at, &keys.admin),
    );
    let today = Utc::now().date_naive();
    let today_text = today.format("%Y-%m-%d").to_string();
    let month = format!("{:04}-{:02}", today.year(), today.month());
    admin
        .credit()
        .await
        .upsert_credit_policy(credit::UpsertCreditPolicyRequest {
            request_id: String::new(),
            policy: Some(credit::CreditPolicy {
                effective_date: "2026-01-01".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    // The people directory: the CSM who originates and the AE who closes.
    for (person, role, team) in [
        ("carla.csm", credit::PersonRole::Csm, "customer-success"),
        ("alex.ae", credit::PersonRole::Ae, "enterprise-sales"),
    ] {
        admin
            .credit()
            .await
            .upsert_person(credit::UpsertPersonRequest {
                request_id: String::new(),
                person: Some(credit::Person {
                    person_id: person.into(),
                    display_name: person.into(),
                    role: role as i32,
                    team: team.into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let p = portfolio(connector).await;
    assert_eq!(
        whitespace(revops, &p.account).await,
        vec![p.analytics.clone()]
    );
    assert_eq!(
        month_usd(revops, &month).await,
        ("0.00".to_owned(), "0.00".to_owned())
    );

    // 1. Signals: heavy, satisfied use of Storage, at 92% of its capacity,
    //    and its data exported to another tool.
    use health::SignalKind as K;
    connector
        .health()
        .await
        .record_signals(health::RecordSignalsRequest {
            request_id: String::new(),
            signals: vec![
                signal(&p, &p.storage, K::Usage, "92", "100", "story-usage"),
                signal(&p, &p.storage, K::ActiveUsers, "95", "100", "story-seats"),
                signal(&p, "", K::Nps, "9", "", "story-nps"),
                signal(&p, "", K::Csat, "5", "", "story-csat"),
                signal(&p, &p.storage, K::Login, "60", "", "story-logins"),
                signal(&p, &p.storage, K::DataExport, "3", "", "story-export"),
            ],
        })
        .await
        .unwrap();
    let mut h = csm.health().await;
    let band = h
        .get_account_health(health::GetAccountHealthRequest {
            account_id: p.account.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .health
        .unwrap()
        .overall
        .unwrap()
        .band;
    assert_eq!(band, HealthBand::Green as i32);

    // 2. The capacity trigger fired, READY on a GREEN account.
    let capacity = trigger(csm, &p.account, health::TriggerKind::UsageCapacity).await;
    assert_eq!(capacity.status, health::TriggerStatus::Ready as i32);
    assert_eq!(capacity.product_id, p.storage);
    assert_eq!(capacity.priority, health::TriggerPriority::High as i32);
    let export = trigger(csm, &p.account, health::TriggerKind::DataExport).await;
    assert_eq!(export.status, health::TriggerStatus::Ready as i32);

    // 3. The CSM turns them into opportunities.
    // On an open server everyone is `local`: name the originator. With keys
    // it defaults to the caller, the CSM.
    let originator_field = if csm.key.is_some() {
        String::new()
    } else {
        "carla.csm".to_owned()
    };
    let mut pipe = csm.pipeline().await;
    let upsell = pipe
        .create_opportunity_from_trigger(pipeline::CreateOpportunityFromTriggerRequest {
            trigger_id: capacity.trigger_id.clone(),
            amount: usd("60000.00"),
            close_date: today_text.clone(),
            owner: "carla.csm".into(),
            originator: originator_field.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(upsell.motion, Motion::UpsellCapacity as i32);
    assert_eq!(upsell.product_id, p.storage);
    assert_eq!(upsell.stage, pipeline::Stage::Identified as i32);
    assert_eq!(
        upsell.source.as_ref().map(|s| s.trigger_id.as_str()),
        Some(capacity.trigger_id.as_str())
    );
    let cross_sell = pipe
        .create_opportunity_from_trigger(pipeline::CreateOpportunityFromTriggerRequest {
            trigger_id: export.trigger_id.clone(),
            product_id: p.analytics.clone(),
            amount: usd("36000.00"),
            close_date: today_text.clone(),
            owner: "carla.csm".into(),
            originator: originator_field.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(cross_sell.motion, Motion::CrossSellAdjacent as i32);
    assert_eq!(cross_sell.product_id, p.analytics);
    assert_eq!(cross_sell.source_product_id, p.storage);

    // 4–6. Handoff, gates, close won.
    assert_eq!(upsell.originator, "carla.csm");
    let upsell_id = work_to_won(csm, ae, upsell, &today_text).await;
    let cross_sell_id = work_to_won(csm, ae, cross_sell, &today_text).await;

    // 7. Credits: 25% CSM origination, 75% AE delivery, 5% account-team overlay.
    let team = format!("account-team:{}", p.account);
    let (originator, delivery, overlay) = (
        credit::CreditRole::Originator as i32,
        credit::CreditRole::Delivery as i32,
        credit::CreditRole::Overlay as i32,
    );
    let mut expected = vec![
        (team.clone(), overlay, "3000.00".to_owned()),
        ("alex.ae".to_owned(), delivery, "45000.00".to_owned()),
        ("carla.csm".to_owned(), originator, "15000.00".to_owned()),
    ];
    expected.sort();
    assert_eq!(credits_of(revops, &upsell_id).await, expected);
    let mut expected = vec![
        (team, overlay, "1800.00".to_owned()),
        ("alex.ae".to_owned(), delivery, "27000.00".to_owned()),
        ("carla.csm".to_owned(), originator, "9000.00".to_owned()),
    ];
    expected.sort();
    assert_eq!(credits_of(revops, &cross_sell_id).await, expected);

    // 8. Health books each deal as its motion means: the capacity upsell amends
    //    the Storage contract the account holds ($2,000 + $60,000 / 12), the
    //    cross-sell is a new Analytics subscription ($36,000 / 12).
    let subscriptions = eventually("the won deals in health", Duration::from_secs(30), || {
        let mut h = h.clone();
        let account = p.account.clone();
        let storage = p.storage.clone();
        async move {
            let subs = h
                .list_subscriptions(health::ListSubscriptionsRequest {
                    account_id: account,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .subscriptions;
            let upsold = subs
                .iter()
                .any(|s| s.product_id == storage && s.mrr == usd("7000.00"));
            (subs.len() == 2 && upsold).then_some(subs)
        }
    })
    .await;
    let grown = subscriptions
        .iter()
        .find(|s| s.product_id == p.storage)
        .unwrap();
    assert_eq!(
        grown.source_opportunity_id, "",
        "an upsell creates no subscription"
    );
    assert_eq!(grown.tier, "STARTER", "a capacity upsell keeps the tier");
    let won = subscriptions
        .iter()
        .find(|s| s.source_opportunity_id == cross_sell_id)
        .unwrap_or_else(|| panic!("no subscription from {cross_sell_id}: {subscriptions:?}"));
    assert_eq!(won.product_id, p.analytics);
    assert_eq!(won.mrr, usd("3000.00"));
    assert_eq!(won.start_date, today_text);

    // 9. Analytics is owned now: no whitespace left. The new Analytics contract
    //    is this month's cross-sell MRR by the seed's rule; the Storage
    //    amendment is upsell MRR, never cross-sell.
    assert_eq!(whitespace(revops, &p.account).await, Vec::<String>::new());
    assert_eq!(
        month_usd(revops, &month).await,
        ("3000.00".to_owned(), "5000.00".to_owned())
    );

    // Every delivery of both deals is DELIVERED, and shows on the opportunity.
    for deal in [&upsell_id, &cross_sell_id] {
        let statuses = eventually("deliveries", Duration::from_secs(30), || {
            let mut pipe = pipe.clone();
            let deal = deal.to_string();
            async move {
                let d = pipe
                    .get_opportunity(pipeline::GetOpportunityRequest {
                        opportunity_id: deal,
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .opportunity
                    .unwrap()
                    .deliveries;
                d.iter()
                    .all(|d| d.status == pipeline::DeliveryStatus::Delivered as i32)
                    .then_some(d)
            }
        })
        .await;
        let mut targets: Vec<&str> = statuses.iter().map(|d| d.target.as_str()).collect();
        targets.sort();
        // Both deals came from triggers: health heard of the conversion, then of
        // the win (which closes the trigger too); credit of the win.
        assert_eq!(targets, ["credit", "health", "health"]);
    }
}
