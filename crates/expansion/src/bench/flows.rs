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

use super::{closed_loop, databases, drop_databases, ms, percentile, start_all_services};
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
    let account = enterprise_account(&mut h).await?;
    let mut first: Option<String> = None;
    for i in 0..products {
        let product = bench_product(&mut h, i, first.as_deref()).await?;
        if i < owned {
            subscribe(&mut h, &account, &product).await?;
        }
        first.get_or_insert(product);
    }
    record_healthy_signals(&mut h, &account, &first.unwrap_or_default()).await?;
    Ok(account)
}

/// The ENTERPRISE account the portfolio belongs to; its id.
async fn enterprise_account(h: &mut AccountHealthServiceClient<Channel>) -> anyhow::Result<String> {
    Ok(h.upsert_account(health::UpsertAccountRequest {
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
    .account_id)
}

/// Product `i` of the catalogue, adjacent to the `core` product (the first one) when
/// there is one; its id.
async fn bench_product(
    h: &mut AccountHealthServiceClient<Channel>,
    i: usize,
    core: Option<&str>,
) -> anyhow::Result<String> {
    Ok(h.upsert_product(health::UpsertProductRequest {
        request_id: String::new(),
        product: Some(health::Product {
            name: format!("Product {i:03}"),
            family: format!("family-{}", i % 10),
            tiers: vec!["STARTER".into(), "ENTERPRISE".into()],
            fits_segments: vec![Segment::Enterprise as i32],
            adjacencies: core
                .iter()
                .map(|core| health::ProductAdjacency {
                    product_id: (*core).to_owned(),
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
    .product_id)
}

/// A STARTER subscription of the account to the product.
async fn subscribe(
    h: &mut AccountHealthServiceClient<Channel>,
    account: &str,
    product: &str,
) -> anyhow::Result<()> {
    h.upsert_subscription(health::UpsertSubscriptionRequest {
        subscription: Some(health::Subscription {
            account_id: account.to_owned(),
            product_id: product.to_owned(),
            tier: "STARTER".into(),
            mrr: usd("1000.00"),
            start_date: "2024-02-01".into(),
            quantity: 1,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await?;
    Ok(())
}

/// The signals of a healthy customer, an hour old: high usage of `product`, good
/// NPS and CSAT.
async fn record_healthy_signals(
    h: &mut AccountHealthServiceClient<Channel>,
    account: &str,
    product: &str,
) -> anyhow::Result<()> {
    let at = Some(contracts::wire::timestamp(
        chrono::Utc::now() - chrono::Duration::hours(1),
    ));
    let signal =
        |kind: health::SignalKind, product: &str, value: &str, limit: &str| health::Signal {
            account_id: account.to_owned(),
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
            signal(health::SignalKind::Usage, product, "92", "100"),
            signal(health::SignalKind::ActiveUsers, product, "95", "100"),
            signal(health::SignalKind::Nps, "", "9", ""),
            signal(health::SignalKind::Csat, "", "5", ""),
            signal(health::SignalKind::Login, product, "60", ""),
        ],
    })
    .await?;
    Ok(())
}

type Pipeline = OpportunityPipelineServiceClient<Channel>;

/// One deal from creation to CLOSED_WON through a handoff; returns the
/// opportunity id once the close has been answered.
async fn win_one(p: &mut Pipeline, account: &str, product: &str) -> anyhow::Result<String> {
    let stakeholder = pipeline::Stakeholder {
        name: "Dana".into(),
        role: "CFO".into(),
        budget_holder: true,
        decision_maker: true,
        ..Default::default()
    };
    let opp = create_deal(p, account, product, &stakeholder).await?;
    let opp = advance_through(
        p,
        opp,
        [pipeline::Stage::Exploring, pipeline::Stage::Qualified],
    )
    .await?;
    let opp = hand_off(p, &opp, stakeholder).await?;
    let opp = advance_through(
        p,
        opp,
        [pipeline::Stage::Proposed, pipeline::Stage::Negotiating],
    )
    .await?;
    close_won(p, &opp).await?;
    Ok(opp.opportunity_id)
}

/// A qualified capacity upsell closing today, originated and owned by the CSM.
async fn create_deal(
    p: &mut Pipeline,
    account: &str,
    product: &str,
    stakeholder: &pipeline::Stakeholder,
) -> anyhow::Result<pipeline::Opportunity> {
    p.create_opportunity(pipeline::CreateOpportunityRequest {
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
    .context("opportunity")
}

/// Advances the opportunity through `stages`, in order; the opportunity after the last.
async fn advance_through(
    p: &mut Pipeline,
    mut opp: pipeline::Opportunity,
    stages: [pipeline::Stage; 2],
) -> anyhow::Result<pipeline::Opportunity> {
    for stage in stages {
        opp = p
            .advance_stage(pipeline::AdvanceStageRequest {
                opportunity_id: opp.opportunity_id.clone(),
                etag: opp.etag.clone(),
                to_stage: stage as i32,
                ..Default::default()
            })
            .await?
            .into_inner()
            .opportunity
            .context("opportunity")?;
    }
    Ok(opp)
}

/// Hands the opportunity to sales (a full package) and accepts it for the AE; the
/// opportunity as accepted.
async fn hand_off(
    p: &mut Pipeline,
    opp: &pipeline::Opportunity,
    stakeholder: pipeline::Stakeholder,
) -> anyhow::Result<pipeline::Opportunity> {
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
    p.accept_handoff(pipeline::AcceptHandoffRequest {
        request_id: String::new(),
        handoff_id: handoff.handoff_id,
        owner: "alex.ae".into(),
        owner_team: "enterprise-sales".into(),
    })
    .await?
    .into_inner()
    .opportunity
    .context("opportunity")
}

/// Closes the opportunity as won, today.
async fn close_won(p: &mut Pipeline, opp: &pipeline::Opportunity) -> anyhow::Result<()> {
    p.close_opportunity(pipeline::CloseOpportunityRequest {
        request_id: String::new(),
        opportunity_id: opp.opportunity_id.clone(),
        etag: opp.etag.clone(),
        won: true,
        lost_reason: String::new(),
        close_date: chrono::Utc::now().date_naive().to_string(),
    })
    .await?;
    Ok(())
}

pub async fn flows(args: FlowsBenchArgs) -> anyhow::Result<()> {
    let dbs = databases(args.postgres_admin_url.as_deref(), &["flows"]).await?;
    println!(
        "cross-service flows on {}, all three services in one process",
        dbs.backend()
    );
    let (server, addr) = start_all_services(&dbs, &[])?;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let account = portfolio(&channel, args.products, args.owned).await?;
    let product = owned_product(&channel, &account).await?;
    whitespace_beside_echo(&channel, &account, &args).await?;
    let delays = close_won_to_credits(&channel, &account, &product, args.deals).await?;
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

/// A product the account owns (the deals are sold on it).
async fn owned_product(channel: &Channel, account: &str) -> anyhow::Result<String> {
    AccountHealthServiceClient::new(channel.clone())
        .list_subscriptions(health::ListSubscriptionsRequest {
            account_id: account.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .subscriptions
        .first()
        .map(|s| s.product_id.clone())
        .context("an owned product")
}

/// `GetWhitespace` for the account under a closed loop, beside the echo ceiling at
/// the same concurrency, both reported.
async fn whitespace_beside_echo(
    channel: &Channel,
    account: &str,
    args: &FlowsBenchArgs,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs(args.seconds);
    let whitespace = OpportunityPipelineServiceClient::new(channel.clone());
    let size = whitespace
        .clone()
        .get_whitespace(pipeline::GetWhitespaceRequest {
            account_id: account.to_owned(),
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
    let target = account.to_owned();
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
    Ok(())
}

/// Close-won → credits in the ledger, one deal at a time under the default policy
/// with the deals' CSM and AE in the people directory: each deal's time from the
/// close's reply to its credits, sorted.
async fn close_won_to_credits(
    channel: &Channel,
    account: &str,
    product: &str,
    deals: usize,
) -> anyhow::Result<Vec<Duration>> {
    CompensationCreditServiceClient::new(channel.clone())
        .upsert_credit_policy(credit::UpsertCreditPolicyRequest {
            request_id: String::new(),
            policy: Some(credit::CreditPolicy {
                effective_date: "2024-01-01".into(),
                ..Default::default()
            }),
        })
        .await?;
    register_people(channel).await?;
    let mut p = OpportunityPipelineServiceClient::new(channel.clone());
    let mut c = CompensationCreditServiceClient::new(channel.clone());
    let mut delays = Vec::with_capacity(deals);
    for _ in 0..deals {
        let deal = win_one(&mut p, account, product).await?;
        delays.push(until_credited(&mut c, &deal).await?);
    }
    delays.sort();
    Ok(delays)
}

/// The people directory of the credit service, as a deployment has it before
/// its first handoff: the CSM who originates the deals and the AE who accepts
/// them (the pipeline asks it who may accept).
async fn register_people(channel: &Channel) -> anyhow::Result<()> {
    let mut c = CompensationCreditServiceClient::new(channel.clone());
    for (person, role, team) in [
        ("carla.csm", credit::PersonRole::Csm, "customer-success"),
        ("alex.ae", credit::PersonRole::Ae, "enterprise-sales"),
    ] {
        c.upsert_person(credit::UpsertPersonRequest {
            request_id: String::new(),
            person: Some(credit::Person {
                person_id: person.into(),
                display_name: person.into(),
                role: role as i32,
                team: team.into(),
                ..Default::default()
            }),
        })
        .await?;
    }
    Ok(())
}

/// How long after now the deal's three credits show in the ledger (polled every
/// millisecond, for 30 s at most).
async fn until_credited(
    c: &mut CompensationCreditServiceClient<Channel>,
    deal: &str,
) -> anyhow::Result<Duration> {
    let closed = Instant::now();
    let deadline = closed + Duration::from_secs(30);
    loop {
        let found = c
            .get_deal_credits(credit::GetDealCreditsRequest {
                deal_id: deal.to_owned(),
            })
            .await
            .is_ok_and(|r| r.into_inner().credits.is_some_and(|d| d.entries.len() == 3));
        if found {
            return Ok(closed.elapsed());
        }
        anyhow::ensure!(Instant::now() < deadline, "no credits for {deal} in 30 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
