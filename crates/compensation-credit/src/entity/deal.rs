//! `credit_deals`: one row per credited deal, written once. `recording` is
//! the canonical JSON of the recording request, compared on replays.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_deals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub deal_id: String,
    pub account_id: Option<String>,
    pub product_id: Option<String>,
    pub subscription_id: Option<String>,
    pub currency: String,
    pub amount_minor: i64,
    pub margin_percent: Option<String>,
    pub basis_minor: i64,
    pub close_date: NaiveDate,
    pub policy_id: String,
    pub policy_version: i32,
    pub recording: String,
    pub hold_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Names as recorded (`None` for deals older than the columns).
    pub account_name: Option<String>,
    pub product_name: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
