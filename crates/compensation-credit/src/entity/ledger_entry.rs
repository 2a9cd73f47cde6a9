//! `credit_ledger_entries`: the append-only credit ledger. Amounts are signed
//! minor units beside the currency code. `hold_until` is fixed at insert;
//! whether an entry is released is derived from it and `credit_releases`.
//! `kind` and `role` are text columns read as the model's [`EntryKind`] and
//! as [`StoredRole`], the domain's [`CreditRole`] by its name.

use chrono::{DateTime, Utc};
use domain::CreditRole;
use sea_orm::entity::prelude::*;

pub use crate::model::ledger::EntryKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_ledger_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub entry_id: String,
    pub kind: EntryKind,
    pub deal_id: String,
    pub participant_id: String,
    pub role: StoredRole,
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

/// A [`CreditRole`] as `credit_ledger_entries.role` stores it: by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum StoredRole {
    #[sea_orm(string_value = "ORIGINATOR")]
    Originator,
    #[sea_orm(string_value = "DELIVERY")]
    Delivery,
    #[sea_orm(string_value = "OVERLAY")]
    Overlay,
}

impl From<CreditRole> for StoredRole {
    fn from(r: CreditRole) -> Self {
        match r {
            CreditRole::Originator => Self::Originator,
            CreditRole::Delivery => Self::Delivery,
            CreditRole::Overlay => Self::Overlay,
        }
    }
}

impl From<StoredRole> for CreditRole {
    fn from(r: StoredRole) -> Self {
        match r {
            StoredRole::Originator => Self::Originator,
            StoredRole::Delivery => Self::Delivery,
            StoredRole::Overlay => Self::Overlay,
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::Iterable;

    use super::*;

    /// The stored text is the kind's name, as rows written before the enum
    /// hold it, and it reads back as the same kind.
    #[test]
    fn stored_values_are_the_kind_names() {
        let names: Vec<String> = EntryKind::iter().map(|k| k.to_value()).collect();
        assert_eq!(names, ["CREDIT", "CLAWBACK", "ADJUSTMENT"]);
        for k in EntryKind::iter() {
            assert_eq!(k.to_value(), k.as_str());
            assert_eq!(EntryKind::try_from_value(&k.to_value()).ok(), Some(k));
        }
    }

    /// A stored role is the domain's name and reads back as the same role.
    #[test]
    fn a_stored_role_is_the_role_name() {
        for r in StoredRole::iter() {
            let role = CreditRole::from(r);
            assert_eq!(r.to_value(), role.as_str());
            assert_eq!(StoredRole::from(role), r);
        }
        assert_eq!(StoredRole::iter().count(), 3);
    }
}
