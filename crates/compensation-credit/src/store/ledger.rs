//! The ledger: approvals, clawbacks, pages of entries and statements.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use domain::CreditRole;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};

use super::rows::{deal_entries, entry_by_id, insert_entries, load_deal, with_approvals};
use super::{CHUNK, Store, is_unique_violation};
use crate::entity::{clawback, deal, ledger_entry, release};
use crate::error::CreditError;
use crate::model::clawback::{Cancellation, plan_clawbacks};
use crate::model::ledger::{Entry, EntryKind};
use crate::model::privacy::PersonScope;
use crate::model::release::plan_release;

/// Filters of `ListLedgerEntries`.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub participant_id: Option<String>,
    pub deal_id: Option<String>,
    pub kind: Option<EntryKind>,
    pub role: Option<CreditRole>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// A person key's scope: only the entries it sees.
    pub visible_to: Option<PersonScope>,
}

/// The condition "an entry a person key sees": its own, its team members', its team's.
fn visible_condition(scope: &PersonScope) -> Condition {
    use ledger_entry::Column as C;
    let mut any = Condition::any().add(C::ParticipantId.eq(scope.person.as_str()));
    if !scope.members.is_empty() {
        any = any.add(C::ParticipantId.is_in(scope.members.iter().cloned()));
    }
    if let Some(team) = &scope.team {
        any = any.add(C::Team.eq(team.as_str()));
    }
    any
}

/// Which deals a cancellation claws back.
#[derive(Debug, Clone, Copy)]
pub enum ClawbackScope<'a> {
    Deal(&'a str),
    /// Every deal credited for the subscription.
    Subscription(&'a str),
}

/// What a clawback call did.
#[derive(Debug, Clone, Default)]
pub struct ClawbackOutcome {
    pub entries: Vec<Entry>,
    pub created: bool,
    pub outside_window: Vec<String>,
}

/// Whose statement.
#[derive(Debug, Clone)]
pub enum StatementSubject {
    Participant(String),
    Team(String),
    /// Everyone: the organisation's totals, CS-sourced beside Sales-closed.
    Everyone,
}

impl Store {
    /// Releases held entries now: the listed ones (with any held entries reversing them),
    /// or every held entry of a deal. Entries already released are left out.
    pub async fn approve(
        &self,
        entry_ids: &[String],
        deal_id: Option<&str>,
        note: Option<String>,
        principal: &str,
    ) -> Result<Vec<Entry>, CreditError> {
        // A concurrent approval of the same entries wins the release rows' keys; one more
        // pass then sees them released and leaves them out.
        match self
            .try_approve(entry_ids, deal_id, note.clone(), principal)
            .await
        {
            Err(CreditError::Store(err)) if is_unique_violation(&err) => {
                self.try_approve(entry_ids, deal_id, note, principal).await
            }
            other => other,
        }
    }

    async fn try_approve(
        &self,
        entry_ids: &[String],
        deal_id: Option<&str>,
        note: Option<String>,
        principal: &str,
    ) -> Result<Vec<Entry>, CreditError> {
        let deals: Vec<String> = if entry_ids.is_empty() {
            let deal_id = deal_id.unwrap_or_default();
            vec![self.deal_view(deal_id).await?.deal.deal_id]
        } else {
            let mut deals = Vec::new();
            for id in entry_ids {
                deals.push(entry_by_id(&self.db, id).await?.deal_id);
            }
            deals
        };
        let (txn, _guard) = self.begin_deal_write(&deals).await?;
        let wanted: HashSet<&str> = entry_ids.iter().map(String::as_str).collect();
        let mut targets: Vec<Entry> = Vec::new();
        for deal in deals.iter().collect::<BTreeSet<_>>() {
            targets.extend(deal_entries(&txn, deal).await?.into_iter().filter(|e| {
                wanted.is_empty()
                    || wanted.contains(e.entry_id.as_str())
                    || e.reverses_entry_id
                        .as_deref()
                        .is_some_and(|r| wanted.contains(r))
            }));
        }
        let Some(plan) = plan_release(targets, note, principal, storage::now())? else {
            return Ok(Vec::new());
        };
        for chunk in plan.rows.chunks(CHUNK) {
            release::Entity::insert_many(
                chunk
                    .iter()
                    .cloned()
                    .map(IntoActiveModel::into_active_model),
            )
            .exec_without_returning(&txn)
            .await?;
        }
        self.append(&txn, &[plan.event]).await?;
        self.commit(txn).await?;
        Ok(plan.entries)
    }

    /// Claws back the credits of a deal, or of every deal of a cancelled subscription,
    /// when the cancellation falls inside each deal's window. A deal is clawed back at
    /// most once: a repeat returns the earlier entries.
    pub async fn apply_clawback(
        &self,
        scope: ClawbackScope<'_>,
        cancellation: Cancellation<'_>,
        principal: &str,
    ) -> Result<ClawbackOutcome, CreditError> {
        // A concurrent clawback of the same deal wins its key; one more pass then finds
        // the deal clawed back and returns those entries.
        let attempt = || self.try_apply_clawback(scope, cancellation, principal);
        match attempt().await {
            Err(CreditError::Store(err)) if is_unique_violation(&err) => attempt().await,
            other => other,
        }
    }

    /// The deals a clawback names, in id order.
    async fn deals_in_scope(
        &self,
        scope: ClawbackScope<'_>,
    ) -> Result<Vec<deal::Model>, CreditError> {
        match scope {
            ClawbackScope::Deal(id) => Ok(vec![
                deal::Entity::find_by_id(id.to_owned())
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| CreditError::not_found("deal", id))?,
            ]),
            ClawbackScope::Subscription(sub) => {
                let found = deal::Entity::find()
                    .filter(deal::Column::SubscriptionId.eq(sub))
                    .order_by_asc(deal::Column::DealId)
                    .all(&self.db)
                    .await?;
                if found.is_empty() {
                    return Err(CreditError::not_found("credited subscription", sub));
                }
                Ok(found)
            }
        }
    }

    async fn try_apply_clawback(
        &self,
        scope: ClawbackScope<'_>,
        cancellation: Cancellation<'_>,
        principal: &str,
    ) -> Result<ClawbackOutcome, CreditError> {
        let deals = self.deals_in_scope(scope).await?;
        let ids: Vec<String> = deals.iter().map(|d| d.deal_id.clone()).collect();
        let (txn, _guard) = self.begin_deal_write(&ids).await?;
        let mut loaded = Vec::with_capacity(deals.len());
        for deal in &deals {
            let view = load_deal(&txn, &deal.deal_id)
                .await?
                .ok_or_else(|| CreditError::not_found("deal", &deal.deal_id))?;
            let terms = self.deal_terms(deal).await?;
            loaded.push((view, terms));
        }
        let plan = plan_clawbacks(&loaded, cancellation, principal, storage::now())?;
        let mut outcome = ClawbackOutcome {
            entries: plan.earlier,
            created: false,
            outside_window: plan.outside_window,
        };
        if plan.clawbacks.is_empty() {
            return Ok(outcome);
        }
        // The deal-keyed clawback row is what refuses a second, concurrent clawback.
        clawback::Entity::insert_many(
            plan.clawbacks
                .into_iter()
                .map(IntoActiveModel::into_active_model),
        )
        .exec_without_returning(&txn)
        .await?;
        insert_entries(&txn, &plan.entries).await?;
        self.append(&txn, &plan.events).await?;
        self.commit(txn).await?;
        outcome.created = true;
        outcome.entries.extend(plan.entries);
        Ok(outcome)
    }

    /// A page of ledger entries in entry-id order (UUIDv7: creation order), after `after`.
    /// Returns one more than `limit` when there is a next page.
    pub async fn list_entries(
        &self,
        filter: &EntryFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Entry>, CreditError> {
        use ledger_entry::Column as C;
        let mut cond = Condition::all();
        if let Some(p) = &filter.participant_id {
            cond = cond.add(C::ParticipantId.eq(p.as_str()));
        }
        if let Some(d) = &filter.deal_id {
            cond = cond.add(C::DealId.eq(d.as_str()));
        }
        if let Some(k) = filter.kind {
            cond = cond.add(C::Kind.eq(k));
        }
        if let Some(r) = filter.role {
            cond = cond.add(C::Role.eq(ledger_entry::StoredRole::from(r)));
        }
        if let Some(start) = filter.start {
            cond = cond.add(C::CreatedAt.gte(start));
        }
        if let Some(end) = filter.end {
            cond = cond.add(C::CreatedAt.lt(end));
        }
        if let Some(after) = after {
            cond = cond.add(C::EntryId.gt(after));
        }
        if let Some(scope) = &filter.visible_to {
            cond = cond.add(visible_condition(scope));
        }
        let rows = ledger_entry::Entity::find()
            .filter(cond)
            .order_by_asc(C::EntryId)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        with_approvals(&self.db, rows).await
    }

    /// Every entry of a participant, a team or everyone created before `end`, in entry-id
    /// order.
    pub async fn statement_entries(
        &self,
        subject: &StatementSubject,
        end: DateTime<Utc>,
    ) -> Result<Vec<Entry>, CreditError> {
        use ledger_entry::Column as C;
        let mut who = Condition::all();
        match subject {
            StatementSubject::Participant(p) => who = who.add(C::ParticipantId.eq(p.as_str())),
            StatementSubject::Team(t) => who = who.add(C::Team.eq(t.as_str())),
            StatementSubject::Everyone => {}
        }
        let rows = ledger_entry::Entity::find()
            .filter(who)
            .filter(C::CreatedAt.lt(end))
            .order_by_asc(C::EntryId)
            .all(&self.db)
            .await?;
        with_approvals(&self.db, rows).await
    }

    /// Who the given entries credit: entry id → (participant, team), of each that exists.
    pub async fn credited(
        &self,
        entry_ids: &[String],
    ) -> Result<HashMap<String, (String, Option<String>)>, CreditError> {
        let mut out = HashMap::new();
        for chunk in entry_ids.chunks(CHUNK) {
            let rows = ledger_entry::Entity::find()
                .filter(ledger_entry::Column::EntryId.is_in(chunk.iter().cloned()))
                .all(&self.db)
                .await?;
            out.extend(
                rows.into_iter()
                    .map(|r| (r.entry_id, (r.participant_id, r.team))),
            );
        }
        Ok(out)
    }
}
