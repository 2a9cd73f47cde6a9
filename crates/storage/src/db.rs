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
