//! `accounts`: one row per customer account.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub external_system: Option<String>,
    pub external_id: Option<String>,
    pub name: String,
    pub segment: Option<String>,
    pub customer_since: Option<NaiveDate>,
    pub fiscal_year_start_month: i32,
    pub owner_csm: Option<String>,
    pub parent_account_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
