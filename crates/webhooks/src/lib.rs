//! Webhooks: each service's events, POSTed to the endpoints connectors
//! register, signed, at least once.
//!
//! An endpoint (`<service>_webhook_endpoints`) is a URL, event type prefixes
//! and a secret. The service's event log feeds an outbox of its own
//! (`storage::outbox` over `<service>_webhook_deliveries`, the endpoint id as
//! the target): each event after an endpoint's registration that matches its
//! prefixes becomes one delivery, sent by [`courier::WebhookCourier`] as an
//! HTTP POST of [`payload`] signed by [`signature`], retried with
//! exponential backoff until the endpoint answers 2xx. A crash between the
//! POST and its record sends it again: receivers deduplicate by event id.
//! After [`Policy::disable_after`] failed attempts in a row the endpoint is
//! disabled; [`Webhooks::replay`] queues events after a cursor again.
//!
//! **Architecture invariant:** a webhook is sent only to an address checked
//! by [`target::resolve`] (public unless `--webhooks-allow-private`), and
//! only to an address it resolved, never by a second look-up.

pub mod courier;
pub mod payload;
pub mod rpc;
mod send;
pub mod signature;
pub mod target;

use std::time::Duration;

use chrono::{DateTime, Utc};
use contracts::ApiError;
use contracts::error::PreconditionViolation;
use contracts::pb::common::v1 as common;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbErr};
use storage::events::{EventLog, decode_cursor, encode_cursor};
use storage::idempotency::Requests;
use storage::outbox::{Outbox, Retry};

pub use send::Sender;

/// The version of the payload's shape (see README "Event catalog"); it
/// changes only when a field changes meaning or goes away.
pub const SCHEMA_VERSION: i32 = storage::events::SCHEMA_VERSION;
/// Most event type prefixes per endpoint.
const MAX_PREFIXES: usize = 64;
/// Events queued per replay call.
const MAX_REPLAY: i64 = 10_000;
const ENABLED: &str = "ENABLED";
const DISABLED: &str = "DISABLED";

/// The tables of one service's webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    /// The service's short name, in every payload (`health`, `pipeline`, `credit`).
    pub service: &'static str,
    pub endpoints: &'static str,
    pub deliveries: &'static str,
    pub cursor: &'static str,
    pub requests: &'static str,
}

macro_rules! tables {
    ($name:ident, $service:literal) => {
        pub const $name: Tables = Tables {
            service: $service,
            endpoints: concat!($service, "_webhook_endpoints"),
            deliveries: concat!($service, "_webhook_deliveries"),
            cursor: concat!($service, "_webhook_outbox_cursor"),
            requests: concat!($service, "_webhook_requests"),
        };
    };
}

impl Tables {
    tables!(HEALTH, "health");
    tables!(PIPELINE, "pipeline");
    tables!(CREDIT, "credit");
}

/// How webhooks are sent (the `--webhooks-*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Whether private, loopback and link-local targets are allowed.
    pub allow_private: bool,
    /// Failed attempts in a row after which an endpoint is disabled.
    pub disable_after: i32,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Backoff: 1 s doubling up to this.
    pub max_delay: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_private: false,
            disable_after: 50,
            timeout: Duration::from_secs(10),
            max_delay: Duration::from_secs(600),
        }
    }
}

impl Policy {
    fn retry(&self) -> Retry {
        let max_delay = chrono::Duration::from_std(self.max_delay)
            .unwrap_or_else(|_| chrono::Duration::seconds(600));
        Retry {
            // The endpoint is disabled first; this only bounds a delivery
            // whose endpoint keeps succeeding with others.
            max_attempts: Ord::max(self.disable_after, 1).saturating_mul(4),
            // The first retry after 1 s (the outbox doubles this once per failure).
            first_delay: chrono::Duration::milliseconds(500),
            max_delay,
            // Renewed while an attempt runs, so a slow endpoint keeps its
            // claim and a killed sender's claim lapses in seconds.
            lease: storage::outbox::LEASE,
        }
    }
}

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub secret: String,
    pub description: String,
    pub enabled: bool,
    pub disabled_reason: String,
    pub consecutive_failures: i32,
    pub start_seq: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl Endpoint {
    /// Whether an event of `event_type` is one this endpoint asked for.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty()
            || self
                .event_types
                .iter()
                .any(|p| event_type.starts_with(p.as_str()))
    }

    pub fn to_pb(&self) -> common::WebhookEndpoint {
        let hint: String = {
            let chars: Vec<char> = self.secret.chars().collect();
            chars[chars.len().saturating_sub(4)..].iter().collect()
        };
        common::WebhookEndpoint {
            endpoint_id: self.id.clone(),
            url: self.url.clone(),
            event_types: self.event_types.clone(),
            description: self.description.clone(),
            state: if self.enabled {
                common::WebhookEndpointState::Enabled
            } else {
                common::WebhookEndpointState::Disabled
            } as i32,
            disabled_reason: self.disabled_reason.clone(),
            consecutive_failures: self.consecutive_failures,
            secret_hint: hint,
            created_by: self.created_by.clone(),
            create_time: Some(contracts::wire::timestamp(self.created_at)),
            start_cursor: encode_cursor(self.start_seq),
        }
    }
}

/// The webhook methods' error: an API error, or a database one.
#[derive(Debug)]
pub struct Error(pub ApiError);

impl From<ApiError> for Error {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        Self(storage::db_error(err))
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// One service's webhooks: its endpoints, their deliveries and the methods
/// behind the service's webhook RPCs.
#[derive(Clone)]
pub struct Webhooks {
    db: storage::Db,
    writer: storage::WriteGate,
    log: EventLog,
    tables: Tables,
    requests: Requests,
    policy: Policy,
    outbox: Outbox,
}

impl Webhooks {
    pub fn new(db: storage::Db, writer: storage::WriteGate, log: EventLog, tables: Tables) -> Self {
        let policy = Policy::default();
        let outbox = Outbox::new(
            log.clone(),
            tables.deliveries,
            tables.cursor,
            writer.clone(),
        )
        .with_retry(policy.retry());
        Self {
            db,
            writer,
            log,
            tables,
            requests: Requests::new(tables.requests),
            policy,
            outbox,
        }
    }

    /// The same webhooks under another policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.outbox = self.outbox.with_retry(policy.retry());
        self.policy = policy;
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn tables(&self) -> Tables {
        self.tables
    }

    pub fn db(&self) -> &storage::Db {
        &self.db
    }

    /// The deliveries' outbox (for its backlog metrics).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The dispatcher, spawned, and its outbox as `name` for the metrics.
    pub fn start(
        &self,
        name: &'static str,
    ) -> Result<(tokio::task::JoinHandle<()>, storage::Watched), String> {
        let task = self.spawn()?;
        let watched = storage::Watched {
            name,
            outbox: self.outbox().clone(),
            db: self.db().pool().clone(),
        };
        Ok((task, watched))
    }

    /// Runs the dispatcher until the process ends.
    pub fn spawn(&self) -> Result<tokio::task::JoinHandle<()>, String> {
        let sender = Sender::new(self.policy.allow_private, self.policy.timeout)?;
        let courier = courier::WebhookCourier::new(self.clone(), sender);
        Ok(self
            .outbox
            .clone()
            .spawn(self.db.pool().clone(), std::sync::Arc::new(courier)))
    }

    fn select(&self) -> sea_orm::sea_query::SelectStatement {
        Query::select()
            .columns([
                col("endpoint_id"),
                col("url"),
                col("event_types"),
                col("secret"),
                col("description"),
                col("state"),
                col("disabled_reason"),
                col("consecutive_failures"),
                col("start_seq"),
                col("created_by"),
                col("created_at"),
            ])
            .from(col(self.tables.endpoints))
            .to_owned()
    }

    async fn query(&self, query: sea_orm::sea_query::SelectStatement) -> Result<Vec<Endpoint>> {
        self.db
            .query_all(&query)
            .await?
            .into_iter()
            .map(|row| {
                let types: String = row.try_get("", "event_types")?;
                let state: String = row.try_get("", "state")?;
                Ok(Endpoint {
                    id: row.try_get("", "endpoint_id")?,
                    url: row.try_get("", "url")?,
                    event_types: serde_json::from_str(&types)
                        .map_err(|e| DbErr::Custom(e.to_string()))?,
                    secret: row.try_get("", "secret")?,
                    description: row.try_get("", "description")?,
                    enabled: state == ENABLED,
                    disabled_reason: row.try_get("", "disabled_reason")?,
                    consecutive_failures: row.try_get("", "consecutive_failures")?,
                    start_seq: row.try_get("", "start_seq")?,
                    created_by: row.try_get("", "created_by")?,
                    created_at: row.try_get("", "created_at")?,
                })
            })
            .collect()
    }

    /// The endpoint `id`, if it exists.
    pub async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        let mut query = self.select();
        query.and_where(Expr::col(col("endpoint_id")).eq(id));
        Ok(self.query(query).await?.into_iter().next())
    }

    async fn existing(&self, field: &str, id: &str) -> Result<Endpoint> {
        if id.is_empty() {
            return Err(ApiError::invalid(field, "is required").into());
        }
        self.endpoint(id)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook endpoint", id).into())
    }

    /// The enabled endpoints (what the dispatcher routes to).
    pub async fn enabled(&self) -> Result<Vec<Endpoint>, DbErr> {
        let mut query = self.select();
        query.and_where(Expr::col(col("state")).eq(ENABLED));
        self.query(query)
            .await
            .map_err(|e| DbErr::Custom(e.0.to_string()))
    }

    async fn set_state(&self, id: &str, enabled: bool, reason: &str) -> Result<()> {
        let mut update = Query::update();
        update
            .table(col(self.tables.endpoints))
            .value(col("state"), if enabled { ENABLED } else { DISABLED })
            .value(col("disabled_reason"), reason)
            .and_where(Expr::col(col("endpoint_id")).eq(id));
        if enabled {
            update.value(col("consecutive_failures"), 0_i32);
        }
        let _write = self.writer.enter().await;
        self.db.execute(&update).await?;
        if !enabled {
            self.outbox
                .park_target(&self.db, id, &format!("endpoint disabled: {reason}"))
                .await?;
        }
        Ok(())
    }

    /// Counts a failed attempt; disables the endpoint at the limit and says so.
    pub(crate) async fn failed(&self, id: &str, error: &str) -> Result<bool, DbErr> {
        let update = Query::update()
            .table(col(self.tables.endpoints))
            .value(
                col("consecutive_failures"),
                Expr::col(col("consecutive_failures")).add(1),
            )
            .and_where(Expr::col(col("endpoint_id")).eq(id))
            .to_owned();
        {
            let _write = self.writer.enter().await;
            self.db.execute(&update).await?;
        }
        let Some(endpoint) = self
            .endpoint(id)
            .await
            .map_err(|e| DbErr::Custom(e.0.to_string()))?
        else {
            return Ok(true);
        };
        if endpoint.enabled && endpoint.consecutive_failures >= self.policy.disable_after {
            let reason = format!(
                "{} failed attempts in a row; the last: {error}",
                endpoint.consecutive_failures
            );
            tracing::warn!(endpoint = %id, %reason, "webhook endpoint disabled");
            self.set_state(id, false, &reason)
                .await
                .map_err(|e| DbErr::Custom(e.0.to_string()))?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A success resets the endpoint's run of failures.
    pub(crate) async fn succeeded(&self, endpoint: &Endpoint) -> Result<(), DbErr> {
        if endpoint.consecutive_failures == 0 {
            return Ok(());
        }
        let update = Query::update()
            .table(col(self.tables.endpoints))
            .value(col("consecutive_failures"), 0_i32)
            .and_where(Expr::col(col("endpoint_id")).eq(endpoint.id.clone()))
            .to_owned();
        let _write = self.writer.enter().await;
        self.db.execute(&update).await?;
        Ok(())
    }

    async fn validate(
        &self,
        spec: Option<common::WebhookEndpointSpec>,
    ) -> Result<common::WebhookEndpointSpec> {
        let spec = spec.ok_or_else(|| ApiError::invalid("endpoint", "is required"))?;
        let target = target::parse(&spec.url).map_err(|e| ApiError::invalid("endpoint.url", e))?;
        // A name that resolves now is checked now; one that does not is
        // checked at each delivery.
        if !self.policy.allow_private
            && let Err(why) = target::resolve(&target, false).await
            && why.contains("--webhooks-allow-private")
        {
            return Err(ApiError::invalid("endpoint.url", why).into());
        }
        if spec.event_types.len() > MAX_PREFIXES {
            return Err(ApiError::invalid(
                "endpoint.event_types",
                format!("at most {MAX_PREFIXES} prefixes"),
            )
            .into());
        }
        for (i, prefix) in spec.event_types.iter().enumerate() {
            contracts::wire::text(&format!("endpoint.event_types[{i}]"), prefix, 128)?;
            if prefix.is_empty() || !prefix.starts_with(self.tables.service) {
                return Err(ApiError::invalid(
                    format!("endpoint.event_types[{i}]"),
                    format!(
                        "must be a prefix of this service's event types, e.g. \"{}.\"",
                        self.tables.service
                    ),
                )
                .into());
            }
        }
        let secret_len = spec.secret.len();
        if !(16..=256).contains(&secret_len) || spec.secret.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "endpoint.secret",
                "must be 16 to 256 bytes of printable text",
            )
            .into());
        }
        if !spec.description.is_empty() {
            contracts::wire::text("endpoint.description", &spec.description, 500)?;
        }
        Ok(spec)
    }

    /// `CreateWebhookEndpoint`.
    pub async fn create<Req: prost::Message>(
        &self,
        by: &str,
        request_id: &str,
        request: &Req,
        spec: Option<common::WebhookEndpointSpec>,
    ) -> Result<common::WebhookEndpoint, ApiError> {
        let run = || async {
            let spec = self.validate(spec).await?;
            let endpoint = Endpoint {
                id: uuid::Uuid::now_v7().to_string(),
                url: spec.url,
                event_types: spec.event_types,
                secret: spec.secret,
                description: spec.description,
                enabled: true,
                disabled_reason: String::new(),
                consecutive_failures: 0,
                // Read before the insert: an event committed after this call
                // returns has a later seq and is staged after the endpoint
                // exists, so it is delivered; one committed meanwhile may be.
                start_seq: self.log.last_seq(&self.db).await?,
                created_by: by.to_owned(),
                created_at: storage::now(),
            };
            let insert = Query::insert()
                .into_table(col(self.tables.endpoints))
                .columns([
                    col("endpoint_id"),
                    col("url"),
                    col("event_types"),
                    col("secret"),
                    col("description"),
                    col("state"),
                    col("disabled_reason"),
                    col("consecutive_failures"),
                    col("start_seq"),
                    col("created_by"),
                    col("created_at"),
                ])
                .values([
                    endpoint.id.clone().into(),
                    endpoint.url.clone().into(),
                    serde_json::Value::from(endpoint.event_types.clone())
                        .to_string()
                        .into(),
                    endpoint.secret.clone().into(),
                    endpoint.description.clone().into(),
                    ENABLED.into(),
                    String::new().into(),
                    0_i32.into(),
                    endpoint.start_seq.into(),
                    endpoint.created_by.clone().into(),
                    endpoint.created_at.into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?
                .to_owned();
            {
                let _write = self.writer.enter().await;
                self.db.execute(&insert).await?;
            }
            tracing::info!(endpoint = %endpoint.id, url = %endpoint.url, "webhook endpoint registered");
            Ok::<_, Error>(endpoint.to_pb())
        };
        self.once("CreateWebhookEndpoint", by, request_id, request, run)
            .await
    }

    /// `ListWebhookEndpoints`: oldest first.
    pub async fn list(
        &self,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<common::WebhookEndpoint>, String), ApiError> {
        let run = async {
            let size = contracts::page::page_size("page_size", page_size)?;
            let filter = contracts::page::fingerprint(&[self.tables.endpoints]);
            let after = contracts::page::decode_token("page_token", page_token, filter)?;
            let mut query = self.select();
            query
                .order_by(col("endpoint_id"), Order::Asc)
                .limit(size + 1);
            if let Some(after) = after {
                query.and_where(Expr::col(col("endpoint_id")).gt(after));
            }
            let mut rows = self.query(query).await?;
            let next = contracts::page::next_page(&mut rows, size, filter, |e| e.id.clone());
            Ok::<_, Error>((rows.iter().map(Endpoint::to_pb).collect(), next))
        };
        run.await.map_err(|e| e.0)
    }

    /// `DisableWebhookEndpoint`: its pending deliveries are parked.
    pub async fn disable<Req: prost::Message>(
        &self,
        by: &str,
        request_id: &str,
        request: &Req,
        endpoint_id: &str,
        reason: &str,
    ) -> Result<common::WebhookEndpoint, ApiError> {
        let run = || async {
            self.existing("endpoint_id", endpoint_id).await?;
            if !reason.is_empty() {
                contracts::wire::text("reason", reason, 500)?;
            }
            let reason = if reason.is_empty() {
                format!("disabled by {by}")
            } else {
                format!("disabled by {by}: {reason}")
            };
            self.set_state(endpoint_id, false, &reason).await?;
            Ok::<_, Error>(self.existing("endpoint_id", endpoint_id).await?.to_pb())
        };
        self.once("DisableWebhookEndpoint", by, request_id, request, run)
            .await
    }

    /// `EnableWebhookEndpoint`: deliveries resume, the failure count reset.
    pub async fn enable<Req: prost::Message>(
        &self,
        by: &str,
        request_id: &str,
        request: &Req,
        endpoint_id: &str,
    ) -> Result<common::WebhookEndpoint, ApiError> {
        let run = || async {
            self.existing("endpoint_id", endpoint_id).await?;
            self.set_state(endpoint_id, true, "").await?;
            Ok::<_, Error>(self.existing("endpoint_id", endpoint_id).await?.to_pb())
        };
        self.once("EnableWebhookEndpoint", by, request_id, request, run)
            .await
    }

    /// `DeleteWebhookEndpoint`: the endpoint and its delivery log.
    pub async fn delete<Req: prost::Message>(
        &self,
        by: &str,
        request_id: &str,
        request: &Req,
        endpoint_id: &str,
    ) -> Result<(), ApiError> {
        let run = || async {
            self.existing("endpoint_id", endpoint_id).await?;
            let delete = Query::delete()
                .from_table(col(self.tables.endpoints))
                .and_where(Expr::col(col("endpoint_id")).eq(endpoint_id))
                .to_owned();
            let _write = self.writer.enter().await;
            self.db.execute(&delete).await?;
            self.outbox.forget_target(&self.db, endpoint_id).await?;
            Ok::<_, Error>(())
        };
        self.once("DeleteWebhookEndpoint", by, request_id, request, run)
            .await
    }

    /// `ListWebhookDeliveries`: an endpoint's delivery log, oldest event first.
    pub async fn deliveries(
        &self,
        endpoint_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<common::WebhookDelivery>, String), ApiError> {
        let run = async {
            let size = contracts::page::page_size("page_size", page_size)?;
            let filter = contracts::page::fingerprint(&[self.tables.deliveries, endpoint_id]);
            let after = match contracts::page::decode_token("page_token", page_token, filter)? {
                Some(seq) => seq.parse::<i64>().map_err(|_| {
                    ApiError::invalid("page_token", "page_token is not a token this list returned")
                })?,
                None => 0,
            };
            self.existing("endpoint_id", endpoint_id).await?;
            let mut rows = self
                .outbox
                .list_target(&self.db, endpoint_id, after, size + 1)
                .await?;
            let next = if rows.len() as u64 > size {
                rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
                rows.last()
                    .map(|d| contracts::page::encode_token(&d.event_seq.to_string(), filter))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let deliveries = rows
                .into_iter()
                .map(|d| {
                    use common::WebhookDeliveryStatus as S;
                    use storage::outbox::DeliveryStatus as D;
                    let status = match d.status {
                        D::Pending => S::Pending,
                        D::Delivered => S::Delivered,
                        D::Parked => S::Parked,
                    };
                    common::WebhookDelivery {
                        event_id: d.event_id,
                        cursor: encode_cursor(d.event_seq),
                        subject_id: d.subject_id,
                        status: status as i32,
                        attempts: d.attempts,
                        last_error: d.last_error.unwrap_or_default(),
                        next_attempt_time: Some(contracts::wire::timestamp(d.next_attempt_at)),
                    }
                })
                .collect();
            Ok::<_, Error>((deliveries, next))
        };
        run.await.map_err(|e| e.0)
    }

    /// `ReplayWebhookEvents`: the endpoint's matching events after
    /// `after_cursor` are queued again (at most [`MAX_REPLAY`] per call);
    /// returns how many, and the cursor to continue after when more remain.
    pub async fn replay<Req, Resp>(
        &self,
        by: &str,
        request_id: &str,
        request: &Req,
        endpoint_id: &str,
        after_cursor: &str,
        answer: impl FnOnce(i64, String) -> Resp,
    ) -> Result<Resp, ApiError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let run = || async {
            let mut after = decode_cursor("after_cursor", after_cursor)?;
            let endpoint = self.existing("endpoint_id", endpoint_id).await?;
            if !endpoint.enabled {
                return Err(ApiError::FailedPrecondition {
                    reason: "WEBHOOK_ENDPOINT_DISABLED",
                    message: format!("webhook endpoint {endpoint_id} is disabled; enable it first"),
                    violations: vec![PreconditionViolation {
                        kind: "STATE".into(),
                        subject: endpoint_id.to_owned(),
                        description: "the endpoint is disabled".into(),
                    }],
                }
                .into());
            }
            let mut queued = 0_i64;
            loop {
                let events = self.log.read_after(&self.db, after, 500).await?;
                let Some(last) = events.last().map(|e| e.seq) else {
                    return Ok(answer(queued, String::new()));
                };
                let wanted: Vec<_> = events
                    .into_iter()
                    .filter(|e| endpoint.wants(&e.event_type))
                    .take(usize::try_from(MAX_REPLAY - queued).unwrap_or(0))
                    .collect();
                let reached = wanted.last().map(|e| e.seq);
                queued += i64::try_from(wanted.len()).unwrap_or(0);
                self.outbox.requeue(&self.db, endpoint_id, &wanted).await?;
                if queued >= MAX_REPLAY {
                    let resume = reached.unwrap_or(last);
                    let more = self.log.last_seq(&self.db).await? > resume;
                    let next = if more {
                        encode_cursor(resume)
                    } else {
                        String::new()
                    };
                    return Ok::<_, Error>(answer(queued, next));
                }
                after = last;
            }
        };
        self.once("ReplayWebhookEvents", by, request_id, request, run)
            .await
    }

    async fn once<Req, Resp, F, Fut>(
        &self,
        method: &'static str,
        by: &str,
        request_id: &str,
        request: &Req,
        run: F,
    ) -> Result<Resp, ApiError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Resp, Error>>,
    {
        self.requests
            .once(&self.db, &self.writer, method, by, request_id, request, run)
            .await
            .map_err(|e: Error| e.0)
    }
}
