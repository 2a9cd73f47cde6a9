//! Messages over `--max-message-bytes` answer RESOURCE_EXHAUSTED, as gRPC's
//! own implementations do, with an `ErrorInfo` like every other error.
//!
//! tonic refuses them in its codec, before any service code runs, with
//! OUT_OF_RANGE and no details: a request it could not decode as the
//! call's status, a response it could not encode in the trailers.
//! [`MessageLimitLayer`] sits between the services and the layers that see
//! the answer (auth, metrics, HTTP/JSON), and rewrites exactly those two
//! statuses, recognised by tonic's own message; every other answer passes
//! untouched.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use tonic::codegen::http;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo` reason of a message over the limit.
pub const MESSAGE_TOO_LARGE: &str = "MESSAGE_TOO_LARGE";

/// What tonic says, in its codec, of a request and of a response over the limit.
const DECODED_TOO_LARGE: &str = "Error, decoded message length too large";
const ENCODED_TOO_LARGE: &str = "Error, encoded message length too large";

/// The status a message over the limit answers: RESOURCE_EXHAUSTED, reason
/// `MESSAGE_TOO_LARGE`, with the sizes as `ErrorInfo` metadata when known.
pub fn too_large(
    domain: &str,
    what: &str,
    size: Option<u64>,
    limit: Option<u64>,
    message: String,
) -> Status {
    let mut metadata = HashMap::new();
    metadata.insert("message".to_owned(), what.to_owned());
    if let Some(size) = size {
        metadata.insert("sizeBytes".to_owned(), size.to_string());
    }
    if let Some(limit) = limit {
        metadata.insert("limitBytes".to_owned(), limit.to_string());
    }
    Status::with_error_details(
        Code::ResourceExhausted,
        message,
        ErrorDetails::with_error_info(MESSAGE_TOO_LARGE, domain, metadata),
    )
}

/// tonic's OUT_OF_RANGE for a message over the limit, as RESOURCE_EXHAUSTED
/// with an `ErrorInfo`; `None` for any other status.
fn rewritten(status: &Status, domain: &str) -> Option<Status> {
    if status.code() != Code::OutOfRange {
        return None;
    }
    let text = status.message();
    let what = if text.starts_with(DECODED_TOO_LARGE) {
        "request"
    } else if text.starts_with(ENCODED_TOO_LARGE) {
        "response"
    } else {
        return None;
    };
    // "… found {len} bytes, the limit is: {limit} bytes"
    let mut numbers = text
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u64>().ok());
    let (size, limit) = (numbers.next(), numbers.next());
    let message = match (size, limit) {
        (Some(size), Some(limit)) => format!(
            "the {what} message is {size} bytes, over this server's limit of {limit} bytes \
             (--max-message-bytes)"
        ),
        _ => format!("the {what} message is over this server's limit (--max-message-bytes)"),
    };
    Some(too_large(domain, what, size, limit, message))
}

/// Rewrites the status in `headers` (the call's headers, or its trailers)
/// when it is tonic's refusal of a message over the limit.
fn rewrite(headers: &mut http::HeaderMap, domain: &str) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let Some(status) = rewritten(&status, domain) else {
        return;
    };
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    if let Err(err) = status.add_header(headers) {
        tracing::warn!(%err, "writing the RESOURCE_EXHAUSTED status");
    }
}

/// The `ErrorInfo` domain of a call: the package of the service called.
pub fn domain_of(path: &str) -> String {
    contracts::access::split_path(path)
        .and_then(|(service, _)| service.rsplit_once('.').map(|(package, _)| package))
        .unwrap_or("expansion")
        .to_owned()
}

/// The layer (installed just outside the services).
#[derive(Clone, Copy, Default)]
pub struct MessageLimitLayer;

impl<S> tower::Layer<S> for MessageLimitLayer {
    type Service = MessageLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageLimit { inner }
    }
}

#[derive(Clone)]
pub struct MessageLimit<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for MessageLimit<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Body<Data = bytes::Bytes> + Unpin + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let domain = domain_of(request.uri().path());
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            rewrite(response.headers_mut(), &domain);
            Ok(response.map(|inner| tonic::body::Body::new(LimitedBody { inner, domain })))
        })
    }
}

/// A response body whose trailers get the same rewrite.
pub struct LimitedBody<B> {
    inner: B,
    domain: String,
}

impl<B: Body + Unpin> Body for LimitedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_trailers() {
                Ok(mut trailers) => {
                    rewrite(&mut trailers, &this.domain);
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tonics_refusals_of_large_messages_become_resource_exhausted() {
        let refused = Status::out_of_range(
            "Error, decoded message length too large: found 2000000 bytes, the limit is: 1048576 bytes",
        );
        let mut headers = http::HeaderMap::new();
        refused.add_header(&mut headers).unwrap();
        rewrite(&mut headers, "expansion.health.v1");
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted);
        let details = status.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(info.reason, MESSAGE_TOO_LARGE);
        assert_eq!(info.domain, "expansion.health.v1");
        assert_eq!(info.metadata["sizeBytes"], "2000000");
        assert_eq!(info.metadata["limitBytes"], "1048576");
        assert_eq!(info.metadata["message"], "request");

        let encoded = Status::out_of_range(
            "Error, encoded message length too large: found 9 bytes, the limit is: 8 bytes",
        );
        let answer = rewritten(&encoded, "expansion.credit.v1").unwrap();
        assert_eq!(answer.code(), Code::ResourceExhausted);
        assert!(answer.message().contains("response message is 9 bytes"));
    }

    #[test]
    fn other_answers_pass_untouched() {
        for status in [
            Status::out_of_range("a month out of range"),
            Status::invalid_argument("Error, decoded message length too large"),
        ] {
            assert!(rewritten(&status, "expansion").is_none());
        }
        let mut headers = http::HeaderMap::new();
        rewrite(&mut headers, "expansion");
        assert!(headers.is_empty());
    }
}
