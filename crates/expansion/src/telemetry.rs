//! Logs on stderr (text, or one JSON object per line) and, in a build with
//! the `otel` feature, the spans exported over OTLP/gRPC.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::cli::LogFormat;

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Flushes exported spans when dropped at the end of `main`.
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("flushing the OTLP spans failed: {err}");
        }
    }
}

/// Installs the global subscriber: `EXPANSION_LOG` filters (default
/// `info`), `format` shapes stderr, `otlp_endpoint` adds the exporter.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let filter =
        EnvFilter::try_from_env("EXPANSION_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let mut layers: Vec<BoxedLayer> = vec![match format {
        LogFormat::Text => stderr.boxed(),
        // Each line carries the event's fields flattened, plus `span` and
        // `spans` (the per-RPC span's method and request_id among them).
        LogFormat::Json => stderr.json().flatten_event(true).boxed(),
    }];
    let telemetry = otlp(otlp_endpoint, &mut layers)?;
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init()?;
    Ok(telemetry)
}

#[cfg(not(feature = "otel"))]
fn otlp(endpoint: Option<&str>, _layers: &mut Vec<BoxedLayer>) -> anyhow::Result<Telemetry> {
    match endpoint {
        Some(endpoint) => anyhow::bail!(
            "--otlp-endpoint {endpoint}: this build has no OpenTelemetry export; build with `--features otel`"
        ),
        None => Ok(Telemetry {}),
    }
}

#[cfg(feature = "otel")]
fn otlp(endpoint: Option<&str>, layers: &mut Vec<BoxedLayer>) -> anyhow::Result<Telemetry> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;

    let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) else {
        return Ok(Telemetry { provider: None });
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let service_name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "expansion".into());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name)
                .build(),
        )
        .build();
    let tracer = provider.tracer("expansion");
    layers.push(tracing_opentelemetry::layer().with_tracer(tracer).boxed());
    Ok(Telemetry {
        provider: Some(provider),
    })
}
