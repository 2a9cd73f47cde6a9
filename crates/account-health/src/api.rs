//! The tonic face of the health service: each RPC is one call into
//! [`crate::service`]; no rules here.

use contracts::pb::health::v1 as pb;
use contracts::pb::health::v1::account_health_service_server::AccountHealthService;
use sea_orm::DatabaseConnection;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::error::HealthError;
use crate::model::signal::batch_from_pb;
use crate::service;
use crate::store::Store;

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

    /// The same service, keeping at most `entries` `GetAccountHealth`
    /// answers in memory between writes (SQLite only; 0: none).
    pub fn with_read_cache(mut self, entries: usize) -> Self {
        self.store = self.store.with_health_reads(entries);
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

#[tonic::async_trait]
impl AccountHealthService for HealthService {
    #[tracing::instrument(skip_all)]
    async fn upsert_account(
        &self,
        request: Request<pb::UpsertAccountRequest>,
    ) -> Reply<pb::UpsertAccountResponse> {
        service::mutate(
            &self.store,
            "UpsertAccount",
            request,
            service::accounts::upsert_account,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Reply<pb::GetAccountResponse> {
        service::read(&self.store, request, service::accounts::get_account).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Reply<pb::ListAccountsResponse> {
        service::read(&self.store, request, service::accounts::list_accounts).await
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_product(
        &self,
        request: Request<pb::UpsertProductRequest>,
    ) -> Reply<pb::UpsertProductResponse> {
        service::mutate(
            &self.store,
            "UpsertProduct",
            request,
            service::accounts::upsert_product,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Reply<pb::ListProductsResponse> {
        service::read(&self.store, request, service::accounts::list_products).await
    }

    #[tracing::instrument(skip_all)]
    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Reply<pb::GetProductResponse> {
        service::read(&self.store, request, service::accounts::get_product).await
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_subscription(
        &self,
        request: Request<pb::UpsertSubscriptionRequest>,
    ) -> Reply<pb::UpsertSubscriptionResponse> {
        service::mutate(
            &self.store,
            "UpsertSubscription",
            request,
            service::subscriptions::upsert_subscription,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_subscription(
        &self,
        request: Request<pb::CancelSubscriptionRequest>,
    ) -> Reply<pb::CancelSubscriptionResponse> {
        service::mutate(
            &self.store,
            "CancelSubscription",
            request,
            service::subscriptions::cancel_subscription,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn apply_upsell(
        &self,
        request: Request<pb::ApplyUpsellRequest>,
    ) -> Reply<pb::ApplyUpsellResponse> {
        service::mutate(
            &self.store,
            "ApplyUpsell",
            request,
            service::subscriptions::apply_upsell,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Reply<pb::ListSubscriptionsResponse> {
        service::read(
            &self.store,
            request,
            service::subscriptions::list_subscriptions,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(signals = request.get_ref().signals.len()))]
    async fn record_signals(
        &self,
        request: Request<pb::RecordSignalsRequest>,
    ) -> Reply<pb::RecordSignalsResponse> {
        service::mutate(
            &self.store,
            "RecordSignals",
            request,
            service::signals::record_signals,
        )
        .await
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
        service::mutate(
            &self.store,
            "UpsertScorecard",
            request,
            service::scores::upsert_scorecard,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Reply<pb::GetScorecardResponse> {
        service::read(&self.store, request, service::scores::get_scorecard).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_scorecards(
        &self,
        request: Request<pb::ListScorecardsRequest>,
    ) -> Reply<pb::ListScorecardsResponse> {
        service::read(&self.store, request, service::scores::list_scorecards).await
    }

    #[tracing::instrument(skip_all)]
    async fn get_account_health(
        &self,
        request: Request<pb::GetAccountHealthRequest>,
    ) -> Reply<pb::GetAccountHealthResponse> {
        service::read(&self.store, request, service::scores::get_account_health).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_account_health(
        &self,
        request: Request<pb::ListAccountHealthRequest>,
    ) -> Reply<pb::ListAccountHealthResponse> {
        service::read(&self.store, request, service::scores::list_account_health).await
    }

    #[tracing::instrument(skip_all)]
    async fn get_health_history(
        &self,
        request: Request<pb::GetHealthHistoryRequest>,
    ) -> Reply<pb::GetHealthHistoryResponse> {
        service::read(&self.store, request, service::scores::get_health_history).await
    }

    #[tracing::instrument(skip_all)]
    async fn override_health(
        &self,
        request: Request<pb::OverrideHealthRequest>,
    ) -> Reply<pb::OverrideHealthResponse> {
        service::mutate(
            &self.store,
            "OverrideHealth",
            request,
            service::scores::override_health,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_triggers(
        &self,
        request: Request<pb::ListTriggersRequest>,
    ) -> Reply<pb::ListTriggersResponse> {
        service::read(&self.store, request, service::triggers::list_triggers).await
    }

    #[tracing::instrument(skip_all)]
    async fn get_trigger(
        &self,
        request: Request<pb::GetTriggerRequest>,
    ) -> Reply<pb::GetTriggerResponse> {
        service::read(&self.store, request, service::triggers::get_trigger).await
    }

    #[tracing::instrument(skip_all)]
    async fn convert_trigger(
        &self,
        request: Request<pb::ConvertTriggerRequest>,
    ) -> Reply<pb::ConvertTriggerResponse> {
        service::mutate(
            &self.store,
            "ConvertTrigger",
            request,
            service::triggers::convert_trigger,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn close_trigger(
        &self,
        request: Request<pb::CloseTriggerRequest>,
    ) -> Reply<pb::CloseTriggerResponse> {
        service::mutate(
            &self.store,
            "CloseTrigger",
            request,
            service::triggers::close_trigger,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_revenue_metrics(
        &self,
        request: Request<pb::GetRevenueMetricsRequest>,
    ) -> Reply<pb::GetRevenueMetricsResponse> {
        service::read(&self.store, request, service::revenue::get_revenue_metrics).await
    }

    #[tracing::instrument(skip_all)]
    async fn get_cohort_revenue(
        &self,
        request: Request<pb::GetCohortRevenueRequest>,
    ) -> Reply<pb::GetCohortRevenueResponse> {
        service::read(&self.store, request, service::revenue::get_cohort_revenue).await
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Reply<pb::ListDeliveriesResponse> {
        service::read(&self.store, request, service::deliveries::list_deliveries).await
    }

    #[tracing::instrument(skip_all)]
    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Reply<pb::RetryDeliveryResponse> {
        service::mutate(
            &self.store,
            "RetryDelivery",
            request,
            service::deliveries::retry_delivery,
        )
        .await
    }

    // WatchEvents: every event of the service, to every reader.
    storage::events::watch_events_rpc!(store, crate::DOMAIN);

    // The seven webhook RPCs, each one call into `webhooks::rpc` on this
    // service's endpoints.
    webhooks::rpc::webhook_rpcs!(webhooks, crate::DOMAIN);
}
