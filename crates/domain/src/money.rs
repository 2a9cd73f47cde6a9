//! Money: an ISO 4217 currency and an integer number of its minor units.
//!
//! Amounts travel as decimal strings (`{ currency_code: "USD", amount: "1234.56" }`) and are
//! held as `i64` minor units, so sums are exact and every service agrees to the cent.

use std::fmt;

use rust_decimal::Decimal;
use thiserror::Error;

use crate::decimal_text::{DecimalSyntaxError, accumulate_digits, split_decimal};
use crate::error::quote;

/// An ISO 4217 currency: its three-letter code and how many decimal places its minor unit has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    exponent: u8,
}

/// Active ISO 4217 currencies with a minor unit, sorted by code (binary-searched).
/// Precious metals and other codes without a minor unit (XAU, XDR…) are left out: they
/// are not what anyone invoices a subscription in.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

impl Currency {
    pub const USD: Currency = Currency::known("USD", 2);
    pub const EUR: Currency = Currency::known("EUR", 2);
    pub const BRL: Currency = Currency::known("BRL", 2);
    pub const GBP: Currency = Currency::known("GBP", 2);
    pub const MXN: Currency = Currency::known("MXN", 2);
    pub const JPY: Currency = Currency::known("JPY", 0);
    pub const CLP: Currency = Currency::known("CLP", 0);
    pub const KWD: Currency = Currency::known("KWD", 3);

    const fn known(code: &'static str, exponent: u8) -> Currency {
        Currency { code, exponent }
    }

    /// Parses an ISO 4217 code. Only the canonical upper-case spelling is accepted: `"usd"`
    /// is refused rather than guessed at, so stored codes are always comparable byte for byte.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        if code.is_empty() {
            return Err(MoneyError::EmptyCurrency);
        }
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(MoneyError::MalformedCurrency(quote(code)));
        }
        CURRENCIES
            .binary_search_by(|(known, _)| (*known).cmp(code))
            .map(|index| {
                let (code, exponent) = CURRENCIES[index];
                Currency { code, exponent }
            })
            .map_err(|_| MoneyError::UnknownCurrency(quote(code)))
    }

    /// The three-letter code, e.g. `"USD"`.
    pub fn code(self) -> &'static str {
        self.code
    }

    /// Decimal places of the minor unit: 2 for USD, 0 for JPY, 3 for KWD.
    pub fn exponent(self) -> u8 {
        self.exponent
    }

    /// Minor units per major unit (100 for USD).
    fn minor_per_major(self) -> i128 {
        10_i128.pow(u32::from(self.exponent))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl std::str::FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

/// Why a currency code or amount was refused, or why two amounts could not be combined.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("currency code must not be empty")]
    EmptyCurrency,
    /// Holds the quoted input.
    #[error("currency code must be three upper-case letters like \"USD\", got {0}")]
    MalformedCurrency(String),
    /// Holds the quoted input.
    #[error("unknown currency code {0}")]
    UnknownCurrency(String),
    #[error("amount must not be empty")]
    EmptyAmount,
    #[error("amount must be a decimal string like \"1234.56\"")]
    MalformedAmount,
    #[error("{}", too_many_decimals(.0))]
    TooManyDecimals(Currency),
    #[error("amount is out of range")]
    OutOfRange,
    #[error("cannot combine {left} with {right}: amounts in different currencies never mix")]
    CurrencyMismatch { left: Currency, right: Currency },
}

fn too_many_decimals(currency: &Currency) -> String {
    match currency.exponent() {
        0 => format!("{currency} allows no decimal places"),
        1 => format!("{currency} allows at most 1 decimal place"),
        n => format!("{currency} allows at most {n} decimal places"),
    }
}

/// Largest deal amount, in minor units: 10^15, ten trillion dollars. Far above any real
/// deal, and low enough that sums of thousands of such amounts (a forecast, a wallet, a
/// statement with overlays up to 10×) never leave `i64`. An opportunity above it could
/// never be credited, so the pipeline refuses it as the credit service does.
pub const MAX_DEAL_MINOR: i64 = 1_000_000_000_000_000;

/// An exact amount of money: a currency and a signed number of its minor units.
///
/// Negative amounts are allowed (clawbacks, contraction, adjustments); callers that need a
/// positive amount check `is_negative`/`is_zero` where the rule lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    currency: Currency,
    minor: i64,
}

impl Money {
    /// Parses the wire form: a currency code and a decimal amount string such as `"1234.50"`,
    /// `"-3"` or `"0.5"`. Significant decimal places beyond the currency's exponent are
    /// refused (never rounded away); trailing zeros are not significant, so `"1.500"` USD is
    /// 1.50.
    pub fn parse(currency_code: &str, amount: &str) -> Result<Money, MoneyError> {
        let currency = Currency::parse(currency_code)?;
        Money::parse_amount(currency, amount)
    }

    /// Parses a decimal amount string in a currency that is already known.
    pub fn parse_amount(currency: Currency, amount: &str) -> Result<Money, MoneyError> {
        let text = split_decimal(amount).map_err(|err| match err {
            DecimalSyntaxError::Empty => MoneyError::EmptyAmount,
            DecimalSyntaxError::Malformed => MoneyError::MalformedAmount,
        })?;
        let exponent = usize::from(currency.exponent());
        if text.fraction.len() > exponent {
            return Err(MoneyError::TooManyDecimals(currency));
        }
        let padding = "0".repeat(exponent - text.fraction.len());
        let magnitude = accumulate_digits(0, text.integer)
            .and_then(|acc| accumulate_digits(acc, text.fraction))
            .and_then(|acc| accumulate_digits(acc, &padding))
            .ok_or(MoneyError::OutOfRange)?;
        let signed = if text.negative { -magnitude } else { magnitude };
        let minor = i64::try_from(signed).map_err(|_| MoneyError::OutOfRange)?;
        Ok(Money { currency, minor })
    }

    /// An amount given directly in minor units (cents for USD, yen for JPY).
    pub const fn from_minor(currency: Currency, minor: i64) -> Money {
        Money { currency, minor }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Money {
        Money { currency, minor: 0 }
    }

    /// Converts an exact decimal amount; refuses (rather than rounds) more significant
    /// places than the currency has.
    pub fn from_decimal(currency: Currency, amount: Decimal) -> Result<Money, MoneyError> {
        let amount = amount.normalize();
        if amount.scale() > u32::from(currency.exponent()) {
            return Err(MoneyError::TooManyDecimals(currency));
        }
        let shift = 10_i128.pow(u32::from(currency.exponent()) - amount.scale());
        let minor = amount
            .mantissa()
            .checked_mul(shift)
            .and_then(|minor| i64::try_from(minor).ok())
            .ok_or(MoneyError::OutOfRange)?;
        Ok(Money { currency, minor })
    }

    /// Converts a decimal amount, rounding half-even to the currency's minor unit (for
    /// computed figures such as averages, never for amounts a user typed).
    pub fn from_decimal_rounded(currency: Currency, amount: Decimal) -> Result<Money, MoneyError> {
        let rounded = amount.round_dp_with_strategy(
            u32::from(currency.exponent()),
            rust_decimal::RoundingStrategy::MidpointNearestEven,
        );
        Money::from_decimal(currency, rounded)
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount in minor units.
    pub fn minor(&self) -> i64 {
        self.minor
    }

    /// The amount in major units, exact (`Decimal` holds any `i64` with up to 28 places).
    pub fn amount(&self) -> Decimal {
        Decimal::new(self.minor, u32::from(self.currency.exponent()))
    }

    /// The wire form of the amount: always exactly `exponent` decimals (`"250.00"`, JPY
    /// `"100"`, KWD `"-0.005"`), so equal amounts have equal strings.
    pub fn to_amount_string(&self) -> String {
        let per_major = self.currency.minor_per_major().unsigned_abs();
        let magnitude = u128::from(self.minor.unsigned_abs());
        let sign = if self.minor < 0 { "-" } else { "" };
        let major = magnitude / per_major;
        match self.currency.exponent() {
            0 => format!("{sign}{major}"),
            places => {
                let minor = magnitude % per_major;
                let width = usize::from(places);
                format!("{sign}{major}.{minor:0width$}")
            }
        }
    }

    pub fn is_negative(&self) -> bool {
        self.minor < 0
    }

    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    pub fn is_positive(&self) -> bool {
        self.minor > 0
    }

    /// `self + other`; refuses different currencies and `i64` overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::OutOfRange)?;
        Ok(Money { currency, minor })
    }

    /// `self - other`; refuses different currencies and `i64` overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::OutOfRange)?;
        Ok(Money { currency, minor })
    }

    /// `-self`; only `i64::MIN` minor units has no negation.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::OutOfRange)?;
        Ok(Money {
            currency: self.currency,
            minor,
        })
    }

    /// Sums amounts that must all be in `currency` (an empty list sums to zero).
    pub fn checked_sum<I>(currency: Currency, amounts: I) -> Result<Money, MoneyError>
    where
        I: IntoIterator<Item = Money>,
    {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    fn same_currency(self, other: Money) -> Result<Currency, MoneyError> {
        if self.currency == other.currency {
            Ok(self.currency)
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.to_amount_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn usd(amount: &str) -> Result<Money, MoneyError> {
        Money::parse("USD", amount)
    }

    #[test]
    fn currency_table_is_sorted_unique_and_well_formed() {
        for pair in CURRENCIES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (code, exponent) in CURRENCIES {
            assert_eq!(code.len(), 3);
            assert!(code.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(*exponent <= 4);
            assert_eq!(Currency::parse(code).unwrap().exponent(), *exponent);
        }
    }

    #[test]
    fn currency_constants_match_the_table() {
        for known in [
            Currency::USD,
            Currency::EUR,
            Currency::BRL,
            Currency::GBP,
            Currency::MXN,
            Currency::JPY,
            Currency::CLP,
            Currency::KWD,
        ] {
            assert_eq!(Currency::parse(known.code()).unwrap(), known);
        }
    }

    #[test]
    fn currency_exponents_follow_iso_4217() {
        let exponent = |code| Currency::parse(code).unwrap().exponent();
        for code in [
            "USD", "EUR", "BRL", "GBP", "MXN", "ARS", "COP", "CAD", "AUD", "CHF", "CNY", "INR",
        ] {
            assert_eq!(exponent(code), 2, "{code}");
        }
        for code in ["JPY", "CLP", "KRW"] {
            assert_eq!(exponent(code), 0, "{code}");
        }
        for code in ["KWD", "BHD", "OMR", "TND"] {
            assert_eq!(exponent(code), 3, "{code}");
        }
        assert_eq!(exponent("CLF"), 4);
    }

    #[test]
    fn currency_parse_refuses_bad_codes() {
        assert_eq!(Currency::parse(""), Err(MoneyError::EmptyCurrency));
        for bad in ["usd", "Usd", "US", "USDD", " USD", "U$D", "ÜSD"] {
            assert!(
                matches!(Currency::parse(bad), Err(MoneyError::MalformedCurrency(_))),
                "{bad:?}"
            );
        }
        let err = Currency::parse("XYZ").unwrap_err();
        assert_eq!(err.to_string(), "unknown currency code \"XYZ\"");
        assert_eq!(
            Currency::parse("usd").unwrap_err().to_string(),
            "currency code must be three upper-case letters like \"USD\", got \"usd\""
        );
        assert_eq!(Currency::from_str("EUR").unwrap(), Currency::EUR);
    }

    #[test]
    fn parses_amounts_into_minor_units() {
        assert_eq!(usd("1234.50").unwrap().minor(), 123_450);
        assert_eq!(usd("1234.5").unwrap().minor(), 123_450);
        assert_eq!(usd("-3").unwrap().minor(), -300);
        assert_eq!(usd("0.5").unwrap().minor(), 50);
        assert_eq!(usd("0.01").unwrap().minor(), 1);
        assert_eq!(usd("-0").unwrap().minor(), 0);
        assert_eq!(usd("007.10").unwrap().minor(), 710);
        assert_eq!(usd("1.500").unwrap().minor(), 150);
        assert_eq!(Money::parse("JPY", "100").unwrap().minor(), 100);
        assert_eq!(Money::parse("JPY", "100.000").unwrap().minor(), 100);
        assert_eq!(Money::parse("KWD", "1.005").unwrap().minor(), 1005);
        assert_eq!(Money::parse("CLP", "-15000").unwrap().minor(), -15_000);
    }

    #[test]
    fn refuses_malformed_amounts() {
        assert_eq!(usd(""), Err(MoneyError::EmptyAmount));
        for bad in [
            " 1", "1 ", "+1", "1e3", "1E-2", "NaN", "inf", "Infinity", ".5", "5.", "1,00", "1_000",
            "--1", "0x1F", "1.2.3", "abc", "-",
        ] {
            assert_eq!(usd(bad), Err(MoneyError::MalformedAmount), "{bad:?}");
        }
        assert_eq!(
            usd("1e3").unwrap_err().to_string(),
            "amount must be a decimal string like \"1234.56\""
        );
    }

    #[test]
    fn refuses_more_places_than_the_currency_has() {
        assert_eq!(
            usd("0.001").unwrap_err().to_string(),
            "USD allows at most 2 decimal places"
        );
        assert_eq!(
            Money::parse("JPY", "1.5").unwrap_err().to_string(),
            "JPY allows no decimal places"
        );
        assert_eq!(
            Money::parse("KWD", "1.0001").unwrap_err().to_string(),
            "KWD allows at most 3 decimal places"
        );
    }

    #[test]
    fn refuses_amounts_beyond_i64_minor_units() {
        assert_eq!(usd("92233720368547758.07").unwrap().minor(), i64::MAX);
        assert_eq!(usd("-92233720368547758.08").unwrap().minor(), i64::MIN);
        assert_eq!(usd("92233720368547758.08"), Err(MoneyError::OutOfRange));
        assert_eq!(usd("-92233720368547758.09"), Err(MoneyError::OutOfRange));
        assert_eq!(usd(&"9".repeat(100)), Err(MoneyError::OutOfRange));
        // Leading zeros don't count towards the range.
        assert_eq!(usd(&format!("{}1", "0".repeat(100))).unwrap().minor(), 100);
    }

    #[test]
    fn formats_with_exactly_exponent_places() {
        assert_eq!(usd("250").unwrap().to_amount_string(), "250.00");
        assert_eq!(usd("-0.05").unwrap().to_amount_string(), "-0.05");
        assert_eq!(
            Money::parse("JPY", "100").unwrap().to_amount_string(),
            "100"
        );
        assert_eq!(
            Money::from_minor(Currency::KWD, -5).to_amount_string(),
            "-0.005"
        );
        assert_eq!(
            Money::from_minor(Currency::USD, i64::MIN).to_amount_string(),
            "-92233720368547758.08"
        );
        assert_eq!(usd("250").unwrap().to_string(), "USD 250.00");
        assert_eq!(Money::from_minor(Currency::JPY, -7).to_string(), "JPY -7");
    }

    #[test]
    fn amount_is_the_exact_decimal() {
        assert_eq!(usd("1000.01").unwrap().amount(), Decimal::new(100_001, 2));
        assert_eq!(
            Money::from_minor(Currency::JPY, 42).amount(),
            Decimal::from(42)
        );
    }

    #[test]
    fn from_decimal_is_exact_or_refused() {
        let d = |s| Decimal::from_str(s).unwrap();
        assert_eq!(
            Money::from_decimal(Currency::USD, d("12.3400"))
                .unwrap()
                .minor(),
            1234
        );
        assert_eq!(
            Money::from_decimal(Currency::USD, d("12.345")),
            Err(MoneyError::TooManyDecimals(Currency::USD))
        );
        assert_eq!(
            Money::from_decimal(Currency::USD, d("1e20")),
            Err(MoneyError::OutOfRange)
        );
        assert_eq!(
            Money::from_decimal_rounded(Currency::USD, d("12.345"))
                .unwrap()
                .minor(),
            1234
        );
        assert_eq!(
            Money::from_decimal_rounded(Currency::USD, d("12.355"))
                .unwrap()
                .minor(),
            1236
        );
    }

    #[test]
    fn arithmetic_checks_currency_and_overflow() {
        let a = usd("1.50").unwrap();
        let b = usd("-2.25").unwrap();
        assert_eq!(a.checked_add(b).unwrap().minor(), -75);
        assert_eq!(a.checked_sub(b).unwrap().minor(), 375);
        assert!(a.checked_add(b).unwrap().is_negative());
        let eur = Money::parse("EUR", "1").unwrap();
        let err = a.checked_add(eur).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot combine USD with EUR: amounts in different currencies never mix"
        );
        assert!(a.checked_sub(eur).is_err());
        let max = Money::from_minor(Currency::USD, i64::MAX);
        assert_eq!(max.checked_add(a), Err(MoneyError::OutOfRange));
        let min = Money::from_minor(Currency::USD, i64::MIN);
        assert_eq!(min.checked_sub(a), Err(MoneyError::OutOfRange));
        assert_eq!(min.checked_neg(), Err(MoneyError::OutOfRange));
        assert_eq!(a.checked_neg().unwrap().minor(), -150);
        assert!(Money::zero(Currency::USD).is_zero());
        assert!(a.is_positive());
        assert_eq!(
            Money::checked_sum(Currency::USD, [a, a, b])
                .unwrap()
                .minor(),
            75
        );
        assert_eq!(
            Money::checked_sum(Currency::USD, []).unwrap(),
            Money::zero(Currency::USD)
        );
        assert!(Money::checked_sum(Currency::EUR, [a]).is_err());
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        (0..CURRENCIES.len()).prop_map(|index| {
            let (code, exponent) = CURRENCIES[index];
            Currency { code, exponent }
        })
    }

    proptest! {
        #[test]
        fn amount_string_round_trips(currency in any_currency(), minor in any::<i64>()) {
            let money = Money::from_minor(currency, minor);
            let text = money.to_amount_string();
            prop_assert_eq!(Money::parse(currency.code(), &text), Ok(money));
            prop_assert_eq!(Money::from_decimal(currency, money.amount()), Ok(money));
        }

        #[test]
        fn parse_never_panics(code in ".{0,5}", amount in ".{0,40}") {
            let _ = Money::parse(&code, &amount);
        }

        #[test]
        fn parse_never_panics_on_number_like_text(amount in "[-+0-9.eE ]{0,30}") {
            if let Ok(money) = Money::parse("USD", &amount) {
                // Whatever was accepted is the canonical amount's value.
                prop_assert_eq!(Money::parse("USD", &money.to_amount_string()), Ok(money));
            }
        }
    }
}
