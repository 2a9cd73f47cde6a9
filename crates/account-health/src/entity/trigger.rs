//! `triggers`: expansion triggers; at most one open (READY, SUPPRESSED or CONVERTED) per
//! (account, product, kind). `kind`, `motion`, `status` and `priority` are text columns
//! read as [`TriggerKind`], [`StoredMotion`], [`TriggerStatus`] and [`TriggerPriority`];
//! their values are the
//! names rows have always held. The conversions to the wire's enums sit beside
//! them; [`StoredMotion`], shared with the pipeline, is `storage::columns`'s.

use chrono::{DateTime, Utc};
use contracts::pb::health::v1 as pb;
use sea_orm::entity::prelude::*;

pub use crate::model::triggers::TriggerKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "triggers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub product_id: String,
    pub kind: TriggerKind,
    pub motion: StoredMotion,
    pub status: TriggerStatus,
    pub priority: TriggerPriority,
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

/// Where a trigger stands (`triggers.status`). READY / SUPPRESSED → CONVERTED (it
/// became an opportunity) → CLOSED (that opportunity closed); READY / SUPPRESSED →
/// CLOSED (the condition cleared). CONVERTED counts as open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum TriggerStatus {
    #[sea_orm(string_value = "READY")]
    Ready,
    #[sea_orm(string_value = "SUPPRESSED")]
    Suppressed,
    #[sea_orm(string_value = "CONVERTED")]
    Converted,
    #[sea_orm(string_value = "CLOSED")]
    Closed,
}

impl TriggerStatus {
    /// The statuses that count as open: one per (account, product, kind).
    pub const OPEN: [TriggerStatus; 3] = [Self::Ready, Self::Suppressed, Self::Converted];

    pub fn to_pb(self) -> pb::TriggerStatus {
        match self {
            Self::Ready => pb::TriggerStatus::Ready,
            Self::Suppressed => pb::TriggerStatus::Suppressed,
            Self::Converted => pb::TriggerStatus::Converted,
            Self::Closed => pb::TriggerStatus::Closed,
        }
    }

    /// The status a wire filter names; `None` for `Unspecified`.
    pub fn from_pb(status: pb::TriggerStatus) -> Option<Self> {
        match status {
            pb::TriggerStatus::Unspecified => None,
            pb::TriggerStatus::Ready => Some(Self::Ready),
            pb::TriggerStatus::Suppressed => Some(Self::Suppressed),
            pb::TriggerStatus::Converted => Some(Self::Converted),
            pb::TriggerStatus::Closed => Some(Self::Closed),
        }
    }
}

/// How urgent a trigger is (`triggers.priority`): HIGH when its rule's
/// high-priority threshold is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum TriggerPriority {
    #[sea_orm(string_value = "NORMAL")]
    Normal,
    #[sea_orm(string_value = "HIGH")]
    High,
}

impl TriggerPriority {
    pub fn of(high: bool) -> Self {
        if high { Self::High } else { Self::Normal }
    }

    pub fn to_pb(self) -> pb::TriggerPriority {
        match self {
            Self::Normal => pb::TriggerPriority::Normal,
            Self::High => pb::TriggerPriority::High,
        }
    }
}

pub use storage::columns::StoredMotion;

#[cfg(test)]
mod tests {
    use sea_orm::Iterable;

    use super::*;

    /// The stored text is what rows written before the enums hold: the domain's
    /// motion names, the kinds' names and the wire statuses without their prefix.
    #[test]
    fn stored_values_are_the_names_rows_hold() {
        for k in TriggerKind::ALL {
            assert_eq!(k.to_value(), k.as_str());
            assert_eq!(TriggerKind::try_from_value(&k.to_value()).ok(), Some(k));
        }
        let names: Vec<String> = TriggerStatus::iter().map(|s| s.to_value()).collect();
        assert_eq!(names, ["READY", "SUPPRESSED", "CONVERTED", "CLOSED"]);
        for s in TriggerStatus::iter() {
            assert_eq!(
                format!("TRIGGER_STATUS_{}", s.to_value()),
                s.to_pb().as_str_name()
            );
            assert_eq!(TriggerStatus::from_pb(s.to_pb()), Some(s));
        }
        assert_eq!(TriggerStatus::from_pb(pb::TriggerStatus::Unspecified), None);
        let names: Vec<String> = TriggerPriority::iter().map(|p| p.to_value()).collect();
        assert_eq!(names, ["NORMAL", "HIGH"]);
        for p in TriggerPriority::iter() {
            assert_eq!(
                format!("TRIGGER_PRIORITY_{}", p.to_value()),
                p.to_pb().as_str_name()
            );
        }
    }
}
