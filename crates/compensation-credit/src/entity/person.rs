//! `credit_people`: the people directory, one row per version of a person; rows
//! are only ever added and the latest version is the one in force.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_people")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub person_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub display_name: Option<String>,
    /// `PERSON_ROLE_*` name.
    pub role: String,
    pub team: Option<String>,
    pub manager_id: Option<String>,
    /// TR39 skeleton of `person_id`: look-alike ids share it.
    pub skeleton: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
