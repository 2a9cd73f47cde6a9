//! Flag combinations `serve` cannot work with are refused before it binds
//! its port or opens a database, each with a message that says what to do.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{binary, create_key};

/// Runs `expansion serve` with `args` and `env`, which must refuse to start
/// within a few seconds; returns its stderr.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let started = Instant::now();
    let mut child = Command::new(binary())
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .env("EXPANSION_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("`serve {args:?}` started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "`serve {args:?}` exited 0: {stderr}");
    stderr
}

#[test]
fn demo_without_all_three_services_is_refused_before_binding_or_migrating() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Holding the port: a server that tried to bind first would say so.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = held.local_addr().unwrap().to_string();
    for service in ["health", "pipeline", "credit"] {
        let stderr = refused(
            &[
                "--service",
                service,
                "--demo",
                "--listen",
                &listen,
                "--data-dir",
                data.to_str().unwrap(),
            ],
            &[],
        );
        assert!(
            stderr.contains("--demo loads the sample data into all three services"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("serves only {service}")),
            "{stderr}"
        );
        assert!(
            !stderr.contains("binding"),
            "it tried to bind first: {stderr}"
        );
        // Nothing migrated: no database file was created.
        assert!(
            !data.join(format!("{service}.db")).exists(),
            "{service} was migrated"
        );
    }
}

#[test]
fn an_empty_peer_key_is_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    create_key(&keys, "ops", "admin");
    let data = dir.path().join("data");
    // As the Compose file sets it when the variable is not exported.
    let stderr = refused(
        &[
            "--service",
            "pipeline",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--health-addr",
            "http://127.0.0.1:1",
        ],
        &[
            ("EXPANSION_KEYS_FILE", keys.to_str().unwrap()),
            ("EXPANSION_PEER_API_KEY", ""),
        ],
    );
    assert!(stderr.contains("--peer-api-key"), "{stderr}");
    assert!(stderr.contains("set, but empty"), "{stderr}");
    assert!(!data.join("pipeline.db").exists(), "pipeline was migrated");
}
