//! Expansion without gRPC, against the real binary: HTTP/JSON (the Connect
//! protocol's unary form) for every unary method of the descriptor set, over
//! HTTP/1.1 and HTTP/2 with curl; the same keys, roles, limits, metrics and
//! error details as gRPC; gRPC-Web; the OpenAPI document (checked with
//! `openapi-spec-validator`); and a real Connect client (connect-es on Node).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use prost::Message;
use prost_reflect::DescriptorPool;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{Backend, Server, create_key, in_ci};
use crate::on_both_databases;

on_both_databases!(every_unary_method_answers_over_http_json_as_over_grpc);

/// Connect's name of each gRPC code, by number.
const CODE_NAMES: [&str; 17] = [
    "ok",
    "canceled",
    "unknown",
    "invalid_argument",
    "deadline_exceeded",
    "not_found",
    "already_exists",
    "permission_denied",
    "resource_exhausted",
    "failed_precondition",
    "aborted",
    "out_of_range",
    "unimplemented",
    "internal",
    "unavailable",
    "data_loss",
    "unauthenticated",
];

/// What an HTTP call answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    version: String,
    headers: String,
    json: Value,
}

/// `curl` as a connector runs it: `POST` JSON over HTTP/1.1, or HTTP/2
/// (prior knowledge, as on a plaintext port).
fn post(server: &Server, path: &str, body: &str, headers: &[String], http2: bool) -> Answer {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-D", "-", "-X", "POST"])
        .arg(if http2 {
            "--http2-prior-knowledge"
        } else {
            "--http1.1"
        })
        .args(["-H", "content-type: application/json"]);
    for header in headers {
        cmd.args(["-H", header]);
    }
    cmd.args(["--data-binary", body])
        .arg(format!("http://{}{path}", server.addr));
    let out = cmd.output().expect("curl");
    assert!(out.status.success(), "curl failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status_line = head.lines().next().unwrap();
    let mut words = status_line.split_whitespace();
    let version = words.next().unwrap().trim_start_matches("HTTP/").to_owned();
    let status = words.next().unwrap().parse().unwrap();
    let json = serde_json::from_str(body)
        .unwrap_or_else(|err| panic!("{path} answered no JSON ({err}): {status_line}\n{body}"));
    Answer {
        status,
        version,
        headers: head.to_ascii_lowercase(),
        json,
    }
}

fn bearer(key: &str) -> Vec<String> {
    vec![format!("authorization: Bearer {key}")]
}

fn get(server: &Server, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail"])
        .arg(format!("http://{}{path}", server.addr))
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET {path}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A gRPC call of `path` with `body` as the encoded request, as any gRPC
/// client sends it; only its status matters here.
async fn grpc(
    server: &Server,
    path: &str,
    body: Vec<u8>,
    key: Option<&str>,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(crate::bad_input::RawBody(body));
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    grpc.unary(
        request,
        path.parse().unwrap(),
        contracts::codec::Codec::<crate::bad_input::RawBody, ()>::default(),
    )
    .await
    .map(|_| ())
}

/// The HTTP/JSON answer says what the gRPC one said: same code (with the
/// HTTP status Connect gives it), message, and details byte for byte.
fn assert_same(path: &str, grpc: &Result<(), tonic::Status>, http: &Answer) {
    let Err(status) = grpc else {
        assert_eq!(http.status, 200, "{path}: gRPC OK, HTTP {http:?}");
        assert!(http.json.is_object(), "{path}: {http:?}");
        return;
    };
    let code = CODE_NAMES[status.code() as usize];
    assert_eq!(
        http.json["code"], code,
        "{path}: gRPC {status:?}, HTTP {http:?}"
    );
    assert_eq!(
        http.json["message"].as_str().unwrap_or_default(),
        status.message(),
        "{path}"
    );
    // Compared as messages: a map's encoding (ErrorInfo.metadata) may list
    // its entries in any order.
    let pool = descriptor_pool();
    let as_json = |type_name: &str, bytes: &[u8]| {
        let descriptor = pool.get_message_by_name(type_name).unwrap();
        serde_json::to_value(prost_reflect::DynamicMessage::decode(descriptor, bytes).unwrap())
            .unwrap()
    };
    let rich = tonic_types::pb::Status::decode(status.details()).unwrap_or_default();
    let expected: Vec<(String, Value)> = rich
        .details
        .iter()
        .map(|any| {
            let type_name = any.type_url.rsplit('/').next().unwrap().to_owned();
            let message = as_json(&type_name, &any.value);
            (type_name, message)
        })
        .collect();
    let got: Vec<(String, Value)> = http.json["details"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|d| {
            let type_name = d["type"].as_str().unwrap().to_owned();
            let value = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(d["value"].as_str().unwrap())
                .unwrap();
            let message = as_json(&type_name, &value);
            assert_eq!(d["debug"], message, "{path}: debug is not the value");
            (type_name, message)
        })
        .collect();
    assert_eq!(got, expected, "{path}: details differ");
    let http_status = match status.code() {
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::ResourceExhausted => 429,
        Code::Cancelled => 499,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        _ => 500,
    };
    assert_eq!(http.status, http_status, "{path}: {code}");
}

/// Every service of the descriptor set the binary is built from, as a
/// client that only has that set sees it.
fn descriptor_pool() -> DescriptorPool {
    let mut pool = DescriptorPool::decode(contracts::FILE_DESCRIPTOR_SET).unwrap();
    pool.decode_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .unwrap();
    pool
}

/// `(unary, streaming)` method paths of the services `expansion serve` runs.
fn method_paths() -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut unary, mut streaming) = (BTreeSet::new(), BTreeSet::new());
    for service in descriptor_pool().services() {
        let name = service.full_name();
        if !(name.starts_with("expansion.") || name == "grpc.health.v1.Health") {
            continue;
        }
        for method in service.methods() {
            let path = format!("/{name}/{}", method.name());
            if method.is_client_streaming() || method.is_server_streaming() {
                streaming.insert(path);
            } else {
                unary.insert(path);
            }
        }
    }
    (unary, streaming)
}

fn secured(backend: &Backend, dir: &Path, extra: &[&str]) -> (Server, String) {
    let keys = dir.join("keys.json");
    let admin = create_key(&keys, "http-admin", "admin");
    let keys_flag = keys.display().to_string();
    let mut args = vec!["--keys-file", keys_flag.as_str()];
    args.extend_from_slice(extra);
    (Server::start(backend, &args), admin)
}

async fn every_unary_method_answers_over_http_json_as_over_grpc(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = secured(&backend, dir.path(), &[]);
    let (unary, streaming) = method_paths();
    assert!(unary.len() > 30, "{unary:?}");

    // The generated route table is the descriptor set's unary methods.
    let openapi: Value = serde_json::from_str(&get(&server, "/openapi.json")).unwrap();
    let routed: BTreeSet<String> = openapi["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(routed, unary, "OpenAPI paths against the descriptor set");

    // Each, called with an empty request, answers over HTTP/JSON what it
    // answers over gRPC.
    for path in &unary {
        let over_grpc = grpc(&server, path, Vec::new(), Some(&admin)).await;
        let over_http = post(&server, path, "{}", &bearer(&admin), false);
        assert_same(path, &over_grpc, &over_http);
    }
    // Streams stay gRPC (and gRPC-Web) only, and say so.
    for path in &streaming {
        let answer = post(&server, path, "{}", &bearer(&admin), false);
        assert_eq!(answer.status, 501, "{path}: {answer:?}");
        assert_eq!(answer.json["code"], "unimplemented");
        assert!(
            answer.json["message"]
                .as_str()
                .unwrap()
                .contains("streaming method"),
            "{answer:?}"
        );
    }
    server.stop();
}

fn health(method: &str) -> String {
    format!("/expansion.health.v1.AccountHealthService/{method}")
}

fn detail<'a>(answer: &'a Answer, kind: &str) -> &'a Value {
    answer.json["details"]
        .as_array()
        .and_then(|details| details.iter().find(|d| d["type"] == kind))
        .map(|d| &d["debug"])
        .unwrap_or_else(|| panic!("no {kind} in {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_roles_limits_metrics_and_details_are_those_of_grpc() {
    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let viewer = create_key(&keys, "http-viewer", "viewer");
    let (server, admin) = secured(
        &backend,
        dir.path(),
        &[
            "--max-message-bytes",
            "4096",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let upsert = health("UpsertAccount");
    let account = json!({
        "externalRef": {"system": "salesforce", "id": "0015g00000HTTP"},
        "name": "Acme over HTTP",
        "segment": "SEGMENT_MID_MARKET",
        "customerSince": "2024-01-01"
    })
    .to_string();
    let encoded = |name: &str| {
        contracts::pb::health::v1::UpsertAccountRequest {
            external_ref: Some(contracts::pb::health::v1::ExternalRef {
                system: "salesforce".into(),
                id: "0015g00000HTTP".into(),
            }),
            name: name.into(),
            ..Default::default()
        }
        .encode_to_vec()
    };

    // No key, a malformed one, an unknown one: UNAUTHENTICATED, 401.
    for headers in [
        vec![],
        vec!["authorization: Bearer nonsense".to_owned()],
        bearer("exp_0123456789abcdef_0123456789abcdef0123456789abcdef"),
    ] {
        let key = headers
            .first()
            .map(|h| h.trim_start_matches("authorization: Bearer ").to_owned());
        let over_grpc = grpc(&server, &upsert, encoded("Acme"), key.as_deref()).await;
        let over_http = post(&server, &upsert, &account, &headers, false);
        assert_eq!(over_http.status, 401, "{over_http:?}");
        assert_same(&upsert, &over_grpc, &over_http);
    }
    // Who calls is checked before what they sent, over both: a body that
    // does not read, from a caller without a key, is UNAUTHENTICATED.
    let over_grpc = grpc(&server, &upsert, vec![0xff, 0xff, 0xff], None).await;
    let over_http = post(&server, &upsert, r#"{"nmae": 7}"#, &[], false);
    assert_eq!(over_http.status, 401, "{over_http:?}");
    assert_same(&upsert, &over_grpc, &over_http);
    let missing = post(&server, &upsert, &account, &[], false);
    assert_eq!(
        detail(&missing, "google.rpc.ErrorInfo")["reason"],
        "API_KEY_MISSING"
    );

    // A viewer may read, not write: PERMISSION_DENIED, 403, same words.
    let over_grpc = grpc(&server, &upsert, encoded("Acme"), Some(&viewer)).await;
    let over_http = post(&server, &upsert, &account, &bearer(&viewer), false);
    assert_eq!(over_http.status, 403);
    assert_same(&upsert, &over_grpc, &over_http);

    // Written by the admin; the key's name is the principal on the record.
    let created = post(&server, &upsert, &account, &bearer(&admin), false);
    assert_eq!(created.status, 200, "{created:?}");
    assert_eq!(created.json["account"]["audit"]["createdBy"], "http-admin");
    let id = created.json["account"]["accountId"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = post(
        &server,
        &health("GetAccount"),
        &json!({"account_id": id}).to_string(),
        &bearer(&viewer),
        true,
    );
    assert_eq!((read.status, read.version.as_str()), (200, "2"), "{read:?}");
    assert_eq!(read.json["account"]["name"], "Acme over HTTP");
    // int64 fields are strings, enums names, timestamps RFC 3339.
    assert_eq!(read.json["account"]["segment"], "SEGMENT_MID_MARKET");
    assert!(
        read.json["account"]["audit"]["createTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(created.headers.contains("content-type: application/json"));
    assert_eq!(created.version, "1.1");

    // The service's own validation: INVALID_ARGUMENT with the field path.
    let over_grpc = grpc(&server, &upsert, encoded(""), Some(&admin)).await;
    let over_http = post(
        &server,
        &upsert,
        r#"{"externalRef": {"system": "salesforce", "id": "0015g00000HTTP"}, "name": ""}"#,
        &bearer(&admin),
        true,
    );
    assert_same(&upsert, &over_grpc, &over_http);
    assert_eq!(
        detail(&over_http, "google.rpc.BadRequest")["fieldViolations"][0]["field"],
        "name"
    );

    // A body that is not the message: 400 invalid_argument naming the field.
    let bad = post(
        &server,
        &upsert,
        r#"{"externalRef": {"system": "salesforce", "id": 7}}"#,
        &bearer(&admin),
        false,
    );
    assert_eq!(
        (bad.status, &bad.json["code"]),
        (400, &json!("invalid_argument"))
    );
    assert!(
        bad.json["message"]
            .as_str()
            .unwrap()
            .contains("external_ref.id"),
        "{bad:?}"
    );
    assert_eq!(
        detail(&bad, "google.rpc.BadRequest")["fieldViolations"][0]["field"],
        "external_ref.id"
    );
    let unknown = post(
        &server,
        &upsert,
        r#"{"nmae": "Acme"}"#,
        &bearer(&admin),
        false,
    );
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.json["message"].as_str().unwrap().contains("nmae"),
        "{unknown:?}"
    );

    // The message size limit, applied to the message by the same codec.
    let huge = "x".repeat(5000);
    let over_grpc = grpc(&server, &upsert, encoded(&huge), Some(&admin)).await;
    // RESOURCE_EXHAUSTED, gRPC's code for it, with an ErrorInfo.
    let refused = over_grpc.as_ref().unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(
        refused.get_error_details().error_info().unwrap().reason,
        "MESSAGE_TOO_LARGE"
    );
    let over_http = post(
        &server,
        &upsert,
        &json!({"externalRef": {"system": "salesforce", "id": "0015g00000HTTP"}, "name": huge})
            .to_string(),
        &bearer(&admin),
        false,
    );
    assert_same(&upsert, &over_grpc, &over_http);
    // A body far beyond it is not even read.
    let over_http = post(
        &server,
        &upsert,
        &json!({"name": "x".repeat(20_000)}).to_string(),
        &bearer(&admin),
        false,
    );
    assert_eq!(
        (over_http.status, &over_http.json["code"]),
        (429, &json!("resource_exhausted"))
    );
    assert_eq!(
        detail(&over_http, "google.rpc.ErrorInfo")["reason"],
        "MESSAGE_TOO_LARGE"
    );

    // Deadlines: `connect-timeout-ms` becomes the call's deadline.
    let get_account = health("GetAccount");
    let by_id = json!({"accountId": id}).to_string();
    let mut with_timeout = bearer(&admin);
    with_timeout.push("connect-timeout-ms: 5000".into());
    let in_time = post(&server, &get_account, &by_id, &with_timeout, false);
    assert_eq!(in_time.status, 200, "{in_time:?}");
    with_timeout[1] = "connect-timeout-ms: 0".into();
    let late = post(&server, &get_account, &by_id, &with_timeout, false);
    assert_eq!(
        (late.status, &late.json["code"]),
        (504, &json!("deadline_exceeded")),
        "{late:?}"
    );
    with_timeout[1] = "connect-timeout-ms: soon".into();
    let garbled = post(&server, &get_account, &by_id, &with_timeout, false);
    assert_eq!(
        (garbled.status, &garbled.json["code"]),
        (400, &json!("invalid_argument"))
    );

    // No such method: 404.
    let nowhere = post(
        &server,
        &health("NoSuchMethod"),
        "{}",
        &bearer(&admin),
        false,
    );
    assert_eq!(
        (nowhere.status, &nowhere.json["code"]),
        (404, &json!("unimplemented"))
    );

    // Counted by the same metrics, under the method's own labels.
    let metrics = Command::new("curl")
        .args(["-sS"])
        .arg(format!(
            "http://{}/metrics",
            server.metrics_addr.as_ref().unwrap()
        ))
        .output()
        .unwrap();
    let metrics = String::from_utf8(metrics.stdout).unwrap();
    let series = r#"grpc_server_handled_total{grpc_service="expansion.health.v1.AccountHealthService",grpc_method="UpsertAccount",grpc_code="PermissionDenied"} 2"#;
    assert!(metrics.contains(series), "{series} not in\n{metrics}");

    // gRPC-Web, as a browser sends it, over HTTP/1.1.
    let framed = [0u8, 0, 0, 0, 0];
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http1.1",
            "-X",
            "POST",
            "-H",
            "content-type: application/grpc-web+proto",
        ])
        .args(["-H", "x-grpc-web: 1", "--data-binary", "@-"])
        .arg(format!(
            "http://{}/grpc.health.v1.Health/Check",
            server.addr
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&framed)?;
            child.wait_with_output()
        })
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("grpc-status:0"), "gRPC-Web answer: {body:?}");
    server.stop();
}

/// Whether `program` runs; under CI=true it must.
fn tool(program: &str, args: &[&str], install: &str) -> bool {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => true,
        _ if in_ci() => panic!("{program} {args:?} is required under CI=true ({install})"),
        _ => {
            eprintln!("\n!!!!! SKIPPING an HTTP test: `{program} {args:?}` fails ({install})\n");
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid_openapi_3() {
    if !tool(
        "python3",
        &["-c", "import openapi_spec_validator"],
        "pip install openapi-spec-validator",
    ) {
        return;
    }
    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = secured(&backend, dir.path(), &[]);
    let document = dir.path().join("openapi.json");
    std::fs::write(&document, get(&server, "/openapi.json")).unwrap();
    server.stop();
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&document)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&document).unwrap()).unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    // Timestamps in the JSON mapping's form.
    assert!(doc.to_string().contains(r#""format":"date-time""#));
}

fn connect_client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/integration/connect_client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_client_on_node_calls_the_server() {
    let client = connect_client_dir();
    let install = "npm ci --prefix tests/integration/connect_client";
    if !tool("node", &["--version"], "apt-get install nodejs")
        || !tool(
            "node",
            &[
                "-e",
                &format!(
                    "require.resolve('@connectrpc/connect-node', {{paths: [{:?}]}})",
                    client.display().to_string()
                ),
            ],
            install,
        )
    {
        return;
    }
    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = secured(&backend, dir.path(), &[]);
    // The client loads its descriptors at run time, from the set the
    // server is built from.
    let descriptors = dir.path().join("expansion.binpb");
    std::fs::write(&descriptors, contracts::FILE_DESCRIPTOR_SET).unwrap();
    let out = Command::new("node")
        .arg(client.join("client.mjs"))
        .arg(&descriptors)
        .arg(server.url())
        .arg(&admin)
        .current_dir(&client)
        .output()
        .unwrap();
    server.stop();
    assert!(
        out.status.success(),
        "the Connect client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    for transport in [
        "connect-json-http1.1",
        "connect-json-http2",
        "connect-binary-http1.1",
        "grpc-web-http1.1",
    ] {
        let result = &results[transport];
        assert_eq!(result["created"], true, "{transport}: {result}");
        assert_eq!(result["name"], format!("Acme {transport}"));
        assert_eq!(result["error"], "InvalidArgument", "{transport}: {result}");
        assert_eq!(result["fields"], json!(["name"]), "{transport}: {result}");
    }
}

/// `curl` with `args`, answering the response head, lower-cased.
fn head(server: &Server, args: &[&str], path: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-D", "-"])
        .args(args)
        .arg(format!("http://{}{path}", server.addr))
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl: {out:?}");
    String::from_utf8(out.stdout).unwrap().to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_on_the_allowed_origins_only_get_cors() {
    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = secured(
        &backend,
        dir.path(),
        &["--cors-origins", "https://crm.example.com"],
    );
    let path = health("GetAccount");
    let preflight = |origin: &str| {
        head(
            &server,
            &[
                "-X",
                "OPTIONS",
                "-H",
                &format!("origin: {origin}"),
                "-H",
                "access-control-request-method: POST",
                "-H",
                "access-control-request-headers: authorization, content-type, x-grpc-web",
            ],
            &path,
        )
    };
    let allowed = preflight("https://crm.example.com");
    assert!(
        allowed.contains("access-control-allow-origin: https://crm.example.com"),
        "{allowed}"
    );
    assert!(allowed.contains("authorization"), "{allowed}");
    let other = preflight("https://evil.example.net");
    assert!(!other.contains("access-control-allow-origin"), "{other}");
    // The call itself carries the header a page needs to read the answer.
    let auth = format!("authorization: Bearer {admin}");
    let call = head(
        &server,
        &[
            "-X",
            "POST",
            "-H",
            "origin: https://crm.example.com",
            "-H",
            &auth,
            "-H",
            "content-type: application/json",
            "--data-binary",
            r#"{"externalRef": {"system": "salesforce", "id": "none"}}"#,
        ],
        &path,
    );
    assert!(call.contains("http/1.1 404"), "{call}");
    assert!(
        call.contains("access-control-allow-origin: https://crm.example.com"),
        "{call}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_is_served_over_tls_on_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key, ca)) = crate::auth::certificates(dir.path()) else {
        return;
    };
    let path = |p: &Path| p.display().to_string();
    let backend = Backend::sqlite();
    let (server, admin) = secured(
        &backend,
        dir.path(),
        &[
            "--tls-cert",
            &path(&cert),
            "--tls-key",
            &path(&key),
            "--tls-ca",
            &path(&ca),
        ],
    );
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    for version in ["--http1.1", "--http2"] {
        let out = Command::new("curl")
            .args(["-sS", version, "--cacert", &path(&ca), "-X", "POST"])
            .args(["-H", "content-type: application/json"])
            .args(["-H", &format!("authorization: Bearer {admin}")])
            .args(["-w", "\n%{http_version}", "--data-binary", "{}"])
            .arg(format!(
                "https://localhost:{port}/expansion.health.v1.AccountHealthService/ListAccounts"
            ))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{version}: {out:?}");
        let (body, served) = text.rsplit_once('\n').unwrap();
        assert_eq!(served, version.trim_start_matches("--http"), "{text}");
        assert!(
            body.starts_with('{') && !body.contains("\"code\""),
            "{text}"
        );
    }
    server.stop();
}

/// A `request_id` means the same over HTTP/JSON as over gRPC: a call sent
/// over gRPC and retried with curl gets the first answer back (a second run
/// would say `changed: false`), the same id with another request is
/// INVALID_ARGUMENT, and another caller's same id is another request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_over_http_json_is_the_grpc_call_answered_again() {
    use contracts::client::{ClientOptions, connect};
    use contracts::pb::credit::v1 as credit;
    use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;

    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let other = create_key(&dir.path().join("keys.json"), "http-admin-2", "admin");
    let (server, admin) = secured(&backend, dir.path(), &[]);
    let options = ClientOptions::default().with_api_key(Some(admin.clone()));
    let mut client =
        CompensationCreditServiceClient::new(connect(&server.addr, &options).await.unwrap());
    let first = client
        .upsert_person(credit::UpsertPersonRequest {
            request_id: "person-retry-1".into(),
            person: Some(credit::Person {
                person_id: "ana.ae".into(),
                display_name: "Ana".into(),
                role: credit::PersonRole::Ae as i32,
                team: "enterprise-sales".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(first.changed);
    let path = "/expansion.credit.v1.CompensationCreditService/UpsertPerson";
    let body = |name: &str| {
        json!({
            "requestId": "person-retry-1",
            "person": {"personId": "ana.ae", "displayName": name, "role": "PERSON_ROLE_AE", "team": "enterprise-sales"}
        })
        .to_string()
    };
    let retry = post(&server, path, &body("Ana"), &bearer(&admin), false);
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(
        retry.json["changed"],
        json!(true),
        "the first answer, not a second run: {retry:?}"
    );
    assert_eq!(
        retry.json["person"]["version"],
        json!(first.person.unwrap().version)
    );
    let reused = post(&server, path, &body("Ana B."), &bearer(&admin), false);
    assert_eq!(reused.status, 400, "{reused:?}");
    assert_eq!(reused.json["code"], json!("invalid_argument"));
    // Another caller's request_id is its own: this one runs (and changes nothing).
    let theirs = post(&server, path, &body("Ana"), &bearer(&other), false);
    assert_eq!(theirs.status, 200, "{theirs:?}");
    assert_eq!(
        theirs.json.get("changed"),
        None,
        "changed: false, omitted in JSON: {theirs:?}"
    );
}
