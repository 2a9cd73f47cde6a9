//! Who is calling: the principal recorded on every write.

use tonic::Request;

use crate::access::Role;
use crate::error::ApiError;

/// The authenticated caller, put into a request's extensions by the
/// authentication layer: the API key's name and the role it grants.
///
/// The name is also the person the key is bound to: a csm or ae key named
/// `ana.ae` is the person `ana.ae` of the credit service's people directory,
/// whose own ledger entries it reads. `manages` is the team such a key leads
/// (`expansion keys create --manages`), whose entries it reads too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    pub manages: Option<String>,
}

/// The name used when no API keys are configured: the server then listens on
/// loopback only, so the caller is someone on this machine.
pub const LOCAL_PRINCIPAL: &str = "local";

impl Principal {
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self {
            name: name.into(),
            role,
            manages: None,
        }
    }

    /// The same principal, leading `team`.
    pub fn managing(mut self, team: Option<String>) -> Self {
        self.manages = team;
        self
    }

    /// The person a key is bound to: its name.
    pub fn person(&self) -> &str {
        &self.name
    }

    /// The caller on a server without API keys: someone on this machine,
    /// trusted with everything.
    pub fn local() -> Self {
        Self::new(LOCAL_PRINCIPAL, Role::Admin)
    }
}

/// The caller of a request.
pub fn caller_of<T>(request: &Request<T>) -> Principal {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or_else(Principal::local)
}

/// The principal of a request.
pub fn principal_of<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Principal>()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| LOCAL_PRINCIPAL.to_owned())
}

/// Refuses `what` (part of a method the matrix lets more roles call) to
/// anyone but an admin.
pub fn require_admin<T>(request: &Request<T>, what: &str) -> Result<(), ApiError> {
    let caller = caller_of(request);
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied {
            message: format!(
                "{what} is admin only; the API key {:?} has the role {}",
                caller.name, caller.role
            ),
        })
    }
}

/// Refuses an import-only field (`field`, set in the request when `set`) to a
/// caller whose role does not import (`access::IMPORT_ROLES`): a backdated
/// write is a CRM's history brought in, not something a rep says.
pub fn require_import_role<T>(
    request: &Request<T>,
    field: &str,
    set: bool,
) -> Result<(), ApiError> {
    let caller = caller_of(request);
    if !set || crate::access::IMPORT_ROLES.contains(&caller.role) {
        return Ok(());
    }
    let roles: Vec<&str> = crate::access::IMPORT_ROLES
        .iter()
        .map(|r| r.as_str())
        .collect();
    Err(ApiError::Forbidden {
        reason: "OCCUR_TIME_IMPORT_ONLY",
        message: format!(
            "{field} is for imports: only {} keys may set it; the API key {:?} has the role {}",
            roles.join(", "),
            caller.name,
            caller.role
        ),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn without_a_principal_the_caller_is_local() {
        let request = Request::new(());
        assert_eq!(principal_of(&request), "local");
        assert_eq!(caller_of(&request), Principal::local());
        assert!(require_admin(&request, "reopening").is_ok());
    }

    #[test]
    fn only_admins_pass_an_admin_only_check() {
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(Principal::new("alex.ae", Role::Ae));
        assert_eq!(principal_of(&request), "alex.ae");
        let err = require_admin(&request, "reopening a closed opportunity").unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(err.to_string().contains("role ae"));
        request
            .extensions_mut()
            .insert(Principal::new("root", Role::Admin));
        assert!(require_admin(&request, "reopening").is_ok());
    }

    #[test]
    fn only_import_roles_may_set_an_import_only_field() {
        let with = |role| {
            let mut request = Request::new(());
            request
                .extensions_mut()
                .insert(Principal::new("someone", role));
            request
        };
        for role in [Role::Admin, Role::Revops, Role::Connector] {
            assert!(require_import_role(&with(role), "occur_time", true).is_ok());
        }
        for role in [Role::Csm, Role::Ae, Role::Viewer] {
            // Not set: nothing to refuse.
            assert!(require_import_role(&with(role), "occur_time", false).is_ok());
            let err = require_import_role(&with(role), "occur_time", true).unwrap_err();
            assert_eq!(err.code(), tonic::Code::PermissionDenied);
            assert_eq!(err.reason(), "OCCUR_TIME_IMPORT_ONLY");
            assert!(err.to_string().contains("occur_time"), "{err}");
        }
        // No keys: the local caller is trusted with everything.
        assert!(require_import_role(&Request::new(()), "occur_time", true).is_ok());
    }
}
