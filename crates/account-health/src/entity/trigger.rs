//! `triggers`: expansion triggers; at most one open (READY, SUPPRESSED or CONVERTED) per
//! (account, product, kind).

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "triggers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub product_id: String,
    pub kind: String,
    pub motion: String,
    pub status: String,
    pub priority: String,
    pub reason: String,
    pub suppression_reason: Option<String>,
    pub fired_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The opportunity it became, once CONVERTED.
    pub opportunity_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
