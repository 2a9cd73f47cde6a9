//! The tonic face of the pipeline service: decode, call, encode.

use contracts::pb::common::v1::Audit;
use contracts::pb::pipeline::v1 as pb;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_server::OpportunityPipelineService;
use contracts::{ApiError, principal_of, wire};
use domain::{Currency, Money, OpportunityId};
use sea_orm::DatabaseConnection;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::entity::opportunity;
use crate::error::PipelineError;
use crate::model::{NewOpportunity, Qualification, Stakeholder};
use crate::store::Store;

#[derive(Clone)]
pub struct PipelineService {
    store: Store,
}

impl PipelineService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            store: Store::new(db),
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn unimplemented<T>(method: &'static str) -> Reply<T> {
    Err(PipelineError::Unimplemented(method).into())
}

fn enum_value(name: &str, parse: impl Fn(&str) -> Option<i32>) -> i32 {
    parse(name).unwrap_or_default()
}

fn corrupt(what: &str, id: &str) -> PipelineError {
    PipelineError::Corrupt(format!("opportunity {id}: unreadable {what}"))
}

fn opportunity_to_pb(m: opportunity::Model) -> Result<pb::Opportunity, PipelineError> {
    let currency = Currency::parse(&m.currency).map_err(|_| corrupt("currency", &m.id))?;
    let motion = m
        .motion
        .parse::<domain::Motion>()
        .map_err(|_| corrupt("motion", &m.id))?;
    let stage = m
        .stage
        .parse::<domain::Stage>()
        .map_err(|_| corrupt("stage", &m.id))?;
    let stakeholders: Vec<Stakeholder> =
        serde_json::from_str(&m.stakeholders).map_err(|_| corrupt("stakeholders", &m.id))?;
    let q: Qualification =
        serde_json::from_str(&m.qualification).map_err(|_| corrupt("qualification", &m.id))?;
    let rating = |name: &str| enum_value(name, |n| pb::Rating::from_str_name(n).map(|r| r as i32));
    Ok(pb::Opportunity {
        etag: m.version.to_string(),
        opportunity_id: m.id,
        account_id: m.account_id,
        product_id: m.product_id,
        source_product_id: m.source_product_id.unwrap_or_default(),
        motion: wire::motion_to_pb(motion) as i32,
        amount: Some(wire::money_to_pb(&Money::from_minor(
            currency,
            m.amount_minor,
        ))),
        stage: wire::stage_to_pb(stage) as i32,
        probability: m.probability,
        probability_overridden: m.probability_overridden,
        forecast_category: enum_value(&m.forecast_category, |n| {
            pb::ForecastCategory::from_str_name(n).map(|c| c as i32)
        }),
        close_date: wire::date_to_pb(m.close_date),
        source: Some(pb::Source {
            kind: enum_value(&m.source_kind, |n| {
                pb::SourceKind::from_str_name(n).map(|k| k as i32)
            }),
            trigger_id: m.source_trigger_id.unwrap_or_default(),
        }),
        owner: m.owner.unwrap_or_default(),
        owner_team: m.owner_team.unwrap_or_default(),
        originator: m.originator.unwrap_or_default(),
        stakeholders: stakeholders
            .into_iter()
            .map(|s| pb::Stakeholder {
                name: s.name,
                title: s.title,
                role: s.role,
                budget_holder: s.budget_holder,
                decision_maker: s.decision_maker,
                email: s.email,
            })
            .collect(),
        discovery_notes: m.discovery_notes.unwrap_or_default(),
        qualification: Some(pb::Qualification {
            need_confirmed: q.need_confirmed,
            budget_status: enum_value(&q.budget_status, |n| {
                pb::BudgetStatus::from_str_name(n).map(|b| b as i32)
            }),
            decision_process_known: q.decision_process_known,
            relationship_strength: q.relationship_strength,
            fit: rating(&q.fit),
            applicability: rating(&q.applicability),
            capability: rating(&q.capability),
            competitive_position: rating(&q.competitive_position),
        }),
        health_snapshot: None,
        lost_reason: m.lost_reason.unwrap_or_default(),
        name: m.name,
        deliveries: Vec::new(),
        audit: Some(Audit {
            create_time: Some(wire::timestamp(m.created_at)),
            created_by: m.created_by,
            update_time: Some(wire::timestamp(m.updated_at)),
            updated_by: m.updated_by,
        }),
    })
}

#[tonic::async_trait]
impl OpportunityPipelineService for PipelineService {
    #[tracing::instrument(skip_all)]
    async fn create_opportunity(
        &self,
        request: Request<pb::CreateOpportunityRequest>,
    ) -> Reply<pb::CreateOpportunityResponse> {
        let principal = principal_of(&request);
        let new = NewOpportunity::from_request(request.get_ref()).map_err(PipelineError::from)?;
        let model = self.store.create_opportunity(&new, &principal).await?;
        tracing::info!(opportunity_id = %model.id, "opportunity created");
        Ok(Response::new(pb::CreateOpportunityResponse {
            opportunity: Some(opportunity_to_pb(model)?),
        }))
    }

    async fn create_opportunity_from_trigger(
        &self,
        _: Request<pb::CreateOpportunityFromTriggerRequest>,
    ) -> Reply<pb::CreateOpportunityFromTriggerResponse> {
        unimplemented("CreateOpportunityFromTrigger")
    }

    #[tracing::instrument(skip_all)]
    async fn get_opportunity(
        &self,
        request: Request<pb::GetOpportunityRequest>,
    ) -> Reply<pb::GetOpportunityResponse> {
        let raw = &request.get_ref().opportunity_id;
        let id = OpportunityId::parse(raw)
            .map_err(|e| PipelineError::from(ApiError::invalid("opportunity_id", e)))?;
        let model = self
            .store
            .opportunity(&id)
            .await?
            .ok_or_else(|| PipelineError::OpportunityNotFound(id.to_string()))?;
        Ok(Response::new(pb::GetOpportunityResponse {
            opportunity: Some(opportunity_to_pb(model)?),
        }))
    }

    async fn list_opportunities(
        &self,
        _: Request<pb::ListOpportunitiesRequest>,
    ) -> Reply<pb::ListOpportunitiesResponse> {
        unimplemented("ListOpportunities")
    }

    async fn update_opportunity(
        &self,
        _: Request<pb::UpdateOpportunityRequest>,
    ) -> Reply<pb::UpdateOpportunityResponse> {
        unimplemented("UpdateOpportunity")
    }

    async fn advance_stage(
        &self,
        _: Request<pb::AdvanceStageRequest>,
    ) -> Reply<pb::AdvanceStageResponse> {
        unimplemented("AdvanceStage")
    }

    async fn close_opportunity(
        &self,
        _: Request<pb::CloseOpportunityRequest>,
    ) -> Reply<pb::CloseOpportunityResponse> {
        unimplemented("CloseOpportunity")
    }

    async fn get_opportunity_history(
        &self,
        _: Request<pb::GetOpportunityHistoryRequest>,
    ) -> Reply<pb::GetOpportunityHistoryResponse> {
        unimplemented("GetOpportunityHistory")
    }

    async fn score_qualification(
        &self,
        _: Request<pb::ScoreQualificationRequest>,
    ) -> Reply<pb::ScoreQualificationResponse> {
        unimplemented("ScoreQualification")
    }

    async fn route_opportunity(
        &self,
        _: Request<pb::RouteOpportunityRequest>,
    ) -> Reply<pb::RouteOpportunityResponse> {
        unimplemented("RouteOpportunity")
    }

    async fn request_handoff(
        &self,
        _: Request<pb::RequestHandoffRequest>,
    ) -> Reply<pb::RequestHandoffResponse> {
        unimplemented("RequestHandoff")
    }

    async fn accept_handoff(
        &self,
        _: Request<pb::AcceptHandoffRequest>,
    ) -> Reply<pb::AcceptHandoffResponse> {
        unimplemented("AcceptHandoff")
    }

    async fn reject_handoff(
        &self,
        _: Request<pb::RejectHandoffRequest>,
    ) -> Reply<pb::RejectHandoffResponse> {
        unimplemented("RejectHandoff")
    }

    async fn list_handoffs(
        &self,
        _: Request<pb::ListHandoffsRequest>,
    ) -> Reply<pb::ListHandoffsResponse> {
        unimplemented("ListHandoffs")
    }

    async fn upsert_wallet_estimate(
        &self,
        _: Request<pb::UpsertWalletEstimateRequest>,
    ) -> Reply<pb::UpsertWalletEstimateResponse> {
        unimplemented("UpsertWalletEstimate")
    }

    async fn get_whitespace(
        &self,
        _: Request<pb::GetWhitespaceRequest>,
    ) -> Reply<pb::GetWhitespaceResponse> {
        unimplemented("GetWhitespace")
    }

    async fn get_pipeline_forecast(
        &self,
        _: Request<pb::GetPipelineForecastRequest>,
    ) -> Reply<pb::GetPipelineForecastResponse> {
        unimplemented("GetPipelineForecast")
    }

    type WatchEventsStream = BoxStream<pb::WatchEventsResponse>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        let stream = storage::events::watch_response(
            self.store.events(),
            self.store.db().clone(),
            request.into_inner().options,
            crate::DOMAIN,
            |event| pb::WatchEventsResponse { event: Some(event) },
        )?;
        Ok(Response::new(stream))
    }
}
