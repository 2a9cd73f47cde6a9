//! Exact decimal percentages: `25` means 25%, `12.5` means 12.5%.
//!
//! Shares, probabilities, margins and thresholds are all percentages on the wire (decimal
//! strings, never floats). At most six decimal places are kept, which bounds the integer
//! arithmetic in [`crate::allocation`] and is far finer than any policy needs.

use std::fmt;

use rust_decimal::Decimal;
use thiserror::Error;

use crate::decimal_text::{DecimalSyntaxError, accumulate_digits, split_decimal};

/// Most decimal places a percentage may have (`0.000001%`).
pub const MAX_PERCENT_PLACES: u32 = 6;

/// An exact percentage with at most [`MAX_PERCENT_PLACES`] significant decimal places.
/// Stored normalised, so `25.0` and `25` are equal and print alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Percent(Decimal);

/// Why a percentage was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PercentError {
    #[error("percentage must not be empty")]
    Empty,
    #[error("percentage must be a decimal string like \"25\" or \"12.5\"")]
    Malformed,
    #[error("percentage allows at most {MAX_PERCENT_PLACES} decimal places")]
    TooManyDecimals,
    #[error("percentage is out of range")]
    OutOfRange,
    #[error("percentage must be between {min} and {max}, got {value}")]
    NotBetween {
        value: Percent,
        min: Percent,
        max: Percent,
    },
}

impl Percent {
    pub const ZERO: Percent = Percent(Decimal::ZERO);
    pub const ONE_HUNDRED: Percent = Percent(Decimal::ONE_HUNDRED);

    /// A whole-number percentage, usable in constants (`Percent::from_whole(25)` is 25%).
    pub const fn from_whole(value: u32) -> Percent {
        Percent(Decimal::from_parts(value, 0, 0, false, 0))
    }

    /// Parses the wire form: `-?[0-9]+(\.[0-9]+)?` with at most six significant places.
    /// No `%` sign, no exponent, no `NaN`, no surrounding spaces.
    pub fn parse(text: &str) -> Result<Percent, PercentError> {
        let parts = split_decimal(text).map_err(|err| match err {
            DecimalSyntaxError::Empty => PercentError::Empty,
            DecimalSyntaxError::Malformed => PercentError::Malformed,
        })?;
        if parts.fraction.len() > MAX_PERCENT_PLACES as usize {
            return Err(PercentError::TooManyDecimals);
        }
        let magnitude = accumulate_digits(0, parts.integer)
            .and_then(|acc| accumulate_digits(acc, parts.fraction))
            .ok_or(PercentError::OutOfRange)?;
        let mantissa = if parts.negative {
            -magnitude
        } else {
            magnitude
        };
        // The fraction has at most six digits, so the cast is lossless.
        let scale = parts.fraction.len() as u32;
        let value = Decimal::try_from_i128_with_scale(mantissa, scale)
            .map_err(|_| PercentError::OutOfRange)?;
        Ok(Percent(value.normalize()))
    }

    /// Parses and checks `min ≤ value ≤ max` in one step.
    pub fn parse_between(text: &str, min: Percent, max: Percent) -> Result<Percent, PercentError> {
        Percent::parse(text)?.ensure_between(min, max)
    }

    /// Wraps an exact decimal; refuses more than six significant places.
    pub fn from_decimal(value: Decimal) -> Result<Percent, PercentError> {
        let value = value.normalize();
        if value.scale() > MAX_PERCENT_PLACES {
            return Err(PercentError::TooManyDecimals);
        }
        Ok(Percent(value))
    }

    /// [`Percent::from_decimal`] followed by a range check.
    pub fn new_checked(
        value: Decimal,
        min: Percent,
        max: Percent,
    ) -> Result<Percent, PercentError> {
        Percent::from_decimal(value)?.ensure_between(min, max)
    }

    /// `Ok(self)` when `min ≤ self ≤ max` (both ends included).
    pub fn ensure_between(self, min: Percent, max: Percent) -> Result<Percent, PercentError> {
        if min <= self && self <= max {
            Ok(self)
        } else {
            Err(PercentError::NotBetween {
                value: self,
                min,
                max,
            })
        }
    }

    /// The percentage as written: `25` for 25%.
    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// The fraction it stands for: `0.25` for 25%.
    pub fn as_fraction(self) -> Decimal {
        // Exact: at most 6 + 2 places, well inside Decimal's 28.
        let mut fraction = self.0;
        fraction.set_scale(self.0.scale() + 2).unwrap_or(());
        fraction
    }

    /// The wire form without the `%` sign: `"25"`, `"12.5"`.
    pub fn to_decimal_string(self) -> String {
        self.0.to_string()
    }

    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Percent) -> Option<Percent> {
        self.0
            .checked_add(other.0)
            .map(|sum| Percent(sum.normalize()))
    }

    /// `self - other`, `None` on overflow.
    pub fn checked_sub(self, other: Percent) -> Option<Percent> {
        self.0
            .checked_sub(other.0)
            .map(|difference| Percent(difference.normalize()))
    }

    /// Sum of several percentages (e.g. sub-splits that must total 100), `None` on overflow.
    pub fn checked_sum<I>(values: I) -> Option<Percent>
    where
        I: IntoIterator<Item = Percent>,
    {
        values
            .into_iter()
            .try_fold(Percent::ZERO, |sum, value| sum.checked_add(value))
    }

    /// The percentage in millionths of a percent, an exact integer: 25% is 25 000 000.
    /// This is what the allocation arithmetic computes with.
    pub(crate) fn micros(self) -> i128 {
        // The invariant keeps scale ≤ 6 and the mantissa within 96 bits, so neither the
        // power nor the product can overflow an i128.
        let shift = MAX_PERCENT_PLACES.saturating_sub(self.0.scale());
        self.0.mantissa() * 10_i128.pow(shift)
    }
}

/// Millionths of a percent in a whole: 100% = 100 000 000 micros.
pub(crate) const MICROS_PER_WHOLE: i128 = 100_000_000;

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl std::str::FromStr for Percent {
    type Err = PercentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Percent::parse(s)
    }
}

impl TryFrom<Decimal> for Percent {
    type Error = PercentError;

    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Percent::from_decimal(value)
    }
}

impl From<Percent> for Decimal {
    fn from(value: Percent) -> Self {
        value.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn p(text: &str) -> Percent {
        Percent::parse(text).unwrap()
    }

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn parses_exact_percentages() {
        assert_eq!(p("25").as_decimal(), d("25"));
        assert_eq!(p("12.5").as_decimal(), d("12.5"));
        assert_eq!(p("25.000"), p("25"));
        assert_eq!(p("0.000001").micros(), 1);
        assert_eq!(p("-5").as_decimal(), d("-5"));
        assert_eq!(p("-0"), Percent::ZERO);
        assert!(!p("-0").is_negative());
        assert!(p("-0.5").is_negative());
        assert_eq!(p("1000").as_decimal(), d("1000"));
        assert_eq!(Percent::from_str("40").unwrap(), Percent::from_whole(40));
    }

    #[test]
    fn refuses_malformed_percentages() {
        assert_eq!(Percent::parse(""), Err(PercentError::Empty));
        for bad in [
            "25%", "+25", " 25", "2.5e1", "NaN", "inf", ".5", "5.", "1,5", "twenty",
        ] {
            assert_eq!(Percent::parse(bad), Err(PercentError::Malformed), "{bad:?}");
        }
        assert_eq!(
            Percent::parse("0.0000001"),
            Err(PercentError::TooManyDecimals)
        );
        assert_eq!(
            Percent::parse("0.0000001").unwrap_err().to_string(),
            "percentage allows at most 6 decimal places"
        );
        // Trailing zeros are not significant.
        assert_eq!(p("0.1000000"), p("0.1"));
        assert_eq!(
            Percent::parse(&"9".repeat(40)),
            Err(PercentError::OutOfRange)
        );
        assert_eq!(
            Percent::parse(&"9".repeat(30)),
            Err(PercentError::OutOfRange)
        );
    }

    #[test]
    fn range_checks_include_both_ends() {
        let hundred = Percent::ONE_HUNDRED;
        assert_eq!(
            p("0").ensure_between(Percent::ZERO, hundred),
            Ok(Percent::ZERO)
        );
        assert_eq!(p("100").ensure_between(Percent::ZERO, hundred), Ok(hundred));
        let err = p("100.5")
            .ensure_between(Percent::ZERO, hundred)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "percentage must be between 0% and 100%, got 100.5%"
        );
        assert!(p("-1").ensure_between(Percent::ZERO, hundred).is_err());
        assert_eq!(
            Percent::parse_between("30", Percent::from_whole(20), Percent::from_whole(30)),
            Ok(Percent::from_whole(30))
        );
        assert!(Percent::new_checked(d("31"), Percent::ZERO, Percent::from_whole(30)).is_err());
        assert!(Percent::new_checked(d("0.1234567"), Percent::ZERO, hundred).is_err());
    }

    #[test]
    fn conversions_are_exact() {
        assert_eq!(p("25").as_fraction(), d("0.25"));
        assert_eq!(p("0.000001").as_fraction(), d("0.00000001"));
        assert_eq!(p("-12.5").as_fraction(), d("-0.125"));
        assert_eq!(p("12.50").to_decimal_string(), "12.5");
        assert_eq!(p("25").to_string(), "25%");
        assert_eq!(p("0.000001").to_string(), "0.000001%");
        assert_eq!(p("25").micros(), 25_000_000);
        assert_eq!(p("-0.5").micros(), -500_000);
        assert_eq!(Percent::ONE_HUNDRED.micros(), MICROS_PER_WHOLE);
        assert_eq!(Percent::try_from(d("7.50")).unwrap(), p("7.5"));
        assert_eq!(Decimal::from(p("7.5")), d("7.5"));
    }

    #[test]
    fn sums_are_exact() {
        let shares = [p("33.333333"), p("33.333333"), p("33.333334")];
        assert_eq!(Percent::checked_sum(shares), Some(Percent::ONE_HUNDRED));
        assert_eq!(p("10").checked_sub(p("12.5")), Some(p("-2.5")));
        assert_eq!(Percent::checked_sum([]), Some(Percent::ZERO));
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,40}") {
            let _ = Percent::parse(&text);
        }

        #[test]
        fn decimal_string_round_trips(mantissa in any::<i64>(), scale in 0u32..=6) {
            let value = Percent::from_decimal(Decimal::new(mantissa, scale)).unwrap();
            prop_assert_eq!(Percent::parse(&value.to_decimal_string()), Ok(value));
        }
    }
}
