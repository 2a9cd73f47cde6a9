//! Creating an opportunity as a plan: the row, its first history rows and
//! its created event (`plan_creation`); and for CreateOpportunityFromTrigger,
//! which triggers become opportunities and what they start as
//! (`plan_from_trigger`). Pure: the service loads the trigger and checks the
//! references, the store inserts what the plan says.

use chrono::{DateTime, NaiveDate, Utc};
use contracts::ApiError;
use contracts::pb::pipeline::v1 as pb;
use contracts::wire;
use domain::{
    AccountId, Money, Motion, OpportunityId, ProductId, Stage, SubscriptionId, TriggerId,
};
use sea_orm::Set;
use storage::events::NewEvent;

use super::config::PipelineConfig;
use super::transition::{HistoryNote, Planning, event, with_source_time};
use super::{NewOpportunity, Source, deal_amount, id, optional_id, optional_name, to_json};
use crate::entity::opportunity;
use crate::error::PipelineError;
use crate::health::{TriggerInfo, TriggerStatus};

/// How an opportunity comes to be, beyond its own fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreationContext {
    /// When an import says it was created (`occur_time`); `None`: now.
    pub occurred_at: Option<DateTime<Utc>>,
    /// What health said of the account (JSON), when it could say.
    pub health_snapshot: Option<String>,
    /// History rows after the stage it starts in (a trigger's override).
    pub notes: Vec<HistoryNote>,
    /// More of the created event's data (the trigger it came from).
    pub event_extra: serde_json::Map<String, serde_json::Value>,
}

/// What creating an opportunity writes, in one transaction.
#[derive(Debug, Clone)]
pub struct OpportunityCreation {
    pub row: opportunity::ActiveModel,
    /// The stage it starts in, then the context's notes.
    pub history: Vec<HistoryNote>,
    /// When it was created and entered its first stage: the history's time.
    pub created_at: DateTime<Utc>,
    pub event: NewEvent,
}

/// What inserting `new` as opportunity `id` writes. It is created, and
/// enters its stage, at the context's `occurred_at` or now (`at.now`, when
/// the row is written either way).
pub fn plan_creation(
    new: &NewOpportunity,
    id: OpportunityId,
    context: CreationContext,
    at: Planning<'_>,
) -> Result<OpportunityCreation, PipelineError> {
    let id = id.to_string();
    let created_at = context.occurred_at.unwrap_or(at.now);
    let row = creation_row(new, &id, created_at, context.health_snapshot, at)?;
    let first_stage = HistoryNote {
        field: "stage",
        previous: None,
        new: Some(new.stage.as_str().to_owned()),
        reason: Some("created".to_owned()),
    };
    let mut history = vec![first_stage];
    history.extend(context.notes);
    let mut created = event(
        "pipeline.opportunity.created",
        &id,
        serde_json::json!({
            "opportunity_id": id,
            "account_id": new.account_id.to_string(),
            "product_id": new.product_id.to_string(),
            "motion": new.motion.as_str(),
            "stage": new.stage.as_str(),
            "amount": new.amount.to_amount_string(),
            "currency_code": new.amount.currency().code(),
            "source": new.source.kind().as_str_name(),
            "trigger_id": new.source.trigger_id(),
            "principal": at.principal,
        }),
    );
    if let Some(data) = created.data.as_object_mut() {
        data.extend(context.event_extra);
    }
    // A backdated creation says when it happened (the event is written now).
    with_source_time(Some(&mut created), context.occurred_at);
    Ok(OpportunityCreation {
        row,
        history,
        created_at,
        event: created,
    })
}

/// The new row: `new`'s fields, version 1, in its first stage since `created_at`.
fn creation_row(
    new: &NewOpportunity,
    id: &str,
    created_at: DateTime<Utc>,
    health_snapshot: Option<String>,
    at: Planning<'_>,
) -> Result<opportunity::ActiveModel, PipelineError> {
    Ok(opportunity::ActiveModel {
        id: Set(id.to_owned()),
        account_id: Set(new.account_id.to_string()),
        product_id: Set(new.product_id.to_string()),
        source_product_id: Set(new.source_product_id.map(|p| p.to_string())),
        name: Set(new.name.clone()),
        motion: Set(new.motion.into()),
        amount_minor: Set(new.amount.minor()),
        currency: Set(new.amount.currency().code().to_owned()),
        stage: Set(new.stage.into()),
        probability: Set(new.probability.to_decimal_string()),
        probability_overridden: Set(new.probability_overridden),
        forecast_category: Set(new.forecast_category.as_str_name().to_owned()),
        close_date: Set(new.close_date),
        source_kind: Set(new.source.kind().as_str_name().to_owned()),
        source_trigger_id: Set(new.source.trigger_id()),
        owner: Set(new.owner.clone()),
        owner_team: Set(new.owner_team.clone()),
        originator: Set(new.originator.clone()),
        stakeholders: Set(to_json(&new.stakeholders)?),
        discovery_notes: Set(new.discovery_notes.clone()),
        qualification: Set(to_json(&new.qualification)?),
        health_snapshot: Set(health_snapshot),
        lost_reason: Set(None),
        version: Set(1),
        created_at: Set(created_at),
        created_by: Set(at.principal.to_owned()),
        updated_at: Set(at.now),
        updated_by: Set(at.principal.to_owned()),
        stage_entered_at: Set(Some(created_at)),
        strategic_value: Set(new.strategic_value.map(|r| r.as_str().to_owned())),
        subscription_id: Set(new.subscription_id.map(|s| s.to_string())),
        account_name: Set(new.account_name.clone()),
        product_name: Set(new.product_name.clone()),
    })
}

/// A validated `CreateOpportunityFromTrigger`.
#[derive(Debug, Clone, PartialEq)]
pub struct FromTrigger {
    pub trigger_id: TriggerId,
    pub amount: Money,
    pub close_date: Option<NaiveDate>,
    /// Why a SUPPRESSED trigger becomes an opportunity anyway.
    pub override_reason: Option<String>,
    /// The product sold: required for a cross-sell (the trigger's product is
    /// the one the account grows from), else the trigger's by default.
    pub product_id: Option<ProductId>,
    /// `None`: the caller.
    pub owner: Option<String>,
    pub owner_team: Option<String>,
    /// `None`: the caller.
    pub originator: Option<String>,
    pub name: Option<String>,
    pub subscription_id: Option<SubscriptionId>,
}

impl FromTrigger {
    pub fn from_request(req: &pb::CreateOpportunityFromTriggerRequest) -> Result<Self, ApiError> {
        Ok(Self {
            trigger_id: id("trigger_id", &req.trigger_id, TriggerId::parse)?,
            amount: deal_amount("amount", req.amount.as_ref())?,
            close_date: wire::optional_date("close_date", &req.close_date)?,
            override_reason: wire::optional_text(
                "override_reason",
                &req.override_reason,
                wire::MAX_NOTE_LEN,
            )?,
            product_id: optional_id("product_id", &req.product_id, ProductId::parse)?,
            owner: optional_name("owner", &req.owner)?,
            owner_team: optional_name("owner_team", &req.owner_team)?,
            originator: optional_name("originator", &req.originator)?,
            name: optional_name("name", &req.name)?,
            subscription_id: optional_id(
                "subscription_id",
                &req.subscription_id,
                SubscriptionId::parse,
            )?,
        })
    }
}

/// Whether the trigger may become an opportunity: once only (`existing` is
/// the one it already became), and only READY — or SUPPRESSED, overridden
/// with a reason.
pub fn admit_trigger(
    trigger: &TriggerInfo,
    req: &FromTrigger,
    existing: Option<&opportunity::Model>,
) -> Result<(), PipelineError> {
    let trigger_id = req.trigger_id;
    if let Some(existing) = existing {
        return Err(PipelineError::precondition(
            "TRIGGER_ALREADY_CONVERTED",
            trigger_id.to_string(),
            format!(
                "trigger {trigger_id} already became opportunity {}",
                existing.id
            ),
        ));
    }
    match (trigger.status, &req.override_reason) {
        (TriggerStatus::Ready, _) | (TriggerStatus::Suppressed, Some(_)) => Ok(()),
        (TriggerStatus::Suppressed, None) => Err(PipelineError::precondition(
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
        )),
        (status, _) => Err(PipelineError::precondition(
            "TRIGGER_NOT_OPEN",
            trigger_id.to_string(),
            format!(
                "trigger {trigger_id} is {status:?}; only READY (or overridden SUPPRESSED) triggers become opportunities"
            ),
        )),
    }
}

/// What the trigger says the deal is: its motion, account, the product sold
/// and (for a cross-sell) the product the account grows from.
fn trigger_deal(
    trigger: &TriggerInfo,
    req: &FromTrigger,
) -> Result<(Motion, AccountId, ProductId, Option<ProductId>), PipelineError> {
    let trigger_id = req.trigger_id;
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
    let required = |why: &str| PipelineError::from(ApiError::invalid("product_id", why));
    if motion.is_cross_sell() {
        // The trigger fired on the product the account uses; the
        // cross-sell sells another one, which only the caller knows.
        let product = req.product_id.ok_or_else(|| {
            required(
                "is required for a cross-sell trigger: the trigger's product is the one the account grows from",
            )
        })?;
        return Ok((motion, account_id, product, trigger_product));
    }
    let product = req
        .product_id
        .or(trigger_product)
        .ok_or_else(|| required("is required: the trigger names no product"))?;
    Ok((motion, account_id, product, None))
}

/// What an admitted trigger starts as: an IDENTIFIED opportunity of the
/// trigger's account and motion, owned and originated by the caller unless
/// the request names others, and — overriding a SUPPRESSED trigger — the
/// override's history row. The context's snapshot is the service's to add.
pub fn plan_from_trigger(
    trigger: &TriggerInfo,
    req: FromTrigger,
    principal: &str,
    config: &PipelineConfig,
) -> Result<(NewOpportunity, CreationContext), PipelineError> {
    let (motion, account_id, product_id, source_product_id) = trigger_deal(trigger, &req)?;
    let stage = Stage::Identified;
    let context = trigger_context(trigger, &req);
    let new = NewOpportunity {
        account_id,
        product_id,
        source_product_id,
        name: req
            .name
            .unwrap_or_else(|| format!("{} from trigger", motion.as_str())),
        motion,
        amount: req.amount,
        stage,
        probability: config.probability(stage),
        probability_overridden: false,
        forecast_category: pb::ForecastCategory::Pipeline,
        close_date: req.close_date,
        source: Source::Trigger(req.trigger_id),
        owner: req.owner.or_else(|| Some(principal.to_owned())),
        owner_team: req.owner_team,
        originator: Some(req.originator.unwrap_or_else(|| principal.to_owned())),
        stakeholders: Vec::new(),
        discovery_notes: (!trigger.reason.is_empty()).then(|| trigger.reason.clone()),
        qualification: Default::default(),
        strategic_value: None,
        subscription_id: req.subscription_id,
        account_name: None,
        product_name: None,
    };
    Ok((new, context))
}

/// The trigger in the created event, and an overridden suppression in the
/// history.
fn trigger_context(trigger: &TriggerInfo, req: &FromTrigger) -> CreationContext {
    let overridden = trigger.status == TriggerStatus::Suppressed;
    let override_reason = if overridden {
        req.override_reason.clone()
    } else {
        None
    };
    let notes = if overridden {
        vec![HistoryNote {
            field: "trigger_override",
            previous: Some("SUPPRESSED".to_owned()),
            new: Some(trigger.suppression_reason.clone()),
            reason: req.override_reason.clone(),
        }]
    } else {
        Vec::new()
    };
    let mut event_extra = serde_json::Map::new();
    event_extra.insert("trigger_id".into(), req.trigger_id.to_string().into());
    event_extra.insert("trigger_status".into(), trigger.status.as_str().into());
    event_extra.insert("override_reason".into(), override_reason.into());
    CreationContext {
        notes,
        event_extra,
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::entity::opportunity::StoredStage;
    use crate::model::test_support::{now, opportunity_row};
    use contracts::pb::common::v1 as common;

    fn trigger(motion: Motion, status: TriggerStatus) -> TriggerInfo {
        TriggerInfo {
            trigger_id: TriggerId::new().to_string(),
            account_id: AccountId::new().to_string(),
            product_id: ProductId::new().to_string(),
            motion: Some(motion),
            status,
            reason: "usage at 92% of quota".into(),
            suppression_reason: "renewal in 30 days".into(),
        }
    }

    fn request(product_id: Option<ProductId>) -> FromTrigger {
        FromTrigger::from_request(&pb::CreateOpportunityFromTriggerRequest {
            trigger_id: TriggerId::new().to_string(),
            amount: Some(common::Money {
                currency_code: "USD".into(),
                amount: "24000".into(),
            }),
            product_id: product_id.map(|p| p.to_string()).unwrap_or_default(),
            ..Default::default()
        })
        .unwrap()
    }

    fn reason(err: PipelineError) -> String {
        match err {
            PipelineError::Precondition { reason, .. } => reason.to_owned(),
            PipelineError::Invalid(api) => api.field().unwrap_or_default().to_owned(),
            other => panic!("{other:?}"),
        }
    }

    fn at(config: &PipelineConfig) -> Planning<'_> {
        Planning {
            config,
            now: now(),
            principal: "carla.csm",
        }
    }

    #[test]
    fn a_ready_trigger_becomes_an_identified_opportunity_of_its_motion() {
        let config = PipelineConfig::default();
        let t = trigger(Motion::UpsellCapacity, TriggerStatus::Ready);
        let req = request(None);
        let trigger_id = req.trigger_id;
        admit_trigger(&t, &req, None).unwrap();
        let (new, context) = plan_from_trigger(&t, req, "carla.csm", &config).unwrap();
        assert_eq!(new.account_id.to_string(), t.account_id);
        // An upsell grows the trigger's product.
        assert_eq!(new.product_id.to_string(), t.product_id);
        assert_eq!(new.source_product_id, None);
        assert_eq!(new.name, "UPSELL_CAPACITY from trigger");
        assert_eq!(new.stage, Stage::Identified);
        assert_eq!(new.probability, config.probability(Stage::Identified));
        assert_eq!(new.source, Source::Trigger(trigger_id));
        assert_eq!(new.owner.as_deref(), Some("carla.csm"));
        assert_eq!(new.originator.as_deref(), Some("carla.csm"));
        assert_eq!(
            new.discovery_notes.as_deref(),
            Some("usage at 92% of quota")
        );
        assert!(context.notes.is_empty());
        assert_eq!(context.event_extra["trigger_status"], "READY");
        assert_eq!(context.event_extra["trigger_id"], trigger_id.to_string());
        assert!(context.event_extra["override_reason"].is_null());
    }

    #[test]
    fn a_cross_sell_trigger_needs_the_product_sold() {
        let config = PipelineConfig::default();
        let t = trigger(Motion::CrossSellAdjacent, TriggerStatus::Ready);
        let err = plan_from_trigger(&t, request(None), "p", &config).unwrap_err();
        assert_eq!(reason(err), "product_id");
        let sold = ProductId::new();
        let (new, _) = plan_from_trigger(&t, request(Some(sold)), "p", &config).unwrap();
        assert_eq!(new.product_id, sold);
        // The trigger's product is the one the account grows from.
        assert_eq!(
            new.source_product_id.map(|p| p.to_string()),
            Some(t.product_id)
        );
        let mut silent = trigger(Motion::UpsellTier, TriggerStatus::Ready);
        silent.motion = None;
        let err = plan_from_trigger(&silent, request(None), "p", &config).unwrap_err();
        assert_eq!(reason(err), "TRIGGER_WITHOUT_MOTION");
    }

    #[test]
    fn only_ready_or_overridden_suppressed_triggers_convert_and_only_once() {
        let config = PipelineConfig::default();
        let ready = trigger(Motion::UpsellTier, TriggerStatus::Ready);
        let existing = opportunity_row(Stage::Identified);
        let err = admit_trigger(&ready, &request(None), Some(&existing)).unwrap_err();
        assert_eq!(reason(err), "TRIGGER_ALREADY_CONVERTED");
        let closed = trigger(Motion::UpsellTier, TriggerStatus::Closed);
        let err = admit_trigger(&closed, &request(None), None).unwrap_err();
        assert_eq!(reason(err), "TRIGGER_NOT_OPEN");
        let suppressed = trigger(Motion::UpsellTier, TriggerStatus::Suppressed);
        let err = admit_trigger(&suppressed, &request(None), None).unwrap_err();
        assert_eq!(reason(err), "TRIGGER_SUPPRESSED");
        let mut overriding = request(None);
        overriding.override_reason = Some("champion asked".into());
        admit_trigger(&suppressed, &overriding, None).unwrap();
        let (_, context) = plan_from_trigger(&suppressed, overriding, "p", &config).unwrap();
        assert_eq!(
            context.notes,
            [HistoryNote {
                field: "trigger_override",
                previous: Some("SUPPRESSED".into()),
                new: Some("renewal in 30 days".into()),
                reason: Some("champion asked".into()),
            }]
        );
        assert_eq!(context.event_extra["trigger_status"], "SUPPRESSED");
        assert_eq!(context.event_extra["override_reason"], "champion asked");
    }

    #[test]
    fn a_creation_writes_its_row_its_first_stage_and_its_event() {
        let config = PipelineConfig::default();
        let t = trigger(Motion::UpsellTier, TriggerStatus::Ready);
        let (new, mut context) = plan_from_trigger(&t, request(None), "p", &config).unwrap();
        let imported = now() - chrono::Duration::days(3);
        context.occurred_at = Some(imported);
        context.notes.push(HistoryNote {
            field: "owner",
            previous: None,
            new: Some("ana.ae".into()),
            reason: None,
        });
        let id = OpportunityId::new();
        let plan = plan_creation(&new, id, context, at(&config)).unwrap();
        // Created (and in its first stage) when the import says; written now.
        assert_eq!(plan.created_at, imported);
        assert_eq!(plan.row.created_at, Set(imported));
        assert_eq!(plan.row.stage_entered_at, Set(Some(imported)));
        assert_eq!(plan.row.updated_at, Set(now()));
        assert_eq!(plan.row.version, Set(1));
        assert_eq!(plan.row.stage, Set(StoredStage::Identified));
        assert_eq!(plan.row.source_trigger_id, Set(new.source.trigger_id()));
        let fields: Vec<&str> = plan.history.iter().map(|h| h.field).collect();
        assert_eq!(fields, ["stage", "owner"]);
        assert_eq!(plan.history[0].reason.as_deref(), Some("created"));
        assert_eq!(plan.event.event_type, "pipeline.opportunity.created");
        assert_eq!(plan.event.subject_id, id.to_string());
        assert_eq!(plan.event.data["trigger_status"], "READY");
        assert_eq!(plan.event.data["principal"], "carla.csm");
        assert_eq!(plan.event.data["source_time"], imported.to_rfc3339());
    }
}
