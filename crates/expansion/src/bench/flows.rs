//! `expansion bench flows`: the cross-service paths, all three services in
//! one process:
//! - `GetWhitespace` for an account in a portfolio of `--products` products
//!   (the pipeline's RPC to health included), beside the echo ceiling;
//! - close-won → credits visible in the ledger through the outbox: the time
//!   from the `CloseOpportunity` reply to the first `GetDealCredits` that
//!   finds the credits (polled every millisecond).

use std::time::{Duration, Instant};

use anyhow::Context;
use contracts::pb::common::v1::{Money, Motion, Segment};
use contracts::pb::credit::v1 as credit;
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use contracts::pb::health::v1 as health;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use contracts::pb::pipeline::v1 as pipeline;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_client::OpportunityPipelineServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::{closed_loop, databases, drop_databases, ms, percentile, start_server};
use crate::cli::FlowsBenchArgs;

fn usd(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount: amount.into(),
    })
}

/// An ENTERPRISE account owning `owned` of `products` products, with the
/// signals of a healthy customer. Returns the account id.
async fn portfolio(channel: &Channel, products: usize, owned: usize) -> anyhow::Result<String> {
    let mut h = AccountHealthServiceClient::new(channel.clone());
    let account = h
        .upsert_account(health::UpsertAccountRequest {
            name: "Bench Whitespace".into(),
            segment: Segment::Enterprise as i32,
            customer_since: "2024-01-01".into(),
            owner_csm: "carla.csm".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .account
        .context("account")?
        .account_id;
    let mut first = None;
    for i in 0..products {
        let product = h
            .upsert_product(health::UpsertProductRequest {
                request_id: String::new(),
                product: Some(health::Product {
                    name: format!("Product {i:03}"),
                    family: format!("family-{}", i % 10),
                    tiers: vec!["STARTER".into(), "ENTERPRISE".into()],
                    fits_segments: vec![Segment::Enterprise as i32],
                    adjacencies: first
                        .iter()
                        .map(|core: &String| health::ProductAdjacency {
                            product_id: core.clone(),
                            adjacency: health::Adjacency::Adjacent as i32,
                        })
                        .collect(),
                    wallet_estimates: vec![health::SegmentWallet {
                        segment: Segment::Enterprise as i32,
                        annual_wallet: usd("50000"),
                    }],
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .product
            .context("product")?
            .product_id;
        if i < owned {
            h.upsert_subscription(health::UpsertSubscriptionRequest {
                subscription: Some(health::Subscription {
                    account_id: account.clone(),
                    product_id: product.clone(),
                    tier: "STARTER".into(),
                    mrr: usd("1000.00"),
                    start_date: "2024-02-01".into(),
                    quantity: 1,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?;
        }
        first.get_or_insert(product);
    }
    let at = Some(contracts::wire::timestamp(
        chrono::Utc::now() - chrono::Duration::hours(1),
    ));
    let product = first.unwrap_or_default();
    let signal =
        |kind: health::SignalKind, product: &str, value: &str, limit: &str| health::Signal {
            account_id: account.clone(),
            product_id: product.into(),
            kind: kind as i32,
            value: value.into(),
            limit: limit.into(),
            occur_time: at,
            source: "bench".into(),
            external_id: format!("flows-{}", kind as i32),
            detail: String::new(),
        };
    h.record_signals(health::RecordSignalsRequest {
        request_id: String::new(),
        signals: vec![
            signal(health::SignalKind::Usage, &product, "92", "100"),
            signal(health::SignalKind::ActiveUsers, &product, "95", "100"),
            signal(health::SignalKind::Nps, "", "9", ""),
            signal(health::SignalKind::Csat, "", "5", ""),
            signal(health::SignalKind::Login, &product, "60", ""),
        ],
    })
    .await?;
    Ok(account)
}

/// One deal from creation to CLOSED_WON through a handoff; returns the
/// opportunity id once the close has been answered.
async fn win_one(
    p: &mut OpportunityPipelineServiceClient<Channel>,
    account: &str,
    product: &str,
) -> anyhow::Result<String> {
    let stakeholder = pipeline::Stakeholder {
        name: "Dana".into(),
        role: "CFO".into(),
        budget_holder: true,
        decision_maker: true,
        ..Default::default()
    };
    let mut opp = p
        .create_opportunity(pipeline::CreateOpportunityRequest {
            request_id: String::new(),
            opportunity: Some(pipeline::Opportunity {
                account_id: account.into(),
                product_id: product.into(),
                motion: Motion::UpsellCapacity as i32,
                amount: usd("120000.00"),
                close_date: chrono::Utc::now().date_naive().to_string(),
                owner: "carla.csm".into(),
                originator: "carla.csm".into(),
                stakeholders: vec![stakeholder.clone()],
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
        })
        .await?
        .into_inner()
        .opportunity
        .context("opportunity")?;
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
            .await?
            .into_inner()
            .opportunity
            .context("opportunity")?;
    }
    let handoff = p
        .request_handoff(pipeline::RequestHandoffRequest {
            request_id: String::new(),
            opportunity_id: opp.opportunity_id.clone(),
            package: Some(pipeline::HandoffPackage {
                discovery_summary: "at 92% of capacity".into(),
                pain_points: vec!["limits".into()],
                stakeholders: vec![stakeholder],
                decision_process: "CFO signs".into(),
                budget_status: pipeline::BudgetStatus::Allocated as i32,
                timing: "this quarter".into(),
                competitive_landscape: "none".into(),
                joint_call_time: None,
            }),
            occur_time: None,
        })
        .await?
        .into_inner()
        .handoff
        .context("handoff")?;
    opp = p
        .accept_handoff(pipeline::AcceptHandoffRequest {
            request_id: String::new(),
            handoff_id: handoff.handoff_id,
            owner: "alex.ae".into(),
            owner_team: "enterprise-sales".into(),
        })
        .await?
        .into_inner()
        .opportunity
        .context("opportunity")?;
    for stage in [pipeline::Stage::Proposed, pipeline::Stage::Negotiating] {
        opp = p
            .advance_stage(advance(&opp, stage))
            .await?
            .into_inner()
            .opportunity
            .context("opportunity")?;
    }
    p.close_opportunity(pipeline::CloseOpportunityRequest {
        request_id: String::new(),
        opportunity_id: opp.opportunity_id.clone(),
        etag: opp.etag.clone(),
        won: true,
        lost_reason: String::new(),
        close_date: chrono::Utc::now().date_naive().to_string(),
    })
    .await?;
    Ok(opp.opportunity_id)
}

pub async fn flows(args: FlowsBenchArgs) -> anyhow::Result<()> {
    let dbs = databases(args.postgres_admin_url.as_deref(), &["flows"]).await?;
    println!(
        "cross-service flows on {}, all three services in one process",
        dbs.backend()
    );
    let (server, addr) = start_server(&dbs.urls[0], &[])?;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let account = portfolio(&channel, args.products, args.owned).await?;
    let product = AccountHealthServiceClient::new(channel.clone())
        .list_subscriptions(health::ListSubscriptionsRequest {
            account_id: account.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .subscriptions
        .first()
        .map(|s| s.product_id.clone())
        .context("an owned product")?;

    // Whitespace, beside the echo ceiling at the same concurrency.
    let duration = Duration::from_secs(args.seconds);
    let whitespace = OpportunityPipelineServiceClient::new(channel.clone());
    let size = whitespace
        .clone()
        .get_whitespace(pipeline::GetWhitespaceRequest {
            account_id: account.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .whitespace
        .len();
    println!(
        "GetWhitespace: {} products, {} owned, {size} in the whitespace; concurrency {}",
        args.products, args.owned, args.concurrency
    );
    let echo_client = HealthClient::new(channel.clone());
    let echo = closed_loop(args.concurrency, duration, move |_, _| {
        let mut c = echo_client.clone();
        async move {
            c.check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_ok()
        }
    })
    .await;
    echo.print("echo (grpc.health.v1 Check, same stack)");
    let target = account.clone();
    let load = closed_loop(args.concurrency, duration, move |_, _| {
        let mut c = whitespace.clone();
        let account_id = target.clone();
        async move {
            c.get_whitespace(pipeline::GetWhitespaceRequest {
                account_id,
                ..Default::default()
            })
            .await
            .is_ok_and(|r| r.into_inner().whitespace.len() == size)
        }
    })
    .await;
    load.print("GetWhitespace (with its RPC to health)");
    println!(
        "GetWhitespace p99 {:.2} ms (goal <= 5 ms); throughput / echo {:.2}",
        ms(load.p99()),
        load.rate() / echo.rate()
    );

    // Close-won → credits in the ledger, one deal at a time.
    CompensationCreditServiceClient::new(channel.clone())
        .upsert_credit_policy(credit::UpsertCreditPolicyRequest {
            request_id: String::new(),
            policy: Some(credit::CreditPolicy {
                effective_date: "2024-01-01".into(),
                ..Default::default()
            }),
        })
        .await?;
    let mut p = OpportunityPipelineServiceClient::new(channel.clone());
    let mut c = CompensationCreditServiceClient::new(channel.clone());
    let mut delays = Vec::with_capacity(args.deals);
    for _ in 0..args.deals {
        let deal = win_one(&mut p, &account, &product).await?;
        let closed = Instant::now();
        let deadline = closed + Duration::from_secs(30);
        loop {
            let found = c
                .get_deal_credits(credit::GetDealCreditsRequest {
                    deal_id: deal.clone(),
                })
                .await
                .is_ok_and(|r| r.into_inner().credits.is_some_and(|d| d.entries.len() == 3));
            if found {
                delays.push(closed.elapsed());
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "no credits for {deal} in 30 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    delays.sort();
    println!(
        "close-won → credits visible: {} deals, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 <= 100 ms)",
        delays.len(),
        ms(percentile(&delays, 0.5)),
        ms(percentile(&delays, 0.99)),
        ms(delays.last().copied().unwrap_or_default()),
    );
    if let Some(mib) = server.peak_rss_mib() {
        println!("server peak RSS: {mib:.1} MiB");
    }
    drop(server);
    drop_databases(dbs).await
}
