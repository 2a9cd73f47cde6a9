//! `expansion`: one binary for Expansion's three gRPC services.
//!
//! `expansion serve` runs all three on one port over embedded SQLite files
//! (the default, no setup needed); `expansion serve --service NAME` runs one,
//! for a distributed deployment over PostgreSQL; `expansion migrate` applies
//! the schema migrations and exits; `expansion import` loads a CRM export.

mod auth;
mod bench;
mod cli;
mod database;
mod demo;
#[cfg(test)]
mod deploy_tests;
#[cfg(test)]
mod docs_tests;
mod import;
mod limits;
mod metrics;
mod serve;
mod telemetry;
mod web;

use clap::Parser;

use crate::cli::{BenchCommand, Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = telemetry::init(cli.log_format, cli.otlp_endpoint.as_deref())?;
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Migrate(args) => database::migrate_only(&args).await,
        Command::Demo(args) => {
            let summary = demo::load(&args.target, &args.client.options()?).await?;
            println!("{summary}");
            Ok(())
        }
        Command::Import(args) => {
            let tally = import::run(*args).await?;
            if tally.rejected > 0 {
                use std::io::Write;
                // A closed pipe (`import … | head`) has nothing left to flush to.
                let _ = std::io::stdout().flush();
                std::process::exit(import::EXIT_REJECTED);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Ingest(args)) => bench::ingest(args).await,
        Command::Bench(BenchCommand::Read(args)) => bench::read(args).await,
        Command::Bench(BenchCommand::Revenue(args)) => bench::revenue(args).await,
        Command::Bench(BenchCommand::Flows(args)) => bench::flows(args).await,
        Command::Keys(command) => auth::command::run(command),
    }
}
