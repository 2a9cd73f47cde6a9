//! The CS→Sales handoff package (seed 000: "CS documents discovery and
//! qualification, identifies key stakeholders and the decision process…"),
//! the snapshot of the account a request keeps, the handoff's states, and
//! what requesting, accepting and rejecting one writes (`plan_request`,
//! `plan_acceptance`, `plan_rejection`: pure; the service loads, the store
//! writes). Validation names every missing part at once.

use chrono::{DateTime, Duration, Utc};
use contracts::pb::pipeline::v1 as pb;
use contracts::{ApiError, FieldViolation, wire};
use domain::{HandoffId, Money};
use sea_orm::Set;
use serde::{Deserialize, Serialize};
use storage::events::NewEvent;

use super::transition::{HistoryNote, OpportunityChange, Planning, event, with_source_time};
use super::whitespace::WhitespaceItem;
use super::{HealthSnapshot, Stakeholder, to_json};
pub use crate::entity::handoff::HandoffStatus;
use crate::entity::{handoff, opportunity};
use crate::error::PipelineError;
use crate::health::SubscriptionInfo;
use crate::people::PersonInfo;

/// A complete handoff package, as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffPackage {
    pub discovery_summary: String,
    pub pain_points: Vec<String>,
    pub stakeholders: Vec<Stakeholder>,
    pub decision_process: String,
    pub budget_status: String,
    pub timing: String,
    pub competitive_landscape: String,
    /// Unix seconds of the planned joint CS + Sales call, when there is one.
    pub joint_call_unix: Option<i64>,
}

/// What a handoff captured when it was requested (JSON in `handoffs.snapshot`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HandoffSnapshot {
    pub health: Option<HealthSnapshot>,
    /// Active subscriptions: what the account owns and how much of it it uses.
    pub usage: Vec<UsageLine>,
    pub whitespace: Vec<WhitespaceLine>,
    pub gaps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageLine {
    pub subscription_id: String,
    pub product_id: String,
    pub tier: String,
    pub quantity: i64,
    pub quota_limit: i64,
    pub mrr: Option<(String, String)>,
    /// The latest USAGE signal of the product (absent in snapshots taken
    /// before it was kept).
    #[serde(default)]
    pub usage: Option<UsageReading>,
}

/// A USAGE signal against its limit, as the health service read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReading {
    pub value: String,
    pub limit: String,
    pub percent_of_limit: String,
    /// Seconds since the epoch.
    pub unix: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhitespaceLine {
    pub product_id: String,
    pub name: String,
    pub family: String,
    pub motion: Option<String>,
    pub wallet: Option<(String, String)>,
}

fn money_pair(m: &Money) -> (String, String) {
    (m.currency().code().to_owned(), m.to_amount_string())
}

impl UsageLine {
    /// An active subscription as the snapshot keeps it.
    pub fn of(s: &SubscriptionInfo) -> Self {
        UsageLine {
            subscription_id: s.subscription_id.clone(),
            product_id: s.product_id.clone(),
            tier: s.tier.clone(),
            quantity: s.quantity,
            quota_limit: s.quota_limit,
            mrr: s.mrr.as_ref().map(money_pair),
            usage: s.usage.clone(),
        }
    }
}

impl WhitespaceLine {
    /// A whitespace product as the snapshot (and the wire) keeps it.
    pub fn of(w: &WhitespaceItem) -> Self {
        WhitespaceLine {
            product_id: w.product_id.clone(),
            name: w.name.clone(),
            family: w.family.clone(),
            motion: w.motion.map(|m| m.as_str().to_owned()),
            wallet: w.estimated_annual_wallet.as_ref().map(money_pair),
        }
    }
}

/// When a handoff requested at `requested_at` becomes overdue.
pub fn due_at(requested_at: DateTime<Utc>, sla_hours: i64) -> DateTime<Utc> {
    requested_at + Duration::hours(sla_hours)
}

/// Overdue: still waiting for Sales after the SLA.
pub fn is_overdue(status: HandoffStatus, due: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    status == HandoffStatus::Requested && now > due
}

fn push_text(
    violations: &mut Vec<FieldViolation>,
    field: &str,
    value: &str,
    max: usize,
    missing: &str,
) -> String {
    match wire::optional_text(field, value, max) {
        Ok(Some(v)) => v,
        Ok(None) => {
            violations.push(FieldViolation::new(field, missing));
            String::new()
        }
        Err(ApiError::InvalidArgument { violations: v }) => {
            violations.extend(v);
            String::new()
        }
        Err(other) => {
            violations.push(FieldViolation::new(field, other));
            String::new()
        }
    }
}

/// Validates the package under `field` (e.g. `package`), naming each missing
/// or malformed part in its own violation.
pub fn handoff_package(
    field: &str,
    package: Option<&pb::HandoffPackage>,
) -> Result<HandoffPackage, ApiError> {
    let Some(p) = package else {
        return Err(ApiError::invalid(
            field,
            "is required: discovery summary, pain points, stakeholders with decision roles, \
             decision process, budget status, timing and competitive landscape",
        ));
    };
    let f = |name: &str| format!("{field}.{name}");
    let mut v = Vec::new();
    let note = |v: &mut Vec<FieldViolation>, name: &str, value: &str, missing: &str| {
        push_text(v, &f(name), value, wire::MAX_NOTE_LEN, missing)
    };
    let discovery_summary = note(
        &mut v,
        "discovery_summary",
        &p.discovery_summary,
        "is required: what CS learned in discovery",
    );
    let pain_points = package_pain_points(&mut v, field, &p.pain_points);
    let stakeholders = package_stakeholders(&mut v, field, &p.stakeholders);
    let decision_process = note(
        &mut v,
        "decision_process",
        &p.decision_process,
        "is required: who decides and how",
    );
    let budget_status = package_budget_status(&mut v, field, p.budget_status);
    let timing = note(
        &mut v,
        "timing",
        &p.timing,
        "is required: when the customer will decide",
    );
    let competitive_landscape = note(
        &mut v,
        "competitive_landscape",
        &p.competitive_landscape,
        "is required: incumbents and alternatives (\"none\" is an answer)",
    );
    let joint_call_unix = package_joint_call(&mut v, field, p.joint_call_time.as_ref());
    if !v.is_empty() {
        return Err(ApiError::InvalidArgument { violations: v });
    }
    Ok(HandoffPackage {
        discovery_summary,
        pain_points,
        stakeholders,
        decision_process,
        budget_status,
        timing,
        competitive_landscape,
        joint_call_unix,
    })
}

/// At least one pain point, none of them empty.
fn package_pain_points(
    v: &mut Vec<FieldViolation>,
    field: &str,
    pain_points: &[String],
) -> Vec<String> {
    if pain_points.is_empty() {
        v.push(FieldViolation::new(
            format!("{field}.pain_points"),
            "at least one pain point is required",
        ));
    }
    pain_points
        .iter()
        .enumerate()
        .map(|(i, text)| {
            push_text(
                v,
                &format!("{field}.pain_points[{i}]"),
                text,
                wire::MAX_NOTE_LEN,
                "must not be empty",
            )
        })
        .collect()
}

/// At least one stakeholder, each with a name and a decision role.
fn package_stakeholders(
    v: &mut Vec<FieldViolation>,
    field: &str,
    stakeholders: &[pb::Stakeholder],
) -> Vec<Stakeholder> {
    if stakeholders.is_empty() {
        v.push(FieldViolation::new(
            format!("{field}.stakeholders"),
            "at least one stakeholder with a decision role is required",
        ));
    }
    let mut kept = Vec::new();
    for (i, s) in stakeholders.iter().enumerate() {
        let base = format!("{field}.stakeholders[{i}]");
        let name = push_text(
            v,
            &format!("{base}.name"),
            &s.name,
            wire::MAX_NAME_LEN,
            "is required",
        );
        let role = push_text(
            v,
            &format!("{base}.role"),
            &s.role,
            wire::MAX_NAME_LEN,
            "is required: the stakeholder's decision role",
        );
        kept.push(Stakeholder {
            name,
            title: s.title.clone(),
            role,
            budget_holder: s.budget_holder,
            decision_maker: s.decision_maker,
            email: s.email.clone(),
        });
    }
    kept
}

/// A known budget status other than UNSPECIFIED, by its proto name.
fn package_budget_status(v: &mut Vec<FieldViolation>, field: &str, value: i32) -> String {
    match pb::BudgetStatus::try_from(value) {
        Ok(pb::BudgetStatus::Unspecified) => {
            v.push(FieldViolation::new(
                format!("{field}.budget_status"),
                "is required",
            ));
            String::new()
        }
        Ok(b) => b.as_str_name().to_owned(),
        Err(_) => {
            v.push(FieldViolation::new(
                format!("{field}.budget_status"),
                format!("unknown enum value {value}"),
            ));
            String::new()
        }
    }
}

/// The planned joint call, when there is one, in Unix seconds.
fn package_joint_call(
    v: &mut Vec<FieldViolation>,
    field: &str,
    time: Option<&prost_types::Timestamp>,
) -> Option<i64> {
    time.and_then(|t| {
        let parsed = contracts::wire::instant("joint_call_time", t).ok();
        if parsed.is_none() {
            v.push(FieldViolation::new(
                format!("{field}.joint_call_time"),
                "is not a valid timestamp",
            ));
        }
        parsed.map(|t| t.timestamp())
    })
}

/// Who takes a handoff (SPEC §6): the calling AE, or an AE the people
/// directory knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptor {
    /// The caller's own AE key names itself (or names no one): no lookup.
    CallingAe(String),
    /// Someone else is named: the directory must know them as an AE.
    Named(String),
}

impl Acceptor {
    pub fn owner(&self) -> &str {
        match self {
            Acceptor::CallingAe(o) | Acceptor::Named(o) => o,
        }
    }
}

/// Decides who accepts, from the caller and the `owner` field (`None` when empty).
pub fn acceptor(
    caller: &contracts::Principal,
    owner: Option<String>,
) -> Result<Acceptor, ApiError> {
    let is_ae = caller.role == contracts::access::Role::Ae;
    match owner {
        None if is_ae => Ok(Acceptor::CallingAe(caller.name.clone())),
        None => Err(ApiError::invalid(
            "owner",
            format!(
                "is required: {:?} is not an AE key, so name the AE who takes the deal",
                caller.name
            ),
        )),
        Some(o) if is_ae && o == caller.name => Ok(Acceptor::CallingAe(o)),
        Some(o) => Ok(Acceptor::Named(o)),
    }
}

/// What requesting a handoff of `current` writes: the REQUESTED row, open
/// for its opportunity and due after the SLA, and its event. `backdated` is
/// when an import says it was requested (its SLA runs from then).
pub fn plan_request(
    current: &opportunity::Model,
    handoff_id: HandoffId,
    package: &HandoffPackage,
    snapshot: &HandoffSnapshot,
    backdated: Option<DateTime<Utc>>,
    at: Planning<'_>,
) -> Result<(handoff::ActiveModel, NewEvent), PipelineError> {
    let handoff_id = handoff_id.to_string();
    let requested_at = backdated.unwrap_or(at.now);
    let row = handoff::ActiveModel {
        id: Set(handoff_id.clone()),
        opportunity_id: Set(current.id.clone()),
        status: Set(HandoffStatus::Requested),
        open_key: Set(Some(current.id.clone())),
        requested_by: Set(at.principal.to_owned()),
        package: Set(to_json(package)?),
        snapshot: Set(to_json(snapshot)?),
        requested_at: Set(requested_at),
        due_at: Set(due_at(requested_at, at.config.handoff_sla_hours)),
        resolved_at: Set(None),
        resolved_by: Set(None),
        accepted_owner: Set(None),
        accepted_team: Set(None),
        reason: Set(None),
    };
    let mut requested = event(
        "pipeline.handoff.requested",
        &handoff_id,
        serde_json::json!({
            "handoff_id": handoff_id,
            "opportunity_id": current.id,
            "account_id": current.account_id,
            "requested_by": at.principal,
            "snapshot_gaps": snapshot.gaps,
        }),
    );
    with_source_time(Some(&mut requested), backdated);
    Ok((row, requested))
}

/// The team of an owner the caller named (SPEC §6): DELIVERY credit follows
/// the owner, so `name` must be an AE of the people directory (`person`:
/// what it said of them). Without `owner_team` asked for, the AE's own.
pub fn named_owner_team(
    name: &str,
    person: Option<PersonInfo>,
    owner_team: Option<String>,
) -> Result<Option<String>, PipelineError> {
    match person {
        Some(person) if person.is_ae => {
            if owner_team.is_none() && !person.team.is_empty() {
                return Ok(Some(person.team));
            }
            Ok(owner_team)
        }
        Some(_) => Err(PipelineError::precondition(
            "OWNER_NOT_AN_AE",
            name,
            format!(
                "{name} is in the people directory but not as an AE; a handoff \
                 goes to an AE, who becomes the owner credited with DELIVERY"
            ),
        )),
        None => Err(PipelineError::precondition(
            "OWNER_NOT_A_KNOWN_AE",
            name,
            format!(
                "{name} is not in the people directory; add them as an AE \
                 (UpsertPerson, role PERSON_ROLE_AE) or accept with the AE's own key"
            ),
        )),
    }
}

/// What resolving a REQUESTED handoff writes: its own columns, the change to
/// its opportunity (if any) and the events.
#[derive(Debug, Clone)]
pub struct HandoffResolution {
    pub changes: handoff::ActiveModel,
    pub opportunity: Option<OpportunityChange>,
    pub events: Vec<NewEvent>,
}

/// What accepting handoff `h` of `current` writes: the AE (`owner`, of
/// `owner_team`) becomes the owner; the CSM who asked stays the originator.
pub fn plan_acceptance(
    h: &handoff::Model,
    current: &opportunity::Model,
    owner: String,
    owner_team: Option<String>,
    principal: &str,
) -> HandoffResolution {
    let originator = current
        .originator
        .clone()
        .unwrap_or_else(|| h.requested_by.clone());
    let change = OpportunityChange {
        changes: opportunity::ActiveModel {
            owner: Set(Some(owner.clone())),
            owner_team: Set(owner_team.clone()),
            originator: Set(Some(originator.clone())),
            ..Default::default()
        },
        history: vec![HistoryNote {
            field: "owner",
            previous: current.owner.clone(),
            new: Some(owner.clone()),
            reason: Some(format!("handoff {} accepted", h.id)),
        }],
        events: Vec::new(),
    };
    let events = vec![
        event(
            "pipeline.handoff.accepted",
            &h.id,
            serde_json::json!({
                "handoff_id": h.id,
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
    HandoffResolution {
        changes: handoff::ActiveModel {
            status: Set(HandoffStatus::Accepted),
            accepted_owner: Set(Some(owner)),
            accepted_team: Set(owner_team),
            ..Default::default()
        },
        opportunity: Some(change),
        events,
    }
}

/// What rejecting (or, by CS, withdrawing) handoff `h` writes. The
/// opportunity stays with CS: its owner only ever changes on acceptance.
pub fn plan_rejection(
    h: &handoff::Model,
    withdraw: bool,
    reason: Option<String>,
    principal: &str,
) -> HandoffResolution {
    let (status, event_type) = if withdraw {
        (HandoffStatus::Withdrawn, "pipeline.handoff.withdrawn")
    } else {
        (HandoffStatus::Rejected, "pipeline.handoff.rejected")
    };
    let rejected = event(
        event_type,
        &h.id,
        serde_json::json!({
            "handoff_id": h.id,
            "opportunity_id": h.opportunity_id,
            "requested_by": h.requested_by,
            "reason": reason,
            "principal": principal,
        }),
    );
    HandoffResolution {
        changes: handoff::ActiveModel {
            status: Set(status),
            reason: Set(reason),
            ..Default::default()
        },
        opportunity: None,
        events: vec![rejected],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub fn complete() -> pb::HandoffPackage {
        pb::HandoffPackage {
            discovery_summary: "Finance team re-keys invoices into the ERP".into(),
            pain_points: vec!["manual reconciliation".into()],
            stakeholders: vec![pb::Stakeholder {
                name: "Dana".into(),
                role: "economic buyer".into(),
                decision_maker: true,
                budget_holder: true,
                ..Default::default()
            }],
            decision_process: "CFO signs after IT security review".into(),
            budget_status: pb::BudgetStatus::Identified as i32,
            timing: "Q1 budget cycle".into(),
            competitive_landscape: "spreadsheets; no vendor".into(),
            joint_call_time: None,
        }
    }

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::InvalidArgument { violations } => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_complete_package_passes() {
        let p = handoff_package("package", Some(&complete())).unwrap();
        assert_eq!(p.budget_status, "BUDGET_STATUS_IDENTIFIED");
    }

    #[test]
    fn every_missing_part_is_named() {
        let empty = pb::HandoffPackage::default();
        assert_eq!(
            fields(handoff_package("package", Some(&empty)).unwrap_err()),
            [
                "package.discovery_summary",
                "package.pain_points",
                "package.stakeholders",
                "package.decision_process",
                "package.budget_status",
                "package.timing",
                "package.competitive_landscape",
            ]
        );
        let mut p = complete();
        p.stakeholders[0].role.clear();
        p.timing = "  ".into();
        assert_eq!(
            fields(handoff_package("package", Some(&p)).unwrap_err()),
            ["package.stakeholders[0].role", "package.timing"]
        );
        assert_eq!(
            fields(handoff_package("package", None).unwrap_err()),
            ["package"]
        );
    }

    #[test]
    fn overdue_only_while_requested() {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let due = due_at(t, 48);
        assert!(!is_overdue(HandoffStatus::Requested, due, due));
        assert!(is_overdue(
            HandoffStatus::Requested,
            due,
            due + Duration::seconds(1)
        ));
        assert!(!is_overdue(
            HandoffStatus::Accepted,
            due,
            due + Duration::days(9)
        ));
    }

    fn requested(opportunity: &opportunity::Model) -> handoff::Model {
        let at = crate::model::test_support::now();
        handoff::Model {
            id: "h1".into(),
            opportunity_id: opportunity.id.clone(),
            status: HandoffStatus::Requested,
            open_key: Some(opportunity.id.clone()),
            requested_by: "carla.csm".into(),
            package: "{}".into(),
            snapshot: "{}".into(),
            requested_at: at,
            due_at: due_at(at, 48),
            resolved_at: None,
            resolved_by: None,
            accepted_owner: None,
            accepted_team: None,
            reason: None,
        }
    }

    #[test]
    fn a_request_is_open_due_after_the_sla_and_names_its_gaps() {
        use crate::model::test_support::{now, opportunity_row};
        let config = crate::model::config::PipelineConfig::default();
        let current = opportunity_row(domain::Stage::Qualified);
        let package = handoff_package("package", Some(&complete())).unwrap();
        let snapshot = HandoffSnapshot {
            gaps: vec!["usage: health is down".into()],
            ..Default::default()
        };
        let at = Planning {
            config: &config,
            now: now(),
            principal: "carla.csm",
        };
        let id = HandoffId::new();
        let (row, event) = plan_request(&current, id, &package, &snapshot, None, at).unwrap();
        assert_eq!(row.id, Set(id.to_string()));
        assert_eq!(row.status, Set(HandoffStatus::Requested));
        assert_eq!(row.open_key, Set(Some(current.id.clone())));
        assert_eq!(row.requested_at, Set(now()));
        assert_eq!(
            row.due_at,
            Set(now() + Duration::hours(config.handoff_sla_hours))
        );
        assert_eq!(event.event_type, "pipeline.handoff.requested");
        assert_eq!(event.data["snapshot_gaps"][0], "usage: health is down");
        assert!(event.data.get("source_time").is_none());
        // An import's request: its SLA runs from when the CRM says.
        let then = now() - Duration::hours(10);
        let (row, event) = plan_request(&current, id, &package, &snapshot, Some(then), at).unwrap();
        assert_eq!(row.requested_at, Set(then));
        assert_eq!(event.data["source_time"], then.to_rfc3339());
    }

    #[test]
    fn a_named_owner_must_be_an_ae_the_directory_knows() {
        let person = |is_ae: bool, team: &str| PersonInfo {
            person_id: "bo.ae".into(),
            is_ae,
            team: team.into(),
        };
        let kind = |err: PipelineError| match err {
            PipelineError::Precondition { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            named_owner_team("bo.ae", Some(person(true, "emea")), None).unwrap(),
            Some("emea".into())
        );
        assert_eq!(
            named_owner_team("bo.ae", Some(person(true, "emea")), Some("apac".into())).unwrap(),
            Some("apac".into())
        );
        assert_eq!(
            named_owner_team("bo.ae", Some(person(true, "")), None).unwrap(),
            None
        );
        let not_ae = named_owner_team("bo.ae", Some(person(false, "cs")), None).unwrap_err();
        assert_eq!(kind(not_ae), "OWNER_NOT_AN_AE");
        let unknown = named_owner_team("bo.ae", None, None).unwrap_err();
        assert_eq!(kind(unknown), "OWNER_NOT_A_KNOWN_AE");
    }

    #[test]
    fn accepting_makes_the_ae_the_owner_and_keeps_the_csm_as_originator() {
        let mut current = crate::model::test_support::opportunity_row(domain::Stage::Qualified);
        current.originator = None;
        let h = requested(&current);
        let plan = plan_acceptance(&h, &current, "ana.ae".into(), Some("emea".into()), "ana.ae");
        assert_eq!(plan.changes.status, Set(HandoffStatus::Accepted));
        assert_eq!(plan.changes.accepted_owner, Set(Some("ana.ae".to_owned())));
        let change = plan.opportunity.unwrap();
        assert_eq!(change.changes.owner, Set(Some("ana.ae".to_owned())));
        // The CSM who asked becomes the originator of a deal without one.
        assert_eq!(change.changes.originator, Set(Some("carla.csm".to_owned())));
        assert_eq!(
            change.history,
            [HistoryNote {
                field: "owner",
                previous: Some("ae@x".into()),
                new: Some("ana.ae".into()),
                reason: Some("handoff h1 accepted".into()),
            }]
        );
        let types: Vec<&str> = plan.events.iter().map(|e| e.event_type.as_ref()).collect();
        assert_eq!(
            types,
            ["pipeline.handoff.accepted", "pipeline.opportunity.updated"]
        );
        assert_eq!(plan.events[0].data["originator"], "carla.csm");
    }

    #[test]
    fn a_rejection_or_withdrawal_leaves_the_opportunity_with_cs() {
        let current = crate::model::test_support::opportunity_row(domain::Stage::Qualified);
        let h = requested(&current);
        let rejected = plan_rejection(&h, false, Some("no budget yet".into()), "ana.ae");
        assert_eq!(rejected.changes.status, Set(HandoffStatus::Rejected));
        assert_eq!(
            rejected.changes.reason,
            Set(Some("no budget yet".to_owned()))
        );
        assert!(rejected.opportunity.is_none());
        assert_eq!(rejected.events[0].event_type, "pipeline.handoff.rejected");
        let withdrawn = plan_rejection(&h, true, None, "carla.csm");
        assert_eq!(withdrawn.changes.status, Set(HandoffStatus::Withdrawn));
        assert_eq!(withdrawn.events[0].event_type, "pipeline.handoff.withdrawn");
        assert_eq!(withdrawn.events[0].data["principal"], "carla.csm");
    }

    #[test]
    fn the_calling_ae_accepts_without_a_lookup_anyone_else_is_named() {
        use contracts::access::Role;
        let ae = contracts::Principal::new("ana.ae", Role::Ae);
        assert_eq!(
            acceptor(&ae, None).unwrap(),
            Acceptor::CallingAe("ana.ae".into())
        );
        assert_eq!(
            acceptor(&ae, Some("ana.ae".into())).unwrap(),
            Acceptor::CallingAe("ana.ae".into())
        );
        // An AE handing the deal to a colleague names a person to look up.
        assert_eq!(
            acceptor(&ae, Some("bo.ae".into())).unwrap(),
            Acceptor::Named("bo.ae".into())
        );
        // RevOps (or a keyless local caller) must name the AE.
        let revops = contracts::Principal::new("rita.revops", Role::Revops);
        let err = acceptor(&revops, None).unwrap_err();
        assert!(
            matches!(err, ApiError::InvalidArgument { ref violations } if violations[0].field == "owner")
        );
        assert_eq!(
            acceptor(&contracts::Principal::local(), Some("ana.ae".into())).unwrap(),
            Acceptor::Named("ana.ae".into())
        );
    }
}
