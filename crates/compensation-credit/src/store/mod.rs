//! The credit service's queries and transactions.
//!
//! Every write here is an INSERT: policies, deals, split sets, ledger entries, releases,
//! clawbacks, disputes and resolutions only ever gain rows (the database refuses anything
//! else, see `migrations::credit`). Each write loads what it decides on, asks a planner
//! of [`crate::model`] what to write, and writes that with its events in one transaction.
//!
//! - [`policies`]: policy versions and the one in force.
//! - [`deals`]: recording a deal and replacing its splits.
//! - [`ledger`]: approvals, clawbacks, entry pages and statements.
//! - [`disputes`]: opening, resolving and listing disputes.
//! - [`people`]: the people directory.
//! - [`rows`]: rows to the rules' values and back, and the reads the writes share.

mod deals;
mod disputes;
mod ledger;
mod people;
mod policies;
mod rows;

use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QuerySelect, SqlErr, TransactionTrait,
};
use storage::events::{EventLog, NewEvent};

use crate::entity::deal;
use crate::error::CreditError;
use crate::events::CreditEvent;

pub use disputes::DisputeFilter;
pub use ledger::{ClawbackOutcome, ClawbackScope, EntryFilter, StatementSubject};

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

fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
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

    pub fn db(&self) -> &storage::Db {
        &self.db
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// This process's turn to write, on SQLite; nothing to wait for on PostgreSQL.
    async fn sqlite_turn(&self) -> Option<storage::WriteTurn<'_>> {
        self.writer.enter().await
    }

    /// Begins a write transaction, in this process's turn on SQLite.
    async fn begin_write(
        &self,
    ) -> Result<(DatabaseTransaction, Option<storage::WriteTurn<'_>>), CreditError> {
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
    ) -> Result<(DatabaseTransaction, Option<storage::WriteTurn<'_>>), CreditError> {
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

    /// Appends `events` to the log in `txn`.
    async fn append(
        &self,
        txn: &DatabaseTransaction,
        events: &[CreditEvent],
    ) -> Result<(), CreditError> {
        let new = events
            .iter()
            .map(NewEvent::of)
            .collect::<Result<Vec<_>, _>>()?;
        self.events.append(txn, &new).await?;
        Ok(())
    }

    /// Commits `txn` and wakes the log's watchers.
    async fn commit(&self, txn: DatabaseTransaction) -> Result<(), CreditError> {
        txn.commit().await?;
        self.events.committed();
        Ok(())
    }
}
