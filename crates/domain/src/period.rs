//! Calendar periods for metrics and statements: dates, months, half-open date ranges and
//! the time zone that turns them into instants.
//!
//! A period is a range of whole local dates `[start, end)`. Half-open ranges tile without
//! overlap (February then March counts every day once), and `end − 1` is the last day.

use std::fmt;

use chrono::{
    DateTime, Datelike, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use thiserror::Error;

use crate::error::quote;

/// Why a date, month, range or time zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeriodError {
    #[error("date must not be empty")]
    EmptyDate,
    #[error("date must be written like \"2026-02-01\"")]
    MalformedDate,
    /// Holds the quoted input.
    #[error("{0} is not a calendar date")]
    NotACalendarDate(String),
    #[error("month must not be empty")]
    EmptyMonth,
    #[error("month must be written like \"2026-02\"")]
    MalformedMonth,
    #[error("year must be between 1 and 9999")]
    YearOutOfRange,
    #[error("start {start} must be before end {end}")]
    EmptyRange { start: NaiveDate, end: NaiveDate },
    #[error("time zone must not be empty")]
    EmptyTimeZone,
    /// Holds the quoted input.
    #[error("unknown time zone {0}; expected an IANA name like \"America/Sao_Paulo\"")]
    UnknownTimeZone(String),
}

const MIN_YEAR: i32 = 1;
const MAX_YEAR: i32 = 9999;

/// Parses `YYYY-MM-DD` exactly (ISO 8601 calendar date, four-digit year, zero-padded).
/// Looser forms such as `2026-2-1` are refused so a date has one spelling.
pub fn parse_date(text: &str) -> Result<NaiveDate, PeriodError> {
    if text.is_empty() {
        return Err(PeriodError::EmptyDate);
    }
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return Err(PeriodError::MalformedDate);
    }
    let year = ascii_number(&bytes[0..4]);
    let month = ascii_number(&bytes[5..7]);
    let day = ascii_number(&bytes[8..10]);
    if year < MIN_YEAR {
        return Err(PeriodError::YearOutOfRange);
    }
    u32::try_from(month)
        .ok()
        .zip(u32::try_from(day).ok())
        .and_then(|(month, day)| NaiveDate::from_ymd_opt(year, month, day))
        .ok_or_else(|| PeriodError::NotACalendarDate(quote(text)))
}

/// The value of a short run of ASCII digits (callers check the bytes are digits).
fn ascii_number(digits: &[u8]) -> i32 {
    digits
        .iter()
        .fold(0, |acc, b| acc * 10 + i32::from(b - b'0'))
}

/// An IANA time zone such as `America/Sao_Paulo`; UTC by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZoneName(Tz);

impl TimeZoneName {
    pub const UTC: TimeZoneName = TimeZoneName(Tz::UTC);

    /// Parses an IANA name, exactly as the tz database spells it.
    pub fn parse(name: &str) -> Result<TimeZoneName, PeriodError> {
        if name.is_empty() {
            return Err(PeriodError::EmptyTimeZone);
        }
        name.parse::<Tz>()
            .map(TimeZoneName)
            .map_err(|_| PeriodError::UnknownTimeZone(quote(name)))
    }

    /// Like [`TimeZoneName::parse`], but an empty string (an unset proto field) means UTC.
    pub fn parse_or_utc(name: &str) -> Result<TimeZoneName, PeriodError> {
        if name.is_empty() {
            Ok(TimeZoneName::UTC)
        } else {
            TimeZoneName::parse(name)
        }
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    pub fn tz(&self) -> Tz {
        self.0
    }

    /// The local date of `instant` in this zone: which day is "today" there.
    pub fn date_of(&self, instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&self.0).date_naive()
    }

    /// The instant a local date begins in this zone. Where midnight does not exist (a DST
    /// gap, as in São Paulo until 2019, or Samoa skipping 2011-12-30) the day starts at the
    /// earliest instant after the gap; where midnight happens twice, at the first one.
    pub fn start_of_day(&self, date: NaiveDate) -> DateTime<Utc> {
        let midnight = date.and_time(NaiveTime::MIN);
        let instant_at = |seconds: i64| {
            midnight
                .checked_add_signed(TimeDelta::seconds(seconds))
                .and_then(|local| self.0.from_local_datetime(&local).earliest())
        };
        if let Some(instant) = instant_at(0) {
            return instant.with_timezone(&Utc);
        }
        // In a gap: binary-search the first local second that exists. Gaps are at most a
        // day long (Samoa's), so two days always reach the far side.
        let (mut missing, mut present) = (0_i64, 2 * 86_400_i64);
        if instant_at(present).is_none() {
            return naive_as_utc(midnight);
        }
        while present - missing > 1 {
            let middle = missing + (present - missing) / 2;
            if instant_at(middle).is_some() {
                present = middle;
            } else {
                missing = middle;
            }
        }
        instant_at(present)
            .map(|instant| instant.with_timezone(&Utc))
            .unwrap_or_else(|| naive_as_utc(midnight))
    }
}

/// Last resort for a local time the tz database cannot place (unreachable for real zones).
fn naive_as_utc(local: NaiveDateTime) -> DateTime<Utc> {
    Utc.from_utc_datetime(&local)
}

impl Default for TimeZoneName {
    fn default() -> Self {
        TimeZoneName::UTC
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TimeZoneName {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TimeZoneName::parse(s)
    }
}

/// A calendar month between 0001-01 and 9999-12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    first_day: NaiveDate,
    /// The first day of the next month, kept so `date_range` needs no fallible arithmetic.
    end: NaiveDate,
}

impl Month {
    /// Parses `YYYY-MM` exactly.
    pub fn parse(text: &str) -> Result<Month, PeriodError> {
        if text.is_empty() {
            return Err(PeriodError::EmptyMonth);
        }
        let bytes = text.as_bytes();
        let shape_ok = bytes.len() == 7
            && bytes[4] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || b.is_ascii_digit());
        if !shape_ok {
            return Err(PeriodError::MalformedMonth);
        }
        let month =
            u32::try_from(ascii_number(&bytes[5..7])).map_err(|_| PeriodError::MalformedMonth)?;
        Month::new(ascii_number(&bytes[0..4]), month)
    }

    /// The month `month` (1–12) of `year` (1–9999).
    pub fn new(year: i32, month: u32) -> Result<Month, PeriodError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(PeriodError::YearOutOfRange);
        }
        let first_day =
            NaiveDate::from_ymd_opt(year, month, 1).ok_or(PeriodError::MalformedMonth)?;
        let end = first_day
            .checked_add_months(Months::new(1))
            .ok_or(PeriodError::YearOutOfRange)?;
        Ok(Month { first_day, end })
    }

    /// The month a date falls in.
    pub fn containing(date: NaiveDate) -> Result<Month, PeriodError> {
        Month::new(date.year(), date.month())
    }

    pub fn year(&self) -> i32 {
        self.first_day.year()
    }

    /// 1 for January … 12 for December.
    pub fn month(&self) -> u32 {
        self.first_day.month()
    }

    pub fn first_day(&self) -> NaiveDate {
        self.first_day
    }

    pub fn last_day(&self) -> NaiveDate {
        self.end.pred_opt().unwrap_or(self.first_day)
    }

    /// The following month; `None` after 9999-12.
    pub fn next(&self) -> Option<Month> {
        Month::containing(self.end).ok()
    }

    /// The preceding month; `None` before 0001-01.
    pub fn previous(&self) -> Option<Month> {
        let day_before = self.first_day.pred_opt()?;
        Month::containing(day_before).ok()
    }

    /// `[first day, first day of the next month)`.
    pub fn date_range(&self) -> DateRange {
        DateRange {
            start: self.first_day,
            end: self.end,
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

impl std::str::FromStr for Month {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Month::parse(s)
    }
}

/// Whole local dates `[start, end)`, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateRange {
    start: NaiveDate,
    end: NaiveDate,
}

impl DateRange {
    /// Requires `start < end`.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<DateRange, PeriodError> {
        if start < end {
            Ok(DateRange { start, end })
        } else {
            Err(PeriodError::EmptyRange { start, end })
        }
    }

    /// Parses two `YYYY-MM-DD` dates; `end` is exclusive.
    pub fn parse(start: &str, end: &str) -> Result<DateRange, PeriodError> {
        DateRange::new(parse_date(start)?, parse_date(end)?)
    }

    pub fn start(&self) -> NaiveDate {
        self.start
    }

    /// The first date after the range.
    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// `end − 1`: the last date inside the range (the day NRR and penetration look at).
    pub fn last_day(&self) -> NaiveDate {
        self.end.pred_opt().unwrap_or(self.start)
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date < self.end
    }

    /// Number of dates in the range (≥ 1).
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }

    /// Every date in the range, in order.
    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let end = self.end;
        self.start.iter_days().take_while(move |date| *date < end)
    }

    /// The instants `[start, end)` the range covers in `zone`: the start of the first day
    /// and the start of the day after the last (see [`TimeZoneName::start_of_day`]).
    pub fn to_utc_bounds(&self, zone: TimeZoneName) -> (DateTime<Utc>, DateTime<Utc>) {
        (zone.start_of_day(self.start), zone.start_of_day(self.end))
    }
}

impl From<Month> for DateRange {
    fn from(month: Month) -> Self {
        month.date_range()
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn today_depends_on_the_zone() {
        use chrono::TimeZone;
        let instant = Utc.with_ymd_and_hms(2026, 3, 1, 1, 30, 0).unwrap();
        assert_eq!(TimeZoneName::UTC.date_of(instant).to_string(), "2026-03-01");
        let sao_paulo = TimeZoneName::parse("America/Sao_Paulo").unwrap();
        assert_eq!(sao_paulo.date_of(instant).to_string(), "2026-02-28");
    }

    use super::*;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn parses_strict_dates() {
        assert_eq!(
            parse_date("2026-02-01").unwrap(),
            NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()
        );
        assert_eq!(date("2024-02-29").day(), 29);
        assert_eq!(parse_date(""), Err(PeriodError::EmptyDate));
        for bad in [
            "2026-2-1",
            "2026/02/01",
            "26-02-01",
            " 2026-02-01",
            "2026-02-01T00:00:00",
            "+2026-02-01",
            "２０２６-02-01",
            "2026-02-0a",
        ] {
            assert_eq!(parse_date(bad), Err(PeriodError::MalformedDate), "{bad:?}");
        }
        assert_eq!(
            parse_date("2026-02-30").unwrap_err().to_string(),
            "\"2026-02-30\" is not a calendar date"
        );
        assert!(parse_date("2025-02-29").is_err());
        assert!(parse_date("2026-13-01").is_err());
        assert!(parse_date("2026-00-10").is_err());
        assert_eq!(parse_date("0000-01-01"), Err(PeriodError::YearOutOfRange));
        assert_eq!(
            parse_date("2026-2-1").unwrap_err().to_string(),
            "date must be written like \"2026-02-01\""
        );
    }

    #[test]
    fn months_parse_and_step() {
        let feb = Month::parse("2026-02").unwrap();
        assert_eq!(feb.year(), 2026);
        assert_eq!(feb.month(), 2);
        assert_eq!(feb.first_day(), date("2026-02-01"));
        assert_eq!(feb.last_day(), date("2026-02-28"));
        assert_eq!(feb.to_string(), "2026-02");
        assert_eq!(feb.next().unwrap().to_string(), "2026-03");
        assert_eq!(feb.previous().unwrap().to_string(), "2026-01");
        let dec = Month::parse("2025-12").unwrap();
        assert_eq!(dec.next().unwrap().to_string(), "2026-01");
        assert_eq!(Month::parse("2026-01").unwrap().previous().unwrap(), dec);
        assert_eq!(Month::parse("9999-12").unwrap().next(), None);
        assert_eq!(Month::parse("0001-01").unwrap().previous(), None);
        assert_eq!(
            Month::containing(date("2024-02-29")).unwrap().last_day(),
            date("2024-02-29")
        );
        assert!(feb < feb.next().unwrap());
    }

    #[test]
    fn months_refuse_bad_text() {
        assert_eq!(Month::parse(""), Err(PeriodError::EmptyMonth));
        for bad in [
            "2026-2",
            "2026-13",
            "2026-00",
            "202602",
            "2026/02",
            "2026-02-01",
            "-026-02",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Month::parse("0000-05"), Err(PeriodError::YearOutOfRange));
        assert_eq!(Month::new(10_000, 1), Err(PeriodError::YearOutOfRange));
        assert_eq!(
            Month::parse("2026-2").unwrap_err().to_string(),
            "month must be written like \"2026-02\""
        );
    }

    #[test]
    fn month_range_is_half_open() {
        let range = Month::parse("2026-02").unwrap().date_range();
        assert_eq!(range.start(), date("2026-02-01"));
        assert_eq!(range.end(), date("2026-03-01"));
        assert_eq!(range.last_day(), date("2026-02-28"));
        assert_eq!(range.days(), 28);
        assert!(range.contains(date("2026-02-01")));
        assert!(range.contains(date("2026-02-28")));
        assert!(!range.contains(date("2026-03-01")));
        assert!(!range.contains(date("2026-01-31")));
        assert_eq!(range.dates().count(), 28);
        assert_eq!(range.to_string(), "[2026-02-01, 2026-03-01)");
        assert_eq!(DateRange::from(Month::parse("2024-02").unwrap()).days(), 29);
        let last = Month::parse("9999-12").unwrap().date_range();
        assert_eq!(last.days(), 31);
    }

    #[test]
    fn ranges_must_not_be_empty() {
        let one_day = DateRange::parse("2026-02-01", "2026-02-02").unwrap();
        assert_eq!(one_day.days(), 1);
        assert_eq!(one_day.last_day(), date("2026-02-01"));
        let err = DateRange::parse("2026-02-01", "2026-02-01").unwrap_err();
        assert_eq!(
            err.to_string(),
            "start 2026-02-01 must be before end 2026-02-01"
        );
        assert!(DateRange::parse("2026-03-01", "2026-02-01").is_err());
        assert_eq!(
            DateRange::parse("2026-02-01", "nope"),
            Err(PeriodError::MalformedDate)
        );
    }

    #[test]
    fn time_zones_parse_iana_names() {
        assert_eq!(
            TimeZoneName::parse("America/Sao_Paulo").unwrap().name(),
            "America/Sao_Paulo"
        );
        assert_eq!(TimeZoneName::parse("UTC").unwrap(), TimeZoneName::UTC);
        assert_eq!(TimeZoneName::default(), TimeZoneName::UTC);
        assert_eq!(TimeZoneName::parse_or_utc("").unwrap(), TimeZoneName::UTC);
        assert_eq!(
            TimeZoneName::parse_or_utc("Europe/Madrid")
                .unwrap()
                .to_string(),
            "Europe/Madrid"
        );
        assert_eq!(TimeZoneName::parse(""), Err(PeriodError::EmptyTimeZone));
        let err = TimeZoneName::parse("Mars/Olympus").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown time zone \"Mars/Olympus\"; expected an IANA name like \"America/Sao_Paulo\""
        );
        assert!(TimeZoneName::parse("america/sao_paulo").is_err());
        assert!(TimeZoneName::parse(" UTC").is_err());
    }

    #[test]
    fn utc_bounds_follow_the_zone() {
        let feb = Month::parse("2026-02").unwrap().date_range();
        assert_eq!(
            feb.to_utc_bounds(TimeZoneName::UTC),
            (utc("2026-02-01T00:00:00Z"), utc("2026-03-01T00:00:00Z"))
        );
        let sao_paulo = TimeZoneName::parse("America/Sao_Paulo").unwrap();
        assert_eq!(
            feb.to_utc_bounds(sao_paulo),
            (utc("2026-02-01T03:00:00Z"), utc("2026-03-01T03:00:00Z"))
        );
        let tokyo = TimeZoneName::parse("Asia/Tokyo").unwrap();
        assert_eq!(
            tokyo.start_of_day(date("2026-02-01")),
            utc("2026-01-31T15:00:00Z")
        );
    }

    #[test]
    fn a_missing_midnight_starts_the_day_after_the_gap() {
        // São Paulo sprang forward at midnight on 2018-11-04: 00:00 → 01:00 (−02:00).
        let sao_paulo = TimeZoneName::parse("America/Sao_Paulo").unwrap();
        assert_eq!(
            sao_paulo.start_of_day(date("2018-11-04")),
            utc("2018-11-04T03:00:00Z")
        );
        // So that day lasted 23 hours: it ended at midnight −02:00.
        let day = DateRange::parse("2018-11-04", "2018-11-05").unwrap();
        let (start, end) = day.to_utc_bounds(sao_paulo);
        assert_eq!(end, utc("2018-11-05T02:00:00Z"));
        assert_eq!((end - start).num_hours(), 23);
        // Samoa skipped 2011-12-30 entirely (−10:00 → +14:00).
        let apia = TimeZoneName::parse("Pacific/Apia").unwrap();
        assert_eq!(
            apia.start_of_day(date("2011-12-30")),
            utc("2011-12-30T10:00:00Z")
        );
        assert_eq!(
            apia.start_of_day(date("2011-12-31")),
            utc("2011-12-30T10:00:00Z")
        );
        assert_eq!(
            apia.start_of_day(date("2011-12-29")),
            utc("2011-12-29T10:00:00Z")
        );
    }

    #[test]
    fn a_repeated_midnight_starts_the_day_at_the_first() {
        // Cuba fell back at 01:00 on 2023-11-05, so 00:00–01:00 happened twice:
        // first at −04:00, then at −05:00.
        let havana = TimeZoneName::parse("America/Havana").unwrap();
        assert_eq!(
            havana.start_of_day(date("2023-11-05")),
            utc("2023-11-05T04:00:00Z")
        );
    }
}
