//! The people directory's inputs, validated: who a person is (role, team,
//! manager), the look-alike rule for their ids, what a new version of a person
//! writes, and the rule that a deal credits people of the directory.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use contracts::pb::credit::v1 as pb;
use contracts::{ApiError, page, wire};
use domain::CreditRole;
use unicode_security::confusable_detection::skeleton;

use super::deal::{Split, participant_id};
use crate::entity::person;
use crate::error::CreditError;
use crate::events::{CreditEvent, PersonUpserted};

/// A person as UpsertPerson gives it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonInput {
    pub person_id: String,
    pub display_name: Option<String>,
    pub role: pb::PersonRole,
    pub team: Option<String>,
    pub manager_id: Option<String>,
}

fn optional_id(field: &str, value: &str) -> Result<Option<String>, ApiError> {
    if value.is_empty() {
        Ok(None)
    } else {
        participant_id(field, value).map(Some)
    }
}

/// The role of a person: a known value, UNSPECIFIED refused.
pub fn person_role(field: &str, value: i32) -> Result<pb::PersonRole, ApiError> {
    match wire::known_enum::<pb::PersonRole>(field, value)? {
        pb::PersonRole::Unspecified => Err(ApiError::invalid(
            field,
            "is required: CSM, AE, REVOPS or OTHER",
        )),
        role => Ok(role),
    }
}

impl PersonInput {
    pub fn from_request(req: &pb::UpsertPersonRequest) -> Result<Self, ApiError> {
        let person = req
            .person
            .as_ref()
            .ok_or_else(|| ApiError::invalid("person", "is required"))?;
        let person_id = participant_id("person.person_id", &person.person_id)?;
        let manager_id = optional_id("person.manager_id", &person.manager_id)?;
        if manager_id.as_deref() == Some(person_id.as_str()) {
            return Err(ApiError::invalid(
                "person.manager_id",
                "a person is not their own manager",
            ));
        }
        Ok(Self {
            display_name: wire::optional_text(
                "person.display_name",
                &person.display_name,
                wire::MAX_NAME_LEN,
            )?,
            role: person_role("person.role", person.role)?,
            team: optional_id("person.team", &person.team)?,
            manager_id,
            person_id,
        })
    }

    /// Whether a stored version says exactly this (an upsert of it adds nothing).
    pub fn same_as(
        &self,
        display_name: Option<&str>,
        role: &str,
        team: Option<&str>,
        manager_id: Option<&str>,
    ) -> bool {
        self.display_name.as_deref() == display_name
            && self.role.as_str_name() == role
            && self.team.as_deref() == team
            && self.manager_id.as_deref() == manager_id
    }
}

/// The Unicode TR39 skeleton of an id: `ana.ae` and `аna.ae` (Cyrillic а), or
/// `rn.csm` and `m.csm`, share one. Two people whose ids share a skeleton
/// could be mistaken for each other on a statement or a split, so the second
/// is refused.
pub fn id_skeleton(id: &str) -> String {
    skeleton(id).collect()
}

/// Whether `candidate` looks like `existing` without being it.
pub fn looks_like(candidate: &str, existing: &str) -> bool {
    candidate != existing && id_skeleton(candidate) == id_skeleton(existing)
}

/// The skeletons of a split set's participants: the directory rows
/// [`check_participants`] needs are those sharing one.
pub fn participant_skeletons(splits: &[Split]) -> BTreeSet<String> {
    splits
        .iter()
        .map(|s| id_skeleton(&s.participant_id))
        .collect()
}

/// Refuses a split set naming someone who looks like a person of the directory
/// without being them (`аna.ae` beside `ana.ae`: same TR39 skeleton, another
/// id), or an originator or deliverer the directory does not know. `known` are
/// the directory's rows sharing a skeleton with a participant; `field` is the
/// list's path.
pub fn check_participants(
    field: &str,
    splits: &[Split],
    known: &[person::Model],
) -> Result<(), CreditError> {
    for (i, split) in splits.iter().enumerate() {
        let skeleton = id_skeleton(&split.participant_id);
        if known.iter().any(|p| p.person_id == split.participant_id) {
            continue;
        }
        if let Some(twin) = known.iter().find(|p| p.skeleton == skeleton) {
            return Err(ApiError::invalid(
                format!("{field}[{i}].participant_id"),
                format!(
                    "{:?} looks like the person {:?} of the directory but is not them",
                    split.participant_id, twin.person_id
                ),
            )
            .into());
        }
    }
    // SPEC §6: a deal's people are people of the directory. An overlay
    // may credit a team or an account team, which is no person.
    let strangers: Vec<String> = splits
        .iter()
        .filter(|s| matches!(s.role, CreditRole::Originator | CreditRole::Delivery))
        .filter(|s| !known.iter().any(|p| p.person_id == s.participant_id))
        .map(|s| s.participant_id.clone())
        .collect();
    if !strangers.is_empty() {
        return Err(CreditError::UnknownParticipants(strangers));
    }
    Ok(())
}

/// What the directory holds about a person an upsert names.
#[derive(Debug, Clone, Default)]
pub struct PersonLookup {
    /// The version in force, if the person exists.
    pub current: Option<person::Model>,
    /// Another person whose id shares the new id's skeleton (looked up for a new
    /// person only).
    pub look_alike: Option<String>,
    /// Whether the named manager is a person of the directory.
    pub manager_known: bool,
}

/// What an upsert of a person writes.
#[derive(Debug, Clone, PartialEq)]
pub enum PersonVersion {
    /// The version in force says the same: nothing to write.
    Unchanged(person::Model),
    /// The next version, and its event.
    New {
        row: person::Model,
        event: Box<CreditEvent>,
    },
}

/// Plans an upsert: nothing when the version in force says the same; else the next
/// version. Refuses a new id that looks like another person's (same TR39 skeleton)
/// and a manager who is not in the directory.
pub fn plan_person_version(
    input: &PersonInput,
    lookup: &PersonLookup,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<PersonVersion, CreditError> {
    if let Some(current) = &lookup.current
        && input.same_as(
            current.display_name.as_deref(),
            &current.role,
            current.team.as_deref(),
            current.manager_id.as_deref(),
        )
    {
        return Ok(PersonVersion::Unchanged(current.clone()));
    }
    if lookup.current.is_none()
        && let Some(twin) = &lookup.look_alike
    {
        return Err(CreditError::LookAlikePerson {
            candidate: input.person_id.clone(),
            existing: twin.clone(),
        });
    }
    if let Some(manager) = &input.manager_id
        && !lookup.manager_known
    {
        return Err(CreditError::not_found("person", manager));
    }
    let row = person::Model {
        person_id: input.person_id.clone(),
        version: lookup.current.as_ref().map_or(1, |c| c.version + 1),
        display_name: input.display_name.clone(),
        role: input.role.as_str_name().to_owned(),
        team: input.team.clone(),
        manager_id: input.manager_id.clone(),
        skeleton: id_skeleton(&input.person_id),
        created_at: now,
        created_by: principal.to_owned(),
    };
    let event = CreditEvent::PersonUpserted(PersonUpserted {
        person_id: row.person_id.clone(),
        version: row.version,
        role: row.role.clone(),
        team: row.team.clone(),
        manager_id: row.manager_id.clone(),
        principal: principal.to_owned(),
    });
    Ok(PersonVersion::New {
        row,
        event: Box::new(event),
    })
}

/// ListPeople's filters and page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPeopleInput {
    pub team: Option<String>,
    pub role: Option<pb::PersonRole>,
    pub manager_id: Option<String>,
    pub page_size: u64,
    pub after: Option<String>,
    pub fingerprint: u64,
}

impl ListPeopleInput {
    pub fn from_request(req: &pb::ListPeopleRequest) -> Result<Self, ApiError> {
        let page_size = page::page_size("page_size", req.page_size)?;
        let team = optional_id("team", &req.team)?;
        let manager_id = optional_id("manager_id", &req.manager_id)?;
        let role = match wire::known_enum::<pb::PersonRole>("role", req.role)? {
            pb::PersonRole::Unspecified => None,
            role => Some(role),
        };
        let fingerprint = page::fingerprint(&[
            "people",
            team.as_deref().unwrap_or_default(),
            role.map(|r| r.as_str_name()).unwrap_or_default(),
            manager_id.as_deref().unwrap_or_default(),
        ]);
        let after = page::decode_token("page_token", &req.page_token, fingerprint)?;
        Ok(Self {
            team,
            role,
            manager_id,
            page_size,
            after,
            fingerprint,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn upsert(id: &str, manager: &str, role: pb::PersonRole) -> pb::UpsertPersonRequest {
        pb::UpsertPersonRequest {
            person: Some(pb::Person {
                person_id: id.into(),
                manager_id: manager.into(),
                role: role as i32,
                team: "enterprise-sales".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_person_needs_an_id_and_a_role_and_is_not_their_own_manager() {
        let ok = PersonInput::from_request(&upsert("ana.ae", "max.lead", pb::PersonRole::Ae));
        let ok = ok.unwrap();
        assert_eq!(ok.team.as_deref(), Some("enterprise-sales"));
        assert!(ok.same_as(
            None,
            "PERSON_ROLE_AE",
            Some("enterprise-sales"),
            Some("max.lead")
        ));
        assert!(!ok.same_as(None, "PERSON_ROLE_AE", None, Some("max.lead")));
        let err = PersonInput::from_request(&upsert("", "", pb::PersonRole::Ae)).unwrap_err();
        assert_eq!(err.field(), Some("person.person_id"));
        let err = PersonInput::from_request(&upsert("ana.ae", "", pb::PersonRole::Unspecified))
            .unwrap_err();
        assert_eq!(err.field(), Some("person.role"));
        let err =
            PersonInput::from_request(&upsert("ana.ae", "ana.ae", pb::PersonRole::Ae)).unwrap_err();
        assert_eq!(err.field(), Some("person.manager_id"));
        let err = PersonInput::from_request(&pb::UpsertPersonRequest::default()).unwrap_err();
        assert_eq!(err.field(), Some("person"));
    }

    fn row(id: &str, version: i32) -> person::Model {
        person::Model {
            person_id: id.into(),
            version,
            display_name: None,
            role: "PERSON_ROLE_AE".into(),
            team: Some("enterprise-sales".into()),
            manager_id: Some("max.lead".into()),
            skeleton: id_skeleton(id),
            created_at: chrono::DateTime::UNIX_EPOCH,
            created_by: "revops".into(),
        }
    }

    fn input() -> PersonInput {
        PersonInput::from_request(&upsert("ana.ae", "max.lead", pb::PersonRole::Ae)).unwrap()
    }

    #[test]
    fn an_upsert_adds_the_next_version_unless_nothing_changed() {
        let now = chrono::Utc::now();
        let known = |current| PersonLookup {
            current,
            look_alike: None,
            manager_known: true,
        };
        let PersonVersion::New { row: first, event } =
            plan_person_version(&input(), &known(None), "revops", now).unwrap()
        else {
            panic!("a new person is written");
        };
        assert_eq!((first.version, first.skeleton.as_str()), (1, "ana.ae"));
        let CreditEvent::PersonUpserted(e) = *event else {
            panic!("a person event");
        };
        assert_eq!((e.person_id.as_str(), e.version), ("ana.ae", 1));
        assert_eq!(e.manager_id.as_deref(), Some("max.lead"));

        let same = plan_person_version(&input(), &known(Some(row("ana.ae", 3))), "x", now);
        assert_eq!(same.unwrap(), PersonVersion::Unchanged(row("ana.ae", 3)));
        let mut moved = row("ana.ae", 3);
        moved.team = None;
        let next = plan_person_version(&input(), &known(Some(moved)), "x", now).unwrap();
        assert!(matches!(next, PersonVersion::New { row, .. } if row.version == 4));
    }

    #[test]
    fn an_upsert_refuses_a_look_alike_and_an_unknown_manager() {
        let now = chrono::Utc::now();
        let twin = PersonLookup {
            look_alike: Some("\u{430}na.ae".into()),
            manager_known: true,
            ..Default::default()
        };
        let err = plan_person_version(&input(), &twin, "revops", now).unwrap_err();
        assert!(matches!(err, CreditError::LookAlikePerson { .. }));
        let stranger = PersonLookup::default();
        let err = plan_person_version(&input(), &stranger, "revops", now).unwrap_err();
        assert!(matches!(
            err,
            CreditError::NotFound {
                resource: "person",
                ..
            }
        ));
    }

    #[test]
    fn a_deal_credits_people_of_the_directory_and_no_look_alikes() {
        let split = |id: &str, role| Split {
            participant_id: id.into(),
            role,
            percent: None,
            team: None,
            owner: false,
            overlay_rule: None,
        };
        let known = [row("ana.ae", 1)];
        let ok = [
            split("ana.ae", CreditRole::Delivery),
            split("team", CreditRole::Overlay),
        ];
        check_participants("participants", &ok, &known).unwrap();
        let twin = [split("\u{430}na.ae", CreditRole::Delivery)];
        let err = ApiError::from(check_participants("participants", &twin, &known).unwrap_err());
        assert_eq!(err.field(), Some("participants[0].participant_id"));
        let stranger = [split("bob.ae", CreditRole::Delivery)];
        let err = check_participants("participants", &stranger, &known).unwrap_err();
        assert!(matches!(err, CreditError::UnknownParticipants(p) if p == ["bob.ae"]));
    }

    #[test]
    fn look_alike_ids_share_a_skeleton() {
        // Cyrillic а (U+0430) for Latin a.
        assert!(looks_like("\u{430}na.ae", "ana.ae"));
        assert!(looks_like("rn.csm", "m.csm"));
        assert!(looks_like("carla.csrn", "carla.csm"));
        assert!(!looks_like("ana.ae", "ana.ae"));
        assert!(!looks_like("ana.ae", "bob.ae"));
        assert!(!looks_like("ana.ae", "ana.csm"));
    }
}
