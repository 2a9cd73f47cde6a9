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
    Serve(ServeArgs),
    /// Apply the schema migrations and exit.
    Migrate(StorageArgs),
    /// Benchmarks beside their baselines (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// RecordSignals through the real server vs raw sqlx inserts of the same rows.
    Ingest(IngestBenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct IngestBenchArgs {
    /// Signals to ingest.
    #[arg(long, default_value_t = 200_000)]
    pub signals: usize,
    /// Signals per batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Accounts the signals spread over.
    #[arg(long, default_value_t = 1000)]
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
        default_value_t = 256
    )]
    pub concurrency_per_connection: usize,
    /// Time given to in-flight requests after SIGTERM or Ctrl-C.
    #[arg(long, env = "EXPANSION_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
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
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3h").is_err());
    }
}
