//! deploy/docker-compose.yml brought up without a Docker engine: the file
//! is read (never copied here), each of its `expansion` services runs as a
//! process with the service's command and environment — the image's `ENV`
//! (deploy/Dockerfile), then the service's, `${…}` interpolated from the
//! shell as Compose does — and its files (the keys secret at the path the
//! container sees; the databases of deploy/postgres-init/), against a
//! throw-away PostgreSQL. Only what a container network provides is
//! mapped: a service's name is 127.0.0.1, each container port a free one,
//! each database name gets a suffix so runs don't collide. The one-shot
//! `migrate-*` services run first and must succeed; then the three servers
//! answer the cookbook's first calls, the pipeline asking health with the
//! peer key.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contracts::client::{AuthChannel, ClientOptions};
use contracts::pb::common::v1::Segment;
use contracts::pb::credit::v1 as credit;
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use contracts::pb::health::v1 as health;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use contracts::pb::pipeline::v1 as pipeline;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_client::OpportunityPipelineServiceClient;
use sea_orm::ConnectionTrait;
use serde_yaml::Value;

use crate::harness::{binary, create_key, in_ci};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
const DEFAULT_POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Compose's interpolation of one value: `$$`, `${VAR}`, `$VAR`,
/// `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`.
fn interpolate(text: &str, shell: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(tail) = rest.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix('{') {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let expr = &tail[..end];
            rest = &tail[end + 1..];
            let name_end = expr
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expr.len());
            let (name, op) = expr.split_at(name_end);
            let value = shell.get(name);
            let unset_or_empty = value.is_none_or(String::is_empty);
            match op {
                "" => out.push_str(value.map_or("", String::as_str)),
                _ if op.starts_with(":-") => match value {
                    Some(v) if !v.is_empty() => out.push_str(v),
                    _ => out.push_str(&interpolate(&op[2..], shell)?),
                },
                _ if op.starts_with('-') => match value {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&interpolate(&op[1..], shell)?),
                },
                _ if op.starts_with(":?") => match value {
                    Some(v) if !unset_or_empty => out.push_str(v),
                    _ => {
                        return Err(format!(
                            "required variable {name} is missing a value: {}",
                            &op[2..]
                        ));
                    }
                },
                _ if op.starts_with('?') => match value {
                    Some(v) => out.push_str(v),
                    None => {
                        return Err(format!(
                            "required variable {name} is missing a value: {}",
                            &op[1..]
                        ));
                    }
                },
                _ => return Err(format!("unsupported interpolation ${{{expr}}}")),
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push_str(shell.get(&rest[..end]).map_or("", String::as_str));
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn interpolate_all(value: &mut Value, shell: &BTreeMap<String, String>) -> Result<(), String> {
    match value {
        Value::String(s) => *s = interpolate(s, shell)?,
        Value::Sequence(items) => {
            for item in items {
                interpolate_all(item, shell)?;
            }
        }
        Value::Mapping(map) => {
            for (_, item) in map.iter_mut() {
                interpolate_all(item, shell)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The Compose file as `docker compose config` would resolve it: YAML
/// merge keys applied, `${…}` interpolated from `shell`.
fn compose(shell: &BTreeMap<String, String>) -> Result<Value, String> {
    let text = std::fs::read_to_string(format!("{DEPLOY}/docker-compose.yml")).unwrap();
    let mut value: Value = serde_yaml::from_str(&text).unwrap();
    value.apply_merge().unwrap();
    interpolate_all(&mut value, shell)?;
    Ok(value)
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// deploy/Dockerfile's `ENV`, under every command of the image.
fn image_env() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(format!("{DEPLOY}/Dockerfile")).unwrap();
    let mut env = BTreeMap::new();
    let mut in_env = false;
    for line in text.lines().map(str::trim) {
        let rest = match line.strip_prefix("ENV ") {
            Some(rest) => rest,
            None if in_env => line,
            None => continue,
        };
        in_env = rest.ends_with('\\');
        for pair in rest.trim_end_matches('\\').split_whitespace() {
            let (k, v) = pair.split_once('=').unwrap();
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    env
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The host a container network gives every service; the rest maps onto it.
struct Network {
    /// (service, container port) → host port.
    ports: BTreeMap<(String, u16), u16>,
    postgres: String,
    suffix: String,
    /// Container path → host path (secrets, the image's home).
    paths: Vec<(String, PathBuf)>,
}

impl Network {
    fn port(&mut self, service: &str, port: u16) -> u16 {
        *self
            .ports
            .entry((service.to_owned(), port))
            .or_insert_with(free_port)
    }

    /// One environment value of `service` as the host sees it.
    fn map(&mut self, service: &str, value: &str, services: &[String]) -> String {
        for (inside, outside) in &self.paths {
            if let Some(rest) = value.strip_prefix(inside.as_str()) {
                return format!("{}{rest}", outside.display());
            }
        }
        // postgres://user:password@postgres:5432/expansion_x
        if let Some(rest) = value.strip_prefix("postgres://")
            && let Some((auth, tail)) = rest.split_once('@')
            && let Some((_, database)) = tail.split_once('/')
        {
            return format!(
                "postgres://{auth}@{}/{database}_{}",
                self.postgres, self.suffix
            );
        }
        // A listening address inside this service's container.
        if let Some(port) = value.strip_prefix("0.0.0.0:") {
            let port = self.port(service, port.parse().unwrap());
            return format!("0.0.0.0:{port}");
        }
        // Another service by its name.
        if let Some(rest) = value.strip_prefix("http://")
            && let Some((host, port)) = rest.trim_end_matches('/').split_once(':')
            && services.iter().any(|s| s == host)
        {
            let port = self.port(host, port.parse().unwrap());
            return format!("http://127.0.0.1:{port}");
        }
        value.to_owned()
    }
}

/// A service running as a process; killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn command(args: &[String], env: &BTreeMap<String, String>) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_clear()
        .envs(env)
        .env("EXPANSION_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// Waits for `serve` to say where it listens.
fn wait_listening(child: &mut Child, name: &str) {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "{name} did not start in time");
        match lines.next() {
            Some(Ok(line)) if line.starts_with("listening on ") => break,
            Some(Ok(_)) => {}
            _ => panic!("{name} exited before listening: {:?}", child.wait()),
        }
    }
    std::thread::spawn(move || for _ in lines {});
}

async fn channel(port: u16, token: &str) -> AuthChannel {
    let options = ClientOptions::default().with_api_key(Some(token.to_owned()));
    contracts::client::connect(&format!("http://127.0.0.1:{port}"), &options)
        .await
        .unwrap()
}

#[test]
fn an_unset_or_empty_peer_key_stops_compose_before_anything_starts() {
    for shell in [
        BTreeMap::new(),
        BTreeMap::from([("EXPANSION_PEER_API_KEY".to_owned(), String::new())]),
    ] {
        let err = compose(&shell).unwrap_err();
        assert!(err.contains("EXPANSION_PEER_API_KEY"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_services_run_on_postgres_and_answer_the_cookbook() {
    let admin_url = std::env::var("EXPANSION_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_ADMIN_URL.to_owned());
    let admin = match sea_orm::Database::connect(&admin_url).await {
        Ok(db) => db,
        Err(err) if !in_ci() => {
            eprintln!("\n!!!!! SKIPPING the Compose test: cannot reach {admin_url}: {err}\n");
            return;
        }
        Err(err) => panic!("PostgreSQL is required under CI=true: {admin_url}: {err}"),
    };
    let postgres = admin_url
        .strip_prefix("postgres://")
        .and_then(|r| r.split_once('@'))
        .and_then(|(_, r)| r.split_once('/'))
        .map(|(host, _)| host.to_owned())
        .expect("postgres://user@host:port/db");

    // The operator's steps, as deploy/docker-compose.yml and README say.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("secrets/keys.json");
    std::fs::create_dir_all(keys.parent().unwrap()).unwrap();
    let out = Command::new(binary())
        .args(["keys", "create", "--keys-file"])
        .arg(&keys)
        .args(["--file-mode", "0644", "--name", "ops", "--role", "admin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let ops = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let peer = create_key(&keys, "services", "connector");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o004,
            0o004,
            "the container's uid 10001 reads it: {mode:o}"
        );
    }
    let shell = BTreeMap::from([("EXPANSION_PEER_API_KEY".to_owned(), peer)]);
    let compose = compose(&shell).unwrap();
    let services = compose["services"].as_mapping().unwrap();
    let names: Vec<String> = services.keys().map(scalar).collect();

    // PostgreSQL's init files, on a role and databases of this run.
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let user = scalar(&compose["services"]["postgres"]["environment"]["POSTGRES_USER"]);
    admin
        .execute_unprepared(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') \
             THEN CREATE ROLE {user} LOGIN; END IF; END $$"
        ))
        .await
        .unwrap();
    let mut databases = Vec::new();
    for file in std::fs::read_dir(format!("{DEPLOY}/postgres-init")).unwrap() {
        let sql = std::fs::read_to_string(file.unwrap().path()).unwrap();
        for statement in sql.lines().filter(|l| l.starts_with("CREATE DATABASE ")) {
            let name = statement
                .trim_start_matches("CREATE DATABASE ")
                .trim_end_matches(';');
            let name = format!("{name}_{suffix}");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name} OWNER {user}"))
                .await
                .unwrap();
            databases.push(name);
        }
    }
    assert_eq!(databases.len(), 3, "a database per service");

    let mut network = Network {
        ports: BTreeMap::new(),
        postgres,
        suffix,
        paths: Vec::new(),
    };
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    network.paths.push(("/var/lib/expansion".into(), home));
    for (name, secret) in compose["secrets"].as_mapping().unwrap() {
        // Where Compose reads it from, relative to deploy/: made there above.
        let file = scalar(&secret["file"]);
        let relative: PathBuf = Path::new(&file)
            .components()
            .filter(|c| *c != std::path::Component::CurDir)
            .collect();
        assert_eq!(dir.path().join(relative), keys, "the secret is {file}");
        network
            .paths
            .push((format!("/run/secrets/{}", scalar(name)), keys.clone()));
    }

    // Each `expansion` service: its command and environment, host-mapped.
    let mut processes = BTreeMap::new();
    let base = image_env();
    for (name, service) in services {
        let name = scalar(name);
        if !scalar(&service["image"]).starts_with("expansion:") {
            continue;
        }
        let args: Vec<String> = service["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(scalar)
            .collect();
        let mut env = base.clone();
        for (k, v) in service["environment"].as_mapping().unwrap() {
            env.insert(scalar(k), scalar(v));
        }
        let env: BTreeMap<String, String> = env
            .into_iter()
            .map(|(k, v)| {
                let v = network.map(&name, &v, &names);
                (k, v)
            })
            .collect();
        processes.insert(name, (args, env));
    }

    // The one-shot migrations first, each to a clean exit.
    for (name, (args, env)) in processes.iter().filter(|(_, (a, _))| a[0] == "migrate") {
        let out = command(args, env).stdout(Stdio::piped()).output().unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
    }
    // Then the servers.
    let mut running = Vec::new();
    let mut grpc = BTreeMap::new();
    for (name, (args, env)) in processes.iter().filter(|(_, (a, _))| a[0] == "serve") {
        let mut child = command(args, env).spawn().unwrap();
        wait_listening(&mut child, name);
        running.push(Running(child));
        grpc.insert(name.clone(), network.port(name, 50051));
    }
    assert_eq!(grpc.len(), 3, "{grpc:?}");

    // The cookbook's first calls, each at its service.
    let mut h = AccountHealthServiceClient::new(channel(grpc["health"], &ops).await);
    h.upsert_account(health::UpsertAccountRequest {
        external_ref: Some(health::ExternalRef {
            system: "salesforce".into(),
            id: "0015g00000RAVG".into(),
        }),
        name: "Raviga Capital".into(),
        segment: Segment::MidMarket as i32,
        customer_since: "2025-09-01".into(),
        owner_csm: "mei.csm".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let account = h
        .get_account(health::GetAccountRequest {
            account_id: String::new(),
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: "0015g00000RAVG".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    let listed = h
        .list_accounts(health::ListAccountsRequest {
            segment: Segment::MidMarket as i32,
            page_size: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.accounts.iter().any(|a| a.name == "Raviga Capital"));
    // The pipeline asks health over the network, with the peer key.
    let mut p = OpportunityPipelineServiceClient::new(channel(grpc["pipeline"], &ops).await);
    p.get_whitespace(pipeline::GetWhitespaceRequest {
        account_id: account.account_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut c = CompensationCreditServiceClient::new(channel(grpc["credit"], &ops).await);
    let policy = c
        .get_credit_policy(credit::GetCreditPolicyRequest {
            policy_id: "default".into(),
            as_of_date: "2026-06-30".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(policy.policy.is_some());

    drop(running);
    for name in databases {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}
