//! Recording a won deal: the deal row, its first split set, one CREDIT entry per
//! participant and the `credit.deal.credited` event, planned from the request, the
//! policy version in force at the close date and the directory.

use chrono::{DateTime, Duration, Utc};
use domain::Money;

use crate::entity::{deal, person, split_set};
use crate::error::CreditError;
use crate::events::{CreditEvent, DealCredited};
use crate::model::deal::{DealInput, Split, allocate, credit_basis, resolve_splits};
use crate::model::ledger::{Entry, EntryContext, credit_entries};
use crate::model::people::check_participants;
use crate::model::views::DealView;
use crate::model::{Terms, to_json};

/// What recording a deal writes.
#[derive(Debug, Clone)]
pub struct DealRecording {
    pub deal: deal::Model,
    /// Revision 1, as recorded, with overlay percentages resolved.
    pub split_set: split_set::Model,
    pub splits: Vec<Split>,
    pub entries: Vec<Entry>,
    pub event: CreditEvent,
}

impl DealRecording {
    /// The deal as it reads once written.
    pub fn into_view(self) -> DealView {
        DealView {
            cs_led_without_handoff: self.split_set.cs_led_without_handoff,
            deal: self.deal,
            splits: self.splits,
            revision: 1,
            entries: self.entries,
            clawed_back: false,
        }
    }
}

/// A split set revision as stored.
pub fn split_set_row(
    deal_id: &str,
    revision: i32,
    splits: &[Split],
    cs_led_without_handoff: bool,
    reason: Option<String>,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<split_set::Model, CreditError> {
    Ok(split_set::Model {
        deal_id: deal_id.to_owned(),
        revision,
        participants: to_json(&splits)?,
        cs_led_without_handoff,
        reason,
        created_at: now,
        created_by: principal.to_owned(),
    })
}

/// Plans the credits of a won deal under `terms` (the version in force at its close
/// date): its people must be of the directory (`directory` holds the rows sharing a
/// skeleton with one of them), overlays are resolved from the policy, the basis is
/// allocated to the cent and every credit is held for the policy's hold days.
pub fn plan_recording(
    input: &DealInput,
    terms: &Terms,
    directory: &[person::Model],
    principal: &str,
    now: DateTime<Utc>,
) -> Result<DealRecording, CreditError> {
    check_participants("participants", &input.splits, directory)?;
    let splits = resolve_splits("participants", &input.splits, terms)?;
    let basis = credit_basis(input.amount, input.margin, terms)?;
    let credits = allocate(
        "participants",
        basis,
        terms.origination,
        &splits,
        input.cs_led_without_handoff,
    )?;
    let deal_id = input.deal_id.to_string();
    let hold_until = now + Duration::days(i64::from(terms.hold_days));
    let currency = input.amount.currency().code();
    let ctx = EntryContext {
        deal_id: &deal_id,
        currency,
        policy_id: &terms.policy_id,
        policy_version: terms.version,
        principal,
        now,
        revision: 1,
    };
    let entries = credit_entries(&ctx, &credits, hold_until, "deal won");
    let deal = deal_row(input, terms, basis, hold_until, principal, now)?;
    let split_set = split_set_row(
        &deal_id,
        1,
        &splits,
        input.cs_led_without_handoff,
        None,
        principal,
        now,
    )?;
    let event = CreditEvent::DealCredited(DealCredited {
        deal_id,
        policy_id: terms.policy_id.clone(),
        policy_version: terms.version,
        currency_code: currency.to_owned(),
        basis: Money::from_minor(input.amount.currency(), basis).to_amount_string(),
        entry_ids: entries.iter().map(|e| e.entry_id.clone()).collect(),
        principal: principal.to_owned(),
    });
    Ok(DealRecording {
        deal,
        split_set,
        splits,
        entries,
        event,
    })
}

/// The deal row: what was recorded, the basis and the terms it is credited under.
fn deal_row(
    input: &DealInput,
    terms: &Terms,
    basis_minor: i64,
    hold_until: DateTime<Utc>,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<deal::Model, CreditError> {
    Ok(deal::Model {
        deal_id: input.deal_id.to_string(),
        account_id: input.account_id.map(|id| id.to_string()),
        account_name: input.account_name.clone(),
        product_name: input.product_name.clone(),
        product_id: input.product_id.map(|id| id.to_string()),
        subscription_id: input.subscription_id.map(|id| id.to_string()),
        currency: input.amount.currency().code().to_owned(),
        amount_minor: input.amount.minor(),
        margin_percent: input.margin.map(domain::Percent::to_decimal_string),
        basis_minor,
        close_date: input.close_date,
        policy_id: terms.policy_id.clone(),
        policy_version: terms.version,
        recording: to_json(&input.recording())?,
        hold_until,
        created_at: now,
        created_by: principal.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::model::test_support::{deal_input, directory, terms};
    use domain::CreditRole;

    #[test]
    fn a_recording_credits_the_basis_held_for_the_policys_days() {
        let now = chrono::Utc::now();
        let input = deal_input(
            100_001,
            &[
                ("csm", CreditRole::Originator),
                ("ae", CreditRole::Delivery),
            ],
        );
        let mut t = terms(25);
        t.hold_days = 30;
        let plan = plan_recording(&input, &t, &directory(&["csm", "ae"]), "revops", now).unwrap();
        let revenue: i64 = plan
            .entries
            .iter()
            .filter(|e| e.role.is_revenue())
            .map(|e| e.amount_minor)
            .sum();
        assert_eq!(revenue, plan.deal.basis_minor);
        assert_eq!(plan.deal.basis_minor, 100_001);
        assert!(
            plan.entries
                .iter()
                .all(|e| e.hold_until == now + Duration::days(30))
        );
        assert!(plan.entries.iter().all(|e| e.split_revision == 1));
        assert_eq!(plan.split_set.revision, 1);
        let CreditEvent::DealCredited(event) = &plan.event else {
            panic!("a deal event");
        };
        assert_eq!(event.basis, "1000.01");
        assert_eq!(event.entry_ids.len(), plan.entries.len());
        let view = plan.clone().into_view();
        assert_eq!((view.revision, view.clawed_back), (1, false));
    }

    #[test]
    fn a_recording_names_only_people_of_the_directory() {
        let input = deal_input(
            1_000,
            &[
                ("csm", CreditRole::Originator),
                ("ae", CreditRole::Delivery),
            ],
        );
        let err = plan_recording(
            &input,
            &terms(25),
            &directory(&["csm"]),
            "revops",
            chrono::Utc::now(),
        )
        .unwrap_err();
        assert!(matches!(err, CreditError::UnknownParticipants(p) if p == ["ae"]));
    }
}
