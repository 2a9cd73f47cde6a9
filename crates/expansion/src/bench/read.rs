//! `expansion bench read`: `GetAccountHealth` under a closed-loop load at a
//! given concurrency, beside the ceiling of any RPC on the identical server
//! stack (`grpc.health.v1.Health/Check`, answered from memory by the same
//! process, through the same layers), at several portfolio sizes so the
//! growth of p99 shows; the same reads over HTTP/JSON (Connect unary) on
//! the same connections; optionally beside h2load, a load generator written
//! elsewhere.

use std::time::Duration;

use anyhow::Context;
use contracts::pb::health::v1 as pb;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use migrations::MigratorTrait;
use sea_orm::ConnectionTrait;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::{
    Databases, Load, ServerProcess, Sql, closed_loop, databases, drop_databases, generated_id, ms,
    seed_accounts_sql, start_server,
};
use crate::cli::ReadBenchArgs;

/// Copies the template account's computed scores (current and history) to
/// every other account, so each of them reads like a scored account.
async fn copy_scores(db: &sea_orm::DatabaseConnection, template: &str) -> anyhow::Result<()> {
    let columns = "product_id, score_e2, band, coverage_e2, breakdown, csm_sentiment, scorecard_version, computed_at";
    let picked = "t.product_id, t.score_e2, t.band, t.coverage_e2, t.breakdown, t.csm_sentiment, t.scorecard_version, t.computed_at";
    db.execute_unprepared(&format!(
        "INSERT INTO health_current (account_id, {columns}) SELECT a.id, {picked} \
         FROM accounts a CROSS JOIN health_current t WHERE t.account_id = '{template}' AND a.id <> '{template}'"
    ))
    .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO health_scores (id, account_id, {columns}) SELECT a.id || ':' || t.id, a.id, {picked} \
         FROM accounts a CROSS JOIN health_scores t WHERE t.account_id = '{template}' AND a.id <> '{template}'"
    ))
    .await?;
    Ok(())
}

async fn channels(addr: &str, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(
            Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?,
        );
    }
    Ok(out)
}

/// Scores the template account through the API: a product, its signals and
/// a read (which computes the score).
async fn score_template(addr: &str, template: &str) -> anyhow::Result<()> {
    let mut client = AccountHealthServiceClient::connect(format!("http://{addr}")).await?;
    let product = client
        .upsert_product(pb::UpsertProductRequest {
            request_id: String::new(),
            product: Some(pb::Product {
                name: "Bench Platform".into(),
                tiers: vec!["STARTER".into()],
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .product
        .context("product")?
        .product_id;
    let at = Some(contracts::wire::timestamp(
        chrono::Utc::now() - chrono::Duration::hours(1),
    ));
    let signal = |kind: pb::SignalKind, product: &str, value: &str, limit: &str| pb::Signal {
        account_id: template.into(),
        product_id: product.into(),
        kind: kind as i32,
        value: value.into(),
        limit: limit.into(),
        occur_time: at,
        source: "bench".into(),
        external_id: format!("template-{}", kind as i32),
        detail: String::new(),
    };
    client
        .record_signals(pb::RecordSignalsRequest {
            request_id: String::new(),
            signals: vec![
                signal(pb::SignalKind::Usage, &product, "70", "100"),
                signal(pb::SignalKind::ActiveUsers, &product, "80", "100"),
                signal(pb::SignalKind::Login, &product, "30", ""),
                signal(pb::SignalKind::Nps, "", "8", ""),
                signal(pb::SignalKind::SupportTicket, "", "2", ""),
            ],
        })
        .await?;
    let health = client
        .get_account_health(pb::GetAccountHealthRequest {
            account_id: template.into(),
        })
        .await?
        .into_inner()
        .health
        .context("health")?;
    anyhow::ensure!(
        health.overall.is_some_and(|o| o.has_score),
        "the template account has no score"
    );
    Ok(())
}

async fn get_health_load(
    channels: &[Channel],
    accounts: usize,
    concurrency: usize,
    duration: Duration,
) -> Load {
    let clients: Vec<AccountHealthServiceClient<Channel>> = channels
        .iter()
        .cloned()
        .map(AccountHealthServiceClient::new)
        .collect();
    closed_loop(concurrency, duration, move |task, i| {
        let mut client = clients[task % clients.len()].clone();
        // A spread of accounts, different per task: a multiplicative hash.
        let n = (task * 1_000_003 + i * 7919) % accounts + 1;
        async move {
            client
                .get_account_health(pb::GetAccountHealthRequest {
                    account_id: generated_id(1, n),
                })
                .await
                .is_ok_and(|r| r.into_inner().health.is_some())
        }
    })
    .await
}

/// A closed loop of HTTP/JSON (Connect unary) calls of `path` on the same
/// HTTP/2 connections as the gRPC contenders: a JSON body in, JSON out,
/// transcoded by the server on either side of the same gRPC stack. A call
/// succeeds when it answers 200 with a body starting with `expect`.
async fn json_load<B>(
    channels: &[Channel],
    concurrency: usize,
    duration: Duration,
    path: &'static str,
    body: B,
    expect: &'static [u8],
) -> Load
where
    B: Fn(usize, usize) -> String + Send + Sync + 'static,
{
    use http_body_util::BodyExt;
    use tower::Service;
    let channels = channels.to_vec();
    let body = std::sync::Arc::new(body);
    closed_loop(concurrency, duration, move |task, i| {
        let mut channel = channels[task % channels.len()].clone();
        let body = body(task, i);
        async move {
            let Ok(request) = tonic::codegen::http::Request::post(path)
                .header("content-type", "application/json")
                .body(tonic::body::Body::new(http_body_util::Full::new(
                    bytes::Bytes::from(body),
                )))
            else {
                return false;
            };
            if std::future::poll_fn(|cx| channel.poll_ready(cx))
                .await
                .is_err()
            {
                return false;
            }
            let Ok(response) = channel.call(request).await else {
                return false;
            };
            if !response.status().is_success() {
                return false;
            }
            response
                .into_body()
                .collect()
                .await
                .is_ok_and(|body| body.to_bytes().starts_with(expect))
        }
    })
    .await
}

/// How a `GetAccountHealth` reply over HTTP/JSON starts.
const HEALTH_REPLY: &[u8] = br#"{"health""#;
/// The echo's reply over HTTP/JSON.
const SERVING_REPLY: &[u8] = br#"{"status":"SERVING"}"#;

/// The same reads as [`get_health_load`], over HTTP/JSON.
async fn json_health_load(
    channels: &[Channel],
    accounts: usize,
    concurrency: usize,
    duration: Duration,
) -> Load {
    json_load(
        channels,
        concurrency,
        duration,
        "/expansion.health.v1.AccountHealthService/GetAccountHealth",
        move |task, i| {
            let n = (task * 1_000_003 + i * 7919) % accounts + 1;
            format!(r#"{{"accountId":"{}"}}"#, generated_id(1, n))
        },
        HEALTH_REPLY,
    )
    .await
}

/// The echo over HTTP/JSON: what the transcoding costs on its own.
async fn json_echo_load(channels: &[Channel], concurrency: usize, duration: Duration) -> Load {
    json_load(
        channels,
        concurrency,
        duration,
        "/grpc.health.v1.Health/Check",
        |_, _| r#"{"service":"expansion.health.v1.AccountHealthService"}"#.to_owned(),
        SERVING_REPLY,
    )
    .await
}

async fn echo_load(channels: &[Channel], concurrency: usize, duration: Duration) -> Load {
    let clients: Vec<HealthClient<Channel>> =
        channels.iter().cloned().map(HealthClient::new).collect();
    closed_loop(concurrency, duration, move |task, _| {
        let mut client = clients[task % clients.len()].clone();
        async move {
            client
                .check(HealthCheckRequest {
                    service: "expansion.health.v1.AccountHealthService".into(),
                })
                .await
                .is_ok()
        }
    })
    .await
}

/// Runs h2load (nghttp2-client) against `GetAccountHealth` with a
/// length-prefixed protobuf body; returns its req/s, or `None` if h2load is
/// not installed.
fn h2load(addr: &str, account: &str, concurrency: usize, requests: usize) -> Option<f64> {
    use prost::Message;
    let which = std::process::Command::new("h2load")
        .arg("--version")
        .output()
        .ok()?;
    if !which.status.success() {
        return None;
    }
    let body = pb::GetAccountHealthRequest {
        account_id: account.into(),
    }
    .encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(body.len()).ok()?.to_be_bytes());
    framed.extend_from_slice(&body);
    let file = tempfile::NamedTempFile::new().ok()?;
    std::fs::write(file.path(), &framed).ok()?;
    let clients = 4.min(concurrency).max(1);
    let out = std::process::Command::new("h2load")
        .args([
            "-n",
            &requests.to_string(),
            "-c",
            &clients.to_string(),
            "-m",
            &(concurrency / clients).max(1).to_string(),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            "-d",
        ])
        .arg(file.path())
        .arg(format!(
            "http://{addr}/expansion.health.v1.AccountHealthService/GetAccountHealth"
        ))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "finished in 5.01s, 12345.67 req/s, 1.23MB/s"
    let line = text.lines().find(|l| l.starts_with("finished in"))?;
    let succeeded = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .map(str::to_owned)
        .unwrap_or_default();
    println!("h2load: {line}\nh2load: {succeeded}");
    line.split(", ")
        .nth(1)?
        .strip_suffix(" req/s")?
        .parse()
        .ok()
}

pub async fn read(args: ReadBenchArgs) -> anyhow::Result<()> {
    let mut p99_by_size: Vec<(usize, Duration)> = Vec::new();
    let mut uncached_by_size: Vec<(usize, Duration)> = Vec::new();
    for &size in &args.accounts {
        let (p99, uncached) = read_at_size(&args, size).await?;
        p99_by_size.push((size, p99));
        uncached_by_size.extend(uncached.map(|p99| (size, p99)));
    }
    print_growth("", &p99_by_size);
    print_growth(" without the read cache", &uncached_by_size);
    Ok(())
}

/// One portfolio size: seeds it, runs every contender and reports them; the p99 of
/// `GetAccountHealth`, and without the read cache (SQLite).
async fn read_at_size(
    args: &ReadBenchArgs,
    size: usize,
) -> anyhow::Result<(Duration, Option<Duration>)> {
    let dbs = databases(args.postgres_admin_url.as_deref(), &["read"]).await?;
    println!(
        "\nGetAccountHealth on {} with {size} scored accounts, concurrency {}, {} s per contender",
        dbs.backend(),
        args.concurrency,
        args.seconds
    );
    let (seeding, _) = seed_scored_portfolio(&dbs, size).await?;
    drop(seeding);
    let uncached = if dbs.is_postgres() {
        None
    } else {
        Some(uncached_reads(&dbs.urls[0], size, args).await?)
    };
    let (server, addr) = start_server(&dbs.urls[0], &HEALTH_WITH_METRICS)?;
    let channels = channels(&addr, args.connections).await?;
    let get = run_contenders(&channels, size, args).await;
    print_statements_per_read(&server, &channels, size, args.concurrency).await;
    if dbs.is_postgres() {
        let alone = statement_alone(&dbs.urls[0], size, args).await?;
        alone.print("its statement alone (same pool size, this process)");
        println!(
            "GetAccountHealth / its statement alone req/s: {:.0} vs {:.0} ({:.2})",
            get.rate(),
            alone.rate(),
            get.rate() / alone.rate()
        );
    }
    if args.h2load
        && let Some(rate) = h2load(
            &addr,
            &generated_id(1, size / 2 + 1),
            args.concurrency,
            (get.rate() * args.seconds as f64) as usize,
        )
    {
        println!(
            "h2load req/s beside the built-in client's: {rate:.0} vs {:.0} ({:.2})",
            get.rate(),
            rate / get.rate()
        );
    }
    if let Some(mib) = server.peak_rss_mib() {
        println!("server peak RSS: {mib:.1} MiB");
    }
    drop(server);
    drop_databases(dbs).await?;
    Ok((get.p99(), uncached))
}

/// The database answering `GetAccountHealth`'s one statement with nothing
/// around it: the same accounts, concurrency and pool size, sent from this
/// process — the ceiling a clean read on PostgreSQL can reach.
async fn statement_alone(url: &str, size: usize, args: &ReadBenchArgs) -> anyhow::Result<Load> {
    let db = storage::connect(url).await?;
    let backend = db.get_database_backend();
    let run = |duration| {
        let db = db.clone();
        closed_loop(args.concurrency, duration, move |task, i| {
            let db = db.clone();
            let n = (task * 1_000_003 + i * 7919) % size + 1;
            async move {
                let read = account_health::store::read_statement(
                    backend,
                    &generated_id(1, n),
                    chrono::Utc::now(),
                );
                db.query_all_raw(read)
                    .await
                    .is_ok_and(|rows| !rows.is_empty())
            }
        })
    };
    run(Duration::from_secs(1)).await;
    let load = run(Duration::from_secs(args.seconds)).await;
    db.close().await.ok();
    Ok(load)
}

/// The health server of the read benchmark, counting its statements.
const HEALTH_WITH_METRICS: [&str; 4] = ["--service", "health", "--metrics-listen", "127.0.0.1:0"];

/// Prints the statements the server sent per `GetAccountHealth`: its
/// counter's increase over two seconds of reads, less what two idle seconds
/// send (the dispatchers' and the worker's polling).
async fn print_statements_per_read(
    server: &ServerProcess,
    channels: &[Channel],
    size: usize,
    concurrency: usize,
) {
    let window = Duration::from_secs(2);
    let count = || server.statements("health");
    let Some(start) = count() else {
        println!("statements per read: unknown (no /metrics or no curl)");
        return;
    };
    tokio::time::sleep(window).await;
    let Some(idle_end) = count() else { return };
    let load = get_health_load(channels, size, concurrency, window).await;
    let Some(end) = count() else { return };
    let idle = (idle_end - start) * load.elapsed.as_secs_f64() / window.as_secs_f64();
    let per_read = (end - idle_end - idle) / load.calls.max(1) as f64;
    println!(
        "statements per read: {per_read:.2} ({} reads; {:.0} statements in 2 idle seconds)",
        load.calls,
        idle_end - start
    );
}

/// On SQLite, where answers are kept in memory between writes: the same
/// reads with nothing kept (`--health-read-cache 0`), beside the echo, so
/// the database's own cost per read stays in view.
async fn uncached_reads(url: &str, size: usize, args: &ReadBenchArgs) -> anyhow::Result<Duration> {
    let mut flags = HEALTH_WITH_METRICS.to_vec();
    flags.extend(["--health-read-cache", "0"]);
    let (server, addr) = start_server(url, &flags)?;
    let channels = channels(&addr, args.connections).await?;
    let duration = Duration::from_secs(args.seconds);
    echo_load(&channels, args.concurrency, Duration::from_secs(1)).await;
    get_health_load(&channels, size, args.concurrency, Duration::from_secs(1)).await;
    let echo = echo_load(&channels, args.concurrency, duration).await;
    echo.print("echo (grpc.health.v1 Check, same stack; server without read cache)");
    let get = get_health_load(&channels, size, args.concurrency, duration).await;
    get.print("GetAccountHealth without the read cache");
    println!(
        "throughput ratio uncached GetAccountHealth / echo: {:.2}; p99 {:.2} ms",
        get.rate() / echo.rate(),
        ms(get.p99())
    );
    print_statements_per_read(&server, &channels, size, args.concurrency).await;
    drop(server);
    Ok(get.p99())
}

/// `size` accounts, each reading like the scored template, behind a health server;
/// the server and its address.
async fn seed_scored_portfolio(
    dbs: &Databases,
    size: usize,
) -> anyhow::Result<(ServerProcess, String)> {
    let sql = Sql {
        postgres: dbs.is_postgres(),
    };
    let db = storage::connect(&dbs.urls[0]).await?;
    migrations::health::Migrator::up(&db, None).await?;
    seed_accounts_sql(&db, &sql, size, "2024-01-01").await?;
    let template = generated_id(1, 1);
    let (server, addr) = start_server(&dbs.urls[0], &["--service", "health"])?;
    score_template(&addr, &template).await?;
    copy_scores(&db, &template).await?;
    db.close().await.ok();
    Ok((server, addr))
}

/// Reads each of the `size` accounts once, as a day of dashboards does, so
/// what follows measures the steady state (on SQLite, a read cache holding
/// every account); prints how long the pass took.
async fn read_every_account(channels: &[Channel], size: usize, concurrency: usize) {
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|task| {
            let mut client =
                AccountHealthServiceClient::new(channels[task % channels.len()].clone());
            tokio::spawn(async move {
                let mut failed = 0usize;
                for n in (task + 1..=size).step_by(concurrency.max(1)) {
                    let request = pb::GetAccountHealthRequest {
                        account_id: generated_id(1, n),
                    };
                    failed += usize::from(client.get_account_health(request).await.is_err());
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        failed += task.await.unwrap_or(0);
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "first read of every account: {size} reads in {took:.1} s ({:.0} req/s, {failed} errors)",
        size as f64 / took
    );
}

/// Warms every path (every account read once), then runs the echo, `GetAccountHealth` and both over HTTP/JSON
/// for `args.seconds` each, printing each beside its goal; the `GetAccountHealth` load.
async fn run_contenders(channels: &[Channel], size: usize, args: &ReadBenchArgs) -> Load {
    let duration = Duration::from_secs(args.seconds);
    // Warm both paths (connections, caches, the query planner).
    echo_load(channels, args.concurrency, Duration::from_secs(1)).await;
    read_every_account(channels, size, args.concurrency).await;
    get_health_load(channels, size, args.concurrency, Duration::from_secs(1)).await;
    json_health_load(channels, size, args.concurrency, Duration::from_secs(1)).await;

    let echo = echo_load(channels, args.concurrency, duration).await;
    echo.print("echo (grpc.health.v1 Check, same stack)");
    let get = get_health_load(channels, size, args.concurrency, duration).await;
    get.print("GetAccountHealth");
    println!(
        "throughput ratio GetAccountHealth / echo: {:.2} (goal >= 0.5); p99 {:.2} ms (goal <= 5 ms)",
        get.rate() / echo.rate(),
        ms(get.p99())
    );
    let json_echo = json_echo_load(channels, args.concurrency, duration).await;
    json_echo.print("echo over HTTP/JSON (Connect unary, same connections)");
    println!(
        "HTTP/JSON / gRPC echo req/s: {:.0} vs {:.0} ({:.2})",
        json_echo.rate(),
        echo.rate(),
        json_echo.rate() / echo.rate()
    );
    let json = json_health_load(channels, size, args.concurrency, duration).await;
    json.print("GetAccountHealth over HTTP/JSON (Connect unary, same connections)");
    println!(
        "HTTP/JSON / gRPC GetAccountHealth req/s: {:.0} vs {:.0} ({:.2}); p99 {:.2} ms vs {:.2} ms",
        json.rate(),
        get.rate(),
        json.rate() / get.rate(),
        ms(json.p99()),
        ms(get.p99())
    );
    get
}

/// How p99 grew from the smallest portfolio to the largest.
fn print_growth(what: &str, p99_by_size: &[(usize, Duration)]) {
    if let (Some((small, p_small)), Some((large, p_large))) =
        (p99_by_size.first(), p99_by_size.last())
        && small != large
    {
        println!(
            "\ngrowth{what}: p99 at {large} accounts / p99 at {small}: {:.2} (goal <= 1.5)",
            p_large.as_secs_f64() / p_small.as_secs_f64()
        );
    }
}
