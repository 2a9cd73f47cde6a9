//! Signal ingestion: the hot path. One transaction per batch, multi-row
//! inserts, duplicates skipped by the database, no per-signal round trip.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set, TransactionTrait};

use super::{Store, mark_dirty};
use crate::entity::{account, product, signal};
use crate::error::HealthError;
use crate::model::signal::{NewSignal, SignalKind};

/// Rows per INSERT statement (11 parameters a row stays far below SQLite's
/// 32,766-parameter limit).
const ROWS_PER_INSERT: usize = 1000;

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
    pub async fn record_signals(
        &self,
        field: &str,
        batch: &[NewSignal],
    ) -> Result<Ingested, HealthError> {
        if batch.is_empty() {
            return Ok(Ingested::default());
        }
        let accounts: BTreeSet<String> = batch.iter().map(|s| s.account_id.to_string()).collect();
        let products: BTreeSet<String> = batch
            .iter()
            .filter_map(|s| s.product_id.map(|p| p.to_string()))
            .collect();
        let known_accounts = existing_ids(&self.db, &accounts, IdTable::Account).await?;
        let known_products = existing_ids(&self.db, &products, IdTable::Product).await?;
        crate::model::signal::check_references(field, batch, &known_accounts, &known_products)?;

        let recorded_at = storage::now();
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let mut accepted = 0;
        for chunk in batch.chunks(ROWS_PER_INSERT) {
            let rows = chunk.iter().map(|s| signal::ActiveModel {
                account_id: Set(s.account_id.to_string()),
                product_id: Set(s.product_id.map(|p| p.to_string())),
                kind: Set(s.kind.as_str().to_owned()),
                value_e4: Set(s.value_e4),
                limit_e4: Set(s.limit_e4),
                occurred_at: Set(s.occurred_at),
                source: Set(s.source.clone()),
                external_id: Set(s.external_id.clone()),
                detail: Set(s.detail.clone()),
                recorded_at: Set(recorded_at),
                ..Default::default()
            });
            accepted += signal::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([signal::Column::Source, signal::Column::ExternalId])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
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

enum IdTable {
    Account,
    Product,
}

async fn existing_ids(
    db: &impl sea_orm::ConnectionTrait,
    ids: &BTreeSet<String>,
    table: IdTable,
) -> Result<BTreeSet<String>, HealthError> {
    let mut found = BTreeSet::new();
    let ids: Vec<String> = ids.iter().cloned().collect();
    for chunk in ids.chunks(1000) {
        let rows: Vec<String> = match table {
            IdTable::Account => {
                account::Entity::find()
                    .select_only()
                    .column(account::Column::Id)
                    .filter(account::Column::Id.is_in(chunk.iter().cloned()))
                    .into_tuple()
                    .all(db)
                    .await?
            }
            IdTable::Product => {
                product::Entity::find()
                    .select_only()
                    .column(product::Column::Id)
                    .filter(product::Column::Id.is_in(chunk.iter().cloned()))
                    .into_tuple()
                    .all(db)
                    .await?
            }
        };
        found.extend(rows);
    }
    Ok(found)
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
        let usage = || {
            signal::Entity::find()
                .filter(signal::Column::Kind.eq(SignalKind::Usage.as_str()))
                .filter(signal::Column::AccountId.is_in(accounts.iter().copied()))
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
