//! README.md's configuration reference lists every flag of every subcommand
//! and the environment variable that sets it, and names no flag that is
//! gone: read from the command line itself (clap's introspection).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use clap::CommandFactory;

use crate::cli::Cli;

const README: &str = include_str!("../../../README.md");

/// The README's "## Configuration" section.
fn configuration() -> &'static str {
    let start = README
        .find("\n## Configuration")
        .expect("a Configuration section");
    let rest = &README[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// `(subcommand path, --flag, env)` of every argument clap knows.
fn every_flag() -> Vec<(String, String, Option<String>)> {
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String, Option<String>)>) {
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            out.push((path.to_owned(), format!("--{long}"), env));
        }
        for sub in cmd.get_subcommands() {
            walk(sub, format!("{path} {}", sub.get_name()).trim(), out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), "", &mut out);
    out
}

#[test]
fn the_readme_lists_every_flag_and_its_variable() {
    let docs = configuration();
    let flags = every_flag();
    assert!(flags.len() > 20, "{flags:?}");
    for (path, flag, env) in &flags {
        assert!(
            docs.contains(&format!("`{flag}`")),
            "README's Configuration lacks `{flag}` (expansion {path})"
        );
        if let Some(env) = env {
            assert!(
                docs.contains(&format!("`{env}`")),
                "README's Configuration lacks `{env}` (the variable of {flag}, expansion {path})"
            );
        }
        if !path.is_empty() {
            assert!(
                docs.contains(&format!("`expansion {path}`")),
                "README's Configuration never names `expansion {path}`"
            );
        }
    }
}

#[test]
fn the_readme_names_no_flag_the_binary_lacks() {
    let known: BTreeSet<String> = every_flag().into_iter().map(|(_, f, _)| f).collect();
    for line in configuration().lines().filter(|l| l.starts_with("| `--")) {
        let flag = line[3..].split('`').next().unwrap();
        assert!(
            known.contains(flag),
            "README documents {flag}, which no subcommand has"
        );
    }
}

/// Every `"<service>.<resource>.<change>"` string literal in the service
/// crates' sources: the event types the code can emit.
fn emitted_event_types() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for literal in text.split('"').skip(1).step_by(2) {
                    let parts: Vec<&str> = literal.split('.').collect();
                    let event_like = parts.len() == 3
                        && ["health", "pipeline", "credit"].contains(&parts[0])
                        && parts[1..].iter().all(|p| {
                            !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        });
                    if event_like {
                        out.insert(literal.to_owned());
                    }
                }
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = BTreeSet::new();
    for krate in [
        "account-health",
        "opportunity-pipeline",
        "compensation-credit",
    ] {
        walk(&root.join(krate).join("src"), &mut out);
    }
    out
}

#[test]
fn the_event_catalog_lists_exactly_the_kinds_the_code_emits() {
    let emitted = emitted_event_types();
    assert!(emitted.len() > 30, "{emitted:?}");
    let catalogued: BTreeSet<String> = contracts::catalog::EVENTS
        .iter()
        .map(|k| k.event_type.to_owned())
        .collect();
    let missing: Vec<_> = emitted.difference(&catalogued).collect();
    assert!(
        missing.is_empty(),
        "emitted but not in contracts::catalog: {missing:?}"
    );
    let stale: Vec<_> = catalogued.difference(&emitted).collect();
    assert!(
        stale.is_empty(),
        "in contracts::catalog but never emitted: {stale:?}"
    );
}

/// The Rust files under `dir`, with their text.
fn sources(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path, text));
        }
    }
    out
}

fn crates_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// ARCHITECTURE.md: the credit service's `store/` holds queries and
/// transactions only; refusals and their field paths are the model's.
#[test]
fn the_credit_store_builds_no_api_errors() {
    let store = crates_dir().join("compensation-credit/src/store");
    for (path, text) in sources(&store) {
        for needle in ["ApiError", "contracts::error", "field_path"] {
            assert!(
                !text.contains(needle),
                "{} names {needle}: a store returns rows or a typed error",
                path.display()
            );
        }
    }
}

/// ARCHITECTURE.md: stores keep queries and transactions; the field paths
/// of a refusal are built by the model, in every service.
#[test]
fn no_store_builds_a_field_violation() {
    let stores = [
        crates_dir().join("account-health/src/store"),
        crates_dir().join("opportunity-pipeline/src/store.rs"),
        crates_dir().join("compensation-credit/src/store"),
    ];
    for store in stores {
        let files = if store.is_dir() {
            sources(&store)
        } else {
            vec![(store.clone(), std::fs::read_to_string(&store).unwrap())]
        };
        assert!(!files.is_empty(), "{} holds no source", store.display());
        for (path, text) in files {
            for needle in ["ApiError::invalid", "FieldViolation"] {
                assert!(
                    !text.contains(needle),
                    "{} names {needle}: field paths are the model's",
                    path.display()
                );
            }
        }
    }
}

/// ARCHITECTURE.md: the seven webhook RPCs are written once
/// (`webhooks::rpc`); each service's trait impl adds them with
/// `webhook_rpcs!`, which makes each method one call into its function.
#[test]
fn every_webhook_rpc_is_one_call_into_webhooks_rpc() {
    let methods = [
        ("create_webhook_endpoint", "create"),
        ("list_webhook_endpoints", "list"),
        ("disable_webhook_endpoint", "disable"),
        ("enable_webhook_endpoint", "enable"),
        ("delete_webhook_endpoint", "delete"),
        ("list_webhook_deliveries", "deliveries"),
        ("replay_webhook_events", "replay"),
    ];
    let rpc = std::fs::read_to_string(crates_dir().join("webhooks/src/rpc.rs")).unwrap();
    for (method, call) in methods {
        assert!(
            rpc.contains(&format!("@rpc $hooks, $domain, {method}, {call},")),
            "webhook_rpcs! does not answer {method} with webhooks::rpc::{call}"
        );
    }
    for krate in [
        "account-health",
        "opportunity-pipeline",
        "compensation-credit",
    ] {
        let api = std::fs::read_to_string(crates_dir().join(krate).join("src/api.rs")).unwrap();
        assert!(
            api.contains("webhooks::rpc::webhook_rpcs!(webhooks, crate::DOMAIN);"),
            "{krate}'s api.rs does not add the webhook RPCs with webhook_rpcs!"
        );
        for (method, _) in methods {
            assert!(
                !api.contains(&format!("async fn {method}(")),
                "{krate} writes {method} by hand instead of through webhook_rpcs!"
            );
        }
    }
}
