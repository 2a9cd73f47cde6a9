//! The errors of the health service and their one mapping to the wire.

use contracts::ApiError;
use tonic::Status;

use crate::DOMAIN;
use crate::model::upsell::UpsellRefusal;

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The request itself is malformed; carries the field path.
    #[error(transparent)]
    Invalid(ApiError),
    #[error("account {0:?} not found")]
    AccountNotFound(String),
    #[error("product {0:?} not found")]
    ProductNotFound(String),
    #[error("subscription {0:?} not found")]
    SubscriptionNotFound(String),
    #[error("trigger {0:?} not found")]
    TriggerNotFound(String),
    #[error("subscription {0} was already cancelled on {1}")]
    AlreadyCancelled(String, String),
    #[error(transparent)]
    Lifecycle(#[from] crate::model::triggers::LifecycleRefusal),
    #[error(transparent)]
    Upsell(#[from] crate::model::upsell::UpsellRefusal),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
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
            HealthError::ProductNotFound(id) => ApiError::not_found("product", id),
            HealthError::SubscriptionNotFound(id) => ApiError::not_found("subscription", id),
            HealthError::TriggerNotFound(id) => ApiError::not_found("trigger", id),
            err @ HealthError::AlreadyCancelled(..) => ApiError::FailedPrecondition {
                reason: "SUBSCRIPTION_ALREADY_CANCELLED",
                message: err.to_string(),
                violations: Vec::new(),
            },
            HealthError::Lifecycle(refusal) => ApiError::FailedPrecondition {
                reason: "TRIGGER_ALREADY_CONVERTED",
                message: refusal.to_string(),
                violations: Vec::new(),
            },
            HealthError::Upsell(refusal) => ApiError::FailedPrecondition {
                reason: match refusal {
                    UpsellRefusal::NoneInForce(_) | UpsellRefusal::NotInForce(..) => {
                        "NO_SUBSCRIPTION_IN_FORCE"
                    }
                    UpsellRefusal::Currency(..) => "CURRENCY_MISMATCH",
                },
                message: refusal.to_string(),
                violations: Vec::new(),
            },
            HealthError::Corrupt(detail) => {
                tracing::error!(%detail, "corrupt health data");
                ApiError::internal(detail)
            }
            HealthError::Store(db) => storage::db_error(db),
        };
        api.into_status(DOMAIN)
    }
}
