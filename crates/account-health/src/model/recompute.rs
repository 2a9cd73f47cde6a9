//! The health recompute as a plan: from the account's loaded signals, its
//! subscriptions in force, the scorecard, the overrides and the scores it
//! had, the rows to write — each target's current score, a history row where
//! the score, band or coverage changed, one `health.band.changed` event per
//! band that moved — and what the trigger rules are asked next (the
//! candidates and the bands in force). Pure: the store loads, plans, writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use domain::{Decimal, HealthBand};
use storage::events::NewEvent;

use super::scorecard::{Computed, Scorecard, SignalPoint, compute};
use super::signal::{SignalKind, unscale};
use super::triggers::{self, Candidate, TriggerConfig, TriggerSignal, TriggerSubscription};
use crate::entity::{account, health_current, health_override, health_score, signal, subscription};
use crate::error::HealthError;

/// A score ×100, as stored.
pub fn e2(d: Decimal) -> i64 {
    (d * Decimal::ONE_HUNDRED)
        .round()
        .to_string()
        .parse()
        .unwrap_or(0)
}

/// The account's signals scored: every target's computed health (`""` is the
/// account, else a product), and what the trigger rules read.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub targets: BTreeMap<String, Computed>,
    /// The products scored: those subscribed to and those with a signal.
    pub products: BTreeSet<String>,
    /// The latest CSM sentiment among the signals.
    pub sentiment: Option<Decimal>,
    pub trigger_signals: Vec<TriggerSignal>,
}

/// Scores the account and each product from the loaded `signals` (rows of
/// an unknown kind are passed over): a product from its own signals and the
/// account-level ones. `in_force` are the subscriptions in force today.
pub fn score_account(
    card: &Scorecard,
    signals: &[signal::Model],
    in_force: &[subscription::Model],
    now: DateTime<Utc>,
) -> Scored {
    let mut points: Vec<(Option<String>, SignalPoint)> = Vec::with_capacity(signals.len());
    let mut trigger_signals = Vec::with_capacity(signals.len());
    let mut sentiment: Option<(DateTime<Utc>, Decimal)> = None;
    for r in signals {
        let Ok(kind) = r.kind.parse::<SignalKind>() else {
            continue;
        };
        let value = unscale(r.value_e4);
        let limit = r.limit_e4.map(unscale);
        if kind == SignalKind::CsmSentiment && sentiment.is_none_or(|(t, _)| r.occurred_at > t) {
            sentiment = Some((r.occurred_at, value));
        }
        let occurred_at = r.occurred_at;
        points.push((
            r.product_id.clone(),
            SignalPoint {
                kind,
                value,
                limit,
                occurred_at,
            },
        ));
        trigger_signals.push(TriggerSignal {
            kind,
            product_id: r.product_id.clone(),
            value,
            limit,
            occurred_at,
            detail: r.detail.clone(),
        });
    }
    let mut targets: BTreeMap<String, Computed> = BTreeMap::new();
    let all: Vec<SignalPoint> = points.iter().map(|(_, p)| p.clone()).collect();
    targets.insert(String::new(), compute(card, &all, now));
    let products: BTreeSet<String> = in_force
        .iter()
        .map(|s| s.product_id.clone())
        .chain(points.iter().filter_map(|(p, _)| p.clone()))
        .collect();
    for p in &products {
        let mine: Vec<SignalPoint> = points
            .iter()
            .filter(|(sp, _)| sp.is_none() || sp.as_deref() == Some(p.as_str()))
            .map(|(_, point)| point.clone())
            .collect();
        targets.insert(p.clone(), compute(card, &mine, now));
    }
    Scored {
        targets,
        products,
        sentiment: sentiment.map(|(_, v)| v),
        trigger_signals,
    }
}

/// What a recompute is planned from, besides the scores.
#[derive(Debug, Clone, Copy)]
pub struct Recompute<'a> {
    pub account: &'a account::Model,
    pub card: &'a Scorecard,
    pub triggers: &'a TriggerConfig,
    /// The subscriptions in force today.
    pub in_force: &'a [subscription::Model],
    /// The stored current scores, by target.
    pub current: &'a HashMap<String, health_current::Model>,
    /// The overrides in force, by target.
    pub overrides: &'a HashMap<String, health_override::Model>,
    pub now: DateTime<Utc>,
}

/// What a recompute writes, and what the trigger rules are asked next.
#[derive(Debug, Clone, PartialEq)]
pub struct RecomputePlan {
    /// Every target's current score (an upsert each).
    pub current: Vec<health_current::Model>,
    /// History rows: one per target whose score, band or coverage changed.
    pub history: Vec<health_score::Model>,
    /// One `health.band.changed` per target whose band moved.
    pub events: Vec<NewEvent>,
    /// The band that counts per target: the override's while one is active.
    pub effective_bands: HashMap<String, Option<HealthBand>>,
    /// The triggers the signals and contracts call for.
    pub candidates: Vec<Candidate>,
}

/// Plans the recompute of `scored` against what is stored.
pub fn plan_recompute(r: Recompute<'_>, scored: &Scored) -> Result<RecomputePlan, HealthError> {
    let sentiment = scored.sentiment.map(|v| v.normalize().to_string());
    let mut plan = RecomputePlan {
        current: Vec::with_capacity(scored.targets.len()),
        history: Vec::new(),
        events: Vec::new(),
        effective_bands: HashMap::new(),
        candidates: trigger_candidates(r, &scored.trigger_signals),
    };
    for (product_id, computed) in &scored.targets {
        let row = current_row(r, product_id, computed, sentiment.clone())?;
        let before = r.current.get(product_id);
        if before.is_none_or(|b| {
            b.score_e2 != row.score_e2 || b.band != row.band || b.coverage_e2 != row.coverage_e2
        }) {
            plan.history.push(history_row(&row));
            let previous_band = before.and_then(|b| b.band.clone());
            if previous_band != row.band {
                plan.events
                    .push(band_changed(&row, previous_band, computed.score));
            }
        }
        let effective = match r.overrides.get(product_id) {
            Some(o) => r.card.bands.band_of(Decimal::from(o.score)),
            None => computed.band,
        };
        plan.effective_bands.insert(product_id.clone(), effective);
        plan.current.push(row);
    }
    Ok(plan)
}

fn current_row(
    r: Recompute<'_>,
    product_id: &str,
    computed: &Computed,
    csm_sentiment: Option<String>,
) -> Result<health_current::Model, HealthError> {
    Ok(health_current::Model {
        account_id: r.account.id.clone(),
        product_id: product_id.to_owned(),
        score_e2: computed.score.map(e2),
        band: computed.band.map(|b| b.as_str().to_owned()),
        coverage_e2: e2(computed.coverage),
        breakdown: serde_json::to_string(&computed.breakdown)
            .map_err(|e| HealthError::Corrupt(e.to_string()))?,
        csm_sentiment,
        scorecard_version: r.card.version,
        computed_at: r.now,
    })
}

/// The history row of a changed score: the current row under a new id.
fn history_row(row: &health_current::Model) -> health_score::Model {
    health_score::Model {
        id: domain::EventId::new().to_string(),
        account_id: row.account_id.clone(),
        product_id: row.product_id.clone(),
        score_e2: row.score_e2,
        band: row.band.clone(),
        coverage_e2: row.coverage_e2,
        breakdown: row.breakdown.clone(),
        csm_sentiment: row.csm_sentiment.clone(),
        scorecard_version: row.scorecard_version,
        computed_at: row.computed_at,
    }
}

fn band_changed(
    row: &health_current::Model,
    previous_band: Option<String>,
    score: Option<Decimal>,
) -> NewEvent {
    NewEvent {
        event_type: "health.band.changed".into(),
        subject_id: row.account_id.clone(),
        data: serde_json::json!({
            "account_id": row.account_id,
            "product_id": row.product_id,
            "previous_band": previous_band,
            "band": row.band,
            "score": score.map(|s| s.to_string()),
        }),
    }
}

fn trigger_candidates(r: Recompute<'_>, signals: &[TriggerSignal]) -> Vec<Candidate> {
    let subscriptions: Vec<TriggerSubscription> = r
        .in_force
        .iter()
        .map(|s| TriggerSubscription {
            product_id: s.product_id.clone(),
            end_date: s.end_date,
        })
        .collect();
    let fiscal_month = u32::try_from(r.account.fiscal_year_start_month).unwrap_or(1);
    triggers::candidates(r.triggers, signals, &subscriptions, fiscal_month, r.now)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap()
    }

    fn account() -> account::Model {
        account::Model {
            id: "a1".into(),
            external_system: None,
            external_id: None,
            name: "Acme".into(),
            segment: None,
            customer_since: None,
            fiscal_year_start_month: 1,
            owner_csm: None,
            parent_account_id: None,
            created_at: now(),
            created_by: "t".into(),
            updated_at: now(),
            updated_by: "t".into(),
        }
    }

    /// USAGE at `percent` of its limit on product `p`, a day ago.
    fn usage(percent: i64) -> signal::Model {
        signal::Model {
            seq: 1,
            account_id: "a1".into(),
            product_id: Some("p".into()),
            kind: SignalKind::Usage.as_str().into(),
            value_e4: percent * 10_000,
            limit_e4: Some(100 * 10_000),
            occurred_at: now() - Duration::days(1),
            source: "test".into(),
            external_id: None,
            detail: None,
            recorded_at: now(),
        }
    }

    /// Plans a recompute of `signals` over the `current` rows of an earlier plan.
    fn plan(
        signals: &[signal::Model],
        current: &[health_current::Model],
        overrides: &[(&str, i32)],
    ) -> RecomputePlan {
        let card = Scorecard::built_in();
        let current: HashMap<String, health_current::Model> = current
            .iter()
            .map(|r| (r.product_id.clone(), r.clone()))
            .collect();
        let overrides: HashMap<String, health_override::Model> = overrides
            .iter()
            .map(|(product, score)| {
                let o = health_override::Model {
                    id: "o1".into(),
                    account_id: "a1".into(),
                    product_id: (*product).to_owned(),
                    score: *score,
                    reason: "call with the CEO".into(),
                    principal: "csm".into(),
                    created_at: now(),
                    expires_at: None,
                };
                ((*product).to_owned(), o)
            })
            .collect();
        let scored = score_account(&card, signals, &[], now());
        let r = Recompute {
            account: &account(),
            card: &card,
            triggers: &TriggerConfig::default(),
            in_force: &[],
            current: &current,
            overrides: &overrides,
            now: now(),
        };
        plan_recompute(r, &scored).unwrap()
    }

    #[test]
    fn a_first_score_writes_current_rows_and_history_for_the_account_and_each_product() {
        let first = plan(&[usage(90)], &[], &[]);
        let targets: Vec<&str> = first
            .current
            .iter()
            .map(|r| r.product_id.as_str())
            .collect();
        assert_eq!(targets, ["", "p"]);
        assert_eq!(first.current[0].score_e2, Some(10_000));
        assert_eq!(first.current[0].band.as_deref(), Some("GREEN"));
        assert_eq!(first.history.len(), 2);
        // From no band to GREEN: one event per target.
        assert_eq!(first.events.len(), 2);
        assert_eq!(
            first.events[0].data["previous_band"],
            serde_json::Value::Null
        );
        assert_eq!(first.events[0].data["band"], "GREEN");
    }

    #[test]
    fn an_unchanged_score_writes_no_history_and_no_event() {
        let first = plan(&[usage(90)], &[], &[]);
        let again = plan(&[usage(90)], &first.current, &[]);
        assert_eq!(again.current.len(), 2, "current rows are refreshed");
        assert!(again.history.is_empty());
        assert!(again.events.is_empty());
    }

    #[test]
    fn a_band_change_emits_one_event_with_the_old_and_new_band() {
        let first = plan(&[usage(90)], &[], &[]);
        let account_only: Vec<_> = first
            .current
            .iter()
            .filter(|r| r.product_id.is_empty())
            .cloned()
            .chain(
                first
                    .current
                    .iter()
                    .filter(|r| r.product_id == "p")
                    .map(|r| {
                        // The product was already RED: only the account's band moves.
                        let mut r = r.clone();
                        r.band = Some("RED".into());
                        r.score_e2 = Some(1_000);
                        r
                    }),
            )
            .collect();
        let fell = plan(&[usage(5)], &account_only, &[]);
        let account_events: Vec<_> = fell
            .events
            .iter()
            .filter(|e| e.data["product_id"] == "")
            .collect();
        assert_eq!(account_events.len(), 1);
        assert_eq!(account_events[0].event_type, "health.band.changed");
        assert_eq!(account_events[0].data["previous_band"], "GREEN");
        assert_eq!(account_events[0].data["band"], "RED");
        // The event carries the score written.
        let score = fell.current[0].score_e2.unwrap();
        assert_eq!(account_events[0].data["score"], (score / 100).to_string());
        // The product's score moved within RED: history, but no event.
        assert_eq!(fell.history.len(), 2);
        assert_eq!(fell.events.len(), 1);
    }

    #[test]
    fn an_override_decides_the_band_the_triggers_see() {
        let p = plan(&[usage(90)], &[], &[("", 20)]);
        assert_eq!(p.effective_bands[""], Some(HealthBand::Red));
        assert_eq!(p.effective_bands["p"], Some(HealthBand::Green));
        // The stored score stays the computed one.
        assert_eq!(p.current[0].band.as_deref(), Some("GREEN"));
    }

    #[test]
    fn usage_near_the_limit_asks_for_a_capacity_trigger() {
        let p = plan(&[usage(90)], &[], &[]);
        assert_eq!(p.candidates.len(), 1);
        assert_eq!(p.candidates[0].kind, triggers::TriggerKind::UsageCapacity);
        assert!(plan(&[usage(50)], &[], &[]).candidates.is_empty());
    }

    #[test]
    fn the_latest_csm_sentiment_is_kept_on_every_row() {
        let mut older = usage(0);
        older.kind = SignalKind::CsmSentiment.as_str().into();
        older.product_id = None;
        older.limit_e4 = None;
        older.value_e4 = 20_000;
        older.occurred_at = now() - Duration::days(3);
        let mut newer = older.clone();
        newer.value_e4 = 45_000;
        newer.occurred_at = now() - Duration::days(2);
        let p = plan(&[newer, older, usage(90)], &[], &[]);
        assert!(
            p.current
                .iter()
                .all(|r| r.csm_sentiment.as_deref() == Some("4.5"))
        );
    }

    #[test]
    fn scores_are_kept_times_100() {
        assert_eq!(e2(Decimal::new(7_345, 2)), 7_345);
        assert_eq!(e2(Decimal::new(73_455, 3)), 7_346);
    }
}
