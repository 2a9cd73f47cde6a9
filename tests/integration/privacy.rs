//! People's pay is private, against the real binary: one key per role and two
//! people per role (plus a team lead), a people directory, and every read and
//! write of the credit service that the row-level and separation-of-duties
//! rules allow or refuse, each refusal PERMISSION_DENIED with its own reason.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use contracts::client::{AuthChannel, ClientOptions};
use contracts::pb::common::v1::{Event, WatchEventsOptions};
use contracts::pb::credit::v1 as credit;
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{Backend, Server, binary, usd};

crate::on_both_databases!(
    each_person_reads_only_their_own_pay_and_nobody_approves_their_own,
    the_demo_shows_a_rep_only_their_own_statement,
);

type Credit = CompensationCreditServiceClient<AuthChannel>;

const DEAL_A: &str = "01937a9e-5c3e-7d2a-9a51-6b3f2c1d0ea1";
const DEAL_B: &str = "01937a9e-5c3e-7d2a-9a51-6b3f2c1d0eb2";
const DEAL_C: &str = "01937a9e-5c3e-7d2a-9a51-6b3f2c1d0ec3";

/// `expansion keys create`, with `extra` flags (`--manages`, `--rotate`).
fn key(keys: &Path, name: &str, role: &str, extra: &[&str]) -> Result<String, String> {
    let out = Command::new(binary())
        .args(["keys", "create", "--name", name, "--role", role])
        .args(extra)
        .arg("--keys-file")
        .arg(keys)
        .output()
        .expect("run expansion keys create");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The keys of the scenario, by person.
struct Keys {
    ops: String,
    oz: String,
    rita: String,
    rex: String,
    carla: String,
    cole: String,
    ana: String,
    bea: String,
    max: String,
    crm: String,
    billing: String,
    vera: String,
    vic: String,
}

fn keys(file: &Path) -> Keys {
    let k = |name: &str, role: &str| key(file, name, role, &[]).unwrap();
    Keys {
        ops: k("ops.admin", "admin"),
        oz: k("oz.admin", "admin"),
        rita: k("rita.revops", "revops"),
        rex: k("rex.revops", "revops"),
        carla: k("carla.csm", "csm"),
        cole: k("cole.csm", "csm"),
        ana: k("ana.ae", "ae"),
        bea: k("bea.ae", "ae"),
        max: key(file, "max.lead", "ae", &["--manages", "enterprise-sales"]).unwrap(),
        crm: k("crm.sync", "connector"),
        billing: k("billing.sync", "connector"),
        vera: k("vera.viewer", "viewer"),
        vic: k("vic.viewer", "viewer"),
    }
}

async fn as_key(server: &Server, token: &str) -> Credit {
    let options = ClientOptions::default().with_api_key(Some(token.to_owned()));
    CompensationCreditServiceClient::new(
        contracts::client::connect(&server.url(), &options)
            .await
            .expect("connect to the server"),
    )
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// Asserts a refusal: PERMISSION_DENIED with `expected` as its ErrorInfo reason.
#[track_caller]
fn denied<T: std::fmt::Debug>(result: Result<T, tonic::Status>, expected: &str) {
    let err = result.expect_err(expected);
    assert_eq!(err.code(), Code::PermissionDenied, "{expected}: {err:?}");
    assert_eq!(reason(&err), expected, "{err:?}");
}

fn part(id: &str, role: credit::CreditRole, team: &str, owner: bool) -> credit::Participant {
    credit::Participant {
        participant_id: id.into(),
        role: role as i32,
        team: team.into(),
        owner,
        ..Default::default()
    }
}

fn person(
    id: &str,
    role: credit::PersonRole,
    team: &str,
    manager: &str,
) -> credit::UpsertPersonRequest {
    credit::UpsertPersonRequest {
        person: Some(credit::Person {
            person_id: id.into(),
            display_name: id.split('.').next().unwrap_or(id).into(),
            role: role as i32,
            team: team.into(),
            manager_id: manager.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn statement(participant: &str, team: &str) -> credit::GetStatementRequest {
    credit::GetStatementRequest {
        participant_id: participant.into(),
        team: team.into(),
        start_date: "2000-01-01".into(),
        end_date: "2100-01-01".into(),
        ..Default::default()
    }
}

fn entries_of(participant: &str) -> credit::ListLedgerEntriesRequest {
    credit::ListLedgerEntriesRequest {
        participant_id: participant.into(),
        page_size: 1000,
        ..Default::default()
    }
}

fn people_of(entries: &[credit::LedgerEntry]) -> BTreeSet<String> {
    entries.iter().map(|e| e.participant_id.clone()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn list(c: &mut Credit, participant: &str) -> Vec<credit::LedgerEntry> {
    c.list_ledger_entries(entries_of(participant))
        .await
        .unwrap()
        .into_inner()
        .entries
}

/// The credit events a key's stream carries, read until it has been quiet for
/// a moment.
async fn streamed(server: &Server, token: &str) -> Vec<Event> {
    let mut stream = as_key(server, token)
        .await
        .watch_events(credit::WatchEventsRequest {
            options: Some(WatchEventsOptions::default()),
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Ok(next) = tokio::time::timeout(Duration::from_secs(2), stream.message()).await {
        out.push(next.unwrap().expect("the stream stays open").event.unwrap());
    }
    out
}

async fn dispute(c: &mut Credit, entry: &str) -> Result<credit::Dispute, tonic::Status> {
    c.open_dispute(credit::OpenDisputeRequest {
        entry_id: entry.into(),
        reason: "the split looks wrong".into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().dispute.unwrap())
}

async fn disputes(
    c: &mut Credit,
    req: credit::ListDisputesRequest,
) -> Result<Vec<credit::Dispute>, tonic::Status> {
    c.list_disputes(req).await.map(|r| r.into_inner().disputes)
}

fn resolve(id: &str, adjust: Option<&str>) -> credit::ResolveDisputeRequest {
    credit::ResolveDisputeRequest {
        dispute_id: id.into(),
        resolution: if adjust.is_some() {
            credit::DisputeResolution::Adjust
        } else {
            credit::DisputeResolution::Reject
        } as i32,
        adjustment: adjust.and_then(usd),
        note: "ruled".into(),
        ..Default::default()
    }
}

fn approve_deal(deal: &str) -> credit::ApproveCreditsRequest {
    credit::ApproveCreditsRequest {
        deal_id: deal.into(),
        ..Default::default()
    }
}

async fn each_person_reads_only_their_own_pay_and_nobody_approves_their_own(backend: Backend) {
    use credit::CreditRole::{Delivery, Originator};
    use credit::PersonRole;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.json");
    let k = keys(&file);
    // A name is one person's: a second key for it is refused unless it rotates.
    let err = key(&file, "ana.ae", "ae", &[]).unwrap_err();
    assert!(err.contains("--rotate"), "{err}");
    let keys_file = file.display().to_string();
    let server = Server::start(&backend, &["--keys-file", &keys_file]);

    let mut admin = as_key(&server, &k.ops).await;
    let mut admin2 = as_key(&server, &k.oz).await;
    let mut rita = as_key(&server, &k.rita).await;
    let mut rex = as_key(&server, &k.rex).await;
    let mut carla = as_key(&server, &k.carla).await;
    let mut cole = as_key(&server, &k.cole).await;
    let mut ana = as_key(&server, &k.ana).await;
    let mut bea = as_key(&server, &k.bea).await;
    let mut max = as_key(&server, &k.max).await;
    let mut crm = as_key(&server, &k.crm).await;
    let mut billing = as_key(&server, &k.billing).await;
    let mut vera = as_key(&server, &k.vera).await;
    let mut vic = as_key(&server, &k.vic).await;

    admin
        .upsert_credit_policy(credit::UpsertCreditPolicyRequest {
            policy: Some(credit::CreditPolicy {
                effective_date: "2026-01-01".into(),
                hold_days: 30,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();

    // The directory, kept by a connector (a CRM sync); managers come first.
    for req in [
        person("max.lead", PersonRole::Ae, "enterprise-sales", ""),
        person("ana.ae", PersonRole::Ae, "enterprise-sales", "max.lead"),
        person("bea.ae", PersonRole::Ae, "mid-market", ""),
        person("carla.csm", PersonRole::Csm, "cs", ""),
        person("cole.csm", PersonRole::Csm, "cs", ""),
        person("rita.revops", PersonRole::Revops, "", ""),
        person("rex.revops", PersonRole::Revops, "", ""),
        person("ops.admin", PersonRole::Other, "", ""),
    ] {
        let person = crm.upsert_person(req).await.unwrap().into_inner();
        assert!(person.changed);
        assert_eq!(person.person.unwrap().audit.unwrap().created_by, "crm.sync");
    }
    // Upserting the same again adds no version; a change adds one.
    let again = billing
        .upsert_person(person("bea.ae", PersonRole::Ae, "mid-market", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.changed);
    assert_eq!(again.person.unwrap().version, 1);
    // A look-alike of a known id (Cyrillic а for a) is refused with its field.
    let err = crm
        .upsert_person(person("\u{430}na.ae", PersonRole::Ae, "mid-market", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("ana.ae"), "{}", err.message());
    // A manager must be a known person.
    let err = crm
        .upsert_person(person("cy.ae", PersonRole::Ae, "", "nobody.known"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // Everyone reads the directory; only sync roles write it.
    let listed = vera
        .list_people(credit::ListPeopleRequest {
            team: "enterprise-sales".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .people;
    let ids: Vec<&str> = listed.iter().map(|p| p.person_id.as_str()).collect();
    assert_eq!(ids, ["ana.ae", "max.lead"]);
    let got = ana
        .get_person(credit::GetPersonRequest {
            person_id: "ana.ae".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .person
        .unwrap();
    assert_eq!(got.manager_id, "max.lead");
    for c in [&mut ana, &mut carla, &mut vera] {
        let err = c
            .upsert_person(person("zed.ae", PersonRole::Ae, "", ""))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert_eq!(reason(&err), "PERMISSION_DENIED");
    }

    // Three deals: carla + ana, cole + bea, and one that credits a revops
    // person and an admin.
    for (deal, parts) in [
        (
            DEAL_A,
            vec![
                part("carla.csm", Originator, "cs", false),
                part("ana.ae", Delivery, "enterprise-sales", true),
            ],
        ),
        (
            DEAL_B,
            vec![
                part("cole.csm", Originator, "cs", false),
                part("bea.ae", Delivery, "mid-market", true),
            ],
        ),
        (
            DEAL_C,
            vec![
                part("ops.admin", Originator, "", false),
                part("rita.revops", Delivery, "", true),
            ],
        ),
    ] {
        crm.record_deal_credits(credit::RecordDealCreditsRequest {
            deal_id: deal.into(),
            amount: usd("1000.00"),
            close_date: "2026-03-31".into(),
            participants: parts,
            ..Default::default()
        })
        .await
        .unwrap();
    }

    // A deal naming a look-alike of a known person (Cyrillic е in bea) is refused.
    let err = crm
        .record_deal_credits(credit::RecordDealCreditsRequest {
            deal_id: "01937a9e-5c3e-7d2a-9a51-6b3f2c1d0ed4".into(),
            amount: usd("1000.00"),
            close_date: "2026-03-31".into(),
            participants: vec![
                part("carla.csm", Originator, "cs", false),
                part("b\u{435}a.ae", Delivery, "mid-market", true),
            ],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let details = err.get_error_details();
    assert_eq!(
        details.bad_request().unwrap().field_violations[0].field,
        "participants[1].participant_id"
    );

    // --- Reads: revops, admin and connector see everyone.
    for c in [&mut admin, &mut rita, &mut crm] {
        let all = list(c, "").await;
        assert_eq!(all.len(), 6);
        assert_eq!(
            people_of(&all),
            set(&[
                "ana.ae",
                "bea.ae",
                "carla.csm",
                "cole.csm",
                "ops.admin",
                "rita.revops"
            ])
        );
        assert_eq!(list(c, "bea.ae").await.len(), 1);
        let deal = c
            .get_deal_credits(credit::GetDealCreditsRequest {
                deal_id: DEAL_B.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .credits
            .unwrap();
        assert_eq!(deal.entries.len(), 2);
        let s = c
            .get_statement(statement("bea.ae", ""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(s.entries.len(), 1);
    }

    // --- csm and ae: their own, never a colleague's.
    for (c, me, colleague, my_deal, other_deal) in [
        (&mut ana, "ana.ae", "bea.ae", DEAL_A, DEAL_B),
        (&mut bea, "bea.ae", "ana.ae", DEAL_B, DEAL_A),
        (&mut carla, "carla.csm", "cole.csm", DEAL_A, DEAL_B),
        (&mut cole, "cole.csm", "carla.csm", DEAL_B, DEAL_A),
    ] {
        // A statement without a name is one's own.
        let own = c
            .get_statement(statement("", ""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(own.participant_id, me);
        assert_eq!(people_of(&own.entries), set(&[me]));
        assert!(!own.currencies.is_empty());
        let named = c
            .get_statement(statement(me, ""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(named.entries.len(), 1);
        denied(
            c.get_statement(statement(colleague, "")).await,
            "CREDIT_OF_ANOTHER_PERSON",
        );
        denied(
            c.get_statement(statement("", "cs")).await,
            "TEAM_NOT_MANAGED",
        );
        // The ledger: own entries without a filter, a refusal when naming another.
        assert_eq!(people_of(&list(c, "").await), set(&[me]));
        assert_eq!(list(c, me).await.len(), 1);
        denied(
            c.list_ledger_entries(entries_of(colleague)).await,
            "CREDIT_OF_ANOTHER_PERSON",
        );
        // A deal one takes part in shows one's own split and entries only.
        let deal = c
            .get_deal_credits(credit::GetDealCreditsRequest {
                deal_id: my_deal.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .credits
            .unwrap();
        assert_eq!(people_of(&deal.entries), set(&[me]));
        assert_eq!(people_of(&deal.balances), set(&[me]));
        assert!(deal.participants.iter().all(|p| p.participant_id == me));
        denied(
            c.get_deal_credits(credit::GetDealCreditsRequest {
                deal_id: other_deal.into(),
            })
            .await,
            "DEAL_OF_OTHER_PEOPLE",
        );
        denied(
            c.get_deal_credits(credit::GetDealCreditsRequest {
                deal_id: DEAL_C.into(),
            })
            .await,
            "DEAL_OF_OTHER_PEOPLE",
        );
    }

    // --- A team lead (`--manages enterprise-sales`): own and the team's.
    let team = max
        .get_statement(statement("", "enterprise-sales"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(people_of(&team.entries), set(&["ana.ae"]));
    assert_eq!(
        people_of(
            &max.get_statement(statement("ana.ae", ""))
                .await
                .unwrap()
                .into_inner()
                .entries
        ),
        set(&["ana.ae"])
    );
    assert_eq!(people_of(&list(&mut max, "").await), set(&["ana.ae"]));
    denied(
        max.get_statement(statement("bea.ae", "")).await,
        "CREDIT_OF_ANOTHER_PERSON",
    );
    denied(
        max.get_statement(statement("", "mid-market")).await,
        "TEAM_NOT_MANAGED",
    );
    denied(
        max.list_ledger_entries(entries_of("carla.csm")).await,
        "CREDIT_OF_ANOTHER_PERSON",
    );
    let deal = max
        .get_deal_credits(credit::GetDealCreditsRequest {
            deal_id: DEAL_A.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .credits
        .unwrap();
    assert_eq!(people_of(&deal.entries), set(&["ana.ae"]));

    // --- Viewers: team and organisation totals, never a person's entries.
    for c in [&mut vera, &mut vic] {
        let org = c
            .get_statement(statement("", ""))
            .await
            .unwrap()
            .into_inner();
        assert!(org.entries.is_empty());
        let usd_total = org
            .currencies
            .iter()
            .find(|f| f.currency_code == "USD")
            .unwrap();
        assert_eq!(
            usd_total.closing_balance.as_ref().unwrap().amount,
            "3000.00"
        );
        let cs = c
            .get_statement(statement("", "cs"))
            .await
            .unwrap()
            .into_inner();
        assert!(cs.entries.is_empty());
        assert!(!cs.currencies.is_empty());
        denied(
            c.get_statement(statement("ana.ae", "")).await,
            "TOTALS_ONLY_FOR_VIEWER",
        );
        denied(
            c.list_ledger_entries(entries_of("")).await,
            "TOTALS_ONLY_FOR_VIEWER",
        );
        denied(
            c.get_deal_credits(credit::GetDealCreditsRequest {
                deal_id: DEAL_A.into(),
            })
            .await,
            "TOTALS_ONLY_FOR_VIEWER",
        );
        denied(
            disputes(c, credit::ListDisputesRequest::default()).await,
            "TOTALS_ONLY_FOR_VIEWER",
        );
    }

    // --- Disputes: a csm or ae disputes only their own entries.
    let entry = |entries: &[credit::LedgerEntry], who: &str| {
        entries
            .iter()
            .find(|e| e.participant_id == who)
            .map(|e| e.entry_id.clone())
            .unwrap()
    };
    let all = list(&mut admin, "").await;
    denied(
        dispute(&mut ana, &entry(&all, "bea.ae")).await,
        "DISPUTE_OF_ANOTHER_PERSONS_CREDIT",
    );
    denied(
        dispute(&mut carla, &entry(&all, "cole.csm")).await,
        "DISPUTE_OF_ANOTHER_PERSONS_CREDIT",
    );
    // A team lead disputes for no one but themselves.
    denied(
        dispute(&mut max, &entry(&all, "ana.ae")).await,
        "DISPUTE_OF_ANOTHER_PERSONS_CREDIT",
    );
    let ana_dispute = dispute(&mut ana, &entry(&all, "ana.ae")).await.unwrap();
    assert_eq!(ana_dispute.opened_by, "ana.ae");
    assert_eq!(ana_dispute.participant_id, "ana.ae");
    assert_eq!(ana_dispute.deal_id, DEAL_A);
    let carla_dispute = dispute(&mut carla, &entry(&all, "carla.csm"))
        .await
        .unwrap();
    // RevOps disputes anyone's entry, an admin's included.
    let bea_dispute = dispute(&mut rita, &entry(&all, "bea.ae")).await.unwrap();
    let admin_dispute = dispute(&mut rita, &entry(&all, "ops.admin")).await.unwrap();
    let err = dispute(&mut vera, &entry(&all, "ana.ae"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "PERMISSION_DENIED");
    // Entries show their open dispute.
    let own = list(&mut ana, "").await;
    assert_eq!(own[0].open_dispute_id, ana_dispute.dispute_id);
    let ids = |ds: &[credit::Dispute]| -> BTreeSet<String> {
        ds.iter().map(|d| d.dispute_id.clone()).collect()
    };
    // ListDisputes under the same rules.
    let mine = disputes(&mut ana, credit::ListDisputesRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(&mine), set(&[&ana_dispute.dispute_id]));
    denied(
        disputes(
            &mut ana,
            credit::ListDisputesRequest {
                participant_id: "bea.ae".into(),
                ..Default::default()
            },
        )
        .await,
        "CREDIT_OF_ANOTHER_PERSON",
    );
    let mine = disputes(&mut bea, credit::ListDisputesRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(&mine), set(&[&bea_dispute.dispute_id]));
    let team = disputes(&mut max, credit::ListDisputesRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(&team), set(&[&ana_dispute.dispute_id]));
    let everyone = disputes(&mut rex, credit::ListDisputesRequest::default())
        .await
        .unwrap();
    assert_eq!(everyone.len(), 4);
    let of_deal_b = disputes(
        &mut crm,
        credit::ListDisputesRequest {
            deal_id: DEAL_B.into(),
            status: credit::DisputeStatus::Open as i32,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(ids(&of_deal_b), set(&[&bea_dispute.dispute_id]));
    let paged = disputes(
        &mut admin,
        credit::ListDisputesRequest {
            page_size: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(paged.len(), 3);

    // --- Rulings: nobody rules on or adjusts an entry credited to themselves.
    denied(
        admin
            .resolve_dispute(resolve(&admin_dispute.dispute_id, Some("-10.00")))
            .await,
        "ADJUSTMENT_OF_OWN_CREDIT",
    );
    denied(
        admin
            .resolve_dispute(resolve(&admin_dispute.dispute_id, None))
            .await,
        "RULING_ON_OWN_CREDIT",
    );
    let ruled = admin2
        .resolve_dispute(resolve(&admin_dispute.dispute_id, Some("-10.00")))
        .await
        .unwrap()
        .into_inner();
    let adjustment = ruled.adjustment.unwrap();
    assert_eq!(adjustment.participant_id, "ops.admin");
    assert_eq!(adjustment.principal, "oz.admin");
    admin
        .resolve_dispute(resolve(&ana_dispute.dispute_id, None))
        .await
        .unwrap();
    assert!(list(&mut ana, "").await[0].open_dispute_id.is_empty());
    let open = disputes(
        &mut rex,
        credit::ListDisputesRequest {
            status: credit::DisputeStatus::Open as i32,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&open),
        set(&[&carla_dispute.dispute_id, &bea_dispute.dispute_id])
    );

    // --- Approvals: nobody approves credit paid to themselves, admin included.
    denied(
        rita.approve_credits(approve_deal(DEAL_C)).await,
        "APPROVAL_OF_OWN_CREDIT",
    );
    denied(
        admin.approve_credits(approve_deal(DEAL_C)).await,
        "APPROVAL_OF_OWN_CREDIT",
    );
    let released = admin
        .approve_credits(credit::ApproveCreditsRequest {
            entry_ids: vec![entry(&all, "rita.revops")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .released;
    assert_eq!(people_of(&released), set(&["rita.revops"]));
    let released = rex
        .approve_credits(approve_deal(DEAL_C))
        .await
        .unwrap()
        .into_inner()
        .released;
    assert_eq!(people_of(&released), set(&["ops.admin"]));
    let released = rita
        .approve_credits(approve_deal(DEAL_A))
        .await
        .unwrap()
        .into_inner()
        .released;
    assert_eq!(released.len(), 2);

    // --- Split changes: not on a deal that credits the caller.
    let splits =
        |deal_parts: Vec<credit::Participant>, deal: &str| credit::ReplaceDealSplitsRequest {
            deal_id: deal.into(),
            participants: deal_parts,
            reason: "re-split".into(),
            ..Default::default()
        };
    denied(
        rita.replace_deal_splits(splits(
            vec![
                part("rex.revops", Originator, "", false),
                part("rita.revops", Delivery, "", true),
            ],
            DEAL_C,
        ))
        .await,
        "SPLIT_CHANGE_OF_OWN_CREDIT",
    );
    // Adding oneself to someone else's deal is the same conflict.
    denied(
        rita.replace_deal_splits(splits(
            vec![
                part("rita.revops", Originator, "", false),
                part("bea.ae", Delivery, "mid-market", true),
            ],
            DEAL_B,
        ))
        .await,
        "SPLIT_CHANGE_OF_OWN_CREDIT",
    );
    rita.replace_deal_splits(splits(
        vec![
            part("carla.csm", Originator, "cs", false),
            part("bea.ae", Delivery, "mid-market", true),
        ],
        DEAL_B,
    ))
    .await
    .unwrap();

    // --- Streams obey the same rules.
    let subjects = |events: &[Event], prefix: &str| -> BTreeSet<String> {
        events
            .iter()
            .filter(|e| e.event_type.starts_with(prefix))
            .map(|e| e.subject_id.clone())
            .collect()
    };
    let entry_ids = |events: &[Event], kind: &str| -> BTreeSet<String> {
        use prost_types::value::Kind;
        let mut out = BTreeSet::new();
        for e in events.iter().filter(|e| e.event_type == kind) {
            if let Some(Kind::ListValue(list)) = e
                .data
                .as_ref()
                .and_then(|d| d.fields.get("entry_ids"))
                .and_then(|v| v.kind.clone())
            {
                for v in list.values {
                    if let Some(Kind::StringValue(id)) = v.kind {
                        out.insert(id);
                    }
                }
            }
        }
        out
    };
    let ana_events = streamed(&server, &k.ana).await;
    // Ana's copy of deal A's event names her entry only, not Carla's.
    assert_eq!(
        entry_ids(&ana_events, "credit.deal.credited"),
        set(&[&entry(&all, "ana.ae")])
    );
    assert_eq!(
        subjects(&ana_events, "credit.deal.credited"),
        set(&[DEAL_A])
    );
    assert_eq!(
        subjects(&ana_events, "credit.dispute."),
        set(&[&ana_dispute.dispute_id])
    );
    assert!(!subjects(&ana_events, "credit.policy.").is_empty());
    // Cole lost his split of deal B to Carla: both see that change, Bea too.
    let cole_events = streamed(&server, &k.cole).await;
    assert_eq!(
        subjects(&cole_events, "credit.deal.credited"),
        set(&[DEAL_B])
    );
    assert_eq!(
        subjects(&cole_events, "credit.deal.splits_replaced"),
        set(&[DEAL_B])
    );
    let carla_events = streamed(&server, &k.carla).await;
    assert_eq!(
        subjects(&carla_events, "credit.deal.credited"),
        set(&[DEAL_A])
    );
    assert_eq!(
        subjects(&carla_events, "credit.deal.splits_replaced"),
        set(&[DEAL_B])
    );
    let max_events = streamed(&server, &k.max).await;
    assert_eq!(
        subjects(&max_events, "credit.deal.credited"),
        set(&[DEAL_A])
    );
    let vera_events = streamed(&server, &k.vera).await;
    assert!(subjects(&vera_events, "credit.deal.").is_empty());
    assert!(subjects(&vera_events, "credit.dispute.").is_empty());
    assert!(!subjects(&vera_events, "credit.person.").is_empty());
    let rex_events = streamed(&server, &k.rex).await;
    assert_eq!(entry_ids(&rex_events, "credit.deal.credited").len(), 6);
    assert_eq!(
        subjects(&rex_events, "credit.deal.credited"),
        set(&[DEAL_A, DEAL_B, DEAL_C])
    );
    assert_eq!(subjects(&rex_events, "credit.dispute.opened").len(), 4);

    // A rotated key: the new one works, the old one is refused.
    let rotated = key(&file, "ana.ae", "ae", &["--rotate"]).unwrap();
    let mut refused = false;
    for _ in 0..50 {
        match ana.get_statement(statement("", "")).await {
            Err(err) if err.code() == Code::Unauthenticated => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(refused, "the rotated-out key still works");
    let mut ana = as_key(&server, &rotated).await;
    let own = ana
        .get_statement(statement("", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.participant_id, "ana.ae");
}

/// `serve --demo --keys-file F` prints a key for each of the demo's people
/// once; with hers, Carla reads her own statement and not Alex's, while
/// RevOps reads both.
async fn the_demo_shows_a_rep_only_their_own_statement(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("demo-keys.json");
    let keys_flag = keys.display().to_string();
    let server = Server::start(&backend, &["--demo", "--keys-file", &keys_flag]);
    let printed: std::collections::BTreeMap<String, String> = server
        .banner
        .iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("demo key for ")?;
            let (who, token) = rest.split_once(": ")?;
            let name = who.split(' ').next()?;
            Some((name.to_owned(), token.to_owned()))
        })
        .collect();
    let names: Vec<&str> = printed.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "alex.ae",
            "carla.csm",
            "diego.csm",
            "mei.csm",
            "rita.revops",
            "sam.ae"
        ]
    );
    let statement = |who: &str| credit::GetStatementRequest {
        participant_id: who.into(),
        start_date: "2020-01-01".into(),
        end_date: "2030-01-01".into(),
        ..Default::default()
    };
    // The demo loads beside the server: wait for Carla's credits.
    let mut carla = as_key(&server, &printed["carla.csm"]).await;
    let mut own = None;
    for _ in 0..300 {
        let reply = carla
            .get_statement(statement("carla.csm"))
            .await
            .unwrap()
            .into_inner();
        if !reply.entries.is_empty() {
            own = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let own = own.expect("carla's demo credits");
    assert!(own.entries.iter().all(|e| e.participant_id == "carla.csm"));
    let refused = carla.get_statement(statement("alex.ae")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let mut revops = as_key(&server, &printed["rita.revops"]).await;
    let mut alex = None;
    for _ in 0..100 {
        let reply = revops
            .get_statement(statement("alex.ae"))
            .await
            .unwrap()
            .into_inner();
        if !reply.entries.is_empty() {
            alex = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(alex.is_some(), "RevOps reads alex.ae's statement");

    // Tokens are shown once: a second start prints none, and the keys still work.
    drop(server);
    let again = Server::start(&backend, &["--demo", "--keys-file", &keys_flag]);
    assert!(
        !again.banner.iter().any(|l| l.starts_with("demo key for ")),
        "{:?}",
        again.banner
    );
    as_key(&again, &printed["carla.csm"])
        .await
        .get_statement(statement("carla.csm"))
        .await
        .unwrap();
}
