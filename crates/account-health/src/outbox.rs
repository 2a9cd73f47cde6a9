//! A cancelled subscription that a won deal created, or that won upsells
//! grew, reaches the credit service as clawbacks (`ApplyClawback` by deal). Driven from the
//! `health.subscription.cancelled` event by `storage::outbox`.

use contracts::client::AuthChannel;
use contracts::pb::credit::v1 as credit;
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use serde_json::Value;
use storage::events::StoredEvent;
use storage::outbox::{Courier, DeliveryStatus, Failure, Outbox};

pub const CREDIT: &str = "credit";
const CANCELLED: &str = "health.subscription.cancelled";

/// The health service's outbox, over the store's own event log (so a commit
/// wakes the dispatcher at once).
pub fn outbox(writer: storage::WriteGate, log: storage::events::EventLog) -> Outbox {
    Outbox::new(log, "health_deliveries", "health_outbox_cursor", writer)
}

/// One delivery on the wire.
pub fn delivery_to_pb(d: storage::outbox::Delivery) -> contracts::pb::health::v1::OutboxDelivery {
    use contracts::pb::health::v1 as pb;
    pb::OutboxDelivery {
        target: d.target,
        status: match d.status {
            DeliveryStatus::Pending => pb::DeliveryStatus::Pending,
            DeliveryStatus::Delivered => pb::DeliveryStatus::Delivered,
            DeliveryStatus::Parked => pb::DeliveryStatus::Parked,
        } as i32,
        attempts: d.attempts,
        last_error: d.last_error.unwrap_or_default(),
        event_id: d.event_id,
        subject_id: d.subject_id,
        next_attempt_time: (d.status == DeliveryStatus::Pending)
            .then(|| contracts::wire::timestamp(d.next_attempt_at)),
    }
}

/// The stored status a `ListDeliveries` filter names; `None` for all.
pub fn status_filter(status: contracts::pb::health::v1::DeliveryStatus) -> Option<DeliveryStatus> {
    use contracts::pb::health::v1::DeliveryStatus as Wire;
    match status {
        Wire::Unspecified => None,
        Wire::Pending => Some(DeliveryStatus::Pending),
        Wire::Delivered => Some(DeliveryStatus::Delivered),
        Wire::Parked => Some(DeliveryStatus::Parked),
    }
}

/// Delivers clawbacks to the credit service.
pub struct HealthCourier {
    credit: Option<CompensationCreditServiceClient<AuthChannel>>,
}

impl HealthCourier {
    pub fn new(credit: Option<AuthChannel>) -> Self {
        Self {
            credit: credit.map(CompensationCreditServiceClient::new),
        }
    }
}

fn text<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The clawbacks a cancellation asks for: the deal that created the
/// subscription, then each won upsell that grew it; none when no deal is
/// involved. Each has its own request id, so a retried delivery is a replay.
pub fn clawback_requests(event: &StoredEvent) -> Vec<credit::ApplyClawbackRequest> {
    let data = &event.data;
    let creator = text(data, "source_opportunity_id").map(|deal| (deal, String::new()));
    let upsells = data
        .get("upsell_opportunity_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|deal| !deal.is_empty())
        .map(|deal| (deal, format!(":{deal}")));
    creator
        .into_iter()
        .chain(upsells)
        .map(|(deal, suffix)| credit::ApplyClawbackRequest {
            request_id: format!("outbox:{}{suffix}", event.event_id),
            deal_id: deal.to_owned(),
            subscription_id: text(data, "subscription_id").unwrap_or_default().to_owned(),
            cancel_date: text(data, "cancel_date").unwrap_or_default().to_owned(),
            reason: format!(
                "subscription cancelled: {}",
                text(data, "reason").unwrap_or("no reason given")
            ),
        })
        .collect()
}

#[tonic::async_trait]
impl Courier for HealthCourier {
    fn targets(&self, event: &StoredEvent) -> Vec<&'static str> {
        if event.event_type == CANCELLED && !clawback_requests(event).is_empty() {
            vec![CREDIT]
        } else {
            Vec::new()
        }
    }

    async fn deliver(&self, target: &str, event: &StoredEvent) -> Result<(), Failure> {
        if target != CREDIT {
            return Err(Failure::Park(format!("unknown target {target}")));
        }
        let requests = clawback_requests(event);
        if requests.is_empty() {
            return Err(Failure::Park("the cancellation names no deal".into()));
        }
        let mut client = self
            .credit
            .clone()
            .ok_or_else(|| Failure::Retry("no credit service address is configured".into()))?;
        // NOT_FOUND (the deal's credits have not arrived yet) is retried; each
        // clawback is idempotent by its request id, so a retry replays the
        // ones already applied.
        for request in requests {
            client
                .apply_clawback(request)
                .await
                .map_err(|s| Failure::from_status(&s))?;
        }
        Ok(())
    }
}
