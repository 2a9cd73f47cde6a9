//! Triggers: reconciling what the rules call for with what is open, and
//! reading them back.

use chrono::{DateTime, Duration, Utc};
use domain::TriggerId;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use storage::events::NewEvent;

use super::Store;
use crate::entity::trigger;
use crate::error::HealthError;
use crate::model::triggers::{Candidate, LifecycleStep, plan_close, plan_conversion};

pub use crate::model::triggers::{CLOSED, CONVERTED, READY, SUPPRESSED};

fn priority(c: &Candidate) -> &'static str {
    if c.high_priority { "HIGH" } else { "NORMAL" }
}

fn trigger_event(event_type: &'static str, t: &trigger::Model) -> NewEvent {
    NewEvent {
        event_type: event_type.into(),
        subject_id: t.id.clone(),
        data: serde_json::json!({
            "trigger_id": t.id,
            "account_id": t.account_id,
            "product_id": t.product_id,
            "kind": t.kind,
            "motion": t.motion,
            "status": t.status,
            "priority": t.priority,
            "reason": t.reason,
            "suppression_reason": t.suppression_reason,
            "opportunity_id": t.opportunity_id,
        }),
    }
}

impl Store {
    /// Opens, updates and closes the account's triggers so that exactly the
    /// wanted ones are open: one per (account, product, kind), none inside
    /// the cooldown after a close, auto-closed when the condition clears.
    /// Returns the events to append.
    pub(crate) async fn reconcile_triggers<C: ConnectionTrait>(
        &self,
        txn: &C,
        account_id: &str,
        wanted: Vec<(Candidate, Option<String>)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, HealthError> {
        // CONVERTED triggers are open (nothing of their kind fires) but belong to
        // their opportunity now: reconciling leaves them as they are.
        let (open, converted): (Vec<trigger::Model>, Vec<trigger::Model>) = trigger::Entity::find()
            .filter(trigger::Column::AccountId.eq(account_id))
            .filter(trigger::Column::Status.is_in([READY, SUPPRESSED, CONVERTED]))
            .all(txn)
            .await?
            .into_iter()
            .partition(|t| t.status != CONVERTED);
        let key = |c: &Candidate| {
            (
                c.kind.as_str().to_owned(),
                c.product_id.clone().unwrap_or_default(),
            )
        };
        let mut events = Vec::new();
        for t in &open {
            let still = wanted
                .iter()
                .find(|(c, _)| key(c) == (t.kind.clone(), t.product_id.clone()));
            let mut row: trigger::ActiveModel = t.clone().into();
            match still {
                None => {
                    row.status = Set(CLOSED.to_owned());
                    row.closed_at = Set(Some(now));
                    row.updated_at = Set(now);
                    let closed = row.update(txn).await?;
                    events.push(trigger_event("health.trigger.closed", &closed));
                }
                Some((c, suppressed)) => {
                    let status = if suppressed.is_some() {
                        SUPPRESSED
                    } else {
                        READY
                    };
                    if t.status != status
                        || t.priority != priority(c)
                        || t.reason != c.reason
                        || t.suppression_reason != *suppressed
                    {
                        row.status = Set(status.to_owned());
                        row.priority = Set(priority(c).to_owned());
                        row.reason = Set(c.reason.clone());
                        row.suppression_reason = Set(suppressed.clone());
                        row.updated_at = Set(now);
                        let updated = row.update(txn).await?;
                        if t.status != status {
                            events.push(trigger_event(
                                if status == READY {
                                    "health.trigger.ready"
                                } else {
                                    "health.trigger.suppressed"
                                },
                                &updated,
                            ));
                        }
                    }
                }
            }
        }
        for (c, suppressed) in wanted {
            let (kind, product) = key(&c);
            if open
                .iter()
                .chain(&converted)
                .any(|t| t.kind == kind && t.product_id == product)
            {
                continue;
            }
            let cooling = trigger::Entity::find()
                .filter(trigger::Column::AccountId.eq(account_id))
                .filter(trigger::Column::ProductId.eq(product.as_str()))
                .filter(trigger::Column::Kind.eq(kind.as_str()))
                .filter(
                    trigger::Column::ClosedAt.gt(now - Duration::days(self.triggers.cooldown_days)),
                )
                .limit(1)
                .one(txn)
                .await?
                .is_some();
            if cooling {
                continue;
            }
            let row = trigger::ActiveModel {
                id: Set(TriggerId::new().to_string()),
                account_id: Set(account_id.to_owned()),
                product_id: Set(product),
                kind: Set(kind),
                motion: Set(c.kind.motion().as_str().to_owned()),
                status: Set(if suppressed.is_some() {
                    SUPPRESSED
                } else {
                    READY
                }
                .to_owned()),
                priority: Set(priority(&c).to_owned()),
                reason: Set(c.reason.clone()),
                suppression_reason: Set(suppressed),
                fired_at: Set(now),
                updated_at: Set(now),
                closed_at: Set(None),
                opportunity_id: Set(None),
            };
            let fired = row.insert(txn).await?;
            events.push(trigger_event("health.trigger.fired", &fired));
        }
        Ok(events)
    }

    /// Marks a trigger as the opportunity it became (see `plan_conversion`).
    pub async fn convert_trigger(
        &self,
        id: &TriggerId,
        opportunity_id: &str,
    ) -> Result<trigger::Model, HealthError> {
        self.trigger_step(id, |t| {
            plan_conversion(
                &t.id,
                &t.status,
                t.opportunity_id.as_deref(),
                opportunity_id,
            )
        })
        .await
    }

    /// Closes a trigger (see `plan_close`); the cooldown runs from now.
    pub async fn close_trigger(
        &self,
        id: &TriggerId,
        opportunity_id: Option<&str>,
    ) -> Result<trigger::Model, HealthError> {
        self.trigger_step(id, |t| {
            plan_close(
                &t.id,
                &t.status,
                t.opportunity_id.as_deref(),
                opportunity_id,
            )
        })
        .await
    }

    async fn trigger_step(
        &self,
        id: &TriggerId,
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
        row.status = Set(status.to_owned());
        row.opportunity_id = Set(opportunity_id);
        row.updated_at = Set(now);
        if closes {
            row.closed_at = Set(Some(now));
        }
        let updated = row.update(&txn).await?;
        let event = if status == CONVERTED {
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

    pub async fn trigger(&self, id: &TriggerId) -> Result<Option<trigger::Model>, HealthError> {
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
        account_id: Option<&str>,
        statuses: &[&'static str],
        kind: Option<&str>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<trigger::Model>, HealthError> {
        match account_id {
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
