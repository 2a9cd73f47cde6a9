//! CompensationCreditService end to end through the real binary: deal credits to the
//! cent, idempotent and conflicting replays, split replacement, holds and approvals,
//! clawbacks, disputes, statements, ledger paging, refusals that write nothing, the
//! database refusing ledger rewrites, and the events every write emits.

use contracts::pb::common::v1::{Money, WatchEventsOptions};
use contracts::pb::credit::v1 as credit;
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use sea_orm::ConnectionTrait;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::harness::{Backend, Server, usd};
use crate::on_both_databases;

on_both_databases!(
    credits_sum_to_the_cent_and_replays_are_idempotent,
    replacing_splits_reverses_and_keeps_the_owner,
    held_credits_are_released_by_approval,
    clawbacks_recover_released_credit_full_and_prorated,
    disputes_are_adjusted_or_rejected_once,
    statements_and_ledger_pages,
    bad_input_is_refused_with_the_field_and_writes_nothing,
    the_database_refuses_ledger_rewrites,
    watch_events_shows_every_credit_write,
    request_ids_and_concurrent_retries_apply_once,
);

type Client = CompensationCreditServiceClient<Channel>;

use credit::CreditRole::{Delivery, Originator, Overlay};

fn amount(m: &Option<Money>) -> String {
    m.as_ref().map(|m| m.amount.clone()).unwrap_or_default()
}

fn part(id: &str, role: credit::CreditRole, percent: &str) -> credit::Participant {
    credit::Participant {
        participant_id: id.into(),
        role: role as i32,
        percent: percent.into(),
        ..Default::default()
    }
}

fn owner(mut p: credit::Participant) -> credit::Participant {
    p.owner = true;
    p
}

fn team(mut p: credit::Participant, team: &str) -> credit::Participant {
    p.team = team.into();
    p
}

fn field_of(status: &tonic::Status) -> String {
    let details = status.get_error_details();
    let bad = details
        .bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"));
    bad.field_violations[0].field.clone()
}

fn reason_of(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// The people these tests credit, in the directory (a deal credits known
/// people, SPEC §6).
const PEOPLE: &[(&str, credit::PersonRole)] = &[
    ("carla.csm", credit::PersonRole::Csm),
    ("cole.csm", credit::PersonRole::Csm),
    ("ae-1", credit::PersonRole::Ae),
    ("ae-2", credit::PersonRole::Ae),
    ("ae-3", credit::PersonRole::Ae),
    ("ana.ae", credit::PersonRole::Ae),
    ("bea.ae", credit::PersonRole::Ae),
    ("rita.revops", credit::PersonRole::Revops),
    ("rex.revops", credit::PersonRole::Revops),
    ("ops.admin", credit::PersonRole::Other),
];

async fn directory(client: &mut Client) {
    for (person, role) in PEOPLE {
        client
            .upsert_person(credit::UpsertPersonRequest {
                request_id: String::new(),
                person: Some(credit::Person {
                    person_id: (*person).into(),
                    display_name: (*person).into(),
                    role: *role as i32,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
}

/// Every test starts from a policy and the directory of its people.
async fn policy(
    client: &mut Client,
    edit: impl FnOnce(&mut credit::CreditPolicy),
) -> credit::CreditPolicy {
    directory(client).await;
    let mut policy = credit::CreditPolicy {
        origination_percent: "25".into(),
        effective_date: "2026-01-01".into(),
        ..Default::default()
    };
    edit(&mut policy);
    client
        .upsert_credit_policy(credit::UpsertCreditPolicyRequest {
            request_id: String::new(),
            policy: Some(policy),
        })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap()
}

fn deal_request(
    amount: &str,
    participants: Vec<credit::Participant>,
) -> credit::RecordDealCreditsRequest {
    credit::RecordDealCreditsRequest {
        deal_id: domain::OpportunityId::new().to_string(),
        amount: usd(amount),
        close_date: "2026-03-31".into(),
        participants,
        ..Default::default()
    }
}

/// The SPEC's worked example plus the default account-team overlay.
fn spec_deal() -> credit::RecordDealCreditsRequest {
    deal_request(
        "1000.01",
        vec![
            team(part("carla.csm", Originator, ""), "cs"),
            owner(team(part("ae-1", Delivery, "50"), "sales")),
            team(part("ae-2", Delivery, "50"), "sales"),
            part("acct-team", Overlay, ""),
        ],
    )
}

async fn record(
    client: &mut Client,
    req: credit::RecordDealCreditsRequest,
) -> credit::RecordDealCreditsResponse {
    client.record_deal_credits(req).await.unwrap().into_inner()
}

async fn deal(client: &mut Client, deal_id: &str) -> credit::DealCredits {
    client
        .get_deal_credits(credit::GetDealCreditsRequest {
            deal_id: deal_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .credits
        .unwrap()
}

async fn all_entries(client: &mut Client) -> Vec<credit::LedgerEntry> {
    client
        .list_ledger_entries(credit::ListLedgerEntriesRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

fn credits_of(d: &credit::DealCredits) -> Vec<(String, i32, String)> {
    d.entries
        .iter()
        .filter(|e| e.kind == credit::EntryKind::Credit as i32)
        .map(|e| (e.participant_id.clone(), e.role, amount(&e.amount)))
        .collect()
}

fn row(id: &str, role: credit::CreditRole, a: &str) -> (String, i32, String) {
    (id.into(), role as i32, a.into())
}

async fn credits_sum_to_the_cent_and_replays_are_idempotent(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    policy(&mut client, |_| {}).await;

    let req = spec_deal();
    let first = record(&mut client, req.clone()).await;
    assert!(first.created);
    let credits = first.credits.unwrap();
    assert_eq!(
        (credits.policy_id.as_str(), credits.policy_version),
        ("default", 1)
    );
    assert_eq!(amount(&credits.basis), "1000.01");
    assert_eq!(
        credits_of(&credits),
        [
            row("carla.csm", Originator, "250.00"),
            row("ae-1", Delivery, "375.01"),
            row("ae-2", Delivery, "375.00"),
            row("acct-team", Overlay, "50.00"),
        ]
    );
    // Every entry carries the policy version, the principal and its status.
    for e in &credits.entries {
        assert_eq!((e.policy_id.as_str(), e.policy_version), ("default", 1));
        assert_eq!(e.principal, "local");
        assert_eq!(
            e.status,
            credit::CreditStatus::Released as i32,
            "no hold by default"
        );
    }
    // The overlay picked up the policy's rule.
    assert_eq!(credits.participants[3].percent, "5");
    assert_eq!(credits.participants[3].overlay_rule, "account_team");

    // An identical replay returns the same credits and writes nothing.
    let again = record(&mut client, req.clone()).await;
    assert!(!again.created);
    assert_eq!(again.credits.unwrap().entries, credits.entries);
    assert_eq!(all_entries(&mut client).await.len(), 4);

    // A different replay is refused, naming the difference.
    let mut conflicting = req.clone();
    conflicting.amount = usd("1000.02");
    let err = client.record_deal_credits(conflicting).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(reason_of(&err), "DEAL_ALREADY_CREDITED");
    assert!(
        err.message().contains("amount: recorded USD 1000.01"),
        "{}",
        err.message()
    );
    let mut other_split = req.clone();
    other_split.participants[1].percent = "60".into();
    other_split.participants[2].percent = "40".into();
    let err = client.record_deal_credits(other_split).await.unwrap_err();
    assert!(
        err.message().contains("participants[1]"),
        "{}",
        err.message()
    );

    // A later policy version never rewrites a recorded deal; new deals use it.
    policy(&mut client, |p| p.origination_percent = "30".into()).await;
    let unchanged = deal(&mut client, &req.deal_id).await;
    assert_eq!(unchanged.policy_version, 1);
    assert_eq!(unchanged.entries, credits.entries);
    let later = record(
        &mut client,
        deal_request(
            "1000.01",
            vec![
                part("carla.csm", Originator, ""),
                part("ae-1", Delivery, ""),
            ],
        ),
    )
    .await
    .credits
    .unwrap();
    assert_eq!(later.policy_version, 2);
    assert_eq!(
        credits_of(&later),
        [
            row("carla.csm", Originator, "300.00"),
            row("ae-1", Delivery, "700.01")
        ]
    );

    // The version in force at the close date decides, not the latest one.
    policy(&mut client, |p| {
        p.origination_percent = "20".into();
        p.effective_date = "2026-07-01".into();
    })
    .await;
    let mut march = deal_request(
        "100.00",
        vec![
            part("carla.csm", Originator, ""),
            part("ae-1", Delivery, ""),
        ],
    );
    march.close_date = "2026-03-31".into();
    let mut august = march.clone();
    august.deal_id = domain::OpportunityId::new().to_string();
    august.close_date = "2026-08-01".into();
    let march = record(&mut client, march).await.credits.unwrap();
    let august = record(&mut client, august).await.credits.unwrap();
    assert_eq!(
        (
            march.policy_version,
            amount(&march.entries[0].amount).as_str()
        ),
        (2, "30.00")
    );
    assert_eq!(
        (
            august.policy_version,
            amount(&august.entries[0].amount).as_str()
        ),
        (3, "20.00")
    );

    // A CS-led deal without handoff credits the CSM with both shares.
    let mut cs_led = deal_request("1000.01", vec![part("carla.csm", Originator, "")]);
    cs_led.cs_led_without_handoff = true;
    let cs = record(&mut client, cs_led).await.credits.unwrap();
    assert_eq!(
        credits_of(&cs),
        [
            row("carla.csm", Originator, "300.00"),
            row("carla.csm", Delivery, "700.01")
        ]
    );

    // MARGIN basis: 1000.01 × 33.5% = 335.00335 → 335.00, then 20/80.
    policy(&mut client, |p| {
        p.policy_id = "margin".into();
        p.origination_percent = "20".into();
        p.basis = credit::CreditBasis::Margin as i32;
    })
    .await;
    let mut margin = deal_request(
        "1000.01",
        vec![
            part("carla.csm", Originator, ""),
            part("ae-1", Delivery, ""),
        ],
    );
    margin.policy_id = "margin".into();
    margin.margin_percent = "33.5".into();
    let m = record(&mut client, margin).await.credits.unwrap();
    assert_eq!(amount(&m.basis), "335.00");
    assert_eq!(
        credits_of(&m),
        [
            row("carla.csm", Originator, "67.00"),
            row("ae-1", Delivery, "268.00")
        ]
    );
}

async fn replacing_splits_reverses_and_keeps_the_owner(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    policy(&mut client, |_| {}).await;
    let req = spec_deal();
    let original = record(&mut client, req.clone()).await.credits.unwrap();

    let replaced = client
        .replace_deal_splits(credit::ReplaceDealSplitsRequest {
            deal_id: req.deal_id.clone(),
            participants: vec![
                part("carla.csm", Originator, ""),
                part("ae-1", Delivery, "60"),
                part("ae-3", Delivery, "40"),
            ],
            reason: "ae-3 took over delivery".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credits
        .unwrap();
    // Four reversals (ADJUSTMENT, linked to the originals) and three new credits.
    let reversals: Vec<_> = replaced
        .entries
        .iter()
        .filter(|e| e.kind == credit::EntryKind::Adjustment as i32)
        .collect();
    assert_eq!(reversals.len(), 4);
    for (reversal, credit) in reversals.iter().zip(&original.entries) {
        assert_eq!(reversal.reverses_entry_id, credit.entry_id);
        assert_eq!(
            amount(&reversal.amount),
            format!("-{}", amount(&credit.amount))
        );
    }
    let new: Vec<_> = credits_of(&replaced).into_iter().skip(4).collect();
    assert_eq!(
        new,
        [
            row("carla.csm", Originator, "250.00"),
            row("ae-1", Delivery, "450.01"),
            row("ae-3", Delivery, "300.00"),
        ]
    );
    // The owner's flag carries over; balances are the net per participant.
    assert!(replaced.participants[1].owner);
    let balance = |id: &str| {
        replaced
            .balances
            .iter()
            .find(|b| b.participant_id == id)
            .map(|b| amount(&b.amount))
            .unwrap()
    };
    assert_eq!(balance("ae-1"), "450.01");
    assert_eq!(balance("ae-2"), "0.00");
    assert_eq!(balance("acct-team"), "0.00");
    let revenue: i64 = replaced
        .balances
        .iter()
        .filter(|b| b.role != Overlay as i32)
        .map(|b| {
            domain::Money::parse("USD", &amount(&b.amount))
                .unwrap()
                .minor()
        })
        .sum();
    assert_eq!(revenue, 100_001);

    // The owner's split cannot be removed, and the refusal writes nothing.
    let before = all_entries(&mut client).await.len();
    let err = client
        .replace_deal_splits(credit::ReplaceDealSplitsRequest {
            deal_id: req.deal_id.clone(),
            participants: vec![
                part("carla.csm", Originator, ""),
                part("ae-3", Delivery, ""),
            ],
            reason: "drop the owner".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&err), "OWNER_SPLIT_REQUIRED");
    assert_eq!(all_entries(&mut client).await.len(), before);

    // Unknown deals are NOT_FOUND.
    let err = client
        .replace_deal_splits(credit::ReplaceDealSplitsRequest {
            deal_id: domain::OpportunityId::new().to_string(),
            participants: vec![part("ae-3", Delivery, "")],
            reason: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn held_credits_are_released_by_approval(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    policy(&mut client, |p| p.hold_days = 30).await;
    let req = spec_deal();
    let recorded = record(&mut client, req.clone()).await.credits.unwrap();
    assert!(
        recorded
            .entries
            .iter()
            .all(|e| e.status == credit::CreditStatus::Held as i32 && e.release_time.is_none())
    );

    // Approve one entry, then the rest of the deal.
    let one = client
        .approve_credits(credit::ApproveCreditsRequest {
            entry_ids: vec![recorded.entries[0].entry_id.clone()],
            note: "early payout approved".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .released;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].status, credit::CreditStatus::Released as i32);
    let rest = client
        .approve_credits(credit::ApproveCreditsRequest {
            deal_id: req.deal_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .released;
    assert_eq!(rest.len(), 3);
    // Approving again releases nothing more.
    let none = client
        .approve_credits(credit::ApproveCreditsRequest {
            deal_id: req.deal_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .released;
    assert!(none.is_empty());
    let after = deal(&mut client, &req.deal_id).await;
    assert!(
        after
            .entries
            .iter()
            .all(|e| e.status == credit::CreditStatus::Released as i32 && e.release_time.is_some())
    );

    let err = client
        .approve_credits(credit::ApproveCreditsRequest {
            entry_ids: vec![domain::LedgerEntryId::new().to_string()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

fn clawbacks(entries: &[credit::LedgerEntry]) -> Vec<(String, String, String)> {
    entries
        .iter()
        .filter(|e| e.kind == credit::EntryKind::Clawback as i32)
        .map(|e| {
            (
                e.participant_id.clone(),
                amount(&e.amount),
                e.reverses_entry_id.clone(),
            )
        })
        .collect()
}

async fn clawbacks_recover_released_credit_full_and_prorated(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    policy(&mut client, |_| {}).await; // FULL, 90 days, no hold
    policy(&mut client, |p| {
        p.policy_id = "prorated".into();
        p.clawback_mode = credit::ClawbackMode::Prorated as i32;
    })
    .await;
    policy(&mut client, |p| {
        p.policy_id = "held".into();
        p.hold_days = 365;
    })
    .await;

    // FULL, found by the cancelled subscription, 30 days after close.
    let subscription = domain::SubscriptionId::new().to_string();
    let mut full = spec_deal();
    full.subscription_id = subscription.clone();
    let recorded = record(&mut client, full.clone()).await.credits.unwrap();
    let cancel = |deal_id: &str, sub: &str, date: &str| credit::ApplyClawbackRequest {
        deal_id: deal_id.into(),
        subscription_id: sub.into(),
        cancel_date: date.into(),
        reason: "customer cancelled".into(),
        ..Default::default()
    };
    let applied = client
        .apply_clawback(cancel("", &subscription, "2026-04-30"))
        .await
        .unwrap()
        .into_inner();
    assert!(applied.created);
    let expected: Vec<_> = recorded
        .entries
        .iter()
        .map(|e| {
            (
                e.participant_id.clone(),
                format!("-{}", amount(&e.amount)),
                e.entry_id.clone(),
            )
        })
        .collect();
    assert_eq!(clawbacks(&applied.entries), expected);
    // A second cancellation of the same subscription claws nothing more.
    let again = client
        .apply_clawback(cancel(&full.deal_id, "", "2026-05-01"))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created);
    assert_eq!(clawbacks(&again.entries), expected);
    let after = deal(&mut client, &full.deal_id).await;
    assert!(after.clawed_back);
    assert!(after.balances.iter().all(|b| amount(&b.amount) == "0.00"));
    assert_eq!(after.entries.len(), 8);

    // PRORATED: cancelled 30 days into 90, two thirds come back, half-even.
    let mut prorated = spec_deal();
    prorated.policy_id = "prorated".into();
    record(&mut client, prorated.clone()).await;
    let applied = client
        .apply_clawback(cancel(&prorated.deal_id, "", "2026-04-30"))
        .await
        .unwrap()
        .into_inner();
    let amounts: Vec<_> = clawbacks(&applied.entries)
        .into_iter()
        .map(|(p, a, _)| (p, a))
        .collect();
    assert_eq!(
        amounts,
        [
            ("carla.csm".to_string(), "-166.67".to_string()), // 250.00 × 60/90
            ("ae-1".into(), "-250.01".into()),                // 375.01 × 60/90 = 250.0067
            ("ae-2".into(), "-250.00".into()),
            ("acct-team".into(), "-33.33".into()),
        ]
    );

    // Outside the window nothing is clawed back.
    let mut late = spec_deal();
    late.policy_id = "prorated".into();
    record(&mut client, late.clone()).await;
    let outside = client
        .apply_clawback(cancel(&late.deal_id, "", "2026-06-29"))
        .await
        .unwrap()
        .into_inner();
    assert!(!outside.created && outside.entries.is_empty());
    assert_eq!(outside.outside_window_deal_ids, [late.deal_id.clone()]);

    // Credits still held are forfeited (never paid), not recovered.
    let mut held = spec_deal();
    held.policy_id = "held".into();
    record(&mut client, held.clone()).await;
    let forfeited = client
        .apply_clawback(cancel(&held.deal_id, "", "2026-04-01"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(forfeited.entries.len(), 4);
    assert!(
        forfeited
            .entries
            .iter()
            .all(|e| e.status == credit::CreditStatus::Held as i32)
    );

    // A cancellation before the close date is bad input.
    let mut early = spec_deal();
    early.policy_id = "prorated".into();
    record(&mut client, early.clone()).await;
    let err = client
        .apply_clawback(cancel(&early.deal_id, "", "2026-01-01"))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "cancel_date");
    let err = client
        .apply_clawback(cancel(
            "",
            &domain::SubscriptionId::new().to_string(),
            "2026-04-01",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn disputes_are_adjusted_or_rejected_once(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    policy(&mut client, |_| {}).await;
    let recorded = record(&mut client, spec_deal()).await.credits.unwrap();
    let disputed = recorded.entries[1].clone();

    let open = |entry_id: &str| credit::OpenDisputeRequest {
        entry_id: entry_id.into(),
        reason: "I closed this deal alone".into(),
        ..Default::default()
    };
    let dispute = client
        .open_dispute(open(&disputed.entry_id))
        .await
        .unwrap()
        .into_inner()
        .dispute
        .unwrap();
    assert_eq!(dispute.status, credit::DisputeStatus::Open as i32);
    let err = client
        .open_dispute(open(&disputed.entry_id))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason_of(&err).as_str()),
        (Code::FailedPrecondition, "DISPUTE_ALREADY_OPEN")
    );

    let resolve = |id: &str, resolution: credit::DisputeResolution, adjustment: Option<Money>| {
        credit::ResolveDisputeRequest {
            dispute_id: id.into(),
            resolution: resolution as i32,
            adjustment,
            note: "split corrected".into(),
            ..Default::default()
        }
    };
    // A currency other than the entry's is bad input and resolves nothing.
    let err = client
        .resolve_dispute(resolve(
            &dispute.dispute_id,
            credit::DisputeResolution::Adjust,
            Some(Money {
                currency_code: "EUR".into(),
                amount: "10.00".into(),
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "adjustment.currency_code");
    let resolved = client
        .resolve_dispute(resolve(
            &dispute.dispute_id,
            credit::DisputeResolution::Adjust,
            usd("-25.50"),
        ))
        .await
        .unwrap()
        .into_inner();
    let adjustment = resolved.adjustment.unwrap();
    assert_eq!(adjustment.kind, credit::EntryKind::Adjustment as i32);
    assert_eq!(amount(&adjustment.amount), "-25.50");
    assert_eq!(adjustment.reverses_entry_id, disputed.entry_id);
    assert_eq!(
        (adjustment.participant_id.as_str(), adjustment.role),
        ("ae-1", Delivery as i32)
    );
    let d = resolved.dispute.unwrap();
    assert_eq!(d.status, credit::DisputeStatus::ResolvedAdjusted as i32);
    assert_eq!(d.adjustment_entry_id, adjustment.entry_id);
    let err = client
        .resolve_dispute(resolve(
            &dispute.dispute_id,
            credit::DisputeResolution::Reject,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason_of(&err).as_str()),
        (Code::FailedPrecondition, "DISPUTE_ALREADY_RESOLVED")
    );
    let balance = deal(&mut client, &recorded.deal_id)
        .await
        .balances
        .into_iter()
        .find(|b| b.participant_id == "ae-1")
        .unwrap();
    assert_eq!(amount(&balance.amount), "349.51");

    // Once resolved the entry may be disputed again; a rejection writes no entry.
    let second = client
        .open_dispute(open(&disputed.entry_id))
        .await
        .unwrap()
        .into_inner()
        .dispute
        .unwrap();
    let before = all_entries(&mut client).await.len();
    let rejected = client
        .resolve_dispute(resolve(
            &second.dispute_id,
            credit::DisputeResolution::Reject,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(rejected.adjustment.is_none());
    assert_eq!(
        rejected.dispute.unwrap().status,
        credit::DisputeStatus::ResolvedRejected as i32
    );
    assert_eq!(all_entries(&mut client).await.len(), before);

    // Sixteen callers dispute one entry at once: the database lets exactly one open.
    let contested = recorded.entries[0].entry_id.clone();
    let mut racers = Vec::new();
    for _ in 0..16 {
        let mut c = server.credit().await;
        let req = open(&contested);
        racers.push(tokio::spawn(async move { c.open_dispute(req).await }));
    }
    let mut opened = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => opened += 1,
            Err(err) => assert_eq!(
                (err.code(), reason_of(&err).as_str()),
                (Code::FailedPrecondition, "DISPUTE_ALREADY_OPEN"),
                "{err:?}"
            ),
        }
    }
    assert_eq!(opened, 1, "exactly one of the concurrent disputes opens");

    let err = client
        .open_dispute(open(&domain::LedgerEntryId::new().to_string()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .resolve_dispute(resolve(
            &domain::DisputeId::new().to_string(),
            credit::DisputeResolution::Reject,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn statements_and_ledger_pages(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    policy(&mut client, |_| {}).await;
    let first = spec_deal();
    record(&mut client, first.clone()).await;
    record(&mut client, spec_deal()).await;
    client
        .apply_clawback(credit::ApplyClawbackRequest {
            deal_id: first.deal_id.clone(),
            cancel_date: "2026-04-30".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // Walk the ledger two at a time: every entry once, in a stable order.
    let everything = all_entries(&mut client).await;
    assert_eq!(everything.len(), 12);
    let mut token = String::new();
    let mut walked = Vec::new();
    loop {
        let page = client
            .list_ledger_entries(credit::ListLedgerEntriesRequest {
                page_size: 5,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.entries.len() <= 5);
        walked.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(walked, everything);
    // Filters: one participant's clawbacks.
    let filtered = client
        .list_ledger_entries(credit::ListLedgerEntriesRequest {
            participant_id: "carla.csm".into(),
            kind: credit::EntryKind::Clawback as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(filtered.entries.len(), 1);
    assert_eq!(amount(&filtered.entries[0].amount), "-250.00");
    let by_role = client
        .list_ledger_entries(credit::ListLedgerEntriesRequest {
            deal_id: first.deal_id.clone(),
            role: Delivery as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_role.entries.len(), 4);
    // A time range around now holds everything; one in the future holds nothing.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = |seconds: i64| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let ranged = |start: i64, end: i64| credit::ListLedgerEntriesRequest {
        start_time: at(start),
        end_time: at(end),
        page_size: 1000,
        ..Default::default()
    };
    let around = client
        .list_ledger_entries(ranged(now - 3600, now + 3600))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(around.entries.len(), 12);
    let future = client
        .list_ledger_entries(ranged(now + 3600, now + 7200))
        .await
        .unwrap()
        .into_inner();
    assert!(future.entries.is_empty());
    let err = client
        .list_ledger_entries(ranged(now, now - 1))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "end_time");

    // A token from one query is refused by another; negative sizes are refused.
    let page = client
        .list_ledger_entries(credit::ListLedgerEntriesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let err = client
        .list_ledger_entries(credit::ListLedgerEntriesRequest {
            page_size: 1,
            page_token: page.next_page_token,
            participant_id: "ae-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "page_token");
    let err = client
        .list_ledger_entries(credit::ListLedgerEntriesRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "page_size");

    // Statement for today: two credits and one clawback for the CSM.
    let today = domain::Utc::now().date_naive();
    // One-day periods [start, start + 1).
    let statement =
        |participant: &str, team: &str, start: domain::NaiveDate| credit::GetStatementRequest {
            participant_id: participant.into(),
            team: team.into(),
            start_date: start.to_string(),
            end_date: start.succ_opt().unwrap().to_string(),
            ..Default::default()
        };
    let csm = client
        .get_statement(statement("carla.csm", "", today))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(csm.entries.len(), 3);
    let usd_figures = &csm.currencies[0];
    assert_eq!(usd_figures.currency_code, "USD");
    assert_eq!(amount(&usd_figures.opening_balance), "0.00");
    assert_eq!(amount(&usd_figures.closing_balance), "250.00");
    let totals: Vec<_> = usd_figures
        .totals
        .iter()
        .map(|t| (t.role, t.kind, amount(&t.amount)))
        .collect();
    assert_eq!(
        totals,
        [
            (
                Originator as i32,
                credit::EntryKind::Credit as i32,
                "500.00".to_string()
            ),
            (
                Originator as i32,
                credit::EntryKind::Clawback as i32,
                "-250.00".to_string()
            ),
        ]
    );
    // From tomorrow on, today's entries are the opening balance.
    let tomorrow = client
        .get_statement(statement("carla.csm", "", today.succ_opt().unwrap()))
        .await
        .unwrap()
        .into_inner();
    assert!(tomorrow.entries.is_empty());
    assert_eq!(amount(&tomorrow.currencies[0].opening_balance), "250.00");
    assert_eq!(amount(&tomorrow.currencies[0].closing_balance), "250.00");

    // Team view: CS-sourced beside Sales-closed.
    let cs_team = client
        .get_statement(statement("", "cs", today))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(amount(&cs_team.currencies[0].cs_sourced), "250.00");
    let sales_team = client
        .get_statement(statement("", "sales", today))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(amount(&sales_team.currencies[0].sales_closed), "750.01");
    assert_eq!(amount(&sales_team.currencies[0].cs_sourced), "0.00");

    // Everyone: the organisation's CS-sourced beside Sales-closed credit.
    let everyone = client
        .get_statement(statement("", "", today))
        .await
        .unwrap()
        .into_inner();
    let org = &everyone.currencies[0];
    assert_eq!(amount(&org.cs_sourced), "250.00");
    assert_eq!(amount(&org.sales_closed), "750.01");
    assert_eq!(amount(&org.overlay), "50.00");
    assert_eq!(amount(&org.closing_balance), "1050.01");
    assert_eq!(everyone.entries.len(), 12);

    // Statement entries page too.
    let paged = client
        .get_statement(credit::GetStatementRequest {
            page_size: 2,
            ..statement("carla.csm", "", today)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paged.entries.len(), 2);
    let rest = client
        .get_statement(credit::GetStatementRequest {
            page_size: 2,
            page_token: paged.next_page_token.clone(),
            ..statement("carla.csm", "", today)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.entries.len(), 1);
    assert!(rest.next_page_token.is_empty());
}

async fn bad_input_is_refused_with_the_field_and_writes_nothing(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    policy(&mut client, |_| {}).await;
    policy(&mut client, |p| {
        p.policy_id = "margin".into();
        p.basis = credit::CreditBasis::Margin as i32;
    })
    .await;

    let base = spec_deal();
    let mut cases: Vec<(credit::RecordDealCreditsRequest, &str)> = Vec::new();
    let mut edit = |field: &'static str, f: &dyn Fn(&mut credit::RecordDealCreditsRequest)| {
        let mut req = base.clone();
        f(&mut req);
        cases.push((req, field));
    };
    edit("participants[2].percent", &|r| {
        r.participants[2].percent = "49.99".into()
    });
    edit("amount.amount", &|r| r.amount = usd("-1000.00"));
    edit("amount.amount", &|r| r.amount = usd("10.001"));
    edit("amount.currency_code", &|r| {
        r.amount.as_mut().unwrap().currency_code = "usd".into()
    });
    edit("participants[1].role", &|r| r.participants[1].role = 7);
    edit("participants[0].participant_id", &|r| {
        r.participants[0].participant_id = "x".repeat(100_000)
    });
    edit("participants[3].overlay_rule", &|r| {
        r.participants[3].overlay_rule = "nope".into()
    });
    edit("deal_id", &|r| r.deal_id = "deal-1".into());
    edit("close_date", &|r| r.close_date = "2026-02-30".into());
    edit("margin_percent", &|r| r.policy_id = "margin".into());
    edit("participants", &|r| {
        r.participants.retain(|p| p.role != Delivery as i32)
    });
    for (req, field) in cases {
        let err = client.record_deal_credits(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(field_of(&err), field);
    }
    // No policy in force at the close date is a precondition, not bad input
    // (before its first stored version, `default` is the built-in one).
    let mut too_early = base.clone();
    too_early.policy_id = "margin".into();
    too_early.margin_percent = "70".into();
    too_early.close_date = "2025-06-30".into();
    let err = client.record_deal_credits(too_early).await.unwrap_err();
    assert_eq!(
        (err.code(), reason_of(&err).as_str()),
        (Code::FailedPrecondition, "NO_POLICY_IN_FORCE")
    );

    // Nothing was written by any of them.
    assert!(all_entries(&mut client).await.is_empty());
    let err = client
        .get_deal_credits(credit::GetDealCreditsRequest {
            deal_id: base.deal_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .get_deal_credits(credit::GetDealCreditsRequest {
            deal_id: "not-a-uuid".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "deal_id");

    // The other writes refuse bad input with the field too.
    let err = client
        .apply_clawback(credit::ApplyClawbackRequest::default())
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "deal_id");
    let err = client
        .open_dispute(credit::OpenDisputeRequest {
            entry_id: domain::LedgerEntryId::new().to_string(),
            reason: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "reason");
    let err = client
        .get_statement(credit::GetStatementRequest {
            participant_id: "carla.csm".into(),
            start_date: "2026-02-01".into(),
            end_date: "2026-01-01".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "end_date");
    assert!(all_entries(&mut client).await.is_empty());

    // A deal closed before the first stored `default` version is credited under
    // the built-in one: 25% / 75% of $1,000.01 and the 5% account team.
    let mut early = base.clone();
    early.close_date = "2025-06-30".into();
    let credits = client
        .record_deal_credits(early)
        .await
        .unwrap()
        .into_inner()
        .credits
        .unwrap();
    assert_eq!(
        (credits.policy_id.as_str(), credits.policy_version),
        ("default", 0)
    );
}

async fn the_database_refuses_ledger_rewrites(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    policy(&mut client, |_| {}).await;
    let req = spec_deal();
    let recorded = record(&mut client, req.clone()).await.credits.unwrap();

    let url = match &backend {
        Backend::Sqlite { dir } => storage::sqlite_url(dir.path(), "credit"),
        Backend::Postgres { url, .. } => url.clone(),
    };
    let db = sea_orm::Database::connect(&url).await.unwrap();
    let mut attempts = vec![
        "UPDATE credit_ledger_entries SET amount_minor = 0".to_owned(),
        "DELETE FROM credit_ledger_entries".to_owned(),
        format!(
            "DELETE FROM credit_ledger_entries WHERE entry_id = '{}'",
            recorded.entries[0].entry_id
        ),
        "UPDATE credit_deals SET basis_minor = 1".to_owned(),
        "DELETE FROM credit_split_sets".to_owned(),
    ];
    if backend.is_postgres() {
        attempts.push("TRUNCATE credit_ledger_entries".to_owned());
    }
    for sql in attempts {
        let err = db.execute_unprepared(&sql).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    drop(db);
    let after = deal(&mut client, &req.deal_id).await;
    assert_eq!(after.entries, recorded.entries);
}

async fn watch_events_shows_every_credit_write(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    policy(&mut client, |p| p.hold_days = 10).await;
    let req = spec_deal();
    let recorded = record(&mut client, req.clone()).await.credits.unwrap();
    client
        .replace_deal_splits(credit::ReplaceDealSplitsRequest {
            deal_id: req.deal_id.clone(),
            participants: vec![
                part("carla.csm", Originator, ""),
                part("ae-1", Delivery, ""),
            ],
            reason: "ae-2 left".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .approve_credits(credit::ApproveCreditsRequest {
            deal_id: req.deal_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let dispute = client
        .open_dispute(credit::OpenDisputeRequest {
            entry_id: recorded.entries[0].entry_id.clone(),
            reason: "check".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .dispute
        .unwrap();
    client
        .resolve_dispute(credit::ResolveDisputeRequest {
            dispute_id: dispute.dispute_id,
            resolution: credit::DisputeResolution::Reject as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .apply_clawback(credit::ApplyClawbackRequest {
            deal_id: req.deal_id.clone(),
            cancel_date: "2026-04-15".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let mut stream = client
        .watch_events(credit::WatchEventsRequest {
            options: Some(WatchEventsOptions {
                after_cursor: String::new(),
                // Every credit write but the directory's.
                event_types: [
                    "credit.policy.",
                    "credit.deal.",
                    "credit.credits.",
                    "credit.dispute.",
                ]
                .map(String::from)
                .to_vec(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let mut types = Vec::new();
    for _ in 0..7 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap()
            .event
            .unwrap();
        types.push(event.event_type);
    }
    assert_eq!(
        types,
        [
            "credit.policy.version_added",
            "credit.deal.credited",
            "credit.deal.splits_replaced",
            "credit.credits.released",
            "credit.dispute.opened",
            "credit.dispute.resolved",
            "credit.deal.clawed_back",
        ]
    );
}

async fn request_ids_and_concurrent_retries_apply_once(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    directory(&mut client).await;

    // A retried policy write with its request_id adds one version, not two.
    let upsert = |origination: &str| credit::UpsertCreditPolicyRequest {
        request_id: "policy-2026".into(),
        policy: Some(credit::CreditPolicy {
            origination_percent: origination.into(),
            effective_date: "2026-01-01".into(),
            ..Default::default()
        }),
    };
    let first = client
        .upsert_credit_policy(upsert("25"))
        .await
        .unwrap()
        .into_inner();
    let retry = client
        .upsert_credit_policy(upsert("25"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, retry);
    assert_eq!(first.policy.unwrap().version, 1);
    let err = client.upsert_credit_policy(upsert("30")).await.unwrap_err();
    assert_eq!(field_of(&err), "request_id");
    let err = client
        .upsert_credit_policy(credit::UpsertCreditPolicyRequest {
            request_id: "x".repeat(500),
            ..upsert("25")
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "request_id");

    // With a request_id a retry gets the first response back (created: true).
    let mut req = spec_deal();
    req.request_id = "close-won-42".into();
    let a = record(&mut client, req.clone()).await;
    let b = record(&mut client, req.clone()).await;
    assert!(a.created && b.created);
    assert_eq!(a, b);

    // The same deal recorded by eight callers at once: one creates, all agree.
    let concurrent = spec_deal();
    let calls = (0..8).map(|_| {
        let mut client = client.clone();
        let req = concurrent.clone();
        tokio::spawn(async move {
            client
                .record_deal_credits(req)
                .await
                .map(|r| r.into_inner())
        })
    });
    let mut created = 0;
    let mut seen = Vec::new();
    for call in calls {
        let reply = call.await.unwrap().unwrap();
        created += usize::from(reply.created);
        seen.push(reply.credits.unwrap().entries);
    }
    assert_eq!(created, 1);
    assert!(seen.windows(2).all(|w| w[0] == w[1]));

    // Eight cancellations of the deal at once claw back once.
    let calls = (0..8).map(|_| {
        let mut client = client.clone();
        let deal_id = concurrent.deal_id.clone();
        tokio::spawn(async move {
            client
                .apply_clawback(credit::ApplyClawbackRequest {
                    deal_id,
                    cancel_date: "2026-04-30".into(),
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner())
        })
    });
    let mut created = 0;
    for call in calls {
        let reply = call.await.unwrap().unwrap();
        created += usize::from(reply.created);
        assert_eq!(reply.entries.len(), 4);
    }
    assert_eq!(created, 1);
    let after = deal(&mut client, &concurrent.deal_id).await;
    assert_eq!(after.entries.len(), 8);
    assert_eq!(all_entries(&mut client).await.len(), 4 + 8);

    // A split replacement racing a clawback: whichever wins, nothing stays credited,
    // and other deals recorded meanwhile are unaffected.
    for round in 0..4 {
        let req = spec_deal();
        record(&mut client, req.clone()).await;
        let mut replacer = client.clone();
        let replace = credit::ReplaceDealSplitsRequest {
            deal_id: req.deal_id.clone(),
            participants: vec![
                part("carla.csm", Originator, ""),
                owner(part("ae-1", Delivery, "70")),
                part("ae-2", Delivery, "30"),
            ],
            reason: format!("round {round}"),
            ..Default::default()
        };
        let replace = tokio::spawn(async move { replacer.replace_deal_splits(replace).await });
        let mut clawer = client.clone();
        let claw = credit::ApplyClawbackRequest {
            deal_id: req.deal_id.clone(),
            cancel_date: "2026-04-30".into(),
            ..Default::default()
        };
        let claw = tokio::spawn(async move { clawer.apply_clawback(claw).await });
        let mut other = client.clone();
        let bystander = tokio::spawn(async move { other.record_deal_credits(spec_deal()).await });
        match replace.await.unwrap() {
            Ok(_) => {}
            Err(err) => assert_eq!(reason_of(&err), "DEAL_CLAWED_BACK", "{err:?}"),
        }
        assert!(claw.await.unwrap().unwrap().into_inner().created);
        assert!(bystander.await.unwrap().unwrap().into_inner().created);
        let settled = deal(&mut client, &req.deal_id).await;
        assert!(
            settled.balances.iter().all(|b| amount(&b.amount) == "0.00"),
            "round {round}: {:?}",
            settled.balances
        );
    }
}

/// Measures RecordDealCredits through the real binary: `cargo test -p expansion --test
/// integration credit_throughput -- --ignored --nocapture`. Prints, asserts nothing
/// about speed.
async fn record_throughput(backend: Backend, label: &str) {
    const DEALS: usize = 2000;
    const CONCURRENCY: usize = 16;
    let server = Server::start(&backend, &[]);
    let mut client = server.credit().await;
    policy(&mut client, |_| {}).await;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for _ in (worker..DEALS).step_by(CONCURRENCY) {
                let t = std::time::Instant::now();
                client.record_deal_credits(spec_deal()).await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "{label}: {DEALS} RecordDealCredits (4 entries each) at concurrency {CONCURRENCY}: \
         {:.0} deals/s, p50 {:?}, p99 {:?}",
        DEALS as f64 / elapsed.as_secs_f64(),
        pct(50),
        pct(99)
    );
    assert_eq!(all_entries(&mut client).await.len(), 1000.min(DEALS * 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run on demand"]
async fn credit_throughput_sqlite() {
    record_throughput(Backend::sqlite(), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run on demand"]
async fn credit_throughput_postgres() {
    if let Some(backend) = Backend::postgres().await {
        record_throughput(backend, "postgres").await;
    }
}
