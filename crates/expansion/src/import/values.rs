//! Reading one cell: decimals, money, dates, times, enum names, lists.
//!
//! Amounts are plain decimals (`1234.50`, `-3`, `0.5`): a thousands
//! separator or a currency symbol is refused rather than guessed at, since
//! `1,234` means different things in different locales.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use contracts::pb::common::v1 as common;
use contracts::pb::credit::v1 as credit;
use contracts::pb::health::v1 as health;
use domain::{Currency, Money};

/// A plain decimal number, returned as written.
pub fn decimal(text: &str) -> Result<&str, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (integer, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !integer.is_empty()
        && integer.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && fraction.is_empty());
    if plain {
        Ok(text)
    } else if text.contains(',') && !text.contains(char::is_whitespace) {
        Err(format!(
            "{text:?}: write amounts as plain decimals like 1234.50, without thousands separators or a decimal comma"
        ))
    } else {
        Err(format!(
            "{text:?} is not a plain decimal number like 1234.50"
        ))
    }
}

/// An amount in `currency_code`, exact to the currency's minor unit.
pub fn money(currency_code: &str, amount: &str) -> Result<Money, String> {
    let currency = Currency::parse(&currency_code.to_ascii_uppercase())
        .map_err(|e| format!("{currency_code:?}: {e}"))?;
    Money::parse_amount(currency, decimal(amount)?).map_err(|e| format!("{amount:?}: {e}"))
}

/// A calendar date: `YYYY-MM-DD`, or `format` (a strftime pattern such as
/// `%m/%d/%Y`) when the export writes dates another way.
pub fn date(text: &str, format: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, format))
        .map_err(|_| {
            if format == "%Y-%m-%d" {
                format!("{text:?} is not a date (YYYY-MM-DD)")
            } else {
                format!("{text:?} is not a date (YYYY-MM-DD or {format})")
            }
        })
}

/// A point in time: RFC 3339 (`2026-03-01T09:30:00Z`), a UTC date-time
/// without offset (`2026-03-01 09:30:00`), one in `time_format` (a strftime
/// pattern read as UTC, e.g. `%m/%d/%Y %H:%M`), or a date (midnight UTC).
pub fn timestamp(
    text: &str,
    date_format: &str,
    time_format: Option<&str>,
) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(format) = time_format {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Ok(t.with_timezone(&Utc));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    for layout in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, layout) {
            return Ok(t.and_utc());
        }
    }
    date(text, date_format)
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            let also = time_format.map(|f| format!(", {f}")).unwrap_or_default();
            format!(
                "{text:?} is not a time (2026-03-01T09:30:00Z, 2026-03-01 09:30:00{also} or a date)"
            )
        })
}

/// `Mid-Market`, `mid market`, `MID_MARKET` → `MID_MARKET`.
fn enum_name(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| {
            if c == ' ' || c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

pub fn segment(text: &str) -> Result<common::Segment, String> {
    let name = enum_name(text);
    let name = name.strip_prefix("SEGMENT_").unwrap_or(&name);
    common::Segment::from_str_name(&format!("SEGMENT_{name}"))
        .filter(|s| *s != common::Segment::Unspecified)
        .ok_or_else(|| format!("{text:?} is not a segment (SMB, MID_MARKET, ENTERPRISE)"))
}

pub fn signal_kind(text: &str) -> Result<health::SignalKind, String> {
    let name = enum_name(text);
    let name = name.strip_prefix("SIGNAL_KIND_").unwrap_or(&name);
    health::SignalKind::from_str_name(&format!("SIGNAL_KIND_{name}"))
        .filter(|k| *k != health::SignalKind::Unspecified)
        .ok_or_else(|| format!("{text:?} is not a signal kind (USAGE, NPS, LOGIN, …)"))
}

pub fn person_role(text: &str) -> Result<credit::PersonRole, String> {
    let name = enum_name(text);
    let name = name.strip_prefix("PERSON_ROLE_").unwrap_or(&name);
    credit::PersonRole::from_str_name(&format!("PERSON_ROLE_{name}"))
        .filter(|r| *r != credit::PersonRole::Unspecified)
        .ok_or_else(|| format!("{text:?} is not a person role (CSM, AE, REVOPS, OTHER)"))
}

/// A whole number in `min..=max`.
pub fn integer(text: &str, min: i64, max: i64) -> Result<i64, String> {
    text.parse::<i64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{text:?} is not a whole number from {min} to {max}"))
}

/// A list in one cell: `STARTER;PRO` or `STARTER|PRO`.
pub fn list(text: &str) -> Vec<String> {
    text.split([';', '|'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A stable id for a signal row that has none: FNV-1a over its content, so
/// importing the same row again is recognised as a duplicate.
pub fn content_id(parts: &[&str]) -> String {
    let hash = storage::fnv1a(
        parts
            .iter()
            .flat_map(|part| part.bytes().chain(std::iter::once(0x1f))),
    );
    format!("row-{hash:016x}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_plain() {
        for ok in ["0", "1234.50", "-3", "0.5", "007"] {
            assert_eq!(decimal(ok), Ok(ok));
        }
        let thousands = decimal("1,234.50").unwrap_err();
        assert!(
            thousands.contains("without thousands separators"),
            "{thousands}"
        );
        for bad in ["", "$12", "1.", ".5", "1e3", "12 000", "abc", "--1"] {
            assert!(decimal(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn money_is_exact_to_the_minor_unit() {
        assert_eq!(money("usd", "1234.5").unwrap().minor(), 123_450);
        assert_eq!(money("JPY", "1200").unwrap().minor(), 1200);
        assert!(money("USD", "1.005").is_err());
        assert!(money("JPY", "1.5").is_err());
        assert!(money("XXQ", "1").unwrap_err().contains("XXQ"));
        assert!(money("USD", "1,200.00").is_err());
    }

    #[test]
    fn dates_in_iso_or_the_given_format() {
        let march = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(date("2026-03-01", "%Y-%m-%d"), Ok(march));
        assert_eq!(date("03/01/2026", "%m/%d/%Y"), Ok(march));
        assert_eq!(date("2026-03-01", "%m/%d/%Y"), Ok(march));
        assert!(date("03/01/2026", "%Y-%m-%d").is_err());
        assert!(date("2026-02-30", "%Y-%m-%d").is_err());
    }

    #[test]
    fn a_crms_own_date_time_layout_is_read_with_time_format() {
        let crm = |s: &str| timestamp(s, "%m/%d/%Y", Some("%m/%d/%Y %H:%M"));
        assert_eq!(
            crm("03/31/2026 14:22").unwrap().to_rfc3339(),
            "2026-03-31T14:22:00+00:00"
        );
        // The usual layouts and a date alone still read.
        assert_eq!(
            crm("2026-03-31T14:22:00Z").unwrap().to_rfc3339(),
            "2026-03-31T14:22:00+00:00"
        );
        assert_eq!(
            crm("03/31/2026").unwrap().to_rfc3339(),
            "2026-03-31T00:00:00+00:00"
        );
        let err = crm("31.03.2026 14:22").unwrap_err();
        assert!(err.contains("%m/%d/%Y %H:%M"), "{err}");
        assert!(timestamp("03/31/2026 14:22", "%Y-%m-%d", None).is_err());
    }

    #[test]
    fn times_in_the_usual_export_layouts() {
        let t = |s: &str| timestamp(s, "%Y-%m-%d", None).unwrap().to_rfc3339();
        assert_eq!(t("2026-03-01T09:30:00Z"), "2026-03-01T09:30:00+00:00");
        assert_eq!(t("2026-03-01T11:30:00+02:00"), "2026-03-01T09:30:00+00:00");
        assert_eq!(t("2026-03-01 09:30:00"), "2026-03-01T09:30:00+00:00");
        assert_eq!(t("2026-03-01"), "2026-03-01T00:00:00+00:00");
        assert!(timestamp("yesterday", "%Y-%m-%d", None).is_err());
    }

    #[test]
    fn enum_names_are_forgiving_about_case_and_spacing() {
        assert_eq!(segment("Mid-Market"), Ok(common::Segment::MidMarket));
        assert_eq!(segment("enterprise"), Ok(common::Segment::Enterprise));
        assert_eq!(segment("SEGMENT_SMB"), Ok(common::Segment::Smb));
        assert!(segment("Huge").is_err());
        assert!(segment("unspecified").is_err());
        assert_eq!(
            signal_kind("active users"),
            Ok(health::SignalKind::ActiveUsers)
        );
        assert_eq!(signal_kind("NPS"), Ok(health::SignalKind::Nps));
        assert!(signal_kind("page view").is_err());
    }

    #[test]
    fn lists_and_integers() {
        assert_eq!(
            list("STARTER; PRO|| ENTERPRISE"),
            vec!["STARTER", "PRO", "ENTERPRISE"]
        );
        assert_eq!(integer("12", 1, 12), Ok(12));
        assert!(integer("13", 1, 12).is_err());
        assert!(integer("1.0", 0, 5).is_err());
    }

    #[test]
    fn content_ids_are_stable_and_distinct() {
        let a = content_id(&["001", "NPS", "9"]);
        assert_eq!(a, content_id(&["001", "NPS", "9"]));
        assert_ne!(a, content_id(&["001", "NPS", "8"]));
        // Field boundaries count: ("ab", "c") is not ("a", "bc").
        assert_ne!(content_id(&["ab", "c"]), content_id(&["a", "bc"]));
        assert!(a.starts_with("row-") && a.len() == 20);
    }
}
