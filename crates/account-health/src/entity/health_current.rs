//! `health_current`: the latest computed score per account and account-product, for lists sorted by score.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "health_current")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
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
