//! The one decimal-string grammar shared by money amounts and percentages.
//!
//! `-?[0-9]+(\.[0-9]+)?` and nothing else: no sign `+`, no spaces, no exponent, no `NaN`,
//! no digit separators, no bare `.5` or `5.`. Wire values are written by programs, and a
//! strict grammar means two implementations never disagree about what a string meant.

use rust_decimal::Decimal;

/// A syntactically valid decimal string, split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecimalText<'a> {
    pub(crate) negative: bool,
    /// One or more ASCII digits.
    pub(crate) integer: &'a str,
    /// Zero or more ASCII digits, with trailing zeros removed: `1.500` and `1.5` are the same
    /// number, and only significant places count against a precision limit.
    pub(crate) fraction: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalSyntaxError {
    Empty,
    Malformed,
}

pub(crate) fn split_decimal(text: &str) -> Result<DecimalText<'_>, DecimalSyntaxError> {
    if text.is_empty() {
        return Err(DecimalSyntaxError::Empty);
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (integer, fraction) = match unsigned.split_once('.') {
        Some((integer, fraction)) => {
            if fraction.is_empty() {
                return Err(DecimalSyntaxError::Malformed);
            }
            (integer, fraction)
        }
        None => (unsigned, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if integer.is_empty() || !all_digits(integer) || !all_digits(fraction) {
        return Err(DecimalSyntaxError::Malformed);
    }
    Ok(DecimalText {
        negative,
        integer,
        fraction: fraction.trim_end_matches('0'),
    })
}

/// Parses a decimal string in this grammar into an exact [`Decimal`], for values that are
/// neither money nor a percentage (signal values, scorecard weights and thresholds).
/// `None` when the text is not in the grammar or beyond `Decimal`'s 28 digits.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    let parts = split_decimal(text).ok()?;
    let magnitude = accumulate_digits(0, parts.integer)
        .and_then(|acc| accumulate_digits(acc, parts.fraction))?;
    let mantissa = if parts.negative {
        -magnitude
    } else {
        magnitude
    };
    let scale = u32::try_from(parts.fraction.len()).ok()?;
    Decimal::try_from_i128_with_scale(mantissa, scale).ok()
}

/// Appends ASCII digits to `acc` (`acc * 10 + d` per digit); `None` on `i128` overflow.
pub(crate) fn accumulate_digits(mut acc: i128, digits: &str) -> Option<i128> {
    for b in digits.bytes() {
        acc = acc.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    Some(acc)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_decimals() {
        let parts = split_decimal("-1234.500").unwrap();
        assert!(parts.negative);
        assert_eq!(parts.integer, "1234");
        assert_eq!(parts.fraction, "5");
        let parts = split_decimal("0").unwrap();
        assert!(!parts.negative);
        assert_eq!((parts.integer, parts.fraction), ("0", ""));
        assert_eq!(split_decimal("7.000").unwrap().fraction, "");
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(split_decimal(""), Err(DecimalSyntaxError::Empty));
        for bad in [
            "+1", " 1", "1 ", "1e3", "1E3", "NaN", "nan", "inf", "-", ".", ".5", "5.", "1.2.3",
            "1,000", "1_000", "--1", "-+1", "0x10", "１", "1.-5", "-.5",
        ] {
            assert_eq!(
                split_decimal(bad),
                Err(DecimalSyntaxError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parse_decimal_is_exact_and_strict() {
        assert_eq!(parse_decimal("-12.500"), Some(Decimal::new(-125, 1)));
        assert_eq!(parse_decimal("0"), Some(Decimal::ZERO));
        assert_eq!(
            parse_decimal("79228162514264337593543950335"),
            Some(Decimal::MAX)
        );
        for bad in [
            "",
            "1_000",
            "+5",
            ".5",
            "5.",
            "1e3",
            " 5",
            "79228162514264337593543950336",
            "0.00000000000000000000000000001",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn accumulate_digits_detects_overflow() {
        assert_eq!(accumulate_digits(12, "34"), Some(1234));
        assert_eq!(accumulate_digits(0, &"9".repeat(39)), None);
    }
}
