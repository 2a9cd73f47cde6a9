//! Signal ingestion: the hot path. One transaction per batch, multi-row
//! inserts, duplicates skipped by the database, no per-signal round trip.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter,
    QuerySelect, Select, TransactionTrait,
};

use super::{Store, mark_dirty};
use crate::entity::signal;
use crate::error::HealthError;
use crate::model::signal::{NewSignal, SignalKind};

/// Signals this process has ingested since it started, for monitoring.
#[derive(Debug, Default)]
pub struct IngestTotals {
    pub accepted: std::sync::atomic::AtomicU64,
    pub duplicates: std::sync::atomic::AtomicU64,
}

impl IngestTotals {
    fn add(&self, done: Ingested) {
        use std::sync::atomic::Ordering::Relaxed;
        self.accepted.fetch_add(done.accepted, Relaxed);
        self.duplicates.fetch_add(done.duplicates, Relaxed);
    }
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    pub accepted: u64,
    pub duplicates: u64,
}

impl Store {
    /// Stores a validated batch atomically. Unknown accounts or products
    /// refuse the whole batch, naming the first signal that refers to one.
    /// `field` is the batch's path, e.g. `signals`.
    ///
    /// Which of its accounts and products are missing (their ids as one
    /// JSON array parameter), then in one transaction the deduplicating
    /// insert (one bound multi-row statement per 1,000) and the recompute
    /// marks.
    pub async fn record_signals(
        &self,
        field: &str,
        batch: &[NewSignal],
    ) -> Result<Ingested, HealthError> {
        if batch.is_empty() {
            return Ok(Ingested::default());
        }
        let backend = self.db.get_database_backend();
        let accounts: BTreeSet<String> = batch.iter().map(|s| s.account_id.to_string()).collect();
        let products: BTreeSet<String> = batch
            .iter()
            .filter_map(|s| s.product_id.map(|p| p.to_string()))
            .collect();
        let known_accounts = existing_ids(&self.db, &accounts, "accounts").await?;
        let known_products = existing_ids(&self.db, &products, "products").await?;
        crate::model::signal::check_references(field, batch, &known_accounts, &known_products)?;

        let recorded_at = storage::now();
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let mut accepted = 0;
        for chunk in batch.chunks(ROWS_PER_INSERT) {
            accepted += txn
                .execute_raw(insert_signals(backend, chunk, recorded_at))
                .await?
                .rows_affected();
        }
        let dirty: Vec<String> = accounts.into_iter().collect();
        mark_dirty(&txn, &dirty).await?;
        txn.commit().await?;
        self.touched(&dirty);
        let total = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        let done = Ingested {
            accepted,
            duplicates: total.saturating_sub(accepted),
        };
        self.ingested.add(done);
        Ok(done)
    }
}

/// Rows per INSERT statement (10 parameters a row stays far below SQLite's
/// 32,766-parameter limit).
const ROWS_PER_INSERT: usize = 1000;

/// The insert of `rows` recorded at `recorded_at`, as one multi-row
/// statement; a signal whose (source, external id) is stored already is
/// skipped.
fn insert_signals(
    backend: DatabaseBackend,
    rows: &[NewSignal],
    recorded_at: DateTime<Utc>,
) -> sea_orm::Statement {
    const COLUMNS: usize = 10;
    let mut sql = String::from(
        "INSERT INTO signals (account_id, product_id, kind, value_e4, limit_e4, \
         occurred_at, source, external_id, detail, recorded_at) VALUES ",
    );
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(rows.len() * COLUMNS);
    for (i, s) in rows.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ",(" });
        for c in 0..COLUMNS {
            if c > 0 {
                sql.push(',');
            }
            match backend {
                DatabaseBackend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(i * COLUMNS + c + 1).to_string());
                }
                _ => sql.push('?'),
            }
        }
        sql.push(')');
        values.extend([
            s.account_id.to_string().into(),
            s.product_id.map(|p| p.to_string()).into(),
            s.kind.as_str().into(),
            s.value_e4.into(),
            s.limit_e4.into(),
            s.occurred_at.into(),
            s.source.as_str().into(),
            s.external_id.as_deref().into(),
            s.detail.as_deref().into(),
            recorded_at.into(),
        ]);
    }
    sql.push_str(" ON CONFLICT (source, external_id) DO NOTHING");
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// Which of the JSON array of ids `{1}` `{table}` lacks: one look-up by its
/// key per id.
fn missing_ids(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => {
            "SELECT e FROM json_array_elements_text({1}::json) AS l(e) \
             WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = l.e)"
        }
        _ => {
            "SELECT l.value FROM json_each({1}) AS l \
             WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = l.value)"
        }
    }
}

/// The ids among `ids` that `table` (`accounts` or `products`) holds. The
/// database answers with those it lacks — none, for a good batch — so no
/// row crosses back for the ids that exist.
async fn existing_ids(
    db: &impl ConnectionTrait,
    ids: &BTreeSet<String>,
    table: &'static str,
) -> Result<BTreeSet<String>, HealthError> {
    if ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let backend = db.get_database_backend();
    let listed = serde_json::to_string(ids)
        .map_err(|err| sea_orm::DbErr::Custom(format!("encoding ids: {err}")))?;
    let sql = missing_ids(backend).replace("{table}", table);
    let missing = db
        .query_all_raw(super::numbered_statement(backend, &sql, [listed.into()]))
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<BTreeSet<String>, _>>()?;
    Ok(ids.difference(&missing).cloned().collect())
}

impl Store {
    /// The latest USAGE signal of each (account, product) pair asked about:
    /// what CS sees of a subscription's quota being used. Two queries for a
    /// whole page: the latest time per pair, then the signals at those times.
    pub async fn latest_usage(
        &self,
        pairs: &[(String, String)],
    ) -> Result<HashMap<(String, String), signal::Model>, HealthError> {
        let mut out: HashMap<(String, String), signal::Model> = HashMap::new();
        if pairs.is_empty() {
            return Ok(out);
        }
        let wanted: BTreeSet<&(String, String)> = pairs.iter().collect();
        let accounts: BTreeSet<&str> = wanted.iter().map(|(a, _)| a.as_str()).collect();
        let products: BTreeSet<&str> = wanted.iter().map(|(_, p)| p.as_str()).collect();
        let range = SignalRange {
            accounts: accounts.into_iter().collect(),
            kind: Some(SignalKind::Usage),
            after: None,
            until: None,
        };
        let backend = self.db.get_database_backend();
        let usage = || {
            range
                .select(backend)
                .filter(signal::Column::ProductId.is_in(products.iter().copied()))
        };
        let latest: Vec<(String, Option<String>, Option<DateTime<Utc>>)> = usage()
            .select_only()
            .column(signal::Column::AccountId)
            .column(signal::Column::ProductId)
            .column_as(signal::Column::OccurredAt.max(), "latest")
            .group_by(signal::Column::AccountId)
            .group_by(signal::Column::ProductId)
            .into_tuple()
            .all(&self.db)
            .await?;
        let times: BTreeSet<DateTime<Utc>> = latest.iter().filter_map(|(_, _, at)| *at).collect();
        if times.is_empty() {
            return Ok(out);
        }
        let rows = usage()
            .filter(signal::Column::OccurredAt.is_in(times))
            .all(&self.db)
            .await?;
        let latest: HashMap<(String, String), DateTime<Utc>> = latest
            .into_iter()
            .filter_map(|(a, p, at)| Some(((a, p?), at?)))
            .collect();
        for row in rows {
            let Some(product) = row.product_id.clone() else {
                continue;
            };
            let key = (row.account_id.clone(), product);
            if !wanted.contains(&key) || latest.get(&key) != Some(&row.occurred_at) {
                continue;
            }
            // Several at the same instant: the last recorded.
            if out.get(&key).is_none_or(|kept| kept.seq < row.seq) {
                out.insert(key, row);
            }
        }
        Ok(out)
    }
}

/// The signals a read wants: of some accounts, of one kind or all, that
/// occurred after `after` and up to `until`. Callers filter further.
pub(crate) struct SignalRange<'a> {
    pub accounts: Vec<&'a str>,
    pub kind: Option<SignalKind>,
    pub after: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl SignalRange<'_> {
    /// The query on `backend`. On PostgreSQL the index of `signals` by
    /// (account, kind, time) answers it. On SQLite that index is the table
    /// `signal_index`, kept in bulk up to the seq `signal_index_mark`
    /// records ([`Store::index_signals`]): the signals it lists, and those
    /// that arrived after the mark, found by their seq.
    pub fn select(&self, backend: DatabaseBackend) -> Select<signal::Entity> {
        let select = signal::Entity::find().filter(self.condition("signals"));
        if backend != DatabaseBackend::Sqlite {
            return select;
        }
        let mut indexed = Query::select();
        indexed
            .column(Alias::new("seq"))
            .from(Alias::new("signal_index"))
            .cond_where(self.condition("signal_index"));
        select.filter(
            Condition::any()
                .add(signal::Column::Seq.in_subquery(indexed))
                .add(Expr::cust(
                    "seq > (SELECT indexed_through FROM signal_index_mark)",
                )),
        )
    }

    /// The range on `table`'s account, kind and time columns (`signals`
    /// and `signal_index` name them alike).
    fn condition(&self, table: &str) -> Condition {
        let column = |name: &str| Expr::col((Alias::new(table), Alias::new(name)));
        let mut range =
            Condition::all().add(column("account_id").is_in(self.accounts.iter().copied()));
        if let Some(kind) = self.kind {
            range = range.add(column("kind").eq(kind.as_str()));
        }
        if let Some(after) = self.after {
            range = range.add(column("occurred_at").gt(after));
        }
        if let Some(until) = self.until {
            range = range.add(column("occurred_at").lte(until));
        }
        range
    }
}

impl Store {
    /// On SQLite, adds the signals that arrived since the last call to
    /// `signal_index`, in its key order, in one transaction that also moves
    /// the mark; how many. A crash before the commit leaves them in the
    /// tail, where reads find them all the same. Elsewhere (PostgreSQL
    /// indexes each row as it is written) there is nothing to do.
    pub async fn index_signals(&self) -> Result<u64, HealthError> {
        let backend = self.db.get_database_backend();
        if backend != DatabaseBackend::Sqlite {
            return Ok(0);
        }
        const TAIL: &str = "SELECT indexed_through, \
            (SELECT COALESCE(MAX(seq), 0) FROM signals) AS newest FROM signal_index_mark";
        let tail = |row: Option<sea_orm::QueryResult>| -> Result<(i64, i64), HealthError> {
            let row = row.ok_or_else(|| {
                sea_orm::DbErr::RecordNotFound("signal_index_mark has no row".into())
            })?;
            Ok((
                row.try_get::<i64>("", "indexed_through")?,
                row.try_get::<i64>("", "newest")?,
            ))
        };
        let (through, newest) = tail(self.db.query_one_raw(raw(backend, TAIL)).await?)?;
        if newest <= through {
            return Ok(0);
        }
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let (through, newest) = tail(txn.query_one_raw(raw(backend, TAIL)).await?)?;
        let added = txn
            .execute_raw(super::numbered_statement(
                backend,
                "INSERT INTO signal_index (account_id, kind, occurred_at, seq) \
                 SELECT account_id, kind, occurred_at, seq FROM signals \
                 WHERE seq > {1} AND seq <= {2} \
                 ORDER BY account_id, kind, occurred_at, seq",
                [through.into(), newest.into()],
            ))
            .await?
            .rows_affected();
        txn.execute_raw(super::numbered_statement(
            backend,
            "UPDATE signal_index_mark SET indexed_through = {1}",
            [newest.into()],
        ))
        .await?;
        txn.commit().await?;
        Ok(added)
    }
}

fn raw(backend: DatabaseBackend, sql: &str) -> sea_orm::Statement {
    sea_orm::Statement::from_string(backend, sql)
}
