//! `credit_policies`: one row per policy version; rows are only ever added.
//! Percentages are exact decimal text; overlays are JSON text.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_policies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub policy_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub effective_date: NaiveDate,
    pub origination_percent: String,
    pub delivery_percent: String,
    pub overlays: String,
    pub basis: String,
    pub hold_days: i32,
    pub clawback_window_days: i32,
    pub clawback_mode: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
