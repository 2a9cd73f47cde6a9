//! The command line. Every flag can also be set by an `EXPANSION_*`
//! environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "expansion",
    version,
    about = "Expansion: B2B expansion revenue services over gRPC"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, env = "EXPANSION_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// OTLP/gRPC collector that receives the per-RPC spans, e.g.
    /// `http://otel-collector:4317`; needs a build with the `otel` feature.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC services (all three by default).
    Serve(Box<ServeArgs>),
    /// Apply the schema migrations and exit.
    Migrate(StorageArgs),
    /// Load a realistic sample dataset through the public API (idempotent).
    Demo(DemoArgs),
    /// Load a CSV file from a CRM export through the public API (idempotent).
    Import(Box<crate::import::ImportArgs>),
    /// Benchmarks beside their baselines (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// API keys: create (prints the token once), list, revoke.
    #[command(subcommand)]
    Keys(crate::auth::command::KeysCommand),
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Address of a server running all three services (scheme optional).
    #[arg(long, env = "EXPANSION_TARGET", default_value = "127.0.0.1:50051")]
    pub target: String,
    #[command(flatten)]
    pub client: crate::auth::ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// RecordSignals through the real server vs raw sqlx inserts of the same rows.
    Ingest(IngestBenchArgs),
    /// GetAccountHealth under load vs an echo RPC on the same stack, at several sizes.
    Read(ReadBenchArgs),
    /// GetRevenueMetrics for a month vs a hand-written SQL aggregate.
    Revenue(RevenueBenchArgs),
    /// GetWhitespace over a large portfolio, and close-won → credits latency.
    Flows(FlowsBenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ReadBenchArgs {
    /// Portfolio sizes to measure, smallest first (growth = last / first).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000", value_parser = at_least_one)]
    pub accounts: Vec<usize>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64, value_parser = at_least_one)]
    pub concurrency: usize,
    /// HTTP/2 connections the requests spread over.
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    pub connections: usize,
    /// Seconds each contender runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Also run h2load (Debian package nghttp2-client) against GetAccountHealth.
    #[arg(long)]
    pub h2load: bool,
    /// Run on PostgreSQL (see `bench ingest`).
    #[arg(long)]
    pub postgres_admin_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RevenueBenchArgs {
    /// Subscriptions in the book.
    #[arg(long, default_value_t = 1_000_000, value_parser = at_least_one)]
    pub subscriptions: usize,
    /// Accounts they belong to.
    #[arg(long, default_value_t = 100_000, value_parser = at_least_one)]
    pub accounts: usize,
    /// The month reported, `YYYY-MM`.
    #[arg(long, default_value = "2025-06")]
    pub month: String,
    /// Timed runs of each contender (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    pub runs: usize,
    /// Run on PostgreSQL (see `bench ingest`).
    #[arg(long)]
    pub postgres_admin_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct FlowsBenchArgs {
    /// Products in the portfolio.
    #[arg(long, default_value_t = 200, value_parser = at_least_one)]
    pub products: usize,
    /// Of which the account owns.
    #[arg(long, default_value_t = 20)]
    pub owned: usize,
    /// GetWhitespace requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    pub concurrency: usize,
    /// Seconds each whitespace contender runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Deals closed won, one at a time, for the outbox latency.
    #[arg(long, default_value_t = 100)]
    pub deals: usize,
    /// Run on PostgreSQL (see `bench ingest`).
    #[arg(long)]
    pub postgres_admin_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct IngestBenchArgs {
    /// Signals to ingest.
    #[arg(long, default_value_t = 200_000)]
    pub signals: usize,
    /// Signals per batch.
    #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
    pub batch: usize,
    /// Accounts the signals spread over.
    #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
    pub accounts: usize,
    /// Run on PostgreSQL: the URL of a database from which two throw-away
    /// databases are created (and dropped). SQLite files in a temp dir otherwise.
    #[arg(long)]
    pub postgres_admin_url: Option<String>,
}

/// Which of the three services a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceName {
    Health,
    Pipeline,
    Credit,
}

impl ServiceName {
    pub const ALL: [ServiceName; 3] = [Self::Health, Self::Pipeline, Self::Credit];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::Pipeline => "pipeline",
            Self::Credit => "credit",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Run only this service (default: all three).
    #[arg(long, env = "EXPANSION_SERVICE", value_enum)]
    pub service: Option<ServiceName>,
    /// Folder of the embedded SQLite files (one per service), used when no
    /// database URL is given.
    #[arg(long, env = "EXPANSION_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; with all services in one process they
    /// share it, each in its own tables.
    #[arg(long, env = "EXPANSION_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl StorageArgs {
    pub fn services(&self) -> Vec<ServiceName> {
        match self.service {
            Some(one) => vec![one],
            None => ServiceName::ALL.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed at start-up).
    #[arg(long, env = "EXPANSION_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Once listening, load the sample dataset (as `expansion demo` does);
    /// needs all three services in this process.
    #[arg(long, env = "EXPANSION_DEMO")]
    pub demo: bool,
    /// Largest request or response message, in bytes.
    #[arg(long, env = "EXPANSION_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Deadline applied to every request that sets none, e.g. `30s`, `500ms`.
    #[arg(long, env = "EXPANSION_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Requests served at once on one connection.
    #[arg(
        long,
        env = "EXPANSION_CONCURRENCY_PER_CONNECTION",
        default_value_t = 256,
        value_parser = at_least_one
    )]
    pub concurrency_per_connection: usize,
    /// Time given to in-flight requests after SIGTERM or Ctrl-C.
    #[arg(long, env = "EXPANSION_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Address of the health service the pipeline asks (`host:port` or URL).
    /// Defaults to this process's own address when it also serves health.
    #[arg(long, env = "EXPANSION_HEALTH_ADDR")]
    pub health_addr: Option<String>,
    /// Address of the credit service that won deals (pipeline) and
    /// cancellations (health) are delivered to. Defaults to this process's
    /// own address when it also serves credit.
    #[arg(long, env = "EXPANSION_CREDIT_ADDR")]
    pub credit_addr: Option<String>,
    /// Deadline of each call one service makes to another (pipeline →
    /// health and credit, health → credit). `--health-timeout` is its
    /// former name.
    #[arg(long, alias = "health-timeout", env = "EXPANSION_PEER_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub peer_timeout: Duration,
    /// `GetAccountHealth` answers kept in memory between writes, on SQLite
    /// (where this process is the only writer; a few hundred bytes each); 0
    /// turns it off. On PostgreSQL nothing is kept: other replicas write too.
    #[arg(long, env = "EXPANSION_HEALTH_READ_CACHE", default_value_t = account_health::store::HEALTH_READ_CACHE_ENTRIES)]
    pub health_read_cache: usize,
    /// Address of the Prometheus `/metrics` endpoint, e.g. `0.0.0.0:9464`
    /// (port 0 picks a free one, printed as `metrics on ADDR`); off when unset.
    #[arg(long, env = "EXPANSION_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Web origins whose pages may call this server from a browser (gRPC-Web,
    /// HTTP/JSON), comma-separated, e.g. `https://crm.example.com`; `*` for
    /// any. Without it no CORS header is sent: same-origin pages only.
    #[arg(long, env = "EXPANSION_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Do not serve the web console at `/console/` (served by default: its
    /// pages hold no data and read everything through the API with the key
    /// the person signs in with).
    #[arg(long, env = "EXPANSION_NO_CONSOLE")]
    pub no_console: bool,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub auth: crate::auth::ServeAuthArgs,
}

/// The pipeline's rules that a deployment tunes.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Stage win probabilities, e.g. `QUALIFIED=45,PROPOSED=65` (others keep
    /// the defaults 10/20/40/60/80/100/0).
    #[arg(long, env = "EXPANSION_STAGE_PROBABILITIES", default_value = "")]
    pub stage_probabilities: String,
    /// Days an open opportunity may stay in a stage before it is stalled, e.g.
    /// `NEGOTIATING=14` (defaults: IDENTIFIED 30, EXPLORING 30, QUALIFIED 45,
    /// PROPOSED 30, NEGOTIATING 21).
    #[arg(long, env = "EXPANSION_STALLED_DAYS", default_value = "")]
    pub stalled_days: String,
    /// Smallest amount that may reach QUALIFIED, per currency: `USD=25000,EUR=23000`
    /// (a bare amount is USD). A deal in a currency without a minimum is not QUALIFIED.
    #[arg(long, env = "EXPANSION_MIN_DEAL_SIZE", default_value = "USD=25000")]
    pub min_deal_size: String,
    /// Relationship strength (0–10) needed for QUALIFIED.
    #[arg(long, env = "EXPANSION_RELATIONSHIP_THRESHOLD", default_value_t = 7, value_parser = clap::value_parser!(i32).range(0..=10))]
    pub relationship_threshold: i32,
    /// Largest self-serve capacity upsell routed PRODUCT_LED, per currency
    /// (`USD=5000,EUR=4600`; a bare amount is USD).
    #[arg(long, env = "EXPANSION_PRODUCT_LED_MAX", default_value = "USD=5000")]
    pub product_led_max: String,
    /// Deals below this may be CSM_LED, per currency (`USD=10000,BRL=50000`; a bare
    /// amount is USD). A deal in a currency without a limit goes to Sales.
    #[arg(long, env = "EXPANSION_CSM_LED_BELOW", default_value = "USD=10000")]
    pub csm_led_below: String,
    /// Hours a requested handoff may wait for Sales before it is overdue.
    #[arg(long, env = "EXPANSION_HANDOFF_SLA_HOURS", default_value_t = 48, value_parser = clap::value_parser!(i64).range(0..=8760))]
    pub handoff_sla_hours: i64,
}

fn amount(
    flag: &str,
    text: &str,
) -> anyhow::Result<opportunity_pipeline::model::config::MoneyLimit> {
    opportunity_pipeline::model::config::MoneyLimit::parse(text)
        .map_err(|e| anyhow::anyhow!("--{flag} {text:?}: {e}"))
}

impl PipelineArgs {
    /// The pipeline configuration these flags describe.
    pub fn config(&self) -> anyhow::Result<opportunity_pipeline::PipelineConfig> {
        use opportunity_pipeline::model::config::parse_stage_map;
        let base = opportunity_pipeline::PipelineConfig::default();
        let stage_probability =
            parse_stage_map(&self.stage_probabilities, &base.stage_probability, |v| {
                domain::Percent::parse_between(
                    v,
                    domain::Percent::ZERO,
                    domain::Percent::ONE_HUNDRED,
                )
                .map_err(|e| e.to_string())
            })
            .map_err(|e| anyhow::anyhow!("--stage-probabilities: {e}"))?;
        let max_days_in_stage = parse_stage_map(&self.stalled_days, &base.max_days_in_stage, |v| {
            v.parse::<i64>()
                .ok()
                .filter(|d| *d >= 0)
                .ok_or_else(|| format!("{v:?} is not a number of days"))
        })
        .map_err(|e| anyhow::anyhow!("--stalled-days: {e}"))?;
        Ok(opportunity_pipeline::PipelineConfig {
            stage_probability,
            max_days_in_stage,
            min_deal_size: amount("min-deal-size", &self.min_deal_size)?,
            relationship_threshold: self.relationship_threshold,
            product_led_max: amount("product-led-max", &self.product_led_max)?,
            csm_led_below: amount("csm-led-below", &self.csm_led_below)?,
            handoff_sla_hours: self.handoff_sla_hours,
        })
    }
}

/// A count that must be at least 1 (batches, connections, accounts to spread
/// over: zero would divide by zero or never make progress).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// Parses `250ms`, `30s`, `5m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| text.split_at(i))
        .ok_or_else(|| format!("{text:?} needs a unit: ms, s or m"))?;
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{text:?}: unit must be ms, s or m")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn pipeline_flags_make_a_config() {
        let cli = Cli::parse_from([
            "expansion",
            "serve",
            "--stage-probabilities",
            "QUALIFIED=45",
            "--stalled-days",
            "NEGOTIATING=14",
            "--min-deal-size",
            "1000",
        ]);
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let c = args.pipeline.config().unwrap();
        assert_eq!(
            c.probability(domain::Stage::Qualified),
            domain::Percent::from_whole(45)
        );
        assert_eq!(c.max_days(domain::Stage::Negotiating), Some(14));
        assert_eq!(
            c.min_deal_size,
            opportunity_pipeline::model::config::MoneyLimit::usd(1000)
        );
        let bad = Cli::parse_from(["expansion", "serve", "--stalled-days", "WON=3"]);
        let Command::Serve(args) = bad.command else {
            panic!("not serve")
        };
        assert!(args.pipeline.config().is_err());
    }

    #[test]
    fn counts_that_divide_work_refuse_zero() {
        for args in [
            &["expansion", "bench", "read", "--connections", "0"][..],
            &["expansion", "bench", "read", "--accounts", "1000,0"],
            &["expansion", "bench", "ingest", "--batch", "0"],
            &["expansion", "bench", "revenue", "--runs", "0"],
            &["expansion", "serve", "--concurrency-per-connection", "0"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert!(err.to_string().contains("at least 1"), "{args:?}: {err}");
        }
        assert!(Cli::try_parse_from(["expansion", "bench", "ingest", "--batch", "1"]).is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3h").is_err());
    }
}

/// How webhooks are sent (README "Webhooks").
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Allow webhook endpoints on private, loopback and link-local addresses
    /// (a local receiver, tests). Off: such a URL is refused at registration
    /// and at each delivery, by the address the host resolves to.
    #[arg(long, env = "EXPANSION_WEBHOOKS_ALLOW_PRIVATE")]
    pub webhooks_allow_private: bool,
    /// Failed attempts in a row after which an endpoint is disabled.
    #[arg(long, env = "EXPANSION_WEBHOOKS_DISABLE_AFTER", default_value_t = 50, value_parser = clap::value_parser!(i32).range(1..))]
    pub webhooks_disable_after: i32,
    /// How long one webhook attempt may take.
    #[arg(long, env = "EXPANSION_WEBHOOKS_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhooks_timeout: Duration,
    /// The longest wait between attempts (the backoff starts at 1 s and doubles).
    #[arg(long, env = "EXPANSION_WEBHOOKS_MAX_BACKOFF", default_value = "10m", value_parser = parse_duration)]
    pub webhooks_max_backoff: Duration,
}

impl WebhookArgs {
    pub fn policy(&self) -> webhooks::Policy {
        webhooks::Policy {
            allow_private: self.webhooks_allow_private,
            disable_after: self.webhooks_disable_after,
            timeout: self.webhooks_timeout,
            max_delay: self.webhooks_max_backoff,
        }
    }
}
