//! The seeds' dashboards through the real binary, with numbers a reader can
//! check by hand: team performance (and who may read whose row), win rate by
//! product, revenue by acquisition cohort, and share of wallet over time.

use contracts::client::{AuthChannel, ClientOptions};
use contracts::pb::common::v1::{Motion, Segment};
use contracts::pb::credit::v1 as credit;
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use contracts::pb::health::v1 as health;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use contracts::pb::pipeline::v1 as pb;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_client::OpportunityPipelineServiceClient;
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{Backend, Server, create_key, usd};
use crate::on_both_databases;

on_both_databases!(
    team_performance_by_person_team_and_organisation,
    revenue_by_acquisition_cohort,
    share_of_wallet_over_time,
);

type Pipeline = OpportunityPipelineServiceClient<AuthChannel>;
type Health = AccountHealthServiceClient<AuthChannel>;

async fn channel(server: &Server, token: &str) -> AuthChannel {
    let key = (!token.is_empty()).then(|| token.to_owned());
    let options = ClientOptions::default().with_api_key(key);
    contracts::client::connect(&server.url(), &options)
        .await
        .expect("connect to the server")
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

#[track_caller]
fn denied<T: std::fmt::Debug>(result: Result<T, tonic::Status>, expected: &str) {
    let err = result.expect_err(expected);
    assert_eq!(err.code(), Code::PermissionDenied, "{expected}: {err:?}");
    assert_eq!(reason(&err), expected, "{err:?}");
}

#[track_caller]
fn invalid_field<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str) {
    let err = result.expect_err(field);
    assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
    let fields: Vec<String> = err
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    assert_eq!(fields, [field], "{err:?}");
}

async fn account(h: &mut Health, crm: &str, since: &str) -> String {
    h.upsert_account(health::UpsertAccountRequest {
        external_ref: Some(health::ExternalRef {
            system: "salesforce".into(),
            id: crm.into(),
        }),
        name: crm.into(),
        segment: Segment::Enterprise as i32,
        customer_since: since.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .account
    .unwrap()
    .account_id
}

async fn product(h: &mut Health, name: &str) -> String {
    h.upsert_product(health::UpsertProductRequest {
        product: Some(health::Product {
            name: name.into(),
            family: name.to_lowercase(),
            tiers: vec!["STARTER".into(), "PROFESSIONAL".into()],
            margin_percent: "70".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .product
    .unwrap()
    .product_id
}

/// A subscription with an MRR (major units) from `start`, amended to each
/// `(date, mrr)` of `amendments`.
async fn subscription(
    h: &mut Health,
    account: &str,
    product: &str,
    start: &str,
    mrr: &str,
    amendments: &[(&str, &str)],
) -> String {
    let mut sub = health::Subscription {
        account_id: account.into(),
        product_id: product.into(),
        tier: "STARTER".into(),
        mrr: usd(mrr),
        start_date: start.into(),
        ..Default::default()
    };
    let created = h
        .upsert_subscription(health::UpsertSubscriptionRequest {
            subscription: Some(sub.clone()),
            mrr_effective_date: start.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    sub.subscription_id = created.subscription_id.clone();
    for (date, mrr) in amendments {
        sub.mrr = usd(mrr);
        h.upsert_subscription(health::UpsertSubscriptionRequest {
            subscription: Some(sub.clone()),
            mrr_effective_date: (*date).into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    created.subscription_id
}

struct Deal<'a> {
    account: &'a str,
    product: &'a str,
    motion: Motion,
    amount: (&'a str, &'a str),
    originator: &'a str,
    handoff_to: Option<&'a str>,
    /// `Some(true)` won, `Some(false)` lost, `None` left open.
    close: Option<bool>,
}

/// Creates the deal as CS (owner = originator, team "cs"), hands it to
/// Sales if asked, walks it to NEGOTIATING when it is to be won, and closes it today.
async fn play(p: &mut Pipeline, d: Deal<'_>) {
    let mut o = p
        .create_opportunity(pb::CreateOpportunityRequest {
            opportunity: Some(pb::Opportunity {
                account_id: d.account.into(),
                product_id: d.product.into(),
                motion: d.motion as i32,
                amount: Some(contracts::pb::common::v1::Money {
                    currency_code: d.amount.0.into(),
                    amount: d.amount.1.into(),
                }),
                close_date: "2027-06-30".into(),
                owner: d.originator.into(),
                owner_team: "cs".into(),
                originator: d.originator.into(),
                qualification: Some(pb::Qualification {
                    need_confirmed: true,
                    budget_status: pb::BudgetStatus::Approved as i32,
                    decision_process_known: true,
                    relationship_strength: 9,
                    ..Default::default()
                }),
                stakeholders: vec![pb::Stakeholder {
                    name: "Dana".into(),
                    role: "CFO".into(),
                    decision_maker: true,
                    budget_holder: true,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    if let Some(ae) = d.handoff_to {
        let handoff = p
            .request_handoff(pb::RequestHandoffRequest {
                opportunity_id: o.opportunity_id.clone(),
                package: Some(pb::HandoffPackage {
                    discovery_summary: "Wants more".into(),
                    pain_points: vec!["limits".into()],
                    stakeholders: o.stakeholders.clone(),
                    decision_process: "CFO signs".into(),
                    budget_status: pb::BudgetStatus::Approved as i32,
                    timing: "this quarter".into(),
                    competitive_landscape: "none".into(),
                    joint_call_time: None,
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .handoff
            .unwrap();
        o = p
            .accept_handoff(pb::AcceptHandoffRequest {
                handoff_id: handoff.handoff_id,
                owner: ae.into(),
                owner_team: "sales".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .opportunity
            .unwrap();
    }
    let Some(won) = d.close else { return };
    if won {
        for stage in [
            pb::Stage::Exploring,
            pb::Stage::Qualified,
            pb::Stage::Proposed,
            pb::Stage::Negotiating,
        ] {
            o = p
                .advance_stage(pb::AdvanceStageRequest {
                    opportunity_id: o.opportunity_id.clone(),
                    etag: o.etag.clone(),
                    to_stage: stage as i32,
                    override_reason: "test book".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .opportunity
                .unwrap();
        }
    }
    p.close_opportunity(pb::CloseOpportunityRequest {
        opportunity_id: o.opportunity_id.clone(),
        etag: o.etag.clone(),
        won,
        lost_reason: if won {
            String::new()
        } else {
            "chose a competitor".into()
        },
        close_date: chrono::Utc::now().date_naive().to_string(),
        ..Default::default()
    })
    .await
    .unwrap();
}

fn this_month() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}

fn performance(participant: &str, team: &str) -> pb::GetTeamPerformanceRequest {
    pb::GetTeamPerformanceRequest {
        month: this_month(),
        participant: participant.into(),
        team: team.into(),
        ..Default::default()
    }
}

fn names(reply: &pb::GetTeamPerformanceResponse) -> (Vec<&str>, Vec<&str>) {
    (
        reply
            .participants
            .iter()
            .map(|p| p.participant.as_str())
            .collect(),
        reply.teams.iter().map(|t| t.team.as_str()).collect(),
    )
}

fn amounts(f: &pb::PerformanceFigures, currency: &str) -> (String, String, String) {
    let a = f
        .amounts
        .iter()
        .find(|a| a.currency_code == currency)
        .unwrap_or_else(|| panic!("no {currency} in {f:?}"));
    let text = |m: &Option<contracts::pb::common::v1::Money>| m.as_ref().unwrap().amount.clone();
    (
        text(&a.originated_amount),
        text(&a.won_amount),
        text(&a.lost_amount),
    )
}

/// This month: carla (CS) originates four deals — two handed to alex (AE), who
/// wins the $60K cross-sell and loses the $40K one; she wins a $30K upsell
/// herself and keeps a €30K one open. Mei loses a $20K upsell.
async fn team_performance_by_person_team_and_organisation(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let admin = create_key(&keys, "ops.admin", "admin");
    let carla_key = create_key(&keys, "carla.csm", "csm");
    let alex_key = create_key(&keys, "alex.ae", "ae");
    let viewer = create_key(&keys, "vera.viewer", "viewer");
    let lead = {
        let out = std::process::Command::new(crate::harness::binary())
            .args(["keys", "create", "--name", "lena.lead", "--role", "csm"])
            .args(["--manages", "cs", "--keys-file"])
            .arg(&keys)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let keys_flag = keys.display().to_string();
    let server = Server::start(&backend, &["--keys-file", &keys_flag]);
    let admin_channel = channel(&server, &admin).await;
    let mut h = Health::new(admin_channel.clone());
    let mut p = Pipeline::new(admin_channel.clone());
    let mut c = CompensationCreditServiceClient::new(admin_channel);
    for (id, role, team) in [
        ("carla.csm", credit::PersonRole::Csm, "cs"),
        ("mei.csm", credit::PersonRole::Csm, "cs"),
        ("alex.ae", credit::PersonRole::Ae, "sales"),
    ] {
        c.upsert_person(credit::UpsertPersonRequest {
            person: Some(credit::Person {
                person_id: id.into(),
                display_name: id.into(),
                role: role as i32,
                team: team.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let acme = account(&mut h, "perf-acme", "2025-01-01").await;
    let core = product(&mut h, "Perf Core").await;
    let analytics = product(&mut h, "Perf Analytics").await;
    subscription(&mut h, &acme, &core, "2025-01-01", "5000.00", &[]).await;
    use Motion::*;
    for d in [
        Deal {
            account: &acme,
            product: &analytics,
            motion: CrossSellAdjacent,
            amount: ("USD", "60000"),
            originator: "carla.csm",
            handoff_to: Some("alex.ae"),
            close: Some(true),
        },
        Deal {
            account: &acme,
            product: &analytics,
            motion: CrossSellAdjacent,
            amount: ("USD", "40000"),
            originator: "carla.csm",
            handoff_to: Some("alex.ae"),
            close: Some(false),
        },
        Deal {
            account: &acme,
            product: &core,
            motion: UpsellCapacity,
            amount: ("USD", "30000"),
            originator: "carla.csm",
            handoff_to: None,
            close: Some(true),
        },
        Deal {
            account: &acme,
            product: &core,
            // Priced in euros: a cross-sell (an upsell is priced in the
            // currency of the USD subscription it would grow).
            motion: CrossSellAdjacent,
            amount: ("EUR", "30000"),
            originator: "carla.csm",
            handoff_to: None,
            close: None,
        },
        Deal {
            account: &acme,
            product: &analytics,
            motion: UpsellTier,
            amount: ("USD", "20000"),
            originator: "mei.csm",
            handoff_to: None,
            close: Some(false),
        },
    ] {
        play(&mut p, d).await;
    }

    // RevOps (admin) reads every row.
    let all = p
        .get_team_performance(performance("", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        names(&all),
        (vec!["alex.ae", "carla.csm", "mei.csm"], vec!["cs", "sales"])
    );
    let row = |name: &str| {
        all.participants
            .iter()
            .find(|r| r.participant == name)
            .unwrap()
            .figures
            .clone()
            .unwrap()
    };
    let carla = row("carla.csm");
    assert_eq!(
        (
            carla.originated,
            carla.handed_off,
            carla.handoffs_accepted,
            carla.handoffs_taken
        ),
        (4, 2, 2, 0)
    );
    assert_eq!(
        (carla.won, carla.lost, carla.win_rate.as_str()),
        (1, 0, "1.0000")
    );
    assert_eq!(
        amounts(&carla, "USD"),
        ("130000.00".into(), "30000.00".into(), "0.00".into())
    );
    assert_eq!(amounts(&carla, "EUR").0, "30000.00");
    let alex = row("alex.ae");
    assert_eq!((alex.originated, alex.handoffs_taken), (0, 2));
    assert_eq!(
        (alex.won, alex.lost, alex.win_rate.as_str()),
        (1, 1, "0.5000")
    );
    assert_eq!(
        amounts(&alex, "USD"),
        ("0.00".into(), "60000.00".into(), "40000.00".into())
    );
    // Cross-sell adjacent at 50%: above the seed's 10–18% band.
    let adjacent = &alex.win_rates_by_motion[0];
    assert_eq!(adjacent.motion, CrossSellAdjacent as i32);
    assert_eq!(
        (adjacent.win_rate.as_str(), adjacent.benchmark_low.as_str()),
        ("0.5000", "0.1000")
    );
    assert_eq!(adjacent.verdict, pb::BenchmarkVerdict::Above as i32);
    // Created and closed within the test: a cycle of zero days.
    assert_eq!(alex.avg_cycle_days, "0.00");
    let mei = row("mei.csm");
    assert_eq!(
        (mei.originated, mei.lost, mei.win_rate.as_str()),
        (1, 1, "0.0000")
    );
    // The teams are their members': carla and mei in cs, alex in sales.
    let cs = all.teams[0].figures.clone().unwrap();
    assert_eq!(all.teams[0].members, ["carla.csm", "mei.csm"]);
    assert_eq!((cs.originated, cs.won, cs.lost), (5, 1, 1));
    let sales = all.teams[1].figures.clone().unwrap();
    assert_eq!((sales.handoffs_taken, sales.won, sales.lost), (2, 1, 1));
    // The organisation counts each deal once.
    let total = all.total.clone().unwrap();
    assert_eq!(
        (
            total.originated,
            total.handed_off,
            total.handoffs_accepted,
            total.won,
            total.lost
        ),
        (5, 2, 2, 2, 2)
    );
    assert_eq!(total.win_rate, "0.5000");
    assert_eq!(
        amounts(&total, "USD"),
        ("150000.00".into(), "90000.00".into(), "60000.00".into())
    );

    // Pages of participants; teams and the total on each.
    let first = p
        .get_team_performance(pb::GetTeamPerformanceRequest {
            page_size: 2,
            ..performance("", "")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.participants.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = p
        .get_team_performance(pb::GetTeamPerformanceRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..performance("", "")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&second).0, ["mei.csm"]);
    assert!(second.next_page_token.is_empty());
    assert_eq!(second.total, all.total);
    invalid_field(
        p.get_team_performance(pb::GetTeamPerformanceRequest {
            page_token: first.next_page_token,
            ..performance("", "cs")
        })
        .await,
        "page_token",
    );
    invalid_field(
        p.get_team_performance(pb::GetTeamPerformanceRequest {
            month: "2026-13".into(),
            ..Default::default()
        })
        .await,
        "month",
    );
    invalid_field(
        p.get_team_performance(pb::GetTeamPerformanceRequest {
            page_size: -1,
            ..Default::default()
        })
        .await,
        "page_size",
    );
    // Last month had none of it.
    let previous = domain::Month::parse(&this_month())
        .unwrap()
        .previous()
        .unwrap();
    let quiet = p
        .get_team_performance(pb::GetTeamPerformanceRequest {
            month: previous.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(quiet.participants.is_empty());
    assert_eq!(quiet.total.unwrap().originated, 0);

    // A rep reads their own row only.
    let mut as_carla = Pipeline::new(channel(&server, &carla_key).await);
    let own = as_carla
        .get_team_performance(performance("", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&own), (vec!["carla.csm"], vec![]));
    assert_eq!(own.participants[0].figures, Some(carla.clone()));
    assert_eq!(own.total, all.total);
    denied(
        as_carla
            .get_team_performance(performance("alex.ae", ""))
            .await,
        "PERFORMANCE_OF_ANOTHER_PERSON",
    );
    denied(
        as_carla.get_team_performance(performance("", "cs")).await,
        "TEAM_NOT_MANAGED",
    );
    let mut as_alex = Pipeline::new(channel(&server, &alex_key).await);
    let alex_own = as_alex
        .get_team_performance(performance("alex.ae", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&alex_own).0, ["alex.ae"]);
    denied(
        as_alex
            .get_team_performance(performance("mei.csm", ""))
            .await,
        "PERFORMANCE_OF_ANOTHER_PERSON",
    );
    // The CS lead reads the team and its members (and not Sales).
    let mut as_lead = Pipeline::new(channel(&server, &lead).await);
    let team = as_lead
        .get_team_performance(performance("", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        names(&team),
        (vec!["carla.csm", "lena.lead", "mei.csm"], vec!["cs"])
    );
    assert_eq!(team.teams[0].figures, all.teams[0].figures);
    assert!(
        as_lead
            .get_team_performance(performance("mei.csm", ""))
            .await
            .is_ok()
    );
    denied(
        as_lead
            .get_team_performance(performance("alex.ae", ""))
            .await,
        "PERFORMANCE_OF_ANOTHER_PERSON",
    );
    denied(
        as_lead.get_team_performance(performance("", "sales")).await,
        "TEAM_NOT_MANAGED",
    );
    // A viewer: team and organisation totals, never a person.
    let mut as_viewer = Pipeline::new(channel(&server, &viewer).await);
    let totals = as_viewer
        .get_team_performance(performance("", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&totals), (vec![], vec!["cs", "sales"]));
    assert_eq!(totals.total, all.total);
    denied(
        as_viewer
            .get_team_performance(performance("carla.csm", ""))
            .await,
        "TOTALS_ONLY_FOR_VIEWER",
    );

    // Win rate by product beside by motion: analytics won 1 of 3, core 1 of 1.
    let forecast = p
        .get_pipeline_forecast(pb::GetPipelineForecastRequest {
            currency_code: "USD".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let by_product: Vec<(String, i64, i64, String)> = forecast.forecasts[0]
        .win_rates_by_product
        .iter()
        .map(|w| (w.product_id.clone(), w.won, w.lost, w.win_rate.clone()))
        .collect();
    let mut expected = vec![
        (analytics.clone(), 1, 2, "0.3333".to_owned()),
        (core.clone(), 1, 0, "1.0000".to_owned()),
    ];
    expected.sort();
    assert_eq!(by_product, expected);
    server.stop();
}

fn month_text(m: Option<&contracts::pb::common::v1::Money>) -> String {
    m.map(|m| m.amount.clone()).unwrap_or_default()
}

/// A and B joined in January 2025 ($1,000 and $500), C in April 2025 ($2,000).
/// A grows to $1,500 in February 2026 and buys a $300 module in March; B churns
/// on 2026-02-15.
async fn revenue_by_acquisition_cohort(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut h = Health::new(channel(&server, "").await);
    let core = product(&mut h, "Cohort Core").await;
    let module = product(&mut h, "Cohort Module").await;
    let a = account(&mut h, "cohort-a", "2025-01-10").await;
    let b = account(&mut h, "cohort-b", "2025-01-20").await;
    let c = account(&mut h, "cohort-c", "2025-04-02").await;
    subscription(
        &mut h,
        &a,
        &core,
        "2025-01-10",
        "1000.00",
        &[("2026-02-01", "1500.00")],
    )
    .await;
    subscription(&mut h, &a, &module, "2026-03-05", "300.00", &[]).await;
    let churned = subscription(&mut h, &b, &core, "2025-01-20", "500.00", &[]).await;
    h.cancel_subscription(health::CancelSubscriptionRequest {
        subscription_id: churned,
        cancel_date: "2026-02-15".into(),
        reason: "budget".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    subscription(&mut h, &c, &core, "2025-04-02", "2000.00", &[]).await;

    let reply = h
        .get_cohort_revenue(health::GetCohortRevenueRequest {
            start_month: "2026-01".into(),
            end_month: "2026-03".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.granularity, health::CohortGranularity::Month as i32);
    let labels: Vec<&str> = reply.cohorts.iter().map(|c| c.cohort.as_str()).collect();
    assert_eq!(labels, ["2025-01", "2025-04"]);
    let january = &reply.cohorts[0].periods;
    let row = |p: &health::CohortPeriod| {
        (
            p.period.clone(),
            p.accounts,
            month_text(p.mrr.as_ref()),
            month_text(p.average_mrr.as_ref()),
            p.nrr.clone(),
        )
    };
    assert_eq!(
        row(&january[0]),
        (
            "2026-01".into(),
            2,
            "1500.00".into(),
            "750.00".into(),
            "1.0000".into()
        )
    );
    assert_eq!(
        row(&january[1]),
        (
            "2026-02".into(),
            1,
            "1500.00".into(),
            "1500.00".into(),
            "1.0000".into()
        )
    );
    assert_eq!(
        row(&january[2]),
        (
            "2026-03".into(),
            1,
            "1800.00".into(),
            "1800.00".into(),
            "1.2000".into()
        )
    );
    assert_eq!(january[2].mrr_since_acquisition, "1.2000");
    assert_eq!(month_text(january[2].opening_mrr.as_ref()), "1500.00");

    // The cohorts sum to the bridge: March's closing MRR is 1,800 + 2,000.
    let march = h
        .get_revenue_metrics(health::GetRevenueMetricsRequest {
            month: "2026-03".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        month_text(march.currencies[0].closing_mrr.as_ref()),
        "3800.00"
    );
    assert_eq!(
        month_text(reply.cohorts[1].periods[2].mrr.as_ref()),
        "2000.00"
    );

    // By quarter: A and B in 2025-Q1, C in 2025-Q2.
    let quarters = h
        .get_cohort_revenue(health::GetCohortRevenueRequest {
            granularity: health::CohortGranularity::Quarter as i32,
            start_month: "2025-01".into(),
            end_month: "2026-03".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let q: Vec<(&str, usize)> = quarters
        .cohorts
        .iter()
        .map(|c| (c.cohort.as_str(), c.periods.len()))
        .collect();
    assert_eq!(q, [("2025-Q1", 5), ("2025-Q2", 4)]);
    let q1_2026 = &quarters.cohorts[0].periods[4];
    assert_eq!(
        (q1_2026.period.as_str(), month_text(q1_2026.mrr.as_ref())),
        ("2026-Q1", "1800.00".to_owned())
    );
    // Every period of 2025-Q1's first quarter opened with nothing.
    assert_eq!(quarters.cohorts[0].periods[0].nrr, "");

    invalid_field(
        h.get_cohort_revenue(health::GetCohortRevenueRequest {
            start_month: "2026-04".into(),
            end_month: "2026-03".into(),
            ..Default::default()
        })
        .await,
        "end_month",
    );
    invalid_field(
        h.get_cohort_revenue(health::GetCohortRevenueRequest {
            granularity: 9,
            ..Default::default()
        })
        .await,
        "granularity",
    );
    invalid_field(
        h.get_cohort_revenue(health::GetCohortRevenueRequest {
            start_month: "1990-01".into(),
            end_month: "2026-03".into(),
            ..Default::default()
        })
        .await,
        "end_month",
    );
    server.stop();
}

async fn estimate(
    p: &mut Pipeline,
    account: &str,
    area: &str,
    amount: &str,
    served_by: pb::WalletServedBy,
    effective: &str,
) {
    p.upsert_wallet_estimate(pb::UpsertWalletEstimateRequest {
        estimate: Some(pb::WalletEstimate {
            account_id: account.into(),
            product_area: area.into(),
            annual_spend: usd(amount),
            served_by: served_by as i32,
            effective_date: effective.into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
}

/// The seed's $800K wallet, first with $150K ours (2024-12), then $230K
/// (2025-12, after a same-day correction): 18.75% → 28.75%. A second account
/// serves $100K of $200K with us from 2025-06.
async fn share_of_wallet_over_time(backend: Backend) {
    use pb::WalletServedBy::{Competitor, InHouse, Unaddressed, Us};
    let server = Server::start(&backend, &[]);
    let ch = channel(&server, "").await;
    let mut h = Health::new(ch.clone());
    let mut p = Pipeline::new(ch);
    let acme = account(&mut h, "wallet-acme", "2024-01-01").await;
    let globex = account(&mut h, "wallet-globex", "2024-01-01").await;
    for (area, amount, who) in [
        ("audit", "150000", Us),
        ("tax compliance", "80000", Competitor),
        ("M&A advisory", "200000", Competitor),
        ("fractional CFO", "120000", InHouse),
        ("other", "250000", Unaddressed),
    ] {
        estimate(&mut p, &acme, area, amount, who, "2024-12-01").await;
    }
    // Tax compliance won; first recorded at the wrong amount, then corrected.
    estimate(&mut p, &acme, "tax compliance", "90000", Us, "2025-12-01").await;
    estimate(&mut p, &acme, "tax compliance", "80000", Us, "2025-12-01").await;
    estimate(&mut p, &globex, "audit", "100000", Us, "2025-06-01").await;
    estimate(&mut p, &globex, "other", "100000", Competitor, "2025-06-01").await;

    let series = p
        .get_wallet_share_history(pb::GetWalletShareHistoryRequest {
            account_id: acme.clone(),
            start_month: "2024-11".into(),
            end_month: "2025-12".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(series.points.len(), 14);
    assert_eq!(series.points[0].month, "2024-11");
    assert!(series.points[0].summaries.is_empty());
    let share = |point: &pb::WalletSharePoint| {
        (
            point.as_of_date.clone(),
            point.summaries[0].share_of_wallet.clone(),
            month_text(point.summaries[0].total_wallet.as_ref()),
        )
    };
    assert_eq!(
        share(&series.points[1]),
        ("2024-12-31".into(), "0.1875".into(), "800000.00".into())
    );
    assert_eq!(share(&series.points[12]).1, "0.1875");
    assert_eq!(
        share(&series.points[13]),
        ("2025-12-31".into(), "0.2875".into(), "800000.00".into())
    );
    // Every account: (230 + 100) / (800 + 200) at the end of 2025.
    let everyone = p
        .get_wallet_share_history(pb::GetWalletShareHistoryRequest {
            start_month: "2025-05".into(),
            end_month: "2025-12".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let shares: Vec<String> = everyone
        .points
        .iter()
        .map(|pt| pt.summaries[0].share_of_wallet.clone())
        .collect();
    assert_eq!(shares[0], "0.1875");
    assert_eq!(shares[1], "0.2500");
    assert_eq!(shares[7], "0.3300");

    // Whitespace as of a date, and today (the seed's 28.75%).
    let then = p
        .get_whitespace(pb::GetWhitespaceRequest {
            account_id: acme.clone(),
            as_of_date: "2025-06-30".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(then.summaries[0].share_of_wallet, "0.1875");
    assert_eq!(then.wallet.len(), 5);
    let now = p
        .get_whitespace(pb::GetWhitespaceRequest {
            account_id: acme.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.summaries[0].share_of_wallet, "0.2875");
    assert_eq!(now.summaries[0].opportunity_share, "0.7125");
    let tax = now
        .wallet
        .iter()
        .find(|w| w.product_area == "tax compliance")
        .unwrap();
    assert_eq!(
        (tax.effective_date.as_str(), tax.served_by),
        ("2025-12-01", Us as i32)
    );
    assert_eq!(month_text(tax.annual_spend.as_ref()), "80000.00");

    invalid_field(
        p.get_wallet_share_history(pb::GetWalletShareHistoryRequest {
            start_month: "2025-05".into(),
            end_month: "2025-04".into(),
            ..Default::default()
        })
        .await,
        "end_month",
    );
    invalid_field(
        p.get_wallet_share_history(pb::GetWalletShareHistoryRequest {
            account_id: "nope".into(),
            ..Default::default()
        })
        .await,
        "account_id",
    );
    let bad_date = p
        .upsert_wallet_estimate(pb::UpsertWalletEstimateRequest {
            estimate: Some(pb::WalletEstimate {
                account_id: acme.clone(),
                product_area: "audit".into(),
                annual_spend: usd("1"),
                served_by: Us as i32,
                effective_date: "2025-02-30".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    invalid_field(bad_date, "estimate.effective_date");
    server.stop();
}
