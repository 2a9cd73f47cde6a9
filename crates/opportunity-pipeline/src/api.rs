//! The tonic face of the pipeline service: take the principal and the
//! request, run the matching operation of `service` (mutations through
//! `PipelineService::once`, which honours `request_id`), wrap the answer.

use std::sync::Arc;

use contracts::pb::pipeline::v1 as pb;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_server::OpportunityPipelineService;
use contracts::principal_of;
use sea_orm::DatabaseConnection;
use tonic::codegen::BoxStream;
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
    /// Runs a mutation at most once per `request_id` (AIP-155): a retry with
    /// the same id and request gets the first response; the same id with
    /// another request is INVALID_ARGUMENT; a retry while the first call
    /// still runs is ABORTED. Without a `request_id` the call just runs.
    async fn once<Req, Resp, F, Fut>(
        &self,
        method: &'static str,
        principal: &str,
        request_id: &str,
        request: &Req,
        run: F,
    ) -> Result<Resp, PipelineError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Resp, PipelineError>>,
    {
        REQUESTS
            .once(
                self.store.db(),
                self.store.writer(),
                method,
                principal,
                request_id,
                request,
                run,
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
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once(
                "CreateOpportunity",
                &principal,
                &req.request_id,
                &req,
                || self.create_opportunity_once(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn create_opportunity_from_trigger(
        &self,
        request: Request<pb::CreateOpportunityFromTriggerRequest>,
    ) -> Reply<pb::CreateOpportunityFromTriggerResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once(
                "CreateOpportunityFromTrigger",
                &principal,
                &req.request_id,
                &req,
                || self.create_opportunity_from_trigger_once(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(response))
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
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once(
                "UpdateOpportunity",
                &principal,
                &req.request_id,
                &req,
                || self.update_opportunity_once(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(response))
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
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once("AdvanceStage", &principal, &req.request_id, &req, || {
                self.advance_stage_once(principal.clone(), &req)
            })
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn close_opportunity(
        &self,
        request: Request<pb::CloseOpportunityRequest>,
    ) -> Reply<pb::CloseOpportunityResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once(
                "CloseOpportunity",
                &principal,
                &req.request_id,
                &req,
                || self.close_opportunity_once(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(response))
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
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once("RequestHandoff", &principal, &req.request_id, &req, || {
                self.request_handoff_once(principal.clone(), &req)
            })
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn accept_handoff(
        &self,
        request: Request<pb::AcceptHandoffRequest>,
    ) -> Reply<pb::AcceptHandoffResponse> {
        let caller = contracts::caller_of(&request);
        let req = request.into_inner();
        let response = self
            .once("AcceptHandoff", &caller.name, &req.request_id, &req, || {
                self.accept_handoff_once(caller.clone(), &req)
            })
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn reject_handoff(
        &self,
        request: Request<pb::RejectHandoffRequest>,
    ) -> Reply<pb::RejectHandoffResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once("RejectHandoff", &principal, &req.request_id, &req, || {
                self.reject_handoff_once(principal.clone(), &req)
            })
            .await?;
        Ok(Response::new(response))
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
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once(
                "UpsertWalletEstimate",
                &principal,
                &req.request_id,
                &req,
                || self.upsert_wallet_estimate_once(principal.clone(), &req),
            )
            .await?;
        Ok(Response::new(response))
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
        let req = request.get_ref();
        let status = crate::outbox::status_filter(
            contracts::wire::known_enum::<pb::DeliveryStatus>("status", req.status)
                .map_err(PipelineError::from)?,
        );
        let (rows, next_page_token) =
            crate::outbox::outbox(self.store.writer().clone(), self.store.events().clone())
                .list_page(self.store.db(), status, req.page_size, &req.page_token)
                .await
                .map_err(PipelineError::from)?;
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
        let response = self
            .once(
                "RetryDelivery",
                &principal,
                &req.request_id,
                &req,
                || async {
                    use contracts::wire;
                    let event_id = wire::text("event_id", &req.event_id, wire::MAX_NAME_LEN)
                        .map_err(PipelineError::from)?;
                    let target = wire::text("target", &req.target, wire::MAX_NAME_LEN)
                        .map_err(PipelineError::from)?;
                    let delivery = crate::outbox::outbox(
                        self.store.writer().clone(),
                        self.store.events().clone(),
                    )
                    .retry_parked(self.store.db(), &event_id, &target)
                    .await
                    .map_err(PipelineError::from)?;
                    tracing::info!(%principal, %event_id, %target, "parked delivery retried");
                    Ok(pb::RetryDeliveryResponse {
                        delivery: Some(crate::outbox::delivery_to_pb(delivery)),
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
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
