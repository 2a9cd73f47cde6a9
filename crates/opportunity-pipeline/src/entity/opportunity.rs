//! `opportunities`: one row per cross-sell or upsell opportunity.
//! `version` backs the etag; stakeholders and qualification are JSON text.

use chrono::{DateTime, NaiveDate, Utc};
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
    pub motion: String,
    pub amount_minor: i64,
    pub currency: String,
    pub stage: String,
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
