//! The Connect protocol's unary form over the gRPC stack.
//!
//! `POST /<package>.<Service>/<Method>` with `Content-Type: application/json`
//! (or `application/proto`) is read as the method's request message, framed
//! as a gRPC request (`content-type: application/grpc`, the caller's headers
//! kept, `connect-timeout-ms` as `grpc-timeout`) and handed to the layers
//! below this one, the same that serve gRPC: metrics, the API key check,
//! then the service with its message size limits. The gRPC answer is
//! unframed and written back as JSON, or as Connect's JSON error with the
//! HTTP status Connect gives its code, each rich detail beside its decoded
//! `debug` form.
//!
//! `GET /openapi.json` answers the OpenAPI document of these routes. Every
//! other request (gRPC, gRPC-Web) passes through untouched.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::routes::{Routes, is_unary};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The transport's own deadline (`--request-timeout`) fires a little after
/// this layer's, so a JSON caller gets Connect's `deadline_exceeded`
/// rather than the transport's gRPC-framed answer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(10);

/// How many times `--max-message-bytes` a request body may be before it is
/// read; the message it encodes is held to the limit itself.
const JSON_EXPANSION: usize = 4;

/// Request headers that describe the HTTP/JSON exchange itself, not the
/// call: they are not passed on as gRPC metadata.
const NOT_FORWARDED: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "accept-encoding",
    "accept",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
    "host",
    "connect-protocol-version",
    "connect-timeout-ms",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
];

#[derive(Debug)]
struct Shared {
    routes: Routes,
    /// The key check, asked first when this layer refuses on its own.
    auth: crate::auth::layer::AuthLayer,
    openapi: Bytes,
    max_message_bytes: usize,
    default_timeout: Duration,
}

/// Answers Connect unary calls and `GET /openapi.json` in front of the gRPC
/// layers; see the module documentation.
#[derive(Debug, Clone)]
pub struct ConnectLayer {
    shared: Arc<Shared>,
}

impl ConnectLayer {
    pub fn new(
        routes: Routes,
        auth: crate::auth::layer::AuthLayer,
        max_message_bytes: usize,
        default_timeout: Duration,
    ) -> Self {
        let openapi = Bytes::from(super::openapi::document(&routes).to_string());
        Self {
            shared: Arc::new(Shared {
                routes,
                auth,
                openapi,
                max_message_bytes,
                default_timeout,
            }),
        }
    }
}

impl<S> tower::Layer<S> for ConnectLayer {
    type Service = Connect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Connect {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// See [`ConnectLayer`].
#[derive(Debug, Clone)]
pub struct Connect<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// How a Connect unary body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Proto,
}

impl Format {
    fn of(headers: &HeaderMap) -> Option<Self> {
        let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let media = content_type.split(';').next()?.trim();
        if media.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else if media.eq_ignore_ascii_case("application/proto") {
            Some(Self::Proto)
        } else {
            None
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Proto => "application/proto",
        }
    }
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for Connect<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
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
        // The clone that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        if request.method() == http::Method::GET && request.uri().path() == OPENAPI_PATH {
            let response = http::Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::new(Full::new(shared.openapi.clone())))
                .unwrap_or_default();
            return Box::pin(std::future::ready(Ok(response)));
        }
        let format = (request.method() == http::Method::POST)
            .then(|| Format::of(request.headers()))
            .flatten();
        match format {
            Some(format) => {
                Box::pin(async move { Ok(unary(&shared, inner, request, format).await) })
            }
            None => Box::pin(async move {
                let response = inner.call(request.map(Body::new)).await?;
                Ok(response.map(Body::new))
            }),
        }
    }
}

/// One Connect unary call, answered whatever happens (errors in Connect's
/// form).
async fn unary<S, B, ResBody>(
    shared: &Shared,
    inner: S,
    request: http::Request<B>,
    format: Format,
) -> http::Response<Body>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let pool = shared.routes.pool();
    let path = request.uri().path().to_owned();
    let domain = crate::limits::domain_of(&path);
    // Who calls is checked before what they sent, as over gRPC: a refusal of
    // this layer's own gives way to the key check's.
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let key_check_first = |status: Status| {
        shared
            .auth
            .refusal(&path, authorization.as_ref().map(HeaderValue::as_bytes))
            .unwrap_or(status)
    };
    let Some(method) = shared.routes.method(&path) else {
        let status = key_check_first(refusal(
            Code::Unimplemented,
            "METHOD_NOT_FOUND",
            &domain,
            format!("no method at {path}: HTTP/JSON serves POST /<package>.<Service>/<Method>"),
        ));
        let http_status = match status.code() {
            Code::Unimplemented => StatusCode::NOT_FOUND,
            code => http_status(code),
        };
        return error_response(&status, http_status, &HeaderMap::new(), pool);
    };
    match call(shared, inner, request, method, format, &domain).await {
        Ok(response) => response,
        Err(Failure {
            status,
            metadata,
            before_the_stack,
        }) => {
            let status = if before_the_stack {
                key_check_first(status)
            } else {
                status
            };
            let http_status = http_status(status.code());
            error_response(&status, http_status, &metadata, pool)
        }
    }
}

/// An error answer: its status, the metadata the service sent with it, and
/// whether this layer refused before sending the call down the stack.
struct Failure {
    status: Status,
    metadata: HeaderMap,
    before_the_stack: bool,
}

impl Failure {
    /// An error from the call once sent (the stack's, the transport's).
    fn downstream(status: Status) -> Self {
        Self {
            status,
            metadata: HeaderMap::new(),
            before_the_stack: false,
        }
    }
}

/// This layer's own refusals, of what the request carries.
impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Self {
            status,
            metadata: HeaderMap::new(),
            before_the_stack: true,
        }
    }
}

async fn call<S, B, ResBody>(
    shared: &Shared,
    inner: S,
    request: http::Request<B>,
    method: &MethodDescriptor,
    format: Format,
    domain: &str,
) -> Result<http::Response<Body>, Failure>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let caller_timeout = admit(request.headers(), method, domain)?;
    let (parts, body) = request.into_parts();
    let body = read_body(body, shared.max_message_bytes, domain).await?;
    let message = match format {
        Format::Json => decode_json(&method.input(), &body)
            .map_err(|violation| {
                Failure::from(
                    contracts::ApiError::InvalidArgument {
                        violations: vec![violation],
                    }
                    .into_status(domain),
                )
            })?
            .encode_to_vec(),
        Format::Proto => body.to_vec(),
    };
    // The caller's deadline, or the server's, whichever is sooner.
    let deadline = match caller_timeout {
        Some(timeout) if timeout < shared.default_timeout => timeout,
        _ => shared.default_timeout.saturating_sub(DEADLINE_MARGIN),
    };
    let grpc_request = grpc_request(parts, frame(&message)?, deadline);
    let (head, collected) = exchange(inner, grpc_request, deadline).await?;
    answer(head, collected, method, format)
}

/// What this layer refuses before reading the body: a streaming method, a
/// compressed body, a malformed or passed deadline. The caller's timeout
/// when it gives one.
fn admit(
    headers: &HeaderMap,
    method: &MethodDescriptor,
    domain: &str,
) -> Result<Option<Duration>, Failure> {
    if !is_unary(method) {
        return Err(refusal(
            Code::Unimplemented,
            "STREAMING_NOT_SERVED",
            domain,
            format!(
                "{} is a streaming method: HTTP/JSON serves unary methods only; call it over gRPC or gRPC-Web",
                method.full_name()
            ),
        )
        .into());
    }
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && !encoding.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return Err(refusal(
            Code::Unimplemented,
            "ENCODING_NOT_SUPPORTED",
            domain,
            format!(
                "content-encoding {:?} is not supported: send the body uncompressed",
                String::from_utf8_lossy(encoding.as_bytes())
            ),
        )
        .into());
    }
    let caller_timeout = connect_timeout(headers).map_err(|message| {
        Failure::from(refusal(
            Code::InvalidArgument,
            "BAD_TIMEOUT",
            domain,
            message,
        ))
    })?;
    if caller_timeout == Some(Duration::ZERO) {
        return Err(Status::deadline_exceeded(
            "the call's deadline (connect-timeout-ms: 0) had passed",
        )
        .into());
    }
    Ok(caller_timeout)
}

/// The request body, up to a few times the message limit: JSON is wordier
/// than protobuf, and the service's codec then applies the limit to the
/// message exactly as it does for gRPC.
async fn read_body<B>(body: B, max_message_bytes: usize, domain: &str) -> Result<Bytes, Failure>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let body_limit = max_message_bytes.saturating_mul(JSON_EXPANSION);
    match Limited::new(body, body_limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Failure::from(crate::limits::too_large(
                domain,
                "request",
                None,
                u64::try_from(body_limit).ok(),
                format!(
                    "the request body is larger than {body_limit} bytes ({JSON_EXPANSION} × --max-message-bytes)"
                ),
            )))
        }
        Err(err) => Err(Status::cancelled(format!("reading the request body: {err}")).into()),
    }
}

/// The gRPC call made and its answer read whole, within `deadline`.
async fn exchange<S, ResBody>(
    mut inner: S,
    grpc_request: http::Request<Body>,
    deadline: Duration,
) -> Result<(http::response::Parts, http_body_util::Collected<Bytes>), Failure>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let exchange = async {
        let response = inner
            .call(grpc_request)
            .await
            .map_err(|err| Status::from_error(err.into()))?;
        let (head, body) = response.into_parts();
        let collected = body
            .collect()
            .await
            .map_err(|err| Status::from_error(err.into()))?;
        Ok::<_, Status>((head, collected))
    };
    match tokio::time::timeout(deadline, exchange).await {
        Ok(result) => result.map_err(Failure::downstream),
        Err(_) => Err(Failure::downstream(Status::deadline_exceeded(format!(
            "the call did not finish within its deadline of {} ms",
            deadline.as_millis()
        )))),
    }
}

/// The gRPC answer as the HTTP caller gets it: the status from the
/// trailers (a failure keeps the service's metadata), the message in the
/// caller's format, headers and trailers as `trailer-` headers.
fn answer(
    head: http::response::Parts,
    collected: http_body_util::Collected<Bytes>,
    method: &MethodDescriptor,
    format: Format,
) -> Result<http::Response<Body>, Failure> {
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = Status::from_header_map(&trailers)
        .or_else(|| Status::from_header_map(&head.headers))
        .unwrap_or_else(|| Status::unknown("the service answered without a grpc-status"));
    let mut metadata = HeaderMap::new();
    if status.code() != Code::Ok {
        copy_metadata(&head.headers, &mut metadata, "");
        copy_metadata(&trailers, &mut metadata, "");
        return Err(Failure {
            status,
            metadata,
            before_the_stack: false,
        });
    }
    let payload = unframe(collected.to_bytes()).map_err(Failure::downstream)?;
    let body = match format {
        Format::Json => {
            let reply = DynamicMessage::decode(method.output(), payload).map_err(|err| {
                Failure::downstream(Status::internal(format!("the service's answer: {err}")))
            })?;
            serde_json::to_vec(&reply)
                .map_err(|err| {
                    Failure::downstream(Status::internal(format!(
                        "writing the answer as JSON: {err}"
                    )))
                })?
                .into()
        }
        Format::Proto => payload,
    };
    copy_metadata(&head.headers, &mut metadata, "");
    copy_metadata(&trailers, &mut metadata, "trailer-");
    let mut response = http::Response::new(Body::new(Full::new(body)));
    *response.headers_mut() = metadata;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(response)
}

/// A refusal by this layer, with its one `ErrorInfo`.
fn refusal(code: Code, reason: &str, domain: &str, message: String) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, domain, std::collections::HashMap::new()),
    )
}

/// `connect-timeout-ms`: at most 10 digits, per the Connect protocol.
fn connect_timeout(headers: &HeaderMap) -> Result<Option<Duration>, String> {
    let Some(value) = headers.get("connect-timeout-ms") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "connect-timeout-ms must be a positive number of milliseconds, at most 10 digits: {text:?}"
        ));
    }
    Ok(text.parse::<u64>().ok().map(Duration::from_millis))
}

/// `grpc-timeout` for a deadline: at most 8 digits and a unit.
fn grpc_timeout(deadline: Duration) -> String {
    let millis = deadline.as_millis();
    if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", deadline.as_secs().min(99_999_999))
    }
}

/// The gRPC request for a Connect one: same path, same caller headers (the
/// API key, `x-request-id`, custom metadata), a framed protobuf body.
fn grpc_request(
    parts: http::request::Parts,
    framed: Bytes,
    deadline: Duration,
) -> http::Request<Body> {
    let mut headers = HeaderMap::with_capacity(parts.headers.len() + 3);
    for (name, value) in &parts.headers {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    if let Ok(value) = HeaderValue::from_str(&grpc_timeout(deadline)) {
        headers.insert("grpc-timeout", value);
    }
    let mut request = http::Request::new(Body::new(Full::new(framed)));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = parts.uri;
    // The gRPC layers below (tonic-web among them) take HTTP/2.
    *request.version_mut() = http::Version::HTTP_2;
    *request.headers_mut() = headers;
    *request.extensions_mut() = parts.extensions;
    request
}

/// One uncompressed gRPC message frame.
fn frame(message: &[u8]) -> Result<Bytes, Status> {
    let length = u32::try_from(message.len())
        .map_err(|_| Status::resource_exhausted("the request message is too large"))?;
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(length);
    framed.extend_from_slice(message);
    Ok(framed.freeze())
}

/// The one message of a unary gRPC answer.
fn unframe(mut data: Bytes) -> Result<Bytes, Status> {
    if data.len() < 5 {
        return Err(Status::internal("the service's answer has no message"));
    }
    let header = data.split_to(5);
    if header[0] != 0 {
        return Err(Status::internal("the service's answer is compressed"));
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if data.len() != length {
        return Err(Status::internal(
            "the service's answer is not one whole message",
        ));
    }
    Ok(data)
}

/// gRPC metadata worth passing on to an HTTP caller: not the gRPC framing's
/// own headers.
fn copy_metadata(from: &HeaderMap, to: &mut HeaderMap, prefix: &str) {
    for (name, value) in from {
        let name = name.as_str();
        if name.starts_with("grpc-") || name == "content-type" || name == "content-length" {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(format!("{prefix}{name}").as_bytes()) {
            to.append(name, value.clone());
        }
    }
}

/// A JSON request body as the method's input message; a body that does not
/// read names the field where it went wrong (by its `.proto` name).
fn decode_json(
    descriptor: &MessageDescriptor,
    body: &[u8],
) -> Result<DynamicMessage, contracts::FieldViolation> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DynamicMessage::new(descriptor.clone()));
    }
    let mut json = serde_json::Deserializer::from_slice(body);
    let mut track = serde_path_to_error::Track::new();
    let result = DynamicMessage::deserialize(
        descriptor.clone(),
        serde_path_to_error::Deserializer::new(&mut json, &mut track),
    )
    .and_then(|message| json.end().map(|()| message));
    result.map_err(|err| {
        let field = field_path(descriptor, &track.path());
        let field = if field.is_empty() {
            "body".to_owned()
        } else {
            field
        };
        contracts::FieldViolation::new(
            field,
            format!("not valid JSON for {}: {err}", descriptor.full_name()),
        )
    })
}

/// A JSON path (`externalRef.id`, `signals[2].value`) in the `.proto` field
/// names gRPC's `BadRequest` uses (`external_ref.id`).
fn field_path(descriptor: &MessageDescriptor, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    let mut current = Some(descriptor.clone());
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                let field = current.as_ref().and_then(|message| {
                    message
                        .get_field_by_json_name(key)
                        .or_else(|| message.get_field_by_name(key))
                });
                if !out.is_empty() {
                    out.push('.');
                }
                match field {
                    Some(field) => {
                        out.push_str(field.name());
                        current = field.kind().as_message().cloned();
                    }
                    None => {
                        out.push_str(key);
                        current = None;
                    }
                }
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// Connect's name of a code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status the Connect protocol gives a code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::REQUEST_TIMEOUT),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// Connect's JSON error: `{"code", "message", "details": [{"type", "value",
/// "debug"}]}`, `value` the detail's protobuf bytes in base64 and `debug` the
/// same detail as JSON, for callers that read it by eye or without protobuf.
pub fn error_json(status: &Status, pool: &prost_reflect::DescriptorPool) -> serde_json::Value {
    let mut error = serde_json::Map::new();
    error.insert("code".into(), code_name(status.code()).into());
    if !status.message().is_empty() {
        error.insert("message".into(), status.message().into());
    }
    let details: Vec<serde_json::Value> = tonic_types::pb::Status::decode(status.details())
        .map(|rich| rich.details)
        .unwrap_or_default()
        .into_iter()
        .map(|any| {
            let type_name = any
                .type_url
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let mut detail = serde_json::Map::new();
            detail.insert(
                "value".into(),
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .encode(&any.value)
                    .into(),
            );
            if let Some(debug) = pool
                .get_message_by_name(&type_name)
                .and_then(|descriptor| {
                    DynamicMessage::decode(descriptor, any.value.as_slice()).ok()
                })
                .and_then(|message| serde_json::to_value(&message).ok())
            {
                detail.insert("debug".into(), debug);
            }
            detail.insert("type".into(), type_name.into());
            serde_json::Value::Object(detail)
        })
        .collect();
    if !details.is_empty() {
        error.insert("details".into(), details.into());
    }
    serde_json::Value::Object(error)
}

fn error_response(
    status: &Status,
    http_status: StatusCode,
    metadata: &HeaderMap,
    pool: &prost_reflect::DescriptorPool,
) -> http::Response<Body> {
    let body = error_json(status, pool).to_string();
    let mut response = http::Response::new(Body::new(Full::new(Bytes::from(body))));
    *response.status_mut() = http_status;
    *response.headers_mut() = metadata.clone();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        Routes::new(&["expansion.health.v1.AccountHealthService"]).unwrap()
    }

    fn input(routes: &Routes, method: &str) -> MessageDescriptor {
        routes
            .method(&format!(
                "/expansion.health.v1.AccountHealthService/{method}"
            ))
            .unwrap()
            .input()
    }

    #[test]
    fn a_bad_json_body_names_the_field_by_its_proto_name() {
        let routes = routes();
        let upsert = input(&routes, "UpsertAccount");
        let err = decode_json(&upsert, br#"{"externalRef": {"id": 7}}"#).unwrap_err();
        assert_eq!(err.field, "external_ref.id", "{err:?}");
        let err = decode_json(&upsert, br#"{"nmae": "Acme"}"#).unwrap_err();
        assert!(err.description.contains("nmae"), "{err:?}");
        let err = decode_json(&upsert, b"{").unwrap_err();
        assert_eq!(err.field, "body", "{err:?}");
        assert!(decode_json(&upsert, b"").is_ok());
        assert!(decode_json(&upsert, b"{} trailing").is_err());
    }

    #[test]
    fn frames_round_trip_and_a_partial_frame_is_refused() {
        let framed = frame(b"hello").unwrap();
        assert_eq!(&framed[..5], &[0, 0, 0, 0, 5]);
        assert_eq!(
            unframe(framed.clone()).unwrap(),
            Bytes::from_static(b"hello")
        );
        assert!(unframe(framed.slice(..6)).is_err());
        assert!(unframe(Bytes::new()).is_err());
    }

    #[test]
    fn timeouts_follow_both_protocols_limits() {
        let mut headers = HeaderMap::new();
        assert_eq!(connect_timeout(&headers), Ok(None));
        headers.insert("connect-timeout-ms", HeaderValue::from_static("1500"));
        assert_eq!(
            connect_timeout(&headers),
            Ok(Some(Duration::from_millis(1500)))
        );
        headers.insert(
            "connect-timeout-ms",
            HeaderValue::from_static("12345678901"),
        );
        assert!(connect_timeout(&headers).is_err());
        headers.insert("connect-timeout-ms", HeaderValue::from_static("-1"));
        assert!(connect_timeout(&headers).is_err());
        assert_eq!(grpc_timeout(Duration::from_millis(1500)), "1500m");
        assert_eq!(grpc_timeout(Duration::from_secs(200_000)), "200000S");
    }

    #[test]
    fn an_error_carries_each_detail_with_its_debug_form() {
        let status = contracts::ApiError::invalid("account.name", "must not be empty")
            .into_status("expansion.health.v1");
        let json = error_json(&status, routes().pool());
        assert_eq!(json["code"], "invalid_argument");
        let details = json["details"].as_array().unwrap();
        let bad_request = details
            .iter()
            .find(|d| d["type"] == "google.rpc.BadRequest")
            .unwrap();
        assert_eq!(
            bad_request["debug"]["fieldViolations"][0]["field"],
            "account.name"
        );
        assert!(bad_request["value"].as_str().is_some_and(|v| !v.is_empty()));
        assert!(details.iter().any(|d| d["type"] == "google.rpc.ErrorInfo"
            && d["debug"]["domain"] == "expansion.health.v1"));
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(http_status(Code::Cancelled).as_u16(), 499);
    }
}
