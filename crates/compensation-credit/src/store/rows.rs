//! Rows to the rules' values and back, and the reads the writes share: a deal with its
//! split set and entries, an entry with its approval and open dispute, a dispute with
//! its entry.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::CHUNK;
use crate::entity::{
    clawback, deal, dispute, dispute_resolution, ledger_entry, policy, release, split_set,
};
use crate::error::CreditError;
use crate::model::deal::Split;
use crate::model::ledger::Entry;
use crate::model::policy::{BUILT_IN_VERSION, built_in_default};
use crate::model::views::{DealView, DisputeView};
use crate::model::{corrupt, to_json};

pub(super) fn entry_from_row(
    row: ledger_entry::Model,
    approved_at: Option<DateTime<Utc>>,
) -> Result<Entry, CreditError> {
    Ok(Entry {
        kind: row.kind,
        role: row.role.into(),
        entry_id: row.entry_id,
        deal_id: row.deal_id,
        participant_id: row.participant_id,
        team: row.team,
        amount_minor: row.amount_minor,
        currency: row.currency,
        policy_id: row.policy_id,
        policy_version: row.policy_version,
        principal: row.principal,
        created_at: row.created_at,
        reason: row.reason,
        reverses_entry_id: row.reverses_entry_id,
        hold_until: row.hold_until,
        split_revision: row.split_revision,
        approved_at,
        open_dispute_id: None,
        account_name: None,
        product_name: None,
    })
}

pub(super) fn entry_to_row(e: &Entry) -> ledger_entry::ActiveModel {
    ledger_entry::ActiveModel {
        entry_id: Set(e.entry_id.clone()),
        kind: Set(e.kind),
        deal_id: Set(e.deal_id.clone()),
        participant_id: Set(e.participant_id.clone()),
        role: Set(e.role.into()),
        team: Set(e.team.clone()),
        amount_minor: Set(e.amount_minor),
        currency: Set(e.currency.clone()),
        policy_id: Set(e.policy_id.clone()),
        policy_version: Set(e.policy_version),
        principal: Set(e.principal.clone()),
        created_at: Set(e.created_at),
        reason: Set(e.reason.clone()),
        reverses_entry_id: Set(e.reverses_entry_id.clone()),
        hold_until: Set(e.hold_until),
        split_revision: Set(e.split_revision),
    }
}

pub(super) async fn insert_entries<C: ConnectionTrait>(
    db: &C,
    entries: &[Entry],
) -> Result<(), DbErr> {
    for chunk in entries.chunks(CHUNK) {
        ledger_entry::Entity::insert_many(chunk.iter().map(entry_to_row))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Explicit release times of the given entries.
pub(super) async fn approvals<C: ConnectionTrait>(
    db: &C,
    entry_ids: &[String],
) -> Result<HashMap<String, DateTime<Utc>>, DbErr> {
    let mut out = HashMap::new();
    for chunk in entry_ids.chunks(CHUNK) {
        let rows = release::Entity::find()
            .filter(release::Column::EntryId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        out.extend(rows.into_iter().map(|r| (r.entry_id, r.released_at)));
    }
    Ok(out)
}

/// The open dispute of each of the given entries that has one.
pub(super) async fn open_disputes<C: ConnectionTrait>(
    db: &C,
    entry_ids: &[String],
) -> Result<HashMap<String, String>, DbErr> {
    let mut out = HashMap::new();
    for chunk in entry_ids.chunks(CHUNK) {
        let disputes = dispute::Entity::find()
            .filter(dispute::Column::EntryId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        if disputes.is_empty() {
            continue;
        }
        let resolved: HashSet<String> = dispute_resolution::Entity::find()
            .filter(
                dispute_resolution::Column::DisputeId
                    .is_in(disputes.iter().map(|d| d.dispute_id.clone())),
            )
            .all(db)
            .await?
            .into_iter()
            .map(|r| r.dispute_id)
            .collect();
        out.extend(
            disputes
                .into_iter()
                .filter(|d| !resolved.contains(&d.dispute_id))
                .map(|d| (d.entry_id, d.dispute_id)),
        );
    }
    Ok(out)
}

/// Marks the entries that have a dispute open, and names their deals'
/// accounts and products.
pub(super) async fn with_disputes_and_names<C: ConnectionTrait>(
    db: &C,
    mut entries: Vec<Entry>,
) -> Result<Vec<Entry>, CreditError> {
    let ids: Vec<String> = entries.iter().map(|e| e.entry_id.clone()).collect();
    let open = open_disputes(db, &ids).await?;
    let deals: BTreeSet<String> = entries.iter().map(|e| e.deal_id.clone()).collect();
    let names: HashMap<String, (Option<String>, Option<String>)> = deal::Entity::find()
        .filter(deal::Column::DealId.is_in(deals))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.deal_id, (d.account_name, d.product_name)))
        .collect();
    for e in &mut entries {
        e.open_dispute_id = open.get(&e.entry_id).cloned();
        if let Some((account, product)) = names.get(&e.deal_id) {
            e.account_name.clone_from(account);
            e.product_name.clone_from(product);
        }
    }
    Ok(entries)
}

/// Rows to entries, each with its explicit release time if it has one.
fn entries_approved(
    rows: Vec<ledger_entry::Model>,
    approved: &HashMap<String, DateTime<Utc>>,
) -> Result<Vec<Entry>, CreditError> {
    rows.into_iter()
        .map(|row| {
            let at = approved.get(&row.entry_id).copied();
            entry_from_row(row, at)
        })
        .collect()
}

/// Rows to entries, with their approvals and open disputes.
pub(super) async fn with_approvals<C: ConnectionTrait>(
    db: &C,
    rows: Vec<ledger_entry::Model>,
) -> Result<Vec<Entry>, CreditError> {
    let ids: Vec<String> = rows.iter().map(|r| r.entry_id.clone()).collect();
    let approved = approvals(db, &ids).await?;
    with_disputes_and_names(db, entries_approved(rows, &approved)?).await
}

pub(super) async fn deal_entries<C: ConnectionTrait>(
    db: &C,
    deal_id: &str,
) -> Result<Vec<Entry>, CreditError> {
    let rows = ledger_entry::Entity::find()
        .filter(ledger_entry::Column::DealId.eq(deal_id))
        .order_by_asc(ledger_entry::Column::EntryId)
        .all(db)
        .await?;
    let approved: HashMap<String, DateTime<Utc>> = release::Entity::find()
        .filter(release::Column::DealId.eq(deal_id))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.entry_id, r.released_at))
        .collect();
    with_disputes_and_names(db, entries_approved(rows, &approved)?).await
}

pub(super) async fn load_deal<C: ConnectionTrait>(
    db: &C,
    deal_id: &str,
) -> Result<Option<DealView>, CreditError> {
    let Some(deal) = deal::Entity::find_by_id(deal_id.to_owned()).one(db).await? else {
        return Ok(None);
    };
    let set = split_set::Entity::find()
        .filter(split_set::Column::DealId.eq(deal_id))
        .order_by_desc(split_set::Column::Revision)
        .limit(1)
        .one(db)
        .await?
        .ok_or_else(|| corrupt(format!("deal {deal_id} has no split set")))?;
    let splits: Vec<Split> = serde_json::from_str(&set.participants).map_err(corrupt)?;
    let clawed_back = clawback::Entity::find_by_id(deal_id.to_owned())
        .one(db)
        .await?
        .is_some();
    Ok(Some(DealView {
        entries: deal_entries(db, deal_id).await?,
        deal,
        splits,
        revision: set.revision,
        cs_led_without_handoff: set.cs_led_without_handoff,
        clawed_back,
    }))
}

pub(super) async fn entry_by_id<C: ConnectionTrait>(
    db: &C,
    entry_id: &str,
) -> Result<Entry, CreditError> {
    let row = ledger_entry::Entity::find_by_id(entry_id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| CreditError::not_found("ledger entry", entry_id))?;
    let approved = approvals(db, std::slice::from_ref(&row.entry_id)).await?;
    let at = approved.get(&row.entry_id).copied();
    let entry = entry_from_row(row, at)?;
    with_disputes_and_names(db, vec![entry])
        .await?
        .pop()
        .ok_or_else(|| CreditError::not_found("ledger entry", entry_id))
}

pub(super) async fn dispute_view<C: ConnectionTrait>(
    db: &C,
    dispute_id: &str,
) -> Result<DisputeView, CreditError> {
    let dispute = dispute::Entity::find_by_id(dispute_id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| CreditError::not_found("dispute", dispute_id))?;
    let resolution = dispute_resolution::Entity::find_by_id(dispute_id.to_owned())
        .one(db)
        .await?;
    let entry = ledger_entry::Entity::find_by_id(dispute.entry_id.clone())
        .one(db)
        .await?
        .ok_or_else(|| corrupt(format!("dispute {dispute_id} names a missing entry")))?;
    Ok(DisputeView {
        dispute,
        resolution,
        participant_id: entry.participant_id,
        deal_id: entry.deal_id,
        team: entry.team,
    })
}

/// The built-in `default` policy as a stored row would hold it (never stored).
pub(super) fn built_in_default_row() -> Result<policy::Model, CreditError> {
    let input = built_in_default();
    Ok(policy::Model {
        policy_id: input.policy_id.clone(),
        version: BUILT_IN_VERSION,
        effective_date: input.effective_date,
        origination_percent: input.origination.to_decimal_string(),
        delivery_percent: input.delivery.to_decimal_string(),
        overlays: to_json(&input.overlay_rules())?,
        basis: input.basis.as_str_name().to_owned(),
        hold_days: input.hold_days,
        clawback_window_days: input.clawback_window_days,
        clawback_mode: input.clawback_mode.as_str_name().to_owned(),
        created_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        created_by: "built-in".to_owned(),
    })
}
