//! RecordSignals: a batch of usage and engagement signals.

use contracts::pb::health::v1 as pb;

use crate::error::HealthError;
use crate::model::signal::batch_from_pb;
use crate::store::Store;

pub(crate) async fn record_signals(
    store: &Store,
    _principal: String,
    req: &pb::RecordSignalsRequest,
) -> Result<pb::RecordSignalsResponse, HealthError> {
    let batch =
        batch_from_pb("signals", &req.signals, storage::now()).map_err(HealthError::from)?;
    let done = store.record_signals("signals", &batch).await?;
    Ok(pb::RecordSignalsResponse {
        accepted: i64::try_from(done.accepted).unwrap_or(i64::MAX),
        duplicates: i64::try_from(done.duplicates).unwrap_or(i64::MAX),
    })
}
