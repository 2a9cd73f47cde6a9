//! A cancelled subscription that a won deal created reaches the credit
//! service as a clawback (`ApplyClawback` by deal). Driven from the
//! `health.subscription.cancelled` event by `storage::outbox`.

use contracts::client::AuthChannel;
use contracts::pb::credit::v1 as credit;
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use serde_json::Value;
use storage::events::StoredEvent;
use storage::outbox::{Courier, Failure, Outbox};

pub const CREDIT: &str = "credit";
const CANCELLED: &str = "health.subscription.cancelled";

/// The health service's outbox, over the store's own event log (so a commit
/// wakes the dispatcher at once).
pub fn outbox(writer: storage::WriteGate, log: storage::events::EventLog) -> Outbox {
    Outbox::new(log, "health_deliveries", "health_outbox_cursor", writer)
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

/// The clawback a cancellation asks for; `None` when no deal created the
/// subscription (nothing to claw back).
pub fn clawback_request(event: &StoredEvent) -> Option<credit::ApplyClawbackRequest> {
    let data = &event.data;
    Some(credit::ApplyClawbackRequest {
        request_id: format!("outbox:{}", event.event_id),
        deal_id: text(data, "source_opportunity_id")?.to_owned(),
        subscription_id: text(data, "subscription_id").unwrap_or_default().to_owned(),
        cancel_date: text(data, "cancel_date").unwrap_or_default().to_owned(),
        reason: format!(
            "subscription cancelled: {}",
            text(data, "reason").unwrap_or("no reason given")
        ),
    })
}

#[tonic::async_trait]
impl Courier for HealthCourier {
    fn targets(&self, event: &StoredEvent) -> Vec<&'static str> {
        if event.event_type == CANCELLED && clawback_request(event).is_some() {
            vec![CREDIT]
        } else {
            Vec::new()
        }
    }

    async fn deliver(&self, target: &str, event: &StoredEvent) -> Result<(), Failure> {
        if target != CREDIT {
            return Err(Failure::Park(format!("unknown target {target}")));
        }
        let request = clawback_request(event)
            .ok_or_else(|| Failure::Park("the cancellation names no deal".into()))?;
        let mut client = self
            .credit
            .clone()
            .ok_or_else(|| Failure::Retry("no credit service address is configured".into()))?;
        // NOT_FOUND (the deal's credits have not arrived yet) is retried.
        client
            .apply_clawback(request)
            .await
            .map(|_| ())
            .map_err(|s| Failure::from_status(&s))
    }
}
