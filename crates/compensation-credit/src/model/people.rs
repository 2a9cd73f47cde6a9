//! The people directory's inputs, validated: who a person is (role, team,
//! manager), and the look-alike rule for their ids.

use contracts::pb::credit::v1 as pb;
use contracts::{ApiError, page, wire};
use unicode_security::confusable_detection::skeleton;

use super::deal::participant_id;

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
