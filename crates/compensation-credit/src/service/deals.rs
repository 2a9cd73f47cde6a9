//! RecordDealCredits, ReplaceDealSplits and GetDealCredits.

use contracts::pb::credit::v1 as pb;
use contracts::{Principal, wire};

use super::{invalid, once, reader};
use crate::convert::deal_to_pb;
use crate::error::CreditError;
use crate::model::deal::{DealInput, deal_id, parse_splits};
use crate::model::privacy;
use crate::model::splits::SplitChange;
use crate::store::Store;

/// Credits a won deal, or answers an identical replay with the recorded credits.
pub async fn record(
    store: &Store,
    principal: &str,
    req: pb::RecordDealCreditsRequest,
) -> Result<pb::RecordDealCreditsResponse, CreditError> {
    let input = DealInput::from_request(&req).map_err(invalid)?;
    once(store, "RecordDealCredits", principal, &req, async {
        let (view, created) = store.record_deal(&input, principal).await?;
        tracing::info!(deal_id = %view.deal.deal_id, created, "deal credits recorded");
        Ok(pb::RecordDealCreditsResponse {
            credits: Some(deal_to_pb(&view, storage::now())?),
            created,
        })
    })
    .await
}

/// Replaces a deal's whole split set.
pub async fn replace_splits(
    store: &Store,
    principal: &str,
    req: pb::ReplaceDealSplitsRequest,
) -> Result<pb::ReplaceDealSplitsResponse, CreditError> {
    let deal = deal_id("deal_id", &req.deal_id).map_err(invalid)?;
    let splits = parse_splits(
        "participants",
        &req.participants,
        req.cs_led_without_handoff,
    )
    .map_err(invalid)?;
    let reason = wire::text("reason", &req.reason, wire::MAX_NOTE_LEN).map_err(invalid)?;
    let change = SplitChange {
        splits: &splits,
        cs_led_without_handoff: req.cs_led_without_handoff,
        reason: &reason,
    };
    once(store, "ReplaceDealSplits", principal, &req, async {
        let view = store.replace_splits(deal, change, principal).await?;
        Ok(pb::ReplaceDealSplitsResponse {
            credits: Some(deal_to_pb(&view, storage::now())?),
        })
    })
    .await
}

/// A deal's credits as `caller` may read them: a person key sees its own (and its
/// team's) splits and entries only.
pub async fn get(
    store: &Store,
    caller: &Principal,
    req: &pb::GetDealCreditsRequest,
) -> Result<pb::GetDealCreditsResponse, CreditError> {
    let deal = deal_id("deal_id", &req.deal_id).map_err(invalid)?;
    let reader = reader(store, caller).await?;
    let mut view = store.deal(deal).await?;
    privacy::check_deal_read(
        &reader,
        &view.deal.deal_id,
        view.entries
            .iter()
            .map(|e| (e.participant_id.as_str(), e.team.as_deref()))
            .chain(
                view.splits
                    .iter()
                    .map(|s| (s.participant_id.as_str(), s.team.as_deref())),
            ),
    )?;
    view.entries
        .retain(|e| reader.sees(&e.participant_id, e.team.as_deref()));
    view.splits
        .retain(|s| reader.sees(&s.participant_id, s.team.as_deref()));
    Ok(pb::GetDealCreditsResponse {
        credits: Some(deal_to_pb(&view, storage::now())?),
    })
}
