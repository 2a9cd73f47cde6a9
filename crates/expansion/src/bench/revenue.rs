//! `expansion bench revenue`: `GetRevenueMetrics` for one month over a large
//! book of subscriptions, beside a hand-written SQL aggregate of the same
//! figures on the same database (the ceiling: the database does the sums
//! and nothing crosses the wire but five numbers). The two must agree on
//! the figures both compute, or the run fails.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use contracts::pb::health::v1 as pb;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use migrations::MigratorTrait;
use sea_orm::{ConnectionTrait, Statement};

use super::{Sql, databases, drop_databases, ms, percentile, seed_accounts_sql, start_server};
use crate::cli::RevenueBenchArgs;

/// Subscriptions spread over 1,000 days from 2024-01-01 (every 10th cancelled
/// 30–430 days after its start), one MRR row each, over `accounts` accounts
/// registered on 2023-06-01, in one statement each.
async fn seed_book(
    db: &sea_orm::DatabaseConnection,
    sql: &Sql,
    accounts: usize,
    subscriptions: usize,
) -> anyhow::Result<()> {
    seed_accounts_sql(db, sql, accounts, "2023-06-01").await?;
    // Each account's subscriptions start on different days (the account's
    // share of `i` shifts the day), so first contracts, cross-sells and
    // cancellations all occur in any month.
    let offset = format!("(((i * 7919) + (i / {accounts}) * 131) % 1000)");
    let offset = offset.as_str();
    let start = sql.date_plus("2024-01-01", offset);
    let cancel = sql.date_plus("2024-01-01", &format!("{offset} + 30 + (i % 397)"));
    let columns = format!(
        "{id}, {account}, {product}, 'STARTER', 'USD', {start}, NULL, 1, 0, \
         CASE WHEN i % 10 = 0 THEN 'CANCELLED' ELSE 'ACTIVE' END, \
         CASE WHEN i % 10 = 0 THEN {cancel} ELSE NULL END, \
         '2024-01-01T00:00:00Z', 'bench', '2024-01-01T00:00:00Z', 'bench'",
        id = sql.id(3, "i"),
        account = sql.id(1, &format!("(i % {accounts}) + 1")),
        product = sql.id(2, "(i % 5) + 1"),
    );
    db.execute_unprepared(&format!(
        "INSERT INTO subscriptions (id, account_id, product_id, tier, currency, start_date, end_date, quantity, quota_limit, status, cancel_date, created_at, created_by, updated_at, updated_by) {}",
        sql.series(subscriptions, &columns)
    ))
    .await?;
    let columns = format!(
        "{id}, {subscription}, {start}, ((i % 50) + 1) * 10000, '2024-01-01T00:00:00Z', 'bench'",
        id = sql.id(4, "i"),
        subscription = sql.id(3, "i"),
    );
    db.execute_unprepared(&format!(
        "INSERT INTO subscription_amendments (id, subscription_id, effective_date, mrr_minor, created_at, created_by) {}",
        sql.series(subscriptions, &columns)
    ))
    .await?;
    // A running deployment has done today's sweep; this one must not start
    // recomputing every account under the measurement.
    let today = chrono::Utc::now().date_naive();
    db.execute_unprepared(&format!(
        "INSERT INTO health_sweeps (day, swept_at) VALUES ('{today}', '2024-01-01T00:00:00Z')"
    ))
    .await?;
    if sql.postgres {
        db.execute_unprepared("ANALYZE").await?;
    } else {
        // A deployment's book was written over months and checkpointed long
        // ago; this one was written a moment ago, all of it still in the
        // write-ahead log, which every read would otherwise search first.
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await?;
    }
    Ok(())
}

/// The figures both sides compute, in minor units:
/// cross-sell, new, churned, starting and ending MRR.
type Figures = [i64; 5];

/// The month's figures by hand-written SQL, for this dataset's shape (one
/// MRR row per subscription, effective on its start date; every account
/// registered before its first subscription), by SPEC §2's rules: a
/// subscription is in force on day d when it started on or before d and is not
/// cancelled on or before d (one cancelled on its start date never was, and
/// is not the account's first); opening MRR is what is in force on the day
/// before the period, closing MRR what is in force on its last day; a
/// subscription starting in the period is cross-sell by the seed's rule,
/// otherwise new.
fn aggregate_sql(start: &str, end: &str, last_day: &str) -> String {
    format!(
        "WITH s AS (
            SELECT sub.start_date, sub.cancel_date, am.mrr_minor AS m, acc.customer_since AS reg,
                   MIN(sub.start_date) OVER (PARTITION BY sub.account_id) AS first_start
            FROM subscriptions sub
            JOIN subscription_amendments am ON am.subscription_id = sub.id
            JOIN accounts acc ON acc.id = sub.account_id
            WHERE sub.start_date < '{end}'
              AND (sub.cancel_date IS NULL OR sub.cancel_date > sub.start_date)
        )
        SELECT
          CAST(COALESCE(SUM(CASE WHEN start_date >= '{start}' AND reg < '{start}' AND start_date <> first_start THEN m ELSE 0 END), 0) AS BIGINT),
          CAST(COALESCE(SUM(CASE WHEN start_date >= '{start}' AND NOT (reg < '{start}' AND start_date <> first_start) THEN m ELSE 0 END), 0) AS BIGINT),
          CAST(COALESCE(SUM(CASE WHEN cancel_date >= '{start}' AND cancel_date < '{end}' THEN m ELSE 0 END), 0) AS BIGINT),
          CAST(COALESCE(SUM(CASE WHEN start_date < '{start}' AND (cancel_date IS NULL OR cancel_date >= '{start}') THEN m ELSE 0 END), 0) AS BIGINT),
          CAST(COALESCE(SUM(CASE WHEN start_date <= '{last_day}' AND (cancel_date IS NULL OR cancel_date > '{last_day}') THEN m ELSE 0 END), 0) AS BIGINT)
        FROM s"
    )
}

async fn run_aggregate(db: &sea_orm::DatabaseConnection, sql: &str) -> anyhow::Result<Figures> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .context("no row")?;
    let mut out = [0i64; 5];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = row.try_get_by_index(i)?;
    }
    Ok(out)
}

fn minor(money: Option<&contracts::pb::common::v1::Money>) -> anyhow::Result<i64> {
    let amount = money.map(|m| m.amount.as_str()).unwrap_or("0");
    let value: rust_decimal::Decimal = amount.parse().context("amount")?;
    let scaled = value * rust_decimal::Decimal::ONE_HUNDRED;
    i64::try_from(scaled.trunc()).context("amount out of range")
}

fn service_figures(reply: &pb::GetRevenueMetricsResponse) -> anyhow::Result<Figures> {
    let usd = reply
        .currencies
        .iter()
        .find(|c| c.currency_code == "USD")
        .context("no USD figures")?;
    Ok([
        minor(usd.cross_sell_mrr.as_ref())?,
        minor(usd.new_mrr.as_ref())?,
        minor(usd.churned_mrr.as_ref())?,
        minor(usd.opening_mrr.as_ref())?,
        minor(usd.closing_mrr.as_ref())?,
    ])
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    percentile(&runs, 0.5)
}

pub async fn revenue(args: RevenueBenchArgs) -> anyhow::Result<()> {
    let dbs = databases(args.postgres_admin_url.as_deref(), &["revenue"]).await?;
    let sql = Sql {
        postgres: dbs.is_postgres(),
    };
    println!(
        "GetRevenueMetrics for {} on {} over {} subscriptions of {} accounts, {} runs each",
        args.month,
        dbs.backend(),
        args.subscriptions,
        args.accounts,
        args.runs
    );
    let db = storage::connect(&dbs.urls[0]).await?;
    migrations::health::Migrator::up(&db, None).await?;
    let seeding = Instant::now();
    seed_book(&db, &sql, args.accounts, args.subscriptions).await?;
    println!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());
    let query = month_aggregate_sql(&args.month)?;

    let (server, addr) = start_server(&dbs.urls[0], &["--service", "health"])?;
    let mut client = AccountHealthServiceClient::connect(format!("http://{addr}"))
        .await?
        .max_decoding_message_size(64 << 20);
    let request = || pb::GetRevenueMetricsRequest {
        month: args.month.clone(),
        ..Default::default()
    };
    // One warm-up each (page cache, query plans), then alternate the two so
    // the machine's load hits both alike.
    check_figures_agree(&db, &query, &mut client, request()).await?;
    let (mut service_runs, mut baseline_runs) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let t = Instant::now();
        run_aggregate(&db, &query).await?;
        baseline_runs.push(t.elapsed());
        let t = Instant::now();
        client.get_revenue_metrics(request()).await?;
        service_runs.push(t.elapsed());
    }
    print_medians(&service_runs, &baseline_runs);
    if let Some(mib) = server.peak_rss_mib() {
        println!("server peak RSS: {mib:.1} MiB");
    }
    drop(server);
    db.close().await.ok();
    drop_databases(dbs).await
}

/// The hand-written aggregate of `month` (`YYYY-MM`, as `--month` takes it).
fn month_aggregate_sql(month: &str) -> anyhow::Result<String> {
    let period = domain::Month::parse(month)
        .map_err(|e| anyhow::anyhow!("--month: {e}"))?
        .date_range();
    let last_day = period.last_day();
    Ok(aggregate_sql(
        &period.start().to_string(),
        &period.end().to_string(),
        &last_day.to_string(),
    ))
}

/// Runs the aggregate and the service once each and fails unless their figures agree.
async fn check_figures_agree(
    db: &sea_orm::DatabaseConnection,
    query: &str,
    client: &mut AccountHealthServiceClient<tonic::transport::Channel>,
    request: pb::GetRevenueMetricsRequest,
) -> anyhow::Result<()> {
    let expected = run_aggregate(db, query).await?;
    let first = client.get_revenue_metrics(request).await?.into_inner();
    let got = service_figures(&first)?;
    if got != expected {
        bail!(
            "the service and the aggregate disagree (cross-sell, new, churned, starting, ending): {got:?} vs {expected:?}"
        );
    }
    println!(
        "figures agree: cross-sell {}, new {}, churned {}, starting {}, ending {} (minor units)",
        got[0], got[1], got[2], got[3], got[4]
    );
    Ok(())
}

/// The two medians beside each other with each one's spread, and their
/// ratio against its goal.
fn print_medians(service: &[Duration], baseline: &[Duration]) {
    let (service_median, baseline_median) = (median(service.to_vec()), median(baseline.to_vec()));
    let spread = |median: Duration, runs: &[Duration]| {
        let (min, max) = (runs.iter().min(), runs.iter().max());
        format!(
            "{:>9.1} ms  (runs {:.0}–{:.0} ms)",
            ms(median),
            min.map_or(0.0, |d| ms(*d)),
            max.map_or(0.0, |d| ms(*d))
        )
    };
    println!(
        "hand-written SQL aggregate (median)         {}",
        spread(baseline_median, baseline)
    );
    println!(
        "GetRevenueMetrics over gRPC (median)        {}",
        spread(service_median, service)
    );
    println!(
        "ratio service / aggregate: {:.2} (goal <= 1.5)",
        service_median.as_secs_f64() / baseline_median.as_secs_f64()
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_aggregate_reads_the_period() {
        let q = aggregate_sql("2025-06-01", "2025-07-01", "2025-06-30");
        assert!(q.contains("sub.start_date < '2025-07-01'"));
        assert!(q.contains("cancel_date > '2025-06-30'"));
    }

    #[test]
    fn the_aggregate_opens_with_the_close_of_the_day_before() {
        let q = aggregate_sql("2025-06-01", "2025-07-01", "2025-06-30");
        // A subscription starting on the 1st is new in the month, not opening
        // MRR; one cancelled on the 1st was in force the day before.
        assert!(q.contains(
            "start_date < '2025-06-01' AND (cancel_date IS NULL OR cancel_date >= '2025-06-01')"
        ));
        assert!(!q.contains("start_date <= '2025-06-01'"));
    }

    #[test]
    fn the_month_gives_the_aggregate_its_days() {
        let q = month_aggregate_sql("2024-02").unwrap();
        assert!(q.contains("start_date >= '2024-02-01'"));
        assert!(q.contains("sub.start_date < '2024-03-01'"));
        assert!(q.contains("cancel_date > '2024-02-29'"));
        assert!(month_aggregate_sql("2024-13").is_err());
    }
}
