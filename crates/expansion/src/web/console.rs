//! The web console: a small static app under `/console/`, compiled into the
//! binary, that reads everything it shows from the HTTP/JSON API of the same
//! server with the key the person signed in with.
//!
//! The files are plain HTML, CSS and JavaScript modules (`console/` beside
//! this file), embedded with `include_str!`: nothing to build, install or
//! fetch from elsewhere. The pages hold no data of their own; every figure
//! comes from an API call the browser makes, so the keys, roles and privacy
//! rules are the API's. Only `GET` and `HEAD` of these paths are answered
//! here; everything else passes through untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderValue, StatusCode, header};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the console is served.
pub const CONSOLE_PATH: &str = "/console/";

/// Every file of the console: its path under [`CONSOLE_PATH`], its content
/// type and its text. `""` is the page itself.
const FILES: &[(&str, &str, &str)] = &[
    ("", HTML, include_str!("console/index.html")),
    ("style.css", CSS, include_str!("console/style.css")),
    ("app.js", JS, include_str!("console/app.js")),
    ("api.js", JS, include_str!("console/api.js")),
    ("ui.js", JS, include_str!("console/ui.js")),
    ("charts.js", JS, include_str!("console/charts.js")),
    ("portfolio.js", JS, include_str!("console/portfolio.js")),
    ("ready.js", JS, include_str!("console/ready.js")),
    ("account.js", JS, include_str!("console/account.js")),
    ("pipeline.js", JS, include_str!("console/pipeline.js")),
    ("revenue.js", JS, include_str!("console/revenue.js")),
    ("credits.js", JS, include_str!("console/credits.js")),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Only this origin's own files and API; no inline script, no framing, no
/// referrer (a page address never leaves the browser).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The file `path` names, if it is one of the console's.
fn file(path: &str) -> Option<(&'static str, &'static str)> {
    let rest = path.strip_prefix(CONSOLE_PATH)?;
    let rest = if rest == "index.html" { "" } else { rest };
    FILES
        .iter()
        .find(|(name, _, _)| *name == rest)
        .map(|(_, content_type, text)| (*content_type, *text))
}

fn response(status: StatusCode, content_type: &str, body: Bytes) -> http::Response<Body> {
    let mut response = http::Response::new(Body::new(Full::new(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The files change with the binary: always revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// What the console answers for `request`, or `None` when it is not the
/// console's.
fn answer<B>(request: &http::Request<B>) -> Option<http::Response<Body>> {
    if !matches!(*request.method(), http::Method::GET | http::Method::HEAD) {
        return None;
    }
    let path = request.uri().path();
    if path == "/console" || path == "/" {
        let mut moved = response(StatusCode::FOUND, "text/plain", Bytes::new());
        moved
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static(CONSOLE_PATH));
        return Some(moved);
    }
    if !path.starts_with(CONSOLE_PATH) {
        return None;
    }
    Some(match file(path) {
        Some((content_type, text)) => response(
            StatusCode::OK,
            content_type,
            Bytes::from_static(text.as_bytes()),
        ),
        None => response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"no such console file\n"),
        ),
    })
}

/// Serves the console's files in front of everything else; with `enabled`
/// false (`--no-console`) it passes every request through.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleLayer {
    enabled: bool,
}

impl ConsoleLayer {
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }
}

impl<S> tower::Layer<S> for ConsoleLayer {
    type Service = Console<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Console {
            inner,
            enabled: self.enabled,
        }
    }
}

/// See [`ConsoleLayer`].
#[derive(Debug, Clone)]
pub struct Console<S> {
    inner: S,
    enabled: bool,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for Console<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
    B: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if self.enabled
            && let Some(response) = answer(&request)
        {
            return Box::pin(std::future::ready(Ok(response)));
        }
        // The clone that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(response.map(Body::new))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn get(path: &str) -> Option<http::Response<Body>> {
        answer(&http::Request::get(path).body(()).unwrap())
    }

    #[test]
    fn every_file_is_served_with_its_type_and_the_policy() {
        for (name, content_type, _) in FILES {
            let response = get(&format!("{CONSOLE_PATH}{name}")).unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], *content_type);
            assert!(
                response
                    .headers()
                    .contains_key(header::CONTENT_SECURITY_POLICY)
            );
        }
        assert_eq!(get("/console/index.html").unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn the_root_moves_to_the_console_and_other_paths_pass() {
        assert_eq!(get("/").unwrap().status(), StatusCode::FOUND);
        assert_eq!(get("/console").unwrap().status(), StatusCode::FOUND);
        assert_eq!(
            get("/console/nope.js").unwrap().status(),
            StatusCode::NOT_FOUND
        );
        assert!(get("/openapi.json").is_none());
        let post = http::Request::post("/console/").body(()).unwrap();
        assert!(answer(&post).is_none());
    }

    #[test]
    fn every_module_the_page_imports_is_served() {
        // `import … from './x.js'` in any file must name a file of FILES.
        for (_, _, text) in FILES {
            for part in text.split("from './").skip(1) {
                let name = part.split('\'').next().unwrap();
                assert!(
                    FILES.iter().any(|(n, _, _)| *n == name),
                    "{name} is imported but not served"
                );
            }
        }
    }
}
