//! The one place where service errors become gRPC statuses.
//!
//! Every service maps its own error enum into [`ApiError`], which knows its
//! canonical code, a stable UPPER_SNAKE_CASE reason and the rich details
//! (AIP-193): exactly one `ErrorInfo`, plus `BadRequest` field violations,
//! `PreconditionFailure` or `ResourceInfo` where they apply.

use std::collections::HashMap;
use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A bad field of a request: its path (`opportunity.amount.amount`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            description: description.to_string(),
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// One unmet condition of a gate (`PreconditionFailure.Violation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreconditionViolation {
    /// Kind of condition, UPPER_SNAKE_CASE: `ACCOUNT_HEALTH`, `DECISION_MAKER`.
    pub kind: String,
    /// What the condition is about, e.g. the account id.
    pub subject: String,
    pub description: String,
}

impl fmt::Display for PreconditionViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.description)
    }
}

/// A service error in the terms the wire understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {}", join(violations))]
    InvalidArgument { violations: Vec<FieldViolation> },
    /// INVALID_ARGUMENT for a request that is not a readable message at all,
    /// so no field can be named.
    #[error("{message}")]
    Malformed { message: String },
    #[error("{resource_type} {resource_name:?} not found")]
    NotFound {
        resource_type: &'static str,
        resource_name: String,
    },
    #[error("{message}")]
    AlreadyExists {
        reason: &'static str,
        resource_type: &'static str,
        resource_name: String,
        message: String,
    },
    #[error("{}", precondition_text(message, violations))]
    FailedPrecondition {
        reason: &'static str,
        message: String,
        violations: Vec<PreconditionViolation>,
    },
    #[error("{message}")]
    Aborted {
        reason: &'static str,
        message: String,
    },
    #[error("{method} is not implemented yet")]
    Unimplemented { method: &'static str },
    #[error("{message}")]
    Unavailable {
        reason: &'static str,
        message: String,
    },
    /// No credential, or one the server does not accept.
    #[error("{message}")]
    Unauthenticated {
        reason: &'static str,
        message: String,
    },
    /// A known caller whose role does not allow what it asked.
    #[error("{message}")]
    PermissionDenied { message: String },
    /// The detail is for the server's log only; the caller sees a generic text.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A refusal's text: the message, then what each violation adds to it — never the
/// message twice when a violation only repeats it.
fn precondition_text(message: &str, violations: &[PreconditionViolation]) -> String {
    let extra: Vec<&PreconditionViolation> = violations
        .iter()
        .filter(|v| v.description != message)
        .collect();
    if extra.is_empty() {
        message.to_owned()
    } else {
        format!("{message}: {}", join(&extra))
    }
}

impl ApiError {
    /// A single bad field.
    pub fn invalid(field: impl Into<String>, description: impl fmt::Display) -> Self {
        Self::InvalidArgument {
            violations: vec![FieldViolation::new(field, description)],
        }
    }

    pub fn not_found(resource_type: &'static str, resource_name: impl Into<String>) -> Self {
        Self::NotFound {
            resource_type,
            resource_name: resource_name.into(),
        }
    }

    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::Internal {
            detail: detail.to_string(),
        }
    }

    /// The path of the first bad field, for an INVALID_ARGUMENT.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidArgument { violations } => violations.first().map(|v| v.field.as_str()),
            _ => None,
        }
    }

    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } | Self::Malformed { .. } => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::AlreadyExists { .. } => Code::AlreadyExists,
            Self::FailedPrecondition { .. } => Code::FailedPrecondition,
            Self::Aborted { .. } => Code::Aborted,
            Self::Unimplemented { .. } => Code::Unimplemented,
            Self::Unavailable { .. } => Code::Unavailable,
            Self::Unauthenticated { .. } => Code::Unauthenticated,
            Self::PermissionDenied { .. } => Code::PermissionDenied,
            Self::Internal { .. } => Code::Internal,
        }
    }

    /// Stable machine-readable reason for `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument { .. } => "INVALID_ARGUMENT",
            Self::Malformed { .. } => "MALFORMED_REQUEST",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::AlreadyExists { reason, .. }
            | Self::FailedPrecondition { reason, .. }
            | Self::Aborted { reason, .. }
            | Self::Unavailable { reason, .. }
            | Self::Unauthenticated { reason, .. } => reason,
            Self::PermissionDenied { .. } => "PERMISSION_DENIED",
            Self::Unimplemented { .. } => "NOT_IMPLEMENTED",
            Self::Internal { .. } => "INTERNAL",
        }
    }

    /// Converts into a status carrying rich details; `domain` names the
    /// service, e.g. `expansion.health.v1`.
    pub fn into_status(self, domain: &str) -> Status {
        let code = self.code();
        let reason = self.reason();
        let mut metadata = HashMap::new();
        let mut details = ErrorDetails::new();
        let message = match &self {
            Self::Internal { .. } => "internal error; the server log has the details".to_owned(),
            other => other.to_string(),
        };
        match self {
            Self::InvalidArgument { violations } => {
                if let Some(first) = violations.first() {
                    metadata.insert("field".to_owned(), first.field.clone());
                }
                details.set_bad_request(
                    violations
                        .into_iter()
                        .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
            }
            Self::NotFound {
                resource_type,
                resource_name,
            }
            | Self::AlreadyExists {
                resource_type,
                resource_name,
                ..
            } => {
                metadata.insert("resourceType".to_owned(), resource_type.to_owned());
                metadata.insert("resourceName".to_owned(), resource_name.clone());
                details.set_resource_info(resource_type, resource_name, "", "");
            }
            Self::FailedPrecondition { violations, .. } => {
                details.set_precondition_failure(
                    violations
                        .into_iter()
                        .map(|v| {
                            tonic_types::PreconditionViolation::new(
                                v.kind,
                                v.subject,
                                v.description,
                            )
                        })
                        .collect::<Vec<_>>(),
                );
            }
            Self::Unimplemented { method } => {
                metadata.insert("method".to_owned(), method.to_owned());
            }
            Self::Malformed { .. }
            | Self::Aborted { .. }
            | Self::Unavailable { .. }
            | Self::Unauthenticated { .. }
            | Self::PermissionDenied { .. }
            | Self::Internal { .. } => {}
        }
        details.set_error_info(reason, domain, metadata);
        Status::with_error_details(code, message, details)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn a_refusal_never_repeats_its_own_message() {
        let violation = |description: &str| PreconditionViolation {
            kind: "NO_SUBSCRIPTION_TO_UPSELL".into(),
            subject: "o1".into(),
            description: description.into(),
        };
        let refusal = |violations| ApiError::FailedPrecondition {
            reason: "NO_SUBSCRIPTION_TO_UPSELL",
            message: "nothing to grow".into(),
            violations,
        };
        assert_eq!(
            refusal(vec![violation("nothing to grow")]).to_string(),
            "nothing to grow"
        );
        assert_eq!(refusal(vec![]).to_string(), "nothing to grow");
        assert_eq!(
            refusal(vec![
                violation("nothing to grow"),
                violation("no decision maker")
            ])
            .to_string(),
            "nothing to grow: no decision maker"
        );
    }

    use super::*;

    #[test]
    fn invalid_argument_carries_field_path_and_error_info() {
        let status = ApiError::invalid("account.name", "must not be empty")
            .into_status("expansion.health.v1");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("account.name"));
        let details = status.get_error_details();
        let bad = details.bad_request().unwrap();
        assert_eq!(bad.field_violations[0].field, "account.name");
        let info = details.error_info().unwrap();
        assert_eq!(info.reason, "INVALID_ARGUMENT");
        assert_eq!(info.domain, "expansion.health.v1");
    }

    #[test]
    fn internal_hides_its_detail() {
        let status = ApiError::internal("SELECT failed: secret").into_status("d");
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
    }

    #[test]
    fn precondition_lists_every_violation() {
        let status = ApiError::FailedPrecondition {
            reason: "STAGE_GATE_UNMET",
            message: "cannot move to QUALIFIED".into(),
            violations: vec![
                PreconditionViolation {
                    kind: "NEED".into(),
                    subject: "o1".into(),
                    description: "need not confirmed".into(),
                },
                PreconditionViolation {
                    kind: "DECISION_MAKER".into(),
                    subject: "o1".into(),
                    description: "no decision maker".into(),
                },
            ],
        }
        .into_status("expansion.pipeline.v1");
        let details = status.get_error_details();
        assert_eq!(details.precondition_failure().unwrap().violations.len(), 2);
        assert_eq!(details.error_info().unwrap().reason, "STAGE_GATE_UNMET");
    }
}
