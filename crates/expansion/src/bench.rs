//! `expansion bench ingest`: signal ingestion through the real server
//! (gRPC `RecordSignals`, batches of 1,000) beside its ceiling, raw sqlx
//! multi-row inserts of the same rows into the same table, in one run so the
//! ratio holds on a noisy machine.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use contracts::pb::health::v1 as pb;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use migrations::MigratorTrait;
use sea_orm::sqlx::QueryBuilder;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::cli::IngestBenchArgs;

/// One generated signal row, identical for both contenders.
struct Row {
    account_id: String,
    kind: &'static str,
    value_e4: i64,
    limit_e4: Option<i64>,
    external_id: String,
}

const KINDS: [(&str, pb::SignalKind); 4] = [
    ("USAGE", pb::SignalKind::Usage),
    ("LOGIN", pb::SignalKind::Login),
    ("NPS", pb::SignalKind::Nps),
    ("SUPPORT_TICKET", pb::SignalKind::SupportTicket),
];

fn rows(accounts: &[String], n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let kind = i % KINDS.len();
            Row {
                account_id: accounts[i % accounts.len()].clone(),
                kind: KINDS[kind].0,
                value_e4: i64::try_from(i % 10).unwrap_or(0) * 10_000,
                limit_e4: (kind == 0).then_some(100 * 10_000),
                external_id: format!("bench-{i}"),
            }
        })
        .collect()
}

/// Two fresh databases (raw, service) and how to drop them afterwards.
struct Databases {
    raw_url: String,
    service_url: String,
    cleanup: Option<(String, Vec<String>)>,
    _dir: Option<tempfile::TempDir>,
}

async fn databases(admin_url: Option<&str>) -> anyhow::Result<Databases> {
    match admin_url {
        None => {
            let dir = tempfile::tempdir()?;
            Ok(Databases {
                raw_url: storage::sqlite_url(dir.path(), "raw"),
                service_url: storage::sqlite_url(dir.path(), "service"),
                cleanup: None,
                _dir: Some(dir),
            })
        }
        Some(admin) => {
            let db = sea_orm::Database::connect(admin)
                .await
                .context("connecting PostgreSQL")?;
            let stamp = uuid::Uuid::now_v7().simple().to_string();
            let names = vec![format!("bench_raw_{stamp}"), format!("bench_svc_{stamp}")];
            for name in &names {
                db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await?;
            }
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b)
                .context("URL must end in /DATABASE")?;
            Ok(Databases {
                raw_url: format!("{base}/{}", names[0]),
                service_url: format!("{base}/{}", names[1]),
                cleanup: Some((admin.to_owned(), names)),
                _dir: None,
            })
        }
    }
}

async fn seed_accounts(db: &DatabaseConnection, n: usize) -> anyhow::Result<Vec<String>> {
    migrations::health::Migrator::up(db, None).await?;
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    for chunk in ids.chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                format!(
                    "('{id}', 'bench', 'a-{id}', 'Bench {i}', 'SMB', 1, '2026-01-01T00:00:00Z', 'bench', '2026-01-01T00:00:00Z', 'bench')"
                )
            })
            .collect();
        db.execute_unprepared(&format!(
            "INSERT INTO accounts (id, external_system, external_id, name, segment, fiscal_year_start_month, created_at, created_by, updated_at, updated_by) VALUES {}",
            values.join(",")
        ))
        .await?;
    }
    Ok(ids)
}

macro_rules! raw_insert {
    ($pool:expr, $rows:expr, $batch:expr) => {{
        let now = chrono::Utc::now();
        let mut latencies = Vec::new();
        for chunk in $rows.chunks($batch) {
            let started = Instant::now();
            let mut tx = $pool.begin().await?;
            let mut q = QueryBuilder::new(
                "INSERT INTO signals (account_id, product_id, kind, value_e4, limit_e4, occurred_at, source, external_id, detail, recorded_at) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.account_id.as_str())
                    .push_bind(None::<String>)
                    .push_bind(r.kind)
                    .push_bind(r.value_e4)
                    .push_bind(r.limit_e4)
                    .push_bind(now)
                    .push_bind("bench")
                    .push_bind(r.external_id.as_str())
                    .push_bind(None::<String>)
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (source, external_id) DO NOTHING");
            q.build().execute(&mut *tx).await?;
            tx.commit().await?;
            latencies.push(started.elapsed());
        }
        latencies
    }};
}

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ServerProcess {
    /// Peak resident memory so far (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }
}

fn start_server(database_url: &str) -> anyhow::Result<(ServerProcess, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "serve",
            "--service",
            "health",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ])
        .env("EXPANSION_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let process = ServerProcess(child);
    for line in lines.by_ref() {
        if let Some(addr) = line?.strip_prefix("listening on ") {
            let addr = addr.trim().to_owned();
            std::thread::spawn(move || for _ in lines {});
            return Ok((process, addr));
        }
    }
    bail!("the server exited before listening")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(name: &str, rows: usize, total: Duration, mut latencies: Vec<Duration>) -> f64 {
    latencies.sort();
    let rate = rows as f64 / total.as_secs_f64();
    println!(
        "{name:<34} {rows:>9} rows {:>9.2} s {rate:>12.0} rows/s   batch p50 {:>7.2} ms  p99 {:>7.2} ms",
        total.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    rate
}

pub async fn ingest(args: IngestBenchArgs) -> anyhow::Result<()> {
    let dbs = databases(args.postgres_admin_url.as_deref()).await?;
    let backend = if args.postgres_admin_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "signal ingestion on {backend}: {} signals over {} accounts, batches of {}",
        args.signals, args.accounts, args.batch
    );

    // Baseline: raw sqlx into a fresh copy of the same schema.
    let raw_db = storage::connect(&dbs.raw_url).await?;
    let raw_accounts = seed_accounts(&raw_db, args.accounts).await?;
    let raw_rows = rows(&raw_accounts, args.signals);
    let started = Instant::now();
    let raw_latencies = if dbs.raw_url.starts_with("postgres") {
        let pool = raw_db.get_postgres_connection_pool();
        raw_insert!(pool, raw_rows, args.batch)
    } else {
        let pool = raw_db.get_sqlite_connection_pool();
        raw_insert!(pool, raw_rows, args.batch)
    };
    let raw_rate = summary(
        "raw sqlx multi-row INSERT",
        raw_rows.len(),
        started.elapsed(),
        raw_latencies,
    );
    raw_db.close().await.ok();

    // The service: the real binary over gRPC.
    let svc_db = storage::connect(&dbs.service_url).await?;
    let accounts = seed_accounts(&svc_db, args.accounts).await?;
    svc_db.close().await.ok();
    let (server, addr) = start_server(&dbs.service_url)?;
    let mut client = AccountHealthServiceClient::connect(format!("http://{addr}"))
        .await?
        .max_encoding_message_size(64 << 20);
    let batches: Vec<pb::RecordSignalsRequest> = rows(&accounts, args.signals)
        .chunks(args.batch)
        .map(|chunk| pb::RecordSignalsRequest {
            request_id: String::new(),
            signals: chunk
                .iter()
                .map(|r| pb::Signal {
                    account_id: r.account_id.clone(),
                    kind: KINDS
                        .iter()
                        .find(|(k, _)| *k == r.kind)
                        .map_or(0, |(_, p)| *p as i32),
                    value: (r.value_e4 / 10_000).to_string(),
                    limit: r
                        .limit_e4
                        .map(|l| (l / 10_000).to_string())
                        .unwrap_or_default(),
                    source: "bench".into(),
                    external_id: r.external_id.clone(),
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(batches.len());
    let mut accepted = 0;
    for batch in batches {
        let t = Instant::now();
        accepted += client.record_signals(batch).await?.into_inner().accepted;
        latencies.push(t.elapsed());
    }
    let total = started.elapsed();
    let service_rate = summary(
        "RecordSignals (gRPC, real binary)",
        args.signals,
        total,
        latencies,
    );
    if usize::try_from(accepted).ok() != Some(args.signals) {
        bail!(
            "the service accepted {accepted} of {} signals",
            args.signals
        );
    }
    println!("ratio service / raw: {:.2}", service_rate / raw_rate);
    if let Some(mib) = server.peak_rss_mib() {
        println!("server peak RSS: {mib:.1} MiB");
    }
    drop(server);

    if let Some((admin, names)) = dbs.cleanup {
        let db = sea_orm::Database::connect(&admin).await?;
        for name in names {
            db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
        }
    }
    Ok(())
}
