//! `credit_clawbacks`: at most one clawback per deal (the primary key is what
//! keeps a repeated cancellation from clawing back twice).

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_clawbacks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub deal_id: String,
    pub subscription_id: Option<String>,
    pub cancel_date: NaiveDate,
    pub mode: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
