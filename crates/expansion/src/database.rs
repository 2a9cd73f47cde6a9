//! Opening each service's database and applying its migrations.

use anyhow::Context;
use migrations::MigratorTrait;
use sea_orm::DatabaseConnection;

use crate::cli::{ServiceName, StorageArgs};

/// The database URL a service uses: the shared URL if given, else its own
/// SQLite file under the data dir.
pub fn url_for(args: &StorageArgs, service: ServiceName) -> anyhow::Result<String> {
    if let Some(url) = &args.database_url {
        return Ok(url.clone());
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    Ok(storage::sqlite_url(&args.data_dir, service.as_str()))
}

/// Warns when one SQLite file would hold several services' tables: each
/// service serialises its own writes, but SQLite allows one writer per file,
/// so their writes collide ("database is locked") while a mutation of one
/// waits on another's. The default gives each its own file under the data
/// dir; PostgreSQL has no such limit.
pub fn warn_if_sqlite_is_shared(args: &StorageArgs, services: &[ServiceName]) {
    if let Some(url) = &args.database_url
        && url.starts_with("sqlite:")
        && services.len() > 1
    {
        tracing::warn!(
            database_url = %url,
            "several services share one SQLite file: their writes can collide (\"database is locked\"); \
             leave --database-url unset to give each service its own file under --data-dir"
        );
    }
}

/// Connects to a service's database and brings its schema up to date.
pub async fn open(args: &StorageArgs, service: ServiceName) -> anyhow::Result<DatabaseConnection> {
    let url = url_for(args, service)?;
    let db = storage::connect(&url)
        .await
        .with_context(|| format!("connecting the {} database", service.as_str()))?;
    match service {
        ServiceName::Health => migrations::health::Migrator::up(&db, None).await,
        ServiceName::Pipeline => migrations::pipeline::Migrator::up(&db, None).await,
        ServiceName::Credit => migrations::credit::Migrator::up(&db, None).await,
    }
    .with_context(|| format!("migrating the {} database", service.as_str()))?;
    tracing::info!(service = service.as_str(), backend = ?db.get_database_backend(), "database ready");
    Ok(db)
}

/// `expansion migrate`.
pub async fn migrate_only(args: &StorageArgs) -> anyhow::Result<()> {
    for service in args.services() {
        let db = open(args, service).await?;
        db.close().await.ok();
        println!("{}: migrations applied", service.as_str());
    }
    Ok(())
}
