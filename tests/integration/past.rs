//! The past brought in: the import-only `occur_time` of the pipeline's
//! writes (backdated deals stall, a backdated handoff is overdue at once,
//! cycle times count from the CRM's creation), who may set it, and health
//! history over months filled in from past signals — on both databases.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use contracts::pb::common::v1::Motion;
use contracts::pb::health::v1 as health;
use contracts::pb::pipeline::v1 as pb;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_client::OpportunityPipelineServiceClient;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::harness::{Backend, Refs, Server, create_key, usd};
use crate::on_both_databases;

on_both_databases!(
    backdated_deals_stall_and_handoffs_are_overdue_at_once,
    only_import_roles_may_backdate,
    past_signals_fill_in_months_of_health_history,
);

fn ago(days: i64) -> DateTime<Utc> {
    storage::now() - Duration::days(days)
}

fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(contracts::wire::timestamp(t))
}

fn time_of(t: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.unwrap();
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap()).unwrap()
}

fn field_of(status: &Status) -> String {
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.into_iter().next())
        .map(|v| v.field)
        .unwrap_or_default()
}

fn upsell(refs: &Refs) -> pb::Opportunity {
    pb::Opportunity {
        account_id: refs.account.clone(),
        product_id: refs.held.clone(),
        motion: Motion::UpsellCapacity as i32,
        amount: usd("60000"),
        owner: "carla.csm".into(),
        originator: "carla.csm".into(),
        ..Default::default()
    }
}

fn package() -> pb::HandoffPackage {
    pb::HandoffPackage {
        discovery_summary: "at the plan's limit every month".into(),
        pain_points: vec!["limits".into()],
        stakeholders: vec![pb::Stakeholder {
            name: "Dana".into(),
            role: "economic buyer".into(),
            decision_maker: true,
            budget_holder: true,
            ..Default::default()
        }],
        decision_process: "CFO signs".into(),
        budget_status: pb::BudgetStatus::Allocated as i32,
        timing: "this quarter".into(),
        competitive_landscape: "none".into(),
        joint_call_time: None,
    }
}

async fn backdated_deals_stall_and_handoffs_are_overdue_at_once(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut p = server.pipeline().await;
    let refs = server.refs().await;

    // Created in the CRM 40 days ago: 40 days at IDENTIFIED (30 allowed).
    let created_at = ago(40);
    let opp = p
        .create_opportunity(pb::CreateOpportunityRequest {
            request_id: String::new(),
            opportunity: Some(upsell(&refs)),
            occur_time: ts(created_at),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    let audit = opp.audit.as_ref().unwrap();
    assert_eq!(time_of(audit.create_time.as_ref()), created_at);
    assert_eq!(time_of(opp.stage_enter_time.as_ref()), created_at);
    assert_eq!(opp.days_in_stage, 40);
    assert!(opp.stalled, "{opp:?}");

    let advance = |o: &pb::Opportunity, at: Option<DateTime<Utc>>| pb::AdvanceStageRequest {
        opportunity_id: o.opportunity_id.clone(),
        etag: o.etag.clone(),
        to_stage: pb::Stage::Exploring as i32,
        occur_time: at.and_then(ts),
        // The account has no score yet: the gate is passed as an import would.
        override_reason: "imported from the CRM".into(),
        ..Default::default()
    };
    // Before the stage it leaves was entered, or in the future: refused,
    // naming the field, and nothing changes.
    for at in [
        created_at - Duration::seconds(1),
        Utc::now() + Duration::hours(1),
    ] {
        let err = p.advance_stage(advance(&opp, Some(at))).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(field_of(&err), "occur_time");
    }
    // Moved on 35 days ago: stalled in EXPLORING too, its history row dated then.
    let moved_at = ago(35);
    let opp = p
        .advance_stage(advance(&opp, Some(moved_at)))
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(time_of(opp.stage_enter_time.as_ref()), moved_at);
    assert!(opp.stalled);
    let history = p
        .get_opportunity_history(pb::GetOpportunityHistoryRequest {
            opportunity_id: opp.opportunity_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let stage_times: Vec<DateTime<Utc>> = history
        .iter()
        .filter(|h| h.field == "stage")
        .map(|h| time_of(h.change_time.as_ref()))
        .collect();
    assert_eq!(stage_times, [created_at, moved_at]);
    let stalled = p
        .list_opportunities(pb::ListOpportunitiesRequest {
            stalled_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunities;
    assert_eq!(stalled.len(), 1);
    assert_eq!(stalled[0].opportunity_id, opp.opportunity_id);

    // A handoff requested before the deal entered EXPLORING is refused; one
    // requested four days ago is past its 48-hour SLA at once.
    let request = |at: DateTime<Utc>| pb::RequestHandoffRequest {
        request_id: String::new(),
        opportunity_id: opp.opportunity_id.clone(),
        package: Some(package()),
        occur_time: ts(at),
    };
    let err = p
        .request_handoff(request(moved_at - Duration::days(1)))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), field_of(&err)),
        (Code::InvalidArgument, "occur_time".into())
    );
    let requested_at = ago(4);
    let handoff = p
        .request_handoff(request(requested_at))
        .await
        .unwrap()
        .into_inner()
        .handoff
        .unwrap();
    assert_eq!(time_of(handoff.request_time.as_ref()), requested_at);
    assert_eq!(
        time_of(handoff.due_time.as_ref()),
        requested_at + Duration::hours(48)
    );
    assert!(handoff.overdue);
    let overdue = p
        .list_handoffs(pb::ListHandoffsRequest {
            overdue_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .handoffs;
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].handoff_id, handoff.handoff_id);

    // Each backdated write's event says when it happened (`source_time`);
    // the envelope's time is when it was written.
    let mut stream = p
        .watch_events(pb::WatchEventsRequest {
            options: Some(contracts::pb::common::v1::WatchEventsOptions {
                after_cursor: String::new(),
                event_types: vec![
                    "pipeline.opportunity.created".into(),
                    "pipeline.opportunity.stage_changed".into(),
                    "pipeline.handoff.requested".into(),
                ],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let mut said = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .event
            .unwrap();
        let source_time = match event
            .data
            .unwrap()
            .fields
            .get("source_time")
            .and_then(|v| v.kind.clone())
        {
            Some(prost_types::value::Kind::StringValue(t)) => {
                DateTime::parse_from_rfc3339(&t).unwrap().to_utc()
            }
            other => panic!("{}: source_time {other:?}", event.event_type),
        };
        assert!(time_of(event.occur_time.as_ref()) > ago(1));
        said.push((event.event_type, source_time));
    }
    assert_eq!(
        said,
        [
            ("pipeline.opportunity.created".to_owned(), created_at),
            ("pipeline.opportunity.stage_changed".to_owned(), moved_at),
            ("pipeline.handoff.requested".to_owned(), requested_at),
        ]
    );

    // Cycle time counts from the CRM's creation: created 20 days ago,
    // closed now.
    let other = p
        .create_opportunity(pb::CreateOpportunityRequest {
            request_id: String::new(),
            opportunity: Some(upsell(&server.refs().await)),
            occur_time: ts(ago(20)),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    p.close_opportunity(pb::CloseOpportunityRequest {
        opportunity_id: other.opportunity_id.clone(),
        etag: other.etag.clone(),
        won: false,
        lost_reason: "no budget".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let forecast = p
        .get_pipeline_forecast(pb::GetPipelineForecastRequest {
            currency_code: "USD".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let days: rust_decimal::Decimal = forecast.forecasts[0].avg_cycle_days.parse().unwrap();
    assert!(
        days >= rust_decimal::Decimal::new(1999, 2) && days <= rust_decimal::Decimal::from(21),
        "{days}"
    );
}

async fn only_import_roles_may_backdate(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let admin = create_key(&keys, "importer", "admin");
    let csm = create_key(&keys, "carla.csm", "csm");
    let server = Server::start(&backend, &["--keys-file", &keys.display().to_string()]);
    let client = |key: String| {
        let address = server.addr.clone();
        async move {
            let options = contracts::client::ClientOptions::default().with_api_key(Some(key));
            OpportunityPipelineServiceClient::new(
                contracts::client::connect(&address, &options)
                    .await
                    .unwrap(),
            )
        }
    };
    let (mut admin, mut csm) = (client(admin).await, client(csm).await);
    // Ids nobody has: what is refused first is the field, before any look-up.
    let opportunity = pb::Opportunity {
        account_id: domain::AccountId::new().to_string(),
        product_id: domain::ProductId::new().to_string(),
        motion: Motion::UpsellCapacity as i32,
        amount: usd("60000"),
        ..Default::default()
    };
    let create = |at: Option<DateTime<Utc>>| pb::CreateOpportunityRequest {
        request_id: String::new(),
        opportunity: Some(opportunity.clone()),
        occur_time: at.and_then(ts),
    };
    let denied = |err: Status| {
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert_eq!(
            err.get_details_error_info().unwrap().reason,
            "OCCUR_TIME_IMPORT_ONLY"
        );
        assert!(err.message().contains("occur_time"), "{}", err.message());
    };
    denied(
        csm.create_opportunity(create(Some(ago(3))))
            .await
            .unwrap_err(),
    );
    let id = domain::OpportunityId::new().to_string();
    denied(
        csm.advance_stage(pb::AdvanceStageRequest {
            opportunity_id: id.clone(),
            etag: "1".into(),
            to_stage: pb::Stage::Exploring as i32,
            occur_time: ts(ago(3)),
            ..Default::default()
        })
        .await
        .unwrap_err(),
    );
    denied(
        csm.request_handoff(pb::RequestHandoffRequest {
            request_id: String::new(),
            opportunity_id: id,
            package: Some(package()),
            occur_time: ts(ago(3)),
        })
        .await
        .unwrap_err(),
    );
    // Without the field the csm's call goes on (to the unknown account).
    let err = csm.create_opportunity(create(None)).await.unwrap_err();
    assert_ne!(err.code(), Code::PermissionDenied, "{err:?}");
    // An admin may set it, but not in the future.
    let err = admin
        .create_opportunity(create(Some(Utc::now() + Duration::days(1))))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), field_of(&err)),
        (Code::InvalidArgument, "occur_time".into())
    );
    let err = admin
        .create_opportunity(create(Some(ago(3))))
        .await
        .unwrap_err();
    assert_ne!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_ne!(field_of(&err), "occur_time", "{err:?}");
}

fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .unwrap()
}

async fn history(
    h: &mut health::account_health_service_client::AccountHealthServiceClient<
        tonic::transport::Channel,
    >,
    account: &str,
) -> Vec<health::HealthScore> {
    h.get_health_history(health::GetHealthHistoryRequest {
        account_id: account.into(),
        page_size: 100,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .points
}

async fn past_signals_fill_in_months_of_health_history(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut h = server.health().await;
    let refs = server.refs().await;
    let usage = |percent: &str, at: DateTime<Utc>, id: String| health::Signal {
        account_id: refs.account.clone(),
        product_id: refs.held.clone(),
        kind: health::SignalKind::Usage as i32,
        value: percent.into(),
        limit: "100".into(),
        occur_time: ts(at),
        source: "billing".into(),
        external_id: id,
        ..Default::default()
    };
    // A CRM's past: usage at 20% of the limit every ten days from 120 to 40
    // days ago; at 90% two days ago.
    let mut signals: Vec<health::Signal> = (0..=8)
        .map(|i| usage("20", ago(120 - 10 * i), format!("past-{i}")))
        .collect();
    signals.push(usage("90", ago(2), "now".into()));
    h.record_signals(health::RecordSignalsRequest {
        request_id: String::new(),
        signals,
    })
    .await
    .unwrap();
    // Reading the history recomputes the account first.
    let points = history(&mut h, &refs.account).await;
    let at = |p: &health::HealthScore| time_of(p.compute_time.as_ref());
    // Newest first: the score of now, GREEN on 90% usage.
    assert_eq!(points[0].score, "100", "{points:?}");
    assert_eq!(
        points[0].band,
        contracts::pb::common::v1::HealthBand::Green as i32
    );
    // Every month end from 120 to 40 days ago has its point, scored on the
    // 20% readings then: usage 40 (weight 30), no tickets or escalations
    // 100 (weight 10 each) → 64, YELLOW.
    let mut month_ends = Vec::new();
    let mut m = month_start(month_start(ago(120)) + Duration::days(32));
    while m <= ago(40) {
        month_ends.push(m);
        m = month_start(m + Duration::days(32));
    }
    assert!(month_ends.len() >= 2, "{month_ends:?}");
    for end in &month_ends {
        let here: Vec<&health::HealthScore> = points.iter().filter(|p| at(p) == *end).collect();
        assert_eq!(here.len(), 1, "one point at {end}: {points:?}");
        assert_eq!(here[0].score, "64", "{end}");
        assert_eq!(
            here[0].band,
            contracts::pb::common::v1::HealthBand::Yellow as i32
        );
    }
    // Each past point is at a month's first instant; none after 40 days ago
    // but the month ends the latest reading is seen at, and now.
    for p in points[1..].iter().filter(|p| p.has_score) {
        assert_eq!(at(p), month_start(at(p)), "{p:?}");
    }
    // The product's history is filled in the same way.
    let product = h
        .get_health_history(health::GetHealthHistoryRequest {
            account_id: refs.account.clone(),
            product_id: refs.held.clone(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    assert!(
        month_ends
            .iter()
            .all(|end| product.iter().any(|p| at(p) == *end && p.score == "64")),
        "{product:?}"
    );

    // A new signal recomputes the account (usage down to 25%: a new score);
    // the past is not written twice.
    h.record_signals(health::RecordSignalsRequest {
        request_id: String::new(),
        signals: vec![usage("25", ago(1), "later".into())],
    })
    .await
    .unwrap();
    let again = history(&mut h, &refs.account).await;
    let past = |points: &[health::HealthScore]| {
        points
            .iter()
            .filter(|p| at(p) < ago(3))
            .map(|p| (at(p), p.score.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(past(&again), past(&points));
    assert!(again.len() > points.len(), "the new score is a new point");
}
