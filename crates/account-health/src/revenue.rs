//! Revenue metrics for a period (SPEC §2 "Revenue metrics"): cross-sell, new, upsell,
//! expansion, contraction and churned MRR, NRR/GRR, cross-sell penetration, products per
//! account, expansion share and time to first cross-sell — one set per currency, never mixed.
//!
//! Pure functions over plain facts: the store loads accounts and subscriptions (with their
//! MRR amendment history) and [`revenue_metrics`] does the arithmetic.
//!
//! # The Conexa cross-sell rule (seed `003_b4e09a549b2b104a.txt`)
//! A subscription is a cross-sell of a period when it starts inside the period, its account
//! was registered before the period's first day, and it did not start on the same day as the
//! account's first subscription (those are New MRR: a new customer who buys complementary
//! services on day one is not a cross-sell). See [`is_cross_sell`].
//!
//! # Readings of the SPEC where its text leaves room (decided here, tested below)
//! - **Account-level history.** "The account's first subscription" and "new customer" look
//!   at all of the account's subscriptions, whatever their currency; only the *amounts* are
//!   kept per currency. A USD customer whose first BRL contract starts in February is a BRL
//!   cross-sell, not BRL New MRR.
//! - **Registration.** A missing registration date (or an account absent from `accounts`)
//!   means "registered when the first subscription started". A given date is used as is,
//!   even if it is after the first subscription. Duplicate account rows: the earliest known
//!   registration date wins.
//! - **Void subscriptions** (cancelled on or before their start date) were never active, so
//!   they carry no MRR anywhere; they are also ignored when finding the account's first
//!   subscription, so a contract voided on day one does not turn the real one into a
//!   cross-sell.
//! - **One class per subscription** (SPEC §2): a subscription is a cross-sell when the rule
//!   holds for the calendar month it starts in, otherwise it is new — whatever period is
//!   asked. So every flow figure of a range is the sum of that figure over its days (a year
//!   is the sum of its months), and a subscription bought in the account's first days by a
//!   customer registered that same month is New MRR, not nothing.
//! - **Initial MRR** of a subscription is its MRR on its start date: the latest amendment
//!   effective on or before that date (0 if there is none).
//! - **Amendments** may come in any order; several on the same date collapse to the one given
//!   last in the input (the last recorded: a later correction). Upsell and contraction are
//!   the day-over-day net change of a subscription's MRR: for each date in the period on
//!   which it is in force that day and the day before, MRR(d) − MRR(d − 1), upsell when
//!   positive, contraction when negative — whether or not it is cancelled later. An
//!   amendment effective on or after the cancellation date changes nothing.
//! - **The bridge ties.** Opening MRR is the MRR in force on the day before the period
//!   (the close of `start − 1`), closing MRR the MRR on `end − 1`, so for every account and
//!   currency closing = opening + new + cross-sell + upsell − contraction − churned. A
//!   subscription starting on the period's first day is not in the opening MRR; an
//!   amendment effective on the first day is a movement of the period, not of the opening.
//! - **Time to first cross-sell**: an account's first cross-sell is its earliest subscription
//!   that is a cross-sell for its own start month; accounts whose first cross-sell starts in
//!   the period count in the currency of that subscription (in each currency, if cross-sells
//!   in several currencies start that same day).
//! - **Per-currency portfolio**: penetration and products per account count distinct
//!   products per account among that currency's subscriptions.
//! - **Which currencies**: every currency of an input subscription gets an entry, even if all
//!   its figures are zero for the period.
//!
//! # Arithmetic
//! Amounts are `i64` minor units; every sum is accumulated in `i128` with saturating adds
//! (overflow needs more than 2^63 maximal amounts, so it cannot happen, but it cannot panic
//! either). Figures are returned as [`Money`], clamped to the `i64` range, which only matters
//! for inputs whose totals exceed ±9.2 × 10^18 minor units. Ratios are computed from the
//! exact `i128` sums by integer division with half-even rounding to 4 places, so they are
//! exact; a ratio whose value does not fit a `Decimal` would be `None` (unreachable with
//! `i64` inputs and fewer than 2^32 rows).
//!
//! # Cost
//! O(n log n) in the number of subscriptions plus amendments: subscriptions are grouped by
//! account with one sort, amendment histories are sorted once (borrowed when already
//! sorted), and each MRR lookup is a binary search.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use chrono::Datelike;
use domain::{Currency, DateRange, Decimal, Money, NaiveDate};

/// What the metrics need to know about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFacts {
    pub account_id: String,
    /// Customer-since (registration) date; `None` means "when its first subscription started".
    pub registered_on: Option<NaiveDate>,
}

/// A subscription with its MRR history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionFacts {
    pub subscription_id: String,
    pub account_id: String,
    pub product_id: String,
    pub currency: Currency,
    pub start_date: NaiveDate,
    pub cancel_date: Option<NaiveDate>,
    /// `(effective date, MRR in minor units)`, the first normally effective on `start_date`;
    /// any order.
    pub amendments: Vec<(NaiveDate, i64)>,
}

/// The revenue metrics of one currency for one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyMetrics {
    pub currency: Currency,
    pub cross_sell_mrr: Money,
    pub new_mrr: Money,
    pub upsell_mrr: Money,
    /// `cross_sell_mrr + upsell_mrr`.
    pub expansion_mrr: Money,
    pub contraction_mrr: Money,
    pub churned_mrr: Money,
    /// Σ MRR(a, start − 1): the MRR in force at the close of the day before the period
    /// (the starting cohort is the accounts for which it is > 0).
    pub opening_mrr: Money,
    /// Σ MRR(a, end − 1) over all accounts.
    pub closing_mrr: Money,
    /// Ratios: exact decimals rounded half-even to 4 places; `None` when the denominator is 0.
    pub nrr: Option<Decimal>,
    pub grr: Option<Decimal>,
    pub cross_sell_penetration: Option<Decimal>,
    pub products_per_account: Option<Decimal>,
    pub expansion_share: Option<Decimal>,
    pub avg_days_to_first_cross_sell: Option<Decimal>,
}

/// Is `sub` cross-sell MRR of `period`? It starts inside `period` and is a cross-sell of
/// its own start month ([`is_cross_sell_in_start_month`]): one class per subscription,
/// whatever period is asked. A void subscription (cancelled on or before its start) is
/// never a cross-sell.
pub fn is_cross_sell(
    sub: &SubscriptionFacts,
    account_registered_on: Option<NaiveDate>,
    account_first_subscription_start: NaiveDate,
    period: &DateRange,
) -> bool {
    period.contains(sub.start_date)
        && is_cross_sell_in_start_month(
            sub,
            account_registered_on,
            account_first_subscription_start,
        )
}

/// The Conexa rule applied to the calendar month `sub` starts in, whatever period is being
/// reported: is this subscription a cross-sell (rather than new)? Its account was
/// registered before that month's first day (`None` → registered when its first
/// subscription started), and it did not start on the same day as the account's first
/// subscription.
pub fn is_cross_sell_in_start_month(
    sub: &SubscriptionFacts,
    account_registered_on: Option<NaiveDate>,
    account_first_subscription_start: NaiveDate,
) -> bool {
    !is_void(sub)
        && conexa_rule(
            sub.start_date,
            account_registered_on.unwrap_or(account_first_subscription_start),
            account_first_subscription_start,
            first_day_of_month(sub.start_date),
        )
}

/// The start date of the account's first subscription: the earliest start among `subs`
/// that are not void. `None` when there is none.
pub fn first_subscription_start<'a>(
    subs: impl IntoIterator<Item = &'a SubscriptionFacts>,
) -> Option<NaiveDate> {
    subs.into_iter()
        .filter(|sub| !is_void(sub))
        .map(|sub| sub.start_date)
        .min()
}

/// All metrics for the period `[period.start(), period.end())`, one entry per currency of
/// the given subscriptions, sorted by currency code. See the module docs for the rules.
pub fn revenue_metrics(
    accounts: &[AccountFacts],
    subscriptions: &[SubscriptionFacts],
    period: &DateRange,
) -> Vec<CurrencyMetrics> {
    let registrations = registrations_by_account(accounts);
    let prepared: Vec<Prepared<'_>> = subscriptions.iter().map(Prepared::new).collect();

    let mut totals: BTreeMap<&'static str, Totals> = BTreeMap::new();
    for sub in subscriptions {
        totals
            .entry(sub.currency.code())
            .or_insert_with(|| Totals::new(sub.currency));
    }

    // Group by account once: one sort of indices, then contiguous runs.
    let mut order: Vec<usize> = (0..prepared.len())
        .filter(|&index| !prepared[index].is_void())
        .collect();
    order.sort_unstable_by(|&a, &b| {
        subscriptions[a]
            .account_id
            .cmp(&subscriptions[b].account_id)
    });
    let mut account_subs: Vec<&Prepared<'_>> = Vec::new();
    for run in order.chunk_by(|&a, &b| subscriptions[a].account_id == subscriptions[b].account_id) {
        account_subs.clear();
        account_subs.extend(run.iter().map(|&index| &prepared[index]));
        let registered_on = registrations
            .get(subscriptions[run[0]].account_id.as_str())
            .copied()
            .flatten();
        add_account(&mut totals, &account_subs, registered_on, period);
    }

    totals.into_values().map(Totals::finish).collect()
}

// ---------------------------------------------------------------------------------------
// The rule and small date helpers

fn conexa_rule(
    start_date: NaiveDate,
    registered_on: NaiveDate,
    first_subscription_start: NaiveDate,
    month_first_day: NaiveDate,
) -> bool {
    registered_on < month_first_day && start_date != first_subscription_start
}

fn is_void(sub: &SubscriptionFacts) -> bool {
    sub.cancel_date
        .is_some_and(|cancel| cancel <= sub.start_date)
}

fn first_day_of_month(date: NaiveDate) -> NaiveDate {
    // Day 1 exists in every month chrono can represent.
    date.with_day(1).unwrap_or(date)
}

fn registrations_by_account(accounts: &[AccountFacts]) -> HashMap<&str, Option<NaiveDate>> {
    let mut registrations: HashMap<&str, Option<NaiveDate>> =
        HashMap::with_capacity(accounts.len());
    for account in accounts {
        let known = registrations
            .entry(account.account_id.as_str())
            .or_insert(None);
        *known = match (*known, account.registered_on) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    registrations
}

// ---------------------------------------------------------------------------------------
// A subscription ready for MRR lookups

struct Prepared<'a> {
    facts: &'a SubscriptionFacts,
    /// Amendments sorted by date, one per date (the last given wins).
    steps: Cow<'a, [(NaiveDate, i64)]>,
}

impl<'a> Prepared<'a> {
    fn new(facts: &'a SubscriptionFacts) -> Prepared<'a> {
        let already_clean = facts
            .amendments
            .windows(2)
            .all(|pair| pair[0].0 < pair[1].0);
        let steps = if already_clean {
            Cow::Borrowed(facts.amendments.as_slice())
        } else {
            let mut sorted = facts.amendments.clone();
            sorted.sort_by_key(|&(date, _)| date); // stable: input order kept within a date
            let mut collapsed: Vec<(NaiveDate, i64)> = Vec::with_capacity(sorted.len());
            for (date, amount) in sorted {
                match collapsed.last_mut() {
                    Some(last) if last.0 == date => last.1 = amount,
                    _ => collapsed.push((date, amount)),
                }
            }
            Cow::Owned(collapsed)
        };
        Prepared { facts, steps }
    }

    fn is_void(&self) -> bool {
        is_void(self.facts)
    }

    fn is_active_on(&self, date: NaiveDate) -> bool {
        self.facts.start_date <= date && self.facts.cancel_date.is_none_or(|cancel| cancel > date)
    }

    /// MRR on `date`: the latest amendment effective on or before it, 0 when inactive.
    fn mrr_on(&self, date: NaiveDate) -> i64 {
        if !self.is_active_on(date) {
            return 0;
        }
        let effective = self.steps.partition_point(|&(day, _)| day <= date);
        effective
            .checked_sub(1)
            .map_or(0, |index| self.steps[index].1)
    }

    fn initial_mrr(&self) -> i64 {
        self.mrr_on(self.facts.start_date)
    }

    /// `(date, MRR(date) − MRR(date − 1))` for each date inside `period` on which the
    /// subscription is in force that day and the day before and its MRR changes: the
    /// dates of its amendments after its start, while it is in force. Amendments are one
    /// per date, so the step before is the MRR of the day before.
    fn deltas_in(&self, period: &DateRange) -> impl Iterator<Item = (NaiveDate, i128)> {
        let from = self.steps.partition_point(|&(day, _)| day < period.start());
        let to = self.steps.partition_point(|&(day, _)| day < period.end());
        (from..to).filter_map(move |index| {
            let (date, amount) = self.steps[index];
            if date <= self.facts.start_date || !self.is_active_on(date) {
                return None;
            }
            let previous = index.checked_sub(1).map_or(0, |prev| self.steps[prev].1);
            Some((date, i128::from(amount) - i128::from(previous)))
        })
    }
}

// ---------------------------------------------------------------------------------------
// Accumulation

/// Running sums for one currency, in `i128` minor units.
struct Totals {
    currency: Currency,
    cross_sell: i128,
    new: i128,
    upsell: i128,
    contraction: i128,
    churned: i128,
    opening: i128,
    cohort_closing: i128,
    cohort_retained: i128,
    closing: i128,
    accounts_with_products: i128,
    accounts_with_two_or_more: i128,
    active_products: i128,
    first_cross_sell_accounts: i128,
    first_cross_sell_days: i128,
}

impl Totals {
    fn new(currency: Currency) -> Totals {
        Totals {
            currency,
            cross_sell: 0,
            new: 0,
            upsell: 0,
            contraction: 0,
            churned: 0,
            opening: 0,
            cohort_closing: 0,
            cohort_retained: 0,
            closing: 0,
            accounts_with_products: 0,
            accounts_with_two_or_more: 0,
            active_products: 0,
            first_cross_sell_accounts: 0,
            first_cross_sell_days: 0,
        }
    }

    fn finish(self) -> CurrencyMetrics {
        let money = |minor: i128| Money::from_minor(self.currency, clamp_to_i64(minor));
        let expansion = self.cross_sell.saturating_add(self.upsell);
        CurrencyMetrics {
            currency: self.currency,
            cross_sell_mrr: money(self.cross_sell),
            new_mrr: money(self.new),
            upsell_mrr: money(self.upsell),
            expansion_mrr: money(expansion),
            contraction_mrr: money(self.contraction),
            churned_mrr: money(self.churned),
            opening_mrr: money(self.opening),
            closing_mrr: money(self.closing),
            nrr: ratio(self.cohort_closing, self.opening),
            grr: ratio(self.cohort_retained, self.opening),
            cross_sell_penetration: ratio(
                self.accounts_with_two_or_more,
                self.accounts_with_products,
            ),
            products_per_account: ratio(self.active_products, self.accounts_with_products),
            expansion_share: ratio(expansion, self.new.saturating_add(expansion)),
            avg_days_to_first_cross_sell: ratio(
                self.first_cross_sell_days,
                self.first_cross_sell_accounts,
            ),
        }
    }
}

/// One account's MRR on the two dates the bridge looks at, in one currency.
struct AccountMrr {
    currency: Currency,
    opening: i128,
    closing: i128,
}

/// When an account began: registration (or, unknown, its first
/// subscription's start) and its first subscription's start.
#[derive(Debug, Clone, Copy)]
struct AccountStart {
    registered_on: NaiveDate,
    first_start: NaiveDate,
}

/// One subscription's part of the MRR bridge for a period:
/// closing = opening + new + cross-sell + upsell − contraction − churned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SubscriptionBridge {
    /// MRR at the close of the day before the period.
    opening: i128,
    /// Initial MRR of a subscription starting in the period, by the rule for
    /// its own start month.
    cross_sell: i128,
    new: i128,
    upsell: i128,
    contraction: i128,
    /// MRR in force the day before a cancellation inside the period.
    churned: i128,
    /// MRR on the period's last day.
    closing: i128,
}

impl SubscriptionBridge {
    fn of(sub: &Prepared<'_>, account: AccountStart, period: &DateRange) -> SubscriptionBridge {
        let facts = sub.facts;
        let mut bridge = SubscriptionBridge::default();
        if period.contains(facts.start_date) {
            let initial = i128::from(sub.initial_mrr());
            let own_month = first_day_of_month(facts.start_date);
            if conexa_rule(
                facts.start_date,
                account.registered_on,
                account.first_start,
                own_month,
            ) {
                bridge.cross_sell = initial;
            } else {
                bridge.new = initial;
            }
        }
        for (_, delta) in sub.deltas_in(period) {
            match delta.cmp(&0) {
                Ordering::Greater => bridge.upsell = bridge.upsell.saturating_add(delta),
                Ordering::Less => bridge.contraction = bridge.contraction.saturating_sub(delta),
                Ordering::Equal => {}
            }
        }
        if let Some(cancel) = facts.cancel_date.filter(|&cancel| period.contains(cancel)) {
            // Not void, so cancel > start and the day before exists.
            bridge.churned = i128::from(cancel.pred_opt().map_or(0, |day| sub.mrr_on(day)));
        }
        // The close of the day before the period; a period starting on chrono's first
        // representable day opens with nothing.
        bridge.opening = i128::from(period.start().pred_opt().map_or(0, |day| sub.mrr_on(day)));
        bridge.closing = i128::from(sub.mrr_on(period.last_day()));
        bridge
    }
}

impl Totals {
    /// Adds a subscription's movements (not its opening and closing: those
    /// count per account, see [`Totals::add_account_mrr`]).
    fn add_movements(&mut self, bridge: &SubscriptionBridge) {
        self.cross_sell = self.cross_sell.saturating_add(bridge.cross_sell);
        self.new = self.new.saturating_add(bridge.new);
        self.upsell = self.upsell.saturating_add(bridge.upsell);
        self.contraction = self.contraction.saturating_add(bridge.contraction);
        self.churned = self.churned.saturating_add(bridge.churned);
    }

    /// Adds an account's opening and closing MRR; only an account that
    /// opened with MRR is in the cohort NRR and GRR look at, and GRR counts
    /// at most what it opened with.
    fn add_account_mrr(&mut self, mrr: &AccountMrr) {
        self.closing = self.closing.saturating_add(mrr.closing);
        if mrr.opening > 0 {
            self.opening = self.opening.saturating_add(mrr.opening);
            self.cohort_closing = self.cohort_closing.saturating_add(mrr.closing);
            self.cohort_retained = self
                .cohort_retained
                .saturating_add(mrr.closing.min(mrr.opening));
        }
    }

    /// Adds an account holding `products` distinct products in this currency.
    fn add_portfolio(&mut self, products: usize) {
        let products = i128::try_from(products).unwrap_or(i128::MAX);
        self.accounts_with_products += 1;
        self.active_products = self.active_products.saturating_add(products);
        if products >= 2 {
            self.accounts_with_two_or_more += 1;
        }
    }
}

/// Sums subscriptions' (currency, opening, closing) per currency.
fn mrr_by_currency(bridges: impl IntoIterator<Item = (Currency, i128, i128)>) -> Vec<AccountMrr> {
    let mut by_currency: Vec<AccountMrr> = Vec::with_capacity(1);
    for (currency, opening, closing) in bridges {
        match by_currency
            .iter_mut()
            .find(|entry| entry.currency == currency)
        {
            Some(entry) => {
                entry.opening = entry.opening.saturating_add(opening);
                entry.closing = entry.closing.saturating_add(closing);
            }
            None => by_currency.push(AccountMrr {
                currency,
                opening,
                closing,
            }),
        }
    }
    by_currency
}

/// The distinct (currency, product) pairs of subscriptions active on `day`,
/// sorted, so each currency's products are one run.
fn active_products<'a>(subs: &[&Prepared<'a>], day: NaiveDate) -> Vec<(&'static str, &'a str)> {
    let mut active: Vec<(&'static str, &str)> = subs
        .iter()
        .filter(|sub| sub.is_active_on(day))
        .map(|sub| (sub.facts.currency.code(), sub.facts.product_id.as_str()))
        .collect();
    active.sort_unstable();
    active.dedup();
    active
}

/// Adds one account (its non-void subscriptions, at least one) to the currency totals.
fn add_account(
    totals: &mut BTreeMap<&'static str, Totals>,
    subs: &[&Prepared<'_>],
    registered_on: Option<NaiveDate>,
    period: &DateRange,
) {
    let Some(first_start) = subs.iter().map(|sub| sub.facts.start_date).min() else {
        return;
    };
    let registered_on = registered_on.unwrap_or(first_start);
    let account = AccountStart {
        registered_on,
        first_start,
    };
    // Only currencies with totals count (every input currency has them).
    let counted: Vec<&Prepared<'_>> = subs
        .iter()
        .copied()
        .filter(|sub| totals.contains_key(sub.facts.currency.code()))
        .collect();

    let mut mrr = Vec::with_capacity(counted.len());
    for sub in &counted {
        let bridge = SubscriptionBridge::of(sub, account, period);
        if let Some(total) = totals.get_mut(sub.facts.currency.code()) {
            total.add_movements(&bridge);
        }
        mrr.push((sub.facts.currency, bridge.opening, bridge.closing));
    }
    for entry in &mrr_by_currency(mrr) {
        if let Some(total) = totals.get_mut(entry.currency.code()) {
            total.add_account_mrr(entry);
        }
    }
    for run in active_products(&counted, period.last_day()).chunk_by(|a, b| a.0 == b.0) {
        if let Some(total) = totals.get_mut(run[0].0) {
            total.add_portfolio(run.len());
        }
    }

    add_first_cross_sell(totals, subs, registered_on, first_start, period);
}

/// Time to first cross-sell: if the account's first cross-sell (by the rule for its own
/// start month) starts in `period`, count its days since the first subscription.
fn add_first_cross_sell(
    totals: &mut BTreeMap<&'static str, Totals>,
    subs: &[&Prepared<'_>],
    registered_on: NaiveDate,
    first_start: NaiveDate,
    period: &DateRange,
) {
    let is_own_month_cross_sell = |sub: &&&Prepared<'_>| {
        conexa_rule(
            sub.facts.start_date,
            registered_on,
            first_start,
            first_day_of_month(sub.facts.start_date),
        )
    };
    let Some(first_cross_sell) = subs
        .iter()
        .filter(is_own_month_cross_sell)
        .map(|sub| sub.facts.start_date)
        .min()
    else {
        return;
    };
    if !period.contains(first_cross_sell) {
        return;
    }
    let days = i128::from((first_cross_sell - first_start).num_days());
    let mut currencies: Vec<&'static str> = subs
        .iter()
        .filter(|sub| sub.facts.start_date == first_cross_sell)
        .filter(is_own_month_cross_sell)
        .map(|sub| sub.facts.currency.code())
        .collect();
    currencies.sort_unstable();
    currencies.dedup();
    for code in currencies {
        if let Some(total) = totals.get_mut(code) {
            total.first_cross_sell_accounts += 1;
            total.first_cross_sell_days = total.first_cross_sell_days.saturating_add(days);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Exact arithmetic

fn clamp_to_i64(minor: i128) -> i64 {
    i64::try_from(minor).unwrap_or(if minor < 0 { i64::MIN } else { i64::MAX })
}

/// `numerator / denominator`, rounded half-even to 4 places by exact integer arithmetic;
/// `None` when the denominator is 0 (or the result does not fit a `Decimal`).
fn ratio(numerator: i128, denominator: i128) -> Option<Decimal> {
    const SCALE: i128 = 10_000;
    if denominator == 0 {
        return None;
    }
    let (numerator, denominator) = if denominator < 0 {
        (numerator.checked_neg()?, denominator.checked_neg()?)
    } else {
        (numerator, denominator)
    };
    let scaled = numerator.checked_mul(SCALE)?;
    let floor = scaled.div_euclid(denominator);
    let remainder = scaled.rem_euclid(denominator); // 0 ≤ remainder < denominator
    let rounded = match remainder.cmp(&(denominator - remainder)) {
        Ordering::Less => floor,
        Ordering::Greater => floor + 1,
        Ordering::Equal if floor.rem_euclid(2) == 0 => floor,
        Ordering::Equal => floor + 1,
    };
    Decimal::try_from_i128_with_scale(rounded, 4).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use domain::Month;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn date(text: &str) -> NaiveDate {
        domain::parse_date(text).unwrap()
    }

    fn month(text: &str) -> DateRange {
        Month::parse(text).unwrap().date_range()
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn account(id: &str, registered_on: Option<&str>) -> AccountFacts {
        AccountFacts {
            account_id: id.to_owned(),
            registered_on: registered_on.map(date),
        }
    }

    /// A subscription in `currency` whose MRR history is `amendments` (major units as text).
    fn sub_in(
        currency: Currency,
        id: &str,
        account_id: &str,
        product_id: &str,
        start: &str,
        cancel: Option<&str>,
        amendments: &[(&str, &str)],
    ) -> SubscriptionFacts {
        SubscriptionFacts {
            subscription_id: id.to_owned(),
            account_id: account_id.to_owned(),
            product_id: product_id.to_owned(),
            currency,
            start_date: date(start),
            cancel_date: cancel.map(date),
            amendments: amendments
                .iter()
                .map(|&(day, amount)| {
                    (
                        date(day),
                        Money::parse_amount(currency, amount).unwrap().minor(),
                    )
                })
                .collect(),
        }
    }

    /// A BRL subscription with one amendment on its start date.
    fn brl(
        id: &str,
        account_id: &str,
        product_id: &str,
        start: &str,
        mrr: &str,
    ) -> SubscriptionFacts {
        sub_in(
            Currency::BRL,
            id,
            account_id,
            product_id,
            start,
            None,
            &[(start, mrr)],
        )
    }

    fn only(metrics: Vec<CurrencyMetrics>) -> CurrencyMetrics {
        assert_eq!(metrics.len(), 1, "{metrics:?}");
        metrics.into_iter().next().unwrap()
    }

    fn amount(money: Money) -> String {
        money.to_amount_string()
    }

    /// Seed 003's February: X and Z were customers in January, Y starts in February with
    /// its contract and two recurring sales on the same day (R$400 in all).
    fn seed_subscriptions() -> Vec<SubscriptionFacts> {
        vec![
            brl("x-contract", "X", "erp", "2026-01-12", "1000.00"),
            brl("x-module", "X", "erp-module", "2026-02-09", "200.00"),
            brl("y-contract", "Y", "erp", "2026-02-10", "250.00"),
            brl("y-recurring-1", "Y", "payroll", "2026-02-10", "100.00"),
            brl("y-recurring-2", "Y", "tax", "2026-02-10", "50.00"),
            brl("z-contract", "Z", "erp", "2026-01-20", "800.00"),
            brl("z-new-contract", "Z", "bpo", "2026-02-16", "500.00"),
        ]
    }

    fn seed_accounts(y_registered_on: Option<&str>) -> Vec<AccountFacts> {
        vec![
            account("X", Some("2026-01-05")),
            account("Y", y_registered_on),
            account("Z", Some("2026-01-20")),
        ]
    }

    #[test]
    fn seed_003_conexa_february_cross_sell_is_r700() {
        let metrics = only(revenue_metrics(
            &seed_accounts(Some("2026-02-10")),
            &seed_subscriptions(),
            &month("2026-02"),
        ));
        assert_eq!(metrics.currency, Currency::BRL);
        assert_eq!(
            metrics.cross_sell_mrr,
            Money::parse("BRL", "700.00").unwrap()
        );
        assert_eq!(amount(metrics.new_mrr), "400.00");
        assert_eq!(amount(metrics.expansion_mrr), "700.00");
        assert_eq!(amount(metrics.upsell_mrr), "0.00");
    }

    #[test]
    fn seed_003_y_registered_in_january_is_still_new_mrr() {
        // Registered before February, but everything started on the day of its first
        // contract: the same-day exclusion keeps it out of cross-sell.
        let metrics = only(revenue_metrics(
            &seed_accounts(Some("2026-01-15")),
            &seed_subscriptions(),
            &month("2026-02"),
        ));
        assert_eq!(amount(metrics.cross_sell_mrr), "700.00");
        assert_eq!(amount(metrics.new_mrr), "400.00");
    }

    #[test]
    fn seed_003_y_registered_in_february_fails_the_registration_rule() {
        // Even a later recurring sale in February is no cross-sell: Y is not "da casa" yet.
        let mut subs = seed_subscriptions();
        subs.push(brl("y-later", "Y", "crm", "2026-02-20", "30.00"));
        let metrics = only(revenue_metrics(
            &seed_accounts(Some("2026-02-01")),
            &subs,
            &month("2026-02"),
        ));
        assert_eq!(amount(metrics.cross_sell_mrr), "700.00");
        assert_eq!(amount(metrics.new_mrr), "430.00");
    }

    #[test]
    fn seed_003_unknown_registration_means_first_subscription_start() {
        let metrics = only(revenue_metrics(
            &[account("X", None)],
            &seed_subscriptions(),
            &month("2026-02"),
        ));
        // X: registered = 2026-01-12; Y: 2026-02-10; Z (not listed): 2026-01-20.
        assert_eq!(amount(metrics.cross_sell_mrr), "700.00");
        assert_eq!(amount(metrics.new_mrr), "400.00");
    }

    #[test]
    fn the_conexa_rule_on_its_own() {
        let feb = month("2026-02");
        let subs = seed_subscriptions();
        let x_first = date("2026-01-12");
        let x_module = &subs[1];
        assert!(is_cross_sell(
            x_module,
            Some(date("2026-01-05")),
            x_first,
            &feb
        ));
        assert!(is_cross_sell(x_module, None, x_first, &feb));
        // Registered on the month's first day is not "before" it.
        assert!(!is_cross_sell(
            x_module,
            Some(date("2026-02-01")),
            x_first,
            &feb
        ));
        // Outside the period.
        assert!(!is_cross_sell(x_module, None, x_first, &month("2026-03")));
        // Same day as the first subscription.
        let y_recurring = &subs[3];
        let y_first = date("2026-02-10");
        assert!(!is_cross_sell(
            y_recurring,
            Some(date("2026-01-15")),
            y_first,
            &feb
        ));
        // A void subscription never is.
        let mut void = x_module.clone();
        void.cancel_date = Some(void.start_date);
        assert!(!is_cross_sell(&void, None, x_first, &feb));
        // Own-month variant.
        assert!(is_cross_sell_in_start_month(x_module, None, x_first));
        assert!(!is_cross_sell_in_start_month(y_recurring, None, y_first));
        assert_eq!(first_subscription_start(&subs[2..5]), Some(y_first));
        assert_eq!(first_subscription_start([&void]), None);
    }

    #[test]
    fn a_new_customer_can_cross_sell_in_its_first_month_if_registered_before() {
        // Registered in January, first contract 1 February, second contract 15 February:
        // the rule makes the second one a cross-sell and only the first New MRR.
        let subs = vec![
            brl("a1", "A", "erp", "2026-02-01", "300.00"),
            brl("a2", "A", "crm", "2026-02-15", "70.00"),
        ];
        let metrics = only(revenue_metrics(
            &[account("A", Some("2026-01-20"))],
            &subs,
            &month("2026-02"),
        ));
        assert_eq!(amount(metrics.new_mrr), "300.00");
        assert_eq!(amount(metrics.cross_sell_mrr), "70.00");
        // Its first contract started on the period's first day: a movement of the month,
        // not part of the MRR it opened with.
        assert_eq!(amount(metrics.opening_mrr), "0.00");
        assert_eq!(amount(metrics.closing_mrr), "370.00");
    }

    #[test]
    fn a_returning_customer_is_not_new_mrr() {
        // Had a subscription that ended; a later one is not New MRR (it was a customer
        // before) and, by the Conexa rule, counts as cross-sell.
        let subs = vec![
            sub_in(
                Currency::BRL,
                "old",
                "R",
                "erp",
                "2025-06-01",
                Some("2025-12-01"),
                &[("2025-06-01", "100.00")],
            ),
            brl("back", "R", "erp", "2026-02-03", "90.00"),
        ];
        let metrics = only(revenue_metrics(&[], &subs, &month("2026-02")));
        assert_eq!(amount(metrics.new_mrr), "0.00");
        assert_eq!(amount(metrics.cross_sell_mrr), "90.00");
        assert_eq!(metrics.opening_mrr, Money::zero(Currency::BRL));
        assert_eq!(metrics.nrr, None);
    }

    /// March 2026, USD, every figure computed by hand:
    /// - A (cohort): a1 100 → 250 on 03-10 (+150 upsell), a2 200 → 120 on 03-15 (80
    ///   contraction). MRR 300 at the close of 02-28, 370 on 03-31.
    /// - B (cohort): b1 300 → 250 on 03-05 (50 contraction, although it is cancelled
    ///   later), cancelled 03-20: churn is 250, the MRR in force on 03-19. 300 → 0.
    /// - C (new customer from 03-02): 400, → 450 on 03-25 (+50 upsell). 0 → 450.
    /// - D (cohort): in force on 02-28, cancelled on the period's first day: churn 80.
    ///   80 → 0.
    ///
    /// The bridge: 680 + 400 new + 0 cross-sell + 200 upsell − 130 contraction − 330 churn
    /// makes 820.
    fn march_accounts() -> Vec<AccountFacts> {
        vec![
            account("A", Some("2025-12-15")),
            account("B", Some("2025-11-01")),
            account("C", Some("2026-03-02")),
            account("D", Some("2026-01-15")),
        ]
    }

    fn march_subscriptions() -> Vec<SubscriptionFacts> {
        let usd = Currency::USD;
        vec![
            sub_in(
                usd,
                "a1",
                "A",
                "p1",
                "2026-01-01",
                None,
                &[("2026-03-10", "250.00"), ("2026-01-01", "100.00")],
            ),
            sub_in(
                usd,
                "a2",
                "A",
                "p2",
                "2026-02-01",
                None,
                &[("2026-02-01", "200.00"), ("2026-03-15", "120.00")],
            ),
            sub_in(
                usd,
                "b1",
                "B",
                "p1",
                "2025-12-01",
                Some("2026-03-20"),
                &[("2025-12-01", "300.00"), ("2026-03-05", "250.00")],
            ),
            sub_in(
                usd,
                "c1",
                "C",
                "p1",
                "2026-03-02",
                None,
                &[("2026-03-02", "400.00"), ("2026-03-25", "450.00")],
            ),
            sub_in(
                usd,
                "d1",
                "D",
                "p3",
                "2026-01-15",
                Some("2026-03-01"),
                &[("2026-01-15", "80.00")],
            ),
        ]
    }

    #[test]
    fn hand_computed_march() {
        let m = only(revenue_metrics(
            &march_accounts(),
            &march_subscriptions(),
            &month("2026-03"),
        ));
        assert_eq!(m.currency, Currency::USD);
        assert_eq!(amount(m.cross_sell_mrr), "0.00");
        assert_eq!(amount(m.new_mrr), "400.00");
        assert_eq!(amount(m.upsell_mrr), "200.00");
        assert_eq!(amount(m.expansion_mrr), "200.00");
        assert_eq!(amount(m.contraction_mrr), "130.00");
        assert_eq!(amount(m.churned_mrr), "330.00");
        assert_eq!(amount(m.opening_mrr), "680.00");
        assert_eq!(amount(m.closing_mrr), "820.00");
        // NRR = (370 + 0 + 0) / 680; GRR = (300 + 0 + 0) / 680.
        assert_eq!(m.nrr, Some(dec("0.5441")));
        assert_eq!(m.grr, Some(dec("0.4412")));
        // Active on 03-31: A {p1, p2}, C {p1}.
        assert_eq!(m.cross_sell_penetration, Some(dec("0.5000")));
        assert_eq!(m.products_per_account, Some(dec("1.5000")));
        // 200 / (400 + 200).
        assert_eq!(m.expansion_share, Some(dec("0.3333")));
        assert_eq!(m.avg_days_to_first_cross_sell, None);
    }

    #[test]
    fn amendments_in_any_order_give_the_same_metrics() {
        let mut reversed = march_subscriptions();
        for sub in &mut reversed {
            sub.amendments.reverse();
        }
        reversed.reverse();
        assert_eq!(
            revenue_metrics(&march_accounts(), &reversed, &month("2026-03")),
            revenue_metrics(&march_accounts(), &march_subscriptions(), &month("2026-03")),
        );
    }

    #[test]
    fn grr_is_capped_per_account_and_nrr_is_not() {
        // A grows 100 → 300, B shrinks 100 → 50: NRR 350/200, GRR (100 + 50)/200.
        let usd = Currency::USD;
        let subs = vec![
            sub_in(
                usd,
                "a",
                "A",
                "p",
                "2026-01-01",
                None,
                &[("2026-01-01", "100"), ("2026-02-10", "300")],
            ),
            sub_in(
                usd,
                "b",
                "B",
                "p",
                "2026-01-01",
                None,
                &[("2026-01-01", "100"), ("2026-02-10", "50")],
            ),
        ];
        let m = only(revenue_metrics(&[], &subs, &month("2026-02")));
        assert_eq!(m.nrr, Some(dec("1.7500")));
        assert_eq!(m.grr, Some(dec("0.7500")));
        assert_eq!(amount(m.upsell_mrr), "200.00");
        assert_eq!(amount(m.contraction_mrr), "50.00");
    }

    #[test]
    fn time_to_first_cross_sell() {
        // February 2026.
        // P: first 01-01, first cross-sell 02-11 → 41 days.
        // Q: first 01-20, cross-sells 02-03 (first, 14 days) and 02-20 (ignored).
        // R: first cross-sell was in January → not counted in February.
        // S: registered 01-31, first contract 02-01, second 02-10 → 9 days.
        // U: registered 01-15 with its first contract; 01-25 is no cross-sell for January
        //    (registered that month), so its first cross-sell is 02-05 → 21 days.
        // Mean: (41 + 14 + 9 + 21) / 4 = 21.25.
        let accounts = vec![
            account("P", None),
            account("Q", None),
            account("R", None),
            account("S", Some("2026-01-31")),
            account("U", Some("2026-01-15")),
        ];
        let subs = vec![
            brl("p1", "P", "a", "2026-01-01", "10"),
            brl("p2", "P", "b", "2026-02-11", "10"),
            brl("q1", "Q", "a", "2026-01-20", "10"),
            brl("q3", "Q", "c", "2026-02-20", "10"),
            brl("q2", "Q", "b", "2026-02-03", "10"),
            brl("r1", "R", "a", "2025-12-01", "10"),
            brl("r2", "R", "b", "2026-01-05", "10"),
            brl("r3", "R", "c", "2026-02-10", "10"),
            brl("s1", "S", "a", "2026-02-01", "10"),
            brl("s2", "S", "b", "2026-02-10", "10"),
            brl("u1", "U", "a", "2026-01-15", "10"),
            brl("u2", "U", "b", "2026-01-25", "10"),
            brl("u3", "U", "c", "2026-02-05", "10"),
        ];
        let m = only(revenue_metrics(&accounts, &subs, &month("2026-02")));
        assert_eq!(m.avg_days_to_first_cross_sell, Some(dec("21.2500")));
        // The period's cross-sells: p2, q2, q3, r3, s2, u3.
        assert_eq!(amount(m.cross_sell_mrr), "60.00");
        // S is the only new customer, and s2 is its cross-sell.
        assert_eq!(amount(m.new_mrr), "10.00");
        // In January only r2 is a first cross-sell (u2 fails registration): 35 days.
        let jan = only(revenue_metrics(&accounts, &subs, &month("2026-01")));
        assert_eq!(jan.avg_days_to_first_cross_sell, Some(dec("35.0000")));
    }

    #[test]
    fn currencies_are_kept_apart_and_sorted() {
        // One account: first contract in USD in January, BRL contract in February (a
        // cross-sell: the first subscription is the account's, whatever the currency).
        let subs = vec![
            sub_in(
                Currency::USD,
                "u",
                "A",
                "erp",
                "2026-01-10",
                None,
                &[("2026-01-10", "100.00")],
            ),
            sub_in(
                Currency::BRL,
                "b",
                "A",
                "crm",
                "2026-02-10",
                None,
                &[("2026-02-10", "500.00")],
            ),
            sub_in(
                Currency::JPY,
                "j",
                "B",
                "erp",
                "2026-02-02",
                None,
                &[("2026-02-02", "12000")],
            ),
        ];
        let metrics = revenue_metrics(&[], &subs, &month("2026-02"));
        let codes: Vec<&str> = metrics.iter().map(|m| m.currency.code()).collect();
        assert_eq!(codes, ["BRL", "JPY", "USD"]);
        let (brl, jpy, usd) = (&metrics[0], &metrics[1], &metrics[2]);
        assert_eq!(amount(brl.cross_sell_mrr), "500.00");
        assert_eq!(amount(brl.new_mrr), "0.00");
        assert_eq!(amount(brl.closing_mrr), "500.00");
        assert_eq!(brl.nrr, None);
        assert_eq!(brl.products_per_account, Some(dec("1")));
        assert_eq!(brl.avg_days_to_first_cross_sell, Some(dec("31")));
        assert_eq!(jpy.new_mrr, Money::from_minor(Currency::JPY, 12_000));
        assert_eq!(amount(jpy.cross_sell_mrr), "0");
        assert_eq!(amount(usd.cross_sell_mrr), "0.00");
        assert_eq!(amount(usd.opening_mrr), "100.00");
        assert_eq!(usd.nrr, Some(dec("1")));
        assert_eq!(usd.cross_sell_penetration, Some(dec("0")));
        assert_eq!(usd.avg_days_to_first_cross_sell, None);
    }

    #[test]
    fn cancelled_on_the_period_start_churns_what_it_opened_with() {
        let usd = Currency::USD;
        let subs = vec![sub_in(
            usd,
            "s",
            "A",
            "p",
            "2026-01-10",
            Some("2026-02-01"),
            &[("2026-01-10", "100"), ("2026-01-20", "120")],
        )];
        let m = only(revenue_metrics(&[], &subs, &month("2026-02")));
        assert_eq!(amount(m.churned_mrr), "120.00");
        // In force at the close of 01-31: the opening MRR, and all of it churned.
        assert_eq!(amount(m.opening_mrr), "120.00");
        assert_eq!(amount(m.closing_mrr), "0.00");
        assert_eq!(m.nrr, Some(dec("0")));
        assert_eq!(m.cross_sell_penetration, None);
        // Cancelled on the day after the period: still active on its last day, no churn.
        let jan = only(revenue_metrics(&[], &subs, &month("2026-01")));
        assert_eq!(amount(jan.churned_mrr), "0.00");
        assert_eq!(amount(jan.closing_mrr), "120.00");
    }

    #[test]
    fn amendment_on_the_start_date_is_not_upsell() {
        // Starts in the period: its start amendment is New MRR, a later one upsell.
        let usd = Currency::USD;
        let subs = vec![sub_in(
            usd,
            "s",
            "A",
            "p",
            "2026-02-05",
            None,
            &[("2026-02-05", "100"), ("2026-02-25", "130")],
        )];
        let m = only(revenue_metrics(&[], &subs, &month("2026-02")));
        assert_eq!(amount(m.new_mrr), "100.00");
        assert_eq!(amount(m.upsell_mrr), "30.00");
        assert_eq!(amount(m.closing_mrr), "130.00");
        assert_eq!(m.expansion_share, Some(dec("0.2308")));
    }

    #[test]
    fn amendment_on_the_period_start_is_upsell_not_opening_mrr() {
        let usd = Currency::USD;
        let subs = vec![sub_in(
            usd,
            "s",
            "A",
            "p",
            "2026-01-01",
            None,
            &[("2026-01-01", "100"), ("2026-02-01", "150")],
        )];
        let m = only(revenue_metrics(&[], &subs, &month("2026-02")));
        assert_eq!(amount(m.upsell_mrr), "50.00");
        // Counted once: the opening is January's close, the 50 a movement of February.
        assert_eq!(amount(m.opening_mrr), "100.00");
        assert_eq!(amount(m.closing_mrr), "150.00");
        assert_eq!(m.nrr, Some(dec("1.5")));
    }

    #[test]
    fn amendments_after_cancellation_change_nothing() {
        let usd = Currency::USD;
        let subs = vec![sub_in(
            usd,
            "s",
            "A",
            "p",
            "2026-01-01",
            Some("2026-02-10"),
            &[
                ("2026-01-01", "100"),
                ("2026-02-10", "500"),
                ("2026-02-20", "10"),
            ],
        )];
        let m = only(revenue_metrics(&[], &subs, &month("2026-02")));
        assert_eq!(amount(m.upsell_mrr), "0.00");
        assert_eq!(amount(m.contraction_mrr), "0.00");
        assert_eq!(amount(m.churned_mrr), "100.00");
    }

    #[test]
    fn same_day_amendments_keep_the_last_given() {
        let usd = Currency::USD;
        let subs = vec![sub_in(
            usd,
            "s",
            "A",
            "p",
            "2026-01-01",
            None,
            &[
                ("2026-02-10", "300"),
                ("2026-01-01", "100"),
                ("2026-02-10", "180"),
            ],
        )];
        let m = only(revenue_metrics(&[], &subs, &month("2026-02")));
        assert_eq!(amount(m.upsell_mrr), "80.00");
        assert_eq!(amount(m.closing_mrr), "180.00");
    }

    #[test]
    fn a_void_subscription_is_not_the_first_one() {
        // Voided on its start day; the real contract a week later is the first: New MRR.
        let usd = Currency::USD;
        let subs = vec![
            sub_in(
                usd,
                "void",
                "A",
                "p",
                "2026-02-03",
                Some("2026-02-03"),
                &[("2026-02-03", "999")],
            ),
            sub_in(
                usd,
                "real",
                "A",
                "p",
                "2026-02-10",
                None,
                &[("2026-02-10", "100")],
            ),
        ];
        let m = only(revenue_metrics(
            &[account("A", Some("2026-01-10"))],
            &subs,
            &month("2026-02"),
        ));
        assert_eq!(amount(m.new_mrr), "100.00");
        assert_eq!(amount(m.cross_sell_mrr), "0.00");
        assert_eq!(amount(m.churned_mrr), "0.00");
    }

    #[test]
    fn no_amendment_at_start_means_zero_until_the_first() {
        let usd = Currency::USD;
        let subs = vec![sub_in(
            usd,
            "s",
            "A",
            "p",
            "2026-02-02",
            None,
            &[("2026-02-12", "40")],
        )];
        let m = only(revenue_metrics(&[], &subs, &month("2026-02")));
        assert_eq!(amount(m.new_mrr), "0.00");
        assert_eq!(amount(m.upsell_mrr), "40.00");
        // Active with MRR 0 still holds a product.
        let early = DateRange::new(date("2026-02-01"), date("2026-02-05")).unwrap();
        let early = only(revenue_metrics(&[], &subs, &early));
        assert_eq!(early.products_per_account, Some(dec("1")));
        assert_eq!(amount(early.closing_mrr), "0.00");
    }

    #[test]
    fn empty_input_gives_no_metrics() {
        let feb = month("2026-02");
        assert!(revenue_metrics(&[], &[], &feb).is_empty());
        assert!(revenue_metrics(&[account("A", None)], &[], &feb).is_empty());
    }

    #[test]
    fn a_currency_with_nothing_in_the_period_reports_zeros() {
        let subs = vec![brl("s", "A", "p", "2020-01-01", "10")];
        let m = only(revenue_metrics(
            &[],
            &subs,
            &DateRange::new(date("2019-01-01"), date("2019-02-01")).unwrap(),
        ));
        assert!(m.closing_mrr.is_zero() && m.new_mrr.is_zero());
        assert_eq!(
            (m.nrr, m.grr, m.expansion_share, m.products_per_account),
            (None, None, None, None)
        );
    }

    #[test]
    fn huge_amounts_saturate_instead_of_panicking() {
        let usd = Currency::USD;
        let subs: Vec<SubscriptionFacts> = (0..3)
            .map(|i| SubscriptionFacts {
                subscription_id: format!("s{i}"),
                account_id: format!("A{i}"),
                product_id: "p".to_owned(),
                currency: usd,
                start_date: date("2026-01-01"),
                cancel_date: None,
                amendments: vec![
                    (date("2026-01-01"), i64::MIN),
                    (date("2026-02-02"), i64::MAX),
                ],
            })
            .collect();
        let m = only(revenue_metrics(&[], &subs, &month("2026-02")));
        assert_eq!(m.upsell_mrr.minor(), i64::MAX);
        assert_eq!(m.closing_mrr.minor(), i64::MAX);
        assert_eq!(m.opening_mrr.minor(), 0);
        assert_eq!(m.nrr, None);
    }

    #[test]
    fn ratios_round_half_even_exactly() {
        assert_eq!(ratio(230, 800), Some(dec("0.2875")));
        assert_eq!(ratio(1, 32), Some(dec("0.0312")));
        assert_eq!(ratio(3, 32), Some(dec("0.0938")));
        assert_eq!(ratio(2, 3), Some(dec("0.6667")));
        assert_eq!(ratio(-1, 32), Some(dec("-0.0312")));
        assert_eq!(ratio(-3, 32), Some(dec("-0.0938")));
        assert_eq!(ratio(3, -32), Some(dec("-0.0938")));
        assert_eq!(ratio(7, 0), None);
        assert_eq!(ratio(0, 5), Some(dec("0")));
        assert_eq!(ratio(i128::MAX, 1), None);
        assert_eq!(ratio(1, i128::MIN), None);
        assert_eq!(
            ratio(i128::from(i64::MAX) * 3, i128::from(i64::MAX)),
            Some(dec("3"))
        );
    }

    #[test]
    fn each_subscriptions_bridge_ties() {
        let march = month("2026-03");
        let account = AccountStart {
            registered_on: date("2026-01-01"),
            first_start: date("2026-01-10"),
        };
        let subs = [
            // Opened with 100, upsold to 150, then contracted to 120, still in force.
            sub_in(
                Currency::BRL,
                "a",
                "A",
                "erp",
                "2026-01-10",
                None,
                &[
                    ("2026-01-10", "100.00"),
                    ("2026-03-05", "150.00"),
                    ("2026-03-20", "120.00"),
                ],
            ),
            // Upsold, then cancelled inside the period: it churns what it had.
            sub_in(
                Currency::BRL,
                "b",
                "A",
                "tax",
                "2026-02-01",
                Some("2026-03-25"),
                &[("2026-02-01", "80.00"), ("2026-03-02", "90.00")],
            ),
            // Starts in the period: a cross-sell (registered in January, not the first
            // subscription), later contracted.
            sub_in(
                Currency::BRL,
                "c",
                "A",
                "payroll",
                "2026-03-10",
                None,
                &[("2026-03-10", "60.00"), ("2026-03-15", "40.00")],
            ),
        ];
        let bridges: Vec<SubscriptionBridge> = subs
            .iter()
            .map(|facts| SubscriptionBridge::of(&Prepared::new(facts), account, &march))
            .collect();
        for b in &bridges {
            assert_eq!(
                b.opening + b.new + b.cross_sell + b.upsell - b.contraction - b.churned,
                b.closing,
                "{b:?}"
            );
        }
        let minor = |s: &str| i128::from(Money::parse_amount(Currency::BRL, s).unwrap().minor());
        assert_eq!(
            (
                bridges[0].opening,
                bridges[0].upsell,
                bridges[0].contraction
            ),
            (minor("100.00"), minor("50.00"), minor("30.00"))
        );
        assert_eq!(
            (bridges[1].churned, bridges[1].closing),
            (minor("90.00"), 0)
        );
        assert_eq!(
            (bridges[2].cross_sell, bridges[2].new, bridges[2].opening),
            (minor("60.00"), 0, 0)
        );
    }

    #[test]
    fn an_accounts_mrr_is_the_sum_of_its_subscriptions_per_currency() {
        let mrr = mrr_by_currency([
            (Currency::BRL, 10, 20),
            (Currency::USD, 5, 0),
            (Currency::BRL, 1, 2),
        ]);
        let sums: Vec<(&str, i128, i128)> = mrr
            .iter()
            .map(|m| (m.currency.code(), m.opening, m.closing))
            .collect();
        assert_eq!(sums, vec![("BRL", 11, 22), ("USD", 5, 0)]);
    }

    #[test]
    fn active_products_are_distinct_per_currency_on_the_day() {
        let subs = [
            brl("a", "A", "erp", "2026-01-01", "10.00"),
            brl("b", "A", "erp", "2026-02-01", "10.00"),
            brl("c", "A", "tax", "2026-04-01", "10.00"),
            sub_in(
                Currency::USD,
                "d",
                "A",
                "erp",
                "2026-01-01",
                None,
                &[("2026-01-01", "10.00")],
            ),
        ];
        let prepared: Vec<Prepared<'_>> = subs.iter().map(Prepared::new).collect();
        let refs: Vec<&Prepared<'_>> = prepared.iter().collect();
        assert_eq!(
            active_products(&refs, date("2026-03-31")),
            vec![("BRL", "erp"), ("USD", "erp")]
        );
    }

    // -----------------------------------------------------------------------------------
    // Properties

    const CURRENCIES: [Currency; 3] = [Currency::BRL, Currency::USD, Currency::JPY];

    fn base() -> NaiveDate {
        date("2026-01-01")
    }

    fn day(offset: i64) -> NaiveDate {
        base() + chrono::Duration::days(offset)
    }

    prop_compose! {
        fn arb_sub(amounts: std::ops::Range<i64>)(
            account in 0..4_usize,
            product in 0..3_usize,
            currency in 0..3_usize,
            start in 0..120_i64,
            cancel in proptest::option::of(0..150_i64),
            amendments in proptest::collection::vec((0..150_i64, amounts.clone()), 0..4),
            at_start in proptest::option::of(amounts.clone()),
        ) -> SubscriptionFacts {
            let mut amendments: Vec<(NaiveDate, i64)> =
                amendments.into_iter().map(|(d, a)| (day(d), a)).collect();
            if let Some(amount) = at_start {
                amendments.push((day(start), amount));
            }
            SubscriptionFacts {
                subscription_id: String::new(),
                account_id: format!("a{account}"),
                product_id: format!("p{product}"),
                currency: CURRENCIES[currency],
                start_date: day(start),
                cancel_date: cancel.map(day),
                amendments,
            }
        }
    }

    fn arb_accounts() -> impl Strategy<Value = Vec<AccountFacts>> {
        proptest::collection::vec((0..5_usize, proptest::option::of(0..120_i64)), 0..5).prop_map(
            |rows| {
                rows.into_iter()
                    .map(|(id, registered)| AccountFacts {
                        account_id: format!("a{id}"),
                        registered_on: registered.map(day),
                    })
                    .collect()
            },
        )
    }

    fn arb_period() -> impl Strategy<Value = DateRange> {
        (0..130_i64, 1..60_i64)
            .prop_map(|(start, days)| DateRange::new(day(start), day(start + days)).unwrap())
    }

    fn realistic_input()
    -> impl Strategy<Value = (Vec<AccountFacts>, Vec<SubscriptionFacts>, DateRange)> {
        (
            arb_accounts(),
            proptest::collection::vec(arb_sub(0..100_000), 0..12),
            arb_period(),
        )
    }

    /// The slow, obvious MRR of one subscription on `d`.
    fn naive_mrr(sub: &SubscriptionFacts, d: NaiveDate) -> i64 {
        if sub.start_date > d || sub.cancel_date.is_some_and(|c| c <= d) {
            return 0;
        }
        let mut best: Option<(NaiveDate, i64)> = None;
        for &(when, amount) in &sub.amendments {
            if when <= d && best.is_none_or(|(b, _)| when >= b) {
                best = Some((when, amount));
            }
        }
        best.map_or(0, |(_, amount)| amount)
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(
            accounts in arb_accounts(),
            subs in proptest::collection::vec(arb_sub(i64::MIN..i64::MAX), 0..12),
            period in arb_period(),
        ) {
            let metrics = revenue_metrics(&accounts, &subs, &period);
            let mut codes: Vec<&str> = subs.iter().map(|s| s.currency.code()).collect();
            codes.sort_unstable();
            codes.dedup();
            let got: Vec<&str> = metrics.iter().map(|m| m.currency.code()).collect();
            prop_assert_eq!(got, codes);
        }

        #[test]
        fn grr_at_most_one_and_at_most_nrr((accounts, subs, period) in realistic_input()) {
            for m in revenue_metrics(&accounts, &subs, &period) {
                prop_assert_eq!(m.grr.is_some(), m.nrr.is_some());
                if let (Some(grr), Some(nrr)) = (m.grr, m.nrr) {
                    prop_assert!(grr <= Decimal::ONE, "{:?}", m);
                    prop_assert!(grr <= nrr, "{:?}", m);
                    prop_assert!(grr >= Decimal::ZERO, "{:?}", m);
                }
            }
        }

        #[test]
        fn expansion_is_cross_sell_plus_upsell((accounts, subs, period) in realistic_input()) {
            for m in revenue_metrics(&accounts, &subs, &period) {
                prop_assert_eq!(
                    m.expansion_mrr,
                    m.cross_sell_mrr.checked_add(m.upsell_mrr).unwrap()
                );
            }
        }

        #[test]
        fn cross_sell_and_new_come_from_subscriptions_starting_in_the_period(
            (accounts, subs, period) in realistic_input()
        ) {
            for m in revenue_metrics(&accounts, &subs, &period) {
                let initial: i64 = subs
                    .iter()
                    .filter(|s| s.currency == m.currency && period.contains(s.start_date))
                    .map(|s| naive_mrr(s, s.start_date))
                    .sum();
                prop_assert!(
                    m.cross_sell_mrr.minor() + m.new_mrr.minor() <= initial,
                    "{:?} vs {}", m, initial
                );
            }
        }

        #[test]
        fn opening_and_closing_mrr_match_a_naive_sum((accounts, subs, period) in realistic_input()) {
            for m in revenue_metrics(&accounts, &subs, &period) {
                let mine = subs.iter().filter(|s| s.currency == m.currency);
                let ending: i64 = mine.clone().map(|s| naive_mrr(s, period.last_day())).sum();
                let eve = period.start().pred_opt().unwrap();
                let starting: i64 = mine.map(|s| naive_mrr(s, eve)).sum();
                prop_assert_eq!(m.closing_mrr.minor(), ending);
                // Amounts are non-negative, so every account with MRR is in the cohort.
                prop_assert_eq!(m.opening_mrr.minor(), starting);
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // The bridge and additivity over random books

    /// A day of 2026–2027 that is often a month's edge: its first day, its last day, or a
    /// day either side of them — where off-by-one rules go wrong.
    fn edge_day() -> impl Strategy<Value = NaiveDate> {
        let month_first = |m: u32| {
            NaiveDate::from_ymd_opt(2026 + i32::try_from(m / 12).unwrap(), m % 12 + 1, 1).unwrap()
        };
        prop_oneof![
            (0..24_u32).prop_map(month_first),
            (1..25_u32).prop_map(move |m| month_first(m).pred_opt().unwrap()),
            (0..24_u32, -1..=1_i64)
                .prop_map(move |(m, d)| month_first(m) + chrono::Duration::days(d)),
            (0..730_i64).prop_map(day),
        ]
    }

    prop_compose! {
        /// One subscription of a random book: amendments on edges, several on one day
        /// (the last one given wins), backdated ones given after later ones, a
        /// cancellation that may be on the start date, after amendments, or never.
        fn book_sub()(
            account in 0..4_usize,
            product in 0..3_usize,
            currency in 0..3_usize,
            start in edge_day(),
            cancel in proptest::option::of(edge_day()),
            same_day_cancel in proptest::bool::weighted(0.1),
            at_start in proptest::option::of(0..50_000_i64),
            amendments in proptest::collection::vec((edge_day(), 0..50_000_i64), 0..5),
            repeat_last_day in proptest::bool::ANY,
            again in 0..50_000_i64,
        ) -> SubscriptionFacts {
            let mut all: Vec<(NaiveDate, i64)> = Vec::new();
            if let Some(amount) = at_start {
                all.push((start, amount));
            }
            all.extend(amendments);
            if repeat_last_day && let Some(&(date, _)) = all.last() {
                all.push((date, again));
            }
            SubscriptionFacts {
                subscription_id: String::new(),
                account_id: format!("a{account}"),
                product_id: format!("p{product}"),
                currency: CURRENCIES[currency],
                start_date: start,
                cancel_date: if same_day_cancel { Some(start) } else { cancel },
                amendments: all,
            }
        }
    }

    fn book() -> impl Strategy<Value = (Vec<AccountFacts>, Vec<SubscriptionFacts>)> {
        let accounts =
            proptest::collection::vec(proptest::option::of(edge_day()), 4).prop_map(|dates| {
                dates
                    .into_iter()
                    .enumerate()
                    .map(|(i, registered_on)| AccountFacts {
                        account_id: format!("a{i}"),
                        registered_on,
                    })
                    .collect()
            });
        (accounts, proptest::collection::vec(book_sub(), 0..14))
    }

    fn range_between() -> impl Strategy<Value = DateRange> {
        (edge_day(), 1..400_i64).prop_map(|(start, days)| {
            DateRange::new(start, start + chrono::Duration::days(days)).unwrap()
        })
    }

    /// The flow figures of one currency, in minor units:
    /// `[new, cross-sell, upsell, contraction, churned]`.
    fn flows(m: &CurrencyMetrics) -> [i64; 5] {
        [
            m.new_mrr.minor(),
            m.cross_sell_mrr.minor(),
            m.upsell_mrr.minor(),
            m.contraction_mrr.minor(),
            m.churned_mrr.minor(),
        ]
    }

    fn by_currency(metrics: Vec<CurrencyMetrics>) -> BTreeMap<&'static str, CurrencyMetrics> {
        metrics
            .into_iter()
            .map(|m| (m.currency.code(), m))
            .collect()
    }

    fn assert_ties(m: &CurrencyMetrics) -> Result<(), TestCaseError> {
        let [new, cross_sell, upsell, contraction, churned] = flows(m);
        prop_assert_eq!(
            m.closing_mrr.minor(),
            m.opening_mrr.minor() + new + cross_sell + upsell - contraction - churned,
            "{:?}",
            m
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// closing = opening + new + cross-sell + upsell − contraction − churned, for the
        /// whole book and for each account alone, in every currency, for any range.
        #[test]
        fn the_mrr_bridge_ties_per_account_and_currency(
            (accounts, subs) in book(),
            period in range_between(),
        ) {
            for m in revenue_metrics(&accounts, &subs, &period) {
                assert_ties(&m)?;
            }
            for account in &accounts {
                let own: Vec<SubscriptionFacts> = subs
                    .iter()
                    .filter(|s| s.account_id == account.account_id)
                    .cloned()
                    .collect();
                for m in revenue_metrics(&accounts, &own, &period) {
                    assert_ties(&m)?;
                }
            }
        }

        /// Every flow figure of a range is the sum of the same figure over any split of it,
        /// and one part closes with what the next opens with: a year is its months.
        #[test]
        fn flows_add_up_over_any_split_of_a_range(
            (accounts, subs) in book(),
            period in range_between(),
            cut in 0..400_i64,
        ) {
            let days = period.days();
            prop_assume!(days > 1);
            let offset = 1 + cut % (days - 1);
            let middle = period.start() + chrono::Duration::days(offset);
            let whole = by_currency(revenue_metrics(&accounts, &subs, &period));
            let first = by_currency(revenue_metrics(
                &accounts, &subs, &DateRange::new(period.start(), middle).unwrap(),
            ));
            let second = by_currency(revenue_metrics(
                &accounts, &subs, &DateRange::new(middle, period.end()).unwrap(),
            ));
            for (code, w) in &whole {
                let (a, b) = (&first[code], &second[code]);
                let summed: Vec<i64> =
                    flows(a).iter().zip(flows(b)).map(|(x, y)| x + y).collect();
                prop_assert_eq!(flows(w).to_vec(), summed, "{} split at {}", code, middle);
                prop_assert_eq!(a.closing_mrr, b.opening_mrr);
                prop_assert_eq!(w.opening_mrr, a.opening_mrr);
                prop_assert_eq!(w.closing_mrr, b.closing_mrr);
            }
        }

        /// Accounts counted in time to first cross-sell have a cross-sell in the range.
        #[test]
        fn time_to_first_cross_sell_agrees_with_cross_sell(
            (accounts, subs) in book(),
            period in range_between(),
        ) {
            for account in &accounts {
                let own: Vec<SubscriptionFacts> = subs
                    .iter()
                    .filter(|s| s.account_id == account.account_id)
                    .cloned()
                    .collect();
                let Some(first) = first_subscription_start(&own) else { continue };
                for m in revenue_metrics(&accounts, &own, &period) {
                    if m.avg_days_to_first_cross_sell.is_some() {
                        prop_assert!(own.iter().any(|s| s.currency == m.currency
                            && is_cross_sell(s, account.registered_on, first, &period)));
                    }
                }
            }
        }
    }

    #[test]
    fn a_year_is_the_sum_of_its_months() {
        let subs = march_subscriptions();
        let accounts = march_accounts();
        let year = only(revenue_metrics(
            &accounts,
            &subs,
            &DateRange::new(date("2026-01-01"), date("2027-01-01")).unwrap(),
        ));
        let mut months = [0_i64; 5];
        for m in 1..=12 {
            let month = only(revenue_metrics(
                &accounts,
                &subs,
                &month(&format!("2026-{m:02}")),
            ));
            for (total, figure) in months.iter_mut().zip(flows(&month)) {
                *total += figure;
            }
        }
        assert_eq!(flows(&year), months);
        assert_ties(&year).unwrap();
    }

    /// `cargo test --release -- --ignored --nocapture scales` — 1M subscriptions.
    #[test]
    #[ignore = "slow in debug builds; a release-mode scale check"]
    fn scales_to_a_million_subscriptions() {
        let subs: Vec<SubscriptionFacts> = (0..1_000_000_i64)
            .map(|i| {
                let start = day(i % 365 - 200);
                SubscriptionFacts {
                    subscription_id: format!("s{i}"),
                    account_id: format!("a{}", i % 250_000),
                    product_id: format!("p{}", i % 7),
                    currency: CURRENCIES[usize::try_from(i % 3).unwrap()],
                    start_date: start,
                    cancel_date: (i % 5 == 0).then(|| day(i % 300)),
                    amendments: vec![(day(i % 90), i % 1000), (start, 100 + i % 5000)],
                }
            })
            .collect();
        let started = std::time::Instant::now();
        let metrics = revenue_metrics(&[], &subs, &month("2026-02"));
        eprintln!("1M subscriptions in {:?}", started.elapsed());
        assert_eq!(metrics.len(), 3);
    }
}
