//! ApproveCredits: held entries released now, one release row each, and the
//! `credit.credits.released` event. Entries already released are left out; nobody
//! approves their own credit.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::entity::release;
use crate::events::{CreditEvent, CreditsReleased};
use crate::model::ledger::Entry;
use crate::model::privacy::{self, Refusal};

/// What an approval writes.
#[derive(Debug, Clone)]
pub struct Release {
    /// The entries released, as they read once released.
    pub entries: Vec<Entry>,
    pub rows: Vec<release::Model>,
    pub event: CreditEvent,
}

/// Plans the release of `targets` (the entries an approval names, loaded in its
/// transaction); `None` when none of them is still held.
pub fn plan_release(
    targets: Vec<Entry>,
    note: Option<String>,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<Option<Release>, Refusal> {
    let mut held: Vec<Entry> = targets
        .into_iter()
        .filter(|e| !e.is_released(now))
        .collect();
    if held.is_empty() {
        return Ok(None);
    }
    privacy::check_approval(principal, held.iter().map(|e| e.participant_id.as_str()))?;
    let rows = held
        .iter()
        .map(|e| release::Model {
            entry_id: e.entry_id.clone(),
            deal_id: e.deal_id.clone(),
            released_at: now,
            released_by: principal.to_owned(),
            note: note.clone(),
        })
        .collect();
    let deal_ids: Vec<String> = held
        .iter()
        .map(|e| e.deal_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let event = CreditEvent::CreditsReleased(CreditsReleased {
        deal_ids,
        entry_ids: held.iter().map(|e| e.entry_id.clone()).collect(),
        note,
        principal: principal.to_owned(),
    });
    for e in &mut held {
        e.approved_at = Some(now);
    }
    Ok(Some(Release {
        entries: held,
        rows,
        event,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::recording::plan_recording;
    use crate::model::test_support::{deal_input, directory, terms};
    use chrono::Duration;
    use domain::CreditRole::{Delivery, Originator};

    #[test]
    fn an_approval_releases_only_held_entries_of_other_people() {
        let now = chrono::Utc::now();
        let mut t = terms(25);
        t.hold_days = 30;
        let input = deal_input(1_000, &[("csm", Originator), ("ae", Delivery)]);
        let mut entries = plan_recording(&input, &t, &directory(&["csm", "ae"]), "revops", now)
            .unwrap()
            .entries;
        entries[0].approved_at = Some(now - Duration::days(1));
        let plan = plan_release(entries.clone(), Some("ok".into()), "revops", now)
            .unwrap()
            .unwrap();
        assert_eq!(plan.entries.len(), 1);
        assert_eq!(plan.entries[0].entry_id, entries[1].entry_id);
        assert!(plan.entries[0].is_released(now));
        assert_eq!(plan.rows[0].note.as_deref(), Some("ok"));
        let CreditEvent::CreditsReleased(event) = &plan.event else {
            panic!("a release event");
        };
        assert_eq!(event.deal_ids, [input.deal_id.to_string()]);
        // Nothing held: nothing to write; one's own credit: refused.
        assert!(
            plan_release(plan.entries.clone(), None, "revops", now)
                .unwrap()
                .is_none()
        );
        assert!(plan_release(entries, None, "ae", now).is_err());
    }
}
