//! Disputes: opened over an entry (one open at a time), resolved once, listed.

use std::collections::HashMap;

use contracts::Principal;
use domain::{DisputeId, LedgerEntryId};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::rows::{dispute_view, entry_by_id, insert_entries};
use super::{CHUNK, Store, is_unique_violation};
use crate::entity::{dispute, dispute_resolution, ledger_entry, open_dispute};
use crate::error::CreditError;
use crate::model::corrupt;
use crate::model::disputes::{Resolution, plan_dispute_opening, plan_resolution};
use crate::model::ledger::Entry;
use crate::model::privacy::PersonScope;
use crate::model::views::DisputeView;

/// Filters of `ListDisputes`.
#[derive(Debug, Clone, Default)]
pub struct DisputeFilter {
    /// `Some(true)`: open ones; `Some(false)`: resolved ones, of `outcome` when given.
    pub open: Option<bool>,
    pub outcome: Option<&'static str>,
    pub participant_id: Option<String>,
    pub deal_id: Option<String>,
    /// A person key's scope: only disputes of entries it sees.
    pub visible_to: Option<PersonScope>,
}

impl Store {
    /// Opens a dispute over an entry; one open dispute per entry at a time.
    pub async fn open_dispute(
        &self,
        entry_id: LedgerEntryId,
        reason: &str,
        opener: &Principal,
    ) -> Result<DisputeView, CreditError> {
        let entry_id = entry_id.to_string();
        let entry = entry_by_id(&self.db, &entry_id).await?;
        let plan = plan_dispute_opening(
            &entry,
            reason,
            opener,
            DisputeId::new().to_string(),
            storage::now(),
        )?;
        let (txn, _turn) = self.begin_write().await?;
        // The entry's claim is the database's word that no other dispute is open on
        // it: of concurrent openers, one inserts it and the others are refused.
        if let Err(err) = plan.claim.into_active_model().insert(&txn).await {
            if !is_unique_violation(&err) {
                return Err(err.into());
            }
            drop(txn);
            let open = open_dispute::Entity::find_by_id(entry_id.clone())
                .one(&self.db)
                .await?;
            return Err(CreditError::DisputeAlreadyOpen {
                entry_id,
                dispute_id: open.map(|o| o.dispute_id).unwrap_or_default(),
            });
        }
        dispute::Entity::insert(plan.dispute.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        self.append(&txn, &[plan.event]).await?;
        self.commit(txn).await?;
        Ok(DisputeView {
            dispute: plan.dispute,
            resolution: None,
            participant_id: entry.participant_id,
            deal_id: entry.deal_id,
            team: entry.team,
        })
    }

    /// Resolves an open dispute: adjusted (an ADJUSTMENT entry linked to the disputed
    /// entry, in its currency) or rejected (no entry).
    pub async fn resolve_dispute(
        &self,
        dispute_id: DisputeId,
        resolution: Resolution,
        note: Option<String>,
        principal: &str,
    ) -> Result<(DisputeView, Option<Entry>), CreditError> {
        let dispute_id = dispute_id.to_string();
        let view = dispute_view(&self.db, &dispute_id).await?;
        let disputed = entry_by_id(&self.db, &view.dispute.entry_id).await?;
        let plan = plan_resolution(
            &view,
            &disputed,
            &resolution,
            note,
            principal,
            storage::now(),
        )?;
        let (txn, _turn) = self.begin_write().await?;
        // The dispute-keyed resolution row refuses a concurrent second resolution.
        match dispute_resolution::Entity::insert(plan.row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await
        {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => {
                return Err(CreditError::DisputeAlreadyResolved(dispute_id));
            }
            Err(err) => return Err(err.into()),
        }
        if let Some(entry) = &plan.adjustment {
            insert_entries(&txn, std::slice::from_ref(entry)).await?;
        }
        // Resolved: the entry may be disputed again.
        open_dispute::Entity::delete_many()
            .filter(open_dispute::Column::EntryId.eq(disputed.entry_id.as_str()))
            .filter(open_dispute::Column::DisputeId.eq(dispute_id.as_str()))
            .exec(&txn)
            .await?;
        self.append(&txn, &[plan.event]).await?;
        self.commit(txn).await?;
        Ok((
            DisputeView {
                resolution: Some(plan.row),
                ..view
            },
            plan.adjustment,
        ))
    }

    /// A page of disputes in dispute-id order (UUIDv7: opening order), after `after`.
    /// Returns one more than `limit` when there is a next page. Disputes are few beside
    /// entries, so the filters on the disputed entry are applied as the rows are read,
    /// a chunk at a time.
    pub async fn list_disputes(
        &self,
        filter: &DisputeFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<DisputeView>, CreditError> {
        let want = usize::try_from(limit + 1).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut cursor = after.map(str::to_owned);
        loop {
            let mut query = dispute::Entity::find().order_by_asc(dispute::Column::DisputeId);
            if let Some(c) = &cursor {
                query = query.filter(dispute::Column::DisputeId.gt(c.as_str()));
            }
            let chunk = query.limit(CHUNK as u64).all(&self.db).await?;
            let Some(last) = chunk.last() else {
                return Ok(out);
            };
            cursor = Some(last.dispute_id.clone());
            let full = chunk.len() == CHUNK;
            let entry_ids: Vec<String> = chunk.iter().map(|d| d.entry_id.clone()).collect();
            let entries: HashMap<String, ledger_entry::Model> = ledger_entry::Entity::find()
                .filter(ledger_entry::Column::EntryId.is_in(entry_ids))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|e| (e.entry_id.clone(), e))
                .collect();
            let resolutions: HashMap<String, dispute_resolution::Model> =
                dispute_resolution::Entity::find()
                    .filter(
                        dispute_resolution::Column::DisputeId
                            .is_in(chunk.iter().map(|d| d.dispute_id.clone())),
                    )
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|r| (r.dispute_id.clone(), r))
                    .collect();
            for d in chunk {
                let entry = entries.get(&d.entry_id).ok_or_else(|| {
                    corrupt(format!("dispute {} names a missing entry", d.dispute_id))
                })?;
                let resolution = resolutions.get(&d.dispute_id).cloned();
                let keep = match filter.open {
                    Some(true) => resolution.is_none(),
                    Some(false) => resolution
                        .as_ref()
                        .is_some_and(|r| filter.outcome.is_none_or(|o| r.outcome == o)),
                    None => true,
                } && filter
                    .participant_id
                    .as_ref()
                    .is_none_or(|p| *p == entry.participant_id)
                    && filter.deal_id.as_ref().is_none_or(|d| *d == entry.deal_id)
                    && filter
                        .visible_to
                        .as_ref()
                        .is_none_or(|s| s.sees(&entry.participant_id, entry.team.as_deref()));
                if keep {
                    out.push(DisputeView {
                        dispute: d,
                        resolution,
                        participant_id: entry.participant_id.clone(),
                        deal_id: entry.deal_id.clone(),
                        team: entry.team.clone(),
                    });
                    if out.len() >= want {
                        return Ok(out);
                    }
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }
}
