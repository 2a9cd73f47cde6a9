//! Loading what the revenue metrics need: accounts' registration dates and
//! every subscription that started before the period ends, with its MRR
//! history. The arithmetic itself is pure (`crate::revenue`).

use chrono::NaiveDate;
use domain::{Currency, DateRange};
use sea_orm::sea_query::{Expr, Order, SimpleExpr};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio_stream::{Stream, StreamExt};

use super::Store;
use super::portfolio::SubscriptionStatus;
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
    SubscriptionStatus,
);

/// (subscription id, effective date, MRR in minor units).
type AmendmentRow = (String, NaiveDate, i64);

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
        // million subscriptions would otherwise hold every row twice).
        let order = IdOrder::of(&self.db);
        let mut subs = self.subscriptions_before(before, order).await?;
        let mut history =
            AmendmentCursor::start(self.amendments_before(before, order).await?).await?;
        let mut facts: Vec<SubscriptionFacts> = Vec::new();
        while let Some(row) = subs.try_next().await? {
            let amendments = history.take_for(&row.0).await?;
            facts.extend(subscription_facts(row, amendments));
        }
        drop(subs);
        drop(history);
        let accounts = self.account_facts().await?;
        Ok((accounts, facts))
    }

    /// Subscriptions that started before `before`, in id order.
    async fn subscriptions_before(
        &self,
        before: NaiveDate,
        order: IdOrder,
    ) -> Result<impl Stream<Item = Result<SubscriptionRow, DbErr>> + Unpin + '_, DbErr> {
        subscription::Entity::find()
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
            .order_by(order.column("id"), Order::Asc)
            .into_tuple::<SubscriptionRow>()
            .stream(self.db.pool())
            .await
    }

    /// MRR amendments effective before `before`, in subscription-id order.
    async fn amendments_before(
        &self,
        before: NaiveDate,
        order: IdOrder,
    ) -> Result<impl Stream<Item = Result<AmendmentRow, DbErr>> + Unpin + '_, DbErr> {
        amendment::Entity::find()
            .select_only()
            .columns([
                amendment::Column::SubscriptionId,
                amendment::Column::EffectiveDate,
                amendment::Column::MrrMinor,
            ])
            .filter(amendment::Column::EffectiveDate.lt(before))
            // One amendment per (subscription, date) is a unique key: a correction of a
            // date replaces its amendment, so no order within a subscription is needed.
            .order_by(order.column("subscription_id"), Order::Asc)
            .into_tuple::<AmendmentRow>()
            .stream(self.db.pool())
            .await
    }

    /// Every account's id and registration date.
    async fn account_facts(&self) -> Result<Vec<AccountFacts>, HealthError> {
        let accounts: Vec<(String, Option<NaiveDate>)> = account::Entity::find()
            .select_only()
            .columns([account::Column::Id, account::Column::CustomerSince])
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(accounts
            .into_iter()
            .map(|(account_id, registered_on)| AccountFacts {
                account_id,
                registered_on,
            })
            .collect())
    }
}

/// How ids are sorted for the merge: as Rust compares them, byte by byte
/// (PostgreSQL's default collation does not, so it is told `COLLATE "C"`).
#[derive(Debug, Clone, Copy)]
struct IdOrder {
    postgres: bool,
}

impl IdOrder {
    fn of(db: &storage::Db) -> Self {
        IdOrder {
            postgres: db.pool().get_database_backend() == sea_orm::DatabaseBackend::Postgres,
        }
    }

    fn column(self, column: &str) -> SimpleExpr {
        if self.postgres {
            Expr::cust(format!("\"{column}\" COLLATE \"C\""))
        } else {
            Expr::cust(format!("\"{column}\""))
        }
    }
}

/// The amendment stream, read one subscription at a time.
struct AmendmentCursor<S> {
    rows: S,
    pending: Option<AmendmentRow>,
}

impl<S: Stream<Item = Result<AmendmentRow, DbErr>> + Unpin> AmendmentCursor<S> {
    async fn start(mut rows: S) -> Result<Self, DbErr> {
        let pending = rows.try_next().await?;
        Ok(AmendmentCursor { rows, pending })
    }

    /// The (date, MRR) amendments of `subscription_id`. Amendments of
    /// subscriptions that sort before it have no subscription in the period
    /// (or none at all): they are skipped.
    async fn take_for(&mut self, subscription_id: &str) -> Result<Vec<(NaiveDate, i64)>, DbErr> {
        let mut amendments = Vec::new();
        while let Some((sub, date, mrr)) = self.pending.take() {
            match sub.as_str().cmp(subscription_id) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => amendments.push((date, mrr)),
                std::cmp::Ordering::Greater => {
                    self.pending = Some((sub, date, mrr));
                    break;
                }
            }
            self.pending = self.rows.try_next().await?;
        }
        Ok(amendments)
    }
}

/// A subscription's facts; `None` when its currency is not one we know.
/// Only a cancelled subscription has a cancel date here.
fn subscription_facts(
    (id, account_id, product_id, currency, start_date, cancel_date, status): SubscriptionRow,
    amendments: Vec<(NaiveDate, i64)>,
) -> Option<SubscriptionFacts> {
    let currency = Currency::parse(&currency).ok()?;
    Some(SubscriptionFacts {
        amendments,
        subscription_id: id,
        account_id,
        product_id,
        currency,
        start_date,
        cancel_date: if status == SubscriptionStatus::Cancelled {
            cancel_date
        } else {
            None
        },
    })
}
