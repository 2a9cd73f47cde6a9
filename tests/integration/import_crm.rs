//! `expansion import` on a CRM's own export: picklist values mapped in the
//! mapping file, its date-time layout (`--time-format`), a dry run first,
//! the open pipeline (`--kind opportunities`), a summary piped into `head`,
//! and a server with keys the import was given none for.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use contracts::pb::common::v1::Segment;
use contracts::pb::health::v1 as health;
use contracts::pb::pipeline::v1 as pipeline;

use crate::harness::{Backend, Server, binary, create_key};
use crate::import::{counts, import, stdout};
use crate::on_both_databases;

on_both_databases!(
    a_crms_export_lands_with_its_own_values_times_and_pipeline,
    the_crms_dates_date_the_imported_pipeline,
);

const MAPPING: &str = r#"
[accounts]
"Account ID" = "external_id"
"Account Name" = "name"
"Tier" = "segment"

[accounts.values.segment]
"Large Enterprise" = "ENTERPRISE"
"Mid Market" = "MID_MARKET"

[signals]
"Account ID" = "account_external_id"
"Type" = "kind"
"When" = "occur_time"
"Id" = "external_id"

[opportunities]
"Opportunity ID" = "external_id"
"Account ID" = "account_external_id"
"Product" = "product"
"Motion" = "motion"
"Stage" = "stage"
"Amount" = "amount"
"Close Date" = "close_date"
"Owner" = "owner"
"Originator" = "originator"

[opportunities.values.stage]
"Discovery" = "EXPLORING"
"Proposal/Price Quote" = "PROPOSED"
"#;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn account(server: &Server, crm: &str) -> Option<health::Account> {
    server
        .health()
        .await
        .get_account(health::GetAccountRequest {
            account_id: String::new(),
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: crm.into(),
            }),
        })
        .await
        .ok()
        .and_then(|r| r.into_inner().account)
}

async fn a_crms_export_lands_with_its_own_values_times_and_pipeline(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let dir = tempfile::tempdir().unwrap();
    let mapping = write(dir.path(), "mapping.toml", MAPPING);
    let mapping = mapping.to_str().unwrap();
    let products = write(dir.path(), "products.csv", "name\nAnalytics\n");
    let accounts = write(
        dir.path(),
        "accounts.csv",
        "Account ID,Account Name,Tier\n001A,Acme,Large Enterprise\n001B,Globex, mid market \n",
    );

    // A dry run reads, checks and counts, and writes nothing.
    let dry = import(
        &server,
        "accounts",
        &accounts,
        &["--mapping", mapping, "--dry-run"],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", stdout(&dry));
    assert!(
        stdout(&dry).contains("(dry run: nothing written)"),
        "{}",
        stdout(&dry)
    );
    assert_eq!(counts(&dry), [2, 2, 0, 0, 0]);
    assert!(
        account(&server, "001A").await.is_none(),
        "the dry run wrote"
    );

    // The picklist values arrive as segments.
    let real = import(&server, "accounts", &accounts, &["--mapping", mapping]);
    assert_eq!(counts(&real), [2, 2, 0, 0, 0], "{}", stdout(&real));
    assert_eq!(
        account(&server, "001A").await.unwrap().segment,
        Segment::Enterprise as i32
    );
    assert_eq!(
        account(&server, "001B").await.unwrap().segment,
        Segment::MidMarket as i32
    );
    let again = import(
        &server,
        "accounts",
        &accounts,
        &["--mapping", mapping, "--dry-run"],
    );
    assert_eq!(counts(&again), [2, 0, 0, 2, 0], "{}", stdout(&again));
    assert_eq!(
        counts(&import(&server, "products", &products, &[])),
        [1, 1, 0, 0, 0]
    );

    // The CRM's date-time layout, read with --time-format.
    let signals = write(
        dir.path(),
        "signals.csv",
        "Account ID,Type,When,Id\n001A,Login,03/31/2026 14:22,login-1\n",
    );
    let unread = import(&server, "signals", &signals, &["--mapping", mapping]);
    assert_eq!(unread.status.code(), Some(65));
    assert!(
        stdout(&unread).contains(r#"column "When" (occur_time): "03/31/2026 14:22" is not a time"#),
        "{}",
        stdout(&unread)
    );
    let read = import(
        &server,
        "signals",
        &signals,
        &["--mapping", mapping, "--time-format", "%m/%d/%Y %H:%M"],
    );
    assert_eq!(counts(&read), [1, 1, 0, 0, 0], "{}", stdout(&read));

    // The open pipeline: stages mapped from the CRM's names, a closed deal
    // and one QUALIFIED's criteria refuse rejected.
    let opportunities = write(
        dir.path(),
        "opportunities.csv",
        "Opportunity ID,Account ID,Product,Motion,Stage,Amount,Close Date,Owner,Originator\n\
         006A,001A,Analytics,Cross-sell adjacent,Discovery,48000.00,2027-03-31,alex.ae,carla.csm\n\
         006B,001B,Analytics,Upsell tier,Closed Won,9000.00,2026-03-31,alex.ae,carla.csm\n\
         006C,001B,Analytics,Cross-sell adjacent,Proposal/Price Quote,30000.00,2027-06-30,alex.ae,mei.csm\n",
    );
    let args = ["--mapping", mapping, "--currency", "USD"];
    let first = import(&server, "opportunities", &opportunities, &args);
    let text = stdout(&first);
    assert_eq!(first.status.code(), Some(65), "{text}");
    assert_eq!(counts(&first), [3, 1, 0, 0, 2], "{text}");
    assert!(
        text.contains(
            "row 3, column \"Stage\" (stage): \"Closed Won\": closed deals are not imported"
        ),
        "{text}"
    );
    assert!(
        text.contains("row 4, column \"Stage\" (stage): stopped at EXPLORING: QUALIFIED refused"),
        "{text}"
    );
    let acme = account(&server, "001A").await.unwrap().account_id;
    let listed = server
        .pipeline()
        .await
        .list_opportunities(pipeline::ListOpportunitiesRequest {
            account_id: acme,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunities;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].stage, pipeline::Stage::Exploring as i32);
    assert_eq!(listed[0].owner, "alex.ae");
    assert_eq!(listed[0].amount.as_ref().unwrap().amount, "48000.00");
    // Re-run: the imported one is recognised, nothing is created twice.
    let rerun = import(&server, "opportunities", &opportunities, &args);
    assert_eq!(counts(&rerun), [3, 0, 0, 1, 2], "{}", stdout(&rerun));
    let all = server
        .pipeline()
        .await
        .list_opportunities(pipeline::ListOpportunitiesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .opportunities;
    assert_eq!(all.len(), 2, "006A and 006C (left at EXPLORING), once each");

    // `expansion import … | head`: the reader is gone before the summary.
    let mut child = Command::new(binary())
        .args(["import", "--kind", "accounts"])
        .arg(&accounts)
        .args(["--mapping", mapping, "--target", &server.addr])
        .env("EXPANSION_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The CRM's created and stage-change dates (`create_time`,
/// `stage_enter_time`) date the imported deals: one stalls, a date in the
/// future or out of order is the row's rejection, naming its column.
async fn the_crms_dates_date_the_imported_pipeline(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let dir = tempfile::tempdir().unwrap();
    let accounts = write(dir.path(), "accounts.csv", "external_id,name\n001A,Acme\n");
    let products = write(dir.path(), "products.csv", "name\nAnalytics\n");
    assert_eq!(counts(&import(&server, "accounts", &accounts, &[]))[1], 1);
    assert_eq!(counts(&import(&server, "products", &products, &[]))[1], 1);
    let format = "%m/%d/%Y %H:%M";
    let day = |days_ago: i64| {
        let t = chrono::Utc::now() - chrono::Duration::days(days_ago);
        t.format(format).to_string()
    };
    let opportunities = write(
        dir.path(),
        "opportunities.csv",
        &format!(
            "Opportunity ID,Account ID,Product,Motion,Stage,Amount,Created,Stage Changed\n\
             008A,001A,Analytics,Cross-sell adjacent,Exploring,48000.00,{},{}\n\
             008B,001A,Analytics,Cross-sell adjacent,Exploring,30000.00,{},{}\n\
             008C,001A,Analytics,Cross-sell adjacent,Exploring,30000.00,{},{}\n",
            day(60),
            day(40),
            day(10),
            day(-3),
            day(10),
            day(20),
        ),
    );
    let args = [
        "--map",
        "Opportunity ID=external_id,Account ID=account_external_id,Created=create_time,Stage Changed=stage_enter_time",
        "--currency",
        "USD",
        "--time-format",
        format,
    ];
    let first = import(&server, "opportunities", &opportunities, &args);
    let text = stdout(&first);
    assert_eq!(counts(&first), [3, 1, 0, 0, 2], "{text}");
    assert!(
        text.contains("row 3, column \"Stage Changed\" (stage_enter_time): is in the future"),
        "{text}"
    );
    assert!(
        text.contains("row 4, column \"Stage Changed\" (stage_enter_time): is before create_time"),
        "{text}"
    );
    let listed = server
        .pipeline()
        .await
        .list_opportunities(pipeline::ListOpportunitiesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .opportunities;
    // The row refused at EXPLORING was created (at its CRM date) and stays
    // at IDENTIFIED; the good one is 40 days into EXPLORING: stalled.
    let imported = listed
        .iter()
        .find(|o| o.stage == pipeline::Stage::Exploring as i32)
        .unwrap();
    let created = imported.audit.as_ref().unwrap().create_time.unwrap();
    let entered = imported.stage_enter_time.unwrap();
    let days = |t: prost_types::Timestamp| (chrono::Utc::now().timestamp() - t.seconds) / 86_400;
    assert_eq!((days(created), days(entered)), (60, 40));
    assert!(imported.stalled, "{imported:?}");
    // Again: nothing new, the dated deal recognised as it was.
    let rerun = import(&server, "opportunities", &opportunities, &args);
    assert_eq!(counts(&rerun)[1], 0, "{}", stdout(&rerun));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_without_a_key_says_to_pass_one() {
    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let token = create_key(&keys, "crm-sync", "connector");
    let server = Server::start(&backend, &["--keys-file", keys.to_str().unwrap()]);
    let accounts = write(dir.path(), "accounts.csv", "external_id,name\n001A,Acme\n");
    let refused = import(&server, "accounts", &accounts, &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Unauthenticated"), "{stderr}");
    assert!(stderr.contains("pass --api-key KEY"), "{stderr}");
    let with_key = import(&server, "accounts", &accounts, &["--api-key", &token]);
    assert_eq!(counts(&with_key), [1, 1, 0, 0, 0], "{}", stdout(&with_key));
}
