//! Loading what the revenue metrics need: accounts' registration dates and
//! every subscription that started before the period ends, with its MRR
//! history. The arithmetic itself is pure (`crate::revenue`).

use std::collections::HashMap;

use chrono::NaiveDate;
use domain::{Currency, DateRange};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::Store;
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
        let subs: Vec<SubscriptionRow> = subscription::Entity::find()
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
            .filter(subscription::Column::StartDate.lt(period.end()))
            .into_tuple()
            .all(&self.db)
            .await?;
        let history: Vec<(String, NaiveDate, i64)> = amendment::Entity::find()
            .select_only()
            .columns([
                amendment::Column::SubscriptionId,
                amendment::Column::EffectiveDate,
                amendment::Column::MrrMinor,
            ])
            .filter(amendment::Column::EffectiveDate.lt(period.end()))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut amendments: HashMap<String, Vec<(NaiveDate, i64)>> = HashMap::new();
        for (id, date, mrr) in history {
            amendments.entry(id).or_default().push((date, mrr));
        }
        let accounts: Vec<(String, Option<NaiveDate>)> = account::Entity::find()
            .select_only()
            .columns([account::Column::Id, account::Column::CustomerSince])
            .into_tuple()
            .all(&self.db)
            .await?;
        let facts: Vec<SubscriptionFacts> = subs
            .into_iter()
            .filter_map(
                |(id, account_id, product_id, currency, start_date, cancel_date, status)| {
                    let currency = Currency::parse(&currency).ok()?;
                    Some(SubscriptionFacts {
                        amendments: amendments.remove(&id).unwrap_or_default(),
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
                    })
                },
            )
            .collect();
        let accounts: Vec<AccountFacts> = accounts
            .into_iter()
            .map(|(account_id, registered_on)| AccountFacts {
                account_id,
                registered_on,
            })
            .collect();
        Ok(revenue_metrics(&accounts, &facts, period))
    }
}
