//! Validated inputs of the pipeline service, the records it keeps inside an
//! opportunity row, and its business rules, one per submodule. Pure; no
//! database, no network.

pub mod config;
pub mod creation;
pub mod forecast;
pub mod gates;
pub mod handoff;
pub mod listing;
pub mod occur_time;
pub mod performance;
pub mod priority;
pub mod qualification;
pub mod routing;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod test_support;
pub mod transition;
pub mod whitespace;

use chrono::{DateTime, NaiveDate, Utc};
use contracts::ApiError;
use contracts::pb::pipeline::v1 as pb;
use contracts::wire;
use domain::{
    AccountId, Money, Motion, OpportunityId, Percent, ProductId, Stage, SubscriptionId, TriggerId,
};

use self::qualification::{QualificationRatings, Rating};
use serde::{Deserialize, Serialize};

/// The typed view of a stored opportunity that the rules need.
pub struct Parsed {
    pub stage: Stage,
    pub motion: Motion,
    pub amount: Money,
    pub probability: Percent,
    pub stakeholders: Vec<Stakeholder>,
    pub qualification: Qualification,
    pub stage_entered_at: DateTime<Utc>,
}

/// A record as the JSON text a row keeps.
pub fn to_json<T: Serialize>(value: &T) -> Result<String, crate::error::PipelineError> {
    serde_json::to_string(value).map_err(|e| crate::error::PipelineError::Corrupt(e.to_string()))
}

/// Most stakeholders kept on one opportunity.
pub const MAX_STAKEHOLDERS: usize = 100;

/// A person on the customer's side, as stored (JSON) with the opportunity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stakeholder {
    pub name: String,
    pub title: String,
    pub role: String,
    pub budget_holder: bool,
    pub decision_maker: bool,
    pub email: String,
}

/// Qualification facts, as stored (JSON); enum values by proto name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qualification {
    pub need_confirmed: bool,
    pub budget_status: String,
    pub decision_process_known: bool,
    pub relationship_strength: i32,
    pub fit: String,
    pub applicability: String,
    pub capability: String,
    pub competitive_position: String,
}

impl Qualification {
    /// Budget status is known when it is set and not UNKNOWN.
    pub fn budget_known(&self) -> bool {
        !matches!(
            self.budget_status.as_str(),
            "" | "BUDGET_STATUS_UNSPECIFIED" | "BUDGET_STATUS_UNKNOWN"
        )
    }

    /// The four ratings, when all are set.
    pub fn ratings(&self) -> Option<QualificationRatings> {
        Some(QualificationRatings {
            fit: rating_from_name(&self.fit)?,
            applicability: rating_from_name(&self.applicability)?,
            capability: rating_from_name(&self.capability)?,
            competitive_position: rating_from_name(&self.competitive_position)?,
        })
    }
}

/// A stored rating name (`RATING_HIGH`) as a [`Rating`]; `None` when unset.
pub fn rating_from_name(name: &str) -> Option<Rating> {
    match pb::Rating::from_str_name(name)? {
        pb::Rating::Unspecified => None,
        pb::Rating::Low => Some(Rating::Low),
        pb::Rating::Medium => Some(Rating::Medium),
        pb::Rating::High => Some(Rating::High),
    }
}

/// A wire rating; UNSPECIFIED is `None`.
pub fn rating(field: &str, value: i32) -> Result<Option<Rating>, ApiError> {
    let r: pb::Rating = wire::known_enum(field, value)?;
    Ok(rating_from_name(r.as_str_name()))
}

pub fn rating_to_pb(value: Option<Rating>) -> pb::Rating {
    match value {
        None => pb::Rating::Unspecified,
        Some(Rating::Low) => pb::Rating::Low,
        Some(Rating::Medium) => pb::Rating::Medium,
        Some(Rating::High) => pb::Rating::High,
    }
}

/// Whole days spent in the current stage.
pub fn days_in_stage(entered: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - entered).num_days().max(0)
}

/// Stalled: open and in its stage for longer than the stage's maximum days.
pub fn is_stalled(
    stage: Stage,
    entered: DateTime<Utc>,
    now: DateTime<Utc>,
    config: &config::PipelineConfig,
) -> bool {
    config
        .max_days(stage)
        .is_some_and(|max| now - entered > chrono::Duration::days(max))
}

/// What the health service said about an account, as stored (JSON) with an
/// opportunity or a handoff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSnapshot {
    pub account_band: Option<String>,
    pub account_score: Option<String>,
    pub source_product_id: Option<String>,
    pub source_product_band: Option<String>,
    /// (product id, band, score)
    pub products: Vec<(String, Option<String>, Option<String>)>,
    pub captured_unix_micros: i64,
}

impl HealthSnapshot {
    pub fn capture(
        view: &gates::HealthView,
        source_product_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            account_band: view.account_band.map(|b| b.as_str().to_owned()),
            account_score: view.account_score.clone(),
            source_product_id: source_product_id.map(str::to_owned),
            source_product_band: source_product_id
                .and_then(|p| view.product_band(p))
                .map(|b| b.as_str().to_owned()),
            products: view
                .products
                .iter()
                .map(|p| {
                    (
                        p.product_id.clone(),
                        p.band.map(|b| b.as_str().to_owned()),
                        p.score.clone(),
                    )
                })
                .collect(),
            captured_unix_micros: now.timestamp_micros(),
        }
    }
}

/// Where an opportunity came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Trigger(TriggerId),
    Whitespace,
    Discovery,
}

impl Source {
    pub fn kind(&self) -> pb::SourceKind {
        match self {
            Source::Trigger(_) => pb::SourceKind::Trigger,
            Source::Whitespace => pb::SourceKind::Whitespace,
            Source::Discovery => pb::SourceKind::Discovery,
        }
    }

    /// The trigger it came from, as stored.
    pub fn trigger_id(&self) -> Option<String> {
        match self {
            Source::Trigger(t) => Some(t.to_string()),
            _ => None,
        }
    }
}

/// A new opportunity that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOpportunity {
    pub account_id: AccountId,
    pub product_id: ProductId,
    pub source_product_id: Option<ProductId>,
    pub name: String,
    pub motion: Motion,
    pub amount: Money,
    pub stage: Stage,
    pub probability: Percent,
    pub probability_overridden: bool,
    pub forecast_category: pb::ForecastCategory,
    pub close_date: Option<NaiveDate>,
    pub source: Source,
    pub owner: Option<String>,
    pub owner_team: Option<String>,
    pub originator: Option<String>,
    pub stakeholders: Vec<Stakeholder>,
    pub discovery_notes: Option<String>,
    pub qualification: Qualification,
    pub strategic_value: Option<Rating>,
    /// For an upsell: the subscription it grows (the caller's choice, then
    /// the one the health check settled on).
    pub subscription_id: Option<SubscriptionId>,
    /// Names the health service gave when the references were checked.
    pub account_name: Option<String>,
    pub product_name: Option<String>,
}

fn id<T>(
    field: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, domain::IdError>,
) -> Result<T, ApiError> {
    parse(value).map_err(|e| ApiError::invalid(field, e))
}

fn optional_id<T>(
    field: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, domain::IdError>,
) -> Result<Option<T>, ApiError> {
    if value.is_empty() {
        Ok(None)
    } else {
        id(field, value, parse).map(Some)
    }
}

/// A deal amount: positive, and at most [`domain::MAX_DEAL_MINOR`] minor units (the
/// largest deal the credit service credits; above it a won deal could never be
/// credited, and pipeline totals could leave `i64`). `field` is the Money's path.
pub fn deal_amount(
    field: &str,
    value: Option<&contracts::pb::common::v1::Money>,
) -> Result<Money, ApiError> {
    let amount = wire::money(field, value)?;
    if !amount.is_positive() {
        return Err(ApiError::invalid(
            format!("{field}.amount"),
            "must be greater than zero",
        ));
    }
    let max = Money::from_minor(amount.currency(), domain::MAX_DEAL_MINOR);
    if amount.minor() > max.minor() {
        return Err(ApiError::invalid(
            format!("{field}.amount"),
            format!("{amount} is beyond the largest deal amount, {max}"),
        ));
    }
    Ok(amount)
}

fn rating_name(field: &str, value: i32) -> Result<String, ApiError> {
    let rating: pb::Rating = wire::known_enum(field, value)?;
    Ok(rating.as_str_name().to_owned())
}

fn stakeholder(field: &str, s: &pb::Stakeholder) -> Result<Stakeholder, ApiError> {
    Ok(Stakeholder {
        name: wire::text(&format!("{field}.name"), &s.name, wire::MAX_NAME_LEN)?,
        title: wire::optional_text(&format!("{field}.title"), &s.title, wire::MAX_NAME_LEN)?
            .unwrap_or_default(),
        role: wire::optional_text(&format!("{field}.role"), &s.role, wire::MAX_NAME_LEN)?
            .unwrap_or_default(),
        budget_holder: s.budget_holder,
        decision_maker: s.decision_maker,
        email: wire::optional_text(&format!("{field}.email"), &s.email, wire::MAX_NAME_LEN)?
            .unwrap_or_default(),
    })
}

/// Validates a list of stakeholders under `field` (e.g. `opportunity.stakeholders`).
pub fn stakeholders(field: &str, list: &[pb::Stakeholder]) -> Result<Vec<Stakeholder>, ApiError> {
    if list.len() > MAX_STAKEHOLDERS {
        return Err(ApiError::invalid(
            field,
            format!("at most {MAX_STAKEHOLDERS} stakeholders are kept"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| stakeholder(&format!("{field}[{i}]"), s))
        .collect()
}

/// Validates qualification facts under `field`.
pub fn qualification(
    field: &str,
    q: Option<&pb::Qualification>,
) -> Result<Qualification, ApiError> {
    let Some(q) = q else {
        return Ok(Qualification::default());
    };
    if !(0..=10).contains(&q.relationship_strength) {
        return Err(ApiError::invalid(
            format!("{field}.relationship_strength"),
            format!("{} is outside 0-10", q.relationship_strength),
        ));
    }
    let budget: pb::BudgetStatus =
        wire::known_enum(&format!("{field}.budget_status"), q.budget_status)?;
    Ok(Qualification {
        need_confirmed: q.need_confirmed,
        budget_status: budget.as_str_name().to_owned(),
        decision_process_known: q.decision_process_known,
        relationship_strength: q.relationship_strength,
        fit: rating_name(&format!("{field}.fit"), q.fit)?,
        applicability: rating_name(&format!("{field}.applicability"), q.applicability)?,
        capability: rating_name(&format!("{field}.capability"), q.capability)?,
        competitive_position: rating_name(
            &format!("{field}.competitive_position"),
            q.competitive_position,
        )?,
    })
}

/// The motion under `field`, which must be set.
fn required_motion(field: &str, value: i32) -> Result<Motion, ApiError> {
    wire::motion(field, value)?.ok_or_else(|| ApiError::invalid(field, "is required"))
}

/// An overridden probability under `field` (`None`: the stage default), 0-100.
fn probability_override(field: &str, value: &str) -> Result<Option<Percent>, ApiError> {
    let overridden = wire::optional_percent(field, value)?;
    if let Some(p) = overridden {
        p.ensure_between(Percent::ZERO, Percent::ONE_HUNDRED)
            .map_err(|e| ApiError::invalid(field, e))?;
    }
    Ok(overridden)
}

/// A forecast category under `field`; UNSPECIFIED is PIPELINE.
fn forecast_category(field: &str, value: i32) -> Result<pb::ForecastCategory, ApiError> {
    Ok(match wire::known_enum(field, value)? {
        pb::ForecastCategory::Unspecified => pb::ForecastCategory::Pipeline,
        other => other,
    })
}

/// Where a new opportunity came from (`field` is the source's path); none
/// given is discovery.
fn source(field: &str, value: Option<&pb::Source>) -> Result<Source, ApiError> {
    let Some(s) = value else {
        return Ok(Source::Discovery);
    };
    Ok(
        match wire::known_enum::<pb::SourceKind>(&format!("{field}.kind"), s.kind)? {
            pb::SourceKind::Unspecified | pb::SourceKind::Discovery => Source::Discovery,
            pb::SourceKind::Whitespace => Source::Whitespace,
            pb::SourceKind::Trigger => Source::Trigger(id(
                &format!("{field}.trigger_id"),
                &s.trigger_id,
                TriggerId::parse,
            )?),
        },
    )
}

/// Optional free text of a name's length.
fn optional_name(field: &str, value: &str) -> Result<Option<String>, ApiError> {
    wire::optional_text(field, value, wire::MAX_NAME_LEN)
}

impl NewOpportunity {
    pub fn from_request(
        req: &pb::CreateOpportunityRequest,
        config: &config::PipelineConfig,
    ) -> Result<Self, ApiError> {
        const F: &str = "opportunity";
        let o = req
            .opportunity
            .as_ref()
            .ok_or_else(|| ApiError::invalid(F, "is required"))?;
        let f = |name: &str| format!("{F}.{name}");
        let account_id = id(&f("account_id"), &o.account_id, AccountId::parse)?;
        let product_id = id(&f("product_id"), &o.product_id, ProductId::parse)?;
        let source_product_id = optional_id(
            &f("source_product_id"),
            &o.source_product_id,
            ProductId::parse,
        )?;
        let motion = required_motion(&f("motion"), o.motion)?;
        let amount = deal_amount(&f("amount"), o.amount.as_ref())?;
        let stage = wire::stage(&f("stage"), o.stage)?.unwrap_or(Stage::Identified);
        if stage != Stage::Identified {
            return Err(ApiError::invalid(
                f("stage"),
                "a new opportunity starts at STAGE_IDENTIFIED; move it with AdvanceStage",
            ));
        }
        let overridden = probability_override(&f("probability"), &o.probability)?;
        let forecast_category = forecast_category(&f("forecast_category"), o.forecast_category)?;
        let source = source(&f("source"), o.source.as_ref())?;
        let name = optional_name(&f("name"), &o.name)?
            .unwrap_or_else(|| format!("{} opportunity", motion.as_str()));
        Ok(Self {
            account_id,
            product_id,
            source_product_id,
            name,
            motion,
            amount,
            stage,
            probability: overridden.unwrap_or_else(|| config.probability(stage)),
            probability_overridden: overridden.is_some(),
            forecast_category,
            close_date: wire::optional_date(&f("close_date"), &o.close_date)?,
            source,
            owner: optional_name(&f("owner"), &o.owner)?,
            owner_team: optional_name(&f("owner_team"), &o.owner_team)?,
            originator: optional_name(&f("originator"), &o.originator)?,
            stakeholders: stakeholders(&f("stakeholders"), &o.stakeholders)?,
            discovery_notes: wire::optional_text(
                &f("discovery_notes"),
                &o.discovery_notes,
                wire::MAX_NOTE_LEN,
            )?,
            qualification: qualification(&f("qualification"), o.qualification.as_ref())?,
            strategic_value: rating(&f("strategic_value"), o.strategic_value)?,
            subscription_id: optional_id(
                &f("subscription_id"),
                &o.subscription_id,
                SubscriptionId::parse,
            )?,
            account_name: None,
            product_name: None,
        })
    }
}

/// The fields `UpdateOpportunity` may change; the stage moves only through
/// `AdvanceStage`/`CloseOpportunity`, the account and id never.
pub const UPDATABLE_FIELDS: &[&str] = &[
    "name",
    "product_id",
    "source_product_id",
    "subscription_id",
    "motion",
    "amount",
    "probability",
    "forecast_category",
    "close_date",
    "owner",
    "owner_team",
    "originator",
    "stakeholders",
    "discovery_notes",
    "qualification",
    "strategic_value",
];

/// A validated `UpdateOpportunity`: `Some` for each field to change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpportunityPatch {
    pub name: Option<String>,
    pub product_id: Option<ProductId>,
    pub source_product_id: Option<Option<ProductId>>,
    /// The subscription an upsell grows; `Some(None)` leaves it to be
    /// chosen at the close (the only active one of the product).
    pub subscription_id: Option<Option<SubscriptionId>>,
    pub motion: Option<Motion>,
    pub amount: Option<Money>,
    /// `Some(None)` goes back to the stage default.
    pub probability: Option<Option<Percent>>,
    pub forecast_category: Option<pb::ForecastCategory>,
    pub close_date: Option<Option<NaiveDate>>,
    pub owner: Option<Option<String>>,
    pub owner_team: Option<Option<String>>,
    pub originator: Option<Option<String>>,
    pub stakeholders: Option<Vec<Stakeholder>>,
    pub discovery_notes: Option<Option<String>>,
    pub qualification: Option<Qualification>,
    pub strategic_value: Option<Option<Rating>>,
}

/// A validated `UpdateOpportunity` request.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    pub id: OpportunityId,
    pub etag: i64,
    pub patch: OpportunityPatch,
}

/// Parses an etag as issued in `Opportunity.etag`.
pub fn etag(field: &str, value: &str) -> Result<i64, ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(
            field,
            "is required: pass the etag of the opportunity you read",
        ));
    }
    value.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::invalid(
            field,
            format!("{value:?} is not an etag this service issued"),
        )
    })
}

/// The fields an update mask names (`opportunity.` prefixes allowed);
/// empty: every updatable field.
fn update_mask(paths: &[String]) -> Result<Vec<&'static str>, ApiError> {
    if paths.is_empty() {
        return Ok(UPDATABLE_FIELDS.to_vec());
    }
    let mut mask = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let path = path.strip_prefix("opportunity.").unwrap_or(path);
        match UPDATABLE_FIELDS.iter().find(|f| **f == path) {
            Some(known) => mask.push(*known),
            None => {
                return Err(ApiError::invalid(
                    format!("update_mask[{i}]"),
                    format!(
                        "{path:?} cannot be updated; updatable fields: {}",
                        UPDATABLE_FIELDS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(mask)
}

impl UpdateRequest {
    pub fn from_request(req: &pb::UpdateOpportunityRequest) -> Result<Self, ApiError> {
        const F: &str = "opportunity";
        let o = req
            .opportunity
            .as_ref()
            .ok_or_else(|| ApiError::invalid(F, "is required"))?;
        let id = id(
            &format!("{F}.opportunity_id"),
            &o.opportunity_id,
            OpportunityId::parse,
        )?;
        let etag = etag(&format!("{F}.etag"), &o.etag)?;
        let mut patch = OpportunityPatch::default();
        for field in update_mask(&req.update_mask)? {
            patch.set(field, o)?;
        }
        Ok(Self { id, etag, patch })
    }
}

impl OpportunityPatch {
    /// Validates one updatable `field` of `o` into the patch.
    fn set(&mut self, field: &str, o: &pb::Opportunity) -> Result<(), ApiError> {
        let path = format!("opportunity.{field}");
        match field {
            "name" | "product_id" | "source_product_id" | "subscription_id" | "motion" => {
                self.set_product(field, &path, o)
            }
            "amount" | "probability" | "forecast_category" | "close_date" => {
                self.set_money(field, &path, o)
            }
            _ => self.set_people_and_notes(field, &path, o),
        }
    }

    /// Name, product, source product, subscription and motion.
    fn set_product(
        &mut self,
        field: &str,
        path: &str,
        o: &pb::Opportunity,
    ) -> Result<(), ApiError> {
        match field {
            "name" => self.name = Some(wire::text(path, &o.name, wire::MAX_NAME_LEN)?),
            "product_id" => self.product_id = Some(id(path, &o.product_id, ProductId::parse)?),
            "source_product_id" => {
                self.source_product_id =
                    Some(optional_id(path, &o.source_product_id, ProductId::parse)?)
            }
            "subscription_id" => {
                self.subscription_id = Some(optional_id(
                    path,
                    &o.subscription_id,
                    SubscriptionId::parse,
                )?)
            }
            "motion" => self.motion = Some(required_motion(path, o.motion)?),
            _ => {}
        }
        Ok(())
    }

    /// Amount, probability, forecast category and close date.
    fn set_money(&mut self, field: &str, path: &str, o: &pb::Opportunity) -> Result<(), ApiError> {
        match field {
            "amount" => self.amount = Some(deal_amount(path, o.amount.as_ref())?),
            "probability" => self.probability = Some(probability_override(path, &o.probability)?),
            "forecast_category" => {
                self.forecast_category = Some(forecast_category(path, o.forecast_category)?)
            }
            "close_date" => self.close_date = Some(wire::optional_date(path, &o.close_date)?),
            _ => {}
        }
        Ok(())
    }

    /// Owner, team, originator, stakeholders, notes, qualification and
    /// strategic value.
    fn set_people_and_notes(
        &mut self,
        field: &str,
        path: &str,
        o: &pb::Opportunity,
    ) -> Result<(), ApiError> {
        match field {
            "owner" => self.owner = Some(optional_name(path, &o.owner)?),
            "owner_team" => self.owner_team = Some(optional_name(path, &o.owner_team)?),
            "originator" => self.originator = Some(optional_name(path, &o.originator)?),
            "stakeholders" => self.stakeholders = Some(stakeholders(path, &o.stakeholders)?),
            "discovery_notes" => {
                self.discovery_notes = Some(wire::optional_text(
                    path,
                    &o.discovery_notes,
                    wire::MAX_NOTE_LEN,
                )?)
            }
            "qualification" => {
                self.qualification = Some(qualification(path, o.qualification.as_ref())?)
            }
            "strategic_value" => self.strategic_value = Some(rating(path, o.strategic_value)?),
            _ => {}
        }
        Ok(())
    }
}

/// Why an upsell has no subscription to grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsellTargetError {
    /// The account holds no active subscription of the product.
    NoneOfProduct,
    /// The subscription named is not an active one of this product.
    NotUpsellable(String),
    /// Several are active and none was named: the caller chooses.
    Ambiguous(Vec<String>),
    /// The subscription bills in another currency than the deal.
    OtherCurrency {
        subscription_id: String,
        currency: String,
    },
}

/// The subscription an upsell of `product_id` grows (SPEC §3): the one
/// named, which must be an active subscription of the product, or else the
/// only active one of the product; in the deal's currency.
pub fn upsell_target(
    active: &[crate::health::SubscriptionInfo],
    product_id: &str,
    named: Option<&str>,
    currency: domain::Currency,
) -> Result<String, UpsellTargetError> {
    let of_product: Vec<&crate::health::SubscriptionInfo> = active
        .iter()
        .filter(|s| s.product_id == product_id)
        .collect();
    let chosen = match named {
        Some(id) => *of_product
            .iter()
            .find(|s| s.subscription_id == id)
            .ok_or_else(|| UpsellTargetError::NotUpsellable(id.to_owned()))?,
        None => match of_product.as_slice() {
            [] => return Err(UpsellTargetError::NoneOfProduct),
            [only] => *only,
            several => {
                return Err(UpsellTargetError::Ambiguous(
                    several.iter().map(|s| s.subscription_id.clone()).collect(),
                ));
            }
        },
    };
    match chosen.mrr {
        Some(mrr) if mrr.currency() != currency => Err(UpsellTargetError::OtherCurrency {
            subscription_id: chosen.subscription_id.clone(),
            currency: mrr.currency().code().to_owned(),
        }),
        _ => Ok(chosen.subscription_id.clone()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use contracts::pb::common::v1 as common;

    #[test]
    fn an_update_names_the_subscription_or_leaves_it_to_the_close() {
        let request = |subscription: &str| pb::UpdateOpportunityRequest {
            opportunity: Some(pb::Opportunity {
                opportunity_id: OpportunityId::new().to_string(),
                etag: "3".into(),
                subscription_id: subscription.into(),
                ..Default::default()
            }),
            update_mask: vec!["subscription_id".into()],
            ..Default::default()
        };
        let id = SubscriptionId::new();
        let named = UpdateRequest::from_request(&request(&id.to_string())).unwrap();
        assert_eq!(named.patch.subscription_id, Some(Some(id)));
        assert_eq!(named.patch.motion, None, "only the masked field");
        let cleared = UpdateRequest::from_request(&request("")).unwrap();
        assert_eq!(cleared.patch.subscription_id, Some(None));
        let bad = UpdateRequest::from_request(&request("nope")).unwrap_err();
        assert_eq!(bad.field(), Some("opportunity.subscription_id"));
    }

    #[test]
    fn an_update_validates_the_masked_fields_each_under_its_path() {
        let request = |mask: &[&str], edit: fn(&mut pb::Opportunity)| {
            let mut o = pb::Opportunity {
                opportunity_id: OpportunityId::new().to_string(),
                etag: "3".into(),
                name: "Analytics".into(),
                probability: "40".into(),
                forecast_category: pb::ForecastCategory::Unspecified as i32,
                ..Default::default()
            };
            edit(&mut o);
            pb::UpdateOpportunityRequest {
                opportunity: Some(o),
                update_mask: mask.iter().map(|m| m.to_string()).collect(),
                ..Default::default()
            }
        };
        let ok = UpdateRequest::from_request(&request(
            &["opportunity.probability", "forecast_category", "owner"],
            |_| {},
        ))
        .unwrap();
        assert_eq!(ok.patch.probability, Some(Some(Percent::from_whole(40))));
        assert_eq!(
            ok.patch.forecast_category,
            Some(pb::ForecastCategory::Pipeline)
        );
        assert_eq!(ok.patch.owner, Some(None));
        assert_eq!(ok.patch.name, None);
        type Edit = fn(&mut pb::Opportunity);
        let cases: [(&[&str], Edit, &str); 4] = [
            (&["stage"], |_| {}, "update_mask[0]"),
            (
                &["probability"],
                |o| o.probability = "101".into(),
                "opportunity.probability",
            ),
            (&["motion"], |_| {}, "opportunity.motion"),
            // An empty mask is every field: the first one wrong is named.
            (&[], |o| o.name.clear(), "opportunity.name"),
        ];
        for (mask, edit, field) in cases {
            let err = UpdateRequest::from_request(&request(mask, edit)).unwrap_err();
            assert_eq!(err.field(), Some(field), "{mask:?}");
        }
    }

    #[test]
    fn an_upsell_grows_one_active_subscription_of_its_product_in_its_currency() {
        let usd = domain::Currency::parse("USD").unwrap();
        let eur = domain::Currency::parse("EUR").unwrap();
        let held = |id: &str, product: &str, currency| crate::health::SubscriptionInfo {
            subscription_id: id.into(),
            product_id: product.into(),
            tier: "STARTER".into(),
            quantity: 1,
            quota_limit: 0,
            mrr: Some(domain::Money::from_minor(currency, 100_000)),
            usage: None,
        };
        let one = [held("s1", "analytics", usd), held("s2", "billing", usd)];
        assert_eq!(upsell_target(&one, "analytics", None, usd), Ok("s1".into()));
        assert_eq!(
            upsell_target(&one, "analytics", Some("s1"), usd),
            Ok("s1".into())
        );
        // The billing subscription does not grow analytics.
        assert_eq!(
            upsell_target(&one, "analytics", Some("s2"), usd),
            Err(UpsellTargetError::NotUpsellable("s2".into()))
        );
        assert_eq!(
            upsell_target(&one, "crm", None, usd),
            Err(UpsellTargetError::NoneOfProduct)
        );
        assert_eq!(
            upsell_target(&[], "analytics", None, usd),
            Err(UpsellTargetError::NoneOfProduct)
        );
        let two = [held("s1", "analytics", usd), held("s3", "analytics", eur)];
        assert_eq!(
            upsell_target(&two, "analytics", None, usd),
            Err(UpsellTargetError::Ambiguous(vec!["s1".into(), "s3".into()]))
        );
        assert_eq!(
            upsell_target(&two, "analytics", Some("s3"), usd),
            Err(UpsellTargetError::OtherCurrency {
                subscription_id: "s3".into(),
                currency: "EUR".into()
            })
        );
        assert_eq!(
            upsell_target(&two, "analytics", Some("s3"), eur),
            Ok("s3".into())
        );
    }

    fn request() -> pb::CreateOpportunityRequest {
        pb::CreateOpportunityRequest {
            request_id: String::new(),
            occur_time: None,
            opportunity: Some(pb::Opportunity {
                account_id: AccountId::new().to_string(),
                product_id: ProductId::new().to_string(),
                motion: common::Motion::CrossSellAdjacent as i32,
                amount: Some(common::Money {
                    currency_code: "USD".into(),
                    amount: "500000".into(),
                }),
                ..Default::default()
            }),
        }
    }

    fn field_of(err: ApiError) -> String {
        err.field()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not a field violation: {err:?}"))
    }

    fn with(edit: impl FnOnce(&mut pb::Opportunity)) -> pb::CreateOpportunityRequest {
        let mut r = request();
        edit(r.opportunity.as_mut().unwrap());
        r
    }

    #[test]
    fn deal_amounts_stop_at_the_largest_deal() {
        let money = |c: &str, a: &str| common::Money {
            currency_code: c.into(),
            amount: a.into(),
        };
        let largest = deal_amount("a", Some(&money("USD", "10000000000000.00"))).unwrap();
        assert_eq!(largest.minor(), domain::MAX_DEAL_MINOR);
        for (c, a) in [
            ("USD", "10000000000000.01"),
            ("JPY", "1000000000000001"),
            ("USD", "92233720368547758.07"),
            ("USD", "0"),
        ] {
            let err = deal_amount("a", Some(&money(c, a))).unwrap_err();
            assert_eq!(field_of(err), "a.amount", "{c} {a}");
        }
    }

    #[test]
    fn defaults_follow_the_stage() {
        let o =
            NewOpportunity::from_request(&request(), &config::PipelineConfig::default()).unwrap();
        assert_eq!(o.stage, Stage::Identified);
        assert_eq!(o.probability, Percent::from_whole(10));
        assert!(!o.probability_overridden);
        assert_eq!(o.source, Source::Discovery);
        assert_eq!(o.forecast_category, pb::ForecastCategory::Pipeline);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: Vec<(pb::CreateOpportunityRequest, &str)> = vec![
            (with(|o| o.account_id.clear()), "opportunity.account_id"),
            (with(|o| o.motion = 0), "opportunity.motion"),
            (with(|o| o.motion = 42), "opportunity.motion"),
            (
                with(|o| o.amount.as_mut().unwrap().amount = "12.345".into()),
                "opportunity.amount.amount",
            ),
            (
                with(|o| o.amount.as_mut().unwrap().amount = "-5".into()),
                "opportunity.amount.amount",
            ),
            (
                with(|o| o.amount.as_mut().unwrap().currency_code = "usd".into()),
                "opportunity.amount.currency_code",
            ),
            (
                with(|o| o.probability = "101".into()),
                "opportunity.probability",
            ),
            (
                with(|o| o.stage = pb::Stage::Qualified as i32),
                "opportunity.stage",
            ),
            (
                with(|o| o.close_date = "2026-02-31".into()),
                "opportunity.close_date",
            ),
            (
                with(|o| o.stakeholders.push(pb::Stakeholder::default())),
                "opportunity.stakeholders[0].name",
            ),
            (
                with(|o| {
                    o.source = Some(pb::Source {
                        kind: pb::SourceKind::Trigger as i32,
                        trigger_id: String::new(),
                    })
                }),
                "opportunity.source.trigger_id",
            ),
            (
                with(|o| {
                    o.qualification = Some(pb::Qualification {
                        relationship_strength: 11,
                        ..Default::default()
                    })
                }),
                "opportunity.qualification.relationship_strength",
            ),
        ];
        for (req, field) in cases {
            assert_eq!(
                field_of(
                    NewOpportunity::from_request(&req, &config::PipelineConfig::default())
                        .unwrap_err()
                ),
                field
            );
        }
        let missing = pb::CreateOpportunityRequest::default();
        assert_eq!(
            field_of(
                NewOpportunity::from_request(&missing, &config::PipelineConfig::default())
                    .unwrap_err()
            ),
            "opportunity"
        );
    }
}
