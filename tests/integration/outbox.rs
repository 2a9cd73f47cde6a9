//! Closing a deal won reaches the other services through the outbox: the
//! credits land in the ledger (25% CSM origination, 75% AE delivery, the
//! account-team overlay) and the subscription appears in health; cancelling
//! it claws the credits back. With the credit service down the delivery
//! waits, visible on the opportunity, and arrives once it is back, exactly
//! once, on SQLite and on PostgreSQL (three processes, three databases).

use std::time::Duration;

use contracts::pb::common::v1::{Motion, Segment};
use contracts::pb::credit::v1 as credit;
use contracts::pb::health::v1 as health;
use contracts::pb::pipeline::v1 as pipeline;

use crate::harness::{Backend, Server, usd};
use crate::on_both_databases;

on_both_databases!(close_won_credits_and_subscribes_then_cancel_claws_back);

/// A GREEN account with one product it subscribes to, then a $120K capacity
/// upsell of it walked to CLOSED_WON through a handoff (CSM carla → AE alex).
/// Returns the opportunity id and the account id.
/// A deal taken up to NEGOTIATING, its handoff accepted by alex.ae (whom the
/// people directory must know by then): `(opportunity, account)`.
async fn deal_in_negotiation(
    health_server: &Server,
    pipeline_server: &Server,
) -> (pipeline::Opportunity, String) {
    let mut h = health_server.health().await;
    let account = h
        .upsert_account(health::UpsertAccountRequest {
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: "outbox-acme".into(),
            }),
            name: "Outbox Acme".into(),
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
    let product = h
        .upsert_product(health::UpsertProductRequest {
            request_id: String::new(),
            product: Some(health::Product {
                name: "Storage".into(),
                tiers: vec!["STARTER".into(), "ENTERPRISE".into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap()
        .product_id;
    // The Storage contract the upsell grows.
    h.upsert_subscription(health::UpsertSubscriptionRequest {
        subscription: Some(health::Subscription {
            account_id: account.clone(),
            product_id: product.clone(),
            tier: "STARTER".into(),
            mrr: usd("2000.00"),
            start_date: "2025-02-01".into(),
            quota_limit: 100,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    h.record_signals(health::RecordSignalsRequest {
        request_id: String::new(),
        signals: vec![health::Signal {
            account_id: account.clone(),
            product_id: product.clone(),
            kind: health::SignalKind::Usage as i32,
            value: "92".into(),
            limit: "100".into(),
            source: "telemetry".into(),
            external_id: "outbox-usage".into(),
            ..Default::default()
        }],
    })
    .await
    .unwrap();

    // The gates read the account's score, which the health service computes
    // off the ingestion path: wait for it.
    for _ in 0..100 {
        let scored = h
            .get_account_health(health::GetAccountHealthRequest {
                account_id: account.clone(),
            })
            .await
            .is_ok_and(|r| {
                r.into_inner()
                    .health
                    .and_then(|h| h.overall)
                    .is_some_and(|o| !o.score.is_empty())
            });
        if scored {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut p = pipeline_server.pipeline().await;
    let mut opp = p
        .create_opportunity(pipeline::CreateOpportunityRequest {
            occur_time: None,
            request_id: String::new(),
            opportunity: Some(pipeline::Opportunity {
                account_id: account.clone(),
                product_id: product.clone(),
                motion: Motion::UpsellCapacity as i32,
                amount: usd("120000.00"),
                close_date: "2026-12-15".into(),
                owner: "carla.csm".into(),
                originator: "carla.csm".into(),
                stakeholders: vec![pipeline::Stakeholder {
                    name: "Dana".into(),
                    role: "CFO".into(),
                    budget_holder: true,
                    decision_maker: true,
                    ..Default::default()
                }],
                qualification: Some(pipeline::Qualification {
                    need_confirmed: true,
                    budget_status: pipeline::BudgetStatus::Allocated as i32,
                    decision_process_known: true,
                    relationship_strength: 8,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    let advance =
        |opp: &pipeline::Opportunity, to: pipeline::Stage| pipeline::AdvanceStageRequest {
            opportunity_id: opp.opportunity_id.clone(),
            etag: opp.etag.clone(),
            to_stage: to as i32,
            ..Default::default()
        };
    for stage in [pipeline::Stage::Exploring, pipeline::Stage::Qualified] {
        opp = p
            .advance_stage(advance(&opp, stage))
            .await
            .unwrap()
            .into_inner()
            .opportunity
            .unwrap();
    }
    let handoff = p
        .request_handoff(pipeline::RequestHandoffRequest {
            occur_time: None,
            request_id: String::new(),
            opportunity_id: opp.opportunity_id.clone(),
            package: Some(pipeline::HandoffPackage {
                discovery_summary: "storage at 92% of the plan".into(),
                pain_points: vec!["limits".into()],
                stakeholders: vec![pipeline::Stakeholder {
                    name: "Dana".into(),
                    role: "CFO".into(),
                    budget_holder: true,
                    decision_maker: true,
                    ..Default::default()
                }],
                decision_process: "CFO signs".into(),
                budget_status: pipeline::BudgetStatus::Allocated as i32,
                timing: "this quarter".into(),
                competitive_landscape: "none".into(),
                joint_call_time: None,
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .handoff
        .unwrap();
    opp = p
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
    for stage in [pipeline::Stage::Proposed, pipeline::Stage::Negotiating] {
        opp = p
            .advance_stage(advance(&opp, stage))
            .await
            .unwrap()
            .into_inner()
            .opportunity
            .unwrap();
    }
    (opp, account)
}

async fn close_won(pipeline_server: &Server, opp: &pipeline::Opportunity) {
    pipeline_server
        .pipeline()
        .await
        .close_opportunity(pipeline::CloseOpportunityRequest {
            request_id: String::new(),
            opportunity_id: opp.opportunity_id.clone(),
            etag: opp.etag.clone(),
            won: true,
            lost_reason: String::new(),
            close_date: "2026-11-20".into(),
        })
        .await
        .unwrap();
}

/// A won deal: `(opportunity id, account)`.
pub(crate) async fn win_a_deal(
    health_server: &Server,
    pipeline_server: &Server,
) -> (String, String) {
    let (opp, account) = deal_in_negotiation(health_server, pipeline_server).await;
    close_won(pipeline_server, &opp).await;
    (opp.opportunity_id, account)
}

pub(crate) async fn policy(server: &Server) {
    server
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
}

async fn deal_credits(server: &Server, deal: &str, wait: Duration) -> credit::DealCredits {
    let mut client = server.credit().await;
    let deadline = std::time::Instant::now() + wait;
    loop {
        match client
            .get_deal_credits(credit::GetDealCreditsRequest {
                deal_id: deal.into(),
            })
            .await
        {
            Ok(reply) => return reply.into_inner().credits.unwrap(),
            Err(status) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no credits for {deal}: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn amounts(credits: &credit::DealCredits) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = credits
        .entries
        .iter()
        .filter(|e| e.kind == credit::EntryKind::Credit as i32)
        .map(|e| (e.participant_id.clone(), e.amount.clone().unwrap().amount))
        .collect();
    out.sort();
    out
}

pub(crate) async fn deliveries(server: &Server, deal: &str) -> Vec<pipeline::OutboxDelivery> {
    server
        .pipeline()
        .await
        .get_opportunity(pipeline::GetOpportunityRequest {
            opportunity_id: deal.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap()
        .deliveries
}

async fn close_won_credits_and_subscribes_then_cancel_claws_back(backend: Backend) {
    let server = Server::start(&backend, &[]);
    policy(&server).await;
    server.known_ae("alex.ae", "enterprise-sales").await;
    server
        .known_person("carla.csm", credit::PersonRole::Csm, "customer-success")
        .await;
    let (deal, account) = win_a_deal(&server, &server).await;
    let credits = deal_credits(&server, &deal, Duration::from_secs(20)).await;
    let account_team = format!("account-team:{account}");
    assert_eq!(
        amounts(&credits),
        vec![
            (account_team, "6000.00".to_owned()),
            ("alex.ae".to_owned(), "90000.00".to_owned()),
            ("carla.csm".to_owned(), "30000.00".to_owned()),
        ]
    );
    // Each entry names the deal's account and product, as the opportunity keeps them.
    let names: std::collections::BTreeSet<(String, String)> = credits
        .entries
        .iter()
        .map(|e| (e.account_name.clone(), e.product_name.clone()))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(
        names.into_iter().next().unwrap(),
        ("Outbox Acme".to_owned(), "Storage".to_owned())
    );
    let mut seen = deliveries(&server, &deal).await;
    for _ in 0..50 {
        if seen
            .iter()
            .all(|d| d.status == pipeline::DeliveryStatus::Delivered as i32)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        seen = deliveries(&server, &deal).await;
    }
    let targets: Vec<(&str, i32)> = seen.iter().map(|d| (d.target.as_str(), d.status)).collect();
    assert_eq!(
        targets,
        vec![
            ("credit", pipeline::DeliveryStatus::Delivered as i32),
            ("health", pipeline::DeliveryStatus::Delivered as i32),
        ]
    );

    let subs = server
        .health()
        .await
        .list_subscriptions(health::ListSubscriptionsRequest {
            account_id: account.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    // The upsell amended the Storage contract: $2,000 + $120,000 / 12, no new
    // subscription.
    assert_eq!(subs.len(), 1, "{subs:?}");
    let won = &subs[0];
    assert_eq!(won.mrr, usd("12000.00"));
    assert_eq!(won.source_opportunity_id, "");

    // Cancelled ten days after the close, inside the 90-day window.
    server
        .health()
        .await
        .cancel_subscription(health::CancelSubscriptionRequest {
            request_id: String::new(),
            subscription_id: won.subscription_id.clone(),
            cancel_date: "2026-11-30".into(),
            reason: "consolidated vendors".into(),
            time_zone: String::new(),
        })
        .await
        .unwrap();
    let mut credit_client = server.credit().await;
    let mut clawed = Vec::new();
    for _ in 0..100 {
        clawed = credit_client
            .list_ledger_entries(credit::ListLedgerEntriesRequest {
                deal_id: deal.clone(),
                kind: credit::EntryKind::Clawback as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        if !clawed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!clawed.is_empty(), "the cancellation clawed nothing back");
    assert!(
        clawed
            .iter()
            .all(|e| e.amount.as_ref().unwrap().amount.starts_with('-'))
    );
}

/// Three processes, each on its own database; the credit service's port is
/// chosen now and served only after two deals have closed. Every credit
/// arrives once the service is up, exactly once: a `kill -9` of the credit
/// service and a restart bring no second delivery.
async fn credits_wait_for_a_stopped_credit_service_and_arrive_once(
    health_db: Backend,
    pipeline_db: Backend,
    credit_db: Backend,
) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let credit_addr = format!("127.0.0.1:{port}");
    let health_server = Server::start(&health_db, &["--service", "health"]);
    let pipeline_server = Server::start(
        &pipeline_db,
        &[
            "--service",
            "pipeline",
            "--health-addr",
            &health_server.addr,
            "--credit-addr",
            &credit_addr,
        ],
    );
    // The AE accepts the handoffs while credit (their directory) is up...
    let credit_server = Server::start_on(&credit_db, &credit_addr, &["--service", "credit"]);
    credit_server.known_ae("alex.ae", "enterprise-sales").await;
    credit_server
        .known_person("carla.csm", credit::PersonRole::Csm, "customer-success")
        .await;
    let mut negotiating = Vec::new();
    for _ in 0..2 {
        negotiating.push(
            deal_in_negotiation(&health_server, &pipeline_server)
                .await
                .0,
        );
    }
    // ...and the deals close won while it is stopped.
    credit_server.kill();
    let mut deals = Vec::new();
    for opp in &negotiating {
        close_won(&pipeline_server, opp).await;
        deals.push(opp.opportunity_id.clone());
    }

    // Health got its subscriptions; credit is down, so its deliveries wait.
    for deal in &deals {
        let mut waiting = Vec::new();
        for _ in 0..100 {
            waiting = deliveries(&pipeline_server, deal).await;
            let credit = waiting.iter().find(|d| d.target == "credit");
            if credit.is_some_and(|d| d.attempts >= 2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let credit = waiting.iter().find(|d| d.target == "credit").unwrap();
        assert_eq!(
            credit.status,
            pipeline::DeliveryStatus::Pending as i32,
            "{waiting:?}"
        );
        assert!(!credit.last_error.is_empty());
    }

    let credit_server = Server::start_on(&credit_db, &credit_addr, &["--service", "credit"]);
    policy(&credit_server).await;
    for deal in &deals {
        let credits = deal_credits(&credit_server, deal, Duration::from_secs(30)).await;
        assert_eq!(
            amounts(&credits).len(),
            3,
            "each participant credited exactly once"
        );
    }
    let ledger = |server: &Server| {
        let channel = server.url();
        async move {
            let mut client = credit::compensation_credit_service_client::CompensationCreditServiceClient::connect(channel)
                .await
                .unwrap();
            client
                .list_ledger_entries(credit::ListLedgerEntriesRequest {
                    page_size: 1000,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .entries
        }
    };
    let entries = ledger(&credit_server).await;
    assert_eq!(entries.len(), 3 * deals.len(), "{entries:?}");
    for deal in &deals {
        let mut status = Vec::new();
        for _ in 0..50 {
            status = deliveries(&pipeline_server, deal).await;
            if status
                .iter()
                .all(|d| d.status == pipeline::DeliveryStatus::Delivered as i32)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            status
                .iter()
                .all(|d| d.status == pipeline::DeliveryStatus::Delivered as i32),
            "{status:?}"
        );
    }

    // kill -9 and restart: nothing is delivered a second time.
    credit_server.kill();
    let credit_server = Server::start_on(&credit_db, &credit_addr, &["--service", "credit"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ledger(&credit_server).await, entries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_wait_for_a_stopped_credit_service_and_arrive_once_on_sqlite() {
    credits_wait_for_a_stopped_credit_service_and_arrive_once(
        Backend::sqlite(),
        Backend::sqlite(),
        Backend::sqlite(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_wait_for_a_stopped_credit_service_and_arrive_once_on_postgres() {
    let (Some(health), Some(pipeline), Some(credit)) = (
        Backend::postgres().await,
        Backend::postgres().await,
        Backend::postgres().await,
    ) else {
        return;
    };
    credits_wait_for_a_stopped_credit_service_and_arrive_once(health, pipeline, credit).await;
}
