//! Conversions between wire values and domain types.
//!
//! Every parser takes the field path it reads, so a rejection names the
//! exact field (`opportunity.amount.amount`) in its `BadRequest` violation.

use chrono::{DateTime, NaiveDate, Utc};
use domain::{Currency, DateRange, HealthBand, Money, Month, Motion, Percent, Segment, Stage};

use crate::error::ApiError;
use crate::pb::common::v1 as common;
use crate::pb::pipeline::v1 as pipeline;

/// Longest free text accepted in a name-like field, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest free text accepted in a note-like field, in bytes.
pub const MAX_NOTE_LEN: usize = 16 * 1024;

fn path(field: &str, sub: &str) -> String {
    format!("{field}.{sub}")
}

/// A required money value.
pub fn money(field: &str, value: Option<&common::Money>) -> Result<Money, ApiError> {
    let value = value.ok_or_else(|| ApiError::invalid(field, "is required"))?;
    Currency::parse(&value.currency_code)
        .map_err(|e| ApiError::invalid(path(field, "currency_code"), e))?;
    Money::parse(&value.currency_code, &value.amount)
        .map_err(|e| ApiError::invalid(path(field, "amount"), e))
}

/// An optional money value: absent, or both parts empty, is `None`.
pub fn optional_money(
    field: &str,
    value: Option<&common::Money>,
) -> Result<Option<Money>, ApiError> {
    match value {
        None => Ok(None),
        Some(m) if m.currency_code.is_empty() && m.amount.is_empty() => Ok(None),
        Some(m) => money(field, Some(m)).map(Some),
    }
}

pub fn money_to_pb(value: &Money) -> common::Money {
    common::Money {
        currency_code: value.currency().code().to_owned(),
        amount: value.to_amount_string(),
    }
}

/// A required calendar date, `YYYY-MM-DD`.
pub fn date(field: &str, value: &str) -> Result<NaiveDate, ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(field, "is required (YYYY-MM-DD)"));
    }
    optional_date(field, value)?.ok_or_else(|| ApiError::invalid(field, "is required (YYYY-MM-DD)"))
}

/// An optional calendar date; empty is `None`.
pub fn optional_date(field: &str, value: &str) -> Result<Option<NaiveDate>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .filter(|_| value.len() == 10)
        .map(Some)
        .ok_or_else(|| ApiError::invalid(field, format!("{value:?} is not a date (YYYY-MM-DD)")))
}

pub fn date_to_pb(value: Option<NaiveDate>) -> String {
    value
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

pub fn timestamp(value: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: value.timestamp(),
        nanos: i32::try_from(value.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A wire timestamp as the instant it names; INVALID_ARGUMENT on `field`
/// when it names none (nanos out of range, seconds beyond chrono's years).
pub fn instant(field: &str, value: &prost_types::Timestamp) -> Result<DateTime<Utc>, ApiError> {
    u32::try_from(value.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(value.seconds, nanos))
        .ok_or_else(|| ApiError::invalid(field, "is not a valid timestamp"))
}

/// [`instant`] of an optional field: absent is `None`.
pub fn optional_instant(
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    value.map(|t| instant(field, t)).transpose()
}

/// A JSON object as a `google.protobuf.Struct` (non-objects are wrapped
/// under `"value"`).
pub fn json_to_struct(value: serde_json::Value) -> prost_types::Struct {
    match value {
        serde_json::Value::Object(map) => prost_types::Struct {
            fields: map
                .into_iter()
                .map(|(k, v)| (k, json_to_value(v)))
                .collect(),
        },
        other => prost_types::Struct {
            fields: [("value".to_owned(), json_to_value(other))]
                .into_iter()
                .collect(),
        },
    }
}

fn json_to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        // Money and counts travel as strings in event data; a bare JSON
        // number is only ever a small count, exact as f64.
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(_) => Kind::StructValue(json_to_struct(value)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// Required free text: not blank, no control characters, at most `max_len` bytes.
pub fn text(field: &str, value: &str, max_len: usize) -> Result<String, ApiError> {
    optional_text(field, value, max_len)?
        .ok_or_else(|| ApiError::invalid(field, "must not be empty"))
}

/// Optional free text; empty is `None`, blank or malformed is an error.
pub fn optional_text(field: &str, value: &str, max_len: usize) -> Result<Option<String>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.trim().is_empty() {
        return Err(ApiError::invalid(field, "must not be blank"));
    }
    if value.len() > max_len {
        return Err(ApiError::invalid(
            field,
            format!(
                "is {} bytes long; at most {max_len} are allowed",
                value.len()
            ),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(Some(value.to_owned()))
}

/// An optional percentage given as a decimal string.
pub fn optional_percent(field: &str, value: &str) -> Result<Option<Percent>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    Percent::parse(value)
        .map(Some)
        .map_err(|e| ApiError::invalid(field, e))
}

fn unknown_enum(field: &str, value: i32) -> ApiError {
    ApiError::invalid(field, format!("unknown enum value {value}"))
}

/// An optional segment: UNSPECIFIED is `None`.
pub fn segment(field: &str, value: i32) -> Result<Option<Segment>, ApiError> {
    use common::Segment as Pb;
    match Pb::try_from(value).map_err(|_| unknown_enum(field, value))? {
        Pb::Unspecified => Ok(None),
        Pb::Smb => Ok(Some(Segment::Smb)),
        Pb::MidMarket => Ok(Some(Segment::MidMarket)),
        Pb::Enterprise => Ok(Some(Segment::Enterprise)),
    }
}

pub fn segment_to_pb(value: Segment) -> common::Segment {
    match value {
        Segment::Smb => common::Segment::Smb,
        Segment::MidMarket => common::Segment::MidMarket,
        Segment::Enterprise => common::Segment::Enterprise,
    }
}

/// An optional motion: UNSPECIFIED is `None`.
pub fn motion(field: &str, value: i32) -> Result<Option<Motion>, ApiError> {
    use common::Motion as Pb;
    Ok(
        match Pb::try_from(value).map_err(|_| unknown_enum(field, value))? {
            Pb::Unspecified => None,
            Pb::UpsellTier => Some(Motion::UpsellTier),
            Pb::UpsellFeature => Some(Motion::UpsellFeature),
            Pb::UpsellCapacity => Some(Motion::UpsellCapacity),
            Pb::CrossSellAdjacent => Some(Motion::CrossSellAdjacent),
            Pb::CrossSellComplementary => Some(Motion::CrossSellComplementary),
            Pb::CrossSellPlatform => Some(Motion::CrossSellPlatform),
        },
    )
}

pub fn motion_to_pb(value: Motion) -> common::Motion {
    match value {
        Motion::UpsellTier => common::Motion::UpsellTier,
        Motion::UpsellFeature => common::Motion::UpsellFeature,
        Motion::UpsellCapacity => common::Motion::UpsellCapacity,
        Motion::CrossSellAdjacent => common::Motion::CrossSellAdjacent,
        Motion::CrossSellComplementary => common::Motion::CrossSellComplementary,
        Motion::CrossSellPlatform => common::Motion::CrossSellPlatform,
    }
}

/// An optional stage: UNSPECIFIED is `None`.
pub fn stage(field: &str, value: i32) -> Result<Option<Stage>, ApiError> {
    use pipeline::Stage as Pb;
    Ok(
        match Pb::try_from(value).map_err(|_| unknown_enum(field, value))? {
            Pb::Unspecified => None,
            Pb::Identified => Some(Stage::Identified),
            Pb::Exploring => Some(Stage::Exploring),
            Pb::Qualified => Some(Stage::Qualified),
            Pb::Proposed => Some(Stage::Proposed),
            Pb::Negotiating => Some(Stage::Negotiating),
            Pb::ClosedWon => Some(Stage::ClosedWon),
            Pb::ClosedLost => Some(Stage::ClosedLost),
        },
    )
}

pub fn stage_to_pb(value: Stage) -> pipeline::Stage {
    match value {
        Stage::Identified => pipeline::Stage::Identified,
        Stage::Exploring => pipeline::Stage::Exploring,
        Stage::Qualified => pipeline::Stage::Qualified,
        Stage::Proposed => pipeline::Stage::Proposed,
        Stage::Negotiating => pipeline::Stage::Negotiating,
        Stage::ClosedWon => pipeline::Stage::ClosedWon,
        Stage::ClosedLost => pipeline::Stage::ClosedLost,
    }
}

/// A report's period from a request's `month` or `start_date`/`end_date`
/// (a range [start, end)); neither is the month containing `today`; both is
/// INVALID_ARGUMENT, as is a period over ten years.
pub fn period(
    month: &str,
    start_date: &str,
    end_date: &str,
    today: NaiveDate,
) -> Result<DateRange, ApiError> {
    let invalid = |field: &str, why: &dyn std::fmt::Display| ApiError::invalid(field, why);
    let period = match (
        month.is_empty(),
        start_date.is_empty() && end_date.is_empty(),
    ) {
        (false, true) => Month::parse(month)
            .map_err(|e| invalid("month", &e))?
            .date_range(),
        (true, false) => {
            let start = date("start_date", start_date)?;
            let end = date("end_date", end_date)?;
            DateRange::new(start, end).map_err(|e| invalid("end_date", &e))?
        }
        (false, false) => {
            return Err(ApiError::invalid(
                "month",
                "give either month or start_date/end_date, not both",
            ));
        }
        (true, true) => Month::containing(today)
            .map_err(|e| invalid("month", &e))?
            .date_range(),
    };
    if period.days() > 3700 {
        return Err(ApiError::invalid(
            "end_date",
            "a period may span at most ten years",
        ));
    }
    Ok(period)
}

/// A health band on the wire; no band is UNSPECIFIED.
pub fn band_to_pb(value: Option<HealthBand>) -> common::HealthBand {
    match value {
        None => common::HealthBand::Unspecified,
        Some(HealthBand::Red) => common::HealthBand::Red,
        Some(HealthBand::Yellow) => common::HealthBand::Yellow,
        Some(HealthBand::Green) => common::HealthBand::Green,
    }
}

/// The band a wire value names: UNSPECIFIED, or a value this build does
/// not know, is none.
pub fn band_from_pb(value: i32) -> Option<HealthBand> {
    match common::HealthBand::try_from(value).ok()? {
        common::HealthBand::Unspecified => None,
        common::HealthBand::Red => Some(HealthBand::Red),
        common::HealthBand::Yellow => Some(HealthBand::Yellow),
        common::HealthBand::Green => Some(HealthBand::Green),
    }
}

/// Checks a proto enum value is known, returning it typed.
pub fn known_enum<E: TryFrom<i32>>(field: &str, value: i32) -> Result<E, ApiError> {
    E::try_from(value).map_err(|_| unknown_enum(field, value))
}

/// The most values a repeated filter field of a list request takes
/// (`ListOpportunities.stages`, `ListHandoffs.statuses`,
/// `ListTriggers.statuses`, `ListAccountHealth.bands`). Each filters by an
/// enum of a few values, so a longer list is a mistake, and every value would
/// be one more SQL parameter (SQLite stops at 32,766).
pub const MAX_FILTER_VALUES: usize = 64;

/// Refuses a repeated filter field with more than [`MAX_FILTER_VALUES`] values.
pub fn filter_values<T>(field: &str, values: &[T]) -> Result<(), ApiError> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(ApiError::invalid(
            field,
            format!(
                "takes at most {MAX_FILTER_VALUES} values, got {}",
                values.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_round_trips_and_a_bad_one_names_its_field() {
        let at = DateTime::from_timestamp(1_760_000_000, 123_000).unwrap();
        assert_eq!(instant("t", &timestamp(at)).unwrap(), at);
        assert_eq!(optional_instant("t", None).unwrap(), None);
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        match optional_instant("expire_time", Some(&bad)).unwrap_err() {
            ApiError::InvalidArgument { violations } => {
                assert_eq!(violations[0].field, "expire_time");
                assert_eq!(violations[0].description, "is not a valid timestamp");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_period_is_a_month_a_range_or_the_current_month() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 14).unwrap();
        let march = period("", "", "", today).unwrap();
        assert_eq!(march, period("2026-03", "", "", today).unwrap());
        assert_eq!(march.start(), NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        let range = period("", "2026-01-01", "2026-04-01", today).unwrap();
        assert_eq!(range.days(), 90);
        let field = |e: ApiError| match e {
            ApiError::InvalidArgument { violations } => violations[0].field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(period("2026-03", "2026-01-01", "", today).unwrap_err()),
            "month"
        );
        assert_eq!(
            field(period("", "2010-01-01", "2026-01-01", today).unwrap_err()),
            "end_date"
        );
        assert_eq!(
            field(period("", "2026-01-01", "", today).unwrap_err()),
            "end_date"
        );
    }

    #[test]
    fn every_band_round_trips_and_unspecified_is_none() {
        for band in [HealthBand::Red, HealthBand::Yellow, HealthBand::Green] {
            assert_eq!(band_from_pb(band_to_pb(Some(band)) as i32), Some(band));
        }
        assert_eq!(band_to_pb(None), common::HealthBand::Unspecified);
        assert_eq!(band_from_pb(0), None);
        assert_eq!(band_from_pb(99), None);
    }

    #[test]
    fn repeated_filters_are_capped_on_their_field() {
        assert!(filter_values("stages", &[1; MAX_FILTER_VALUES]).is_ok());
        let err = filter_values("stages", &vec![1; 100_000]).unwrap_err();
        match err {
            ApiError::InvalidArgument { violations } => {
                assert_eq!(violations[0].field, "stages");
                assert!(violations[0].description.contains("at most 64"));
            }
            other => panic!("{other:?}"),
        }
    }

    fn pb_money(c: &str, a: &str) -> common::Money {
        common::Money {
            currency_code: c.into(),
            amount: a.into(),
        }
    }

    fn field_of(err: ApiError) -> String {
        err.field()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not a field violation: {err:?}"))
    }

    #[test]
    fn money_errors_name_the_sub_field() {
        let ok = money("o.amount", Some(&pb_money("USD", "1000.01"))).unwrap();
        assert_eq!(money_to_pb(&ok), pb_money("USD", "1000.01"));
        assert_eq!(field_of(money("o.amount", None).unwrap_err()), "o.amount");
        assert_eq!(
            field_of(money("o.amount", Some(&pb_money("XXQ", "1"))).unwrap_err()),
            "o.amount.currency_code"
        );
        assert_eq!(
            field_of(money("o.amount", Some(&pb_money("USD", "12,5"))).unwrap_err()),
            "o.amount.amount"
        );
    }

    #[test]
    fn dates_and_text() {
        assert!(date("d", "2026-02-30").is_err());
        assert!(date("d", "2026-2-3").is_err());
        assert_eq!(
            date("d", "2026-02-01").unwrap(),
            NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()
        );
        assert!(text("n", "  ", 10).is_err());
        assert!(text("n", "a\u{0}b", 10).is_err());
        assert!(text("n", "abcdefghijk", 10).is_err());
        assert!(segment("s", 99).is_err());
        assert_eq!(segment("s", 0).unwrap(), None);
    }
}
