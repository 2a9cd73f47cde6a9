//! Health history over months, filled in from past signals: the rows
//! `model::history` chooses, scored as of each past month end and written
//! with that time. Runs after every recomputation, where one indexed look-up
//! of the account's first history point (and, only when a month end lies
//! before it, one for a signal a measure would see there) is all it costs an
//! account whose history already covers its signals.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use sha2::{Digest, Sha256};

use super::Store;
use super::health::e2;
use super::portfolio::{ACTIVE, CANCELLED};
use crate::entity::{health_score, signal, subscription};
use crate::error::HealthError;
use crate::model::history::{BACKFILL_MONTHS, month_ends, scores_at, with_signals};
use crate::model::scorecard::{Scorecard, SignalPoint};
use crate::model::signal::{SignalKind, unscale};

/// The id of the backfilled point of `product_id` (`""`: the account) at
/// `at`: a UUIDv7 of that instant whose other bits come from the account,
/// product and instant, so two recomputations racing on PostgreSQL write one
/// row, not two.
fn point_id(account_id: &str, product_id: &str, at: DateTime<Utc>) -> String {
    let digest = Sha256::digest(format!(
        "{account_id}\u{1}{product_id}\u{1}{}",
        at.timestamp_micros()
    ));
    let mut bytes = [0u8; 10];
    bytes.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes)
        .into_uuid()
        .to_string()
}

impl Store {
    /// Writes the account's health at each past month end that
    /// [`crate::model::history`] says is missing, in one transaction.
    pub(super) async fn backfill_history(
        &self,
        account_id: &str,
        card: &Scorecard,
        now: DateTime<Utc>,
    ) -> Result<usize, HealthError> {
        let first: Option<DateTime<Utc>> = health_score::Entity::find()
            .select_only()
            .column(health_score::Column::ComputedAt)
            .filter(health_score::Column::AccountId.eq(account_id))
            .filter(health_score::Column::ProductId.eq(""))
            .order_by_asc(health_score::Column::ComputedAt)
            .into_tuple()
            .one(&self.db)
            .await?;
        let candidates = month_ends(now, first, BACKFILL_MONTHS);
        let (Some(oldest), Some(newest)) = (candidates.first(), candidates.last()) else {
            return Ok(0);
        };
        let window = card.longest_window();
        let scored: BTreeSet<&str> = card.measures.iter().map(|m| m.kind.as_str()).collect();
        let in_reach = || {
            signal::Entity::find()
                .filter(signal::Column::AccountId.eq(account_id))
                .filter(signal::Column::OccurredAt.gt(*oldest - window))
                .filter(signal::Column::OccurredAt.lte(*newest))
        };
        // The common case: no signal a measure would see at those month ends.
        // One look-up, by the (account, kind, time) index.
        let mut seen = Condition::any();
        for m in &card.measures {
            let since = *oldest - Duration::days(i64::from(m.window_days));
            seen = seen.add(
                Condition::all()
                    .add(signal::Column::Kind.eq(m.kind.as_str()))
                    .add(signal::Column::OccurredAt.gt(since)),
            );
        }
        let any: Option<i64> = in_reach()
            .select_only()
            .column(signal::Column::Seq)
            .filter(seen)
            .into_tuple()
            .one(&self.db)
            .await?;
        if any.is_none() {
            return Ok(0);
        }
        let sentiment = SignalKind::CsmSentiment.as_str();
        let rows = in_reach()
            .filter(signal::Column::Kind.is_in(scored.iter().copied().chain([sentiment])))
            .all(&self.db)
            .await?;
        let mut points: Vec<(Option<String>, SignalPoint)> = Vec::with_capacity(rows.len());
        let mut sentiments: Vec<(DateTime<Utc>, String)> = Vec::new();
        for r in &rows {
            let Ok(kind) = r.kind.parse::<SignalKind>() else {
                continue;
            };
            if kind == SignalKind::CsmSentiment {
                sentiments.push((r.occurred_at, unscale(r.value_e4).normalize().to_string()));
            }
            if scored.contains(kind.as_str()) {
                points.push((
                    r.product_id.clone(),
                    SignalPoint {
                        kind,
                        value: unscale(r.value_e4),
                        limit: r.limit_e4.map(unscale),
                        occurred_at: r.occurred_at,
                    },
                ));
            }
        }
        let all: Vec<SignalPoint> = points.iter().map(|(_, p)| p.clone()).collect();
        let chosen = with_signals(&candidates, card, &all);
        if chosen.is_empty() {
            return Ok(0);
        }
        let subs = subscription::Entity::find()
            .filter(subscription::Column::AccountId.eq(account_id))
            .all(&self.db)
            .await?;

        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        // Points already there (a product's, say): never a second one.
        let existing: HashSet<(String, DateTime<Utc>)> = health_score::Entity::find()
            .select_only()
            .column(health_score::Column::ProductId)
            .column(health_score::Column::ComputedAt)
            .filter(health_score::Column::AccountId.eq(account_id))
            .filter(health_score::Column::ComputedAt.is_in(chosen.iter().copied()))
            .into_tuple()
            .all(&txn)
            .await?
            .into_iter()
            .collect();
        let mut written = 0;
        for at in &chosen {
            let day = at.date_naive();
            let in_force: BTreeSet<String> = subs
                .iter()
                .filter(|s| {
                    s.start_date <= day
                        && (s.status == ACTIVE
                            || (s.status == CANCELLED && s.cancel_date.is_some_and(|d| d > day)))
                })
                .map(|s| s.product_id.clone())
                .collect();
            let sentiment = sentiments
                .iter()
                .filter(|(t, _)| *t > *at - window && *t <= *at)
                .max_by_key(|(t, _)| *t)
                .map(|(_, v)| v.clone());
            for (product_id, computed) in scores_at(card, &points, &in_force, *at) {
                // A product with no data then has no past point (its
                // history starts when it has one).
                if computed.score.is_none() || existing.contains(&(product_id.clone(), *at)) {
                    continue;
                }
                let breakdown = serde_json::to_string(&computed.breakdown)
                    .map_err(|e| HealthError::Corrupt(e.to_string()))?;
                health_score::Entity::insert(health_score::ActiveModel {
                    id: Set(point_id(account_id, &product_id, *at)),
                    account_id: Set(account_id.to_owned()),
                    product_id: Set(product_id),
                    score_e2: Set(computed.score.map(e2)),
                    band: Set(computed.band.map(|b| b.as_str().to_owned())),
                    coverage_e2: Set(e2(computed.coverage)),
                    breakdown: Set(breakdown),
                    csm_sentiment: Set(sentiment.clone()),
                    scorecard_version: Set(card.version),
                    computed_at: Set(*at),
                })
                .on_conflict(
                    OnConflict::column(health_score::Column::Id)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
                written += 1;
            }
        }
        txn.commit().await?;
        if written > 0 {
            tracing::info!(%account_id, points = written, "health history filled in from past signals");
        }
        Ok(written)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_backfilled_point_has_one_id_per_account_product_and_instant() {
        let at = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let a = "01937a9e-5c3e-7d2a-9a51-6b3f2c1d0e61";
        let id = point_id(a, "", at);
        assert_eq!(id, point_id(a, "", at));
        assert_ne!(id, point_id(a, "p", at));
        assert_ne!(id, point_id(a, "", at + chrono::Duration::days(30)));
        // A UUIDv7 of that instant, so id order follows time as elsewhere.
        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        let (secs, _) = uuid.get_timestamp().unwrap().to_unix();
        assert_eq!(i64::try_from(secs).unwrap(), at.timestamp());
    }
}
