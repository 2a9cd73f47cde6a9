//! The CS→Sales handoff package (seed 000: "CS documents discovery and
//! qualification, identifies key stakeholders and the decision process…") and
//! the handoff's states. Validation names every missing part at once.

use chrono::{DateTime, Duration, Utc};
use contracts::pb::pipeline::v1 as pb;
use contracts::{ApiError, FieldViolation, wire};
use serde::{Deserialize, Serialize};

use super::Stakeholder;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffStatus {
    Requested,
    Accepted,
    Rejected,
    Withdrawn,
}

impl HandoffStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffStatus::Requested => "REQUESTED",
            HandoffStatus::Accepted => "ACCEPTED",
            HandoffStatus::Rejected => "REJECTED",
            HandoffStatus::Withdrawn => "WITHDRAWN",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "REQUESTED" => Some(HandoffStatus::Requested),
            "ACCEPTED" => Some(HandoffStatus::Accepted),
            "REJECTED" => Some(HandoffStatus::Rejected),
            "WITHDRAWN" => Some(HandoffStatus::Withdrawn),
            _ => None,
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
    let discovery_summary = push_text(
        &mut v,
        &f("discovery_summary"),
        &p.discovery_summary,
        wire::MAX_NOTE_LEN,
        "is required: what CS learned in discovery",
    );
    if p.pain_points.is_empty() {
        v.push(FieldViolation::new(
            f("pain_points"),
            "at least one pain point is required",
        ));
    }
    let pain_points: Vec<String> = p
        .pain_points
        .iter()
        .enumerate()
        .map(|(i, text)| {
            push_text(
                &mut v,
                &format!("{field}.pain_points[{i}]"),
                text,
                wire::MAX_NOTE_LEN,
                "must not be empty",
            )
        })
        .collect();
    if p.stakeholders.is_empty() {
        v.push(FieldViolation::new(
            f("stakeholders"),
            "at least one stakeholder with a decision role is required",
        ));
    }
    let mut stakeholders = Vec::new();
    for (i, s) in p.stakeholders.iter().enumerate() {
        let base = format!("{field}.stakeholders[{i}]");
        let name = push_text(
            &mut v,
            &format!("{base}.name"),
            &s.name,
            wire::MAX_NAME_LEN,
            "is required",
        );
        let role = push_text(
            &mut v,
            &format!("{base}.role"),
            &s.role,
            wire::MAX_NAME_LEN,
            "is required: the stakeholder's decision role",
        );
        stakeholders.push(Stakeholder {
            name,
            title: s.title.clone(),
            role,
            budget_holder: s.budget_holder,
            decision_maker: s.decision_maker,
            email: s.email.clone(),
        });
    }
    let decision_process = push_text(
        &mut v,
        &f("decision_process"),
        &p.decision_process,
        wire::MAX_NOTE_LEN,
        "is required: who decides and how",
    );
    let budget_status = match pb::BudgetStatus::try_from(p.budget_status) {
        Ok(pb::BudgetStatus::Unspecified) => {
            v.push(FieldViolation::new(f("budget_status"), "is required"));
            String::new()
        }
        Ok(b) => b.as_str_name().to_owned(),
        Err(_) => {
            v.push(FieldViolation::new(
                f("budget_status"),
                format!("unknown enum value {}", p.budget_status),
            ));
            String::new()
        }
    };
    let timing = push_text(
        &mut v,
        &f("timing"),
        &p.timing,
        wire::MAX_NOTE_LEN,
        "is required: when the customer will decide",
    );
    let competitive_landscape = push_text(
        &mut v,
        &f("competitive_landscape"),
        &p.competitive_landscape,
        wire::MAX_NOTE_LEN,
        "is required: incumbents and alternatives (\"none\" is an answer)",
    );
    let joint_call_unix = p.joint_call_time.as_ref().and_then(|t| {
        let parsed = u32::try_from(t.nanos)
            .ok()
            .and_then(|nanos| DateTime::<Utc>::from_timestamp(t.seconds, nanos));
        if parsed.is_none() {
            v.push(FieldViolation::new(
                f("joint_call_time"),
                "is not a valid timestamp",
            ));
        }
        parsed.map(|t| t.timestamp())
    });
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
