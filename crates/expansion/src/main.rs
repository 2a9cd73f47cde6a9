//! `expansion`: one binary for Expansion's three gRPC services.
//!
//! `expansion serve` runs all three on one port over embedded SQLite files
//! (the default, no setup needed); `expansion serve --service NAME` runs one,
//! for a distributed deployment over PostgreSQL; `expansion migrate` applies
//! the schema migrations and exits.

mod bench;
mod cli;
mod database;
mod demo;
mod metrics;
mod serve;

use clap::Parser;

use crate::cli::{BenchCommand, Cli, Command, LogFormat};

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EXPANSION_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Migrate(args) => database::migrate_only(&args).await,
        Command::Demo(args) => {
            let summary = demo::load(&args.target).await?;
            println!("{summary}");
            Ok(())
        }
        Command::Bench(BenchCommand::Ingest(args)) => bench::ingest(args).await,
    }
}
