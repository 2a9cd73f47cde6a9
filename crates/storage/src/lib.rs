//! Storage plumbing shared by the service crates.
//!
//! Each service owns its tables; this crate only knows how to open a
//! database (embedded SQLite or PostgreSQL, chosen by URL), how to turn a
//! database failure into an [`ApiError`], and what "now" means for a stored
//! timestamp. It holds no table of its own.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use contracts::ApiError;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr, SqlErr};

/// How long a SQLite writer waits for the lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub mod columns;
mod db;
pub mod events;
pub mod idempotency;
pub mod lease;
pub mod outbox;
pub mod read_cache;

pub use db::Db;

/// A service crate's `start`: the tonic service to serve and the background
/// tasks it runs (its outbox dispatchers, webhooks, workers), which end with
/// the process.
pub struct Started<S> {
    pub service: S,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Each outbox the service runs, for the metrics to watch.
    pub outboxes: Vec<Watched>,
}

/// An outbox by name (`health`, `health_webhooks`, …) with the pool it reads.
pub struct Watched {
    pub name: &'static str,
    pub outbox: outbox::Outbox,
    pub db: DatabaseConnection,
}

/// The SQLite URL of a service's embedded database under `data_dir`.
pub fn sqlite_url(data_dir: &Path, service: &str) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join(format!("{service}.db")).display()
    )
}

/// Opens a pool to `url` (`sqlite://…` or `postgres://…`).
///
/// SQLite runs in WAL mode with `synchronous=NORMAL`: a crash of the process
/// loses nothing committed; a power loss may lose the last transactions.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        options
            .max_connections(8)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
            });
    } else {
        options.max_connections(16).min_connections(1);
    }
    Database::connect(options).await
}

/// Serialises write transactions on SQLite, which allows one writer at a
/// time: a transaction that reads and then writes while another commits
/// fails with "database is locked" instead of waiting. PostgreSQL has no
/// such limit, so there the gate is open.
///
/// Every turn also counts a write epoch, once when it is taken and once
/// when it ends (after its commit): on SQLite, where this process is the
/// only writer, an unchanged epoch proves nothing was written in between,
/// which is what [`read_cache::ReadCache`] relies on.
#[derive(Clone, Default)]
pub struct WriteGate(Option<std::sync::Arc<Gate>>);

#[derive(Default)]
struct Gate {
    turn: tokio::sync::Mutex<()>,
    epoch: std::sync::atomic::AtomicU64,
}

impl Gate {
    fn bump(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// One write's turn at the gate (see [`WriteGate::enter`]); the write epoch
/// moves on when it ends.
pub struct WriteTurn<'a> {
    gate: &'a Gate,
    _turn: tokio::sync::MutexGuard<'a, ()>,
}

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        self.gate.bump();
    }
}

impl WriteGate {
    pub fn for_db(db: &impl sea_orm::ConnectionTrait) -> Self {
        match db.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => Self(Some(Default::default())),
            _ => Self(None),
        }
    }

    /// Held for the length of one write transaction. Inside a mutation
    /// ([`Db::atomically`]) that already holds it, this does not wait.
    pub async fn enter(&self) -> Option<WriteTurn<'_>> {
        match &self.0 {
            Some(_) if self.identity().is_some_and(db::holds_gate) => None,
            Some(gate) => {
                let turn = gate.turn.lock().await;
                gate.bump();
                Some(WriteTurn { gate, _turn: turn })
            }
            None => None,
        }
    }

    /// The write epoch now, if the gate is closed (SQLite); `None` on an
    /// open gate, where writes are not counted.
    pub fn epoch(&self) -> Option<u64> {
        self.0
            .as_ref()
            .map(|gate| gate.epoch.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// The write epoch, if no write holds the gate right now: what a read
    /// begun now may be cached under.
    pub fn quiet_epoch(&self) -> Option<u64> {
        let gate = self.0.as_ref()?;
        let epoch = gate.epoch.load(std::sync::atomic::Ordering::SeqCst);
        let quiet = gate.turn.try_lock().is_ok();
        quiet.then_some(epoch)
    }

    /// Identity shared by the clones of one gate (none when open).
    fn identity(&self) -> Option<usize> {
        self.0.as_ref().map(|m| std::sync::Arc::as_ptr(m) as usize)
    }
}

pub use contracts::fnv1a;

/// The current time at the precision both databases keep (microseconds), so
/// a value reads back exactly as it was written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Whether `err` says the database could not be reached or dropped the
/// connection mid-statement: PostgreSQL restarting or shutting down
/// (SQLSTATE 57P01–57P03), any connection exception (class 08), a broken
/// socket, a pool that timed out or closed. The statement's transaction did
/// not commit, so the caller may retry.
fn connection_lost(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error;
    let (DbErr::Conn(RuntimeErr::SqlxError(sqlx))
    | DbErr::Exec(RuntimeErr::SqlxError(sqlx))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx))) = err
    else {
        return false;
    };
    match sqlx.as_ref() {
        Error::Io(_)
        | Error::Tls(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// Whether PostgreSQL gave up on the statement's transaction for another
/// one's sake: a deadlock (SQLSTATE 40P01) or a serialization failure
/// (40001). Nothing of it committed; the call may simply be retried.
fn conflicted(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx))) =
        err
    else {
        return false;
    };
    match sqlx.as_ref() {
        sea_orm::sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| matches!(code.as_ref(), "40P01" | "40001")),
        _ => false,
    }
}

/// Maps a database failure to the caller-facing error. Connection trouble is
/// UNAVAILABLE (the caller may retry); anything else is INTERNAL and logged.
pub fn db_error(err: DbErr) -> ApiError {
    if let Some(SqlErr::UniqueConstraintViolation(detail)) = err.sql_err() {
        return ApiError::Aborted {
            reason: "CONCURRENT_WRITE",
            message: format!("a concurrent write conflicted ({detail}); retry the call"),
        };
    }
    if conflicted(&err) {
        return ApiError::Aborted {
            reason: "CONCURRENT_WRITE",
            message:
                "a concurrent write conflicted (deadlock or serialization failure); retry the call"
                    .to_owned(),
        };
    }
    if err.to_string().contains("database is locked") {
        tracing::warn!(error = %err, "SQLite busy");
        return ApiError::Unavailable {
            reason: "DATABASE_BUSY",
            message: "the database is busy; retry the call".to_owned(),
        };
    }
    match &err {
        _ if connection_lost(&err) => {
            tracing::warn!(error = %err, "database connection lost");
            ApiError::Unavailable {
                reason: "DATABASE_UNAVAILABLE",
                message: "the database is unavailable; retry later".to_owned(),
            }
        }
        DbErr::ConnectionAcquire(_) | DbErr::Conn(RuntimeErr::SqlxError(_)) => {
            tracing::warn!(error = %err, "database unavailable");
            ApiError::Unavailable {
                reason: "DATABASE_UNAVAILABLE",
                message: "the database is unavailable; retry later".to_owned(),
            }
        }
        _ => {
            tracing::error!(error = %err, "database error");
            ApiError::internal(err)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn query_error(err: sea_orm::sqlx::Error) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
    }

    #[test]
    fn a_lost_connection_is_unavailable_not_internal() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        for err in [
            query_error(sea_orm::sqlx::Error::Io(reset)),
            query_error(sea_orm::sqlx::Error::PoolTimedOut),
            DbErr::Exec(RuntimeErr::SqlxError(Arc::new(
                sea_orm::sqlx::Error::PoolClosed,
            ))),
        ] {
            assert_eq!(db_error(err).code(), tonic::Code::Unavailable);
        }
        let other = query_error(sea_orm::sqlx::Error::Protocol("unexpected message".into()));
        assert_eq!(db_error(other).code(), tonic::Code::Internal);
    }
}
