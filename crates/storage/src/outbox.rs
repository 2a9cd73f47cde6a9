//! The transactional outbox: events that must reach another service.
//!
//! A service writes its domain events in the same transaction as the change
//! (see [`crate::events`]); for the events another service must act on,
//! that event row *is* the outbox record. A dispatcher stages each such
//! event as one delivery row per target (`<service>_deliveries`), then
//! delivers them with retries and backoff, parking an event the target
//! refuses for good (with its error) instead of retrying it for ever.
//! Receivers are idempotent (deal ids, request ids), so a delivery repeated
//! after a crash changes nothing.
//!
//! Several replicas may run the dispatcher: staging inserts with
//! `ON CONFLICT DO NOTHING`, and a delivery is claimed by a short
//! transaction of its own, committed before the delivery is attempted: it
//! picks the oldest due row (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
//! replicas pick different rows; SQLite has one writer, the process) and
//! moves its `next_attempt_at` a lease ([`LEASE`], 5 s) ahead. While the
//! attempt runs the lease is renewed every third of it
//! ([`crate::lease::Renewal`]), and the attempt's outcome is written only if
//! the row still carries the lease last written (a requeue or another
//! replica's claim meanwhile wins); so a live dispatcher keeps
//! its delivery however long the target takes, and one killed mid-delivery
//! holds it at most one lease. No row lock and no pooled connection is held
//! across the call to the target.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, Func, LockBehavior, LockType, OnConflict, Order, Query,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};

use crate::events::{EventLog, StoredEvent};

/// Events staged per pass.
const STAGE_BATCH: u64 = 200;
/// Deliveries attempted per pass.
const DISPATCH_BATCH: u64 = 50;
/// How long a claimed delivery is ours unless renewed: what a dispatcher
/// killed mid-delivery costs before another one retries it.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(3);
/// After this many failed attempts a delivery is parked.
pub const MAX_ATTEMPTS: i32 = 60;
/// Pause between passes when there is nothing to do.
const IDLE: Duration = Duration::from_millis(250);

/// Where a delivery stands (`*_deliveries.status`, stored by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not delivered yet: due at `next_attempt_at` (retries included).
    Pending,
    Delivered,
    /// Refused for good or out of attempts: waits for a person.
    Parked,
}

use DeliveryStatus::{Delivered as DELIVERED, Parked as PARKED, Pending as PENDING};

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [PENDING, DELIVERED, PARKED];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PENDING => "PENDING",
            DELIVERED => "DELIVERED",
            PARKED => "PARKED",
        }
    }

    /// The status a stored name means.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<DeliveryStatus> for sea_orm::Value {
    fn from(status: DeliveryStatus) -> Self {
        status.as_str().into()
    }
}

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Try again later (target down, busy, not ready yet).
    Retry(String),
    /// The target refuses this event for good; park it with the reason.
    Park(String),
}

impl Failure {
    /// Sorts a gRPC failure: what a later attempt can't change is parked.
    /// A refused API key is retried: the operator fixes the peer key (or
    /// its role) and the waiting deliveries go through.
    pub fn from_status(status: &tonic::Status) -> Self {
        use tonic::Code::*;
        let text = format!("{:?}: {}", status.code(), status.message());
        match status.code() {
            InvalidArgument | AlreadyExists | Unimplemented | OutOfRange => Failure::Park(text),
            _ => Failure::Retry(text),
        }
    }
}

/// Knows which events go where, and carries them there.
#[tonic::async_trait]
pub trait Courier: Send + Sync + 'static {
    /// The targets an event must reach; empty for events no one needs.
    fn targets(&self, event: &StoredEvent) -> Vec<&'static str>;
    /// The targets of each event of a staged batch, in order. The default
    /// asks [`Self::targets`]; a courier whose targets live in the database
    /// (webhook endpoints) reads them once per batch, after the events.
    async fn route(&self, events: &[StoredEvent]) -> Result<Vec<Vec<String>>, DbErr> {
        Ok(events
            .iter()
            .map(|e| self.targets(e).into_iter().map(str::to_owned).collect())
            .collect())
    }
    async fn deliver(&self, target: &str, event: &StoredEvent) -> Result<(), Failure>;
}

/// One delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    pub event_seq: i64,
    pub subject_id: String,
    pub target: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
}

/// A delivery this dispatcher claimed, ours until `until` unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub delivery: Delivery,
    pub until: DateTime<Utc>,
}

/// What [`Outbox::retry`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// It was parked and is pending again.
    Again(Delivery),
    /// It is pending or delivered: nothing to do.
    NotParked(Delivery),
    /// No delivery of that event to that target.
    Missing,
}

/// What waits in an outbox, for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Deliveries not yet made, retrying ones included.
    pub pending: u64,
    /// Deliveries refused for good, waiting for a person.
    pub parked: u64,
    /// When the oldest pending delivery was staged.
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// A service's outbox: its event log plus `<prefix>_deliveries` and
/// `<prefix>_outbox_cursor`.
#[derive(Clone)]
pub struct Outbox {
    log: EventLog,
    deliveries: &'static str,
    cursor: &'static str,
    /// The owning service's write gate: on SQLite the outbox's writes take
    /// turns with the service's own transactions.
    writer: crate::WriteGate,
    retry: Retry,
}

/// How long a failing delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// After this many failed attempts a delivery is parked.
    pub max_attempts: i32,
    /// The first retry's delay, doubled after each failure up to `max_delay`.
    pub first_delay: chrono::Duration,
    pub max_delay: chrono::Duration,
    /// How long a claim lasts unless renewed: another replica (or this one,
    /// after a crash) tries the delivery again this long after the last
    /// renewal. Renewed every third of it while an attempt runs, so it need
    /// not outlast an attempt.
    pub lease: chrono::Duration,
}

impl Default for Retry {
    /// 0.5 s doubling, at most 10 s, parked after [`MAX_ATTEMPTS`].
    fn default() -> Self {
        Self {
            max_attempts: MAX_ATTEMPTS,
            first_delay: chrono::Duration::milliseconds(500),
            max_delay: chrono::Duration::seconds(10),
            lease: LEASE,
        }
    }
}

impl Retry {
    /// The delay after `attempts` failures.
    pub fn delay(&self, attempts: i32) -> chrono::Duration {
        let exp = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
        let first = Ord::max(self.first_delay.num_milliseconds(), 1);
        let delay = first.saturating_mul(2_i64.saturating_pow(exp));
        chrono::Duration::milliseconds(Ord::min(delay, self.max_delay.num_milliseconds()))
    }
}

/// What one attempt settles a delivery to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    /// DELIVERED, PARKED or PENDING.
    status: DeliveryStatus,
    /// Attempts so far, this one included.
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: DateTime<Utc>,
}

impl Retry {
    /// What an attempt answered with `result` settles its delivery to, `attempts`
    /// counting it, decided at `done`: DELIVERED; PARKED when refused for good or out
    /// of attempts; else PENDING again after the backoff.
    fn outcome(&self, result: Result<(), Failure>, attempts: i32, done: DateTime<Utc>) -> Outcome {
        let (status, last_error, next_attempt_at) = match result {
            Ok(()) => (DELIVERED, None, done),
            Err(Failure::Park(e)) => (PARKED, Some(e), done),
            Err(Failure::Retry(e)) if attempts >= self.max_attempts => (PARKED, Some(e), done),
            Err(Failure::Retry(e)) => (PENDING, Some(e), done + self.delay(attempts)),
        };
        Outcome {
            status,
            attempts,
            last_error,
            next_attempt_at,
        }
    }
}

impl Outcome {
    /// Logs the outcome: delivered as info, parked as an error, a retry as a warning.
    fn log(&self, delivery: &Delivery) {
        let (attempts, error) = (self.attempts, &self.last_error);
        match self.status {
            DELIVERED => {
                tracing::info!(target = %delivery.target, event = %delivery.event_id, "outbox delivered")
            }
            PARKED => {
                tracing::error!(target = %delivery.target, event = %delivery.event_id, error = ?error, "outbox parked")
            }
            _ => {
                tracing::warn!(target = %delivery.target, event = %delivery.event_id, attempts, error = ?error, "outbox retry")
            }
        }
    }
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// Retry delay after `attempts` failures: 0.5 s doubling, at most 10 s.
pub fn backoff(attempts: i32) -> chrono::Duration {
    Retry::default().delay(attempts)
}

impl Outbox {
    pub fn new(
        log: EventLog,
        deliveries: &'static str,
        cursor: &'static str,
        writer: crate::WriteGate,
    ) -> Self {
        Self {
            log,
            deliveries,
            cursor,
            writer,
            retry: Retry::default(),
        }
    }

    /// The same outbox with another retry policy.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Runs the dispatcher until the process ends.
    pub fn spawn(
        self,
        db: DatabaseConnection,
        courier: Arc<dyn Courier>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                // Created before reading, so a commit from now on wakes the idle wait.
                let appended = self.log.appended();
                let staged = match self.stage(&db, courier.as_ref()).await {
                    Ok(n) => n,
                    Err(err) => {
                        tracing::warn!(error = %err, "outbox staging failed");
                        0
                    }
                };
                let sent = match self.dispatch(&db, courier.as_ref()).await {
                    Ok(n) => n,
                    Err(err) => {
                        tracing::warn!(error = %err, deliveries = self.deliveries, "outbox dispatch failed");
                        0
                    }
                };
                if staged == 0 && sent == 0 {
                    tokio::select! {
                        () = appended => {}
                        () = tokio::time::sleep(IDLE) => {}
                    }
                }
            }
        })
    }

    /// Turns events after the cursor into delivery rows; returns how many
    /// events it read.
    pub async fn stage(
        &self,
        db: &DatabaseConnection,
        courier: &dyn Courier,
    ) -> Result<usize, DbErr> {
        let after = self.cursor_position(db).await?;
        let events = self.log.read_after(db, after, STAGE_BATCH).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(0);
        };
        let routes = courier.route(&events).await?;
        let now = crate::now();
        let _write = self.writer.enter().await;
        let txn = db.begin().await?;
        for (event, targets) in events.iter().zip(routes) {
            for target in targets {
                let mut insert = Query::insert();
                insert
                    .into_table(col(self.deliveries))
                    .columns([
                        col("event_id"),
                        col("target"),
                        col("event_seq"),
                        col("subject_id"),
                        col("status"),
                        col("attempts"),
                        col("next_attempt_at"),
                        col("created_at"),
                    ])
                    .values([
                        event.event_id.clone().into(),
                        target.into(),
                        event.seq.into(),
                        event.subject_id.clone().into(),
                        PENDING.as_str().into(),
                        0_i32.into(),
                        now.into(),
                        now.into(),
                    ])
                    .map_err(|e| DbErr::Custom(e.to_string()))?
                    .on_conflict(
                        OnConflict::columns([col("event_id"), col("target")])
                            .do_nothing()
                            .to_owned(),
                    );
                txn.execute(&insert).await?;
            }
        }
        let mut cursor = Query::insert();
        cursor
            .into_table(col(self.cursor))
            .columns([col("name"), col("seq")])
            .values(["deliveries".into(), last.into()])
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .on_conflict(
                OnConflict::column(col("name"))
                    .update_column(col("seq"))
                    .to_owned(),
            );
        txn.execute(&cursor).await?;
        txn.commit().await?;
        Ok(events.len())
    }

    async fn cursor_position(&self, db: &DatabaseConnection) -> Result<i64, DbErr> {
        let query = Query::select()
            .column(col("seq"))
            .from(col(self.cursor))
            .and_where(Expr::col(col("name")).eq("deliveries"))
            .to_owned();
        match db.query_one(&query).await? {
            Some(row) => row.try_get("", "seq"),
            None => Ok(0),
        }
    }

    /// Attempts the deliveries that are due, one claim at a time; returns
    /// how many it tried.
    pub async fn dispatch(
        &self,
        db: &DatabaseConnection,
        courier: &dyn Courier,
    ) -> Result<usize, DbErr> {
        let mut tried = 0;
        while tried < DISPATCH_BATCH {
            let Some(claim) = self.claim(db).await? else {
                break;
            };
            tried += 1;
            self.attempt(db, courier, claim).await?;
        }
        Ok(usize::try_from(tried).unwrap_or(usize::MAX))
    }

    /// Claims the oldest due delivery: a short transaction that picks it
    /// (skipping rows another replica is claiming) and moves its
    /// `next_attempt_at` one lease ahead, committed before anything is sent.
    pub async fn claim(&self, db: &DatabaseConnection) -> Result<Option<Claim>, DbErr> {
        let now = crate::now();
        let until = now + self.retry.lease;
        let mut pick = Self::select(self.deliveries);
        pick.and_where(Expr::col(col("status")).eq(PENDING))
            .and_where(Expr::col(col("next_attempt_at")).lte(now))
            .limit(1);
        // On SQLite an idle pass must not take a turn at the gate: every
        // turn moves the write epoch on, which empties the read caches.
        if self.writer.epoch().is_some() && Self::read(db, &pick).await?.is_empty() {
            return Ok(None);
        }
        // PostgreSQL only; SQLite has no row locks (and one writer).
        pick.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        let _write = self.writer.enter().await;
        let txn = db.begin().await?;
        let Some(delivery) = Self::read(&txn, &pick).await?.into_iter().next() else {
            return Ok(None);
        };
        let claim = Query::update()
            .table(col(self.deliveries))
            .value(col("next_attempt_at"), until)
            .and_where(Expr::col(col("event_id")).eq(delivery.event_id.clone()))
            .and_where(Expr::col(col("target")).eq(delivery.target.clone()))
            .and_where(Expr::col(col("next_attempt_at")).eq(delivery.next_attempt_at))
            .and_where(Expr::col(col("status")).eq(PENDING))
            .to_owned();
        if txn.execute(&claim).await?.rows_affected() != 1 {
            return Ok(None);
        }
        txn.commit().await?;
        Ok(Some(Claim { delivery, until }))
    }

    /// Moves a claim's lease end from `held` to one lease from now, if the
    /// row still carries `held`; `None` when someone else holds it now (or
    /// it was requeued meanwhile).
    pub async fn renew(
        &self,
        db: &DatabaseConnection,
        delivery: &Delivery,
        held: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, DbErr> {
        let until = crate::now() + self.retry.lease;
        let renew = Query::update()
            .table(col(self.deliveries))
            .value(col("next_attempt_at"), until)
            .and_where(Expr::col(col("event_id")).eq(delivery.event_id.clone()))
            .and_where(Expr::col(col("target")).eq(delivery.target.clone()))
            .and_where(Expr::col(col("next_attempt_at")).eq(held))
            .to_owned();
        let _write = self.writer.enter().await;
        Ok((db.execute(&renew).await?.rows_affected() == 1).then_some(until))
    }

    /// Sends one claimed delivery, renewing its lease until the target
    /// answers, and records the outcome if the lease is still ours.
    async fn attempt(
        &self,
        db: &DatabaseConnection,
        courier: &dyn Courier,
        claim: Claim,
    ) -> Result<(), DbErr> {
        let Claim { delivery, until } = claim;
        let renewal = self.renew_while_sending(db, &delivery, until);
        // On a read error the delivery is left claimed: the lease lapses and it is
        // tried again.
        let result = self.send(db, courier, &delivery).await?;
        let Some(held) = renewal.finish().await else {
            tracing::warn!(target = %delivery.target, event = %delivery.event_id, "outbox claim lost during the attempt; its outcome is not recorded");
            return Ok(());
        };
        let outcome = self
            .retry
            .outcome(result, delivery.attempts + 1, crate::now());
        outcome.log(&delivery);
        self.record(db, &delivery, held, outcome).await
    }

    /// Keeps a claim (its lease ending at `until`) ours while its delivery is sent.
    fn renew_while_sending(
        &self,
        db: &DatabaseConnection,
        delivery: &Delivery,
        until: DateTime<Utc>,
    ) -> crate::lease::Renewal {
        let (outbox, db, delivery) = (self.clone(), db.clone(), delivery.clone());
        crate::lease::Renewal::start(
            crate::lease::renewal_interval(self.retry.lease),
            until,
            move |held| {
                let (outbox, db, delivery) = (outbox.clone(), db.clone(), delivery.clone());
                async move { outbox.renew(&db, &delivery, held).await }
            },
        )
    }

    /// Reads the delivery's event from the log and hands it to the courier: the
    /// courier's answer, or a park when the event is gone from the log.
    async fn send(
        &self,
        db: &DatabaseConnection,
        courier: &dyn Courier,
        delivery: &Delivery,
    ) -> Result<Result<(), Failure>, DbErr> {
        let events = self.log.read_after(db, delivery.event_seq - 1, 1).await?;
        let event = events.into_iter().find(|e| e.event_id == delivery.event_id);
        Ok(match &event {
            Some(event) => courier.deliver(&delivery.target, event).await,
            None => Err(Failure::Park("the event is gone from the log".into())),
        })
    }

    /// Writes an attempt's outcome, only while the row carries our lease `held`: a
    /// requeue or another replica's claim since then wins. A target parked meanwhile
    /// (its endpoint disabled) stays parked unless this attempt settled it; its
    /// attempts and last error are still counted.
    async fn record(
        &self,
        db: &DatabaseConnection,
        delivery: &Delivery,
        held: DateTime<Utc>,
        outcome: Outcome,
    ) -> Result<(), DbErr> {
        let key = |update: &mut sea_orm::sea_query::UpdateStatement| {
            update
                .table(col(self.deliveries))
                .and_where(Expr::col(col("event_id")).eq(delivery.event_id.clone()))
                .and_where(Expr::col(col("target")).eq(delivery.target.clone()))
                .and_where(Expr::col(col("next_attempt_at")).eq(held));
        };
        let mut settled = Query::update();
        key(&mut settled);
        settled
            .value(col("status"), outcome.status)
            .value(col("attempts"), outcome.attempts)
            .value(col("last_error"), outcome.last_error.clone())
            .value(col("next_attempt_at"), outcome.next_attempt_at);
        if outcome.status == PENDING {
            settled.and_where(Expr::col(col("status")).eq(PENDING));
        }
        let _write = self.writer.enter().await;
        if db.execute(&settled).await?.rows_affected() == 1 {
            return Ok(());
        }
        let mut counted = Query::update();
        key(&mut counted);
        counted
            .value(col("attempts"), outcome.attempts)
            .value(col("last_error"), outcome.last_error);
        if db.execute(&counted).await?.rows_affected() == 0 {
            tracing::info!(target = %delivery.target, event = %delivery.event_id, "outbox delivery requeued or claimed again during the attempt; its outcome is not recorded");
        }
        Ok(())
    }

    /// Queues `events` for `target` again: each becomes PENDING with its
    /// attempts reset, due now (a delivery row is added where none was).
    pub async fn requeue<C: ConnectionTrait>(
        &self,
        db: &C,
        target: &str,
        events: &[StoredEvent],
    ) -> Result<(), DbErr> {
        if events.is_empty() {
            return Ok(());
        }
        let now = crate::now();
        let mut insert = Query::insert();
        insert.into_table(col(self.deliveries)).columns([
            col("event_id"),
            col("target"),
            col("event_seq"),
            col("subject_id"),
            col("status"),
            col("attempts"),
            col("next_attempt_at"),
            col("created_at"),
        ]);
        for event in events {
            insert
                .values([
                    event.event_id.clone().into(),
                    target.into(),
                    event.seq.into(),
                    event.subject_id.clone().into(),
                    PENDING.as_str().into(),
                    0_i32.into(),
                    now.into(),
                    now.into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        insert.on_conflict(
            OnConflict::columns([col("event_id"), col("target")])
                .update_columns([
                    col("status"),
                    col("attempts"),
                    col("next_attempt_at"),
                    col("last_error"),
                ])
                .to_owned(),
        );
        let _write = self.writer.enter().await;
        db.execute(&insert).await?;
        Ok(())
    }

    /// Parks every pending delivery of `target` with `reason` (its endpoint
    /// went away or was disabled).
    pub async fn park_target<C: ConnectionTrait>(
        &self,
        db: &C,
        target: &str,
        reason: &str,
    ) -> Result<u64, DbErr> {
        let update = Query::update()
            .table(col(self.deliveries))
            .value(col("status"), PARKED)
            .value(col("last_error"), reason)
            .and_where(Expr::col(col("target")).eq(target))
            .and_where(Expr::col(col("status")).eq(PENDING))
            .to_owned();
        Ok(db.execute(&update).await?.rows_affected())
    }

    /// Removes every delivery of `target`.
    pub async fn forget_target<C: ConnectionTrait>(
        &self,
        db: &C,
        target: &str,
    ) -> Result<(), DbErr> {
        let delete = Query::delete()
            .from_table(col(self.deliveries))
            .and_where(Expr::col(col("target")).eq(target))
            .to_owned();
        db.execute(&delete).await?;
        Ok(())
    }

    /// Up to `limit` deliveries of `target` after event `after_seq`, oldest first.
    pub async fn list_target<C: ConnectionTrait>(
        &self,
        db: &C,
        target: &str,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<Delivery>, DbErr> {
        let query = Query::select()
            .columns([
                col("event_id"),
                col("event_seq"),
                col("subject_id"),
                col("target"),
                col("status"),
                col("attempts"),
                col("last_error"),
                col("next_attempt_at"),
            ])
            .from(col(self.deliveries))
            .and_where(Expr::col(col("target")).eq(target))
            .and_where(Expr::col(col("event_seq")).gt(after_seq))
            .order_by(col("event_seq"), Order::Asc)
            .limit(limit)
            .to_owned();
        db.query_all(&query)
            .await?
            .into_iter()
            .map(|row| delivery_of(&row))
            .collect()
    }

    /// The event log this outbox reads.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// How many deliveries are pending and parked, and the oldest pending
    /// one's age: one grouped query over the `(status, …)` index.
    pub async fn backlog<C: ConnectionTrait>(&self, db: &C) -> Result<Backlog, DbErr> {
        let query = Query::select()
            .column(col("status"))
            .expr_as(Func::count(Expr::col(col("event_id"))), col("n"))
            .expr_as(Func::min(Expr::col(col("created_at"))), col("oldest"))
            .from(col(self.deliveries))
            .and_where(Expr::col(col("status")).is_in([PENDING, PARKED]))
            .group_by_col(col("status"))
            .to_owned();
        let mut backlog = Backlog::default();
        for row in db.query_all(&query).await? {
            let status: String = row.try_get("", "status")?;
            let n = u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0);
            if status == PENDING.as_str() {
                backlog.pending = n;
                backlog.oldest_pending = row.try_get("", "oldest")?;
            } else {
                backlog.parked = n;
            }
        }
        Ok(backlog)
    }

    /// One page of the deliveries, oldest event first, optionally of one
    /// status, after the `(event_seq, target)` of the previous page's last.
    pub async fn page<C: ConnectionTrait>(
        &self,
        db: &C,
        status: Option<DeliveryStatus>,
        after: Option<(i64, &str)>,
        limit: u64,
    ) -> Result<Vec<Delivery>, DbErr> {
        let mut query = Self::select(self.deliveries);
        query.limit(limit);
        if let Some(status) = status {
            query.and_where(Expr::col(col("status")).eq(status));
        }
        if let Some((seq, target)) = after {
            query.and_where(
                Expr::col(col("event_seq"))
                    .gt(seq)
                    .or(Expr::col(col("event_seq"))
                        .eq(seq)
                        .and(Expr::col(col("target")).gt(target))),
            );
        }
        Self::read(db, &query).await
    }

    /// One delivery by its event and target.
    pub async fn get<C: ConnectionTrait>(
        &self,
        db: &C,
        event_id: &str,
        target: &str,
    ) -> Result<Option<Delivery>, DbErr> {
        let mut query = Self::select(self.deliveries);
        query
            .and_where(Expr::col(col("event_id")).eq(event_id))
            .and_where(Expr::col(col("target")).eq(target));
        Ok(Self::read(db, &query).await?.into_iter().next())
    }

    /// Sends a parked delivery again: PENDING, attempts reset, due now (its
    /// last error stays until the next attempt). Only a PARKED one moves,
    /// by a compare-and-set on its status, so a dispatcher never sees it
    /// half-changed.
    pub async fn retry<C: ConnectionTrait>(
        &self,
        db: &C,
        event_id: &str,
        target: &str,
    ) -> Result<Retried, DbErr> {
        let update = Query::update()
            .table(col(self.deliveries))
            .value(col("status"), PENDING)
            .value(col("attempts"), 0_i32)
            .value(col("next_attempt_at"), crate::now())
            .and_where(Expr::col(col("event_id")).eq(event_id))
            .and_where(Expr::col(col("target")).eq(target))
            .and_where(Expr::col(col("status")).eq(PARKED))
            .to_owned();
        let moved = {
            let _write = self.writer.enter().await;
            db.execute(&update).await?.rows_affected() == 1
        };
        if moved {
            // Wake the dispatcher's idle wait, as a commit of the service does.
            self.log.committed();
        }
        Ok(match self.get(db, event_id, target).await? {
            None => Retried::Missing,
            Some(delivery) if moved => Retried::Again(delivery),
            Some(delivery) => Retried::NotParked(delivery),
        })
    }

    /// Like [`Outbox::retry`], with its refusals as the API answers them:
    /// NOT_FOUND (`delivery`) and FAILED_PRECONDITION `DELIVERY_NOT_PARKED`.
    pub async fn retry_parked<C: ConnectionTrait>(
        &self,
        db: &C,
        event_id: &str,
        target: &str,
    ) -> Result<Delivery, contracts::ApiError> {
        match self
            .retry(db, event_id, target)
            .await
            .map_err(crate::db_error)?
        {
            Retried::Again(delivery) => {
                tracing::info!(%target, event = %event_id, "outbox delivery sent again");
                Ok(delivery)
            }
            Retried::NotParked(delivery) => Err(contracts::ApiError::FailedPrecondition {
                reason: "DELIVERY_NOT_PARKED",
                message: format!(
                    "the delivery of event {event_id} to {target} is {}, not PARKED: only a \
                     parked delivery is sent again (a pending one is retried by the dispatcher)",
                    delivery.status
                ),
                violations: Vec::new(),
            }),
            Retried::Missing => Err(contracts::ApiError::not_found(
                "delivery",
                format!("{event_id}/{target}"),
            )),
        }
    }

    /// `ListDeliveries`: one page of `status` (every status for `None`),
    /// with the token of the next page (empty at the end).
    pub async fn list_page<C: ConnectionTrait>(
        &self,
        db: &C,
        status: Option<DeliveryStatus>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Delivery>, String), contracts::ApiError> {
        use contracts::page;
        let limit = page::page_size("page_size", page_size)?;
        let filter = page::fingerprint(&["deliveries", status.map_or("", DeliveryStatus::as_str)]);
        let after = match page::decode_token("page_token", page_token, filter)? {
            None => None,
            Some(key) => Some(
                key.split_once('/')
                    .and_then(|(seq, target)| Some((seq.parse::<i64>().ok()?, target.to_owned())))
                    .ok_or_else(|| {
                        contracts::ApiError::invalid(
                            "page_token",
                            "page_token is not a token this list returned",
                        )
                    })?,
            ),
        };
        let mut rows = self
            .page(
                db,
                status,
                after.as_ref().map(|(seq, target)| (*seq, target.as_str())),
                limit.saturating_add(1),
            )
            .await
            .map_err(crate::db_error)?;
        let next = page::next_page(&mut rows, limit, filter, |last| {
            format!("{}/{}", last.event_seq, last.target)
        });
        Ok((rows, next))
    }

    fn select(table: &'static str) -> sea_orm::sea_query::SelectStatement {
        Query::select()
            .columns([
                col("event_id"),
                col("event_seq"),
                col("subject_id"),
                col("target"),
                col("status"),
                col("attempts"),
                col("last_error"),
                col("next_attempt_at"),
            ])
            .from(col(table))
            .order_by(col("event_seq"), Order::Asc)
            .order_by(col("target"), Order::Asc)
            .to_owned()
    }

    async fn read<C: ConnectionTrait>(
        db: &C,
        query: &sea_orm::sea_query::SelectStatement,
    ) -> Result<Vec<Delivery>, DbErr> {
        db.query_all(query)
            .await?
            .into_iter()
            .map(|row| delivery_of(&row))
            .collect()
    }

    /// Deliveries of one subject (e.g. an opportunity), or the pending ones
    /// due by `due` when `subject` is `None`.
    pub async fn list<C: ConnectionTrait>(
        &self,
        db: &C,
        subject: Option<&str>,
        due: Option<DateTime<Utc>>,
        limit: u64,
    ) -> Result<Vec<Delivery>, DbErr> {
        let mut query = Self::select(self.deliveries);
        query.limit(limit);
        if let Some(subject) = subject {
            query.and_where(Expr::col(col("subject_id")).eq(subject));
        }
        if let Some(due) = due {
            query
                .and_where(Expr::col(col("status")).eq(PENDING))
                .and_where(Expr::col(col("next_attempt_at")).lte(due));
        }
        Self::read(db, &query).await
    }
}

fn delivery_of(row: &sea_orm::QueryResult) -> Result<Delivery, DbErr> {
    Ok(Delivery {
        event_id: row.try_get("", "event_id")?,
        event_seq: row.try_get("", "event_seq")?,
        subject_id: row.try_get("", "subject_id")?,
        target: row.try_get("", "target")?,
        status: {
            let name: String = row.try_get("", "status")?;
            DeliveryStatus::from_name(&name).ok_or_else(|| {
                DbErr::Custom(format!(
                    "delivery status {name:?} is not one this version knows"
                ))
            })?
        },
        attempts: row.try_get("", "attempts")?,
        last_error: row.try_get("", "last_error")?,
        next_attempt_at: row.try_get("", "next_attempt_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        assert_eq!(backoff(0).num_milliseconds(), 500);
        assert_eq!(backoff(1).num_milliseconds(), 1000);
        assert_eq!(backoff(4).num_milliseconds(), 8000);
        assert_eq!(backoff(5).num_milliseconds(), 10_000);
        assert_eq!(backoff(40).num_milliseconds(), 10_000);
    }

    #[test]
    fn an_attempt_delivers_parks_or_retries_after_the_backoff() {
        let retry = Retry::default();
        let done = crate::now();
        let delivered = retry.outcome(Ok(()), 1, done);
        assert_eq!((delivered.status, delivered.last_error), (DELIVERED, None));
        assert_eq!(delivered.next_attempt_at, done);

        let refused = retry.outcome(Err(Failure::Park("no such account".into())), 1, done);
        assert_eq!(refused.status, PARKED);
        assert_eq!(refused.last_error.as_deref(), Some("no such account"));
        assert_eq!(refused.next_attempt_at, done);

        let down = retry.outcome(Err(Failure::Retry("unavailable".into())), 3, done);
        assert_eq!((down.status, down.attempts), (PENDING, 3));
        assert_eq!(down.next_attempt_at, done + chrono::Duration::seconds(4));

        let last = retry.outcome(
            Err(Failure::Retry("unavailable".into())),
            MAX_ATTEMPTS,
            done,
        );
        assert_eq!(last.status, PARKED);
        assert_eq!(last.next_attempt_at, done);
    }

    #[test]
    fn refusals_park_and_outages_retry() {
        assert!(matches!(
            Failure::from_status(&tonic::Status::invalid_argument("x")),
            Failure::Park(_)
        ));
        assert!(matches!(
            Failure::from_status(&tonic::Status::unavailable("x")),
            Failure::Retry(_)
        ));
        assert!(matches!(
            Failure::from_status(&tonic::Status::failed_precondition("no policy")),
            Failure::Retry(_)
        ));
    }

    #[test]
    fn a_refused_api_key_waits_for_the_operator() {
        for status in [
            tonic::Status::unauthenticated("revoked"),
            tonic::Status::permission_denied("viewer"),
        ] {
            assert!(matches!(Failure::from_status(&status), Failure::Retry(_)));
        }
    }
}
