//! Webhooks, end to end: a real HTTP receiver in the test, endpoints
//! registered through the API, events delivered as signed POSTs — through a
//! `kill -9` of the sender mid-delivery (every event arrives, each signature
//! valid, duplicates only of an id already seen); an endpoint that keeps
//! failing is disabled; replay from a cursor; private targets refused
//! without `--webhooks-allow-private`. On SQLite and on PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use contracts::pb::common::v1 as common;
use contracts::pb::credit::v1 as credit;
use contracts::pb::health::v1 as health;
use contracts::pb::pipeline::v1 as pipeline;
use serde_json::Value;

use crate::harness::{Backend, Server, usd};
use crate::on_both_databases;

on_both_databases!(
    every_event_arrives_signed_through_a_kill_9,
    failing_endpoints_are_disabled_and_replay_resends_after_a_cursor,
);

const SECRET: &str = "whsec_test_0123456789abcdef";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn event_id(&self) -> String {
        self.json()["event_id"].as_str().unwrap().to_owned()
    }
}

/// A small HTTP/1.1 server: records each POST and answers `status`; the
/// `hold`-th request (1-based) is reported on `held` and answered only once
/// `release` fires.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    hold: Arc<AtomicUsize>,
    held: mpsc::Receiver<Received>,
    release: mpsc::Sender<()>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let hold = Arc::new(AtomicUsize::new(0));
        let (held_tx, held) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        {
            let (got, status, hold) = (got.clone(), status.clone(), hold.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let (got, status, hold) = (got.clone(), status.clone(), hold.clone());
                    let (held_tx, release_rx) = (held_tx.clone(), release_rx.clone());
                    std::thread::spawn(move || {
                        let _ = serve(stream, &got, &status, &hold, &held_tx, &release_rx);
                    });
                }
            });
        }
        Receiver {
            port,
            got,
            status,
            hold,
            held,
            release,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `done` holds of what `path` received.
    fn wait_for(
        &self,
        path: &str,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.on(path);
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {what}; got {}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve(
    stream: TcpStream,
    got: &Mutex<Vec<Received>>,
    status: &AtomicU16,
    hold: &AtomicUsize,
    held: &mpsc::Sender<Received>,
    release: &Mutex<mpsc::Receiver<()>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut headers = BTreeMap::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let received = Received {
            path,
            headers,
            body,
        };
        let n = {
            let mut got = got.lock().unwrap();
            got.push(received.clone());
            got.len()
        };
        if n == hold.load(Ordering::SeqCst) {
            held.send(received).unwrap();
            let _ = release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(60));
        }
        let code = status.load(Ordering::SeqCst);
        let text = if code == 200 {
            "ok"
        } else {
            "receiver says no"
        };
        write!(
            writer,
            "HTTP/1.1 {code} X\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{text}",
            text.len()
        )?;
        writer.flush()?;
    }
}

/// Checks a delivery's signature as a receiver would (README "Verifying a signature").
fn assert_signed(received: &Received) {
    let header = &received.headers["expansion-signature"];
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        ::webhooks::signature::verify(
            header,
            SECRET.as_bytes(),
            &received.body,
            now,
            ::webhooks::signature::TOLERANCE_SECS
        ),
        Ok(()),
        "{received:?}"
    );
    let payload = received.json();
    // Its data has the fields the catalog lists, and no other.
    let kind = contracts::catalog::kind_of(payload["event_type"].as_str().unwrap()).unwrap();
    for field in payload["data"].as_object().unwrap().keys() {
        assert!(
            kind.fields.contains(&field.as_str()),
            "{field} of {}",
            kind.event_type
        );
    }
    assert_eq!(received.headers["expansion-event-id"], payload["event_id"]);
    assert_eq!(
        received.headers["expansion-event-type"],
        payload["event_type"]
    );
    assert_eq!(payload["schema_version"], 1);
    assert!(payload["cursor"].as_str().unwrap().starts_with("ev1."));
}

/// The README's Python `verify`, run on a delivery as received.
fn python_verifies(received: &Received) -> bool {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("### Verifying a signature").unwrap()..];
    let start = section.find("```python\n").unwrap() + "```python\n".len();
    let code = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    std::fs::write(&body, &received.body).unwrap();
    let script = format!(
        "{code}\nimport sys\nok = verify({SECRET:?}.encode(), open(sys.argv[1], 'rb').read(), sys.argv[2])\nprint('valid' if ok else 'invalid')\n"
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&body)
        .arg(&received.headers["expansion-signature"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim() == "valid"
}

fn spec(url: &str, types: &[&str]) -> common::WebhookEndpointSpec {
    common::WebhookEndpointSpec {
        url: url.into(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        secret: SECRET.into(),
        description: "test receiver".into(),
    }
}

async fn upsert_account(server: &Server, n: usize) -> String {
    server
        .health()
        .await
        .upsert_account(health::UpsertAccountRequest {
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: format!("hook-{n}"),
            }),
            name: format!("Hooked {n}"),
            segment: common::Segment::MidMarket as i32,
            customer_since: "2025-01-01".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .account_id
}

/// The ids of the events of `types` in the health log, by WatchEvents.
async fn health_event_ids(server: &Server, prefix: &str, expected: usize) -> BTreeSet<String> {
    let mut stream = server
        .health()
        .await
        .watch_events(health::WatchEventsRequest {
            options: Some(common::WatchEventsOptions {
                after_cursor: String::new(),
                event_types: vec![prefix.into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids = BTreeSet::new();
    while ids.len() < expected {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("events")
            .unwrap()
            .unwrap();
        ids.insert(next.event.unwrap().event_id);
    }
    ids
}

const FLAGS: &[&str] = &["--webhooks-allow-private", "--webhooks-timeout", "2s"];

async fn every_event_arrives_signed_through_a_kill_9(backend: Backend) {
    let receiver = Receiver::start();
    let server = Server::start(&backend, FLAGS);
    let endpoint = server
        .health()
        .await
        .create_webhook_endpoint(health::CreateWebhookEndpointRequest {
            request_id: "hook-1".into(),
            endpoint: Some(spec(&receiver.url("/health"), &["health.account."])),
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert_eq!(endpoint.state, common::WebhookEndpointState::Enabled as i32);
    assert_eq!(endpoint.secret_hint, "cdef");
    // The secret is never read back.
    let listed = server
        .health()
        .await
        .list_webhook_endpoints(health::ListWebhookEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.endpoints, vec![endpoint.clone()]);
    assert!(!format!("{listed:?}").contains(SECRET));
    // The other services' webhooks too.
    server
        .credit()
        .await
        .create_webhook_endpoint(credit::CreateWebhookEndpointRequest {
            request_id: String::new(),
            endpoint: Some(spec(&receiver.url("/credit"), &[])),
        })
        .await
        .unwrap();
    server
        .pipeline()
        .await
        .create_webhook_endpoint(pipeline::CreateWebhookEndpointRequest {
            request_id: String::new(),
            endpoint: Some(spec(
                &receiver.url("/pipeline"),
                &["pipeline.wallet_estimate."],
            )),
        })
        .await
        .unwrap();

    // The 8th delivery is held: the sender is killed while it waits for the answer.
    receiver.hold.store(8, Ordering::SeqCst);
    const ACCOUNTS: usize = 30;
    let mut first = String::new();
    for n in 0..ACCOUNTS {
        let id = upsert_account(&server, n).await;
        if n == 0 {
            first = id;
        }
    }
    let held = receiver.held.recv_timeout(Duration::from_secs(60)).unwrap();
    let killed_at = receiver.received().len();
    server.kill();
    receiver.release.send(()).unwrap();

    let server = Server::start(&backend, FLAGS);
    let restarted = Instant::now();
    for n in ACCOUNTS..ACCOUNTS + 5 {
        upsert_account(&server, n).await;
    }
    server
        .known_person("hooked.ae", credit::PersonRole::Ae, "hooks")
        .await;
    server
        .pipeline()
        .await
        .upsert_wallet_estimate(pipeline::UpsertWalletEstimateRequest {
            request_id: String::new(),
            estimate: Some(pipeline::WalletEstimate {
                account_id: first.clone(),
                product_area: "Analytics".into(),
                annual_spend: usd("50000.00"),
                served_by: pipeline::WalletServedBy::Competitor as i32,
                ..Default::default()
            }),
        })
        .await
        .unwrap();

    let expected = health_event_ids(&server, "health.account.", ACCOUNTS + 5).await;
    // The delivery cut by the kill was never recorded: it is sent again
    // once its claim lapses (the 5 s lease the killed sender no longer renews).
    let held_id = held.event_id();
    let got = receiver.wait_for(
        "/health",
        "every account event, the held one twice",
        |got| {
            got.iter().map(Received::event_id).collect::<BTreeSet<_>>() == expected
                && got.iter().filter(|r| r.event_id() == held_id).count() >= 2
        },
    );
    for received in &got {
        assert_signed(received);
    }
    // As a receiver following the README would: valid, and not once tampered with.
    assert!(python_verifies(&held));
    let mut tampered = held.clone();
    tampered.body.extend_from_slice(b" ");
    assert!(!python_verifies(&tampered));
    // Duplicates only by id, each with the same body; the held one among them.
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for received in &got {
        let previous = bodies.insert(received.event_id(), received.body.clone());
        if let Some(previous) = previous {
            assert_eq!(previous, received.body, "a repeat is the same payload");
        }
    }
    let repeats = got.len() - expected.len();
    let payload = held.json();
    assert_eq!(payload["service"], "health");
    assert_eq!(payload["event_type"], "health.account.created");
    // The account's CRM record beside its id.
    assert_eq!(
        payload["data"]["account_external_ref"],
        serde_json::json!({"system": "salesforce", "id": payload["data"]["name"].as_str().unwrap().replace("Hooked ", "hook-")})
    );
    println!(
        "webhooks through kill -9: {} events, {} requests ({repeats} repeated), kill after {killed_at}, all in {} ms after the restart",
        expected.len(),
        got.len(),
        restarted.elapsed().as_millis()
    );

    let credit = receiver.wait_for("/credit", "the person", |got| !got.is_empty());
    assert_eq!(credit[0].json()["event_type"], "credit.person.upserted");
    assert_signed(&credit[0]);
    let wallet = receiver.wait_for("/pipeline", "the estimate", |got| !got.is_empty());
    assert_eq!(
        wallet[0].json()["event_type"],
        "pipeline.wallet_estimate.upserted"
    );
    assert_signed(&wallet[0]);
    assert_eq!(
        wallet[0].json()["data"]["account_external_ref"],
        serde_json::json!({"system": "salesforce", "id": "hook-0"})
    );

    // The delivery log says each was delivered.
    let log = server
        .health()
        .await
        .list_webhook_deliveries(health::ListWebhookDeliveriesRequest {
            endpoint_id: endpoint.endpoint_id.clone(),
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(log.deliveries.len(), expected.len());
    assert!(
        log.deliveries
            .iter()
            .all(|d| d.status == common::WebhookDeliveryStatus::Delivered as i32),
        "{log:?}"
    );
    server.stop();
}

async fn endpoint_state(server: &Server, id: &str) -> common::WebhookEndpoint {
    server
        .health()
        .await
        .list_webhook_endpoints(health::ListWebhookEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .endpoints
        .into_iter()
        .find(|e| e.endpoint_id == id)
        .unwrap()
}

async fn failing_endpoints_are_disabled_and_replay_resends_after_a_cursor(backend: Backend) {
    let receiver = Receiver::start();
    let mut flags = FLAGS.to_vec();
    flags.extend(["--webhooks-disable-after", "3"]);
    let server = Server::start(&backend, &flags);
    receiver.status.store(500, Ordering::SeqCst);
    let endpoint = server
        .health()
        .await
        .create_webhook_endpoint(health::CreateWebhookEndpointRequest {
            request_id: String::new(),
            endpoint: Some(spec(&receiver.url("/failing"), &["health.account."])),
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    let id = endpoint.endpoint_id.clone();
    upsert_account(&server, 1).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let disabled = loop {
        let state = endpoint_state(&server, &id).await;
        if state.state == common::WebhookEndpointState::Disabled as i32 {
            break state;
        }
        assert!(Instant::now() < deadline, "never disabled: {state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(disabled.consecutive_failures, 3);
    assert!(
        disabled.disabled_reason.contains("HTTP 500"),
        "{disabled:?}"
    );
    assert_eq!(receiver.on("/failing").len(), 3);
    println!(
        "webhooks: disabled after 3 failed attempts in {} ms",
        started.elapsed().as_millis()
    );
    let log = server
        .health()
        .await
        .list_webhook_deliveries(health::ListWebhookDeliveriesRequest {
            endpoint_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(log.deliveries.len(), 1);
    let parked = &log.deliveries[0];
    assert_eq!(parked.status, common::WebhookDeliveryStatus::Parked as i32);
    assert_eq!(parked.attempts, 3);
    assert!(parked.last_error.contains("HTTP 500"), "{parked:?}");
    // While disabled, new events are not queued for it; replay refuses.
    upsert_account(&server, 2).await;
    let refused = server
        .health()
        .await
        .replay_webhook_events(health::ReplayWebhookEventsRequest {
            endpoint_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);

    // Enabled again and answering: replay everything from the start.
    receiver.status.store(200, Ordering::SeqCst);
    let enabled = server
        .health()
        .await
        .enable_webhook_endpoint(health::EnableWebhookEndpointRequest {
            request_id: String::new(),
            endpoint_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert_eq!(enabled.consecutive_failures, 0);
    for n in 3..6 {
        upsert_account(&server, n).await;
    }
    let ok = |got: &[Received]| {
        got.iter()
            .filter(|r| r.headers.contains_key("expansion-signature"))
            .count()
    };
    receiver.wait_for("/failing", "the three new events", |got| ok(got) >= 6);
    let replay = server
        .health()
        .await
        .replay_webhook_events(health::ReplayWebhookEventsRequest {
            request_id: "replay-all".into(),
            endpoint_id: id.clone(),
            after_cursor: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.queued, 5, "{replay:?}");
    assert_eq!(replay.next_cursor, "");
    let all = receiver.wait_for("/failing", "the replay", |got| got.len() >= 11);
    let replayed: Vec<String> = all[6..].iter().map(Received::event_id).collect();
    // Then only what came after a cursor: the last two account events.
    let cursors: Vec<String> = all[6..]
        .iter()
        .map(|r| r.json()["cursor"].as_str().unwrap().to_owned())
        .collect();
    let mut ordered: Vec<(String, String)> = cursors.into_iter().zip(replayed).collect();
    ordered.sort_by_key(|(c, _)| i64::from_str_radix(c.trim_start_matches("ev1."), 16).unwrap());
    let after = ordered[2].0.clone();
    let replay = server
        .health()
        .await
        .replay_webhook_events(health::ReplayWebhookEventsRequest {
            request_id: String::new(),
            endpoint_id: id.clone(),
            after_cursor: after,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.queued, 2);
    let all = receiver.wait_for("/failing", "the replay after a cursor", |got| {
        got.len() >= 13
    });
    let tail: BTreeSet<String> = all[11..].iter().map(Received::event_id).collect();
    let expected: BTreeSet<String> = ordered[3..].iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(tail, expected);
    for received in &all[3..] {
        assert_signed(received);
    }

    // Disable and delete.
    let disabled = server
        .health()
        .await
        .disable_webhook_endpoint(health::DisableWebhookEndpointRequest {
            request_id: String::new(),
            endpoint_id: id.clone(),
            reason: "maintenance".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert!(disabled.disabled_reason.contains("maintenance"));
    server
        .health()
        .await
        .delete_webhook_endpoint(health::DeleteWebhookEndpointRequest {
            request_id: String::new(),
            endpoint_id: id.clone(),
        })
        .await
        .unwrap();
    let gone = server
        .health()
        .await
        .list_webhook_deliveries(health::ListWebhookDeliveriesRequest {
            endpoint_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    server.stop();
}

/// Without `--webhooks-allow-private`, an endpoint on loopback, a private
/// network or the link-local metadata address is refused on `endpoint.url`,
/// by name as well as by address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_without_the_flag() {
    let backend = Backend::sqlite();
    let server = Server::start(&backend, &[]);
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "https://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:192.168.0.1]/hook",
        "ftp://example.com/hook",
    ] {
        let refused = server
            .health()
            .await
            .create_webhook_endpoint(health::CreateWebhookEndpointRequest {
                request_id: String::new(),
                endpoint: Some(spec(url, &[])),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{url}");
        let details = tonic_types::StatusExt::get_error_details(&refused);
        let field = &details.bad_request().unwrap().field_violations[0].field;
        assert_eq!(field, "endpoint.url", "{url}");
    }
    // A bad secret and a foreign prefix name their fields too.
    let mut short = spec("https://hooks.example.com/in", &[]);
    short.secret = "short".into();
    let mut foreign = spec("https://hooks.example.com/in", &["credit."]);
    foreign.secret = SECRET.into();
    for (spec, field) in [
        (short, "endpoint.secret"),
        (foreign, "endpoint.event_types[0]"),
    ] {
        let refused = server
            .health()
            .await
            .create_webhook_endpoint(health::CreateWebhookEndpointRequest {
                request_id: String::new(),
                endpoint: Some(spec),
            })
            .await
            .unwrap_err();
        let details = tonic_types::StatusExt::get_error_details(&refused);
        assert_eq!(
            details.bad_request().unwrap().field_violations[0].field,
            field
        );
    }
    server.stop();
}

/// An `https://` endpoint is verified against the web's roots: one whose
/// certificate a private CA issued (here `openssl s_server`'s) is never
/// sent the event, and the delivery log says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_endpoints_with_an_unknown_issuer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key, _ca)) = crate::auth::certificates(dir.path()) else {
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut tls_server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s_server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let backend = Backend::sqlite();
    let server = Server::start(&backend, FLAGS);
    let endpoint = server
        .health()
        .await
        .create_webhook_endpoint(health::CreateWebhookEndpointRequest {
            request_id: String::new(),
            endpoint: Some(spec(&format!("https://localhost:{port}/hook"), &[])),
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    upsert_account(&server, 1).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivery = loop {
        let log = server
            .health()
            .await
            .list_webhook_deliveries(health::ListWebhookDeliveriesRequest {
                endpoint_id: endpoint.endpoint_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        if let Some(d) = log.deliveries.into_iter().find(|d| d.attempts > 0) {
            break d;
        }
        assert!(Instant::now() < deadline, "no attempt");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        delivery.status,
        common::WebhookDeliveryStatus::Pending as i32
    );
    assert!(
        delivery.last_error.contains("TLS") && delivery.last_error.contains("certificate"),
        "{delivery:?}"
    );
    println!(
        "webhooks: https with a private CA refused: {}",
        delivery.last_error
    );
    let _ = tls_server.kill();
    let _ = tls_server.wait();
    server.stop();
}
