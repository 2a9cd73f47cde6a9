//! `expansion bench ingest`: signal ingestion through the real server
//! (gRPC `RecordSignals`, batches of 1,000) beside two ceilings, in one run
//! so the ratios hold on a noisy machine: raw sqlx multi-row inserts of the
//! same rows into the same schema (what the service could reach), and into a
//! minimal table with one unique key and nothing else (what the disk could
//! reach: the gap between the two is the schema's cost).

use std::time::Instant;

use anyhow::bail;
use contracts::pb::health::v1 as pb;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use migrations::MigratorTrait;
use sea_orm::DatabaseConnection;
use sea_orm::sqlx::QueryBuilder;

use super::{
    ServerProcess, Sql, databases, drop_databases, generated_id, seed_accounts_sql, start_server,
    summary,
};
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

/// The account of the `i`th signal among `n`: consecutive signals go to
/// accounts spread over the whole book, as a connector's batch does (any `n`
/// consecutive signals still reach every account once: multiplying by a
/// prime is a permutation of 0..n).
fn account_of(i: usize, n: usize) -> usize {
    const SPREAD: u64 = 2_654_435_761;
    let (i, n) = (i as u64, n.max(1) as u64);
    usize::try_from(i.wrapping_mul(SPREAD) % n).unwrap_or(0)
}

fn rows(accounts: &[String], n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let kind = i % KINDS.len();
            Row {
                account_id: accounts[account_of(i, accounts.len())].clone(),
                kind: KINDS[kind].0,
                value_e4: i64::try_from(i % 10).unwrap_or(0) * 10_000,
                limit_e4: (kind == 0).then_some(100 * 10_000),
                external_id: format!("bench-{i}"),
            }
        })
        .collect()
}

/// The health schema and `n` accounts (inserted by SQL); their ids.
async fn seed_accounts(db: &DatabaseConnection, n: usize) -> anyhow::Result<Vec<String>> {
    migrations::health::Migrator::up(db, None).await?;
    let sql = Sql {
        postgres: db.get_database_backend() == sea_orm::DatabaseBackend::Postgres,
    };
    seed_accounts_sql(db, &sql, n, "2024-01-01").await?;
    Ok((1..=n).map(|i| generated_id(1, i)).collect())
}

/// The minimal table of the disk ceiling: the signal's columns, one unique
/// key (the dedup key), no other index, no foreign key.
fn ceiling_table(postgres: bool) -> String {
    let time = if postgres { "TIMESTAMPTZ" } else { "TEXT" };
    format!(
        "CREATE TABLE signal_ceiling (account_id TEXT NOT NULL, product_id TEXT, \
         kind TEXT NOT NULL, value_e4 BIGINT NOT NULL, limit_e4 BIGINT, \
         occurred_at {time} NOT NULL, source TEXT NOT NULL, external_id TEXT NOT NULL, \
         detail TEXT, recorded_at {time} NOT NULL, UNIQUE (source, external_id))"
    )
}

macro_rules! raw_insert {
    ($pool:expr, $table:expr, $rows:expr, $batch:expr) => {{
        let now = chrono::Utc::now();
        let mut latencies = Vec::new();
        for chunk in $rows.chunks($batch) {
            let started = Instant::now();
            let mut tx = $pool.begin().await?;
            let mut q = QueryBuilder::new(format!(
                "INSERT INTO {} (account_id, product_id, kind, value_e4, limit_e4, occurred_at, source, external_id, detail, recorded_at) ",
                $table
            ));
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

pub async fn ingest(args: IngestBenchArgs) -> anyhow::Result<()> {
    let dbs = databases(args.postgres_admin_url.as_deref(), &["raw", "svc", "disk"]).await?;
    let backend = if args.postgres_admin_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "signal ingestion on {backend}: {} signals over {} accounts, batches of {}",
        args.signals, args.accounts, args.batch
    );
    let disk_rate = disk_ceiling(&dbs.urls[2], &args).await?;
    let raw_rate = raw_baseline(&dbs.urls[0], &args).await?;
    let (service_rate, server) = through_the_service(&dbs.urls[1], &args).await?;
    println!("ratio service / raw: {:.2}", service_rate / raw_rate);
    println!(
        "ratio service / minimal table: {:.2}; raw into the schema / minimal table: {:.2}",
        service_rate / disk_rate,
        raw_rate / disk_rate
    );
    if let Some(mib) = server.peak_rss_mib() {
        println!("server peak RSS: {mib:.1} MiB");
    }
    drop(server);

    drop_databases(dbs).await?;
    Ok(())
}

/// Baseline: raw sqlx into a fresh copy of the same schema at `url`; rows per second.
async fn raw_baseline(url: &str, args: &IngestBenchArgs) -> anyhow::Result<f64> {
    let db = storage::connect(url).await?;
    let accounts = seed_accounts(&db, args.accounts).await?;
    raw_rate(db, "signals", "raw sqlx multi-row INSERT", &accounts, args).await
}

/// The disk's ceiling: the same rows, the same way, into [`ceiling_table`]
/// at `url`; rows per second.
async fn disk_ceiling(url: &str, args: &IngestBenchArgs) -> anyhow::Result<f64> {
    use sea_orm::ConnectionTrait;
    let db = storage::connect(url).await?;
    db.execute_unprepared(&ceiling_table(url.starts_with("postgres")))
        .await?;
    let accounts: Vec<String> = (1..=args.accounts).map(|i| generated_id(1, i)).collect();
    let label = "raw sqlx into a minimal table (1 key)";
    raw_rate(db, "signal_ceiling", label, &accounts, args).await
}

/// Inserts the generated rows over `accounts` into `table` of `db` in raw
/// batches, prints them as `label` and closes `db`; rows per second.
async fn raw_rate(
    db: DatabaseConnection,
    table: &str,
    label: &str,
    accounts: &[String],
    args: &IngestBenchArgs,
) -> anyhow::Result<f64> {
    let rows = rows(accounts, args.signals);
    let started = Instant::now();
    let latencies = if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        let pool = db.get_postgres_connection_pool();
        raw_insert!(pool, table, rows, args.batch)
    } else {
        let pool = db.get_sqlite_connection_pool();
        raw_insert!(pool, table, rows, args.batch)
    };
    let rate = summary(label, rows.len(), started.elapsed(), latencies);
    db.close().await.ok();
    Ok(rate)
}

/// The service: the real binary over gRPC on the database at `url`, every batch
/// accepted; signals per second, and the server (still running, for its RSS).
async fn through_the_service(
    url: &str,
    args: &IngestBenchArgs,
) -> anyhow::Result<(f64, ServerProcess)> {
    let svc_db = storage::connect(url).await?;
    let accounts = seed_accounts(&svc_db, args.accounts).await?;
    svc_db.close().await.ok();
    let (server, addr) = start_server(url, &["--service", "health"])?;
    let mut client = AccountHealthServiceClient::connect(format!("http://{addr}"))
        .await?
        .max_encoding_message_size(64 << 20);
    let batches = signal_batches(&rows(&accounts, args.signals), args.batch);
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
    if !url.starts_with("postgres") {
        let waited = indexed_by_account(url).await?;
        println!(
            "  every signal indexed by account {:.0} ms after the last batch was acknowledged",
            waited.as_secs_f64() * 1000.0
        );
    }
    Ok((service_rate, server))
}

/// On SQLite, how long until the server's background indexing has caught
/// up with every signal stored (see `Store::index_signals`).
async fn indexed_by_account(url: &str) -> anyhow::Result<std::time::Duration> {
    use sea_orm::ConnectionTrait;
    let started = Instant::now();
    let db = storage::connect(url).await?;
    let backend = db.get_database_backend();
    let behind = sea_orm::Statement::from_string(
        backend,
        "SELECT (SELECT COALESCE(MAX(seq), 0) FROM signals) - indexed_through \
         FROM signal_index_mark",
    );
    loop {
        let left: i64 = match db.query_one_raw(behind.clone()).await? {
            Some(row) => row.try_get_by_index(0)?,
            None => bail!("signal_index_mark has no row"),
        };
        if left <= 0 {
            break;
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            bail!("{left} signals still not indexed after two minutes");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    db.close().await.ok();
    Ok(started.elapsed())
}

/// The rows as `RecordSignals` calls of `batch` signals each.
fn signal_batches(rows: &[Row], batch: usize) -> Vec<pb::RecordSignalsRequest> {
    rows.chunks(batch)
        .map(|chunk| pb::RecordSignalsRequest {
            request_id: String::new(),
            signals: chunk.iter().map(signal_of).collect(),
        })
        .collect()
}

/// A row as the signal the service is sent: its kind, and value and limit in whole
/// units.
fn signal_of(r: &Row) -> pb::Signal {
    pb::Signal {
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
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn both_contenders_get_the_same_signals() {
        let accounts = vec!["a1".to_owned(), "a2".to_owned()];
        let rows = rows(&accounts, 5);
        let batches = signal_batches(&rows, 2);
        assert_eq!(
            batches.iter().map(|b| b.signals.len()).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        let first = &batches[0].signals[0];
        assert_eq!(first.account_id, "a1");
        assert_eq!(first.kind, pb::SignalKind::Usage as i32);
        assert_eq!((first.value.as_str(), first.limit.as_str()), ("0", "100"));
        assert_eq!(first.external_id, "bench-0");
        let second = &batches[0].signals[1];
        assert_eq!(second.account_id, "a2");
        assert_eq!(second.kind, pb::SignalKind::Login as i32);
        assert_eq!((second.value.as_str(), second.limit.as_str()), ("1", ""));
        assert_eq!(batches[2].signals[0].kind, pb::SignalKind::Usage as i32);
    }

    #[test]
    fn a_batch_reaches_accounts_all_over_the_book() {
        let n = 100_000;
        let batch: Vec<usize> = (0..1000).map(|i| account_of(i, n)).collect();
        let distinct: std::collections::BTreeSet<usize> = batch.iter().copied().collect();
        assert_eq!(distinct.len(), 1000);
        let (low, high) = (distinct.first().unwrap(), distinct.last().unwrap());
        assert!(high - low > n / 2, "{low}..{high}");
        let all: std::collections::BTreeSet<usize> = (0..n).map(|i| account_of(i, n)).collect();
        assert_eq!(all.len(), n, "n signals in a row reach every account once");
    }
}
