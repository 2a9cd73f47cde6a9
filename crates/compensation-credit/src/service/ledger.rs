//! ApproveCredits, ApplyClawback and ListLedgerEntries.

use contracts::pb::credit::v1 as pb;
use contracts::{ApiError, Principal};

use super::{invalid, next_token, once, reader};
use crate::convert::entries_to_pb;
use crate::error::CreditError;
use crate::model::clawback::Cancellation;
use crate::model::inputs::{ApproveInput, ClawbackInput, ListInput};
use crate::model::privacy::{self, Reader};
use crate::store::{ClawbackScope, EntryFilter, Store};

/// Releases held entries now.
pub async fn approve(
    store: &Store,
    principal: &str,
    req: pb::ApproveCreditsRequest,
) -> Result<pb::ApproveCreditsResponse, CreditError> {
    let input = ApproveInput::from_request(&req).map_err(invalid)?;
    once(store, "ApproveCredits", principal, &req, async {
        let released = store
            .approve(
                &input.entry_ids,
                input.deal_id.as_deref(),
                input.note.clone(),
                principal,
            )
            .await?;
        Ok(pb::ApproveCreditsResponse {
            released: entries_to_pb(&released, storage::now())?,
        })
    })
    .await
}

/// Claws back a deal's credits, or those of every deal of a cancelled subscription.
pub async fn clawback(
    store: &Store,
    principal: &str,
    req: pb::ApplyClawbackRequest,
) -> Result<pb::ApplyClawbackResponse, CreditError> {
    let input = ClawbackInput::from_request(&req).map_err(invalid)?;
    let scope = match (&input.deal_id, &input.subscription_id) {
        (Some(deal), _) => ClawbackScope::Deal(deal),
        (None, Some(subscription)) => ClawbackScope::Subscription(subscription),
        (None, None) => {
            return Err(invalid(ApiError::invalid(
                "deal_id",
                "a deal_id or a subscription_id is required",
            )));
        }
    };
    let cancellation = Cancellation {
        subscription_id: input.subscription_id.as_deref(),
        cancel_date: input.cancel_date,
        reason: &input.reason,
    };
    once(store, "ApplyClawback", principal, &req, async {
        let outcome = store.apply_clawback(scope, cancellation, principal).await?;
        Ok(pb::ApplyClawbackResponse {
            entries: entries_to_pb(&outcome.entries, storage::now())?,
            created: outcome.created,
            outside_window_deal_ids: outcome.outside_window,
        })
    })
    .await
}

/// A page of the entries `caller` may read.
pub async fn list_entries(
    store: &Store,
    caller: &Principal,
    req: &pb::ListLedgerEntriesRequest,
) -> Result<pb::ListLedgerEntriesResponse, CreditError> {
    let input = ListInput::from_request(req).map_err(invalid)?;
    let reader = reader(store, caller).await?;
    privacy::check_person_rows(&reader, input.participant_id.as_deref())?;
    let filter = EntryFilter {
        visible_to: match reader {
            Reader::Person(scope) => Some(scope),
            _ => None,
        },
        participant_id: input.participant_id.clone(),
        deal_id: input.deal_id.clone(),
        kind: input.kind,
        role: input.role,
        start: input.start,
        end: input.end,
    };
    let mut entries = store
        .list_entries(&filter, input.after.as_deref(), input.page_size)
        .await?;
    let next_page_token = next_token(&mut entries, input.page_size, input.fingerprint);
    Ok(pb::ListLedgerEntriesResponse {
        entries: entries_to_pb(&entries, storage::now())?,
        next_page_token,
    })
}
