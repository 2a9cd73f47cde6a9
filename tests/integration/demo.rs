//! `expansion serve --demo` loads the sample dataset through the API, and
//! `expansion demo` run again changes nothing.

use std::process::Command;
use std::time::Duration;

use contracts::pb::credit::v1 as credit;
use contracts::pb::health::v1 as health;
use contracts::pb::pipeline::v1 as pipeline;

use crate::harness::{Backend, Server, binary};
use crate::on_both_databases;

on_both_databases!(demo_data_is_realistic_and_idempotent);

/// The demo's won deals (the outbox credits each).
const WON_DEALS: usize = 5;

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn months_ago(n: u32) -> domain::Month {
    let mut m = domain::Month::containing(today()).unwrap();
    for _ in 0..n {
        m = m.previous().unwrap();
    }
    m
}

/// The distinct months in `from..=to` of each account's first subscription
/// start, read back through `ListSubscriptions`: the cohorts a user expects.
/// (The demo's dates are days before today, so which months they fall in
/// moves with the calendar.)
async fn first_subscription_months(
    server: &Server,
    from: domain::Month,
    to: domain::Month,
) -> Vec<String> {
    let mut h = server.health().await;
    let mut first: std::collections::BTreeMap<String, String> = Default::default();
    let mut page_token = String::new();
    loop {
        let page = h
            .list_subscriptions(health::ListSubscriptionsRequest {
                page_size: 100,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for s in page.subscriptions {
            let start = first.entry(s.account_id).or_insert(s.start_date.clone());
            if s.start_date < *start {
                *start = s.start_date;
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let months: std::collections::BTreeSet<String> = first
        .values()
        .map(|start| start[..7].to_string())
        .filter(|month| *month >= from.to_string() && *month <= to.to_string())
        .collect();
    months.into_iter().collect()
}

async fn opportunities(server: &Server) -> Vec<pipeline::Opportunity> {
    server
        .pipeline()
        .await
        .list_opportunities(pipeline::ListOpportunitiesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .opportunities
}

/// Right after `serve --demo` starts (the load done): deals stalled in
/// their stage, a handoff past its SLA, months of health history per account
/// and a cycle time of weeks — the demo's past, stamped with `occur_time`
/// and scored from its past signals.
async fn the_demo_has_a_past(server: &Server, loaded: &[pipeline::Opportunity]) {
    let mut p = server.pipeline().await;
    let stalled = p
        .list_opportunities(pipeline::ListOpportunitiesRequest {
            stalled_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunities;
    let names: Vec<&str> = stalled.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with("— identified")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("— exploring")),
        "{names:?}"
    );
    assert!(stalled.iter().all(|o| o.stalled && o.days_in_stage > 30));
    let overdue = p
        .list_handoffs(pipeline::ListHandoffsRequest {
            overdue_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .handoffs;
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert!(overdue[0].overdue);
    assert_eq!(overdue[0].status, pipeline::HandoffStatus::Requested as i32);
    let proposed = loaded
        .iter()
        .find(|o| o.name.ends_with("— proposed"))
        .unwrap();
    assert_eq!(overdue[0].opportunity_id, proposed.opportunity_id);
    let forecast = p
        .get_pipeline_forecast(pipeline::GetPipelineForecastRequest {
            currency_code: "USD".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let cycle: rust_decimal::Decimal = forecast.forecasts[0].avg_cycle_days.parse().unwrap();
    assert!(cycle > rust_decimal::Decimal::from(7), "{cycle}");

    // Every account has months of health history: a point at each of the
    // last month ends it has readings for, and the score of now.
    let mut h = server.health().await;
    let accounts = h
        .list_accounts(health::ListAccountsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .accounts;
    for account in &accounts {
        let points = h
            .get_health_history(health::GetHealthHistoryRequest {
                account_id: account.account_id.clone(),
                page_size: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .points;
        let months: std::collections::BTreeSet<(i32, u32)> = points
            .iter()
            .filter(|p| p.has_score)
            .map(|p| {
                let t = p.compute_time.unwrap();
                let at = chrono::DateTime::from_timestamp(t.seconds, 0).unwrap();
                (chrono::Datelike::year(&at), chrono::Datelike::month(&at))
            })
            .collect();
        // Readings every four weeks back to 173 days ago (five or six month
        // ends), fewer for the youngest: Kramerica (150 days), Bluth (75).
        let least = match account.name.as_str() {
            "Bluth Homes" => 2,
            "Kramerica" => 4,
            _ => 5,
        };
        assert!(
            months.len() >= least,
            "{}: {} months of history: {months:?}",
            account.name,
            months.len()
        );
    }
}

async fn demo_data_is_realistic_and_idempotent(backend: Backend) {
    let server = Server::start(&backend, &["--demo"]);
    // The load runs beside the server; wait for its last step (credits).
    let mut loaded = Vec::new();
    for _ in 0..300 {
        loaded = opportunities(&server).await;
        if loaded
            .iter()
            .filter(|o| o.stage == pipeline::Stage::ClosedWon as i32)
            .count()
            == WON_DEALS
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stages: std::collections::BTreeSet<i32> = loaded.iter().map(|o| o.stage).collect();
    assert_eq!(stages.len(), 7, "an opportunity at every stage: {stages:?}");
    the_demo_has_a_past(&server, &loaded).await;
    let mut statement = None;
    for _ in 0..100 {
        let reply = server
            .credit()
            .await
            .get_statement(credit::GetStatementRequest {
                participant_id: "carla.csm".into(),
                start_date: (today() - chrono::Duration::days(365)).to_string(),
                end_date: (today() + chrono::Duration::days(1)).to_string(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        if !reply.entries.is_empty() {
            statement = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Carla originated the $500K won deal: 25% origination.
    let closing = statement.unwrap().currencies[0]
        .closing_balance
        .clone()
        .unwrap();
    assert_eq!(closing.amount, "125000.00");

    let mut h = server.health().await;
    let accounts = h
        .list_accounts(health::ListAccountsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .accounts;
    assert_eq!(accounts.len(), 12);
    let acme = accounts.iter().find(|a| a.name == "Acme Corp").unwrap();
    let whitespace = server
        .pipeline()
        .await
        .get_whitespace(pipeline::GetWhitespaceRequest {
            account_id: acme.account_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let summary = &whitespace.summaries[0];
    assert_eq!(summary.share_of_wallet, "0.2875");
    let ready = h
        .list_triggers(health::ListTriggersRequest {
            statuses: vec![health::TriggerStatus::Ready as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .triggers;
    assert!(
        ready
            .iter()
            .any(|t| t.kind == health::TriggerKind::UsageCapacity as i32)
    );

    // The won upsells amend contracts the accounts hold: the month they close in
    // (the demo closes them today) shows upsell MRR, and every month of the
    // last year ties out.
    let mut upsell = String::new();
    for _ in 0..100 {
        let now = h
            .get_revenue_metrics(health::GetRevenueMetricsRequest {
                month: months_ago(0).to_string(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        upsell = now
            .currencies
            .iter()
            .filter_map(|c| c.upsell_mrr.as_ref())
            .map(|m| m.amount.clone())
            .find(|a| !a.trim_start_matches(['0', '.']).is_empty())
            .unwrap_or_default();
        if !upsell.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!upsell.is_empty(), "no upsell MRR this month");
    let minor = |m: Option<&contracts::pb::common::v1::Money>| -> i64 {
        let m = m.unwrap();
        let d: rust_decimal::Decimal = m.amount.parse().unwrap();
        i64::try_from(d * rust_decimal::Decimal::from(100)).unwrap()
    };
    let mut month = domain::Month::containing(chrono::Utc::now().date_naive()).unwrap();
    for _ in 0..13 {
        let m = h
            .get_revenue_metrics(health::GetRevenueMetricsRequest {
                month: month.to_string(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for c in &m.currencies {
            assert_eq!(
                minor(c.closing_mrr.as_ref()),
                minor(c.opening_mrr.as_ref())
                    + minor(c.new_mrr.as_ref())
                    + minor(c.cross_sell_mrr.as_ref())
                    + minor(c.upsell_mrr.as_ref())
                    - minor(c.contraction_mrr.as_ref())
                    - minor(c.churned_mrr.as_ref()),
                "{month} {} does not tie: {c:?}",
                c.currency_code
            );
        }
        month = month.previous().unwrap();
    }

    // Customers acquired over two years: a cohort in most months of them, the
    // oldest grown since (Globex's upsell, Acme's cross-sell and upsell).
    let cohorts = h
        .get_cohort_revenue(health::GetCohortRevenueRequest {
            start_month: months_ago(23).to_string(),
            end_month: months_ago(0).to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cohorts;
    let labels: Vec<&str> = cohorts.iter().map(|c| c.cohort.as_str()).collect();
    let expected = first_subscription_months(&server, months_ago(23), months_ago(0)).await;
    assert_eq!(
        labels, expected,
        "cohorts by the month of each account's first start"
    );
    assert!(labels.len() >= 8, "{labels:?}");
    assert!(
        cohorts[0].cohort <= months_ago(22).to_string(),
        "{}",
        cohorts[0].cohort
    );
    let first = cohorts[0].periods.last().unwrap();
    let grown: rust_decimal::Decimal = first.mrr_since_acquisition.parse().unwrap();
    assert!(grown > rust_decimal::Decimal::ONE, "{first:?}");

    // Acme's share of wallet grows: 18.75% two years ago, 23.75% a year ago,
    // the seed's 28.75% today.
    let series = server
        .pipeline()
        .await
        .get_wallet_share_history(pipeline::GetWalletShareHistoryRequest {
            account_id: acme.account_id.clone(),
            start_month: months_ago(23).to_string(),
            end_month: months_ago(0).to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    let share = |i: usize| series.points[i].summaries[0].share_of_wallet.clone();
    assert_eq!(series.points.len(), 24);
    assert_eq!(
        (share(0), share(12), share(23)),
        ("0.1875".into(), "0.2375".into(), "0.2875".into())
    );

    // This month's team performance: five people, every deal closed.
    let performance = server
        .pipeline()
        .await
        .get_team_performance(pipeline::GetTeamPerformanceRequest::default())
        .await
        .unwrap()
        .into_inner();
    let people: Vec<&str> = performance
        .participants
        .iter()
        .map(|p| p.participant.as_str())
        .collect();
    assert_eq!(
        people,
        ["alex.ae", "carla.csm", "diego.csm", "mei.csm", "sam.ae"]
    );
    let total = performance.total.unwrap();
    assert_eq!((total.won, total.lost), (WON_DEALS as i64, 4));
    // This month's book is created as the demo loads; the older deals were
    // created when their history says.
    let this_month = |o: &pipeline::Opportunity| {
        let t = o.audit.as_ref().unwrap().create_time.unwrap();
        let created = chrono::DateTime::from_timestamp(t.seconds, 0).unwrap();
        domain::Month::containing(created.date_naive()) == domain::Month::containing(today())
    };
    let book = loaded.iter().filter(|o| this_month(o)).count();
    assert!(book >= 6, "{book}");
    assert_eq!(total.originated, book as i64);
    // Deals closed after weeks: a cycle time of days, not seconds.
    let cycle: rust_decimal::Decimal = total.avg_cycle_days.parse().unwrap();
    assert!(cycle > rust_decimal::Decimal::ONE, "{cycle}");

    // Loading again through the command changes nothing.
    let again = Command::new(binary())
        .args(["demo", "--target", &server.addr])
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(
        out.contains("12 accounts") && out.contains("0 new signals"),
        "{out}"
    );
    assert_eq!(opportunities(&server).await.len(), loaded.len());
}
