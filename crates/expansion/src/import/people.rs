//! People → `UpsertPerson` of the credit service's directory, keyed by the
//! person's id (the name of their API key and their participant id). A CRM's
//! user export may list someone before their manager: such a row claims its id
//! at once, in file order (so a look-alike later in the file is the one
//! refused), and gets its manager once the rest of the file is in.

use contracts::pb::credit::v1 as pb;
use tonic::Code;

use super::client::{Refusal, refusal};
use super::mapping::Kind;
use super::report::{Report, Row, RowError};
use super::{Cells, Ctx, Importer, values};

pub fn parse(cells: &Cells<'_>) -> Result<pb::Person, RowError> {
    let role =
        values::person_role(cells.required("role")?).map_err(|m| RowError::field("role", m))?;
    Ok(pb::Person {
        person_id: cells.required("person_id")?.to_owned(),
        display_name: cells
            .optional("display_name")
            .unwrap_or_default()
            .to_owned(),
        role: role as i32,
        team: cells.optional("team").unwrap_or_default().to_owned(),
        manager_id: cells.optional("manager_id").unwrap_or_default().to_owned(),
        version: 0,
        audit: None,
    })
}

/// What a row's write did, for the tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Created,
    Updated,
    Unchanged,
}

impl Written {
    fn count(self, out: &mut Report) {
        match self {
            Written::Created => out.created(1),
            Written::Updated => out.updated(),
            Written::Unchanged => out.unchanged(1),
        }
    }
}

enum Outcome {
    Written(Written),
    /// The manager is not in the directory (yet).
    NoManager,
    Rejected(RowError),
}

async fn upsert(ctx: &mut Ctx, person: &pb::Person) -> anyhow::Result<Outcome> {
    if ctx.dry_run {
        let stored = ctx
            .lookup
            .credit
            .get_person(pb::GetPersonRequest {
                person_id: person.person_id.clone(),
            })
            .await;
        return Ok(Outcome::Written(match stored {
            Err(status) if status.code() == Code::NotFound => Written::Created,
            Err(status) => return Err(super::client::fatal(status, "looking up a person")),
            Ok(reply) => match reply.into_inner().person {
                Some(p)
                    if p.display_name == person.display_name
                        && p.role == person.role
                        && p.team == person.team
                        && p.manager_id == person.manager_id =>
                {
                    Written::Unchanged
                }
                Some(_) => Written::Updated,
                None => Written::Created,
            },
        }));
    }
    let reply = ctx
        .lookup
        .credit
        .upsert_person(pb::UpsertPersonRequest {
            request_id: String::new(),
            person: Some(person.clone()),
        })
        .await;
    match reply {
        Ok(reply) => {
            let reply = reply.into_inner();
            Ok(Outcome::Written(
                match (reply.changed, reply.person.map(|p| p.version)) {
                    (false, _) => Written::Unchanged,
                    (true, Some(1)) => Written::Created,
                    (true, _) => Written::Updated,
                },
            ))
        }
        Err(status) if status.code() == Code::NotFound && !person.manager_id.is_empty() => {
            Ok(Outcome::NoManager)
        }
        Err(status) => match refusal(Kind::People, status) {
            Refusal::Row { error, .. } => Ok(Outcome::Rejected(error)),
            Refusal::Fatal(err) => Err(err),
        },
    }
}

/// Rows whose manager was not in the directory when they were read: written
/// without one, their manager set at the end.
#[derive(Default)]
pub struct People {
    waiting: Vec<(Row, pb::Person, Written)>,
}

impl Importer for People {
    async fn row(&mut self, ctx: &mut Ctx, row: Row, out: &mut Report) -> anyhow::Result<()> {
        let person = match parse(&Cells::new(out.columns(), &row.record)) {
            Ok(person) => person,
            Err(error) => return out.reject(&row, error),
        };
        match upsert(ctx, &person).await? {
            Outcome::Written(written) => {
                written.count(out);
                Ok(())
            }
            Outcome::Rejected(error) => out.reject(&row, error),
            Outcome::NoManager => {
                let alone = pb::Person {
                    manager_id: String::new(),
                    ..person.clone()
                };
                match upsert(ctx, &alone).await? {
                    Outcome::Written(written) => {
                        self.waiting.push((row, person, written));
                        Ok(())
                    }
                    Outcome::Rejected(error) => out.reject(&row, error),
                    Outcome::NoManager => out.reject(
                        &row,
                        RowError::row("the directory refused the person without a manager"),
                    ),
                }
            }
        }
    }

    /// Sets the managers of the rows that came before them, in passes until one
    /// sets none (a manager may wait for their own manager).
    async fn finish(&mut self, ctx: &mut Ctx, out: &mut Report) -> anyhow::Result<()> {
        loop {
            let before = self.waiting.len();
            let mut still = Vec::new();
            for (row, person, written) in std::mem::take(&mut self.waiting) {
                match upsert(ctx, &person).await? {
                    Outcome::Written(_) => written.count(out),
                    Outcome::Rejected(error) => out.reject(&row, error)?,
                    Outcome::NoManager => still.push((row, person, written)),
                }
            }
            if still.len() == before || still.is_empty() {
                for (row, person, _) in &still {
                    out.reject(
                        row,
                        RowError::field(
                            "manager_id",
                            format!(
                                "{:?} is not a person of the directory (imported without a manager)",
                                person.manager_id
                            ),
                        ),
                    )?;
                }
                return Ok(());
            }
            self.waiting = still;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::mapping::Columns;
    use super::*;

    #[test]
    fn people_rows_read_roles_by_name() {
        let headers: Vec<String> = ["User Name", "Full Name", "role", "team", "manager_id"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let pairs = vec![
            ("User Name".to_owned(), "person_id".to_owned()),
            ("Full Name".to_owned(), "display_name".to_owned()),
        ];
        let columns = Columns::resolve(Kind::People, &headers, &pairs).unwrap();
        let record =
            csv::StringRecord::from(vec!["ana.ae", "Ana Lima", "ae", "enterprise-sales", ""]);
        let person = parse(&Cells::new(&columns, &record)).unwrap();
        assert_eq!(person.person_id, "ana.ae");
        assert_eq!(person.role, pb::PersonRole::Ae as i32);
        assert_eq!(person.manager_id, "");
        let record = csv::StringRecord::from(vec!["bo", "Bo", "Account Executive", "", ""]);
        let err = parse(&Cells::new(&columns, &record)).unwrap_err();
        assert_eq!(err.field, Some("role"));
        assert_eq!(
            Kind::People.field_of_path("person.manager_id"),
            (None, Some("manager_id"))
        );
    }
}
