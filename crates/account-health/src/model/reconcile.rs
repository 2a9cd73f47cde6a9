//! Trigger reconciliation as a plan: given the triggers the rules call for
//! (each with its suppression, if any) and the account's stored triggers,
//! which to open, which to update, which to close, and the events that say
//! so. Exactly the wanted ones end up open: one per (account, product,
//! kind), none inside the cooldown after a close, closed when the condition
//! clears. Pure: the store loads the triggers and writes the plan.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use domain::{HealthBand, TriggerId};
use sea_orm::ActiveEnum;
use storage::events::NewEvent;

use super::triggers::{Candidate, TriggerStatus, suppression};
use crate::entity::trigger::{self, TriggerPriority};

/// A trigger the rules call for, with why it is suppressed (`None`: READY).
pub type Wanted = (Candidate, Option<String>);

/// Each candidate with its suppression under the bands in force
/// (`effective_bands`, `""` the account's) and the products' names.
pub fn with_suppression(
    candidates: Vec<Candidate>,
    effective_bands: &HashMap<String, Option<HealthBand>>,
    names: &HashMap<String, String>,
) -> Vec<Wanted> {
    let account_band = effective_bands.get("").copied().flatten();
    candidates
        .into_iter()
        .map(|c| {
            let product = c.product_id.as_ref().map(|p| {
                (
                    names.get(p).map_or(p.as_str(), String::as_str),
                    effective_bands.get(p).copied().flatten(),
                )
            });
            let suppressed = suppression(account_band, product);
            (c, suppressed)
        })
        .collect()
}

/// What the account's stored triggers are, as reconciliation reads them.
#[derive(Debug, Clone, Copy)]
pub struct StoredTriggers<'a> {
    /// READY, SUPPRESSED and CONVERTED ones. CONVERTED triggers count as
    /// open but belong to their opportunity: reconciling leaves them be.
    pub open: &'a [trigger::Model],
    /// Those closed within the cooldown (others are ignored).
    pub recently_closed: &'a [trigger::Model],
    pub cooldown: Duration,
}

/// What reconciliation writes, in order: the updates (closes included),
/// then the new triggers; the events, one per close, status change and fire.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerPlan {
    pub updates: Vec<trigger::Model>,
    pub inserts: Vec<trigger::Model>,
    pub events: Vec<NewEvent>,
}

/// Plans the reconciliation of the account's `stored` triggers with `wanted`.
pub fn plan_reconciliation(
    account_id: &str,
    stored: StoredTriggers<'_>,
    wanted: Vec<Wanted>,
    now: DateTime<Utc>,
) -> TriggerPlan {
    let mut plan = TriggerPlan::default();
    for t in stored
        .open
        .iter()
        .filter(|t| t.status != TriggerStatus::Converted)
    {
        let still = wanted.iter().find(|(c, _)| same_target(t, c));
        match still {
            None => {
                let mut closed = t.clone();
                closed.status = TriggerStatus::Closed;
                closed.closed_at = Some(now);
                closed.updated_at = now;
                plan.events
                    .push(trigger_event("health.trigger.closed", &closed));
                plan.updates.push(closed);
            }
            Some((c, suppressed)) => {
                if let Some((updated, event)) = restated(t, c, suppressed, now) {
                    plan.events.extend(event);
                    plan.updates.push(updated);
                }
            }
        }
    }
    let since = now - stored.cooldown;
    for (c, suppressed) in wanted {
        let is_open = stored.open.iter().any(|t| same_target(t, &c));
        let cooling = stored
            .recently_closed
            .iter()
            .any(|t| same_target(t, &c) && t.closed_at.is_some_and(|at| at > since));
        if is_open || cooling {
            continue;
        }
        let fired = fired(account_id, &c, suppressed, now);
        plan.events
            .push(trigger_event("health.trigger.fired", &fired));
        plan.inserts.push(fired);
    }
    plan
}

fn same_target(t: &trigger::Model, c: &Candidate) -> bool {
    t.kind == c.kind && t.product_id == c.product_id.as_deref().unwrap_or_default()
}

fn priority(c: &Candidate) -> TriggerPriority {
    TriggerPriority::of(c.high_priority)
}

fn status_of(suppressed: &Option<String>) -> TriggerStatus {
    if suppressed.is_some() {
        TriggerStatus::Suppressed
    } else {
        TriggerStatus::Ready
    }
}

/// An open trigger the rules still call for, restated: `None` when nothing
/// changed; an event only when its status did.
fn restated(
    t: &trigger::Model,
    c: &Candidate,
    suppressed: &Option<String>,
    now: DateTime<Utc>,
) -> Option<(trigger::Model, Option<NewEvent>)> {
    let status = status_of(suppressed);
    if t.status == status
        && t.priority == priority(c)
        && t.reason == c.reason
        && t.suppression_reason == *suppressed
    {
        return None;
    }
    let mut updated = t.clone();
    updated.status = status;
    updated.priority = priority(c);
    updated.reason = c.reason.clone();
    updated.suppression_reason = suppressed.clone();
    updated.updated_at = now;
    let event = (t.status != status).then(|| {
        let event_type = if status == TriggerStatus::Ready {
            "health.trigger.ready"
        } else {
            "health.trigger.suppressed"
        };
        trigger_event(event_type, &updated)
    });
    Some((updated, event))
}

fn fired(
    account_id: &str,
    c: &Candidate,
    suppressed: Option<String>,
    now: DateTime<Utc>,
) -> trigger::Model {
    trigger::Model {
        id: TriggerId::new().to_string(),
        account_id: account_id.to_owned(),
        product_id: c.product_id.clone().unwrap_or_default(),
        kind: c.kind,
        motion: c.kind.motion().into(),
        status: status_of(&suppressed),
        priority: priority(c),
        reason: c.reason.clone(),
        suppression_reason: suppressed,
        fired_at: now,
        updated_at: now,
        closed_at: None,
        opportunity_id: None,
    }
}

/// The event saying what happened to trigger `t` (as written).
pub fn trigger_event(event_type: &'static str, t: &trigger::Model) -> NewEvent {
    NewEvent {
        event_type: event_type.into(),
        subject_id: t.id.clone(),
        data: serde_json::json!({
            "trigger_id": t.id,
            "account_id": t.account_id,
            "product_id": t.product_id,
            "kind": t.kind.to_value(),
            "motion": t.motion.to_value(),
            "status": t.status.to_value(),
            "priority": t.priority.to_value(),
            "reason": t.reason,
            "suppression_reason": t.suppression_reason,
            "opportunity_id": t.opportunity_id,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::triggers::TriggerKind;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap()
    }

    fn usage(high_priority: bool) -> Candidate {
        Candidate {
            kind: TriggerKind::UsageCapacity,
            product_id: Some("p".into()),
            high_priority,
            reason: "usage at 85% of the limit".into(),
        }
    }

    fn stored(status: TriggerStatus) -> trigger::Model {
        let mut t = fired("a1", &usage(false), None, now() - Duration::days(3));
        t.status = status;
        t
    }

    fn reconcile(
        open: &[trigger::Model],
        recently_closed: &[trigger::Model],
        wanted: Vec<Wanted>,
    ) -> TriggerPlan {
        let stored = StoredTriggers {
            open,
            recently_closed,
            cooldown: Duration::days(14),
        };
        plan_reconciliation("a1", stored, wanted, now())
    }

    fn types(plan: &TriggerPlan) -> Vec<&str> {
        plan.events.iter().map(|e| e.event_type.as_ref()).collect()
    }

    #[test]
    fn a_new_condition_fires_one_trigger_with_its_motion() {
        let plan = reconcile(&[], &[], vec![(usage(false), None)]);
        assert_eq!(types(&plan), ["health.trigger.fired"]);
        let t = &plan.inserts[0];
        assert_eq!(
            (t.status, t.motion.to_value(), t.product_id.as_str()),
            (TriggerStatus::Ready, "UPSELL_CAPACITY".to_owned(), "p")
        );
        assert_eq!(plan.events[0].data["trigger_id"], t.id.as_str());
    }

    #[test]
    fn a_suppressed_condition_fires_suppressed_with_the_reason() {
        let why = Some("the account is RED".to_owned());
        let plan = reconcile(&[], &[], vec![(usage(false), why.clone())]);
        assert_eq!(plan.inserts[0].status, TriggerStatus::Suppressed);
        assert_eq!(plan.inserts[0].suppression_reason, why);
    }

    #[test]
    fn an_open_trigger_still_called_for_is_kept_as_it_is() {
        let open = [stored(TriggerStatus::Ready)];
        let plan = reconcile(&open, &[], vec![(usage(false), None)]);
        assert_eq!(plan, TriggerPlan::default());
    }

    #[test]
    fn a_cleared_condition_closes_the_trigger() {
        let open = [stored(TriggerStatus::Ready)];
        let plan = reconcile(&open, &[], vec![]);
        assert_eq!(types(&plan), ["health.trigger.closed"]);
        assert_eq!(plan.updates[0].status, TriggerStatus::Closed);
        assert_eq!(plan.updates[0].closed_at, Some(now()));
        assert!(plan.inserts.is_empty());
    }

    #[test]
    fn a_closed_trigger_is_not_reopened_by_the_same_signal_within_the_cooldown() {
        let mut closed = stored(TriggerStatus::Closed);
        closed.closed_at = Some(now() - Duration::days(2));
        let plan = reconcile(
            &[],
            std::slice::from_ref(&closed),
            vec![(usage(false), None)],
        );
        assert_eq!(plan, TriggerPlan::default());
        // After the cooldown it fires again.
        closed.closed_at = Some(now() - Duration::days(15));
        let plan = reconcile(&[], &[closed], vec![(usage(false), None)]);
        assert_eq!(types(&plan), ["health.trigger.fired"]);
    }

    #[test]
    fn a_converted_trigger_is_left_to_its_opportunity() {
        let open = [stored(TriggerStatus::Converted)];
        assert_eq!(reconcile(&open, &[], vec![]), TriggerPlan::default());
        assert_eq!(
            reconcile(&open, &[], vec![(usage(true), None)]),
            TriggerPlan::default()
        );
    }

    #[test]
    fn a_status_change_is_an_event_and_a_new_priority_only_an_update() {
        let open = [stored(TriggerStatus::Ready)];
        let red = Some("the account is RED".to_owned());
        let plan = reconcile(&open, &[], vec![(usage(false), red)]);
        assert_eq!(types(&plan), ["health.trigger.suppressed"]);
        assert_eq!(plan.updates[0].updated_at, now());
        let plan = reconcile(&open, &[], vec![(usage(true), None)]);
        assert!(plan.events.is_empty());
        assert_eq!(plan.updates[0].priority, TriggerPriority::High);
        let suppressed = [stored(TriggerStatus::Suppressed)];
        let plan = reconcile(&suppressed, &[], vec![(usage(false), None)]);
        assert_eq!(types(&plan), ["health.trigger.ready"]);
    }

    #[test]
    fn a_red_account_or_product_suppresses_by_name() {
        let bands = HashMap::from([
            (String::new(), Some(HealthBand::Green)),
            ("p".to_owned(), Some(HealthBand::Red)),
        ]);
        let names = HashMap::from([("p".to_owned(), "Analytics".to_owned())]);
        let wanted = with_suppression(vec![usage(false)], &bands, &names);
        assert_eq!(
            wanted[0].1.as_deref(),
            Some("product Analytics is RED: fix product Analytics first")
        );
        let green = HashMap::from([(String::new(), Some(HealthBand::Green))]);
        assert_eq!(
            with_suppression(vec![usage(false)], &green, &names)[0].1,
            None
        );
    }
}
