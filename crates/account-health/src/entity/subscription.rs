//! `subscriptions`: contracts and recurring sales; MRR lives in `subscription_amendments`.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub product_id: String,
    pub tier: Option<String>,
    pub currency: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub quantity: i64,
    pub quota_limit: i64,
    pub status: String,
    pub cancel_date: Option<NaiveDate>,
    pub cancel_reason: Option<String>,
    pub source_opportunity_id: Option<String>,
    pub external_system: Option<String>,
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
