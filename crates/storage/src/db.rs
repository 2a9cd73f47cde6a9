//! A service's database handle, and the one transaction a mutation runs in.
//!
//! [`Db`] is what every store holds. Outside a mutation it is the pool;
//! inside [`Db::atomically`] — which the `request_id` mechanism
//! ([`crate::idempotency`]) uses — every statement the task sends through any
//! clone of the same `Db` joins one open transaction, and a transaction a
//! store begins becomes a savepoint inside it. So a mutation's writes, the
//! events it appends and the response recorded for its `request_id` commit
//! together or not at all, without each store method taking a transaction
//! argument.
//!
//! The join is by task: work a mutation spawns onto another task uses the
//! pool, as does any other service's `Db` in the same process.

use std::sync::Arc;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, Statement, TransactionError, TransactionOptions,
    TransactionTrait,
};

tokio::task_local! {
    /// The transaction the current task's mutation runs in, with the
    /// identity of the `Db` (and write gate) it belongs to.
    static CURRENT: Current;
}

type AfterCommit = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
struct Current {
    db: usize,
    gate: Option<usize>,
    txn: Arc<DatabaseTransaction>,
    /// What waits for the commit (waking this process's event readers).
    after: Arc<std::sync::Mutex<Vec<AfterCommit>>>,
}

/// A service's database: its pool, and the transaction the current
/// mutation runs in, if any (see the module's documentation).
#[derive(Clone, Debug)]
pub struct Db {
    pool: DatabaseConnection,
    /// Identity shared by the clones of one `Db`.
    id: Arc<()>,
}

impl Db {
    pub fn new(pool: DatabaseConnection) -> Self {
        Self {
            pool,
            id: Arc::new(()),
        }
    }

    /// The pool itself, bypassing any open mutation transaction (for
    /// streaming reads and background work).
    pub fn pool(&self) -> &DatabaseConnection {
        &self.pool
    }

    fn identity(&self) -> usize {
        Arc::as_ptr(&self.id) as usize
    }

    /// The transaction this task's mutation runs in, if it runs in one of
    /// this `Db`'s.
    fn joined(&self) -> Option<Arc<DatabaseTransaction>> {
        CURRENT
            .try_with(|c| (c.db == self.identity()).then(|| c.txn.clone()))
            .ok()
            .flatten()
    }

    /// Whether this task runs a mutation of this `Db` now.
    pub fn in_mutation(&self) -> bool {
        self.joined().is_some()
    }

    /// Runs `work` in one transaction: every statement it sends through this
    /// `Db` (or a clone) joins it; it commits if `work` returns `Ok`, and
    /// rolls back otherwise. `gate` is held throughout, and a store's own
    /// [`WriteGate::enter`](crate::WriteGate::enter) inside `work` does not
    /// wait for it.
    pub async fn atomically<T, E, F, Fut>(&self, gate: &crate::WriteGate, work: F) -> Result<T, E>
    where
        E: From<DbErr>,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        if self.in_mutation() {
            // Already inside one: the inner work is part of it.
            return work().await;
        }
        let _gate = gate.enter().await;
        let txn = Arc::new(self.pool.begin().await?);
        let after = Arc::new(std::sync::Mutex::new(Vec::new()));
        let current = Current {
            db: self.identity(),
            gate: gate.identity(),
            txn: txn.clone(),
            after: after.clone(),
        };
        let outcome = CURRENT.scope(current, work()).await;
        let txn = Arc::try_unwrap(txn)
            .map_err(|_| DbErr::Custom("a mutation's transaction outlived its scope".to_owned()))?;
        match outcome {
            Ok(value) => {
                txn.commit().await?;
                let waiting = match after.lock() {
                    Ok(mut waiting) => std::mem::take(&mut *waiting),
                    Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
                };
                for then in waiting {
                    then();
                }
                Ok(value)
            }
            Err(err) => {
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(error = %rollback, "could not roll back a failed mutation");
                }
                Err(err)
            }
        }
    }
}

/// Runs `then` once what this task has written is committed: now, outside
/// a mutation; after the mutation's commit inside one (and never if it
/// rolls back).
pub fn after_commit(then: impl FnOnce() + Send + 'static) {
    match CURRENT.try_with(|c| c.after.clone()) {
        Ok(after) => match after.lock() {
            Ok(mut waiting) => waiting.push(Box::new(then)),
            Err(poisoned) => poisoned.into_inner().push(Box::new(then)),
        },
        Err(_outside) => then(),
    }
}

/// Whether this task holds `gate` for a mutation (see [`Db::atomically`]).
pub(crate) fn holds_gate(gate: usize) -> bool {
    CURRENT.try_with(|c| c.gate == Some(gate)).unwrap_or(false)
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self.joined() {
            Some(txn) => txn.execute_raw(stmt).await,
            None => self.pool.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self.joined() {
            Some(txn) => txn.execute_unprepared(sql).await,
            None => self.pool.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self.joined() {
            Some(txn) => txn.query_one_raw(stmt).await,
            None => self.pool.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self.joined() {
            Some(txn) => txn.query_all_raw(stmt).await,
            None => self.pool.query_all_raw(stmt).await,
        }
    }
}

#[async_trait::async_trait]
impl TransactionTrait for Db {
    type Transaction = DatabaseTransaction;

    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        match self.joined() {
            Some(txn) => txn.begin().await,
            None => self.pool.begin().await,
        }
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        match self.joined() {
            Some(txn) => txn.begin_with_config(isolation_level, access_mode).await,
            None => {
                self.pool
                    .begin_with_config(isolation_level, access_mode)
                    .await
            }
        }
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<DatabaseTransaction, DbErr> {
        match self.joined() {
            Some(txn) => txn.begin_with_options(options).await,
            None => self.pool.begin_with_options(options).await,
        }
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<T, E>> + Send + 'c>,
            > + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        match self.joined() {
            Some(txn) => txn.transaction(callback).await,
            None => self.pool.transaction(callback).await,
        }
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<T, E>> + Send + 'c>,
            > + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        match self.joined() {
            Some(txn) => {
                txn.transaction_with_config(callback, isolation_level, access_mode)
                    .await
            }
            None => {
                self.pool
                    .transaction_with_config(callback, isolation_level, access_mode)
                    .await
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sea_orm::{ConnectionTrait, TransactionTrait};

    use super::*;
    use crate::WriteGate;

    async fn database() -> (tempfile::TempDir, Db, WriteGate) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::connect(&crate::sqlite_url(dir.path(), "t"))
            .await
            .unwrap();
        pool.execute_unprepared("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .await
            .unwrap();
        let gate = WriteGate::for_db(&pool);
        (dir, Db::new(pool), gate)
    }

    async fn rows(db: &Db) -> Vec<String> {
        db.pool()
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT k FROM t ORDER BY k",
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String>("", "k").unwrap())
            .collect()
    }

    async fn insert(db: &Db, gate: &WriteGate, k: &str) -> Result<(), DbErr> {
        // As a store writes: its own gate turn and transaction.
        let _turn = gate.enter().await;
        let txn = db.begin().await?;
        txn.execute_unprepared(&format!("INSERT INTO t VALUES ('{k}')"))
            .await?;
        txn.commit().await
    }

    #[tokio::test]
    async fn a_mutation_commits_whole_or_not_at_all() {
        let (_dir, db, gate) = database().await;
        let woken = Arc::new(AtomicUsize::new(0));
        let failed: Result<(), DbErr> = db
            .atomically(&gate, || async {
                insert(&db, &gate, "a").await?;
                let w = woken.clone();
                after_commit(move || {
                    w.fetch_add(1, Ordering::SeqCst);
                });
                // A store's transaction inside is a savepoint: its commit
                // is not the mutation's.
                assert!(rows(&db).await.is_empty());
                Err(DbErr::Custom("refused".into()))
            })
            .await;
        assert!(failed.is_err());
        assert!(
            rows(&db).await.is_empty(),
            "a failed mutation leaves nothing"
        );
        assert_eq!(woken.load(Ordering::SeqCst), 0, "no wake for a rollback");

        db.atomically(&gate, || async {
            insert(&db, &gate, "b").await?;
            insert(&db, &gate, "c").await?;
            let w = woken.clone();
            after_commit(move || {
                w.fetch_add(1, Ordering::SeqCst);
            });
            assert_eq!(
                woken.load(Ordering::SeqCst),
                0,
                "woken only after the commit"
            );
            Ok::<_, DbErr>(())
        })
        .await
        .unwrap();
        assert_eq!(rows(&db).await, ["b", "c"]);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        // Outside a mutation, a wake is immediate and writes commit alone.
        after_commit({
            let w = woken.clone();
            move || {
                w.fetch_add(1, Ordering::SeqCst);
            }
        });
        assert_eq!(woken.load(Ordering::SeqCst), 2);
        insert(&db, &gate, "d").await.unwrap();
        assert_eq!(rows(&db).await, ["b", "c", "d"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mutations_take_turns_on_sqlite_and_other_tasks_use_the_pool() {
        let (_dir, db, gate) = database().await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (db, gate) = (db.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                db.atomically(&gate, || async {
                    insert(&db, &gate, &format!("m{i}")).await?;
                    tokio::task::yield_now().await;
                    insert(&db, &gate, &format!("n{i}")).await
                })
                .await
            }));
        }
        // A write of another task meanwhile waits its turn, never "locked".
        insert(&db, &gate, "outside").await.unwrap();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(rows(&db).await.len(), 17);
    }
}
