//! A won upsell booked as an amendment (SPEC §3 "Closing won"): which subscription it
//! grows, to what MRR and tier ([`plan_upsell`]), and what booking it writes
//! ([`plan_upsell_booking`]). Pure: the store loads the account's subscriptions of the
//! product and writes what [`plan_upsell_booking`] returns.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use contracts::ApiError;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::{AccountId, Money, OpportunityId, ProductId, SubscriptionId};

use storage::events::NewEvent;

use super::portfolio::{Amendment, SubscriptionStatus, SubscriptionView, amended};
use super::subscription::mrr_on;
use crate::entity::{subscription, upsell};
use crate::error::HealthError;

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

/// What booking a won upsell writes: the MRR movement, the subscription
/// (updated only when its tier changes), the upsell's own row, the event,
/// and the account to recompute.
#[derive(Debug, Clone, PartialEq)]
pub struct UpsellBooking {
    pub amendment: Amendment,
    /// The subscription as it stands after the upsell, with its MRR history.
    pub view: SubscriptionView,
    pub tier_changed: bool,
    pub upsell: upsell::Model,
    pub event: NewEvent,
    pub dirty_account: String,
}

/// Plans booking `input` on one of `rows` — the account's subscriptions of
/// the product, each with its MRR history in `histories` — by [`plan_upsell`].
pub fn plan_upsell_booking(
    input: &UpsellInput,
    rows: Vec<subscription::Model>,
    mut histories: HashMap<String, Vec<(NaiveDate, i64)>>,
    tiers: &[String],
    principal: &str,
    now: DateTime<Utc>,
) -> Result<UpsellBooking, HealthError> {
    let candidates: Vec<Candidate> = rows
        .iter()
        .map(|r| Candidate {
            subscription_id: r.id.clone(),
            currency: r.currency.clone(),
            tier: r.tier.clone(),
            start_date: r.start_date,
            cancel_date: r
                .cancel_date
                .filter(|_| r.status == SubscriptionStatus::Cancelled),
            amendments: histories.remove(&r.id).unwrap_or_default(),
        })
        .collect();
    let plan = plan_upsell(&candidates, input, tiers)?;
    let (current, history) = rows
        .into_iter()
        .zip(candidates)
        .find(|(r, _)| r.id == plan.subscription_id)
        .ok_or_else(|| HealthError::SubscriptionNotFound(plan.subscription_id.clone()))?;
    let amendment = Amendment {
        subscription_id: plan.subscription_id.clone(),
        effective: input.effective_date,
        mrr_minor: plan.mrr_minor,
    };
    let previous_tier = current.tier.clone();
    let tier_changed = plan.tier != current.tier;
    let mut row = current;
    if tier_changed {
        row.tier = plan.tier.clone();
        row.updated_at = now;
        row.updated_by = principal.to_owned();
    }
    let upsell = upsell::Model {
        opportunity_id: input.opportunity_id.to_string(),
        subscription_id: row.id.clone(),
        effective_date: input.effective_date,
        mrr_increase_minor: input.mrr_increase.minor(),
        created_at: now,
        created_by: principal.to_owned(),
    };
    let mrr = Money::from_minor(input.mrr_increase.currency(), plan.mrr_minor);
    let event = NewEvent {
        event_type: "health.subscription.upsold".into(),
        subject_id: row.id.clone(),
        data: serde_json::json!({
            "subscription_id": row.id,
            "account_id": input.account_id.to_string(),
            "product_id": row.product_id,
            "opportunity_id": upsell.opportunity_id,
            "effective_date": input.effective_date.to_string(),
            "mrr_increase": input.mrr_increase.to_amount_string(),
            "mrr": mrr.to_amount_string(),
            "currency_code": row.currency,
            "previous_tier": previous_tier,
            "tier": row.tier,
            "principal": principal,
        }),
    };
    Ok(UpsellBooking {
        view: SubscriptionView {
            amendments: amended(&history.amendments, &amendment),
            row,
        },
        amendment,
        tier_changed,
        upsell,
        event,
        dirty_account: input.account_id.to_string(),
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

    fn stored(id: &str, mrr: i64) -> (subscription::Model, Vec<(NaiveDate, i64)>) {
        let at = chrono::DateTime::<Utc>::from_timestamp(1_760_000_000, 0).unwrap();
        let row = subscription::Model {
            id: id.into(),
            account_id: "a1".into(),
            product_id: "p1".into(),
            tier: Some("STARTER".into()),
            currency: "USD".into(),
            start_date: date("2025-02-01"),
            end_date: None,
            quantity: 1,
            quota_limit: 0,
            status: SubscriptionStatus::Active,
            cancel_date: None,
            cancel_reason: None,
            source_opportunity_id: None,
            external_system: None,
            external_id: None,
            created_at: at,
            created_by: "revops".into(),
            updated_at: at,
            updated_by: "revops".into(),
        };
        (row, vec![(date("2025-02-01"), mrr)])
    }

    fn book(on: &str, increase: i64, next_tier: bool) -> UpsellBooking {
        let (row, history) = stored("s1", 250_000);
        let histories = HashMap::from([(row.id.clone(), history)]);
        let input = input(increase, on, next_tier);
        plan_upsell_booking(&input, vec![row], histories, &ladder(), "ae", Utc::now()).unwrap()
    }

    #[test]
    fn an_upsell_raises_the_mrr_by_exactly_the_increase_in_one_movement() {
        let booking = book("2026-06-30", 500_000, false);
        assert_eq!(
            booking.amendment,
            Amendment {
                subscription_id: "s1".into(),
                effective: date("2026-06-30"),
                mrr_minor: 750_000,
            }
        );
        assert_eq!(
            booking.view.amendments,
            [(date("2025-02-01"), 250_000), (date("2026-06-30"), 750_000)]
        );
        assert_eq!(booking.upsell.mrr_increase_minor, 500_000);
        assert_eq!(booking.upsell.subscription_id, "s1");
        assert!(!booking.tier_changed, "a capacity upsell leaves the row");
        assert_eq!(booking.view.row.updated_by, "revops");
        assert_eq!(booking.event.event_type, "health.subscription.upsold");
        assert_eq!(booking.event.data["mrr_increase"], "5000.00");
        assert_eq!(booking.event.data["mrr"], "7500.00");
    }

    #[test]
    fn a_tier_upsell_moves_the_subscription_one_tier_up() {
        let booking = book("2026-06-30", 1, true);
        assert!(booking.tier_changed);
        assert_eq!(booking.view.row.tier.as_deref(), Some("PROFESSIONAL"));
        assert_eq!(booking.view.row.updated_by, "ae");
        assert_eq!(booking.event.data["previous_tier"], "STARTER");
        assert_eq!(booking.event.data["tier"], "PROFESSIONAL");
    }

    #[test]
    fn booking_is_refused_without_a_subscription_in_force() {
        let (row, history) = stored("s1", 100);
        let histories = HashMap::from([(row.id.clone(), history)]);
        let before_start = input(1, "2025-01-01", false);
        let refused = plan_upsell_booking(
            &before_start,
            vec![row],
            histories,
            &ladder(),
            "ae",
            Utc::now(),
        );
        assert!(matches!(
            refused,
            Err(HealthError::Upsell(UpsellRefusal::NoneInForce(_)))
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
