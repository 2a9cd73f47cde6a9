//! Triggers: reconciling what the rules call for with what is stored (the
//! plan is [`crate::model::reconcile`]'s), their lifecycle steps, and
//! reading them back.

use chrono::{DateTime, Duration, Utc};
use domain::{AccountId, OpportunityId, TriggerId};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use storage::events::NewEvent;

use super::Store;
use crate::entity::trigger;
use crate::error::HealthError;
use crate::model::reconcile::{StoredTriggers, Wanted, plan_reconciliation, trigger_event};
use crate::model::triggers::{
    LifecycleStep, TriggerKind, TriggerStatus, plan_close, plan_conversion,
};

impl Store {
    /// Writes what [`plan_reconciliation`] makes of the account's stored
    /// triggers and the `wanted` ones; returns the events to append.
    pub(super) async fn reconcile_triggers<C: ConnectionTrait>(
        &self,
        txn: &C,
        account_id: &str,
        wanted: Vec<Wanted>,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, HealthError> {
        let open = trigger::Entity::find()
            .filter(trigger::Column::AccountId.eq(account_id))
            .filter(trigger::Column::Status.is_in(TriggerStatus::OPEN))
            .all(txn)
            .await?;
        let cooldown = Duration::days(self.triggers.cooldown_days);
        let recently_closed = if wanted.is_empty() {
            Vec::new()
        } else {
            trigger::Entity::find()
                .filter(trigger::Column::AccountId.eq(account_id))
                .filter(trigger::Column::ClosedAt.gt(now - cooldown))
                .all(txn)
                .await?
        };
        let stored = StoredTriggers {
            open: &open,
            recently_closed: &recently_closed,
            cooldown,
        };
        let plan = plan_reconciliation(account_id, stored, wanted, now);
        for row in plan.updates {
            row.into_active_model().reset_all().update(txn).await?;
        }
        for row in plan.inserts {
            trigger::Entity::insert(row.into_active_model())
                .exec_without_returning(txn)
                .await?;
        }
        Ok(plan.events)
    }

    /// Marks a trigger as the opportunity it became (see `plan_conversion`).
    pub async fn convert_trigger(
        &self,
        id: TriggerId,
        opportunity_id: OpportunityId,
    ) -> Result<trigger::Model, HealthError> {
        let opportunity_id = opportunity_id.to_string();
        self.trigger_step(id, |t| {
            plan_conversion(
                &t.id,
                t.status,
                t.opportunity_id.as_deref(),
                &opportunity_id,
            )
        })
        .await
    }

    /// Closes a trigger (see `plan_close`); the cooldown runs from now.
    pub async fn close_trigger(
        &self,
        id: TriggerId,
        opportunity_id: Option<OpportunityId>,
    ) -> Result<trigger::Model, HealthError> {
        let opportunity_id = opportunity_id.map(|o| o.to_string());
        self.trigger_step(id, |t| {
            plan_close(
                &t.id,
                t.status,
                t.opportunity_id.as_deref(),
                opportunity_id.as_deref(),
            )
        })
        .await
    }

    async fn trigger_step(
        &self,
        id: TriggerId,
        plan: impl FnOnce(
            &trigger::Model,
        ) -> Result<LifecycleStep, crate::model::triggers::LifecycleRefusal>,
    ) -> Result<trigger::Model, HealthError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let current = trigger::Entity::find_by_id(id.to_string())
            .one(&txn)
            .await?
            .ok_or_else(|| HealthError::TriggerNotFound(id.to_string()))?;
        let LifecycleStep::Write {
            status,
            opportunity_id,
            closes,
        } = plan(&current)?
        else {
            return Ok(current);
        };
        let now = storage::now();
        let mut row: trigger::ActiveModel = current.into();
        row.status = Set(status);
        row.opportunity_id = Set(opportunity_id);
        row.updated_at = Set(now);
        if closes {
            row.closed_at = Set(Some(now));
        }
        let updated = row.update(&txn).await?;
        let event = if status == TriggerStatus::Converted {
            "health.trigger.converted"
        } else {
            "health.trigger.closed"
        };
        self.events
            .append(&txn, &[trigger_event(event, &updated)])
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok(updated)
    }

    pub async fn trigger(&self, id: TriggerId) -> Result<Option<trigger::Model>, HealthError> {
        let found = trigger::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?;
        if let Some(t) = &found {
            self.ensure_fresh(&t.account_id).await?;
            return Ok(trigger::Entity::find_by_id(id.to_string())
                .one(&self.db)
                .await?);
        }
        Ok(found)
    }

    /// Triggers newest first (ids are time-ordered); `before` is the last id
    /// of the previous page.
    pub async fn list_triggers(
        &self,
        account_id: Option<AccountId>,
        statuses: &[TriggerStatus],
        kind: Option<TriggerKind>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<trigger::Model>, HealthError> {
        let account_id = account_id.map(|a| a.to_string());
        match &account_id {
            Some(a) => self.ensure_fresh(a).await?,
            None => self.refresh_all_dirty().await?,
        }
        let mut q = trigger::Entity::find().order_by_desc(trigger::Column::Id);
        if let Some(a) = account_id {
            q = q.filter(trigger::Column::AccountId.eq(a));
        }
        if !statuses.is_empty() {
            q = q.filter(trigger::Column::Status.is_in(statuses.iter().copied()));
        }
        if let Some(k) = kind {
            q = q.filter(trigger::Column::Kind.eq(k));
        }
        if let Some(before) = before {
            q = q.filter(trigger::Column::Id.lt(before));
        }
        Ok(q.limit(limit).all(&self.db).await?)
    }
}
