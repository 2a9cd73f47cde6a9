//! The credit service's queries and transactions.
//!
//! Every write here is an INSERT: policies, deals, split sets, ledger entries, releases,
//! clawbacks, disputes and resolutions only ever gain rows (the database refuses anything
//! else, see `migrations::credit`). Each write appends its event in the same transaction.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::{CreditRole, DisputeId, Money};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
    TransactionTrait, TryIntoModel,
};
use storage::events::{EventLog, NewEvent};
use tokio::sync::MutexGuard;

use crate::entity::{
    clawback, deal, dispute, dispute_resolution, ledger_entry, open_dispute, person, policy,
    release, split_set,
};
use crate::error::CreditError;
use crate::model::deal::{DealInput, Recording, Split, allocate, credit_basis, resolve_splits};
use crate::model::ledger::{
    self, Entry, EntryContext, EntryKind, WindowPosition, clawback_entries, credit_entries,
    live_credits, split_reversals, window_position,
};
use crate::model::people::{ListPeopleInput, PersonInput, id_skeleton};
use crate::model::policy::{BUILT_IN_VERSION, DEFAULT_POLICY_ID, built_in_default};
use crate::model::privacy::{self, PersonScope};
use crate::model::{PolicyInput, Terms};
use contracts::Principal;

/// Name of the credit service's event log table.
pub const EVENT_TABLE: &str = "credit_events";

/// Rows per `IN (…)` list or multi-row insert, well inside both databases' limits.
const CHUNK: usize = 500;

#[derive(Clone)]
pub struct Store {
    db: storage::Db,
    events: EventLog,
    /// On SQLite, whose turn it is to write. SQLite allows one writer per file anyway,
    /// and a transaction that read before its first write fails ("database is locked")
    /// rather than waits if another commit lands in between; so every write here takes
    /// its turn. PostgreSQL needs no turn: deal writes lock the deal's row instead (see
    /// [`Store::begin_deal_write`]).
    writer: storage::WriteGate,
}

/// A deal with its split set in force and every ledger entry.
#[derive(Debug, Clone)]
pub struct DealView {
    pub deal: deal::Model,
    pub splits: Vec<Split>,
    pub revision: i32,
    pub cs_led_without_handoff: bool,
    pub entries: Vec<Entry>,
    pub clawed_back: bool,
}

/// A dispute and, once resolved, how; with the disputed entry's participant and deal.
#[derive(Debug, Clone)]
pub struct DisputeView {
    pub dispute: dispute::Model,
    pub resolution: Option<dispute_resolution::Model>,
    pub participant_id: String,
    pub deal_id: String,
    pub team: Option<String>,
}

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

/// How a dispute is closed.
#[derive(Debug, Clone)]
pub enum Resolution {
    Adjust(Money),
    Reject,
}

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

fn corrupt(what: impl std::fmt::Display) -> CreditError {
    CreditError::Corrupt(what.to_string())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CreditError> {
    serde_json::to_string(value).map_err(corrupt)
}

fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

fn entry_from_row(
    row: ledger_entry::Model,
    approved_at: Option<DateTime<Utc>>,
) -> Result<Entry, CreditError> {
    Ok(Entry {
        kind: EntryKind::parse(&row.kind)
            .ok_or_else(|| corrupt(format!("entry {}: kind {:?}", row.entry_id, row.kind)))?,
        role: row
            .role
            .parse()
            .map_err(|_| corrupt(format!("entry {}: role {:?}", row.entry_id, row.role)))?,
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

fn entry_to_row(e: &Entry) -> ledger_entry::ActiveModel {
    ledger_entry::ActiveModel {
        entry_id: Set(e.entry_id.clone()),
        kind: Set(e.kind.as_str().to_owned()),
        deal_id: Set(e.deal_id.clone()),
        participant_id: Set(e.participant_id.clone()),
        role: Set(e.role.as_str().to_owned()),
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

async fn insert_entries<C: ConnectionTrait>(db: &C, entries: &[Entry]) -> Result<(), DbErr> {
    for chunk in entries.chunks(CHUNK) {
        ledger_entry::Entity::insert_many(chunk.iter().map(entry_to_row))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Explicit release times of the given entries.
async fn approvals<C: ConnectionTrait>(
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
async fn open_disputes<C: ConnectionTrait>(
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
async fn with_disputes_and_names<C: ConnectionTrait>(
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

/// Rows to entries, with their approvals and open disputes.
async fn with_approvals<C: ConnectionTrait>(
    db: &C,
    rows: Vec<ledger_entry::Model>,
) -> Result<Vec<Entry>, CreditError> {
    let ids: Vec<String> = rows.iter().map(|r| r.entry_id.clone()).collect();
    let approved = approvals(db, &ids).await?;
    let entries = rows
        .into_iter()
        .map(|row| {
            let at = approved.get(&row.entry_id).copied();
            entry_from_row(row, at)
        })
        .collect::<Result<Vec<_>, _>>()?;
    with_disputes_and_names(db, entries).await
}

async fn deal_entries<C: ConnectionTrait>(
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
    let entries = rows
        .into_iter()
        .map(|row| {
            let at = approved.get(&row.entry_id).copied();
            entry_from_row(row, at)
        })
        .collect::<Result<Vec<_>, _>>()?;
    with_disputes_and_names(db, entries).await
}

async fn load_deal<C: ConnectionTrait>(
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

async fn entry_by_id<C: ConnectionTrait>(db: &C, entry_id: &str) -> Result<Entry, CreditError> {
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

async fn dispute_view<C: ConnectionTrait>(
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

fn split_set_row(
    deal_id: &str,
    revision: i32,
    splits: &[Split],
    cs_led_without_handoff: bool,
    reason: Option<String>,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<split_set::ActiveModel, CreditError> {
    Ok(split_set::ActiveModel {
        deal_id: Set(deal_id.to_owned()),
        revision: Set(revision),
        participants: Set(to_json(&splits)?),
        cs_led_without_handoff: Set(cs_led_without_handoff),
        reason: Set(reason),
        created_at: Set(now),
        created_by: Set(principal.to_owned()),
    })
}

fn sum_minor(entries: &[Entry]) -> i128 {
    entries.iter().map(|e| i128::from(e.amount_minor)).sum()
}

/// The built-in `default` policy as a stored row would hold it (never stored).
fn built_in_default_row() -> Result<policy::Model, CreditError> {
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

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            writer: storage::WriteGate::for_db(&db),
            db: storage::Db::new(db),
            events: EventLog::new(EVENT_TABLE),
        }
    }

    /// The write gate, shared with the service's webhook deliveries.
    pub fn write_gate(&self) -> storage::WriteGate {
        self.writer.clone()
    }

    /// This process's turn to write, on SQLite; nothing to wait for on PostgreSQL.
    async fn sqlite_turn(&self) -> Option<MutexGuard<'_, ()>> {
        self.writer.enter().await
    }

    /// Begins a write transaction, in this process's turn on SQLite.
    async fn begin_write(
        &self,
    ) -> Result<(DatabaseTransaction, Option<MutexGuard<'_, ()>>), CreditError> {
        let turn = self.sqlite_turn().await;
        Ok((self.db.begin().await?, turn))
    }

    /// Begins a transaction in which the given deals cannot change under us: their rows
    /// are locked (`FOR UPDATE`, in id order) on PostgreSQL; on SQLite the returned guard
    /// keeps this process's other deal writes out. Everything the write decides on must
    /// then be read through the returned transaction.
    async fn begin_deal_write(
        &self,
        deal_ids: &[String],
    ) -> Result<(DatabaseTransaction, Option<MutexGuard<'_, ()>>), CreditError> {
        let postgres = self.db.get_database_backend() == DatabaseBackend::Postgres;
        let (txn, guard) = self.begin_write().await?;
        if postgres {
            let mut ids = deal_ids.to_vec();
            ids.sort();
            ids.dedup();
            for id in ids {
                deal::Entity::find_by_id(id)
                    .lock_exclusive()
                    .one(&txn)
                    .await?;
            }
        }
        Ok((txn, guard))
    }

    pub fn db(&self) -> &storage::Db {
        &self.db
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Appends the next version of a policy. Earlier versions are never
    /// touched, so credits recorded under them keep their terms.
    pub async fn add_policy_version(
        &self,
        input: &PolicyInput,
        principal: &str,
    ) -> Result<policy::Model, CreditError> {
        let overlays = to_json(&input.overlay_rules())?;
        let (txn, _turn) = self.begin_write().await?;
        let latest = policy::Entity::find()
            .filter(policy::Column::PolicyId.eq(input.policy_id.as_str()))
            .order_by_desc(policy::Column::Version)
            .limit(1)
            .one(&txn)
            .await?;
        let row = policy::ActiveModel {
            policy_id: Set(input.policy_id.clone()),
            version: Set(latest.map_or(1, |p| p.version + 1)),
            effective_date: Set(input.effective_date),
            origination_percent: Set(input.origination.to_decimal_string()),
            delivery_percent: Set(input.delivery.to_decimal_string()),
            overlays: Set(overlays),
            basis: Set(input.basis.as_str_name().to_owned()),
            hold_days: Set(input.hold_days),
            clawback_window_days: Set(input.clawback_window_days),
            clawback_mode: Set(input.clawback_mode.as_str_name().to_owned()),
            created_at: Set(storage::now()),
            created_by: Set(principal.to_owned()),
        };
        let model = row.insert(&txn).await?;
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "credit.policy.version_added".into(),
                    subject_id: model.policy_id.clone(),
                    data: serde_json::json!({
                        "policy_id": model.policy_id,
                        "version": model.version,
                        "effective_date": model.effective_date.to_string(),
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok(model)
    }

    pub async fn policy_version(
        &self,
        policy_id: &str,
        version: i32,
    ) -> Result<Option<policy::Model>, CreditError> {
        if policy_id == DEFAULT_POLICY_ID && version == BUILT_IN_VERSION {
            return built_in_default_row().map(Some);
        }
        Ok(policy::Entity::find_by_id((policy_id.to_owned(), version))
            .one(&self.db)
            .await?)
    }

    /// The version in force on `date`: the latest effective date on or
    /// before it, and of those the highest version. Before any stored
    /// version of `default`, the built-in one is in force.
    pub async fn policy_in_force(
        &self,
        policy_id: &str,
        date: NaiveDate,
    ) -> Result<Option<policy::Model>, CreditError> {
        let stored = policy::Entity::find()
            .filter(policy::Column::PolicyId.eq(policy_id))
            .filter(policy::Column::EffectiveDate.lte(date))
            .order_by_desc(policy::Column::EffectiveDate)
            .order_by_desc(policy::Column::Version)
            .limit(1)
            .one(&self.db)
            .await?;
        match stored {
            None if policy_id == DEFAULT_POLICY_ID => built_in_default_row().map(Some),
            found => Ok(found),
        }
    }

    /// The terms a recorded deal is credited under (its own policy version, forever).
    async fn deal_terms(&self, deal: &deal::Model) -> Result<Terms, CreditError> {
        let row = self
            .policy_version(&deal.policy_id, deal.policy_version)
            .await?
            .ok_or_else(|| {
                corrupt(format!(
                    "deal {} names missing policy {} v{}",
                    deal.deal_id, deal.policy_id, deal.policy_version
                ))
            })?;
        Terms::from_row(&row).map_err(corrupt)
    }

    pub async fn deal(&self, deal_id: &str) -> Result<DealView, CreditError> {
        load_deal(&self.db, deal_id)
            .await?
            .ok_or_else(|| CreditError::not_found("deal", deal_id))
    }

    /// A replay of a recorded deal: the same request returns it; another is a conflict.
    async fn replay(
        &self,
        existing: &deal::Model,
        recording: &Recording,
    ) -> Result<(DealView, bool), CreditError> {
        let recorded: Recording = serde_json::from_str(&existing.recording).map_err(corrupt)?;
        let differences = recorded.differences(recording);
        if differences.is_empty() {
            Ok((self.deal(&existing.deal_id).await?, false))
        } else {
            Err(CreditError::DealAlreadyCredited {
                deal_id: existing.deal_id.clone(),
                differences,
            })
        }
    }

    /// Records a won deal's credits under the policy version in force at its close date,
    /// or returns the recorded ones for an identical replay (`false`).
    pub async fn record_deal(
        &self,
        input: &DealInput,
        principal: &str,
    ) -> Result<(DealView, bool), CreditError> {
        let deal_id = input.deal_id.to_string();
        let recording = input.recording();
        if let Some(existing) = deal::Entity::find_by_id(deal_id.clone())
            .one(&self.db)
            .await?
        {
            return self.replay(&existing, &recording).await;
        }
        let policy = self
            .policy_in_force(&input.policy_id, input.close_date)
            .await?
            .ok_or_else(|| CreditError::NoPolicyInForce {
                policy_id: input.policy_id.clone(),
                date: input.close_date.to_string(),
            })?;
        let terms = Terms::from_row(&policy).map_err(corrupt)?;
        self.check_participants("participants", &input.splits)
            .await?;
        let splits = resolve_splits("participants", &input.splits, &terms)?;
        let basis = credit_basis(input.amount, input.margin, &terms)?;
        let credits = allocate(
            "participants",
            basis,
            terms.origination,
            &splits,
            input.cs_led_without_handoff,
        )?;

        let now = storage::now();
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
        let row = deal::ActiveModel {
            deal_id: Set(deal_id.clone()),
            account_id: Set(input.account_id.map(|id| id.to_string())),
            account_name: Set(input.account_name.clone()),
            product_name: Set(input.product_name.clone()),
            product_id: Set(input.product_id.map(|id| id.to_string())),
            subscription_id: Set(input.subscription_id.map(|id| id.to_string())),
            currency: Set(currency.to_owned()),
            amount_minor: Set(input.amount.minor()),
            margin_percent: Set(input.margin.map(domain::Percent::to_decimal_string)),
            basis_minor: Set(basis),
            close_date: Set(input.close_date),
            policy_id: Set(terms.policy_id.clone()),
            policy_version: Set(terms.version),
            recording: Set(to_json(&recording)?),
            hold_until: Set(hold_until),
            created_at: Set(now),
            created_by: Set(principal.to_owned()),
        };

        let model = row.clone().try_into_model()?;
        let (txn, _turn) = self.begin_write().await?;
        if let Err(err) = deal::Entity::insert(row).exec_without_returning(&txn).await {
            drop(txn);
            // Recorded concurrently: answer as a replay would.
            if is_unique_violation(&err)
                && let Some(existing) = deal::Entity::find_by_id(deal_id.clone())
                    .one(&self.db)
                    .await?
            {
                return self.replay(&existing, &recording).await;
            }
            return Err(err.into());
        }
        split_set::Entity::insert(split_set_row(
            &deal_id,
            1,
            &splits,
            input.cs_led_without_handoff,
            None,
            principal,
            now,
        )?)
        .exec_without_returning(&txn)
        .await?;
        insert_entries(&txn, &entries).await?;
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "credit.deal.credited".into(),
                    subject_id: deal_id.clone(),
                    data: serde_json::json!({
                        "deal_id": deal_id,
                        "policy_id": terms.policy_id,
                        "policy_version": terms.version,
                        "currency_code": currency,
                        "basis": Money::from_minor(input.amount.currency(), basis).to_amount_string(),
                        "entry_ids": entries.iter().map(|e| e.entry_id.clone()).collect::<Vec<_>>(),
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        // Answer from what was written rather than reading it all back.
        Ok((
            DealView {
                deal: model,
                splits,
                revision: 1,
                cs_led_without_handoff: input.cs_led_without_handoff,
                entries,
                clawed_back: false,
            },
            true,
        ))
    }

    /// Replaces a deal's whole split set: ADJUSTMENT reversals of the live credits, then
    /// the new CREDITs, under the deal's own policy version. The owner's split must stay.
    /// Replacing with the set already in force writes nothing.
    pub async fn replace_splits(
        &self,
        deal_id: &str,
        new_splits: &[Split],
        cs_led_without_handoff: bool,
        reason: &str,
        principal: &str,
    ) -> Result<DealView, CreditError> {
        let (txn, _guard) = self.begin_deal_write(&[deal_id.to_owned()]).await?;
        let view = load_deal(&txn, deal_id)
            .await?
            .ok_or_else(|| CreditError::not_found("deal", deal_id))?;
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
        let mut new_splits = new_splits.to_vec();
        if let Some(owner) = view.splits.iter().find(|s| s.owner) {
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
                return Err(contracts::ApiError::invalid(
                    format!("participants[{other}].owner"),
                    format!(
                        "the deal's owner is {} as {}; ReplaceDealSplits keeps it",
                        owner.participant_id, owner.role
                    ),
                )
                .into());
            }
            new_splits[kept].owner = true;
        }
        self.check_participants("participants", &new_splits).await?;
        let terms = self.deal_terms(&view.deal).await?;
        let resolved = resolve_splits("participants", &new_splits, &terms)?;
        if resolved == view.splits && cs_led_without_handoff == view.cs_led_without_handoff {
            return Ok(view);
        }
        let credits = allocate(
            "participants",
            view.deal.basis_minor,
            terms.origination,
            &resolved,
            cs_led_without_handoff,
        )?;

        let now = storage::now();
        let live = live_credits(&view.entries, view.revision);
        // Money already released stays released: the corrected credits are not held again.
        let hold_until = if live.iter().any(|e| e.is_released(now)) {
            now
        } else {
            view.deal.hold_until
        };
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
        let mut entries = split_reversals(&ctx, &live, reason);
        entries.extend(credit_entries(
            &ctx,
            &credits,
            hold_until,
            &format!("split replaced: {reason}"),
        ));

        // The (deal, revision) key would also refuse a concurrent replacement.
        split_set_row(
            deal_id,
            revision,
            &resolved,
            cs_led_without_handoff,
            Some(reason.to_owned()),
            principal,
            now,
        )?
        .insert(&txn)
        .await?;
        insert_entries(&txn, &entries).await?;
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "credit.deal.splits_replaced".into(),
                    subject_id: deal_id.to_owned(),
                    data: serde_json::json!({
                        "deal_id": deal_id,
                        "revision": revision,
                        "reason": reason,
                        "entry_ids": entries.iter().map(|e| e.entry_id.clone()).collect::<Vec<_>>(),
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        self.deal(deal_id).await
    }

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
            vec![self.deal(deal_id).await?.deal.deal_id]
        } else {
            let mut deals = Vec::new();
            for id in entry_ids {
                deals.push(entry_by_id(&self.db, id).await?.deal_id);
            }
            deals
        };
        let (txn, _guard) = self.begin_deal_write(&deals).await?;
        let now = storage::now();
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
        let mut held: Vec<Entry> = targets
            .into_iter()
            .filter(|e| !e.is_released(now))
            .collect();
        if held.is_empty() {
            return Ok(held);
        }
        privacy::check_approval(principal, held.iter().map(|e| e.participant_id.as_str()))?;
        for chunk in held.chunks(CHUNK) {
            release::Entity::insert_many(chunk.iter().map(|e| release::ActiveModel {
                entry_id: Set(e.entry_id.clone()),
                deal_id: Set(e.deal_id.clone()),
                released_at: Set(now),
                released_by: Set(principal.to_owned()),
                note: Set(note.clone()),
            }))
            .exec_without_returning(&txn)
            .await?;
        }
        let deal_ids: Vec<String> = held
            .iter()
            .map(|e| e.deal_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "credit.credits.released".into(),
                    subject_id: deal_ids.join(","),
                    data: serde_json::json!({
                        "deal_ids": deal_ids,
                        "entry_ids": held.iter().map(|e| e.entry_id.clone()).collect::<Vec<_>>(),
                        "note": note,
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        for e in &mut held {
            e.approved_at = Some(now);
        }
        Ok(held)
    }

    /// Claws back the credits of a deal, or of every deal of a cancelled subscription,
    /// when the cancellation falls inside each deal's window. A deal is clawed back at
    /// most once: a repeat returns the earlier entries.
    pub async fn apply_clawback(
        &self,
        deal_id: Option<&str>,
        subscription_id: Option<&str>,
        cancel_date: NaiveDate,
        reason: &str,
        principal: &str,
    ) -> Result<ClawbackOutcome, CreditError> {
        // A concurrent clawback of the same deal wins its key; one more pass then finds
        // the deal clawed back and returns those entries.
        let attempt =
            || self.try_apply_clawback(deal_id, subscription_id, cancel_date, reason, principal);
        match attempt().await {
            Err(CreditError::Store(err)) if is_unique_violation(&err) => attempt().await,
            other => other,
        }
    }

    async fn try_apply_clawback(
        &self,
        deal_id: Option<&str>,
        subscription_id: Option<&str>,
        cancel_date: NaiveDate,
        reason: &str,
        principal: &str,
    ) -> Result<ClawbackOutcome, CreditError> {
        let deals: Vec<deal::Model> = match (deal_id, subscription_id) {
            (Some(id), _) => vec![
                deal::Entity::find_by_id(id.to_owned())
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| CreditError::not_found("deal", id))?,
            ],
            (None, Some(sub)) => {
                let found = deal::Entity::find()
                    .filter(deal::Column::SubscriptionId.eq(sub))
                    .order_by_asc(deal::Column::DealId)
                    .all(&self.db)
                    .await?;
                if found.is_empty() {
                    return Err(CreditError::not_found("credited subscription", sub));
                }
                found
            }
            (None, None) => {
                return Err(contracts::ApiError::invalid(
                    "deal_id",
                    "a deal_id or a subscription_id is required",
                )
                .into());
            }
        };

        let ids: Vec<String> = deals.iter().map(|d| d.deal_id.clone()).collect();
        let (txn, _guard) = self.begin_deal_write(&ids).await?;
        let now = storage::now();
        let mut outcome = ClawbackOutcome::default();
        let mut new_entries: Vec<Entry> = Vec::new();
        let mut clawbacks = Vec::new();
        let mut events = Vec::new();
        for deal in &deals {
            let view = load_deal(&txn, &deal.deal_id)
                .await?
                .ok_or_else(|| CreditError::not_found("deal", &deal.deal_id))?;
            if view.clawed_back {
                outcome.entries.extend(
                    view.entries
                        .into_iter()
                        .filter(|e| e.kind == EntryKind::Clawback),
                );
                continue;
            }
            let terms = self.deal_terms(deal).await?;
            let elapsed_days =
                match window_position(deal.close_date, cancel_date, terms.clawback_window_days) {
                    WindowPosition::BeforeClose => {
                        return Err(contracts::ApiError::invalid(
                            "cancel_date",
                            format!(
                                "{cancel_date} is before deal {}'s close date {}",
                                deal.deal_id, deal.close_date
                            ),
                        )
                        .into());
                    }
                    WindowPosition::Outside => {
                        outcome.outside_window.push(deal.deal_id.clone());
                        continue;
                    }
                    WindowPosition::Inside { elapsed_days } => elapsed_days,
                };
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
                reason,
            );
            let (recovered, forfeited): (Vec<Entry>, Vec<Entry>) =
                entries.iter().cloned().partition(|e| e.is_released(now));
            clawbacks.push(clawback::ActiveModel {
                deal_id: Set(deal.deal_id.clone()),
                subscription_id: Set(subscription_id
                    .map(str::to_owned)
                    .or(deal.subscription_id.clone())),
                cancel_date: Set(cancel_date),
                mode: Set(terms.clawback_mode.as_str_name().to_owned()),
                reason: Set(Some(reason.to_owned())),
                created_at: Set(now),
                created_by: Set(principal.to_owned()),
            });
            let currency = domain::Currency::parse(&deal.currency).map_err(corrupt)?;
            let money = |minor: i128| {
                Money::from_minor(currency, i64::try_from(minor).unwrap_or_default())
                    .to_amount_string()
            };
            events.push(NewEvent {
                event_type: "credit.deal.clawed_back".into(),
                subject_id: deal.deal_id.clone(),
                data: serde_json::json!({
                    "deal_id": deal.deal_id,
                    "subscription_id": deal.subscription_id,
                    "cancel_date": cancel_date.to_string(),
                    "mode": terms.clawback_mode.as_str_name(),
                    "elapsed_days": elapsed_days,
                    "window_days": terms.clawback_window_days,
                    "currency_code": deal.currency,
                    "recovered": money(-sum_minor(&recovered)),
                    "forfeited": money(-sum_minor(&forfeited)),
                    "entry_ids": entries.iter().map(|e| e.entry_id.clone()).collect::<Vec<_>>(),
                    "principal": principal,
                }),
            });
            new_entries.extend(entries);
        }
        if clawbacks.is_empty() {
            return Ok(outcome);
        }
        // The deal-keyed clawback row is what refuses a second, concurrent clawback.
        clawback::Entity::insert_many(clawbacks)
            .exec_without_returning(&txn)
            .await?;
        insert_entries(&txn, &new_entries).await?;
        self.events.append(&txn, &events).await?;
        txn.commit().await?;
        self.events.committed();
        outcome.created = true;
        outcome.entries.extend(new_entries);
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
            cond = cond.add(C::Kind.eq(k.as_str()));
        }
        if let Some(r) = filter.role {
            cond = cond.add(C::Role.eq(r.as_str()));
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

    /// Opens a dispute over an entry; one open dispute per entry at a time.
    pub async fn open_dispute(
        &self,
        entry_id: &str,
        reason: &str,
        opener: &Principal,
    ) -> Result<DisputeView, CreditError> {
        let principal = opener.name.as_str();
        let entry = entry_by_id(&self.db, entry_id).await?;
        privacy::check_dispute_open(opener, &entry.participant_id)?;
        let now = storage::now();
        let dispute_id = DisputeId::new().to_string();
        let row = dispute::ActiveModel {
            dispute_id: Set(dispute_id.clone()),
            entry_id: Set(entry_id.to_owned()),
            opened_by: Set(principal.to_owned()),
            reason: Set(reason.to_owned()),
            opened_at: Set(now),
        };
        let (txn, _turn) = self.begin_write().await?;
        // The entry's claim is the database's word that no other dispute is open on
        // it: of concurrent openers, one inserts it and the others are refused.
        let claim = open_dispute::ActiveModel {
            entry_id: Set(entry_id.to_owned()),
            dispute_id: Set(dispute_id),
        };
        if let Err(err) = claim.insert(&txn).await {
            if !is_unique_violation(&err) {
                return Err(err.into());
            }
            drop(txn);
            let open = open_dispute::Entity::find_by_id(entry_id.to_owned())
                .one(&self.db)
                .await?;
            return Err(CreditError::DisputeAlreadyOpen {
                entry_id: entry_id.to_owned(),
                dispute_id: open.map(|o| o.dispute_id).unwrap_or_default(),
            });
        }
        let model = row.insert(&txn).await?;
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "credit.dispute.opened".into(),
                    subject_id: model.dispute_id.clone(),
                    data: serde_json::json!({
                        "dispute_id": model.dispute_id,
                        "entry_id": entry_id,
                        "deal_id": entry.deal_id,
                        "participant_id": entry.participant_id,
                        "reason": reason,
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok(DisputeView {
            dispute: model,
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
        dispute_id: &str,
        resolution: Resolution,
        note: Option<String>,
        principal: &str,
    ) -> Result<(DisputeView, Option<Entry>), CreditError> {
        let view = dispute_view(&self.db, dispute_id).await?;
        if view.resolution.is_some() {
            return Err(CreditError::DisputeAlreadyResolved(dispute_id.to_owned()));
        }
        let disputed = entry_by_id(&self.db, &view.dispute.entry_id).await?;
        privacy::check_ruling(
            principal,
            &disputed.participant_id,
            matches!(resolution, Resolution::Adjust(_)),
        )?;
        let now = storage::now();
        let adjustment = match &resolution {
            Resolution::Reject => None,
            Resolution::Adjust(money) => {
                if money.currency().code() != disputed.currency {
                    return Err(contracts::ApiError::invalid(
                        "adjustment.currency_code",
                        format!(
                            "must be {}, the disputed entry's currency (got {})",
                            disputed.currency,
                            money.currency()
                        ),
                    )
                    .into());
                }
                let ctx = EntryContext {
                    deal_id: &disputed.deal_id,
                    currency: &disputed.currency,
                    policy_id: &disputed.policy_id,
                    policy_version: disputed.policy_version,
                    principal,
                    now,
                    revision: disputed.split_revision,
                };
                Some(ledger::adjustment_entry(
                    &ctx,
                    &disputed,
                    money.minor(),
                    &format!(
                        "dispute {dispute_id}: {}",
                        note.as_deref().unwrap_or(&view.dispute.reason)
                    ),
                ))
            }
        };
        let outcome = match resolution {
            Resolution::Adjust(_) => "RESOLVED_ADJUSTED",
            Resolution::Reject => "RESOLVED_REJECTED",
        };
        let row = dispute_resolution::ActiveModel {
            dispute_id: Set(dispute_id.to_owned()),
            outcome: Set(outcome.to_owned()),
            note: Set(note.clone()),
            adjustment_entry_id: Set(adjustment.as_ref().map(|e| e.entry_id.clone())),
            resolved_at: Set(now),
            resolved_by: Set(principal.to_owned()),
        };
        let (txn, _turn) = self.begin_write().await?;
        // The dispute-keyed resolution row refuses a concurrent second resolution.
        let resolution_row = match row.insert(&txn).await {
            Ok(model) => model,
            Err(err) if is_unique_violation(&err) => {
                return Err(CreditError::DisputeAlreadyResolved(dispute_id.to_owned()));
            }
            Err(err) => return Err(err.into()),
        };
        if let Some(entry) = &adjustment {
            insert_entries(&txn, std::slice::from_ref(entry)).await?;
        }
        // Resolved: the entry may be disputed again.
        open_dispute::Entity::delete_many()
            .filter(open_dispute::Column::EntryId.eq(disputed.entry_id.as_str()))
            .filter(open_dispute::Column::DisputeId.eq(dispute_id))
            .exec(&txn)
            .await?;
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "credit.dispute.resolved".into(),
                    subject_id: dispute_id.to_owned(),
                    data: serde_json::json!({
                        "dispute_id": dispute_id,
                        "entry_id": disputed.entry_id,
                        "deal_id": disputed.deal_id,
                        "outcome": outcome,
                        "adjustment_entry_id": adjustment.as_ref().map(|e| e.entry_id.clone()),
                        "adjustment": adjustment.as_ref().map(|e| e.amount_minor.to_string()),
                        "currency_code": disputed.currency,
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok((
            DisputeView {
                resolution: Some(resolution_row),
                ..view
            },
            adjustment,
        ))
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

    /// Refuses a split set naming someone who looks like a person of the directory
    /// without being them (`аna.ae` beside `ana.ae`: same TR39 skeleton, another
    /// id), or an originator or deliverer the directory does not know.
    async fn check_participants(&self, field: &str, splits: &[Split]) -> Result<(), CreditError> {
        let skeletons: BTreeSet<String> = splits
            .iter()
            .map(|s| id_skeleton(&s.participant_id))
            .collect();
        let known = person::Entity::find()
            .filter(person::Column::Skeleton.is_in(skeletons))
            .all(&self.db)
            .await?;
        for (i, split) in splits.iter().enumerate() {
            let skeleton = id_skeleton(&split.participant_id);
            if known.iter().any(|p| p.person_id == split.participant_id) {
                continue;
            }
            if let Some(twin) = known.iter().find(|p| p.skeleton == skeleton) {
                return Err(contracts::ApiError::invalid(
                    format!("{field}[{i}].participant_id"),
                    format!(
                        "{:?} looks like the person {:?} of the directory but is not them",
                        split.participant_id, twin.person_id
                    ),
                )
                .into());
            }
        }
        // SPEC §6: a deal's people are people of the directory. An overlay
        // may credit a team or an account team, which is no person.
        let strangers: Vec<String> = splits
            .iter()
            .filter(|s| matches!(s.role, CreditRole::Originator | CreditRole::Delivery))
            .filter(|s| !known.iter().any(|p| p.person_id == s.participant_id))
            .map(|s| s.participant_id.clone())
            .collect();
        if !strangers.is_empty() {
            return Err(CreditError::UnknownParticipants(strangers));
        }
        Ok(())
    }

    /// The version in force of a person.
    pub async fn person(&self, person_id: &str) -> Result<Option<person::Model>, CreditError> {
        Ok(person::Entity::find()
            .filter(person::Column::PersonId.eq(person_id))
            .order_by_desc(person::Column::Version)
            .limit(1)
            .one(&self.db)
            .await?)
    }

    /// The directory as in force: the latest version of each person, by id. A
    /// directory is people, not entries (thousands at most), so it is read whole.
    pub async fn directory(&self) -> Result<Vec<person::Model>, CreditError> {
        let rows = person::Entity::find()
            .order_by_asc(person::Column::PersonId)
            .order_by_asc(person::Column::Version)
            .all(&self.db)
            .await?;
        let mut out: Vec<person::Model> = Vec::new();
        for row in rows {
            match out.last_mut() {
                Some(last) if last.person_id == row.person_id => *last = row,
                _ => out.push(row),
            }
        }
        Ok(out)
    }

    /// People of the directory in `team`.
    pub async fn team_members(&self, team: &str) -> Result<BTreeSet<String>, CreditError> {
        Ok(self
            .directory()
            .await?
            .into_iter()
            .filter(|p| p.team.as_deref() == Some(team))
            .map(|p| p.person_id)
            .collect())
    }

    /// A page of the directory after `after`, with one more row when there is a next page.
    pub async fn list_people(
        &self,
        input: &ListPeopleInput,
    ) -> Result<Vec<person::Model>, CreditError> {
        let want = usize::try_from(input.page_size + 1).unwrap_or(usize::MAX);
        Ok(self
            .directory()
            .await?
            .into_iter()
            .filter(|p| input.after.as_ref().is_none_or(|a| p.person_id > *a))
            .filter(|p| input.team.is_none() || p.team == input.team)
            .filter(|p| input.role.is_none_or(|r| p.role == r.as_str_name()))
            .filter(|p| input.manager_id.is_none() || p.manager_id == input.manager_id)
            .take(want)
            .collect())
    }

    /// Adds a version of a person, unless the one in force says the same (`false`).
    /// Refuses an id that looks like another person's (same TR39 skeleton) and a
    /// manager who is not in the directory.
    pub async fn upsert_person(
        &self,
        input: &PersonInput,
        principal: &str,
    ) -> Result<(person::Model, bool), CreditError> {
        let skeleton = id_skeleton(&input.person_id);
        let (txn, _turn) = self.begin_write().await?;
        let current = person::Entity::find()
            .filter(person::Column::PersonId.eq(input.person_id.as_str()))
            .order_by_desc(person::Column::Version)
            .limit(1)
            .one(&txn)
            .await?;
        if let Some(current) = &current
            && input.same_as(
                current.display_name.as_deref(),
                &current.role,
                current.team.as_deref(),
                current.manager_id.as_deref(),
            )
        {
            return Ok((current.clone(), false));
        }
        if current.is_none()
            && let Some(twin) = person::Entity::find()
                .filter(person::Column::Skeleton.eq(skeleton.as_str()))
                .filter(person::Column::PersonId.ne(input.person_id.as_str()))
                .one(&txn)
                .await?
        {
            return Err(CreditError::LookAlikePerson {
                candidate: input.person_id.clone(),
                existing: twin.person_id,
            });
        }
        if let Some(manager) = &input.manager_id {
            let known = person::Entity::find()
                .filter(person::Column::PersonId.eq(manager.as_str()))
                .one(&txn)
                .await?
                .is_some();
            if !known {
                return Err(CreditError::not_found("person", manager));
            }
        }
        let row = person::ActiveModel {
            person_id: Set(input.person_id.clone()),
            version: Set(current.as_ref().map_or(1, |c| c.version + 1)),
            display_name: Set(input.display_name.clone()),
            role: Set(input.role.as_str_name().to_owned()),
            team: Set(input.team.clone()),
            manager_id: Set(input.manager_id.clone()),
            skeleton: Set(skeleton),
            created_at: Set(storage::now()),
            created_by: Set(principal.to_owned()),
        };
        let model = match row.insert(&txn).await {
            Ok(model) => model,
            // The same person upserted concurrently: the other version won.
            Err(err) if is_unique_violation(&err) => {
                drop(txn);
                let current = self
                    .person(&input.person_id)
                    .await?
                    .ok_or_else(|| CreditError::not_found("person", &input.person_id))?;
                return Ok((current, false));
            }
            Err(err) => return Err(err.into()),
        };
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "credit.person.upserted".into(),
                    subject_id: model.person_id.clone(),
                    data: serde_json::json!({
                        "person_id": model.person_id,
                        "version": model.version,
                        "role": model.role,
                        "team": model.team,
                        "manager_id": model.manager_id,
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok((model, true))
    }
}
