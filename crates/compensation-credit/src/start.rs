//! The credit service started: what `expansion serve` wires in.

use sea_orm::DatabaseConnection;

use crate::CreditService;

/// The credit service over `db` with its webhooks dispatcher running.
pub fn start(
    db: DatabaseConnection,
    webhooks: webhooks::Policy,
) -> Result<storage::Started<CreditService>, String> {
    let credit = CreditService::new(db).with_webhook_policy(webhooks);
    let (task, watched) = credit.webhooks().start("credit_webhooks")?;
    Ok(storage::Started {
        service: credit,
        tasks: vec![task],
        outboxes: vec![watched],
    })
}
