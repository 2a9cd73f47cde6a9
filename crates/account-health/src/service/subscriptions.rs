//! Subscriptions: UpsertSubscription, CancelSubscription, ApplyUpsell, ListSubscriptions.

use contracts::page;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::ProductId;

use super::{invalid, kept, named, one_named, page_start};
use crate::convert::{subscription_to_pb, usage_to_pb};
use crate::error::HealthError;
use crate::model::optional_account_id;
use crate::model::portfolio::SubscriptionStatus;
use crate::model::subscription::Cancellation;
use crate::model::subscription::SubscriptionInput;
use crate::model::upsell::UpsellInput;
use crate::store::Store;

pub(crate) async fn upsert_subscription(
    store: &Store,
    principal: String,
    req: &pb::UpsertSubscriptionRequest,
) -> Result<pb::UpsertSubscriptionResponse, HealthError> {
    let input = SubscriptionInput::from_request(req, storage::now()).map_err(HealthError::from)?;
    let (view, created) = store.upsert_subscription(&input, &principal).await?;
    Ok(pb::UpsertSubscriptionResponse {
        subscription: Some(one_named(store, subscription_to_pb(view)).await?),
        created,
    })
}

pub(crate) async fn cancel_subscription(
    store: &Store,
    principal: String,
    req: &pb::CancelSubscriptionRequest,
) -> Result<pb::CancelSubscriptionResponse, HealthError> {
    let cancel = Cancellation::from_request(req, storage::now()).map_err(HealthError::from)?;
    let view = store.cancel_subscription(&cancel, &principal).await?;
    Ok(pb::CancelSubscriptionResponse {
        subscription: Some(one_named(store, subscription_to_pb(view)).await?),
    })
}

pub(crate) async fn apply_upsell(
    store: &Store,
    principal: String,
    req: &pb::ApplyUpsellRequest,
) -> Result<pb::ApplyUpsellResponse, HealthError> {
    let input = UpsellInput::from_request(req).map_err(HealthError::from)?;
    let (view, created) = store.apply_upsell(&input, &principal).await?;
    Ok(pb::ApplyUpsellResponse {
        subscription: Some(one_named(store, subscription_to_pb(view)).await?),
        created,
    })
}

pub(crate) async fn list_subscriptions(
    store: &Store,
    req: &pb::ListSubscriptionsRequest,
) -> Result<pb::ListSubscriptionsResponse, HealthError> {
    // Each subscription's MRR is today's (UTC): kept until midnight.
    let midnight = storage::now()
        .date_naive()
        .succ_opt()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc());
    let until = Some(midnight.unwrap_or_else(storage::now));
    kept(
        &store.reads().subscriptions,
        req,
        until,
        read_subscriptions(store, req),
    )
    .await
}

async fn read_subscriptions(
    store: &Store,
    req: &pb::ListSubscriptionsRequest,
) -> Result<pb::ListSubscriptionsResponse, HealthError> {
    let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
    let account = optional_account_id("account_id", &req.account_id).map_err(HealthError::from)?;
    let product = if req.product_id.is_empty() {
        None
    } else {
        Some(ProductId::parse(&req.product_id).map_err(|e| invalid("product_id", e))?)
    };
    let status = SubscriptionStatus::from_pb(
        wire::known_enum::<pb::SubscriptionStatus>("status", req.status)
            .map_err(HealthError::from)?,
    );
    let filter = page::fingerprint(&[&req.account_id, &req.product_id, &req.status.to_string()]);
    let after = page_start(&req.page_token, filter)?;
    let mut rows = store
        .list_subscriptions(account, product, status, after.as_deref(), limit + 1)
        .await?;
    let next_page_token = page::next_page(&mut rows, limit, filter, |s| s.row.id.clone());
    let pairs: Vec<(String, String)> = rows
        .iter()
        .map(|s| (s.row.account_id.clone(), s.row.product_id.clone()))
        .collect();
    let usage = store.latest_usage(&pairs).await?;
    let mut subscriptions: Vec<pb::Subscription> = rows
        .into_iter()
        .map(|view| {
            let key = (view.row.account_id.clone(), view.row.product_id.clone());
            pb::Subscription {
                latest_usage: usage.get(&key).map(usage_to_pb),
                ..subscription_to_pb(view)
            }
        })
        .collect();
    named(store, &mut subscriptions).await?;
    Ok(pb::ListSubscriptionsResponse {
        subscriptions,
        next_page_token,
    })
}
