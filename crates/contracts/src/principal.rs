//! Who is calling: the principal recorded on every write.

use tonic::Request;

/// The authenticated caller, put into a request's extensions by the
/// authentication layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub String);

/// The name used when no API keys are configured: the server then listens on
/// loopback only, so the caller is someone on this machine.
pub const LOCAL_PRINCIPAL: &str = "local";

/// The principal of a request.
pub fn principal_of<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Principal>()
        .map(|p| p.0.clone())
        .unwrap_or_else(|| LOCAL_PRINCIPAL.to_owned())
}
