//! What each RPC does, between the tonic face ([`crate::api`]) and the store: validate
//! the request with [`crate::model`], check who may read what, run the mutation at most
//! once per `request_id`, and encode the answer with [`crate::convert`].
//!
//! - [`policies`]: UpsertCreditPolicy, GetCreditPolicy.
//! - [`deals`]: RecordDealCredits, ReplaceDealSplits, GetDealCredits.
//! - [`ledger`]: ApproveCredits, ApplyClawback, ListLedgerEntries.
//! - [`statements`]: GetStatement, a period's figures and entries.
//! - [`disputes`]: OpenDispute, ResolveDispute, ListDisputes.
//! - [`people`]: UpsertPerson, GetPerson, ListPeople.
//! - [`events`]: which credit events reach a reader of WatchEvents.

pub mod deals;
pub mod disputes;
pub mod events;
pub mod ledger;
pub mod people;
pub mod policies;
pub mod statements;

use std::collections::BTreeSet;

use contracts::{ApiError, Idempotent, Principal, page};
use prost::Message;

use crate::error::CreditError;
use crate::model::ledger::Entry;
use crate::model::privacy::{self, Reader};
use crate::store::Store;

/// Where this service keeps its `request_id` records.
const REQUESTS: storage::idempotency::Requests =
    storage::idempotency::Requests::new("credit_request_records");

pub(crate) fn invalid(err: ApiError) -> CreditError {
    CreditError::from(err)
}

/// What `caller` reads of people's credit: everything, a person's own (and managed
/// team's, its members from the directory), or totals only.
pub async fn reader(store: &Store, caller: &Principal) -> Result<Reader, CreditError> {
    let members = match &caller.manages {
        Some(team) => store.team_members(team).await?,
        None => BTreeSet::new(),
    };
    Ok(privacy::reader_of(caller, members))
}

/// Runs a mutation in one transaction, at most once per caller and `request_id`
/// (AIP-155, see `storage::idempotency`): a retry with the same id and the same
/// request gets the first response back; the same id with another request is
/// refused.
async fn once<Req, T, F>(
    store: &Store,
    method: &'static str,
    principal: &str,
    request: &Req,
    run: F,
) -> Result<T, CreditError>
where
    Req: Idempotent,
    T: Message + Default,
    F: Future<Output = Result<T, CreditError>>,
{
    REQUESTS
        .once(
            store.db(),
            &store.write_gate(),
            method,
            principal,
            request.request_id(),
            request,
            || run,
        )
        .await
}

/// [`page::next_page`] of ledger entries, by entry id.
fn next_token(entries: &mut Vec<Entry>, page_size: u64, fingerprint: u64) -> String {
    page::next_page(entries, page_size, fingerprint, |e| e.entry_id.clone())
}
