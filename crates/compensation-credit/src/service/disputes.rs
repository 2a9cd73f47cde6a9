//! OpenDispute, ResolveDispute and ListDisputes.

use contracts::Principal;
use contracts::pb::credit::v1 as pb;

use contracts::page;

use super::{invalid, once, reader};
use crate::convert::{dispute_to_pb, entry_to_pb};
use crate::error::CreditError;
use crate::model::disputes::{RESOLVED_ADJUSTED, RESOLVED_REJECTED, Resolution};
use crate::model::inputs::{ListDisputesInput, ResolveInput, open_dispute};
use crate::model::privacy::{self, Reader};
use crate::store::{DisputeFilter, Store};

/// Opens a dispute over an entry.
pub async fn open(
    store: &Store,
    caller: &Principal,
    req: pb::OpenDisputeRequest,
) -> Result<pb::OpenDisputeResponse, CreditError> {
    let (entry_id, reason) = open_dispute(&req).map_err(invalid)?;
    once(store, "OpenDispute", &caller.name, &req, async {
        let view = store.open_dispute(entry_id, &reason, caller).await?;
        Ok(pb::OpenDisputeResponse {
            dispute: Some(dispute_to_pb(&view)),
        })
    })
    .await
}

/// Resolves an open dispute, adjusted or rejected.
pub async fn resolve(
    store: &Store,
    principal: &str,
    req: pb::ResolveDisputeRequest,
) -> Result<pb::ResolveDisputeResponse, CreditError> {
    let input = ResolveInput::from_request(&req).map_err(invalid)?;
    let resolution = match input.adjustment {
        Some(money) => Resolution::Adjust(money),
        None => Resolution::Reject,
    };
    once(store, "ResolveDispute", principal, &req, async {
        let (view, adjustment) = store
            .resolve_dispute(input.dispute_id, resolution, input.note.clone(), principal)
            .await?;
        Ok(pb::ResolveDisputeResponse {
            dispute: Some(dispute_to_pb(&view)),
            adjustment: adjustment
                .map(|e| entry_to_pb(&e, storage::now()))
                .transpose()?,
        })
    })
    .await
}

/// A page of the disputes `caller` may read.
pub async fn list(
    store: &Store,
    caller: &Principal,
    req: &pb::ListDisputesRequest,
) -> Result<pb::ListDisputesResponse, CreditError> {
    let input = ListDisputesInput::from_request(req).map_err(invalid)?;
    let reader = reader(store, caller).await?;
    privacy::check_person_rows(&reader, input.participant_id.as_deref())?;
    let (open, outcome) = match input.status {
        None => (None, None),
        Some(pb::DisputeStatus::Open) => (Some(true), None),
        Some(pb::DisputeStatus::ResolvedAdjusted) => (Some(false), Some(RESOLVED_ADJUSTED)),
        Some(_) => (Some(false), Some(RESOLVED_REJECTED)),
    };
    let filter = DisputeFilter {
        open,
        outcome,
        participant_id: input.participant_id.clone(),
        deal_id: input.deal_id.clone(),
        visible_to: match reader {
            Reader::Person(scope) => Some(scope),
            _ => None,
        },
    };
    let mut disputes = store
        .list_disputes(&filter, input.after.as_deref(), input.page_size)
        .await?;
    let next_page_token = page::next_page(&mut disputes, input.page_size, input.fingerprint, |d| {
        d.dispute.dispute_id.clone()
    });
    Ok(pb::ListDisputesResponse {
        disputes: disputes.iter().map(dispute_to_pb).collect(),
        next_page_token,
    })
}
