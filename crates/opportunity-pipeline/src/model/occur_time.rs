//! `occur_time`: when a write happened in the source system, for imports
//! (a CRM's created, stage-change and handoff dates) and the demo's history.
//! Who may set it is the API layer's check (`require_import_role`); what it
//! may say is this rule: a real instant, not in the future, and not before
//! the opportunity entered its current stage — history is written in order.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use contracts::ApiError;

/// How far a source system's clock may run ahead of the server's.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// The instant to stamp for `value` (the request's `field`), at the
/// microseconds both databases keep; `None` when it is unset and the write
/// happens now. A time within [`CLOCK_SKEW`] ahead of `now` is read as
/// `now`. `not_before` is when the opportunity entered its current stage
/// (for a new one, nothing).
pub fn occur_time(
    field: &str,
    value: Option<&prost_types::Timestamp>,
    now: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(ts) = value else {
        return Ok(None);
    };
    let at = contracts::wire::instant(field, ts)?.trunc_subsecs(6);
    if at > now + CLOCK_SKEW {
        return Err(ApiError::invalid(
            field,
            format!(
                "is in the future ({}; the server's time is {}): it says when the change \
                 happened in the source system",
                at.to_rfc3339(),
                now.to_rfc3339()
            ),
        ));
    }
    if let Some(floor) = not_before
        && at < floor
    {
        return Err(ApiError::invalid(
            field,
            format!(
                "is before the opportunity entered its current stage ({}); a change cannot \
                 come before the one recorded last",
                floor.to_rfc3339()
            ),
        ));
    }
    Ok(Some(at.min(now)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;
    use contracts::FieldViolation;

    use super::*;

    fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
        contracts::wire::timestamp(t)
    }

    fn field_of(err: &ApiError) -> String {
        match err {
            ApiError::InvalidArgument { violations, .. } => violations
                .first()
                .map(|v: &FieldViolation| v.field.clone())
                .unwrap_or_default(),
            other => panic!("not a field error: {other:?}"),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap()
    }

    #[test]
    fn unset_means_now_and_a_past_time_is_kept_to_the_microsecond() {
        assert_eq!(occur_time("occur_time", None, now(), None).unwrap(), None);
        let past = now() - Duration::days(40) + Duration::nanoseconds(1_234_567);
        let at = occur_time("occur_time", Some(&ts(past)), now(), None)
            .unwrap()
            .unwrap();
        assert_eq!(at, past.trunc_subsecs(6));
        assert_eq!(at.timestamp_subsec_micros(), 1_234);
    }

    #[test]
    fn the_future_is_refused_beyond_the_clock_skew() {
        let ahead = now() + Duration::minutes(3);
        assert_eq!(
            occur_time("occur_time", Some(&ts(ahead)), now(), None).unwrap(),
            Some(now()),
            "a clock a little ahead reads as now"
        );
        let future = now() + CLOCK_SKEW + Duration::seconds(1);
        let err = occur_time("occur_time", Some(&ts(future)), now(), None).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(field_of(&err), "occur_time");
        assert!(err.to_string().contains("future"), "{err}");
    }

    #[test]
    fn a_time_before_the_current_stage_was_entered_is_refused() {
        let entered = now() - Duration::days(10);
        let err = occur_time(
            "occur_time",
            Some(&ts(entered - Duration::seconds(1))),
            now(),
            Some(entered),
        )
        .unwrap_err();
        assert_eq!(field_of(&err), "occur_time");
        assert!(err.to_string().contains("current stage"), "{err}");
        // The same instant, or any later one, follows it.
        assert_eq!(
            occur_time("occur_time", Some(&ts(entered)), now(), Some(entered)).unwrap(),
            Some(entered)
        );
    }

    #[test]
    fn an_unreadable_timestamp_names_the_field() {
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        let err = occur_time("occur_time", Some(&bad), now(), None).unwrap_err();
        assert_eq!(field_of(&err), "occur_time");
        let huge = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert!(occur_time("occur_time", Some(&huge), now(), None).is_err());
    }
}
