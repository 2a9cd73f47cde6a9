//! Stage gates (seed 000: "product A success is non-negotiable"; seed 001's
//! qualification criteria). Pure: the health facts come in as a
//! [`HealthView`] fetched by the caller, and every unmet condition comes back,
//! so one refusal lists all of them.

use contracts::PreconditionViolation;
use domain::{HealthBand, Money, Motion, Stage};

use super::config::PipelineConfig;
use super::{Qualification, Stakeholder};

/// What the health service says about an account, as the gates need it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthView {
    /// `None` when the health service has no score for the account.
    pub account_band: Option<HealthBand>,
    pub account_score: Option<String>,
    pub products: Vec<ProductHealth>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProductHealth {
    pub product_id: String,
    pub band: Option<HealthBand>,
    pub score: Option<String>,
}

impl HealthView {
    pub fn product_band(&self, product_id: &str) -> Option<HealthBand> {
        self.products
            .iter()
            .find(|p| p.product_id == product_id)
            .and_then(|p| p.band)
    }
}

/// The opportunity facts the gates read.
#[derive(Debug, Clone, Copy)]
pub struct GateFacts<'a> {
    pub opportunity_id: &'a str,
    pub account_id: &'a str,
    pub motion: Motion,
    pub source_product_id: Option<&'a str>,
    pub amount: Money,
    pub qualification: &'a Qualification,
    pub stakeholders: &'a [Stakeholder],
}

fn violation(kind: &str, subject: &str, description: String) -> PreconditionViolation {
    PreconditionViolation {
        kind: kind.to_owned(),
        subject: subject.to_owned(),
        description,
    }
}

/// Whether a move asks the health service: every forward move past
/// IDENTIFIED. Stepping back, losing, and closing a won deal are never blocked
/// by health (a signed contract is recorded even if the account turned RED).
pub fn needs_health_gate(from: Stage, to: Stage) -> bool {
    to.is_open() && to.order() > from.order() && to != Stage::Identified
}

/// Whether a move must pass the QUALIFIED criteria.
pub fn needs_qualification_gate(from: Stage, to: Stage) -> bool {
    to == Stage::Qualified && from.order() < to.order()
}

/// The health gates: the account is not RED (and its health is known), and a
/// cross-sell grows from a GREEN product. These may be overridden with a reason.
pub fn health_violations(facts: &GateFacts<'_>, health: &HealthView) -> Vec<PreconditionViolation> {
    let mut out = Vec::new();
    match health.account_band {
        Some(HealthBand::Red) => out.push(violation(
            "ACCOUNT_HEALTH",
            facts.account_id,
            format!(
                "account {} is RED: fix the current product before selling more",
                facts.account_id
            ),
        )),
        Some(_) => {}
        None => out.push(violation(
            "ACCOUNT_HEALTH_UNKNOWN",
            facts.account_id,
            format!(
                "the health service has no score for account {}, so it cannot be shown not to be RED",
                facts.account_id
            ),
        )),
    }
    if facts.motion.is_cross_sell() {
        match facts.source_product_id {
            None => out.push(violation(
                "SOURCE_PRODUCT",
                facts.opportunity_id,
                "a cross-sell needs source_product_id: the GREEN product the account grows from"
                    .to_owned(),
            )),
            Some(product) => match health.product_band(product) {
                Some(HealthBand::Green) => {}
                Some(band) => out.push(violation(
                    "SOURCE_PRODUCT_HEALTH",
                    product,
                    format!("source product {product} is {band}; a cross-sell grows from a GREEN product"),
                )),
                None => out.push(violation(
                    "SOURCE_PRODUCT_HEALTH",
                    product,
                    format!(
                        "the health service has no score for source product {product}; a cross-sell grows from a GREEN product"
                    ),
                )),
            },
        }
    }
    out
}

/// Seed 001's qualification criteria for moving to QUALIFIED. Not overridable.
pub fn qualification_violations(
    facts: &GateFacts<'_>,
    config: &PipelineConfig,
) -> Vec<PreconditionViolation> {
    let q = facts.qualification;
    let id = facts.opportunity_id;
    let mut out = Vec::new();
    if !q.need_confirmed {
        out.push(violation(
            "NEED_CONFIRMED",
            id,
            "the customer has not confirmed the need".to_owned(),
        ));
    }
    if !q.budget_known() {
        out.push(violation(
            "BUDGET_STATUS",
            id,
            "budget status is not known (set qualification.budget_status)".to_owned(),
        ));
    }
    if !q.decision_process_known {
        out.push(violation(
            "DECISION_PROCESS",
            id,
            "the decision process is not known".to_owned(),
        ));
    }
    if !facts.stakeholders.iter().any(|s| s.decision_maker) {
        out.push(violation(
            "DECISION_MAKER",
            id,
            "no stakeholder is a decision maker".to_owned(),
        ));
    }
    if q.relationship_strength < config.relationship_threshold {
        out.push(violation(
            "RELATIONSHIP_STRENGTH",
            id,
            format!(
                "relationship strength {} is below the threshold of {}",
                q.relationship_strength, config.relationship_threshold
            ),
        ));
    }
    let currency = facts.amount.currency();
    match config.min_deal_size.get(currency) {
        Some(minimum) if facts.amount.amount() < minimum => out.push(violation(
            "MIN_DEAL_SIZE",
            id,
            format!(
                "amount {} is below the minimum deal size of {currency} {minimum}",
                facts.amount
            ),
        )),
        Some(_) => {}
        None => out.push(violation(
            "MIN_DEAL_SIZE",
            id,
            format!(
                "no minimum deal size is configured for {currency} (only {}): set --min-deal-size {currency}=AMOUNT",
                config.min_deal_size
            ),
        )),
    }
    out
}

/// What a stage move's gates decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GateOutcome {
    /// Health conditions that failed but were overridden (to be recorded).
    pub overridden: Vec<PreconditionViolation>,
}

/// Combines the gates of a move. `health` is `None` when the move does not
/// need it or the health service could not answer (then `health_gap` says
/// why and only an override lets the move through). Returns every blocking
/// violation on refusal.
pub fn check_gates(
    from: Stage,
    to: Stage,
    facts: &GateFacts<'_>,
    health: Result<Option<&HealthView>, &str>,
    override_reason: Option<&str>,
    config: &PipelineConfig,
) -> Result<GateOutcome, Vec<PreconditionViolation>> {
    let mut blocking = Vec::new();
    let mut overridden = Vec::new();
    if needs_health_gate(from, to) {
        let health_failures = match health {
            Ok(Some(view)) => health_violations(facts, view),
            Ok(None) => Vec::new(),
            Err(gap) => vec![violation(
                "HEALTH_UNAVAILABLE",
                facts.account_id,
                format!("account health could not be checked: {gap}"),
            )],
        };
        if override_reason.is_some() {
            overridden = health_failures;
        } else {
            blocking.extend(health_failures);
        }
    }
    if needs_qualification_gate(from, to) {
        blocking.extend(qualification_violations(facts, config));
    }
    if blocking.is_empty() {
        Ok(GateOutcome { overridden })
    } else {
        Err(blocking)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kinds(v: &[PreconditionViolation]) -> Vec<&str> {
        v.iter().map(|v| v.kind.as_str()).collect()
    }

    fn green(product: &str) -> HealthView {
        HealthView {
            account_band: Some(HealthBand::Green),
            account_score: Some("82".into()),
            products: vec![ProductHealth {
                product_id: product.into(),
                band: Some(HealthBand::Green),
                score: Some("90".into()),
            }],
        }
    }

    fn qualified() -> Qualification {
        Qualification {
            need_confirmed: true,
            budget_status: "BUDGET_STATUS_ALLOCATED".into(),
            decision_process_known: true,
            relationship_strength: 8,
            ..Default::default()
        }
    }

    fn decision_maker() -> Vec<Stakeholder> {
        vec![Stakeholder {
            name: "Dana".into(),
            title: "CFO".into(),
            role: "economic buyer".into(),
            budget_holder: true,
            decision_maker: true,
            email: String::new(),
        }]
    }

    fn facts<'a>(
        q: &'a Qualification,
        s: &'a [Stakeholder],
        motion: Motion,
        source: Option<&'a str>,
        amount: &str,
    ) -> GateFacts<'a> {
        GateFacts {
            opportunity_id: "opp",
            account_id: "acct",
            motion,
            source_product_id: source,
            amount: Money::parse("USD", amount).unwrap(),
            qualification: q,
            stakeholders: s,
        }
    }

    #[test]
    fn which_moves_are_gated() {
        use Stage::*;
        assert!(needs_health_gate(Identified, Exploring));
        assert!(needs_health_gate(Qualified, Proposed));
        assert!(!needs_health_gate(Exploring, Identified));
        assert!(!needs_health_gate(Negotiating, ClosedLost));
        assert!(!needs_health_gate(Negotiating, ClosedWon));
        assert!(needs_qualification_gate(Exploring, Qualified));
        assert!(!needs_qualification_gate(Proposed, Qualified));
    }

    #[test]
    fn qualified_gate_lists_every_unmet_condition() {
        let q = Qualification::default();
        let f = facts(&q, &[], Motion::UpsellTier, None, "20000");
        let v = qualification_violations(&f, &PipelineConfig::default());
        assert_eq!(
            kinds(&v),
            [
                "NEED_CONFIRMED",
                "BUDGET_STATUS",
                "DECISION_PROCESS",
                "DECISION_MAKER",
                "RELATIONSHIP_STRENGTH",
                "MIN_DEAL_SIZE"
            ]
        );
        let q = qualified();
        let s = decision_maker();
        let f = facts(&q, &s, Motion::UpsellTier, None, "25000");
        assert!(qualification_violations(&f, &PipelineConfig::default()).is_empty());
    }

    #[test]
    fn the_minimum_deal_size_is_per_currency() {
        let q = qualified();
        let s = decision_maker();
        let mut f = facts(&q, &s, Motion::UpsellTier, None, "25000");
        // 25,000 JPY is about $160: not a 25,000 USD deal.
        f.amount = Money::parse("JPY", "25000").unwrap();
        let v = qualification_violations(&f, &PipelineConfig::default());
        assert_eq!(kinds(&v), ["MIN_DEAL_SIZE"]);
        assert!(
            v[0].description
                .contains("no minimum deal size is configured for JPY")
        );
        let config = PipelineConfig {
            min_deal_size: crate::model::config::MoneyLimit::parse("USD=25000,JPY=3500000")
                .unwrap(),
            ..PipelineConfig::default()
        };
        assert_eq!(
            kinds(&qualification_violations(&f, &config)),
            ["MIN_DEAL_SIZE"]
        );
        f.amount = Money::parse("JPY", "3500000").unwrap();
        assert!(qualification_violations(&f, &config).is_empty());
    }

    #[test]
    fn budget_unknown_is_not_known_and_seven_is_enough() {
        let mut q = qualified();
        q.budget_status = "BUDGET_STATUS_UNKNOWN".into();
        q.relationship_strength = 7;
        let s = decision_maker();
        let f = facts(&q, &s, Motion::UpsellTier, None, "500000");
        assert_eq!(
            kinds(&qualification_violations(&f, &PipelineConfig::default())),
            ["BUDGET_STATUS"]
        );
    }

    #[test]
    fn red_account_and_non_green_source_both_listed() {
        let q = qualified();
        let s = decision_maker();
        let mut view = green("p1");
        view.account_band = Some(HealthBand::Red);
        view.products[0].band = Some(HealthBand::Yellow);
        let f = facts(&q, &s, Motion::CrossSellAdjacent, Some("p1"), "50000");
        assert_eq!(
            kinds(&health_violations(&f, &view)),
            ["ACCOUNT_HEALTH", "SOURCE_PRODUCT_HEALTH"]
        );
        let f = facts(&q, &s, Motion::CrossSellAdjacent, None, "50000");
        assert_eq!(
            kinds(&health_violations(&f, &green("p1"))),
            ["SOURCE_PRODUCT"]
        );
        // Upsells need no source product.
        let f = facts(&q, &s, Motion::UpsellTier, None, "50000");
        assert!(health_violations(&f, &green("p1")).is_empty());
        // Unknown health is not "not RED".
        let f = facts(&q, &s, Motion::UpsellTier, None, "50000");
        assert_eq!(
            kinds(&health_violations(&f, &HealthView::default())),
            ["ACCOUNT_HEALTH_UNKNOWN"]
        );
    }

    #[test]
    fn overrides_cover_health_but_never_qualification() {
        let c = PipelineConfig::default();
        let q = Qualification::default();
        let mut view = green("p1");
        view.account_band = Some(HealthBand::Red);
        let f = facts(&q, &[], Motion::UpsellTier, None, "50000");
        // Refused: health and qualification together.
        let err = check_gates(
            Stage::Exploring,
            Stage::Qualified,
            &f,
            Ok(Some(&view)),
            None,
            &c,
        )
        .unwrap_err();
        assert_eq!(err.len(), 6);
        assert_eq!(err[0].kind, "ACCOUNT_HEALTH");
        // Overridden: the health part goes, the qualification part stays.
        let err = check_gates(
            Stage::Exploring,
            Stage::Qualified,
            &f,
            Ok(Some(&view)),
            Some("exec sponsor"),
            &c,
        )
        .unwrap_err();
        assert_eq!(err.len(), 5);
        assert!(err.iter().all(|v| v.kind != "ACCOUNT_HEALTH"));
        // Past IDENTIFIED with an override: allowed and the override recorded.
        let ok = check_gates(
            Stage::Identified,
            Stage::Exploring,
            &f,
            Ok(Some(&view)),
            Some("exec sponsor"),
            &c,
        )
        .unwrap();
        assert_eq!(kinds(&ok.overridden), ["ACCOUNT_HEALTH"]);
        // Health unreachable: refused unless overridden.
        let err = check_gates(
            Stage::Identified,
            Stage::Exploring,
            &f,
            Err("down"),
            None,
            &c,
        )
        .unwrap_err();
        assert_eq!(kinds(&err), ["HEALTH_UNAVAILABLE"]);
        // Backward moves are never gated.
        assert!(check_gates(Stage::Exploring, Stage::Identified, &f, Ok(None), None, &c).is_ok());
    }
}
