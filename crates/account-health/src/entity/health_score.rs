//! `health_scores`: the history of computed scores (a row per change); `product_id` is empty for the account-level score.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "health_scores")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub product_id: String,
    pub score_e2: Option<i64>,
    pub band: Option<String>,
    pub coverage_e2: i64,
    pub breakdown: String,
    pub csm_sentiment: Option<String>,
    pub scorecard_version: i32,
    pub computed_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
