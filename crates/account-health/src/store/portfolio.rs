//! Products and subscriptions (with their MRR amendments).

use std::collections::HashMap;

use chrono::NaiveDate;
use contracts::ApiError;
use domain::{ProductId, SubscriptionId};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use storage::events::NewEvent;

use super::{Store, mark_dirty};
use crate::entity::{account, amendment, product, subscription, upsell};
use crate::error::HealthError;
use crate::model::product::ProductInput;
use crate::model::subscription::{Cancellation, SubscriptionInput, SubscriptionKey, mrr_on};
use crate::model::upsell::{Candidate, UpsellInput, plan_upsell};

pub const ACTIVE: &str = "ACTIVE";
pub const CANCELLED: &str = "CANCELLED";

/// A subscription with its MRR history, oldest amendment first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    pub row: subscription::Model,
    pub amendments: Vec<(NaiveDate, i64)>,
}

impl SubscriptionView {
    /// MRR in force on `date`, or the first amount for a subscription that
    /// has not started yet.
    pub fn mrr_minor(&self, date: NaiveDate) -> i64 {
        mrr_on(&self.amendments, date)
            .or_else(|| self.amendments.first().map(|(_, m)| *m))
            .unwrap_or(0)
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, HealthError> {
    serde_json::to_string(value).map_err(|e| HealthError::Corrupt(e.to_string()))
}

/// Writes the MRR in force from `effective`: one amendment per date, the last
/// written wins (a correction of that date).
async fn put_amendment<C: ConnectionTrait>(
    db: &C,
    subscription_id: &str,
    effective: NaiveDate,
    mrr_minor: i64,
    principal: &str,
) -> Result<(), HealthError> {
    amendment::Entity::insert(amendment::ActiveModel {
        id: Set(domain::EventId::new().to_string()),
        subscription_id: Set(subscription_id.to_owned()),
        effective_date: Set(effective),
        mrr_minor: Set(mrr_minor),
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
    pub async fn product(&self, id: &ProductId) -> Result<Option<product::Model>, HealthError> {
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

    pub async fn upsert_subscription(
        &self,
        input: &SubscriptionInput,
        principal: &str,
    ) -> Result<(SubscriptionView, bool), HealthError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let account_id = input.account_id.to_string();
        if account::Entity::find_by_id(account_id.clone())
            .one(&txn)
            .await?
            .is_none()
        {
            return Err(ApiError::invalid(
                "subscription.account_id",
                format!("no account has id {account_id}"),
            )
            .into());
        }
        let product = product::Entity::find_by_id(input.product_id.to_string())
            .one(&txn)
            .await?
            .ok_or_else(|| {
                ApiError::invalid(
                    "subscription.product_id",
                    format!("no product has id {}", input.product_id),
                )
            })?;
        if let Some(tier) = &input.tier {
            let tiers: Vec<String> = serde_json::from_str(&product.tiers).unwrap_or_default();
            if !tiers.is_empty() && !tiers.contains(tier) {
                return Err(ApiError::invalid(
                    "subscription.tier",
                    format!("product {} has tiers {}", product.name, tiers.join(", ")),
                )
                .into());
            }
        }
        let existing = match &input.key {
            SubscriptionKey::Id(id) => Some(
                subscription::Entity::find_by_id(id.to_string())
                    .one(&txn)
                    .await?
                    .ok_or_else(|| HealthError::SubscriptionNotFound(id.to_string()))?,
            ),
            SubscriptionKey::External(ext) => {
                subscription::Entity::find()
                    .filter(subscription::Column::ExternalSystem.eq(ext.source()))
                    .filter(subscription::Column::ExternalId.eq(ext.id()))
                    .one(&txn)
                    .await?
            }
            SubscriptionKey::Opportunity(opp) => {
                subscription::Entity::find()
                    .filter(subscription::Column::SourceOpportunityId.eq(opp.to_string()))
                    .one(&txn)
                    .await?
            }
            SubscriptionKey::New => None,
        };
        let currency = input.mrr.currency().code().to_owned();
        if let Some(current) = &existing {
            if current.account_id != account_id {
                return Err(ApiError::invalid(
                    "subscription.account_id",
                    "a subscription cannot move to another account",
                )
                .into());
            }
            if current.currency != currency {
                return Err(ApiError::invalid(
                    "subscription.mrr.currency_code",
                    format!("the subscription is billed in {}", current.currency),
                )
                .into());
            }
        }
        // A connector re-sending the stored contract with the MRR in force
        // changes nothing: no write, no event, no recomputation.
        if let Some(current) = &existing
            && subscription_unchanged(current, input)
        {
            let history = amendments_of(&txn, std::slice::from_ref(&current.id))
                .await?
                .remove(&current.id)
                .unwrap_or_default();
            let effective = input
                .mrr_effective_date
                .unwrap_or(input.today)
                .max(input.start_date);
            if mrr_on(&history, effective) == Some(input.mrr.minor()) {
                return Ok((
                    SubscriptionView {
                        row: current.clone(),
                        amendments: history,
                    },
                    false,
                ));
            }
        }
        let now = storage::now();
        let id = existing
            .as_ref()
            .map(|s| s.id.clone())
            .unwrap_or_else(|| SubscriptionId::new().to_string());
        let mut row = subscription::ActiveModel {
            id: Set(id.clone()),
            account_id: Set(account_id.clone()),
            product_id: Set(input.product_id.to_string()),
            tier: Set(input.tier.clone()),
            currency: Set(currency),
            start_date: Set(input.start_date),
            end_date: Set(input.end_date),
            quantity: Set(input.quantity),
            quota_limit: Set(input.quota_limit),
            updated_at: Set(now),
            updated_by: Set(principal.to_owned()),
            ..Default::default()
        };
        let created = existing.is_none();
        let model = match existing {
            Some(current) => {
                row.status = Set(current.status);
                row.cancel_date = Set(current.cancel_date);
                row.cancel_reason = Set(current.cancel_reason);
                row.external_system = Set(input
                    .external
                    .as_ref()
                    .map(|e| e.source().to_owned())
                    .or(current.external_system));
                row.external_id = Set(input
                    .external
                    .as_ref()
                    .map(|e| e.id().to_owned())
                    .or(current.external_id));
                row.source_opportunity_id = Set(input
                    .source_opportunity
                    .map(|o| o.to_string())
                    .or(current.source_opportunity_id));
                row.created_at = Set(current.created_at);
                row.created_by = Set(current.created_by);
                row.update(&txn).await?
            }
            None => {
                row.status = Set(ACTIVE.to_owned());
                row.cancel_date = Set(None);
                row.cancel_reason = Set(None);
                row.external_system = Set(input.external.as_ref().map(|e| e.source().to_owned()));
                row.external_id = Set(input.external.as_ref().map(|e| e.id().to_owned()));
                row.source_opportunity_id = Set(input.source_opportunity.map(|o| o.to_string()));
                row.created_at = Set(now);
                row.created_by = Set(principal.to_owned());
                row.insert(&txn).await?
            }
        };

        // MRR: the first amount takes effect at the start; a changed amount
        // is an amendment from its effective date (default today).
        let history = amendments_of(&txn, std::slice::from_ref(&id))
            .await?
            .remove(&id)
            .unwrap_or_default();
        let effective = if created {
            input.start_date
        } else {
            input
                .mrr_effective_date
                .unwrap_or(input.today)
                .max(input.start_date)
        };
        if mrr_on(&history, effective) != Some(input.mrr.minor()) {
            put_amendment(&txn, &id, effective, input.mrr.minor(), principal).await?;
        }
        let amendments = amendments_of(&txn, std::slice::from_ref(&id))
            .await?
            .remove(&id)
            .unwrap_or_default();
        mark_dirty(&txn, std::slice::from_ref(&account_id)).await?;
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: if created {
                        "health.subscription.created"
                    } else {
                        "health.subscription.updated"
                    }
                    .into(),
                    subject_id: id.clone(),
                    data: serde_json::json!({
                        "subscription_id": id,
                        "account_id": account_id,
                        "product_id": model.product_id,
                        "tier": model.tier,
                        "mrr": input.mrr.to_amount_string(),
                        "currency_code": model.currency,
                        "start_date": model.start_date.to_string(),
                        "source_opportunity_id": model.source_opportunity_id,
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok((
            SubscriptionView {
                row: model,
                amendments,
            },
            created,
        ))
    }

    /// Books a won upsell as an amendment of the subscription it grows, once
    /// per opportunity: a repeat returns the subscription with `false`.
    pub async fn apply_upsell(
        &self,
        input: &UpsellInput,
        principal: &str,
    ) -> Result<(SubscriptionView, bool), HealthError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let opportunity_id = input.opportunity_id.to_string();
        if let Some(booked) = upsell::Entity::find_by_id(opportunity_id.clone())
            .one(&txn)
            .await?
        {
            let row = subscription::Entity::find_by_id(booked.subscription_id.clone())
                .one(&txn)
                .await?
                .ok_or_else(|| HealthError::SubscriptionNotFound(booked.subscription_id.clone()))?;
            let amendments = amendments_of(&txn, std::slice::from_ref(&row.id))
                .await?
                .remove(&row.id)
                .unwrap_or_default();
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
            .filter(subscription::Column::AccountId.eq(account_id.clone()))
            .filter(subscription::Column::ProductId.eq(product.id.clone()))
            .all(&txn)
            .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut histories = amendments_of(&txn, &ids).await?;
        let candidates: Vec<Candidate> = rows
            .iter()
            .map(|r| Candidate {
                subscription_id: r.id.clone(),
                currency: r.currency.clone(),
                tier: r.tier.clone(),
                start_date: r.start_date,
                cancel_date: r.cancel_date.filter(|_| r.status == CANCELLED),
                amendments: histories.remove(&r.id).unwrap_or_default(),
            })
            .collect();
        let tiers: Vec<String> = serde_json::from_str(&product.tiers).unwrap_or_default();
        let plan = plan_upsell(&candidates, input, &tiers)?;
        let current = rows
            .into_iter()
            .find(|r| r.id == plan.subscription_id)
            .ok_or_else(|| HealthError::SubscriptionNotFound(plan.subscription_id.clone()))?;

        let id = plan.subscription_id.clone();
        put_amendment(&txn, &id, input.effective_date, plan.mrr_minor, principal).await?;
        let previous_tier = current.tier.clone();
        let model = if plan.tier != current.tier {
            let mut row: subscription::ActiveModel = current.into();
            row.tier = Set(plan.tier.clone());
            row.updated_at = Set(storage::now());
            row.updated_by = Set(principal.to_owned());
            row.update(&txn).await?
        } else {
            current
        };
        upsell::Entity::insert(upsell::ActiveModel {
            opportunity_id: Set(opportunity_id.clone()),
            subscription_id: Set(id.clone()),
            effective_date: Set(input.effective_date),
            mrr_increase_minor: Set(input.mrr_increase.minor()),
            created_at: Set(storage::now()),
            created_by: Set(principal.to_owned()),
        })
        .exec_without_returning(&txn)
        .await?;
        mark_dirty(&txn, std::slice::from_ref(&account_id)).await?;
        let currency = input.mrr_increase.currency();
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "health.subscription.upsold".into(),
                    subject_id: id.clone(),
                    data: serde_json::json!({
                        "subscription_id": id,
                        "account_id": account_id,
                        "product_id": model.product_id,
                        "opportunity_id": opportunity_id,
                        "effective_date": input.effective_date.to_string(),
                        "mrr_increase": input.mrr_increase.to_amount_string(),
                        "mrr": domain::Money::from_minor(currency, plan.mrr_minor).to_amount_string(),
                        "currency_code": model.currency,
                        "previous_tier": previous_tier,
                        "tier": model.tier,
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        let amendments = amendments_of(&txn, std::slice::from_ref(&id))
            .await?
            .remove(&id)
            .unwrap_or_default();
        txn.commit().await?;
        self.events.committed();
        Ok((
            SubscriptionView {
                row: model,
                amendments,
            },
            true,
        ))
    }

    /// Cancels a subscription; cancelling again with the same date is a
    /// no-op, with another date an error.
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
        if current.status == CANCELLED {
            if current.cancel_date != Some(cancel.cancel_date) {
                return Err(HealthError::AlreadyCancelled(
                    id,
                    current
                        .cancel_date
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                ));
            }
            let amendments = amendments_of(&txn, std::slice::from_ref(&id))
                .await?
                .remove(&id)
                .unwrap_or_default();
            return Ok(SubscriptionView {
                row: current,
                amendments,
            });
        }
        if cancel.cancel_date < current.start_date {
            return Err(ApiError::invalid(
                "cancel_date",
                format!("the subscription starts on {}", current.start_date),
            )
            .into());
        }
        let amendments = amendments_of(&txn, std::slice::from_ref(&id))
            .await?
            .remove(&id)
            .unwrap_or_default();
        let mrr_before = cancel
            .cancel_date
            .pred_opt()
            .and_then(|d| mrr_on(&amendments, d))
            .unwrap_or(0);
        // The won upsells that grew it: their credits are clawed back too.
        let upsell_deals: Vec<String> = upsell::Entity::find()
            .filter(upsell::Column::SubscriptionId.eq(id.clone()))
            .order_by_asc(upsell::Column::EffectiveDate)
            .all(&txn)
            .await?
            .into_iter()
            .map(|u| u.opportunity_id)
            .collect();
        let now = storage::now();
        let mut row: subscription::ActiveModel = current.into();
        row.status = Set(CANCELLED.to_owned());
        row.cancel_date = Set(Some(cancel.cancel_date));
        row.cancel_reason = Set(Some(cancel.reason.clone()));
        row.updated_at = Set(now);
        row.updated_by = Set(principal.to_owned());
        let model = row.update(&txn).await?;
        mark_dirty(&txn, std::slice::from_ref(&model.account_id)).await?;
        let currency = domain::Currency::parse(&model.currency)
            .map_err(|e| HealthError::Corrupt(e.to_string()))?;
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "health.subscription.cancelled".into(),
                    subject_id: id.clone(),
                    data: serde_json::json!({
                        "subscription_id": id,
                        "account_id": model.account_id,
                        "product_id": model.product_id,
                        "source_opportunity_id": model.source_opportunity_id,
                        "upsell_opportunity_ids": upsell_deals,
                        "cancel_date": cancel.cancel_date.to_string(),
                        "reason": cancel.reason,
                        "mrr": domain::Money::from_minor(currency, mrr_before).to_amount_string(),
                        "currency_code": model.currency,
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok(SubscriptionView {
            row: model,
            amendments,
        })
    }

    /// Subscriptions ordered by id, with their MRR history.
    pub async fn list_subscriptions(
        &self,
        account_id: Option<&str>,
        product_id: Option<&str>,
        status: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<SubscriptionView>, HealthError> {
        let mut query = subscription::Entity::find().order_by_asc(subscription::Column::Id);
        if let Some(a) = account_id {
            query = query.filter(subscription::Column::AccountId.eq(a));
        }
        if let Some(p) = product_id {
            query = query.filter(subscription::Column::ProductId.eq(p));
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

/// Whether `input` would leave the stored contract's fields as they are (the
/// MRR is compared separately, against the amount in force).
fn subscription_unchanged(current: &subscription::Model, input: &SubscriptionInput) -> bool {
    let external_same = input.external.as_ref().is_none_or(|ext| {
        current.external_system.as_deref() == Some(ext.source())
            && current.external_id.as_deref() == Some(ext.id())
    });
    let opportunity_same = input
        .source_opportunity
        .is_none_or(|o| current.source_opportunity_id.as_deref() == Some(o.to_string().as_str()));
    external_same
        && opportunity_same
        && current.product_id == input.product_id.to_string()
        && current.tier == input.tier
        && current.start_date == input.start_date
        && current.end_date == input.end_date
        && current.quantity == input.quantity
        && current.quota_limit == input.quota_limit
}
