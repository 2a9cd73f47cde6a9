//! A health read in one statement: whether the account waits for a
//! recompute, its current scores with the names of it and its products,
//! each score's trend (the score before the latest change, the one in force
//! a month ago and when the next one after that was computed) and the
//! override in force — one round trip, correlated index lookups per score.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, QueryResult, Statement, Value};

use super::Store;
use super::health::{AccountHealthView, ScoreView};
use super::names::Names;
use crate::entity::{health_current, health_override};
use crate::error::HealthError;

/// What one read of an account found.
pub(super) struct HealthRead {
    /// Signals or contracts changed since the scores were computed.
    pub dirty: bool,
    pub view: AccountHealthView,
}

/// The statement; `{n}` marks the numbered parameters: the account (1), a
/// month ago (2) and now (3). The latest override of each score's target
/// counts while it has not expired; a score never computed (an account
/// created a moment ago) reads as one row with no score, and the
/// account-level override, if any.
const READ: &str = "SELECT a.name AS account_name, \
       (SELECT d.account_id FROM health_dirty d WHERE d.account_id = a.id) AS dirty, \
       c.account_id, c.product_id, c.score_e2, c.band, c.coverage_e2, c.breakdown, \
       c.csm_sentiment, c.scorecard_version, c.computed_at, \
       (SELECT p.name FROM products p WHERE p.id = c.product_id) AS product_name, \
       (SELECT s.score_e2 FROM health_scores s \
         WHERE s.account_id = a.id AND s.product_id = c.product_id \
         ORDER BY s.computed_at DESC LIMIT 1 OFFSET 1) AS previous_e2, \
       (SELECT s.score_e2 FROM health_scores s \
         WHERE s.account_id = a.id AND s.product_id = c.product_id AND s.computed_at <= {2} \
         ORDER BY s.computed_at DESC LIMIT 1) AS month_ago_e2, \
       (SELECT s.computed_at FROM health_scores s \
         WHERE s.account_id = a.id AND s.product_id = c.product_id AND s.computed_at > {2} \
         ORDER BY s.computed_at ASC LIMIT 1) AS next_after_month_ago, \
       o.id AS o_id, o.account_id AS o_account_id, o.product_id AS o_product_id, \
       o.score AS o_score, o.reason AS o_reason, o.principal AS o_principal, \
       o.created_at AS o_created_at, o.expires_at AS o_expires_at \
     FROM accounts a \
     LEFT JOIN health_current c ON c.account_id = a.id \
     LEFT JOIN health_overrides o ON o.id = ( \
         SELECT l.id FROM health_overrides l \
         WHERE l.account_id = a.id AND l.product_id = COALESCE(c.product_id, '') \
         ORDER BY l.created_at DESC, l.id DESC LIMIT 1) \
       AND (o.expires_at IS NULL OR o.expires_at > {3}) \
     WHERE a.id = {1} \
     ORDER BY c.product_id";

/// The read of `account_id` as of `now` on `backend` (public so the read
/// benchmark can time the database answering it alone).
pub fn read_statement(
    backend: sea_orm::DatabaseBackend,
    account_id: &str,
    now: DateTime<Utc>,
) -> Statement {
    let values: [Value; 3] = [
        account_id.into(),
        (now - Duration::days(30)).into(),
        now.into(),
    ];
    super::numbered_statement(backend, READ, values)
}

/// One row of [`READ`], parsed.
struct Read {
    row: Option<health_current::Model>,
    product_name: Option<String>,
    previous_e2: Option<i64>,
    month_ago_e2: Option<i64>,
    next_after_month_ago: Option<DateTime<Utc>>,
    override_: Option<health_override::Model>,
}

impl Read {
    fn of(row: &QueryResult) -> Result<Self, HealthError> {
        let computed = row.try_get::<Option<String>>("", "product_id")?.is_some();
        let overridden = row.try_get::<Option<String>>("", "o_id")?.is_some();
        Ok(Self {
            row: computed
                .then(|| health_current::Model::from_query_result(row, ""))
                .transpose()?,
            product_name: row.try_get("", "product_name")?,
            previous_e2: row.try_get("", "previous_e2")?,
            month_ago_e2: row.try_get("", "month_ago_e2")?,
            next_after_month_ago: row.try_get("", "next_after_month_ago")?,
            override_: overridden
                .then(|| health_override::Model::from_query_result(row, "o_"))
                .transpose()?,
        })
    }
}

impl Store {
    /// The account's health as stored now, in one round trip; `None` when
    /// there is no such account.
    pub(super) async fn read_account_health(
        &self,
        account_id: &str,
    ) -> Result<Option<HealthRead>, HealthError> {
        let now = storage::now();
        let statement = read_statement(self.db.get_database_backend(), account_id, now);
        let rows = self.db.query_all_raw(statement).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let account_name: String = first.try_get("", "account_name")?;
        let dirty = first.try_get::<Option<String>>("", "dirty")?.is_some();
        let reads = rows.iter().map(Read::of).collect::<Result<Vec<_>, _>>()?;
        let view = self.view_of(account_id, account_name, reads, now).await?;
        Ok(Some(HealthRead { dirty, view }))
    }

    /// The view of what [`READ`] returned for `account_id`.
    async fn view_of(
        &self,
        account_id: &str,
        account_name: String,
        reads: Vec<Read>,
        now: DateTime<Utc>,
    ) -> Result<AccountHealthView, HealthError> {
        // The bands of the version that computed these scores (the active
        // one once the account is fresh); the active one when there are none.
        let card = match reads.iter().find_map(|r| r.row.as_ref()) {
            Some(row) => self.scorecard_version(row.scorecard_version).await?,
            None => self.active_scorecard().await?,
        };
        let changes_at = reads
            .iter()
            .filter_map(|r| r.next_after_month_ago.map(|at| at + Duration::days(30)))
            .chain(
                reads
                    .iter()
                    .filter_map(|r| r.override_.as_ref()?.expires_at),
            )
            .min();
        let mut products: HashMap<String, String> = HashMap::new();
        let mut overall = None;
        let mut views = Vec::with_capacity(reads.len());
        let mut unscored_override = None;
        for read in reads {
            let Some(row) = read.row else {
                unscored_override = read.override_;
                continue;
            };
            if let Some(name) = read.product_name {
                products.insert(row.product_id.clone(), name);
            }
            let view = ScoreView {
                row,
                previous_e2: read.previous_e2,
                month_ago_e2: read.month_ago_e2,
                override_: read.override_,
            };
            if view.row.product_id.is_empty() {
                overall = Some(view);
            } else {
                views.push(view);
            }
        }
        let computed = overall.is_some() || !views.is_empty();
        let overall = overall.unwrap_or_else(|| ScoreView {
            // Never computed (an account created a moment ago): no data yet.
            row: health_current::Model {
                account_id: account_id.to_owned(),
                product_id: String::new(),
                score_e2: None,
                band: None,
                coverage_e2: 0,
                breakdown: "[]".to_owned(),
                csm_sentiment: None,
                scorecard_version: card.version,
                computed_at: now,
            },
            previous_e2: None,
            month_ago_e2: None,
            override_: unscored_override,
        });
        Ok(AccountHealthView {
            overall,
            products: views,
            scorecard: card,
            // A view never computed shows "now" as its compute time.
            changes_at: if computed { changes_at } else { Some(now) },
            names: Names::of([(account_id.to_owned(), account_name)], products),
        })
    }
}
