//! Who is who, asked of the credit service's people directory (SPEC §6):
//! a handoff is accepted by the calling AE or names a known one. Behind
//! [`PeopleDirectory`] so tests can use a fake; [`GrpcPeopleDirectory`] is
//! the real one, with the same short deadline as the health calls.

use std::time::Duration;

use contracts::client::AuthChannel;
use contracts::pb::credit::v1 as credit;
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use tonic::Code;

/// A person as the pipeline needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonInfo {
    pub person_id: String,
    pub is_ae: bool,
    pub team: String,
}

/// The directory could not say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DirectoryUnavailable(pub String);

#[tonic::async_trait]
pub trait PeopleDirectory: Send + Sync + 'static {
    /// The person, or `None` when the directory has no such person.
    async fn person(&self, person_id: &str) -> Result<Option<PersonInfo>, DirectoryUnavailable>;
}

/// Used when the process has no credit service address.
pub struct NoPeopleDirectory;

#[tonic::async_trait]
impl PeopleDirectory for NoPeopleDirectory {
    async fn person(&self, _: &str) -> Result<Option<PersonInfo>, DirectoryUnavailable> {
        Err(DirectoryUnavailable(
            "no credit service address is configured (--credit-addr / EXPANSION_CREDIT_ADDR), \
             so the people directory cannot be asked"
                .to_owned(),
        ))
    }
}

/// The credit service's directory over gRPC.
#[derive(Clone)]
pub struct GrpcPeopleDirectory {
    client: CompensationCreditServiceClient<AuthChannel>,
    timeout: Duration,
}

impl GrpcPeopleDirectory {
    pub fn new(channel: AuthChannel, timeout: Duration) -> Self {
        Self {
            client: CompensationCreditServiceClient::new(channel),
            timeout,
        }
    }
}

#[tonic::async_trait]
impl PeopleDirectory for GrpcPeopleDirectory {
    async fn person(&self, person_id: &str) -> Result<Option<PersonInfo>, DirectoryUnavailable> {
        let mut client = self.client.clone();
        let request = credit::GetPersonRequest {
            person_id: person_id.to_owned(),
        };
        let answer = tokio::time::timeout(self.timeout, client.get_person(request))
            .await
            .map_err(|_| {
                DirectoryUnavailable(format!(
                    "the credit service did not answer GetPerson within {:?}",
                    self.timeout
                ))
            })?;
        match answer {
            Ok(response) => Ok(response.into_inner().person.map(|p| PersonInfo {
                is_ae: p.role == credit::PersonRole::Ae as i32,
                person_id: p.person_id,
                team: p.team,
            })),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(DirectoryUnavailable(format!(
                "the credit service could not answer GetPerson ({:?}: {})",
                status.code(),
                status.message()
            ))),
        }
    }
}
