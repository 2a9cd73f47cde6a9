//! The tonic face of the health service: decode, call, encode. No rules here.

use chrono::{DateTime, Utc};
use contracts::pb::common::v1::{self as common};
use contracts::pb::health::v1 as pb;
use contracts::pb::health::v1::account_health_service_server::AccountHealthService;
use contracts::{ApiError, page, principal_of, wire};
use domain::{DateRange, HealthBand, Month, OpportunityId, ProductId, TimeZoneName, TriggerId};
use sea_orm::DatabaseConnection;
use tokio_stream::StreamExt;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::cohort::Grain;
use crate::convert::{
    account_health_to_pb, account_to_pb, history_to_pb, metrics_to_pb, product_to_pb, ratio,
    score_to_pb, subscription_to_pb, trigger_to_pb, usage_to_pb,
};
use crate::entity::{account, health_override};
use crate::error::HealthError;
use crate::model::product::ProductInput;
use crate::model::scorecard::Scorecard;
use crate::model::signal::batch_from_pb;
use crate::model::subscription::{Cancellation, SubscriptionInput};
use crate::model::triggers::TriggerKind;
use crate::model::upsell::UpsellInput;
use crate::model::{AccountInput, optional_account_id, optional_external_ref};
use crate::store::{ScoreView, Store};

#[derive(Clone)]
pub struct HealthService {
    store: Store,
    webhooks: webhooks::Webhooks,
}

impl HealthService {
    pub fn new(db: DatabaseConnection) -> Self {
        let store = Store::new(db);
        let webhooks = webhooks::Webhooks::new(
            store.db().clone(),
            store.writer().clone(),
            store.events().clone(),
            webhooks::Tables::HEALTH,
        );
        Self { store, webhooks }
    }

    /// The same service, sending webhooks under `policy`.
    pub fn with_webhook_policy(mut self, policy: webhooks::Policy) -> Self {
        self.webhooks = self.webhooks.with_policy(policy);
        self
    }

    /// The service's webhooks, for their dispatcher.
    pub fn webhooks(&self) -> &webhooks::Webhooks {
        &self.webhooks
    }

    /// The store's event log, for the outbox dispatcher to read and wake on.
    pub fn event_log(&self) -> storage::events::EventLog {
        self.store.events().clone()
    }

    /// Signals this process has ingested, for its metrics.
    pub fn ingested(&self) -> std::sync::Arc<crate::store::IngestTotals> {
        self.store.ingested()
    }

    /// The store's write gate, for the outbox dispatcher to share.
    pub fn write_gate(&self) -> storage::WriteGate {
        self.store.writer().clone()
    }

    /// The recompute worker and the daily sweep ([`crate::worker`]), until
    /// the process stops.
    pub fn spawn_background(&self) -> tokio::task::JoinHandle<()> {
        crate::worker::spawn(self.store.clone())
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// A message that names an account and maybe a product by id, and shows
/// their names beside them.
trait Named {
    fn ids(&self) -> (&str, &str);
    fn set_names(&mut self, account: String, product: String);
}

/// The messages that carry `account_id`/`product_id` beside `account_name`/`product_name`.
macro_rules! named {
    ($($message:ty),+) => {$(
        impl Named for $message {
            fn ids(&self) -> (&str, &str) {
                (&self.account_id, &self.product_id)
            }
            fn set_names(&mut self, account: String, product: String) {
                self.account_name = account;
                self.product_name = product;
            }
        }
    )+};
}

named!(pb::Trigger, pb::HealthScore, pb::Subscription);

impl HealthService {
    /// Puts the account's and the product's names beside their ids, read
    /// from this service's own tables in two queries for the whole page.
    async fn named<T: Named>(&self, items: &mut [T]) -> Result<(), HealthError> {
        let names = self
            .store
            .names(
                items.iter().map(|i| i.ids().0),
                items.iter().map(|i| i.ids().1),
            )
            .await?;
        for item in items.iter_mut() {
            let (account, product) = item.ids();
            let (account, product) = (names.account(account), names.product(product));
            item.set_names(account, product);
        }
        Ok(())
    }

    /// One item with its names.
    async fn one_named<T: Named>(&self, mut item: T) -> Result<T, HealthError> {
        self.named(std::slice::from_mut(&mut item)).await?;
        Ok(item)
    }

    async fn named_health(&self, health: &mut pb::AccountHealth) -> Result<(), HealthError> {
        if let Some(overall) = health.overall.as_mut() {
            self.named(std::slice::from_mut(overall)).await?;
        }
        self.named(&mut health.products).await
    }
}

/// Where this service keeps its `request_id` records.
const REQUESTS: storage::idempotency::Requests =
    storage::idempotency::Requests::new("health_requests");

fn invalid(field: &str, why: impl std::fmt::Display) -> HealthError {
    HealthError::from(ApiError::invalid(field, why))
}

/// The trigger and (optional) opportunity a ConvertTrigger / CloseTrigger names.
fn trigger_step_ids(
    trigger_id: &str,
    opportunity_id: &str,
) -> Result<(TriggerId, Option<String>), HealthError> {
    let id = TriggerId::parse(trigger_id).map_err(|e| invalid("trigger_id", e))?;
    let opportunity = if opportunity_id.is_empty() {
        None
    } else {
        Some(
            OpportunityId::parse(opportunity_id)
                .map_err(|e| invalid("opportunity_id", e))?
                .to_string(),
        )
    };
    Ok((id, opportunity))
}

/// A page token holding a key (last id or offset) bound to the list's filters.
/// A scorecard id from the wire; empty is `default`, the one scores use.
fn scorecard_id(field: &str, raw: &str) -> Result<String, HealthError> {
    if raw.is_empty() {
        return Ok(crate::model::scorecard::DEFAULT_SCORECARD_ID.to_owned());
    }
    Ok(wire::text(
        field,
        raw,
        crate::model::scorecard::MAX_SCORECARD_ID_LEN,
    )?)
}

fn page_start(token: &str, filter: u64) -> Result<Option<String>, HealthError> {
    Ok(page::decode_token("page_token", token, filter)?)
}

fn offset_of(token: &str, filter: u64) -> Result<u64, HealthError> {
    match page_start(token, filter)? {
        None => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| invalid("page_token", "is not a token this list returned")),
    }
}

fn next_token<T>(items: &[T], limit: u64, key: impl Fn(&T) -> String, filter: u64) -> String {
    if u64::try_from(items.len()).unwrap_or(u64::MAX) < limit {
        return String::new();
    }
    items
        .last()
        .map(|last| page::encode_token(&key(last), filter))
        .unwrap_or_default()
}

fn optional_timestamp(
    field: &str,
    ts: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, HealthError> {
    ts.map(|t| {
        u32::try_from(t.nanos)
            .ok()
            .and_then(|n| DateTime::from_timestamp(t.seconds, n))
            .ok_or_else(|| invalid(field, "is not a valid timestamp"))
    })
    .transpose()
}

impl HealthService {
    async fn require_account(&self, field: &str, raw: &str) -> Result<account::Model, HealthError> {
        let id = optional_account_id(field, raw)?.ok_or_else(|| invalid(field, "is required"))?;
        self.store
            .account(&id)
            .await?
            .ok_or_else(|| HealthError::AccountNotFound(id.to_string()))
    }
}

/// Mutations, run at most once per `request_id` by the trait methods below.
impl HealthService {
    async fn upsert_account_op(
        &self,
        principal: String,
        req: &pb::UpsertAccountRequest,
    ) -> Result<pb::UpsertAccountResponse, HealthError> {
        let input = AccountInput::from_request(req, storage::now().date_naive())
            .map_err(HealthError::from)?;
        let (model, created) = self.store.upsert_account(&input, &principal).await?;
        tracing::info!(account_id = %model.id, created, "account upserted");
        Ok(pb::UpsertAccountResponse {
            account: Some(account_to_pb(model)),
            created,
        })
    }

    async fn upsert_product_op(
        &self,
        principal: String,
        req: &pb::UpsertProductRequest,
    ) -> Result<pb::UpsertProductResponse, HealthError> {
        let input = ProductInput::from_request(req).map_err(HealthError::from)?;
        let (model, created) = self.store.upsert_product(&input, &principal).await?;
        Ok(pb::UpsertProductResponse {
            product: Some(product_to_pb(model)),
            created,
        })
    }

    async fn upsert_subscription_op(
        &self,
        principal: String,
        req: &pb::UpsertSubscriptionRequest,
    ) -> Result<pb::UpsertSubscriptionResponse, HealthError> {
        let input =
            SubscriptionInput::from_request(req, storage::now()).map_err(HealthError::from)?;
        let (view, created) = self.store.upsert_subscription(&input, &principal).await?;
        Ok(pb::UpsertSubscriptionResponse {
            subscription: Some(self.one_named(subscription_to_pb(view)).await?),
            created,
        })
    }

    async fn cancel_subscription_op(
        &self,
        principal: String,
        req: &pb::CancelSubscriptionRequest,
    ) -> Result<pb::CancelSubscriptionResponse, HealthError> {
        let cancel = Cancellation::from_request(req, storage::now()).map_err(HealthError::from)?;
        let view = self.store.cancel_subscription(&cancel, &principal).await?;
        Ok(pb::CancelSubscriptionResponse {
            subscription: Some(self.one_named(subscription_to_pb(view)).await?),
        })
    }

    async fn apply_upsell_op(
        &self,
        principal: String,
        req: &pb::ApplyUpsellRequest,
    ) -> Result<pb::ApplyUpsellResponse, HealthError> {
        let input = UpsellInput::from_request(req).map_err(HealthError::from)?;
        let (view, created) = self.store.apply_upsell(&input, &principal).await?;
        Ok(pb::ApplyUpsellResponse {
            subscription: Some(self.one_named(subscription_to_pb(view)).await?),
            created,
        })
    }

    async fn record_signals_op(
        &self,
        _principal: String,
        req: &pb::RecordSignalsRequest,
    ) -> Result<pb::RecordSignalsResponse, HealthError> {
        let batch =
            batch_from_pb("signals", &req.signals, storage::now()).map_err(HealthError::from)?;
        let done = self.store.record_signals("signals", &batch).await?;
        Ok(pb::RecordSignalsResponse {
            accepted: i64::try_from(done.accepted).unwrap_or(i64::MAX),
            duplicates: i64::try_from(done.duplicates).unwrap_or(i64::MAX),
        })
    }

    async fn upsert_scorecard_op(
        &self,
        principal: String,
        req: &pb::UpsertScorecardRequest,
    ) -> Result<pb::UpsertScorecardResponse, HealthError> {
        let wire_card = req
            .scorecard
            .as_ref()
            .ok_or_else(|| invalid("scorecard", "is required"))?;
        let card = Scorecard::from_pb("scorecard", wire_card).map_err(HealthError::from)?;
        let stored = self.store.add_scorecard(&card, &principal).await?;
        Ok(pb::UpsertScorecardResponse {
            scorecard: Some(stored.to_pb()),
        })
    }

    async fn override_health_op(
        &self,
        principal: String,
        req: &pb::OverrideHealthRequest,
    ) -> Result<pb::OverrideHealthResponse, HealthError> {
        let account = self.require_account("account_id", &req.account_id).await?;
        // Stored in its canonical spelling: an id may arrive upper-case or unhyphenated.
        let mut product_id = String::new();
        if !req.product_id.is_empty() {
            let product =
                ProductId::parse(&req.product_id).map_err(|e| invalid("product_id", e))?;
            if self.store.product(&product).await?.is_none() {
                return Err(invalid(
                    "product_id",
                    format!("no product has id {product}"),
                ));
            }
            product_id = product.to_string();
        }
        if !(0..=100).contains(&req.score) {
            return Err(invalid("score", "must be 0-100"));
        }
        let reason =
            wire::text("reason", &req.reason, wire::MAX_NOTE_LEN).map_err(HealthError::from)?;
        let now = storage::now();
        let expires_at = optional_timestamp("expire_time", req.expire_time.as_ref())?;
        if expires_at.is_some_and(|t| t <= now) {
            return Err(invalid("expire_time", "must be in the future"));
        }
        self.store
            .override_health(health_override::Model {
                id: domain::EventId::new().to_string(),
                account_id: account.id.clone(),
                product_id,
                score: req.score,
                reason,
                principal,
                created_at: now,
                expires_at,
            })
            .await?;
        let view = self.store.account_health(&account.id).await?;
        Ok(pb::OverrideHealthResponse {
            health: Some(account_health_to_pb(&view)),
        })
    }
}

#[tonic::async_trait]
impl AccountHealthService for HealthService {
    #[tracing::instrument(skip_all)]
    async fn upsert_account(
        &self,
        request: Request<pb::UpsertAccountRequest>,
    ) -> Reply<pb::UpsertAccountResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let reply = REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                "UpsertAccount",
                &principal,
                &req.request_id,
                &req,
                || self.upsert_account_op(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Reply<pb::GetAccountResponse> {
        let req = request.get_ref();
        let id = optional_account_id("account_id", &req.account_id).map_err(HealthError::from)?;
        let external = optional_external_ref("external_ref", req.external_ref.as_ref())
            .map_err(HealthError::from)?;
        let (found, name) = match (id, external) {
            (Some(id), _) => (self.store.account(&id).await?, id.to_string()),
            (None, Some(ext)) => (self.store.account_by_external(&ext).await?, ext.to_string()),
            (None, None) => {
                return Err(invalid("account_id", "account_id or external_ref is required").into());
            }
        };
        let account = found.ok_or(HealthError::AccountNotFound(name))?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(account_to_pb(account)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Reply<pb::ListAccountsResponse> {
        let req = request.get_ref();
        let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
        let segment = wire::segment("segment", req.segment).map_err(HealthError::from)?;
        let owner = wire::optional_text("owner_csm", &req.owner_csm, wire::MAX_NAME_LEN)
            .map_err(HealthError::from)?;
        let parent = optional_account_id("parent_account_id", &req.parent_account_id)
            .map_err(HealthError::from)?;
        let filter = page::fingerprint(&[
            &req.segment.to_string(),
            &req.owner_csm,
            &req.parent_account_id,
        ]);
        let after = page_start(&req.page_token, filter)?;
        let parent = parent.map(|p| p.to_string());
        let rows = self
            .store
            .list_accounts(
                segment.map(|s| s.as_str()),
                owner.as_deref(),
                parent.as_deref(),
                after.as_deref(),
                limit,
            )
            .await?;
        let next_page_token = next_token(&rows, limit, |a| a.id.clone(), filter);
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: rows.into_iter().map(account_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_product(
        &self,
        request: Request<pb::UpsertProductRequest>,
    ) -> Reply<pb::UpsertProductResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let reply = REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                "UpsertProduct",
                &principal,
                &req.request_id,
                &req,
                || self.upsert_product_op(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Reply<pb::ListProductsResponse> {
        let req = request.get_ref();
        let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
        let family = wire::optional_text("family", &req.family, wire::MAX_NAME_LEN)
            .map_err(HealthError::from)?;
        let segment = wire::segment("fits_segment", req.fits_segment).map_err(HealthError::from)?;
        let filter = page::fingerprint(&[&req.family, &req.fits_segment.to_string()]);
        let mut after = page_start(&req.page_token, filter)?;
        // The segment filter reads the stored JSON list; keep paging until
        // the page is full or the products run out.
        let mut out = Vec::new();
        loop {
            let rows = self
                .store
                .list_products(family.as_deref(), after.as_deref(), limit)
                .await?;
            let exhausted = u64::try_from(rows.len()).unwrap_or(u64::MAX) < limit;
            after = rows.last().map(|p| p.id.clone());
            for row in rows {
                let fits = segment.is_none_or(|s| {
                    serde_json::from_str::<Vec<String>>(&row.fits_segments)
                        .unwrap_or_default()
                        .iter()
                        .any(|x| x == s.as_str())
                });
                if fits && u64::try_from(out.len()).unwrap_or(u64::MAX) < limit {
                    out.push(row);
                }
            }
            if exhausted || u64::try_from(out.len()).unwrap_or(u64::MAX) >= limit {
                break;
            }
        }
        let next_page_token = next_token(&out, limit, |p| p.id.clone(), filter);
        Ok(Response::new(pb::ListProductsResponse {
            products: out.into_iter().map(product_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Reply<pb::GetProductResponse> {
        let raw = &request.get_ref().product_id;
        let id = ProductId::parse(raw).map_err(|e| invalid("product_id", e))?;
        let product = self
            .store
            .product(&id)
            .await?
            .ok_or_else(|| HealthError::ProductNotFound(id.to_string()))?;
        Ok(Response::new(pb::GetProductResponse {
            product: Some(product_to_pb(product)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_subscription(
        &self,
        request: Request<pb::UpsertSubscriptionRequest>,
    ) -> Reply<pb::UpsertSubscriptionResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let reply = REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                "UpsertSubscription",
                &principal,
                &req.request_id,
                &req,
                || self.upsert_subscription_op(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_subscription(
        &self,
        request: Request<pb::CancelSubscriptionRequest>,
    ) -> Reply<pb::CancelSubscriptionResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let reply = REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                "CancelSubscription",
                &principal,
                &req.request_id,
                &req,
                || self.cancel_subscription_op(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn apply_upsell(
        &self,
        request: Request<pb::ApplyUpsellRequest>,
    ) -> Reply<pb::ApplyUpsellResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let reply = REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                "ApplyUpsell",
                &principal,
                &req.request_id,
                &req,
                || self.apply_upsell_op(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Reply<pb::ListSubscriptionsResponse> {
        let req = request.get_ref();
        let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
        let account =
            optional_account_id("account_id", &req.account_id).map_err(HealthError::from)?;
        let product = if req.product_id.is_empty() {
            None
        } else {
            Some(ProductId::parse(&req.product_id).map_err(|e| invalid("product_id", e))?)
        };
        let status = match wire::known_enum::<pb::SubscriptionStatus>("status", req.status)
            .map_err(HealthError::from)?
        {
            pb::SubscriptionStatus::Unspecified => None,
            pb::SubscriptionStatus::Active => Some("ACTIVE"),
            pb::SubscriptionStatus::Cancelled => Some("CANCELLED"),
        };
        let filter =
            page::fingerprint(&[&req.account_id, &req.product_id, &req.status.to_string()]);
        let after = page_start(&req.page_token, filter)?;
        let (account, product) = (
            account.map(|a| a.to_string()),
            product.map(|p| p.to_string()),
        );
        let rows = self
            .store
            .list_subscriptions(
                account.as_deref(),
                product.as_deref(),
                status,
                after.as_deref(),
                limit,
            )
            .await?;
        let next_page_token = next_token(&rows, limit, |s| s.row.id.clone(), filter);
        let pairs: Vec<(String, String)> = rows
            .iter()
            .map(|s| (s.row.account_id.clone(), s.row.product_id.clone()))
            .collect();
        let usage = self.store.latest_usage(&pairs).await?;
        let mut subscriptions: Vec<pb::Subscription> = rows
            .into_iter()
            .map(|view| {
                let key = (view.row.account_id.clone(), view.row.product_id.clone());
                pb::Subscription {
                    latest_usage: usage.get(&key).map(usage_to_pb),
                    ..subscription_to_pb(view)
                }
            })
            .collect();
        self.named(&mut subscriptions).await?;
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all, fields(signals = request.get_ref().signals.len()))]
    async fn record_signals(
        &self,
        request: Request<pb::RecordSignalsRequest>,
    ) -> Reply<pb::RecordSignalsResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let reply = REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                "RecordSignals",
                &principal,
                &req.request_id,
                &req,
                || self.record_signals_op(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(reply))
    }

    /// Each message is stored as it arrives (a connector that reconnects
    /// resends; external ids make that safe). A bad message ends the stream
    /// with INVALID_ARGUMENT naming `batches[n].signals[i]…`; earlier
    /// messages stay stored.
    #[tracing::instrument(skip_all)]
    async fn stream_signals(
        &self,
        request: Request<Streaming<pb::StreamSignalsRequest>>,
    ) -> Reply<pb::StreamSignalsResponse> {
        let mut stream = request.into_inner();
        let mut summary = pb::StreamSignalsResponse::default();
        while let Some(message) = stream.next().await {
            let message = message?;
            let field = format!("batches[{}].signals", summary.batches);
            let batch = batch_from_pb(&field, &message.signals, storage::now())
                .map_err(HealthError::from)?;
            let done = self.store.record_signals(&field, &batch).await?;
            summary.accepted += i64::try_from(done.accepted).unwrap_or(i64::MAX);
            summary.duplicates += i64::try_from(done.duplicates).unwrap_or(i64::MAX);
            summary.batches += 1;
        }
        Ok(Response::new(summary))
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_scorecard(
        &self,
        request: Request<pb::UpsertScorecardRequest>,
    ) -> Reply<pb::UpsertScorecardResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let reply = REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                "UpsertScorecard",
                &principal,
                &req.request_id,
                &req,
                || self.upsert_scorecard_op(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Reply<pb::GetScorecardResponse> {
        let req = request.get_ref();
        let scorecard_id = scorecard_id("scorecard_id", &req.scorecard_id)?;
        if req.version < 0 {
            return Err(invalid("version", "must be 0 (the latest) or a version number").into());
        }
        let (card, in_force) = self.store.scorecard(&scorecard_id, req.version).await?;
        Ok(Response::new(pb::GetScorecardResponse {
            scorecard: Some(card.to_pb()),
            in_force,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_scorecards(
        &self,
        request: Request<pb::ListScorecardsRequest>,
    ) -> Reply<pb::ListScorecardsResponse> {
        let req = request.get_ref();
        let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
        let scorecard_id = scorecard_id("scorecard_id", &req.scorecard_id)?;
        let filter = page::fingerprint(&[&scorecard_id]);
        let before = page_start(&req.page_token, filter)?
            .map(|v| {
                v.parse::<i32>()
                    .map_err(|_| invalid("page_token", "is not a token this list gave out"))
            })
            .transpose()?;
        let (cards, in_force_version) = self
            .store
            .scorecard_versions(&scorecard_id, before, limit)
            .await?;
        let next_page_token = next_token(&cards, limit, |c| c.version.to_string(), filter);
        Ok(Response::new(pb::ListScorecardsResponse {
            scorecards: cards.iter().map(Scorecard::to_pb).collect(),
            next_page_token,
            in_force_version,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_account_health(
        &self,
        request: Request<pb::GetAccountHealthRequest>,
    ) -> Reply<pb::GetAccountHealthResponse> {
        let raw = &request.get_ref().account_id;
        let id = optional_account_id("account_id", raw)
            .map_err(HealthError::from)?
            .ok_or_else(|| invalid("account_id", "is required"))?
            .to_string();
        let view = self
            .store
            .checked_account_health(&id)
            .await?
            .ok_or(HealthError::AccountNotFound(id))?;
        let mut health = account_health_to_pb(&view);
        self.named_health(&mut health).await?;
        Ok(Response::new(pb::GetAccountHealthResponse {
            health: Some(health),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_account_health(
        &self,
        request: Request<pb::ListAccountHealthRequest>,
    ) -> Reply<pb::ListAccountHealthResponse> {
        let req = request.get_ref();
        let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
        wire::filter_values("bands", &req.bands).map_err(HealthError::from)?;
        let mut bands = Vec::new();
        for (i, b) in req.bands.iter().enumerate() {
            let field = format!("bands[{i}]");
            bands.push(
                match wire::known_enum::<common::HealthBand>(&field, *b)
                    .map_err(HealthError::from)?
                {
                    common::HealthBand::Unspecified => {
                        return Err(invalid(&field, "is not a band").into());
                    }
                    common::HealthBand::Red => HealthBand::Red,
                    common::HealthBand::Yellow => HealthBand::Yellow,
                    common::HealthBand::Green => HealthBand::Green,
                },
            );
        }
        let descending = match wire::known_enum::<pb::HealthSortOrder>("sort", req.sort)
            .map_err(HealthError::from)?
        {
            pb::HealthSortOrder::ScoreDescending => true,
            pb::HealthSortOrder::Unspecified | pb::HealthSortOrder::ScoreAscending => false,
        };
        let owner = wire::optional_text("owner_csm", &req.owner_csm, wire::MAX_NAME_LEN)
            .map_err(HealthError::from)?;
        let filter = page::fingerprint(&[
            &format!("{:?}", req.bands),
            &req.sort.to_string(),
            &req.owner_csm,
        ]);
        let offset = offset_of(&req.page_token, filter)?;
        let rows = self
            .store
            .list_account_health(&bands, descending, owner.as_deref(), offset, limit)
            .await?;
        let card = self.store.active_scorecard().await?;
        let count = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        let next_page_token = if count < limit {
            String::new()
        } else {
            page::encode_token(&(offset + count).to_string(), filter)
        };
        let mut scores: Vec<pb::HealthScore> = rows
            .into_iter()
            .map(|row| {
                score_to_pb(
                    &ScoreView {
                        row,
                        previous_e2: None,
                        month_ago_e2: None,
                        override_: None,
                    },
                    &card.bands,
                )
            })
            .collect();
        self.named(&mut scores).await?;
        Ok(Response::new(pb::ListAccountHealthResponse {
            scores,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_health_history(
        &self,
        request: Request<pb::GetHealthHistoryRequest>,
    ) -> Reply<pb::GetHealthHistoryResponse> {
        let req = request.get_ref();
        let account = self.require_account("account_id", &req.account_id).await?;
        let product_id = if req.product_id.is_empty() {
            String::new()
        } else {
            ProductId::parse(&req.product_id)
                .map_err(|e| invalid("product_id", e))?
                .to_string()
        };
        let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
        let start = optional_timestamp("start_time", req.start_time.as_ref())?;
        let end = optional_timestamp("end_time", req.end_time.as_ref())?;
        if let (Some(s), Some(e)) = (start, end)
            && e <= s
        {
            return Err(invalid("end_time", "must be after start_time").into());
        }
        let filter = page::fingerprint(&[
            &req.account_id,
            &req.product_id,
            &format!("{start:?}{end:?}"),
        ]);
        let offset = offset_of(&req.page_token, filter)?;
        let rows = self
            .store
            .health_history(&account.id, &product_id, (start, end), offset, limit)
            .await?;
        let card = self.store.active_scorecard().await?;
        let count = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        let next_page_token = if count < limit {
            String::new()
        } else {
            page::encode_token(&(offset + count).to_string(), filter)
        };
        let mut points: Vec<pb::HealthScore> = rows
            .into_iter()
            .map(|r| history_to_pb(r, &card.bands))
            .collect();
        self.named(&mut points).await?;
        Ok(Response::new(pb::GetHealthHistoryResponse {
            points,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn override_health(
        &self,
        request: Request<pb::OverrideHealthRequest>,
    ) -> Reply<pb::OverrideHealthResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let reply = REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                "OverrideHealth",
                &principal,
                &req.request_id,
                &req,
                || self.override_health_op(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn list_triggers(
        &self,
        request: Request<pb::ListTriggersRequest>,
    ) -> Reply<pb::ListTriggersResponse> {
        let req = request.get_ref();
        let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
        let account =
            optional_account_id("account_id", &req.account_id).map_err(HealthError::from)?;
        wire::filter_values("statuses", &req.statuses).map_err(HealthError::from)?;
        let mut statuses = Vec::new();
        for (i, s) in req.statuses.iter().enumerate() {
            let field = format!("statuses[{i}]");
            statuses.push(
                match wire::known_enum::<pb::TriggerStatus>(&field, *s)
                    .map_err(HealthError::from)?
                {
                    pb::TriggerStatus::Unspecified => {
                        return Err(invalid(&field, "is not a status").into());
                    }
                    pb::TriggerStatus::Ready => "READY",
                    pb::TriggerStatus::Suppressed => "SUPPRESSED",
                    pb::TriggerStatus::Closed => "CLOSED",
                    pb::TriggerStatus::Converted => "CONVERTED",
                },
            );
        }
        let kind = match wire::known_enum::<pb::TriggerKind>("kind", req.kind)
            .map_err(HealthError::from)?
        {
            pb::TriggerKind::Unspecified => None,
            other => TriggerKind::from_pb(other).map(TriggerKind::as_str),
        };
        let filter = page::fingerprint(&[
            &req.account_id,
            &format!("{:?}", req.statuses),
            &req.kind.to_string(),
        ]);
        let before = page_start(&req.page_token, filter)?;
        let account = account.map(|a| a.to_string());
        let rows = self
            .store
            .list_triggers(
                account.as_deref(),
                &statuses,
                kind,
                before.as_deref(),
                limit,
            )
            .await?;
        let next_page_token = next_token(&rows, limit, |t| t.id.clone(), filter);
        let mut triggers: Vec<pb::Trigger> = rows.into_iter().map(trigger_to_pb).collect();
        self.named(&mut triggers).await?;
        Ok(Response::new(pb::ListTriggersResponse {
            triggers,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_trigger(
        &self,
        request: Request<pb::GetTriggerRequest>,
    ) -> Reply<pb::GetTriggerResponse> {
        let id = TriggerId::parse(&request.get_ref().trigger_id)
            .map_err(|e| invalid("trigger_id", e))?;
        let t = self
            .store
            .trigger(&id)
            .await?
            .ok_or_else(|| HealthError::TriggerNotFound(id.to_string()))?;
        let mut trigger = trigger_to_pb(t);
        self.named(std::slice::from_mut(&mut trigger)).await?;
        Ok(Response::new(pb::GetTriggerResponse {
            trigger: Some(trigger),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn convert_trigger(
        &self,
        request: Request<pb::ConvertTriggerRequest>,
    ) -> Reply<pb::ConvertTriggerResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let reply = REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                "ConvertTrigger",
                &principal,
                &req.request_id,
                &req,
                || async {
                    let (id, opportunity) = trigger_step_ids(&req.trigger_id, &req.opportunity_id)?;
                    let opportunity =
                        opportunity.ok_or_else(|| invalid("opportunity_id", "is required"))?;
                    let t = self.store.convert_trigger(&id, &opportunity).await?;
                    Ok::<_, HealthError>(pb::ConvertTriggerResponse {
                        trigger: Some(self.one_named(trigger_to_pb(t)).await?),
                    })
                },
            )
            .await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn close_trigger(
        &self,
        request: Request<pb::CloseTriggerRequest>,
    ) -> Reply<pb::CloseTriggerResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let reply = REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                "CloseTrigger",
                &principal,
                &req.request_id,
                &req,
                || async {
                    let (id, opportunity) = trigger_step_ids(&req.trigger_id, &req.opportunity_id)?;
                    let t = self
                        .store
                        .close_trigger(&id, opportunity.as_deref())
                        .await?;
                    Ok::<_, HealthError>(pb::CloseTriggerResponse {
                        trigger: Some(self.one_named(trigger_to_pb(t)).await?),
                    })
                },
            )
            .await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn get_revenue_metrics(
        &self,
        request: Request<pb::GetRevenueMetricsRequest>,
    ) -> Reply<pb::GetRevenueMetricsResponse> {
        let req = request.get_ref();
        let tz = TimeZoneName::parse_or_utc(&req.time_zone).map_err(|e| invalid("time_zone", e))?;
        let period = match (
            req.month.is_empty(),
            req.start_date.is_empty() && req.end_date.is_empty(),
        ) {
            (false, true) => Month::parse(&req.month)
                .map_err(|e| invalid("month", e))?
                .date_range(),
            (true, false) => {
                let start = wire::date("start_date", &req.start_date).map_err(HealthError::from)?;
                let end = wire::date("end_date", &req.end_date).map_err(HealthError::from)?;
                DateRange::new(start, end).map_err(|e| invalid("end_date", e))?
            }
            (false, false) => {
                return Err(invalid(
                    "month",
                    "give either month or start_date/end_date, not both",
                )
                .into());
            }
            // No period: the current month where the caller is (SPEC §2 `time_zone`).
            (true, true) => Month::containing(tz.date_of(storage::now()))
                .map_err(|e| invalid("month", e))?
                .date_range(),
        };
        if period.days() > 3700 {
            return Err(invalid("end_date", "a period may span at most ten years").into());
        }
        let metrics = self.store.revenue_metrics(&period).await?;
        Ok(Response::new(pb::GetRevenueMetricsResponse {
            start_date: wire::date_to_pb(Some(period.start())),
            end_date: wire::date_to_pb(Some(period.end())),
            time_zone: tz.name().to_owned(),
            currencies: metrics.into_iter().map(metrics_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_cohort_revenue(
        &self,
        request: Request<pb::GetCohortRevenueRequest>,
    ) -> Reply<pb::GetCohortRevenueResponse> {
        let req = request.get_ref();
        let tz = TimeZoneName::parse_or_utc(&req.time_zone).map_err(|e| invalid("time_zone", e))?;
        let granularity: pb::CohortGranularity =
            wire::known_enum("granularity", req.granularity).map_err(HealthError::from)?;
        let grain = match granularity {
            pb::CohortGranularity::Quarter => Grain::Quarter,
            _ => Grain::Month,
        };
        let month = |field: &str, text: &str| -> Result<Option<Month>, HealthError> {
            if text.is_empty() {
                return Ok(None);
            }
            Ok(Some(Month::parse(text).map_err(|e| invalid(field, e))?))
        };
        let today = tz.date_of(storage::now());
        let end = match month("end_month", &req.end_month)? {
            Some(m) => m.first_day(),
            None => today,
        };
        let start = match month("start_month", &req.start_month)? {
            Some(m) => m.first_day(),
            // Twelve months, or four quarters, to the current one.
            None => {
                let back = match grain {
                    Grain::Month => 11,
                    Grain::Quarter => 9,
                };
                end.checked_sub_months(chrono::Months::new(back))
                    .unwrap_or(end)
            }
        };
        if end < start {
            return Err(invalid("end_month", "is before start_month").into());
        }
        let periods = grain.periods(start, end);
        if periods.len() > 120 {
            return Err(invalid("end_month", "a report spans at most 120 periods").into());
        }
        let cohorts = self.store.cohort_revenue(grain, &periods).await?;
        let money = |m: &domain::Money| Some(wire::money_to_pb(m));
        Ok(Response::new(pb::GetCohortRevenueResponse {
            granularity: match grain {
                Grain::Month => pb::CohortGranularity::Month,
                Grain::Quarter => pb::CohortGranularity::Quarter,
            } as i32,
            time_zone: tz.name().to_owned(),
            cohorts: cohorts
                .into_iter()
                .map(|c| pb::CohortRevenue {
                    cohort: c.cohort.label,
                    currency_code: c.currency.code().to_owned(),
                    periods: c
                        .periods
                        .into_iter()
                        .map(|p| pb::CohortPeriod {
                            period: p.period.label,
                            start_date: wire::date_to_pb(Some(p.period.range.start())),
                            end_date: wire::date_to_pb(Some(p.period.range.end())),
                            accounts: p.accounts,
                            mrr: money(&p.mrr),
                            average_mrr: p.average_mrr.as_ref().and_then(money),
                            opening_mrr: money(&p.opening_mrr),
                            nrr: ratio(p.nrr),
                            mrr_since_acquisition: ratio(p.mrr_since_acquisition),
                        })
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Reply<pb::ListDeliveriesResponse> {
        let req = request.get_ref();
        let status = crate::outbox::status_filter(
            wire::known_enum::<pb::DeliveryStatus>("status", req.status)
                .map_err(HealthError::from)?,
        );
        let (rows, next_page_token) = crate::outbox::outbox(self.write_gate(), self.event_log())
            .list_page(self.store.db(), status, req.page_size, &req.page_token)
            .await
            .map_err(HealthError::from)?;
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: rows
                .into_iter()
                .map(crate::outbox::delivery_to_pb)
                .collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Reply<pb::RetryDeliveryResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let reply = REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                "RetryDelivery",
                &principal,
                &req.request_id,
                &req,
                || async {
                    let event_id = wire::text("event_id", &req.event_id, wire::MAX_NAME_LEN)?;
                    let target = wire::text("target", &req.target, wire::MAX_NAME_LEN)?;
                    let delivery = crate::outbox::outbox(self.write_gate(), self.event_log())
                        .retry_parked(self.store.db(), &event_id, &target)
                        .await?;
                    tracing::info!(%principal, %event_id, %target, "parked delivery retried");
                    Ok::<_, HealthError>(pb::RetryDeliveryResponse {
                        delivery: Some(crate::outbox::delivery_to_pb(delivery)),
                    })
                },
            )
            .await?;
        Ok(Response::new(reply))
    }

    type WatchEventsStream = BoxStream<pb::WatchEventsResponse>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        let stream = storage::events::watch_response(
            self.store.events(),
            self.store.db().pool().clone(),
            request.into_inner().options,
            crate::DOMAIN,
            |event| pb::WatchEventsResponse { event: Some(event) },
        )?;
        Ok(Response::new(stream))
    }

    // Webhooks: `webhooks::rpc`, on this service's endpoints.

    async fn create_webhook_endpoint(
        &self,
        request: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Reply<pb::CreateWebhookEndpointResponse> {
        webhooks::rpc::create(&self.webhooks, request, crate::DOMAIN).await
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Reply<pb::ListWebhookEndpointsResponse> {
        webhooks::rpc::list(&self.webhooks, request, crate::DOMAIN).await
    }

    async fn disable_webhook_endpoint(
        &self,
        request: Request<pb::DisableWebhookEndpointRequest>,
    ) -> Reply<pb::DisableWebhookEndpointResponse> {
        webhooks::rpc::disable(&self.webhooks, request, crate::DOMAIN).await
    }

    async fn enable_webhook_endpoint(
        &self,
        request: Request<pb::EnableWebhookEndpointRequest>,
    ) -> Reply<pb::EnableWebhookEndpointResponse> {
        webhooks::rpc::enable(&self.webhooks, request, crate::DOMAIN).await
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<pb::DeleteWebhookEndpointRequest>,
    ) -> Reply<pb::DeleteWebhookEndpointResponse> {
        webhooks::rpc::delete(&self.webhooks, request, crate::DOMAIN).await
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Reply<pb::ListWebhookDeliveriesResponse> {
        webhooks::rpc::deliveries(&self.webhooks, request, crate::DOMAIN).await
    }

    async fn replay_webhook_events(
        &self,
        request: Request<pb::ReplayWebhookEventsRequest>,
    ) -> Reply<pb::ReplayWebhookEventsResponse> {
        webhooks::rpc::replay(&self.webhooks, request, crate::DOMAIN).await
    }
}
