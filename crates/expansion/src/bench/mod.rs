//! `expansion bench …`: each benchmark builds its own dataset, runs the real
//! binary as a separate process and measures it beside a baseline in the
//! same run (see BENCHMARKS.md), so ratios hold on a noisy machine.

mod flows;
mod ingest;
mod read;
mod revenue;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sea_orm::ConnectionTrait;

pub use flows::flows;
pub use ingest::ingest;
pub use read::read;
pub use revenue::revenue;

/// Fresh databases for one run, and how to drop them afterwards.
struct Databases {
    urls: Vec<String>,
    cleanup: Option<(String, Vec<String>)>,
    /// The SQLite files' folder, removed with it.
    dir: Option<tempfile::TempDir>,
}

impl Databases {
    fn is_postgres(&self) -> bool {
        self.cleanup.is_some()
    }

    fn backend(&self) -> &'static str {
        if self.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }
}

/// One fresh database per name: SQLite files in a temp dir, or PostgreSQL
/// databases created from `admin_url`.
async fn databases(admin_url: Option<&str>, names: &[&str]) -> anyhow::Result<Databases> {
    match admin_url {
        None => {
            let dir = tempfile::tempdir()?;
            Ok(Databases {
                urls: names
                    .iter()
                    .map(|name| storage::sqlite_url(dir.path(), name))
                    .collect(),
                cleanup: None,
                dir: Some(dir),
            })
        }
        Some(admin) => {
            let db = sea_orm::Database::connect(admin)
                .await
                .context("connecting PostgreSQL")?;
            let stamp = uuid::Uuid::now_v7().simple().to_string();
            let created: Vec<String> = names
                .iter()
                .map(|name| format!("bench_{name}_{stamp}"))
                .collect();
            for name in &created {
                db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await?;
            }
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b)
                .context("URL must end in /DATABASE")?;
            Ok(Databases {
                urls: created.iter().map(|n| format!("{base}/{n}")).collect(),
                cleanup: Some((admin.to_owned(), created)),
                dir: None,
            })
        }
    }
}

async fn drop_databases(dbs: Databases) -> anyhow::Result<()> {
    if let Some((admin, names)) = dbs.cleanup {
        let db = sea_orm::Database::connect(&admin).await?;
        for name in names {
            db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
        }
    }
    Ok(())
}

/// The server under test, killed when dropped.
struct ServerProcess {
    child: Child,
    /// Where it serves `/metrics`, when started with `--metrics-listen`.
    metrics: Option<String>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Peak resident memory so far (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// The statements `service` has sent to its database so far, read from
    /// `/metrics` with curl; `None` without metrics (or curl).
    fn statements(&self, service: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://{}/metrics", self.metrics.as_ref()?)])
            .output()
            .ok()?;
        let series = format!("expansion_db_statements_total{{service=\"{service}\"}} ");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
    }
}

/// Starts `expansion serve` (this very binary) on `database_url` with
/// `extra` flags; returns it and the address it listens on.
fn start_server(database_url: &str, extra: &[&str]) -> anyhow::Result<(ServerProcess, String)> {
    start_serving(["--database-url", database_url], extra)
}

/// Starts all three services on `dbs` as a deployment lays them out: on
/// SQLite each service its own file in the databases' folder (one file
/// shared by three services would make their writes collide), on
/// PostgreSQL the one database.
fn start_all_services(dbs: &Databases, extra: &[&str]) -> anyhow::Result<(ServerProcess, String)> {
    match dbs.dir.as_ref().and_then(|dir| dir.path().to_str()) {
        Some(dir) => start_serving(["--data-dir", dir], extra),
        None => start_server(&dbs.urls[0], extra),
    }
}

fn start_serving(storage: [&str; 2], extra: &[&str]) -> anyhow::Result<(ServerProcess, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(storage)
        .args(extra)
        .env("EXPANSION_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut process = ServerProcess {
        child,
        metrics: None,
    };
    for line in lines.by_ref() {
        let line = line?;
        if let Some(addr) = line.strip_prefix("metrics on ") {
            process.metrics = Some(addr.trim().to_owned());
        }
        if let Some(addr) = line.strip_prefix("listening on ") {
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(name: &str, rows: usize, total: Duration, mut latencies: Vec<Duration>) -> f64 {
    latencies.sort();
    let rate = rows as f64 / total.as_secs_f64();
    println!(
        "{name:<34} {rows:>9} rows {:>9.2} s {rate:>12.0} rows/s   batch p50 {:>7.2} ms  p99 {:>7.2} ms",
        total.as_secs_f64(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
    );
    rate
}

/// What a closed-loop load run measured.
struct Load {
    calls: usize,
    errors: usize,
    elapsed: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
}

impl Load {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn p50(&self) -> Duration {
        percentile(&self.latencies, 0.50)
    }

    fn p99(&self) -> Duration {
        percentile(&self.latencies, 0.99)
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<44} {:>8} calls {:>10.0} req/s   p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}",
            self.calls,
            self.rate(),
            ms(self.p50()),
            ms(self.p99()),
            self.errors
        );
    }
}

/// `concurrency` tasks each calling `call(task, i)` back to back for
/// `duration` (closed loop); errors are counted, not timed.
async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Load
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut i = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                if call(task, i).await {
                    latencies.push(t.elapsed());
                } else {
                    errors += 1;
                }
                i += 1;
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Load {
        calls: latencies.len(),
        errors,
        elapsed,
        latencies,
    }
}

/// The id of the `i`-th generated row of a kind: a valid UUIDv7 shape,
/// the same in SQL and in Rust.
fn generated_id(kind: u8, i: usize) -> String {
    format!("00000000-0000-7000-8{kind:03x}-{i:012x}")
}

/// SQL pieces that differ between SQLite and PostgreSQL.
struct Sql {
    postgres: bool,
}

impl Sql {
    /// `SELECT {columns} FROM` the integers 1..=n, as `i`.
    fn series(&self, n: usize, columns: &str) -> String {
        if self.postgres {
            format!("SELECT {columns} FROM generate_series(1::bigint, {n}) AS n(i)")
        } else {
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) SELECT {columns} FROM n"
            )
        }
    }

    /// The SQL of [`generated_id`].
    fn id(&self, kind: u8, expr: &str) -> String {
        let prefix = format!("'00000000-0000-7000-8{kind:03x}-'");
        if self.postgres {
            format!("({prefix} || lpad(to_hex({expr}), 12, '0'))")
        } else {
            format!("({prefix} || printf('%012x', {expr}))")
        }
    }

    /// `base` plus `days_expr` days, as a date.
    fn date_plus(&self, base: &str, days_expr: &str) -> String {
        if self.postgres {
            format!("(date '{base}' + ({days_expr})::int)")
        } else {
            format!("date('{base}', '+' || ({days_expr}) || ' days')")
        }
    }
}

/// Inserts `n` accounts ([`generated_id`] kind 1, numbered from 1) in one
/// statement.
async fn seed_accounts_sql(
    db: &sea_orm::DatabaseConnection,
    sql: &Sql,
    n: usize,
    customer_since: &str,
) -> anyhow::Result<()> {
    let columns = format!(
        "{}, 'bench', 'a-' || i, 'Bench ' || i, 'SMB', '{customer_since}', 1, '2026-01-01T00:00:00Z', 'bench', '2026-01-01T00:00:00Z', 'bench'",
        sql.id(1, "i")
    );
    db.execute_unprepared(&format!(
        "INSERT INTO accounts (id, external_system, external_id, name, segment, customer_since, fiscal_year_start_month, created_at, created_by, updated_at, updated_by) {}",
        sql.series(n, &columns)
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_ids() {
        let id = generated_id(1, 42);
        assert_eq!(id, "00000000-0000-7000-8001-00000000002a");
        assert!(domain::AccountId::parse(&id).is_ok(), "{id}");
    }

    #[test]
    fn percentiles_pick_ranks() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }
}
