//! The errors of the credit service and their one mapping to the wire.

use contracts::ApiError;
use tonic::Status;

use crate::DOMAIN;

#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    /// The request itself is malformed; carries the field path.
    #[error(transparent)]
    Invalid(ApiError),
    #[error("credit policy {0:?} not found")]
    PolicyNotFound(String),
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
    #[error("stored policy is unreadable: {0}")]
    Corrupt(String),
    #[error("storage: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl From<ApiError> for CreditError {
    fn from(err: ApiError) -> Self {
        Self::Invalid(err)
    }
}

impl From<CreditError> for Status {
    fn from(err: CreditError) -> Self {
        let api = match err {
            CreditError::Invalid(api) => api,
            CreditError::PolicyNotFound(name) => ApiError::not_found("credit policy", name),
            CreditError::Unimplemented(method) => ApiError::Unimplemented { method },
            CreditError::Corrupt(detail) => {
                tracing::error!(%detail, "corrupt credit policy row");
                ApiError::internal(detail)
            }
            CreditError::Store(db) => storage::db_error(db),
        };
        api.into_status(DOMAIN)
    }
}
