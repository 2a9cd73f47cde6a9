//! Expansion motions: the six ways an existing customer buys more.

use crate::error::named_enum;
use crate::percent::Percent;

named_enum! {
    /// How an opportunity grows an account: more of what it has (upsell) or something
    /// new from the portfolio (cross-sell).
    pub enum Motion("motion") {
        /// A higher tier of a product the account owns.
        UpsellTier => "UPSELL_TIER",
        /// A premium feature or add-on of an owned product.
        UpsellFeature => "UPSELL_FEATURE",
        /// More seats, usage or quota of an owned product.
        UpsellCapacity => "UPSELL_CAPACITY",
        /// A product next to an owned one in the same workflow.
        CrossSellAdjacent => "CROSS_SELL_ADJACENT",
        /// A product that makes an owned one more valuable.
        CrossSellComplementary => "CROSS_SELL_COMPLEMENTARY",
        /// A platform that ties several products together.
        CrossSellPlatform => "CROSS_SELL_PLATFORM",
    }
}

/// Where an observed win rate sits against a motion's benchmark band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BenchmarkVerdict {
    Below,
    Within,
    Above,
}

impl Motion {
    pub const fn is_cross_sell(self) -> bool {
        matches!(
            self,
            Motion::CrossSellAdjacent | Motion::CrossSellComplementary | Motion::CrossSellPlatform
        )
    }

    pub const fn is_upsell(self) -> bool {
        !self.is_cross_sell()
    }

    /// The seed's typical win-rate band `(low, high)` for the motion, both inclusive.
    pub const fn benchmark_win_rate(self) -> (Percent, Percent) {
        let (low, high) = match self {
            Motion::UpsellTier => (15, 25),
            Motion::UpsellFeature => (8, 15),
            Motion::UpsellCapacity => (20, 30),
            Motion::CrossSellAdjacent => (10, 18),
            Motion::CrossSellComplementary => (12, 20),
            Motion::CrossSellPlatform => (5, 12),
        };
        (Percent::from_whole(low), Percent::from_whole(high))
    }

    /// Compares an observed win rate with the benchmark band.
    pub fn judge_win_rate(self, win_rate: Percent) -> BenchmarkVerdict {
        let (low, high) = self.benchmark_win_rate();
        if win_rate < low {
            BenchmarkVerdict::Below
        } else if win_rate > high {
            BenchmarkVerdict::Above
        } else {
            BenchmarkVerdict::Within
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn names_round_trip() {
        for motion in Motion::ALL {
            assert_eq!(Motion::from_str(motion.as_str()).unwrap(), *motion);
        }
        assert_eq!(Motion::ALL.len(), 6);
        assert!(Motion::from_str("UPSELL").is_err());
    }

    #[test]
    fn cross_sell_and_upsell_partition_the_motions() {
        let cross: Vec<_> = Motion::ALL.iter().filter(|m| m.is_cross_sell()).collect();
        assert_eq!(
            cross,
            [
                &Motion::CrossSellAdjacent,
                &Motion::CrossSellComplementary,
                &Motion::CrossSellPlatform
            ]
        );
        for motion in Motion::ALL {
            assert_ne!(motion.is_cross_sell(), motion.is_upsell());
            assert_eq!(
                motion.is_cross_sell(),
                motion.as_str().starts_with("CROSS_SELL_")
            );
        }
    }

    #[test]
    fn benchmarks_follow_the_seed() {
        let band = |m: Motion| {
            let (low, high) = m.benchmark_win_rate();
            (low.to_string(), high.to_string())
        };
        let p = |s: &str| s.to_owned();
        assert_eq!(band(Motion::UpsellTier), (p("15%"), p("25%")));
        assert_eq!(band(Motion::UpsellFeature), (p("8%"), p("15%")));
        assert_eq!(band(Motion::UpsellCapacity), (p("20%"), p("30%")));
        assert_eq!(band(Motion::CrossSellAdjacent), (p("10%"), p("18%")));
        assert_eq!(band(Motion::CrossSellComplementary), (p("12%"), p("20%")));
        assert_eq!(band(Motion::CrossSellPlatform), (p("5%"), p("12%")));
    }

    #[test]
    fn judges_win_rates_inclusively() {
        let rate = |s| Percent::parse(s).unwrap();
        let tier = Motion::UpsellTier;
        assert_eq!(tier.judge_win_rate(rate("14.99")), BenchmarkVerdict::Below);
        assert_eq!(tier.judge_win_rate(rate("15")), BenchmarkVerdict::Within);
        assert_eq!(tier.judge_win_rate(rate("25")), BenchmarkVerdict::Within);
        assert_eq!(tier.judge_win_rate(rate("25.01")), BenchmarkVerdict::Above);
    }
}
