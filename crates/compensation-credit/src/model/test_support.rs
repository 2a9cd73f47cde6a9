//! Values the planners' unit tests share: a directory, terms, a deal's input, a dispute.

use chrono::NaiveDate;
use contracts::pb::credit::v1 as pb;
use domain::{CreditRole, Currency, Money, OpportunityId, Percent};

use crate::entity::{dispute, person};
use crate::model::Terms;
use crate::model::deal::{DealInput, Split};
use crate::model::ledger::Entry;
use crate::model::people::id_skeleton;
use crate::model::views::DisputeView;

/// Directory rows for the given ids.
pub fn directory(ids: &[&str]) -> Vec<person::Model> {
    ids.iter()
        .map(|id| person::Model {
            person_id: (*id).to_owned(),
            version: 1,
            display_name: None,
            role: "PERSON_ROLE_OTHER".to_owned(),
            team: None,
            manager_id: None,
            skeleton: id_skeleton(id),
            created_at: chrono::DateTime::UNIX_EPOCH,
            created_by: "revops".to_owned(),
        })
        .collect()
}

/// The default policy's terms with `origination`% origination.
pub fn terms(origination: u32) -> Terms {
    Terms {
        policy_id: "default".to_owned(),
        version: 1,
        origination: Percent::from_whole(origination),
        overlays: vec![("account_team".to_owned(), Percent::from_whole(5))],
        basis: pb::CreditBasis::Amount,
        hold_days: 0,
        clawback_window_days: 90,
        clawback_mode: pb::ClawbackMode::Full,
    }
}

/// A participant's split: all of its role's share, or none of a percent for an overlay.
pub fn split(id: &str, role: CreditRole) -> Split {
    Split {
        participant_id: id.to_owned(),
        role,
        percent: role.is_revenue().then_some(Percent::ONE_HUNDRED),
        team: None,
        owner: false,
        overlay_rule: None,
    }
}

pub fn usd(minor: i64) -> Money {
    Money::from_minor(
        Currency::parse("USD").unwrap_or_else(|_| unreachable!()),
        minor,
    )
}

/// A deal of `amount_minor` USD cents closed on 2026-03-01, one participant per role.
pub fn deal_input(amount_minor: i64, people: &[(&str, CreditRole)]) -> DealInput {
    DealInput {
        deal_id: OpportunityId::new(),
        account_id: None,
        product_id: None,
        subscription_id: None,
        amount: usd(amount_minor),
        margin: None,
        close_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default(),
        policy_id: "default".to_owned(),
        splits: people.iter().map(|(id, role)| split(id, *role)).collect(),
        cs_led_without_handoff: false,
        account_name: None,
        product_name: None,
    }
}

/// An open dispute `dp` over `entry`.
pub fn dispute_over(entry: &Entry) -> DisputeView {
    DisputeView {
        dispute: dispute::Model {
            dispute_id: "dp".to_owned(),
            entry_id: entry.entry_id.clone(),
            opened_by: entry.participant_id.clone(),
            reason: "wrong split".to_owned(),
            opened_at: entry.created_at,
        },
        resolution: None,
        participant_id: entry.participant_id.clone(),
        deal_id: entry.deal_id.clone(),
        team: entry.team.clone(),
    }
}
