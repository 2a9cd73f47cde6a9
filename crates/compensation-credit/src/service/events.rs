//! Which credit events reach a reader of WatchEvents, and what of them.

use contracts::pb::common::v1::Event;
use prost_types::value::Kind;

use crate::error::CreditError;
use crate::model::privacy::Reader;
use crate::store::Store;

/// A credit event as it may reach `reader`, or `None`. Policy and directory
/// events reach everyone (both are readable by every role); any other reaches a
/// person key only when it touches one of its rows, and a viewer never. What a
/// person key gets names only its own entries: other entry ids are left out, and
/// deal-wide sums (a clawback's recovered and forfeited totals, which include
/// colleagues' shares) are removed.
pub async fn visible_event(
    store: &Store,
    reader: &Reader,
    mut event: Event,
) -> Result<Option<Event>, CreditError> {
    if matches!(reader, Reader::Everything)
        || event.event_type.starts_with("credit.policy.")
        || event.event_type.starts_with("credit.person.")
    {
        return Ok(Some(event));
    }
    if matches!(reader, Reader::TotalsOnly) {
        return Ok(None);
    }
    let Some(data) = event.data.as_mut() else {
        return Ok(None);
    };
    let string = |v: &prost_types::Value| match &v.kind {
        Some(Kind::StringValue(s)) => Some(s.clone()),
        _ => None,
    };
    let mut ids = Vec::new();
    let mut named = Vec::new();
    for (key, value) in &data.fields {
        match (key.as_str(), &value.kind) {
            ("entry_id" | "adjustment_entry_id", Some(Kind::StringValue(id))) => {
                ids.push(id.clone());
            }
            ("entry_ids", Some(Kind::ListValue(list))) => {
                ids.extend(list.values.iter().filter_map(string));
            }
            ("participant_id", Some(Kind::StringValue(p))) => named.push(p.clone()),
            _ => {}
        }
    }
    let credited = store.credited(&ids).await?;
    let sees = |id: &str| {
        credited
            .get(id)
            .is_some_and(|(p, t)| reader.sees(p, t.as_deref()))
    };
    let visible = ids.iter().any(|id| sees(id)) || named.iter().any(|p| reader.sees(p, None));
    if !visible {
        return Ok(None);
    }
    if let Some(Kind::ListValue(list)) = data
        .fields
        .get_mut("entry_ids")
        .and_then(|v| v.kind.as_mut())
    {
        list.values
            .retain(|v| string(v).is_some_and(|id| sees(&id)));
    }
    data.fields.remove("recovered");
    data.fields.remove("forfeited");
    Ok(Some(event))
}
