//! Loading what the revenue metrics need: every subscription that started
//! before the period ends, with its MRR history up to then, and the
//! registration dates of the accounts. The arithmetic itself is pure
//! (`crate::revenue`).
//!
//! One statement reads the book: each subscription joined with its
//! amendments. How its rows travel depends on the database. PostgreSQL
//! sends them as they are, in subscription order, over its socket. On
//! SQLite every row crossing from the database's thread is a hand-off
//! between threads, which for a million subscriptions cost more than the
//! query itself, so there the database packs each account's rows into one
//! JSON array and only as many rows cross as there are accounts.

use std::borrow::Cow;

use chrono::NaiveDate;
use domain::{Currency, DateRange};
use sea_orm::{
    ActiveEnum, DatabaseBackend, DatabaseConnection, QueryResult, Statement, StreamTrait, Value,
};
use serde::Deserialize;
use tokio_stream::StreamExt;

use super::Store;
use super::portfolio::SubscriptionStatus;
use crate::cohort::{CohortRevenue, Grain, Period, cohort_revenue};
use crate::error::HealthError;
use crate::revenue::{AccountFacts, CurrencyMetrics, SubscriptionFacts, revenue_metrics};

/// The book before `{1}`: one row per subscription that started before
/// then and amendment of it effective before then (one row with no
/// amendment for a subscription without any). The cancel date counts only
/// when the subscription's status is `{2}` (cancelled).
const ENTRIES: &str = "SELECT s.account_id, s.id, s.product_id, s.currency, s.start_date, \
       CASE WHEN s.status = {2} THEN s.cancel_date END AS cancel_date, \
       a.effective_date, a.mrr_minor \
     FROM subscriptions s \
     LEFT JOIN subscription_amendments a \
       ON a.subscription_id = s.id AND a.effective_date < {1} \
     WHERE s.start_date < {1}";

/// PostgreSQL: the entries as rows, a subscription's side by side.
const ENTRY_ROWS: &str = "{entries} ORDER BY s.id";

/// Every account's registration, for PostgreSQL's entry rows.
const REGISTRATIONS: &str = "SELECT id, customer_since FROM accounts";

/// SQLite: one row per account with a subscription in the book, its
/// registration and its entries as a JSON array of arrays, in the order of
/// [`Entry`].
const PACKED: &str = "SELECT e.account_id, \
       (SELECT acc.customer_since FROM accounts acc WHERE acc.id = e.account_id) AS customer_since, \
       json_group_array(json_array(e.id, e.product_id, e.currency, e.start_date, e.cancel_date, \
           e.effective_date, e.mrr_minor)) AS entries \
     FROM ({entries}) e \
     GROUP BY e.account_id";

/// One entry of an account's packed book: subscription id, product,
/// currency, start, cancel date (ISO dates), and one amendment's date and
/// MRR in minor units. Text is borrowed from the row unless it holds an
/// escape.
#[derive(Deserialize)]
struct Entry<'a>(
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    Option<i64>,
);

/// What every row of a subscription carries, before its amendments.
struct Subscription {
    id: String,
    account_id: String,
    product_id: String,
    currency: String,
    start_date: NaiveDate,
    cancel_date: Option<NaiveDate>,
}

impl Subscription {
    /// Its facts; `None` when its currency is not one we know.
    fn facts(self, amendments: Vec<(NaiveDate, i64)>) -> Option<SubscriptionFacts> {
        Some(SubscriptionFacts {
            currency: Currency::parse(&self.currency).ok()?,
            subscription_id: self.id,
            account_id: self.account_id,
            product_id: self.product_id,
            start_date: self.start_date,
            cancel_date: self.cancel_date,
            amendments,
        })
    }
}

impl Store {
    pub async fn revenue_metrics(
        &self,
        period: &DateRange,
    ) -> Result<Vec<CurrencyMetrics>, HealthError> {
        let (accounts, facts) = self.revenue_facts(period.end()).await?;
        Ok(revenue_metrics(&accounts, &facts, period))
    }

    /// Revenue by acquisition cohort for `periods`, from the same facts.
    pub async fn cohort_revenue(
        &self,
        grain: Grain,
        periods: &[Period],
    ) -> Result<Vec<CohortRevenue>, HealthError> {
        let Some(end) = periods.last().map(|p| p.range.end()) else {
            return Ok(Vec::new());
        };
        let (accounts, facts) = self.revenue_facts(end).await?;
        Ok(cohort_revenue(&accounts, &facts, grain, periods))
    }

    /// The accounts' registration dates, and every subscription that
    /// started before `before` with its MRR history up to then. Rows are
    /// parsed as they arrive, so only the facts are ever held, never the
    /// whole result.
    async fn revenue_facts(
        &self,
        before: NaiveDate,
    ) -> Result<(Vec<AccountFacts>, Vec<SubscriptionFacts>), HealthError> {
        let db = self.db.pool();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            Ok((registrations(db).await?, entry_rows(db, before).await?))
        } else {
            packed_book(db, before).await
        }
    }
}

/// PostgreSQL: the subscriptions from [`ENTRY_ROWS`], merged as they arrive
/// (a subscription's rows come side by side).
async fn entry_rows(
    db: &DatabaseConnection,
    before: NaiveDate,
) -> Result<Vec<SubscriptionFacts>, HealthError> {
    let mut rows = db
        .stream_raw(book(db.get_database_backend(), ENTRY_ROWS, before))
        .await?;
    let mut facts = Vec::new();
    let mut current: Option<(Subscription, Vec<(NaiveDate, i64)>)> = None;
    while let Some(row) = rows.try_next().await? {
        let (subscription, amendment) = entry_row(&row)?;
        match current.as_mut() {
            Some((open, amendments)) if open.id == subscription.id => {
                amendments.extend(amendment);
            }
            _ => {
                let next = (subscription, amendment.into_iter().collect());
                if let Some((done, amendments)) = current.replace(next) {
                    facts.extend(done.facts(amendments));
                }
            }
        }
    }
    if let Some((done, amendments)) = current {
        facts.extend(done.facts(amendments));
    }
    Ok(facts)
}

/// PostgreSQL: every account's registration ([`REGISTRATIONS`]).
async fn registrations(db: &DatabaseConnection) -> Result<Vec<AccountFacts>, HealthError> {
    let statement = Statement::from_string(db.get_database_backend(), REGISTRATIONS);
    let mut rows = db.stream_raw(statement).await?;
    let mut accounts = Vec::new();
    while let Some(row) = rows.try_next().await? {
        accounts.push(AccountFacts {
            account_id: row.try_get_by_index(0)?,
            registered_on: row.try_get_by_index(1)?,
        });
    }
    Ok(accounts)
}

/// SQLite: the accounts and their subscriptions from [`PACKED`].
async fn packed_book(
    db: &DatabaseConnection,
    before: NaiveDate,
) -> Result<(Vec<AccountFacts>, Vec<SubscriptionFacts>), HealthError> {
    let mut rows = db
        .stream_raw(book(db.get_database_backend(), PACKED, before))
        .await?;
    let (mut accounts, mut facts) = (Vec::new(), Vec::new());
    while let Some(row) = rows.try_next().await? {
        accounts.push(packed_account(&row, &mut facts)?);
    }
    Ok((accounts, facts))
}

/// `shape` around the book's [`ENTRIES`] before `before`, for `backend`.
fn book(backend: DatabaseBackend, shape: &str, before: NaiveDate) -> Statement {
    let values: [Value; 2] = [
        before.into(),
        SubscriptionStatus::Cancelled.to_value().into(),
    ];
    super::numbered_statement(backend, &shape.replace("{entries}", ENTRIES), values)
}

/// One row of [`ENTRY_ROWS`]: the subscription and the amendment it carries.
fn entry_row(row: &QueryResult) -> Result<(Subscription, Option<(NaiveDate, i64)>), HealthError> {
    let subscription = Subscription {
        account_id: row.try_get_by_index(0)?,
        id: row.try_get_by_index(1)?,
        product_id: row.try_get_by_index(2)?,
        currency: row.try_get_by_index(3)?,
        start_date: row.try_get_by_index(4)?,
        cancel_date: row.try_get_by_index(5)?,
    };
    let effective: Option<NaiveDate> = row.try_get_by_index(6)?;
    let mrr: Option<i64> = row.try_get_by_index(7)?;
    Ok((subscription, effective.zip(mrr)))
}

/// One row of [`PACKED`]: the account's facts, and its subscriptions
/// appended to `facts`.
fn packed_account(
    row: &QueryResult,
    facts: &mut Vec<SubscriptionFacts>,
) -> Result<AccountFacts, HealthError> {
    let account_id: String = row.try_get_by_index(0)?;
    let registered_on: Option<NaiveDate> = row.try_get_by_index(1)?;
    let packed: String = row.try_get_by_index(2)?;
    let corrupt = |e: &dyn std::fmt::Display| {
        HealthError::Corrupt(format!("revenue book of account {account_id}: {e}"))
    };
    let date = |text: &str| text.parse::<NaiveDate>().map_err(|e| corrupt(&e));
    let mut entries: Vec<Entry<'_>> = serde_json::from_str(&packed).map_err(|e| corrupt(&e))?;
    // A subscription's entries, one per amendment, side by side.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for run in entries.chunk_by(|a, b| a.0 == b.0) {
        let Entry(id, product_id, currency, start_date, cancel_date, ..) = &run[0];
        let mut amendments = Vec::with_capacity(run.len());
        for Entry(.., effective, mrr) in run {
            if let (Some(effective), Some(mrr)) = (effective, mrr) {
                amendments.push((date(effective)?, *mrr));
            }
        }
        let subscription = Subscription {
            id: id.clone().into_owned(),
            account_id: account_id.clone(),
            product_id: product_id.clone().into_owned(),
            currency: currency.clone().into_owned(),
            start_date: date(start_date)?,
            cancel_date: cancel_date.as_deref().map(date).transpose()?,
        };
        facts.extend(subscription.facts(amendments));
    }
    Ok(AccountFacts {
        account_id,
        registered_on,
    })
}
