//! Opportunities: create (also from a trigger), read, list, update, the
//! stage machine with its gates, close, history, scoring and routing.

use chrono::{DateTime, Duration, Utc};
use contracts::pb::pipeline::v1 as pb;
use contracts::{page, wire};
use domain::{AccountId, OpportunityId, Stage, SubscriptionId};

use super::{currency_filter, invalid, opt_text, page_of, parse_id, ratings_request, unavailable};
use crate::api::PipelineService;
use crate::convert::{history_to_pb, opportunity_to_pb, parse_row};
use crate::entity::opportunity;
use crate::error::PipelineError;
use crate::health::HealthError;
use crate::model::creation::{self, CreationContext, FromTrigger};
use crate::model::handoff::HandoffStatus;
use crate::model::listing::{SortKey, in_creation_order, sort_key};
use crate::model::qualification::{QualificationPriority, score_qualification};
use crate::model::routing::{Route, RoutingFacts, route_opportunity};
use crate::model::transition::{
    self, Closing, OpportunityChange, Planning, StageMove, UpdateLookups, WonFacts,
};
use crate::model::{NewOpportunity, UpdateRequest, etag};
use crate::model::{OpportunityPatch, Parsed};
use crate::store::{HandoffFilter, OpportunityFilter, OpportunityWrite, to_json};

impl PipelineService {
    pub(crate) async fn get_opportunity_op(
        &self,
        req: &pb::GetOpportunityRequest,
    ) -> Result<pb::GetOpportunityResponse, PipelineError> {
        let model = self.load("opportunity_id", &req.opportunity_id).await?;
        Ok(pb::GetOpportunityResponse {
            opportunity: Some(self.to_pb(model)?),
        })
    }

    pub(crate) async fn list_opportunities_op(
        &self,
        req: &pb::ListOpportunitiesRequest,
    ) -> Result<pb::ListOpportunitiesResponse, PipelineError> {
        let size = page::page_size("page_size", req.page_size).map_err(PipelineError::from)?;
        let now = self.now();
        let mut filter = self.list_filter(req, now)?;
        let sort: pb::OpportunitySortOrder =
            wire::known_enum("sort", req.sort).map_err(PipelineError::from)?;
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
        if in_creation_order(sort) {
            filter.after_id = after.as_ref().map(|k| k.id.clone());
            filter.limit = Some(size + 1);
        }
        let rows = self.store.opportunities(&filter).await?;
        let today = now.date_naive();
        let mut keyed = rows
            .into_iter()
            .map(|m| Ok((sort_key(sort, &m, &parse_row(&m)?, today), m)))
            .collect::<Result<Vec<_>, PipelineError>>()?;
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let keyed: Vec<(SortKey, opportunity::Model)> = keyed
            .into_iter()
            .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
            .take(usize::try_from(size + 1).unwrap_or(usize::MAX))
            .collect();
        let (page_rows, next_page_token) =
            page_of(keyed, size, |(k, _)| k.token_text(), fingerprint);
        let opportunities = page_rows
            .into_iter()
            .map(|(_, m)| opportunity_to_pb(m, &self.config, now))
            .collect::<Result<_, _>>()?;
        Ok(pb::ListOpportunitiesResponse {
            opportunities,
            next_page_token,
        })
    }

    /// The filters of a `ListOpportunities` that SQL applies; stalled only:
    /// each open stage with a maximum, entered longer ago than it.
    fn list_filter(
        &self,
        req: &pb::ListOpportunitiesRequest,
        now: DateTime<Utc>,
    ) -> Result<OpportunityFilter, PipelineError> {
        let mut filter = OpportunityFilter::default();
        if !req.account_id.is_empty() {
            filter.account_id =
                Some(parse_id("account_id", &req.account_id, AccountId::parse)?.to_string());
        }
        wire::filter_values("stages", &req.stages).map_err(PipelineError::from)?;
        for (i, s) in req.stages.iter().enumerate() {
            if let Some(stage) =
                wire::stage(&format!("stages[{i}]"), *s).map_err(PipelineError::from)?
            {
                filter.stages.push(stage);
            }
        }
        filter.motion = wire::motion("motion", req.motion).map_err(PipelineError::from)?;
        filter.owner = opt_text("owner", &req.owner, wire::MAX_NAME_LEN)?;
        filter.owner_team = opt_text("owner_team", &req.owner_team, wire::MAX_NAME_LEN)?;
        filter.currency = currency_filter("currency_code", &req.currency_code)?;
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
        Ok(filter)
    }

    pub(crate) async fn get_opportunity_history_op(
        &self,
        req: &pb::GetOpportunityHistoryRequest,
    ) -> Result<pb::GetOpportunityHistoryResponse, PipelineError> {
        let size = page::page_size("page_size", req.page_size).map_err(PipelineError::from)?;
        let id = parse_id("opportunity_id", &req.opportunity_id, OpportunityId::parse)?;
        let current = self.load_id(id).await?;
        let fingerprint = page::fingerprint(&[&current.id]);
        let after = page::decode_token("page_token", &req.page_token, fingerprint)
            .map_err(PipelineError::from)?;
        let rows = self.store.history(id, after.as_deref(), size + 1).await?;
        let (rows, next_page_token) = page_of(rows, size, |h| h.id.clone(), fingerprint);
        Ok(pb::GetOpportunityHistoryResponse {
            entries: rows.into_iter().map(history_to_pb).collect(),
            next_page_token,
        })
    }

    pub(crate) async fn score_qualification_op(
        &self,
        req: &pb::ScoreQualificationRequest,
    ) -> Result<pb::ScoreQualificationResponse, PipelineError> {
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
        Ok(pb::ScoreQualificationResponse {
            priority: match score.priority {
                QualificationPriority::TopPriority => pb::QualificationPriority::TopPriority,
                QualificationPriority::Pursue => pb::QualificationPriority::Pursue,
                QualificationPriority::SlowOrPass => pb::QualificationPriority::SlowOrPass,
            } as i32,
            reasons: score.reasons,
        })
    }

    pub(crate) async fn route_opportunity_op(
        &self,
        req: &pb::RouteOpportunityRequest,
    ) -> Result<pb::RouteOpportunityResponse, PipelineError> {
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
        Ok(pb::RouteOpportunityResponse {
            route: match decision.route {
                Route::ProductLed => pb::Route::ProductLed,
                Route::CsmLed => pb::Route::CsmLed,
                Route::SalesLed => pb::Route::SalesLed,
            } as i32,
            reasons: decision.reasons,
        })
    }

    pub(crate) async fn create_opportunity_once(
        &self,
        principal: String,
        req: &pb::CreateOpportunityRequest,
    ) -> Result<pb::CreateOpportunityResponse, PipelineError> {
        let mut new =
            NewOpportunity::from_request(req, &self.config).map_err(PipelineError::from)?;
        // An import's deal was created when the CRM says.
        let occurred_at = super::occur_time(req.occur_time.as_ref(), self.now(), None)?;
        self.resolve_references(&mut new, "opportunity.subscription_id")
            .await?;
        let context = CreationContext {
            occurred_at,
            health_snapshot: self.creation_snapshot(&new).await?,
            ..Default::default()
        };
        let model = self.create(&new, context, &principal).await?;
        tracing::info!(opportunity_id = %model.id, "opportunity created");
        Ok(pb::CreateOpportunityResponse {
            opportunity: Some(self.to_pb(model)?),
        })
    }

    pub(crate) async fn create_opportunity_from_trigger_once(
        &self,
        principal: String,
        req: &pb::CreateOpportunityFromTriggerRequest,
    ) -> Result<pb::CreateOpportunityFromTriggerResponse, PipelineError> {
        let request = FromTrigger::from_request(req).map_err(PipelineError::from)?;
        let trigger_id = request.trigger_id.to_string();
        let trigger = match self.health.trigger(&trigger_id).await {
            Ok(t) => t,
            Err(HealthError::NotFound(_)) => {
                return Err(PipelineError::NotFound("trigger", trigger_id));
            }
            Err(e) => return Err(unavailable(e)),
        };
        let existing = self
            .store
            .opportunity_from_trigger(request.trigger_id)
            .await?;
        creation::admit_trigger(&trigger, &request, existing.as_ref())?;
        let (mut new, mut context) =
            creation::plan_from_trigger(&trigger, request, &principal, &self.config)?;
        self.resolve_references(&mut new, "subscription_id").await?;
        context.health_snapshot = self.creation_snapshot(&new).await?;
        let model = self.create(&new, context, &principal).await?;
        Ok(pb::CreateOpportunityFromTriggerResponse {
            opportunity: Some(self.to_pb(model)?),
        })
    }

    /// What health says of a new opportunity's account, as the row keeps it
    /// (best effort: `None` when health cannot answer).
    async fn creation_snapshot(
        &self,
        new: &NewOpportunity,
    ) -> Result<Option<String>, PipelineError> {
        let source = new.source_product_id.map(|p| p.to_string());
        let snapshot = self
            .snapshot(&new.account_id.to_string(), source.as_deref())
            .await;
        snapshot.as_ref().map(to_json).transpose()
    }

    /// Plans a new opportunity and inserts it.
    async fn create(
        &self,
        new: &NewOpportunity,
        context: CreationContext,
        principal: &str,
    ) -> Result<opportunity::Model, PipelineError> {
        let at = self.planning(principal, self.now());
        let creation = creation::plan_creation(new, OpportunityId::new(), context, at)?;
        self.store.create_opportunity(creation, principal).await
    }

    pub(crate) async fn update_opportunity_once(
        &self,
        principal: String,
        req: &pb::UpdateOpportunityRequest,
    ) -> Result<pb::UpdateOpportunityResponse, PipelineError> {
        let update = UpdateRequest::from_request(req).map_err(PipelineError::from)?;
        let current = self.load_at(&update.id, update.etag).await?;
        let p = parse_row(&current)?;
        Self::ensure_open(&current, p.stage)?;
        let looked_up = self.update_lookups(&current, &p, &update.patch).await?;
        let at = self.planning(&principal, self.now());
        let change = transition::plan_update(&current, &p, update.patch, looked_up, at)?;
        let model = self
            .persist(&current, update.etag, change, None, &principal)
            .await?;
        Ok(pb::UpdateOpportunityResponse {
            opportunity: Some(self.to_pb(model)?),
        })
    }

    /// What an update needs from health: a new product (SPEC §3: one the
    /// health service knows, kept with its name) and the subscription a
    /// patched upsell names, checked against the deal as it will be.
    async fn update_lookups(
        &self,
        current: &opportunity::Model,
        p: &Parsed,
        patch: &OpportunityPatch,
    ) -> Result<UpdateLookups, PipelineError> {
        let mut looked_up = UpdateLookups::default();
        if let Some(v) = transition::changed_product(current, patch) {
            let product = self
                .health
                .product(&v.to_string())
                .await
                .map_err(|e| super::reference_error("product", &v.to_string(), e))?;
            looked_up.product_name = Some(product.name);
        }
        if let Some(named) = patch.subscription_id {
            let motion = patch.motion.unwrap_or(p.motion);
            let product = patch
                .product_id
                .map_or_else(|| current.product_id.clone(), |v| v.to_string());
            let currency = patch
                .amount
                .as_ref()
                .map_or(p.amount.currency(), |a| a.currency());
            let chosen = self
                .updated_subscription(&current.account_id, &product, motion, currency, named)
                .await?;
            looked_up.subscription_id = Some(chosen);
        }
        Ok(looked_up)
    }

    /// The subscription an updated upsell names, checked with health as at
    /// creation (an active one of its product, in its currency); `None`
    /// leaves it to be chosen at the close.
    async fn updated_subscription(
        &self,
        account_id: &str,
        product_id: &str,
        motion: domain::Motion,
        currency: domain::Currency,
        named: Option<SubscriptionId>,
    ) -> Result<Option<String>, PipelineError> {
        const FIELD: &str = "opportunity.subscription_id";
        let Some(named) = named else {
            return Ok(None);
        };
        if !motion.is_upsell() {
            return Err(invalid(
                FIELD,
                "only an upsell names the subscription it grows; a cross-sell starts a new one",
            ));
        }
        let held = self
            .health
            .active_subscriptions(account_id)
            .await
            .map_err(|e| super::reference_error("account", account_id, e))?;
        let named = named.to_string();
        self.upsell_subscription(&held, account_id, product_id, Some(&named), currency, FIELD)
            .map(Some)
    }

    pub(crate) async fn advance_stage_once(
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
        let to = transition::requested_stage(req.reopen, to, reason.as_deref())?;
        let current = self.load_at(&id, expected).await?;
        let p = parse_row(&current)?;
        let now = self.now();
        // An import's stage change happened when the CRM says, after the
        // stage it leaves was entered.
        let occurred_at =
            super::occur_time(req.occur_time.as_ref(), now, Some(p.stage_entered_at))?;
        let mv = StageMove {
            to,
            reopen: req.reopen,
            reason,
            override_reason,
            occurred_at,
        };
        transition::admit_stage_move(&current, p.stage, &mv)?;
        let health = if !mv.reopen && crate::model::gates::needs_health_gate(p.stage, to) {
            match self.health.account_health(&current.account_id).await {
                Ok(view) => Ok(Some(view)),
                Err(err) if mv.override_reason.is_some() => Err(err.to_string()),
                Err(err) => return Err(unavailable(err)),
            }
        } else {
            Ok(None)
        };
        let health = health.as_ref().map(Option::as_ref).map_err(String::as_str);
        let at = self.planning(&principal, now);
        let plan = transition::plan_stage_move(&current, &p, &mv, health, at)?;
        let model = self
            .persist(&current, expected, plan.change, occurred_at, &principal)
            .await?;
        Ok(pb::AdvanceStageResponse {
            opportunity: Some(self.to_pb(model)?),
            probability_reset: plan.probability_reset,
        })
    }

    pub(crate) async fn close_opportunity_once(
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
        let closing = Closing {
            won: req.won,
            lost_reason,
            close_date,
        };
        let current = self.load_at(&id, expected).await?;
        let p = parse_row(&current)?;
        transition::admit_close(&current, &p, &closing)?;
        let subscription_id = self.upsell_to_close(&current, &p, &closing).await?;
        // The accepted handoff the closed_won event carries.
        let accepted = if closing.won {
            self.store
                .handoffs(&HandoffFilter {
                    statuses: vec![HandoffStatus::Accepted],
                    opportunity_id: Some(current.id.clone()),
                    limit: 1000,
                    ..Default::default()
                })
                .await?
        } else {
            Vec::new()
        };
        let won = WonFacts {
            subscription_id,
            handoff: accepted.last(),
        };
        let at = self.planning(&principal, self.now());
        let change = transition::plan_close(&current, &p, &closing, &won, at);
        let model = self
            .persist(&current, expected, change, None, &principal)
            .await?;
        Ok(pb::CloseOpportunityResponse {
            opportunity: Some(self.to_pb(model)?),
        })
    }

    /// The subscription a won upsell grows (SPEC §3): the one it names, which
    /// must still be an active one of its product (an update of the product
    /// or motion clears it: then the only one); with none, closing won is
    /// refused rather than inventing one. (Health checks it is in force on
    /// the close date.) `None` for anything but a won upsell.
    async fn upsell_to_close(
        &self,
        current: &opportunity::Model,
        p: &Parsed,
        closing: &Closing,
    ) -> Result<Option<String>, PipelineError> {
        if !(closing.won && p.motion.is_upsell()) {
            return Ok(None);
        }
        let held = self
            .health
            .active_subscriptions(&current.account_id)
            .await
            .map_err(unavailable)?;
        self.upsell_subscription(
            &held,
            &current.account_id,
            &current.product_id,
            current.subscription_id.as_deref(),
            p.amount.currency(),
            "opportunity.subscription_id",
        )
        .map(Some)
        .map_err(|e| transition::upsell_close_refusal(current, e))
    }

    /// The opportunity `id`, read to be changed at the caller's etag.
    async fn load_at(
        &self,
        id: &OpportunityId,
        expected: i64,
    ) -> Result<opportunity::Model, PipelineError> {
        let current = self
            .store
            .opportunity(*id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("opportunity", id.to_string()))?;
        Self::check_etag(&current, expected)?;
        Ok(current)
    }

    /// What a plan is made against: this service's configuration, now, the caller.
    fn planning<'a>(&'a self, principal: &'a str, now: DateTime<Utc>) -> Planning<'a> {
        Planning {
            config: &self.config,
            now,
            principal,
        }
    }

    /// Writes a planned change, guarded by the version it was planned from.
    async fn persist(
        &self,
        current: &opportunity::Model,
        expected: i64,
        change: OpportunityChange,
        occurred_at: Option<DateTime<Utc>>,
        principal: &str,
    ) -> Result<opportunity::Model, PipelineError> {
        self.store
            .update_opportunity(
                OpportunityWrite {
                    id: current.id.clone(),
                    expected_version: expected,
                    changes: change.changes,
                    history: change.history,
                    events: change.events,
                    occurred_at,
                },
                principal,
            )
            .await
    }
}
