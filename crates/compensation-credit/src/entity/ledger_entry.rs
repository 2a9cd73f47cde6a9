//! `credit_ledger_entries`: the append-only credit ledger. Amounts are signed
//! minor units beside the currency code. `hold_until` is fixed at insert;
//! whether an entry is released is derived from it and `credit_releases`.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_ledger_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub entry_id: String,
    pub kind: String,
    pub deal_id: String,
    pub participant_id: String,
    pub role: String,
    pub team: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub policy_id: String,
    pub policy_version: i32,
    pub principal: String,
    pub created_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub reverses_entry_id: Option<String>,
    pub hold_until: DateTime<Utc>,
    pub split_revision: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
