//! Health history over months: the scores an account had at past month
//! ends, computed from the signals that existed then, for an account whose
//! signals reach further back than its history — past signals brought in by
//! an import, or the demo's. Pure: the store loads the signals and writes
//! the rows these rules choose.
//!
//! The rule: every month end (the first instant of a month, UTC) within the
//! last [`BACKFILL_MONTHS`], before the account's first history point, at
//! which some measure of the scorecard sees a signal in its window gets one
//! history point, scored as of that instant. History already written is
//! never rewritten, so a second run — or a later recomputation — writes
//! nothing again; older signals brought in later extend the history back.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc};

use super::scorecard::{Computed, Scorecard, SignalPoint, compute};

/// How far back history is filled in: a year of month ends.
pub const BACKFILL_MONTHS: u32 = 12;

/// The first instant (UTC) of the month `t` falls in.
pub fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let first = NaiveDate::from_ymd_opt(t.year(), t.month(), 1).unwrap_or(t.date_naive());
    Utc.from_utc_datetime(&first.and_time(chrono::NaiveTime::MIN))
}

/// The month ends to consider, oldest first: each first instant of a month
/// within the last `months` months of `now`, strictly before the account's
/// first history point (`first_score`; none yet: before `now`).
pub fn month_ends(
    now: DateTime<Utc>,
    first_score: Option<DateTime<Utc>>,
    months: u32,
) -> Vec<DateTime<Utc>> {
    let horizon = first_score.map_or(now, |f| f.min(now));
    let this_month = month_start(now);
    (0..=months)
        .rev()
        .filter_map(|back| this_month.checked_sub_months(Months::new(back)))
        .filter(|m| *m < horizon)
        .collect()
}

/// The month ends among `candidates` a scorecard measure sees a signal at:
/// one of its kind inside its window that ends there (`(end − window, end]`,
/// as scoring reads it), so each has a score.
pub fn with_signals(
    candidates: &[DateTime<Utc>],
    card: &Scorecard,
    signals: &[SignalPoint],
) -> Vec<DateTime<Utc>> {
    candidates
        .iter()
        .copied()
        .filter(|end| {
            card.measures.iter().any(|m| {
                let since = *end - Duration::days(i64::from(m.window_days));
                signals.iter().any(|s| {
                    s.kind.as_str() == m.kind && s.occurred_at > since && s.occurred_at <= *end
                })
            })
        })
        .collect()
}

/// The scores at `at`: the account's (key `""`) from every signal, and each
/// product's — those `in_force` then and those with a signal in the window —
/// from its own signals and the account-level ones, as a recomputation at
/// `at` would have scored them. Signals after `at` do not count.
pub fn scores_at(
    card: &Scorecard,
    points: &[(Option<String>, SignalPoint)],
    in_force: &BTreeSet<String>,
    at: DateTime<Utc>,
) -> BTreeMap<String, Computed> {
    let since = at - card.longest_window();
    let seen: Vec<&(Option<String>, SignalPoint)> = points
        .iter()
        .filter(|(_, p)| p.occurred_at > since && p.occurred_at <= at)
        .collect();
    let mut out = BTreeMap::new();
    let all: Vec<SignalPoint> = seen.iter().map(|(_, p)| p.clone()).collect();
    out.insert(String::new(), compute(card, &all, at));
    let products: BTreeSet<&str> = in_force
        .iter()
        .map(String::as_str)
        .chain(seen.iter().filter_map(|(product, _)| product.as_deref()))
        .collect();
    for product in products {
        let mine: Vec<SignalPoint> = seen
            .iter()
            .filter(|(sp, _)| sp.as_deref().is_none_or(|p| p == product))
            .map(|(_, p)| p.clone())
            .collect();
        out.insert(product.to_owned(), compute(card, &mine, at));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use domain::{Decimal, HealthBand};

    use super::*;
    use crate::model::signal::SignalKind;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn usage(percent: i64, when: DateTime<Utc>) -> SignalPoint {
        SignalPoint {
            kind: SignalKind::Usage,
            value: Decimal::from(percent),
            limit: Some(Decimal::ONE_HUNDRED),
            occurred_at: when,
        }
    }

    #[test]
    fn month_start_is_the_first_instant_of_the_month() {
        let t = Utc.with_ymd_and_hms(2026, 12, 2, 17, 45, 12).unwrap();
        assert_eq!(month_start(t), at(2026, 12, 1));
        assert_eq!(month_start(at(2026, 3, 1)), at(2026, 3, 1));
    }

    #[test]
    fn month_ends_stop_at_the_first_history_point_and_a_year_back() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
        // No history yet: every month end of the last year, this month's too.
        let all = month_ends(now, None, BACKFILL_MONTHS);
        assert_eq!(all.len(), 13);
        assert_eq!(all.first(), Some(&at(2025, 12, 1)));
        assert_eq!(all.last(), Some(&at(2026, 12, 1)));
        // History since mid-September: the month ends before it.
        let first = Utc.with_ymd_and_hms(2026, 9, 14, 10, 0, 0).unwrap();
        let before = month_ends(now, Some(first), 3);
        assert_eq!(before, vec![at(2026, 9, 1)]);
        // History starting on a month end (a backfilled point): strictly before it.
        assert_eq!(
            month_ends(now, Some(at(2026, 10, 1)), 3),
            vec![at(2026, 9, 1)]
        );
        // A first point older than the reach: nothing.
        assert!(month_ends(now, Some(at(2025, 1, 20)), BACKFILL_MONTHS).is_empty());
        // Early on the first of a month, that month end is in the past already.
        let midnight = at(2026, 12, 1) + Duration::minutes(1);
        assert_eq!(month_ends(midnight, None, 0), vec![at(2026, 12, 1)]);
    }

    #[test]
    fn only_month_ends_a_measure_sees_a_signal_at_get_a_point() {
        let card = Scorecard::built_in();
        let ends = [
            at(2026, 9, 1),
            at(2026, 10, 1),
            at(2026, 11, 1),
            at(2026, 12, 1),
        ];
        let signals = [
            usage(50, at(2026, 8, 20)),
            // Exactly at a month end: in its window (`<= end`).
            usage(50, at(2026, 11, 1)),
        ];
        let chosen = with_signals(&ends, &card, &signals);
        assert_eq!(chosen, vec![at(2026, 9, 1), at(2026, 11, 1)]);
        // Usage looks back 30 days: from 2026-12-01 that ends at 2026-11-01,
        // outside (`> end − window`).
        assert!(with_signals(&ends[3..], &card, &signals).is_empty());
        // An NPS is seen for 180 days; a kind no measure reads, never.
        let nps = SignalPoint {
            kind: SignalKind::Nps,
            value: Decimal::from(8),
            limit: None,
            occurred_at: at(2026, 8, 20),
        };
        assert_eq!(
            with_signals(&ends, &card, std::slice::from_ref(&nps)),
            ends.to_vec()
        );
        let login = SignalPoint {
            kind: SignalKind::Login,
            ..nps
        };
        assert!(with_signals(&ends, &card, &[login]).is_empty());
    }

    #[test]
    fn a_past_score_counts_only_the_signals_that_existed_then() {
        let card = Scorecard::built_in();
        let product = "01937a9e-5c3e-7d2a-9a51-6b3f2c1d0e61".to_owned();
        let points = vec![
            // 20% of the limit in September, 90% in November.
            (Some(product.clone()), usage(20, at(2026, 9, 20))),
            (Some(product.clone()), usage(90, at(2026, 11, 20))),
        ];
        let in_force: BTreeSet<String> = [product.clone()].into();
        let october = scores_at(&card, &points, &in_force, at(2026, 10, 1));
        let december = scores_at(&card, &points, &in_force, at(2026, 12, 1));
        // Usage at 20% of the limit scores 40 (weight 30); no ticket and no
        // escalation score 100 (weight 10 each): (1200 + 1000 + 1000) / 50.
        assert_eq!(october[""].score, Some(Decimal::from(64)));
        assert_eq!(october[""].band, Some(HealthBand::Yellow));
        assert_eq!(october[&product].score, Some(Decimal::from(64)));
        // November's signal is not seen in October; by December it is.
        assert_eq!(december[""].score, Some(Decimal::from(100)));
        assert_eq!(december[""].band, Some(HealthBand::Green));
        // A month end with no signal in any window has no score.
        let empty = scores_at(&card, &points, &BTreeSet::new(), at(2026, 6, 1));
        assert_eq!(empty[""].score, None);
        assert_eq!(empty.len(), 1, "no product in force and no product signal");
    }

    #[test]
    fn account_level_signals_count_for_every_product() {
        let card = Scorecard::built_in();
        let product = "01937a9e-5c3e-7d2a-9a51-6b3f2c1d0e61".to_owned();
        let nps = SignalPoint {
            kind: SignalKind::Nps,
            value: Decimal::from(9),
            limit: None,
            occurred_at: at(2026, 10, 10),
        };
        let scores = scores_at(
            &card,
            &[(None, nps)],
            &[product.clone()].into(),
            at(2026, 11, 1),
        );
        assert_eq!(scores[""].score, Some(Decimal::from(100)));
        assert_eq!(scores[&product].score, Some(Decimal::from(100)));
    }
}
