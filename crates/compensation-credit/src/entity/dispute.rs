//! `credit_disputes`: a dispute opened over one ledger entry.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_disputes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub dispute_id: String,
    pub entry_id: String,
    pub opened_by: String,
    pub reason: String,
    pub opened_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
