//! Health bands: the traffic light a health score falls into.

use rust_decimal::Decimal;

use crate::error::named_enum;

named_enum! {
    /// RED accounts get fixed before anyone sells them more; GREEN ones are ready to grow.
    /// Ordered worst to best.
    pub enum HealthBand("health band") {
        Red => "RED",
        Yellow => "YELLOW",
        Green => "GREEN",
    }
}

impl HealthBand {
    /// The band of a 0–100 score under the default bands: RED 0–50, YELLOW 51–75,
    /// GREEN 76–100, lower bounds excluded except in the first band, so 50 is RED and
    /// 50.5 is YELLOW. Scores outside 0–100 land in the nearest band. Deployments may
    /// configure other bands; this is only the default.
    pub fn from_default_bands(score: Decimal) -> HealthBand {
        if score <= Decimal::from(50) {
            HealthBand::Red
        } else if score <= Decimal::from(75) {
            HealthBand::Yellow
        } else {
            HealthBand::Green
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
        for band in HealthBand::ALL {
            assert_eq!(HealthBand::from_str(band.as_str()).unwrap(), *band);
        }
        assert!(HealthBand::Red < HealthBand::Yellow && HealthBand::Yellow < HealthBand::Green);
    }

    #[test]
    fn default_bands_exclude_lower_bounds_after_the_first() {
        let band = |s| HealthBand::from_default_bands(Decimal::from_str(s).unwrap());
        assert_eq!(band("0"), HealthBand::Red);
        assert_eq!(band("50"), HealthBand::Red);
        assert_eq!(band("50.01"), HealthBand::Yellow);
        assert_eq!(band("51"), HealthBand::Yellow);
        assert_eq!(band("75"), HealthBand::Yellow);
        assert_eq!(band("75.5"), HealthBand::Green);
        assert_eq!(band("76"), HealthBand::Green);
        assert_eq!(band("100"), HealthBand::Green);
        assert_eq!(band("-3"), HealthBand::Red);
        assert_eq!(band("120"), HealthBand::Green);
    }
}
