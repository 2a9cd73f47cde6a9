//! `expansion import` as a user runs it: the real binary serving, then
//! `expansion import` as a separate process on CSV files with a CRM's
//! headers; what landed is read back over gRPC.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Duration, Utc};
use contracts::pb::common::v1::{HealthBand, Segment};
use contracts::pb::health::v1 as pb;
use tonic::Code;

use crate::harness::{Backend, Server, binary};
use crate::on_both_databases;

on_both_databases!(
    the_sample_export_lands_and_a_rerun_changes_nothing,
    bad_rows_are_reported_and_good_rows_land,
    people_land_in_the_directory_managers_first_or_not,
);

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/import");

fn example(name: &str) -> PathBuf {
    Path::new(EXAMPLES).join(name)
}

/// Runs `expansion import` against `server`.
pub(crate) fn import(server: &Server, kind: &str, file: &Path, extra: &[&str]) -> Output {
    Command::new(binary())
        .arg("import")
        .args(["--kind", kind])
        .arg(file)
        .args(["--target", &server.addr])
        .args(extra)
        .env("EXPANSION_LOG", "warn")
        .output()
        .expect("run expansion import")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The summary line's counts: read, new, updated, unchanged, rejected.
pub(crate) fn counts(output: &Output) -> [u64; 5] {
    let text = stdout(output);
    let line = text
        .lines()
        .find(|l| l.contains(" rows read: "))
        .unwrap_or_else(|| panic!("no summary in {text:?}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    let n = numbers.len();
    assert!(n >= 5, "{line}");
    [
        numbers[n - 5],
        numbers[n - 4],
        numbers[n - 3],
        numbers[n - 2],
        numbers[n - 1],
    ]
}

fn assert_rejected(output: &Output, lines: &[&str]) {
    let text = stdout(output);
    assert_eq!(output.status.code(), Some(65), "{text}");
    for line in lines {
        assert!(text.contains(line), "expected {line:?} in:\n{text}");
    }
}

async fn account_by_crm_id(
    c: &mut pb::account_health_service_client::AccountHealthServiceClient<
        tonic::transport::Channel,
    >,
    id: &str,
) -> Result<pb::Account, tonic::Status> {
    c.get_account(pb::GetAccountRequest {
        account_id: String::new(),
        external_ref: Some(pb::ExternalRef {
            system: "salesforce".into(),
            id: id.into(),
        }),
    })
    .await
    .map(|r| r.into_inner().account.unwrap())
}

async fn subscriptions_of(
    c: &mut pb::account_health_service_client::AccountHealthServiceClient<
        tonic::transport::Channel,
    >,
    account_id: &str,
) -> Vec<pb::Subscription> {
    c.list_subscriptions(pb::ListSubscriptionsRequest {
        account_id: account_id.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .subscriptions
}

/// The README's sample run: examples/import with its Salesforce mapping.
async fn the_sample_export_lands_and_a_rerun_changes_nothing(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mapping = example("mapping.toml");
    let mapping = mapping.to_str().unwrap();
    let run = |kind: &str| {
        import(
            &server,
            kind,
            &example(&format!("{kind}.csv")),
            &["--mapping", mapping],
        )
    };

    let products = run("products");
    assert!(products.status.success(), "{}", stdout(&products));
    assert_eq!(counts(&products), [3, 3, 0, 0, 0]);

    let accounts = run("accounts");
    assert_eq!(counts(&accounts), [5, 3, 0, 0, 2]);
    assert_rejected(
        &accounts,
        &[
            "row 6, column \"Segment\" (segment): \"Large Enterprise\" is not a segment",
            "row 7, column \"Customer Since\" (customer_since): \"2025-13-01\" is not a date",
        ],
    );
    let subscriptions = run("subscriptions");
    assert_eq!(counts(&subscriptions), [7, 5, 0, 0, 2]);
    assert_rejected(
        &subscriptions,
        &[
            "row 7, column \"Monthly Amount\" (mrr): \"1,200.00\": write amounts as plain decimals",
            "row 8, column \"Account ID\" (account_external_id): no account has salesforce id \"0015g00001FABR\"",
        ],
    );
    let signals = run("signals");
    assert_eq!(counts(&signals), [9, 6, 0, 0, 3]);
    assert_rejected(
        &signals,
        &[
            // Refused by the server inside a batch; the rest of the batch landed.
            "row 6, column \"Value\" (value): NPS must be between 0 and 10",
            "row 9, column \"Account ID\" (account_external_id): no account has salesforce id",
            "row 10, column \"Limit\" (limit): USAGE needs the limit it is measured against",
        ],
    );

    // What landed, read back.
    let mut c = server.health().await;
    let north = account_by_crm_id(&mut c, "0015g00001NRTH").await.unwrap();
    assert_eq!(north.name, "Northwind Traders, Inc.");
    assert_eq!(north.segment, Segment::Enterprise as i32);
    assert_eq!(north.customer_since, "2025-02-01");
    assert_eq!(north.fiscal_year_start_month, 4);
    assert_eq!(north.owner_csm, "carla.csm");
    // Its subsidiary came first in the file and waited for it.
    let europe = account_by_crm_id(&mut c, "0015g00001NRTE").await.unwrap();
    assert_eq!(europe.parent_account_id, north.account_id);
    assert_eq!(europe.segment, Segment::MidMarket as i32);
    let missing = account_by_crm_id(&mut c, "0015g00001FABR")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let contoso = account_by_crm_id(&mut c, "0015g00001CNTS").await.unwrap();
    let mut contracts = subscriptions_of(&mut c, &contoso.account_id).await;
    contracts.sort_by(|a, b| a.start_date.cmp(&b.start_date));
    assert_eq!(contracts.len(), 2, "{contracts:?}");
    let core = &contracts[0];
    assert_eq!(core.external_ref.as_ref().unwrap().id, "800-CNTS-CORE");
    assert_eq!(core.tier, "STARTER");
    assert_eq!(core.quantity, 10);
    let mrr = core.mrr.as_ref().unwrap();
    assert_eq!(
        (mrr.currency_code.as_str(), mrr.amount.as_str()),
        ("USD", "450.00")
    );
    let automation = &contracts[1];
    assert_eq!(automation.status, pb::SubscriptionStatus::Cancelled as i32);
    assert_eq!(automation.cancel_date, "2025-12-31");
    assert_eq!(automation.cancel_reason, "budget cut");
    let europe_core = subscriptions_of(&mut c, &europe.account_id).await;
    assert_eq!(europe_core.len(), 1);
    assert_eq!(europe_core[0].mrr.as_ref().unwrap().currency_code, "EUR");
    assert_eq!(europe_core[0].mrr.as_ref().unwrap().amount, "3000.00");

    // The same files again: nothing new, nothing changed.
    assert_eq!(counts(&run("products")), [3, 0, 0, 3, 0]);
    assert_eq!(counts(&run("accounts")), [5, 0, 0, 3, 2]);
    assert_eq!(counts(&run("subscriptions")), [7, 0, 0, 5, 2]);
    assert_eq!(counts(&run("signals")), [9, 0, 0, 6, 3]);
    assert_eq!(subscriptions_of(&mut c, &contoso.account_id).await.len(), 2);
}

/// A Salesforce-like export mapped with --map, with bad rows spread over
/// several signal batches and no signal ids (they are derived from content).
async fn bad_rows_are_reported_and_good_rows_land(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };

    let products = write("products.csv", "name,tiers\nStorage,BASIC;PRO\n");
    assert!(import(&server, "products", &products, &[]).status.success());

    let accounts = write(
        "accounts.csv",
        "Id,Account Name,Type,Owner Alias\r\n\
         001A,Acme,Enterprise,carla\r\n\
         001B,,SMB,diego\r\n\
         001C,Globex,SMB,mei\r\n",
    );
    let map = "Id=external_id,Account Name=name,Type=segment,Owner Alias=owner_csm";
    let rejects = dir.path().join("rejects.csv");
    let out = import(
        &server,
        "accounts",
        &accounts,
        &["--map", map, "--rejects", rejects.to_str().unwrap()],
    );
    assert_eq!(counts(&out), [3, 2, 0, 0, 1]);
    assert_rejected(
        &out,
        &["row 3, column \"Account Name\" (name): is required"],
    );
    let rejected = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(
        rejected.lines().collect::<Vec<_>>(),
        vec![
            "Id,Account Name,Type,Owner Alias,reject_row,reject_reason",
            "001B,,SMB,diego,3,\"column \"\"Account Name\"\" (name): is required\"",
        ]
    );

    // A change in the CRM updates the account; the others are unchanged.
    let renamed = write(
        "accounts2.csv",
        "Id,Account Name,Type,Owner Alias\n001A,Acme Corp,Enterprise,carla\n001C,Globex,SMB,mei\n",
    );
    assert_eq!(
        counts(&import(&server, "accounts", &renamed, &["--map", map])),
        [2, 0, 1, 1, 0]
    );

    // A European export: semicolons, day/month/year dates, one currency
    // for the file, mapped by a JSON file.
    let mapping = write(
        "mapping.json",
        r#"{"subscriptions": {"Vertrag": "external_id", "Kunde": "account_external_id",
            "Produkt": "product", "Monatlich": "mrr", "Beginn": "start_date"}}"#,
    );
    let contract = |mrr: &str| {
        write(
            "subscriptions.csv",
            &format!("Vertrag;Kunde;Produkt;Monatlich;Beginn\nV-1;001C;storage;{mrr};15/03/2025\n"),
        )
    };
    let flags = [
        "--mapping",
        mapping.to_str().unwrap(),
        "--delimiter",
        ";",
        "--date-format",
        "%d/%m/%Y",
        "--currency",
        "EUR",
    ];
    let out = import(&server, "subscriptions", &contract("99.90"), &flags);
    assert_eq!(counts(&out), [1, 1, 0, 0, 0], "{}", stdout(&out));
    assert_eq!(
        counts(&import(
            &server,
            "subscriptions",
            &contract("99.90"),
            &flags
        )),
        [1, 0, 0, 1, 0]
    );
    assert_eq!(
        counts(&import(&server, "subscriptions", &contract("120"), &flags)),
        [1, 0, 1, 0, 0]
    );
    let mut c = server.health().await;
    let globex = account_by_crm_id(&mut c, "001C").await.unwrap();
    let stored = subscriptions_of(&mut c, &globex.account_id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].start_date, "2025-03-15");
    let mrr = stored[0].mrr.as_ref().unwrap();
    assert_eq!(
        (mrr.currency_code.as_str(), mrr.amount.as_str()),
        ("EUR", "120.00")
    );

    // 1,200 signals, 3 batches of 500; one row per batch the server refuses
    // (NPS out of range), one for an account nobody imported, one bad time.
    let yesterday = (Utc::now() - Duration::days(1)).format("%Y-%m-%d %H:%M:%S");
    let mut csv = String::from("Account,Product,Activity Type,Amount,Quota,Occurred\n");
    let mut bad_lines = Vec::new();
    for i in 0..1200 {
        let line = i + 2;
        let row = match i {
            0 => format!("001A,Storage,Usage,92,100,{yesterday}"),
            1 => format!("001A,,NPS,9,,{yesterday}"),
            100 | 700 | 1199 => {
                bad_lines.push((line, "NPS must be between 0 and 10"));
                format!("001C,,NPS,{},,{yesterday}", 11 + i)
            }
            300 => {
                bad_lines.push((line, "no account has salesforce id \"001B\""));
                format!("001B,,Login,3,,{yesterday}")
            }
            400 => {
                bad_lines.push((line, "\"last tuesday\" is not a time"));
                "001C,,Login,3,,last tuesday".to_owned()
            }
            _ => format!("001C,Storage,Login,{i},,{yesterday}"),
        };
        writeln!(csv, "{row}").unwrap();
    }
    let signals = write("signals.csv", &csv);
    let map = "Account=account_external_id,Activity Type=kind,Amount=value,Quota=limit,Occurred=occur_time";
    let out = import(&server, "signals", &signals, &["--map", map]);
    assert_eq!(counts(&out), [1200, 1195, 0, 0, 5]);
    assert_eq!(out.status.code(), Some(65), "{}", stdout(&out));
    for (line, why) in &bad_lines {
        assert!(
            stdout(&out)
                .lines()
                .any(|l| l.contains(&format!("row {line}, ")) && l.contains(why)),
            "row {line}: {why}"
        );
    }

    // Stored once: a re-run finds every good row already there.
    let again = import(
        &server,
        "signals",
        &signals,
        &["--map", map, "--batch", "1000"],
    );
    assert_eq!(counts(&again), [1200, 0, 0, 1195, 5]);

    // The signals are the ones in the file: usage 92% of the quota and NPS 9
    // make Acme's score 100 (GREEN) and open a capacity trigger.
    let acme = account_by_crm_id(&mut c, "001A").await.unwrap();
    assert_eq!(acme.name, "Acme Corp");
    let health = c
        .get_account_health(pb::GetAccountHealthRequest {
            account_id: acme.account_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .health
        .unwrap()
        .overall
        .unwrap();
    assert_eq!(health.score, "100");
    assert_eq!(health.band, HealthBand::Green as i32);
    let triggers = c
        .list_triggers(pb::ListTriggersRequest {
            account_id: acme.account_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .triggers;
    assert!(
        triggers
            .iter()
            .any(|t| t.kind == pb::TriggerKind::UsageCapacity as i32),
        "{triggers:?}"
    );
}

#[test]
fn an_unreachable_server_stops_the_import_with_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.csv");
    std::fs::write(&file, "external_id,name\n001A,Acme\n").unwrap();
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(binary())
        .args(["import", "--kind", "accounts"])
        .arg(&file)
        .args(["--target", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("connecting"));
}

#[test]
fn a_mapping_to_a_missing_column_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.csv");
    std::fs::write(&file, "Id,Name\n001A,Acme\n").unwrap();
    let out = Command::new(binary())
        .args(["import", "--kind", "accounts"])
        .arg(&file)
        .args(["--map", "Account ID=external_id", "--target", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the mapping names column \"Account ID\", which the file does not have"),
        "{stderr}"
    );
}

/// examples/import/people.csv: a report listed before their manager lands once the
/// manager has; a look-alike id, an unknown role and an unknown manager are rejected.
async fn people_land_in_the_directory_managers_first_or_not(backend: Backend) {
    use contracts::pb::credit::v1 as credit;
    let server = Server::start(&backend, &[]);
    let mapping = example("mapping.toml");
    let run = || {
        import(
            &server,
            "people",
            &example("people.csv"),
            &["--mapping", mapping.to_str().unwrap()],
        )
    };
    let first = run();
    assert_eq!(counts(&first), [6, 3, 0, 0, 3], "{}", stdout(&first));
    assert_rejected(
        &first,
        &[
            "row 5, column \"Username\" (person_id)",
            "looks like the existing person \"ana.ae\"",
            "row 6, column \"Role\" (role): \"Account Executive\" is not a person role",
            "row 7, column \"Manager Username\" (manager_id): \"nobody.known\" is not a person",
        ],
    );
    let again = run();
    assert_eq!(counts(&again), [6, 0, 0, 3, 3], "{}", stdout(&again));
    let mut credit = server.credit().await;
    let ana = credit
        .get_person(credit::GetPersonRequest {
            person_id: "ana.ae".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .person
        .unwrap();
    assert_eq!(ana.manager_id, "max.lead");
    assert_eq!(ana.display_name, "Ana Lima");
    // Written without a manager when read (claiming the id), then with one.
    assert_eq!(ana.version, 2);
}
