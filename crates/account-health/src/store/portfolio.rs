//! Products and subscriptions (with their MRR amendments): the upsert,
//! upsell and cancellation load what [`crate::model::portfolio`] and
//! [`crate::model::upsell`] plan from, and write the plan.

use std::collections::HashMap;

use chrono::NaiveDate;
use domain::{AccountId, ProductId};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use storage::events::NewEvent;

use super::{Store, mark_dirty};
use crate::entity::{account, amendment, product, subscription, upsell};
use crate::error::HealthError;
use crate::model::portfolio::{Amendment, UpsertLoad, UpsertPlan, plan_cancellation, plan_upsert};
use crate::model::product::ProductInput;
use crate::model::subscription::{Cancellation, SubscriptionInput, SubscriptionKey};
use crate::model::upsell::{UpsellInput, plan_upsell_booking};

pub use crate::model::portfolio::{SubscriptionStatus, SubscriptionView};

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, HealthError> {
    serde_json::to_string(value).map_err(|e| HealthError::Corrupt(e.to_string()))
}

/// Writes an MRR movement: one amendment per date, the last written wins
/// (a correction of that date).
async fn put_amendment<C: ConnectionTrait>(
    db: &C,
    amendment: &Amendment,
    principal: &str,
) -> Result<(), HealthError> {
    amendment::Entity::insert(amendment::ActiveModel {
        id: Set(domain::EventId::new().to_string()),
        subscription_id: Set(amendment.subscription_id.clone()),
        effective_date: Set(amendment.effective),
        mrr_minor: Set(amendment.mrr_minor),
        created_at: Set(storage::now()),
        created_by: Set(principal.to_owned()),
    })
    .on_conflict(
        OnConflict::columns([
            amendment::Column::SubscriptionId,
            amendment::Column::EffectiveDate,
        ])
        .update_columns([
            amendment::Column::MrrMinor,
            amendment::Column::CreatedAt,
            amendment::Column::CreatedBy,
        ])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// One subscription's MRR history, oldest first.
async fn history_of<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Vec<(NaiveDate, i64)>, HealthError> {
    let id = id.to_owned();
    Ok(amendments_of(db, std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .unwrap_or_default())
}

/// The subscription an upsert's key finds; `None` when none does.
async fn keyed_subscription<C: ConnectionTrait>(
    db: &C,
    key: &SubscriptionKey,
) -> Result<Option<subscription::Model>, HealthError> {
    let found = match key {
        SubscriptionKey::Id(id) => {
            subscription::Entity::find_by_id(id.to_string())
                .one(db)
                .await?
        }
        SubscriptionKey::External(ext) => {
            subscription::Entity::find()
                .filter(subscription::Column::ExternalSystem.eq(ext.source()))
                .filter(subscription::Column::ExternalId.eq(ext.id()))
                .one(db)
                .await?
        }
        SubscriptionKey::Opportunity(opp) => {
            subscription::Entity::find()
                .filter(subscription::Column::SourceOpportunityId.eq(opp.to_string()))
                .one(db)
                .await?
        }
        SubscriptionKey::New => None,
    };
    Ok(found)
}

async fn amendments_of<C: ConnectionTrait>(
    db: &C,
    ids: &[String],
) -> Result<HashMap<String, Vec<(NaiveDate, i64)>>, HealthError> {
    let mut out: HashMap<String, Vec<(NaiveDate, i64)>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows = amendment::Entity::find()
            .filter(amendment::Column::SubscriptionId.is_in(chunk.iter().cloned()))
            .order_by_asc(amendment::Column::EffectiveDate)
            .all(db)
            .await?;
        for r in rows {
            out.entry(r.subscription_id)
                .or_default()
                .push((r.effective_date, r.mrr_minor));
        }
    }
    Ok(out)
}

impl Store {
    pub async fn product(&self, id: ProductId) -> Result<Option<product::Model>, HealthError> {
        Ok(product::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?)
    }

    pub async fn upsert_product(
        &self,
        input: &ProductInput,
        principal: &str,
    ) -> Result<(product::Model, bool), HealthError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let existing = match &input.id {
            Some(id) => Some(
                product::Entity::find_by_id(id.to_string())
                    .one(&txn)
                    .await?
                    .ok_or_else(|| HealthError::ProductNotFound(id.to_string()))?,
            ),
            None => None,
        };
        let now = storage::now();
        let mut row = product::ActiveModel {
            id: Set(existing
                .as_ref()
                .map(|p| p.id.clone())
                .unwrap_or_else(|| ProductId::new().to_string())),
            name: Set(input.name.clone()),
            family: Set(input.family.clone()),
            tiers: Set(to_json(&input.tiers)?),
            adjacencies: Set(to_json(&input.adjacencies)?),
            fits_segments: Set(to_json(&input.fits_segments)?),
            wallet_estimates: Set(to_json(&input.wallet_estimates)?),
            margin_percent: Set(input.margin.map(|m| m.to_decimal_string())),
            updated_at: Set(now),
            updated_by: Set(principal.to_owned()),
            ..Default::default()
        };
        let created = existing.is_none();
        let model = match existing {
            Some(current) => {
                row.created_at = Set(current.created_at);
                row.created_by = Set(current.created_by);
                row.update(&txn).await?
            }
            None => {
                row.created_at = Set(now);
                row.created_by = Set(principal.to_owned());
                row.insert(&txn).await?
            }
        };
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: if created {
                        "health.product.created"
                    } else {
                        "health.product.updated"
                    }
                    .into(),
                    subject_id: model.id.clone(),
                    data: serde_json::json!({"product_id": model.id, "name": model.name, "principal": principal}),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok((model, created))
    }

    /// Products ordered by id; `after` is the last id of the previous page.
    pub async fn list_products(
        &self,
        family: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<product::Model>, HealthError> {
        let mut query = product::Entity::find().order_by_asc(product::Column::Id);
        if let Some(family) = family {
            query = query.filter(product::Column::Family.eq(family));
        }
        if let Some(after) = after {
            query = query.filter(product::Column::Id.gt(after));
        }
        Ok(query.limit(limit).all(&self.db).await?)
    }

    pub async fn all_products(&self) -> Result<Vec<product::Model>, HealthError> {
        Ok(product::Entity::find().all(&self.db).await?)
    }

    /// Creates or updates a subscription (see [`plan_upsert`]).
    pub async fn upsert_subscription(
        &self,
        input: &SubscriptionInput,
        principal: &str,
    ) -> Result<(SubscriptionView, bool), HealthError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let account_exists = account::Entity::find_by_id(input.account_id.to_string())
            .one(&txn)
            .await?
            .is_some();
        let product = product::Entity::find_by_id(input.product_id.to_string())
            .one(&txn)
            .await?;
        let existing = keyed_subscription(&txn, &input.key).await?;
        let history = match &existing {
            Some(current) => history_of(&txn, &current.id).await?,
            None => Vec::new(),
        };
        let load = UpsertLoad {
            account_exists,
            product,
            existing,
            history,
        };
        let write = match plan_upsert(input, load, principal, storage::now())? {
            UpsertPlan::Unchanged(view) => return Ok((view, false)),
            UpsertPlan::Write(write) => write,
        };
        let row = write.view.row.clone().into_active_model().reset_all();
        if write.created {
            subscription::Entity::insert(row)
                .exec_without_returning(&txn)
                .await?;
        } else {
            row.update(&txn).await?;
        }
        if let Some(amendment) = &write.amendment {
            put_amendment(&txn, amendment, principal).await?;
        }
        mark_dirty(&txn, std::slice::from_ref(&write.dirty_account)).await?;
        self.events.append(&txn, &[write.event]).await?;
        txn.commit().await?;
        self.events.committed();
        Ok((write.view, write.created))
    }

    /// Books a won upsell as an amendment of the subscription it grows, once
    /// per opportunity (see [`plan_upsell_booking`]): a repeat returns the
    /// subscription with `false`.
    pub async fn apply_upsell(
        &self,
        input: &UpsellInput,
        principal: &str,
    ) -> Result<(SubscriptionView, bool), HealthError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        if let Some(booked) = upsell::Entity::find_by_id(input.opportunity_id.to_string())
            .one(&txn)
            .await?
        {
            let row = subscription::Entity::find_by_id(booked.subscription_id.clone())
                .one(&txn)
                .await?
                .ok_or_else(|| HealthError::SubscriptionNotFound(booked.subscription_id.clone()))?;
            let amendments = history_of(&txn, &row.id).await?;
            return Ok((SubscriptionView { row, amendments }, false));
        }
        let account_id = input.account_id.to_string();
        if account::Entity::find_by_id(account_id.clone())
            .one(&txn)
            .await?
            .is_none()
        {
            return Err(HealthError::AccountNotFound(account_id));
        }
        let product = product::Entity::find_by_id(input.product_id.to_string())
            .one(&txn)
            .await?
            .ok_or_else(|| HealthError::ProductNotFound(input.product_id.to_string()))?;
        let rows = subscription::Entity::find()
            .filter(subscription::Column::AccountId.eq(account_id))
            .filter(subscription::Column::ProductId.eq(product.id.clone()))
            .all(&txn)
            .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let histories = amendments_of(&txn, &ids).await?;
        let tiers: Vec<String> = serde_json::from_str(&product.tiers).unwrap_or_default();
        let booking =
            plan_upsell_booking(input, rows, histories, &tiers, principal, storage::now())?;
        put_amendment(&txn, &booking.amendment, principal).await?;
        if booking.tier_changed {
            let row = booking.view.row.clone().into_active_model().reset_all();
            row.update(&txn).await?;
        }
        upsell::Entity::insert(booking.upsell.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        mark_dirty(&txn, std::slice::from_ref(&booking.dirty_account)).await?;
        self.events.append(&txn, &[booking.event]).await?;
        txn.commit().await?;
        self.events.committed();
        Ok((booking.view, true))
    }

    /// Cancels a subscription (see [`plan_cancellation`]); cancelling again
    /// with the same date is a no-op, with another date an error.
    pub async fn cancel_subscription(
        &self,
        cancel: &Cancellation,
        principal: &str,
    ) -> Result<SubscriptionView, HealthError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let id = cancel.subscription_id.to_string();
        let current = subscription::Entity::find_by_id(id.clone())
            .one(&txn)
            .await?
            .ok_or_else(|| HealthError::SubscriptionNotFound(id.clone()))?;
        let amendments = history_of(&txn, &id).await?;
        // The won upsells that grew it: their credits are clawed back too.
        let upsell_deals: Vec<String> = upsell::Entity::find()
            .filter(upsell::Column::SubscriptionId.eq(id.clone()))
            .order_by_asc(upsell::Column::EffectiveDate)
            .all(&txn)
            .await?
            .into_iter()
            .map(|u| u.opportunity_id)
            .collect();
        let planned = plan_cancellation(
            &current,
            cancel,
            &amendments,
            &upsell_deals,
            principal,
            storage::now(),
        )?;
        let Some(plan) = planned else {
            return Ok(SubscriptionView {
                row: current,
                amendments,
            });
        };
        let row = plan
            .row
            .into_active_model()
            .reset_all()
            .update(&txn)
            .await?;
        mark_dirty(&txn, std::slice::from_ref(&plan.dirty_account)).await?;
        self.events.append(&txn, &[plan.event]).await?;
        txn.commit().await?;
        self.events.committed();
        Ok(SubscriptionView { row, amendments })
    }

    /// Subscriptions ordered by id, with their MRR history.
    pub async fn list_subscriptions(
        &self,
        account_id: Option<AccountId>,
        product_id: Option<ProductId>,
        status: Option<SubscriptionStatus>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<SubscriptionView>, HealthError> {
        let mut query = subscription::Entity::find().order_by_asc(subscription::Column::Id);
        if let Some(a) = account_id {
            query = query.filter(subscription::Column::AccountId.eq(a.to_string()));
        }
        if let Some(p) = product_id {
            query = query.filter(subscription::Column::ProductId.eq(p.to_string()));
        }
        if let Some(s) = status {
            query = query.filter(subscription::Column::Status.eq(s));
        }
        if let Some(after) = after {
            query = query.filter(subscription::Column::Id.gt(after));
        }
        let rows = query.limit(limit).all(&self.db).await?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut history = amendments_of(&self.db, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|row| SubscriptionView {
                amendments: history.remove(&row.id).unwrap_or_default(),
                row,
            })
            .collect())
    }
}
