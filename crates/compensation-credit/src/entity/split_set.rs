//! `credit_split_sets`: each split set a deal has had, by revision (1 is the
//! recording; each ReplaceDealSplits adds the next). Participants are JSON.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_split_sets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub deal_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub revision: i32,
    pub participants: String,
    pub cs_led_without_handoff: bool,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
