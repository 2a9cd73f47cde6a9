//! The web console in a real browser: headless Chromium (Debian's
//! `chromium`) driven over WebDriver by `chromedriver`, against
//! `serve --demo` with API keys. It signs in, opens every page, checks the
//! figures shown against the API's answers for the same data, checks that a
//! rep's key cannot open another person's statement, and saves screenshots
//! (under the target dir's `tmp/console/`). Each page's load time, as the
//! page itself measured it, is printed for BENCHMARKS.md; nothing is timed
//! against a limit.
//!
//! Under CI=true a missing Chromium or chromedriver fails; elsewhere the
//! test says loudly that it skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contracts::client::ClientOptions;
use contracts::pb::common::v1::Money;
use contracts::pb::credit::v1 as credit;
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use contracts::pb::health::v1 as health;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use contracts::pb::pipeline::v1 as pipeline;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_client::OpportunityPipelineServiceClient;
use fantoccini::{Client, ClientBuilder, Locator};
use rust_decimal::Decimal;

use crate::harness::{Backend, Server, create_key, in_ci};
use crate::on_both_databases;

on_both_databases!(the_console_shows_what_the_api_says);

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];

/// The demo's won deals (the outbox credits each).
const WON_DEALS: usize = 5;

/// The browser and its driver, or `None` (having said so loudly) outside CI.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = CHROMIUM.iter().map(PathBuf::from).find(|p| p.exists());
    let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ if in_ci() => panic!(
            "the console's browser test needs Chromium and chromedriver under CI=true \
             (apt-get install chromium chromium-driver)"
        ),
        _ => {
            eprintln!(
                "\n!!!!! SKIPPING the console's browser test: no chromium/chromedriver\n\
                 !!!!! apt-get install chromium chromium-driver; under CI=true this fails.\n"
            );
            None
        }
    }
}

/// `chromedriver` on a free port, ended when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(path: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn open_browser(driver: &Driver, chromium: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium.display().to_string(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--hide-scrollbars"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session with Chromium")
}

/// The API as a key sees it.
struct Api {
    health: AccountHealthServiceClient<contracts::client::AuthChannel>,
    pipeline: OpportunityPipelineServiceClient<contracts::client::AuthChannel>,
    credit: CompensationCreditServiceClient<contracts::client::AuthChannel>,
}

impl Api {
    fn new(server: &Server, key: &str) -> Api {
        let options = ClientOptions::default().with_api_key(Some(key.to_owned()));
        let channel = contracts::client::lazy(&server.url(), &options).unwrap();
        Api {
            health: AccountHealthServiceClient::new(channel.clone()),
            pipeline: OpportunityPipelineServiceClient::new(channel.clone()),
            credit: CompensationCreditServiceClient::new(channel),
        }
    }
}

/// Money as the console shows it: "USD 1,234.50".
fn shown(money: Option<&Money>) -> String {
    let money = money.expect("an amount");
    let (whole, fraction) = money
        .amount
        .split_once('.')
        .map_or((money.amount.as_str(), None), |(w, f)| (w, Some(f)));
    let (sign, digits) = whole
        .strip_prefix('-')
        .map_or(("", whole), |rest| ("-", rest));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(f) => format!("{} {sign}{grouped}.{f}", money.currency_code),
        None => format!("{} {sign}{grouped}", money.currency_code),
    }
}

/// A ratio as the console shows it: "0.2875" → "28.75%".
fn shown_ratio(ratio: &str) -> String {
    let value: Decimal = ratio.parse().unwrap();
    format!("{:.2}%", value * Decimal::from(100))
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// The first of the month `n` months before this one.
fn month_start(n: u32) -> chrono::NaiveDate {
    let mut month = domain::Month::containing(today()).unwrap();
    for _ in 0..n {
        month = month.previous().unwrap();
    }
    chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").unwrap()
}

/// This quarter, [first day, first day of the next): the Credits page's default.
fn this_quarter() -> (String, String) {
    use chrono::Datelike;
    let t = today();
    let first = (t.month0() / 3) * 3 + 1;
    let start = chrono::NaiveDate::from_ymd_opt(t.year(), first, 1).unwrap();
    let end = if first + 3 > 12 {
        chrono::NaiveDate::from_ymd_opt(t.year() + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(t.year(), first + 3, 1)
    }
    .unwrap();
    (start.to_string(), end.to_string())
}

/// Waits until the demo's last steps (credits, upsell amendments, both
/// through the outbox) are visible through the API.
async fn wait_for_demo(api: &mut Api) {
    let (start, end) = this_quarter();
    for _ in 0..600 {
        let won = api
            .pipeline
            .list_opportunities(pipeline::ListOpportunitiesRequest {
                stages: vec![pipeline::Stage::ClosedWon as i32],
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().opportunities.len())
            .unwrap_or(0);
        let credited = api
            .credit
            .get_statement(credit::GetStatementRequest {
                start_date: start.clone(),
                end_date: end.clone(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().entries.len())
            .unwrap_or(0);
        let upsold = api
            .health
            .get_revenue_metrics(health::GetRevenueMetricsRequest::default())
            .await
            .map(|r| {
                r.into_inner()
                    .currencies
                    .iter()
                    .filter_map(|c| c.upsell_mrr.as_ref())
                    .any(|m| !m.amount.trim_start_matches(['0', '.']).is_empty())
            })
            .unwrap_or(false);
        // Every won deal has credited its owner (and originator): at least
        // one entry per deal.
        if won == WON_DEALS && credited >= WON_DEALS && upsold {
            // The outbox may still be finishing the last deal's entries.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the demo data did not finish loading");
}

/// The page at `route`, loaded: waits for the console to say so and returns
/// (the page's own load time in ms, the time the driver saw).
async fn open(browser: &Client, base: &str, route: &str) -> (u64, Duration) {
    // Already there: step off first, or the address would not change.
    if browser.current_url().await.unwrap().fragment() == route.strip_prefix('#') {
        browser.goto(&format!("{base}#/none")).await.unwrap();
        browser
            .wait()
            .for_element(Locator::Css("main[data-page=none]"))
            .await
            .unwrap();
    }
    let started = Instant::now();
    browser
        .goto(&format!("{base}{route}"))
        .await
        .unwrap_or_else(|e| panic!("open {route}: {e}"));
    let selector = format!("main[data-route=\"{route}\"]");
    let main = browser
        .wait()
        .at_most(Duration::from_secs(30))
        .every(Duration::from_millis(5))
        .for_element(Locator::Css(&selector))
        .await
        .unwrap_or_else(|e| panic!("{route} did not finish loading: {e}"));
    let seen = started.elapsed();
    let ms = main
        .attr("data-page-ms")
        .await
        .unwrap()
        .and_then(|v| v.parse().ok())
        .unwrap();
    (ms, seen)
}

async fn text(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .text()
        .await
        .unwrap()
        .trim()
        .to_owned()
}

/// Rows of the table `id` (a list the console found empty has none).
async fn rows(browser: &Client, id: &str) -> usize {
    browser
        .find_all(Locator::Css(&format!("table#{id} tbody tr")))
        .await
        .unwrap()
        .len()
}

/// No section of the page shows a refusal.
async fn no_error(browser: &Client, route: &str) {
    let errors = browser.find_all(Locator::Css(".error")).await.unwrap();
    if let Some(first) = errors.first() {
        panic!("{route} shows an error: {}", first.text().await.unwrap());
    }
}

/// Nothing wider than the window: readable without sideways scrolling
/// (wide tables scroll inside their own box).
async fn fits_the_width(browser: &Client, what: &str) {
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap_or(0) <= 1,
        "{what}: the page is {overflow} px wider than the window"
    );
}

async fn screenshot(browser: &Client, dir: &Path, name: &str) {
    let png = browser.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn sign_in(browser: &Client, base: &str, key: &str) {
    browser.goto(&format!("{base}#/portfolio")).await.unwrap();
    browser
        .execute("sessionStorage.clear(); location.reload();", vec![])
        .await
        .unwrap();
    let input = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("form#signin input#api-key"))
        .await
        .expect("a sign-in form for a server with keys");
    input.send_keys(key).await.unwrap();
    browser
        .find(Locator::Css("form#signin button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("main[data-page=portfolio]"))
        .await
        .expect("signed in, the portfolio");
    // The key is in the tab's session, not in the address.
    let url = browser.current_url().await.unwrap();
    assert!(
        !url.as_str().contains(key),
        "the key is in the address: {url}"
    );
}

async fn the_console_shows_what_the_api_says(backend: Backend) {
    let Some((chromium, driver_path)) = browser() else {
        return;
    };
    let db = if backend.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("keys.json");
    let ops_key = create_key(&keys, "rita.revops", "revops");
    let rep_key = create_key(&keys, "alex.ae", "ae");
    let keys_arg = keys.display().to_string();
    let server = Server::start(&backend, &["--demo", "--keys-file", &keys_arg]);
    let mut api = Api::new(&server, &ops_key);
    wait_for_demo(&mut api).await;

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&shots).unwrap();
    let driver = Driver::start(&driver_path);
    let browser = open_browser(&driver, &chromium).await;
    let base = format!("{}/console/", server.url());
    let mut times: Vec<(String, u64, Duration)> = Vec::new();

    sign_in(&browser, &base, &ops_key).await;

    // Portfolio: the band counts and the accounts are the API's.
    let route = "#/portfolio";
    let (ms, seen) = open(&browser, &base, route).await;
    times.push((route.into(), ms, seen));
    no_error(&browser, route).await;
    let scores = api
        .health
        .list_account_health(health::ListAccountHealthRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .scores
        .into_iter()
        .filter(|s| s.product_id.is_empty())
        .collect::<Vec<_>>();
    let count = |band: contracts::pb::common::v1::HealthBand| {
        scores.iter().filter(|s| s.band == band as i32).count()
    };
    use contracts::pb::common::v1::HealthBand;
    let accounts = api
        .health
        .list_accounts(health::ListAccountsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .accounts;
    let unscored = accounts.len() - scores.iter().filter(|s| s.has_score).count();
    assert_eq!(
        text(&browser, "#band-counts").await,
        format!(
            "Red: {} · Yellow: {} · Green: {} · No score: {unscored}",
            count(HealthBand::Red),
            count(HealthBand::Yellow),
            count(HealthBand::Green)
        )
    );
    assert_eq!(rows(&browser, "accounts").await, scores.len());
    screenshot(&browser, &shots, &format!("{db}-portfolio")).await;
    // Filtered by band, through the address.
    let route = "#/portfolio?band=HEALTH_BAND_GREEN";
    open(&browser, &base, route).await;
    assert_eq!(
        rows(&browser, "accounts").await,
        count(HealthBand::Green),
        "{route}"
    );

    // Ready to expand: every READY and SUPPRESSED trigger, with names.
    let route = "#/ready";
    let (ms, seen) = open(&browser, &base, route).await;
    times.push((route.into(), ms, seen));
    no_error(&browser, route).await;
    let triggers = |status: health::TriggerStatus| {
        let mut health = api.health.clone();
        async move {
            health
                .list_triggers(health::ListTriggersRequest {
                    statuses: vec![status as i32],
                    page_size: 1000,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .triggers
        }
    };
    let ready = triggers(health::TriggerStatus::Ready).await;
    let suppressed = triggers(health::TriggerStatus::Suppressed).await;
    assert_eq!(rows(&browser, "ready").await, ready.len());
    assert_eq!(rows(&browser, "suppressed").await, suppressed.len());
    let first_link = text(&browser, "table#ready tbody tr td a").await;
    assert!(
        accounts.iter().any(|a| a.name == first_link),
        "the first ready trigger names its account: {first_link}"
    );
    screenshot(&browser, &shots, &format!("{db}-ready")).await;

    // One click from a trigger to its account.
    browser
        .find(Locator::Css("table#ready tbody tr td a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("main[data-page=account]"))
        .await
        .unwrap();
    assert_eq!(text(&browser, "main h1").await, first_link);

    // Account: Acme Corp's score, share of wallet and subscriptions.
    let acme = accounts.iter().find(|a| a.name == "Acme Corp").unwrap();
    let route = format!("#/account/{}", acme.account_id);
    let (ms, seen) = open(&browser, &base, &route).await;
    times.push(("#/account/<Acme Corp>".into(), ms, seen));
    no_error(&browser, &route).await;
    assert_eq!(text(&browser, "main h1").await, "Acme Corp");
    let health_now = api
        .health
        .get_account_health(health::GetAccountHealthRequest {
            account_id: acme.account_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .health
        .unwrap()
        .overall
        .unwrap();
    assert_eq!(text(&browser, "#health-score").await, health_now.score);
    let whitespace = api
        .pipeline
        .get_whitespace(pipeline::GetWhitespaceRequest {
            account_id: acme.account_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let usd = whitespace
        .summaries
        .iter()
        .find(|s| s.currency_code == "USD")
        .unwrap();
    assert_eq!(
        text(&browser, "#share-of-wallet-USD").await,
        shown_ratio(&usd.share_of_wallet)
    );
    assert_eq!(
        rows(&browser, "whitespace").await,
        whitespace.whitespace.len()
    );
    let subscriptions = api
        .health
        .list_subscriptions(health::ListSubscriptionsRequest {
            account_id: acme.account_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(rows(&browser, "subscriptions").await, subscriptions.len());
    screenshot(&browser, &shots, &format!("{db}-account")).await;

    // Pipeline: the weighted open pipeline, win rates, stalled, overdue.
    let route = "#/pipeline";
    let (ms, seen) = open(&browser, &base, route).await;
    times.push((route.into(), ms, seen));
    no_error(&browser, route).await;
    let forecast = api
        .pipeline
        .get_pipeline_forecast(pipeline::GetPipelineForecastRequest::default())
        .await
        .unwrap()
        .into_inner()
        .forecasts;
    for f in &forecast {
        let c = &f.currency_code;
        assert_eq!(
            text(&browser, &format!("#open-weighted-{c}")).await,
            shown(f.open_weighted_amount.as_ref())
        );
        assert_eq!(
            rows(&browser, &format!("win-rates-{c}")).await,
            f.win_rates.len()
        );
        let first_rate = f.win_rates.first().unwrap();
        let shown_rate = text(
            &browser,
            &format!("table#win-rates-{c} tbody tr:first-child td:nth-child(4)"),
        )
        .await;
        let expected = if first_rate.win_rate.is_empty() {
            "—".to_owned()
        } else {
            shown_ratio(&first_rate.win_rate)
        };
        assert_eq!(shown_rate, expected);
    }
    let stalled = api
        .pipeline
        .list_opportunities(pipeline::ListOpportunitiesRequest {
            stalled_only: true,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunities;
    assert_eq!(rows(&browser, "stalled").await, stalled.len());
    let overdue = api
        .pipeline
        .list_handoffs(pipeline::ListHandoffsRequest {
            overdue_only: true,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .handoffs;
    assert_eq!(rows(&browser, "overdue").await, overdue.len());
    browser.set_window_size(1280, 1700).await.unwrap();
    screenshot(&browser, &shots, &format!("{db}-pipeline")).await;
    browser.set_window_size(1280, 1000).await.unwrap();

    // Revenue: the last twelve months as one range, and each month's row.
    let route = "#/revenue";
    let (ms, seen) = open(&browser, &base, route).await;
    times.push((route.into(), ms, seen));
    no_error(&browser, route).await;
    let range = api
        .health
        .get_revenue_metrics(health::GetRevenueMetricsRequest {
            start_date: month_start(11).to_string(),
            end_date: (month_start(0) + chrono::Months::new(1)).to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for c in &range.currencies {
        let code = &c.currency_code;
        assert_eq!(
            text(&browser, &format!("#closing-{code}")).await,
            shown(c.closing_mrr.as_ref())
        );
        assert_eq!(
            text(&browser, &format!("#nrr-{code}")).await,
            shown_ratio(&c.nrr)
        );
        assert_eq!(
            text(&browser, &format!("#cross-sell-{code}")).await,
            shown(c.cross_sell_mrr.as_ref())
        );
        assert_eq!(rows(&browser, &format!("bridge-{code}")).await, 12);
    }
    let this_month = api
        .health
        .get_revenue_metrics(health::GetRevenueMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let usd = this_month
        .currencies
        .iter()
        .find(|c| c.currency_code == "USD")
        .unwrap();
    // The last row is this month: its upsell and closing cells.
    let last_row = "table#bridge-USD tbody tr:last-child";
    assert_eq!(
        text(&browser, &format!("{last_row} td:nth-child(5)")).await,
        shown(usd.upsell_mrr.as_ref())
    );
    assert_eq!(
        text(&browser, &format!("{last_row} td:nth-child(8)")).await,
        shown(usd.closing_mrr.as_ref())
    );
    browser.set_window_size(1280, 1500).await.unwrap();
    screenshot(&browser, &shots, &format!("{db}-revenue")).await;
    browser.set_window_size(1280, 1000).await.unwrap();

    // Credits: Carla's statement this quarter, and the team view.
    let (start, end) = this_quarter();
    let route = "#/credits?person=carla.csm";
    let (ms, seen) = open(&browser, &base, route).await;
    times.push((route.into(), ms, seen));
    no_error(&browser, route).await;
    let carla = api
        .credit
        .get_statement(credit::GetStatementRequest {
            participant_id: "carla.csm".into(),
            start_date: start.clone(),
            end_date: end.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let carla_usd = &carla.currencies[0];
    assert_eq!(
        text(&browser, "#person-closing-USD").await,
        shown(carla_usd.closing_balance.as_ref())
    );
    assert_eq!(
        text(&browser, "#person-held-USD").await,
        shown(carla_usd.held.as_ref())
    );
    assert_eq!(rows(&browser, "entries").await, carla.entries.len());
    let org = api
        .credit
        .get_statement(credit::GetStatementRequest {
            start_date: start.clone(),
            end_date: end.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for c in &org.currencies {
        assert_eq!(
            text(&browser, &format!("#org-closing-{}", c.currency_code)).await,
            shown(c.closing_balance.as_ref())
        );
    }
    browser.set_window_size(1280, 1700).await.unwrap();
    screenshot(&browser, &shots, &format!("{db}-credits")).await;

    // A phone's width: every page readable without sideways scrolling.
    browser.set_window_size(390, 844).await.unwrap();
    for route in [
        "#/portfolio",
        "#/ready",
        "#/pipeline",
        "#/revenue",
        "#/credits?person=alex.ae",
    ] {
        open(&browser, &base, route).await;
        fits_the_width(&browser, route).await;
    }
    screenshot(&browser, &shots, &format!("{db}-phone-credits")).await;
    browser.set_window_size(1280, 1000).await.unwrap();

    // A rep's key: its own statement, never another person's.
    sign_in(&browser, &base, &rep_key).await;
    let mut rep = Api::new(&server, &rep_key);
    let route = "#/credits?person=carla.csm";
    open(&browser, &base, route).await;
    let refusal = rep
        .credit
        .get_statement(credit::GetStatementRequest {
            participant_id: "carla.csm".into(),
            start_date: start.clone(),
            end_date: end.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refusal.code(), tonic::Code::PermissionDenied);
    let error = browser
        .find(Locator::Css("#statement .error"))
        .await
        .expect("the statement section shows the refusal");
    assert_eq!(
        error.attr("data-code").await.unwrap().as_deref(),
        Some("PERMISSION_DENIED")
    );
    let said = error.text().await.unwrap();
    assert!(
        said.contains(refusal.message()),
        "the page says what the API said: {said:?} vs {:?}",
        refusal.message()
    );
    assert!(
        browser
            .find_all(Locator::Css("#person-closing-USD"))
            .await
            .unwrap()
            .is_empty(),
        "no figure of another person's statement is shown"
    );
    screenshot(&browser, &shots, &format!("{db}-rep-denied")).await;
    let route = "#/credits?person=alex.ae";
    open(&browser, &base, route).await;
    let own = rep
        .credit
        .get_statement(credit::GetStatementRequest {
            participant_id: "alex.ae".into(),
            start_date: start,
            end_date: end,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        text(&browser, "#person-closing-USD").await,
        shown(own.currencies[0].closing_balance.as_ref())
    );

    browser.close().await.unwrap();
    eprintln!("console page times on the demo data ({db}, debug build unless --release):");
    eprintln!("| page | loaded, as the page measured it | seen by the driver |");
    for (route, ms, seen) in &times {
        eprintln!("| `{route}` | {ms} ms | {} ms |", seen.as_millis());
    }
    eprintln!("screenshots in {}", shots.display());
}

/// `--no-console`: nothing is served at `/console/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_console_serves_no_console() {
    use std::io::{Read, Write};
    let backend = Backend::sqlite();
    let get = |server: &Server| {
        let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
        write!(
            stream,
            "GET /console/ HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            server.addr
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let on = Server::start(&backend, &[]);
    let page = get(&on);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<title>Expansion console</title>"));
    drop(on);
    let off = Server::start(&backend, &["--no-console"]);
    let page = get(&off);
    assert!(!page.contains("Expansion console"), "{page}");
}
