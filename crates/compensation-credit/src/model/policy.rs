//! Validated credit policies and the typed terms of a stored version. Pure.

use chrono::{DateTime, NaiveDate, Utc};
use contracts::ApiError;
use contracts::pb::credit::v1 as pb;
use contracts::wire;
use domain::Percent;
use serde::{Deserialize, Serialize};

use crate::error::CreditError;
use crate::events::{CreditEvent, PolicyVersionAdded};

/// Name of the policy used when a request names none.
pub const DEFAULT_POLICY_ID: &str = "default";
/// Origination share when a policy sets none (seed 001: 20–30%).
pub const DEFAULT_ORIGINATION: Percent = Percent::from_whole(25);
/// Account-team overlay when a policy sets no overlay.
pub const DEFAULT_ACCOUNT_TEAM_OVERLAY: Percent = Percent::from_whole(5);
pub const DEFAULT_CLAWBACK_WINDOW_DAYS: i32 = 90;
/// Overlays may total anything from 0 to this, outside the revenue 100%.
pub const MAX_OVERLAY_TOTAL: Percent = Percent::from_whole(1000);
pub const MAX_DAYS: i32 = 3650;
const MAX_OVERLAYS: usize = 32;

/// An overlay credit rule, as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayRule {
    pub name: String,
    pub percent: String,
}

/// A policy version to write, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInput {
    pub policy_id: String,
    pub effective_date: NaiveDate,
    pub origination: Percent,
    pub delivery: Percent,
    pub overlays: Vec<(String, Percent)>,
    pub basis: pb::CreditBasis,
    pub hold_days: i32,
    pub clawback_window_days: i32,
    pub clawback_mode: pb::ClawbackMode,
}

/// A policy id: a short slug such as `default` or `emea-2027`.
pub fn policy_id(field: &str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() {
        return Ok(DEFAULT_POLICY_ID.to_owned());
    }
    let ok = value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(
            field,
            "must be 1-64 characters of a-z, 0-9, '-' or '_'",
        ))
    }
}

/// The version number of the built-in `default` policy: in force on any date
/// before its first stored version, so a fresh server credits won deals.
pub const BUILT_IN_VERSION: i32 = 0;

/// The built-in `default` policy: the documented defaults (25% origination,
/// 75% delivery, a 5% account-team overlay, AMOUNT basis, no hold, a 90-day
/// FULL clawback), in force from 1970-01-01 until a stored version replaces it.
pub fn built_in_default() -> PolicyInput {
    let effective = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    let request = pb::UpsertCreditPolicyRequest {
        request_id: String::new(),
        policy: Some(pb::CreditPolicy::default()),
    };
    // An empty policy is valid by construction: every field takes its default.
    PolicyInput::from_request(&request, effective).unwrap_or(PolicyInput {
        policy_id: DEFAULT_POLICY_ID.to_owned(),
        effective_date: effective,
        origination: DEFAULT_ORIGINATION,
        delivery: Percent::ONE_HUNDRED
            .checked_sub(DEFAULT_ORIGINATION)
            .unwrap_or(Percent::ZERO),
        overlays: vec![("account_team".to_owned(), DEFAULT_ACCOUNT_TEAM_OVERLAY)],
        basis: pb::CreditBasis::Amount,
        hold_days: 0,
        clawback_window_days: DEFAULT_CLAWBACK_WINDOW_DAYS,
        clawback_mode: pb::ClawbackMode::Full,
    })
}

fn days(field: &str, value: i32, default: i32) -> Result<i32, ApiError> {
    match value {
        0 => Ok(default),
        v if (1..=MAX_DAYS).contains(&v) => Ok(v),
        v => Err(ApiError::invalid(
            field,
            format!("{v} is outside 0-{MAX_DAYS} days"),
        )),
    }
}

/// A percent at `field` between 0 and `max`, or `None` when empty.
fn bounded_percent(field: &str, value: &str, max: Percent) -> Result<Option<Percent>, ApiError> {
    wire::optional_percent(field, value)?
        .map(|v| v.ensure_between(Percent::ZERO, max))
        .transpose()
        .map_err(|e| ApiError::invalid(field, e))
}

/// The policy's origination and delivery shares (policy at path `f`): origination
/// defaults to [`DEFAULT_ORIGINATION`], delivery to the rest, and together they total
/// exactly 100%.
fn revenue_shares(f: &str, p: &pb::CreditPolicy) -> Result<(Percent, Percent), ApiError> {
    let origination_field = format!("{f}.origination_percent");
    let delivery_field = format!("{f}.delivery_percent");
    let origination = bounded_percent(
        &origination_field,
        &p.origination_percent,
        Percent::ONE_HUNDRED,
    )?
    .unwrap_or(DEFAULT_ORIGINATION);
    let rest = Percent::ONE_HUNDRED
        .checked_sub(origination)
        .ok_or_else(|| ApiError::invalid(&origination_field, "must be at most 100%"))?;
    let delivery = bounded_percent(&delivery_field, &p.delivery_percent, Percent::ONE_HUNDRED)?
        .unwrap_or(rest);
    if delivery != rest {
        return Err(ApiError::invalid(
            delivery_field,
            format!("origination {origination} + delivery {delivery} must total exactly 100%"),
        ));
    }
    Ok((origination, delivery))
}

/// The policy's overlay rules (policy at path `f`): at most [`MAX_OVERLAYS`], names
/// distinct, each 0–1000% and 1000% at most in total; none given is the account-team
/// overlay at [`DEFAULT_ACCOUNT_TEAM_OVERLAY`].
fn overlays(f: &str, given: &[pb::OverlayRule]) -> Result<Vec<(String, Percent)>, ApiError> {
    if given.len() > MAX_OVERLAYS {
        return Err(ApiError::invalid(
            format!("{f}.overlays"),
            format!("at most {MAX_OVERLAYS} overlays"),
        ));
    }
    let mut overlays: Vec<(String, Percent)> = Vec::with_capacity(given.len());
    for (i, o) in given.iter().enumerate() {
        let at = |name: &str| format!("{f}.overlays[{i}].{name}");
        let name = wire::text(&at("name"), &o.name, wire::MAX_NAME_LEN)?;
        if overlays.iter().any(|(n, _)| n == &name) {
            return Err(ApiError::invalid(
                at("name"),
                format!("{name:?} appears twice"),
            ));
        }
        let percent = wire::optional_percent(&at("percent"), &o.percent)?
            .ok_or_else(|| ApiError::invalid(at("percent"), "is required"))?
            .ensure_between(Percent::ZERO, MAX_OVERLAY_TOTAL)
            .map_err(|e| ApiError::invalid(at("percent"), e))?;
        overlays.push((name, percent));
    }
    let total = Percent::checked_sum(overlays.iter().map(|(_, p)| *p));
    if total.is_none_or(|t| t > MAX_OVERLAY_TOTAL) {
        return Err(ApiError::invalid(
            format!("{f}.overlays"),
            format!("overlays may total at most {MAX_OVERLAY_TOTAL}"),
        ));
    }
    if overlays.is_empty() {
        overlays.push(("account_team".to_owned(), DEFAULT_ACCOUNT_TEAM_OVERLAY));
    }
    Ok(overlays)
}

impl PolicyInput {
    /// `today` fills in a missing effective date.
    pub fn from_request(
        req: &pb::UpsertCreditPolicyRequest,
        today: NaiveDate,
    ) -> Result<Self, ApiError> {
        const F: &str = "policy";
        let p = req
            .policy
            .as_ref()
            .ok_or_else(|| ApiError::invalid(F, "is required"))?;
        let f = |name: &str| format!("{F}.{name}");
        let (origination, delivery) = revenue_shares(F, p)?;
        let overlays = overlays(F, &p.overlays)?;
        let basis = match wire::known_enum::<pb::CreditBasis>(&f("basis"), p.basis)? {
            pb::CreditBasis::Unspecified => pb::CreditBasis::Amount,
            other => other,
        };
        let clawback_mode =
            match wire::known_enum::<pb::ClawbackMode>(&f("clawback_mode"), p.clawback_mode)? {
                pb::ClawbackMode::Unspecified => pb::ClawbackMode::Full,
                other => other,
            };
        Ok(Self {
            policy_id: policy_id(&f("policy_id"), &p.policy_id)?,
            effective_date: wire::optional_date(&f("effective_date"), &p.effective_date)?
                .unwrap_or(today),
            origination,
            delivery,
            overlays,
            basis,
            hold_days: days(&f("hold_days"), p.hold_days, 0)?,
            clawback_window_days: days(
                &f("clawback_window_days"),
                p.clawback_window_days,
                DEFAULT_CLAWBACK_WINDOW_DAYS,
            )?,
            clawback_mode,
        })
    }

    pub fn overlay_rules(&self) -> Vec<OverlayRule> {
        self.overlays
            .iter()
            .map(|(name, p)| OverlayRule {
                name: name.clone(),
                percent: p.to_decimal_string(),
            })
            .collect()
    }
}

/// The next version of a policy (`latest` is its latest stored version, if any), and
/// its `credit.policy.version_added` event. Earlier versions are never touched, so
/// credits recorded under them keep their terms.
pub fn plan_policy_version(
    input: &PolicyInput,
    latest: Option<&crate::entity::policy::Model>,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<(crate::entity::policy::Model, CreditEvent), CreditError> {
    let row = crate::entity::policy::Model {
        policy_id: input.policy_id.clone(),
        version: latest.map_or(1, |p| p.version + 1),
        effective_date: input.effective_date,
        origination_percent: input.origination.to_decimal_string(),
        delivery_percent: input.delivery.to_decimal_string(),
        overlays: super::to_json(&input.overlay_rules())?,
        basis: input.basis.as_str_name().to_owned(),
        hold_days: input.hold_days,
        clawback_window_days: input.clawback_window_days,
        clawback_mode: input.clawback_mode.as_str_name().to_owned(),
        created_at: now,
        created_by: principal.to_owned(),
    };
    let event = CreditEvent::PolicyVersionAdded(PolicyVersionAdded {
        policy_id: row.policy_id.clone(),
        version: row.version,
        effective_date: row.effective_date.to_string(),
        principal: principal.to_owned(),
    });
    Ok((row, event))
}

/// The terms of one stored policy version, typed: what a deal is credited under.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub policy_id: String,
    pub version: i32,
    pub origination: Percent,
    pub overlays: Vec<(String, Percent)>,
    pub basis: pb::CreditBasis,
    pub hold_days: i32,
    pub clawback_window_days: i32,
    pub clawback_mode: pb::ClawbackMode,
}

impl Terms {
    /// Reads a stored policy row; an error means the row is corrupt.
    pub fn from_row(row: &crate::entity::policy::Model) -> Result<Terms, String> {
        let corrupt = |what: &str| format!("policy {} v{}: bad {what}", row.policy_id, row.version);
        let overlays: Vec<OverlayRule> =
            serde_json::from_str(&row.overlays).map_err(|_| corrupt("overlays"))?;
        Ok(Terms {
            policy_id: row.policy_id.clone(),
            version: row.version,
            origination: Percent::parse(&row.origination_percent)
                .map_err(|_| corrupt("origination_percent"))?,
            overlays: overlays
                .into_iter()
                .map(|o| Percent::parse(&o.percent).map(|p| (o.name, p)))
                .collect::<Result<_, _>>()
                .map_err(|_| corrupt("overlay percent"))?,
            basis: pb::CreditBasis::from_str_name(&row.basis).ok_or_else(|| corrupt("basis"))?,
            hold_days: row.hold_days,
            clawback_window_days: row.clawback_window_days,
            clawback_mode: pb::ClawbackMode::from_str_name(&row.clawback_mode)
                .ok_or_else(|| corrupt("clawback_mode"))?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn req(edit: impl FnOnce(&mut pb::CreditPolicy)) -> pb::UpsertCreditPolicyRequest {
        let mut policy = pb::CreditPolicy::default();
        edit(&mut policy);
        pb::UpsertCreditPolicyRequest {
            request_id: String::new(),
            policy: Some(policy),
        }
    }

    fn field_of(err: ApiError) -> String {
        err.field()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not a field violation: {err:?}"))
    }

    #[test]
    fn a_policy_gains_the_next_version() {
        let input =
            PolicyInput::from_request(&req(|p| p.policy_id = "emea".into()), today()).unwrap();
        let now = chrono::Utc::now();
        let (first, event) = plan_policy_version(&input, None, "revops", now).unwrap();
        assert_eq!((first.policy_id.as_str(), first.version), ("emea", 1));
        assert_eq!(first.origination_percent, "25");
        assert_eq!(
            event,
            CreditEvent::PolicyVersionAdded(PolicyVersionAdded {
                policy_id: "emea".into(),
                version: 1,
                effective_date: "2026-11-25".into(),
                principal: "revops".into(),
            })
        );
        let (second, _) = plan_policy_version(&input, Some(&first), "revops", now).unwrap();
        assert_eq!(second.version, 2);
        assert_eq!(Terms::from_row(&second).unwrap().overlays, input.overlays);
    }

    #[test]
    fn the_built_in_default_is_the_documented_defaults() {
        let p = built_in_default();
        assert_eq!(p.policy_id, "default");
        assert_eq!(
            (p.origination, p.delivery),
            (Percent::from_whole(25), Percent::from_whole(75))
        );
        assert_eq!(
            p.overlays,
            vec![("account_team".into(), Percent::from_whole(5))]
        );
        assert_eq!((p.hold_days, p.clawback_window_days), (0, 90));
        assert_eq!(p.effective_date.to_string(), "1970-01-01");
    }

    #[test]
    fn defaults_are_the_seeds() {
        let p = PolicyInput::from_request(&req(|_| {}), today()).unwrap();
        assert_eq!(p.policy_id, "default");
        assert_eq!(p.origination, Percent::from_whole(25));
        assert_eq!(p.delivery, Percent::from_whole(75));
        assert_eq!(
            p.overlays,
            vec![("account_team".into(), Percent::from_whole(5))]
        );
        assert_eq!(p.clawback_window_days, 90);
        assert_eq!(p.clawback_mode, pb::ClawbackMode::Full);
        assert_eq!(p.basis, pb::CreditBasis::Amount);
        assert_eq!(p.effective_date, today());
    }

    #[test]
    fn revenue_split_must_total_exactly_100() {
        let ok = PolicyInput::from_request(
            &req(|p| {
                p.origination_percent = "30".into();
                p.delivery_percent = "70.000".into();
            }),
            today(),
        )
        .unwrap();
        assert_eq!(ok.delivery, Percent::from_whole(70));
        let bad = req(|p| {
            p.origination_percent = "25".into();
            p.delivery_percent = "70".into();
        });
        assert_eq!(
            field_of(PolicyInput::from_request(&bad, today()).unwrap_err()),
            "policy.delivery_percent"
        );
    }

    #[test]
    fn delivery_defaults_to_what_origination_leaves() {
        let policy = pb::CreditPolicy {
            origination_percent: "20".into(),
            ..Default::default()
        };
        assert_eq!(
            revenue_shares("policy", &policy).unwrap(),
            (Percent::from_whole(20), Percent::from_whole(80))
        );
        let empty = pb::CreditPolicy::default();
        assert_eq!(
            revenue_shares("policy", &empty).unwrap(),
            (DEFAULT_ORIGINATION, Percent::from_whole(75))
        );
    }

    #[test]
    fn overlay_rules_are_distinct_and_total_at_most_1000() {
        let rule = |name: &str, percent: &str| pb::OverlayRule {
            name: name.into(),
            percent: percent.into(),
        };
        assert_eq!(
            overlays("policy", &[]).unwrap(),
            vec![("account_team".into(), DEFAULT_ACCOUNT_TEAM_OVERLAY)]
        );
        assert_eq!(
            overlays("policy", &[rule("se", "2.5")]).unwrap(),
            vec![("se".into(), Percent::parse("2.5").unwrap())]
        );
        let twice = overlays("policy", &[rule("se", "1"), rule("se", "2")]).unwrap_err();
        assert_eq!(field_of(twice), "policy.overlays[1].name");
        let too_much = overlays("policy", &[rule("a", "600"), rule("b", "400.01")]).unwrap_err();
        assert_eq!(field_of(too_much), "policy.overlays");
        let missing = overlays("policy", &[rule("a", "")]).unwrap_err();
        assert_eq!(field_of(missing), "policy.overlays[0].percent");
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: Vec<(pb::UpsertCreditPolicyRequest, &str)> = vec![
            (
                req(|p| p.origination_percent = "120".into()),
                "policy.origination_percent",
            ),
            (
                req(|p| p.origination_percent = "abc".into()),
                "policy.origination_percent",
            ),
            (req(|p| p.policy_id = "Bad Id".into()), "policy.policy_id"),
            (req(|p| p.hold_days = -1), "policy.hold_days"),
            (
                req(|p| p.clawback_window_days = 99999),
                "policy.clawback_window_days",
            ),
            (req(|p| p.basis = 9), "policy.basis"),
            (
                req(|p| p.effective_date = "2026/01/01".into()),
                "policy.effective_date",
            ),
            (
                req(|p| {
                    p.overlays = vec![pb::OverlayRule {
                        name: "se".into(),
                        percent: "1000.5".into(),
                    }]
                }),
                "policy.overlays[0].percent",
            ),
            (
                req(|p| {
                    p.overlays = vec![
                        pb::OverlayRule {
                            name: "a".into(),
                            percent: "600".into(),
                        },
                        pb::OverlayRule {
                            name: "b".into(),
                            percent: "600".into(),
                        },
                    ]
                }),
                "policy.overlays",
            ),
        ];
        for (r, field) in cases {
            assert_eq!(
                field_of(PolicyInput::from_request(&r, today()).unwrap_err()),
                field
            );
        }
        let missing = pb::UpsertCreditPolicyRequest::default();
        assert_eq!(
            field_of(PolicyInput::from_request(&missing, today()).unwrap_err()),
            "policy"
        );
    }
}
