//! The body of a webhook: the event as `WatchEvents` streams it, in JSON.

use chrono::SecondsFormat;
use serde_json::{Value, json};
use storage::events::{StoredEvent, encode_cursor};

/// `{"schema_version", "service", "event_id", "event_type", "cursor",
/// "subject_id", "occur_time", "data"}`: `event_id` is the deduplication
/// key, `cursor` the position to replay after.
pub fn payload(service: &str, event: &StoredEvent) -> Value {
    json!({
        "schema_version": crate::SCHEMA_VERSION,
        "service": service,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "cursor": encode_cursor(event.seq),
        "subject_id": event.subject_id,
        "occur_time": event.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "data": event.data,
    })
}
