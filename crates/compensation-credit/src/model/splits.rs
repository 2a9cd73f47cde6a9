//! Replacing a deal's whole split set: ADJUSTMENT reversals of the live credits, then the
//! new set's CREDITs under the deal's own policy version, and the next split set
//! revision. The owner's split must stay; a clawed-back deal's splits no longer change;
//! nobody credited on the deal changes them.

use chrono::{DateTime, Utc};
use contracts::ApiError;

use crate::entity::{person, split_set};
use crate::error::CreditError;
use crate::events::{CreditEvent, SplitsReplaced};
use crate::model::Terms;
use crate::model::deal::{PlannedCredit, Split, allocate, resolve_splits};
use crate::model::ledger::{Entry, EntryContext, credit_entries, live_credits, split_reversals};
use crate::model::people::check_participants;
use crate::model::privacy;
use crate::model::recording::split_set_row;
use crate::model::views::DealView;

/// A ReplaceDealSplits request, validated.
#[derive(Debug, Clone, Copy)]
pub struct SplitChange<'a> {
    pub splits: &'a [Split],
    pub cs_led_without_handoff: bool,
    pub reason: &'a str,
}

/// What a split replacement writes.
#[derive(Debug, Clone)]
pub struct SplitReplacement {
    pub split_set: split_set::Model,
    /// The split set in force once written, overlays resolved.
    pub splits: Vec<Split>,
    /// The reversals, then the new credits.
    pub entries: Vec<Entry>,
    pub event: CreditEvent,
}

/// The new split set with the owner's split kept and marked: the deal's owner must
/// still be listed in its role with a share, and no one else may claim to own it.
pub fn keep_owner(
    deal_id: &str,
    current: &[Split],
    new_splits: &[Split],
) -> Result<Vec<Split>, CreditError> {
    let mut new_splits = new_splits.to_vec();
    let Some(owner) = current.iter().find(|s| s.owner) else {
        return Ok(new_splits);
    };
    let kept = new_splits.iter().position(|s| {
        s.participant_id == owner.participant_id
            && s.role == owner.role
            && s.percent.is_none_or(|p| !p.is_zero())
    });
    let Some(kept) = kept else {
        return Err(CreditError::OwnerSplitRemoved {
            deal_id: deal_id.to_owned(),
            owner: format!("{} as {}", owner.participant_id, owner.role),
        });
    };
    if let Some(other) = new_splits.iter().position(|s| s.owner)
        && other != kept
    {
        return Err(ApiError::invalid(
            format!("participants[{other}].owner"),
            format!(
                "the deal's owner is {} as {}; ReplaceDealSplits keeps it",
                owner.participant_id, owner.role
            ),
        )
        .into());
    }
    new_splits[kept].owner = true;
    Ok(new_splits)
}

/// Plans a split replacement of `view` (loaded in the write's transaction) under the
/// deal's `terms`; `None` when the change is the set already in force. `directory`
/// holds the rows sharing a skeleton with one of the new participants.
pub fn plan_split_replacement(
    view: &DealView,
    terms: &Terms,
    directory: &[person::Model],
    change: SplitChange<'_>,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<Option<SplitReplacement>, CreditError> {
    let deal_id = view.deal.deal_id.as_str();
    check_may_replace(view, change.splits, principal)?;
    let new_splits = keep_owner(deal_id, &view.splits, change.splits)?;
    check_participants("participants", &new_splits, directory)?;
    let resolved = resolve_splits("participants", &new_splits, terms)?;
    if resolved == view.splits && change.cs_led_without_handoff == view.cs_led_without_handoff {
        return Ok(None);
    }
    let credits = allocate(
        "participants",
        view.deal.basis_minor,
        terms.origination,
        &resolved,
        change.cs_led_without_handoff,
    )?;
    let revision = view.revision + 1;
    let ctx = EntryContext {
        deal_id,
        currency: &view.deal.currency,
        policy_id: &view.deal.policy_id,
        policy_version: view.deal.policy_version,
        principal,
        now,
        revision,
    };
    let entries = replacement_entries(view, &ctx, &credits, change.reason);
    let split_set = split_set_row(
        deal_id,
        revision,
        &resolved,
        change.cs_led_without_handoff,
        Some(change.reason.to_owned()),
        principal,
        now,
    )?;
    let event = CreditEvent::SplitsReplaced(SplitsReplaced {
        deal_id: deal_id.to_owned(),
        revision,
        reason: change.reason.to_owned(),
        entry_ids: entries.iter().map(|e| e.entry_id.clone()).collect(),
        principal: principal.to_owned(),
    });
    Ok(Some(SplitReplacement {
        split_set,
        splits: resolved,
        entries,
        event,
    }))
}

/// A deal's splits may change unless it was clawed back, and only by someone not
/// credited on it (neither in its current or new splits nor in its ledger).
fn check_may_replace(
    view: &DealView,
    new_splits: &[Split],
    principal: &str,
) -> Result<(), CreditError> {
    let deal_id = view.deal.deal_id.as_str();
    if view.clawed_back {
        return Err(CreditError::DealClawedBack(deal_id.to_owned()));
    }
    privacy::check_split_change(
        principal,
        deal_id,
        view.splits
            .iter()
            .chain(new_splits)
            .map(|s| s.participant_id.as_str())
            .chain(view.entries.iter().map(|e| e.participant_id.as_str())),
    )?;
    Ok(())
}

/// The replacement's ledger entries: ADJUSTMENT reversals of the credits live at the
/// deal's current revision, then the new `credits`. Money already released stays
/// released: the corrected credits are not held again.
fn replacement_entries(
    view: &DealView,
    ctx: &EntryContext<'_>,
    credits: &[PlannedCredit],
    reason: &str,
) -> Vec<Entry> {
    let live = live_credits(&view.entries, view.revision);
    let hold_until = if live.iter().any(|e| e.is_released(ctx.now)) {
        ctx.now
    } else {
        view.deal.hold_until
    };
    let mut entries = split_reversals(ctx, &live, reason);
    entries.extend(credit_entries(
        ctx,
        credits,
        hold_until,
        &format!("split replaced: {reason}"),
    ));
    entries
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ledger::EntryKind;
    use crate::model::recording::plan_recording;
    use crate::model::test_support::{deal_input, directory, split, terms};
    use domain::CreditRole::{Delivery, Originator};
    use domain::Percent;

    fn recorded() -> DealView {
        let mut input = deal_input(100_000, &[("csm", Originator), ("ae", Delivery)]);
        input.splits[0].owner = true;
        plan_recording(
            &input,
            &terms(25),
            &directory(&["csm", "ae", "bo"]),
            "revops",
            chrono::Utc::now(),
        )
        .unwrap()
        .into_view()
    }

    fn change(splits: &[Split]) -> SplitChange<'_> {
        SplitChange {
            splits,
            cs_led_without_handoff: false,
            reason: "fix",
        }
    }

    #[test]
    fn a_replacement_reverses_the_live_credits_and_credits_the_new_set() {
        let view = recorded();
        let mut ae = split("ae", Delivery);
        ae.percent = Some(Percent::from_whole(50));
        let mut bo = split("bo", Delivery);
        bo.percent = Some(Percent::from_whole(50));
        let new = [split("csm", Originator), ae, bo];
        let now = chrono::Utc::now();
        let plan = plan_split_replacement(
            &view,
            &terms(25),
            &directory(&["csm", "ae", "bo"]),
            change(&new),
            "revops",
            now,
        )
        .unwrap()
        .unwrap();
        assert_eq!(plan.split_set.revision, 2);
        let reversals: Vec<&Entry> = plan
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Adjustment)
            .collect();
        let live = live_credits(&view.entries, 1);
        assert_eq!(
            reversals.len(),
            live.iter().filter(|e| e.amount_minor != 0).count()
        );
        for r in &reversals {
            let original = live
                .iter()
                .find(|e| Some(&e.entry_id) == r.reverses_entry_id.as_ref())
                .unwrap();
            assert_eq!(r.amount_minor, -original.amount_minor);
        }
        let credited: i64 = plan
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Credit && e.role.is_revenue())
            .map(|e| e.amount_minor)
            .sum();
        assert_eq!(credited, 100_000);
        assert!(plan.split_set.participants.contains("\"owner\":true"));
    }

    #[test]
    fn the_set_in_force_writes_nothing_and_the_owner_stays() {
        let view = recorded();
        let same = [split("csm", Originator), split("ae", Delivery)];
        let dir = directory(&["csm", "ae", "bo"]);
        let now = chrono::Utc::now();
        assert!(
            plan_split_replacement(&view, &terms(25), &dir, change(&same), "revops", now)
                .unwrap()
                .is_none()
        );
        let without_owner = [split("bo", Originator), split("ae", Delivery)];
        let err = plan_split_replacement(
            &view,
            &terms(25),
            &dir,
            change(&without_owner),
            "revops",
            now,
        )
        .unwrap_err();
        assert!(matches!(err, CreditError::OwnerSplitRemoved { .. }));
        let mut usurper = split("ae", Delivery);
        usurper.owner = true;
        let err = keep_owner("d", &view.splits, &[split("csm", Originator), usurper]).unwrap_err();
        assert_eq!(ApiError::from(err).field(), Some("participants[1].owner"));
        // Someone credited on the deal does not change its splits.
        let err =
            plan_split_replacement(&view, &terms(25), &dir, change(&same), "ae", now).unwrap_err();
        assert!(matches!(err, CreditError::Refused(_)));
        let mut clawed = view.clone();
        clawed.clawed_back = true;
        let err = plan_split_replacement(&clawed, &terms(25), &dir, change(&same), "revops", now)
            .unwrap_err();
        assert!(matches!(err, CreditError::DealClawedBack(_)));
    }

    #[test]
    fn only_someone_not_credited_replaces_a_live_deal() {
        let view = recorded();
        let new = [split("csm", Originator), split("bo", Delivery)];
        assert!(check_may_replace(&view, &new, "revops").is_ok());
        for credited in ["csm", "ae", "bo"] {
            let err = check_may_replace(&view, &new, credited).unwrap_err();
            assert!(matches!(err, CreditError::Refused(_)), "{credited}");
        }
        let mut clawed = view.clone();
        clawed.clawed_back = true;
        let err = check_may_replace(&clawed, &new, "revops").unwrap_err();
        assert!(matches!(err, CreditError::DealClawedBack(_)));
    }

    #[test]
    fn replacement_entries_reverse_then_credit_and_keep_the_hold() {
        let view = recorded();
        let now = chrono::Utc::now();
        let ctx = EntryContext {
            deal_id: &view.deal.deal_id,
            currency: &view.deal.currency,
            policy_id: &view.deal.policy_id,
            policy_version: view.deal.policy_version,
            principal: "revops",
            now,
            revision: view.revision + 1,
        };
        let splits = resolve_splits("participants", &view.splits, &terms(25)).unwrap();
        let credits = allocate(
            "participants",
            view.deal.basis_minor,
            Percent::from_whole(25),
            &splits,
            false,
        )
        .unwrap();
        let entries = replacement_entries(&view, &ctx, &credits, "fix");
        let kinds: Vec<EntryKind> = entries.iter().map(|e| e.kind).collect();
        let first_credit = kinds.iter().position(|k| *k == EntryKind::Credit).unwrap();
        assert!(
            kinds[..first_credit]
                .iter()
                .all(|k| *k == EntryKind::Adjustment)
        );
        assert!(first_credit > 0);
        assert_eq!(entries.iter().map(|e| e.amount_minor).sum::<i64>(), 0);
        let released = live_credits(&view.entries, view.revision)
            .iter()
            .any(|e| e.is_released(now));
        let hold = if released { now } else { view.deal.hold_until };
        for credit in &entries[first_credit..] {
            assert_eq!(credit.hold_until, hold);
            assert_eq!(credit.reason.as_deref(), Some("split replaced: fix"));
        }
    }
}
