//! The one place every call is authenticated and authorised: a tower layer
//! over the whole server, keyed on the gRPC path `/package.Service/Method`,
//! so it covers every service (and any added later) the same way.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use contracts::access;
use contracts::{ApiError, Principal};
use tonic::body::Body;
use tonic::codegen::http;

use super::keys::{KeyRing, Refusal};

/// Adds [`Authenticated`] around the server's routes.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    ring: Arc<KeyRing>,
}

impl AuthLayer {
    pub fn new(ring: Arc<KeyRing>) -> Self {
        Self { ring }
    }

    /// The answer this layer would give a call of `path` with these
    /// credentials, if it refuses it.
    pub fn refusal(&self, path: &str, authorization: Option<&[u8]>) -> Option<tonic::Status> {
        admit(&self.ring, path, authorization)
            .err()
            .map(|err| err.into_status(domain(path)))
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            ring: self.ring.clone(),
        }
    }
}

/// Lets a call through with its [`Principal`] in the request's extensions
/// (where `contracts::principal_of` finds it), or answers it with
/// UNAUTHENTICATED / PERMISSION_DENIED without reaching the service.
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    ring: Arc<KeyRing>,
}

/// The `ErrorInfo` domain of a refusal: the package of the service called.
fn domain(path: &str) -> &str {
    access::split_path(path)
        .and_then(|(service, _)| service.rsplit_once('.').map(|(package, _)| package))
        .unwrap_or("expansion")
}

fn method_name(path: &str) -> &str {
    path.strip_prefix('/').unwrap_or(path)
}

/// The principal a call runs as, or the error it gets.
pub fn admit(
    ring: &KeyRing,
    path: &str,
    authorization: Option<&[u8]>,
) -> Result<Principal, ApiError> {
    if access::is_open(path) {
        return Ok(Principal::local());
    }
    let principal = match ring.identify(authorization) {
        Ok(Some(principal)) => principal,
        Ok(None) => return Ok(Principal::local()),
        Err(refusal) => return Err(unauthenticated(refusal)),
    };
    if access::allows(path, principal.role) {
        Ok(principal)
    } else {
        Err(ApiError::PermissionDenied {
            message: format!(
                "the API key {:?} has the role {}, which may not call {}",
                principal.name,
                principal.role,
                method_name(path)
            ),
        })
    }
}

fn unauthenticated(refusal: Refusal) -> ApiError {
    let (reason, message) = match refusal {
        Refusal::Missing => (
            "API_KEY_MISSING",
            "this server needs an API key: send `authorization: Bearer <key>`",
        ),
        Refusal::Malformed => (
            "API_KEY_MALFORMED",
            "the authorization metadata is not `Bearer exp_<id>_<secret>`",
        ),
        Refusal::Unknown => ("API_KEY_UNKNOWN", "the API key is not known to this server"),
        Refusal::Revoked => ("API_KEY_REVOKED", "the API key was revoked"),
        Refusal::NoKeys => (
            "NO_API_KEYS",
            "this server listens beyond loopback and has no API keys; create one with `expansion keys create`",
        ),
    };
    ApiError::Unauthenticated {
        reason,
        message: message.to_owned(),
    }
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        match admit(&self.ring, path, authorization) {
            Ok(principal) => {
                // A stream of events outlives the check at its start: it
                // re-checks its key before every message it sends.
                let watch = (path.ends_with("/WatchEvents")
                    && principal.name != Principal::local().name)
                    .then(|| authorization.map(<[u8]>::to_vec))
                    .flatten();
                request.extensions_mut().insert(principal);
                // The clone that was polled ready serves this call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let ring = self.ring.clone();
                Box::pin(async move {
                    let response = inner.call(request).await?;
                    Ok(match watch {
                        Some(authorization) => response.map(|body| {
                            Body::new(Revocable {
                                inner: body,
                                ring,
                                authorization,
                                ended: false,
                            })
                        }),
                        None => response,
                    })
                })
            }
            Err(err) => {
                let code = err.code();
                tracing::info!(method = %path, ?code, reason = err.reason(), "call refused");
                let status = err.into_status(domain(path));
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

/// A `WatchEvents` answer that ends with UNAUTHENTICATED, instead of
/// sending the next event, once its key is revoked (or the keys file no
/// longer has it): revocation reaches streams already open.
struct Revocable {
    inner: Body,
    ring: Arc<KeyRing>,
    authorization: Vec<u8>,
    ended: bool,
}

impl http_body::Body for Revocable {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && frame.is_data()
            && let Err(refusal) = this.ring.identify(Some(&this.authorization))
        {
            this.ended = true;
            let status = unauthenticated(refusal).into_status("expansion");
            let mut trailers = http::HeaderMap::new();
            if let Err(err) = status.add_header(&mut trailers) {
                tracing::warn!(%err, "could not encode a revocation status");
            }
            return Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::auth::keys::{KeysFile, NewToken, StoredKey};
    use contracts::access::Role;
    use tonic::Code;

    const GET_ACCOUNT: &str = "/expansion.health.v1.AccountHealthService/GetAccount";
    const UPSERT_ACCOUNT: &str = "/expansion.health.v1.AccountHealthService/UpsertAccount";

    fn ring_with(role: Role) -> (tempfile::TempDir, KeyRing, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let token = NewToken::generate().unwrap();
        KeysFile::update(&path, |f| {
            f.keys.push(StoredKey {
                id: token.id.clone(),
                name: "vera".into(),
                role: role.as_str().into(),
                sha256: token.sha256_hex(),
                created_at: "2026-01-01T00:00:00Z".into(),
                revoked_at: None,
                manages: None,
            });
            Ok(())
        })
        .unwrap();
        let ring = KeyRing::load(&path, false).unwrap();
        (dir, ring, format!("Bearer {}", token.token))
    }

    #[test]
    fn a_viewer_reads_but_does_not_write() {
        let (_dir, ring, auth) = ring_with(Role::Viewer);
        let principal = admit(&ring, GET_ACCOUNT, Some(auth.as_bytes())).unwrap();
        assert_eq!(principal, Principal::new("vera", Role::Viewer));
        let err = admit(&ring, UPSERT_ACCOUNT, Some(auth.as_bytes())).unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        let message = err.to_string();
        assert!(message.contains("viewer"), "{message}");
        assert!(
            message.contains("expansion.health.v1.AccountHealthService/UpsertAccount"),
            "{message}"
        );
    }

    #[test]
    fn no_key_is_unauthenticated_but_probes_and_reflection_stay_open() {
        let (_dir, ring, _) = ring_with(Role::Viewer);
        let err = admit(&ring, GET_ACCOUNT, None).unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(err.reason(), "API_KEY_MISSING");
        assert!(admit(&ring, "/grpc.health.v1.Health/Check", None).is_ok());
        assert!(
            admit(
                &ring,
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn refusals_name_the_service_package_as_their_domain() {
        assert_eq!(domain(GET_ACCOUNT), "expansion.health.v1");
        assert_eq!(domain("/nonsense"), "expansion");
    }
}
