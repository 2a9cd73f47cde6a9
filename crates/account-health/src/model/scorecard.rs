//! Scorecards (Gainsight-style) and the health score they compute.
//!
//! A scorecard is a set of weighted measures; each measure aggregates one
//! kind of signal over a window and maps the result to 0–100 by thresholds.
//! Overall = Σ(weight × score) / Σ(weight) over the measures that have data
//! (RENORMALIZE, the default) or over all of them with missing ones counted
//! as 0 (TREAT_AS_ZERO); coverage says how much of the weight had data.

use chrono::{DateTime, Duration, Utc};
use contracts::ApiError;
use contracts::pb::common::v1 as common;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::{Decimal, HealthBand};
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Serialize};

use super::signal::SignalKind;

pub const DEFAULT_SCORECARD_ID: &str = "default";
pub const MAX_SCORECARD_ID_LEN: usize = 64;
const MAX_MEASURES: usize = 50;
const MAX_THRESHOLDS: usize = 20;
const MAX_WINDOW_DAYS: u32 = 730;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregation {
    Latest,
    Average,
    Sum,
    Count,
    /// Latest value / limit, in percent.
    RatioToLimit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MissingDataPolicy {
    Renormalize,
    TreatAsZero,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Threshold {
    pub min_value: Decimal,
    pub score: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measure {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub aggregation: Aggregation,
    pub window_days: u32,
    pub weight: Decimal,
    /// Sorted by `min_value`, highest first.
    pub thresholds: Vec<Threshold>,
}

/// Inclusive upper bounds, ascending; the last is 100. A score belongs to
/// the first band whose upper bound it does not exceed, so each band's lower
/// bound is excluded except in the first band (RED 0–50, YELLOW 51–75, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bands(pub Vec<(String, u8)>);

impl Default for Bands {
    fn default() -> Self {
        Bands(vec![
            ("RED".into(), 50),
            ("YELLOW".into(), 75),
            ("GREEN".into(), 100),
        ])
    }
}

impl Bands {
    pub fn band_of(&self, score: Decimal) -> Option<HealthBand> {
        self.0
            .iter()
            .find(|(_, upper)| score <= Decimal::from(*upper))
            .and_then(|(band, _)| band.parse().ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scorecard {
    pub scorecard_id: String,
    /// A label for people, kept as given (empty: shown as the id).
    #[serde(default)]
    pub name: String,
    pub version: i32,
    pub measures: Vec<Measure>,
    pub missing_data: MissingDataPolicy,
    pub bands: Bands,
}

fn measure(
    name: &str,
    group: &str,
    kind: SignalKind,
    aggregation: Aggregation,
    window_days: u32,
    weight: i64,
    thresholds: &[(i64, u8)],
) -> Measure {
    Measure {
        name: name.into(),
        group: group.into(),
        kind: kind.as_str().into(),
        aggregation,
        window_days,
        weight: Decimal::from(weight),
        thresholds: thresholds
            .iter()
            .map(|(min, score)| Threshold {
                min_value: Decimal::from(*min),
                score: *score,
            })
            .collect(),
    }
}

impl Scorecard {
    /// The scorecard in force until one is written: usage and adoption
    /// against limits, NPS, CSAT, support load and escalations.
    pub fn built_in() -> Self {
        use Aggregation::*;
        use SignalKind::*;
        Scorecard {
            scorecard_id: DEFAULT_SCORECARD_ID.into(),
            name: "Built-in health scorecard".into(),
            version: 0,
            measures: vec![
                measure(
                    "usage",
                    "product",
                    Usage,
                    RatioToLimit,
                    30,
                    30,
                    &[(60, 100), (30, 70), (10, 40), (0, 10)],
                ),
                measure(
                    "adoption",
                    "product",
                    ActiveUsers,
                    RatioToLimit,
                    30,
                    25,
                    &[(75, 100), (50, 75), (25, 45), (0, 15)],
                ),
                measure(
                    "nps",
                    "sentiment",
                    Nps,
                    Average,
                    180,
                    15,
                    &[(9, 100), (7, 75), (5, 40), (0, 10)],
                ),
                measure(
                    "csat",
                    "sentiment",
                    Csat,
                    Average,
                    90,
                    10,
                    &[(4, 90), (3, 50), (0, 20)],
                ),
                measure(
                    "support_load",
                    "support",
                    SupportTicket,
                    Count,
                    30,
                    10,
                    &[(10, 20), (5, 50), (2, 80), (0, 100)],
                ),
                measure(
                    "escalations",
                    "support",
                    Escalation,
                    Count,
                    90,
                    10,
                    &[(2, 0), (1, 40), (0, 100)],
                ),
            ],
            missing_data: MissingDataPolicy::Renormalize,
            bands: Bands::default(),
        }
    }

    /// The longest window any measure looks back over.
    pub fn longest_window(&self) -> Duration {
        Duration::days(i64::from(
            self.measures
                .iter()
                .map(|m| m.window_days)
                .max()
                .unwrap_or(30),
        ))
    }

    /// Validates a scorecard from the wire (`field` = its path).
    pub fn from_pb(field: &str, s: &pb::Scorecard) -> Result<Self, ApiError> {
        let f = |name: &str| format!("{field}.{name}");
        let scorecard_id = if s.scorecard_id.is_empty() {
            DEFAULT_SCORECARD_ID.to_owned()
        } else {
            wire::text(&f("scorecard_id"), &s.scorecard_id, MAX_SCORECARD_ID_LEN)?
        };
        let name =
            wire::optional_text(&f("name"), &s.name, wire::MAX_NAME_LEN)?.unwrap_or_default();
        let measures = measures_from_pb(field, &s.measures)?;
        let missing_data = missing_data_from_pb(&f("missing_data_policy"), s.missing_data_policy)?;
        let bands = Bands::from_pb(field, &s.bands)?;
        Ok(Scorecard {
            scorecard_id,
            name,
            version: 0,
            measures,
            missing_data,
            bands,
        })
    }

    pub fn to_pb(&self) -> pb::Scorecard {
        pb::Scorecard {
            scorecard_id: self.scorecard_id.clone(),
            name: if self.name.is_empty() {
                self.scorecard_id.clone()
            } else {
                self.name.clone()
            },
            version: self.version,
            measures: self
                .measures
                .iter()
                .map(|m| pb::Measure {
                    name: m.name.clone(),
                    group: m.group.clone(),
                    signal_kind: m
                        .kind
                        .parse::<SignalKind>()
                        .map(|k| k.to_pb() as i32)
                        .unwrap_or_default(),
                    aggregation: match m.aggregation {
                        Aggregation::Latest => pb::Aggregation::Latest,
                        Aggregation::Average => pb::Aggregation::Average,
                        Aggregation::Sum => pb::Aggregation::Sum,
                        Aggregation::Count => pb::Aggregation::Count,
                        Aggregation::RatioToLimit => pb::Aggregation::RatioToLimit,
                    } as i32,
                    window_days: i32::try_from(m.window_days).unwrap_or(i32::MAX),
                    weight: m.weight.normalize().to_string(),
                    thresholds: m
                        .thresholds
                        .iter()
                        .map(|t| pb::Threshold {
                            min_value: t.min_value.normalize().to_string(),
                            score: i32::from(t.score),
                        })
                        .collect(),
                })
                .collect(),
            missing_data_policy: match self.missing_data {
                MissingDataPolicy::Renormalize => pb::MissingDataPolicy::Renormalize,
                MissingDataPolicy::TreatAsZero => pb::MissingDataPolicy::TreatAsZero,
            } as i32,
            bands: self
                .bands
                .0
                .iter()
                .map(|(band, upper)| pb::BandBound {
                    band: common::HealthBand::from_str_name(&format!("HEALTH_BAND_{band}"))
                        .unwrap_or_default() as i32,
                    upper: i32::from(*upper),
                })
                .collect(),
            audit: None,
        }
    }
}

/// The measures of a scorecard at `field`: 1 to [`MAX_MEASURES`], names
/// unique, at least one weight positive.
fn measures_from_pb(field: &str, wire_measures: &[pb::Measure]) -> Result<Vec<Measure>, ApiError> {
    if wire_measures.is_empty() || wire_measures.len() > MAX_MEASURES {
        return Err(ApiError::invalid(
            format!("{field}.measures"),
            format!("needs 1 to {MAX_MEASURES} measures"),
        ));
    }
    let mut measures = Vec::with_capacity(wire_measures.len());
    for (i, m) in wire_measures.iter().enumerate() {
        let measure = Measure::from_pb(&format!("{field}.measures[{i}]"), m, &measures)?;
        measures.push(measure);
    }
    if measures.iter().all(|m| m.weight.is_zero()) {
        return Err(ApiError::invalid(
            format!("{field}.measures"),
            "at least one weight must be positive",
        ));
    }
    Ok(measures)
}

impl Measure {
    /// Validates one measure at `path`; `earlier` are the measures before it,
    /// whose names it may not repeat.
    fn from_pb(path: &str, m: &pb::Measure, earlier: &[Measure]) -> Result<Self, ApiError> {
        let at = |name: &str| format!("{path}.{name}");
        let name = wire::text(&at("name"), &m.name, wire::MAX_NAME_LEN)?;
        if earlier.iter().any(|x| x.name == name) {
            return Err(ApiError::invalid(
                at("name"),
                format!("{name:?} appears twice"),
            ));
        }
        let kind = measure_kind_from_pb(&at("signal_kind"), m.signal_kind)?;
        let aggregation = aggregation_from_pb(&at("aggregation"), m.aggregation)?;
        let window_days = window_days_from_pb(&at("window_days"), m.window_days)?;
        let weight = weight_from_pb(&at("weight"), &m.weight)?;
        let thresholds = thresholds_from_pb(path, &m.thresholds)?;
        Ok(Measure {
            name,
            group: wire::optional_text(&at("group"), &m.group, wire::MAX_NAME_LEN)?
                .unwrap_or_default(),
            kind: kind.as_str().into(),
            aggregation,
            window_days,
            weight,
            thresholds,
        })
    }
}

/// A measure's signal kind: required, and never CSM_SENTIMENT.
fn measure_kind_from_pb(field: &str, signal_kind: i32) -> Result<SignalKind, ApiError> {
    let kind = SignalKind::from_pb(field, signal_kind)?
        .ok_or_else(|| ApiError::invalid(field, "is required"))?;
    if kind == SignalKind::CsmSentiment {
        return Err(ApiError::invalid(
            field,
            "CSM_SENTIMENT can't be a measure: the CSM's sentiment is shown beside the computed score, never mixed into it",
        ));
    }
    Ok(kind)
}

fn aggregation_from_pb(field: &str, aggregation: i32) -> Result<Aggregation, ApiError> {
    Ok(
        match wire::known_enum::<pb::Aggregation>(field, aggregation)? {
            pb::Aggregation::Unspecified => {
                return Err(ApiError::invalid(field, "is required"));
            }
            pb::Aggregation::Latest => Aggregation::Latest,
            pb::Aggregation::Average => Aggregation::Average,
            pb::Aggregation::Sum => Aggregation::Sum,
            pb::Aggregation::Count => Aggregation::Count,
            pb::Aggregation::RatioToLimit => Aggregation::RatioToLimit,
        },
    )
}

fn window_days_from_pb(field: &str, window_days: i32) -> Result<u32, ApiError> {
    u32::try_from(window_days)
        .ok()
        .filter(|d| (1..=MAX_WINDOW_DAYS).contains(d))
        .ok_or_else(|| ApiError::invalid(field, format!("must be 1-{MAX_WINDOW_DAYS}")))
}

/// A weight: a non-negative decimal of at most 6 places, at most 1,000,000.
fn weight_from_pb(field: &str, weight: &str) -> Result<Decimal, ApiError> {
    domain::parse_decimal(weight)
        .filter(|w| !w.is_sign_negative() && w.scale() <= 6 && *w <= Decimal::from(1_000_000))
        .ok_or_else(|| ApiError::invalid(field, "must be a non-negative decimal like \"25\""))
}

/// The thresholds of the measure at `path`: 1 to [`MAX_THRESHOLDS`], sorted
/// highest `min_value` first.
fn thresholds_from_pb(
    path: &str,
    wire_thresholds: &[pb::Threshold],
) -> Result<Vec<Threshold>, ApiError> {
    if wire_thresholds.is_empty() || wire_thresholds.len() > MAX_THRESHOLDS {
        return Err(ApiError::invalid(
            format!("{path}.thresholds"),
            format!("needs 1 to {MAX_THRESHOLDS} thresholds"),
        ));
    }
    let mut thresholds = wire_thresholds
        .iter()
        .enumerate()
        .map(|(j, t)| Threshold::from_pb(&format!("{path}.thresholds[{j}]"), t))
        .collect::<Result<Vec<_>, _>>()?;
    thresholds.sort_by_key(|t| std::cmp::Reverse(t.min_value));
    Ok(thresholds)
}

impl Threshold {
    fn from_pb(path: &str, t: &pb::Threshold) -> Result<Self, ApiError> {
        let min_value = domain::parse_decimal(&t.min_value)
            .filter(|v| v.scale() <= 6)
            .ok_or_else(|| ApiError::invalid(format!("{path}.min_value"), "must be a decimal"))?;
        let score = u8::try_from(t.score)
            .ok()
            .filter(|s| *s <= 100)
            .ok_or_else(|| ApiError::invalid(format!("{path}.score"), "must be 0-100"))?;
        Ok(Threshold { min_value, score })
    }
}

/// The missing-data policy; unspecified means RENORMALIZE.
fn missing_data_from_pb(field: &str, policy: i32) -> Result<MissingDataPolicy, ApiError> {
    Ok(
        match wire::known_enum::<pb::MissingDataPolicy>(field, policy)? {
            pb::MissingDataPolicy::Unspecified | pb::MissingDataPolicy::Renormalize => {
                MissingDataPolicy::Renormalize
            }
            pb::MissingDataPolicy::TreatAsZero => MissingDataPolicy::TreatAsZero,
        },
    )
}

impl Bands {
    /// The bands of a scorecard at `field`: none given means the default;
    /// otherwise each band once, upper bounds rising strictly to 100.
    fn from_pb(field: &str, wire_bands: &[pb::BandBound]) -> Result<Self, ApiError> {
        if wire_bands.is_empty() {
            return Ok(Bands::default());
        }
        let mut bands = Vec::new();
        let mut last: Option<i32> = None;
        for (i, b) in wire_bands.iter().enumerate() {
            let at = |name: &str| format!("{field}.bands[{i}].{name}");
            let band = band_name_from_pb(&at("band"), b.band)?;
            if !(0..=100).contains(&b.upper) || last.is_some_and(|l| b.upper <= l) {
                return Err(ApiError::invalid(
                    at("upper"),
                    "upper bounds must rise strictly within 0-100",
                ));
            }
            if bands.iter().any(|(name, _): &(String, u8)| name == band) {
                return Err(ApiError::invalid(at("band"), "each band may appear once"));
            }
            last = Some(b.upper);
            bands.push((band.to_owned(), u8::try_from(b.upper).unwrap_or(100)));
        }
        if last != Some(100) {
            return Err(ApiError::invalid(
                format!("{field}.bands"),
                "the last band must end at 100",
            ));
        }
        Ok(Bands(bands))
    }
}

fn band_name_from_pb(field: &str, band: i32) -> Result<&'static str, ApiError> {
    Ok(match wire::known_enum::<common::HealthBand>(field, band)? {
        common::HealthBand::Unspecified => {
            return Err(ApiError::invalid(field, "is required"));
        }
        common::HealthBand::Red => "RED",
        common::HealthBand::Yellow => "YELLOW",
        common::HealthBand::Green => "GREEN",
    })
}

/// One signal as the scorer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalPoint {
    pub kind: SignalKind,
    pub value: Decimal,
    pub limit: Option<Decimal>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureResult {
    pub name: String,
    pub weight: Decimal,
    pub score: Option<Decimal>,
}

/// What a scorecard makes of an account's (or account-product's) signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computed {
    /// `None` when no measure had data.
    pub score: Option<Decimal>,
    pub band: Option<HealthBand>,
    /// Percent of the total weight whose measures had data.
    pub coverage: Decimal,
    pub breakdown: Vec<MeasureResult>,
}

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

/// The measure's value over the signals in its window. A count with no
/// event in its window is 0 — data, scored by the thresholds (no tickets is
/// good news) — as long as the subject has a signal in some measure's
/// window; every other
/// aggregation of nothing is missing data.
fn aggregate(measure: &Measure, signals: &[&SignalPoint], observed: bool) -> Option<Decimal> {
    let latest = || signals.iter().max_by_key(|s| s.occurred_at);
    match measure.aggregation {
        Aggregation::Count if observed => Some(Decimal::from(signals.len())),
        _ if signals.is_empty() => None,
        Aggregation::Latest => latest().map(|s| s.value),
        Aggregation::Average => {
            let sum: Decimal = signals.iter().map(|s| s.value).sum();
            Some(sum / Decimal::from(signals.len()))
        }
        Aggregation::Sum => Some(signals.iter().map(|s| s.value).sum()),
        Aggregation::Count => Some(Decimal::from(signals.len())),
        Aggregation::RatioToLimit => latest().and_then(|s| {
            s.limit
                .filter(|l| !l.is_zero())
                .map(|l| s.value * Decimal::ONE_HUNDRED / l)
        }),
    }
}

fn threshold_score(measure: &Measure, value: Decimal) -> Decimal {
    measure
        .thresholds
        .iter()
        .find(|t| value >= t.min_value)
        .map_or(Decimal::ZERO, |t| Decimal::from(t.score))
}

/// Scores `signals` (already limited to the account or account-product) at `now`.
pub fn compute(scorecard: &Scorecard, signals: &[SignalPoint], now: DateTime<Utc>) -> Computed {
    let mut breakdown = Vec::with_capacity(scorecard.measures.len());
    let windows: Vec<Vec<&SignalPoint>> = scorecard
        .measures
        .iter()
        .map(|measure| {
            let since = now - Duration::days(i64::from(measure.window_days));
            signals
                .iter()
                .filter(|s| {
                    s.kind.as_str() == measure.kind && s.occurred_at > since && s.occurred_at <= now
                })
                .collect()
        })
        .collect();
    // Zero events of a count are data only for a subject the scorecard sees
    // at all: with no signal inside any window there is no score, not a
    // perfect one.
    let observed = windows.iter().any(|w| !w.is_empty());
    let (mut total_weight, mut present_weight, mut weighted) =
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for (measure, in_window) in scorecard.measures.iter().zip(&windows) {
        let score = aggregate(measure, in_window, observed).map(|v| threshold_score(measure, v));
        total_weight += measure.weight;
        if let Some(score) = score {
            present_weight += measure.weight;
            weighted += measure.weight * score;
        }
        breakdown.push(MeasureResult {
            name: measure.name.clone(),
            weight: measure.weight,
            score,
        });
    }
    let denominator = match scorecard.missing_data {
        MissingDataPolicy::Renormalize => present_weight,
        MissingDataPolicy::TreatAsZero => total_weight,
    };
    let score = (!present_weight.is_zero() && !denominator.is_zero())
        .then(|| round2(weighted / denominator));
    let coverage = if total_weight.is_zero() {
        Decimal::ZERO
    } else {
        round2(present_weight * Decimal::ONE_HUNDRED / total_weight)
    };
    Computed {
        band: score.and_then(|s| scorecard.bands.band_of(s)),
        score,
        coverage,
        breakdown,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn point(kind: SignalKind, value: i64, limit: Option<i64>, days_ago: i64) -> SignalPoint {
        SignalPoint {
            kind,
            value: Decimal::from(value),
            limit: limit.map(Decimal::from),
            occurred_at: Utc::now() - Duration::days(days_ago),
        }
    }

    #[test]
    fn default_bands_exclude_the_lower_bound_except_in_the_first() {
        let bands = Bands::default();
        let d = |s: &str| Decimal::from_str_exact(s).unwrap();
        assert_eq!(bands.band_of(d("0")), Some(HealthBand::Red));
        assert_eq!(bands.band_of(d("50")), Some(HealthBand::Red));
        assert_eq!(bands.band_of(d("50.01")), Some(HealthBand::Yellow));
        assert_eq!(bands.band_of(d("75")), Some(HealthBand::Yellow));
        assert_eq!(bands.band_of(d("76")), Some(HealthBand::Green));
        assert_eq!(bands.band_of(d("100")), Some(HealthBand::Green));
    }

    #[test]
    fn renormalizes_over_present_measures_and_reports_coverage() {
        let card = Scorecard::built_in();
        let now = Utc::now();
        // Usage at 85% of the limit (score 100, weight 30) and NPS 6 (score 40, weight 15).
        let signals = vec![
            point(SignalKind::Usage, 85, Some(100), 1),
            point(SignalKind::Nps, 6, None, 10),
        ];
        let c = compute(&card, &signals, now);
        // No ticket and no escalation in their windows are counts of 0, which
        // score 100 each (weights 10 and 10); adoption and CSAT have no data:
        // (30×100 + 15×40 + 10×100 + 10×100) / 65 = 86.15
        assert_eq!(c.score, Some(Decimal::from_str_exact("86.15").unwrap()));
        assert_eq!(c.band, Some(HealthBand::Green));
        assert_eq!(c.coverage, Decimal::from(65));
        assert_eq!(c.breakdown.iter().filter(|m| m.score.is_some()).count(), 4);

        let mut zero = card.clone();
        zero.missing_data = MissingDataPolicy::TreatAsZero;
        // (3000 + 600 + 1000 + 1000) / 100 = 56
        assert_eq!(compute(&zero, &signals, now).score, Some(Decimal::from(56)));
    }

    #[test]
    fn old_signals_fall_out_of_the_window_and_no_data_means_no_score() {
        let card = Scorecard::built_in();
        let c = compute(
            &card,
            &[point(SignalKind::Usage, 90, Some(100), 45)],
            Utc::now(),
        );
        assert_eq!((c.score, c.band, c.coverage), (None, None, Decimal::ZERO));
    }

    #[test]
    fn inverted_measures_score_low_counts_high() {
        let card = Scorecard::built_in();
        let tickets: Vec<_> = (0..6)
            .map(|d| point(SignalKind::SupportTicket, 1, None, d))
            .collect();
        let c = compute(&card, &tickets, Utc::now());
        let support = |name: &str| c.breakdown.iter().find(|m| m.name == name).unwrap().score;
        // 6 tickets in 30 days score 50; no escalation in 90 days scores 100:
        // (10×50 + 10×100) / 20 = 75.
        assert_eq!(support("support_load"), Some(Decimal::from(50)));
        assert_eq!(support("escalations"), Some(Decimal::from(100)));
        assert_eq!(c.score, Some(Decimal::from(75)));
        assert_eq!(c.band, Some(HealthBand::Yellow));
    }

    #[test]
    fn a_count_with_no_event_scores_by_its_thresholds() {
        let card = Scorecard::built_in();
        // One NPS of 10 (score 100, weight 15); zero tickets (100, weight 10)
        // and zero escalations (100, weight 10): every measure present scores 100.
        let c = compute(&card, &[point(SignalKind::Nps, 10, None, 3)], Utc::now());
        assert_eq!(c.score, Some(Decimal::from(100)));
        assert_eq!(c.coverage, Decimal::from(35));
        // Two escalations inside the window score 0: (15×100 + 10×100 + 10×0) / 35.
        let signals = vec![
            point(SignalKind::Nps, 10, None, 3),
            point(SignalKind::Escalation, 1, None, 5),
            point(SignalKind::Escalation, 1, None, 80),
        ];
        let c = compute(&card, &signals, Utc::now());
        assert_eq!(c.score, Some(Decimal::from_str_exact("71.43").unwrap()));
        // An account with no signal at all has no score, not a perfect one.
        let none = compute(&card, &[], Utc::now());
        assert_eq!(none.score, None);
        assert_eq!(none.coverage, Decimal::ZERO);
    }

    #[test]
    fn csm_sentiment_is_not_a_measure_and_the_name_is_kept() {
        let mut s = Scorecard::built_in().to_pb();
        s.name = "Enterprise health, FY27".into();
        let card = Scorecard::from_pb("scorecard", &s).unwrap();
        assert_eq!(card.to_pb().name, "Enterprise health, FY27");
        s.measures[3].signal_kind = pb::SignalKind::CsmSentiment as i32;
        let err = Scorecard::from_pb("scorecard", &s).unwrap_err();
        assert!(
            matches!(err, ApiError::InvalidArgument { ref violations } if violations[0].field == "scorecard.measures[3].signal_kind")
        );
    }

    #[test]
    fn weights_are_normalised() {
        let mut card = Scorecard::built_in();
        for m in &mut card.measures {
            m.weight *= Decimal::from(7);
        }
        let signals = vec![
            point(SignalKind::Usage, 85, Some(100), 1),
            point(SignalKind::Nps, 6, None, 10),
        ];
        assert_eq!(
            compute(&card, &signals, Utc::now()).score,
            Some(Decimal::from_str_exact("86.15").unwrap())
        );
    }

    #[test]
    fn wire_validation_names_fields() {
        let mut s = Scorecard::built_in().to_pb();
        assert_eq!(
            Scorecard::from_pb("scorecard", &s).unwrap().measures.len(),
            6
        );
        s.measures[1].weight = "-1".into();
        let err = Scorecard::from_pb("scorecard", &s).unwrap_err();
        assert!(
            matches!(err, ApiError::InvalidArgument { ref violations } if violations[0].field == "scorecard.measures[1].weight")
        );
        let mut s = Scorecard::built_in().to_pb();
        s.bands[2].upper = 90;
        let err = Scorecard::from_pb("scorecard", &s).unwrap_err();
        assert!(
            matches!(err, ApiError::InvalidArgument { ref violations } if violations[0].field == "scorecard.bands")
        );
    }
}
