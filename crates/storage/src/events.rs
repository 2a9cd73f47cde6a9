//! The append-only event log behind every service's `WatchEvents`.
//!
//! Events are written in the same transaction as the change they describe,
//! so a change and its event commit together or not at all. `seq` orders
//! them and is the resume cursor: a watcher that reconnects with the last
//! cursor it saw gets every later event exactly once.
//!
//! Ordering: on SQLite there is one writer at a time, so `seq` order is
//! commit order. On PostgreSQL two transactions could commit out of `seq`
//! order and a watcher could skip the later-committed, lower `seq`; appends
//! therefore take a transaction-scoped advisory lock per log, which makes
//! commit order equal `seq` order: a later append waits for the earlier
//! transaction to end, so an event never becomes visible after one with a
//! higher `seq` (`tests/integration/claims.rs` runs concurrent writers
//! against a watcher). The outbox stages from the same log by `seq`, so it
//! never passes over an event either.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use contracts::ApiError;
use contracts::pb::common::v1 as common;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// Events read per query while catching up.
const PAGE: u64 = 500;
/// How often a watcher looks for events written by other processes.
const POLL: Duration = Duration::from_millis(250);
/// Events buffered per watcher before the reader waits for the client.
const BUFFER: usize = 256;

/// The version of event payloads (`Event.schema_version`, the webhook body's
/// `schema_version`): fields are only added within a version; one that changes
/// meaning or goes away takes a new version.
pub const SCHEMA_VERSION: i32 = 1;

/// Where a log finds the CRM reference of the accounts its events name: a
/// table of the owning service with the account's id and its external
/// system and id. Each appended event whose `data` has an `account_id` gets
/// `account_external_ref: {system, id}` beside it, read in the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountRefs {
    pub table: &'static str,
    pub id: &'static str,
    pub system: &'static str,
    pub external_id: &'static str,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: Cow<'static, str>,
    pub subject_id: String,
    pub data: serde_json::Value,
}

/// A service's events as one Rust type: a serde enum, adjacently tagged
/// (`#[serde(tag = "type", content = "data")]`), each variant renamed to its
/// `event_type` (`"health.band.changed"`) and holding its `data`. The
/// producer appends [`NewEvent::of`] a value; whoever reads the log back —
/// the service's outbox courier — gets the value again with [`parse`].
pub trait Event: Serialize + DeserializeOwned {
    /// What the event is about (`subject_id`: an account, a deal, …).
    fn subject_id(&self) -> String;
}

impl NewEvent {
    /// The event to append for `event`: its tag as `event_type`, its content as `data`.
    pub fn of<E: Event>(event: &E) -> Result<NewEvent, DbErr> {
        let invalid = |why: String| DbErr::Custom(format!("event does not serialise: {why}"));
        let mut tagged = serde_json::to_value(event).map_err(|e| invalid(e.to_string()))?;
        let event_type = match tagged.get_mut("type").map(serde_json::Value::take) {
            Some(serde_json::Value::String(t)) => t,
            _ => return Err(invalid("no string `type` tag".into())),
        };
        let data = tagged
            .get_mut("data")
            .map(serde_json::Value::take)
            .unwrap_or_else(|| serde_json::json!({}));
        Ok(NewEvent {
            event_type: Cow::Owned(event_type),
            subject_id: event.subject_id(),
            data,
        })
    }
}

/// A stored event read back as the service's event type; `None` for an
/// event type `E` does not have (or data it cannot read).
pub fn parse<E: Event>(event: &StoredEvent) -> Option<E> {
    let tagged = serde_json::json!({"type": event.event_type, "data": event.data});
    serde_json::from_value(tagged).ok()
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub subject_id: String,
    pub data: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
}

/// One service's event log (`<service>_events`).
#[derive(Clone)]
pub struct EventLog {
    table: &'static str,
    lock_key: i64,
    appended: Arc<Notify>,
    account_refs: Option<AccountRefs>,
}

impl EventLog {
    pub fn new(table: &'static str) -> Self {
        // A stable advisory-lock key per table (FNV-1a of its name).
        let lock_key = crate::fnv1a(table.bytes()) as i64;
        Self {
            table,
            lock_key,
            appended: Arc::new(Notify::new()),
            account_refs: None,
        }
    }

    /// The same log, putting each named account's CRM reference beside its id.
    pub fn with_account_refs(mut self, refs: AccountRefs) -> Self {
        self.account_refs = Some(refs);
        self
    }

    /// `account_id` → `{system, id}` of the accounts `events` name.
    async fn external_refs<C: ConnectionTrait>(
        &self,
        txn: &C,
        events: &[NewEvent],
    ) -> Result<std::collections::HashMap<String, serde_json::Value>, DbErr> {
        let mut refs = std::collections::HashMap::new();
        let Some(source) = self.account_refs else {
            return Ok(refs);
        };
        let ids: std::collections::BTreeSet<&str> = events
            .iter()
            .filter(|e| e.data.get("account_external_ref").is_none())
            .filter_map(|e| e.data.get("account_id").and_then(serde_json::Value::as_str))
            .collect();
        if ids.is_empty() {
            return Ok(refs);
        }
        let query = Query::select()
            .columns([
                Alias::new(source.id),
                Alias::new(source.system),
                Alias::new(source.external_id),
            ])
            .from(Alias::new(source.table))
            .and_where(Expr::col(Alias::new(source.id)).is_in(ids))
            .to_owned();
        for row in txn.query_all(&query).await? {
            let id: String = row.try_get("", source.id)?;
            let system: Option<String> = row.try_get("", source.system)?;
            let external: Option<String> = row.try_get("", source.external_id)?;
            if let (Some(system), Some(external)) = (system, external) {
                refs.insert(id, serde_json::json!({"system": system, "id": external}));
            }
        }
        Ok(refs)
    }

    /// Appends events inside the caller's transaction. Call [`Self::committed`]
    /// after the commit so local watchers wake at once.
    pub async fn append<C: ConnectionTrait>(
        &self,
        txn: &C,
        events: &[NewEvent],
    ) -> Result<(), DbErr> {
        if events.is_empty() {
            return Ok(());
        }
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({})", self.lock_key))
                .await?;
        }
        let mut insert = Query::insert();
        insert.into_table(Alias::new(self.table)).columns([
            Alias::new("event_id"),
            Alias::new("event_type"),
            Alias::new("subject_id"),
            Alias::new("data"),
            Alias::new("occurred_at"),
        ]);
        let refs = self.external_refs(txn, events).await?;
        let now = crate::now();
        for event in events {
            let mut data = event.data.clone();
            if let Some(object) = data.as_object_mut()
                && let Some(external) = object
                    .get("account_id")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|id| refs.get(id))
            {
                object.insert("account_external_ref".into(), external.clone());
            }
            insert
                .values([
                    uuid::Uuid::now_v7().to_string().into(),
                    event.event_type.to_string().into(),
                    event.subject_id.clone().into(),
                    data.to_string().into(),
                    now.into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        txn.execute(&insert).await?;
        Ok(())
    }

    /// Resolves at the next [`Self::committed`] after this call (even if it
    /// is first polled later).
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    /// Wakes this process's watchers after a commit that appended events.
    /// Inside a mutation ([`crate::Db::atomically`]) the wake waits for
    /// the mutation's commit.
    pub fn committed(&self) {
        let appended = self.appended.clone();
        crate::db::after_commit(move || appended.notify_waiters());
    }

    /// The `seq` of the latest event, 0 when the log is empty.
    pub async fn last_seq<C: ConnectionTrait>(&self, db: &C) -> Result<i64, DbErr> {
        let query = Query::select()
            .expr_as(
                sea_orm::sea_query::Func::max(Expr::col(Alias::new("seq"))),
                Alias::new("last"),
            )
            .from(Alias::new(self.table))
            .to_owned();
        match db.query_one(&query).await? {
            Some(row) => Ok(row.try_get::<Option<i64>>("", "last")?.unwrap_or(0)),
            None => Ok(0),
        }
    }

    /// Up to `limit` events after `after_seq`, oldest first.
    pub async fn read_after<C: ConnectionTrait>(
        &self,
        db: &C,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, DbErr> {
        let query = Query::select()
            .columns([
                Alias::new("seq"),
                Alias::new("event_id"),
                Alias::new("event_type"),
                Alias::new("subject_id"),
                Alias::new("data"),
                Alias::new("occurred_at"),
            ])
            .from(Alias::new(self.table))
            .and_where(Expr::col(Alias::new("seq")).gt(after_seq))
            .order_by(Alias::new("seq"), Order::Asc)
            .limit(limit)
            .to_owned();
        db.query_all(&query)
            .await?
            .into_iter()
            .map(|row| {
                let data: String = row.try_get("", "data")?;
                Ok(StoredEvent {
                    seq: row.try_get("", "seq")?,
                    event_id: row.try_get("", "event_id")?,
                    event_type: row.try_get("", "event_type")?,
                    subject_id: row.try_get("", "subject_id")?,
                    data: serde_json::from_str(&data).map_err(|e| DbErr::Custom(e.to_string()))?,
                    occurred_at: row.try_get("", "occurred_at")?,
                })
            })
            .collect()
    }

    /// A stream of events after `after_seq` whose type starts with one of
    /// `type_prefixes` (all when empty): first the backlog, then new events
    /// as they commit. It ends when the client goes away.
    pub fn watch(
        &self,
        db: DatabaseConnection,
        after_seq: i64,
        type_prefixes: Vec<String>,
    ) -> ReceiverStream<Result<StoredEvent, DbErr>> {
        let (tx, rx) = mpsc::channel(BUFFER);
        let log = self.clone();
        tokio::spawn(async move {
            let mut cursor = after_seq;
            loop {
                // Register interest before reading, so an append that commits
                // between the read and the wait still wakes us.
                let woken = log.appended.notified();
                let batch = match log.read_after(&db, cursor, PAGE).await {
                    Ok(batch) => batch,
                    Err(err) => {
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                };
                let full_page = batch.len() as u64 == PAGE;
                for event in batch {
                    cursor = event.seq;
                    let wanted = type_prefixes.is_empty()
                        || type_prefixes
                            .iter()
                            .any(|p| event.event_type.starts_with(p.as_str()));
                    if wanted && tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                if full_page {
                    continue;
                }
                tokio::select! {
                    () = woken => {}
                    () = tokio::time::sleep(POLL) => {}
                    () = tx.closed() => return,
                }
            }
        });
        ReceiverStream::new(rx)
    }
}

const CURSOR_PREFIX: &str = "ev1.";

/// The resume cursor of an event: opaque to clients.
pub fn encode_cursor(seq: i64) -> String {
    format!("{CURSOR_PREFIX}{seq:x}")
}

/// Parses a cursor from [`encode_cursor`]; empty means "from the start".
pub fn decode_cursor(field: &str, cursor: &str) -> Result<i64, ApiError> {
    if cursor.is_empty() {
        return Ok(0);
    }
    cursor
        .strip_prefix(CURSOR_PREFIX)
        .and_then(|hex| i64::from_str_radix(hex, 16).ok())
        .filter(|seq| *seq >= 0)
        .ok_or_else(|| ApiError::invalid(field, "is not a cursor this stream returned"))
}

/// The wire form of a stored event.
pub fn event_to_pb(event: StoredEvent) -> common::Event {
    common::Event {
        cursor: encode_cursor(event.seq),
        event_id: event.event_id,
        event_type: event.event_type,
        subject_id: event.subject_id,
        occur_time: Some(contracts::wire::timestamp(event.occurred_at)),
        data: Some(contracts::wire::json_to_struct(event.data)),
        schema_version: SCHEMA_VERSION,
    }
}

/// The body of a service's `WatchEvents`: validates the options and turns
/// the log into a response stream, each event wrapped by `wrap`.
pub fn watch_response<T: Send + 'static>(
    log: &EventLog,
    db: DatabaseConnection,
    options: Option<common::WatchEventsOptions>,
    domain: &'static str,
    wrap: fn(common::Event) -> T,
) -> Result<tonic::codegen::BoxStream<T>, tonic::Status> {
    let options = options.unwrap_or_default();
    let after = decode_cursor("options.after_cursor", &options.after_cursor)
        .map_err(|e| e.into_status(domain))?;
    if options.event_types.len() > 64 || options.event_types.iter().any(|t| t.len() > 128) {
        return Err(
            ApiError::invalid("options.event_types", "at most 64 prefixes of 128 bytes")
                .into_status(domain),
        );
    }
    let stream = log
        .watch(db, after, options.event_types)
        .map(move |item| match item {
            Ok(event) => Ok(wrap(event_to_pb(event))),
            Err(err) => Err(crate::db_error(err).into_status(domain)),
        });
    Ok(Box::pin(stream))
}

/// A service's `WatchEvents` RPC over its store's event log, unfiltered:
/// every event of the service reaches every reader (credit, whose readers see
/// only their own entries' events, filters [`watch_response`] itself).
/// Written inside the service's `#[tonic::async_trait]` impl as
/// `storage::events::watch_events_rpc!(store, crate::DOMAIN);`, where `store`
/// is the field holding the service's store; the method comes out in the form
/// `async_trait` gives the trait's own, and its messages are named through
/// `pb`, the service's proto package's module in scope there.
#[macro_export]
macro_rules! watch_events_rpc {
    ($store:ident, $domain:expr) => {
        type WatchEventsStream = ::tonic::codegen::BoxStream<pb::WatchEventsResponse>;

        fn watch_events<'life0, 'async_trait>(
            &'life0 self,
            request: ::tonic::Request<pb::WatchEventsRequest>,
        ) -> ::std::pin::Pin<
            Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<
                            ::tonic::Response<Self::WatchEventsStream>,
                            ::tonic::Status,
                        >,
                    > + ::std::marker::Send
                    + 'async_trait,
            >,
        >
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                let stream = $crate::events::watch_response(
                    self.$store.events(),
                    self.$store.db().pool().clone(),
                    request.into_inner().options,
                    $domain,
                    |event| pb::WatchEventsResponse { event: Some(event) },
                )?;
                Ok(::tonic::Response::new(stream))
            })
        }
    };
}
pub use crate::watch_events_rpc;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor("c", &encode_cursor(12345)).unwrap(), 12345);
        assert_eq!(decode_cursor("c", "").unwrap(), 0);
        assert!(decode_cursor("c", "12345").is_err());
        assert!(decode_cursor("c", "ev1.zz").is_err());
        assert!(decode_cursor("c", "ev1.-5").is_err());
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum Sample {
        #[serde(rename = "test.thing.made")]
        Made { thing_id: String, count: u32 },
        #[serde(rename = "test.thing.gone")]
        Gone { thing_id: String },
    }

    impl Event for Sample {
        fn subject_id(&self) -> String {
            match self {
                Sample::Made { thing_id, .. } | Sample::Gone { thing_id } => thing_id.clone(),
            }
        }
    }

    #[test]
    fn a_typed_event_is_its_tag_and_data_and_reads_back() {
        let made = Sample::Made {
            thing_id: "t1".into(),
            count: 3,
        };
        let new = NewEvent::of(&made).unwrap();
        assert_eq!(new.event_type, "test.thing.made");
        assert_eq!(new.subject_id, "t1");
        assert_eq!(new.data, serde_json::json!({"thing_id": "t1", "count": 3}));
        let mut stored = StoredEvent {
            seq: 1,
            event_id: "e".into(),
            event_type: new.event_type.to_string(),
            subject_id: new.subject_id,
            // The log adds the account's CRM reference; a reader ignores it.
            data: serde_json::json!({"thing_id": "t1", "count": 3, "account_external_ref": {}}),
            occurred_at: Utc::now(),
        };
        assert_eq!(parse::<Sample>(&stored), Some(made));
        stored.event_type = "test.thing.unknown".into();
        assert_eq!(parse::<Sample>(&stored), None);
    }
}
