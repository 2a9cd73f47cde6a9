//! `health_dirty`: accounts whose health and triggers need recomputing, each
//! claimed by the replica recomputing it (`claimed_until`, its lease) and
//! counting the marks that arrived while claimed (`generation`).

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "health_dirty")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: String,
    pub marked_at: DateTime<Utc>,
    pub generation: i64,
    pub claimed_until: Option<DateTime<Utc>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
