//! Health scores: computing them from signals with the active scorecard,
//! keeping their history, overrides, and the dirty-account queue that keeps
//! computation off the ingestion path.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use domain::{AccountId, HealthBand, ProductId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use storage::events::NewEvent;

use super::Store;
use super::portfolio::SubscriptionStatus;
use super::signals::SignalRange;
use crate::entity::{
    account, dirty, health_current, health_override, health_score, product, scorecard, subscription,
};
use crate::error::HealthError;
use crate::model::recompute::{Recompute, RecomputePlan, plan_recompute, score_account};
use crate::model::reconcile::with_suppression;
use crate::model::scorecard::{DEFAULT_SCORECARD_ID, Scorecard};

pub type HealthRow = health_current::Model;

/// One score (account-level or account-product) with what it is compared to.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreView {
    pub row: HealthRow,
    /// Score before the latest change, ×100.
    pub previous_e2: Option<i64>,
    /// Score in force 30 days ago, ×100.
    pub month_ago_e2: Option<i64>,
    pub override_: Option<health_override::Model>,
}

impl ScoreView {
    /// The score that counts: the override's while one is active.
    pub fn effective_e2(&self) -> Option<i64> {
        self.override_
            .as_ref()
            .map(|o| i64::from(o.score) * 100)
            .or(self.row.score_e2)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccountHealthView {
    pub overall: ScoreView,
    pub products: Vec<ScoreView>,
    pub scorecard: Scorecard,
    /// When this view stops being true with no write in between: an
    /// override in it expires, or a month-ago figure moves on to a newer
    /// score. `None`: only a write changes it.
    pub changes_at: Option<DateTime<Utc>>,
    /// The names of the account and of its scored products.
    pub names: super::Names,
}

pub(super) use crate::model::recompute::e2;

/// Accounts recomputed per pass of the background worker.
const REFRESH_BATCH: u64 = 200;
/// How long an account must go unmarked before the background worker
/// recomputes it.
const SETTLE: Duration = Duration::seconds(1);
/// How long a claimed dirty account is ours unless renewed: what a replica
/// killed mid-recomputation costs before another recomputes the account.
const CLAIM_LEASE: Duration = Duration::seconds(3);
/// How long a read waits for another recomputation of the account it
/// reads (a replica's, or this process's worker's) before serving the last
/// score: long enough for a dead replica's lease to lapse.
const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(8);

/// A dirty account this replica claimed.
struct DirtyClaim {
    /// The marks seen by the claim: the mark is cleared only if no other
    /// arrived since.
    generation: i64,
    until: DateTime<Utc>,
}

impl Store {
    /// The scorecard in force: the latest version of `default`, or the
    /// built-in one until a scorecard is written.
    pub async fn active_scorecard(&self) -> Result<Scorecard, HealthError> {
        let row = scorecard::Entity::find()
            .filter(scorecard::Column::ScorecardId.eq(DEFAULT_SCORECARD_ID))
            .order_by_desc(scorecard::Column::Version)
            .one(&self.db)
            .await?;
        match row {
            None => Ok(Scorecard::built_in()),
            Some(row) => card_of(&row),
        }
    }

    /// Version `version` of the scorecard: from memory once read (versions
    /// are immutable), else from the database; 0 is the built-in one.
    pub async fn scorecard_version(&self, version: i32) -> Result<Scorecard, HealthError> {
        if let Some(card) = self
            .cards
            .lock()
            .ok()
            .and_then(|cards| cards.get(&version).cloned())
        {
            return Ok(card);
        }
        let card = if version == 0 {
            Scorecard::built_in()
        } else {
            let row = scorecard::Entity::find()
                .filter(scorecard::Column::ScorecardId.eq(DEFAULT_SCORECARD_ID))
                .filter(scorecard::Column::Version.eq(version))
                .one(&self.db)
                .await?;
            match row {
                Some(row) => card_of(&row)?,
                // Not stored (a score computed elsewhere): the active one.
                None => return self.active_scorecard().await,
            }
        };
        if let Ok(mut cards) = self.cards.lock() {
            cards.insert(version, card.clone());
        }
        Ok(card)
    }

    /// The version in force: the latest stored version of `default`, 0 for
    /// the built-in one.
    async fn version_in_force(&self) -> Result<i32, HealthError> {
        let latest = scorecard::Entity::find()
            .filter(scorecard::Column::ScorecardId.eq(DEFAULT_SCORECARD_ID))
            .order_by_desc(scorecard::Column::Version)
            .one(&self.db)
            .await?;
        Ok(latest.map_or(0, |r| r.version))
    }

    /// Version `version` of scorecard `id` (0: its latest) and whether it is
    /// the one scores are computed with now.
    pub async fn scorecard(
        &self,
        id: &str,
        version: i32,
    ) -> Result<(Scorecard, bool), HealthError> {
        let mut query = scorecard::Entity::find().filter(scorecard::Column::ScorecardId.eq(id));
        if version > 0 {
            query = query.filter(scorecard::Column::Version.eq(version));
        }
        let row = query
            .order_by_desc(scorecard::Column::Version)
            .one(&self.db)
            .await?;
        let is_default = id == DEFAULT_SCORECARD_ID;
        let card = match row {
            Some(row) => card_of(&row)?,
            None if is_default && version == 0 => Scorecard::built_in(),
            None => {
                let what = if version > 0 {
                    format!("{id} version {version}")
                } else {
                    id.to_owned()
                };
                return Err(contracts::ApiError::not_found("scorecard", what).into());
            }
        };
        let in_force = is_default && card.version == self.version_in_force().await?;
        Ok((card, in_force))
    }

    /// Versions of scorecard `id` older than `before`, newest first (for
    /// `default`, the built-in version 0 last), and the version in force.
    pub async fn scorecard_versions(
        &self,
        id: &str,
        before: Option<i32>,
        limit: u64,
    ) -> Result<(Vec<Scorecard>, i32), HealthError> {
        let mut query = scorecard::Entity::find().filter(scorecard::Column::ScorecardId.eq(id));
        if let Some(before) = before {
            query = query.filter(scorecard::Column::Version.lt(before));
        }
        let rows = query
            .order_by_desc(scorecard::Column::Version)
            .limit(limit)
            .all(&self.db)
            .await?;
        let mut cards = rows.iter().map(card_of).collect::<Result<Vec<_>, _>>()?;
        let room = u64::try_from(cards.len()).unwrap_or(u64::MAX) < limit;
        if id == DEFAULT_SCORECARD_ID && room && before.is_none_or(|b| b > 0) {
            cards.push(Scorecard::built_in());
        }
        Ok((cards, self.version_in_force().await?))
    }

    /// Appends a scorecard version; every account is recomputed under it.
    pub async fn add_scorecard(
        &self,
        card: &Scorecard,
        principal: &str,
    ) -> Result<Scorecard, HealthError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let latest = scorecard::Entity::find()
            .filter(scorecard::Column::ScorecardId.eq(card.scorecard_id.as_str()))
            .order_by_desc(scorecard::Column::Version)
            .one(&txn)
            .await?;
        let mut stored = card.clone();
        stored.version = latest.map_or(1, |r| r.version + 1);
        scorecard::Entity::insert(scorecard::ActiveModel {
            scorecard_id: Set(stored.scorecard_id.clone()),
            version: Set(stored.version),
            definition: Set(
                serde_json::to_string(&stored).map_err(|e| HealthError::Corrupt(e.to_string()))?
            ),
            created_at: Set(storage::now()),
            created_by: Set(principal.to_owned()),
        })
        .exec_without_returning(&txn)
        .await?;
        if stored.scorecard_id == DEFAULT_SCORECARD_ID {
            let ids: Vec<String> = account::Entity::find()
                .select_only()
                .column(account::Column::Id)
                .into_tuple()
                .all(&txn)
                .await?;
            for chunk in ids.chunks(1000) {
                super::mark_dirty(&txn, chunk).await?;
            }
        }
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "health.scorecard.version_added".into(),
                    subject_id: stored.scorecard_id.clone(),
                    data: serde_json::json!({"scorecard_id": stored.scorecard_id, "version": stored.version, "principal": principal}),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok(stored)
    }

    /// Whether `day`'s sweep already ran (in this process, a replica, or
    /// before a restart).
    pub async fn swept_on(&self, day: chrono::NaiveDate) -> Result<bool, HealthError> {
        use sea_orm::sea_query::{Alias, Query};
        let mut select = Query::select();
        select
            .expr(Expr::val(1))
            .from(Alias::new("health_sweeps"))
            .and_where(Expr::col(Alias::new("day")).eq(day));
        Ok(self.db.query_one(&select).await?.is_some())
    }

    /// Records that `day`'s sweep ran (after its marks are stored, so a
    /// failed sweep is tried again; two replicas racing only mark twice,
    /// which the queue absorbs).
    pub async fn record_sweep(&self, day: chrono::NaiveDate) -> Result<(), HealthError> {
        use sea_orm::sea_query::{Alias, Query};
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("health_sweeps"))
            .columns([Alias::new("day"), Alias::new("swept_at")])
            .values([day.into(), storage::now().into()])
            .map_err(|e| HealthError::from(sea_orm::DbErr::Custom(e.to_string())))?
            .on_conflict(
                OnConflict::column(Alias::new("day"))
                    .do_nothing()
                    .to_owned(),
            );
        let _write = self.writer().enter().await;
        self.db.execute(&insert).await?;
        Ok(())
    }

    /// Queues every account with a subscription for recomputation (the
    /// daily sweep that lets time-based triggers follow the calendar).
    pub async fn mark_all_dirty(&self) -> Result<(), HealthError> {
        let ids: Vec<String> = subscription::Entity::find()
            .select_only()
            .column(subscription::Column::AccountId)
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await?;
        for chunk in ids.chunks(1000) {
            // Gated like every write: on SQLite an ungated commit between a
            // recomputation's read and write fails it with "database is locked".
            let _write = self.writer.enter().await;
            super::mark_dirty(&self.db, chunk).await?;
        }
        Ok(())
    }

    /// Recomputes accounts waiting in the dirty queue that no replica is
    /// recomputing; returns how many it found.
    /// With `settle`, accounts that received signals in this process within
    /// [`SETTLE`] wait: an account under a stream of batches is recomputed
    /// once the burst pauses, not once per batch (a read of it still
    /// recomputes at once).
    pub async fn refresh_dirty(&self, settle: bool) -> Result<usize, HealthError> {
        let ids: Vec<String> = dirty::Entity::find()
            .select_only()
            .column(dirty::Column::AccountId)
            .filter(claimable(storage::now()))
            .order_by_asc(dirty::Column::MarkedAt)
            .limit(REFRESH_BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        let ids = if settle { self.settled(ids) } else { ids };
        for id in &ids {
            if let Err(err) = self.recompute(id).await {
                // Left dirty: the next pass retries it.
                tracing::warn!(account_id = %id, error = %err, "health recompute failed");
            }
        }
        Ok(ids.len())
    }

    /// Notes accounts that just received signals.
    pub(crate) fn touched(&self, accounts: &[String]) {
        let now = std::time::Instant::now();
        if let Ok(mut recent) = self.recent.lock() {
            for a in accounts {
                recent.insert(a.clone(), now);
            }
        }
    }

    /// The ids not touched within [`SETTLE`]; forgets older touches.
    fn settled(&self, ids: Vec<String>) -> Vec<String> {
        let Ok(mut recent) = self.recent.lock() else {
            return ids;
        };
        let settle = SETTLE.to_std().unwrap_or_default();
        recent.retain(|_, at| at.elapsed() < settle);
        ids.into_iter()
            .filter(|id| !recent.contains_key(id))
            .collect()
    }

    /// Recomputes every waiting account, so a list reflects all signals:
    /// the unclaimed ones here, and those another recomputation holds are
    /// waited for.
    pub async fn refresh_all_dirty(&self) -> Result<(), HealthError> {
        // Bounded: under a constant stream of signals the list goes on
        // being served from what is computed.
        for _ in 0..50 {
            if self.refresh_dirty(false).await?
                < usize::try_from(REFRESH_BATCH).unwrap_or(usize::MAX)
            {
                break;
            }
        }
        let claimed: Vec<String> = dirty::Entity::find()
            .select_only()
            .column(dirty::Column::AccountId)
            .filter(dirty::Column::ClaimedUntil.gt(storage::now()))
            .order_by_asc(dirty::Column::MarkedAt)
            .limit(REFRESH_BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        for id in &claimed {
            self.recompute_or_keep_last(id).await;
        }
        Ok(())
    }

    /// Recomputes `account_id` now if signals or contracts changed since
    /// its last computation.
    pub(super) async fn ensure_fresh(&self, account_id: &str) -> Result<(), HealthError> {
        if self.is_dirty(account_id).await? {
            self.recompute_or_keep_last(account_id).await;
        }
        Ok(())
    }

    async fn is_dirty(&self, account_id: &str) -> Result<bool, HealthError> {
        Ok(dirty::Entity::find_by_id(account_id.to_owned())
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Recomputes a stale account before it is read: itself, or by waiting
    /// for the recomputation that holds its claim; if that fails or takes
    /// longer than [`READ_WAIT`], the last score is served (and the account
    /// stays queued).
    async fn recompute_or_keep_last(&self, account_id: &str) {
        let deadline = std::time::Instant::now() + READ_WAIT;
        loop {
            match self.recompute(account_id).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(%account_id, error = %err, "health recompute failed; serving the last score");
                    return;
                }
            }
            // Not ours to claim: recomputed meanwhile, or being recomputed.
            if self.db.in_mutation() {
                // A mutation holds the write gate, which the recomputation
                // holding the claim needs to finish: waiting for it would be
                // waiting for ourselves. The account is recomputed in the
                // mutation's transaction instead; the mark stays for the
                // claim's holder, whose recomputation then changes nothing.
                let recomputed = match self.is_dirty(account_id).await {
                    Ok(true) => self.recompute_now(account_id).await,
                    other => other.map(|_| ()),
                };
                if let Err(err) = recomputed {
                    tracing::warn!(%account_id, error = %err, "health recompute failed; serving the last score");
                }
                return;
            }
            match self.is_dirty(account_id).await {
                Ok(false) => return,
                Ok(true) if std::time::Instant::now() < deadline => {}
                Ok(true) => {
                    tracing::warn!(%account_id, "health recompute still running elsewhere; serving the last score");
                    return;
                }
                Err(err) => {
                    tracing::warn!(%account_id, error = %err, "health queue unreadable; serving the last score");
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Claims `account_id` in the dirty queue and recomputes it: scores the
    /// account and each of its products, keeps history when a score
    /// changes, and reconciles its triggers, in one transaction; then
    /// clears the mark unless the account was marked again meanwhile.
    /// `false` when it is not queued or another recomputation holds it.
    async fn recompute(&self, account_id: &str) -> Result<bool, HealthError> {
        let Some(claim) = self.claim_dirty(account_id).await? else {
            return Ok(false);
        };
        // Inside a mutation (a write that answers with the account's
        // health) the claim is the mutation's own uncommitted row: nobody
        // else can take it before the commit, and a renewal — another
        // connection, another turn of the write gate — would wait for that
        // commit while the mutation waits for the renewal. So none is run.
        let renewal = (!self.db.in_mutation()).then(|| {
            let (db, writer, id) = (
                self.db.pool().clone(),
                self.writer.clone(),
                account_id.to_owned(),
            );
            storage::lease::Renewal::start(
                storage::lease::renewal_interval(CLAIM_LEASE),
                claim.until,
                move |held| {
                    let (db, writer, id) = (db.clone(), writer.clone(), id.clone());
                    async move { renew_dirty(&db, &writer, &id, held).await }
                },
            )
        });
        let result = self.recompute_now(account_id).await;
        let held = match renewal {
            Some(renewal) => renewal.finish().await,
            None => Some(claim.until),
        };
        match held {
            // Best effort: an unreleased claim lapses, and the account is
            // recomputed again (which changes nothing).
            Some(held) => {
                if let Err(err) = self
                    .release_dirty(account_id, claim.generation, held, result.is_ok())
                    .await
                {
                    tracing::warn!(%account_id, error = %err, "health queue release failed");
                }
            }
            None => tracing::warn!(%account_id, "health recompute outlived its claim"),
        }
        result.map(|()| true)
    }

    /// Claims a queued account nobody holds (or whose holder's lease
    /// lapsed), in one statement: on PostgreSQL `FOR UPDATE SKIP LOCKED`
    /// passes over a row another replica is claiming or a mark not yet
    /// committed.
    async fn claim_dirty(&self, account_id: &str) -> Result<Option<DirtyClaim>, HealthError> {
        use sea_orm::sea_query::{LockBehavior, LockType, Query};
        let now = storage::now();
        let until = now + CLAIM_LEASE;
        let pick = Query::select()
            .column(dirty::Column::AccountId)
            .from(dirty::Entity)
            .and_where(Expr::col(dirty::Column::AccountId).eq(account_id))
            .cond_where(claimable(now))
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let claim = Query::update()
            .table(dirty::Entity)
            .value(dirty::Column::ClaimedUntil, until)
            .and_where(Expr::col(dirty::Column::AccountId).in_subquery(pick))
            .returning_col(dirty::Column::Generation)
            .to_owned();
        let _write = self.writer.enter().await;
        let Some(row) = self.db.query_one(&claim).await? else {
            return Ok(None);
        };
        Ok(Some(DirtyClaim {
            generation: row.try_get("", "generation")?,
            until,
        }))
    }

    /// Ends a claim held until `held`: clears the mark if the recomputation
    /// succeeded and no mark arrived since the claim, else releases the
    /// account for the next pass.
    async fn release_dirty(
        &self,
        account_id: &str,
        generation: i64,
        held: DateTime<Utc>,
        recomputed: bool,
    ) -> Result<(), HealthError> {
        let _write = self.writer.enter().await;
        if recomputed {
            let cleared = dirty::Entity::delete_many()
                .filter(dirty::Column::AccountId.eq(account_id))
                .filter(dirty::Column::Generation.eq(generation))
                .filter(dirty::Column::ClaimedUntil.eq(held))
                .exec(&self.db)
                .await?;
            if cleared.rows_affected == 1 {
                return Ok(());
            }
        }
        dirty::Entity::update_many()
            .col_expr(
                dirty::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(dirty::Column::AccountId.eq(account_id))
            .filter(dirty::Column::ClaimedUntil.eq(held))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Recomputes the account: loads its signals, subscriptions in force
    /// and overrides, scores them ([`score_account`]), and in one
    /// transaction writes what [`plan_recompute`] returns and what trigger
    /// reconciliation calls for; then fills in months of history.
    async fn recompute_now(&self, account_id: &str) -> Result<(), HealthError> {
        let now = storage::now();
        let Some(account) = account::Entity::find_by_id(account_id.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(());
        };
        let card = self.active_scorecard().await?;
        let window = card
            .longest_window()
            .max(Duration::days(self.triggers.lookback_days));
        let signals = SignalRange {
            accounts: vec![account_id],
            kind: None,
            after: Some(now - window),
            until: None,
        }
        .select(self.db.get_database_backend())
        .all(&self.db)
        .await?;
        let in_force = subscriptions_in_force(&self.db, account_id, now.date_naive()).await?;
        let scored = score_account(&card, &signals, &in_force, now);
        let overrides = active_overrides(&self.db, account_id, now).await?;

        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let current = current_scores(&txn, account_id).await?;
        let plan = plan_recompute(
            Recompute {
                account: &account,
                card: &card,
                triggers: &self.triggers,
                in_force: &in_force,
                current: &current,
                overrides: &overrides,
                now,
            },
            &scored,
        )?;
        write_scores(&txn, &plan).await?;
        // Triggers follow the fresh scores.
        let names = if plan.candidates.is_empty() {
            HashMap::new()
        } else {
            product_names(&txn, &scored.products).await?
        };
        let wanted = with_suppression(plan.candidates, &plan.effective_bands, &names);
        let mut events = plan.events;
        events.extend(
            self.reconcile_triggers(&txn, account_id, wanted, now)
                .await?,
        );
        self.events.append(&txn, &events).await?;
        txn.commit().await?;
        if !events.is_empty() {
            self.events.committed();
        }
        // Then months of history before the first point, when signals reach
        // back further (an import of past signals): after the score of now
        // is in, and never in its way. It takes its own turn to write.
        drop(_write);
        if let Err(err) = self.backfill_history(account_id, &card, now).await {
            tracing::warn!(%account_id, error = %err, "filling in health history failed");
        }
        Ok(())
    }

    /// The account's scores (computing them first if they are stale), or
    /// `None` when there is no such account: one round trip when nothing
    /// waits for a recomputation (see `health_read`).
    pub async fn checked_account_health(
        &self,
        account_id: AccountId,
    ) -> Result<Option<AccountHealthView>, HealthError> {
        let account_id = account_id.to_string();
        let Some(read) = self.read_account_health(&account_id).await? else {
            return Ok(None);
        };
        if !read.dirty {
            return Ok(Some(read.view));
        }
        self.recompute_or_keep_last(&account_id).await;
        let mut view = self.stored_account_health(&account_id).await?;
        // Recomputed just now (a write), or the last score while another
        // recomputation runs: true now, not to be kept.
        view.changes_at = Some(storage::now());
        Ok(Some(view))
    }

    /// The account's scores (computing them first if they are stale).
    pub async fn account_health(
        &self,
        account_id: AccountId,
    ) -> Result<AccountHealthView, HealthError> {
        let account_id = account_id.to_string();
        self.ensure_fresh(&account_id).await?;
        self.stored_account_health(&account_id).await
    }

    /// The account's health as stored, for an account that exists.
    async fn stored_account_health(
        &self,
        account_id: &str,
    ) -> Result<AccountHealthView, HealthError> {
        self.read_account_health(account_id)
            .await?
            .map(|read| read.view)
            .ok_or_else(|| HealthError::AccountNotFound(account_id.to_owned()))
    }

    /// Accounts' overall scores, optionally by band, sorted by score.
    pub async fn list_account_health(
        &self,
        bands: &[HealthBand],
        descending: bool,
        owner_csm: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<HealthRow>, HealthError> {
        self.refresh_all_dirty().await?;
        let mut query =
            health_current::Entity::find().filter(health_current::Column::ProductId.eq(""));
        if !bands.is_empty() {
            query = query.filter(
                health_current::Column::Band.is_in(bands.iter().map(|b| b.as_str().to_owned())),
            );
        }
        if let Some(csm) = owner_csm {
            let ids: Vec<String> = account::Entity::find()
                .select_only()
                .column(account::Column::Id)
                .filter(account::Column::OwnerCsm.eq(csm))
                .into_tuple()
                .all(&self.db)
                .await?;
            query = query.filter(health_current::Column::AccountId.is_in(ids));
        }
        // Unscored accounts last either way.
        query = query.order_by_asc(Expr::col(health_current::Column::ScoreE2).is_null());
        query = if descending {
            query.order_by_desc(health_current::Column::ScoreE2)
        } else {
            query.order_by_asc(health_current::Column::ScoreE2)
        };
        Ok(query
            .order_by_asc(health_current::Column::AccountId)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Score history of one target (the account itself when `product_id`
    /// is `None`), newest first.
    pub async fn health_history(
        &self,
        account_id: AccountId,
        product_id: Option<ProductId>,
        range: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        offset: u64,
        limit: u64,
    ) -> Result<Vec<health_score::Model>, HealthError> {
        let account_id = account_id.to_string();
        // The account-level score is stored under the empty product id.
        let product_id = product_id.map(|p| p.to_string()).unwrap_or_default();
        self.ensure_fresh(&account_id).await?;
        let mut q = health_score::Entity::find()
            .filter(health_score::Column::AccountId.eq(account_id))
            .filter(health_score::Column::ProductId.eq(product_id));
        if let Some(start) = range.0 {
            q = q.filter(health_score::Column::ComputedAt.gte(start));
        }
        if let Some(end) = range.1 {
            q = q.filter(health_score::Column::ComputedAt.lt(end));
        }
        Ok(q.order_by_desc(health_score::Column::ComputedAt)
            .order_by_desc(health_score::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Records a manual override; triggers are re-evaluated under it.
    pub async fn override_health(&self, row: health_override::Model) -> Result<(), HealthError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let account = row.account_id.clone();
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "health.override.set".into(),
                    subject_id: account.clone(),
                    data: serde_json::json!({
                        "account_id": row.account_id,
                        "product_id": row.product_id,
                        "score": row.score,
                        "reason": row.reason,
                        "principal": row.principal,
                    }),
                }],
            )
            .await?;
        health_override::Entity::insert(health_override::ActiveModel {
            id: Set(row.id),
            account_id: Set(row.account_id),
            product_id: Set(row.product_id),
            score: Set(row.score),
            reason: Set(row.reason),
            principal: Set(row.principal),
            created_at: Set(row.created_at),
            expires_at: Set(row.expires_at),
        })
        .exec_without_returning(&txn)
        .await?;
        super::mark_dirty(&txn, std::slice::from_ref(&account)).await?;
        txn.commit().await?;
        self.events.committed();
        Ok(())
    }
}

/// The override in force per target (`""` = account level): the latest
/// override, unless it has expired (a newer override supersedes older ones).
/// A stored scorecard version, as the rules read it.
fn card_of(row: &scorecard::Model) -> Result<Scorecard, HealthError> {
    let mut card: Scorecard = serde_json::from_str(&row.definition)
        .map_err(|e| HealthError::Corrupt(format!("scorecard v{}: {e}", row.version)))?;
    card.version = row.version;
    Ok(card)
}

async fn active_overrides<C: ConnectionTrait>(
    db: &C,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<HashMap<String, health_override::Model>, HealthError> {
    let rows = health_override::Entity::find()
        .filter(health_override::Column::AccountId.eq(account_id))
        .order_by_asc(health_override::Column::CreatedAt)
        .all(db)
        .await?;
    let mut out = HashMap::new();
    for r in rows {
        if r.expires_at.is_none_or(|t| t > now) {
            out.insert(r.product_id.clone(), r);
        } else {
            out.remove(&r.product_id);
        }
    }
    Ok(out)
}

/// Queued accounts nobody recomputes: unclaimed, or the claim lapsed.
fn claimable(now: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(dirty::Column::ClaimedUntil.is_null())
        .add(dirty::Column::ClaimedUntil.lte(now))
}

/// Moves the lease of a claimed account from `held` to one lease from now;
/// `None` when the claim is no longer ours.
async fn renew_dirty(
    db: &sea_orm::DatabaseConnection,
    writer: &storage::WriteGate,
    account_id: &str,
    held: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sea_orm::DbErr> {
    let until = storage::now() + CLAIM_LEASE;
    let _write = writer.enter().await;
    let renewed = dirty::Entity::update_many()
        .col_expr(dirty::Column::ClaimedUntil, Expr::value(until))
        .filter(dirty::Column::AccountId.eq(account_id))
        .filter(dirty::Column::ClaimedUntil.eq(held))
        .exec(db)
        .await?;
    Ok((renewed.rows_affected == 1).then_some(until))
}

/// The account's subscriptions in force on `today`: started, and active or
/// cancelled from a later day.
async fn subscriptions_in_force<C: ConnectionTrait>(
    db: &C,
    account_id: &str,
    today: chrono::NaiveDate,
) -> Result<Vec<subscription::Model>, HealthError> {
    Ok(subscription::Entity::find()
        .filter(subscription::Column::AccountId.eq(account_id))
        .filter(subscription::Column::StartDate.lte(today))
        .all(db)
        .await?
        .into_iter()
        .filter(|s| {
            s.status == SubscriptionStatus::Active
                || (s.status == SubscriptionStatus::Cancelled
                    && s.cancel_date.is_some_and(|d| d > today))
        })
        .collect())
}

/// The account's stored current scores, by target.
async fn current_scores<C: ConnectionTrait>(
    db: &C,
    account_id: &str,
) -> Result<HashMap<String, health_current::Model>, HealthError> {
    Ok(health_current::Entity::find()
        .filter(health_current::Column::AccountId.eq(account_id))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.product_id.clone(), r))
        .collect())
}

/// The names of `products`, by id.
async fn product_names<C: ConnectionTrait>(
    db: &C,
    products: &BTreeSet<String>,
) -> Result<HashMap<String, String>, HealthError> {
    Ok(product::Entity::find()
        .filter(product::Column::Id.is_in(products.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect())
}

/// Writes a recompute's history rows and upserts its current scores.
async fn write_scores<C: ConnectionTrait>(db: &C, plan: &RecomputePlan) -> Result<(), HealthError> {
    for row in &plan.history {
        health_score::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(db)
            .await?;
    }
    for row in &plan.current {
        health_current::Entity::insert(row.clone().into_active_model())
            .on_conflict(
                OnConflict::columns([
                    health_current::Column::AccountId,
                    health_current::Column::ProductId,
                ])
                .update_columns([
                    health_current::Column::ScoreE2,
                    health_current::Column::Band,
                    health_current::Column::CoverageE2,
                    health_current::Column::Breakdown,
                    health_current::Column::CsmSentiment,
                    health_current::Column::ScorecardVersion,
                    health_current::Column::ComputedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}
