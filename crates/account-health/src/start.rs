//! The health service started: what `expansion serve` wires in.

use std::sync::Arc;
use std::time::Duration;

use contracts::client::Peer;
use sea_orm::DatabaseConnection;

use crate::HealthService;

/// The services health calls, if this deployment knows where they are.
pub struct Peers {
    /// The credit service, asked to claw back credits when a subscription
    /// that a won deal grew is cancelled.
    pub credit: Option<Peer>,
    /// The deadline of each peer call.
    pub timeout: Duration,
}

/// The health service over `db` with its background work running: the
/// webhooks dispatcher, the recompute worker (scores and triggers of dirty
/// accounts, the daily sweep) and the outbox to credit; at most
/// `read_cache` health answers kept in memory between writes (SQLite only).
pub fn start(
    db: DatabaseConnection,
    webhooks: webhooks::Policy,
    peers: Peers,
    read_cache: usize,
) -> Result<storage::Started<HealthService>, String> {
    let health = HealthService::new(db.clone())
        .with_webhook_policy(webhooks)
        .with_read_cache(read_cache);
    let (webhooks_task, webhooks_outbox) = health.webhooks().start("health_webhooks")?;
    let credit = peers
        .credit
        .map(|peer| peer.channel(peers.timeout))
        .transpose()?;
    let outbox = crate::outbox::outbox(health.write_gate(), health.event_log());
    let watched = storage::Watched {
        name: "health",
        outbox: outbox.clone(),
        db: db.clone(),
    };
    let courier = Arc::new(crate::outbox::HealthCourier::new(credit));
    let tasks = vec![
        webhooks_task,
        health.spawn_background(),
        outbox.spawn(db, courier),
    ];
    Ok(storage::Started {
        service: health,
        tasks,
        outboxes: vec![webhooks_outbox, watched],
    })
}
