//! `credit_dispute_resolutions`: how a dispute ended; at most one per dispute.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_dispute_resolutions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub dispute_id: String,
    pub outcome: String,
    pub note: Option<String>,
    pub adjustment_entry_id: Option<String>,
    pub resolved_at: DateTime<Utc>,
    pub resolved_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
