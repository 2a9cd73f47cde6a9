//! A delivery the outbox parked is listed (`ListDeliveries`) and sent again
//! (`RetryDelivery`): it turns PENDING with its attempts reset, and the
//! dispatcher delivers it; only a parked one moves, and the refusals name
//! what is wrong. SQLite and PostgreSQL.

use std::time::Duration;

use contracts::pb::pipeline::v1 as pipeline;
use sea_orm::ConnectionTrait;
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{Backend, Server};
use crate::on_both_databases;
use crate::outbox::{deliveries, policy, win_a_deal};

on_both_databases!(a_parked_delivery_is_listed_and_sent_again);

/// A read-write connection to the pipeline's database (the harness's is
/// read-only on SQLite).
async fn pipeline_db(backend: &Backend) -> sea_orm::DatabaseConnection {
    let url = match backend {
        Backend::Sqlite { dir } => format!("sqlite://{}", dir.path().join("pipeline.db").display()),
        Backend::Postgres { url, .. } => url.clone(),
    };
    sea_orm::Database::connect(&url).await.unwrap()
}

async fn settled(server: &Server, deal: &str) -> Vec<pipeline::OutboxDelivery> {
    for _ in 0..100 {
        let seen = deliveries(server, deal).await;
        if seen.len() == 2
            && seen
                .iter()
                .all(|d| d.status == pipeline::DeliveryStatus::Delivered as i32)
        {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "the deal's deliveries did not arrive: {:?}",
        deliveries(server, deal).await
    );
}

async fn a_parked_delivery_is_listed_and_sent_again(backend: Backend) {
    let server = Server::start(&backend, &[]);
    policy(&server).await;
    // The AE is in the people directory, the CSM who originated the deal not
    // yet: the credit service refuses to credit a stranger, and the delivery
    // waits, retried with backoff, its error on the opportunity.
    server.known_ae("alex.ae", "enterprise-sales").await;
    let (deal, _) = win_a_deal(&server, &server).await;
    let mut refused = None;
    for _ in 0..100 {
        refused = deliveries(&server, &deal).await.into_iter().find(|d| {
            d.target == "credit"
                && d.status == pipeline::DeliveryStatus::Pending as i32
                && d.attempts >= 1
        });
        if refused.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = refused.expect("the credit delivery waits");
    assert!(
        refused
            .last_error
            .contains("\"carla.csm\" is not in the people directory"),
        "{refused:?}"
    );
    // Once she is added, the next attempt credits the deal.
    server
        .known_person(
            "carla.csm",
            contracts::pb::credit::v1::PersonRole::Csm,
            "customer-success",
        )
        .await;
    let delivered = settled(&server, &deal).await;
    let credit = delivered
        .iter()
        .find(|d| d.target == "credit")
        .unwrap()
        .clone();
    assert_eq!(credit.opportunity_id, deal);

    // As the dispatcher leaves a delivery the target refused for good.
    pipeline_db(&backend)
        .await
        .execute_unprepared(&format!(
            "UPDATE pipeline_deliveries SET status = 'PARKED', attempts = 3, \
             last_error = 'InvalidArgument: refused' \
             WHERE event_id = '{}' AND target = 'credit'",
            credit.event_id
        ))
        .await
        .unwrap();

    let mut p = server.pipeline().await;
    let parked = p
        .list_deliveries(pipeline::ListDeliveriesRequest {
            status: pipeline::DeliveryStatus::Parked as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(parked.deliveries.len(), 1, "{parked:?}");
    assert_eq!(parked.deliveries[0].event_id, credit.event_id);
    assert_eq!(parked.deliveries[0].last_error, "InvalidArgument: refused");
    // Every status, a page at a time: two deliveries, one per page.
    let first = p
        .list_deliveries(pipeline::ListDeliveriesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.deliveries.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let second = p
        .list_deliveries(pipeline::ListDeliveriesRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.deliveries.len(), 1);
    assert_ne!(first.deliveries[0].target, second.deliveries[0].target);
    let other_list = p
        .list_deliveries(pipeline::ListDeliveriesRequest {
            status: pipeline::DeliveryStatus::Parked as i32,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(other_list.code(), Code::InvalidArgument);

    let retry = pipeline::RetryDeliveryRequest {
        event_id: credit.event_id.clone(),
        target: "credit".into(),
        request_id: "retry-credit-1".into(),
    };
    let retried = p
        .retry_delivery(retry.clone())
        .await
        .unwrap()
        .into_inner()
        .delivery
        .unwrap();
    assert_eq!(retried.status, pipeline::DeliveryStatus::Pending as i32);
    assert_eq!(retried.attempts, 0);
    // The dispatcher sends it again; the credit service, idempotent by
    // deal, stores nothing twice.
    let again = settled(&server, &deal).await;
    let credit_again = again.iter().find(|d| d.target == "credit").unwrap();
    assert_eq!(credit_again.attempts, 1);
    // The same request id answers the first response.
    let replay = p.retry_delivery(retry).await.unwrap().into_inner();
    assert_eq!(
        replay.delivery.unwrap().status,
        pipeline::DeliveryStatus::Pending as i32
    );

    // A delivered one is not parked; an unknown one is not found.
    let not_parked = p
        .retry_delivery(pipeline::RetryDeliveryRequest {
            event_id: credit.event_id.clone(),
            target: "credit".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(not_parked.code(), Code::FailedPrecondition);
    assert_eq!(
        not_parked.get_error_details().error_info().unwrap().reason,
        "DELIVERY_NOT_PARKED"
    );
    let unknown = p
        .retry_delivery(pipeline::RetryDeliveryRequest {
            event_id: credit.event_id.clone(),
            target: "nowhere".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let missing = p
        .retry_delivery(pipeline::RetryDeliveryRequest::default())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);

    // The health service's outbox answers the same way.
    let mut h = server.health().await;
    let none = h
        .list_deliveries(contracts::pb::health::v1::ListDeliveriesRequest {
            status: contracts::pb::health::v1::DeliveryStatus::Parked as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.deliveries.is_empty());
    let unknown = h
        .retry_delivery(contracts::pb::health::v1::RetryDeliveryRequest {
            event_id: credit.event_id,
            target: "credit".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}
