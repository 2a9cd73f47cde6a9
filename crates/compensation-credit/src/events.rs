//! The credit service's events, one type per kind. Each is appended in the transaction
//! of the write it records (see [`crate::store`]); its `data` is the variant's struct as
//! JSON, which webhook receivers and `WatchEvents` readers see as is.

use serde::{Deserialize, Serialize};
use storage::events::Event;

/// Every event the credit service appends, tagged by its `event_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CreditEvent {
    #[serde(rename = "credit.policy.version_added")]
    PolicyVersionAdded(PolicyVersionAdded),
    #[serde(rename = "credit.deal.credited")]
    DealCredited(DealCredited),
    #[serde(rename = "credit.deal.splits_replaced")]
    SplitsReplaced(SplitsReplaced),
    #[serde(rename = "credit.credits.released")]
    CreditsReleased(CreditsReleased),
    #[serde(rename = "credit.deal.clawed_back")]
    DealClawedBack(DealClawedBack),
    #[serde(rename = "credit.dispute.opened")]
    DisputeOpened(DisputeOpened),
    #[serde(rename = "credit.dispute.resolved")]
    DisputeResolved(DisputeResolved),
    #[serde(rename = "credit.person.upserted")]
    PersonUpserted(PersonUpserted),
}

impl Event for CreditEvent {
    fn subject_id(&self) -> String {
        match self {
            CreditEvent::PolicyVersionAdded(e) => e.policy_id.clone(),
            CreditEvent::DealCredited(e) => e.deal_id.clone(),
            CreditEvent::SplitsReplaced(e) => e.deal_id.clone(),
            CreditEvent::CreditsReleased(e) => e.deal_ids.join(","),
            CreditEvent::DealClawedBack(e) => e.deal_id.clone(),
            CreditEvent::DisputeOpened(e) => e.dispute_id.clone(),
            CreditEvent::DisputeResolved(e) => e.dispute_id.clone(),
            CreditEvent::PersonUpserted(e) => e.person_id.clone(),
        }
    }
}

/// A policy gained a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersionAdded {
    pub policy_id: String,
    pub version: i32,
    /// `YYYY-MM-DD`.
    pub effective_date: String,
    pub principal: String,
}

/// A won deal was credited under a policy version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealCredited {
    pub deal_id: String,
    pub policy_id: String,
    pub policy_version: i32,
    pub currency_code: String,
    /// The credit basis as an exact amount string.
    pub basis: String,
    pub entry_ids: Vec<String>,
    pub principal: String,
}

/// A deal's split set was replaced (reversals and the new credits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitsReplaced {
    pub deal_id: String,
    pub revision: i32,
    pub reason: String,
    pub entry_ids: Vec<String>,
    pub principal: String,
}

/// Held entries were released by ApproveCredits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditsReleased {
    pub deal_ids: Vec<String>,
    pub entry_ids: Vec<String>,
    pub note: Option<String>,
    pub principal: String,
}

/// A deal's credits were clawed back after a cancellation inside its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealClawedBack {
    pub deal_id: String,
    pub subscription_id: Option<String>,
    /// `YYYY-MM-DD`.
    pub cancel_date: String,
    /// `CLAWBACK_MODE_*` name.
    pub mode: String,
    pub elapsed_days: i64,
    pub window_days: i32,
    pub currency_code: String,
    /// Released credit recovered, as an exact amount string (deal-wide).
    pub recovered: String,
    /// Held credit forfeited, as an exact amount string (deal-wide).
    pub forfeited: String,
    pub entry_ids: Vec<String>,
    pub principal: String,
}

/// A dispute was opened over an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeOpened {
    pub dispute_id: String,
    pub entry_id: String,
    pub deal_id: String,
    pub participant_id: String,
    pub reason: String,
    pub principal: String,
}

/// A dispute was resolved, adjusted or rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeResolved {
    pub dispute_id: String,
    pub entry_id: String,
    pub deal_id: String,
    /// `RESOLVED_ADJUSTED` or `RESOLVED_REJECTED`.
    pub outcome: String,
    pub adjustment_entry_id: Option<String>,
    /// Signed minor units of the adjustment, as text.
    pub adjustment: Option<String>,
    pub currency_code: String,
    pub principal: String,
}

/// A person of the directory gained a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonUpserted {
    pub person_id: String,
    pub version: i32,
    /// `PERSON_ROLE_*` name.
    pub role: String,
    pub team: Option<String>,
    pub manager_id: Option<String>,
    pub principal: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use storage::events::{NewEvent, StoredEvent, parse};

    fn stored(new: &NewEvent) -> StoredEvent {
        StoredEvent {
            seq: 1,
            event_id: "e".into(),
            event_type: new.event_type.to_string(),
            subject_id: new.subject_id.clone(),
            data: new.data.clone(),
            occurred_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_release_keeps_its_payload_and_names_every_deal() {
        let event = CreditEvent::CreditsReleased(CreditsReleased {
            deal_ids: vec!["d1".into(), "d2".into()],
            entry_ids: vec!["e1".into()],
            note: None,
            principal: "revops".into(),
        });
        let new = NewEvent::of(&event).unwrap();
        assert_eq!(new.event_type, "credit.credits.released");
        assert_eq!(new.subject_id, "d1,d2");
        assert_eq!(
            new.data,
            serde_json::json!({
                "deal_ids": ["d1", "d2"],
                "entry_ids": ["e1"],
                "note": null,
                "principal": "revops",
            })
        );
        assert_eq!(parse::<CreditEvent>(&stored(&new)), Some(event));
    }

    #[test]
    fn a_rejected_dispute_carries_nulls_for_its_adjustment() {
        let event = CreditEvent::DisputeResolved(DisputeResolved {
            dispute_id: "dp".into(),
            entry_id: "e".into(),
            deal_id: "d".into(),
            outcome: "RESOLVED_REJECTED".into(),
            adjustment_entry_id: None,
            adjustment: None,
            currency_code: "USD".into(),
            principal: "revops".into(),
        });
        let new = NewEvent::of(&event).unwrap();
        assert_eq!(new.event_type, "credit.dispute.resolved");
        assert_eq!(new.subject_id, "dp");
        assert_eq!(new.data["adjustment"], serde_json::Value::Null);
        assert_eq!(new.data["adjustment_entry_id"], serde_json::Value::Null);
        assert_eq!(new.data.as_object().unwrap().len(), 8);
    }
}
