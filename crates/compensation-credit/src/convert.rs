//! Domain and stored values to their wire form (the "encode" half of `api`).

use chrono::{DateTime, Utc};
use contracts::pb::common::v1::{Audit, Money as PbMoney};
use contracts::pb::credit::v1 as pb;
use contracts::wire;
use domain::{Currency, Money};

use crate::entity::{person, policy};
use crate::error::CreditError;
use crate::model::OverlayRule;
use crate::model::deal::{Split, role_to_pb};
use crate::model::ledger::{Balance, Entry, Figures, balances};
use crate::model::views::{DealView, DisputeView};

/// Stored minor units of a stored currency code as wire money.
pub fn money(currency: &str, minor: i64) -> Result<PbMoney, CreditError> {
    let currency = Currency::parse(currency)
        .map_err(|e| CreditError::Corrupt(format!("currency {currency:?}: {e}")))?;
    Ok(wire::money_to_pb(&Money::from_minor(currency, minor)))
}

pub fn entry_to_pb(e: &Entry, now: DateTime<Utc>) -> Result<pb::LedgerEntry, CreditError> {
    let released_at = e.released_at(now);
    Ok(pb::LedgerEntry {
        entry_id: e.entry_id.clone(),
        kind: e.kind.to_pb() as i32,
        deal_id: e.deal_id.clone(),
        participant_id: e.participant_id.clone(),
        role: role_to_pb(e.role) as i32,
        amount: Some(money(&e.currency, e.amount_minor)?),
        policy_id: e.policy_id.clone(),
        policy_version: e.policy_version,
        principal: e.principal.clone(),
        create_time: Some(wire::timestamp(e.created_at)),
        reason: e.reason.clone().unwrap_or_default(),
        reverses_entry_id: e.reverses_entry_id.clone().unwrap_or_default(),
        status: if released_at.is_some() {
            pb::CreditStatus::Released
        } else {
            pb::CreditStatus::Held
        } as i32,
        release_time: released_at.map(wire::timestamp),
        team: e.team.clone().unwrap_or_default(),
        hold_until: Some(wire::timestamp(e.hold_until)),
        open_dispute_id: e.open_dispute_id.clone().unwrap_or_default(),
        account_name: e.account_name.clone().unwrap_or_default(),
        product_name: e.product_name.clone().unwrap_or_default(),
    })
}

pub fn entries_to_pb(
    entries: &[Entry],
    now: DateTime<Utc>,
) -> Result<Vec<pb::LedgerEntry>, CreditError> {
    entries.iter().map(|e| entry_to_pb(e, now)).collect()
}

pub fn split_to_pb(s: &Split) -> pb::Participant {
    pb::Participant {
        participant_id: s.participant_id.clone(),
        role: role_to_pb(s.role) as i32,
        percent: s.percent.map(|p| p.to_decimal_string()).unwrap_or_default(),
        team: s.team.clone().unwrap_or_default(),
        owner: s.owner,
        overlay_rule: s.overlay_rule.clone().unwrap_or_default(),
    }
}

fn balance_to_pb(b: &Balance) -> Result<pb::LedgerEntry, CreditError> {
    Ok(pb::LedgerEntry {
        participant_id: b.participant_id.clone(),
        role: role_to_pb(b.role) as i32,
        amount: Some(money(&b.currency, b.minor)?),
        team: b.team.clone().unwrap_or_default(),
        ..Default::default()
    })
}

pub fn deal_to_pb(view: &DealView, now: DateTime<Utc>) -> Result<pb::DealCredits, CreditError> {
    let d = &view.deal;
    let derived = balances(&view.entries)
        .ok_or_else(|| CreditError::Corrupt(format!("deal {}: balance overflow", d.deal_id)))?;
    Ok(pb::DealCredits {
        deal_id: d.deal_id.clone(),
        basis: Some(money(&d.currency, d.basis_minor)?),
        policy_id: d.policy_id.clone(),
        policy_version: d.policy_version,
        participants: view.splits.iter().map(split_to_pb).collect(),
        entries: entries_to_pb(&view.entries, now)?,
        balances: derived
            .iter()
            .map(balance_to_pb)
            .collect::<Result<_, _>>()?,
        amount: Some(money(&d.currency, d.amount_minor)?),
        margin_percent: d.margin_percent.clone().unwrap_or_default(),
        close_date: wire::date_to_pb(Some(d.close_date)),
        account_id: d.account_id.clone().unwrap_or_default(),
        product_id: d.product_id.clone().unwrap_or_default(),
        subscription_id: d.subscription_id.clone().unwrap_or_default(),
        cs_led_without_handoff: view.cs_led_without_handoff,
        clawed_back: view.clawed_back,
    })
}

pub fn dispute_to_pb(view: &DisputeView) -> pb::Dispute {
    let d = &view.dispute;
    let r = view.resolution.as_ref();
    let status = match r.map(|r| r.outcome.as_str()) {
        None => pb::DisputeStatus::Open,
        Some("RESOLVED_ADJUSTED") => pb::DisputeStatus::ResolvedAdjusted,
        Some(_) => pb::DisputeStatus::ResolvedRejected,
    };
    pb::Dispute {
        dispute_id: d.dispute_id.clone(),
        entry_id: d.entry_id.clone(),
        opened_by: d.opened_by.clone(),
        reason: d.reason.clone(),
        status: status as i32,
        resolution_note: r.and_then(|r| r.note.clone()).unwrap_or_default(),
        adjustment_entry_id: r
            .and_then(|r| r.adjustment_entry_id.clone())
            .unwrap_or_default(),
        open_time: Some(wire::timestamp(d.opened_at)),
        resolve_time: r.map(|r| wire::timestamp(r.resolved_at)),
        resolved_by: r.map(|r| r.resolved_by.clone()).unwrap_or_default(),
        participant_id: view.participant_id.clone(),
        deal_id: view.deal_id.clone(),
    }
}

pub fn person_to_pb(m: &person::Model) -> pb::Person {
    pb::Person {
        person_id: m.person_id.clone(),
        display_name: m.display_name.clone().unwrap_or_default(),
        role: pb::PersonRole::from_str_name(&m.role).unwrap_or_default() as i32,
        team: m.team.clone().unwrap_or_default(),
        manager_id: m.manager_id.clone().unwrap_or_default(),
        version: m.version,
        audit: Some(Audit {
            create_time: Some(wire::timestamp(m.created_at)),
            created_by: m.created_by.clone(),
            update_time: Some(wire::timestamp(m.created_at)),
            updated_by: m.created_by.clone(),
        }),
    }
}

pub fn figures_to_pb(f: &Figures) -> Result<pb::CurrencyStatement, CreditError> {
    let m = |minor| money(&f.currency, minor).map(Some);
    Ok(pb::CurrencyStatement {
        currency_code: f.currency.clone(),
        opening_balance: m(f.opening)?,
        closing_balance: m(f.closing)?,
        totals: f
            .totals
            .iter()
            .map(|&(role, kind, minor)| {
                Ok(pb::RoleTotal {
                    role: role_to_pb(role) as i32,
                    kind: kind.to_pb() as i32,
                    amount: m(minor)?,
                })
            })
            .collect::<Result<_, CreditError>>()?,
        held: m(f.held)?,
        released: m(f.released)?,
        cs_sourced: m(f.cs_sourced)?,
        sales_closed: m(f.sales_closed)?,
        overlay: m(f.overlay)?,
    })
}

pub fn policy_to_pb(m: policy::Model) -> Result<pb::CreditPolicy, CreditError> {
    let overlays: Vec<OverlayRule> = serde_json::from_str(&m.overlays)
        .map_err(|e| CreditError::Corrupt(format!("policy {} v{}: {e}", m.policy_id, m.version)))?;
    Ok(pb::CreditPolicy {
        policy_id: m.policy_id,
        version: m.version,
        effective_date: wire::date_to_pb(Some(m.effective_date)),
        origination_percent: m.origination_percent,
        delivery_percent: m.delivery_percent,
        overlays: overlays
            .into_iter()
            .map(|o| pb::OverlayRule {
                name: o.name,
                percent: o.percent,
            })
            .collect(),
        basis: pb::CreditBasis::from_str_name(&m.basis).unwrap_or_default() as i32,
        hold_days: m.hold_days,
        clawback_window_days: m.clawback_window_days,
        clawback_mode: pb::ClawbackMode::from_str_name(&m.clawback_mode).unwrap_or_default() as i32,
        audit: Some(Audit {
            create_time: Some(wire::timestamp(m.created_at)),
            created_by: m.created_by.clone(),
            update_time: Some(wire::timestamp(m.created_at)),
            updated_by: m.created_by,
        }),
    })
}
