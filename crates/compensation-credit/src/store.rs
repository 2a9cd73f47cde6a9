//! The credit service's queries and transactions.

use chrono::NaiveDate;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use storage::events::{EventLog, NewEvent};

use crate::entity::policy;
use crate::error::CreditError;
use crate::model::PolicyInput;

/// Name of the credit service's event log table.
pub const EVENT_TABLE: &str = "credit_events";

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    events: EventLog,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            events: EventLog::new(EVENT_TABLE),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Appends the next version of a policy. Earlier versions are never
    /// touched, so credits recorded under them keep their terms.
    pub async fn add_policy_version(
        &self,
        input: &PolicyInput,
        principal: &str,
    ) -> Result<policy::Model, CreditError> {
        let overlays = serde_json::to_string(&input.overlay_rules())
            .map_err(|e| CreditError::Corrupt(e.to_string()))?;
        let txn = self.db.begin().await?;
        let latest = policy::Entity::find()
            .filter(policy::Column::PolicyId.eq(input.policy_id.as_str()))
            .order_by_desc(policy::Column::Version)
            .limit(1)
            .one(&txn)
            .await?;
        let row = policy::ActiveModel {
            policy_id: Set(input.policy_id.clone()),
            version: Set(latest.map_or(1, |p| p.version + 1)),
            effective_date: Set(input.effective_date),
            origination_percent: Set(input.origination.to_decimal_string()),
            delivery_percent: Set(input.delivery.to_decimal_string()),
            overlays: Set(overlays),
            basis: Set(input.basis.as_str_name().to_owned()),
            hold_days: Set(input.hold_days),
            clawback_window_days: Set(input.clawback_window_days),
            clawback_mode: Set(input.clawback_mode.as_str_name().to_owned()),
            created_at: Set(storage::now()),
            created_by: Set(principal.to_owned()),
        };
        let model = row.insert(&txn).await?;
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "credit.policy.version_added",
                    subject_id: model.policy_id.clone(),
                    data: serde_json::json!({
                        "policy_id": model.policy_id,
                        "version": model.version,
                        "effective_date": model.effective_date.to_string(),
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok(model)
    }

    pub async fn policy_version(
        &self,
        policy_id: &str,
        version: i32,
    ) -> Result<Option<policy::Model>, CreditError> {
        Ok(policy::Entity::find_by_id((policy_id.to_owned(), version))
            .one(&self.db)
            .await?)
    }

    /// The version in force on `date`: the latest effective date on or
    /// before it, and of those the highest version.
    pub async fn policy_in_force(
        &self,
        policy_id: &str,
        date: NaiveDate,
    ) -> Result<Option<policy::Model>, CreditError> {
        Ok(policy::Entity::find()
            .filter(policy::Column::PolicyId.eq(policy_id))
            .filter(policy::Column::EffectiveDate.lte(date))
            .order_by_desc(policy::Column::EffectiveDate)
            .order_by_desc(policy::Column::Version)
            .limit(1)
            .one(&self.db)
            .await?)
    }
}
