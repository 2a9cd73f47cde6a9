//! The tonic face of the pipeline service: decode, call the rules and the
//! store, encode. The health service is asked through [`HealthGateway`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use contracts::pb::pipeline::v1 as pb;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_server::OpportunityPipelineService;
use contracts::{ApiError, FieldViolation, page, principal_of, wire};
use domain::{
    AccountId, BenchmarkVerdict, Currency, Decimal, HandoffId, Money, OpportunityId, ProductId,
    Stage, TriggerId,
};
use sea_orm::{DatabaseConnection, Set};
use storage::events::NewEvent;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::convert::{
    HandoffSnapshot, UsageLine, WhitespaceLine, handoff_to_pb, history_to_pb, opportunity_to_pb,
    parse_row, wallet_to_pb, whitespace_line_to_pb,
};
use crate::entity::{handoff, opportunity, wallet_estimate};
use crate::error::PipelineError;
use crate::health::{HealthError, HealthGateway, owned_products};
use crate::model::config::PipelineConfig;
use crate::model::forecast::{Bucket, ForecastDeal, forecast};
use crate::model::gates::{GateFacts, check_gates};
use crate::model::handoff::{HandoffStatus, due_at, handoff_package};
use crate::model::priority::{expected_value, priority_score};
use crate::model::qualification::{
    QualificationPriority, QualificationRatings, score_qualification,
};
use crate::model::routing::{Route, RoutingFacts, route_opportunity};
use crate::model::whitespace::{ServedBy, WalletLine, ratio_text, summarize_wallet, whitespace};
use crate::model::{
    HealthSnapshot, NewOpportunity, Source, UpdateRequest, etag, rating, rating_from_name,
};
use crate::store::{
    Claim, HandoffFilter, HistoryNote, OpportunityFilter, OpportunityWrite, Store, to_json,
};

#[derive(Clone)]
pub struct PipelineService {
    store: Store,
    health: Arc<dyn HealthGateway>,
    config: Arc<PipelineConfig>,
}

impl PipelineService {
    pub fn new(
        db: DatabaseConnection,
        health: Arc<dyn HealthGateway>,
        config: PipelineConfig,
    ) -> Self {
        Self {
            store: Store::new(db),
            health,
            config: Arc::new(config),
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// After this long a claimed `request_id` whose call never finished (its
/// process died) may be run again.
const STALE_REQUEST: Duration = Duration::seconds(60);

/// FNV-1a, 64 bits: a stable fingerprint of a request's bytes (the std
/// hasher may change between Rust releases; stored fingerprints must not).
fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}:{}", bytes.len())
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect()
}

fn invalid(field: &str, why: impl std::fmt::Display) -> PipelineError {
    PipelineError::from(ApiError::invalid(field, why))
}

fn parse_id<T>(
    field: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, domain::IdError>,
) -> Result<T, PipelineError> {
    parse(value).map_err(|e| invalid(field, e))
}

fn unavailable(err: HealthError) -> PipelineError {
    match err {
        HealthError::Unavailable(m) | HealthError::NotFound(m) => {
            PipelineError::HealthUnavailable(m)
        }
    }
}

fn opt_text(field: &str, value: &str, max: usize) -> Result<Option<String>, PipelineError> {
    Ok(wire::optional_text(field, value, max)?)
}

fn event(event_type: &'static str, subject: &str, data: serde_json::Value) -> NewEvent {
    NewEvent {
        event_type,
        subject_id: subject.to_owned(),
        data,
    }
}

fn note(field: &'static str, previous: Option<String>, new: Option<String>) -> HistoryNote {
    HistoryNote {
        field,
        previous,
        new,
        reason: None,
    }
}

/// A key that orders list results; pages resume strictly after the last key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey {
    group: String,
    value: Decimal,
    id: String,
}

impl SortKey {
    fn token_text(&self) -> String {
        format!("{}\u{1}{}\u{1}{}", self.group, self.value, self.id)
    }

    fn from_token_text(text: &str) -> Option<SortKey> {
        let mut parts = text.splitn(3, '\u{1}');
        let group = parts.next()?.to_owned();
        let value = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_owned();
        Some(SortKey { group, value, id })
    }
}

impl PipelineService {
    fn now(&self) -> DateTime<Utc> {
        storage::now()
    }

    /// Runs a mutation at most once per `request_id` (AIP-155): a retry with
    /// the same id and request gets the first response; the same id with
    /// another request is INVALID_ARGUMENT; a retry while the first call
    /// still runs is ABORTED. Without a `request_id` the call just runs.
    async fn once<Req, Resp, F, Fut>(
        &self,
        method: &'static str,
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
        if request_id.is_empty() {
            return run().await;
        }
        wire::text("request_id", request_id, wire::MAX_NAME_LEN)?;
        let key = format!("{method}:{request_id}");
        let print = fingerprint(&request.encode_to_vec());
        let reused = || {
            invalid(
                "request_id",
                format!("{request_id:?} was already used for a different {method} request"),
            )
        };
        let now = self.now();
        match self.store.claim_request(&key, &print, now).await? {
            Claim::Claimed => {}
            Claim::Done {
                fingerprint,
                response,
            } => {
                if fingerprint != print {
                    return Err(reused());
                }
                let bytes = from_hex(&response)
                    .ok_or_else(|| PipelineError::Corrupt(format!("stored response of {key}")))?;
                return Resp::decode(bytes.as_slice())
                    .map_err(|e| PipelineError::Corrupt(format!("stored response of {key}: {e}")));
            }
            Claim::InFlight {
                fingerprint,
                created_at,
            } => {
                if fingerprint != print {
                    return Err(reused());
                }
                let stale = now - created_at > STALE_REQUEST;
                if !stale || !self.store.reclaim_request(&key, created_at, now).await? {
                    return Err(PipelineError::InProgress(format!(
                        "a {method} call with request_id {request_id:?} is still running; retry shortly"
                    )));
                }
            }
        }
        match run().await {
            Ok(response) => {
                // The change is committed: a failure to record the response
                // must not turn success into an error (the claim then goes
                // stale and a later retry runs again).
                if let Err(err) = self
                    .store
                    .finish_request(&key, &to_hex(&response.encode_to_vec()))
                    .await
                {
                    tracing::warn!(%err, key, "could not record the response of an idempotent call");
                }
                Ok(response)
            }
            Err(err) => {
                if let Err(release) = self.store.release_request(&key).await {
                    tracing::warn!(err = %release, key, "could not release an idempotency claim");
                }
                Err(err)
            }
        }
    }

    fn to_pb(&self, m: opportunity::Model) -> Result<pb::Opportunity, PipelineError> {
        opportunity_to_pb(m, &self.config, self.now())
    }

    async fn load(&self, field: &str, raw: &str) -> Result<opportunity::Model, PipelineError> {
        let id = parse_id(field, raw, OpportunityId::parse)?;
        self.store
            .opportunity(&id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("opportunity", id.to_string()))
    }

    fn check_etag(m: &opportunity::Model, expected: i64) -> Result<(), PipelineError> {
        if m.version != expected {
            return Err(PipelineError::EtagMismatch(format!(
                "etag {expected} is stale: opportunity {} is now at etag {}; read it again and retry",
                m.id, m.version
            )));
        }
        Ok(())
    }

    fn ensure_open(m: &opportunity::Model, stage: Stage) -> Result<(), PipelineError> {
        if stage.is_closed() {
            return Err(PipelineError::precondition(
                "OPPORTUNITY_CLOSED",
                &m.id,
                format!(
                    "opportunity {} is {stage}; an admin must reopen it first",
                    m.id
                ),
            ));
        }
        Ok(())
    }

    /// A best-effort health snapshot: `None` when health cannot answer.
    async fn snapshot(
        &self,
        account_id: &str,
        source_product: Option<&str>,
    ) -> Option<HealthSnapshot> {
        match self.health.account_health(account_id).await {
            Ok(view) => Some(HealthSnapshot::capture(&view, source_product, self.now())),
            Err(err) => {
                tracing::info!(%err, "no health snapshot");
                None
            }
        }
    }
}

fn ratings_request(req: &pb::ScoreQualificationRequest) -> Result<QualificationRatings, ApiError> {
    let mut violations = Vec::new();
    let mut get = |field: &str, value: i32| match rating(field, value) {
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            violations.push(FieldViolation::new(
                field,
                "is required: HIGH, MEDIUM or LOW",
            ));
            None
        }
        Err(ApiError::InvalidArgument { violations: v }) => {
            violations.extend(v);
            None
        }
        Err(_) => None,
    };
    let fit = get("fit", req.fit);
    let applicability = get("applicability", req.applicability);
    let capability = get("capability", req.capability);
    let competitive_position = get("competitive_position", req.competitive_position);
    match (fit, applicability, capability, competitive_position) {
        (Some(fit), Some(applicability), Some(capability), Some(competitive_position)) => {
            Ok(QualificationRatings {
                fit,
                applicability,
                capability,
                competitive_position,
            })
        }
        _ => Err(ApiError::InvalidArgument { violations }),
    }
}

fn closed_won_handoff(h: Option<&handoff::Model>) -> serde_json::Value {
    match h {
        None => serde_json::Value::Null,
        Some(h) => serde_json::json!({
            "handoff_id": h.id,
            "requested_by": h.requested_by,
            "accepted_by": h.accepted_owner,
            "accepted_team": h.accepted_team,
            "accept_time": h.resolved_at.map(|t| t.to_rfc3339()),
        }),
    }
}

fn bucket_pb(key: String, b: &Bucket) -> pb::GroupForecast {
    pb::GroupForecast {
        key,
        count: b.count,
        amount: Some(wire::money_to_pb(&b.amount)),
        weighted_amount: Some(wire::money_to_pb(&b.weighted)),
    }
}

#[tonic::async_trait]
impl OpportunityPipelineService for PipelineService {
    #[tracing::instrument(skip_all)]
    async fn create_opportunity(
        &self,
        request: Request<pb::CreateOpportunityRequest>,
    ) -> Reply<pb::CreateOpportunityResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once("CreateOpportunity", &req.request_id, &req, || {
                self.create_opportunity_once(principal, &req)
            })
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
                &req.request_id,
                &req,
                || self.create_opportunity_from_trigger_once(principal, &req),
            )
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn get_opportunity(
        &self,
        request: Request<pb::GetOpportunityRequest>,
    ) -> Reply<pb::GetOpportunityResponse> {
        let model = self
            .load("opportunity_id", &request.get_ref().opportunity_id)
            .await?;
        Ok(Response::new(pb::GetOpportunityResponse {
            opportunity: Some(self.to_pb(model)?),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_opportunities(
        &self,
        request: Request<pb::ListOpportunitiesRequest>,
    ) -> Reply<pb::ListOpportunitiesResponse> {
        let req = request.get_ref();
        let size = page::page_size("page_size", req.page_size).map_err(PipelineError::from)?;
        let mut filter = OpportunityFilter::default();
        if !req.account_id.is_empty() {
            filter.account_id =
                Some(parse_id("account_id", &req.account_id, AccountId::parse)?.to_string());
        }
        for (i, s) in req.stages.iter().enumerate() {
            if let Some(stage) =
                wire::stage(&format!("stages[{i}]"), *s).map_err(PipelineError::from)?
            {
                filter.stages.push(stage);
            }
        }
        filter.motion = wire::motion("motion", req.motion)
            .map_err(PipelineError::from)?
            .map(|m| m.as_str().to_owned());
        filter.owner = opt_text("owner", &req.owner, wire::MAX_NAME_LEN)?;
        filter.owner_team = opt_text("owner_team", &req.owner_team, wire::MAX_NAME_LEN)?;
        if !req.currency_code.is_empty() {
            filter.currency = Some(
                Currency::parse(&req.currency_code)
                    .map_err(|e| invalid("currency_code", e))?
                    .code()
                    .to_owned(),
            );
        }
        let sort: pb::OpportunitySortOrder =
            wire::known_enum("sort", req.sort).map_err(PipelineError::from)?;
        let now = self.now();
        if req.stalled_only {
            filter.stalled_before = Some(
                Stage::OPEN
                    .iter()
                    .filter_map(|s| {
                        self.config
                            .max_days(*s)
                            .map(|days| (*s, now - Duration::days(days)))
                    })
                    .collect(),
            );
        }
        let fingerprint = page::fingerprint(&[
            &req.account_id,
            &format!("{:?}", req.stages),
            &req.motion.to_string(),
            &req.owner,
            &req.owner_team,
            &req.currency_code,
            &req.sort.to_string(),
            &req.stalled_only.to_string(),
        ]);
        let after = page::decode_token("page_token", &req.page_token, fingerprint)
            .map_err(PipelineError::from)?
            .map(|t| {
                SortKey::from_token_text(&t).ok_or_else(|| {
                    invalid("page_token", "page_token is not a token this list returned")
                })
            })
            .transpose()?;
        let rows = self.store.opportunities(&filter).await?;
        let today = now.date_naive();
        let mut keyed = Vec::with_capacity(rows.len());
        for m in rows {
            let p = parse_row(&m)?;
            let strategic = m
                .strategic_value
                .as_deref()
                .and_then(|s| rating_from_name(&format!("RATING_{s}")));
            let key = match sort {
                pb::OpportunitySortOrder::Unspecified | pb::OpportunitySortOrder::CreateTime => {
                    SortKey {
                        group: String::new(),
                        value: Decimal::ZERO,
                        id: m.id.clone(),
                    }
                }
                pb::OpportunitySortOrder::CloseDate => SortKey {
                    // Deals without a close date go last.
                    group: m
                        .close_date
                        .map_or_else(|| "~".to_owned(), |d| d.to_string()),
                    value: Decimal::ZERO,
                    id: m.id.clone(),
                },
                // Highest first: the value is negated so every key sorts ascending.
                // Grouped by currency: amounts in different currencies never compare.
                pb::OpportunitySortOrder::ExpectedValue => SortKey {
                    group: m.currency.clone(),
                    value: -expected_value(p.amount, p.probability).amount(),
                    id: m.id.clone(),
                },
                pb::OpportunitySortOrder::Priority => SortKey {
                    group: m.currency.clone(),
                    value: -priority_score(p.amount, p.probability, strategic, m.close_date, today)
                        .amount(),
                    id: m.id.clone(),
                },
            };
            keyed.push((key, m));
        }
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut page_rows: Vec<(SortKey, opportunity::Model)> = keyed
            .into_iter()
            .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
            .take(usize::try_from(size + 1).unwrap_or(usize::MAX))
            .collect();
        let more = page_rows.len() as u64 > size;
        page_rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next_page_token = match (more, page_rows.last()) {
            (true, Some((k, _))) => page::encode_token(&k.token_text(), fingerprint),
            _ => String::new(),
        };
        let opportunities = page_rows
            .into_iter()
            .map(|(_, m)| opportunity_to_pb(m, &self.config, now))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListOpportunitiesResponse {
            opportunities,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_opportunity(
        &self,
        request: Request<pb::UpdateOpportunityRequest>,
    ) -> Reply<pb::UpdateOpportunityResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once("UpdateOpportunity", &req.request_id, &req, || {
                self.update_opportunity_once(principal, &req)
            })
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn advance_stage(
        &self,
        request: Request<pb::AdvanceStageRequest>,
    ) -> Reply<pb::AdvanceStageResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once("AdvanceStage", &req.request_id, &req, || {
                self.advance_stage_once(principal, &req)
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
            .once("CloseOpportunity", &req.request_id, &req, || {
                self.close_opportunity_once(principal, &req)
            })
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn get_opportunity_history(
        &self,
        request: Request<pb::GetOpportunityHistoryRequest>,
    ) -> Reply<pb::GetOpportunityHistoryResponse> {
        let req = request.get_ref();
        let size = page::page_size("page_size", req.page_size).map_err(PipelineError::from)?;
        let current = self.load("opportunity_id", &req.opportunity_id).await?;
        let fingerprint = page::fingerprint(&[&current.id]);
        let after = page::decode_token("page_token", &req.page_token, fingerprint)
            .map_err(PipelineError::from)?;
        let mut rows = self
            .store
            .history(&current.id, after.as_deref(), size + 1)
            .await?;
        let more = rows.len() as u64 > size;
        rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => page::encode_token(&last.id, fingerprint),
            _ => String::new(),
        };
        Ok(Response::new(pb::GetOpportunityHistoryResponse {
            entries: rows.into_iter().map(history_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn score_qualification(
        &self,
        request: Request<pb::ScoreQualificationRequest>,
    ) -> Reply<pb::ScoreQualificationResponse> {
        let req = request.get_ref();
        let ratings = if req.opportunity_id.is_empty() {
            ratings_request(req).map_err(PipelineError::from)?
        } else {
            let current = self.load("opportunity_id", &req.opportunity_id).await?;
            let p = parse_row(&current)?;
            p.qualification.ratings().ok_or_else(|| {
                PipelineError::precondition(
                    "QUALIFICATION_INCOMPLETE",
                    &current.id,
                    format!(
                        "opportunity {} lacks some of fit, applicability, capability and competitive position; set them with UpdateOpportunity",
                        current.id
                    ),
                )
            })?
        };
        let score = score_qualification(&ratings);
        Ok(Response::new(pb::ScoreQualificationResponse {
            priority: match score.priority {
                QualificationPriority::TopPriority => pb::QualificationPriority::TopPriority,
                QualificationPriority::Pursue => pb::QualificationPriority::Pursue,
                QualificationPriority::SlowOrPass => pb::QualificationPriority::SlowOrPass,
            } as i32,
            reasons: score.reasons,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn route_opportunity(
        &self,
        request: Request<pb::RouteOpportunityRequest>,
    ) -> Reply<pb::RouteOpportunityResponse> {
        let req = request.get_ref();
        let (amount, motion) = if req.opportunity_id.is_empty() {
            let amount = wire::money("amount", req.amount.as_ref()).map_err(PipelineError::from)?;
            let motion = wire::motion("motion", req.motion)
                .map_err(PipelineError::from)?
                .ok_or_else(|| invalid("motion", "is required without opportunity_id"))?;
            (amount, motion)
        } else {
            let current = self.load("opportunity_id", &req.opportunity_id).await?;
            let p = parse_row(&current)?;
            (p.amount, p.motion)
        };
        let decision = route_opportunity(
            &RoutingFacts {
                amount,
                motion,
                self_serve: req.self_serve,
                same_buyer: req.same_buyer,
                simple_deal: req.simple_deal,
                competitive_displacement: req.competitive_displacement,
                custom_terms: req.custom_terms,
            },
            &self.config,
        );
        Ok(Response::new(pb::RouteOpportunityResponse {
            route: match decision.route {
                Route::ProductLed => pb::Route::ProductLed,
                Route::CsmLed => pb::Route::CsmLed,
                Route::SalesLed => pb::Route::SalesLed,
            } as i32,
            reasons: decision.reasons,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn request_handoff(
        &self,
        request: Request<pb::RequestHandoffRequest>,
    ) -> Reply<pb::RequestHandoffResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once("RequestHandoff", &req.request_id, &req, || {
                self.request_handoff_once(principal, &req)
            })
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn accept_handoff(
        &self,
        request: Request<pb::AcceptHandoffRequest>,
    ) -> Reply<pb::AcceptHandoffResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once("AcceptHandoff", &req.request_id, &req, || {
                self.accept_handoff_once(principal, &req)
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
            .once("RejectHandoff", &req.request_id, &req, || {
                self.reject_handoff_once(principal, &req)
            })
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn list_handoffs(
        &self,
        request: Request<pb::ListHandoffsRequest>,
    ) -> Reply<pb::ListHandoffsResponse> {
        let req = request.get_ref();
        let size = page::page_size("page_size", req.page_size).map_err(PipelineError::from)?;
        let mut statuses = Vec::new();
        for (i, s) in req.statuses.iter().enumerate() {
            let status: pb::HandoffStatus =
                wire::known_enum(&format!("statuses[{i}]"), *s).map_err(PipelineError::from)?;
            let name = match status {
                pb::HandoffStatus::Unspecified => continue,
                pb::HandoffStatus::Requested => HandoffStatus::Requested,
                pb::HandoffStatus::Accepted => HandoffStatus::Accepted,
                pb::HandoffStatus::Rejected => HandoffStatus::Rejected,
                pb::HandoffStatus::Withdrawn => HandoffStatus::Withdrawn,
            };
            statuses.push(name.as_str().to_owned());
        }
        let opportunity_id = if req.opportunity_id.is_empty() {
            None
        } else {
            Some(parse_id("opportunity_id", &req.opportunity_id, OpportunityId::parse)?.to_string())
        };
        let fingerprint = page::fingerprint(&[
            &format!("{statuses:?}"),
            &req.overdue_only.to_string(),
            &req.opportunity_id,
        ]);
        let after = page::decode_token("page_token", &req.page_token, fingerprint)
            .map_err(PipelineError::from)?;
        let now = self.now();
        let mut rows = self
            .store
            .handoffs(&HandoffFilter {
                statuses,
                opportunity_id,
                overdue_at: req.overdue_only.then_some(now),
                after_id: after,
                limit: size + 1,
            })
            .await?;
        let more = rows.len() as u64 > size;
        rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => page::encode_token(&last.id, fingerprint),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListHandoffsResponse {
            handoffs: rows
                .into_iter()
                .map(|h| handoff_to_pb(h, now))
                .collect::<Result<_, _>>()?,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_wallet_estimate(
        &self,
        request: Request<pb::UpsertWalletEstimateRequest>,
    ) -> Reply<pb::UpsertWalletEstimateResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once("UpsertWalletEstimate", &req.request_id, &req, || {
                self.upsert_wallet_estimate_once(principal, &req)
            })
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn get_whitespace(
        &self,
        request: Request<pb::GetWhitespaceRequest>,
    ) -> Reply<pb::GetWhitespaceResponse> {
        let account_id = parse_id(
            "account_id",
            &request.get_ref().account_id,
            AccountId::parse,
        )?
        .to_string();
        let (account, portfolio, subscriptions) = tokio::join!(
            self.health.account(&account_id),
            self.health.portfolio(),
            self.health.active_subscriptions(&account_id),
        );
        let account = match account {
            Ok(a) => a,
            Err(HealthError::NotFound(_)) => {
                return Err(PipelineError::NotFound("account", account_id).into());
            }
            Err(e) => return Err(unavailable(e).into()),
        };
        let portfolio = portfolio.map_err(unavailable)?;
        let subscriptions = subscriptions.map_err(unavailable)?;
        let items = whitespace(&portfolio, &owned_products(&subscriptions), account.segment);
        let rows = self.store.wallet(&account_id).await?;
        let mut lines = Vec::with_capacity(rows.len());
        for r in &rows {
            let currency = Currency::parse(&r.currency)
                .map_err(|_| PipelineError::Corrupt(format!("wallet {}: currency", r.id)))?;
            let served_by = match pb::WalletServedBy::from_str_name(&r.served_by) {
                Some(pb::WalletServedBy::Us) => ServedBy::Us,
                Some(pb::WalletServedBy::Competitor) => ServedBy::Competitor,
                Some(pb::WalletServedBy::InHouse) => ServedBy::InHouse,
                _ => ServedBy::Unaddressed,
            };
            lines.push(WalletLine {
                product_area: r.product_area.clone(),
                annual_spend: Money::from_minor(currency, r.annual_spend_minor),
                served_by,
            });
        }
        let summaries = summarize_wallet(&lines)
            .map_err(|e| PipelineError::Corrupt(format!("wallet sum: {e}")))?;
        Ok(Response::new(pb::GetWhitespaceResponse {
            account_id,
            whitespace: items
                .iter()
                .map(|w| {
                    whitespace_line_to_pb(&WhitespaceLine {
                        product_id: w.product_id.clone(),
                        name: w.name.clone(),
                        family: w.family.clone(),
                        motion: w.motion.map(|m| m.as_str().to_owned()),
                        wallet: w
                            .estimated_annual_wallet
                            .map(|m| (m.currency().code().to_owned(), m.to_amount_string())),
                    })
                })
                .collect(),
            wallet: rows
                .into_iter()
                .map(wallet_to_pb)
                .collect::<Result<_, _>>()?,
            summaries: summaries
                .into_iter()
                .map(|s| pb::WalletSummary {
                    currency_code: s.currency.code().to_owned(),
                    total_wallet: Some(wire::money_to_pb(&s.total)),
                    our_spend: Some(wire::money_to_pb(&s.ours)),
                    opportunity: Some(wire::money_to_pb(&s.opportunity)),
                    share_of_wallet: ratio_text(s.share_of_wallet),
                    opportunity_share: ratio_text(s.opportunity_share),
                })
                .collect(),
            segment: account
                .segment
                .map(|s| wire::segment_to_pb(s) as i32)
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_pipeline_forecast(
        &self,
        request: Request<pb::GetPipelineForecastRequest>,
    ) -> Reply<pb::GetPipelineForecastResponse> {
        let req = request.get_ref();
        let mut filter = OpportunityFilter::default();
        if !req.currency_code.is_empty() {
            filter.currency = Some(
                Currency::parse(&req.currency_code)
                    .map_err(|e| invalid("currency_code", e))?
                    .code()
                    .to_owned(),
            );
        }
        filter.owner_team = opt_text("owner_team", &req.owner_team, wire::MAX_NAME_LEN)?;
        let start = wire::optional_date("close_date_start", &req.close_date_start)
            .map_err(PipelineError::from)?;
        let end = wire::optional_date("close_date_end", &req.close_date_end)
            .map_err(PipelineError::from)?;
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            return Err(invalid("close_date_end", "is before close_date_start").into());
        }
        let rows = self.store.opportunities(&filter).await?;
        let mut reached: HashMap<String, BTreeSet<Stage>> = HashMap::new();
        let mut closed_at: HashMap<String, DateTime<Utc>> = HashMap::new();
        for h in self.store.stage_history().await? {
            if let Some(stage) = h.new_value.as_deref().and_then(|v| v.parse::<Stage>().ok()) {
                reached
                    .entry(h.opportunity_id.clone())
                    .or_default()
                    .insert(stage);
                if stage.is_closed() {
                    closed_at.insert(h.opportunity_id, h.changed_at);
                } else {
                    // Reopened: the earlier close no longer counts.
                    closed_at.remove(&h.opportunity_id);
                }
            }
        }
        let mut deals = Vec::new();
        for m in rows {
            let in_range = match m.close_date {
                Some(d) => start.is_none_or(|s| d >= s) && end.is_none_or(|e| d <= e),
                None => start.is_none() && end.is_none(),
            };
            if !in_range {
                continue;
            }
            let p = parse_row(&m)?;
            deals.push(ForecastDeal {
                motion: p.motion,
                stage: p.stage,
                amount: p.amount,
                probability: p.probability,
                owner_team: m.owner_team.clone(),
                created_at: m.created_at,
                closed_at: p
                    .stage
                    .is_closed()
                    .then(|| closed_at.get(&m.id).copied())
                    .flatten(),
                stages_reached: reached.remove(&m.id).unwrap_or_default(),
            });
        }
        let forecasts = forecast(&deals)
            .into_iter()
            .map(|f| pb::CurrencyForecast {
                currency_code: f.currency.code().to_owned(),
                stages: f
                    .stages
                    .iter()
                    .map(|s| pb::StageForecast {
                        stage: wire::stage_to_pb(s.stage) as i32,
                        count: s.bucket.count,
                        amount: Some(wire::money_to_pb(&s.bucket.amount)),
                        weighted_amount: Some(wire::money_to_pb(&s.bucket.weighted)),
                        conversion_rate: ratio_text(s.conversion),
                    })
                    .collect(),
                by_motion: f
                    .by_motion
                    .iter()
                    .map(|(k, b)| bucket_pb(k.clone(), b))
                    .collect(),
                by_owner_team: f
                    .by_owner_team
                    .iter()
                    .map(|(k, b)| bucket_pb(k.clone(), b))
                    .collect(),
                win_rates: f
                    .win_rates
                    .iter()
                    .map(|w| pb::MotionWinRate {
                        motion: wire::motion_to_pb(w.motion) as i32,
                        won: w.won,
                        lost: w.lost,
                        win_rate: ratio_text(w.rate),
                        benchmark_low: ratio_text(Some(w.benchmark.0)),
                        benchmark_high: ratio_text(Some(w.benchmark.1)),
                        verdict: match w.verdict {
                            None => pb::BenchmarkVerdict::Unspecified,
                            Some(BenchmarkVerdict::Below) => pb::BenchmarkVerdict::Below,
                            Some(BenchmarkVerdict::Within) => pb::BenchmarkVerdict::Within,
                            Some(BenchmarkVerdict::Above) => pb::BenchmarkVerdict::Above,
                        } as i32,
                    })
                    .collect(),
                avg_cycle_days: f
                    .avg_cycle_days
                    .map(|d| format!("{d:.2}"))
                    .unwrap_or_default(),
                avg_deal_size: f.avg_deal_size.as_ref().map(wire::money_to_pb),
                open_amount: Some(wire::money_to_pb(&f.open.amount)),
                open_weighted_amount: Some(wire::money_to_pb(&f.open.weighted)),
            })
            .collect();
        Ok(Response::new(pb::GetPipelineForecastResponse { forecasts }))
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

/// The mutations, each run at most once per `request_id` by [`PipelineService::once`].
impl PipelineService {
    async fn create_opportunity_once(
        &self,
        principal: String,
        req: &pb::CreateOpportunityRequest,
    ) -> Result<pb::CreateOpportunityResponse, PipelineError> {
        let new = NewOpportunity::from_request(req, &self.config).map_err(PipelineError::from)?;
        let source = new.source_product_id.map(|p| p.to_string());
        let snapshot = self
            .snapshot(&new.account_id.to_string(), source.as_deref())
            .await;
        let snapshot = snapshot.as_ref().map(to_json).transpose()?;
        let model = self
            .store
            .create_opportunity(&new, snapshot, &[], serde_json::json!({}), &principal)
            .await?;
        tracing::info!(opportunity_id = %model.id, "opportunity created");
        Ok(pb::CreateOpportunityResponse {
            opportunity: Some(self.to_pb(model)?),
        })
    }

    async fn create_opportunity_from_trigger_once(
        &self,
        principal: String,
        req: &pb::CreateOpportunityFromTriggerRequest,
    ) -> Result<pb::CreateOpportunityFromTriggerResponse, PipelineError> {
        let trigger_id = parse_id("trigger_id", &req.trigger_id, TriggerId::parse)?;
        let amount = wire::money("amount", req.amount.as_ref()).map_err(PipelineError::from)?;
        if !amount.is_positive() {
            return Err(invalid("amount.amount", "must be greater than zero"));
        }
        let close_date =
            wire::optional_date("close_date", &req.close_date).map_err(PipelineError::from)?;
        let override_reason =
            opt_text("override_reason", &req.override_reason, wire::MAX_NOTE_LEN)?;
        let requested_product = if req.product_id.is_empty() {
            None
        } else {
            Some(parse_id("product_id", &req.product_id, ProductId::parse)?)
        };
        let owner = opt_text("owner", &req.owner, wire::MAX_NAME_LEN)?;
        let owner_team = opt_text("owner_team", &req.owner_team, wire::MAX_NAME_LEN)?;
        let originator = opt_text("originator", &req.originator, wire::MAX_NAME_LEN)?
            .unwrap_or_else(|| principal.clone());
        let name = opt_text("name", &req.name, wire::MAX_NAME_LEN)?;

        let trigger = match self.health.trigger(&trigger_id.to_string()).await {
            Ok(t) => t,
            Err(HealthError::NotFound(_)) => {
                return Err(PipelineError::NotFound("trigger", trigger_id.to_string()));
            }
            Err(e) => return Err(unavailable(e)),
        };
        if let Some(existing) = self
            .store
            .opportunity_from_trigger(&trigger_id.to_string())
            .await?
        {
            return Err(PipelineError::precondition(
                "TRIGGER_ALREADY_CONVERTED",
                trigger_id.to_string(),
                format!(
                    "trigger {trigger_id} already became opportunity {}",
                    existing.id
                ),
            ));
        }
        use crate::health::TriggerStatus as T;
        match (trigger.status, &override_reason) {
            (T::Ready, _) | (T::Suppressed, Some(_)) => {}
            (T::Suppressed, None) => {
                return Err(PipelineError::precondition(
                    "TRIGGER_SUPPRESSED",
                    trigger_id.to_string(),
                    format!(
                        "trigger {trigger_id} is SUPPRESSED ({}); pass override_reason to create from it anyway",
                        if trigger.suppression_reason.is_empty() {
                            "no reason given"
                        } else {
                            trigger.suppression_reason.as_str()
                        }
                    ),
                ));
            }
            (status, _) => {
                return Err(PipelineError::precondition(
                    "TRIGGER_NOT_OPEN",
                    trigger_id.to_string(),
                    format!(
                        "trigger {trigger_id} is {status:?}; only READY (or overridden SUPPRESSED) triggers become opportunities"
                    ),
                ));
            }
        }
        let motion = trigger.motion.ok_or_else(|| {
            PipelineError::precondition(
                "TRIGGER_WITHOUT_MOTION",
                trigger_id.to_string(),
                format!("trigger {trigger_id} suggests no motion"),
            )
        })?;
        let account_id = AccountId::parse(&trigger.account_id).map_err(|_| {
            PipelineError::HealthUnavailable(format!(
                "trigger {trigger_id} has an unreadable account id"
            ))
        })?;
        let trigger_product = ProductId::parse(&trigger.product_id).ok();
        let (product_id, source_product_id) = if motion.is_cross_sell() {
            // The trigger fired on the product the account uses; the
            // cross-sell sells another one, which only the caller knows.
            let product = requested_product.ok_or_else(|| {
                invalid(
                    "product_id",
                    "is required for a cross-sell trigger: the trigger's product is the one the account grows from",
                )
            })?;
            (product, trigger_product)
        } else {
            let product = requested_product.or(trigger_product).ok_or_else(|| {
                invalid("product_id", "is required: the trigger names no product")
            })?;
            (product, None)
        };
        let stage = Stage::Identified;
        let new = NewOpportunity {
            account_id,
            product_id,
            source_product_id,
            name: name.unwrap_or_else(|| format!("{} from trigger", motion.as_str())),
            motion,
            amount,
            stage,
            probability: self.config.probability(stage),
            probability_overridden: false,
            forecast_category: pb::ForecastCategory::Pipeline,
            close_date,
            source: Source::Trigger(trigger_id),
            owner: owner.or_else(|| Some(principal.clone())),
            owner_team,
            originator: Some(originator),
            stakeholders: Vec::new(),
            discovery_notes: (!trigger.reason.is_empty()).then(|| trigger.reason.clone()),
            qualification: Default::default(),
            strategic_value: None,
        };
        let source = source_product_id.map(|p| p.to_string());
        let snapshot = self
            .snapshot(&account_id.to_string(), source.as_deref())
            .await;
        let snapshot = snapshot.as_ref().map(to_json).transpose()?;
        let overridden = trigger.status == T::Suppressed;
        let notes: Vec<HistoryNote> = if overridden {
            vec![HistoryNote {
                field: "trigger_override",
                previous: Some("SUPPRESSED".to_owned()),
                new: Some(trigger.suppression_reason.clone()),
                reason: override_reason.clone(),
            }]
        } else {
            Vec::new()
        };
        let model = self
            .store
            .create_opportunity(
                &new,
                snapshot,
                &notes,
                serde_json::json!({
                    "trigger_id": trigger_id.to_string(),
                    "trigger_status": format!("{:?}", trigger.status).to_uppercase(),
                    "override_reason": if overridden { override_reason.clone() } else { None },
                }),
                &principal,
            )
            .await?;
        Ok(pb::CreateOpportunityFromTriggerResponse {
            opportunity: Some(self.to_pb(model)?),
        })
    }

    async fn update_opportunity_once(
        &self,
        principal: String,
        req: &pb::UpdateOpportunityRequest,
    ) -> Result<pb::UpdateOpportunityResponse, PipelineError> {
        let update = UpdateRequest::from_request(req).map_err(PipelineError::from)?;
        let current = self
            .store
            .opportunity(&update.id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("opportunity", update.id.to_string()))?;
        Self::check_etag(&current, update.etag)?;
        let p = parse_row(&current)?;
        Self::ensure_open(&current, p.stage)?;
        let patch = update.patch;
        let mut changes = opportunity::ActiveModel::default();
        let mut history = Vec::new();
        let mut changed: Vec<&str> = Vec::new();
        if let Some(v) = patch.name {
            changes.name = Set(v);
            changed.push("name");
        }
        if let Some(v) = patch.product_id {
            changes.product_id = Set(v.to_string());
            changed.push("product_id");
        }
        if let Some(v) = patch.source_product_id {
            changes.source_product_id = Set(v.map(|p| p.to_string()));
            changed.push("source_product_id");
        }
        if let Some(v) = patch.motion {
            changes.motion = Set(v.as_str().to_owned());
            changed.push("motion");
        }
        if let Some(amount) = patch.amount
            && amount != p.amount
        {
            changes.amount_minor = Set(amount.minor());
            changes.currency = Set(amount.currency().code().to_owned());
            history.push(note(
                "amount",
                Some(p.amount.to_string()),
                Some(amount.to_string()),
            ));
            changed.push("amount");
        }
        if let Some(probability) = patch.probability {
            let (value, overridden) = match probability {
                Some(v) => (v, true),
                None => (self.config.probability(p.stage), false),
            };
            if value != p.probability {
                history.push(note(
                    "probability",
                    Some(p.probability.to_decimal_string()),
                    Some(value.to_decimal_string()),
                ));
                changed.push("probability");
            }
            changes.probability = Set(value.to_decimal_string());
            changes.probability_overridden = Set(overridden);
        }
        if let Some(v) = patch.forecast_category {
            changes.forecast_category = Set(v.as_str_name().to_owned());
            changed.push("forecast_category");
        }
        if let Some(v) = patch.close_date
            && v != current.close_date
        {
            history.push(note(
                "close_date",
                current.close_date.map(|d| d.to_string()),
                v.map(|d| d.to_string()),
            ));
            changes.close_date = Set(v);
            changed.push("close_date");
        }
        if let Some(v) = patch.owner {
            if v != current.owner {
                history.push(note("owner", current.owner.clone(), v.clone()));
            }
            changes.owner = Set(v);
            changed.push("owner");
        }
        if let Some(v) = patch.owner_team {
            changes.owner_team = Set(v);
            changed.push("owner_team");
        }
        if let Some(v) = patch.originator {
            changes.originator = Set(v);
            changed.push("originator");
        }
        if let Some(v) = patch.stakeholders {
            changes.stakeholders = Set(to_json(&v)?);
            changed.push("stakeholders");
        }
        if let Some(v) = patch.discovery_notes {
            changes.discovery_notes = Set(v);
            changed.push("discovery_notes");
        }
        if let Some(v) = patch.qualification {
            changes.qualification = Set(to_json(&v)?);
            changed.push("qualification");
        }
        if let Some(v) = patch.strategic_value {
            changes.strategic_value = Set(v.map(|r| r.as_str().to_owned()));
            changed.push("strategic_value");
        }
        let events = vec![event(
            "pipeline.opportunity.updated",
            &current.id,
            serde_json::json!({
                "opportunity_id": current.id,
                "fields": changed,
                "principal": principal,
            }),
        )];
        let model = self
            .store
            .update_opportunity(
                OpportunityWrite {
                    id: current.id.clone(),
                    expected_version: update.etag,
                    changes,
                    history,
                    events,
                },
                &principal,
            )
            .await?;
        Ok(pb::UpdateOpportunityResponse {
            opportunity: Some(self.to_pb(model)?),
        })
    }

    async fn advance_stage_once(
        &self,
        principal: String,
        req: &pb::AdvanceStageRequest,
    ) -> Result<pb::AdvanceStageResponse, PipelineError> {
        let id = parse_id("opportunity_id", &req.opportunity_id, OpportunityId::parse)?;
        let expected = etag("etag", &req.etag).map_err(PipelineError::from)?;
        let to = wire::stage("to_stage", req.to_stage).map_err(PipelineError::from)?;
        let override_reason =
            opt_text("override_reason", &req.override_reason, wire::MAX_NOTE_LEN)?;
        let reason = opt_text("reason", &req.reason, wire::MAX_NOTE_LEN)?;
        if req.reopen && reason.is_none() {
            return Err(invalid(
                "reason",
                "is required to reopen a closed opportunity",
            ));
        }
        let to = match (req.reopen, to) {
            (true, None | Some(Stage::Identified)) => Stage::Identified,
            (true, Some(_)) => {
                return Err(invalid(
                    "to_stage",
                    "a reopened opportunity restarts at STAGE_IDENTIFIED",
                ));
            }
            (false, None) => return Err(invalid("to_stage", "is required")),
            (false, Some(s)) if s.is_closed() => {
                return Err(invalid(
                    "to_stage",
                    "close with CloseOpportunity (it records the outcome and lost reason)",
                ));
            }
            (false, Some(s)) => s,
        };
        let current = self
            .store
            .opportunity(&id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("opportunity", id.to_string()))?;
        Self::check_etag(&current, expected)?;
        let p = parse_row(&current)?;
        let from = p.stage;
        let now = self.now();
        let mut changes = opportunity::ActiveModel::default();
        let mut history = Vec::new();
        let mut events = Vec::new();
        if req.reopen {
            // Roles arrive later; until then the principal is recorded and
            // the explicit flag plus reason mark the admin action.
            if !from.is_closed() {
                return Err(PipelineError::precondition(
                    "OPPORTUNITY_NOT_CLOSED",
                    &current.id,
                    format!(
                        "opportunity {} is {from}; only closed opportunities are reopened",
                        current.id
                    ),
                ));
            }
            changes.lost_reason = Set(None);
            changes.forecast_category =
                Set(pb::ForecastCategory::Pipeline.as_str_name().to_owned());
            events.push(event(
                "pipeline.opportunity.reopened",
                &current.id,
                serde_json::json!({
                    "opportunity_id": current.id,
                    "from_stage": from.as_str(),
                    "reason": reason,
                    "principal": principal,
                }),
            ));
        } else {
            from.check_transition(to).map_err(|e| {
                PipelineError::precondition("INVALID_STAGE_TRANSITION", &current.id, e.to_string())
            })?;
            let source = current.source_product_id.clone();
            let facts = GateFacts {
                opportunity_id: &current.id,
                account_id: &current.account_id,
                motion: p.motion,
                source_product_id: source.as_deref(),
                amount: p.amount,
                qualification: &p.qualification,
                stakeholders: &p.stakeholders,
            };
            let health = if crate::model::gates::needs_health_gate(from, to) {
                match self.health.account_health(&current.account_id).await {
                    Ok(view) => Ok(Some(view)),
                    Err(err) if override_reason.is_some() => Err(err.to_string()),
                    Err(err) => return Err(unavailable(err)),
                }
            } else {
                Ok(None)
            };
            let outcome = check_gates(
                from,
                to,
                &facts,
                health.as_ref().map(Option::as_ref).map_err(String::as_str),
                override_reason.as_deref(),
                &self.config,
            )
            .map_err(|violations| PipelineError::GateRefused {
                message: format!(
                    "opportunity {} cannot move from {from} to {to}: {} unmet condition(s)",
                    current.id,
                    violations.len()
                ),
                violations,
            })?;
            if let Ok(Some(view)) = &health {
                let snap = HealthSnapshot::capture(view, source.as_deref(), now);
                changes.health_snapshot = Set(Some(to_json(&snap)?));
            }
            if !outcome.overridden.is_empty() {
                let kinds: Vec<&str> = outcome.overridden.iter().map(|v| v.kind.as_str()).collect();
                history.push(HistoryNote {
                    field: "health_gate_override",
                    previous: None,
                    new: Some(kinds.join(",")),
                    reason: override_reason.clone(),
                });
                events.push(event(
                    "pipeline.opportunity.gate_overridden",
                    &current.id,
                    serde_json::json!({
                        "opportunity_id": current.id,
                        "from_stage": from.as_str(),
                        "to_stage": to.as_str(),
                        "overridden": outcome.overridden.iter().map(|v| serde_json::json!({
                            "kind": v.kind, "subject": v.subject, "description": v.description,
                        })).collect::<Vec<_>>(),
                        "reason": override_reason,
                        "principal": principal,
                    }),
                ));
            }
        }
        let probability = self.config.probability(to);
        changes.stage = Set(to.as_str().to_owned());
        changes.stage_entered_at = Set(Some(now));
        changes.probability = Set(probability.to_decimal_string());
        changes.probability_overridden = Set(false);
        let stage_reason = if req.reopen {
            reason.as_ref().map(|r| format!("reopened: {r}"))
        } else {
            reason.clone()
        };
        history.insert(
            0,
            HistoryNote {
                field: "stage",
                previous: Some(from.as_str().to_owned()),
                new: Some(to.as_str().to_owned()),
                reason: stage_reason,
            },
        );
        if probability != p.probability {
            history.push(note(
                "probability",
                Some(p.probability.to_decimal_string()),
                Some(probability.to_decimal_string()),
            ));
        }
        events.push(event(
            "pipeline.opportunity.stage_changed",
            &current.id,
            serde_json::json!({
                "opportunity_id": current.id,
                "account_id": current.account_id,
                "from_stage": from.as_str(),
                "to_stage": to.as_str(),
                "probability": probability.to_decimal_string(),
                "reason": reason,
                "principal": principal,
            }),
        ));
        let model = self
            .store
            .update_opportunity(
                OpportunityWrite {
                    id: current.id.clone(),
                    expected_version: expected,
                    changes,
                    history,
                    events,
                },
                &principal,
            )
            .await?;
        Ok(pb::AdvanceStageResponse {
            opportunity: Some(self.to_pb(model)?),
        })
    }

    async fn close_opportunity_once(
        &self,
        principal: String,
        req: &pb::CloseOpportunityRequest,
    ) -> Result<pb::CloseOpportunityResponse, PipelineError> {
        let id = parse_id("opportunity_id", &req.opportunity_id, OpportunityId::parse)?;
        let expected = etag("etag", &req.etag).map_err(PipelineError::from)?;
        let lost_reason = opt_text("lost_reason", &req.lost_reason, wire::MAX_NOTE_LEN)?;
        if !req.won && lost_reason.is_none() {
            return Err(invalid(
                "lost_reason",
                "is required when the opportunity is lost",
            ));
        }
        let close_date =
            wire::optional_date("close_date", &req.close_date).map_err(PipelineError::from)?;
        let current = self
            .store
            .opportunity(&id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("opportunity", id.to_string()))?;
        Self::check_etag(&current, expected)?;
        let p = parse_row(&current)?;
        let to = if req.won {
            Stage::ClosedWon
        } else {
            Stage::ClosedLost
        };
        p.stage.check_transition(to).map_err(|e| {
            PipelineError::precondition("INVALID_STAGE_TRANSITION", &current.id, e.to_string())
        })?;
        let now = self.now();
        let close_date = close_date.unwrap_or_else(|| now.date_naive());
        let probability = self.config.probability(to);
        let mut changes = opportunity::ActiveModel {
            stage: Set(to.as_str().to_owned()),
            stage_entered_at: Set(Some(now)),
            probability: Set(probability.to_decimal_string()),
            probability_overridden: Set(false),
            close_date: Set(Some(close_date)),
            forecast_category: Set(if req.won {
                pb::ForecastCategory::Closed
            } else {
                pb::ForecastCategory::Omitted
            }
            .as_str_name()
            .to_owned()),
            ..Default::default()
        };
        if !req.won {
            changes.lost_reason = Set(lost_reason.clone());
        }
        let mut history = vec![HistoryNote {
            field: "stage",
            previous: Some(p.stage.as_str().to_owned()),
            new: Some(to.as_str().to_owned()),
            reason: lost_reason.clone(),
        }];
        if probability != p.probability {
            history.push(note(
                "probability",
                Some(p.probability.to_decimal_string()),
                Some(probability.to_decimal_string()),
            ));
        }
        if current.close_date != Some(close_date) {
            history.push(note(
                "close_date",
                current.close_date.map(|d| d.to_string()),
                Some(close_date.to_string()),
            ));
        }
        let mut events = vec![event(
            "pipeline.opportunity.stage_changed",
            &current.id,
            serde_json::json!({
                "opportunity_id": current.id,
                "account_id": current.account_id,
                "from_stage": p.stage.as_str(),
                "to_stage": to.as_str(),
                "probability": probability.to_decimal_string(),
                "principal": principal,
            }),
        )];
        if req.won {
            // Everything the credit and health services need to act on the
            // win without calling back (issue 6 drives them from this event).
            let accepted = self
                .store
                .handoffs(&HandoffFilter {
                    statuses: vec![HandoffStatus::Accepted.as_str().to_owned()],
                    opportunity_id: Some(current.id.clone()),
                    limit: 1000,
                    ..Default::default()
                })
                .await?;
            events.push(event(
                "pipeline.opportunity.closed_won",
                &current.id,
                serde_json::json!({
                    "opportunity_id": current.id,
                    "account_id": current.account_id,
                    "product_id": current.product_id,
                    "source_product_id": current.source_product_id,
                    "motion": p.motion.as_str(),
                    "amount": p.amount.to_amount_string(),
                    "amount_minor": p.amount.minor().to_string(),
                    "currency_code": current.currency,
                    "close_date": close_date.to_string(),
                    "originator": current.originator,
                    "owner": current.owner,
                    "owner_team": current.owner_team,
                    "source": current.source_kind,
                    "trigger_id": current.source_trigger_id,
                    "handoff": closed_won_handoff(accepted.last()),
                    "principal": principal,
                }),
            ));
        } else {
            events.push(event(
                "pipeline.opportunity.closed_lost",
                &current.id,
                serde_json::json!({
                    "opportunity_id": current.id,
                    "account_id": current.account_id,
                    "product_id": current.product_id,
                    "motion": p.motion.as_str(),
                    "amount": p.amount.to_amount_string(),
                    "currency_code": current.currency,
                    "close_date": close_date.to_string(),
                    "from_stage": p.stage.as_str(),
                    "lost_reason": lost_reason,
                    "principal": principal,
                }),
            ));
        }
        let model = self
            .store
            .update_opportunity(
                OpportunityWrite {
                    id: current.id.clone(),
                    expected_version: expected,
                    changes,
                    history,
                    events,
                },
                &principal,
            )
            .await?;
        Ok(pb::CloseOpportunityResponse {
            opportunity: Some(self.to_pb(model)?),
        })
    }

    async fn request_handoff_once(
        &self,
        principal: String,
        req: &pb::RequestHandoffRequest,
    ) -> Result<pb::RequestHandoffResponse, PipelineError> {
        let id = parse_id("opportunity_id", &req.opportunity_id, OpportunityId::parse)?;
        let package =
            handoff_package("package", req.package.as_ref()).map_err(PipelineError::from)?;
        let current = self
            .store
            .opportunity(&id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("opportunity", id.to_string()))?;
        let p = parse_row(&current)?;
        Self::ensure_open(&current, p.stage)?;
        if let Some(open) = self.store.open_handoff(&current.id).await? {
            return Err(PipelineError::precondition(
                "HANDOFF_ALREADY_OPEN",
                &current.id,
                format!(
                    "opportunity {} already has open handoff {}",
                    current.id, open.id
                ),
            ));
        }
        let snapshot = self.handoff_snapshot(&current).await;
        let now = self.now();
        let handoff_id = HandoffId::new().to_string();
        let row = handoff::ActiveModel {
            id: Set(handoff_id.clone()),
            opportunity_id: Set(current.id.clone()),
            status: Set(HandoffStatus::Requested.as_str().to_owned()),
            open_key: Set(Some(current.id.clone())),
            requested_by: Set(principal.clone()),
            package: Set(to_json(&package)?),
            snapshot: Set(to_json(&snapshot)?),
            requested_at: Set(now),
            due_at: Set(due_at(now, self.config.handoff_sla_hours)),
            resolved_at: Set(None),
            resolved_by: Set(None),
            accepted_owner: Set(None),
            accepted_team: Set(None),
            reason: Set(None),
        };
        let model = self
            .store
            .insert_handoff(
                row,
                event(
                    "pipeline.handoff.requested",
                    &handoff_id,
                    serde_json::json!({
                        "handoff_id": handoff_id,
                        "opportunity_id": current.id,
                        "account_id": current.account_id,
                        "requested_by": principal,
                        "snapshot_gaps": snapshot.gaps,
                    }),
                ),
            )
            .await
            .map_err(|e| match e {
                // Lost a race with another request for the same opportunity.
                PipelineError::Store(db) if db.sql_err().is_some() => PipelineError::precondition(
                    "HANDOFF_ALREADY_OPEN",
                    &current.id,
                    format!("opportunity {} already has an open handoff", current.id),
                ),
                other => other,
            })?;
        Ok(pb::RequestHandoffResponse {
            handoff: Some(handoff_to_pb(model, now)?),
        })
    }

    async fn accept_handoff_once(
        &self,
        principal: String,
        req: &pb::AcceptHandoffRequest,
    ) -> Result<pb::AcceptHandoffResponse, PipelineError> {
        let handoff_id = parse_id("handoff_id", &req.handoff_id, HandoffId::parse)?.to_string();
        let owner =
            wire::text("owner", &req.owner, wire::MAX_NAME_LEN).map_err(PipelineError::from)?;
        let owner_team = opt_text("owner_team", &req.owner_team, wire::MAX_NAME_LEN)?;
        let h = self
            .store
            .handoff(&handoff_id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("handoff", handoff_id.clone()))?;
        let current = self.load("opportunity_id", &h.opportunity_id).await?;
        let p = parse_row(&current)?;
        Self::ensure_open(&current, p.stage)?;
        // The CSM who asked stays the originator; the AE becomes the owner.
        let originator = current
            .originator
            .clone()
            .unwrap_or_else(|| h.requested_by.clone());
        let changes = opportunity::ActiveModel {
            owner: Set(Some(owner.clone())),
            owner_team: Set(owner_team.clone()),
            originator: Set(Some(originator.clone())),
            ..Default::default()
        };
        let history = vec![HistoryNote {
            field: "owner",
            previous: current.owner.clone(),
            new: Some(owner.clone()),
            reason: Some(format!("handoff {handoff_id} accepted")),
        }];
        let events = vec![
            event(
                "pipeline.handoff.accepted",
                &handoff_id,
                serde_json::json!({
                    "handoff_id": handoff_id,
                    "opportunity_id": current.id,
                    "requested_by": h.requested_by,
                    "owner": owner,
                    "owner_team": owner_team,
                    "originator": originator,
                    "principal": principal,
                }),
            ),
            event(
                "pipeline.opportunity.updated",
                &current.id,
                serde_json::json!({
                    "opportunity_id": current.id,
                    "fields": ["owner", "owner_team", "originator"],
                    "principal": principal,
                }),
            ),
        ];
        let (h, opp) = self
            .store
            .resolve_handoff(
                &handoff_id,
                handoff::ActiveModel {
                    status: Set(HandoffStatus::Accepted.as_str().to_owned()),
                    accepted_owner: Set(Some(owner)),
                    accepted_team: Set(owner_team),
                    ..Default::default()
                },
                Some(OpportunityWrite {
                    id: current.id.clone(),
                    expected_version: current.version,
                    changes,
                    history,
                    events: Vec::new(),
                }),
                events,
                &principal,
            )
            .await?;
        let now = self.now();
        Ok(pb::AcceptHandoffResponse {
            handoff: Some(handoff_to_pb(h, now)?),
            opportunity: opp.map(|o| self.to_pb(o)).transpose()?,
        })
    }

    async fn reject_handoff_once(
        &self,
        principal: String,
        req: &pb::RejectHandoffRequest,
    ) -> Result<pb::RejectHandoffResponse, PipelineError> {
        let handoff_id = parse_id("handoff_id", &req.handoff_id, HandoffId::parse)?.to_string();
        let reason = opt_text("reason", &req.reason, wire::MAX_NOTE_LEN)?;
        if !req.withdraw && reason.is_none() {
            return Err(invalid(
                "reason",
                "is required to reject a handoff: tell CS what is missing",
            ));
        }
        let h = self
            .store
            .handoff(&handoff_id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("handoff", handoff_id.clone()))?;
        let (status, event_type) = if req.withdraw {
            (HandoffStatus::Withdrawn, "pipeline.handoff.withdrawn")
        } else {
            (HandoffStatus::Rejected, "pipeline.handoff.rejected")
        };
        // A rejected handoff leaves the opportunity with CS: its owner only
        // ever changes on acceptance.
        let (h, _) = self
            .store
            .resolve_handoff(
                &handoff_id,
                handoff::ActiveModel {
                    status: Set(status.as_str().to_owned()),
                    reason: Set(reason.clone()),
                    ..Default::default()
                },
                None,
                vec![event(
                    event_type,
                    &handoff_id,
                    serde_json::json!({
                        "handoff_id": handoff_id,
                        "opportunity_id": h.opportunity_id,
                        "requested_by": h.requested_by,
                        "reason": reason,
                        "principal": principal,
                    }),
                )],
                &principal,
            )
            .await?;
        Ok(pb::RejectHandoffResponse {
            handoff: Some(handoff_to_pb(h, self.now())?),
        })
    }

    async fn upsert_wallet_estimate_once(
        &self,
        principal: String,
        req: &pb::UpsertWalletEstimateRequest,
    ) -> Result<pb::UpsertWalletEstimateResponse, PipelineError> {
        let e = req
            .estimate
            .as_ref()
            .ok_or_else(|| invalid("estimate", "is required"))?;
        let account_id = parse_id("estimate.account_id", &e.account_id, AccountId::parse)?;
        let product_area = wire::text("estimate.product_area", &e.product_area, wire::MAX_NAME_LEN)
            .map_err(PipelineError::from)?;
        let spend = wire::money("estimate.annual_spend", e.annual_spend.as_ref())
            .map_err(PipelineError::from)?;
        if spend.is_negative() {
            return Err(invalid(
                "estimate.annual_spend.amount",
                "must not be negative",
            ));
        }
        let served_by: pb::WalletServedBy =
            wire::known_enum("estimate.served_by", e.served_by).map_err(PipelineError::from)?;
        if served_by == pb::WalletServedBy::Unspecified {
            return Err(invalid(
                "estimate.served_by",
                "is required: US, COMPETITOR, IN_HOUSE or UNADDRESSED",
            ));
        }
        let competitor = opt_text("estimate.competitor", &e.competitor, wire::MAX_NAME_LEN)?;
        let notes = opt_text("estimate.notes", &e.notes, wire::MAX_NOTE_LEN)?;
        let now = self.now();
        let model = self
            .store
            .upsert_wallet(
                wallet_estimate::Model {
                    id: String::new(),
                    account_id: account_id.to_string(),
                    product_area,
                    annual_spend_minor: spend.minor(),
                    currency: spend.currency().code().to_owned(),
                    served_by: served_by.as_str_name().to_owned(),
                    competitor,
                    notes,
                    created_at: now,
                    created_by: principal.clone(),
                    updated_at: now,
                    updated_by: principal.clone(),
                },
                &principal,
            )
            .await?;
        Ok(pb::UpsertWalletEstimateResponse {
            estimate: Some(wallet_to_pb(model)?),
        })
    }
}

impl PipelineService {
    /// What Sales should see of the account when it takes the deal: health,
    /// usage (active subscriptions) and whitespace, each best effort; what
    /// could not be captured is listed in `gaps`.
    async fn handoff_snapshot(&self, current: &opportunity::Model) -> HandoffSnapshot {
        let account_id = current.account_id.as_str();
        let (health, subscriptions, account, portfolio) = tokio::join!(
            self.health.account_health(account_id),
            self.health.active_subscriptions(account_id),
            self.health.account(account_id),
            self.health.portfolio(),
        );
        let mut snap = HandoffSnapshot::default();
        match health {
            Ok(view) => {
                snap.health = Some(HealthSnapshot::capture(
                    &view,
                    current.source_product_id.as_deref(),
                    self.now(),
                ));
                if view.account_band.is_none() {
                    snap.gaps
                        .push("health score: the account has no score yet".to_owned());
                }
            }
            Err(e) => snap.gaps.push(format!("health score: {e}")),
        }
        match &subscriptions {
            Ok(subs) => {
                snap.usage = subs
                    .iter()
                    .map(|s| UsageLine {
                        subscription_id: s.subscription_id.clone(),
                        product_id: s.product_id.clone(),
                        tier: s.tier.clone(),
                        quantity: s.quantity,
                        quota_limit: s.quota_limit,
                        mrr: s
                            .mrr
                            .map(|m| (m.currency().code().to_owned(), m.to_amount_string())),
                    })
                    .collect();
            }
            Err(e) => snap.gaps.push(format!("usage: {e}")),
        }
        match (&subscriptions, account, portfolio) {
            (Ok(subs), Ok(account), Ok(portfolio)) => {
                snap.whitespace = whitespace(&portfolio, &owned_products(subs), account.segment)
                    .into_iter()
                    .map(|w| WhitespaceLine {
                        product_id: w.product_id,
                        name: w.name,
                        family: w.family,
                        motion: w.motion.map(|m| m.as_str().to_owned()),
                        wallet: w
                            .estimated_annual_wallet
                            .map(|m| (m.currency().code().to_owned(), m.to_amount_string())),
                    })
                    .collect();
            }
            (_, Err(e), _) | (_, _, Err(e)) => snap.gaps.push(format!("whitespace: {e}")),
            (Err(_), _, _) => snap
                .gaps
                .push("whitespace: owned products unknown (see usage)".to_owned()),
        }
        snap
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_fingerprints_are_stable() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(to_hex(&bytes), "0001abff");
        assert_eq!(from_hex("0001abff").unwrap(), bytes);
        assert!(from_hex("abc").is_none());
        assert!(from_hex("zz").is_none());
        // FNV-1a of the empty input is its offset basis, on every build.
        assert_eq!(fingerprint(b""), "cbf29ce484222325:0");
        assert_ne!(fingerprint(b"a"), fingerprint(b"b"));
    }

    #[test]
    fn sort_keys_round_trip_through_tokens() {
        let key = SortKey {
            group: "USD".into(),
            value: Decimal::new(-35_000_000, 2),
            id: "01a2".into(),
        };
        assert_eq!(SortKey::from_token_text(&key.token_text()), Some(key));
        assert_eq!(SortKey::from_token_text("junk"), None);
    }
}
