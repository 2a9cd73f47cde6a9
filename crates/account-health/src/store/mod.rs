//! The health service's queries and transactions (SeaORM, SQLite or
//! PostgreSQL alike), one module per area.

mod backfill;
mod health;
mod health_read;
mod names;
mod portfolio;
mod revenue;
mod signals;
mod triggers;

use contracts::pb::health::v1 as pb;
use storage::read_cache::ReadCache;

pub use health::{AccountHealthView, HealthRow, ScoreView};
pub use health_read::read_statement;
pub use names::Names;
pub use portfolio::SubscriptionView;
pub use signals::IngestTotals;

use domain::{AccountId, ExternalId};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Set, SqlErr, TransactionTrait,
};
use storage::events::{EventLog, NewEvent};

use crate::entity::account;
use crate::error::HealthError;
use crate::model::account_links::{
    MAX_PARENT_DEPTH, ParentChain, check_external_ref_free, check_parent_chain,
};
use crate::model::scorecard::Scorecard;
use crate::model::triggers::TriggerConfig;
use crate::model::{AccountInput, AccountKey};

/// Name of the health service's event log table.
pub const EVENT_TABLE: &str = "health_events";

#[derive(Clone)]
pub struct Store {
    db: storage::Db,
    events: EventLog,
    triggers: TriggerConfig,
    writer: storage::WriteGate,
    /// Accounts that received signals lately, in this process.
    recent: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
    /// Signals ingested by this process, for its metrics.
    ingested: std::sync::Arc<IngestTotals>,
    /// Scorecard versions read so far. A version never changes once
    /// written, so this can never be stale, in any replica.
    cards: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<i32, Scorecard>>>,
    /// Answers kept in memory until the next write (on SQLite only: see
    /// [`storage::read_cache`]).
    reads: std::sync::Arc<Reads>,
}

/// The answers kept in memory between writes: `GetAccountHealth` by
/// account, and `GetAccount` and the pages of `ListProducts` and
/// `ListSubscriptions` by their encoded request (what `GetWhitespace` asks
/// on every call).
pub struct Reads {
    pub health: ReadCache<AccountId, pb::GetAccountHealthResponse>,
    pub accounts: ReadCache<Vec<u8>, pb::GetAccountResponse>,
    pub products: ReadCache<Vec<u8>, pb::ListProductsResponse>,
    pub subscriptions: ReadCache<Vec<u8>, pb::ListSubscriptionsResponse>,
}

/// Pages of the product list kept at most: the catalogue is small, and a
/// page is asked for with a few filters.
const PRODUCT_PAGES_KEPT: usize = 1_000;

impl Reads {
    /// At most `entries` answers of each kind (fewer product pages); 0 keeps none.
    fn new(writer: &storage::WriteGate, entries: usize) -> Self {
        Self {
            health: ReadCache::new(writer.clone(), entries),
            accounts: ReadCache::new(writer.clone(), entries),
            products: ReadCache::new(writer.clone(), entries.min(PRODUCT_PAGES_KEPT)),
            subscriptions: ReadCache::new(writer.clone(), entries),
        }
    }
}

/// How many `GetAccountHealth` answers are kept by default (a few hundred
/// bytes each).
pub const HEALTH_READ_CACHE_ENTRIES: usize = 100_000;

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        let writer = storage::WriteGate::for_db(&db);
        Self {
            reads: std::sync::Arc::new(Reads::new(&writer, HEALTH_READ_CACHE_ENTRIES)),
            writer,
            db: storage::Db::new(db),
            // Health events name accounts: each with its CRM reference.
            events: EventLog::new(EVENT_TABLE).with_account_refs(storage::events::AccountRefs {
                table: "accounts",
                id: "id",
                system: "external_system",
                external_id: "external_id",
            }),
            triggers: TriggerConfig::default(),
            recent: Default::default(),
            ingested: Default::default(),
            cards: Default::default(),
        }
    }

    pub fn db(&self) -> &storage::Db {
        &self.db
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    pub fn writer(&self) -> &storage::WriteGate {
        &self.writer
    }

    /// The same store, keeping at most `entries` answers of each kind in
    /// memory (0: none).
    pub fn with_health_reads(mut self, entries: usize) -> Self {
        self.reads = std::sync::Arc::new(Reads::new(&self.writer, entries));
        self
    }

    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    /// Signals ingested by this process so far.
    pub fn ingested(&self) -> std::sync::Arc<IngestTotals> {
        self.ingested.clone()
    }

    pub async fn account(&self, id: AccountId) -> Result<Option<account::Model>, HealthError> {
        Ok(account::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?)
    }

    pub async fn account_by_external(
        &self,
        external: &ExternalId,
    ) -> Result<Option<account::Model>, HealthError> {
        Ok(find_by_external(&self.db, external).await?)
    }

    /// Accounts ordered by id; `after` is the last id of the previous page.
    pub async fn list_accounts(
        &self,
        segment: Option<&str>,
        owner_csm: Option<&str>,
        parent: Option<AccountId>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<account::Model>, HealthError> {
        use sea_orm::{QueryOrder, QuerySelect};
        let mut q = account::Entity::find().order_by_asc(account::Column::Id);
        if let Some(s) = segment {
            q = q.filter(account::Column::Segment.eq(s));
        }
        if let Some(c) = owner_csm {
            q = q.filter(account::Column::OwnerCsm.eq(c));
        }
        if let Some(p) = parent {
            q = q.filter(account::Column::ParentAccountId.eq(p.to_string()));
        }
        if let Some(after) = after {
            q = q.filter(account::Column::Id.gt(after));
        }
        Ok(q.limit(limit).all(&self.db).await?)
    }

    /// Creates or updates an account; returns it and whether it was created.
    ///
    /// Two connectors racing to create the same CRM account both succeed: the
    /// loser of the insert retries as an update.
    pub async fn upsert_account(
        &self,
        input: &AccountInput,
        principal: &str,
    ) -> Result<(account::Model, bool), HealthError> {
        match self.try_upsert_account(input, principal).await {
            Err(HealthError::Store(err))
                if matches!(input.key, AccountKey::External(_))
                    && matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
            {
                self.try_upsert_account(input, principal).await
            }
            other => other,
        }
    }

    async fn try_upsert_account(
        &self,
        input: &AccountInput,
        principal: &str,
    ) -> Result<(account::Model, bool), HealthError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let existing = find_keyed_account(&txn, &input.key).await?;
        let id = existing
            .as_ref()
            .map(|m| m.id.clone())
            .unwrap_or_else(|| AccountId::new().to_string());
        if let Some(parent) = &input.parent {
            let chain = parent_chain(&txn, parent, &id).await?;
            check_parent_chain(&id, &chain)?;
        }
        if let (Some(ext), Some(current)) = (&input.external, &existing) {
            let holder = find_by_external(&txn, ext).await?;
            check_external_ref_free(ext, &current.id, holder.as_ref().map(|h| h.id.as_str()))?;
        }
        // A connector re-sending what is stored changes nothing: no write, no
        // `health.account.updated` event for watchers and outboxes to chase.
        if let Some(current) = &existing
            && account_unchanged(current, input)
        {
            return Ok((current.clone(), false));
        }

        let created = existing.is_none();
        // A changed fiscal year moves FISCAL_YEAR_WINDOW: the account is recomputed
        // (its time-based triggers re-evaluated) before anyone reads it again.
        let fiscal_year_moved = existing.as_ref().is_some_and(|current| {
            i64::from(current.fiscal_year_start_month) != i64::from(input.fiscal_year_start_month)
        });
        let model = write_account(&txn, id, input, existing, principal).await?;
        if fiscal_year_moved {
            mark_dirty(&txn, std::slice::from_ref(&model.id)).await?;
        }
        self.events
            .append(&txn, &[account_event(&model, created, principal)])
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok((model, created))
    }
}

/// The account an upsert's key names: by id it must exist; by CRM
/// reference it may not yet.
async fn find_keyed_account<C: ConnectionTrait>(
    db: &C,
    key: &AccountKey,
) -> Result<Option<account::Model>, HealthError> {
    Ok(match key {
        AccountKey::Id(id) => Some(
            account::Entity::find_by_id(id.to_string())
                .one(db)
                .await?
                .ok_or_else(|| HealthError::AccountNotFound(id.to_string()))?,
        ),
        AccountKey::External(ext) => find_by_external(db, ext).await?,
        AccountKey::New => None,
    })
}

/// Inserts the account (`existing` is `None`) or updates it, keeping its
/// creation and, when the input names none, its CRM reference.
async fn write_account<C: ConnectionTrait>(
    db: &C,
    id: String,
    input: &AccountInput,
    existing: Option<account::Model>,
    principal: &str,
) -> Result<account::Model, DbErr> {
    let now = storage::now();
    let mut row = account::ActiveModel {
        id: Set(id),
        name: Set(input.name.clone()),
        segment: Set(input.segment.map(|s| s.as_str().to_owned())),
        customer_since: Set(input.customer_since),
        fiscal_year_start_month: Set(i32::try_from(input.fiscal_year_start_month).unwrap_or(1)),
        owner_csm: Set(input.owner_csm.clone()),
        parent_account_id: Set(input.parent.map(|p| p.to_string())),
        updated_at: Set(now),
        updated_by: Set(principal.to_owned()),
        ..Default::default()
    };
    if let Some(ext) = &input.external {
        row.external_system = Set(Some(ext.source().to_owned()));
        row.external_id = Set(Some(ext.id().to_owned()));
    }
    if let Some(current) = existing {
        row.created_at = Set(current.created_at);
        row.created_by = Set(current.created_by);
        if input.external.is_none() {
            row.external_system = Set(current.external_system);
            row.external_id = Set(current.external_id);
        }
        row.update(db).await
    } else {
        row.created_at = Set(now);
        row.created_by = Set(principal.to_owned());
        if input.external.is_none() {
            row.external_system = Set(None);
            row.external_id = Set(None);
        }
        row.insert(db).await
    }
}

/// `health.account.created` or `health.account.updated` for `model`.
/// `sql` whose parameters are written `{1}`, `{2}`, … as a statement for
/// `backend` (`$1` on PostgreSQL, `?1` on SQLite) with `values` bound in order.
fn numbered_statement<const N: usize>(
    backend: sea_orm::DatabaseBackend,
    sql: &str,
    values: [sea_orm::Value; N],
) -> sea_orm::Statement {
    let mark = match backend {
        sea_orm::DatabaseBackend::Postgres => "$",
        _ => "?",
    };
    let sql = (1..=N).fold(sql.to_owned(), |sql, n| {
        sql.replace(&format!("{{{n}}}"), &format!("{mark}{n}"))
    });
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

fn account_event(model: &account::Model, created: bool, principal: &str) -> NewEvent {
    NewEvent {
        event_type: if created {
            "health.account.created"
        } else {
            "health.account.updated"
        }
        .into(),
        subject_id: model.id.clone(),
        data: serde_json::json!({
            "account_id": model.id,
            "name": model.name,
            "owner_csm": model.owner_csm,
            "principal": principal,
        }),
    }
}

/// Whether `input` would leave the stored account as it is.
fn account_unchanged(current: &account::Model, input: &AccountInput) -> bool {
    let external_same = input.external.as_ref().is_none_or(|ext| {
        current.external_system.as_deref() == Some(ext.source())
            && current.external_id.as_deref() == Some(ext.id())
    });
    external_same
        && current.name == input.name
        && current.segment.as_deref() == input.segment.map(|s| s.as_str())
        && current.customer_since == input.customer_since
        && i64::from(current.fiscal_year_start_month) == i64::from(input.fiscal_year_start_month)
        && current.owner_csm == input.owner_csm
        && current.parent_account_id == input.parent.map(|p| p.to_string())
}

/// Marks accounts for a health and trigger recomputation. An account
/// already marked and not being recomputed stays as it is (cheaper than
/// rewriting the row on every batch); one a replica has claimed counts one
/// more `generation`, so that recomputation, which may have read before
/// this change, leaves the mark for the next one.
///
/// On PostgreSQL the upsert locks the marked rows until the caller commits
/// (also when it changes nothing), so a claim skips an account whose mark
/// has not committed yet; ids go in sorted order, so two transactions
/// marking the same accounts never wait on each other in a cycle. The
/// marks go in as one JSON array parameter, whatever their number.
pub(crate) async fn mark_dirty<C: ConnectionTrait>(
    db: &C,
    account_ids: &[String],
) -> Result<(), DbErr> {
    if account_ids.is_empty() {
        return Ok(());
    }
    // One row per account: an upsert may not touch a row twice.
    let ids: std::collections::BTreeSet<&String> = account_ids.iter().collect();
    let listed = serde_json::to_string(&ids)
        .map_err(|err| DbErr::Custom(format!("encoding account ids: {err}")))?;
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "INSERT INTO health_dirty (account_id, marked_at, generation) \
             SELECT e, {2}, 0 FROM json_array_elements_text({1}::json) \
             WITH ORDINALITY AS l(e, n) ORDER BY n \
             ON CONFLICT (account_id) DO UPDATE SET generation = health_dirty.generation + 1 \
             WHERE health_dirty.claimed_until IS NOT NULL"
        }
        // `WHERE true` tells SQLite's parser the ON CONFLICT is the insert's.
        _ => {
            "INSERT INTO health_dirty (account_id, marked_at, generation) \
             SELECT value, {2}, 0 FROM json_each({1}) WHERE true ORDER BY key \
             ON CONFLICT (account_id) DO UPDATE SET generation = health_dirty.generation + 1 \
             WHERE health_dirty.claimed_until IS NOT NULL"
        }
    };
    db.execute_raw(numbered_statement(
        backend,
        sql,
        [listed.into(), storage::now().into()],
    ))
    .await?;
    Ok(())
}

async fn find_by_external<C: ConnectionTrait>(
    db: &C,
    external: &ExternalId,
) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find()
        .filter(account::Column::ExternalSystem.eq(external.source()))
        .filter(account::Column::ExternalId.eq(external.id()))
        .one(db)
        .await
}

/// The parent chain from `parent` up, as [`ParentChain`] describes it; the
/// walk stops early at `id`, the account being written.
async fn parent_chain<C: ConnectionTrait>(
    db: &C,
    parent: &AccountId,
    id: &str,
) -> Result<ParentChain, DbErr> {
    let mut chain = ParentChain::default();
    let mut cursor = Some(parent.to_string());
    while let Some(current) = cursor.take() {
        if chain.ids.len() == MAX_PARENT_DEPTH {
            break;
        }
        chain.ids.push(current.clone());
        if current == id {
            break;
        }
        match account::Entity::find_by_id(current).one(db).await? {
            Some(row) => cursor = row.parent_account_id,
            None => chain.last_missing = true,
        }
    }
    Ok(chain)
}
