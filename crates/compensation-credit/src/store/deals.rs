//! Recording a won deal and replacing its split set.

use domain::OpportunityId;
use sea_orm::{EntityTrait, IntoActiveModel};

use super::rows::{insert_entries, load_deal};
use super::{Store, is_unique_violation};
use crate::entity::{deal, split_set};
use crate::error::CreditError;
use crate::model::deal::{DealInput, Recording};
use crate::model::recording::plan_recording;
use crate::model::splits::{SplitChange, plan_split_replacement};
use crate::model::views::DealView;
use crate::model::{Terms, corrupt};

impl Store {
    pub async fn deal(&self, deal_id: OpportunityId) -> Result<DealView, CreditError> {
        self.deal_view(&deal_id.to_string()).await
    }

    /// The deal whose rows are keyed `deal_id`.
    pub(super) async fn deal_view(&self, deal_id: &str) -> Result<DealView, CreditError> {
        load_deal(&self.db, deal_id)
            .await?
            .ok_or_else(|| CreditError::not_found("deal", deal_id))
    }

    /// A replay of a recorded deal: the same request returns it; another is a conflict.
    async fn replay(
        &self,
        existing: &deal::Model,
        recording: &Recording,
    ) -> Result<(DealView, bool), CreditError> {
        let recorded: Recording = serde_json::from_str(&existing.recording).map_err(corrupt)?;
        let differences = recorded.differences(recording);
        if differences.is_empty() {
            Ok((self.deal_view(&existing.deal_id).await?, false))
        } else {
            Err(CreditError::DealAlreadyCredited {
                deal_id: existing.deal_id.clone(),
                differences,
            })
        }
    }

    /// Records a won deal's credits under the policy version in force at its close date,
    /// or returns the recorded ones for an identical replay (`false`).
    pub async fn record_deal(
        &self,
        input: &DealInput,
        principal: &str,
    ) -> Result<(DealView, bool), CreditError> {
        let deal_id = input.deal_id.to_string();
        let recording = input.recording();
        if let Some(existing) = deal::Entity::find_by_id(deal_id.clone())
            .one(&self.db)
            .await?
        {
            return self.replay(&existing, &recording).await;
        }
        let policy = self
            .policy_in_force(&input.policy_id, input.close_date)
            .await?
            .ok_or_else(|| CreditError::NoPolicyInForce {
                policy_id: input.policy_id.clone(),
                date: input.close_date.to_string(),
            })?;
        let terms = Terms::from_row(&policy).map_err(corrupt)?;
        let directory = self.people_like(&input.splits).await?;
        let plan = plan_recording(input, &terms, &directory, principal, storage::now())?;

        let (txn, _turn) = self.begin_write().await?;
        let row = plan.deal.clone().into_active_model();
        if let Err(err) = deal::Entity::insert(row).exec_without_returning(&txn).await {
            drop(txn);
            // Recorded concurrently: answer as a replay would.
            if is_unique_violation(&err)
                && let Some(existing) = deal::Entity::find_by_id(deal_id.clone())
                    .one(&self.db)
                    .await?
            {
                return self.replay(&existing, &recording).await;
            }
            return Err(err.into());
        }
        split_set::Entity::insert(plan.split_set.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        insert_entries(&txn, &plan.entries).await?;
        self.append(&txn, std::slice::from_ref(&plan.event)).await?;
        self.commit(txn).await?;
        // Answer from what was written rather than reading it all back.
        Ok((plan.into_view(), true))
    }

    /// Replaces a deal's whole split set (see [`crate::model::splits`]). Replacing with
    /// the set already in force writes nothing.
    pub async fn replace_splits(
        &self,
        deal_id: OpportunityId,
        change: SplitChange<'_>,
        principal: &str,
    ) -> Result<DealView, CreditError> {
        let deal_id = deal_id.to_string();
        let (txn, _guard) = self
            .begin_deal_write(std::slice::from_ref(&deal_id))
            .await?;
        let view = load_deal(&txn, &deal_id)
            .await?
            .ok_or_else(|| CreditError::not_found("deal", &deal_id))?;
        let terms = self.deal_terms(&view.deal).await?;
        let directory = self.people_like(change.splits).await?;
        let Some(plan) =
            plan_split_replacement(&view, &terms, &directory, change, principal, storage::now())?
        else {
            return Ok(view);
        };
        // The (deal, revision) key would also refuse a concurrent replacement.
        split_set::Entity::insert(plan.split_set.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        insert_entries(&txn, &plan.entries).await?;
        self.append(&txn, &[plan.event]).await?;
        self.commit(txn).await?;
        self.deal_view(&deal_id).await
    }
}
