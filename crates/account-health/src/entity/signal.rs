//! `signals`: ingested signals; values are stored x10^4; (source, external_id) dedups.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signals")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub account_id: String,
    pub product_id: Option<String>,
    pub kind: String,
    pub value_e4: i64,
    pub limit_e4: Option<i64>,
    pub occurred_at: DateTime<Utc>,
    pub source: String,
    pub external_id: Option<String>,
    pub detail: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
