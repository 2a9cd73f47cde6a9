//! Disputes over ledger entries: opening one (one open dispute per entry, a person
//! disputes only their own entries) and resolving it, adjusted (an ADJUSTMENT linked to
//! the disputed entry, in its currency) or rejected (no entry). Nobody rules on their
//! own credit.

use chrono::{DateTime, Utc};
use contracts::{ApiError, Principal};
use domain::Money;

use crate::entity::{dispute, dispute_resolution, open_dispute};
use crate::error::CreditError;
use crate::events::{CreditEvent, DisputeOpened, DisputeResolved};
use crate::model::ledger::{self, Entry, EntryContext};
use crate::model::privacy;
use crate::model::views::DisputeView;

/// Stored outcome of a dispute resolved with an adjustment.
pub const RESOLVED_ADJUSTED: &str = "RESOLVED_ADJUSTED";
/// Stored outcome of a dispute rejected.
pub const RESOLVED_REJECTED: &str = "RESOLVED_REJECTED";

/// How a dispute is closed.
#[derive(Debug, Clone)]
pub enum Resolution {
    Adjust(Money),
    Reject,
}

impl Resolution {
    /// The outcome stored for it.
    pub fn outcome(&self) -> &'static str {
        match self {
            Resolution::Adjust(_) => RESOLVED_ADJUSTED,
            Resolution::Reject => RESOLVED_REJECTED,
        }
    }
}

/// What opening a dispute writes.
#[derive(Debug, Clone)]
pub struct DisputeOpening {
    pub dispute: dispute::Model,
    /// The entry's claim: of concurrent openers, the one that inserts it wins.
    pub claim: open_dispute::Model,
    pub event: CreditEvent,
}

/// Plans a dispute `dispute_id` over `entry` by `opener`.
pub fn plan_dispute_opening(
    entry: &Entry,
    reason: &str,
    opener: &Principal,
    dispute_id: String,
    now: DateTime<Utc>,
) -> Result<DisputeOpening, CreditError> {
    privacy::check_dispute_open(opener, &entry.participant_id)?;
    let dispute = dispute::Model {
        dispute_id: dispute_id.clone(),
        entry_id: entry.entry_id.clone(),
        opened_by: opener.name.clone(),
        reason: reason.to_owned(),
        opened_at: now,
    };
    let claim = open_dispute::Model {
        entry_id: entry.entry_id.clone(),
        dispute_id: dispute_id.clone(),
    };
    let event = CreditEvent::DisputeOpened(DisputeOpened {
        dispute_id,
        entry_id: entry.entry_id.clone(),
        deal_id: entry.deal_id.clone(),
        participant_id: entry.participant_id.clone(),
        reason: reason.to_owned(),
        principal: opener.name.clone(),
    });
    Ok(DisputeOpening {
        dispute,
        claim,
        event,
    })
}

/// What resolving a dispute writes.
#[derive(Debug, Clone)]
pub struct DisputeRuling {
    pub row: dispute_resolution::Model,
    pub adjustment: Option<Entry>,
    pub event: CreditEvent,
}

/// Plans the resolution of `view` over its `disputed` entry.
pub fn plan_resolution(
    view: &DisputeView,
    disputed: &Entry,
    resolution: &Resolution,
    note: Option<String>,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<DisputeRuling, CreditError> {
    let dispute_id = view.dispute.dispute_id.as_str();
    if view.resolution.is_some() {
        return Err(CreditError::DisputeAlreadyResolved(dispute_id.to_owned()));
    }
    privacy::check_ruling(
        principal,
        &disputed.participant_id,
        matches!(resolution, Resolution::Adjust(_)),
    )?;
    let adjustment = match resolution {
        Resolution::Reject => None,
        Resolution::Adjust(money) => Some(adjustment(
            view,
            disputed,
            *money,
            note.as_deref(),
            principal,
            now,
        )?),
    };
    let outcome = resolution.outcome();
    let row = dispute_resolution::Model {
        dispute_id: dispute_id.to_owned(),
        outcome: outcome.to_owned(),
        note,
        adjustment_entry_id: adjustment.as_ref().map(|e| e.entry_id.clone()),
        resolved_at: now,
        resolved_by: principal.to_owned(),
    };
    let event = CreditEvent::DisputeResolved(DisputeResolved {
        dispute_id: dispute_id.to_owned(),
        entry_id: disputed.entry_id.clone(),
        deal_id: disputed.deal_id.clone(),
        outcome: outcome.to_owned(),
        adjustment_entry_id: adjustment.as_ref().map(|e| e.entry_id.clone()),
        adjustment: adjustment.as_ref().map(|e| e.amount_minor.to_string()),
        currency_code: disputed.currency.clone(),
        principal: principal.to_owned(),
    });
    Ok(DisputeRuling {
        row,
        adjustment,
        event,
    })
}

/// The ADJUSTMENT of an adjusted dispute, in the disputed entry's currency.
fn adjustment(
    view: &DisputeView,
    disputed: &Entry,
    money: Money,
    note: Option<&str>,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<Entry, CreditError> {
    if money.currency().code() != disputed.currency {
        return Err(ApiError::invalid(
            "adjustment.currency_code",
            format!(
                "must be {}, the disputed entry's currency (got {})",
                disputed.currency,
                money.currency()
            ),
        )
        .into());
    }
    let ctx = EntryContext {
        deal_id: &disputed.deal_id,
        currency: &disputed.currency,
        policy_id: &disputed.policy_id,
        policy_version: disputed.policy_version,
        principal,
        now,
        revision: disputed.split_revision,
    };
    Ok(ledger::adjustment_entry(
        &ctx,
        disputed,
        money.minor(),
        &format!(
            "dispute {}: {}",
            view.dispute.dispute_id,
            note.unwrap_or(&view.dispute.reason)
        ),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::recording::plan_recording;
    use crate::model::test_support::{deal_input, directory, dispute_over, terms};
    use domain::CreditRole::{Delivery, Originator};
    use domain::Currency;

    fn entry() -> Entry {
        let input = deal_input(1_000, &[("csm", Originator), ("ae", Delivery)]);
        plan_recording(
            &input,
            &terms(25),
            &directory(&["csm", "ae"]),
            "revops",
            chrono::Utc::now(),
        )
        .unwrap()
        .entries
        .remove(0)
    }

    #[test]
    fn an_adjustment_is_linked_signed_and_in_the_entrys_currency() {
        let now = chrono::Utc::now();
        let disputed = entry();
        let view = dispute_over(&disputed);
        let usd = Currency::parse("USD").unwrap();
        let ruling = plan_resolution(
            &view,
            &disputed,
            &Resolution::Adjust(Money::from_minor(usd, -150)),
            None,
            "revops",
            now,
        )
        .unwrap();
        let adj = ruling.adjustment.clone().unwrap();
        assert_eq!(adj.amount_minor, -150);
        assert_eq!(
            adj.reverses_entry_id.as_deref(),
            Some(disputed.entry_id.as_str())
        );
        assert_eq!(ruling.row.outcome, RESOLVED_ADJUSTED);
        assert_eq!(ruling.row.adjustment_entry_id.as_ref(), Some(&adj.entry_id));
        assert_eq!(adj.reason.as_deref(), Some("dispute dp: wrong split"));
        let eur = Currency::parse("EUR").unwrap();
        let err = plan_resolution(
            &view,
            &disputed,
            &Resolution::Adjust(Money::from_minor(eur, 1)),
            None,
            "revops",
            now,
        )
        .unwrap_err();
        assert_eq!(
            ApiError::from(err).field(),
            Some("adjustment.currency_code")
        );
    }

    #[test]
    fn a_rejection_writes_no_entry_and_nobody_rules_twice_or_on_their_own() {
        let now = chrono::Utc::now();
        let disputed = entry();
        let mut view = dispute_over(&disputed);
        let ruling = plan_resolution(
            &view,
            &disputed,
            &Resolution::Reject,
            Some("no".into()),
            "revops",
            now,
        )
        .unwrap();
        assert!(ruling.adjustment.is_none());
        assert_eq!(ruling.row.outcome, RESOLVED_REJECTED);
        let err =
            plan_resolution(&view, &disputed, &Resolution::Reject, None, "csm", now).unwrap_err();
        assert!(matches!(err, CreditError::Refused(_)));
        view.resolution = Some(ruling.row);
        let err = plan_resolution(&view, &disputed, &Resolution::Reject, None, "revops", now)
            .unwrap_err();
        assert!(matches!(err, CreditError::DisputeAlreadyResolved(_)));
    }

    #[test]
    fn a_person_disputes_their_own_entries_only() {
        let disputed = entry();
        let mut opener = Principal::new("ae", contracts::access::Role::Ae);
        let err = plan_dispute_opening(&disputed, "why", &opener, "dp".into(), chrono::Utc::now())
            .unwrap_err();
        assert!(matches!(err, CreditError::Refused(_)));
        opener.name = disputed.participant_id.clone();
        let opening =
            plan_dispute_opening(&disputed, "why", &opener, "dp".into(), chrono::Utc::now())
                .unwrap();
        assert_eq!(opening.claim.entry_id, disputed.entry_id);
        assert_eq!(opening.dispute.opened_by, disputed.participant_id);
    }
}
