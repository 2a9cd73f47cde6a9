//! `pipeline_requests`: one row per mutation called with a `request_id`
//! (AIP-155): the request's fingerprint and, once it succeeded, its response,
//! so a retry returns the first answer instead of acting twice.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pipeline_requests")]
pub struct Model {
    /// `Method:request_id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub fingerprint: String,
    /// Hex of the encoded response; `None` while the first call runs.
    pub response: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
