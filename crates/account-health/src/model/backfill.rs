//! The health points a backfill writes at past month ends: from the signals
//! and subscriptions the store loaded, the account's and each product's score
//! at every month end [`super::history`] chose, with the CSM sentiment of
//! then and an id derived from account, product and instant, so neither a
//! rerun nor a race writes a point twice. Pure: the store loads and writes.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use super::history::scores_at;
use super::scorecard::{Computed, Scorecard, SignalPoint};
use super::signal::{SignalKind, unscale};

/// The id of the backfilled point of `product_id` (`""`: the account) at
/// `at`: a UUIDv7 of that instant whose other bits come from the account,
/// product and instant, so two recomputations racing on PostgreSQL write one
/// row, not two.
pub fn point_id(account_id: &str, product_id: &str, at: DateTime<Utc>) -> String {
    let digest = Sha256::digest(format!(
        "{account_id}\u{1}{product_id}\u{1}{}",
        at.timestamp_micros()
    ));
    let mut bytes = [0u8; 10];
    bytes.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes)
        .into_uuid()
        .to_string()
}

/// One stored signal as the backfill reads it (values ×10⁴).
#[derive(Debug, Clone, Copy)]
pub struct StoredSignal<'a> {
    pub kind: &'a str,
    pub product_id: Option<&'a str>,
    pub value_e4: i64,
    pub limit_e4: Option<i64>,
    pub occurred_at: DateTime<Utc>,
}

/// The signals a backfill scores from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PastSignals {
    /// Signals of the kinds the scorecard measures, with their product.
    pub points: Vec<(Option<String>, SignalPoint)>,
    /// CSM sentiments (shown beside a score, never in it), as text.
    pub sentiments: Vec<(DateTime<Utc>, String)>,
}

impl PastSignals {
    /// Sorts stored signals: a kind the scorecard measures (`scored`) is a
    /// point, a CSM sentiment is kept as its text, an unknown kind is skipped.
    pub fn sort<'a>(
        scored: &BTreeSet<&str>,
        rows: impl IntoIterator<Item = StoredSignal<'a>>,
    ) -> Self {
        let mut out = PastSignals::default();
        for r in rows {
            let Ok(kind) = r.kind.parse::<SignalKind>() else {
                continue;
            };
            if kind == SignalKind::CsmSentiment {
                out.sentiments
                    .push((r.occurred_at, unscale(r.value_e4).normalize().to_string()));
            }
            if scored.contains(kind.as_str()) {
                out.points.push((
                    r.product_id.map(str::to_owned),
                    SignalPoint {
                        kind,
                        value: unscale(r.value_e4),
                        limit: r.limit_e4.map(unscale),
                        occurred_at: r.occurred_at,
                    },
                ));
            }
        }
        out
    }

    /// Every point, whatever its product.
    pub fn all_points(&self) -> Vec<SignalPoint> {
        self.points.iter().map(|(_, p)| p.clone()).collect()
    }

    /// The latest CSM sentiment in the `window` that ends at `at`.
    pub fn sentiment_at(&self, at: DateTime<Utc>, window: Duration) -> Option<String> {
        self.sentiments
            .iter()
            .filter(|(t, _)| *t > at - window && *t <= at)
            .max_by_key(|(t, _)| *t)
            .map(|(_, v)| v.clone())
    }
}

/// A subscription's term as the backfill sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastTerm {
    pub product_id: String,
    pub start_date: NaiveDate,
    /// The first day it is no longer in force (a cancellation's date);
    /// `None`: in force from its start on.
    pub ends: Option<NaiveDate>,
}

/// The products whose subscription was in force on `day`.
pub fn in_force_on(terms: &[PastTerm], day: NaiveDate) -> BTreeSet<String> {
    terms
        .iter()
        .filter(|t| t.start_date <= day && t.ends.is_none_or(|end| end > day))
        .map(|t| t.product_id.clone())
        .collect()
}

/// One history point to write.
#[derive(Debug, Clone, PartialEq)]
pub struct PastPoint {
    pub id: String,
    /// `""`: the account's point.
    pub product_id: String,
    pub at: DateTime<Utc>,
    pub computed: Computed,
    pub csm_sentiment: Option<String>,
}

/// The points to write at the `chosen` month ends: each score that has one
/// (a product with no data then has no past point — its history starts when
/// it has one), except where a point is already there (`existing`: product
/// and instant).
pub fn past_points(
    account_id: &str,
    card: &Scorecard,
    chosen: &[DateTime<Utc>],
    signals: &PastSignals,
    terms: &[PastTerm],
    existing: &HashSet<(String, DateTime<Utc>)>,
) -> Vec<PastPoint> {
    let window = card.longest_window();
    let mut out = Vec::new();
    for at in chosen {
        let in_force = in_force_on(terms, at.date_naive());
        let sentiment = signals.sentiment_at(*at, window);
        for (product_id, computed) in scores_at(card, &signals.points, &in_force, *at) {
            if computed.score.is_none() || existing.contains(&(product_id.clone(), *at)) {
                continue;
            }
            out.push(PastPoint {
                id: point_id(account_id, &product_id, *at),
                product_id,
                at: *at,
                computed,
                csm_sentiment: sentiment.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const ACCOUNT: &str = "01937a9e-5c3e-7d2a-9a51-6b3f2c1d0e61";

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn month_end(y: i32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).unwrap()
    }

    fn stored(
        kind: &'static str,
        product_id: Option<&'static str>,
        value_e4: i64,
        at: DateTime<Utc>,
    ) -> StoredSignal<'static> {
        StoredSignal {
            kind,
            product_id,
            value_e4,
            limit_e4: None,
            occurred_at: at,
        }
    }

    #[test]
    fn a_backfilled_point_has_one_id_per_account_product_and_instant() {
        let at = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let a = ACCOUNT;
        let id = point_id(a, "", at);
        assert_eq!(id, point_id(a, "", at));
        assert_ne!(id, point_id(a, "p", at));
        assert_ne!(id, point_id(a, "", at + chrono::Duration::days(30)));
        // A UUIDv7 of that instant, so id order follows time as elsewhere.
        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        let (secs, _) = uuid.get_timestamp().unwrap().to_unix();
        assert_eq!(i64::try_from(secs).unwrap(), at.timestamp());
    }

    #[test]
    fn measured_kinds_are_points_sentiment_is_text_and_unknown_kinds_are_skipped() {
        let at = month_end(2026, 3);
        let scored: BTreeSet<&str> = ["NPS"].into();
        let signals = PastSignals::sort(
            &scored,
            [
                stored("NPS", Some("p"), 90_000, at),
                stored("CSM_SENTIMENT", None, 40_000, at),
                stored("USAGE", None, 10_000, at),
                stored("NO_SUCH_KIND", None, 10_000, at),
            ],
        );
        assert_eq!(signals.points.len(), 1);
        assert_eq!(signals.points[0].0.as_deref(), Some("p"));
        assert_eq!(signals.points[0].1.value, unscale(90_000));
        assert_eq!(signals.sentiments, vec![(at, "4".to_owned())]);
    }

    #[test]
    fn the_sentiment_shown_is_the_latest_in_the_window_and_never_a_later_one() {
        let at = month_end(2026, 6);
        let signals = PastSignals {
            points: vec![],
            sentiments: vec![
                (at - Duration::days(40), "2".into()),
                (at - Duration::days(5), "3".into()),
                (at + Duration::days(1), "5".into()),
            ],
        };
        assert_eq!(
            signals.sentiment_at(at, Duration::days(30)).as_deref(),
            Some("3")
        );
        assert_eq!(
            signals.sentiment_at(at, Duration::days(60)).as_deref(),
            Some("3")
        );
        assert_eq!(
            signals.sentiment_at(at - Duration::days(50), Duration::days(5)),
            None
        );
    }

    #[test]
    fn a_subscription_is_in_force_from_its_start_until_the_day_it_ends() {
        let terms = vec![
            PastTerm {
                product_id: "a".into(),
                start_date: day(2026, 1, 15),
                ends: None,
            },
            PastTerm {
                product_id: "b".into(),
                start_date: day(2026, 1, 1),
                ends: Some(day(2026, 3, 1)),
            },
        ];
        let on = |d| in_force_on(&terms, d).into_iter().collect::<Vec<_>>();
        assert_eq!(on(day(2026, 1, 1)), vec!["b"]);
        assert_eq!(on(day(2026, 2, 28)), vec!["a", "b"]);
        assert_eq!(on(day(2026, 3, 1)), vec!["a"]);
    }

    #[test]
    fn points_are_written_where_there_is_a_score_and_none_yet() {
        let card = Scorecard::built_in();
        let (feb, mar) = (month_end(2026, 2), month_end(2026, 3));
        let scored: BTreeSet<&str> = card.measures.iter().map(|m| m.kind.as_str()).collect();
        let signals = PastSignals::sort(
            &scored,
            [
                stored("NPS", Some("p"), 90_000, feb - Duration::days(3)),
                stored("CSM_SENTIMENT", None, 40_000, feb - Duration::days(2)),
            ],
        );
        let existing: HashSet<(String, DateTime<Utc>)> = [("p".to_owned(), mar)].into();
        let points = past_points(ACCOUNT, &card, &[feb, mar], &signals, &[], &existing);
        let keys: Vec<(&str, DateTime<Utc>)> = points
            .iter()
            .map(|p| (p.product_id.as_str(), p.at))
            .collect();
        // The account and the product at both month ends (the NPS is in its
        // 180-day window), except the product's point already there in March.
        assert_eq!(keys, vec![("", feb), ("p", feb), ("", mar)]);
        assert!(points.iter().all(|p| p.computed.score.is_some()));
        assert_eq!(points[0].id, point_id(ACCOUNT, "", feb));
        assert_eq!(points[0].csm_sentiment.as_deref(), Some("4"));
        // The sentiment's window is the scorecard's longest (180 days).
        assert_eq!(points[2].csm_sentiment.as_deref(), Some("4"));
        // Without any signal no score, so no point.
        let none = past_points(
            ACCOUNT,
            &card,
            &[feb],
            &PastSignals::default(),
            &[],
            &existing,
        );
        assert!(none.is_empty());
    }
}
