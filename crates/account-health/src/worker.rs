//! The health service's background work: recomputing dirty accounts off
//! the ingestion path, and the daily sweep.

use chrono::NaiveDate;

use crate::store::Store;

/// Indexes newly arrived signals by account (on SQLite, see
/// [`Store::index_signals`]) and recomputes health and triggers of accounts
/// whose signals or contracts changed, until the process stops; each account is claimed first, so
/// replicas running this loop share the queue instead of recomputing one
/// account twice. Also marks every account once a day so time-based
/// triggers (renewals, fiscal years) fire as the calendar moves; the day is
/// claimed in the database, so replicas and restarts don't sweep it again.
pub fn spawn(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_sweep: Option<NaiveDate> = None;
        loop {
            let today = storage::now().date_naive();
            if last_sweep != Some(today) {
                let swept = match store.swept_on(today).await {
                    Ok(true) => Ok(()),
                    Ok(false) => match store.mark_all_dirty().await {
                        Ok(()) => store.record_sweep(today).await,
                        Err(err) => Err(err),
                    },
                    Err(err) => Err(err),
                };
                match swept {
                    Ok(()) => last_sweep = Some(today),
                    Err(err) => tracing::warn!(error = %err, "daily health sweep failed"),
                }
            }
            // Signals first, so recomputations find them by the index.
            if let Err(err) = store.index_signals().await {
                tracing::warn!(error = %err, "indexing signals failed");
            }
            let busy = match store.refresh_dirty(true).await {
                Ok(n) => n > 0,
                Err(err) => {
                    tracing::warn!(error = %err, "health refresh failed");
                    false
                }
            };
            if !busy {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    })
}
