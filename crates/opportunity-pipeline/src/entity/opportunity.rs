//! `opportunities`: one row per cross-sell or upsell opportunity.
//! `version` backs the etag; stakeholders and qualification are JSON text;
//! `motion` and `stage` are text columns read as [`StoredMotion`] and
//! [`StoredStage`], whose values are the domain's names (`Motion::as_str`,
//! `Stage::as_str`) — converted to the domain in one place each (`StoredMotion` in
//! `storage::columns`, shared with health).

use chrono::{DateTime, NaiveDate, Utc};
use domain::Stage;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "opportunities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub product_id: String,
    pub source_product_id: Option<String>,
    pub name: String,
    pub motion: StoredMotion,
    pub amount_minor: i64,
    pub currency: String,
    pub stage: StoredStage,
    pub probability: String,
    pub probability_overridden: bool,
    pub forecast_category: String,
    pub close_date: Option<NaiveDate>,
    pub source_kind: String,
    pub source_trigger_id: Option<String>,
    pub owner: Option<String>,
    pub owner_team: Option<String>,
    pub originator: Option<String>,
    pub stakeholders: String,
    pub discovery_notes: Option<String>,
    pub qualification: String,
    pub health_snapshot: Option<String>,
    pub lost_reason: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// When the current stage was entered; `None` only for rows older than
    /// the column (then `updated_at` stands in).
    pub stage_entered_at: Option<DateTime<Utc>>,
    pub strategic_value: Option<String>,
    /// For an upsell: the subscription it grows.
    pub subscription_id: Option<String>,
    /// Names as the health service gave them at creation (`None` for rows
    /// older than the columns).
    pub account_name: Option<String>,
    pub product_name: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub use storage::columns::StoredMotion;

/// `opportunities.stage`: a [`Stage`] by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum StoredStage {
    #[sea_orm(string_value = "IDENTIFIED")]
    Identified,
    #[sea_orm(string_value = "EXPLORING")]
    Exploring,
    #[sea_orm(string_value = "QUALIFIED")]
    Qualified,
    #[sea_orm(string_value = "PROPOSED")]
    Proposed,
    #[sea_orm(string_value = "NEGOTIATING")]
    Negotiating,
    #[sea_orm(string_value = "CLOSED_WON")]
    ClosedWon,
    #[sea_orm(string_value = "CLOSED_LOST")]
    ClosedLost,
}

impl From<Stage> for StoredStage {
    fn from(s: Stage) -> Self {
        match s {
            Stage::Identified => StoredStage::Identified,
            Stage::Exploring => StoredStage::Exploring,
            Stage::Qualified => StoredStage::Qualified,
            Stage::Proposed => StoredStage::Proposed,
            Stage::Negotiating => StoredStage::Negotiating,
            Stage::ClosedWon => StoredStage::ClosedWon,
            Stage::ClosedLost => StoredStage::ClosedLost,
        }
    }
}

impl From<StoredStage> for Stage {
    fn from(s: StoredStage) -> Self {
        match s {
            StoredStage::Identified => Stage::Identified,
            StoredStage::Exploring => Stage::Exploring,
            StoredStage::Qualified => Stage::Qualified,
            StoredStage::Proposed => Stage::Proposed,
            StoredStage::Negotiating => Stage::Negotiating,
            StoredStage::ClosedWon => Stage::ClosedWon,
            StoredStage::ClosedLost => Stage::ClosedLost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored text is the domain's name, as rows written before the
    /// enums hold it, and it reads back as the same domain value.
    #[test]
    fn stored_values_are_the_domain_names() {
        for s in Stage::ALL {
            assert_eq!(StoredStage::from(*s).to_value(), s.as_str());
            assert_eq!(Stage::from(StoredStage::from(*s)), *s);
        }
    }
}
