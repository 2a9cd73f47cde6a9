//! A cancellation's clawback, deal by deal: a deal already clawed back answers with its
//! earlier CLAWBACK entries; a cancellation outside a deal's window claws nothing back;
//! inside it, each live credit gets its CLAWBACK (see [`crate::model::ledger`]), the deal
//! gets its one clawback row and a `credit.deal.clawed_back` event.

use chrono::{DateTime, NaiveDate, Utc};
use contracts::ApiError;
use domain::Money;

use crate::entity::clawback;
use crate::error::CreditError;
use crate::events::{CreditEvent, DealClawedBack};
use crate::model::ledger::{
    Entry, EntryContext, EntryKind, WindowPosition, clawback_entries, live_credits, window_position,
};
use crate::model::views::DealView;
use crate::model::{Terms, corrupt};

/// The cancellation a clawback answers.
#[derive(Debug, Clone, Copy)]
pub struct Cancellation<'a> {
    /// The cancelled subscription, when the request named one.
    pub subscription_id: Option<&'a str>,
    pub cancel_date: NaiveDate,
    pub reason: &'a str,
}

/// What a clawback over one or more deals writes, and what it answers.
#[derive(Debug, Clone, Default)]
pub struct ClawbackPlan {
    /// CLAWBACK entries of deals clawed back before, returned again.
    pub earlier: Vec<Entry>,
    /// Deals the cancellation falls outside the window of.
    pub outside_window: Vec<String>,
    /// One row per deal clawed back now: its key refuses a second clawback.
    pub clawbacks: Vec<clawback::Model>,
    pub entries: Vec<Entry>,
    pub events: Vec<CreditEvent>,
}

/// Plans the clawback of each deal (loaded in the write's transaction, with the terms
/// it was credited under), in the order given.
pub fn plan_clawbacks(
    deals: &[(DealView, Terms)],
    cancellation: Cancellation<'_>,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<ClawbackPlan, CreditError> {
    let mut plan = ClawbackPlan::default();
    for (view, terms) in deals {
        if view.clawed_back {
            plan.earlier.extend(
                view.entries
                    .iter()
                    .filter(|e| e.kind == EntryKind::Clawback)
                    .cloned(),
            );
            continue;
        }
        let deal = &view.deal;
        let window = terms.clawback_window_days;
        let elapsed_days = match window_position(deal.close_date, cancellation.cancel_date, window)
        {
            WindowPosition::BeforeClose => {
                return Err(ApiError::invalid(
                    "cancel_date",
                    format!(
                        "{} is before deal {}'s close date {}",
                        cancellation.cancel_date, deal.deal_id, deal.close_date
                    ),
                )
                .into());
            }
            WindowPosition::Outside => {
                plan.outside_window.push(deal.deal_id.clone());
                continue;
            }
            WindowPosition::Inside { elapsed_days } => elapsed_days,
        };
        let (row, entries, event) =
            claw_back_deal(view, terms, elapsed_days, cancellation, principal, now)?;
        plan.clawbacks.push(row);
        plan.entries.extend(entries);
        plan.events.push(event);
    }
    Ok(plan)
}

/// One deal's clawback inside its window, `elapsed_days` after its close.
fn claw_back_deal(
    view: &DealView,
    terms: &Terms,
    elapsed_days: i64,
    cancellation: Cancellation<'_>,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<(clawback::Model, Vec<Entry>, CreditEvent), CreditError> {
    let deal = &view.deal;
    let ctx = EntryContext {
        deal_id: &deal.deal_id,
        currency: &deal.currency,
        policy_id: &deal.policy_id,
        policy_version: deal.policy_version,
        principal,
        now,
        revision: view.revision,
    };
    let live = live_credits(&view.entries, view.revision);
    let entries = clawback_entries(
        &ctx,
        &live,
        terms.clawback_mode,
        terms.clawback_window_days,
        elapsed_days,
        cancellation.reason,
    );
    let row = clawback::Model {
        deal_id: deal.deal_id.clone(),
        subscription_id: cancellation
            .subscription_id
            .map(str::to_owned)
            .or(deal.subscription_id.clone()),
        cancel_date: cancellation.cancel_date,
        mode: terms.clawback_mode.as_str_name().to_owned(),
        reason: Some(cancellation.reason.to_owned()),
        created_at: now,
        created_by: principal.to_owned(),
    };
    let (recovered, forfeited): (Vec<&Entry>, Vec<&Entry>) =
        entries.iter().partition(|e| e.is_released(now));
    let currency = domain::Currency::parse(&deal.currency).map_err(corrupt)?;
    let money = |part: &[&Entry]| {
        let minor: i128 = part.iter().map(|e| i128::from(e.amount_minor)).sum();
        Money::from_minor(currency, i64::try_from(-minor).unwrap_or_default()).to_amount_string()
    };
    let event = CreditEvent::DealClawedBack(DealClawedBack {
        deal_id: deal.deal_id.clone(),
        subscription_id: deal.subscription_id.clone(),
        cancel_date: cancellation.cancel_date.to_string(),
        mode: terms.clawback_mode.as_str_name().to_owned(),
        elapsed_days,
        window_days: terms.clawback_window_days,
        currency_code: deal.currency.clone(),
        recovered: money(&recovered),
        forfeited: money(&forfeited),
        entry_ids: entries.iter().map(|e| e.entry_id.clone()).collect(),
        principal: principal.to_owned(),
    });
    Ok((row, entries, event))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::recording::plan_recording;
    use crate::model::test_support::{deal_input, directory, terms};
    use chrono::Duration;
    use contracts::pb::credit::v1 as pb;
    use domain::CreditRole::{Delivery, Originator};

    fn recorded(now: DateTime<Utc>) -> (DealView, Terms) {
        let input = deal_input(100_001, &[("csm", Originator), ("ae", Delivery)]);
        let mut t = terms(25);
        t.clawback_mode = pb::ClawbackMode::Prorated;
        let view = plan_recording(&input, &t, &directory(&["csm", "ae"]), "revops", now)
            .unwrap()
            .into_view();
        (view, t)
    }

    fn cancelled(view: &DealView, days: i64) -> Cancellation<'static> {
        Cancellation {
            subscription_id: None,
            cancel_date: view.deal.close_date + Duration::days(days),
            reason: "cancelled",
        }
    }

    #[test]
    fn a_clawback_recovers_the_released_share_and_forfeits_the_held() {
        let now = chrono::Utc::now();
        let (mut view, t) = recorded(now);
        // The originator's credit was approved; the delivery credit is still held.
        view.entries[0].approved_at = Some(now);
        let mut held = view.entries[1].clone();
        held.hold_until = now + Duration::days(10);
        view.entries[1] = held;
        let plan =
            plan_clawbacks(&[(view.clone(), t)], cancelled(&view, 30), "revops", now).unwrap();
        assert_eq!(plan.clawbacks.len(), 1);
        assert_eq!(plan.clawbacks[0].mode, "CLAWBACK_MODE_PRORATED");
        for claw in &plan.entries {
            let original = view
                .entries
                .iter()
                .find(|e| Some(&e.entry_id) == claw.reverses_entry_id.as_ref())
                .unwrap();
            assert!(-claw.amount_minor <= original.amount_minor && claw.amount_minor < 0);
            assert_eq!(claw.is_released(now), original.is_released(now));
        }
        let CreditEvent::DealClawedBack(event) = &plan.events[0] else {
            panic!("a clawback event");
        };
        assert_eq!((event.elapsed_days, event.window_days), (30, 90));
        // 60/90 of the released 250.00 comes back; the held 750.01 is forfeited whole.
        assert_eq!(
            (event.recovered.as_str(), event.forfeited.as_str()),
            ("166.67", "750.01")
        );
    }

    #[test]
    fn outside_the_window_before_the_close_and_clawed_back_before() {
        let now = chrono::Utc::now();
        let (view, t) = recorded(now);
        let outside = plan_clawbacks(
            &[(view.clone(), t.clone())],
            cancelled(&view, 90),
            "revops",
            now,
        )
        .unwrap();
        assert_eq!(
            outside.outside_window,
            std::slice::from_ref(&view.deal.deal_id)
        );
        assert!(outside.clawbacks.is_empty() && outside.entries.is_empty());
        let err = plan_clawbacks(
            &[(view.clone(), t.clone())],
            cancelled(&view, -1),
            "revops",
            now,
        )
        .unwrap_err();
        assert_eq!(ApiError::from(err).field(), Some("cancel_date"));
        let first = plan_clawbacks(
            &[(view.clone(), t.clone())],
            cancelled(&view, 1),
            "revops",
            now,
        )
        .unwrap();
        let mut again = view.clone();
        again.clawed_back = true;
        again.entries.extend(first.entries.clone());
        let repeat = plan_clawbacks(&[(again, t)], cancelled(&view, 1), "revops", now).unwrap();
        assert_eq!(repeat.earlier, first.entries);
        assert!(repeat.clawbacks.is_empty());
    }
}
