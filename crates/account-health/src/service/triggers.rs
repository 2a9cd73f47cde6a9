//! Expansion triggers: ListTriggers, GetTrigger, ConvertTrigger, CloseTrigger.

use contracts::page;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::TriggerId;

use super::{invalid, named, one_named, page_start, trigger_step_ids};
use crate::convert::trigger_to_pb;
use crate::error::HealthError;
use crate::model::optional_account_id;
use crate::model::triggers::{TriggerKind, TriggerStatus};
use crate::store::Store;

pub(crate) async fn list_triggers(
    store: &Store,
    req: &pb::ListTriggersRequest,
) -> Result<pb::ListTriggersResponse, HealthError> {
    let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
    let account = optional_account_id("account_id", &req.account_id).map_err(HealthError::from)?;
    wire::filter_values("statuses", &req.statuses).map_err(HealthError::from)?;
    let mut statuses = Vec::new();
    for (i, s) in req.statuses.iter().enumerate() {
        let field = format!("statuses[{i}]");
        statuses.push(
            TriggerStatus::from_pb(
                wire::known_enum::<pb::TriggerStatus>(&field, *s).map_err(HealthError::from)?,
            )
            .ok_or_else(|| invalid(&field, "is not a status"))?,
        );
    }
    let kind =
        match wire::known_enum::<pb::TriggerKind>("kind", req.kind).map_err(HealthError::from)? {
            pb::TriggerKind::Unspecified => None,
            other => TriggerKind::from_pb(other),
        };
    let filter = page::fingerprint(&[
        &req.account_id,
        &format!("{:?}", req.statuses),
        &req.kind.to_string(),
    ]);
    let before = page_start(&req.page_token, filter)?;
    let mut rows = store
        .list_triggers(account, &statuses, kind, before.as_deref(), limit + 1)
        .await?;
    let next_page_token = page::next_page(&mut rows, limit, filter, |t| t.id.clone());
    let mut triggers: Vec<pb::Trigger> = rows.into_iter().map(trigger_to_pb).collect();
    named(store, &mut triggers).await?;
    Ok(pb::ListTriggersResponse {
        triggers,
        next_page_token,
    })
}

pub(crate) async fn get_trigger(
    store: &Store,
    req: &pb::GetTriggerRequest,
) -> Result<pb::GetTriggerResponse, HealthError> {
    let id = TriggerId::parse(&req.trigger_id).map_err(|e| invalid("trigger_id", e))?;
    let t = store
        .trigger(id)
        .await?
        .ok_or_else(|| HealthError::TriggerNotFound(id.to_string()))?;
    let mut trigger = trigger_to_pb(t);
    named(store, std::slice::from_mut(&mut trigger)).await?;
    Ok(pb::GetTriggerResponse {
        trigger: Some(trigger),
    })
}

pub(crate) async fn convert_trigger(
    store: &Store,
    _principal: String,
    req: &pb::ConvertTriggerRequest,
) -> Result<pb::ConvertTriggerResponse, HealthError> {
    let (id, opportunity) = trigger_step_ids(&req.trigger_id, &req.opportunity_id)?;
    let opportunity = opportunity.ok_or_else(|| invalid("opportunity_id", "is required"))?;
    let t = store.convert_trigger(id, opportunity).await?;
    Ok(pb::ConvertTriggerResponse {
        trigger: Some(one_named(store, trigger_to_pb(t)).await?),
    })
}

pub(crate) async fn close_trigger(
    store: &Store,
    _principal: String,
    req: &pb::CloseTriggerRequest,
) -> Result<pb::CloseTriggerResponse, HealthError> {
    let (id, opportunity) = trigger_step_ids(&req.trigger_id, &req.opportunity_id)?;
    let t = store.close_trigger(id, opportunity).await?;
    Ok(pb::CloseTriggerResponse {
        trigger: Some(one_named(store, trigger_to_pb(t)).await?),
    })
}
