//! A deal's recording and split set, validated, and its credits planned to the cent.
//!
//! Validation is split in two so bad input is refused before anything is read or
//! written: [`DealInput::from_request`] and [`parse_splits`] check everything the request
//! alone decides (ids, amounts, roles, sub-splits totalling exactly 100%, owners); then,
//! with the policy version in force, [`resolve_splits`] fills overlay percentages from the
//! policy's rules, [`credit_basis`] applies AMOUNT or MARGIN, and [`allocate`] hands the
//! basis out with `domain::allocate_deal_credits` (largest remainder, ties to ORIGINATOR
//! and to the participant listed first).

use std::fmt;

use chrono::NaiveDate;
use contracts::pb::credit::v1 as pb;
use contracts::{ApiError, wire};
use domain::{
    AccountId, CreditRole, Money, OpportunityId, Percent, ProductId, SubscriptionId,
    allocate_deal_credits, margin_basis,
};
use serde::{Deserialize, Serialize};

use super::policy::{MAX_OVERLAY_TOTAL, Terms, policy_id};

/// Most participants one deal may list.
pub const MAX_PARTICIPANTS: usize = 64;
/// Longest participant id or team name, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Largest deal amount (or adjustment) in minor units: [`domain::MAX_DEAL_MINOR`], so a
/// participant's statement summing thousands of such amounts (overlays up to 10×) never
/// leaves `i64`.
pub const MAX_AMOUNT_MINOR: i64 = domain::MAX_DEAL_MINOR;

/// Serde for a [`CreditRole`] as its upper-case name.
mod role_text {
    use domain::CreditRole;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(role: &CreditRole, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(role.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CreditRole, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde for an optional [`Percent`] as its exact decimal text.
mod percent_text {
    use domain::Percent;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Percent>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(p) => s.serialize_some(&p.to_decimal_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Percent>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| Percent::parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// One participant's split. In a request an OVERLAY percent may be absent (the policy's
/// rule gives it); once resolved every percent is present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub participant_id: String,
    #[serde(with = "role_text")]
    pub role: CreditRole,
    #[serde(with = "percent_text")]
    pub percent: Option<Percent>,
    pub team: Option<String>,
    pub owner: bool,
    pub overlay_rule: Option<String>,
}

impl Split {
    /// The percentage; resolved splits always have one.
    pub fn share(&self) -> Percent {
        self.percent.unwrap_or(Percent::ZERO)
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.participant_id, self.role)?;
        if let Some(p) = self.percent {
            write!(f, " {p}")?;
        }
        if let Some(rule) = &self.overlay_rule {
            write!(f, " rule {rule}")?;
        }
        if let Some(team) = &self.team {
            write!(f, " team {team}")?;
        }
        if self.owner {
            f.write_str(" (owner)")?;
        }
        Ok(())
    }
}

fn role_of(field: &str, value: i32) -> Result<CreditRole, ApiError> {
    match wire::known_enum::<pb::CreditRole>(field, value)? {
        pb::CreditRole::Unspecified => Err(ApiError::invalid(
            field,
            "is required: ORIGINATOR, DELIVERY or OVERLAY",
        )),
        pb::CreditRole::Originator => Ok(CreditRole::Originator),
        pb::CreditRole::Delivery => Ok(CreditRole::Delivery),
        pb::CreditRole::Overlay => Ok(CreditRole::Overlay),
    }
}

pub fn role_to_pb(role: CreditRole) -> pb::CreditRole {
    match role {
        CreditRole::Originator => pb::CreditRole::Originator,
        CreditRole::Delivery => pb::CreditRole::Delivery,
        CreditRole::Overlay => pb::CreditRole::Overlay,
    }
}

/// An optional role filter: UNSPECIFIED is `None`.
pub fn optional_role(field: &str, value: i32) -> Result<Option<CreditRole>, ApiError> {
    if value == 0 {
        return Ok(None);
    }
    role_of(field, value).map(Some)
}

/// A participant id or team: 1–128 bytes of printable text.
pub fn participant_id(field: &str, value: &str) -> Result<String, ApiError> {
    wire::text(field, value, MAX_ID_LEN)
}

/// Validates a split set as given (`field` is the list's path, e.g. `participants`).
///
/// Each revenue role's sub-splits must total exactly 100% (a lone participant may omit its
/// percent, meaning 100%); a role's participants must be distinct; overlays are 0–1000%
/// of the basis, 1000% at most in total; at most one owner. A CS-led deal without handoff
/// lists originators and no delivery participants (the originators take both shares);
/// any other deal needs at least one DELIVERY participant.
pub fn parse_splits(
    field: &str,
    participants: &[pb::Participant],
    cs_led_without_handoff: bool,
) -> Result<Vec<Split>, ApiError> {
    check_participant_count(field, participants.len())?;
    let mut splits: Vec<Split> = Vec::with_capacity(participants.len());
    for (index, p) in participants.iter().enumerate() {
        let split = parse_participant(&format!("{field}[{index}]"), p, &splits)?;
        splits.push(split);
    }
    check_roles_present(field, &splits, cs_led_without_handoff)?;
    for role in [CreditRole::Originator, CreditRole::Delivery] {
        complete_sub_splits(field, role, &mut splits)?;
    }
    Ok(splits)
}

/// A split set lists 1–[`MAX_PARTICIPANTS`] participants.
fn check_participant_count(field: &str, count: usize) -> Result<(), ApiError> {
    if count == 0 {
        return Err(ApiError::invalid(
            field,
            "at least one participant is required",
        ));
    }
    if count > MAX_PARTICIPANTS {
        return Err(ApiError::invalid(
            field,
            format!("{count} participants; at most {MAX_PARTICIPANTS} are allowed"),
        ));
    }
    Ok(())
}

/// One participant (at path `item`, e.g. `participants[2]`) as a split, checked against
/// the splits `before` it: no participant twice in one role, at most one owner.
fn parse_participant(item: &str, p: &pb::Participant, before: &[Split]) -> Result<Split, ApiError> {
    let at = |name: &str| format!("{item}.{name}");
    let participant_id = participant_id(&at("participant_id"), &p.participant_id)?;
    let role = role_of(&at("role"), p.role)?;
    let percent = wire::optional_percent(&at("percent"), &p.percent)?;
    if let Some(pct) = percent {
        let max = if role.is_revenue() {
            Percent::ONE_HUNDRED
        } else {
            MAX_OVERLAY_TOTAL
        };
        pct.ensure_between(Percent::ZERO, max)
            .map_err(|e| ApiError::invalid(at("percent"), e))?;
    }
    let team = wire::optional_text(&at("team"), &p.team, MAX_ID_LEN)?;
    let overlay_rule = wire::optional_text(&at("overlay_rule"), &p.overlay_rule, MAX_ID_LEN)?;
    if overlay_rule.is_some() && role != CreditRole::Overlay {
        return Err(ApiError::invalid(
            at("overlay_rule"),
            "only OVERLAY participants take an overlay rule",
        ));
    }
    if before
        .iter()
        .any(|s| s.role == role && s.participant_id == participant_id)
    {
        return Err(ApiError::invalid(
            at("participant_id"),
            format!("{participant_id:?} is listed twice as {role}"),
        ));
    }
    if p.owner && before.iter().any(|s| s.owner) {
        return Err(ApiError::invalid(
            at("owner"),
            "only one participant may be the owner",
        ));
    }
    Ok(Split {
        participant_id,
        role,
        percent,
        team,
        owner: p.owner,
        overlay_rule,
    })
}

/// The revenue roles a deal must list: a CS-led deal without handoff at least one
/// ORIGINATOR and no DELIVERY participant, any other deal at least one DELIVERY.
fn check_roles_present(
    field: &str,
    splits: &[Split],
    cs_led_without_handoff: bool,
) -> Result<(), ApiError> {
    let count = |role| splits.iter().filter(|s| s.role == role).count();
    if cs_led_without_handoff {
        if let Some(index) = splits.iter().position(|s| s.role == CreditRole::Delivery) {
            return Err(ApiError::invalid(
                format!("{field}[{index}].role"),
                "a CS-led deal without handoff lists no DELIVERY participants: \
                 its originators are credited with both shares",
            ));
        }
        if count(CreditRole::Originator) == 0 {
            return Err(ApiError::invalid(
                field,
                "a CS-led deal without handoff needs at least one ORIGINATOR",
            ));
        }
    } else if count(CreditRole::Delivery) == 0 {
        return Err(ApiError::invalid(
            field,
            "at least one DELIVERY participant is required",
        ));
    }
    Ok(())
}

/// One revenue role's sub-splits: a lone participant without a percent takes 100%;
/// several each need one, and together they must total exactly 100%.
fn complete_sub_splits(
    field: &str,
    role: CreditRole,
    splits: &mut [Split],
) -> Result<(), ApiError> {
    let members: Vec<usize> = (0..splits.len())
        .filter(|&i| splits[i].role == role)
        .collect();
    if members.len() == 1 {
        let only = &mut splits[members[0]];
        only.percent.get_or_insert(Percent::ONE_HUNDRED);
    }
    let mut total = Percent::ZERO;
    for &index in &members {
        let share = splits[index].percent.ok_or_else(|| {
            ApiError::invalid(
                format!("{field}[{index}].percent"),
                format!("is required when {role} has several participants"),
            )
        })?;
        total = total.checked_add(share).ok_or_else(|| {
            ApiError::invalid(format!("{field}[{index}].percent"), "is out of range")
        })?;
    }
    if let Some(&last) = members.last()
        && total != Percent::ONE_HUNDRED
    {
        return Err(ApiError::invalid(
            format!("{field}[{last}].percent"),
            format!("{role} sub-splits total {total}; they must total exactly 100%"),
        ));
    }
    Ok(())
}

/// Fills each OVERLAY participant's percent from the policy's overlay rule when the
/// request gave none (the named rule, else the policy's first), and checks the overlays'
/// total stays within 0–1000% of the basis.
pub fn resolve_splits(
    field: &str,
    splits: &[Split],
    terms: &Terms,
) -> Result<Vec<Split>, ApiError> {
    let mut resolved = splits.to_vec();
    let mut overlay_total = Percent::ZERO;
    for (index, split) in resolved.iter_mut().enumerate() {
        if split.role != CreditRole::Overlay {
            continue;
        }
        if split.percent.is_none() {
            let rule = match &split.overlay_rule {
                Some(name) => terms.overlays.iter().find(|(n, _)| n == name),
                None => terms.overlays.first(),
            };
            let (name, pct) = rule.ok_or_else(|| {
                ApiError::invalid(
                    format!("{field}[{index}].overlay_rule"),
                    format!(
                        "policy {} v{} has no overlay rule {:?}",
                        terms.policy_id,
                        terms.version,
                        split.overlay_rule.as_deref().unwrap_or_default()
                    ),
                )
            })?;
            split.overlay_rule = Some(name.clone());
            split.percent = Some(*pct);
        }
        overlay_total = overlay_total
            .checked_add(split.share())
            .filter(|t| *t <= MAX_OVERLAY_TOTAL)
            .ok_or_else(|| {
                ApiError::invalid(
                    field,
                    format!("OVERLAY percentages may total at most {MAX_OVERLAY_TOTAL}"),
                )
            })?;
    }
    Ok(resolved)
}

/// The credit basis in minor units: the amount (AMOUNT) or the amount times the product
/// margin rounded half-even (MARGIN, which needs `margin_percent`).
pub fn credit_basis(
    amount: Money,
    margin: Option<Percent>,
    terms: &Terms,
) -> Result<i64, ApiError> {
    match terms.basis {
        pb::CreditBasis::Margin => {
            let margin = margin.ok_or_else(|| {
                ApiError::invalid(
                    "margin_percent",
                    format!(
                        "is required: policy {} v{} credits on MARGIN",
                        terms.policy_id, terms.version
                    ),
                )
            })?;
            margin_basis(amount.minor(), margin).map_err(|e| ApiError::invalid("margin_percent", e))
        }
        _ => Ok(amount.minor()),
    }
}

/// One participant's credit before it becomes a ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCredit {
    pub participant_id: String,
    pub role: CreditRole,
    pub team: Option<String>,
    pub minor: i64,
}

/// Allocates `basis_minor` over resolved splits (SPEC §4). A CS-led deal without handoff
/// credits its originators with the delivery pool too, by the same sub-splits.
pub fn allocate(
    field: &str,
    basis_minor: i64,
    origination: Percent,
    splits: &[Split],
    cs_led_without_handoff: bool,
) -> Result<Vec<PlannedCredit>, ApiError> {
    let members = |role| -> Vec<(&Split, Percent)> {
        splits
            .iter()
            .filter(|s| s.role == role)
            .map(|s| (s, s.share()))
            .collect()
    };
    let originators = members(CreditRole::Originator);
    let delivery = if cs_led_without_handoff {
        originators.clone()
    } else {
        members(CreditRole::Delivery)
    };
    let overlays = members(CreditRole::Overlay);
    let key = |list: &[(&Split, Percent)]| -> Vec<(String, Percent)> {
        list.iter()
            .map(|(s, p)| (s.participant_id.clone(), *p))
            .collect()
    };
    let allocations = allocate_deal_credits(
        basis_minor,
        origination,
        &key(&originators),
        &key(&delivery),
        &key(&overlays),
    )
    .map_err(|e| ApiError::invalid(field, e))?;
    Ok(allocations
        .into_iter()
        .map(|a| {
            let (participant_id, role, minor) = a.into_parts();
            // In a CS-led deal the delivery credit goes to an originator: its team too.
            let lookup_role = if cs_led_without_handoff && role == CreditRole::Delivery {
                CreditRole::Originator
            } else {
                role
            };
            let team = splits
                .iter()
                .find(|s| s.role == lookup_role && s.participant_id == participant_id)
                .and_then(|s| s.team.clone());
            PlannedCredit {
                participant_id,
                role,
                team,
                minor,
            }
        })
        .collect())
}

/// A validated `RecordDealCredits` request.
#[derive(Debug, Clone, PartialEq)]
pub struct DealInput {
    pub deal_id: OpportunityId,
    pub account_id: Option<AccountId>,
    pub product_id: Option<ProductId>,
    pub subscription_id: Option<SubscriptionId>,
    pub amount: Money,
    pub margin: Option<Percent>,
    pub close_date: NaiveDate,
    pub policy_id: String,
    pub splits: Vec<Split>,
    pub cs_led_without_handoff: bool,
    /// The account's and product's names, for reading (not part of the
    /// recording compared on replays).
    pub account_name: Option<String>,
    pub product_name: Option<String>,
}

fn optional_id<T>(
    field: &str,
    value: &str,
    parse: fn(&str) -> Result<T, domain::IdError>,
) -> Result<Option<T>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    parse(value)
        .map(Some)
        .map_err(|e| ApiError::invalid(field, e))
}

/// A required deal id (the opportunity's UUID).
pub fn deal_id(field: &str, value: &str) -> Result<OpportunityId, ApiError> {
    OpportunityId::parse(value).map_err(|e| ApiError::invalid(field, e))
}

impl DealInput {
    pub fn from_request(req: &pb::RecordDealCreditsRequest) -> Result<Self, ApiError> {
        let amount = wire::money("amount", req.amount.as_ref())?;
        if !amount.is_positive() {
            return Err(ApiError::invalid(
                "amount.amount",
                format!("must be positive, got {amount}"),
            ));
        }
        if amount.minor() > MAX_AMOUNT_MINOR {
            return Err(ApiError::invalid(
                "amount.amount",
                format!("{amount} is beyond the largest deal this service credits"),
            ));
        }
        let margin = wire::optional_percent("margin_percent", &req.margin_percent)?
            .map(|m| {
                m.ensure_between(Percent::ZERO, Percent::ONE_HUNDRED)
                    .map_err(|e| ApiError::invalid("margin_percent", e))
            })
            .transpose()?;
        Ok(Self {
            deal_id: deal_id("deal_id", &req.deal_id)?,
            account_id: optional_id("account_id", &req.account_id, AccountId::parse)?,
            product_id: optional_id("product_id", &req.product_id, ProductId::parse)?,
            subscription_id: optional_id(
                "subscription_id",
                &req.subscription_id,
                SubscriptionId::parse,
            )?,
            amount,
            margin,
            close_date: wire::date("close_date", &req.close_date)?,
            policy_id: policy_id("policy_id", &req.policy_id)?,
            splits: parse_splits(
                "participants",
                &req.participants,
                req.cs_led_without_handoff,
            )?,
            cs_led_without_handoff: req.cs_led_without_handoff,
            account_name: wire::optional_text(
                "account_name",
                &req.account_name,
                wire::MAX_NAME_LEN,
            )?,
            product_name: wire::optional_text(
                "product_name",
                &req.product_name,
                wire::MAX_NAME_LEN,
            )?,
        })
    }

    /// The canonical form stored with the deal and compared on a replay.
    pub fn recording(&self) -> Recording {
        Recording {
            deal_id: self.deal_id.to_string(),
            account_id: self.account_id.map(|id| id.to_string()),
            product_id: self.product_id.map(|id| id.to_string()),
            subscription_id: self.subscription_id.map(|id| id.to_string()),
            amount: self.amount.to_string(),
            margin_percent: self.margin.map(Percent::to_decimal_string),
            close_date: self.close_date.to_string(),
            policy_id: self.policy_id.clone(),
            cs_led_without_handoff: self.cs_led_without_handoff,
            participants: self.splits.clone(),
        }
    }
}

/// What a deal was recorded with, as given (before policy defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub deal_id: String,
    pub account_id: Option<String>,
    pub product_id: Option<String>,
    pub subscription_id: Option<String>,
    pub amount: String,
    pub margin_percent: Option<String>,
    pub close_date: String,
    pub policy_id: String,
    pub cs_led_without_handoff: bool,
    pub participants: Vec<Split>,
}

impl Recording {
    /// Every way `replay` differs from this recording, each naming the field.
    pub fn differences(&self, replay: &Recording) -> Vec<String> {
        fn show<T: fmt::Debug>(value: &Option<T>) -> String {
            match value {
                Some(v) => format!("{v:?}"),
                None => "none".to_owned(),
            }
        }
        let mut out = Vec::new();
        let mut check = |field: &str, recorded: String, replayed: String| {
            if recorded != replayed {
                out.push(format!(
                    "{field}: recorded {recorded}, this request has {replayed}"
                ));
            }
        };
        check(
            "account_id",
            show(&self.account_id),
            show(&replay.account_id),
        );
        check(
            "product_id",
            show(&self.product_id),
            show(&replay.product_id),
        );
        check(
            "subscription_id",
            show(&self.subscription_id),
            show(&replay.subscription_id),
        );
        check("amount", self.amount.clone(), replay.amount.clone());
        check(
            "margin_percent",
            show(&self.margin_percent),
            show(&replay.margin_percent),
        );
        check(
            "close_date",
            self.close_date.clone(),
            replay.close_date.clone(),
        );
        check(
            "policy_id",
            self.policy_id.clone(),
            replay.policy_id.clone(),
        );
        check(
            "cs_led_without_handoff",
            self.cs_led_without_handoff.to_string(),
            replay.cs_led_without_handoff.to_string(),
        );
        if self.participants.len() != replay.participants.len() {
            check(
                "participants",
                format!("{} participants", self.participants.len()),
                format!("{}", replay.participants.len()),
            );
        } else {
            for (index, (a, b)) in self
                .participants
                .iter()
                .zip(&replay.participants)
                .enumerate()
            {
                check(
                    &format!("participants[{index}]"),
                    a.to_string(),
                    b.to_string(),
                );
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pct(text: &str) -> Percent {
        Percent::parse(text).unwrap()
    }

    fn terms(origination: &str) -> Terms {
        Terms {
            policy_id: "default".into(),
            version: 1,
            origination: pct(origination),
            overlays: vec![
                ("account_team".into(), pct("5")),
                ("specialist".into(), pct("2.5")),
            ],
            basis: pb::CreditBasis::Amount,
            hold_days: 0,
            clawback_window_days: 90,
            clawback_mode: pb::ClawbackMode::Full,
        }
    }

    fn part(id: &str, role: pb::CreditRole, percent: &str) -> pb::Participant {
        pb::Participant {
            participant_id: id.into(),
            role: role as i32,
            percent: percent.into(),
            ..Default::default()
        }
    }

    use pb::CreditRole::{Delivery as D, Originator as O, Overlay as V};

    /// Validates, resolves and allocates like RecordDealCredits; amounts as text.
    fn credit(
        basis: &str,
        terms: &Terms,
        participants: &[pb::Participant],
        cs_led: bool,
    ) -> Vec<(String, CreditRole, String)> {
        let amount = Money::parse("USD", basis).unwrap();
        let splits = parse_splits("participants", participants, cs_led).unwrap();
        let splits = resolve_splits("participants", &splits, terms).unwrap();
        let basis = credit_basis(amount, None, terms).unwrap();
        allocate("participants", basis, terms.origination, &splits, cs_led)
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.participant_id,
                    c.role,
                    Money::from_minor(amount.currency(), c.minor).to_amount_string(),
                )
            })
            .collect()
    }

    fn amounts(credits: &[(String, CreditRole, String)]) -> Vec<&str> {
        credits.iter().map(|(_, _, a)| a.as_str()).collect()
    }

    fn field_of(err: ApiError) -> String {
        err.field()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not a field violation: {err:?}"))
    }

    #[test]
    fn default_25_75() {
        let credits = credit(
            "10000.00",
            &terms("25"),
            &[part("csm", O, ""), part("ae", D, "")],
            false,
        );
        assert_eq!(amounts(&credits), ["2500.00", "7500.00"]);
    }

    #[test]
    fn seed_range_20_80_and_30_70() {
        let people = [part("csm", O, ""), part("ae", D, "")];
        assert_eq!(
            amounts(&credit("1000.01", &terms("20"), &people, false)),
            ["200.00", "800.01"] // 200.002 / 800.008: the larger fraction gets the cent
        );
        assert_eq!(
            amounts(&credit("1000.01", &terms("30"), &people, false)),
            ["300.00", "700.01"] // 300.003 / 700.007
        );
    }

    #[test]
    fn spec_worked_example_delivery_split_50_50() {
        let credits = credit(
            "1000.01",
            &terms("25"),
            &[
                part("csm", O, ""),
                part("ae-1", D, "50"),
                part("ae-2", D, "50"),
            ],
            false,
        );
        assert_eq!(amounts(&credits), ["250.00", "375.01", "375.00"]);
    }

    #[test]
    fn one_thousand_and_one_cent_three_ways() {
        // Delivery split in thirds: 750.01 / 3 = 250.00333…; the leftover cent goes to
        // the largest remainder (the third, at 33.333334%).
        let credits = credit(
            "1000.01",
            &terms("25"),
            &[
                part("csm", O, ""),
                part("ae-1", D, "33.333333"),
                part("ae-2", D, "33.333333"),
                part("ae-3", D, "33.333334"),
            ],
            false,
        );
        assert_eq!(amounts(&credits), ["250.00", "250.00", "250.00", "250.01"]);
        // With no originator, 1000.01 in thirds: exact 333.332999…, 333.332999…, 333.334000…;
        // the two leftover cents go to the largest fraction (c) and then, on a tie, to the
        // first listed (a).
        let credits = credit(
            "1000.01",
            &terms("25"),
            &[
                part("a", D, "33.333333"),
                part("b", D, "33.333333"),
                part("c", D, "33.333334"),
            ],
            false,
        );
        assert_eq!(amounts(&credits), ["333.34", "333.33", "333.34"]);
        let total: i64 = credits
            .iter()
            .map(|(_, _, a)| Money::parse("USD", a).unwrap().minor())
            .sum();
        assert_eq!(total, 100_001);
    }

    #[test]
    fn overlays_come_from_the_policy_rules_or_the_request() {
        let credits = credit(
            "1000.01",
            &terms("25"),
            &[
                part("csm", O, ""),
                part("ae", D, ""),
                part("team", V, ""),
                pb::Participant {
                    overlay_rule: "specialist".into(),
                    ..part("se", V, "")
                },
                part("vp", V, "1"),
            ],
            false,
        );
        assert_eq!(
            amounts(&credits),
            ["250.00", "750.01", "50.00", "25.00", "10.00"]
        );
    }

    #[test]
    fn cs_led_without_handoff_credits_the_csm_with_both_shares() {
        let credits = credit("1000.01", &terms("25"), &[part("csm", O, "")], true);
        assert_eq!(
            credits,
            [
                ("csm".into(), CreditRole::Originator, "250.00".into()),
                ("csm".into(), CreditRole::Delivery, "750.01".into()),
            ]
        );
        let err = parse_splits(
            "participants",
            &[part("csm", O, ""), part("ae", D, "")],
            true,
        )
        .unwrap_err();
        assert_eq!(field_of(err), "participants[1].role");
    }

    #[test]
    fn margin_basis_is_amount_times_margin_half_even() {
        let mut t = terms("25");
        t.basis = pb::CreditBasis::Margin;
        let amount = Money::parse("USD", "1000.01").unwrap();
        // 1000.01 × 33.5% = 335.00335 → 335.00
        assert_eq!(credit_basis(amount, Some(pct("33.5")), &t).unwrap(), 33_500);
        // 0.05 × 50% = 0.025 → 0.02 (half-even)
        let small = Money::parse("USD", "0.05").unwrap();
        assert_eq!(credit_basis(small, Some(pct("50")), &t).unwrap(), 2);
        assert_eq!(
            field_of(credit_basis(amount, None, &t).unwrap_err()),
            "margin_percent"
        );
        let splits = parse_splits(
            "participants",
            &[part("csm", O, ""), part("ae", D, "")],
            false,
        )
        .unwrap();
        let credits = allocate("participants", 33_500, t.origination, &splits, false).unwrap();
        assert_eq!(
            credits.iter().map(|c| c.minor).collect::<Vec<_>>(),
            [8_375, 25_125]
        );
    }

    #[test]
    fn bad_splits_name_the_field() {
        let cases: Vec<(Vec<pb::Participant>, &str)> = vec![
            (
                vec![
                    part("csm", O, ""),
                    part("a", D, "50"),
                    part("b", D, "49.99"),
                ],
                "participants[2].percent",
            ),
            (
                vec![part("csm", O, ""), part("a", D, "60"), part("b", D, "")],
                "participants[2].percent",
            ),
            (
                vec![part("csm", O, ""), part("a", D, "-5")],
                "participants[1].percent",
            ),
            (
                vec![pb::Participant {
                    role: 9,
                    ..part("x", D, "")
                }],
                "participants[0].role",
            ),
            (
                vec![pb::Participant {
                    role: 0,
                    ..part("x", D, "")
                }],
                "participants[0].role",
            ),
            (vec![part("", D, "")], "participants[0].participant_id"),
            (
                vec![part(&"x".repeat(200), D, "")],
                "participants[0].participant_id",
            ),
            (
                vec![part("a", D, "50"), part("a", D, "50")],
                "participants[1].participant_id",
            ),
            (vec![part("csm", O, "")], "participants"),
            (vec![], "participants"),
            (
                vec![
                    part("a", D, ""),
                    part("t", V, "600"),
                    part("u", V, "400.01"),
                ],
                "participants[2].percent",
            ),
            (
                vec![
                    pb::Participant {
                        owner: true,
                        ..part("a", D, "50")
                    },
                    pb::Participant {
                        owner: true,
                        ..part("b", D, "50")
                    },
                ],
                "participants[1].owner",
            ),
        ];
        for (participants, field) in cases {
            let result = parse_splits("participants", &participants, false).and_then(|s| {
                // Overlay totals are checked once the policy fills the gaps.
                resolve_splits("participants", &s, &terms("25")).map(|_| ())
            });
            let err = result.unwrap_err();
            let got = field_of(err);
            assert!(
                got == field || (field == "participants[2].percent" && got == "participants"),
                "{participants:?}: expected {field}, got {got}"
            );
        }
    }

    #[test]
    fn a_lone_revenue_participant_takes_the_whole_role() {
        let splits = parse_splits(
            "participants",
            &[part("csm", O, ""), part("ae", D, "")],
            false,
        )
        .unwrap();
        assert_eq!(splits[0].percent, Some(Percent::ONE_HUNDRED));
        assert_eq!(splits[1].percent, Some(Percent::ONE_HUNDRED));
    }

    #[test]
    fn sub_splits_must_total_exactly_one_hundred() {
        let mut splits = parse_splits(
            "participants",
            &[part("a", D, "30"), part("b", D, "70"), part("c", O, "")],
            false,
        )
        .unwrap();
        splits[1].percent = Some(pct("69.99"));
        let err = complete_sub_splits("participants", CreditRole::Delivery, &mut splits);
        assert_eq!(field_of(err.unwrap_err()), "participants[1].percent");
        splits[1].percent = None;
        let err = complete_sub_splits("participants", CreditRole::Delivery, &mut splits);
        assert_eq!(field_of(err.unwrap_err()), "participants[1].percent");
    }

    #[test]
    fn cs_led_without_handoff_lists_originators_only() {
        let originator_only = parse_splits("participants", &[part("csm", O, "")], true).unwrap();
        assert!(check_roles_present("participants", &originator_only, true).is_ok());
        assert_eq!(
            field_of(check_roles_present("participants", &originator_only, false).unwrap_err()),
            "participants"
        );
        let with_delivery = parse_splits(
            "participants",
            &[part("csm", O, ""), part("ae", D, "")],
            false,
        )
        .unwrap();
        assert_eq!(
            field_of(check_roles_present("participants", &with_delivery, true).unwrap_err()),
            "participants[1].role"
        );
    }

    #[test]
    fn participant_count_is_one_to_sixty_four() {
        assert!(check_participant_count("participants", 0).is_err());
        assert!(check_participant_count("participants", 1).is_ok());
        assert!(check_participant_count("participants", MAX_PARTICIPANTS).is_ok());
        assert!(check_participant_count("participants", MAX_PARTICIPANTS + 1).is_err());
    }

    #[test]
    fn overlay_totals_over_1000_are_refused_after_resolution() {
        let splits = parse_splits(
            "participants",
            &[part("a", D, ""), part("t", V, "600"), part("u", V, "400.5")],
            false,
        )
        .unwrap();
        assert_eq!(
            field_of(resolve_splits("participants", &splits, &terms("25")).unwrap_err()),
            "participants"
        );
    }

    #[test]
    fn replays_name_their_differences() {
        let req = pb::RecordDealCreditsRequest {
            deal_id: OpportunityId::new().to_string(),
            amount: Some(contracts::pb::common::v1::Money {
                currency_code: "USD".into(),
                amount: "1000.01".into(),
            }),
            close_date: "2026-03-31".into(),
            participants: vec![part("csm", O, ""), part("ae", D, "")],
            ..Default::default()
        };
        let first = DealInput::from_request(&req).unwrap().recording();
        assert!(first.differences(&first.clone()).is_empty());
        let mut changed = req.clone();
        changed.amount.as_mut().unwrap().amount = "1000.02".into();
        changed.participants[1].percent = "100".into();
        let second = DealInput::from_request(&changed).unwrap().recording();
        // An explicit 100% for a lone participant is the same split.
        assert_eq!(
            first.differences(&second),
            ["amount: recorded USD 1000.01, this request has USD 1000.02"]
        );
        changed.participants[1].participant_id = "ae-2".into();
        let third = DealInput::from_request(&changed).unwrap().recording();
        assert!(first.differences(&third)[1].starts_with("participants[1]: recorded ae DELIVERY"));
    }

    #[test]
    fn bad_deal_fields_are_named() {
        let ok = pb::RecordDealCreditsRequest {
            deal_id: OpportunityId::new().to_string(),
            amount: Some(contracts::pb::common::v1::Money {
                currency_code: "USD".into(),
                amount: "10".into(),
            }),
            close_date: "2026-03-31".into(),
            participants: vec![part("ae", D, "")],
            ..Default::default()
        };
        assert!(DealInput::from_request(&ok).is_ok());
        type Edit = Box<dyn Fn(&mut pb::RecordDealCreditsRequest)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|r| r.deal_id = "nope".into()), "deal_id"),
            (
                Box::new(|r| r.amount.as_mut().unwrap().amount = "-10".into()),
                "amount.amount",
            ),
            (
                Box::new(|r| r.amount.as_mut().unwrap().amount = "0".into()),
                "amount.amount",
            ),
            (
                Box::new(|r| r.amount.as_mut().unwrap().amount = "10000000000000.01".into()),
                "amount.amount",
            ),
            (
                Box::new(|r| r.amount.as_mut().unwrap().currency_code = "XXQ".into()),
                "amount.currency_code",
            ),
            (Box::new(|r| r.amount = None), "amount"),
            (Box::new(|r| r.close_date = String::new()), "close_date"),
            (
                Box::new(|r| r.margin_percent = "101".into()),
                "margin_percent",
            ),
            (Box::new(|r| r.account_id = "x".into()), "account_id"),
            (Box::new(|r| r.policy_id = "A B".into()), "policy_id"),
        ];
        for (edit, field) in cases {
            let mut req = ok.clone();
            edit(&mut req);
            assert_eq!(field_of(DealInput::from_request(&req).unwrap_err()), field);
        }
    }
}
