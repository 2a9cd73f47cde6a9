//! The errors of the pipeline service and their one mapping to the wire.

use contracts::{ApiError, PreconditionViolation};
use tonic::Status;

use crate::DOMAIN;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The request itself is malformed; carries the field path.
    #[error(transparent)]
    Invalid(ApiError),
    #[error("{0} {1:?} not found")]
    NotFound(&'static str, String),
    /// The etag the caller sent is not the stored one.
    #[error("{0}")]
    EtagMismatch(String),
    /// A stage gate refused the move; lists every unmet condition.
    #[error("{message}")]
    GateRefused {
        message: String,
        violations: Vec<PreconditionViolation>,
    },
    /// The resource's state does not allow the call.
    #[error("{message}")]
    Precondition {
        reason: &'static str,
        message: String,
        violations: Vec<PreconditionViolation>,
    },
    /// A row-level rule refused the read (whose performance a key reads).
    #[error("{message}")]
    Refused {
        reason: &'static str,
        message: String,
    },
    /// The health service could not be asked.
    #[error("{0}")]
    HealthUnavailable(String),
    /// The credit service's people directory could not be asked.
    #[error("{0}")]
    PeopleUnavailable(String),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error("storage: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl PipelineError {
    /// A state refusal with one violation.
    pub fn precondition(
        reason: &'static str,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        PipelineError::Precondition {
            reason,
            violations: vec![PreconditionViolation {
                kind: reason.to_owned(),
                subject: subject.into(),
                description: message.clone(),
            }],
            message,
        }
    }
}

impl From<ApiError> for PipelineError {
    fn from(err: ApiError) -> Self {
        Self::Invalid(err)
    }
}

impl From<PipelineError> for Status {
    fn from(err: PipelineError) -> Self {
        let api = match err {
            PipelineError::Invalid(api) => api,
            PipelineError::NotFound(kind, id) => ApiError::not_found(kind, id),
            PipelineError::EtagMismatch(message) => ApiError::Aborted {
                reason: "ETAG_MISMATCH",
                message,
            },
            PipelineError::GateRefused {
                message,
                violations,
            } => ApiError::FailedPrecondition {
                reason: "STAGE_GATE_UNMET",
                message,
                violations,
            },
            PipelineError::Precondition {
                reason,
                message,
                violations,
            } => ApiError::FailedPrecondition {
                reason,
                message,
                violations,
            },
            PipelineError::Refused { reason, message } => ApiError::Forbidden { reason, message },
            PipelineError::HealthUnavailable(message) => ApiError::Unavailable {
                reason: "HEALTH_SERVICE_UNAVAILABLE",
                message,
            },
            PipelineError::PeopleUnavailable(message) => ApiError::Unavailable {
                reason: "PEOPLE_DIRECTORY_UNAVAILABLE",
                message,
            },
            PipelineError::Corrupt(detail) => {
                tracing::error!(%detail, "corrupt pipeline row");
                ApiError::internal(detail)
            }
            PipelineError::Store(db) => storage::db_error(db),
        };
        api.into_status(DOMAIN)
    }
}
