//! Stage transitions as plans: given the stored opportunity (and what the
//! health service said, loaded beforehand), what moving, reopening, closing
//! or updating it writes — the changed columns, the history rows, the
//! events — or why it is refused. Pure: the service loads, plans, persists.

use chrono::{DateTime, NaiveDate, Utc};
use contracts::ApiError;
use contracts::pb::pipeline::v1 as pb;
use domain::Stage;
use sea_orm::Set;
use storage::events::NewEvent;

use super::config::PipelineConfig;
use super::gates::{GateFacts, GateOutcome, HealthView, check_gates};
use super::{HealthSnapshot, OpportunityPatch, Parsed, to_json};
use crate::entity::{handoff, opportunity};
use crate::error::PipelineError;

/// One history row to write: a changed field, its previous and new value, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryNote {
    pub field: &'static str,
    pub previous: Option<String>,
    pub new: Option<String>,
    pub reason: Option<String>,
}

/// A history row without a reason.
pub fn note(field: &'static str, previous: Option<String>, new: Option<String>) -> HistoryNote {
    HistoryNote {
        field,
        previous,
        new,
        reason: None,
    }
}

/// An event for the pipeline's log.
pub fn event(event_type: &'static str, subject: &str, data: serde_json::Value) -> NewEvent {
    NewEvent {
        event_type: event_type.into(),
        subject_id: subject.to_owned(),
        data,
    }
}

/// Adds `source_time` to a backdated write's event: when it happened in the
/// source system (the event itself is written now).
pub fn with_source_time(event: Option<&mut NewEvent>, at: Option<DateTime<Utc>>) {
    if let (Some(event), Some(at)) = (event, at)
        && let Some(data) = event.data.as_object_mut()
    {
        data.insert("source_time".into(), serde_json::json!(at.to_rfc3339()));
    }
}

/// What a planned change writes to one opportunity: only the `Set` columns
/// change; the history rows and events go in the same transaction.
#[derive(Debug, Clone, Default)]
pub struct OpportunityChange {
    pub changes: opportunity::ActiveModel,
    pub history: Vec<HistoryNote>,
    pub events: Vec<NewEvent>,
}

/// What every plan is made against: the configuration, the clock, the caller.
#[derive(Debug, Clone, Copy)]
pub struct Planning<'a> {
    pub config: &'a PipelineConfig,
    pub now: DateTime<Utc>,
    pub principal: &'a str,
}

fn invalid(field: &str, why: &str) -> PipelineError {
    PipelineError::from(ApiError::invalid(field, why))
}

fn invalid_transition(current: &opportunity::Model, err: impl std::fmt::Display) -> PipelineError {
    PipelineError::precondition("INVALID_STAGE_TRANSITION", &current.id, err.to_string())
}

/// A validated `AdvanceStage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageMove {
    pub to: Stage,
    pub reopen: bool,
    pub reason: Option<String>,
    pub override_reason: Option<String>,
    /// When an import says the move happened (`occur_time`); `None`: now.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// The stage an `AdvanceStage` asks for: a reopen (which needs a reason)
/// restarts at IDENTIFIED; a closed stage is CloseOpportunity's to set.
pub fn requested_stage(
    reopen: bool,
    to: Option<Stage>,
    reason: Option<&str>,
) -> Result<Stage, PipelineError> {
    if reopen && reason.is_none() {
        return Err(invalid(
            "reason",
            "is required to reopen a closed opportunity",
        ));
    }
    match (reopen, to) {
        (true, None | Some(Stage::Identified)) => Ok(Stage::Identified),
        (true, Some(_)) => Err(invalid(
            "to_stage",
            "a reopened opportunity restarts at STAGE_IDENTIFIED",
        )),
        (false, None) => Err(invalid("to_stage", "is required")),
        (false, Some(s)) if s.is_closed() => Err(invalid(
            "to_stage",
            "close with CloseOpportunity (it records the outcome and lost reason)",
        )),
        (false, Some(s)) => Ok(s),
    }
}

/// Whether the move may be tried at all, before health is asked: only a
/// closed opportunity is reopened; any other move follows the stage machine.
pub fn admit_stage_move(
    current: &opportunity::Model,
    from: Stage,
    mv: &StageMove,
) -> Result<(), PipelineError> {
    if !mv.reopen {
        return from
            .check_transition(mv.to)
            .map_err(|e| invalid_transition(current, e));
    }
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
    Ok(())
}

/// A planned stage move, and whether it replaced a probability the caller
/// had overridden (the answer says so).
#[derive(Debug, Clone)]
pub struct StageMovePlan {
    pub change: OpportunityChange,
    pub probability_reset: bool,
}

/// What an admitted stage move writes. `health` is what the health service
/// said when the move needs its gate (`Ok(None)` when it does not, `Err`
/// with why it could not answer when an override lets the move try anyway).
pub fn plan_stage_move(
    current: &opportunity::Model,
    p: &Parsed,
    mv: &StageMove,
    health: Result<Option<&HealthView>, &str>,
    at: Planning<'_>,
) -> Result<StageMovePlan, PipelineError> {
    let mut change = OpportunityChange::default();
    if mv.reopen {
        plan_reopen(&mut change, current, p.stage, mv, at);
    } else {
        plan_gates(&mut change, current, p, mv, health, at)?;
    }
    let probability_reset = plan_stage_entry(&mut change, current, p, mv, at);
    Ok(StageMovePlan {
        change,
        probability_reset,
    })
}

/// A reopen clears the lost reason and puts the deal back in the pipeline.
fn plan_reopen(
    change: &mut OpportunityChange,
    current: &opportunity::Model,
    from: Stage,
    mv: &StageMove,
    at: Planning<'_>,
) {
    change.changes.lost_reason = Set(None);
    change.changes.forecast_category = Set(pb::ForecastCategory::Pipeline.as_str_name().to_owned());
    change.events.push(event(
        "pipeline.opportunity.reopened",
        &current.id,
        serde_json::json!({
            "opportunity_id": current.id,
            "from_stage": from.as_str(),
            "reason": mv.reason,
            "principal": at.principal,
        }),
    ));
}

/// The gates of a forward or backward move: refused with every blocking
/// violation, or passed (a health snapshot kept, overrides recorded).
fn plan_gates(
    change: &mut OpportunityChange,
    current: &opportunity::Model,
    p: &Parsed,
    mv: &StageMove,
    health: Result<Option<&HealthView>, &str>,
    at: Planning<'_>,
) -> Result<(), PipelineError> {
    let (from, to) = (p.stage, mv.to);
    let source = current.source_product_id.as_deref();
    let facts = GateFacts {
        opportunity_id: &current.id,
        account_id: &current.account_id,
        motion: p.motion,
        source_product_id: source,
        amount: p.amount,
        qualification: &p.qualification,
        stakeholders: &p.stakeholders,
    };
    let outcome = check_gates(
        from,
        to,
        &facts,
        health,
        mv.override_reason.as_deref(),
        at.config,
    )
    .map_err(|violations| PipelineError::GateRefused {
        message: format!(
            "opportunity {} cannot move from {from} to {to}: {} unmet condition(s)",
            current.id,
            violations.len()
        ),
        violations,
    })?;
    if let Ok(Some(view)) = health {
        let snap = HealthSnapshot::capture(view, source, at.now);
        change.changes.health_snapshot = Set(Some(to_json(&snap)?));
    }
    if !outcome.overridden.is_empty() {
        record_overrides(change, current, from, mv, &outcome, at);
    }
    Ok(())
}

/// Health conditions overridden with a reason: a history row and an event.
fn record_overrides(
    change: &mut OpportunityChange,
    current: &opportunity::Model,
    from: Stage,
    mv: &StageMove,
    outcome: &GateOutcome,
    at: Planning<'_>,
) {
    let kinds: Vec<&str> = outcome.overridden.iter().map(|v| v.kind.as_str()).collect();
    change.history.push(HistoryNote {
        field: "health_gate_override",
        previous: None,
        new: Some(kinds.join(",")),
        reason: mv.override_reason.clone(),
    });
    let overridden: Vec<serde_json::Value> = outcome
        .overridden
        .iter()
        .map(|v| {
            serde_json::json!({
                "kind": v.kind, "subject": v.subject, "description": v.description,
            })
        })
        .collect();
    change.events.push(event(
        "pipeline.opportunity.gate_overridden",
        &current.id,
        serde_json::json!({
            "opportunity_id": current.id,
            "from_stage": from.as_str(),
            "to_stage": mv.to.as_str(),
            "overridden": overridden,
            "reason": mv.override_reason,
            "principal": at.principal,
        }),
    ));
}

/// Entering the new stage: its default probability (replacing an override,
/// SPEC §3), the stage row first in the history, and the stage_changed event.
/// Returns whether an overridden probability was replaced.
fn plan_stage_entry(
    change: &mut OpportunityChange,
    current: &opportunity::Model,
    p: &Parsed,
    mv: &StageMove,
    at: Planning<'_>,
) -> bool {
    let (from, to) = (p.stage, mv.to);
    let probability = at.config.probability(to);
    change.changes.stage = Set(to.into());
    change.changes.stage_entered_at = Set(Some(at.now));
    change.changes.probability = Set(probability.to_decimal_string());
    change.changes.probability_overridden = Set(false);
    let stage_reason = if mv.reopen {
        mv.reason.as_ref().map(|r| format!("reopened: {r}"))
    } else {
        mv.reason.clone()
    };
    change.history.insert(
        0,
        HistoryNote {
            field: "stage",
            previous: Some(from.as_str().to_owned()),
            new: Some(to.as_str().to_owned()),
            reason: stage_reason,
        },
    );
    let probability_reset = current.probability_overridden && probability != p.probability;
    if probability != p.probability {
        change.history.push(HistoryNote {
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
    change.events.push(event(
        "pipeline.opportunity.stage_changed",
        &current.id,
        serde_json::json!({
            "opportunity_id": current.id,
            "account_id": current.account_id,
            "from_stage": from.as_str(),
            "to_stage": to.as_str(),
            "probability": probability.to_decimal_string(),
            "probability_reset": probability_reset,
            "reason": mv.reason,
            "principal": at.principal,
        }),
    ));
    with_source_time(change.events.last_mut(), mv.occurred_at);
    probability_reset
}

/// A validated `CloseOpportunity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub won: bool,
    pub lost_reason: Option<String>,
    /// `None`: today.
    pub close_date: Option<NaiveDate>,
}

impl Closing {
    /// The closed stage this close moves to.
    pub fn stage(&self) -> Stage {
        if self.won {
            Stage::ClosedWon
        } else {
            Stage::ClosedLost
        }
    }
}

/// Whether the opportunity may close now (the stage machine allows it).
pub fn admit_close(
    current: &opportunity::Model,
    p: &Parsed,
    closing: &Closing,
) -> Result<(), PipelineError> {
    p.stage
        .check_transition(closing.stage())
        .map_err(|e| invalid_transition(current, e))
}

/// What a won deal carries to the credit and health services, loaded
/// before the close is planned.
#[derive(Debug, Clone, Default)]
pub struct WonFacts<'a> {
    /// For an upsell: the subscription it grows.
    pub subscription_id: Option<String>,
    /// The accepted handoff that brought Sales in, if any.
    pub handoff: Option<&'a handoff::Model>,
}

/// An upsell's subscription refusal at the close, as the opportunity's state
/// (not the request's fields) standing in the way.
pub fn upsell_close_refusal(current: &opportunity::Model, err: PipelineError) -> PipelineError {
    match err {
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
        // Several subscriptions and none named, or another currency.
        PipelineError::Invalid(why) => PipelineError::precondition(
            "UPSELL_SUBSCRIPTION_UNCLEAR",
            &current.id,
            format!("{why}; close it lost and open the upsell again naming its subscription"),
        ),
        other => other,
    }
}

/// What an admitted close writes: the closed stage, its probability and
/// forecast category, the close date (today by default), history, the
/// stage_changed event and the closed_won (everything the credit and health
/// services need to act without calling back) or closed_lost event.
pub fn plan_close(
    current: &opportunity::Model,
    p: &Parsed,
    closing: &Closing,
    won: &WonFacts<'_>,
    at: Planning<'_>,
) -> OpportunityChange {
    let to = closing.stage();
    let close_date = closing.close_date.unwrap_or_else(|| at.now.date_naive());
    let probability = at.config.probability(to);
    let category = if closing.won {
        pb::ForecastCategory::Closed
    } else {
        pb::ForecastCategory::Omitted
    };
    let mut changes = opportunity::ActiveModel {
        stage: Set(to.into()),
        stage_entered_at: Set(Some(at.now)),
        probability: Set(probability.to_decimal_string()),
        probability_overridden: Set(false),
        close_date: Set(Some(close_date)),
        forecast_category: Set(category.as_str_name().to_owned()),
        ..Default::default()
    };
    if !closing.won {
        changes.lost_reason = Set(closing.lost_reason.clone());
    }
    let mut history = vec![HistoryNote {
        field: "stage",
        previous: Some(p.stage.as_str().to_owned()),
        new: Some(to.as_str().to_owned()),
        reason: closing.lost_reason.clone(),
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
    let stage_changed = event(
        "pipeline.opportunity.stage_changed",
        &current.id,
        serde_json::json!({
            "opportunity_id": current.id,
            "account_id": current.account_id,
            "from_stage": p.stage.as_str(),
            "to_stage": to.as_str(),
            "probability": probability.to_decimal_string(),
            "principal": at.principal,
        }),
    );
    let outcome = if closing.won {
        closed_won_event(current, p, close_date, won, at.principal)
    } else {
        closed_lost_event(current, p, close_date, closing, at.principal)
    };
    OpportunityChange {
        changes,
        history,
        events: vec![stage_changed, outcome],
    }
}

fn closed_won_event(
    current: &opportunity::Model,
    p: &Parsed,
    close_date: NaiveDate,
    won: &WonFacts<'_>,
    principal: &str,
) -> NewEvent {
    event(
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
            "subscription_id": won.subscription_id,
            "account_name": current.account_name,
            "product_name": current.product_name,
            "handoff": closed_won_handoff(won.handoff),
            "principal": principal,
        }),
    )
}

fn closed_lost_event(
    current: &opportunity::Model,
    p: &Parsed,
    close_date: NaiveDate,
    closing: &Closing,
    principal: &str,
) -> NewEvent {
    event(
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
            "lost_reason": closing.lost_reason,
            "trigger_id": current.source_trigger_id,
            "principal": principal,
        }),
    )
}

/// The accepted handoff as the closed_won event carries it (null without one).
pub fn closed_won_handoff(h: Option<&handoff::Model>) -> serde_json::Value {
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

/// What an update needed from the health service, asked before it is planned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateLookups {
    /// The name of the new product, when the update changes the product.
    pub product_name: Option<String>,
    /// The subscription the updated upsell grows, when the update names one
    /// (`Some(None)`: to be chosen at the close).
    pub subscription_id: Option<Option<String>>,
}

/// The product an update moves the opportunity to, if it changes it (the
/// service asks health for its name).
pub fn changed_product(
    current: &opportunity::Model,
    patch: &OpportunityPatch,
) -> Option<domain::ProductId> {
    patch
        .product_id
        .filter(|v| v.to_string() != current.product_id)
}

/// What an update writes: the patched columns, history rows for the fields
/// whose history is kept (amount, probability, close date, owner) and the
/// updated event naming every field set.
pub fn plan_update(
    current: &opportunity::Model,
    p: &Parsed,
    patch: OpportunityPatch,
    looked_up: UpdateLookups,
    at: Planning<'_>,
) -> Result<OpportunityChange, PipelineError> {
    let mut plan = UpdatePlan {
        current,
        change: OpportunityChange::default(),
        changed: Vec::new(),
    };
    plan.product_and_motion(p, &patch, looked_up);
    plan.money(p, &patch, at.config);
    plan.people_and_notes(patch)?;
    let UpdatePlan {
        mut change,
        changed,
        ..
    } = plan;
    change.events.push(event(
        "pipeline.opportunity.updated",
        &current.id,
        serde_json::json!({
            "opportunity_id": current.id,
            "fields": changed,
            "principal": at.principal,
        }),
    ));
    Ok(change)
}

/// An update being planned: the change so far and the fields it set.
struct UpdatePlan<'a> {
    current: &'a opportunity::Model,
    change: OpportunityChange,
    changed: Vec<&'static str>,
}

impl UpdatePlan<'_> {
    fn history(&mut self, row: HistoryNote) {
        self.change.history.push(row);
    }

    /// Name, product, source product, motion and subscription; a new
    /// product or motion clears the subscription, chosen again at the close.
    fn product_and_motion(&mut self, p: &Parsed, patch: &OpportunityPatch, looked: UpdateLookups) {
        let c = &mut self.change.changes;
        if let Some(v) = &patch.name {
            c.name = Set(v.clone());
            self.changed.push("name");
        }
        if let Some(v) = changed_product(self.current, patch) {
            c.product_id = Set(v.to_string());
            c.product_name = Set(looked.product_name);
            c.subscription_id = Set(None);
            self.changed.push("product_id");
        }
        if let Some(v) = patch.source_product_id {
            c.source_product_id = Set(v.map(|p| p.to_string()));
            self.changed.push("source_product_id");
        }
        if let Some(v) = patch.motion
            && v != p.motion
        {
            c.motion = Set(v.into());
            c.subscription_id = Set(None);
            self.changed.push("motion");
        }
        if let Some(chosen) = looked.subscription_id {
            if chosen != self.current.subscription_id {
                self.changed.push("subscription_id");
            }
            c.subscription_id = Set(chosen);
        }
    }

    /// Amount, probability (`Some(None)`: back to the stage default),
    /// forecast category and close date.
    fn money(&mut self, p: &Parsed, patch: &OpportunityPatch, config: &PipelineConfig) {
        if let Some(amount) = patch.amount
            && amount != p.amount
        {
            self.change.changes.amount_minor = Set(amount.minor());
            self.change.changes.currency = Set(amount.currency().code().to_owned());
            self.history(note(
                "amount",
                Some(p.amount.to_string()),
                Some(amount.to_string()),
            ));
            self.changed.push("amount");
        }
        if let Some(probability) = patch.probability {
            let (value, overridden) = match probability {
                Some(v) => (v, true),
                None => (config.probability(p.stage), false),
            };
            if value != p.probability {
                self.history(note(
                    "probability",
                    Some(p.probability.to_decimal_string()),
                    Some(value.to_decimal_string()),
                ));
                self.changed.push("probability");
            }
            self.change.changes.probability = Set(value.to_decimal_string());
            self.change.changes.probability_overridden = Set(overridden);
        }
        if let Some(v) = patch.forecast_category {
            self.change.changes.forecast_category = Set(v.as_str_name().to_owned());
            self.changed.push("forecast_category");
        }
        if let Some(v) = patch.close_date
            && v != self.current.close_date
        {
            self.history(note(
                "close_date",
                self.current.close_date.map(|d| d.to_string()),
                v.map(|d| d.to_string()),
            ));
            self.change.changes.close_date = Set(v);
            self.changed.push("close_date");
        }
    }

    /// Owner, team, originator, stakeholders, notes, qualification and
    /// strategic value.
    fn people_and_notes(&mut self, patch: OpportunityPatch) -> Result<(), PipelineError> {
        if let Some(v) = patch.owner {
            if v != self.current.owner {
                let previous = self.current.owner.clone();
                self.history(note("owner", previous, v.clone()));
            }
            self.change.changes.owner = Set(v);
            self.changed.push("owner");
        }
        let c = &mut self.change.changes;
        if let Some(v) = patch.owner_team {
            c.owner_team = Set(v);
            self.changed.push("owner_team");
        }
        if let Some(v) = patch.originator {
            c.originator = Set(v);
            self.changed.push("originator");
        }
        if let Some(v) = patch.stakeholders {
            c.stakeholders = Set(to_json(&v)?);
            self.changed.push("stakeholders");
        }
        if let Some(v) = patch.discovery_notes {
            c.discovery_notes = Set(v);
            self.changed.push("discovery_notes");
        }
        if let Some(v) = patch.qualification {
            c.qualification = Set(to_json(&v)?);
            self.changed.push("qualification");
        }
        if let Some(v) = patch.strategic_value {
            c.strategic_value = Set(v.map(|r| r.as_str().to_owned()));
            self.changed.push("strategic_value");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::convert::parse_row;
    use domain::{Currency, Money, Percent};
    use sea_orm::ActiveValue;

    use crate::model::test_support::now;

    fn row(stage: Stage) -> opportunity::Model {
        crate::model::test_support::opportunity_row(stage)
    }

    fn at(config: &PipelineConfig) -> Planning<'_> {
        Planning {
            config,
            now: now(),
            principal: "ae@x",
        }
    }

    fn stage_move(to: Stage, reopen: bool) -> StageMove {
        StageMove {
            to,
            reopen,
            reason: Some("why".into()),
            override_reason: None,
            occurred_at: None,
        }
    }

    fn field(changes: &ActiveValue<String>) -> Option<&str> {
        match changes {
            ActiveValue::Set(v) => Some(v.as_str()),
            _ => None,
        }
    }

    #[test]
    fn a_reopen_restarts_at_identified_and_needs_a_reason() {
        assert_eq!(
            requested_stage(true, None, Some("x")).unwrap(),
            Stage::Identified
        );
        assert!(requested_stage(true, None, None).is_err());
        assert!(requested_stage(true, Some(Stage::Qualified), Some("x")).is_err());
        assert!(requested_stage(false, None, None).is_err());
        assert!(requested_stage(false, Some(Stage::ClosedWon), None).is_err());
        assert_eq!(
            requested_stage(false, Some(Stage::Proposed), None).unwrap(),
            Stage::Proposed
        );
    }

    #[test]
    fn only_closed_opportunities_reopen_and_moves_follow_the_machine() {
        let open = row(Stage::Exploring);
        let err = admit_stage_move(
            &open,
            Stage::Exploring,
            &stage_move(Stage::Identified, true),
        );
        assert!(matches!(err, Err(PipelineError::Precondition { .. })));
        let skip = admit_stage_move(&open, Stage::Exploring, &stage_move(Stage::Proposed, false));
        assert!(matches!(skip, Err(PipelineError::Precondition { .. })));
        assert!(
            admit_stage_move(
                &open,
                Stage::Exploring,
                &stage_move(Stage::Qualified, false)
            )
            .is_ok()
        );
        let closed = row(Stage::ClosedLost);
        assert!(
            admit_stage_move(
                &closed,
                Stage::ClosedLost,
                &stage_move(Stage::Identified, true)
            )
            .is_ok()
        );
    }

    #[test]
    fn a_backward_move_writes_the_stage_row_first_and_resets_an_override() {
        let config = PipelineConfig::default();
        let mut current = row(Stage::Exploring);
        current.probability = "0.55".into();
        current.probability_overridden = true;
        let p = parse_row(&current).unwrap();
        let plan = plan_stage_move(
            &current,
            &p,
            &stage_move(Stage::Identified, false),
            Ok(None),
            at(&config),
        )
        .unwrap();
        assert!(plan.probability_reset);
        let c = &plan.change;
        assert_eq!(c.changes.stage, Set(Stage::Identified.into()));
        assert_eq!(c.history[0].field, "stage");
        assert_eq!(c.history[0].reason.as_deref(), Some("why"));
        assert_eq!(c.history[1].field, "probability");
        assert!(c.history[1].reason.is_some());
        assert_eq!(c.events.len(), 1);
        assert_eq!(c.events[0].event_type, "pipeline.opportunity.stage_changed");
        assert_eq!(c.events[0].data["probability_reset"], true);
        assert_eq!(c.events[0].data["from_stage"], "EXPLORING");
    }

    #[test]
    fn a_reopen_clears_the_loss_and_notes_it_in_the_stage_row() {
        let config = PipelineConfig::default();
        let mut current = row(Stage::ClosedLost);
        current.lost_reason = Some("budget".into());
        let p = parse_row(&current).unwrap();
        let mut mv = stage_move(Stage::Identified, true);
        mv.occurred_at = Some(now());
        let plan = plan_stage_move(&current, &p, &mv, Ok(None), at(&config)).unwrap();
        let c = &plan.change;
        assert_eq!(c.changes.lost_reason, ActiveValue::Set(None));
        assert_eq!(c.history[0].reason.as_deref(), Some("reopened: why"));
        let types: Vec<&str> = c.events.iter().map(|e| &*e.event_type).collect();
        assert_eq!(
            types,
            [
                "pipeline.opportunity.reopened",
                "pipeline.opportunity.stage_changed"
            ]
        );
        assert!(c.events[1].data.get("source_time").is_some());
        assert!(c.events[0].data.get("source_time").is_none());
    }

    #[test]
    fn a_forward_move_without_health_is_refused_unless_overridden() {
        let config = PipelineConfig::default();
        let current = row(Stage::Identified);
        let p = parse_row(&current).unwrap();
        let mv = stage_move(Stage::Exploring, false);
        let refused = plan_stage_move(&current, &p, &mv, Err("down"), at(&config));
        assert!(matches!(refused, Err(PipelineError::GateRefused { .. })));
        let mut mv = mv;
        mv.override_reason = Some("exec sponsor".into());
        let plan = plan_stage_move(&current, &p, &mv, Err("down"), at(&config)).unwrap();
        let c = &plan.change;
        assert!(c.history.iter().any(|h| h.field == "health_gate_override"));
        assert_eq!(
            c.events[0].event_type,
            "pipeline.opportunity.gate_overridden"
        );
        assert_eq!(c.events[0].data["from_stage"], "IDENTIFIED");
        assert_eq!(c.changes.health_snapshot, ActiveValue::NotSet);
    }

    #[test]
    fn a_won_close_carries_what_credit_needs() {
        let config = PipelineConfig::default();
        let current = row(Stage::Negotiating);
        let p = parse_row(&current).unwrap();
        let closing = Closing {
            won: true,
            lost_reason: None,
            close_date: None,
        };
        assert!(admit_close(&current, &p, &closing).is_ok());
        let c = plan_close(&current, &p, &closing, &WonFacts::default(), at(&config));
        assert_eq!(c.changes.stage, Set(Stage::ClosedWon.into()));
        assert_eq!(
            field(&c.changes.forecast_category),
            Some("FORECAST_CATEGORY_CLOSED")
        );
        assert_eq!(c.changes.lost_reason, ActiveValue::NotSet);
        let won = &c.events[1];
        assert_eq!(won.event_type, "pipeline.opportunity.closed_won");
        assert_eq!(won.data["amount_minor"], "1200000");
        assert_eq!(won.data["close_date"], "2026-03-02");
        assert!(won.data["handoff"].is_null());
        assert!(won.data["subscription_id"].is_null());
        assert!(c.history.iter().any(|h| h.field == "close_date"));
    }

    #[test]
    fn a_lost_close_keeps_its_reason() {
        let config = PipelineConfig::default();
        let current = row(Stage::Exploring);
        let p = parse_row(&current).unwrap();
        let closing = Closing {
            won: false,
            lost_reason: Some("no budget".into()),
            close_date: NaiveDate::from_ymd_opt(2026, 2, 1),
        };
        let c = plan_close(&current, &p, &closing, &WonFacts::default(), at(&config));
        assert_eq!(
            c.changes.lost_reason,
            ActiveValue::Set(Some("no budget".into()))
        );
        assert_eq!(c.history[0].reason.as_deref(), Some("no budget"));
        assert_eq!(c.events[1].event_type, "pipeline.opportunity.closed_lost");
        assert_eq!(c.events[1].data["from_stage"], "EXPLORING");
        let won = row(Stage::ClosedWon);
        let p = parse_row(&won).unwrap();
        assert!(admit_close(&won, &p, &closing).is_err());
    }

    #[test]
    fn an_update_keeps_history_only_for_what_changed() {
        let config = PipelineConfig::default();
        let current = row(Stage::Exploring);
        let p = parse_row(&current).unwrap();
        let patch = OpportunityPatch {
            name: Some("Renamed".into()),
            amount: Some(Money::from_minor(Currency::USD, 1_500_000)),
            probability: Some(Some(Percent::from_whole(35))),
            owner: Some(Some("ae@x".into())),
            ..Default::default()
        };
        let c = plan_update(&current, &p, patch, UpdateLookups::default(), at(&config)).unwrap();
        let rows: Vec<&str> = c.history.iter().map(|h| h.field).collect();
        assert_eq!(rows, ["amount", "probability"]);
        assert_eq!(c.changes.probability_overridden, ActiveValue::Set(true));
        assert_eq!(
            c.events[0].data["fields"],
            serde_json::json!(["name", "amount", "probability", "owner"])
        );
    }

    #[test]
    fn a_new_product_or_motion_clears_the_subscription() {
        let config = PipelineConfig::default();
        let mut current = row(Stage::Exploring);
        current.subscription_id = Some("sub-1".into());
        let p = parse_row(&current).unwrap();
        let patch = OpportunityPatch {
            product_id: Some(
                domain::ProductId::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap(),
            ),
            ..Default::default()
        };
        assert!(changed_product(&current, &patch).is_some());
        let looked = UpdateLookups {
            product_name: Some("Nine".into()),
            subscription_id: None,
        };
        let c = plan_update(&current, &p, patch, looked, at(&config)).unwrap();
        assert_eq!(c.changes.subscription_id, ActiveValue::Set(None));
        assert_eq!(
            c.changes.product_name,
            ActiveValue::Set(Some("Nine".into()))
        );
        assert!(c.history.is_empty());
    }
}
