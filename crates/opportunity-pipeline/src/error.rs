//! The errors of the pipeline service and their one mapping to the wire.

use contracts::ApiError;
use tonic::Status;

use crate::DOMAIN;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The request itself is malformed; carries the field path.
    #[error(transparent)]
    Invalid(ApiError),
    #[error("opportunity {0:?} not found")]
    OpportunityNotFound(String),
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
    #[error("stored opportunity is unreadable: {0}")]
    Corrupt(String),
    #[error("storage: {0}")]
    Store(#[from] sea_orm::DbErr),
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
            PipelineError::OpportunityNotFound(id) => ApiError::not_found("opportunity", id),
            PipelineError::Unimplemented(method) => ApiError::Unimplemented { method },
            PipelineError::Corrupt(detail) => {
                tracing::error!(%detail, "corrupt opportunity row");
                ApiError::internal(detail)
            }
            PipelineError::Store(db) => storage::db_error(db),
        };
        api.into_status(DOMAIN)
    }
}
