//! The outbox's deliveries to the other services: ListDeliveries, RetryDelivery.

use contracts::pb::pipeline::v1 as pb;
use contracts::wire;

use crate::PipelineService;
use crate::error::PipelineError;

impl PipelineService {
    pub(crate) async fn list_deliveries_op(
        &self,
        req: &pb::ListDeliveriesRequest,
    ) -> Result<pb::ListDeliveriesResponse, PipelineError> {
        let status = crate::outbox::status_filter(wire::known_enum::<pb::DeliveryStatus>(
            "status", req.status,
        )?);
        let (rows, next_page_token) =
            crate::outbox::outbox(self.store.writer().clone(), self.store.events().clone())
                .list_page(self.store.db(), status, req.page_size, &req.page_token)
                .await?;
        Ok(pb::ListDeliveriesResponse {
            deliveries: rows
                .into_iter()
                .map(crate::outbox::delivery_to_pb)
                .collect(),
            next_page_token,
        })
    }

    pub(crate) async fn retry_delivery_once(
        &self,
        principal: String,
        req: &pb::RetryDeliveryRequest,
    ) -> Result<pb::RetryDeliveryResponse, PipelineError> {
        let event_id = wire::text("event_id", &req.event_id, wire::MAX_NAME_LEN)?;
        let target = wire::text("target", &req.target, wire::MAX_NAME_LEN)?;
        let delivery =
            crate::outbox::outbox(self.store.writer().clone(), self.store.events().clone())
                .retry_parked(self.store.db(), &event_id, &target)
                .await?;
        tracing::info!(%principal, %event_id, %target, "parked delivery retried");
        Ok(pb::RetryDeliveryResponse {
            delivery: Some(crate::outbox::delivery_to_pb(delivery)),
        })
    }
}
