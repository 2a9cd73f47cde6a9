//! Health history over months, filled in from past signals: the rows
//! `model::history` chooses, scored by `model::backfill` as of each past
//! month end and written with that time. Runs after every recomputation,
//! where one indexed look-up of the account's first history point (and, only
//! when a month end lies before it, one for a signal a measure would see
//! there) is all it costs an account whose history already covers its
//! signals.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, Set, TransactionTrait,
};

use super::Store;
use super::health::e2;
use super::portfolio::SubscriptionStatus;
use super::signals::SignalRange;
use crate::entity::{health_score, signal, subscription};
use crate::error::HealthError;
use crate::model::backfill::{PastPoint, PastSignals, PastTerm, StoredSignal, past_points};
use crate::model::history::{BACKFILL_MONTHS, month_ends, with_signals};
use crate::model::scorecard::Scorecard;
use crate::model::signal::SignalKind;

impl Store {
    /// Writes the account's health at each past month end that
    /// [`crate::model::history`] says is missing, in one transaction.
    pub(super) async fn backfill_history(
        &self,
        account_id: &str,
        card: &Scorecard,
        now: DateTime<Utc>,
    ) -> Result<usize, HealthError> {
        let first = self.first_history_point(account_id).await?;
        let candidates = month_ends(now, first, BACKFILL_MONTHS);
        let (Some(oldest), Some(newest)) = (candidates.first(), candidates.last()) else {
            return Ok(0);
        };
        let reach = SignalReach {
            account_id,
            card,
            oldest: *oldest,
            newest: *newest,
        };
        // The common case: no signal a measure would see at those month ends.
        if !reach.any_seen(&self.db).await? {
            return Ok(0);
        }
        let signals = reach.load(&self.db).await?;
        let chosen = with_signals(&candidates, card, &signals.all_points());
        if chosen.is_empty() {
            return Ok(0);
        }
        let terms = self.past_terms(account_id).await?;

        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let existing = existing_points(&txn, account_id, &chosen).await?;
        let points = past_points(account_id, card, &chosen, &signals, &terms, &existing);
        for point in &points {
            insert_point(&txn, account_id, card.version, point).await?;
        }
        txn.commit().await?;
        let written = points.len();
        if written > 0 {
            tracing::info!(%account_id, points = written, "health history filled in from past signals");
        }
        Ok(written)
    }

    /// When the account's first history point was computed, if it has one.
    async fn first_history_point(
        &self,
        account_id: &str,
    ) -> Result<Option<DateTime<Utc>>, HealthError> {
        Ok(health_score::Entity::find()
            .select_only()
            .column(health_score::Column::ComputedAt)
            .filter(health_score::Column::AccountId.eq(account_id))
            .filter(health_score::Column::ProductId.eq(""))
            .order_by_asc(health_score::Column::ComputedAt)
            .into_tuple()
            .one(&self.db)
            .await?)
    }

    /// The account's subscriptions as terms: active ones from their start on,
    /// cancelled ones until their cancel date; others were never in force.
    async fn past_terms(&self, account_id: &str) -> Result<Vec<PastTerm>, HealthError> {
        let subs = subscription::Entity::find()
            .filter(subscription::Column::AccountId.eq(account_id))
            .all(&self.db)
            .await?;
        Ok(subs
            .into_iter()
            .filter_map(|s| {
                let ends = match s.status {
                    SubscriptionStatus::Active => None,
                    SubscriptionStatus::Cancelled => Some(s.cancel_date?),
                };
                Some(PastTerm {
                    product_id: s.product_id,
                    start_date: s.start_date,
                    ends,
                })
            })
            .collect())
    }
}

/// The account's signals a measure could see at month ends from `oldest`
/// to `newest`.
struct SignalReach<'a> {
    account_id: &'a str,
    card: &'a Scorecard,
    oldest: DateTime<Utc>,
    newest: DateTime<Utc>,
}

impl SignalReach<'_> {
    fn in_reach(&self, backend: DatabaseBackend) -> Select<signal::Entity> {
        SignalRange {
            accounts: vec![self.account_id],
            kind: None,
            after: Some(self.oldest - self.card.longest_window()),
            until: Some(self.newest),
        }
        .select(backend)
    }

    /// Whether any measure sees a signal at a month end: one look-up, by
    /// the (account, kind, time) index.
    async fn any_seen(&self, db: &impl ConnectionTrait) -> Result<bool, HealthError> {
        let mut seen = Condition::any();
        for m in &self.card.measures {
            let since = self.oldest - Duration::days(i64::from(m.window_days));
            seen = seen.add(
                Condition::all()
                    .add(signal::Column::Kind.eq(m.kind.as_str()))
                    .add(signal::Column::OccurredAt.gt(since)),
            );
        }
        let any: Option<i64> = self
            .in_reach(db.get_database_backend())
            .select_only()
            .column(signal::Column::Seq)
            .filter(seen)
            .into_tuple()
            .one(db)
            .await?;
        Ok(any.is_some())
    }

    /// The signals of the measured kinds and the CSM sentiments in reach.
    async fn load(&self, db: &impl ConnectionTrait) -> Result<PastSignals, HealthError> {
        let scored: BTreeSet<&str> = self.card.measures.iter().map(|m| m.kind.as_str()).collect();
        let sentiment = SignalKind::CsmSentiment.as_str();
        let rows = self
            .in_reach(db.get_database_backend())
            .filter(signal::Column::Kind.is_in(scored.iter().copied().chain([sentiment])))
            .all(db)
            .await?;
        Ok(PastSignals::sort(
            &scored,
            rows.iter().map(|r| StoredSignal {
                kind: &r.kind,
                product_id: r.product_id.as_deref(),
                value_e4: r.value_e4,
                limit_e4: r.limit_e4,
                occurred_at: r.occurred_at,
            }),
        ))
    }
}

/// Points already there at the chosen instants (a product's, say): never a
/// second one.
async fn existing_points(
    txn: &impl ConnectionTrait,
    account_id: &str,
    chosen: &[DateTime<Utc>],
) -> Result<HashSet<(String, DateTime<Utc>)>, HealthError> {
    Ok(health_score::Entity::find()
        .select_only()
        .column(health_score::Column::ProductId)
        .column(health_score::Column::ComputedAt)
        .filter(health_score::Column::AccountId.eq(account_id))
        .filter(health_score::Column::ComputedAt.is_in(chosen.iter().copied()))
        .into_tuple()
        .all(txn)
        .await?
        .into_iter()
        .collect())
}

/// Writes one past point; one already written under its id is left alone.
async fn insert_point(
    txn: &impl ConnectionTrait,
    account_id: &str,
    scorecard_version: i32,
    point: &PastPoint,
) -> Result<(), HealthError> {
    let computed = &point.computed;
    let breakdown = serde_json::to_string(&computed.breakdown)
        .map_err(|e| HealthError::Corrupt(e.to_string()))?;
    health_score::Entity::insert(health_score::ActiveModel {
        id: Set(point.id.clone()),
        account_id: Set(account_id.to_owned()),
        product_id: Set(point.product_id.clone()),
        score_e2: Set(computed.score.map(e2)),
        band: Set(computed.band.map(|b| b.as_str().to_owned())),
        coverage_e2: Set(e2(computed.coverage)),
        breakdown: Set(breakdown),
        csm_sentiment: Set(point.csm_sentiment.clone()),
        scorecard_version: Set(scorecard_version),
        computed_at: Set(point.at),
    })
    .on_conflict(
        OnConflict::column(health_score::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}
