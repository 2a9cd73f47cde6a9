//! Policy versions: appended, read by number, and the one in force on a date.

use chrono::NaiveDate;
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect};

use super::Store;
use super::rows::built_in_default_row;
use crate::entity::{deal, policy};
use crate::error::CreditError;
use crate::model::policy::{BUILT_IN_VERSION, DEFAULT_POLICY_ID, plan_policy_version};
use crate::model::{PolicyInput, Terms, corrupt};

impl Store {
    /// Appends the next version of a policy. Earlier versions are never
    /// touched, so credits recorded under them keep their terms.
    pub async fn add_policy_version(
        &self,
        input: &PolicyInput,
        principal: &str,
    ) -> Result<policy::Model, CreditError> {
        let (txn, _turn) = self.begin_write().await?;
        let latest = policy::Entity::find()
            .filter(policy::Column::PolicyId.eq(input.policy_id.as_str()))
            .order_by_desc(policy::Column::Version)
            .limit(1)
            .one(&txn)
            .await?;
        let (row, event) = plan_policy_version(input, latest.as_ref(), principal, storage::now())?;
        policy::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        self.append(&txn, &[event]).await?;
        self.commit(txn).await?;
        Ok(row)
    }

    pub async fn policy_version(
        &self,
        policy_id: &str,
        version: i32,
    ) -> Result<Option<policy::Model>, CreditError> {
        if policy_id == DEFAULT_POLICY_ID && version == BUILT_IN_VERSION {
            return built_in_default_row().map(Some);
        }
        Ok(policy::Entity::find_by_id((policy_id.to_owned(), version))
            .one(&self.db)
            .await?)
    }

    /// The version in force on `date`: the latest effective date on or
    /// before it, and of those the highest version. Before any stored
    /// version of `default`, the built-in one is in force.
    pub async fn policy_in_force(
        &self,
        policy_id: &str,
        date: NaiveDate,
    ) -> Result<Option<policy::Model>, CreditError> {
        let stored = policy::Entity::find()
            .filter(policy::Column::PolicyId.eq(policy_id))
            .filter(policy::Column::EffectiveDate.lte(date))
            .order_by_desc(policy::Column::EffectiveDate)
            .order_by_desc(policy::Column::Version)
            .limit(1)
            .one(&self.db)
            .await?;
        match stored {
            None if policy_id == DEFAULT_POLICY_ID => built_in_default_row().map(Some),
            found => Ok(found),
        }
    }

    /// The terms a recorded deal is credited under (its own policy version, forever).
    pub(super) async fn deal_terms(&self, deal: &deal::Model) -> Result<Terms, CreditError> {
        let row = self
            .policy_version(&deal.policy_id, deal.policy_version)
            .await?
            .ok_or_else(|| {
                corrupt(format!(
                    "deal {} names missing policy {} v{}",
                    deal.deal_id, deal.policy_id, deal.policy_version
                ))
            })?;
        Terms::from_row(&row).map_err(corrupt)
    }
}
