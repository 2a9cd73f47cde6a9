//! Split arithmetic: how an amount in minor units is divided by percentages so the parts add
//! up exactly, and the deal-credit allocation of SPEC §4 built on it.
//!
//! Everything is integer arithmetic on minor units and millionths of a percent (`i128`), so
//! every implementation that follows the same steps agrees to the cent:
//!
//! * [`largest_remainder`] floors each exact share and hands the leftover minor units, one
//!   each, to the largest fractional parts (ties to the earlier share). Parts sum to the
//!   total and each is within one minor unit of its exact share.
//! * [`round_half_even_share`] is a single percentage of an amount, rounded half-even; used
//!   for overlays and the MARGIN basis, which are not parts of a whole.

use thiserror::Error;

use crate::error::named_enum;
use crate::percent::{MICROS_PER_WHOLE, Percent};

named_enum! {
    /// The part a participant played in a deal.
    pub enum CreditRole("credit role") {
        /// Sourced the deal (usually the CSM).
        Originator => "ORIGINATOR",
        /// Closed and delivers it (the AE or team).
        Delivery => "DELIVERY",
        /// Supported it (account team, specialists); paid on top of the revenue split.
        Overlay => "OVERLAY",
    }
}

impl CreditRole {
    /// Whether credits in this role are part of the revenue split, which sums to the basis.
    pub const fn is_revenue(self) -> bool {
        matches!(self, CreditRole::Originator | CreditRole::Delivery)
    }
}

/// Highest total of overlay percentages a policy may grant (10× the deal).
pub const MAX_OVERLAY_TOTAL: Percent = Percent::from_whole(1000);

/// Why a split could not be computed. Indexes are 0-based positions in the list given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AllocationError {
    #[error("at least one share is required")]
    NoShares,
    #[error("share at index {index} is negative ({share}); shares must be 0% or more")]
    NegativeShare { index: usize, share: Percent },
    #[error("shares total {total}; they must total exactly 100%")]
    SharesNotHundred { total: Percent },
    #[error("amount is out of range")]
    Overflow,
    #[error("origination share must be between 0% and 100%, got {0}")]
    OriginationShareOutOfRange(Percent),
    #[error("margin must be between 0% and 100%, got {0}")]
    MarginOutOfRange(Percent),
    #[error("at least one DELIVERY participant is required")]
    NoDeliveryParticipants,
    #[error("{role} participant at index {index} has a negative percentage ({share})")]
    NegativeParticipantShare {
        role: CreditRole,
        index: usize,
        share: Percent,
    },
    #[error("{role} participant at index {index} is listed more than once")]
    DuplicateParticipant { role: CreditRole, index: usize },
    #[error("{role} sub-splits total {total}; they must total exactly 100%")]
    SubSplitsNotHundred { role: CreditRole, total: Percent },
    #[error("OVERLAY percentages total {total}; they must total between 0% and 1000%")]
    OverlayTotalOutOfRange { total: Percent },
}

/// Splits `total_minor` by `shares` (percentages that total exactly 100%) with the largest
/// remainder method: floor each exact share, then give the leftover minor units one at a
/// time to the largest fractional parts, ties to the lower index. A zero share gets zero.
///
/// A negative total is split as its absolute value and negated, so a reversal mirrors the
/// original split part for part.
pub fn largest_remainder(
    total_minor: i64,
    shares: &[Percent],
) -> Result<Vec<i64>, AllocationError> {
    if shares.is_empty() {
        return Err(AllocationError::NoShares);
    }
    if let Some((index, share)) = shares
        .iter()
        .enumerate()
        .find(|(_, share)| share.is_negative())
    {
        return Err(AllocationError::NegativeShare {
            index,
            share: *share,
        });
    }
    let total = Percent::checked_sum(shares.iter().copied()).ok_or(AllocationError::Overflow)?;
    if total != Percent::ONE_HUNDRED {
        return Err(AllocationError::SharesNotHundred { total });
    }
    let micros: Vec<i128> = shares.iter().map(|share| share.micros()).collect();
    split_checked_micros(total_minor, &micros)
}

/// The largest-remainder split, for shares already known to be non-negative millionths of a
/// percent totalling 100%.
fn split_checked_micros(total_minor: i64, micros: &[i128]) -> Result<Vec<i64>, AllocationError> {
    // |i64| ≤ 2^63 and each share ≤ 10^8, so every product fits an i128 with room to spare.
    let magnitude = i128::from(total_minor).abs();
    let mut parts = Vec::with_capacity(micros.len());
    let mut remainders = Vec::with_capacity(micros.len());
    for share in micros {
        let exact = magnitude * share;
        parts.push(exact / MICROS_PER_WHOLE);
        remainders.push(exact % MICROS_PER_WHOLE);
    }
    // The remainders add up to `leftover` whole units, each under one, so at least
    // `leftover` of them are non-zero: no exact or zero share ever receives a unit.
    let leftover = magnitude - parts.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..micros.len()).collect();
    order.sort_by(|&a, &b| remainders[b].cmp(&remainders[a]).then(a.cmp(&b)));
    for &index in order.iter().take(usize::try_from(leftover).unwrap_or(0)) {
        parts[index] += 1;
    }
    parts
        .into_iter()
        .map(|part| {
            let signed = if total_minor < 0 { -part } else { part };
            i64::try_from(signed).map_err(|_| AllocationError::Overflow)
        })
        .collect()
}

/// `total_minor × percent / 100`, rounded half-even to a whole minor unit. Any percentage
/// is accepted (overlays exceed 100%); only a result beyond `i64` is an error.
pub fn round_half_even_share(total_minor: i64, percent: Percent) -> Result<i64, AllocationError> {
    let exact = i128::from(total_minor)
        .checked_mul(percent.micros())
        .ok_or(AllocationError::Overflow)?;
    // Truncating division: the remainder carries the sign of `exact`.
    let quotient = exact / MICROS_PER_WHOLE;
    let twice_remainder = (exact % MICROS_PER_WHOLE).abs() * 2;
    let rounds_away = twice_remainder > MICROS_PER_WHOLE
        || (twice_remainder == MICROS_PER_WHOLE && quotient % 2 != 0);
    let rounded = if rounds_away {
        quotient + exact.signum()
    } else {
        quotient
    };
    i64::try_from(rounded).map_err(|_| AllocationError::Overflow)
}

/// The MARGIN credit basis: the deal amount times the product's margin, rounded half-even.
pub fn margin_basis(amount_minor: i64, margin: Percent) -> Result<i64, AllocationError> {
    margin
        .ensure_between(Percent::ZERO, Percent::ONE_HUNDRED)
        .map_err(|_| AllocationError::MarginOutOfRange(margin))?;
    round_half_even_share(amount_minor, margin)
}

/// One participant's credit from a deal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Allocation<P> {
    participant: P,
    role: CreditRole,
    minor: i64,
}

impl<P> Allocation<P> {
    pub fn participant(&self) -> &P {
        &self.participant
    }

    pub fn role(&self) -> CreditRole {
        self.role
    }

    /// The credit in minor units of the deal's currency.
    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn into_parts(self) -> (P, CreditRole, i64) {
        (self.participant, self.role, self.minor)
    }
}

/// Allocates a won deal's credits (SPEC §4), exactly:
///
/// 1. The basis `B` is split into the ORIGINATOR and DELIVERY pools by `origination_share`
///    and its complement, largest remainder, ties to ORIGINATOR. With no originators,
///    DELIVERY takes all of `B`.
/// 2. Each pool is split among its participants by their sub-split percentages (which must
///    total exactly 100%), largest remainder, ties to the participant listed first.
/// 3. Each overlay participant gets `B ×` its percentage, rounded half-even; overlays total
///    0–1000% and are paid on top.
///
/// The result lists originators, then delivery, then overlays, each in the order given
/// (zero credits included). Revenue credits (originator + delivery) sum to `B` exactly.
/// A participant may hold several roles (a CS-led deal credits the CSM as both), but not
/// appear twice in one role.
pub fn allocate_deal_credits<P>(
    basis_minor: i64,
    origination_share: Percent,
    originators: &[(P, Percent)],
    delivery: &[(P, Percent)],
    overlays: &[(P, Percent)],
) -> Result<Vec<Allocation<P>>, AllocationError>
where
    P: Clone + PartialEq,
{
    let origination_share = origination_share
        .ensure_between(Percent::ZERO, Percent::ONE_HUNDRED)
        .map_err(|_| AllocationError::OriginationShareOutOfRange(origination_share))?;
    if delivery.is_empty() {
        return Err(AllocationError::NoDeliveryParticipants);
    }
    if !originators.is_empty() {
        check_sub_splits(CreditRole::Originator, originators)?;
    }
    check_sub_splits(CreditRole::Delivery, delivery)?;
    check_overlays(overlays)?;

    let (originator_pool, delivery_pool) = if originators.is_empty() {
        (0, basis_minor)
    } else {
        let origination = origination_share.micros();
        let pools =
            split_checked_micros(basis_minor, &[origination, MICROS_PER_WHOLE - origination])?;
        (pools[0], pools[1])
    };

    let mut allocations = Vec::with_capacity(originators.len() + delivery.len() + overlays.len());
    for (role, pool, members) in [
        (CreditRole::Originator, originator_pool, originators),
        (CreditRole::Delivery, delivery_pool, delivery),
    ] {
        if members.is_empty() {
            continue;
        }
        let micros: Vec<i128> = members.iter().map(|(_, share)| share.micros()).collect();
        let parts = split_checked_micros(pool, &micros)?;
        allocations.extend(
            members
                .iter()
                .zip(parts)
                .map(|((participant, _), minor)| Allocation {
                    participant: participant.clone(),
                    role,
                    minor,
                }),
        );
    }
    for (participant, percent) in overlays {
        allocations.push(Allocation {
            participant: participant.clone(),
            role: CreditRole::Overlay,
            minor: round_half_even_share(basis_minor, *percent)?,
        });
    }
    Ok(allocations)
}

/// Rejects negative shares and repeated participants: a participant listed twice in one
/// role would get two ledger entries for one credit.
fn check_members<P: PartialEq>(
    role: CreditRole,
    members: &[(P, Percent)],
) -> Result<(), AllocationError> {
    for (index, (participant, share)) in members.iter().enumerate() {
        if share.is_negative() {
            return Err(AllocationError::NegativeParticipantShare {
                role,
                index,
                share: *share,
            });
        }
        if members[..index]
            .iter()
            .any(|(earlier, _)| earlier == participant)
        {
            return Err(AllocationError::DuplicateParticipant { role, index });
        }
    }
    Ok(())
}

fn check_sub_splits<P: PartialEq>(
    role: CreditRole,
    members: &[(P, Percent)],
) -> Result<(), AllocationError> {
    check_members(role, members)?;
    let total = Percent::checked_sum(members.iter().map(|(_, share)| *share))
        .ok_or(AllocationError::Overflow)?;
    if total != Percent::ONE_HUNDRED {
        return Err(AllocationError::SubSplitsNotHundred { role, total });
    }
    Ok(())
}

fn check_overlays<P: PartialEq>(overlays: &[(P, Percent)]) -> Result<(), AllocationError> {
    check_members(CreditRole::Overlay, overlays)?;
    let total = Percent::checked_sum(overlays.iter().map(|(_, share)| *share))
        .ok_or(AllocationError::Overflow)?;
    if total > MAX_OVERLAY_TOTAL {
        return Err(AllocationError::OverlayTotalOutOfRange { total });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    fn p(text: &str) -> Percent {
        Percent::parse(text).unwrap()
    }

    fn shares(texts: &[&str]) -> Vec<Percent> {
        texts.iter().map(|text| p(text)).collect()
    }

    fn credits(allocations: &[Allocation<&'static str>]) -> Vec<(&'static str, CreditRole, i64)> {
        allocations
            .iter()
            .cloned()
            .map(Allocation::into_parts)
            .collect()
    }

    use CreditRole::{Delivery, Originator, Overlay};

    #[test]
    fn spec_worked_example() {
        // B = 1000.01 USD, 25/75, one originator, delivery 50/50 between two AEs.
        let allocations = allocate_deal_credits(
            100_001,
            p("25"),
            &[("csm", p("100"))],
            &[("ae-1", p("50")), ("ae-2", p("50"))],
            &[],
        )
        .unwrap();
        assert_eq!(
            credits(&allocations),
            [
                ("csm", Originator, 25_000),
                ("ae-1", Delivery, 37_501),
                ("ae-2", Delivery, 37_500),
            ]
        );
    }

    #[test]
    fn largest_remainder_examples() {
        assert_eq!(
            largest_remainder(100_001, &shares(&["25", "75"])).unwrap(),
            [25_000, 75_001]
        );
        assert_eq!(
            largest_remainder(100, &shares(&["50", "50"])).unwrap(),
            [50, 50]
        );
        // A tie goes to the lower index.
        assert_eq!(
            largest_remainder(1, &shares(&["50", "50"])).unwrap(),
            [1, 0]
        );
        assert_eq!(
            largest_remainder(3, &shares(&["25", "25", "25", "25"])).unwrap(),
            [1, 1, 1, 0]
        );
        // The largest fraction wins before ties are considered.
        assert_eq!(
            largest_remainder(2, &shares(&["33.333333", "33.333333", "33.333334"])).unwrap(),
            [1, 0, 1]
        );
        assert_eq!(largest_remainder(100, &shares(&["100"])).unwrap(), [100]);
        assert_eq!(
            largest_remainder(0, &shares(&["30", "70"])).unwrap(),
            [0, 0]
        );
        // Zero shares never receive a leftover unit.
        assert_eq!(
            largest_remainder(7, &shares(&["0", "100", "0"])).unwrap(),
            [0, 7, 0]
        );
    }

    #[test]
    fn negative_totals_mirror_positive_ones() {
        assert_eq!(
            largest_remainder(-1, &shares(&["50", "50"])).unwrap(),
            [-1, 0]
        );
        assert_eq!(
            largest_remainder(-100_001, &shares(&["25", "75"])).unwrap(),
            [-25_000, -75_001]
        );
    }

    #[test]
    fn extreme_totals_do_not_overflow() {
        assert_eq!(
            largest_remainder(i64::MIN, &shares(&["100"])).unwrap(),
            [i64::MIN]
        );
        assert_eq!(
            largest_remainder(i64::MAX, &shares(&["100"])).unwrap(),
            [i64::MAX]
        );
        let halves = largest_remainder(i64::MIN, &shares(&["50", "50"])).unwrap();
        assert_eq!(halves, [i64::MIN / 2, i64::MIN / 2]);
        let parts =
            largest_remainder(i64::MAX, &shares(&["33.333333", "33.333333", "33.333334"])).unwrap();
        assert_eq!(
            parts.iter().map(|&x| i128::from(x)).sum::<i128>(),
            i128::from(i64::MAX)
        );
    }

    #[test]
    fn largest_remainder_refuses_bad_shares() {
        assert_eq!(largest_remainder(10, &[]), Err(AllocationError::NoShares));
        assert_eq!(
            largest_remainder(10, &shares(&["-10", "110"])),
            Err(AllocationError::NegativeShare {
                index: 0,
                share: p("-10")
            })
        );
        let err = largest_remainder(10, &shares(&["50", "49.999999"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shares total 99.999999%; they must total exactly 100%"
        );
        assert!(largest_remainder(10, &shares(&["50", "50.000001"])).is_err());
        let huge = Percent::from_decimal(Decimal::MAX).unwrap();
        assert_eq!(
            largest_remainder(10, &[huge, huge]),
            Err(AllocationError::Overflow)
        );
    }

    #[test]
    fn half_even_rounding() {
        assert_eq!(round_half_even_share(10, p("5")).unwrap(), 0); // 0.5 → 0
        assert_eq!(round_half_even_share(30, p("5")).unwrap(), 2); // 1.5 → 2
        assert_eq!(round_half_even_share(50, p("5")).unwrap(), 2); // 2.5 → 2
        assert_eq!(round_half_even_share(51, p("5")).unwrap(), 3); // 2.55 → 3
        assert_eq!(round_half_even_share(49, p("5")).unwrap(), 2); // 2.45 → 2
        assert_eq!(round_half_even_share(-10, p("5")).unwrap(), 0);
        assert_eq!(round_half_even_share(-30, p("5")).unwrap(), -2);
        assert_eq!(round_half_even_share(-51, p("5")).unwrap(), -3);
        assert_eq!(round_half_even_share(100_001, p("5")).unwrap(), 5_000);
        assert_eq!(round_half_even_share(100, p("1000")).unwrap(), 1_000);
        assert_eq!(round_half_even_share(i64::MAX, p("100")).unwrap(), i64::MAX);
        assert_eq!(
            round_half_even_share(i64::MAX, p("200")),
            Err(AllocationError::Overflow)
        );
        assert_eq!(round_half_even_share(1, p("0.000001")).unwrap(), 0);
    }

    #[test]
    fn margin_basis_rounds_half_even() {
        assert_eq!(margin_basis(100_001, p("33.5")).unwrap(), 33_500); // 33500.335
        assert_eq!(margin_basis(3, p("50")).unwrap(), 2); // 1.5
        assert_eq!(margin_basis(5, p("50")).unwrap(), 2); // 2.5
        assert_eq!(margin_basis(12_345, p("100")).unwrap(), 12_345);
        assert_eq!(margin_basis(12_345, p("0")).unwrap(), 0);
        assert_eq!(
            margin_basis(100, p("101")).unwrap_err().to_string(),
            "margin must be between 0% and 100%, got 101%"
        );
        assert!(margin_basis(100, p("-1")).is_err());
    }

    #[test]
    fn without_an_originator_delivery_takes_everything() {
        let allocations =
            allocate_deal_credits(100_001, p("25"), &[], &[("ae", p("100"))], &[]).unwrap();
        assert_eq!(credits(&allocations), [("ae", Delivery, 100_001)]);
    }

    #[test]
    fn a_cs_led_deal_credits_the_csm_with_both_shares() {
        let allocations = allocate_deal_credits(
            1_000,
            p("25"),
            &[("csm", p("100"))],
            &[("csm", p("100"))],
            &[],
        )
        .unwrap();
        assert_eq!(
            credits(&allocations),
            [("csm", Originator, 250), ("csm", Delivery, 750)]
        );
    }

    #[test]
    fn pool_ties_go_to_the_originator() {
        // 50/50 of an odd basis: the half unit goes to ORIGINATOR.
        let allocations =
            allocate_deal_credits(101, p("50"), &[("csm", p("100"))], &[("ae", p("100"))], &[])
                .unwrap();
        assert_eq!(
            credits(&allocations),
            [("csm", Originator, 51), ("ae", Delivery, 50)]
        );
    }

    #[test]
    fn overlays_are_paid_on_top() {
        let allocations = allocate_deal_credits(
            100_001,
            p("25"),
            &[("csm-1", p("60")), ("csm-2", p("40"))],
            &[("ae", p("100"))],
            &[("team", p("5")), ("specialist", p("2.5"))],
        )
        .unwrap();
        assert_eq!(
            credits(&allocations),
            [
                ("csm-1", Originator, 15_000), // 25000 × 60%
                ("csm-2", Originator, 10_000),
                ("ae", Delivery, 75_001),
                ("team", Overlay, 5_000),       // 5000.05
                ("specialist", Overlay, 2_500), // 2500.025
            ]
        );
        let revenue: i64 = allocations
            .iter()
            .filter(|a| a.role().is_revenue())
            .map(Allocation::minor)
            .sum();
        assert_eq!(revenue, 100_001);
    }

    #[test]
    fn extreme_origination_shares() {
        let all_origination = allocate_deal_credits(
            999,
            p("100"),
            &[("csm", p("100"))],
            &[("ae", p("100"))],
            &[],
        )
        .unwrap();
        assert_eq!(
            credits(&all_origination),
            [("csm", Originator, 999), ("ae", Delivery, 0)]
        );
        let no_origination =
            allocate_deal_credits(999, p("0"), &[("csm", p("100"))], &[("ae", p("100"))], &[])
                .unwrap();
        assert_eq!(
            credits(&no_origination),
            [("csm", Originator, 0), ("ae", Delivery, 999)]
        );
    }

    #[test]
    fn clawback_basis_mirrors_the_credit() {
        let credit = allocate_deal_credits(
            100_001,
            p("25"),
            &[("csm", p("100"))],
            &[("ae-1", p("50")), ("ae-2", p("50"))],
            &[("team", p("5"))],
        )
        .unwrap();
        let reversal = allocate_deal_credits(
            -100_001,
            p("25"),
            &[("csm", p("100"))],
            &[("ae-1", p("50")), ("ae-2", p("50"))],
            &[("team", p("5"))],
        )
        .unwrap();
        for (c, r) in credit.iter().zip(&reversal) {
            assert_eq!(c.minor(), -r.minor());
        }
    }

    #[test]
    fn refusals_name_the_role_and_index() {
        let one = |who| [(who, p("100"))];
        let err = allocate_deal_credits(
            100,
            p("25"),
            &one("csm"),
            &[("a", p("50")), ("b", p("49"))],
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "DELIVERY sub-splits total 99%; they must total exactly 100%"
        );
        let err =
            allocate_deal_credits(100, p("25"), &[("csm", p("90"))], &one("ae"), &[]).unwrap_err();
        assert_eq!(
            err,
            AllocationError::SubSplitsNotHundred {
                role: Originator,
                total: p("90")
            }
        );
        let err = allocate_deal_credits(100, p("25"), &one("csm"), &[], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at least one DELIVERY participant is required"
        );
        let err = allocate_deal_credits(100, p("100.5"), &one("csm"), &one("ae"), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "origination share must be between 0% and 100%, got 100.5%"
        );
        assert!(allocate_deal_credits(100, p("-1"), &one("csm"), &one("ae"), &[]).is_err());
        let err = allocate_deal_credits(
            100,
            p("25"),
            &one("csm"),
            &[("a", p("150")), ("b", p("-50"))],
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "DELIVERY participant at index 1 has a negative percentage (-50%)"
        );
        let err = allocate_deal_credits(
            100,
            p("25"),
            &one("csm"),
            &[("a", p("50")), ("a", p("50"))],
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err,
            AllocationError::DuplicateParticipant {
                role: Delivery,
                index: 1
            }
        );
        assert_eq!(
            err.to_string(),
            "DELIVERY participant at index 1 is listed more than once"
        );
        let err = allocate_deal_credits(100, p("25"), &one("csm"), &one("ae"), &[("x", p("-5"))])
            .unwrap_err();
        assert_eq!(
            err,
            AllocationError::NegativeParticipantShare {
                role: Overlay,
                index: 0,
                share: p("-5")
            }
        );
    }

    #[test]
    fn overlay_totals_may_reach_one_thousand_percent() {
        let one = |who| [(who, p("100"))];
        let at_limit = allocate_deal_credits(
            10,
            p("25"),
            &one("csm"),
            &one("ae"),
            &[("x", p("600")), ("y", p("400"))],
        )
        .unwrap();
        assert_eq!(at_limit[2].minor(), 60);
        assert_eq!(at_limit[3].minor(), 40);
        let err = allocate_deal_credits(
            10,
            p("25"),
            &one("csm"),
            &one("ae"),
            &[("x", p("600")), ("y", p("400.000001"))],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "OVERLAY percentages total 1000.000001%; they must total between 0% and 1000%"
        );
        // Zero overlays are fine and listed.
        let zero =
            allocate_deal_credits(10, p("25"), &one("csm"), &one("ae"), &[("x", p("0"))]).unwrap();
        assert_eq!(zero[2].minor(), 0);
    }

    #[test]
    fn credit_role_names() {
        assert_eq!(Originator.as_str(), "ORIGINATOR");
        assert_eq!("OVERLAY".parse::<CreditRole>().unwrap(), Overlay);
        assert!(Originator.is_revenue() && Delivery.is_revenue() && !Overlay.is_revenue());
    }

    /// Non-negative shares with `places` decimals that total exactly 100%: cut the whole
    /// (100 × 10^places units) at random points.
    fn shares_totalling_100() -> impl Strategy<Value = Vec<Percent>> {
        (prop_oneof![Just(0_u32), Just(2), Just(6)], 1_usize..=8).prop_flat_map(
            |(places, count)| {
                let whole = 100 * 10_i64.pow(places);
                prop::collection::vec(0..=whole, count - 1).prop_map(move |mut cuts| {
                    cuts.push(0);
                    cuts.push(whole);
                    cuts.sort_unstable();
                    cuts.windows(2)
                        .map(|pair| {
                            Percent::from_decimal(Decimal::new(pair[1] - pair[0], places)).unwrap()
                        })
                        .collect()
                })
            },
        )
    }

    fn totals() -> impl Strategy<Value = i64> {
        prop_oneof![
            -1_000_i64..=1_000,
            -1_000_000_000_000_000_i64..=1_000_000_000_000_000,
            any::<i64>(),
        ]
    }

    fn participants(prefix: &'static str, shares: Vec<Percent>) -> Vec<(String, Percent)> {
        shares
            .into_iter()
            .enumerate()
            .map(|(index, share)| (format!("{prefix}-{index}"), share))
            .collect()
    }

    proptest! {
        #[test]
        fn parts_sum_to_the_total_and_stay_within_one_unit(total in totals(), shares in shares_totalling_100()) {
            let parts = largest_remainder(total, &shares).unwrap();
            prop_assert_eq!(parts.len(), shares.len());
            let sum: i128 = parts.iter().map(|&part| i128::from(part)).sum();
            prop_assert_eq!(sum, i128::from(total));
            for (part, share) in parts.iter().zip(&shares) {
                let exact_scaled = i128::from(total) * share.micros();
                let error = (i128::from(*part) * MICROS_PER_WHOLE - exact_scaled).abs();
                prop_assert!(error < MICROS_PER_WHOLE, "part {} for share {} of {}", part, share, total);
                if share.is_zero() {
                    prop_assert_eq!(*part, 0);
                }
            }
        }

        #[test]
        fn negating_the_total_negates_every_part(total in -1_000_000_000_000_000_i64..=1_000_000_000_000_000, shares in shares_totalling_100()) {
            let parts = largest_remainder(total, &shares).unwrap();
            let mirrored = largest_remainder(-total, &shares).unwrap();
            for (a, b) in parts.iter().zip(&mirrored) {
                prop_assert_eq!(*a, -*b);
            }
        }

        #[test]
        fn revenue_credits_always_sum_to_the_basis(
            basis in totals(),
            origination in 0_i64..=100_000_000,
            originator_shares in prop_oneof![Just(Vec::new()), shares_totalling_100()],
            delivery_shares in shares_totalling_100(),
            overlay_percents in prop::collection::vec(0_i64..=100_000_000, 0..4),
        ) {
            let origination = Percent::from_decimal(Decimal::new(origination, 6)).unwrap();
            let originators = participants("csm", originator_shares);
            let delivery = participants("ae", delivery_shares);
            let overlays = participants(
                "team",
                overlay_percents.into_iter().map(|micros| Percent::from_decimal(Decimal::new(micros, 6)).unwrap()).collect(),
            );
            let allocations = allocate_deal_credits(basis, origination, &originators, &delivery, &overlays).unwrap();
            prop_assert_eq!(allocations.len(), originators.len() + delivery.len() + overlays.len());
            let revenue: i128 = allocations
                .iter()
                .filter(|a| a.role().is_revenue())
                .map(|a| i128::from(a.minor()))
                .sum();
            prop_assert_eq!(revenue, i128::from(basis));
            for allocation in &allocations {
                if allocation.role() == CreditRole::Overlay {
                    let percent = overlays.iter().find(|(who, _)| who == allocation.participant()).map(|(_, pct)| *pct).unwrap();
                    let error = (i128::from(allocation.minor()) * MICROS_PER_WHOLE - i128::from(basis) * percent.micros()).abs();
                    prop_assert!(error <= MICROS_PER_WHOLE / 2);
                }
            }
        }
    }
}
