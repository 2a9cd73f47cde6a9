//! What each RPC of the health service does, between the tonic face
//! ([`crate::api`]) and the store: validate the request with
//! [`crate::model`], call the store, and encode the answer with
//! [`crate::convert`]. Mutations run at most once per `request_id`
//! ([`mutate`]).
//!
//! - [`accounts`]: accounts and products.
//! - [`subscriptions`]: subscriptions, cancellations, upsells.
//! - [`signals`]: RecordSignals (StreamSignals stays in `api`, a stream).
//! - [`scores`]: scorecards, health, its history and overrides.
//! - [`triggers`]: expansion triggers and their conversion.
//! - [`revenue`]: revenue metrics and cohorts.
//! - [`deliveries`]: the outbox's deliveries.

pub mod accounts;
pub mod deliveries;
pub mod revenue;
pub mod scores;
pub mod signals;
pub mod subscriptions;
pub mod triggers;

use contracts::pb::health::v1 as pb;
use contracts::{ApiError, Idempotent, page, wire};
use domain::{AccountId, OpportunityId, TriggerId};
use tonic::{Request, Response, Status};

use crate::entity::account;
use crate::error::HealthError;
use crate::model::optional_account_id;
use crate::store::{Names, Store};

/// Answers a read RPC: `op` gets the store and the request.
pub(crate) async fn read<Req, Resp>(
    store: &Store,
    request: Request<Req>,
    op: impl AsyncFnOnce(&Store, &Req) -> Result<Resp, HealthError>,
) -> Result<Response<Resp>, Status> {
    Ok(Response::new(op(store, request.get_ref()).await?))
}

/// Runs a mutation RPC at most once per caller and `request_id`, in one
/// transaction (`storage::idempotency`): `op` gets the store, the caller's
/// principal and the request.
pub(crate) async fn mutate<Req, Resp>(
    store: &Store,
    method: &'static str,
    request: Request<Req>,
    op: impl AsyncFnOnce(&Store, String, &Req) -> Result<Resp, HealthError>,
) -> Result<Response<Resp>, Status>
where
    Req: Idempotent,
    Resp: prost::Message + Default,
{
    REQUESTS
        .call(
            store.db(),
            store.writer(),
            method,
            request,
            async |principal, req| op(store, principal, req).await,
        )
        .await
}

/// A message that names an account and maybe a product by id, and shows
/// their names beside them.
pub(crate) trait Named {
    fn ids(&self) -> (&str, &str);
    fn set_names(&mut self, account: String, product: String);
}

/// The messages that carry `account_id`/`product_id` beside `account_name`/`product_name`.
macro_rules! named {
    ($($message:ty),+) => {$(
        impl Named for $message {
            fn ids(&self) -> (&str, &str) {
                (&self.account_id, &self.product_id)
            }
            fn set_names(&mut self, account: String, product: String) {
                self.account_name = account;
                self.product_name = product;
            }
        }
    )+};
}

named!(pb::Trigger, pb::HealthScore, pb::Subscription);

/// Puts the account's and the product's names beside their ids, read
/// from this service's own tables in two queries for the whole page.
pub(crate) async fn named<T: Named>(store: &Store, items: &mut [T]) -> Result<(), HealthError> {
    let names = store
        .names(
            items.iter().map(|i| i.ids().0),
            items.iter().map(|i| i.ids().1),
        )
        .await?;
    with_names(&names, items);
    Ok(())
}

/// Puts the names known in `names` beside the ids (empty when unknown).
pub(crate) fn with_names<T: Named>(names: &Names, items: &mut [T]) {
    for item in items.iter_mut() {
        let (account, product) = item.ids();
        let (account, product) = (names.account(account), names.product(product));
        item.set_names(account, product);
    }
}

/// One item with its names.
pub(crate) async fn one_named<T: Named>(store: &Store, mut item: T) -> Result<T, HealthError> {
    named(store, std::slice::from_mut(&mut item)).await?;
    Ok(item)
}

/// The answer to `req`: the one kept for the same request when nothing was
/// written since (SQLite; see [`storage::read_cache`]), else `answer`, kept
/// until `until`. The cache's ticket is taken before `answer` starts reading.
pub(crate) async fn kept<Req: prost::Message, Resp: Clone>(
    cache: &storage::read_cache::ReadCache<Vec<u8>, Resp>,
    req: &Req,
    until: Option<chrono::DateTime<chrono::Utc>>,
    answer: impl std::future::Future<Output = Result<Resp, HealthError>>,
) -> Result<Resp, HealthError> {
    let key = req.encode_to_vec();
    if let Some(kept) = cache.get(&key, storage::now()) {
        return Ok(kept);
    }
    let ticket = cache.ticket();
    let answer = answer.await?;
    cache.fill(ticket, key, answer.clone(), until);
    Ok(answer)
}

/// The account's and its products' names beside each score of `health`.
pub(crate) fn named_health(names: &Names, health: &mut pb::AccountHealth) {
    if let Some(overall) = health.overall.as_mut() {
        with_names(names, std::slice::from_mut(overall));
    }
    with_names(names, &mut health.products);
}

/// Where this service keeps its `request_id` records.
const REQUESTS: storage::idempotency::Requests =
    storage::idempotency::Requests::new("health_requests");

pub(crate) fn invalid(field: &str, why: impl std::fmt::Display) -> HealthError {
    HealthError::from(ApiError::invalid(field, why))
}

/// The trigger and (optional) opportunity a ConvertTrigger / CloseTrigger names.
pub(crate) fn trigger_step_ids(
    trigger_id: &str,
    opportunity_id: &str,
) -> Result<(TriggerId, Option<OpportunityId>), HealthError> {
    let id = TriggerId::parse(trigger_id).map_err(|e| invalid("trigger_id", e))?;
    let opportunity = if opportunity_id.is_empty() {
        None
    } else {
        Some(OpportunityId::parse(opportunity_id).map_err(|e| invalid("opportunity_id", e))?)
    };
    Ok((id, opportunity))
}

/// A scorecard id from the wire; empty is `default`, the one scores use.
pub(crate) fn scorecard_id(field: &str, raw: &str) -> Result<String, HealthError> {
    if raw.is_empty() {
        return Ok(crate::model::scorecard::DEFAULT_SCORECARD_ID.to_owned());
    }
    Ok(wire::text(
        field,
        raw,
        crate::model::scorecard::MAX_SCORECARD_ID_LEN,
    )?)
}

/// The key (last id or offset) a page token holds, bound to the list's filters.
pub(crate) fn page_start(token: &str, filter: u64) -> Result<Option<String>, HealthError> {
    Ok(page::decode_token("page_token", token, filter)?)
}

pub(crate) fn offset_of(token: &str, filter: u64) -> Result<u64, HealthError> {
    match page_start(token, filter)? {
        None => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| invalid("page_token", "is not a token this list returned")),
    }
}

pub(crate) async fn require_account(
    store: &Store,
    field: &str,
    raw: &str,
) -> Result<(AccountId, account::Model), HealthError> {
    let id = optional_account_id(field, raw)?.ok_or_else(|| invalid(field, "is required"))?;
    let account = store
        .account(id)
        .await?
        .ok_or_else(|| HealthError::AccountNotFound(id.to_string()))?;
    Ok((id, account))
}
