//! Replicas as Kubernetes runs them: two `serve` processes (every service
//! twice) on one PostgreSQL database, callers sending the same `request_id`
//! to both at once and retrying on the other replica, and one replica
//! killed with SIGKILL in the middle of closing deals, then restarted.
//!
//! What must hold: one effect and one answer per `request_id` (one
//! opportunity per create, one dispute per open), one credit set and one
//! subscription per won deal, one stage-change row and one `closed_won`
//! event per deal, and every delivery made soon after the restart.
//!
//! PostgreSQL only (SQLite is one process's embedded database). Runs once;
//! `EXPANSION_REPLICA_RUNS=20` repeats it (each run takes ~30 s).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use contracts::pb::common::v1::Motion;
use contracts::pb::credit::v1 as credit;
use contracts::pb::health::v1 as health;
use contracts::pb::pipeline::v1 as pipeline;
use sea_orm::{ConnectionTrait, Statement};

use crate::harness::{Backend, Server, usd};

/// Deals walked to NEGOTIATING, then closed won across the replicas.
const DEALS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_act_once_per_request() {
    let runs: usize = std::env::var("EXPANSION_REPLICA_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    for run in 1..=runs {
        let Some(backend) = Backend::postgres().await else {
            return;
        };
        let started = Instant::now();
        let recovery = scenario(&backend).await;
        eprintln!(
            "replica run {run}/{runs}: {:.1} s, restart → last delivery {:.2} s",
            started.elapsed().as_secs_f64(),
            recovery.as_secs_f64()
        );
    }
}

fn replica(backend: &Backend) -> Server {
    Server::start(backend, &[])
}

/// The opportunity a create or close answered with.
fn opportunity<T>(
    reply: Result<tonic::Response<T>, tonic::Status>,
    get: fn(T) -> Option<pipeline::Opportunity>,
) -> pipeline::Opportunity {
    get(reply.expect("call").into_inner()).expect("opportunity")
}

/// One scenario on a fresh database; returns the time from the killed
/// replica's restart to the last delivery.
async fn scenario(backend: &Backend) -> Duration {
    let a = replica(backend);
    let b = replica(backend);
    a.known_ae("alex.ae", "enterprise-sales").await;
    b.known_person("carla.csm", credit::PersonRole::Csm, "customer-success")
        .await;
    let refs = a.refs().await;
    let mut h = a.health().await;
    h.record_signals(health::RecordSignalsRequest {
        request_id: String::new(),
        signals: vec![health::Signal {
            account_id: refs.account.clone(),
            product_id: refs.held.clone(),
            kind: health::SignalKind::Usage as i32,
            value: "92".into(),
            limit: "100".into(),
            source: "telemetry".into(),
            external_id: "replica-usage".into(),
            ..Default::default()
        }],
    })
    .await
    .unwrap();
    wait_for_score(&a, &refs.account).await;

    // 1. One create with one request_id, sent to both replicas at once:
    //    one opportunity, the same answer twice.
    let mut products = Vec::new();
    for i in 0..DEALS {
        products.push(
            h.upsert_product(health::UpsertProductRequest {
                product: Some(health::Product {
                    name: format!("Replica product {i} {}", refs.account),
                    family: "test".into(),
                    tiers: vec!["STARTER".into()],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap()
            .product_id,
        );
    }
    let mut deals = Vec::new();
    for (i, product) in products.iter().enumerate() {
        let create = pipeline::CreateOpportunityRequest {
            request_id: format!("replica-create-{i}"),
            opportunity: Some(pipeline::Opportunity {
                account_id: refs.account.clone(),
                product_id: product.clone(),
                source_product_id: refs.held.clone(),
                motion: Motion::CrossSellAdjacent as i32,
                amount: usd("48000.00"),
                close_date: "2026-12-15".into(),
                owner: "carla.csm".into(),
                originator: "carla.csm".into(),
                stakeholders: vec![stakeholder()],
                qualification: Some(pipeline::Qualification {
                    need_confirmed: true,
                    budget_status: pipeline::BudgetStatus::Allocated as i32,
                    decision_process_known: true,
                    relationship_strength: 8,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            occur_time: None,
        };
        let (mut pa, mut pb) = (a.pipeline().await, b.pipeline().await);
        let (first, second) = tokio::join!(
            pa.create_opportunity(create.clone()),
            pb.create_opportunity(create.clone())
        );
        let first = opportunity(first, |r| r.opportunity);
        let second = opportunity(second, |r| r.opportunity);
        assert_eq!(first, second, "one request_id, one answer");
        deals.push(first);
    }
    let listed = a
        .pipeline()
        .await
        .list_opportunities(pipeline::ListOpportunitiesRequest {
            account_id: refs.account.clone(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunities;
    assert_eq!(listed.len(), DEALS, "one opportunity per create request_id");

    // 2. Each deal walked to NEGOTIATING, alternating replicas.
    for (i, deal) in deals.iter_mut().enumerate() {
        let server = if i % 2 == 0 { &a } else { &b };
        *deal = to_negotiation(server, deal.clone()).await;
    }

    // 3. Closing won: each close goes to both replicas at once with one
    //    request_id; replica B is killed while they run.
    let close = |deal: &pipeline::Opportunity| pipeline::CloseOpportunityRequest {
        request_id: format!("replica-close-{}", deal.opportunity_id),
        opportunity_id: deal.opportunity_id.clone(),
        etag: deal.etag.clone(),
        won: true,
        lost_reason: String::new(),
        close_date: "2026-11-20".into(),
    };
    let mut answers: BTreeMap<String, Vec<pipeline::Opportunity>> = BTreeMap::new();
    let mut calls = Vec::new();
    for deal in &deals {
        for server in [&a, &b] {
            let mut client = server.pipeline().await;
            let request = close(deal);
            calls.push(tokio::spawn(async move {
                (
                    request.opportunity_id.clone(),
                    client.close_opportunity(request).await,
                )
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    b.kill();
    for call in calls {
        let (id, reply) = call.await.unwrap();
        if let Ok(reply) = reply {
            answers
                .entry(id)
                .or_default()
                .push(reply.into_inner().opportunity.unwrap());
        }
    }
    let b = replica(backend);
    let restarted = Instant::now();
    // The callers B failed retry on A with the same request_id; every deal
    // is asked once more, on the restarted B as well.
    for deal in &deals {
        for server in [&a, &b] {
            let reply = server.pipeline().await.close_opportunity(close(deal)).await;
            answers
                .entry(deal.opportunity_id.clone())
                .or_default()
                .push(opportunity(reply, |r| r.opportunity));
        }
    }
    for (id, replies) in &answers {
        let first = &replies[0];
        assert_eq!(first.stage, pipeline::Stage::ClosedWon as i32, "{id}");
        for reply in replies {
            assert_eq!(reply, first, "one answer per request_id for {id}");
        }
    }

    // 4. Every deal's credits and subscription arrive, once.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut credit = a.credit().await;
    loop {
        let mut missing = 0;
        for deal in &deals {
            if credit
                .get_deal_credits(credit::GetDealCreditsRequest {
                    deal_id: deal.opportunity_id.clone(),
                })
                .await
                .is_err()
            {
                missing += 1;
            }
        }
        let subscriptions = subscriptions(&a, &refs.account).await;
        let subscribed: BTreeSet<&str> = deals
            .iter()
            .filter(|d| subscriptions.iter().any(|s| s.product_id == d.product_id))
            .map(|d| d.opportunity_id.as_str())
            .collect();
        if missing == 0 && subscribed.len() == DEALS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} deals without credits, {} without a subscription",
            DEALS - subscribed.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovery = restarted.elapsed();
    // Give a late duplicate the chance to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let subscriptions = subscriptions(&a, &refs.account).await;
    for deal in &deals {
        let of_deal = subscriptions
            .iter()
            .filter(|s| s.product_id == deal.product_id)
            .count();
        assert_eq!(
            of_deal, 1,
            "one subscription for deal {}",
            deal.opportunity_id
        );
        let credits = credit
            .get_deal_credits(credit::GetDealCreditsRequest {
                deal_id: deal.opportunity_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .credits
            .unwrap();
        let mut seen = BTreeSet::new();
        for entry in credits
            .entries
            .iter()
            .filter(|e| e.kind == credit::EntryKind::Credit as i32)
        {
            assert!(
                seen.insert((entry.participant_id.clone(), entry.role)),
                "one credit per participant and type for {}",
                deal.opportunity_id
            );
        }
        assert!(!seen.is_empty());
    }

    // 5. One stage change to CLOSED_WON and one closed_won event per deal,
    //    straight from the tables.
    let db = backend.connect("pipeline").await;
    for (table, filter) in [
        (
            "opportunity_history",
            "field = 'stage' AND new_value = 'CLOSED_WON'",
        ),
        (
            "pipeline_events",
            "event_type = 'pipeline.opportunity.closed_won'",
        ),
    ] {
        let counts = counts_by_subject(&db, table, filter).await;
        for deal in &deals {
            assert_eq!(
                counts.get(&deal.opportunity_id).copied().unwrap_or(0),
                1,
                "{table}: one row for {}",
                deal.opportunity_id
            );
        }
    }

    // 6. Disputes: one request_id on both replicas opens one dispute; two
    //    opens of one entry without a request_id open one.
    let entries = credit
        .get_deal_credits(credit::GetDealCreditsRequest {
            deal_id: deals[0].opportunity_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credits
        .unwrap()
        .entries;
    let open = |entry: &credit::LedgerEntry, request_id: &str| credit::OpenDisputeRequest {
        request_id: request_id.into(),
        entry_id: entry.entry_id.clone(),
        reason: "the split looks wrong".into(),
    };
    let (mut ca, mut cb) = (a.credit().await, b.credit().await);
    let (first, second) = tokio::join!(
        ca.open_dispute(open(&entries[0], "replica-dispute")),
        cb.open_dispute(open(&entries[0], "replica-dispute"))
    );
    assert_eq!(
        first.unwrap().into_inner().dispute,
        second.unwrap().into_inner().dispute,
        "one request_id, one dispute"
    );
    let (first, second) = tokio::join!(
        ca.open_dispute(open(&entries[1], "")),
        cb.open_dispute(open(&entries[1], ""))
    );
    let opened = [&first, &second].iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        opened, 1,
        "one open dispute per entry: {first:?} {second:?}"
    );
    for refused in [first, second].into_iter().filter_map(Result::err) {
        assert_eq!(
            refused.code(),
            tonic::Code::FailedPrecondition,
            "{refused:?}"
        );
    }
    recovery
}

fn stakeholder() -> pipeline::Stakeholder {
    pipeline::Stakeholder {
        name: "Dana".into(),
        role: "CFO".into(),
        budget_holder: true,
        decision_maker: true,
        ..Default::default()
    }
}

async fn wait_for_score(server: &Server, account: &str) {
    let mut h = server.health().await;
    for _ in 0..100 {
        let scored = h
            .get_account_health(health::GetAccountHealthRequest {
                account_id: account.into(),
            })
            .await
            .is_ok_and(|r| {
                r.into_inner()
                    .health
                    .and_then(|h| h.overall)
                    .is_some_and(|o| !o.score.is_empty())
            });
        if scored {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no score for {account}");
}

/// `deal` walked from IDENTIFIED to NEGOTIATING through a handoff to alex.ae.
async fn to_negotiation(server: &Server, mut deal: pipeline::Opportunity) -> pipeline::Opportunity {
    let mut p = server.pipeline().await;
    let advance =
        |deal: &pipeline::Opportunity, to: pipeline::Stage| pipeline::AdvanceStageRequest {
            opportunity_id: deal.opportunity_id.clone(),
            etag: deal.etag.clone(),
            to_stage: to as i32,
            ..Default::default()
        };
    for stage in [pipeline::Stage::Exploring, pipeline::Stage::Qualified] {
        deal = opportunity(p.advance_stage(advance(&deal, stage)).await, |r| {
            r.opportunity
        });
    }
    let handoff = p
        .request_handoff(pipeline::RequestHandoffRequest {
            request_id: String::new(),
            opportunity_id: deal.opportunity_id.clone(),
            package: Some(pipeline::HandoffPackage {
                discovery_summary: "needs the product".into(),
                pain_points: vec!["limits".into()],
                stakeholders: vec![stakeholder()],
                decision_process: "CFO signs".into(),
                budget_status: pipeline::BudgetStatus::Allocated as i32,
                timing: "this quarter".into(),
                competitive_landscape: "none".into(),
                joint_call_time: None,
            }),
            occur_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .handoff
        .unwrap();
    deal = opportunity(
        p.accept_handoff(pipeline::AcceptHandoffRequest {
            request_id: String::new(),
            handoff_id: handoff.handoff_id,
            owner: "alex.ae".into(),
            owner_team: "enterprise-sales".into(),
        })
        .await,
        |r| r.opportunity,
    );
    for stage in [pipeline::Stage::Proposed, pipeline::Stage::Negotiating] {
        deal = opportunity(p.advance_stage(advance(&deal, stage)).await, |r| {
            r.opportunity
        });
    }
    deal
}

async fn subscriptions(server: &Server, account: &str) -> Vec<health::Subscription> {
    server
        .health()
        .await
        .list_subscriptions(health::ListSubscriptionsRequest {
            account_id: account.into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions
}

/// Rows of `table` matching `filter`, counted by the opportunity they name.
async fn counts_by_subject(
    db: &sea_orm::DatabaseConnection,
    table: &str,
    filter: &str,
) -> BTreeMap<String, usize> {
    let subject = if table == "pipeline_events" {
        "subject_id"
    } else {
        "opportunity_id"
    };
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT {subject} AS subject, COUNT(*) AS n FROM {table} WHERE {filter} GROUP BY {subject}"),
        ))
        .await
        .unwrap();
    rows.into_iter()
        .map(|row| {
            let subject: String = row.try_get("", "subject").unwrap();
            let n: i64 = row.try_get("", "n").unwrap();
            (subject, usize::try_from(n).unwrap())
        })
        .collect()
}
