//! Priority (seed 001): expected value = amount × probability, weighted by
//! strategic value and timeline. "A $500K cross-sell at 70% is probably worth
//! more than a $100K opportunity at 90%."

use chrono::NaiveDate;
use domain::{Decimal, Money, Percent};
use rust_decimal::RoundingStrategy;

use super::qualification::Rating;

/// amount × probability, rounded half-even to the currency's minor unit.
pub fn expected_value(amount: Money, probability: Percent) -> Money {
    weighted(amount, probability.as_fraction())
}

fn weighted(amount: Money, factor: Decimal) -> Money {
    let exact = amount.amount() * factor;
    let places = u32::from(amount.currency().exponent());
    let rounded = exact.round_dp_with_strategy(places, RoundingStrategy::MidpointNearestEven);
    // The product of an i64 amount and a factor ≤ 1.2 fits back unless the
    // amount was already at the edge of i64; saturate rather than fail.
    Money::from_decimal(amount.currency(), rounded)
        .unwrap_or_else(|_| Money::from_minor(amount.currency(), amount.minor()))
}

/// Weight of strategic value: deepening the relationship counts (seed 001).
pub fn strategic_weight(value: Option<Rating>) -> Decimal {
    match value {
        Some(Rating::High) => Decimal::new(12, 1),
        Some(Rating::Medium) | None => Decimal::ONE,
        Some(Rating::Low) => Decimal::new(8, 1),
    }
}

/// Weight of the timeline: a decision expected soon is worth more now.
/// Within 90 days 1.0, within 180 days 0.9, later or unknown 0.8.
pub fn timeline_weight(close_date: Option<NaiveDate>, today: NaiveDate) -> Decimal {
    match close_date.map(|d| (d - today).num_days()) {
        Some(days) if days <= 90 => Decimal::ONE,
        Some(days) if days <= 180 => Decimal::new(9, 1),
        _ => Decimal::new(8, 1),
    }
}

/// The priority score: expected value × strategic weight × timeline weight.
pub fn priority_score(
    amount: Money,
    probability: Percent,
    strategic_value: Option<Rating>,
    close_date: Option<NaiveDate>,
    today: NaiveDate,
) -> Money {
    let factor = probability.as_fraction()
        * strategic_weight(strategic_value)
        * timeline_weight(close_date, today);
    weighted(amount, factor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn usd(a: &str) -> Money {
        Money::parse("USD", a).unwrap()
    }

    #[test]
    fn seed_500k_at_70_ranks_above_100k_at_90() {
        let big = expected_value(usd("500000"), Percent::from_whole(70));
        let small = expected_value(usd("100000"), Percent::from_whole(90));
        assert_eq!(big, usd("350000"));
        assert_eq!(small, usd("90000"));
        assert!(big.minor() > small.minor());

        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let close = NaiveDate::from_ymd_opt(2027, 1, 15);
        let big = priority_score(usd("500000"), Percent::from_whole(70), None, close, today);
        let small = priority_score(
            usd("100000"),
            Percent::from_whole(90),
            Some(Rating::High),
            close,
            today,
        );
        assert!(big.minor() > small.minor(), "{big} vs {small}");
    }

    #[test]
    fn weights_and_rounding() {
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let d = |days| Some(today + chrono::Duration::days(days));
        assert_eq!(timeline_weight(d(90), today), Decimal::ONE);
        assert_eq!(timeline_weight(d(91), today), Decimal::new(9, 1));
        assert_eq!(timeline_weight(d(181), today), Decimal::new(8, 1));
        assert_eq!(timeline_weight(None, today), Decimal::new(8, 1));
        // 0.05 × 50% = 0.025 → 0.02 (half-even).
        assert_eq!(
            expected_value(usd("0.05"), Percent::from_whole(50)),
            usd("0.02")
        );
        let p = priority_score(
            usd("1000"),
            Percent::from_whole(50),
            Some(Rating::High),
            d(200),
            today,
        );
        assert_eq!(p, usd("480")); // 1000 × 0.5 × 1.2 × 0.8
    }
}
