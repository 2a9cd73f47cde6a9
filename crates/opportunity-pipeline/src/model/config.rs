//! The pipeline's tunable rules: stage probabilities, how long a deal may sit
//! in a stage, the QUALIFIED thresholds, routing thresholds and the handoff
//! SLA. Set per deployment (flags/env of `expansion serve`); the defaults are
//! the seeds' numbers.

use std::collections::BTreeMap;

use std::fmt;

use domain::{Currency, Decimal, Percent, Stage};

/// Everything the pipeline's rules can be tuned by.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// Win probability of each stage unless an opportunity overrides it.
    pub stage_probability: BTreeMap<Stage, Percent>,
    /// Days an open opportunity may stay in a stage before it counts as stalled.
    pub max_days_in_stage: BTreeMap<Stage, i64>,
    /// Smallest amount that may be QUALIFIED, per currency.
    pub min_deal_size: MoneyLimit,
    /// Relationship strength (0–10) needed for QUALIFIED.
    pub relationship_threshold: i32,
    /// Largest self-serve capacity upsell routed PRODUCT_LED, per currency.
    pub product_led_max: MoneyLimit,
    /// Deals below this may be CSM_LED, per currency.
    pub csm_led_below: MoneyLimit,
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
            min_deal_size: MoneyLimit::usd(25_000),
            relationship_threshold: 7,
            product_led_max: MoneyLimit::usd(5_000),
            // Seed 000: CS can handle deals "below $10K".
            csm_led_below: MoneyLimit::usd(10_000),
            handoff_sla_hours: 48,
        }
    }
}

/// An amount threshold per currency: a 25,000 JPY deal is not a 25,000 USD deal, so a
/// limit holds only in the currencies it names (major units of each).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MoneyLimit(BTreeMap<&'static str, Decimal>);

impl MoneyLimit {
    /// A limit in US dollars only.
    pub fn usd(amount: i64) -> MoneyLimit {
        MoneyLimit(BTreeMap::from([(
            Currency::USD.code(),
            Decimal::from(amount),
        )]))
    }

    /// The limit in `currency`, if one is set.
    pub fn get(&self, currency: Currency) -> Option<Decimal> {
        self.0.get(currency.code()).copied()
    }

    /// Parses `USD=25000,EUR=23000,BRL=125000`; a bare amount (`25000`) is US dollars,
    /// as the flags always read. Amounts must not be negative.
    pub fn parse(text: &str) -> Result<MoneyLimit, String> {
        let mut limits = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (code, amount) = part.split_once('=').unwrap_or(("USD", part));
            let currency = Currency::parse(code.trim()).map_err(|e| e.to_string())?;
            let amount: Decimal = amount
                .trim()
                .parse()
                .map_err(|_| format!("{amount:?} is not a decimal amount"))?;
            if amount.is_sign_negative() {
                return Err(format!("{part:?}: an amount must not be negative"));
            }
            if limits.insert(currency.code(), amount).is_some() {
                return Err(format!("{} is given twice", currency.code()));
            }
        }
        Ok(MoneyLimit(limits))
    }
}

impl fmt::Display for MoneyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(c, a)| format!("{c}={a}")).collect();
        f.write_str(&parts.join(","))
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
    #[test]
    fn money_limits_hold_in_their_own_currency() {
        let limits = MoneyLimit::parse("USD=25000, JPY=3500000,BRL=125000.50").unwrap();
        assert_eq!(limits.get(Currency::USD), Some(Decimal::from(25_000)));
        assert_eq!(limits.get(Currency::JPY), Some(Decimal::from(3_500_000)));
        assert_eq!(limits.get(Currency::EUR), None);
        assert_eq!(limits.to_string(), "BRL=125000.50,JPY=3500000,USD=25000");
        assert_eq!(MoneyLimit::parse("1000").unwrap(), MoneyLimit::usd(1000));
        assert!(MoneyLimit::parse("USD=-1").is_err());
        assert!(MoneyLimit::parse("XYZ=10").is_err());
        assert!(MoneyLimit::parse("USD=1,USD=2").is_err());
    }

    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        let c = PipelineConfig::default();
        assert_eq!(c.probability(Stage::Qualified), Percent::from_whole(40));
        assert_eq!(c.probability(Stage::ClosedWon), Percent::from_whole(100));
        assert_eq!(c.relationship_threshold, 7);
        assert_eq!(
            c.csm_led_below.get(Currency::USD),
            Some(Decimal::from(10_000))
        );
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
