//! Opportunities: create (also from a trigger), read, list, update, the
//! stage machine with its gates, close, history, scoring and routing.

use chrono::Duration;
use contracts::pb::pipeline::v1 as pb;
use contracts::{page, wire};
use domain::{
    AccountId, Currency, Decimal, OpportunityId, ProductId, Stage, SubscriptionId, TriggerId,
};
use sea_orm::Set;

use super::{
    SortKey, closed_won_handoff, event, invalid, note, opt_text, parse_id, ratings_request,
    unavailable,
};
use crate::api::PipelineService;
use crate::convert::{history_to_pb, opportunity_to_pb, parse_row};
use crate::entity::opportunity;
use crate::error::PipelineError;
use crate::health::HealthError;
use crate::model::gates::{GateFacts, check_gates};
use crate::model::handoff::HandoffStatus;
use crate::model::priority::{expected_value, priority_score};
use crate::model::qualification::{QualificationPriority, score_qualification};
use crate::model::routing::{Route, RoutingFacts, route_opportunity};
use crate::model::{
    HealthSnapshot, NewOpportunity, Source, UpdateRequest, deal_amount, etag, rating_from_name,
};
use crate::store::{HandoffFilter, HistoryNote, OpportunityFilter, OpportunityWrite, to_json};

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
        // Creation order is id order (UUIDv7): the database pages it. The
        // value sorts rank every matching row in memory first.
        if matches!(
            sort,
            pb::OpportunitySortOrder::Unspecified | pb::OpportunitySortOrder::CreateTime
        ) {
            filter.after_id = after.as_ref().map(|k| k.id.clone());
            filter.limit = Some(size + 1);
        }
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
        Ok(pb::ListOpportunitiesResponse {
            opportunities,
            next_page_token,
        })
    }

    pub(crate) async fn get_opportunity_history_op(
        &self,
        req: &pb::GetOpportunityHistoryRequest,
    ) -> Result<pb::GetOpportunityHistoryResponse, PipelineError> {
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
        let source = new.source_product_id.map(|p| p.to_string());
        let snapshot = self
            .snapshot(&new.account_id.to_string(), source.as_deref())
            .await;
        let snapshot = snapshot.as_ref().map(to_json).transpose()?;
        let model = self
            .store
            .create_opportunity(
                &new,
                occurred_at,
                snapshot,
                &[],
                serde_json::json!({}),
                &principal,
            )
            .await?;
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
        let trigger_id = parse_id("trigger_id", &req.trigger_id, TriggerId::parse)?;
        let amount = deal_amount("amount", req.amount.as_ref()).map_err(PipelineError::from)?;
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
        let requested_subscription = if req.subscription_id.is_empty() {
            None
        } else {
            Some(parse_id(
                "subscription_id",
                &req.subscription_id,
                SubscriptionId::parse,
            )?)
        };

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
            subscription_id: requested_subscription,
            account_name: None,
            product_name: None,
        };
        let mut new = new;
        self.resolve_references(&mut new, "subscription_id").await?;
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
                None,
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

    pub(crate) async fn update_opportunity_once(
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
        // What the deal will be once patched: what its subscription must match.
        let motion = patch.motion.unwrap_or(p.motion);
        let product = patch
            .product_id
            .map_or_else(|| current.product_id.clone(), |v| v.to_string());
        let currency = patch
            .amount
            .as_ref()
            .map_or(p.amount.currency(), |a| a.currency());
        let mut changes = opportunity::ActiveModel::default();
        let mut history = Vec::new();
        let mut changed: Vec<&str> = Vec::new();
        if let Some(v) = patch.name {
            changes.name = Set(v);
            changed.push("name");
        }
        if let Some(v) = patch.product_id
            && v.to_string() != current.product_id
        {
            // A product the health service knows (SPEC §3), kept with its name.
            let product = self
                .health
                .product(&v.to_string())
                .await
                .map_err(|e| super::reference_error("product", &v.to_string(), e))?;
            changes.product_id = Set(v.to_string());
            changes.product_name = Set(Some(product.name));
            // The subscription an upsell grows is chosen again at the close.
            changes.subscription_id = Set(None);
            changed.push("product_id");
        }
        if let Some(v) = patch.source_product_id {
            changes.source_product_id = Set(v.map(|p| p.to_string()));
            changed.push("source_product_id");
        }
        if let Some(v) = patch.motion
            && v != p.motion
        {
            changes.motion = Set(v.as_str().to_owned());
            changes.subscription_id = Set(None);
            changed.push("motion");
        }
        if let Some(named) = patch.subscription_id {
            let chosen = self
                .updated_subscription(&current.account_id, &product, motion, currency, named)
                .await?;
            if chosen != current.subscription_id {
                changed.push("subscription_id");
            }
            changes.subscription_id = Set(chosen);
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
                    occurred_at: None,
                },
                &principal,
            )
            .await?;
        Ok(pb::UpdateOpportunityResponse {
            opportunity: Some(self.to_pb(model)?),
        })
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
        // An import's stage change happened when the CRM says, after the
        // stage it leaves was entered.
        let occurred_at =
            super::occur_time(req.occur_time.as_ref(), now, Some(p.stage_entered_at))?;
        let mut changes = opportunity::ActiveModel::default();
        let mut history = Vec::new();
        let mut events = Vec::new();
        if req.reopen {
            // Admin only: the API layer refused anyone else already.
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
        // A stage move sets the new stage's default probability; an override the
        // caller had set is replaced, and the answer says so (SPEC §3).
        let probability_reset = current.probability_overridden && probability != p.probability;
        if probability != p.probability {
            history.push(HistoryNote {
                field: "probability",
                previous: Some(p.probability.to_decimal_string()),
                new: Some(probability.to_decimal_string()),
                reason: probability_reset.then(|| {
                    format!(
                        "the {} default replaces the overridden probability",
                        to.as_str()
                    )
                }),
            });
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
                "probability_reset": probability_reset,
                "reason": reason,
                "principal": principal,
            }),
        ));
        super::with_source_time(events.last_mut(), occurred_at);
        let model = self
            .store
            .update_opportunity(
                OpportunityWrite {
                    id: current.id.clone(),
                    expected_version: expected,
                    changes,
                    history,
                    events,
                    occurred_at,
                },
                &principal,
            )
            .await?;
        Ok(pb::AdvanceStageResponse {
            opportunity: Some(self.to_pb(model)?),
            probability_reset,
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
        // An upsell grows a subscription the account holds (SPEC §3): the one
        // it names, which must still be an active one of its product (an
        // update of the product or motion clears it: then the only one);
        // with none, closing won is refused
        // rather than inventing one. (Health checks it is in force on the
        // close date.)
        let upsell_subscription = if req.won && p.motion.is_upsell() {
            let held = self
                .health
                .active_subscriptions(&current.account_id)
                .await
                .map_err(unavailable)?;
            let named = current.subscription_id.as_deref();
            let chosen = self
                .upsell_subscription(
                    &held,
                    &current.account_id,
                    &current.product_id,
                    named,
                    p.amount.currency(),
                    "opportunity.subscription_id",
                )
                .map_err(|e| match e {
                    PipelineError::Precondition { .. } => PipelineError::precondition(
                        "NO_SUBSCRIPTION_TO_UPSELL",
                        &current.id,
                        format!(
                            "account {} holds no active subscription of product {} for this \
                             upsell to grow{}; close it lost, or sell the product as a cross-sell",
                            current.account_id,
                            current.product_id,
                            current
                                .subscription_id
                                .as_deref()
                                .map(|s| format!(" (subscription {s} is no longer active)"))
                                .unwrap_or_default()
                        ),
                    ),
                    // Several subscriptions and none named, or another
                    // currency: the opportunity's state, not this request's
                    // fields, stands in the way.
                    PipelineError::Invalid(why) => PipelineError::precondition(
                        "UPSELL_SUBSCRIPTION_UNCLEAR",
                        &current.id,
                        format!(
                            "{why}; close it lost and open the upsell again naming its subscription"
                        ),
                    ),
                    other => other,
                })?;
            Some(chosen)
        } else {
            None
        };
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
                    "subscription_id": upsell_subscription,
                    "account_name": current.account_name,
                    "product_name": current.product_name,
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
                    "trigger_id": current.source_trigger_id,
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
                    occurred_at: None,
                },
                &principal,
            )
            .await?;
        Ok(pb::CloseOpportunityResponse {
            opportunity: Some(self.to_pb(model)?),
        })
    }
}
