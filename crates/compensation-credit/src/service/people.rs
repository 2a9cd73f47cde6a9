//! UpsertPerson, GetPerson and ListPeople.

use contracts::pb::credit::v1 as pb;

use contracts::page;

use super::{invalid, once};
use crate::convert::person_to_pb;
use crate::error::CreditError;
use crate::model::deal::participant_id;
use crate::model::people::{ListPeopleInput, PersonInput};
use crate::store::Store;

/// Adds a version of a person unless the one in force says the same.
pub async fn upsert(
    store: &Store,
    principal: &str,
    req: pb::UpsertPersonRequest,
) -> Result<pb::UpsertPersonResponse, CreditError> {
    let input = PersonInput::from_request(&req).map_err(invalid)?;
    once(store, "UpsertPerson", principal, &req, async {
        let (model, changed) = store.upsert_person(&input, principal).await?;
        tracing::info!(person_id = %model.person_id, version = model.version, changed, "person upserted");
        Ok(pb::UpsertPersonResponse {
            person: Some(person_to_pb(&model)),
            changed,
        })
    })
    .await
}

/// The version in force of a person.
pub async fn get(
    store: &Store,
    req: &pb::GetPersonRequest,
) -> Result<pb::GetPersonResponse, CreditError> {
    let id = participant_id("person_id", &req.person_id).map_err(invalid)?;
    let model = store
        .person(&id)
        .await?
        .ok_or_else(|| CreditError::not_found("person", &id))?;
    Ok(pb::GetPersonResponse {
        person: Some(person_to_pb(&model)),
    })
}

/// A page of the directory.
pub async fn list(
    store: &Store,
    req: &pb::ListPeopleRequest,
) -> Result<pb::ListPeopleResponse, CreditError> {
    let input = ListPeopleInput::from_request(req).map_err(invalid)?;
    let mut people = store.list_people(&input).await?;
    let next_page_token = page::next_page(&mut people, input.page_size, input.fingerprint, |p| {
        p.person_id.clone()
    });
    Ok(pb::ListPeopleResponse {
        people: people.iter().map(person_to_pb).collect(),
        next_page_token,
    })
}
