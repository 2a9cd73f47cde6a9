//! The pipeline service started: what `expansion serve` wires in.

use std::sync::Arc;
use std::time::Duration;

use contracts::client::Peer;
use sea_orm::DatabaseConnection;

use crate::{
    GrpcHealthGateway, GrpcPeopleDirectory, HealthGateway, NoHealthService, NoPeopleDirectory,
    PeopleDirectory, PipelineConfig, PipelineService,
};

/// The services the pipeline calls, if this deployment knows where they are.
pub struct Peers {
    /// The health service: gates, references, and a won deal's subscription.
    pub health: Option<Peer>,
    /// The credit service: its people directory, and a won deal's credits.
    pub credit: Option<Peer>,
    /// The deadline of each peer call.
    pub timeout: Duration,
}

/// The pipeline service over `db` with its background work running: the
/// webhooks dispatcher and the close-won outbox to health and credit.
pub fn start(
    db: DatabaseConnection,
    config: PipelineConfig,
    webhooks: webhooks::Policy,
    peers: Peers,
) -> Result<storage::Started<PipelineService>, String> {
    let health: Arc<dyn HealthGateway> = match &peers.health {
        Some(peer) => {
            tracing::info!(health = %peer.address, "pipeline asks the health service at");
            Arc::new(GrpcHealthGateway::new(
                &peer.address,
                peers.timeout,
                &peer.options,
            )?)
        }
        None => {
            tracing::warn!(
                "no --health-addr: pipeline calls that need the health service answer UNAVAILABLE"
            );
            Arc::new(NoHealthService)
        }
    };
    let credit = peers
        .credit
        .as_ref()
        .map(|peer| peer.channel(peers.timeout))
        .transpose()?;
    // Who accepts a handoff is asked of the credit service's people directory.
    let people: Arc<dyn PeopleDirectory> = match &credit {
        Some(channel) => Arc::new(GrpcPeopleDirectory::new(channel.clone(), peers.timeout)),
        None => Arc::new(NoPeopleDirectory),
    };
    // Won deals reach health (the subscription) and credit (the credits).
    let health_channel = peers
        .health
        .as_ref()
        .map(|peer| peer.channel(peers.timeout))
        .transpose()?;
    let courier = Arc::new(crate::outbox::PipelineCourier::new(health_channel, credit));
    let pipeline = PipelineService::new(db.clone(), health, config)
        .with_people(people)
        .with_webhook_policy(webhooks);
    let (webhooks_task, webhooks_outbox) = pipeline.webhooks().start("pipeline_webhooks")?;
    let outbox = crate::outbox::outbox(pipeline.write_gate(), pipeline.event_log());
    let watched = storage::Watched {
        name: "pipeline",
        outbox: outbox.clone(),
        db: db.clone(),
    };
    Ok(storage::Started {
        service: pipeline,
        tasks: vec![webhooks_task, outbox.spawn(db, courier)],
        outboxes: vec![webhooks_outbox, watched],
    })
}
