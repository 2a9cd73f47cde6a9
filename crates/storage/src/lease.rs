//! Leases on queued work shared by replicas: outbox deliveries, the health
//! recompute queue.
//!
//! A worker claims a row in a short transaction of its own by writing a
//! lease end into it (`claimed_until`, `next_attempt_at`), commits, and only
//! then does the work — a network call, a recomputation — with no row lock
//! and no pool connection held meanwhile. While the work runs a
//! [`Renewal`] pushes the lease end forward every third of the lease, so a
//! live worker keeps its row however long the work takes, and a worker
//! killed mid-work releases it within one lease. The lease end it last wrote
//! is also its token: renewing and finishing are compare-and-sets on it, so
//! a worker whose lease was taken over writes nothing.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DbErr;
use tokio::sync::oneshot;

/// How often a lease of `lease` is renewed: a third of it (at least 50 ms),
/// so two renewals may fail before it lapses.
pub fn renewal_interval(lease: chrono::Duration) -> Duration {
    let third = lease.num_milliseconds().max(0) / 3;
    Duration::from_millis(u64::try_from(third).unwrap_or(0).max(50))
}

/// A lease kept alive in the background until [`Renewal::finish`].
pub struct Renewal {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Option<DateTime<Utc>>>,
}

impl Renewal {
    /// Renews a lease ending at `held` every `every`: `renew(held)` writes a
    /// later end if the lease is still `held` and returns it, or `None` once
    /// someone else holds the row. A failed renewal is retried at the next
    /// tick (the lease may still be ours). Dropping the renewal stops it.
    pub fn start<F, Fut>(every: Duration, held: DateTime<Utc>, mut renew: F) -> Self
    where
        F: FnMut(DateTime<Utc>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<DateTime<Utc>>, DbErr>> + Send + 'static,
    {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut held = held;
            loop {
                tokio::select! {
                    biased;
                    _ = &mut stopped => return Some(held),
                    () = tokio::time::sleep(every) => {}
                }
                match renew(held).await {
                    Ok(Some(next)) => held = next,
                    Ok(None) => {
                        tracing::warn!("a lease was lost while its work ran");
                        return None;
                    }
                    Err(err) => tracing::warn!(error = %err, "lease renewal failed; retrying"),
                }
            }
        });
        Self { stop, task }
    }

    /// Stops renewing; the lease end last written (the token to finish
    /// with), or `None` if the lease was lost.
    pub async fn finish(self) -> Option<DateTime<Utc>> {
        let _ = self.stop.send(());
        self.task.await.ok().flatten()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn renewals_come_three_times_a_lease() {
        assert_eq!(
            renewal_interval(chrono::Duration::seconds(5)),
            Duration::from_millis(1666)
        );
        assert_eq!(
            renewal_interval(chrono::Duration::milliseconds(30)),
            Duration::from_millis(50)
        );
        assert_eq!(
            renewal_interval(chrono::Duration::seconds(-1)),
            Duration::from_millis(50)
        );
    }

    #[tokio::test]
    async fn a_lease_is_renewed_until_finished_and_its_last_end_returned() {
        let start = Utc::now();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let renewal = Renewal::start(Duration::from_millis(20), start, move |held| {
            let calls = seen.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(Some(held + chrono::Duration::seconds(1)))
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let last = renewal.finish().await;
        let renewed = calls.load(Ordering::SeqCst);
        assert!(renewed >= 2, "{renewed} renewals");
        let renewed = i64::try_from(renewed).unwrap();
        assert_eq!(last, Some(start + chrono::Duration::seconds(renewed)));
        // Finished: no renewal after that.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            i64::try_from(calls.load(Ordering::SeqCst)).unwrap(),
            renewed
        );
    }

    #[tokio::test]
    async fn a_lost_lease_is_not_renewed_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let renewal = Renewal::start(Duration::from_millis(10), Utc::now(), move |_| {
            let calls = seen.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            }
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(renewal.finish().await, None);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_renewal_is_retried() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let start = Utc::now();
        let renewal = Renewal::start(Duration::from_millis(10), start, move |held| {
            let calls = seen.clone();
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(DbErr::Custom("connection reset".into()))
                } else {
                    Ok(Some(held + chrono::Duration::seconds(1)))
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        let last = renewal.finish().await;
        let renewed = i64::try_from(calls.load(Ordering::SeqCst)).unwrap() - 1;
        assert!(renewed >= 1);
        assert_eq!(last, Some(start + chrono::Duration::seconds(renewed)));
    }
}
