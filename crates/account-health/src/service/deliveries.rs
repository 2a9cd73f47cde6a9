//! The outbox's deliveries to the other services: ListDeliveries, RetryDelivery.

use contracts::pb::health::v1 as pb;
use contracts::wire;

use crate::error::HealthError;
use crate::store::Store;

pub(crate) async fn list_deliveries(
    store: &Store,
    req: &pb::ListDeliveriesRequest,
) -> Result<pb::ListDeliveriesResponse, HealthError> {
    let status = crate::outbox::status_filter(
        wire::known_enum::<pb::DeliveryStatus>("status", req.status).map_err(HealthError::from)?,
    );
    let (rows, next_page_token) =
        crate::outbox::outbox(store.writer().clone(), store.events().clone())
            .list_page(store.db(), status, req.page_size, &req.page_token)
            .await
            .map_err(HealthError::from)?;
    Ok(pb::ListDeliveriesResponse {
        deliveries: rows
            .into_iter()
            .map(crate::outbox::delivery_to_pb)
            .collect(),
        next_page_token,
    })
}

pub(crate) async fn retry_delivery(
    store: &Store,
    principal: String,
    req: &pb::RetryDeliveryRequest,
) -> Result<pb::RetryDeliveryResponse, HealthError> {
    let event_id = wire::text("event_id", &req.event_id, wire::MAX_NAME_LEN)?;
    let target = wire::text("target", &req.target, wire::MAX_NAME_LEN)?;
    let delivery = crate::outbox::outbox(store.writer().clone(), store.events().clone())
        .retry_parked(store.db(), &event_id, &target)
        .await?;
    tracing::info!(%principal, %event_id, %target, "parked delivery retried");
    Ok(pb::RetryDeliveryResponse {
        delivery: Some(crate::outbox::delivery_to_pb(delivery)),
    })
}
