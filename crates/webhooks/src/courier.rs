//! Carries each delivery of the webhook outbox to its endpoint.

use bytes::Bytes;
use sea_orm::DbErr;
use storage::events::StoredEvent;
use storage::outbox::{Courier, Failure};

use crate::{Sender, Webhooks, payload, signature, target};

/// Routes events to the enabled endpoints that asked for them, and POSTs them.
pub struct WebhookCourier {
    webhooks: Webhooks,
    sender: Sender,
}

impl WebhookCourier {
    pub fn new(webhooks: Webhooks, sender: Sender) -> Self {
        Self { webhooks, sender }
    }
}

/// The headers of one delivery besides `Content-Type`.
pub fn headers(event: &StoredEvent, signature: String) -> Vec<(&'static str, String)> {
    vec![
        (signature::HEADER, signature),
        ("expansion-event-id", event.event_id.clone()),
        ("expansion-event-type", event.event_type.clone()),
    ]
}

#[tonic::async_trait]
impl Courier for WebhookCourier {
    fn targets(&self, _event: &StoredEvent) -> Vec<&'static str> {
        Vec::new()
    }

    /// Read after the events, so an endpoint registered since is either
    /// here or started after them.
    async fn route(&self, events: &[StoredEvent]) -> Result<Vec<Vec<String>>, DbErr> {
        let endpoints = self.webhooks.enabled().await?;
        Ok(events
            .iter()
            .map(|event| {
                endpoints
                    .iter()
                    .filter(|e| event.seq > e.start_seq && e.wants(&event.event_type))
                    .map(|e| e.id.clone())
                    .collect()
            })
            .collect())
    }

    async fn deliver(&self, target: &str, event: &StoredEvent) -> Result<(), Failure> {
        let db = |e: crate::Error| Failure::Retry(e.0.to_string());
        let Some(endpoint) = self.webhooks.endpoint(target).await.map_err(db)? else {
            return Err(Failure::Park("the endpoint was deleted".into()));
        };
        if !endpoint.enabled {
            return Err(Failure::Park(format!(
                "endpoint disabled: {}",
                endpoint.disabled_reason
            )));
        }
        let url = target::parse(&endpoint.url).map_err(Failure::Park)?;
        let body = Bytes::from(payload::payload(self.webhooks.tables.service, event).to_string());
        let now = chrono::Utc::now().timestamp();
        let signed = signature::sign(endpoint.secret.as_bytes(), now, &body);
        match self.sender.post(&url, &headers(event, signed), body).await {
            Ok(_) => {
                self.webhooks
                    .succeeded(&endpoint)
                    .await
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                Ok(())
            }
            Err(error) => {
                let disabled = self
                    .webhooks
                    .failed(&endpoint.id, &error)
                    .await
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                if disabled {
                    Err(Failure::Park(format!("endpoint disabled after: {error}")))
                } else {
                    Err(Failure::Retry(error))
                }
            }
        }
    }
}
