//! Loading what the revenue metrics need: accounts' registration dates and
//! every subscription that started before the period ends, with its MRR
//! history. The arithmetic itself is pure (`crate::revenue`).

use chrono::NaiveDate;
use domain::{Currency, DateRange};
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio_stream::StreamExt;

use super::Store;
use crate::cohort::{CohortRevenue, Grain, Period, cohort_revenue};
use crate::entity::{account, amendment, subscription};
use crate::error::HealthError;
use crate::revenue::{AccountFacts, CurrencyMetrics, SubscriptionFacts, revenue_metrics};

type SubscriptionRow = (
    String,
    String,
    String,
    String,
    NaiveDate,
    Option<NaiveDate>,
    String,
);

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

    /// Every account's registration date, and every subscription that
    /// started before `before` with its MRR history up to then.
    async fn revenue_facts(
        &self,
        before: NaiveDate,
    ) -> Result<(Vec<AccountFacts>, Vec<SubscriptionFacts>), HealthError> {
        // Both lists are streamed in subscription-id order and merged as they
        // arrive, so only the facts are ever held, never the raw rows (a
        // million subscriptions would otherwise hold every row twice). The
        // merge compares ids as Rust does, byte by byte, so the database
        // must sort them that way too (PostgreSQL's default collation does not).
        let postgres = self.db.pool().get_database_backend() == sea_orm::DatabaseBackend::Postgres;
        let byte_order = |column: &str| {
            if postgres {
                Expr::cust(format!("\"{column}\" COLLATE \"C\""))
            } else {
                Expr::cust(format!("\"{column}\""))
            }
        };
        let mut subs = subscription::Entity::find()
            .select_only()
            .columns([
                subscription::Column::Id,
                subscription::Column::AccountId,
                subscription::Column::ProductId,
                subscription::Column::Currency,
                subscription::Column::StartDate,
                subscription::Column::CancelDate,
                subscription::Column::Status,
            ])
            .filter(subscription::Column::StartDate.lt(before))
            .order_by(byte_order("id"), Order::Asc)
            .into_tuple::<SubscriptionRow>()
            .stream(self.db.pool())
            .await?;
        let mut history = amendment::Entity::find()
            .select_only()
            .columns([
                amendment::Column::SubscriptionId,
                amendment::Column::EffectiveDate,
                amendment::Column::MrrMinor,
            ])
            .filter(amendment::Column::EffectiveDate.lt(before))
            // One amendment per (subscription, date) is a unique key: a correction of a
            // date replaces its amendment, so no order within a subscription is needed.
            .order_by(byte_order("subscription_id"), Order::Asc)
            .into_tuple::<(String, NaiveDate, i64)>()
            .stream(self.db.pool())
            .await?;
        let mut facts: Vec<SubscriptionFacts> = Vec::new();
        let mut pending: Option<(String, NaiveDate, i64)> = history.try_next().await?;
        while let Some((id, account_id, product_id, currency, start_date, cancel_date, status)) =
            subs.try_next().await?
        {
            let mut amendments = Vec::new();
            // Amendments of subscriptions that sort before this one have no
            // subscription in the period (or none at all): skip them.
            while let Some((sub, date, mrr)) = pending.take() {
                match sub.as_str().cmp(id.as_str()) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => amendments.push((date, mrr)),
                    std::cmp::Ordering::Greater => {
                        pending = Some((sub, date, mrr));
                        break;
                    }
                }
                pending = history.try_next().await?;
            }
            let Ok(currency) = Currency::parse(&currency) else {
                continue;
            };
            facts.push(SubscriptionFacts {
                amendments,
                subscription_id: id,
                account_id,
                product_id,
                currency,
                start_date,
                cancel_date: if status == super::portfolio::CANCELLED {
                    cancel_date
                } else {
                    None
                },
            });
        }
        drop(subs);
        drop(history);
        let accounts: Vec<(String, Option<NaiveDate>)> = account::Entity::find()
            .select_only()
            .columns([account::Column::Id, account::Column::CustomerSince])
            .into_tuple()
            .all(&self.db)
            .await?;
        let accounts: Vec<AccountFacts> = accounts
            .into_iter()
            .map(|(account_id, registered_on)| AccountFacts {
                account_id,
                registered_on,
            })
            .collect();
        Ok((accounts, facts))
    }
}
