//! The pipeline forecast (seed 001): pipeline by stage, motion and owner team,
//! win rate by motion beside the seed's benchmark bands, stage conversion,
//! cycle time and deal size. Per currency, never mixed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use domain::{BenchmarkVerdict, Currency, Decimal, Money, Motion, Percent, Stage};
use rust_decimal::RoundingStrategy;

use super::whitespace::ratio;
use crate::entity::history;

/// One opportunity as the forecast sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastDeal {
    pub motion: Motion,
    /// The product sold (the service line whose win rate it counts in).
    pub product_id: String,
    pub stage: Stage,
    pub amount: Money,
    pub probability: Percent,
    pub owner_team: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When it entered its closed stage, for closed deals.
    pub closed_at: Option<DateTime<Utc>>,
    /// Every stage it ever entered (from its history).
    pub stages_reached: BTreeSet<Stage>,
}

/// What the stage history says of each opportunity, by id: every stage it
/// entered, and when it entered its closed stage (a reopen since cancels it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageHistory {
    pub reached: HashMap<String, BTreeSet<Stage>>,
    pub closed_at: HashMap<String, DateTime<Utc>>,
}

impl StageHistory {
    /// From the stage rows of the history, oldest first.
    pub fn from_rows(rows: impl IntoIterator<Item = history::Model>) -> Self {
        let mut facts = StageHistory::default();
        for h in rows {
            let Some(stage) = h.new_value.as_deref().and_then(|v| v.parse::<Stage>().ok()) else {
                continue;
            };
            facts
                .reached
                .entry(h.opportunity_id.clone())
                .or_default()
                .insert(stage);
            if stage.is_closed() {
                facts.closed_at.insert(h.opportunity_id, h.changed_at);
            } else {
                // Reopened: the earlier close no longer counts.
                facts.closed_at.remove(&h.opportunity_id);
            }
        }
        facts
    }
}

/// Whether a deal closing on `close_date` is in the range [start, end] (each
/// end open when `None`); a deal without a close date only when neither is set.
pub fn closes_within(
    close_date: Option<NaiveDate>,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
) -> bool {
    match close_date {
        Some(d) => start.is_none_or(|s| d >= s) && end.is_none_or(|e| d <= e),
        None => start.is_none() && end.is_none(),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub count: i64,
    pub amount: Money,
    /// Σ amount × probability, exact, rounded half-even once at the end.
    pub weighted: Money,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageLine {
    pub stage: Stage,
    pub bucket: Bucket,
    pub conversion: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WinRate {
    pub motion: Motion,
    pub won: i64,
    pub lost: i64,
    pub rate: Option<Decimal>,
    pub benchmark: (Decimal, Decimal),
    pub verdict: Option<BenchmarkVerdict>,
}

/// Won and lost deals of one product (the seed's "per service line").
#[derive(Debug, Clone, PartialEq)]
pub struct ProductWinRate {
    pub product_id: String,
    pub won: i64,
    pub lost: i64,
    pub rate: Option<Decimal>,
}

/// The win rate of `won` and `lost` deals of `motion`, beside the motion's
/// benchmark band and the verdict on it.
pub fn motion_win_rate(motion: Motion, won: i64, lost: i64) -> WinRate {
    let rate = ratio(Decimal::from(won), Decimal::from(won + lost));
    let (low, high) = motion.benchmark_win_rate();
    WinRate {
        motion,
        won,
        lost,
        rate,
        benchmark: (low.as_fraction(), high.as_fraction()),
        verdict: rate
            .and_then(|r| Percent::from_decimal(r * Decimal::ONE_HUNDRED).ok())
            .map(|p| motion.judge_win_rate(p)),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CurrencyForecast {
    pub currency: Currency,
    pub stages: Vec<StageLine>,
    pub by_motion: Vec<(String, Bucket)>,
    pub by_owner_team: Vec<(String, Bucket)>,
    pub win_rates: Vec<WinRate>,
    /// Products with a closed deal, in product id order.
    pub win_rates_by_product: Vec<ProductWinRate>,
    pub avg_cycle_days: Option<Decimal>,
    pub avg_deal_size: Option<Money>,
    pub open: Bucket,
}

fn round_money(currency: Currency, exact: Decimal) -> Money {
    Money::from_decimal_rounded(currency, exact).unwrap_or(Money::zero(currency))
}

fn bucket<'a>(currency: Currency, deals: impl Iterator<Item = &'a ForecastDeal>) -> Bucket {
    let mut count = 0;
    let mut amount = Decimal::ZERO;
    let mut weighted = Decimal::ZERO;
    for d in deals {
        count += 1;
        amount += d.amount.amount();
        weighted += d.amount.amount() * d.probability.as_fraction();
    }
    Bucket {
        count,
        amount: round_money(currency, amount),
        weighted: round_money(currency, weighted),
    }
}

/// Of the deals that reached `stage`, the share that reached a later one.
/// CLOSED_LOST is an exit, not progress.
fn conversion(stage: Stage, deals: &[&ForecastDeal]) -> Option<Decimal> {
    if stage.is_closed() {
        return None;
    }
    let reached: Vec<_> = deals
        .iter()
        .filter(|d| d.stages_reached.contains(&stage))
        .collect();
    let moved_on = reached
        .iter()
        .filter(|d| {
            d.stages_reached
                .iter()
                .any(|s| *s != Stage::ClosedLost && s.order() > stage.order())
        })
        .count();
    ratio(Decimal::from(moved_on), Decimal::from(reached.len()))
}

/// Builds one forecast per currency present in `deals`, in currency-code order.
pub fn forecast(deals: &[ForecastDeal]) -> Vec<CurrencyForecast> {
    let mut by_currency: BTreeMap<&str, (Currency, Vec<&ForecastDeal>)> = BTreeMap::new();
    for d in deals {
        let c = d.amount.currency();
        by_currency
            .entry(c.code())
            .or_insert_with(|| (c, Vec::new()))
            .1
            .push(d);
    }
    by_currency
        .into_values()
        .map(|(currency, deals)| currency_forecast(currency, &deals))
        .collect()
}

fn currency_forecast(currency: Currency, deals: &[&ForecastDeal]) -> CurrencyForecast {
    let stages = Stage::ALL
        .iter()
        .map(|s| StageLine {
            stage: *s,
            bucket: bucket(currency, deals.iter().copied().filter(|d| d.stage == *s)),
            conversion: conversion(*s, deals),
        })
        .collect();
    let open: Vec<&ForecastDeal> = deals
        .iter()
        .copied()
        .filter(|d| d.stage.is_open())
        .collect();
    let won: Vec<Decimal> = deals
        .iter()
        .filter(|d| d.stage == Stage::ClosedWon)
        .map(|d| d.amount.amount())
        .collect();
    let avg_deal_size = (!won.is_empty()).then(|| {
        round_money(
            currency,
            won.iter().sum::<Decimal>() / Decimal::from(won.len()),
        )
    });
    CurrencyForecast {
        currency,
        stages,
        by_motion: by_motion(currency, &open),
        by_owner_team: by_owner_team(currency, &open),
        win_rates: win_rates(deals),
        win_rates_by_product: win_rates_by_product(deals),
        avg_cycle_days: mean_days(
            deals
                .iter()
                .filter_map(|d| d.closed_at.map(|c| c - d.created_at)),
        ),
        avg_deal_size,
        open: bucket(currency, open.iter().copied()),
    }
}

/// Open deals per motion, in motion order, for the motions that have one.
fn by_motion(currency: Currency, open: &[&ForecastDeal]) -> Vec<(String, Bucket)> {
    Motion::ALL
        .iter()
        .filter(|m| open.iter().any(|d| d.motion == **m))
        .map(|m| {
            (
                m.as_str().to_owned(),
                bucket(currency, open.iter().copied().filter(|d| d.motion == *m)),
            )
        })
        .collect()
}

/// Open deals per owner team (no team: ""), in team order.
fn by_owner_team(currency: Currency, open: &[&ForecastDeal]) -> Vec<(String, Bucket)> {
    let teams: BTreeSet<String> = open
        .iter()
        .map(|d| d.owner_team.clone().unwrap_or_default())
        .collect();
    teams
        .into_iter()
        .map(|t| {
            let b = bucket(
                currency,
                open.iter()
                    .copied()
                    .filter(|d| d.owner_team.as_deref().unwrap_or_default() == t),
            );
            (t, b)
        })
        .collect()
}

/// The win rate of every motion, in motion order.
fn win_rates(deals: &[&ForecastDeal]) -> Vec<WinRate> {
    Motion::ALL
        .iter()
        .map(|m| {
            let count = |stage: Stage| {
                deals
                    .iter()
                    .filter(|d| d.motion == *m && d.stage == stage)
                    .count() as i64
            };
            motion_win_rate(*m, count(Stage::ClosedWon), count(Stage::ClosedLost))
        })
        .collect()
}

/// The win rate of every product with a closed deal, in product id order.
fn win_rates_by_product(deals: &[&ForecastDeal]) -> Vec<ProductWinRate> {
    let mut by_product: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for d in deals {
        let counts = by_product.entry(d.product_id.as_str()).or_default();
        match d.stage {
            Stage::ClosedWon => counts.0 += 1,
            Stage::ClosedLost => counts.1 += 1,
            _ => {}
        }
    }
    by_product
        .into_iter()
        .filter(|(_, (won, lost))| won + lost > 0)
        .map(|(product_id, (won, lost))| ProductWinRate {
            product_id: product_id.to_owned(),
            won,
            lost,
            rate: ratio(Decimal::from(won), Decimal::from(won + lost)),
        })
        .collect()
}

/// The mean of `spans` in days, 2 places half-even; `None` without one.
pub fn mean_days(spans: impl Iterator<Item = chrono::Duration>) -> Option<Decimal> {
    let days: Vec<Decimal> = spans
        .map(|span| Decimal::from(span.num_seconds()) / Decimal::from(86_400))
        .collect();
    (!days.is_empty()).then(|| {
        (days.iter().sum::<Decimal>() / Decimal::from(days.len()))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn deal(motion: Motion, stage: Stage, amount: &str, reached: &[Stage]) -> ForecastDeal {
        let created = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        ForecastDeal {
            motion,
            product_id: if motion.is_upsell() {
                "core"
            } else {
                "analytics"
            }
            .into(),
            stage,
            amount: Money::parse("USD", amount).unwrap(),
            probability: Stage::default_probability(stage),
            owner_team: Some("emea-ae".into()),
            created_at: created,
            closed_at: stage
                .is_closed()
                .then(|| created + chrono::Duration::days(30)),
            stages_reached: reached.iter().copied().collect(),
        }
    }

    #[test]
    fn stages_weighted_win_rates_and_conversion() {
        use Stage::*;
        let deals = vec![
            deal(
                Motion::UpsellTier,
                ClosedWon,
                "100000",
                &[
                    Identified,
                    Exploring,
                    Qualified,
                    Proposed,
                    Negotiating,
                    ClosedWon,
                ],
            ),
            deal(
                Motion::UpsellTier,
                ClosedLost,
                "50000",
                &[Identified, Exploring, ClosedLost],
            ),
            deal(
                Motion::UpsellTier,
                ClosedLost,
                "50000",
                &[Identified, ClosedLost],
            ),
            deal(
                Motion::UpsellTier,
                ClosedLost,
                "50000",
                &[Identified, ClosedLost],
            ),
            deal(
                Motion::CrossSellAdjacent,
                Proposed,
                "500000",
                &[Identified, Exploring, Qualified, Proposed],
            ),
            deal(
                Motion::CrossSellAdjacent,
                Identified,
                "100000",
                &[Identified],
            ),
        ];
        let f = forecast(&deals);
        assert_eq!(f.len(), 1);
        let f = &f[0];
        let proposed = f.stages.iter().find(|s| s.stage == Proposed).unwrap();
        assert_eq!(proposed.bucket.count, 1);
        assert_eq!(
            proposed.bucket.weighted,
            Money::parse("USD", "300000").unwrap()
        );
        // 6 reached IDENTIFIED, 3 moved on (won, lost-after-exploring, proposed).
        let identified = f.stages.iter().find(|s| s.stage == Identified).unwrap();
        assert_eq!(identified.conversion, Some(Decimal::new(5000, 4)));
        assert_eq!(f.open.amount, Money::parse("USD", "600000").unwrap());
        assert_eq!(f.open.weighted, Money::parse("USD", "310000").unwrap());
        let tier = f
            .win_rates
            .iter()
            .find(|w| w.motion == Motion::UpsellTier)
            .unwrap();
        assert_eq!((tier.won, tier.lost), (1, 3));
        assert_eq!(tier.rate, Some(Decimal::new(2500, 4)));
        assert_eq!(tier.benchmark, (Decimal::new(15, 2), Decimal::new(25, 2)));
        assert_eq!(tier.verdict, Some(BenchmarkVerdict::Within));
        let adjacent = f
            .win_rates
            .iter()
            .find(|w| w.motion == Motion::CrossSellAdjacent)
            .unwrap();
        assert_eq!(adjacent.rate, None);
        assert_eq!(f.avg_cycle_days, Some(Decimal::from(30)));
        assert_eq!(
            f.avg_deal_size,
            Some(Money::parse("USD", "100000").unwrap())
        );
        // By product: core sold the four tier upsells (1 won, 3 lost); the
        // analytics cross-sells are still open, so they have no win rate.
        assert_eq!(f.win_rates_by_product.len(), 1);
        let core = &f.win_rates_by_product[0];
        assert_eq!(
            (core.product_id.as_str(), core.won, core.lost),
            ("core", 1, 3)
        );
        assert_eq!(core.rate, Some(Decimal::new(2500, 4)));
        assert_eq!(f.by_motion.len(), 1);
        assert_eq!(f.by_owner_team[0].0, "emea-ae");
    }

    #[test]
    fn the_stage_history_keeps_the_stages_reached_and_the_last_close() {
        let row = |id: &str, opportunity: &str, stage: &str, day: u32| history::Model {
            id: id.into(),
            opportunity_id: opportunity.into(),
            field: "stage".into(),
            previous_value: None,
            new_value: Some(stage.into()),
            principal: "p".into(),
            reason: None,
            changed_at: Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap(),
        };
        let facts = StageHistory::from_rows([
            row("1", "a", "IDENTIFIED", 1),
            row("2", "a", "CLOSED_LOST", 2),
            row("3", "b", "IDENTIFIED", 1),
            row("4", "b", "CLOSED_WON", 3),
            // Reopened: a's close no longer counts.
            row("5", "a", "IDENTIFIED", 4),
            row("6", "b", "not a stage", 5),
        ]);
        assert_eq!(
            facts.reached["a"],
            BTreeSet::from([Stage::Identified, Stage::ClosedLost])
        );
        assert_eq!(facts.closed_at.get("a"), None);
        assert_eq!(
            facts.closed_at.get("b"),
            Some(&Utc.with_ymd_and_hms(2026, 1, 3, 0, 0, 0).unwrap())
        );
    }

    #[test]
    fn close_dates_in_range() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d);
        assert!(closes_within(day(5), None, None));
        assert!(closes_within(day(5), day(5), day(5)));
        assert!(!closes_within(day(4), day(5), None));
        assert!(!closes_within(day(6), None, day(5)));
        assert!(closes_within(None, None, None));
        assert!(!closes_within(None, day(1), None));
    }

    #[test]
    fn one_forecast_per_currency() {
        let mut eur = deal(
            Motion::UpsellTier,
            Stage::Identified,
            "10",
            &[Stage::Identified],
        );
        eur.amount = Money::parse("EUR", "10").unwrap();
        let f = forecast(&[
            deal(
                Motion::UpsellTier,
                Stage::Identified,
                "10",
                &[Stage::Identified],
            ),
            eur,
        ]);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].currency.code(), "EUR");
        assert_eq!(f[1].open.amount, Money::parse("USD", "10").unwrap());
    }

    proptest::proptest! {
        /// Open pipeline is the sum of the open stages; counts add up; the
        /// weighted amount never exceeds the amount.
        #[test]
        fn buckets_add_up(
            deals in proptest::collection::vec((0usize..7, 1i64..1_000_000_000, 0u32..=100), 0..30)
        ) {
            let created = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
            let deals: Vec<ForecastDeal> = deals
                .iter()
                .map(|(stage, minor, p)| ForecastDeal {
                    motion: Motion::UpsellTier,
                    product_id: "core".into(),
                    stage: Stage::ALL[*stage],
                    amount: Money::from_minor(Currency::USD, *minor),
                    probability: Percent::from_whole(*p),
                    owner_team: None,
                    created_at: created,
                    closed_at: None,
                    stages_reached: [Stage::ALL[*stage]].into_iter().collect(),
                })
                .collect();
            for f in forecast(&deals) {
                let open_stages: Vec<&StageLine> =
                    f.stages.iter().filter(|s| s.stage.is_open()).collect();
                let count: i64 = f.stages.iter().map(|s| s.bucket.count).sum();
                proptest::prop_assert_eq!(count, deals.len() as i64);
                let open_amount: i64 = open_stages.iter().map(|s| s.bucket.amount.minor()).sum();
                proptest::prop_assert_eq!(open_amount, f.open.amount.minor());
                proptest::prop_assert!(f.open.weighted.minor() <= f.open.amount.minor());
                let teams: i64 = f.by_owner_team.iter().map(|(_, b)| b.count).sum();
                proptest::prop_assert_eq!(teams, f.open.count);
            }
        }
    }
}
