//! `wallet_estimates`: an account's annual spend per product area and who
//! serves it, from `effective_date` on. Rows only ever gain company: a new
//! estimate of an area supersedes the earlier one (from its date), and one of
//! the same date recorded later (a later id) corrects it.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "wallet_estimates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub product_area: String,
    pub annual_spend_minor: i64,
    pub currency: String,
    pub served_by: String,
    pub competitor: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub effective_date: NaiveDate,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
