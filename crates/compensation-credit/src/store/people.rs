//! The people directory: one row per version of a person, the latest in force.

use std::collections::BTreeSet;

use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect};

use super::{Store, is_unique_violation};
use crate::entity::person;
use crate::error::CreditError;
use crate::model::deal::Split;
use crate::model::people::{
    ListPeopleInput, PersonInput, PersonLookup, PersonVersion, id_skeleton, participant_skeletons,
    plan_person_version,
};

impl Store {
    /// The directory's rows (every version) sharing a TR39 skeleton with one of the
    /// participants: what [`crate::model::people::check_participants`] needs.
    pub(super) async fn people_like(
        &self,
        splits: &[Split],
    ) -> Result<Vec<person::Model>, CreditError> {
        Ok(person::Entity::find()
            .filter(person::Column::Skeleton.is_in(participant_skeletons(splits)))
            .all(&self.db)
            .await?)
    }

    /// The version in force of a person.
    pub async fn person(&self, person_id: &str) -> Result<Option<person::Model>, CreditError> {
        Ok(person::Entity::find()
            .filter(person::Column::PersonId.eq(person_id))
            .order_by_desc(person::Column::Version)
            .limit(1)
            .one(&self.db)
            .await?)
    }

    /// The directory as in force: the latest version of each person, by id. A
    /// directory is people, not entries (thousands at most), so it is read whole.
    pub async fn directory(&self) -> Result<Vec<person::Model>, CreditError> {
        let rows = person::Entity::find()
            .order_by_asc(person::Column::PersonId)
            .order_by_asc(person::Column::Version)
            .all(&self.db)
            .await?;
        let mut out: Vec<person::Model> = Vec::new();
        for row in rows {
            match out.last_mut() {
                Some(last) if last.person_id == row.person_id => *last = row,
                _ => out.push(row),
            }
        }
        Ok(out)
    }

    /// People of the directory in `team`.
    pub async fn team_members(&self, team: &str) -> Result<BTreeSet<String>, CreditError> {
        Ok(self
            .directory()
            .await?
            .into_iter()
            .filter(|p| p.team.as_deref() == Some(team))
            .map(|p| p.person_id)
            .collect())
    }

    /// A page of the directory after `after`, with one more row when there is a next page.
    pub async fn list_people(
        &self,
        input: &ListPeopleInput,
    ) -> Result<Vec<person::Model>, CreditError> {
        let want = usize::try_from(input.page_size + 1).unwrap_or(usize::MAX);
        Ok(self
            .directory()
            .await?
            .into_iter()
            .filter(|p| input.after.as_ref().is_none_or(|a| p.person_id > *a))
            .filter(|p| input.team.is_none() || p.team == input.team)
            .filter(|p| input.role.is_none_or(|r| p.role == r.as_str_name()))
            .filter(|p| input.manager_id.is_none() || p.manager_id == input.manager_id)
            .take(want)
            .collect())
    }

    /// Adds a version of a person, unless the one in force says the same (`false`).
    /// Refuses an id that looks like another person's (same TR39 skeleton) and a
    /// manager who is not in the directory.
    pub async fn upsert_person(
        &self,
        input: &PersonInput,
        principal: &str,
    ) -> Result<(person::Model, bool), CreditError> {
        let (txn, _turn) = self.begin_write().await?;
        let current = person::Entity::find()
            .filter(person::Column::PersonId.eq(input.person_id.as_str()))
            .order_by_desc(person::Column::Version)
            .limit(1)
            .one(&txn)
            .await?;
        let look_alike = match &current {
            Some(_) => None,
            None => person::Entity::find()
                .filter(person::Column::Skeleton.eq(id_skeleton(&input.person_id)))
                .filter(person::Column::PersonId.ne(input.person_id.as_str()))
                .one(&txn)
                .await?
                .map(|twin| twin.person_id),
        };
        let manager_known = match &input.manager_id {
            Some(manager) => person::Entity::find()
                .filter(person::Column::PersonId.eq(manager.as_str()))
                .one(&txn)
                .await?
                .is_some(),
            None => true,
        };
        let lookup = PersonLookup {
            current,
            look_alike,
            manager_known,
        };
        let (row, event) = match plan_person_version(input, &lookup, principal, storage::now())? {
            PersonVersion::Unchanged(current) => return Ok((current, false)),
            PersonVersion::New { row, event } => (row, event),
        };
        if let Err(err) = person::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await
        {
            if !is_unique_violation(&err) {
                return Err(err.into());
            }
            // The same person upserted concurrently: the other version won.
            drop(txn);
            let current = self
                .person(&input.person_id)
                .await?
                .ok_or_else(|| CreditError::not_found("person", &input.person_id))?;
            return Ok((current, false));
        }
        self.append(&txn, &[*event]).await?;
        self.commit(txn).await?;
        Ok((row, true))
    }
}
