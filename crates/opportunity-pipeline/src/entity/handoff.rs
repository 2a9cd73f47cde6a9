//! `handoffs`: CS→Sales handoff requests. `open_key` holds the opportunity id
//! while REQUESTED (NULL after), so its unique index allows one open handoff
//! per opportunity. `package` and `snapshot` are JSON text; `status` is a
//! text column read as [`HandoffStatus`].

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "handoffs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub opportunity_id: String,
    pub status: HandoffStatus,
    pub open_key: Option<String>,
    pub requested_by: String,
    pub package: String,
    pub snapshot: String,
    pub requested_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub accepted_owner: Option<String>,
    pub accepted_team: Option<String>,
    pub reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Where a handoff stands (`handoffs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum HandoffStatus {
    #[sea_orm(string_value = "REQUESTED")]
    Requested,
    #[sea_orm(string_value = "ACCEPTED")]
    Accepted,
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    #[sea_orm(string_value = "WITHDRAWN")]
    Withdrawn,
}
