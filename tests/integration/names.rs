//! The health service's lists carry the account's and the product's names
//! beside their ids (read from its own tables), so a person reading a list
//! of triggers, health rows or subscriptions needs no second call.

use contracts::pb::common::v1::{Money, Segment};
use contracts::pb::health::v1 as health;

use crate::harness::{Backend, Server};
use crate::on_both_databases;

on_both_databases!(health_lists_name_their_accounts_and_products);

async fn health_lists_name_their_accounts_and_products(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut h = server.health().await;
    let account = h
        .upsert_account(health::UpsertAccountRequest {
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: "names-acme".into(),
            }),
            name: "Acme Corp".into(),
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
    let product = h
        .upsert_product(health::UpsertProductRequest {
            request_id: String::new(),
            product: Some(health::Product {
                name: "Storage".into(),
                tiers: vec!["STARTER".into(), "ENTERPRISE".into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap()
        .product_id;
    h.upsert_subscription(health::UpsertSubscriptionRequest {
        subscription: Some(health::Subscription {
            account_id: account.clone(),
            product_id: product.clone(),
            tier: "STARTER".into(),
            mrr: Some(Money {
                currency_code: "USD".into(),
                amount: "2000.00".into(),
            }),
            start_date: "2025-02-01".into(),
            quota_limit: 100,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    h.record_signals(health::RecordSignalsRequest {
        request_id: String::new(),
        signals: vec![health::Signal {
            account_id: account.clone(),
            product_id: product.clone(),
            kind: health::SignalKind::Usage as i32,
            value: "92".into(),
            limit: "100".into(),
            source: "telemetry".into(),
            external_id: "names-usage".into(),
            ..Default::default()
        }],
    })
    .await
    .unwrap();

    let subscriptions = h
        .list_subscriptions(health::ListSubscriptionsRequest {
            account_id: account.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(
        (
            subscriptions[0].account_name.as_str(),
            subscriptions[0].product_name.as_str()
        ),
        ("Acme Corp", "Storage")
    );

    // Reading the health recomputes it (the account is dirty), then the triggers.
    let current = h
        .get_account_health(health::GetAccountHealthRequest {
            account_id: account.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .health
        .unwrap();
    let overall = current.overall.unwrap();
    assert_eq!(
        (overall.account_name.as_str(), overall.product_name.as_str()),
        ("Acme Corp", "")
    );
    let storage = current
        .products
        .iter()
        .find(|p| p.product_id == product)
        .unwrap();
    assert_eq!(storage.product_name, "Storage");
    assert_eq!(storage.account_name, "Acme Corp");

    let triggers = h
        .list_triggers(health::ListTriggersRequest {
            account_id: account.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .triggers;
    let capacity = triggers
        .iter()
        .find(|t| t.kind == health::TriggerKind::UsageCapacity as i32)
        .expect("a capacity trigger");
    assert_eq!(
        (
            capacity.account_name.as_str(),
            capacity.product_name.as_str()
        ),
        ("Acme Corp", "Storage")
    );
    let one = h
        .get_trigger(health::GetTriggerRequest {
            trigger_id: capacity.trigger_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .trigger
        .unwrap();
    assert_eq!(one.account_name, "Acme Corp");

    let listed = h
        .list_account_health(health::ListAccountHealthRequest::default())
        .await
        .unwrap()
        .into_inner()
        .scores;
    assert!(
        listed.iter().any(|s| s.account_name == "Acme Corp"),
        "{listed:?}"
    );
    let history = h
        .get_health_history(health::GetHealthHistoryRequest {
            account_id: account.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    assert!(!history.is_empty());
    assert!(
        history.iter().all(|p| p.account_name == "Acme Corp"),
        "{history:?}"
    );

    // A renamed account reads with its new name at once.
    h.upsert_account(health::UpsertAccountRequest {
        external_ref: Some(health::ExternalRef {
            system: "salesforce".into(),
            id: "names-acme".into(),
        }),
        name: "Acme Corporation".into(),
        segment: Segment::Enterprise as i32,
        customer_since: "2025-01-01".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let renamed = h
        .list_subscriptions(health::ListSubscriptionsRequest {
            account_id: account,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(renamed[0].account_name, "Acme Corporation");
}
