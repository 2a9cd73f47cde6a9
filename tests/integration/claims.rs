//! Work shared by replicas: outbox deliveries and the health recompute
//! queue are claimed with short leases renewed while the work runs, and an
//! event cursor never passes over an event that commits later. Each test
//! drives the library on one database as replicas would — on PostgreSQL
//! each "replica" has its own pool; on SQLite, where the process is the one
//! writer, they share the write gate as a service's tasks do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use account_health::model::signal::{NewSignal, SignalKind};
use account_health::model::{AccountInput, AccountKey};
use account_health::store::Store;
use migrations::MigratorTrait;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, TransactionTrait};
use storage::WriteGate;
use storage::events::{EventLog, NewEvent, StoredEvent};
use storage::outbox::{Courier, Failure, Outbox, Retry};

use crate::harness::Backend;
use crate::on_both_databases;

on_both_databases!(
    two_dispatchers_never_send_one_delivery_at_once,
    a_dead_dispatchers_claim_lapses_within_its_lease,
    a_later_append_waits_for_the_earlier_to_commit,
    concurrent_writers_never_make_a_watcher_skip,
    two_recomputers_write_one_history_row_per_change,
    a_mark_on_a_claimed_account_counts_and_a_dead_claim_lapses,
    an_idle_dispatcher_takes_no_turn_at_the_write_gate,
);

const EVENTS: &str = "health_events";

/// A migrated health database.
async fn health_db(backend: &Backend) -> DatabaseConnection {
    let db = storage::connect(&backend.database_url("health"))
        .await
        .unwrap();
    migrations::health::Migrator::up(&db, None).await.unwrap();
    db
}

/// A second pool to the same database: another replica's.
async fn replica(backend: &Backend) -> DatabaseConnection {
    storage::connect(&backend.database_url("health"))
        .await
        .unwrap()
}

fn outbox(log: &EventLog, gate: &WriteGate, lease: chrono::Duration) -> Outbox {
    Outbox::new(
        log.clone(),
        "health_deliveries",
        "health_outbox_cursor",
        gate.clone(),
    )
    .with_retry(Retry {
        lease,
        ..Retry::default()
    })
}

/// Appends `n` events in one transaction; their ids.
async fn append(
    db: &DatabaseConnection,
    gate: &WriteGate,
    log: &EventLog,
    n: usize,
) -> Vec<String> {
    let events: Vec<NewEvent> = (0..n)
        .map(|i| NewEvent {
            event_type: "test.claimed".into(),
            subject_id: format!("subject-{i}"),
            data: serde_json::json!({"n": i}),
        })
        .collect();
    let _write = gate.enter().await;
    let txn = db.begin().await.unwrap();
    log.append(&txn, &events).await.unwrap();
    txn.commit().await.unwrap();
    log.committed();
    log.read_after(db, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect()
}

/// Sends every event to `receiver`, noting each attempt, and how many of
/// one event were in flight at once. The first `slow` events take `slow_for`.
#[derive(Default)]
struct Recorder {
    in_flight: Mutex<HashMap<String, usize>>,
    overlaps: Mutex<Vec<String>>,
    attempts: Mutex<BTreeMap<String, usize>>,
    first_attempt: Mutex<HashMap<String, Instant>>,
    slow: Mutex<BTreeSet<String>>,
    slow_for: Duration,
}

#[tonic::async_trait]
impl Courier for Recorder {
    fn targets(&self, _event: &StoredEvent) -> Vec<&'static str> {
        vec!["receiver"]
    }

    async fn deliver(&self, _target: &str, event: &StoredEvent) -> Result<(), Failure> {
        let id = event.event_id.clone();
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            let now = in_flight.entry(id.clone()).or_default();
            *now += 1;
            if *now > 1 {
                self.overlaps.lock().unwrap().push(id.clone());
            }
        }
        *self.attempts.lock().unwrap().entry(id.clone()).or_default() += 1;
        self.first_attempt
            .lock()
            .unwrap()
            .entry(id.clone())
            .or_insert_with(Instant::now);
        let slow = self.slow.lock().unwrap().contains(&id);
        tokio::time::sleep(if slow {
            self.slow_for
        } else {
            Duration::from_millis(10)
        })
        .await;
        *self.in_flight.lock().unwrap().entry(id).or_default() -= 1;
        Ok(())
    }
}

async fn delivered(db: &DatabaseConnection, outbox: &Outbox) -> usize {
    outbox
        .page(
            db,
            Some(storage::outbox::DeliveryStatus::Delivered),
            None,
            1000,
        )
        .await
        .unwrap()
        .len()
}

/// Two dispatchers on one database, each delivery slower than the lease
/// for some: renewal keeps each claim with its dispatcher, so no delivery
/// is ever sent by both, and each is sent once.
async fn two_dispatchers_never_send_one_delivery_at_once(backend: Backend) {
    const N: usize = 24;
    let db = health_db(&backend).await;
    let log = EventLog::new(EVENTS);
    let gate = WriteGate::for_db(&db);
    let ids = append(&db, &gate, &log, N).await;
    let courier = Arc::new(Recorder {
        slow_for: Duration::from_millis(1500),
        ..Recorder::default()
    });
    courier
        .slow
        .lock()
        .unwrap()
        .extend(ids.iter().take(4).cloned());
    // A lease shorter than the slow deliveries: only renewal keeps them.
    let lease = chrono::Duration::milliseconds(600);
    let a = outbox(&log, &gate, lease);
    let b = outbox(&log, &gate, lease);
    let other = if backend.is_postgres() {
        replica(&backend).await
    } else {
        db.clone()
    };
    let started = Instant::now();
    let first = a.clone().spawn(db.clone(), courier.clone());
    let second = b.spawn(other, courier.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(&db, &a).await < N {
        assert!(Instant::now() < deadline, "not every delivery was made");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    // A moment more: a second send of anything would show now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.abort();
    second.abort();
    assert_eq!(
        courier.overlaps.lock().unwrap().clone(),
        Vec::<String>::new()
    );
    let attempts = courier.attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), N);
    assert!(
        attempts.values().all(|n| *n == 1),
        "each delivery sent once: {attempts:?}"
    );
    println!(
        "two dispatchers: {N} deliveries, each sent once, in {} ms",
        took.as_millis()
    );
}

/// A dispatcher claims a delivery and dies (its lease is never renewed and
/// no outcome is written): another one sends it once the lease lapses, a
/// few seconds later, not after 30.
async fn a_dead_dispatchers_claim_lapses_within_its_lease(backend: Backend) {
    let db = health_db(&backend).await;
    let log = EventLog::new(EVENTS);
    let gate = WriteGate::for_db(&db);
    let ids = append(&db, &gate, &log, 1).await;
    let courier = Arc::new(Recorder::default());
    let dead = outbox(&log, &gate, storage::outbox::LEASE);
    dead.stage(&db, courier.as_ref()).await.unwrap();
    let claim = dead.claim(&db).await.unwrap().expect("a due delivery");
    let claimed = Instant::now();
    assert_eq!(claim.delivery.event_id, ids[0]);
    drop(claim);

    let other = if backend.is_postgres() {
        replica(&backend).await
    } else {
        db.clone()
    };
    let live = outbox(&log, &gate, storage::outbox::LEASE);
    let dispatcher = live.clone().spawn(other, courier.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered(&db, &live).await < 1 {
        assert!(Instant::now() < deadline, "the claim never lapsed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dispatcher.abort();
    let sent_after = courier.first_attempt.lock().unwrap()[&ids[0]] - claimed;
    let lease = storage::outbox::LEASE.to_std().unwrap();
    // Not before the lease (it is the dead one's), within a second or so after it.
    assert!(
        sent_after >= lease - Duration::from_millis(100),
        "{sent_after:?}"
    );
    assert!(
        sent_after < lease + Duration::from_secs(3),
        "{sent_after:?}"
    );
    assert_eq!(courier.attempts.lock().unwrap()[&ids[0]], 1);
    println!(
        "a dead dispatcher's claim: sent again {} ms after it was claimed",
        sent_after.as_millis()
    );
}

/// A dispatcher with nothing due writes nothing: on SQLite its passes
/// leave the write epoch alone, so answers kept in memory between writes
/// stay valid while the process idles; a due delivery still takes its turn.
async fn an_idle_dispatcher_takes_no_turn_at_the_write_gate(backend: Backend) {
    let db = health_db(&backend).await;
    let log = EventLog::new(EVENTS);
    let gate = WriteGate::for_db(&db);
    let courier = Recorder::default();
    let idle = outbox(&log, &gate, storage::outbox::LEASE);
    let before = gate.epoch();
    for _ in 0..5 {
        assert_eq!(idle.stage(&db, &courier).await.unwrap(), 0);
        assert_eq!(idle.dispatch(&db, &courier).await.unwrap(), 0);
    }
    assert_eq!(gate.epoch(), before, "an idle pass moved the write epoch");

    append(&db, &gate, &log, 1).await;
    idle.stage(&db, &courier).await.unwrap();
    let staged = gate.epoch();
    assert_eq!(idle.dispatch(&db, &courier).await.unwrap(), 1);
    assert_eq!(delivered(&db, &idle).await, 1);
    if backend.is_postgres() {
        assert_eq!(gate.epoch(), None, "PostgreSQL's gate is open");
    } else {
        assert!(gate.epoch() > staged, "a delivery's writes took no turn");
        let settled = gate.epoch();
        assert_eq!(idle.dispatch(&db, &courier).await.unwrap(), 0);
        assert_eq!(gate.epoch(), settled);
    }
}

/// The case that makes cursors skip elsewhere: the later-numbered event
/// committing first. An append waits for the earlier one's transaction
/// (an advisory lock on PostgreSQL, the write gate on SQLite), so a reader
/// sees neither until the first commits, then both, in order.
async fn a_later_append_waits_for_the_earlier_to_commit(backend: Backend) {
    let db = health_db(&backend).await;
    let log = EventLog::new(EVENTS);
    let gate = WriteGate::for_db(&db);
    let event = |n: u32| NewEvent {
        event_type: "test.ordered".into(),
        subject_id: format!("writer-{n}"),
        data: serde_json::json!({"writer": n}),
    };

    let first_guard = gate.enter().await;
    let first = db.begin().await.unwrap();
    log.append(&first, &[event(1)]).await.unwrap();

    let second = {
        let (db, gate, log) = (
            if backend.is_postgres() {
                replica(&backend).await
            } else {
                db.clone()
            },
            gate.clone(),
            log.clone(),
        );
        let event = event(2);
        tokio::spawn(async move {
            let _write = gate.enter().await;
            let txn = db.begin().await.unwrap();
            log.append(&txn, &[event]).await.unwrap();
            txn.commit().await.unwrap();
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !second.is_finished(),
        "the second append committed before the first"
    );
    assert_eq!(log.read_after(&db, 0, 10).await.unwrap(), Vec::new());

    first.commit().await.unwrap();
    drop(first_guard);
    second.await.unwrap();
    let read = log.read_after(&db, 0, 10).await.unwrap();
    let writers: Vec<&str> = read.iter().map(|e| e.subject_id.as_str()).collect();
    assert_eq!(writers, ["writer-1", "writer-2"]);
    assert!(read[0].seq < read[1].seq);
}

/// Four writers commit events at once, each holding its transaction open
/// a random moment after appending; a watcher following the log from the
/// start must see every event exactly once, in `seq` order.
async fn concurrent_writers_never_make_a_watcher_skip(backend: Backend) {
    use tokio_stream::StreamExt;
    const WRITERS: usize = 4;
    const TXNS: usize = 30;
    let db = health_db(&backend).await;
    let log = EventLog::new(EVENTS);
    let gate = WriteGate::for_db(&db);
    let mut watch = log.watch(db.clone(), 0, Vec::new());
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let db = if backend.is_postgres() {
            replica(&backend).await
        } else {
            db.clone()
        };
        let (gate, log) = (gate.clone(), log.clone());
        writers.push(tokio::spawn(async move {
            for t in 0..TXNS {
                let events: Vec<NewEvent> = (0..1 + (w + t) % 3)
                    .map(|i| NewEvent {
                        event_type: "test.concurrent".into(),
                        subject_id: format!("w{w}-t{t}-{i}"),
                        data: serde_json::json!({}),
                    })
                    .collect();
                let _write = gate.enter().await;
                let txn = db.begin().await.unwrap();
                log.append(&txn, &events).await.unwrap();
                // Hold the transaction open a little while others append.
                let pause = u64::try_from((w * 7 + t * 13) % 5).unwrap();
                tokio::time::sleep(Duration::from_millis(pause)).await;
                txn.commit().await.unwrap();
                log.committed();
            }
        }));
    }
    let expected: usize = (0..WRITERS)
        .flat_map(|w| (0..TXNS).map(move |t| 1 + (w + t) % 3))
        .sum();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < expected {
        let next = tokio::time::timeout_at(deadline.into(), watch.next())
            .await
            .unwrap_or_else(|_| panic!("the watcher saw {} of {expected}", seen.len()));
        seen.push(next.unwrap().unwrap());
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let stored = log.read_after(&db, 0, 100_000).await.unwrap();
    assert_eq!(stored.len(), expected);
    let seen_seqs: Vec<i64> = seen.iter().map(|e| e.seq).collect();
    let stored_seqs: Vec<i64> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(
        seen_seqs, stored_seqs,
        "the watcher skipped or repeated an event"
    );
    // Nothing more arrives.
    let more = tokio::time::timeout(Duration::from_millis(600), watch.next()).await;
    assert!(more.is_err(), "an event after the last: {more:?}");
}

/// A history row's score, band and coverage.
type HistoryRow = (Option<i64>, Option<String>, i64);

/// Two recomputers (replicas on PostgreSQL; the worker and reads on
/// SQLite) draining one dirty queue while signals keep landing: every
/// change of an account's health is one history row and at most one band
/// event — no two consecutive rows of an account are equal.
async fn two_recomputers_write_one_history_row_per_change(backend: Backend) {
    const ACCOUNTS: usize = 6;
    const ROUNDS: i64 = 6;
    let db = health_db(&backend).await;
    let one = Store::new(db.clone());
    let two = if backend.is_postgres() {
        Store::new(replica(&backend).await)
    } else {
        one.clone()
    };
    let mut accounts = Vec::new();
    for n in 0..ACCOUNTS {
        let input = AccountInput {
            key: AccountKey::External(
                domain::ExternalId::parse("crm", &format!("claims-{n}")).unwrap(),
            ),
            external: None,
            name: format!("Claimed {n}"),
            segment: None,
            customer_since: None,
            fiscal_year_start_month: 1,
            owner_csm: None,
            parent: None,
        };
        let (account, _) = one.upsert_account(&input, "test").await.unwrap();
        accounts.push(domain::AccountId::parse(&account.id).unwrap());
    }
    for round in 0..ROUNDS {
        // 2^round NPS answers of 10, then of 0, in turn: the average swings
        // across a band boundary every round (100, 10, 75, 10, 40, 10 points),
        // so every round is one change of every account.
        let value = if round % 2 == 0 { 10 } else { 0 };
        let batch: Vec<NewSignal> = accounts
            .iter()
            .enumerate()
            .flat_map(|(n, account)| {
                (0..1_u32 << round).map(move |i| NewSignal {
                    account_id: *account,
                    product_id: None,
                    kind: SignalKind::Nps,
                    value_e4: value * 10_000,
                    limit_e4: None,
                    occurred_at: storage::now() - chrono::Duration::minutes(ROUNDS - round),
                    source: "claims".into(),
                    external_id: Some(format!("r{round}-a{n}-{i}")),
                    detail: None,
                })
            })
            .collect();
        one.record_signals("signals", &batch).await.unwrap();
        // Both drain the queue at once, and reads of every account race them.
        let mut racers = Vec::new();
        for store in [one.clone(), two.clone()] {
            racers.push(tokio::spawn(async move {
                store.refresh_dirty(false).await.unwrap();
            }));
        }
        for (n, account) in accounts.iter().enumerate() {
            let store = if n % 2 == 0 { one.clone() } else { two.clone() };
            let id = *account;
            racers.push(tokio::spawn(async move {
                store.account_health(id).await.unwrap();
            }));
        }
        for racer in racers {
            racer.await.unwrap();
        }
    }
    one.refresh_all_dirty().await.unwrap();

    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT account_id, product_id, score_e2, band, coverage_e2 FROM health_scores \
             ORDER BY account_id, product_id, computed_at, id",
        ))
        .await
        .unwrap();
    let mut history: BTreeMap<(String, String), Vec<HistoryRow>> = BTreeMap::new();
    for row in rows {
        history
            .entry((
                row.try_get("", "account_id").unwrap(),
                row.try_get("", "product_id").unwrap(),
            ))
            .or_default()
            .push((
                row.try_get("", "score_e2").unwrap(),
                row.try_get("", "band").unwrap(),
                row.try_get("", "coverage_e2").unwrap(),
            ));
    }
    assert_eq!(history.len(), ACCOUNTS, "{history:?}");
    let mut total = 0;
    for (key, rows) in &history {
        total += rows.len();
        for pair in rows.windows(2) {
            assert_ne!(
                pair[0], pair[1],
                "a repeated history row of {key:?}: {rows:?}"
            );
        }
        assert_eq!(
            rows.len(),
            usize::try_from(ROUNDS).unwrap(),
            "one row per round's change: {rows:?}"
        );
    }
    // Band events: each one moves the band, never to where it already was.
    let log = EventLog::new(EVENTS);
    let mut bands: HashMap<(String, String), Option<String>> = HashMap::new();
    for event in log.read_after(&db, 0, 100_000).await.unwrap() {
        if event.event_type != "health.band.changed" {
            continue;
        }
        let key = (
            event.data["account_id"].as_str().unwrap().to_owned(),
            event.data["product_id"].as_str().unwrap().to_owned(),
        );
        let band = event.data["band"].as_str().map(str::to_owned);
        let previous = event.data["previous_band"].as_str().map(str::to_owned);
        let known = bands.insert(key.clone(), band.clone());
        assert_ne!(previous, band, "{event:?}");
        assert_eq!(
            known.unwrap_or(None),
            previous,
            "a repeated band event: {event:?}"
        );
    }
    let left: Vec<String> = account_health::entity::dirty::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.account_id)
        .collect();
    assert_eq!(left, Vec::<String>::new(), "accounts left dirty");
    println!(
        "two recomputers: {total} history rows over {ACCOUNTS} accounts × {ROUNDS} rounds, none repeated"
    );
}

/// A replica claimed an account and died: a mark landing meanwhile counts
/// one more generation (so that replica, alive, would have left the mark),
/// and a read of the account waits for the claim to lapse, then recomputes
/// it and clears the mark.
async fn a_mark_on_a_claimed_account_counts_and_a_dead_claim_lapses(backend: Backend) {
    use account_health::entity::dirty;
    use sea_orm::{ActiveModelTrait, Set};
    let db = health_db(&backend).await;
    let store = Store::new(db.clone());
    let input = AccountInput {
        key: AccountKey::New,
        external: None,
        name: "Claimed and abandoned".into(),
        segment: None,
        customer_since: None,
        fiscal_year_start_month: 1,
        owner_csm: None,
        parent: None,
    };
    let (account, _) = store.upsert_account(&input, "test").await.unwrap();
    store.refresh_all_dirty().await.unwrap();
    assert!(
        dirty::Entity::find_by_id(account.id.clone())
            .one(&db)
            .await
            .unwrap()
            .is_none()
    );

    // The dead replica's claim, 3 s left on its lease.
    let lapses = storage::now() + chrono::Duration::seconds(3);
    dirty::ActiveModel {
        account_id: Set(account.id.clone()),
        marked_at: Set(storage::now()),
        generation: Set(0),
        claimed_until: Set(Some(lapses)),
    }
    .insert(&db)
    .await
    .unwrap();
    let signal = |n: u32, value: i64| NewSignal {
        account_id: domain::AccountId::parse(&account.id).unwrap(),
        product_id: None,
        kind: SignalKind::Nps,
        value_e4: value * 10_000,
        limit_e4: None,
        occurred_at: storage::now(),
        source: "claims".into(),
        external_id: Some(format!("abandoned-{n}")),
        detail: None,
    };
    store
        .record_signals("signals", &[signal(1, 10)])
        .await
        .unwrap();
    store
        .record_signals("signals", &[signal(2, 9)])
        .await
        .unwrap();
    let row = dirty::Entity::find_by_id(account.id.clone())
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.generation, 2, "each mark on a claimed account counts");
    assert_eq!(
        row.claimed_until,
        Some(lapses),
        "a mark leaves the claim alone"
    );

    let asked = Instant::now();
    let view = store
        .account_health(domain::AccountId::parse(&account.id).unwrap())
        .await
        .unwrap();
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(2500),
        "read before the claim lapsed: {waited:?}"
    );
    assert!(waited < Duration::from_secs(7), "{waited:?}");
    assert_eq!(view.overall.row.band.as_deref(), Some("GREEN"), "{view:?}");
    assert!(
        dirty::Entity::find_by_id(account.id.clone())
            .one(&db)
            .await
            .unwrap()
            .is_none()
    );
    println!(
        "a dead recomputer's claim: the read recomputed {} ms later",
        waited.as_millis()
    );
}
