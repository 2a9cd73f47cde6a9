//! Routing (seed 000): who should work a deal. Small self-serve capacity
//! upsells go PRODUCT_LED; small, simple deals with the same buyer, no
//! competitive displacement and no custom terms stay with the CSM; the rest
//! need Sales.

use domain::{Money, Motion};

use super::config::PipelineConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    ProductLed,
    CsmLed,
    SalesLed,
}

/// The facts routing looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingFacts {
    pub amount: Money,
    pub motion: Motion,
    pub self_serve: bool,
    pub same_buyer: bool,
    pub simple_deal: bool,
    pub competitive_displacement: bool,
    pub custom_terms: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingDecision {
    pub route: Route,
    pub reasons: Vec<String>,
}

/// Decides the route and says why.
pub fn route_opportunity(facts: &RoutingFacts, config: &PipelineConfig) -> RoutingDecision {
    let amount = facts.amount.amount();
    let currency = facts.amount.currency();
    if let Some(limit) = config.product_led_max.get(currency)
        && facts.motion == Motion::UpsellCapacity
        && facts.self_serve
        && amount <= limit
    {
        return RoutingDecision {
            route: Route::ProductLed,
            reasons: vec![format!(
                "self-serve capacity upsell of {} is at most the product-led limit of {currency} {limit}",
                facts.amount
            )],
        };
    }
    // Every reason Sales is needed, so the CSM sees all of them at once.
    let mut needs_sales = Vec::new();
    let csm_limit = config.csm_led_below.get(currency);
    match csm_limit {
        Some(limit) if amount >= limit => needs_sales.push(format!(
            "deal size {} is not under the CSM-led limit of {currency} {limit}",
            facts.amount
        )),
        Some(_) => {}
        None => needs_sales.push(format!(
            "no CSM-led limit is configured for {currency} (only {})",
            config.csm_led_below
        )),
    }
    if !facts.same_buyer {
        needs_sales.push("different buyer than the existing product".to_owned());
    }
    if !facts.simple_deal {
        needs_sales.push("not a simple deal (complex approval or implementation)".to_owned());
    }
    if facts.competitive_displacement {
        needs_sales.push("requires competitive displacement".to_owned());
    }
    if facts.custom_terms {
        needs_sales.push("needs custom pricing or terms".to_owned());
    }
    if needs_sales.is_empty() {
        RoutingDecision {
            route: Route::CsmLed,
            reasons: vec![format!(
                "deal size {} is under {currency} {}, same buyer, simple, no competitive displacement, no custom terms",
                facts.amount,
                csm_limit.unwrap_or_default()
            )],
        }
    } else {
        RoutingDecision {
            route: Route::SalesLed,
            reasons: needs_sales,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn facts(amount: &str, motion: Motion) -> RoutingFacts {
        RoutingFacts {
            amount: Money::parse("USD", amount).unwrap(),
            motion,
            self_serve: false,
            same_buyer: true,
            simple_deal: true,
            competitive_displacement: false,
            custom_terms: false,
        }
    }

    #[test]
    fn small_self_serve_capacity_upsell_is_product_led() {
        let c = PipelineConfig::default();
        let mut f = facts("4999.99", Motion::UpsellCapacity);
        f.self_serve = true;
        assert_eq!(route_opportunity(&f, &c).route, Route::ProductLed);
        f.amount = Money::parse("USD", "5000.01").unwrap();
        // Above the product-led limit but still under $10K and simple: CSM.
        assert_eq!(route_opportunity(&f, &c).route, Route::CsmLed);
    }

    #[test]
    fn seed_cs_handles_deals_below_10k_with_the_same_buyer() {
        let c = PipelineConfig::default();
        let d = route_opportunity(&facts("9999.99", Motion::CrossSellAdjacent), &c);
        assert_eq!(d.route, Route::CsmLed);
        let d = route_opportunity(&facts("10000", Motion::CrossSellAdjacent), &c);
        assert_eq!(d.route, Route::SalesLed);
        assert_eq!(d.reasons.len(), 1);
    }

    #[test]
    fn seed_sales_for_other_buyer_displacement_or_custom_terms_lists_every_reason() {
        let c = PipelineConfig::default();
        let mut f = facts("50000", Motion::CrossSellPlatform);
        f.same_buyer = false;
        f.simple_deal = false;
        f.competitive_displacement = true;
        f.custom_terms = true;
        let d = route_opportunity(&f, &c);
        assert_eq!(d.route, Route::SalesLed);
        assert_eq!(d.reasons.len(), 5, "{:?}", d.reasons);
        let mut f = facts("500", Motion::UpsellTier);
        f.custom_terms = true;
        assert_eq!(route_opportunity(&f, &c).route, Route::SalesLed);
    }

    #[test]
    fn routing_limits_hold_only_in_their_currency() {
        let c = PipelineConfig::default();
        // A 4,000 JPY self-serve capacity upsell is not under a 5,000 USD limit: with no
        // JPY limits configured it is neither product-led nor CSM-led.
        let mut f = facts("4000", Motion::UpsellCapacity);
        f.amount = Money::parse("JPY", "4000").unwrap();
        f.self_serve = true;
        let d = route_opportunity(&f, &c);
        assert_eq!(d.route, Route::SalesLed);
        assert!(
            d.reasons[0].contains("no CSM-led limit is configured for JPY"),
            "{d:?}"
        );
        let c = PipelineConfig {
            product_led_max: crate::model::config::MoneyLimit::parse("JPY=750000").unwrap(),
            ..PipelineConfig::default()
        };
        assert_eq!(route_opportunity(&f, &c).route, Route::ProductLed);
    }

    #[test]
    fn thresholds_are_configurable() {
        let c = PipelineConfig {
            csm_led_below: crate::model::config::MoneyLimit::usd(20_000),
            ..PipelineConfig::default()
        };
        assert_eq!(
            route_opportunity(&facts("15000", Motion::UpsellTier), &c).route,
            Route::CsmLed
        );
    }
}
