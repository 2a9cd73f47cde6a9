//! The errors of the credit service and their one mapping to the wire.

use contracts::{ApiError, PreconditionViolation};
use tonic::Status;

use crate::DOMAIN;
use crate::model::privacy::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    /// The request itself is malformed; carries the field path.
    #[error(transparent)]
    Invalid(ApiError),
    #[error("credit policy {0:?} not found")]
    PolicyNotFound(String),
    #[error("{resource} {id:?} not found")]
    NotFound { resource: &'static str, id: String },
    #[error("no version of credit policy {policy_id:?} is in force on {date}")]
    NoPolicyInForce { policy_id: String, date: String },
    #[error("deal {deal_id} was already credited differently: {}", differences.join("; "))]
    DealAlreadyCredited {
        deal_id: String,
        differences: Vec<String>,
    },
    #[error("the owner's split ({owner}) cannot be removed from deal {deal_id}")]
    OwnerSplitRemoved { deal_id: String, owner: String },
    #[error("deal {0} has been clawed back; its splits can no longer change")]
    DealClawedBack(String),
    #[error("entry {entry_id} already has an open dispute ({dispute_id})")]
    DisputeAlreadyOpen {
        entry_id: String,
        dispute_id: String,
    },
    #[error("dispute {0} is already resolved")]
    DisputeAlreadyResolved(String),
    /// A privacy or separation-of-duties rule refused the call.
    #[error("{}", .0.message)]
    Refused(Refusal),
    /// Originators and deliverers must be people of the directory.
    #[error(
        "a deal credits people of the directory (add them with UpsertPerson or `expansion import --kind people`)"
    )]
    UnknownParticipants(Vec<String>),
    #[error("person id {candidate:?} looks like the existing person {existing:?}")]
    LookAlikePerson { candidate: String, existing: String },
    #[error("stored credit data is unreadable: {0}")]
    Corrupt(String),
    #[error("storage: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl From<Refusal> for CreditError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<ApiError> for CreditError {
    fn from(err: ApiError) -> Self {
        Self::Invalid(err)
    }
}

impl CreditError {
    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            resource,
            id: id.into(),
        }
    }

    fn precondition(
        reason: &'static str,
        kind: &str,
        subject: String,
        message: String,
    ) -> ApiError {
        ApiError::FailedPrecondition {
            reason,
            message: message.clone(),
            violations: vec![PreconditionViolation {
                kind: kind.to_owned(),
                subject,
                description: message,
            }],
        }
    }
}

impl From<CreditError> for ApiError {
    fn from(err: CreditError) -> Self {
        let message = err.to_string();
        match err {
            CreditError::Invalid(api) => api,
            CreditError::PolicyNotFound(name) => ApiError::not_found("credit policy", name),
            CreditError::NotFound { resource, id } => ApiError::not_found(resource, id),
            CreditError::NoPolicyInForce { policy_id, .. } => CreditError::precondition(
                "NO_POLICY_IN_FORCE",
                "POLICY_IN_FORCE",
                policy_id,
                message,
            ),
            CreditError::DealAlreadyCredited { deal_id, .. } => ApiError::AlreadyExists {
                reason: "DEAL_ALREADY_CREDITED",
                resource_type: "deal credits",
                resource_name: deal_id,
                message,
            },
            CreditError::OwnerSplitRemoved { deal_id, .. } => {
                CreditError::precondition("OWNER_SPLIT_REQUIRED", "OWNER_SPLIT", deal_id, message)
            }
            CreditError::DealClawedBack(deal_id) => {
                CreditError::precondition("DEAL_CLAWED_BACK", "CLAWBACK", deal_id, message)
            }
            CreditError::DisputeAlreadyOpen { entry_id, .. } => {
                CreditError::precondition("DISPUTE_ALREADY_OPEN", "DISPUTE_OPEN", entry_id, message)
            }
            CreditError::DisputeAlreadyResolved(dispute_id) => CreditError::precondition(
                "DISPUTE_ALREADY_RESOLVED",
                "DISPUTE_STATUS",
                dispute_id,
                message,
            ),
            CreditError::Refused(Refusal { reason, message }) => {
                ApiError::Forbidden { reason, message }
            }
            CreditError::LookAlikePerson { .. } => ApiError::invalid("person.person_id", message),
            CreditError::UnknownParticipants(people) => ApiError::FailedPrecondition {
                reason: "UNKNOWN_PARTICIPANT",
                message,
                violations: people
                    .into_iter()
                    .map(|person| PreconditionViolation {
                        kind: "PERSON_IN_DIRECTORY".to_owned(),
                        description: format!("{person:?} is not in the people directory"),
                        subject: person,
                    })
                    .collect(),
            },
            CreditError::Corrupt(detail) => {
                tracing::error!(%detail, "corrupt credit data");
                ApiError::internal(detail)
            }
            CreditError::Store(db) => storage::db_error(db),
        }
    }
}

impl From<CreditError> for Status {
    fn from(err: CreditError) -> Self {
        ApiError::from(err).into_status(DOMAIN)
    }
}
