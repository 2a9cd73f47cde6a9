//! A won upsell booked as an amendment (SPEC §3 "Closing won"): which subscription it
//! grows, to what MRR and tier. Pure: the store loads the account's subscriptions of the
//! product and writes what [`plan_upsell`] returns.

use chrono::NaiveDate;
use contracts::ApiError;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::{AccountId, Money, OpportunityId, ProductId, SubscriptionId};

use super::subscription::mrr_on;

/// A validated `ApplyUpsell`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpsellInput {
    pub opportunity_id: OpportunityId,
    pub account_id: AccountId,
    pub product_id: ProductId,
    pub subscription_id: Option<SubscriptionId>,
    pub mrr_increase: Money,
    pub effective_date: NaiveDate,
    pub next_tier: bool,
}

impl UpsellInput {
    pub fn from_request(req: &pb::ApplyUpsellRequest) -> Result<Self, ApiError> {
        let subscription_id = if req.subscription_id.is_empty() {
            None
        } else {
            Some(
                SubscriptionId::parse(&req.subscription_id)
                    .map_err(|e| ApiError::invalid("subscription_id", e))?,
            )
        };
        let mrr_increase = wire::money("mrr_increase", req.mrr_increase.as_ref())?;
        if mrr_increase.is_negative() {
            return Err(ApiError::invalid(
                "mrr_increase.amount",
                "an upsell cannot lower the MRR",
            ));
        }
        Ok(Self {
            opportunity_id: OpportunityId::parse(&req.opportunity_id)
                .map_err(|e| ApiError::invalid("opportunity_id", e))?,
            account_id: AccountId::parse(&req.account_id)
                .map_err(|e| ApiError::invalid("account_id", e))?,
            product_id: ProductId::parse(&req.product_id)
                .map_err(|e| ApiError::invalid("product_id", e))?,
            subscription_id,
            mrr_increase,
            effective_date: wire::date("effective_date", &req.effective_date)?,
            next_tier: req.next_tier,
        })
    }
}

/// One of the account's subscriptions of the product, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub subscription_id: String,
    pub currency: String,
    pub tier: Option<String>,
    pub start_date: NaiveDate,
    /// Set only when the subscription is cancelled.
    pub cancel_date: Option<NaiveDate>,
    pub amendments: Vec<(NaiveDate, i64)>,
}

impl Candidate {
    fn in_force_on(&self, date: NaiveDate) -> bool {
        self.start_date <= date && self.cancel_date.is_none_or(|cancel| cancel > date)
    }
}

/// What to write for an upsell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsellPlan {
    pub subscription_id: String,
    /// The MRR from the effective date: the MRR in force then plus the increase.
    pub mrr_minor: i64,
    /// The tier after the upsell (changed only by a tier upsell with a next tier).
    pub tier: Option<String>,
}

/// Why an upsell cannot be booked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpsellRefusal {
    #[error("the account has no subscription of this product in force on {0} to upsell")]
    NoneInForce(NaiveDate),
    #[error("subscription {0} is not in force on {1}: an upsell cannot grow it")]
    NotInForce(String, NaiveDate),
    #[error("subscription {0} is billed in {1}, the upsell is in {2}")]
    Currency(String, String, String),
}

/// The subscription a won upsell grows and its new MRR and tier: the named one, or the
/// earliest started of the product's subscriptions in force on the effective date; it
/// must be in force then and billed in the deal's currency. MRR + increase saturates
/// rather than overflow. `tiers` is the product's ladder, lowest first.
pub fn plan_upsell(
    candidates: &[Candidate],
    input: &UpsellInput,
    tiers: &[String],
) -> Result<UpsellPlan, UpsellRefusal> {
    let on = input.effective_date;
    let chosen = match input.subscription_id.map(|id| id.to_string()) {
        Some(id) => candidates
            .iter()
            .find(|c| c.subscription_id == id)
            .filter(|c| c.in_force_on(on))
            .ok_or(UpsellRefusal::NotInForce(id, on))?,
        None => candidates
            .iter()
            .filter(|c| c.in_force_on(on))
            .min_by(|a, b| {
                (a.start_date, &a.subscription_id).cmp(&(b.start_date, &b.subscription_id))
            })
            .ok_or(UpsellRefusal::NoneInForce(on))?,
    };
    let currency = input.mrr_increase.currency().code();
    if chosen.currency != currency {
        return Err(UpsellRefusal::Currency(
            chosen.subscription_id.clone(),
            chosen.currency.clone(),
            currency.to_owned(),
        ));
    }
    let current = mrr_on(&chosen.amendments, on).unwrap_or(0);
    let tier = if input.next_tier {
        next_tier(tiers, chosen.tier.as_deref()).or_else(|| chosen.tier.clone())
    } else {
        chosen.tier.clone()
    };
    Ok(UpsellPlan {
        subscription_id: chosen.subscription_id.clone(),
        mrr_minor: current.saturating_add(input.mrr_increase.minor()),
        tier,
    })
}

/// The tier above `current` on the ladder (the lowest when none is set); `None` at the top
/// or when the product has no tiers.
pub fn next_tier(tiers: &[String], current: Option<&str>) -> Option<String> {
    match current.and_then(|t| tiers.iter().position(|x| x == t)) {
        Some(index) => tiers.get(index + 1).cloned(),
        None if current.is_none() => tiers.get(1).cloned(),
        None => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use domain::Currency;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn candidate(id: &str, start: &str, cancel: Option<&str>, mrr: i64) -> Candidate {
        Candidate {
            subscription_id: id.into(),
            currency: "USD".into(),
            tier: Some("STARTER".into()),
            start_date: date(start),
            cancel_date: cancel.map(date),
            amendments: vec![(date(start), mrr)],
        }
    }

    fn input(annual_over_12: i64, on: &str, next_tier: bool) -> UpsellInput {
        UpsellInput {
            opportunity_id: OpportunityId::new(),
            account_id: AccountId::new(),
            product_id: ProductId::new(),
            subscription_id: None,
            mrr_increase: Money::from_minor(Currency::USD, annual_over_12),
            effective_date: date(on),
            next_tier,
        }
    }

    fn ladder() -> Vec<String> {
        ["STARTER", "PROFESSIONAL", "ENTERPRISE"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn a_60k_upsell_adds_5000_a_month_to_the_subscription_in_force() {
        // $2,500 MRR + $60,000 / 12 = $7,500 from the close date, one tier up.
        let subs = [candidate("s1", "2025-02-01", None, 250_000)];
        let plan = plan_upsell(&subs, &input(500_000, "2026-06-30", true), &ladder());
        assert_eq!(
            plan.unwrap(),
            UpsellPlan {
                subscription_id: "s1".into(),
                mrr_minor: 750_000,
                tier: Some("PROFESSIONAL".into()),
            }
        );
    }

    #[test]
    fn the_mrr_grown_is_the_one_in_force_on_the_close_date() {
        let mut sub = candidate("s1", "2025-02-01", None, 100_000);
        sub.amendments.push((date("2026-07-01"), 400_000));
        let plan = plan_upsell(&[sub], &input(10_000, "2026-06-30", false), &ladder());
        let plan = plan.unwrap();
        assert_eq!(plan.mrr_minor, 110_000);
        assert_eq!(
            plan.tier,
            Some("STARTER".into()),
            "a capacity upsell keeps the tier"
        );
    }

    #[test]
    fn a_cancelled_or_future_subscription_cannot_be_upsold() {
        let gone = SubscriptionId::new();
        let subs = [
            candidate(&gone.to_string(), "2025-01-01", Some("2026-06-30"), 100),
            candidate("later", "2026-07-01", None, 100),
        ];
        assert_eq!(
            plan_upsell(&subs, &input(10, "2026-06-30", false), &ladder()),
            Err(UpsellRefusal::NoneInForce(date("2026-06-30")))
        );
        let mut named = input(10, "2026-06-30", false);
        named.subscription_id = Some(gone);
        assert_eq!(
            plan_upsell(&subs, &named, &ladder()),
            Err(UpsellRefusal::NotInForce(
                gone.to_string(),
                date("2026-06-30")
            ))
        );
    }

    #[test]
    fn of_several_the_earliest_started_unless_one_is_named() {
        let b = SubscriptionId::new();
        let subs = [
            candidate(&b.to_string(), "2025-05-01", None, 100),
            candidate("a", "2025-03-01", None, 200),
        ];
        let mut on = input(1, "2026-01-10", false);
        assert_eq!(
            plan_upsell(&subs, &on, &ladder()).unwrap().subscription_id,
            "a"
        );
        on.subscription_id = Some(b);
        assert_eq!(plan_upsell(&subs, &on, &ladder()).unwrap().mrr_minor, 101);
    }

    #[test]
    fn the_deal_must_be_in_the_subscription_currency() {
        let mut sub = candidate("s1", "2025-02-01", None, 100);
        sub.currency = "BRL".into();
        assert!(matches!(
            plan_upsell(&[sub], &input(1, "2026-01-10", false), &ladder()),
            Err(UpsellRefusal::Currency(..))
        ));
    }

    #[test]
    fn the_tier_ladder() {
        let tiers = ladder();
        assert_eq!(
            next_tier(&tiers, Some("STARTER")),
            Some("PROFESSIONAL".into())
        );
        assert_eq!(next_tier(&tiers, Some("ENTERPRISE")), None);
        assert_eq!(next_tier(&tiers, Some("LEGACY")), None);
        assert_eq!(next_tier(&[], Some("STARTER")), None);
    }
}
