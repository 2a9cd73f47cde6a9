//! The deployment files say what the binary understands: every `expansion`
//! command in deploy/docker-compose.yml and deploy/k8s/*.yaml parses with
//! the real command line, every `EXPANSION_*` variable they set is one the
//! subcommand reads, and the addresses wire up (the pipeline's health and
//! credit addresses reach a server of that service on the port it listens
//! on; probes and metrics annotations name the right ports and services).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use clap::{CommandFactory, Parser};
use serde_yaml::Value;

use crate::cli::Cli;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");

/// Read by the log filter, not by clap.
const READ_OUTSIDE_CLAP: [&str; 1] = ["EXPANSION_LOG"];

/// What the image sets (deploy/Dockerfile `ENV`) under every command.
fn image_env() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(format!("{DEPLOY}/Dockerfile")).unwrap();
    let mut env = BTreeMap::new();
    let mut in_env = false;
    for line in text.lines() {
        let line = line.trim();
        let rest = match line.strip_prefix("ENV ") {
            Some(rest) => rest,
            None if in_env => line,
            None => continue,
        };
        in_env = rest.ends_with('\\');
        for pair in rest.trim_end_matches('\\').split_whitespace() {
            let (k, v) = pair.split_once('=').expect("ENV KEY=value");
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    env
}

/// One process that runs the `expansion` image: its arguments (after the
/// entrypoint) and its environment, wherever it was declared.
#[derive(Debug)]
struct Process {
    origin: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

impl Process {
    fn subcommand(&self) -> &str {
        &self.args[0]
    }

    fn service(&self) -> Option<&str> {
        let i = self.args.iter().position(|a| a == "--service")?;
        Some(self.args[i + 1].as_str())
    }

    /// The port a setting's address names (`0.0.0.0:50051`, `http://h:1`).
    fn port(&self, var: &str) -> Option<u16> {
        let value = self.env.get(var)?;
        Some(host_port(value).1)
    }
}

fn host_port(address: &str) -> (String, u16) {
    let rest = address
        .split_once("://")
        .map_or(address, |(_, rest)| rest)
        .trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.parse().expect("a port"))
}

fn str_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_sequence)
        .map(|s| s.iter().map(str_of).collect())
        .unwrap_or_default()
}

fn compose() -> Value {
    let text = std::fs::read_to_string(format!("{DEPLOY}/docker-compose.yml")).unwrap();
    // The Compose specification's own model refuses what it doesn't know.
    compose_spec::Compose::options()
        .apply_merge(true)
        .from_yaml_str(&text)
        .expect("docker-compose.yml follows the Compose specification");
    let mut value: Value = serde_yaml::from_str(&text).unwrap();
    value.apply_merge().unwrap();
    value
}

fn compose_processes(compose: &Value) -> BTreeMap<String, Process> {
    let mut out = BTreeMap::new();
    for (name, service) in compose["services"].as_mapping().unwrap() {
        let image = service.get("image").map(str_of).unwrap_or_default();
        if !image.starts_with("expansion:") {
            continue;
        }
        let mut env = image_env();
        if let Some(map) = service.get("environment").and_then(Value::as_mapping) {
            for (k, v) in map {
                env.insert(str_of(k), str_of(v));
            }
        }
        let name = str_of(name);
        out.insert(
            name.clone(),
            Process {
                origin: format!("docker-compose.yml: {name}"),
                args: strings(service.get("command")),
                env,
            },
        );
    }
    out
}

/// Every document of every deploy/k8s/*.yaml.
fn k8s_documents() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(format!("{DEPLOY}/k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no deploy/k8s/*.yaml");
    let mut docs = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let mut value = Value::deserialize(doc).unwrap();
            value.apply_merge().unwrap();
            if !value.is_null() {
                docs.push((file.clone(), value));
            }
        }
    }
    docs
}

use serde::Deserialize as _;

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap()
}

/// The `expansion` containers of every Deployment and Job, with the pod
/// template they sit in.
fn k8s_processes(docs: &[(String, Value)]) -> Vec<(Process, Value, Value)> {
    let config_maps: BTreeMap<&str, &Value> = docs
        .iter()
        .filter(|(_, d)| kind(d) == "ConfigMap")
        .map(|(_, d)| (name(d), &d["data"]))
        .collect();
    let mut out = Vec::new();
    for (file, doc) in docs {
        if !matches!(kind(doc), "Deployment" | "Job") {
            continue;
        }
        let template = &doc["spec"]["template"];
        for container in template["spec"]["containers"].as_sequence().unwrap() {
            if !str_of(&container["image"]).starts_with("expansion:") {
                continue;
            }
            let mut env = image_env();
            for from in container
                .get("envFrom")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let map = from["configMapRef"]["name"].as_str().unwrap();
                let data = config_maps
                    .get(map)
                    .unwrap_or_else(|| panic!("{file}: no ConfigMap {map}"));
                for (k, v) in data.as_mapping().unwrap() {
                    env.insert(str_of(k), str_of(v));
                }
            }
            for var in container
                .get("env")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let value = var.get("value").map(str_of).unwrap_or_default();
                env.insert(str_of(&var["name"]), value);
            }
            let process = Process {
                origin: format!("k8s/{file}: {} {}", name(doc), str_of(&container["name"])),
                args: strings(container.get("args")),
                env,
            };
            out.push((process, container.clone(), template.clone()));
        }
    }
    out
}

/// The environment variables a subcommand reads (its own and global flags).
fn env_of(subcommand: &str) -> BTreeSet<String> {
    let root = Cli::command();
    let sub = root
        .find_subcommand(subcommand)
        .unwrap_or_else(|| panic!("no subcommand {subcommand}"));
    root.get_arguments()
        .chain(sub.get_arguments())
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

fn every_env() -> BTreeSet<String> {
    let root = Cli::command();
    let mut all: BTreeSet<String> = root
        .get_subcommands()
        .flat_map(|s| env_of(s.get_name()))
        .collect();
    all.extend(env_of("serve"));
    all
}

/// The process parses as the real command line, and every `EXPANSION_*`
/// variable it is given is one its subcommand reads.
fn check_process(process: &Process) {
    let origin = &process.origin;
    assert!(!process.args.is_empty(), "{origin}: no command");
    let argv = std::iter::once("expansion".to_owned()).chain(process.args.iter().cloned());
    if let Err(err) = Cli::try_parse_from(argv) {
        panic!(
            "{origin}: `expansion {}` does not parse:\n{err}",
            process.args.join(" ")
        );
    }
    let known = env_of(process.subcommand());
    for var in process.env.keys().filter(|v| v.starts_with("EXPANSION_")) {
        // The image's own ENV applies to every command; only what the
        // manifest sets for this process must be for its subcommand.
        let from_image = image_env().contains_key(var);
        let ok = known.contains(var)
            || READ_OUTSIDE_CLAP.contains(&var.as_str())
            || (from_image && every_env().contains(var));
        assert!(
            ok,
            "{origin}: {var} is not read by `expansion {}`",
            process.subcommand()
        );
    }
}

#[test]
fn the_image_sets_only_what_serve_reads() {
    let env = image_env();
    assert!(env.contains_key("EXPANSION_LISTEN"), "{env:?}");
    let serve = env_of("serve");
    for var in env.keys() {
        assert!(
            serve.contains(var),
            "Dockerfile ENV {var} is not a serve setting"
        );
    }
}

#[test]
fn compose_commands_and_addresses_match_the_binary() {
    let compose = compose();
    let processes = compose_processes(&compose);
    for process in processes.values() {
        check_process(process);
    }
    let servers: BTreeMap<&str, &str> = processes
        .iter()
        .filter(|(_, p)| p.subcommand() == "serve")
        .map(|(name, p)| (p.service().expect("serve --service"), name.as_str()))
        .collect();
    assert_eq!(
        servers.keys().copied().collect::<Vec<_>>(),
        ["credit", "health", "pipeline"],
        "one container per service"
    );
    let migrations: BTreeSet<&str> = processes
        .values()
        .filter(|p| p.subcommand() == "migrate")
        .filter_map(Process::service)
        .collect();
    assert_eq!(migrations.len(), 3, "a migration per service");

    // Each server migrates and serves its own database.
    for process in processes.values() {
        let url = &process.env["EXPANSION_DATABASE_URL"];
        let service = process.service().unwrap();
        assert!(
            url.ends_with(&format!("/expansion_{service}")),
            "{}: {url}",
            process.origin
        );
    }

    let wiring = [
        ("pipeline", "EXPANSION_HEALTH_ADDR", "health"),
        ("pipeline", "EXPANSION_CREDIT_ADDR", "credit"),
        ("health", "EXPANSION_CREDIT_ADDR", "credit"),
    ];
    for (from, var, to) in wiring {
        let process = &processes[servers[from]];
        let address = process
            .env
            .get(var)
            .unwrap_or_else(|| panic!("{}: no {var}", process.origin));
        let (host, port) = host_port(address);
        assert_eq!(host, servers[to], "{}: {var}={address}", process.origin);
        let target = &processes[servers[to]];
        assert_eq!(
            Some(port),
            target.port("EXPANSION_LISTEN"),
            "{}: {var}={address}, but {} listens elsewhere",
            process.origin,
            target.origin
        );
    }
    for name in servers.values() {
        let process = &processes[*name];
        let listen = process.env["EXPANSION_LISTEN"].as_str();
        assert!(
            listen.starts_with("0.0.0.0:"),
            "{}: reachable from the other containers",
            process.origin
        );
        assert!(process.env.contains_key("EXPANSION_METRICS_LISTEN"));
    }
}

#[test]
fn kubernetes_commands_probes_and_addresses_match_the_binary() {
    use account_health::{AccountHealthServiceServer, HealthService};
    use compensation_credit::{CompensationCreditServiceServer, CreditService};
    use opportunity_pipeline::{OpportunityPipelineServiceServer, PipelineService};
    use tonic::server::NamedService;

    let grpc_name = |service: &str| match service {
        "health" => <AccountHealthServiceServer<HealthService> as NamedService>::NAME,
        "pipeline" => <OpportunityPipelineServiceServer<PipelineService> as NamedService>::NAME,
        "credit" => <CompensationCreditServiceServer<CreditService> as NamedService>::NAME,
        other => panic!("no service {other}"),
    };
    let docs = k8s_documents();
    let processes = k8s_processes(&docs);
    for (process, _, _) in &processes {
        check_process(process);
    }
    let migrated: BTreeSet<&str> = processes
        .iter()
        .filter(|(p, _, _)| p.subcommand() == "migrate")
        .filter_map(|(p, _, _)| p.service())
        .collect();
    assert_eq!(migrated, BTreeSet::from(["credit", "health", "pipeline"]));

    // service name -> (its pod labels, its container)
    let mut servers = BTreeMap::new();
    for (process, container, template) in &processes {
        if process.subcommand() != "serve" {
            continue;
        }
        let service = process.service().expect("serve --service").to_owned();
        let origin = &process.origin;
        let listen = process.port("EXPANSION_LISTEN").expect("EXPANSION_LISTEN");
        let metrics = process
            .port("EXPANSION_METRICS_LISTEN")
            .expect("EXPANSION_METRICS_LISTEN");
        let ports: BTreeMap<String, u16> = container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| {
                let port = u16::try_from(p["containerPort"].as_u64().unwrap()).unwrap();
                (str_of(&p["name"]), port)
            })
            .collect();
        assert_eq!(ports.get("grpc"), Some(&listen), "{origin}: grpc port");
        assert_eq!(
            ports.get("metrics"),
            Some(&metrics),
            "{origin}: metrics port"
        );
        let annotations = &template["metadata"]["annotations"];
        assert_eq!(
            annotations["prometheus.io/port"].as_str(),
            Some(metrics.to_string().as_str()),
            "{origin}: scrape port"
        );
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let grpc = &container[probe]["grpc"];
            assert_eq!(
                grpc["port"].as_u64(),
                Some(u64::from(listen)),
                "{origin}: {probe} port"
            );
        }
        assert_eq!(
            container["readinessProbe"]["grpc"]["service"].as_str(),
            Some(grpc_name(&service)),
            "{origin}: readiness asks grpc.health.v1 about the service served"
        );
        let labels = template["metadata"]["labels"].clone();
        servers.insert(service, (labels, container.clone(), process.env.clone()));
    }
    assert_eq!(servers.len(), 3, "a Deployment per service");

    // Where an address points: a Service whose selector picks the pods of
    // the named service, on a port that reaches their gRPC port.
    let reaches = |address: &str, service: &str| {
        let (host, port) = host_port(address);
        let (labels, container, _) = &servers[service];
        let svc = docs
            .iter()
            .map(|(_, d)| d)
            .find(|d| kind(d) == "Service" && name(d) == host)
            .unwrap_or_else(|| panic!("{address}: no Service {host}"));
        let selector = svc["spec"]["selector"].as_mapping().unwrap();
        assert!(
            selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
            "{address}: Service {host} does not select the {service} pods"
        );
        let svc_port = svc["spec"]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["port"].as_u64() == Some(u64::from(port)))
            .unwrap_or_else(|| panic!("{address}: Service {host} has no port {port}"));
        let target = str_of(&svc_port["targetPort"]);
        let container_port = container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| str_of(&p["name"]) == target || str_of(&p["containerPort"]) == target)
            .unwrap_or_else(|| panic!("{address}: targetPort {target} is no container port"));
        assert_eq!(str_of(&container_port["name"]), "grpc", "{address}");
    };
    let wiring = [
        ("pipeline", "EXPANSION_HEALTH_ADDR", "health"),
        ("pipeline", "EXPANSION_CREDIT_ADDR", "credit"),
        ("health", "EXPANSION_CREDIT_ADDR", "credit"),
    ];
    for (from, var, to) in wiring {
        let (_, _, env) = &servers[from];
        let address = env
            .get(var)
            .unwrap_or_else(|| panic!("the {from} Deployment has no {var}"));
        reaches(address, to);
    }

    // Each HorizontalPodAutoscaler scales a Deployment that exists.
    let deployments: BTreeSet<&str> = docs
        .iter()
        .filter(|(_, d)| kind(d) == "Deployment")
        .map(|(_, d)| name(d))
        .collect();
    let scaled: BTreeSet<&str> = docs
        .iter()
        .filter(|(_, d)| kind(d) == "HorizontalPodAutoscaler")
        .map(|(_, d)| d["spec"]["scaleTargetRef"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(scaled, deployments);
}

#[test]
fn kubernetes_database_urls_reach_the_postgres_statefulset() {
    let docs = k8s_documents();
    let secrets: Vec<&Value> = docs
        .iter()
        .filter(|(_, d)| kind(d) == "Secret" && name(d) == "expansion")
        .map(|(_, d)| &d["stringData"])
        .collect();
    assert_eq!(secrets.len(), 1, "one `expansion` Secret");
    let statefulset = docs
        .iter()
        .map(|(_, d)| d)
        .find(|d| kind(d) == "StatefulSet" && name(d) == "postgres")
        .expect("a PostgreSQL StatefulSet");
    assert_eq!(
        statefulset["spec"]["volumeClaimTemplates"][0]["kind"].as_str(),
        Some("PersistentVolumeClaim"),
        "its data on a PersistentVolumeClaim"
    );
    let labels = &statefulset["spec"]["template"]["metadata"]["labels"];
    let container = &statefulset["spec"]["template"]["spec"]["containers"][0];
    for service in ["health", "pipeline", "credit"] {
        let url = str_of(&secrets[0][format!("{service}-database-url").as_str()]);
        let rest = url.strip_prefix("postgres://").expect("a postgres:// URL");
        let (authority, database) = rest.split_once('/').expect("a database");
        assert_eq!(database, format!("expansion_{service}"), "{url}");
        let (host, port) = host_port(authority.rsplit('@').next().unwrap());
        let svc = docs
            .iter()
            .map(|(_, d)| d)
            .find(|d| kind(d) == "Service" && name(d) == host)
            .unwrap_or_else(|| panic!("{url}: no Service {host}"));
        for (k, v) in svc["spec"]["selector"].as_mapping().unwrap() {
            assert_eq!(
                &labels[k], v,
                "{url}: Service {host} does not select PostgreSQL"
            );
        }
        let svc_port = svc["spec"]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["port"].as_u64() == Some(u64::from(port)))
            .unwrap_or_else(|| panic!("{url}: Service {host} has no port {port}"));
        let target = str_of(&svc_port["targetPort"]);
        assert!(
            container["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|p| str_of(&p["name"]) == target && p["containerPort"].as_u64() == Some(5432)),
            "{url}: targetPort {target} is not PostgreSQL's"
        );
    }
}

/// The README's one-container recipe: `docker run … expansion:TAG ARGS…`,
/// continuation lines joined.
fn readme_docker_runs() -> Vec<Vec<String>> {
    let readme = include_str!("../../../README.md");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in readme.lines() {
        let line = line.trim();
        if current.is_empty() && !line.contains("docker run ") {
            continue;
        }
        current.push_str(line.trim_end_matches('\\'));
        current.push(' ');
        if !line.ends_with('\\') {
            let start = current.find("docker run ").unwrap();
            let words = current[start..]
                .trim_end_matches([')', ' '])
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_owned())
                .collect();
            out.push(words);
            current.clear();
        }
    }
    out
}

#[test]
fn the_one_container_demo_recipe_runs_as_written() {
    let runs = readme_docker_runs();
    assert_eq!(runs.len(), 2, "keys create, then serve --demo: {runs:?}");
    let mut keys_in_container = None;
    for words in &runs {
        let image = words
            .iter()
            .position(|w| w.starts_with("expansion:"))
            .expect("docker run expansion:TAG");
        let args: Vec<&str> = std::iter::once("expansion")
            .chain(words[image + 1..].iter().map(String::as_str))
            .collect();
        let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let mounts: Vec<&str> = words
            .windows(2)
            .filter(|w| w[0] == "-v")
            .map(|w| w[1].split(':').nth(1).unwrap())
            .collect();
        match cli.command {
            crate::cli::Command::Keys(crate::auth::command::KeysCommand::Create(create)) => {
                let file = create.file.keys_file.unwrap();
                assert!(mounts.iter().any(|m| file.starts_with(m)), "{words:?}");
                assert_eq!(
                    create.file_mode,
                    Some(0o644),
                    "readable by the server's uid"
                );
                keys_in_container = Some(file);
            }
            crate::cli::Command::Serve(serve) => {
                assert!(serve.demo, "{words:?}");
                let env: BTreeMap<&str, &str> = words
                    .windows(2)
                    .filter(|w| w[0] == "-e")
                    .filter_map(|w| w[1].split_once('='))
                    .collect();
                let file = std::path::PathBuf::from(env["EXPANSION_KEYS_FILE"]);
                assert_eq!(
                    Some(&file),
                    keys_in_container.as_ref(),
                    "the keys just made"
                );
                assert!(mounts.iter().any(|m| file.starts_with(m)), "{words:?}");
                assert!(
                    words.iter().any(|w| w.ends_with(":50051:50051")),
                    "the gRPC port published: {words:?}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_misspelt_flag_or_variable_is_caught() {
    let bad_flag = Process {
        origin: "test".into(),
        args: vec!["serve".into(), "--servic".into(), "health".into()],
        env: BTreeMap::new(),
    };
    assert!(std::panic::catch_unwind(|| check_process(&bad_flag)).is_err());
    let bad_env = Process {
        origin: "test".into(),
        args: vec!["migrate".into(), "--service".into(), "health".into()],
        env: BTreeMap::from([("EXPANSION_HEALTH_ADDR".into(), "http://h:1".into())]),
    };
    assert!(std::panic::catch_unwind(|| check_process(&bad_env)).is_err());
}
