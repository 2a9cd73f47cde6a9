//! The tonic face of the pipeline service: each RPC runs the matching
//! operation of [`crate::service`] (mutations through
//! `PipelineService::mutate`, which honours `request_id`) and wraps the
//! answer.

use std::sync::Arc;

use contracts::Idempotent;
use contracts::pb::pipeline::v1 as pb;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_server::OpportunityPipelineService;
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use crate::error::PipelineError;
use crate::health::HealthGateway;
use crate::model::config::PipelineConfig;
use crate::people::{NoPeopleDirectory, PeopleDirectory};
use crate::store::Store;

#[derive(Clone)]
pub struct PipelineService {
    pub(crate) store: Store,
    pub(crate) health: Arc<dyn HealthGateway>,
    pub(crate) config: Arc<PipelineConfig>,
    pub(crate) people: Arc<dyn PeopleDirectory>,
    pub(crate) webhooks: webhooks::Webhooks,
}

impl PipelineService {
    /// The store's event log, for the outbox dispatcher to read and wake on.
    pub fn event_log(&self) -> storage::events::EventLog {
        self.store.events().clone()
    }

    /// The store's write gate, for the outbox dispatcher to share.
    pub fn write_gate(&self) -> storage::WriteGate {
        self.store.writer().clone()
    }

    pub fn new(
        db: DatabaseConnection,
        health: Arc<dyn HealthGateway>,
        config: PipelineConfig,
    ) -> Self {
        let store = Store::new(db);
        let webhooks = webhooks::Webhooks::new(
            store.db().clone(),
            store.writer().clone(),
            store.events().clone(),
            webhooks::Tables::PIPELINE,
        );
        Self {
            store,
            health,
            config: Arc::new(config),
            people: Arc::new(NoPeopleDirectory),
            webhooks,
        }
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

    /// The same service, asking `people` who is who (the credit service's
    /// directory): a handoff is accepted by the calling AE or names a known one.
    pub fn with_people(mut self, people: Arc<dyn PeopleDirectory>) -> Self {
        self.people = people;
        self
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Where this service keeps its `request_id` records.
const REQUESTS: storage::idempotency::Requests =
    storage::idempotency::Requests::new("pipeline_requests");

impl PipelineService {
    /// Runs a mutation RPC at most once per caller and `request_id`, in one
    /// transaction (`storage::idempotency`): a retry with the same id and
    /// request gets the first response; the same id with another request is
    /// INVALID_ARGUMENT. `op` gets the service, the caller's principal and
    /// the request.
    async fn mutate<Req, Resp>(
        &self,
        method: &'static str,
        request: Request<Req>,
        op: impl AsyncFnOnce(&Self, String, &Req) -> Result<Resp, PipelineError>,
    ) -> Reply<Resp>
    where
        Req: Idempotent,
        Resp: prost::Message + Default,
    {
        REQUESTS
            .call(
                self.store.db(),
                self.store.writer(),
                method,
                request,
                async |principal, req| op(self, principal, req).await,
            )
            .await
    }
}

#[tonic::async_trait]
impl OpportunityPipelineService for PipelineService {
    #[tracing::instrument(skip_all)]
    async fn create_opportunity(
        &self,
        request: Request<pb::CreateOpportunityRequest>,
    ) -> Reply<pb::CreateOpportunityResponse> {
        crate::service::import_only(&request, request.get_ref().occur_time.is_some())?;
        self.mutate("CreateOpportunity", request, Self::create_opportunity_once)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn create_opportunity_from_trigger(
        &self,
        request: Request<pb::CreateOpportunityFromTriggerRequest>,
    ) -> Reply<pb::CreateOpportunityFromTriggerResponse> {
        self.mutate(
            "CreateOpportunityFromTrigger",
            request,
            Self::create_opportunity_from_trigger_once,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_opportunity(
        &self,
        request: Request<pb::GetOpportunityRequest>,
    ) -> Reply<pb::GetOpportunityResponse> {
        let mut reply = self.get_opportunity_op(request.get_ref()).await?;
        // What the close-won outbox has done for this deal, target by target.
        if let Some(opportunity) = reply.opportunity.as_mut() {
            let rows =
                crate::outbox::outbox(self.store.writer().clone(), self.store.events().clone())
                    .list(self.store.db(), Some(&opportunity.opportunity_id), None, 16)
                    .await
                    .map_err(crate::error::PipelineError::from)?;
            opportunity.deliveries = crate::outbox::deliveries_to_pb(rows);
        }
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn list_opportunities(
        &self,
        request: Request<pb::ListOpportunitiesRequest>,
    ) -> Reply<pb::ListOpportunitiesResponse> {
        Ok(Response::new(
            self.list_opportunities_op(request.get_ref()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn update_opportunity(
        &self,
        request: Request<pb::UpdateOpportunityRequest>,
    ) -> Reply<pb::UpdateOpportunityResponse> {
        self.mutate("UpdateOpportunity", request, Self::update_opportunity_once)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn advance_stage(
        &self,
        request: Request<pb::AdvanceStageRequest>,
    ) -> Reply<pb::AdvanceStageResponse> {
        crate::service::import_only(&request, request.get_ref().occur_time.is_some())?;
        if request.get_ref().reopen {
            contracts::principal::require_admin(&request, "reopening a closed opportunity")
                .map_err(crate::error::PipelineError::from)?;
        }
        self.mutate("AdvanceStage", request, Self::advance_stage_once)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn close_opportunity(
        &self,
        request: Request<pb::CloseOpportunityRequest>,
    ) -> Reply<pb::CloseOpportunityResponse> {
        self.mutate("CloseOpportunity", request, Self::close_opportunity_once)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_opportunity_history(
        &self,
        request: Request<pb::GetOpportunityHistoryRequest>,
    ) -> Reply<pb::GetOpportunityHistoryResponse> {
        Ok(Response::new(
            self.get_opportunity_history_op(request.get_ref()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn score_qualification(
        &self,
        request: Request<pb::ScoreQualificationRequest>,
    ) -> Reply<pb::ScoreQualificationResponse> {
        Ok(Response::new(
            self.score_qualification_op(request.get_ref()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn route_opportunity(
        &self,
        request: Request<pb::RouteOpportunityRequest>,
    ) -> Reply<pb::RouteOpportunityResponse> {
        Ok(Response::new(
            self.route_opportunity_op(request.get_ref()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn request_handoff(
        &self,
        request: Request<pb::RequestHandoffRequest>,
    ) -> Reply<pb::RequestHandoffResponse> {
        crate::service::import_only(&request, request.get_ref().occur_time.is_some())?;
        self.mutate("RequestHandoff", request, Self::request_handoff_once)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn accept_handoff(
        &self,
        request: Request<pb::AcceptHandoffRequest>,
    ) -> Reply<pb::AcceptHandoffResponse> {
        // The caller as a whole: who may accept is the AE named or the calling one.
        let caller = contracts::caller_of(&request);
        self.mutate("AcceptHandoff", request, async |service, _, req| {
            service.accept_handoff_once(caller, req).await
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn reject_handoff(
        &self,
        request: Request<pb::RejectHandoffRequest>,
    ) -> Reply<pb::RejectHandoffResponse> {
        self.mutate("RejectHandoff", request, Self::reject_handoff_once)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_handoffs(
        &self,
        request: Request<pb::ListHandoffsRequest>,
    ) -> Reply<pb::ListHandoffsResponse> {
        Ok(Response::new(
            self.list_handoffs_op(request.get_ref()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_wallet_estimate(
        &self,
        request: Request<pb::UpsertWalletEstimateRequest>,
    ) -> Reply<pb::UpsertWalletEstimateResponse> {
        self.mutate(
            "UpsertWalletEstimate",
            request,
            Self::upsert_wallet_estimate_once,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_whitespace(
        &self,
        request: Request<pb::GetWhitespaceRequest>,
    ) -> Reply<pb::GetWhitespaceResponse> {
        Ok(Response::new(
            self.get_whitespace_op(request.get_ref()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn get_pipeline_forecast(
        &self,
        request: Request<pb::GetPipelineForecastRequest>,
    ) -> Reply<pb::GetPipelineForecastResponse> {
        Ok(Response::new(
            self.get_pipeline_forecast_op(request.get_ref()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn get_team_performance(
        &self,
        request: Request<pb::GetTeamPerformanceRequest>,
    ) -> Reply<pb::GetTeamPerformanceResponse> {
        let caller = contracts::principal::caller_of(&request);
        Ok(Response::new(
            self.get_team_performance_op(&caller, request.get_ref())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn get_wallet_share_history(
        &self,
        request: Request<pb::GetWalletShareHistoryRequest>,
    ) -> Reply<pb::GetWalletShareHistoryResponse> {
        Ok(Response::new(
            self.get_wallet_share_history_op(request.get_ref()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Reply<pb::ListDeliveriesResponse> {
        Ok(Response::new(
            self.list_deliveries_op(request.get_ref()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Reply<pb::RetryDeliveryResponse> {
        self.mutate("RetryDelivery", request, Self::retry_delivery_once)
            .await
    }

    // WatchEvents: every event of the service, to every reader.
    storage::events::watch_events_rpc!(store, crate::DOMAIN);

    // The seven webhook RPCs, each one call into `webhooks::rpc` on this
    // service's endpoints.
    webhooks::rpc::webhook_rpcs!(webhooks, crate::DOMAIN);
}
