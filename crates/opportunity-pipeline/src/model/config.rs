//! The pipeline's tunable rules: stage probabilities, how long a deal may sit
//! in a stage, the QUALIFIED thresholds, routing thresholds and the handoff
//! SLA. Set per deployment (flags/env of `expansion serve`); the defaults are
//! the seeds' numbers.

use std::collections::BTreeMap;

use domain::{Decimal, Percent, Stage};

/// Everything the pipeline's rules can be tuned by.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// Win probability of each stage unless an opportunity overrides it.
    pub stage_probability: BTreeMap<Stage, Percent>,
    /// Days an open opportunity may stay in a stage before it counts as stalled.
    pub max_days_in_stage: BTreeMap<Stage, i64>,
    /// Smallest amount (major units of the deal's currency) that may be QUALIFIED.
    pub min_deal_size: Decimal,
    /// Relationship strength (0–10) needed for QUALIFIED.
    pub relationship_threshold: i32,
    /// Largest self-serve capacity upsell routed PRODUCT_LED (major units).
    pub product_led_max: Decimal,
    /// Deals below this (major units) may be CSM_LED.
    pub csm_led_below: Decimal,
    /// Hours a requested handoff may wait before it is overdue.
    pub handoff_sla_hours: i64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            stage_probability: Stage::ALL
                .iter()
                .map(|s| (*s, s.default_probability()))
                .collect(),
            // Early stages move slower than late ones; a negotiation idle for
            // two weeks needs attention.
            max_days_in_stage: [
                (Stage::Identified, 30),
                (Stage::Exploring, 30),
                (Stage::Qualified, 45),
                (Stage::Proposed, 30),
                (Stage::Negotiating, 21),
            ]
            .into_iter()
            .collect(),
            // Seed 001: "perhaps $25K for smaller firms" and "7+ on a 10-point scale".
            min_deal_size: Decimal::from(25_000),
            relationship_threshold: 7,
            product_led_max: Decimal::from(5_000),
            // Seed 000: CS can handle deals "below $10K".
            csm_led_below: Decimal::from(10_000),
            handoff_sla_hours: 48,
        }
    }
}

impl PipelineConfig {
    /// The configured probability of `stage`.
    pub fn probability(&self, stage: Stage) -> Percent {
        self.stage_probability
            .get(&stage)
            .copied()
            .unwrap_or_else(|| stage.default_probability())
    }

    /// Maximum days in `stage`; `None` for closed stages (they never stall).
    pub fn max_days(&self, stage: Stage) -> Option<i64> {
        if stage.is_closed() {
            return None;
        }
        self.max_days_in_stage.get(&stage).copied()
    }
}

/// Parses `STAGE=VALUE,STAGE=VALUE` (e.g. `QUALIFIED=45,NEGOTIATING=14`) into
/// overrides of `base`; stage names as in the API without the `STAGE_` prefix.
pub fn parse_stage_map<T: Copy>(
    text: &str,
    base: &BTreeMap<Stage, T>,
    parse_value: impl Fn(&str) -> Result<T, String>,
) -> Result<BTreeMap<Stage, T>, String> {
    let mut map = base.clone();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (stage, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not STAGE=VALUE"))?;
        let name = stage.trim().trim_start_matches("STAGE_");
        let stage: Stage = name.parse().map_err(|e| format!("{e}"))?;
        map.insert(stage, parse_value(value.trim())?);
    }
    Ok(map)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        let c = PipelineConfig::default();
        assert_eq!(c.probability(Stage::Qualified), Percent::from_whole(40));
        assert_eq!(c.probability(Stage::ClosedWon), Percent::from_whole(100));
        assert_eq!(c.relationship_threshold, 7);
        assert_eq!(c.csm_led_below, Decimal::from(10_000));
        assert_eq!(c.max_days(Stage::ClosedLost), None);
    }

    #[test]
    fn stage_maps_parse() {
        let c = PipelineConfig::default();
        let map = parse_stage_map(
            "QUALIFIED=50, STAGE_PROPOSED=65",
            &c.stage_probability,
            |v| Percent::parse(v).map_err(|e| e.to_string()),
        )
        .unwrap();
        assert_eq!(map[&Stage::Qualified], Percent::from_whole(50));
        assert_eq!(map[&Stage::Proposed], Percent::from_whole(65));
        assert_eq!(map[&Stage::Identified], Percent::from_whole(10));
        assert!(
            parse_stage_map("QUALIFIED", &c.max_days_in_stage, |v| v
                .parse::<i64>()
                .map_err(|e| e.to_string()))
            .is_err()
        );
        assert!(
            parse_stage_map("WON=3", &c.max_days_in_stage, |v| v
                .parse::<i64>()
                .map_err(|e| e.to_string()))
            .is_err()
        );
    }
}
