//! Revenue by acquisition cohort (seed 001: "segment by cohort — clients acquired
//! in 2023 vs 2024 — to see whether newer clients expand faster"): for each
//! cohort of accounts, by the month or quarter of its first subscription, and
//! each period asked, the accounts with MRR, their MRR, the average per
//! account, and the cohort's NRR.
//!
//! Every figure is [`revenue_metrics`] over the cohort's accounts alone, so the
//! definitions are the MRR bridge's: a cohort's `mrr` is its closing MRR, its
//! `opening_mrr` the opening MRR, its NRR the bridge's NRR; summed over the
//! cohorts they are the book's (a property test below ties them).

use std::collections::BTreeMap;

use domain::{Currency, DateRange, Decimal, Money, Month, NaiveDate};

use crate::revenue::{
    AccountFacts, CurrencyMetrics, SubscriptionFacts, first_subscription_start, revenue_metrics,
};

/// Cohorts and periods are months or quarters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Month,
    Quarter,
}

/// A month or a quarter: its label ("2026-03", "2026-Q1") and its days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    pub range: DateRange,
}

impl Grain {
    /// The month or quarter containing `date`.
    pub fn period_of(self, date: NaiveDate) -> Option<Period> {
        let month = Month::containing(date).ok()?;
        match self {
            Grain::Month => Some(Period {
                label: month.to_string(),
                range: month.date_range(),
            }),
            Grain::Quarter => {
                let quarter = (month.month() - 1) / 3;
                let first = Month::new(month.year(), quarter * 3 + 1).ok()?;
                let last = Month::new(month.year(), quarter * 3 + 3).ok()?;
                Some(Period {
                    label: format!("{}-Q{}", month.year(), quarter + 1),
                    range: DateRange::new(first.first_day(), last.date_range().end()).ok()?,
                })
            }
        }
    }

    /// The periods from the one containing `first` to the one containing `last`.
    pub fn periods(self, first: NaiveDate, last: NaiveDate) -> Vec<Period> {
        let mut out = Vec::new();
        let mut at = first;
        while at <= last {
            let Some(period) = self.period_of(at) else {
                break;
            };
            at = period.range.end();
            out.push(period);
        }
        out
    }
}

/// One cohort in one period, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortPeriod {
    pub period: Period,
    /// Cohort accounts with MRR > 0 in this currency on the period's last day.
    pub accounts: i64,
    /// Closing MRR of the cohort.
    pub mrr: Money,
    /// `mrr / accounts`, half-even to the minor unit; `None` without accounts.
    pub average_mrr: Option<Money>,
    pub opening_mrr: Money,
    pub nrr: Option<Decimal>,
    /// `mrr` / the cohort's closing MRR of its own first period.
    pub mrr_since_acquisition: Option<Decimal>,
}

/// A cohort's figures in one currency, period by period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortRevenue {
    pub cohort: Period,
    pub currency: Currency,
    pub periods: Vec<CohortPeriod>,
}

/// `numerator / denominator` to 4 places, half-even; `None` when the
/// denominator is not positive.
fn ratio(numerator: Money, denominator: Money) -> Option<Decimal> {
    if denominator.minor() <= 0 {
        return None;
    }
    numerator
        .amount()
        .checked_div(denominator.amount())
        .map(|r| r.round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointNearestEven))
}

/// The cohorts of `subscriptions`' accounts (an account without a subscription
/// in force at some time belongs to none), each with the `periods` that do not
/// end before it was acquired; one entry per cohort and currency, in cohort
/// then currency order.
pub fn cohort_revenue(
    accounts: &[AccountFacts],
    subscriptions: &[SubscriptionFacts],
    grain: Grain,
    periods: &[Period],
) -> Vec<CohortRevenue> {
    let by_account = subscriptions_by_account(subscriptions);
    let mut out = Vec::new();
    for (cohort, members) in cohorts(&by_account, grain) {
        let book = CohortBook::of(accounts, &by_account, &members);
        out.extend(book.revenue(&cohort, periods));
    }
    out
}

/// Each account's subscriptions, by account id.
fn subscriptions_by_account(
    subscriptions: &[SubscriptionFacts],
) -> BTreeMap<&str, Vec<&SubscriptionFacts>> {
    let mut by_account: BTreeMap<&str, Vec<&SubscriptionFacts>> = BTreeMap::new();
    for sub in subscriptions {
        by_account
            .entry(sub.account_id.as_str())
            .or_default()
            .push(sub);
    }
    by_account
}

/// The cohorts in order, each with its accounts: an account belongs to the
/// period of its first subscription's start.
fn cohorts<'a>(
    by_account: &BTreeMap<&'a str, Vec<&SubscriptionFacts>>,
    grain: Grain,
) -> Vec<(Period, Vec<&'a str>)> {
    // Cohort (by its first day) → its accounts.
    let mut cohorts: BTreeMap<NaiveDate, (Period, Vec<&str>)> = BTreeMap::new();
    for (account, subs) in by_account {
        let Some(first) = first_subscription_start(subs.iter().copied()) else {
            continue;
        };
        let Some(cohort) = grain.period_of(first) else {
            continue;
        };
        cohorts
            .entry(cohort.range.start())
            .or_insert_with(|| (cohort, Vec::new()))
            .1
            .push(account);
    }
    cohorts.into_values().collect()
}

/// One cohort's facts: all of them, and each member account's alone.
struct CohortBook {
    facts: Vec<AccountFacts>,
    subs: Vec<SubscriptionFacts>,
    per_account: Vec<(Vec<AccountFacts>, Vec<SubscriptionFacts>)>,
}

impl CohortBook {
    fn of(
        accounts: &[AccountFacts],
        by_account: &BTreeMap<&str, Vec<&SubscriptionFacts>>,
        members: &[&str],
    ) -> CohortBook {
        let facts: Vec<AccountFacts> = accounts
            .iter()
            .filter(|a| members.contains(&a.account_id.as_str()))
            .cloned()
            .collect();
        let subs: Vec<SubscriptionFacts> = members
            .iter()
            .flat_map(|a| by_account.get(a).into_iter().flatten())
            .map(|s| (*s).clone())
            .collect();
        let per_account = members
            .iter()
            .map(|a| {
                (
                    facts
                        .iter()
                        .filter(|f| f.account_id == *a)
                        .cloned()
                        .collect(),
                    subs.iter()
                        .filter(|s| s.account_id == *a)
                        .cloned()
                        .collect(),
                )
            })
            .collect();
        CohortBook {
            facts,
            subs,
            per_account,
        }
    }

    /// The cohort's rows, one per currency, over the `periods` that do not
    /// end before the cohort's own period starts.
    fn revenue(&self, cohort: &Period, periods: &[Period]) -> Vec<CohortRevenue> {
        let acquired = self.closing_mrr(&cohort.range);
        let mut rows: BTreeMap<&'static str, CohortRevenue> = BTreeMap::new();
        for period in periods
            .iter()
            .filter(|p| p.range.end() > cohort.range.start())
        {
            let accounts_with_mrr = self.accounts_with_mrr(&period.range);
            for m in revenue_metrics(&self.facts, &self.subs, &period.range) {
                let accounts = accounts_with_mrr
                    .get(m.currency.code())
                    .copied()
                    .unwrap_or(0);
                let row = cohort_period(period, &m, accounts, acquired.get(m.currency.code()));
                rows.entry(m.currency.code())
                    .or_insert_with(|| CohortRevenue {
                        cohort: cohort.clone(),
                        currency: m.currency,
                        periods: Vec::new(),
                    })
                    .periods
                    .push(row);
            }
        }
        rows.into_values().collect()
    }

    /// The cohort's closing MRR of `range`, per currency.
    fn closing_mrr(&self, range: &DateRange) -> BTreeMap<&'static str, Money> {
        revenue_metrics(&self.facts, &self.subs, range)
            .into_iter()
            .map(|m| (m.currency.code(), m.closing_mrr))
            .collect()
    }

    /// How many member accounts close `range` with MRR, per currency.
    fn accounts_with_mrr(&self, range: &DateRange) -> BTreeMap<&'static str, i64> {
        let mut accounts_with_mrr: BTreeMap<&'static str, i64> = BTreeMap::new();
        for (own_facts, own_subs) in &self.per_account {
            for m in revenue_metrics(own_facts, own_subs, range) {
                if m.closing_mrr.minor() > 0 {
                    *accounts_with_mrr.entry(m.currency.code()).or_default() += 1;
                }
            }
        }
        accounts_with_mrr
    }
}

/// A cohort's figures for `period` from its metrics `m`, the `accounts` with
/// MRR then, and its closing MRR of its own first period (`acquired`).
fn cohort_period(
    period: &Period,
    m: &CurrencyMetrics,
    accounts: i64,
    acquired: Option<&Money>,
) -> CohortPeriod {
    CohortPeriod {
        period: period.clone(),
        accounts,
        mrr: m.closing_mrr,
        average_mrr: average_mrr(m.closing_mrr, accounts),
        opening_mrr: m.opening_mrr,
        nrr: m.nrr,
        mrr_since_acquisition: acquired.and_then(|base| ratio(m.closing_mrr, *base)),
    }
}

/// `mrr / accounts`, half-even to the minor unit; `None` without accounts.
fn average_mrr(mrr: Money, accounts: i64) -> Option<Money> {
    (accounts > 0)
        .then(|| {
            Money::from_decimal_rounded(mrr.currency(), mrr.amount() / Decimal::from(accounts)).ok()
        })
        .flatten()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(text: &str) -> NaiveDate {
        domain::parse_date(text).unwrap()
    }

    fn account(id: &str, since: &str) -> AccountFacts {
        AccountFacts {
            account_id: id.into(),
            registered_on: Some(date(since)),
        }
    }

    fn sub(
        id: &str,
        account: &str,
        product: &str,
        start: &str,
        cancel: Option<&str>,
        amendments: &[(&str, i64)],
    ) -> SubscriptionFacts {
        SubscriptionFacts {
            subscription_id: id.into(),
            account_id: account.into(),
            product_id: product.into(),
            currency: Currency::USD,
            start_date: date(start),
            cancel_date: cancel.map(date),
            amendments: amendments
                .iter()
                .map(|(d, major)| (date(d), major * 100))
                .collect(),
        }
    }

    /// Two cohorts: A and B joined in January 2025 ($1,000 and $500), C in
    /// April 2025 ($2,000). A grows to $1,500 in 2026-02 (upsell) and buys a
    /// $300 module in 2026-03 (cross-sell); B churns on 2026-02-15; C stays.
    fn book() -> (Vec<AccountFacts>, Vec<SubscriptionFacts>) {
        (
            vec![
                account("A", "2025-01-10"),
                account("B", "2025-01-20"),
                account("C", "2025-04-02"),
            ],
            vec![
                sub(
                    "a1",
                    "A",
                    "core",
                    "2025-01-10",
                    None,
                    &[("2025-01-10", 1000), ("2026-02-01", 1500)],
                ),
                sub(
                    "a2",
                    "A",
                    "module",
                    "2026-03-05",
                    None,
                    &[("2026-03-05", 300)],
                ),
                sub(
                    "b1",
                    "B",
                    "core",
                    "2025-01-20",
                    Some("2026-02-15"),
                    &[("2025-01-20", 500)],
                ),
                sub(
                    "c1",
                    "C",
                    "core",
                    "2025-04-02",
                    None,
                    &[("2025-04-02", 2000)],
                ),
            ],
        )
    }

    #[test]
    fn cohorts_by_month_with_figures_checkable_by_hand() {
        let (accounts, subs) = book();
        let periods = Grain::Month.periods(date("2026-01-01"), date("2026-03-31"));
        assert_eq!(periods.len(), 3);
        let rows = cohort_revenue(&accounts, &subs, Grain::Month, &periods);
        assert_eq!(rows.len(), 2);
        let january = &rows[0];
        assert_eq!(january.cohort.label, "2025-01");
        let p: Vec<&CohortPeriod> = january.periods.iter().collect();
        // 2026-01: A 1,000 + B 500, two accounts, average 750.
        assert_eq!(p[0].accounts, 2);
        assert_eq!(p[0].mrr.to_amount_string(), "1500.00");
        assert_eq!(p[0].average_mrr.unwrap().to_amount_string(), "750.00");
        assert_eq!(p[0].nrr, Some(Decimal::ONE));
        // 2026-02: A 1,500, B gone: opening 1,500, closing 1,500, NRR 1.0000.
        assert_eq!(p[1].accounts, 1);
        assert_eq!(p[1].mrr.to_amount_string(), "1500.00");
        assert_eq!(p[1].nrr, Some(Decimal::ONE));
        // 2026-03: A 1,800 (+ its module); NRR 1,800 / 1,500 = 1.2000. The
        // cohort closed its first month at 1,500: since then 1.2000.
        assert_eq!(p[2].mrr.to_amount_string(), "1800.00");
        assert_eq!(p[2].opening_mrr.to_amount_string(), "1500.00");
        assert_eq!(p[2].nrr, Some(Decimal::new(12000, 4)));
        assert_eq!(p[2].mrr_since_acquisition, Some(Decimal::new(12000, 4)));
        let april = &rows[1];
        assert_eq!(april.cohort.label, "2025-04");
        assert_eq!(april.periods[2].mrr.to_amount_string(), "2000.00");
        assert_eq!(
            april.periods[2].average_mrr.unwrap().to_amount_string(),
            "2000.00"
        );
    }

    #[test]
    fn quarters_group_cohorts_and_periods() {
        let (accounts, subs) = book();
        let periods = Grain::Quarter.periods(date("2025-01-01"), date("2026-03-31"));
        let labels: Vec<&str> = periods.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            labels,
            ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1"]
        );
        let rows = cohort_revenue(&accounts, &subs, Grain::Quarter, &periods);
        // A and B in 2025-Q1, C in 2025-Q2 — which has no period before it.
        assert_eq!(rows[0].cohort.label, "2025-Q1");
        assert_eq!(rows[0].periods.len(), 5);
        assert_eq!(rows[1].cohort.label, "2025-Q2");
        assert_eq!(rows[1].periods.len(), 4);
        assert_eq!(rows[1].periods[0].period.label, "2025-Q2");
        assert_eq!(
            Grain::Quarter.period_of(date("2026-11-30")).unwrap().label,
            "2026-Q4"
        );
    }

    #[test]
    fn the_average_is_the_mrr_shared_by_the_accounts_half_even() {
        let usd = |minor| Money::from_minor(Currency::USD, minor);
        assert_eq!(average_mrr(usd(150_000), 2), Some(usd(75_000)));
        // $1,000.00 over 3 accounts: $333.33 each.
        assert_eq!(average_mrr(usd(100_000), 3), Some(usd(33_333)));
        // $0.05 over 2: $0.025 rounds to the even cent.
        assert_eq!(average_mrr(usd(5), 2), Some(usd(2)));
        assert_eq!(average_mrr(usd(100_000), 0), None);
    }

    #[test]
    fn an_account_joins_the_cohort_of_its_first_subscription() {
        let (_, subs) = book();
        let by_account = subscriptions_by_account(&subs);
        let found: Vec<(String, Vec<&str>)> = cohorts(&by_account, Grain::Month)
            .into_iter()
            .map(|(period, members)| (period.label, members))
            .collect();
        // A's module of 2026-03 does not move it out of 2025-01.
        assert_eq!(
            found,
            vec![
                ("2025-01".to_owned(), vec!["A", "B"]),
                ("2025-04".to_owned(), vec!["C"]),
            ]
        );
    }

    #[test]
    fn a_cohorts_mrr_is_the_sum_of_its_accounts_and_only_accounts_with_mrr_count() {
        let (accounts, subs) = book();
        let by_account = subscriptions_by_account(&subs);
        let cohort = CohortBook::of(&accounts, &by_account, &["A", "B"]);
        let march = Grain::Month.period_of(date("2026-03-01")).unwrap().range;
        let january = Grain::Month.period_of(date("2026-01-01")).unwrap().range;
        let total = cohort.closing_mrr(&march)["USD"].minor();
        let each: i64 = cohort
            .per_account
            .iter()
            .flat_map(|(facts, subs)| revenue_metrics(facts, subs, &march))
            .map(|m| m.closing_mrr.minor())
            .sum();
        assert_eq!(total, each);
        assert_eq!(total, 180_000);
        // B churned in February: only A has MRR in March; both in January.
        assert_eq!(cohort.accounts_with_mrr(&march)["USD"], 1);
        assert_eq!(cohort.accounts_with_mrr(&january)["USD"], 2);
    }

    fn month_first(m: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025 + i32::try_from(m / 12).unwrap(), m % 12 + 1, 1).unwrap()
    }

    prop_compose! {
        fn arb_sub()(
            account in 0..5_usize,
            product in 0..3_usize,
            usd in proptest::bool::ANY,
            start in 0..24_u32,
            start_day in 0..28_i64,
            cancel in proptest::option::of((0..30_u32, 0..28_i64)),
            amendments in proptest::collection::vec((0..30_u32, 0..28_i64, 0..50_000_i64), 0..4),
            initial in 1..50_000_i64,
        ) -> SubscriptionFacts {
            let on = |m: u32, d: i64| month_first(m) + chrono::Duration::days(d);
            let start = on(start, start_day);
            let mut all = vec![(start, initial)];
            all.extend(amendments.into_iter().map(|(m, d, a)| (on(m, d), a)));
            SubscriptionFacts {
                subscription_id: String::new(),
                account_id: format!("a{account}"),
                product_id: format!("p{product}"),
                currency: if usd { Currency::USD } else { Currency::BRL },
                start_date: start,
                cancel_date: cancel.map(|(m, d)| on(m, d)),
                amendments: all,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Over the cohorts, each period's MRR, opening MRR and accounts add up
        /// to GetRevenueMetrics' closing and opening MRR of the whole book.
        #[test]
        fn cohorts_add_up_to_the_bridge(
            subs in proptest::collection::vec(arb_sub(), 0..12),
            registered in proptest::collection::vec(proptest::option::of(0..24_u32), 5),
            grain in prop_oneof![Just(Grain::Month), Just(Grain::Quarter)],
        ) {
            let accounts: Vec<AccountFacts> = registered
                .iter()
                .enumerate()
                .map(|(i, m)| AccountFacts {
                    account_id: format!("a{i}"),
                    registered_on: m.map(month_first),
                })
                .collect();
            let periods = grain.periods(month_first(0), month_first(29));
            let rows = cohort_revenue(&accounts, &subs, grain, &periods);
            for period in &periods {
                for m in revenue_metrics(&accounts, &subs, &period.range) {
                    let of_period = rows
                        .iter()
                        .filter(|r| r.currency == m.currency)
                        .flat_map(|r| r.periods.iter())
                        .filter(|p| p.period == *period);
                    let (mut closing, mut opening) = (0_i64, 0_i64);
                    for p in of_period {
                        closing += p.mrr.minor();
                        opening += p.opening_mrr.minor();
                        prop_assert_eq!(p.accounts == 0, p.average_mrr.is_none());
                        if p.mrr.minor() > 0 {
                            prop_assert!(p.accounts > 0);
                        }
                    }
                    prop_assert_eq!(closing, m.closing_mrr.minor(), "{}", period.label);
                    prop_assert_eq!(opening, m.opening_mrr.minor(), "{}", period.label);
                }
            }
        }
    }
}
