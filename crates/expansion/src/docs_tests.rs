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
