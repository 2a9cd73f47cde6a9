//! The errors of the health service and their one mapping to the wire.

use contracts::ApiError;
use tonic::Status;

use crate::DOMAIN;

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The request itself is malformed; carries the field path.
    #[error(transparent)]
    Invalid(ApiError),
    #[error("account {0:?} not found")]
    AccountNotFound(String),
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
    #[error("storage: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl From<ApiError> for HealthError {
    fn from(err: ApiError) -> Self {
        Self::Invalid(err)
    }
}

impl From<HealthError> for Status {
    fn from(err: HealthError) -> Self {
        let api = match err {
            HealthError::Invalid(api) => api,
            HealthError::AccountNotFound(id) => ApiError::not_found("account", id),
            HealthError::Unimplemented(method) => ApiError::Unimplemented { method },
            HealthError::Store(db) => storage::db_error(db),
        };
        api.into_status(DOMAIN)
    }
}
