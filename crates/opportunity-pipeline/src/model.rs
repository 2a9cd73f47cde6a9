//! Validated inputs of the pipeline service and the records it keeps inside
//! an opportunity row. Pure; no database, no tonic.

use chrono::NaiveDate;
use contracts::ApiError;
use contracts::pb::pipeline::v1 as pb;
use contracts::wire;
use domain::{AccountId, Money, Motion, Percent, ProductId, Stage, TriggerId};
use serde::{Deserialize, Serialize};

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

impl NewOpportunity {
    pub fn from_request(req: &pb::CreateOpportunityRequest) -> Result<Self, ApiError> {
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
        let motion = wire::motion(&f("motion"), o.motion)?
            .ok_or_else(|| ApiError::invalid(f("motion"), "is required"))?;
        let amount = wire::money(&f("amount"), o.amount.as_ref())?;
        if !amount.is_positive() {
            return Err(ApiError::invalid(
                f("amount.amount"),
                "must be greater than zero",
            ));
        }
        let stage = wire::stage(&f("stage"), o.stage)?.unwrap_or(Stage::Identified);
        if stage != Stage::Identified {
            return Err(ApiError::invalid(
                f("stage"),
                "a new opportunity starts at STAGE_IDENTIFIED; move it with AdvanceStage",
            ));
        }
        let overridden = wire::optional_percent(&f("probability"), &o.probability)?;
        if let Some(p) = overridden {
            p.ensure_between(Percent::ZERO, Percent::ONE_HUNDRED)
                .map_err(|e| ApiError::invalid(f("probability"), e))?;
        }
        let forecast_category: pb::ForecastCategory =
            wire::known_enum(&f("forecast_category"), o.forecast_category)?;
        let forecast_category = match forecast_category {
            pb::ForecastCategory::Unspecified => pb::ForecastCategory::Pipeline,
            other => other,
        };
        let source = match o.source.as_ref() {
            None => Source::Discovery,
            Some(s) => match wire::known_enum::<pb::SourceKind>(&f("source.kind"), s.kind)? {
                pb::SourceKind::Unspecified | pb::SourceKind::Discovery => Source::Discovery,
                pb::SourceKind::Whitespace => Source::Whitespace,
                pb::SourceKind::Trigger => Source::Trigger(id(
                    &f("source.trigger_id"),
                    &s.trigger_id,
                    TriggerId::parse,
                )?),
            },
        };
        let name = wire::optional_text(&f("name"), &o.name, wire::MAX_NAME_LEN)?
            .unwrap_or_else(|| format!("{} opportunity", motion.as_str()));
        Ok(Self {
            account_id,
            product_id,
            source_product_id,
            name,
            motion,
            amount,
            stage,
            probability: overridden.unwrap_or_else(|| stage.default_probability()),
            probability_overridden: overridden.is_some(),
            forecast_category,
            close_date: wire::optional_date(&f("close_date"), &o.close_date)?,
            source,
            owner: wire::optional_text(&f("owner"), &o.owner, wire::MAX_NAME_LEN)?,
            owner_team: wire::optional_text(&f("owner_team"), &o.owner_team, wire::MAX_NAME_LEN)?,
            originator: wire::optional_text(&f("originator"), &o.originator, wire::MAX_NAME_LEN)?,
            stakeholders: stakeholders(&f("stakeholders"), &o.stakeholders)?,
            discovery_notes: wire::optional_text(
                &f("discovery_notes"),
                &o.discovery_notes,
                wire::MAX_NOTE_LEN,
            )?,
            qualification: qualification(&f("qualification"), o.qualification.as_ref())?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use contracts::pb::common::v1 as common;

    fn request() -> pb::CreateOpportunityRequest {
        pb::CreateOpportunityRequest {
            request_id: String::new(),
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
        match err {
            ApiError::InvalidArgument { violations } => violations[0].field.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn with(edit: impl FnOnce(&mut pb::Opportunity)) -> pb::CreateOpportunityRequest {
        let mut r = request();
        edit(r.opportunity.as_mut().unwrap());
        r
    }

    #[test]
    fn defaults_follow_the_stage() {
        let o = NewOpportunity::from_request(&request()).unwrap();
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
                field_of(NewOpportunity::from_request(&req).unwrap_err()),
                field
            );
        }
        let missing = pb::CreateOpportunityRequest::default();
        assert_eq!(
            field_of(NewOpportunity::from_request(&missing).unwrap_err()),
            "opportunity"
        );
    }
}
