//! `--metrics-listen`: a scrape of `/metrics` after a few calls shows them
//! by method and status code, their latency, the signals ingested and the
//! outbox backlog.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use contracts::pb::common::v1::{Money, Segment};
use contracts::pb::health::v1 as health;

use crate::harness::{Backend, Server};
use crate::on_both_databases;

on_both_databases!(metrics_count_calls_signals_and_the_outbox_backlog);

/// One plain HTTP/1.1 request; returns the status line and the body.
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

const HEALTH: &str = "expansion.health.v1.AccountHealthService";

fn handled(method: &str, code: &str) -> String {
    format!(
        r#"grpc_server_handled_total{{grpc_service="{HEALTH}",grpc_method="{method}",grpc_code="{code}"}}"#
    )
}

fn latency_count(method: &str) -> String {
    format!(
        r#"grpc_server_handling_seconds_count{{grpc_service="{HEALTH}",grpc_method="{method}"}}"#
    )
}

async fn metrics_count_calls_signals_and_the_outbox_backlog(backend: Backend) {
    // Health alone, with no credit service to deliver clawbacks to: a
    // cancellation's delivery stays pending.
    let server = Server::start(
        &backend,
        &["--service", "health", "--metrics-listen", "127.0.0.1:0"],
    );
    let metrics = server.metrics_addr.clone().expect("metrics on ADDR");
    let mut h = server.health().await;

    let account = h
        .upsert_account(health::UpsertAccountRequest {
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: "metrics-acme".into(),
            }),
            name: "Metrics Acme".into(),
            segment: Segment::Enterprise as i32,
            customer_since: "2025-01-01".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .account_id;
    let refused = h
        .get_account(health::GetAccountRequest {
            account_id: "not-an-id".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let product = h
        .upsert_product(health::UpsertProductRequest {
            request_id: String::new(),
            product: Some(health::Product {
                name: "Storage".into(),
                tiers: vec!["STARTER".into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap()
        .product_id;
    let signals = health::RecordSignalsRequest {
        request_id: String::new(),
        signals: ["m-1", "m-2"]
            .map(|id| health::Signal {
                account_id: account.clone(),
                kind: health::SignalKind::Nps as i32,
                value: "9".into(),
                source: "survey".into(),
                external_id: id.into(),
                ..Default::default()
            })
            .to_vec(),
    };
    // The second batch repeats the first: two duplicates.
    for _ in 0..2 {
        h.record_signals(signals.clone()).await.unwrap();
    }
    let subscription = h
        .upsert_subscription(health::UpsertSubscriptionRequest {
            subscription: Some(health::Subscription {
                account_id: account.clone(),
                product_id: product,
                tier: "STARTER".into(),
                mrr: Some(Money {
                    currency_code: "USD".into(),
                    amount: "1000.00".into(),
                }),
                start_date: "2025-02-01".into(),
                source_opportunity_id: "01937a9e-5c3e-7d2a-9a51-6b3f2c1d0e99".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap()
        .subscription_id;
    h.cancel_subscription(health::CancelSubscriptionRequest {
        subscription_id: subscription,
        cancel_date: "2025-03-01".into(),
        reason: "churned".into(),
        ..Default::default()
    })
    .await
    .unwrap();

    // The dispatcher stages the clawback within a pass or two.
    let mut text = String::new();
    for _ in 0..100 {
        let (status, body) = http_get(&metrics, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        text = body;
        if sample(&text, r#"expansion_outbox_pending{outbox="health"}"#) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        sample(&text, r#"expansion_outbox_pending{outbox="health"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"expansion_outbox_parked{outbox="health"}"#),
        Some(0.0)
    );
    let age = sample(
        &text,
        r#"expansion_outbox_oldest_pending_age_seconds{outbox="health"}"#,
    )
    .unwrap();
    assert!(age > 0.0 && age < 60.0, "oldest pending age {age}");
    // A health-only process has no pipeline outbox.
    assert!(!text.contains(r#"outbox="pipeline""#));

    for (method, code, n) in [
        ("UpsertAccount", "OK", 1.0),
        ("GetAccount", "InvalidArgument", 1.0),
        ("RecordSignals", "OK", 2.0),
        ("CancelSubscription", "OK", 1.0),
    ] {
        assert_eq!(
            sample(&text, &handled(method, code)),
            Some(n),
            "{method} {code}:\n{text}"
        );
    }
    assert_eq!(sample(&text, &handled("GetAccount", "OK")), None);
    assert_eq!(sample(&text, &latency_count("GetAccount")), Some(1.0));
    assert_eq!(sample(&text, &latency_count("RecordSignals")), Some(2.0));
    let le_30s = format!(
        r#"grpc_server_handling_seconds_bucket{{le="30.0",grpc_service="{HEALTH}",grpc_method="RecordSignals"}}"#
    );
    assert_eq!(sample(&text, &le_30s), Some(2.0), "{text}");
    assert_eq!(sample(&text, "expansion_signals_accepted_total"), Some(2.0));
    assert_eq!(
        sample(&text, "expansion_signals_duplicate_total"),
        Some(2.0)
    );
    assert!(text.trim_end().ends_with("# EOF"));

    let (status, _) = http_get(&metrics, "/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    // A health read of an account nothing changed is one statement on
    // PostgreSQL, and none on SQLite, where it is answered from memory; the
    // idle server's own polling adds a few in between.
    const READS: u32 = 50;
    let read = health::GetAccountHealthRequest {
        account_id: account.clone(),
    };
    h.get_account_health(read.clone()).await.unwrap();
    let statements = || {
        let (_, text) = http_get(&metrics, "/metrics");
        sample(&text, r#"expansion_db_statements_total{service="health"}"#).unwrap()
    };
    let before = statements();
    for _ in 0..READS {
        h.get_account_health(read.clone()).await.unwrap();
    }
    let sent = statements() - before;
    let reads = f64::from(READS);
    println!("{READS} health reads: {sent} statements");
    let (least, most) = if backend.is_postgres() {
        (reads, reads + 25.0)
    } else {
        (0.0, 25.0)
    };
    assert!(
        (least..=most).contains(&sent),
        "{READS} reads sent {sent} statements"
    );
}
