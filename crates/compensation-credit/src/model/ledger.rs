//! The ledger's rules over append-only entries. Pure: the store reads rows into
//! [`Entry`] values, these functions decide what to append, and everything else (status,
//! balances, statements) is derived from the entries. Nothing here edits an entry.
//!
//! - Status: an entry is RELEASED from the earlier of its hold end and an explicit
//!   approval; HELD before that.
//! - Split replacement: each live CREDIT of the current split set gets an ADJUSTMENT that
//!   mirrors it (negative, `reverses_entry_id` = the credit), then the new set's CREDITs.
//! - Clawback: each live credit that is released gets a CLAWBACK recovering all of it
//!   (FULL) or the remaining share of the window (PRORATED, half-even); one still held is
//!   forfeited by a full CLAWBACK that stays held with it, so it is never paid.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use contracts::pb::credit::v1 as pb;
use contracts::{ApiError, wire};
use domain::{CreditRole, LedgerEntryId};
use sea_orm::sea_query::StringLen;
use sea_orm::{DeriveActiveEnum, EnumIter};

use super::deal::PlannedCredit;

/// What an entry records; stored as its name in `credit_ledger_entries.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum EntryKind {
    #[sea_orm(string_value = "CREDIT")]
    Credit,
    #[sea_orm(string_value = "CLAWBACK")]
    Clawback,
    #[sea_orm(string_value = "ADJUSTMENT")]
    Adjustment,
}

impl EntryKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::Credit => "CREDIT",
            EntryKind::Clawback => "CLAWBACK",
            EntryKind::Adjustment => "ADJUSTMENT",
        }
    }

    pub fn to_pb(self) -> pb::EntryKind {
        match self {
            EntryKind::Credit => pb::EntryKind::Credit,
            EntryKind::Clawback => pb::EntryKind::Clawback,
            EntryKind::Adjustment => pb::EntryKind::Adjustment,
        }
    }

    /// An optional kind filter: UNSPECIFIED is `None`.
    pub fn from_pb(field: &str, value: i32) -> Result<Option<EntryKind>, ApiError> {
        Ok(match wire::known_enum::<pb::EntryKind>(field, value)? {
            pb::EntryKind::Unspecified => None,
            pb::EntryKind::Credit => Some(EntryKind::Credit),
            pb::EntryKind::Clawback => Some(EntryKind::Clawback),
            pb::EntryKind::Adjustment => Some(EntryKind::Adjustment),
        })
    }
}

/// One ledger entry as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub entry_id: String,
    pub kind: EntryKind,
    pub deal_id: String,
    pub participant_id: String,
    pub role: CreditRole,
    pub team: Option<String>,
    /// Signed minor units of `currency`.
    pub amount_minor: i64,
    pub currency: String,
    pub policy_id: String,
    pub policy_version: i32,
    pub principal: String,
    pub created_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub reverses_entry_id: Option<String>,
    /// Released automatically at this time.
    pub hold_until: DateTime<Utc>,
    /// The split set revision the entry belongs to (1 = as recorded).
    pub split_revision: i32,
    /// When ApproveCredits released it, if it did.
    pub approved_at: Option<DateTime<Utc>>,
    /// The dispute open over it, if any (read with the entry, never stored on it).
    pub open_dispute_id: Option<String>,
    /// The deal's account and product names (read with the entry from its
    /// deal, never stored on it).
    pub account_name: Option<String>,
    pub product_name: Option<String>,
}

impl Entry {
    /// When the entry was released, as of `now`: the earlier of its hold end (once
    /// passed) and its approval.
    pub fn released_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let by_hold = (self.hold_until <= now).then_some(self.hold_until);
        match (by_hold, self.approved_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn is_released(&self, now: DateTime<Utc>) -> bool {
        self.released_at(now).is_some()
    }
}

/// The fields shared by every entry one write appends.
#[derive(Debug, Clone)]
pub struct EntryContext<'a> {
    pub deal_id: &'a str,
    pub currency: &'a str,
    pub policy_id: &'a str,
    pub policy_version: i32,
    pub principal: &'a str,
    pub now: DateTime<Utc>,
    /// Split revision the new entries belong to.
    pub revision: i32,
}

impl EntryContext<'_> {
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &self,
        kind: EntryKind,
        participant_id: &str,
        role: CreditRole,
        team: Option<String>,
        amount_minor: i64,
        reason: String,
        reverses_entry_id: Option<String>,
        hold_until: DateTime<Utc>,
    ) -> Entry {
        Entry {
            entry_id: LedgerEntryId::new().to_string(),
            kind,
            deal_id: self.deal_id.to_owned(),
            participant_id: participant_id.to_owned(),
            role,
            team,
            amount_minor,
            currency: self.currency.to_owned(),
            policy_id: self.policy_id.to_owned(),
            policy_version: self.policy_version,
            principal: self.principal.to_owned(),
            created_at: self.now,
            reason: Some(reason),
            reverses_entry_id,
            hold_until,
            split_revision: self.revision,
            approved_at: None,
            open_dispute_id: None,
            account_name: None,
            product_name: None,
        }
    }
}

/// One CREDIT entry per planned credit (zero credits included, so every participant of
/// the split set has its entry).
pub fn credit_entries(
    ctx: &EntryContext<'_>,
    credits: &[PlannedCredit],
    hold_until: DateTime<Utc>,
    reason: &str,
) -> Vec<Entry> {
    credits
        .iter()
        .map(|c| {
            ctx.entry(
                EntryKind::Credit,
                &c.participant_id,
                c.role,
                c.team.clone(),
                c.minor,
                reason.to_owned(),
                None,
                hold_until,
            )
        })
        .collect()
}

/// The CREDIT entries of the deal's split set in force.
pub fn live_credits(entries: &[Entry], revision: i32) -> Vec<&Entry> {
    entries
        .iter()
        .filter(|e| e.kind == EntryKind::Credit && e.split_revision == revision)
        .collect()
}

/// ADJUSTMENT entries cancelling each live credit, for a split replacement. A reversal
/// shares the hold of the credit it reverses: released now if the credit was, else held
/// until the same time.
pub fn split_reversals(ctx: &EntryContext<'_>, live: &[&Entry], reason: &str) -> Vec<Entry> {
    live.iter()
        .filter(|e| e.amount_minor != 0)
        .map(|e| {
            let hold_until = if e.is_released(ctx.now) {
                ctx.now
            } else {
                e.hold_until
            };
            ctx.entry(
                EntryKind::Adjustment,
                &e.participant_id,
                e.role,
                e.team.clone(),
                -e.amount_minor,
                format!("split replaced: {reason}"),
                Some(e.entry_id.clone()),
                hold_until,
            )
        })
        .collect()
}

/// Where a cancellation falls against a deal's clawback window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowPosition {
    /// Cancelled `elapsed_days` after the close date, inside the window.
    Inside {
        elapsed_days: i64,
    },
    Outside,
    BeforeClose,
}

/// The window is `[close_date, close_date + window_days)`.
pub fn window_position(close: NaiveDate, cancel: NaiveDate, window_days: i32) -> WindowPosition {
    let elapsed_days = (cancel - close).num_days();
    if elapsed_days < 0 {
        WindowPosition::BeforeClose
    } else if elapsed_days < i64::from(window_days) {
        WindowPosition::Inside { elapsed_days }
    } else {
        WindowPosition::Outside
    }
}

/// How much of a released credit a clawback recovers: all of it (FULL), or its remaining
/// share of the window, `released × (window − elapsed) / window` rounded half-even
/// (PRORATED).
pub fn clawback_amount(
    released_minor: i64,
    mode: pb::ClawbackMode,
    window_days: i32,
    elapsed_days: i64,
) -> i64 {
    let window = i128::from(window_days.max(1));
    let elapsed = i128::from(elapsed_days).clamp(0, window);
    match mode {
        pb::ClawbackMode::Prorated => {
            let exact = i128::from(released_minor) * (window - elapsed);
            let quotient = exact / window;
            let twice_remainder = (exact % window).abs() * 2;
            let rounded =
                if twice_remainder > window || (twice_remainder == window && quotient % 2 != 0) {
                    quotient + exact.signum()
                } else {
                    quotient
                };
            // |rounded| ≤ |released_minor|, so it fits.
            i64::try_from(rounded).unwrap_or(released_minor)
        }
        _ => released_minor,
    }
}

/// The CLAWBACK entries for a cancellation inside the window (see the module docs).
pub fn clawback_entries(
    ctx: &EntryContext<'_>,
    live: &[&Entry],
    mode: pb::ClawbackMode,
    window_days: i32,
    elapsed_days: i64,
    reason: &str,
) -> Vec<Entry> {
    live.iter()
        .filter_map(|e| {
            let (amount, hold_until, why) = if e.is_released(ctx.now) {
                let recovered = clawback_amount(e.amount_minor, mode, window_days, elapsed_days);
                (recovered, ctx.now, format!("clawback: {reason}"))
            } else {
                (
                    e.amount_minor,
                    e.hold_until,
                    format!("forfeited before release: {reason}"),
                )
            };
            (amount != 0).then(|| {
                ctx.entry(
                    EntryKind::Clawback,
                    &e.participant_id,
                    e.role,
                    e.team.clone(),
                    -amount,
                    why,
                    Some(e.entry_id.clone()),
                    hold_until,
                )
            })
        })
        .collect()
}

/// The ADJUSTMENT a dispute resolution writes: signed, linked to the disputed entry,
/// same participant, role and currency, released at once (it corrects money as it is).
pub fn adjustment_entry(
    ctx: &EntryContext<'_>,
    disputed: &Entry,
    amount_minor: i64,
    reason: &str,
) -> Entry {
    ctx.entry(
        EntryKind::Adjustment,
        &disputed.participant_id,
        disputed.role,
        disputed.team.clone(),
        amount_minor,
        reason.to_owned(),
        Some(disputed.entry_id.clone()),
        ctx.now,
    )
}

/// A derived balance: the sum of one participant's entries in one role and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub participant_id: String,
    pub role: CreditRole,
    pub team: Option<String>,
    pub currency: String,
    pub minor: i64,
}

/// Balances per participant, role and currency, in order of first appearance; `None` if
/// a sum leaves `i64`.
pub fn balances(entries: &[Entry]) -> Option<Vec<Balance>> {
    let mut out: Vec<Balance> = Vec::new();
    for e in entries {
        match out.iter_mut().find(|b| {
            b.participant_id == e.participant_id && b.role == e.role && b.currency == e.currency
        }) {
            Some(b) => b.minor = b.minor.checked_add(e.amount_minor)?,
            None => out.push(Balance {
                participant_id: e.participant_id.clone(),
                role: e.role,
                team: e.team.clone(),
                currency: e.currency.clone(),
                minor: e.amount_minor,
            }),
        }
    }
    Some(out)
}

/// A statement's figures in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Figures {
    pub currency: String,
    pub opening: i64,
    pub closing: i64,
    /// Period totals by role and kind, in role then kind order.
    pub totals: Vec<(CreditRole, EntryKind, i64)>,
    pub held: i64,
    pub released: i64,
    pub cs_sourced: i64,
    pub sales_closed: i64,
    pub overlay: i64,
}

#[derive(Default)]
struct Sums {
    opening: i128,
    period: i128,
    totals: BTreeMap<(CreditRole, EntryKind), i128>,
    held: i128,
    released: i128,
    by_role: BTreeMap<CreditRole, i128>,
}

/// Figures per currency for the period `[start, end)`: entries before `start` make the
/// opening balance; entries inside it the totals. Entries at or after `end` are ignored.
/// Currencies are never mixed. `None` if a figure leaves `i64`.
pub fn statement(
    entries: &[Entry],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Vec<Figures>> {
    let mut sums: BTreeMap<&str, Sums> = BTreeMap::new();
    for e in entries {
        if e.created_at >= end {
            continue;
        }
        let s = sums.entry(e.currency.as_str()).or_default();
        let amount = i128::from(e.amount_minor);
        if e.created_at < start {
            s.opening += amount;
            continue;
        }
        s.period += amount;
        *s.totals.entry((e.role, e.kind)).or_default() += amount;
        *s.by_role.entry(e.role).or_default() += amount;
        if e.is_released(now) {
            s.released += amount;
        } else {
            s.held += amount;
        }
    }
    let fit = |v: i128| i64::try_from(v).ok();
    sums.into_iter()
        .map(|(currency, s)| {
            let role = |r| fit(s.by_role.get(&r).copied().unwrap_or_default());
            Some(Figures {
                currency: currency.to_owned(),
                opening: fit(s.opening)?,
                closing: fit(s.opening + s.period)?,
                totals: s
                    .totals
                    .iter()
                    .map(|(&(r, k), &v)| Some((r, k, fit(v)?)))
                    .collect::<Option<_>>()?,
                held: fit(s.held)?,
                released: fit(s.released)?,
                cs_sourced: role(CreditRole::Originator)?,
                sales_closed: role(CreditRole::Delivery)?,
                overlay: role(CreditRole::Overlay)?,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::CreditError;
    use crate::events::CreditEvent;
    use crate::model::Terms;
    use crate::model::clawback::{Cancellation, plan_clawbacks};
    use crate::model::deal::Split;
    use crate::model::disputes::{Resolution, plan_resolution};
    use crate::model::recording::plan_recording;
    use crate::model::release::plan_release;
    use crate::model::splits::{SplitChange, plan_split_replacement};
    use crate::model::test_support::{deal_input, directory, dispute_over, terms, usd};
    use crate::model::views::DealView;
    use chrono::{Duration, TimeZone};
    use domain::Percent;
    use proptest::prelude::*;

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
    }

    fn ctx(now: DateTime<Utc>, revision: i32) -> EntryContext<'static> {
        EntryContext {
            deal_id: "deal",
            currency: "USD",
            policy_id: "default",
            policy_version: 1,
            principal: "revops",
            now,
            revision,
        }
    }

    fn planned(list: &[(&str, CreditRole, i64)]) -> Vec<PlannedCredit> {
        list.iter()
            .map(|(who, role, minor)| PlannedCredit {
                participant_id: (*who).into(),
                role: *role,
                team: None,
                minor: *minor,
            })
            .collect()
    }

    use CreditRole::{Delivery, Originator, Overlay};

    #[test]
    fn prorated_clawback_arithmetic() {
        use pb::ClawbackMode::{Full, Prorated};
        // Cancelled 30 days into a 90-day window: 60/90 of the credit comes back.
        assert_eq!(clawback_amount(75_001, Prorated, 90, 30), 50_001); // 50000.67 → 50001
        assert_eq!(clawback_amount(25_000, Prorated, 90, 30), 16_667); // 16666.67
        assert_eq!(clawback_amount(25_000, Full, 90, 30), 25_000);
        // On the close date, everything; halfway with a half cent, half-even.
        assert_eq!(clawback_amount(1_000, Prorated, 90, 0), 1_000);
        assert_eq!(clawback_amount(3, Prorated, 2, 1), 2); // 1.5 → 2
        assert_eq!(clawback_amount(5, Prorated, 2, 1), 2); // 2.5 → 2
        assert_eq!(clawback_amount(1_000, Prorated, 90, 89), 11); // 11.11
        assert_eq!(clawback_amount(i64::MAX, Prorated, 3650, 1), {
            let exact = i128::from(i64::MAX) * 3649;
            i64::try_from((exact + 1825) / 3650).unwrap()
        });
    }

    #[test]
    fn window_positions() {
        let close = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let day = |d| close + Duration::days(d);
        assert_eq!(
            window_position(close, day(0), 90),
            WindowPosition::Inside { elapsed_days: 0 }
        );
        assert_eq!(
            window_position(close, day(89), 90),
            WindowPosition::Inside { elapsed_days: 89 }
        );
        assert_eq!(window_position(close, day(90), 90), WindowPosition::Outside);
        assert_eq!(
            window_position(close, day(-1), 90),
            WindowPosition::BeforeClose
        );
    }

    #[test]
    fn release_is_the_earlier_of_hold_end_and_approval() {
        let mut e = credit_entries(
            &ctx(t(1), 1),
            &planned(&[("csm", Originator, 100)]),
            t(10),
            "won",
        )
        .remove(0);
        assert_eq!(e.released_at(t(5)), None);
        assert_eq!(e.released_at(t(10)), Some(t(10)));
        e.approved_at = Some(t(3));
        assert_eq!(e.released_at(t(5)), Some(t(3)));
        assert_eq!(e.released_at(t(20)), Some(t(3)));
    }

    #[test]
    fn clawback_recovers_only_released_credit_and_forfeits_held() {
        let mut credits = credit_entries(
            &ctx(t(1), 1),
            &planned(&[("csm", Originator, 25_000), ("ae", Delivery, 75_001)]),
            t(20),
            "won",
        );
        credits[0].approved_at = Some(t(2));
        let live: Vec<&Entry> = credits.iter().collect();
        let claws = clawback_entries(
            &ctx(t(5), 1),
            &live,
            pb::ClawbackMode::Prorated,
            90,
            30,
            "cancelled",
        );
        assert_eq!(claws.len(), 2);
        assert_eq!(claws[0].amount_minor, -16_667);
        assert_eq!(
            claws[0].reverses_entry_id.as_deref(),
            Some(credits[0].entry_id.as_str())
        );
        assert!(claws[0].is_released(t(5)));
        // The held credit is forfeited in full and stays held beside it: never paid.
        assert_eq!(claws[1].amount_minor, -75_001);
        assert!(!claws[1].is_released(t(5)));
        assert_eq!(claws[1].hold_until, t(20));
    }

    #[test]
    fn statement_figures_per_currency() {
        let usd = credit_entries(
            &ctx(t(1), 1),
            &planned(&[("csm", Originator, 25_000), ("csm", Delivery, 75_001)]),
            t(1),
            "won",
        );
        let mut later = credit_entries(
            &ctx(t(10), 1),
            &planned(&[("csm", Overlay, 5_000)]),
            t(30),
            "won",
        );
        later[0].currency = "EUR".into();
        let claw = clawback_entries(
            &ctx(t(12), 1),
            &[&usd[0]],
            pb::ClawbackMode::Full,
            90,
            3,
            "cancelled",
        );
        let all: Vec<Entry> = usd.iter().chain(&later).chain(&claw).cloned().collect();
        let figures = statement(&all, t(5), t(20), t(15)).unwrap();
        assert_eq!(figures.len(), 2);
        let eur = &figures[0];
        assert_eq!(
            (eur.currency.as_str(), eur.opening, eur.closing),
            ("EUR", 0, 5_000)
        );
        assert_eq!((eur.held, eur.released, eur.overlay), (5_000, 0, 5_000));
        let usd_fig = &figures[1];
        assert_eq!(usd_fig.opening, 100_001);
        assert_eq!(usd_fig.closing, 75_001);
        assert_eq!(usd_fig.totals, [(Originator, EntryKind::Clawback, -25_000)]);
        assert_eq!((usd_fig.cs_sourced, usd_fig.sales_closed), (-25_000, 0));
    }

    /// One step of a random ledger history.
    #[derive(Debug, Clone)]
    enum Op {
        Record {
            basis: i64,
            origination: u32,
            delivery: Vec<u32>,
            hold_days: i32,
        },
        Replace {
            deal: usize,
            delivery: Vec<u32>,
        },
        Approve {
            deal: usize,
        },
        Clawback {
            deal: usize,
            prorated: bool,
            elapsed: i64,
        },
        Adjust {
            entry: usize,
            amount: i64,
        },
    }

    fn weights_to_splits(weights: &[u32]) -> Vec<Split> {
        // Turn positive weights into sub-splits totalling exactly 100% (the last takes the
        // rest), six decimal places.
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut used = 0_i64;
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let micros = if i + 1 == weights.len() {
                    100_000_000 - used
                } else {
                    i64::try_from(u64::from(*w) * 100_000_000 / total).unwrap()
                };
                used += micros;
                Split {
                    participant_id: format!("ae-{i}"),
                    role: Delivery,
                    percent: Some(Percent::from_decimal(domain::Decimal::new(micros, 6)).unwrap()),
                    team: None,
                    owner: false,
                    overlay_rule: None,
                }
            })
            .chain(std::iter::once(Split {
                participant_id: "csm".into(),
                role: Originator,
                percent: Some(Percent::ONE_HUNDRED),
                team: Some("cs".into()),
                owner: true,
                overlay_rule: None,
            }))
            .chain(std::iter::once(Split {
                participant_id: "team".into(),
                role: Overlay,
                percent: Some(Percent::from_whole(5)),
                team: None,
                owner: false,
                overlay_rule: None,
            }))
            .collect()
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let weights = prop::collection::vec(1_u32..1000, 1..4);
        let op = prop_oneof![
            (
                1_i64..10_000_000_000,
                0_u32..=100,
                weights.clone(),
                0_i32..3
            )
                .prop_map(|(basis, origination, delivery, hold_days)| Op::Record {
                    basis,
                    origination,
                    delivery,
                    hold_days
                }),
            (0_usize..8, weights).prop_map(|(deal, delivery)| Op::Replace { deal, delivery }),
            (0_usize..8).prop_map(|deal| Op::Approve { deal }),
            (0_usize..8, any::<bool>(), 0_i64..90).prop_map(|(deal, prorated, elapsed)| {
                Op::Clawback {
                    deal,
                    prorated,
                    elapsed,
                }
            }),
            (0_usize..64, -100_000_i64..100_000)
                .prop_map(|(entry, amount)| Op::Adjust { entry, amount }),
        ];
        prop::collection::vec(op, 1..40)
    }

    /// A deal as the store would hold it, apart from its entries (kept in one ledger).
    struct Deal {
        view: DealView,
        terms: Terms,
    }

    impl Deal {
        /// The deal as the store would load it, with its entries from `ledger`.
        fn loaded(&self, ledger: &[Entry]) -> DealView {
            let mut view = self.view.clone();
            view.entries = ledger
                .iter()
                .filter(|e| e.deal_id == view.deal.deal_id)
                .cloned()
                .collect();
            view
        }
    }

    fn people() -> Vec<crate::entity::person::Model> {
        directory(&["csm", "ae-0", "ae-1", "ae-2"])
    }

    proptest! {
        /// A random history of recordings, split replacements, approvals, clawbacks and
        /// dispute adjustments, each planned by the planner the store calls, keeps the
        /// ledger's identities.
        #[test]
        fn balances_are_the_sum_of_entries_and_credits_sum_to_the_basis(ops in ops()) {
            let mut entries: Vec<Entry> = Vec::new();
            let mut deals: Vec<Deal> = Vec::new();
            let mut day = 0_i64;
            let start = t(1);
            for op in ops {
                day += 1;
                let now = start + Duration::days(day);
                match op {
                    Op::Record { basis, origination, delivery, hold_days } => {
                        let mut input = deal_input(basis, &[]);
                        input.splits = weights_to_splits(&delivery);
                        let mut terms = terms(origination);
                        terms.hold_days = hold_days;
                        let plan = plan_recording(&input, &terms, &people(), "revops", now).unwrap();
                        prop_assert!(plan.entries.iter().all(|e| e.hold_until == now + Duration::days(i64::from(hold_days))));
                        let mut view = plan.into_view();
                        entries.append(&mut view.entries);
                        deals.push(Deal { view, terms });
                    }
                    Op::Replace { deal, delivery } => {
                        let Some(d) = deals.get_mut(deal) else { continue };
                        let splits = weights_to_splits(&delivery);
                        let change = SplitChange { splits: &splits, cs_led_without_handoff: false, reason: "fix" };
                        let planned = plan_split_replacement(&d.loaded(&entries), &d.terms, &people(), change, "revops", now);
                        if d.view.clawed_back {
                            prop_assert!(matches!(planned, Err(CreditError::DealClawedBack(_))));
                            continue;
                        }
                        let Some(plan) = planned.unwrap() else { continue };
                        prop_assert_eq!(plan.split_set.revision, d.view.revision + 1);
                        d.view.revision = plan.split_set.revision;
                        d.view.splits = plan.splits;
                        entries.extend(plan.entries);
                    }
                    Op::Approve { deal } => {
                        let Some(d) = deals.get(deal) else { continue };
                        let Some(plan) = plan_release(d.loaded(&entries).entries, None, "revops", now).unwrap() else { continue };
                        prop_assert_eq!(plan.rows.len(), plan.entries.len());
                        for released in plan.entries {
                            let e = entries.iter_mut().find(|e| e.entry_id == released.entry_id).unwrap();
                            prop_assert!(!e.is_released(now));
                            e.approved_at = released.approved_at;
                        }
                    }
                    Op::Clawback { deal, prorated, elapsed } => {
                        let Some(d) = deals.get_mut(deal) else { continue };
                        let mut terms = d.terms.clone();
                        terms.clawback_mode = if prorated { pb::ClawbackMode::Prorated } else { pb::ClawbackMode::Full };
                        let view = d.loaded(&entries);
                        let cancellation = Cancellation {
                            subscription_id: None,
                            cancel_date: view.deal.close_date + Duration::days(elapsed),
                            reason: "cancelled",
                        };
                        let plan = plan_clawbacks(&[(view.clone(), terms)], cancellation, "revops", now).unwrap();
                        if d.view.clawed_back {
                            // A repeat writes nothing and answers with the earlier entries.
                            prop_assert!(plan.clawbacks.is_empty() && plan.entries.is_empty());
                            let earlier: Vec<&Entry> = view.entries.iter().filter(|e| e.kind == EntryKind::Clawback).collect();
                            prop_assert_eq!(plan.earlier.iter().collect::<Vec<_>>(), earlier);
                            continue;
                        }
                        prop_assert_eq!(plan.clawbacks.len(), 1);
                        d.view.clawed_back = true;
                        let live = live_credits(&view.entries, view.revision);
                        for claw in &plan.entries {
                            let original = live.iter().find(|e| Some(&e.entry_id) == claw.reverses_entry_id.as_ref()).unwrap();
                            // Never more than the credit; only released credit is recovered
                            // (held credit is forfeited in full and stays held).
                            prop_assert!(-claw.amount_minor <= original.amount_minor && claw.amount_minor < 0);
                            prop_assert_eq!(claw.is_released(now), original.is_released(now));
                            if !prorated || !original.is_released(now) {
                                prop_assert_eq!(-claw.amount_minor, original.amount_minor);
                            }
                        }
                        // The event's totals are the released and the held clawbacks.
                        let CreditEvent::DealClawedBack(event) = &plan.events[0] else { unreachable!() };
                        let total = |released: bool| {
                            let minor: i64 = plan.entries.iter().filter(|e| e.is_released(now) == released).map(|e| -e.amount_minor).sum();
                            usd(minor).to_amount_string()
                        };
                        prop_assert_eq!(&event.recovered, &total(true));
                        prop_assert_eq!(&event.forfeited, &total(false));
                        entries.extend(plan.entries);
                    }
                    Op::Adjust { entry, amount } => {
                        let Some(target) = entries.get(entry).cloned() else { continue };
                        let ruling = plan_resolution(&dispute_over(&target), &target, &Resolution::Adjust(usd(amount)), None, "revops", now).unwrap();
                        let adjustment = ruling.adjustment.unwrap();
                        prop_assert_eq!(adjustment.amount_minor, amount);
                        prop_assert_eq!(adjustment.reverses_entry_id.as_ref(), Some(&target.entry_id));
                        entries.push(adjustment);
                    }
                }
            }

            // Derived balances equal the sum of the entries, overall and per participant.
            let derived = balances(&entries).unwrap();
            let total: i128 = entries.iter().map(|e| i128::from(e.amount_minor)).sum();
            prop_assert_eq!(derived.iter().map(|b| i128::from(b.minor)).sum::<i128>(), total);
            for b in &derived {
                let direct: i128 = entries
                    .iter()
                    .filter(|e| e.participant_id == b.participant_id && e.role == b.role)
                    .map(|e| i128::from(e.amount_minor))
                    .sum();
                prop_assert_eq!(i128::from(b.minor), direct);
            }
            // A statement over all time closes at the same total.
            let end = start + Duration::days(day + 1);
            let figures = statement(&entries, start, end, end).unwrap();
            prop_assert_eq!(figures.iter().map(|f| i128::from(f.closing)).sum::<i128>(), total);
            prop_assert_eq!(figures.iter().map(|f| i128::from(f.held) + i128::from(f.released)).sum::<i128>(), total);

            for d in &deals {
                let view = d.loaded(&entries);
                // The live revenue credits sum to the basis exactly…
                let live: i64 = live_credits(&view.entries, view.revision)
                    .iter()
                    .filter(|e| e.role.is_revenue())
                    .map(|e| e.amount_minor)
                    .sum();
                prop_assert_eq!(live, view.deal.basis_minor);
                // …and so do all revenue credits net of split reversals, across revisions.
                let net: i64 = view.entries
                    .iter()
                    .filter(|e| e.role.is_revenue())
                    .filter(|e| e.kind == EntryKind::Credit
                        || (e.kind == EntryKind::Adjustment && e.reason.as_deref().is_some_and(|r| r.starts_with("split replaced"))))
                    .map(|e| e.amount_minor)
                    .sum();
                prop_assert_eq!(net, view.deal.basis_minor);
            }
        }
    }
}
