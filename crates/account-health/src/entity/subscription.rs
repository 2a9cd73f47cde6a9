//! `subscriptions`: contracts and recurring sales; MRR lives in `subscription_amendments`.
//! `status` is a text column read as [`SubscriptionStatus`], whose values are
//! the wire enum's names without their `SUBSCRIPTION_STATUS_` prefix.

use chrono::{DateTime, NaiveDate, Utc};
use contracts::pb::health::v1 as pb;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub product_id: String,
    pub tier: Option<String>,
    pub currency: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub quantity: i64,
    pub quota_limit: i64,
    pub status: SubscriptionStatus,
    pub cancel_date: Option<NaiveDate>,
    pub cancel_reason: Option<String>,
    pub source_opportunity_id: Option<String>,
    pub external_system: Option<String>,
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Whether a subscription runs (`subscriptions.status`). A cancelled one
/// still runs until its `cancel_date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum SubscriptionStatus {
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

impl SubscriptionStatus {
    pub fn to_pb(self) -> pb::SubscriptionStatus {
        match self {
            Self::Active => pb::SubscriptionStatus::Active,
            Self::Cancelled => pb::SubscriptionStatus::Cancelled,
        }
    }

    /// The status a wire filter names; `None` for `Unspecified` (all).
    pub fn from_pb(status: pb::SubscriptionStatus) -> Option<Self> {
        match status {
            pb::SubscriptionStatus::Unspecified => None,
            pb::SubscriptionStatus::Active => Some(Self::Active),
            pb::SubscriptionStatus::Cancelled => Some(Self::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::Iterable;

    use super::*;

    /// The stored text is what rows written before the enum hold, the wire
    /// name without its prefix, and the wire value reads back as the same status.
    #[test]
    fn stored_values_are_the_wire_names() {
        for s in SubscriptionStatus::iter() {
            assert_eq!(
                format!("SUBSCRIPTION_STATUS_{}", s.to_value()),
                s.to_pb().as_str_name()
            );
            assert_eq!(SubscriptionStatus::from_pb(s.to_pb()), Some(s));
        }
        assert_eq!(SubscriptionStatus::Active.to_value(), "ACTIVE");
        assert_eq!(SubscriptionStatus::Cancelled.to_value(), "CANCELLED");
        assert_eq!(
            SubscriptionStatus::from_pb(pb::SubscriptionStatus::Unspecified),
            None
        );
    }
}
