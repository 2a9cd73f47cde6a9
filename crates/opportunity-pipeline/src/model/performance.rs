//! Team performance in cross-sell (seed 001, "who is good at identifying and
//! closing opportunities?"): per participant, per team and for the whole
//! organisation, what was originated, handed off, accepted, won and lost in a
//! period, the win rate by motion, originated against won amount per currency,
//! and the average cycle.
//!
//! A person originates as an opportunity's originator and closes as its
//! owner; a team is its members (the team of the deals a person owns, most
//! recent first); the organisation counts every opportunity once. Which rows a
//! caller reads is [`select`]: people's performance is as private as their pay.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use contracts::Principal;
use contracts::access::Role;
use domain::{Currency, DateRange, Decimal, Money, Motion, Stage};

use super::forecast::{WinRate, mean_days, motion_win_rate};
use super::whitespace::ratio;

/// An opportunity as the performance figures see it.
#[derive(Debug, Clone, PartialEq)]
pub struct PerformanceDeal {
    pub opportunity_id: String,
    pub motion: Motion,
    pub amount: Money,
    pub stage: Stage,
    pub owner: Option<String>,
    pub owner_team: Option<String>,
    pub originator: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The business close date of a closed deal.
    pub close_date: Option<NaiveDate>,
    /// When it entered its closed stage (from its history).
    pub closed_at: Option<DateTime<Utc>>,
}

/// A handoff as the figures see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerformanceHandoff {
    pub opportunity_id: String,
    pub requested_at: DateTime<Utc>,
    /// When it was accepted and who took the deal.
    pub accepted: Option<(DateTime<Utc>, String)>,
}

/// Whose figures: everyone's (the organisation) or a set of people's.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Everyone,
    People(&'a BTreeSet<String>),
}

impl Scope<'_> {
    fn includes(&self, person: Option<&str>) -> bool {
        match self {
            Scope::Everyone => true,
            Scope::People(people) => person.is_some_and(|p| people.contains(p)),
        }
    }
}

/// Amounts of one currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Amounts {
    pub currency: Currency,
    pub originated: Money,
    pub won: Money,
    pub lost: Money,
}

/// The figures of one scope for one period.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub originated: i64,
    pub handed_off: i64,
    pub handoffs_accepted: i64,
    pub handoffs_taken: i64,
    pub won: i64,
    pub lost: i64,
    pub win_rate: Option<Decimal>,
    /// Motions with a closed deal, in motion order.
    pub win_rates_by_motion: Vec<WinRate>,
    /// Per currency, in currency-code order.
    pub amounts: Vec<Amounts>,
    pub avg_cycle_days: Option<Decimal>,
}

fn on_day_in(period: &DateRange, at: DateTime<Utc>) -> bool {
    period.contains(at.date_naive())
}

/// Opportunities the scope originated in the period: created in it, with an
/// originator of the scope.
pub fn originated<'a>(
    deals: &'a [PerformanceDeal],
    period: &DateRange,
    scope: Scope<'_>,
) -> Vec<&'a PerformanceDeal> {
    deals
        .iter()
        .filter(|d| on_day_in(period, d.created_at) && scope.includes(d.originator.as_deref()))
        .collect()
}

/// Deals the scope owns that closed as `stage` with a close date in the period.
pub fn closed<'a>(
    deals: &'a [PerformanceDeal],
    period: &DateRange,
    scope: Scope<'_>,
    stage: Stage,
) -> Vec<&'a PerformanceDeal> {
    deals
        .iter()
        .filter(|d| {
            d.stage == stage
                && d.close_date.is_some_and(|c| period.contains(c))
                && scope.includes(d.owner.as_deref())
        })
        .collect()
}

/// `(handed off, accepted)`: handoffs requested in the period of opportunities
/// the scope originated, and those of them accepted in the period.
pub fn handoffs_of_originated(
    deals: &[PerformanceDeal],
    handoffs: &[PerformanceHandoff],
    period: &DateRange,
    scope: Scope<'_>,
) -> (i64, i64) {
    let originators: BTreeMap<&str, Option<&str>> = deals
        .iter()
        .map(|d| (d.opportunity_id.as_str(), d.originator.as_deref()))
        .collect();
    let ours = handoffs.iter().filter(|h| {
        scope.includes(
            originators
                .get(h.opportunity_id.as_str())
                .copied()
                .flatten(),
        )
    });
    let mut requested = 0;
    let mut accepted = 0;
    for h in ours {
        if on_day_in(period, h.requested_at) {
            requested += 1;
        }
        if h.accepted
            .as_ref()
            .is_some_and(|(at, _)| on_day_in(period, *at))
        {
            accepted += 1;
        }
    }
    (requested, accepted)
}

/// Handoffs the scope accepted (took as Sales) in the period.
pub fn handoffs_taken(
    handoffs: &[PerformanceHandoff],
    period: &DateRange,
    scope: Scope<'_>,
) -> i64 {
    handoffs
        .iter()
        .filter(|h| {
            h.accepted
                .as_ref()
                .is_some_and(|(at, by)| on_day_in(period, *at) && scope.includes(Some(by)))
        })
        .count() as i64
}

/// Mean days from creation to close (the instant the closed stage was
/// entered), 2 places; `None` when no deal has both.
pub fn avg_cycle_days<'a>(deals: impl IntoIterator<Item = &'a PerformanceDeal>) -> Option<Decimal> {
    mean_days(
        deals
            .into_iter()
            .filter_map(|d| d.closed_at.map(|c| c - d.created_at)),
    )
}

/// Originated, won and lost amounts per currency, never mixed.
pub fn amounts(
    originated: &[&PerformanceDeal],
    won: &[&PerformanceDeal],
    lost: &[&PerformanceDeal],
) -> Vec<Amounts> {
    let mut sums: BTreeMap<&'static str, (Currency, [i128; 3])> = BTreeMap::new();
    for (slot, deals) in [originated, won, lost].into_iter().enumerate() {
        for d in deals {
            let c = d.amount.currency();
            let entry = sums.entry(c.code()).or_insert((c, [0; 3]));
            entry.1[slot] += i128::from(d.amount.minor());
        }
    }
    let money =
        |c: Currency, minor: i128| Money::from_minor(c, i64::try_from(minor).unwrap_or(i64::MAX));
    sums.into_values()
        .map(|(c, [o, w, l])| Amounts {
            currency: c,
            originated: money(c, o),
            won: money(c, w),
            lost: money(c, l),
        })
        .collect()
}

/// Every figure of `scope` for `period`.
pub fn figures(
    deals: &[PerformanceDeal],
    handoffs: &[PerformanceHandoff],
    period: &DateRange,
    scope: Scope<'_>,
) -> Figures {
    let originated = originated(deals, period, scope);
    let won = closed(deals, period, scope, Stage::ClosedWon);
    let lost = closed(deals, period, scope, Stage::ClosedLost);
    let (handed_off, handoffs_accepted) = handoffs_of_originated(deals, handoffs, period, scope);
    let win_rates_by_motion = Motion::ALL
        .iter()
        .map(|m| {
            let count = |set: &[&PerformanceDeal]| set.iter().filter(|d| d.motion == *m).count();
            motion_win_rate(*m, count(&won) as i64, count(&lost) as i64)
        })
        .filter(|w| w.won + w.lost > 0)
        .collect();
    Figures {
        originated: originated.len() as i64,
        handed_off,
        handoffs_accepted,
        handoffs_taken: handoffs_taken(handoffs, period, scope),
        won: won.len() as i64,
        lost: lost.len() as i64,
        win_rate: ratio(
            Decimal::from(won.len()),
            Decimal::from(won.len() + lost.len()),
        ),
        win_rates_by_motion,
        amounts: amounts(&originated, &won, &lost),
        avg_cycle_days: avg_cycle_days(won.iter().chain(lost.iter()).copied()),
    }
}

/// Each participant's team: the owner team of the latest-created deal they
/// own that names one. Participants who own none have no team.
pub fn teams_of(deals: &[PerformanceDeal]) -> BTreeMap<String, String> {
    let mut latest: BTreeMap<String, (DateTime<Utc>, &str, String)> = BTreeMap::new();
    for d in deals {
        let (Some(owner), Some(team)) = (&d.owner, &d.owner_team) else {
            continue;
        };
        let key = (d.created_at, d.opportunity_id.as_str());
        match latest.get(owner) {
            Some((at, id, _)) if (*at, *id) >= key => {}
            _ => {
                latest.insert(
                    owner.clone(),
                    (d.created_at, d.opportunity_id.as_str(), team.clone()),
                );
            }
        }
    }
    latest
        .into_iter()
        .map(|(person, (_, _, team))| (person, team))
        .collect()
}

/// Everyone who takes part: originators, owners and those who took a handoff.
pub fn participants(
    deals: &[PerformanceDeal],
    handoffs: &[PerformanceHandoff],
) -> BTreeSet<String> {
    deals
        .iter()
        .flat_map(|d| [d.originator.clone(), d.owner.clone()])
        .flatten()
        .chain(
            handoffs
                .iter()
                .filter_map(|h| h.accepted.clone().map(|(_, by)| by)),
        )
        .collect()
}

/// Whether a participant did anything in the period (a row worth showing).
pub fn is_active(f: &Figures) -> bool {
    f.originated + f.handed_off + f.handoffs_accepted + f.handoffs_taken + f.won + f.lost > 0
}

/// Each participant's figures: those `asked` for, even when idle (`None`:
/// everyone who did something in the period), in name order.
pub fn participant_figures(
    deals: &[PerformanceDeal],
    handoffs: &[PerformanceHandoff],
    period: &DateRange,
    asked: Option<BTreeSet<String>>,
) -> Vec<(String, Figures)> {
    let of = |p: String| {
        let one = BTreeSet::from([p.clone()]);
        let f = figures(deals, handoffs, period, Scope::People(&one));
        (p, f)
    };
    match asked {
        None => participants(deals, handoffs)
            .into_iter()
            .map(of)
            .filter(|(_, f)| is_active(f))
            .collect(),
        Some(names) => names.into_iter().map(of).collect(),
    }
}

/// One team's row: its members (by `teams_of`) and their figures together.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamFigures {
    pub team: String,
    pub members: BTreeSet<String>,
    pub figures: Figures,
}

/// The figures of the teams `asked` for (`None`: every team a participant
/// is in), in team order; `teams` is each participant's team.
pub fn team_figures(
    deals: &[PerformanceDeal],
    handoffs: &[PerformanceHandoff],
    period: &DateRange,
    teams: &BTreeMap<String, String>,
    asked: Option<BTreeSet<String>>,
) -> Vec<TeamFigures> {
    let mut members: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (person, t) in teams {
        members
            .entry(t.as_str())
            .or_default()
            .insert(person.clone());
    }
    let team_names: BTreeSet<String> = match asked {
        None => members.keys().map(|t| (*t).to_owned()).collect(),
        Some(names) => names,
    };
    team_names
        .into_iter()
        .map(|team| {
            let people = members.get(team.as_str()).cloned().unwrap_or_default();
            let figures = figures(deals, handoffs, period, Scope::People(&people));
            TeamFigures {
                team,
                members: people,
                figures,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Who reads which rows

/// A csm/ae asked for another person's performance.
pub const PERFORMANCE_OF_ANOTHER_PERSON: &str = "PERFORMANCE_OF_ANOTHER_PERSON";
/// A csm/ae asked for a team it does not manage.
pub const TEAM_NOT_MANAGED: &str = "TEAM_NOT_MANAGED";
/// A viewer asked for a person's row.
pub const TOTALS_ONLY_FOR_VIEWER: &str = "TOTALS_ONLY_FOR_VIEWER";

/// A rule that refused the read: PERMISSION_DENIED with `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

/// Which rows an answer carries. `None` means every one there is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub participants: Option<BTreeSet<String>>,
    pub teams: Option<BTreeSet<String>>,
}

/// The rows `caller` reads, asking for `participant` and/or `team`, given
/// each participant's team (`teams`):
/// - admin, revops, connector: what they ask for (everyone by default);
/// - csm, ae: their own row, and the team they manage (its row and its
///   members'); naming anyone or any team else is refused;
/// - viewer: team rows only; naming a person is refused.
///
/// The organisation's total is in every answer.
pub fn select(
    caller: &Principal,
    participant: Option<&str>,
    team: Option<&str>,
    teams: &BTreeMap<String, String>,
) -> Result<Selection, Refusal> {
    match caller.role {
        Role::Admin | Role::Revops | Role::Connector => Ok(select_any(participant, team, teams)),
        Role::Viewer => select_totals(participant, team),
        Role::Csm | Role::Ae => select_own(caller, participant, team, teams),
    }
}

/// The people `teams` puts in team `t`.
fn members_of(teams: &BTreeMap<String, String>, t: &str) -> BTreeSet<String> {
    teams
        .iter()
        .filter(|(_, team)| team.as_str() == t)
        .map(|(person, _)| person.clone())
        .collect()
}

fn one(s: &str) -> Option<BTreeSet<String>> {
    Some(BTreeSet::from([s.to_owned()]))
}

fn named(t: Option<&str>) -> BTreeSet<String> {
    t.into_iter().map(str::to_owned).collect()
}

/// Admin, revops, connector: what they ask for, everyone by default.
fn select_any(
    participant: Option<&str>,
    team: Option<&str>,
    teams: &BTreeMap<String, String>,
) -> Selection {
    match (participant, team) {
        (Some(p), _) => Selection {
            participants: one(p),
            teams: Some(named(team)),
        },
        (None, Some(t)) => Selection {
            participants: Some(members_of(teams, t)),
            teams: one(t),
        },
        (None, None) => Selection {
            participants: None,
            teams: None,
        },
    }
}

/// Viewer: team rows only; naming a person is refused.
fn select_totals(participant: Option<&str>, team: Option<&str>) -> Result<Selection, Refusal> {
    match participant {
        Some(_) => Err(Refusal {
            reason: TOTALS_ONLY_FOR_VIEWER,
            message: "a viewer key reads team and organisation totals, never a person's \
                      performance"
                .into(),
        }),
        None => Ok(Selection {
            participants: Some(BTreeSet::new()),
            teams: team.and_then(one),
        }),
    }
}

/// Csm, ae: their own row, and the team they manage (its row and its
/// members'); naming anyone or any team else is refused.
fn select_own(
    caller: &Principal,
    participant: Option<&str>,
    team: Option<&str>,
    teams: &BTreeMap<String, String>,
) -> Result<Selection, Refusal> {
    let me = caller.person();
    let managed = caller.manages.as_deref();
    let members = managed.map(|t| members_of(teams, t)).unwrap_or_default();
    if let Some(t) = team
        && managed != Some(t)
    {
        return Err(Refusal {
            reason: TEAM_NOT_MANAGED,
            message: format!(
                "the key {me:?} does not manage team {t:?}{}",
                managed
                    .map(|own| format!(" (it manages {own:?})"))
                    .unwrap_or_default()
            ),
        });
    }
    match participant {
        Some(p) if p == me || members.contains(p) => Ok(Selection {
            participants: one(p),
            teams: Some(named(team)),
        }),
        Some(p) => Err(Refusal {
            reason: PERFORMANCE_OF_ANOTHER_PERSON,
            message: format!(
                "the key {me:?} reads its own performance{}, not {p:?}'s",
                managed
                    .map(|t| format!(" and team {t:?}'s"))
                    .unwrap_or_default()
            ),
        }),
        None => {
            let mut people = members;
            if team.is_none() {
                people.insert(me.to_owned());
            }
            Ok(Selection {
                participants: Some(people),
                teams: Some(managed.map(str::to_owned).into_iter().collect()),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
    }

    fn march() -> DateRange {
        domain::Month::parse("2026-03").unwrap().date_range()
    }

    #[allow(clippy::too_many_arguments)]
    fn deal(
        id: &str,
        motion: Motion,
        amount: &str,
        stage: Stage,
        originator: &str,
        owner: &str,
        team: &str,
        created: u32,
        closed: Option<u32>,
    ) -> PerformanceDeal {
        PerformanceDeal {
            opportunity_id: id.into(),
            motion,
            amount: Money::parse(
                if amount.starts_with('€') {
                    "EUR"
                } else {
                    "USD"
                },
                amount.trim_start_matches('€'),
            )
            .unwrap(),
            stage,
            owner: Some(owner.into()),
            owner_team: Some(team.into()),
            originator: Some(originator.into()),
            created_at: at(created),
            close_date: closed.map(|d| at(d).date_naive()),
            closed_at: closed.map(at),
        }
    }

    /// March 2026: carla (CS) originates four deals, mei (CS) one; alex (AE)
    /// takes two handoffs. Figures a reader can check by hand.
    fn book() -> (Vec<PerformanceDeal>, Vec<PerformanceHandoff>) {
        use Motion::*;
        use Stage::*;
        let deals = vec![
            // Handed off to alex, won on the 21st: a 20-day cycle.
            deal(
                "o1",
                CrossSellAdjacent,
                "60000",
                ClosedWon,
                "carla",
                "alex",
                "sales",
                1,
                Some(21),
            ),
            // Handed off to alex, lost on the 11th: a 10-day cycle.
            deal(
                "o2",
                CrossSellAdjacent,
                "40000",
                ClosedLost,
                "carla",
                "alex",
                "sales",
                1,
                Some(11),
            ),
            // CS-led: carla owns and wins it (4 days).
            deal(
                "o3",
                UpsellCapacity,
                "9000",
                ClosedWon,
                "carla",
                "carla",
                "cs",
                2,
                Some(6),
            ),
            // Still open, in euros.
            deal(
                "o4", UpsellTier, "€30000", Exploring, "carla", "carla", "cs", 3, None,
            ),
            // mei's, lost after 14 days.
            deal(
                "o5",
                UpsellTier,
                "20000",
                ClosedLost,
                "mei",
                "mei",
                "cs",
                4,
                Some(18),
            ),
            // February's: originated before the period, won in it (by alex).
            PerformanceDeal {
                created_at: Utc.with_ymd_and_hms(2026, 2, 20, 12, 0, 0).unwrap(),
                ..deal(
                    "o6",
                    UpsellTier,
                    "100000",
                    ClosedWon,
                    "mei",
                    "alex",
                    "sales",
                    1,
                    Some(2),
                )
            },
        ];
        let handoffs = vec![
            PerformanceHandoff {
                opportunity_id: "o1".into(),
                requested_at: at(3),
                accepted: Some((at(4), "alex".into())),
            },
            PerformanceHandoff {
                opportunity_id: "o2".into(),
                requested_at: at(5),
                accepted: Some((at(6), "alex".into())),
            },
            // Requested in February, accepted in March.
            PerformanceHandoff {
                opportunity_id: "o6".into(),
                requested_at: Utc.with_ymd_and_hms(2026, 2, 25, 9, 0, 0).unwrap(),
                accepted: Some((at(1), "alex".into())),
            },
        ];
        (deals, handoffs)
    }

    fn person(name: &str) -> BTreeSet<String> {
        BTreeSet::from([name.to_owned()])
    }

    #[test]
    fn a_csm_originates_hands_off_and_closes_what_she_keeps() {
        let (deals, handoffs) = book();
        let carla = person("carla");
        let f = figures(&deals, &handoffs, &march(), Scope::People(&carla));
        assert_eq!(f.originated, 4);
        assert_eq!(
            (f.handed_off, f.handoffs_accepted, f.handoffs_taken),
            (2, 2, 0)
        );
        // She owns o3 only among the closed: 1 won, 0 lost.
        assert_eq!((f.won, f.lost), (1, 0));
        assert_eq!(f.win_rate, Some(Decimal::ONE.round_dp(4)));
        // Originated 60,000 + 40,000 + 9,000 USD and 30,000 EUR; won 9,000 USD.
        assert_eq!(f.amounts.len(), 2);
        assert_eq!(f.amounts[0].currency.code(), "EUR");
        assert_eq!(f.amounts[0].originated.to_amount_string(), "30000.00");
        assert_eq!(f.amounts[1].originated.to_amount_string(), "109000.00");
        assert_eq!(f.amounts[1].won.to_amount_string(), "9000.00");
        assert_eq!(f.avg_cycle_days, Some(Decimal::new(400, 2)));
    }

    #[test]
    fn an_ae_takes_handoffs_and_closes() {
        let (deals, handoffs) = book();
        let alex = person("alex");
        let f = figures(&deals, &handoffs, &march(), Scope::People(&alex));
        assert_eq!(f.originated, 0);
        assert_eq!(f.handoffs_taken, 3);
        // Won o1 (60,000) and o6 (100,000), lost o2 (40,000): 2 of 3.
        assert_eq!((f.won, f.lost), (2, 1));
        assert_eq!(f.win_rate, Some(Decimal::new(6667, 4)));
        assert_eq!(f.amounts[0].won.to_amount_string(), "160000.00");
        assert_eq!(f.amounts[0].lost.to_amount_string(), "40000.00");
        // Cross-sell adjacent: 1 won of 2 = 0.5, above the 10–18% band.
        let adjacent = f
            .win_rates_by_motion
            .iter()
            .find(|w| w.motion == Motion::CrossSellAdjacent)
            .unwrap();
        assert_eq!(adjacent.rate, Some(Decimal::new(5000, 4)));
        assert_eq!(adjacent.verdict, Some(domain::BenchmarkVerdict::Above));
        assert_eq!(f.win_rates_by_motion.len(), 2);
        // Cycles: o1 20 days, o2 10 days, o6 from Feb 20 to Mar 2 = 10 days → 13.33.
        assert_eq!(f.avg_cycle_days, Some(Decimal::new(1333, 2)));
    }

    #[test]
    fn the_organisation_counts_every_deal_once() {
        let (deals, handoffs) = book();
        let f = figures(&deals, &handoffs, &march(), Scope::Everyone);
        assert_eq!(f.originated, 5);
        // o6's handoff was requested in February: not March's.
        assert_eq!(
            (f.handed_off, f.handoffs_accepted, f.handoffs_taken),
            (2, 3, 3)
        );
        assert_eq!((f.won, f.lost), (3, 2));
        assert_eq!(f.win_rate, Some(Decimal::new(6000, 4)));
        // Won 60,000 + 9,000 + 100,000.
        assert_eq!(f.amounts[1].won.to_amount_string(), "169000.00");
        // (20 + 10 + 4 + 14 + 10) / 5 = 11.6
        assert_eq!(f.avg_cycle_days, Some(Decimal::new(1160, 2)));
        // Another month: nothing at all.
        let april = domain::Month::parse("2026-04").unwrap().date_range();
        let quiet = figures(&deals, &handoffs, &april, Scope::Everyone);
        assert!(!is_active(&quiet));
        assert_eq!(quiet.win_rate, None);
        assert_eq!(quiet.avg_cycle_days, None);
    }

    #[test]
    fn teams_are_the_teams_of_the_deals_people_own() {
        let (deals, handoffs) = book();
        let teams = teams_of(&deals);
        assert_eq!(teams.get("alex").map(String::as_str), Some("sales"));
        assert_eq!(teams.get("carla").map(String::as_str), Some("cs"));
        assert_eq!(teams.get("mei").map(String::as_str), Some("cs"));
        assert_eq!(
            participants(&deals, &handoffs),
            ["alex", "carla", "mei"].map(String::from).into()
        );
        // A team's figures are its members': carla's and mei's.
        let cs: BTreeSet<String> = ["carla", "mei"].map(String::from).into();
        let f = figures(&deals, &handoffs, &march(), Scope::People(&cs));
        assert_eq!((f.originated, f.won, f.lost), (5, 1, 1));
    }

    #[test]
    fn rows_are_the_active_participants_or_those_asked_for_and_the_teams() {
        let (deals, handoffs) = book();
        let teams = teams_of(&deals);
        let april = domain::Month::parse("2026-04").unwrap().date_range();
        let names = |rows: &[(String, Figures)]| -> Vec<String> {
            rows.iter().map(|(p, _)| p.clone()).collect()
        };
        let everyone = participant_figures(&deals, &handoffs, &march(), None);
        assert_eq!(names(&everyone), ["alex", "carla", "mei"]);
        // Nobody did anything in April; someone asked for is shown anyway.
        assert!(participant_figures(&deals, &handoffs, &april, None).is_empty());
        let asked = participant_figures(&deals, &handoffs, &april, Some(person("mei")));
        assert_eq!(names(&asked), ["mei"]);
        assert!(!is_active(&asked[0].1));
        let rows = team_figures(&deals, &handoffs, &march(), &teams, None);
        let team_names: Vec<&str> = rows.iter().map(|t| t.team.as_str()).collect();
        assert_eq!(team_names, ["cs", "sales"]);
        assert_eq!(rows[0].members, ["carla", "mei"].map(String::from).into());
        assert_eq!((rows[0].figures.originated, rows[0].figures.won), (5, 1));
        // A team nobody is in: its row, empty.
        let ops = team_figures(&deals, &handoffs, &march(), &teams, Some(person("ops")));
        assert!(ops[0].members.is_empty());
        assert!(!is_active(&ops[0].figures));
    }

    #[test]
    fn who_reads_which_rows() {
        let (deals, _) = book();
        let teams = teams_of(&deals);
        let key = |name: &str, role, manages: Option<&str>| {
            Principal::new(name, role).managing(manages.map(String::from))
        };
        let set = |names: &[&str]| -> Option<BTreeSet<String>> {
            Some(names.iter().map(|n| n.to_string()).collect())
        };
        // A rep: own row by default, and asking for someone else is refused.
        let mei = key("mei", Role::Csm, None);
        let own = select(&mei, None, None, &teams).unwrap();
        assert_eq!(own.participants, set(&["mei"]));
        assert_eq!(own.teams, set(&[]));
        assert_eq!(
            select(&mei, Some("carla"), None, &teams)
                .unwrap_err()
                .reason,
            PERFORMANCE_OF_ANOTHER_PERSON
        );
        assert_eq!(
            select(&mei, None, Some("cs"), &teams).unwrap_err().reason,
            TEAM_NOT_MANAGED
        );
        // The CS manager: the team and its members.
        let lead = key("lena", Role::Csm, Some("cs"));
        let view = select(&lead, None, None, &teams).unwrap();
        assert_eq!(view.participants, set(&["carla", "lena", "mei"]));
        assert_eq!(view.teams, set(&["cs"]));
        let carla = select(&lead, Some("carla"), None, &teams).unwrap();
        assert_eq!(carla.participants, set(&["carla"]));
        assert_eq!(carla.teams, set(&[]), "no other team's totals");
        assert_eq!(
            select(&lead, Some("alex"), None, &teams)
                .unwrap_err()
                .reason,
            PERFORMANCE_OF_ANOTHER_PERSON
        );
        assert_eq!(
            select(&lead, None, Some("cs"), &teams)
                .unwrap()
                .participants,
            set(&["carla", "mei"])
        );
        // A viewer: teams and the total, no person.
        let viewer = key("board", Role::Viewer, None);
        let totals = select(&viewer, None, None, &teams).unwrap();
        assert_eq!(totals.participants, set(&[]));
        assert_eq!(totals.teams, None);
        assert_eq!(
            select(&viewer, Some("mei"), None, &teams)
                .unwrap_err()
                .reason,
            TOTALS_ONLY_FOR_VIEWER
        );
        // RevOps: everyone, or what it names.
        let revops = key("rita", Role::Revops, None);
        assert_eq!(
            select(&revops, None, None, &teams).unwrap(),
            Selection {
                participants: None,
                teams: None
            }
        );
        assert_eq!(
            select(&revops, None, Some("sales"), &teams)
                .unwrap()
                .participants,
            set(&["alex"])
        );
    }

    proptest::proptest! {
        /// Splitting everyone into teams never changes a count: the people's
        /// originated, won and lost add up to the organisation's when every
        /// deal has an originator and an owner.
        #[test]
        fn people_add_up_to_the_organisation(
            rows in proptest::collection::vec((0usize..3, 0usize..3, 0usize..7, 1u32..28, 1u32..28), 0..40)
        ) {
            let names = ["a", "b", "c"];
            let deals: Vec<PerformanceDeal> = rows
                .iter()
                .enumerate()
                .map(|(i, (o, w, s, c, d))| {
                    let stage = Stage::ALL[*s];
                    let closed = stage.is_closed().then_some((*c).max(*d));
                    deal(&format!("o{i}"), Motion::UpsellTier, "100", stage, names[*o], names[*w], "t", *c, closed)
                })
                .collect();
            let total = figures(&deals, &[], &march(), Scope::Everyone);
            let mut sum = (0, 0, 0);
            for n in names {
                let p = person(n);
                let f = figures(&deals, &[], &march(), Scope::People(&p));
                sum = (sum.0 + f.originated, sum.1 + f.won, sum.2 + f.lost);
            }
            proptest::prop_assert_eq!(sum, (total.originated, total.won, total.lost));
        }
    }
}
