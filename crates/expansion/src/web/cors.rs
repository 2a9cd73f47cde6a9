//! CORS for browser callers (gRPC-Web, HTTP/JSON) on other origins: only
//! the origins `--cors-origins` names, with the headers these protocols send
//! and read.

use anyhow::Context;
use tonic::codegen::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Request headers a browser may send: the API key, the content types'
/// own, deadlines and request ids.
const ALLOWED: &[&str] = &[
    "authorization",
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "connect-protocol-version",
    "connect-timeout-ms",
    "x-request-id",
];

/// Response headers a page may read: gRPC-Web's status in headers (a
/// trailers-only answer).
const EXPOSED: &[&str] = &["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// The layer for `origins`; with none it answers no CORS request, so the
/// browser keeps pages of other origins out.
pub fn layer(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let allow_origin = if origins.iter().any(|o| o.trim() == "*") {
        AllowOrigin::any()
    } else {
        let list = origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin.trim().trim_end_matches('/'))
                    .with_context(|| format!("--cors-origins: {origin:?} is not an origin"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(list)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(
            ALLOWED
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .expose_headers(
            EXPOSED
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .max_age(std::time::Duration::from_secs(3600)))
}
