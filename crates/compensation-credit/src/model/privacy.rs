//! People's pay is private: who reads which rows of the ledger, and who may
//! approve, adjust, rule on or dispute them. Pure rules over the caller and the
//! rows; the API asks them before it answers or writes.
//!
//! - revops, admin and connector keys read everything.
//! - A csm or ae key is bound to the person its name is: it reads that
//!   person's entries, deal credits, statements, disputes and events, and,
//!   for a key that manages a team, the team's (members by the people
//!   directory, or entries credited to the team). Asking by name for anyone
//!   else is refused, never answered empty.
//! - A viewer reads team and organisation totals, never a person's entries.
//! - Separation of duties, admin included: nobody approves, re-splits, rules
//!   on or adjusts an entry credited to themselves; a csm or ae disputes only
//!   their own entries.

use std::collections::BTreeSet;

use contracts::Principal;
use contracts::access::Role;

/// A rule that refused a call: PERMISSION_DENIED with `reason` in its ErrorInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

fn refuse(reason: &'static str, message: String) -> Refusal {
    Refusal { reason, message }
}

/// A csm/ae asked for another person's credit (entries, statement, disputes).
pub const CREDIT_OF_ANOTHER_PERSON: &str = "CREDIT_OF_ANOTHER_PERSON";
/// A csm/ae asked for a team it does not manage.
pub const TEAM_NOT_MANAGED: &str = "TEAM_NOT_MANAGED";
/// A csm/ae asked for a deal in which neither they nor their team take part.
pub const DEAL_OF_OTHER_PEOPLE: &str = "DEAL_OF_OTHER_PEOPLE";
/// A viewer asked for a person's entries.
pub const TOTALS_ONLY_FOR_VIEWER: &str = "TOTALS_ONLY_FOR_VIEWER";
/// Approving an entry credited to the approver.
pub const APPROVAL_OF_OWN_CREDIT: &str = "APPROVAL_OF_OWN_CREDIT";
/// Replacing the splits of a deal that credits the caller (before or after).
pub const SPLIT_CHANGE_OF_OWN_CREDIT: &str = "SPLIT_CHANGE_OF_OWN_CREDIT";
/// Rejecting a dispute over an entry credited to the caller.
pub const RULING_ON_OWN_CREDIT: &str = "RULING_ON_OWN_CREDIT";
/// Adjusting (a dispute's ADJUSTMENT) an entry credited to the caller.
pub const ADJUSTMENT_OF_OWN_CREDIT: &str = "ADJUSTMENT_OF_OWN_CREDIT";
/// A csm/ae disputing an entry credited to someone else.
pub const DISPUTE_OF_ANOTHER_PERSONS_CREDIT: &str = "DISPUTE_OF_ANOTHER_PERSONS_CREDIT";

/// What a person key may read: its own rows and its managed team's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonScope {
    pub person: String,
    /// The team the key manages.
    pub team: Option<String>,
    /// People of the directory in that team.
    pub members: BTreeSet<String>,
}

impl PersonScope {
    /// Whether a row credited to `participant` (rolled up to `team`) is this
    /// key's to read.
    pub fn sees(&self, participant: &str, team: Option<&str>) -> bool {
        participant == self.person
            || self.members.contains(participant)
            || (self.team.is_some() && team == self.team.as_deref())
    }

    /// Whether a participant named on its own is this key's to read.
    pub fn sees_person(&self, participant: &str) -> bool {
        participant == self.person || self.members.contains(participant)
    }
}

/// What a caller reads of people's credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// revops, admin, connector (and the local caller of a keyless server).
    Everything,
    /// csm and ae keys.
    Person(PersonScope),
    /// viewer keys: totals only.
    TotalsOnly,
}

/// The kind of reader a principal is; a person's `members` come from the
/// directory, given by the caller when the key manages a team.
pub fn reader_of(principal: &Principal, members: BTreeSet<String>) -> Reader {
    match principal.role {
        Role::Admin | Role::Revops | Role::Connector => Reader::Everything,
        Role::Csm | Role::Ae => Reader::Person(PersonScope {
            person: principal.name.clone(),
            team: principal.manages.clone(),
            members,
        }),
        Role::Viewer => Reader::TotalsOnly,
    }
}

impl Reader {
    /// Whether a row credited to `participant` (team `team`) may be shown.
    pub fn sees(&self, participant: &str, team: Option<&str>) -> bool {
        match self {
            Reader::Everything => true,
            Reader::Person(scope) => scope.sees(participant, team),
            Reader::TotalsOnly => false,
        }
    }

    /// Whether any of the rows (participant, team) may be shown: what lets
    /// an event or a deal through.
    pub fn sees_any<'a>(&self, rows: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> bool {
        match self {
            Reader::Everything => true,
            _ => rows.into_iter().any(|(p, t)| self.sees(p, t)),
        }
    }
}

/// A list of a person's rows (ledger entries, disputes), optionally named by
/// `participant`: refused for a viewer, and for a person key that names
/// someone outside its scope.
pub fn check_person_rows(reader: &Reader, participant: Option<&str>) -> Result<(), Refusal> {
    match (reader, participant) {
        (Reader::Everything, _) => Ok(()),
        (Reader::TotalsOnly, _) => Err(refuse(
            TOTALS_ONLY_FOR_VIEWER,
            "a viewer key reads team and organisation totals, never a person's entries".into(),
        )),
        (Reader::Person(_), None) => Ok(()),
        (Reader::Person(scope), Some(p)) if scope.sees_person(p) => Ok(()),
        (Reader::Person(scope), Some(p)) => Err(refuse(
            CREDIT_OF_ANOTHER_PERSON,
            format!(
                "the key {:?} reads its own credit{}, not {p:?}'s",
                scope.person,
                team_clause(scope)
            ),
        )),
    }
}

fn team_clause(scope: &PersonScope) -> String {
    scope
        .team
        .as_deref()
        .map(|t| format!(" and team {t:?}'s"))
        .unwrap_or_default()
}

/// Whose statement a call gets, and whether it may show entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementAccess {
    /// The participant whose statement it is (a person key asking for no one
    /// gets its own).
    pub participant: Option<String>,
    pub team: Option<String>,
    /// False for a viewer: the figures come without the entries.
    pub entries: bool,
}

/// GetStatement's rule: a person key reads its own statement (the default)
/// and its managed team's; a viewer reads team and organisation totals.
pub fn statement_access(
    reader: &Reader,
    participant: Option<&str>,
    team: Option<&str>,
) -> Result<StatementAccess, Refusal> {
    let access = |participant: Option<&str>, team: Option<&str>, entries| StatementAccess {
        participant: participant.map(str::to_owned),
        team: team.map(str::to_owned),
        entries,
    };
    match reader {
        Reader::Everything => Ok(access(participant, team, true)),
        Reader::TotalsOnly => match participant {
            Some(_) => Err(refuse(
                TOTALS_ONLY_FOR_VIEWER,
                "a viewer key reads team and organisation statements, never a person's".into(),
            )),
            None => Ok(access(None, team, false)),
        },
        Reader::Person(scope) => match (participant, team) {
            (Some(p), _) => {
                check_person_rows(reader, Some(p))?;
                Ok(access(Some(p), None, true))
            }
            (None, Some(t)) if scope.team.as_deref() == Some(t) => Ok(access(None, Some(t), true)),
            (None, Some(t)) => Err(refuse(
                TEAM_NOT_MANAGED,
                format!(
                    "the key {:?} does not manage team {t:?}{}",
                    scope.person,
                    scope
                        .team
                        .as_deref()
                        .map(|own| format!(" (it manages {own:?})"))
                        .unwrap_or_default()
                ),
            )),
            (None, None) => Ok(access(Some(&scope.person), None, true)),
        },
    }
}

/// GetDealCredits' rule: a viewer reads no deal's credits; a person key reads
/// a deal in which it (or its team) has a row, and only those rows.
pub fn check_deal_read<'a>(
    reader: &Reader,
    deal_id: &str,
    rows: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), Refusal> {
    match reader {
        Reader::Everything => Ok(()),
        Reader::TotalsOnly => Err(refuse(
            TOTALS_ONLY_FOR_VIEWER,
            "a viewer key reads team and organisation totals, never a deal's credits".into(),
        )),
        Reader::Person(scope) => {
            if reader.sees_any(rows) {
                Ok(())
            } else {
                Err(refuse(
                    DEAL_OF_OTHER_PEOPLE,
                    format!(
                        "deal {deal_id} credits neither {:?}{}",
                        scope.person,
                        scope
                            .team
                            .as_deref()
                            .map(|t| format!(" nor team {t:?}"))
                            .unwrap_or_default()
                    ),
                ))
            }
        }
    }
}

/// Nobody approves an entry credited to themselves (admin included).
pub fn check_approval<'a>(
    approver: &str,
    participants: impl IntoIterator<Item = &'a str>,
) -> Result<(), Refusal> {
    match participants.into_iter().find(|p| *p == approver) {
        Some(_) => Err(refuse(
            APPROVAL_OF_OWN_CREDIT,
            format!(
                "{approver:?} may not approve credit paid to {approver:?}; another approver must"
            ),
        )),
        None => Ok(()),
    }
}

/// Nobody replaces the splits of a deal that credits them, before or after.
pub fn check_split_change<'a>(
    principal: &str,
    deal_id: &str,
    participants: impl IntoIterator<Item = &'a str>,
) -> Result<(), Refusal> {
    match participants.into_iter().find(|p| *p == principal) {
        Some(_) => Err(refuse(
            SPLIT_CHANGE_OF_OWN_CREDIT,
            format!("{principal:?} is credited on deal {deal_id} and may not change its splits"),
        )),
        None => Ok(()),
    }
}

/// Nobody rules on a dispute over an entry credited to themselves; an
/// adjustment needs a principal other than the participant.
pub fn check_ruling(principal: &str, participant: &str, adjust: bool) -> Result<(), Refusal> {
    if principal != participant {
        return Ok(());
    }
    Err(if adjust {
        refuse(
            ADJUSTMENT_OF_OWN_CREDIT,
            format!("{principal:?} may not adjust an entry credited to {principal:?}"),
        )
    } else {
        refuse(
            RULING_ON_OWN_CREDIT,
            format!("{principal:?} may not rule on a dispute over their own credit"),
        )
    })
}

/// A csm or ae disputes only their own entries; revops and admin any.
pub fn check_dispute_open(opener: &Principal, participant: &str) -> Result<(), Refusal> {
    match opener.role {
        Role::Csm | Role::Ae if participant != opener.name => Err(refuse(
            DISPUTE_OF_ANOTHER_PERSONS_CREDIT,
            format!(
                "the key {:?} disputes its own entries only; this one credits {participant:?}",
                opener.name
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(name: &str, role: Role, manages: Option<&str>) -> Principal {
        Principal::new(name, role).managing(manages.map(str::to_owned))
    }

    fn person(name: &str, role: Role) -> Reader {
        reader_of(&key(name, role, None), BTreeSet::new())
    }

    fn lead() -> Reader {
        reader_of(
            &key("max.lead", Role::Ae, Some("enterprise-sales")),
            BTreeSet::from(["bea.ae".to_owned()]),
        )
    }

    #[test]
    fn roles_read_all_their_own_or_totals() {
        for role in [Role::Admin, Role::Revops, Role::Connector] {
            assert_eq!(person("x", role), Reader::Everything);
        }
        assert_eq!(person("vera", Role::Viewer), Reader::TotalsOnly);
        let ana = person("ana.ae", Role::Ae);
        assert!(ana.sees("ana.ae", None));
        assert!(!ana.sees("bea.ae", None));
        assert!(!ana.sees("bea.ae", Some("enterprise-sales")));
        assert!(!Reader::TotalsOnly.sees("ana.ae", None));
        assert!(Reader::Everything.sees("anyone", None));
    }

    #[test]
    fn a_manager_reads_the_team_by_directory_and_by_entry_team() {
        let lead = lead();
        assert!(lead.sees("max.lead", None));
        assert!(lead.sees("bea.ae", None));
        assert!(lead.sees("cy.ae", Some("enterprise-sales")));
        assert!(!lead.sees("cy.ae", Some("mid-market")));
        assert!(!lead.sees("cy.ae", None));
        assert!(check_person_rows(&lead, Some("bea.ae")).is_ok());
        let err = check_person_rows(&lead, Some("cy.ae")).unwrap_err();
        assert_eq!(err.reason, CREDIT_OF_ANOTHER_PERSON);
    }

    #[test]
    fn naming_another_person_is_refused_not_emptied() {
        let ana = person("ana.ae", Role::Ae);
        assert!(check_person_rows(&ana, None).is_ok());
        assert!(check_person_rows(&ana, Some("ana.ae")).is_ok());
        let err = check_person_rows(&ana, Some("bea.ae")).unwrap_err();
        assert_eq!(err.reason, CREDIT_OF_ANOTHER_PERSON);
        assert!(err.message.contains("bea.ae"));
        let err = check_person_rows(&Reader::TotalsOnly, None).unwrap_err();
        assert_eq!(err.reason, TOTALS_ONLY_FOR_VIEWER);
        assert!(check_person_rows(&Reader::Everything, Some("bea.ae")).is_ok());
    }

    #[test]
    fn statements_default_to_ones_own_and_viewers_get_figures_only() {
        let ana = person("ana.ae", Role::Ae);
        let own = statement_access(&ana, None, None).unwrap();
        assert_eq!(own.participant.as_deref(), Some("ana.ae"));
        assert!(own.entries);
        let err = statement_access(&ana, Some("bea.ae"), None).unwrap_err();
        assert_eq!(err.reason, CREDIT_OF_ANOTHER_PERSON);
        let err = statement_access(&ana, None, Some("enterprise-sales")).unwrap_err();
        assert_eq!(err.reason, TEAM_NOT_MANAGED);
        let team = statement_access(&lead(), None, Some("enterprise-sales")).unwrap();
        assert_eq!(team.team.as_deref(), Some("enterprise-sales"));
        assert!(team.entries);
        let err = statement_access(&lead(), None, Some("mid-market")).unwrap_err();
        assert_eq!(err.reason, TEAM_NOT_MANAGED);

        let viewer = Reader::TotalsOnly;
        let org = statement_access(&viewer, None, None).unwrap();
        assert_eq!((org.participant, org.entries), (None, false));
        let team = statement_access(&viewer, None, Some("enterprise-sales")).unwrap();
        assert!(!team.entries);
        let err = statement_access(&viewer, Some("ana.ae"), None).unwrap_err();
        assert_eq!(err.reason, TOTALS_ONLY_FOR_VIEWER);

        let all = statement_access(&Reader::Everything, None, None).unwrap();
        assert_eq!((all.participant, all.entries), (None, true));
    }

    #[test]
    fn a_deal_is_read_by_those_it_credits() {
        let rows = [("ana.ae", None), ("carla.csm", Some("cs"))];
        assert!(check_deal_read(&person("ana.ae", Role::Ae), "d", rows).is_ok());
        let err = check_deal_read(&person("bea.ae", Role::Ae), "d", rows).unwrap_err();
        assert_eq!(err.reason, DEAL_OF_OTHER_PEOPLE);
        let err = check_deal_read(&Reader::TotalsOnly, "d", rows).unwrap_err();
        assert_eq!(err.reason, TOTALS_ONLY_FOR_VIEWER);
        assert!(check_deal_read(&Reader::Everything, "d", rows).is_ok());
    }

    #[test]
    fn nobody_approves_adjusts_or_rules_on_their_own_credit() {
        assert!(check_approval("rita.revops", ["ana.ae", "carla.csm"]).is_ok());
        let err = check_approval("rita.revops", ["ana.ae", "rita.revops"]).unwrap_err();
        assert_eq!(err.reason, APPROVAL_OF_OWN_CREDIT);
        // Admin is no exception: the rule looks at names, not roles.
        assert_eq!(
            check_approval("root", ["root"]).unwrap_err().reason,
            APPROVAL_OF_OWN_CREDIT
        );
        assert!(check_split_change("rita.revops", "d", ["ana.ae"]).is_ok());
        assert_eq!(
            check_split_change("rita.revops", "d", ["rita.revops"])
                .unwrap_err()
                .reason,
            SPLIT_CHANGE_OF_OWN_CREDIT
        );
        assert!(check_ruling("root", "ana.ae", true).is_ok());
        assert_eq!(
            check_ruling("root", "root", true).unwrap_err().reason,
            ADJUSTMENT_OF_OWN_CREDIT
        );
        assert_eq!(
            check_ruling("root", "root", false).unwrap_err().reason,
            RULING_ON_OWN_CREDIT
        );
    }

    #[test]
    fn reps_dispute_their_own_entries_and_revops_any() {
        let ana = key("ana.ae", Role::Ae, None);
        assert!(check_dispute_open(&ana, "ana.ae").is_ok());
        assert_eq!(
            check_dispute_open(&ana, "bea.ae").unwrap_err().reason,
            DISPUTE_OF_ANOTHER_PERSONS_CREDIT
        );
        // A team lead disputes for no one but themselves.
        let lead = key("max.lead", Role::Csm, Some("cs"));
        assert!(check_dispute_open(&lead, "carla.csm").is_err());
        assert!(check_dispute_open(&key("rita", Role::Revops, None), "bea.ae").is_ok());
        assert!(check_dispute_open(&key("root", Role::Admin, None), "bea.ae").is_ok());
    }

    #[test]
    fn every_reason_is_upper_snake_case_and_short() {
        for reason in [
            CREDIT_OF_ANOTHER_PERSON,
            TEAM_NOT_MANAGED,
            DEAL_OF_OTHER_PEOPLE,
            TOTALS_ONLY_FOR_VIEWER,
            APPROVAL_OF_OWN_CREDIT,
            SPLIT_CHANGE_OF_OWN_CREDIT,
            RULING_ON_OWN_CREDIT,
            ADJUSTMENT_OF_OWN_CREDIT,
            DISPUTE_OF_ANOTHER_PERSONS_CREDIT,
        ] {
            assert!(reason.len() <= 63);
            assert!(reason.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
        }
    }
}
