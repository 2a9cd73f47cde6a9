//! The foundation end to end: each service stores and returns its first
//! resources, they survive a restart, bad input is refused with the field
//! path, and the server is observable (reflection, health) and stops cleanly.

use contracts::pb::common::v1::{Money, Motion, Segment};
use contracts::pb::credit::v1 as credit;
use contracts::pb::health::v1 as health;
use contracts::pb::pipeline::v1 as pipeline;
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{Backend, Server, usd};
use crate::on_both_databases;

on_both_databases!(
    records_survive_a_restart,
    account_upsert_is_idempotent_by_external_ref,
    bad_input_is_invalid_argument_with_field_path,
    policy_versions_are_kept,
    health_checks_report_each_service,
    one_service_per_process,
    watch_events_resumes_from_a_cursor,
);

fn account_request(crm_id: &str, name: &str) -> health::UpsertAccountRequest {
    health::UpsertAccountRequest {
        external_ref: Some(health::ExternalRef {
            system: "salesforce".into(),
            id: crm_id.into(),
        }),
        name: name.into(),
        segment: Segment::Enterprise as i32,
        customer_since: "2025-01-15".into(),
        fiscal_year_start_month: 4,
        owner_csm: "carla.csm".into(),
        ..Default::default()
    }
}

fn opportunity_request(
    account_id: &str,
    product_id: &str,
    amount: &str,
) -> pipeline::CreateOpportunityRequest {
    pipeline::CreateOpportunityRequest {
        occur_time: None,
        request_id: String::new(),
        opportunity: Some(pipeline::Opportunity {
            account_id: account_id.into(),
            product_id: product_id.into(),
            motion: Motion::CrossSellAdjacent as i32,
            amount: usd(amount),
            close_date: "2027-03-31".into(),
            owner: "carla.csm".into(),
            originator: "carla.csm".into(),
            stakeholders: vec![pipeline::Stakeholder {
                name: "Dana CFO".into(),
                role: "economic buyer".into(),
                budget_holder: true,
                decision_maker: true,
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

async fn records_survive_a_restart(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let account = server
        .health()
        .await
        .upsert_account(account_request("001-restart", "Acme Corp"))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    let opportunity = server
        .pipeline()
        .await
        .create_opportunity(opportunity_request(
            &account.account_id,
            &server.refs().await.other,
            "500000.00",
        ))
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(opportunity.stage, pipeline::Stage::Identified as i32);
    assert_eq!(opportunity.probability, "10");
    assert_eq!(opportunity.amount, usd("500000.00"));
    let policy = server
        .credit()
        .await
        .upsert_credit_policy(credit::UpsertCreditPolicyRequest {
            request_id: String::new(),
            policy: Some(credit::CreditPolicy {
                policy_id: "emea".into(),
                origination_percent: "20".into(),
                effective_date: "2026-01-01".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(policy.delivery_percent, "80");

    let took = server.stop();
    assert!(took.as_secs() < 15, "graceful stop took {took:?}");

    let server = Server::start(&backend, &[]);
    let again = server
        .health()
        .await
        .get_account(health::GetAccountRequest {
            account_id: account.account_id.clone(),
            external_ref: None,
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(again, account);
    let opp_again = server
        .pipeline()
        .await
        .get_opportunity(pipeline::GetOpportunityRequest {
            opportunity_id: opportunity.opportunity_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(opp_again, opportunity);
    let policy_again = server
        .credit()
        .await
        .get_credit_policy(credit::GetCreditPolicyRequest {
            policy_id: "emea".into(),
            version: 1,
            as_of_date: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(policy_again, policy);
}

async fn account_upsert_is_idempotent_by_external_ref(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.health().await;
    let first = client
        .upsert_account(account_request("001-idem", "Initech"))
        .await
        .unwrap()
        .into_inner();
    assert!(first.created);
    let second = client
        .upsert_account(account_request("001-idem", "Initech Global"))
        .await
        .unwrap()
        .into_inner();
    assert!(!second.created);
    let (a, b) = (first.account.unwrap(), second.account.unwrap());
    assert_eq!(a.account_id, b.account_id);
    assert_eq!(b.name, "Initech Global");

    let by_ref = client
        .get_account(health::GetAccountRequest {
            account_id: String::new(),
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: "001-idem".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(by_ref, b);

    // A child account rolls up to its parent; a cycle is refused.
    let mut child = account_request("001-idem-child", "Initech Brazil");
    child.parent_account_id = a.account_id.clone();
    let child = client
        .upsert_account(child)
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(child.parent_account_id, a.account_id);
    let mut cycle = account_request("001-idem", "Initech Global");
    cycle.parent_account_id = child.account_id.clone();
    let err = client.upsert_account(cycle).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_of(&err), "parent_account_id");
}

fn field_of(status: &tonic::Status) -> String {
    let details = status.get_error_details();
    let bad = details
        .bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"));
    bad.field_violations[0].field.clone()
}

async fn bad_input_is_invalid_argument_with_field_path(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut pipeline_client = server.pipeline().await;
    let account_id = domain::AccountId::new().to_string();

    for (amount, currency, field) in [
        ("12.345", "USD", "opportunity.amount.amount"),
        ("twelve", "USD", "opportunity.amount.amount"),
        ("1e5", "USD", "opportunity.amount.amount"),
        ("", "USD", "opportunity.amount.amount"),
        ("100", "usd", "opportunity.amount.currency_code"),
        ("100", "XYZ", "opportunity.amount.currency_code"),
    ] {
        let mut req = opportunity_request(&account_id, &account_id, amount);
        req.opportunity.as_mut().unwrap().amount = Some(Money {
            currency_code: currency.into(),
            amount: amount.into(),
        });
        let err = pipeline_client.create_opportunity(req).await.unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{amount} {currency}: {err:?}"
        );
        assert_eq!(field_of(&err), field, "{amount} {currency}");
        let info = err.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "INVALID_ARGUMENT");
        assert_eq!(info.domain, "expansion.pipeline.v1");
    }

    let mut health_client = server.health().await;
    let mut bad = account_request("001-bad", "");
    let err = health_client.upsert_account(bad.clone()).await.unwrap_err();
    assert_eq!(
        (err.code(), field_of(&err).as_str()),
        (Code::InvalidArgument, "name")
    );
    bad.name = "Bad Date Inc".into();
    bad.customer_since = "2025-02-30".into();
    let err = health_client.upsert_account(bad.clone()).await.unwrap_err();
    assert_eq!(field_of(&err), "customer_since");
    bad.customer_since = String::new();
    bad.external_ref = Some(health::ExternalRef {
        system: "salesforce".into(),
        id: "001\u{0}x".into(),
    });
    let err = health_client.upsert_account(bad).await.unwrap_err();
    assert_eq!(field_of(&err), "external_ref.id");
    // Nothing was stored by the refused calls.
    let err = health_client
        .get_account(health::GetAccountRequest {
            account_id: String::new(),
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: "001-bad".into(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let err = pipeline_client
        .get_opportunity(pipeline::GetOpportunityRequest {
            opportunity_id: "not-a-uuid".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "opportunity_id");
    let err = pipeline_client
        .get_opportunity(pipeline::GetOpportunityRequest {
            opportunity_id: domain::OpportunityId::new().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let mut credit_client = server.credit().await;
    let err = credit_client
        .upsert_credit_policy(credit::UpsertCreditPolicyRequest {
            request_id: String::new(),
            policy: Some(credit::CreditPolicy {
                origination_percent: "25".into(),
                delivery_percent: "70".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "policy.delivery_percent");
    let in_force = credit_client
        .get_credit_policy(credit::GetCreditPolicyRequest {
            policy_id: "default".into(),
            version: 0,
            as_of_date: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(
        (in_force.version, in_force.effective_date.as_str()),
        (0, "1970-01-01"),
        "the refused policy must not exist: the built-in default is still in force"
    );
}

async fn policy_versions_are_kept(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    let upsert = |origination: &str, effective: &str| credit::UpsertCreditPolicyRequest {
        request_id: String::new(),
        policy: Some(credit::CreditPolicy {
            origination_percent: origination.into(),
            effective_date: effective.into(),
            ..Default::default()
        }),
    };
    let v1 = client
        .upsert_credit_policy(upsert("25", "2026-01-01"))
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    let v2 = client
        .upsert_credit_policy(upsert("30", "2026-07-01"))
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.overlays[0].percent, "5");
    let in_force = |date: &str| credit::GetCreditPolicyRequest {
        policy_id: String::new(),
        version: 0,
        as_of_date: date.into(),
    };
    let march = client
        .get_credit_policy(in_force("2026-03-15"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(march.policy.unwrap().origination_percent, "25");
    let august = client
        .get_credit_policy(in_force("2026-08-01"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(august.policy.unwrap().origination_percent, "30");
    // Before its first stored version, the built-in default is in force.
    let before = client
        .get_credit_policy(in_force("2025-12-31"))
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(
        (before.version, before.origination_percent.as_str()),
        (0, "25")
    );
}

async fn health_checks_report_each_service(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut checks = server.grpc_health().await;
    for service in [
        "expansion.health.v1.AccountHealthService",
        "expansion.pipeline.v1.OpportunityPipelineService",
        "expansion.credit.v1.CompensationCreditService",
    ] {
        let reply = checks
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            reply.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
}

async fn one_service_per_process(backend: Backend) {
    let server = Server::start(&backend, &["--service", "credit"]);
    let policy = server
        .credit()
        .await
        .upsert_credit_policy(credit::UpsertCreditPolicyRequest::default())
        .await
        .unwrap_err();
    // An empty request names the missing policy.
    assert_eq!(field_of(&policy), "policy");
    let err = server
        .health()
        .await
        .get_account(health::GetAccountRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "health is not served here");
    let mut checks = server.grpc_health().await;
    let reply = checks
        .check(tonic_health::pb::HealthCheckRequest {
            service: "expansion.health.v1.AccountHealthService".into(),
        })
        .await;
    assert_eq!(reply.unwrap_err().code(), Code::NotFound);
    drop(server);
    if backend.is_postgres() {
        // The three services can share one PostgreSQL database, each in its own tables.
        let all = Server::start(&backend, &[]);
        let got = all
            .credit()
            .await
            .get_credit_policy(credit::GetCreditPolicyRequest::default())
            .await
            .unwrap()
            .into_inner()
            .policy
            .unwrap();
        assert_eq!(
            got.version, 0,
            "a fresh credit service has the built-in default"
        );
    }
}

async fn next_event(
    stream: &mut tonic::Streaming<health::WatchEventsResponse>,
) -> contracts::pb::common::v1::Event {
    let item = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .expect("stream still open");
    item.event.unwrap()
}

async fn watch_events_resumes_from_a_cursor(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.health().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let reply = client
            .upsert_account(account_request(
                &format!("001-watch-{n}"),
                &format!("Watch {n}"),
            ))
            .await
            .unwrap()
            .into_inner();
        ids.push(reply.account.unwrap().account_id);
    }
    let watch = |after: &str| health::WatchEventsRequest {
        options: Some(contracts::pb::common::v1::WatchEventsOptions {
            after_cursor: after.into(),
            event_types: vec!["health.account.".into()],
        }),
    };
    let mut stream = client.watch_events(watch("")).await.unwrap().into_inner();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next_event(&mut stream).await);
    }
    assert_eq!(
        seen.iter()
            .map(|e| e.subject_id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    assert!(
        seen.iter()
            .all(|e| e.event_type == "health.account.created")
    );
    drop(stream);

    // Reconnect after the second event: only the third comes back, then live ones.
    let mut resumed = client
        .watch_events(watch(&seen[1].cursor))
        .await
        .unwrap()
        .into_inner();
    let third = next_event(&mut resumed).await;
    assert_eq!(third.event_id, seen[2].event_id);
    // Sending what is stored again (a connector's nightly re-sync) changes
    // nothing and tells nobody: the next event is the rename below.
    let same = client
        .upsert_account(account_request("001-watch-1", "Watch 1"))
        .await
        .unwrap()
        .into_inner();
    assert!(!same.created);
    assert_eq!(same.account.unwrap().account_id, ids[1]);
    client
        .upsert_account(account_request("001-watch-0", "Watch 0 renamed"))
        .await
        .unwrap();
    let live = next_event(&mut resumed).await;
    assert_eq!(live.event_type, "health.account.updated");
    assert_eq!(live.subject_id, ids[0]);

    let err = client.watch_events(watch("garbage")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_of(&err), "options.after_cursor");
}
