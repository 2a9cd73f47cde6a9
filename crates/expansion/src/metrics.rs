//! Prometheus metrics on their own port (`--metrics-listen`), as OpenMetrics
//! text at `/metrics`:
//!
//! - `grpc_server_handled_total{grpc_service,grpc_method,grpc_code}` and
//!   `grpc_server_handling_seconds{grpc_service,grpc_method}`, recorded by
//!   [`RpcMetricsLayer`] around every call (names as go-grpc-prometheus has
//!   them, so existing dashboards work; errors are the `grpc_code != "OK"`
//!   series);
//! - `expansion_outbox_pending`, `expansion_outbox_parked` and
//!   `expansion_outbox_oldest_pending_age_seconds` per outbox, read from the
//!   deliveries table when scraped;
//! - `expansion_signals_accepted_total` and `expansion_signals_duplicate_total`
//!   (what `RecordSignals`/`StreamSignals` stored and skipped);
//! - `expansion_db_statements_total{service}`: statements each service sent
//!   to its database (those inside transactions included), so the round
//!   trips a call costs are its increase divided by the calls.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::{Body, Frame, SizeHint};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tonic::codegen::http;

/// The gRPC services this binary can serve; calls to any other name are
/// counted as `unknown`, so a client can't mint label values.
const KNOWN_SERVICES: [&str; 6] = [
    "expansion.health.v1.AccountHealthService",
    "expansion.pipeline.v1.OpportunityPipelineService",
    "expansion.credit.v1.CompensationCreditService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Latency buckets in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_service: String,
    grpc_method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxLabels {
    outbox: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// An outbox whose backlog is reported, with the database it lives in.
#[derive(Clone)]
struct WatchedOutbox {
    name: &'static str,
    outbox: storage::outbox::Outbox,
    db: DatabaseConnection,
}

/// Every metric of this process.
pub struct Metrics {
    registry: Registry,
    handled: Family<RpcLabels, Counter>,
    latency: Family<MethodLabels, Histogram, fn() -> Histogram>,
    outbox_pending: Family<OutboxLabels, Gauge>,
    outbox_parked: Family<OutboxLabels, Gauge>,
    outbox_oldest_age: Family<OutboxLabels, Gauge<f64, AtomicU64>>,
    outboxes: Mutex<Vec<WatchedOutbox>>,
    ingestion: Arc<Ingestion>,
    statements: Family<ServiceLabels, Counter>,
}

/// Signal totals, kept by the health service and read when scraped.
#[derive(Debug, Default)]
struct Ingestion(OnceLock<Arc<account_health::store::IngestTotals>>);

impl Collector for Ingestion {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(totals) = self.0.get() else {
            return Ok(());
        };
        for (name, help, value) in [
            (
                "expansion_signals_accepted",
                "Signals stored by RecordSignals and StreamSignals",
                &totals.accepted,
            ),
            (
                "expansion_signals_duplicate",
                "Signals skipped as duplicates (same source and external id)",
                &totals.duplicates,
            ),
        ] {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let handled = Family::<RpcLabels, Counter>::default();
        registry.register(
            "grpc_server_handled",
            "RPCs completed on the server, by service, method and gRPC status code",
            handled.clone(),
        );
        let latency = Family::<MethodLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time from a call's arrival to its status, by service and method",
            latency.clone(),
        );
        let outbox_pending = Family::<OutboxLabels, Gauge>::default();
        registry.register(
            "expansion_outbox_pending",
            "Outbox deliveries not yet made (retrying ones included)",
            outbox_pending.clone(),
        );
        let outbox_parked = Family::<OutboxLabels, Gauge>::default();
        registry.register(
            "expansion_outbox_parked",
            "Outbox deliveries refused for good, waiting for a person",
            outbox_parked.clone(),
        );
        let outbox_oldest_age = Family::<OutboxLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "expansion_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox delivery (0 when none is pending)",
            outbox_oldest_age.clone(),
        );
        let ingestion = Arc::new(Ingestion::default());
        registry.register_collector(Box::new(ingestion.clone()));
        let statements = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "expansion_db_statements",
            "Statements sent to the database, by service (those in transactions included)",
            statements.clone(),
        );
        Self {
            registry,
            handled,
            latency,
            outbox_pending,
            outbox_parked,
            outbox_oldest_age,
            outboxes: Mutex::new(Vec::new()),
            ingestion,
            statements,
        }
    }

    /// Reports this outbox's backlog under `outbox="name"`.
    pub fn watch_outbox(
        &self,
        name: &'static str,
        outbox: storage::outbox::Outbox,
        db: DatabaseConnection,
    ) {
        if let Ok(mut outboxes) = self.outboxes.lock() {
            outboxes.push(WatchedOutbox { name, outbox, db });
        }
    }

    /// Counts the statements `db` sends under `service`.
    pub fn count_statements(&self, db: &mut DatabaseConnection, service: &'static str) {
        let counter = self
            .statements
            .get_or_create(&ServiceLabels { service })
            .clone();
        db.set_metric_callback(move |_| {
            counter.inc();
        });
    }

    /// Reports the health service's signal totals.
    pub fn watch_ingestion(&self, totals: Arc<account_health::store::IngestTotals>) {
        let _ = self.ingestion.0.set(totals);
    }

    fn record(&self, service: &str, method: &str, code: tonic::Code, elapsed: Duration) {
        let known = KNOWN_SERVICES.contains(&service) && code != tonic::Code::Unimplemented;
        let (service, method) = if known {
            (service, method)
        } else {
            ("unknown", "unknown")
        };
        self.handled
            .get_or_create(&RpcLabels {
                grpc_service: service.to_owned(),
                grpc_method: method.to_owned(),
                grpc_code: code_name(code),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                grpc_service: service.to_owned(),
                grpc_method: method.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Reads the outbox backlogs, then encodes everything.
    pub async fn render(&self) -> Result<String, std::fmt::Error> {
        let outboxes = self.outboxes.lock().map(|o| o.clone()).unwrap_or_default();
        for watched in outboxes {
            let labels = OutboxLabels {
                outbox: watched.name,
            };
            match watched.outbox.backlog(&watched.db).await {
                Ok(backlog) => {
                    let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                    self.outbox_pending
                        .get_or_create(&labels)
                        .set(gauge(backlog.pending));
                    self.outbox_parked
                        .get_or_create(&labels)
                        .set(gauge(backlog.parked));
                    let age = backlog
                        .oldest_pending
                        .map(|at| (chrono::Utc::now() - at).as_seconds_f64().max(0.0))
                        .unwrap_or(0.0);
                    self.outbox_oldest_age.get_or_create(&labels).set(age);
                }
                Err(err) => {
                    tracing::warn!(outbox = watched.name, error = %err, "reading the outbox backlog for metrics failed");
                }
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Go's names of the gRPC codes, as Prometheus exporters and grpcurl print them.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(tonic::Code::from_i32(value.trim().parse().ok()?))
}

/// `grpc-timeout` (e.g. `500m`, `3S`): the client's deadline.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let text = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// One call being measured. Its status is recorded once: from the response
/// headers (a trailers-only response, as tonic sends for unary errors), else
/// from the trailers at the end of the body. A call dropped before either —
/// the server's deadline fired or the client went away — counts as
/// `DeadlineExceeded` once its deadline has passed and as `Canceled` before.
/// Each call also ends with an `rpc finished` event (level DEBUG, target
/// `expansion::rpc`) in the call's span: an access log when wanted.
struct Call {
    metrics: Option<Arc<Metrics>>,
    span: tracing::Span,
    service: String,
    method: String,
    started: Instant,
    deadline: Duration,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: tonic::Code) {
        if !self.done {
            self.done = true;
            let elapsed = self.started.elapsed();
            tracing::debug!(
                target: "expansion::rpc",
                parent: &self.span,
                code = code_name(code),
                elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                "rpc finished"
            );
            if let Some(metrics) = &self.metrics {
                metrics.record(&self.service, &self.method, code, elapsed);
            }
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = if self.started.elapsed() >= self.deadline {
            tonic::Code::DeadlineExceeded
        } else {
            tonic::Code::Cancelled
        };
        self.finish(code);
    }
}

/// The tower layer that measures every call (installed with
/// `Server::layer`, beside the per-RPC span). Without metrics it only
/// logs each call's end.
#[derive(Clone)]
pub struct RpcMetricsLayer {
    metrics: Option<Arc<Metrics>>,
    /// The server's deadline for calls that set none.
    default_timeout: Duration,
}

impl RpcMetricsLayer {
    pub fn new(metrics: Option<Arc<Metrics>>, default_timeout: Duration) -> Self {
        Self {
            metrics,
            default_timeout,
        }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    layer: RpcMetricsLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Body + Unpin + Send + 'static,
{
    type Response = http::Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let deadline = grpc_timeout(request.headers()).map_or(self.layer.default_timeout, |t| {
            t.min(self.layer.default_timeout)
        });
        let mut call = Call {
            metrics: self.layer.metrics.clone(),
            span: tracing::Span::none(),
            service: service.to_owned(),
            method: method.to_owned(),
            started: Instant::now(),
            deadline,
            done: false,
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            // The server enters the per-RPC span while it polls the call.
            call.span = tracing::Span::current();
            let response = match response.await {
                Ok(response) => response,
                Err(err) => {
                    call.finish(tonic::Code::Unknown);
                    return Err(err);
                }
            };
            if let Some(code) = grpc_status(response.headers()) {
                call.finish(code);
            } else if response.body().is_end_stream() {
                // No status and no body to bring one: not a gRPC answer.
                call.finish(tonic::Code::Unknown);
            }
            Ok(response.map(|inner| MeteredBody { inner, call }))
        })
    }
}

/// A response body that records its call's status from the trailers.
pub struct MeteredBody<B> {
    inner: B,
    call: Call,
}

impl<B: Body + Unpin> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    this.call.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => this.call.finish(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `/metrics` on `addr` until the process ends; returns the bound
/// address (port 0 picks a free one).
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<SocketAddr> {
    use anyhow::Context as _;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics listener {addr}"))?;
    let local = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .fallback(|| async { (http::StatusCode::NOT_FOUND, "metrics are at /metrics\n") })
        .with_state(metrics);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(error = %err, "the metrics listener stopped");
        }
    });
    Ok(local)
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`: the OpenMetrics text.
async fn scrape(
    axum::extract::State(metrics): axum::extract::State<Arc<Metrics>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match metrics.render().await {
        Ok(text) => ([(http::header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the metrics failed\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, http::HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn reads_grpc_timeouts() {
        assert_eq!(
            grpc_timeout(&headers(&[("grpc-timeout", "500m")])),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            grpc_timeout(&headers(&[("grpc-timeout", "3S")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            grpc_timeout(&headers(&[("grpc-timeout", "2M")])),
            Some(Duration::from_secs(120))
        );
        assert_eq!(grpc_timeout(&headers(&[("grpc-timeout", "3x")])), None);
        assert_eq!(grpc_timeout(&headers(&[("grpc-timeout", "")])), None);
        assert_eq!(grpc_timeout(&headers(&[])), None);
    }

    #[test]
    fn reads_grpc_status() {
        assert_eq!(
            grpc_status(&headers(&[("grpc-status", "3")])),
            Some(tonic::Code::InvalidArgument)
        );
        assert_eq!(
            grpc_status(&headers(&[("grpc-status", "0")])),
            Some(tonic::Code::Ok)
        );
        assert_eq!(grpc_status(&headers(&[("grpc-status", "x")])), None);
    }

    #[tokio::test]
    async fn unknown_services_and_methods_share_one_label() {
        let metrics = Metrics::new();
        metrics.record(
            "expansion.health.v1.AccountHealthService",
            "GetAccount",
            tonic::Code::NotFound,
            Duration::from_millis(3),
        );
        metrics.record(
            "evil.Service",
            "x1",
            tonic::Code::Unimplemented,
            Duration::ZERO,
        );
        metrics.record(
            "expansion.health.v1.AccountHealthService",
            "NoSuchMethod",
            tonic::Code::Unimplemented,
            Duration::ZERO,
        );
        let text = metrics.render().await.unwrap();
        assert!(text.contains(
            r#"grpc_server_handled_total{grpc_service="expansion.health.v1.AccountHealthService",grpc_method="GetAccount",grpc_code="NotFound"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"grpc_server_handled_total{grpc_service="unknown",grpc_method="unknown",grpc_code="Unimplemented"} 2"#
        ), "{text}");
        assert!(!text.contains("evil") && !text.contains("NoSuchMethod"));
    }

    #[test]
    fn a_dropped_call_counts_as_cancelled_or_past_its_deadline() {
        let metrics = Arc::new(Metrics::new());
        let call = |deadline: Duration| Call {
            metrics: Some(metrics.clone()),
            span: tracing::Span::none(),
            service: "grpc.health.v1.Health".into(),
            method: "Watch".into(),
            started: Instant::now(),
            deadline,
            done: false,
        };
        drop(call(Duration::from_secs(3600)));
        drop(call(Duration::ZERO));
        let count = |code| {
            metrics
                .handled
                .get(&RpcLabels {
                    grpc_service: "grpc.health.v1.Health".into(),
                    grpc_method: "Watch".into(),
                    grpc_code: code,
                })
                .map(|c| c.get())
        };
        assert_eq!(count("Canceled"), Some(1));
        assert_eq!(count("DeadlineExceeded"), Some(1));
    }
}
