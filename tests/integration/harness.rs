//! Starts the real `expansion` binary on a free port, on SQLite or on
//! PostgreSQL, and hands out tonic clients to it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_client::OpportunityPipelineServiceClient;
use sea_orm::ConnectionTrait;
use tonic::transport::Channel;

/// Where the PostgreSQL tests create their throw-away databases.
const DEFAULT_POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The storage a server under test runs on.
pub enum Backend {
    Sqlite {
        dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        admin_url: String,
        name: String,
    },
}

impl Backend {
    pub fn sqlite() -> Self {
        Backend::Sqlite {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A fresh PostgreSQL database, or `None` (with a loud message) when
    /// PostgreSQL can't be reached outside CI. Under CI=true it must be there.
    pub async fn postgres() -> Option<Self> {
        let admin_url = std::env::var("EXPANSION_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_ADMIN_URL.to_owned());
        let admin = match sea_orm::Database::connect(&admin_url).await {
            Ok(db) => db,
            Err(err) if !in_ci() => {
                eprintln!(
                    "\n!!!!! SKIPPING a PostgreSQL test: cannot reach {admin_url}: {err}\n\
                     !!!!! start PostgreSQL or set EXPANSION_TEST_POSTGRES_URL; under CI=true this fails.\n"
                );
                return None;
            }
            Err(err) => panic!("PostgreSQL is required under CI=true: {admin_url}: {err}"),
        };
        let name = format!("expansion_test_{}", uuid::Uuid::now_v7().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("EXPANSION_TEST_POSTGRES_URL must end in /DATABASE"),
        };
        Some(Backend::Postgres {
            url,
            admin_url,
            name,
        })
    }

    fn args(&self) -> Vec<String> {
        match self {
            Backend::Sqlite { dir } => vec!["--data-dir".into(), dir.path().display().to_string()],
            Backend::Postgres { url, .. } => vec!["--database-url".into(), url.clone()],
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres { .. })
    }

    /// The read-write URL of the database `service` keeps its tables in,
    /// for tests that drive a store or an outbox without a server.
    pub fn database_url(&self, service: &str) -> String {
        match self {
            Backend::Sqlite { dir } => storage::sqlite_url(dir.path(), service),
            Backend::Postgres { url, .. } => url.clone(),
        }
    }

    /// A connection to the database `service` (`health`, `pipeline`,
    /// `credit`) keeps its tables in, for tests that count rows the API
    /// does not list.
    pub async fn connect(&self, service: &str) -> sea_orm::DatabaseConnection {
        let url = match self {
            Backend::Sqlite { dir } => {
                format!(
                    "sqlite://{}?mode=ro",
                    dir.path().join(format!("{service}.db")).display()
                )
            }
            Backend::Postgres { url, .. } => url.clone(),
        };
        sea_orm::Database::connect(&url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::Postgres {
            admin_url, name, ..
        } = self
        {
            // Best effort; a leftover database is harmless.
            let _ = Command::new("psql")
                .args([
                    admin_url.as_str(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// An amount in US dollars, as the API takes money.
pub fn usd(amount: &str) -> Option<contracts::pb::common::v1::Money> {
    Some(contracts::pb::common::v1::Money {
        currency_code: "USD".into(),
        amount: amount.into(),
    })
}

/// `expansion keys create`, as an operator runs it; returns the token (the
/// only thing it prints on stdout).
pub fn create_key(keys: &std::path::Path, name: &str, role: &str) -> String {
    let out = Command::new(binary())
        .args([
            "keys",
            "create",
            "--name",
            name,
            "--role",
            role,
            "--keys-file",
        ])
        .arg(keys)
        .output()
        .expect("run expansion keys create");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("the token is text")
        .trim()
        .to_owned()
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_expansion"))
}

/// A running `expansion serve`.
pub struct Server {
    child: Child,
    pub addr: String,
    /// The `/metrics` address, when started with `--metrics-listen`.
    pub metrics_addr: Option<String>,
    /// What the server printed on stdout before it listened (e.g. the demo's keys).
    pub banner: Vec<String>,
}

impl Server {
    /// Starts `expansion serve` with `extra` flags on `backend`.
    pub fn start(backend: &Backend, extra: &[&str]) -> Server {
        Self::start_on(backend, "127.0.0.1:0", extra)
    }

    /// Starts `expansion serve` listening on `listen`.
    pub fn start_on(backend: &Backend, listen: &str, extra: &[&str]) -> Server {
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .args(["--listen", listen])
            .args(backend.args())
            .args(extra)
            .env("EXPANSION_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn expansion serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut metrics_addr = None;
        let mut banner = Vec::new();
        let addr = loop {
            assert!(Instant::now() < deadline, "server did not start in time");
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        break addr.trim().to_owned();
                    }
                    if let Some(addr) = line.strip_prefix("metrics on ") {
                        metrics_addr = Some(addr.trim().to_owned());
                    }
                    banner.push(line);
                }
                _ => panic!("server exited before listening: {:?}", child.wait()),
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr,
            metrics_addr,
            banner,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn health(&self) -> AccountHealthServiceClient<Channel> {
        AccountHealthServiceClient::new(self.channel().await)
    }

    pub async fn pipeline(&self) -> OpportunityPipelineServiceClient<Channel> {
        OpportunityPipelineServiceClient::new(self.channel().await)
    }

    pub async fn credit(&self) -> CompensationCreditServiceClient<Channel> {
        CompensationCreditServiceClient::new(self.channel().await)
    }

    pub async fn grpc_health(&self) -> tonic_health::pb::health_client::HealthClient<Channel> {
        tonic_health::pb::health_client::HealthClient::new(self.channel().await)
    }

    /// `kill -9`: no shutdown, no flush, in-flight requests cut off.
    pub fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }

    /// Whether the process is still the one started (it has not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for a clean exit; returns how long it took.
    pub fn stop(mut self) -> Duration {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(exit) = self.child.try_wait().expect("wait") {
                assert!(exit.success(), "server exited with {exit}");
                return started.elapsed();
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a scenario on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::harness::Backend::postgres().await {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

/// An account the health service knows, with two products: `held`, of
/// which it has an active USD subscription (an upsell grows it), and
/// `other`, which it does not own (a cross-sell sells it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refs {
    pub account: String,
    pub held: String,
    pub other: String,
}

impl Server {
    /// A fresh [`Refs`] on this server, the subscription in USD.
    pub async fn refs(&self) -> Refs {
        self.refs_in("USD").await
    }

    /// A fresh [`Refs`] whose subscription bills in `currency`.
    pub async fn refs_in(&self, currency: &str) -> Refs {
        use contracts::pb::health::v1 as health;
        let mut client = self.health().await;
        let tag = domain::EventId::new().to_string();
        let account = client
            .upsert_account(health::UpsertAccountRequest {
                external_ref: Some(health::ExternalRef {
                    system: "test".into(),
                    id: tag.clone(),
                }),
                name: format!("Account {tag}"),
                segment: contracts::pb::common::v1::Segment::MidMarket as i32,
                customer_since: "2025-01-15".into(),
                owner_csm: "carla.csm".into(),
                ..Default::default()
            })
            .await
            .expect("account")
            .into_inner()
            .account
            .expect("account")
            .account_id;
        let product = |name: String| {
            let mut client = client.clone();
            async move {
                client
                    .upsert_product(health::UpsertProductRequest {
                        product: Some(health::Product {
                            name,
                            family: "test".into(),
                            tiers: vec!["STARTER".into(), "PRO".into()],
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await
                    .expect("product")
                    .into_inner()
                    .product
                    .expect("product")
                    .product_id
            }
        };
        let held = product(format!("Held {tag}")).await;
        let other = product(format!("Other {tag}")).await;
        client
            .upsert_subscription(health::UpsertSubscriptionRequest {
                subscription: Some(health::Subscription {
                    account_id: account.clone(),
                    product_id: held.clone(),
                    tier: "STARTER".into(),
                    mrr: Some(contracts::pb::common::v1::Money {
                        currency_code: currency.into(),
                        amount: "1000".into(),
                    }),
                    start_date: "2025-01-15".into(),
                    quantity: 1,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("subscription");
        Refs {
            account,
            held,
            other,
        }
    }

    /// Adds `name` to the people directory as an AE of `team`, so a handoff
    /// can name them as its owner.
    pub async fn known_ae(&self, name: &str, team: &str) {
        self.known_person(name, contracts::pb::credit::v1::PersonRole::Ae, team)
            .await;
    }

    /// Adds `name` to the people directory, so a deal can credit them.
    pub async fn known_person(
        &self,
        name: &str,
        role: contracts::pb::credit::v1::PersonRole,
        team: &str,
    ) {
        use contracts::pb::credit::v1 as credit;
        self.credit()
            .await
            .upsert_person(credit::UpsertPersonRequest {
                person: Some(credit::Person {
                    person_id: name.into(),
                    display_name: name.into(),
                    role: role as i32,
                    team: team.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("person");
    }
}
