//! What each RPC does, between decoding and encoding: validation into
//! model types, the health calls, the rules, and the store. Split by area:
//! [`opportunities`], [`handoffs`], [`insights`] (wallet, whitespace, forecast),
//! [`performance`] (team performance).

mod handoffs;
mod insights;
mod opportunities;
mod performance;

use chrono::{DateTime, Utc};
use contracts::pb::pipeline::v1 as pb;
use contracts::{ApiError, FieldViolation, wire};
use domain::{Decimal, OpportunityId, Stage};
use storage::events::NewEvent;

use crate::api::PipelineService;
use crate::convert::opportunity_to_pb;
use crate::entity::{handoff, opportunity};
use crate::error::PipelineError;
use crate::health::HealthError;
use crate::model::forecast::Bucket;
use crate::model::qualification::QualificationRatings;
use crate::model::{HealthSnapshot, rating};
use crate::store::HistoryNote;

/// A key that orders list results; pages resume strictly after the last key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SortKey {
    pub(crate) group: String,
    pub(crate) value: Decimal,
    pub(crate) id: String,
}

impl SortKey {
    pub(crate) fn token_text(&self) -> String {
        format!("{}\u{1}{}\u{1}{}", self.group, self.value, self.id)
    }

    pub(crate) fn from_token_text(text: &str) -> Option<SortKey> {
        let mut parts = text.splitn(3, '\u{1}');
        let group = parts.next()?.to_owned();
        let value = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_owned();
        Some(SortKey { group, value, id })
    }
}

/// INVALID_ARGUMENT naming one field.
pub(crate) fn invalid(field: &str, why: impl std::fmt::Display) -> PipelineError {
    PipelineError::from(ApiError::invalid(field, why))
}

/// An id field parsed into its type, or INVALID_ARGUMENT naming the field.
pub(crate) fn parse_id<T>(
    field: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, domain::IdError>,
) -> Result<T, PipelineError> {
    parse(value).map_err(|e| invalid(field, e))
}

/// A health answer the call cannot do without: UNAVAILABLE, whatever the cause.
pub(crate) fn unavailable(err: HealthError) -> PipelineError {
    match err {
        HealthError::Unavailable(m) | HealthError::NotFound(m) => {
            PipelineError::HealthUnavailable(m)
        }
    }
}

/// Optional free text; empty is `None`.
pub(crate) fn opt_text(
    field: &str,
    value: &str,
    max: usize,
) -> Result<Option<String>, PipelineError> {
    Ok(wire::optional_text(field, value, max)?)
}

/// An event for the pipeline's log.
pub(crate) fn event(event_type: &'static str, subject: &str, data: serde_json::Value) -> NewEvent {
    NewEvent {
        event_type,
        subject_id: subject.to_owned(),
        data,
    }
}

/// A history row without a reason.
pub(crate) fn note(
    field: &'static str,
    previous: Option<String>,
    new: Option<String>,
) -> HistoryNote {
    HistoryNote {
        field,
        previous,
        new,
        reason: None,
    }
}

/// The four explicit ratings of a `ScoreQualification` call, each missing one named.
pub(crate) fn ratings_request(
    req: &pb::ScoreQualificationRequest,
) -> Result<QualificationRatings, ApiError> {
    let mut violations = Vec::new();
    let mut get = |field: &str, value: i32| match rating(field, value) {
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            violations.push(FieldViolation::new(
                field,
                "is required: HIGH, MEDIUM or LOW",
            ));
            None
        }
        Err(ApiError::InvalidArgument { violations: v }) => {
            violations.extend(v);
            None
        }
        Err(_) => None,
    };
    let fit = get("fit", req.fit);
    let applicability = get("applicability", req.applicability);
    let capability = get("capability", req.capability);
    let competitive_position = get("competitive_position", req.competitive_position);
    match (fit, applicability, capability, competitive_position) {
        (Some(fit), Some(applicability), Some(capability), Some(competitive_position)) => {
            Ok(QualificationRatings {
                fit,
                applicability,
                capability,
                competitive_position,
            })
        }
        _ => Err(ApiError::InvalidArgument { violations }),
    }
}

/// The accepted handoff as the closed_won event carries it (null without one).
pub(crate) fn closed_won_handoff(h: Option<&handoff::Model>) -> serde_json::Value {
    match h {
        None => serde_json::Value::Null,
        Some(h) => serde_json::json!({
            "handoff_id": h.id,
            "requested_by": h.requested_by,
            "accepted_by": h.accepted_owner,
            "accepted_team": h.accepted_team,
            "accept_time": h.resolved_at.map(|t| t.to_rfc3339()),
        }),
    }
}

/// A forecast bucket on the wire.
pub(crate) fn bucket_pb(key: String, b: &Bucket) -> pb::GroupForecast {
    pb::GroupForecast {
        key,
        count: b.count,
        amount: Some(wire::money_to_pb(&b.amount)),
        weighted_amount: Some(wire::money_to_pb(&b.weighted)),
    }
}

impl PipelineService {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        storage::now()
    }

    pub(crate) fn to_pb(&self, m: opportunity::Model) -> Result<pb::Opportunity, PipelineError> {
        opportunity_to_pb(m, &self.config, self.now())
    }

    pub(crate) async fn load(
        &self,
        field: &str,
        raw: &str,
    ) -> Result<opportunity::Model, PipelineError> {
        let id = parse_id(field, raw, OpportunityId::parse)?;
        self.store
            .opportunity(&id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("opportunity", id.to_string()))
    }

    pub(crate) fn check_etag(m: &opportunity::Model, expected: i64) -> Result<(), PipelineError> {
        if m.version != expected {
            return Err(PipelineError::EtagMismatch(format!(
                "etag {expected} is stale: opportunity {} is now at etag {}; read it again and retry",
                m.id, m.version
            )));
        }
        Ok(())
    }

    pub(crate) fn ensure_open(m: &opportunity::Model, stage: Stage) -> Result<(), PipelineError> {
        if stage.is_closed() {
            return Err(PipelineError::precondition(
                "OPPORTUNITY_CLOSED",
                &m.id,
                format!(
                    "opportunity {} is {stage}; an admin must reopen it first",
                    m.id
                ),
            ));
        }
        Ok(())
    }

    /// A best-effort health snapshot: `None` when health cannot answer.
    pub(crate) async fn snapshot(
        &self,
        account_id: &str,
        source_product: Option<&str>,
    ) -> Option<HealthSnapshot> {
        match self.health.account_health(account_id).await {
            Ok(view) => Some(HealthSnapshot::capture(&view, source_product, self.now())),
            Err(err) => {
                tracing::info!(%err, "no health snapshot");
                None
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_round_trip_through_tokens() {
        let key = SortKey {
            group: "USD".into(),
            value: Decimal::new(-35_000_000, 2),
            id: "01a2".into(),
        };
        assert_eq!(SortKey::from_token_text(&key.token_text()), Some(key));
        assert_eq!(SortKey::from_token_text("junk"), None);
    }
}
