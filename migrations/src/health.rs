//! Migrations of the account-health service.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        Alias::new("health_migrations").into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateAccounts),
            Box::new(CreateEvents),
            Box::new(CreatePortfolioSignalsHealth),
            Box::new(CreateOutbox),
            Box::new(CreateRequests),
            Box::new(CreateSweeps),
            Box::new(CreateSubscriptionUpsells),
            Box::new(TriggersRecordTheirOpportunity),
            Box::new(CreateWebhooks),
            Box::new(DirtyAccountsAreClaimed),
            Box::new(AmendmentsIndexTheirMrr),
            Box::new(SignalsIndexedByAccountInBulk),
        ]
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    ExternalSystem,
    ExternalId,
    Name,
    Segment,
    CustomerSince,
    FiscalYearStartMonth,
    OwnerCsm,
    ParentAccountId,
    CreatedAt,
    CreatedBy,
    UpdatedAt,
    UpdatedBy,
}

struct CreateAccounts;

impl MigrationName for CreateAccounts {
    fn name(&self) -> &str {
        "m20261125_000001_create_accounts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAccounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(
                        ColumnDef::new(Accounts::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Accounts::ExternalSystem).string())
                    .col(ColumnDef::new(Accounts::ExternalId).string())
                    .col(ColumnDef::new(Accounts::Name).string().not_null())
                    .col(ColumnDef::new(Accounts::Segment).string())
                    .col(ColumnDef::new(Accounts::CustomerSince).date())
                    .col(
                        ColumnDef::new(Accounts::FiscalYearStartMonth)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Accounts::OwnerCsm).string())
                    .col(ColumnDef::new(Accounts::ParentAccountId).string())
                    .col(
                        ColumnDef::new(Accounts::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Accounts::CreatedBy).string().not_null())
                    .col(
                        ColumnDef::new(Accounts::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Accounts::UpdatedBy).string().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("accounts_external_ref")
                    .table(Accounts::Table)
                    .col(Accounts::ExternalSystem)
                    .col(Accounts::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("accounts_owner_csm")
                    .table(Accounts::Table)
                    .col(Accounts::OwnerCsm)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("accounts_parent")
                    .table(Accounts::Table)
                    .col(Accounts::ParentAccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Accounts::Table).to_owned())
            .await
    }
}

struct CreateEvents;

impl MigrationName for CreateEvents {
    fn name(&self) -> &str {
        "m20261125_000002_create_health_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEvents {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::create_event_table(manager, "health_events").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::drop_event_table(manager, "health_events").await
    }
}

/// Products, subscriptions with their MRR amendments, signals, scorecards,
/// health scores (history and current), overrides and triggers.
struct CreatePortfolioSignalsHealth;

impl MigrationName for CreatePortfolioSignalsHealth {
    fn name(&self) -> &str {
        "m20261125_000003_create_portfolio_signals_health"
    }
}

fn id_col(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string()
        .not_null()
        .primary_key()
        .to_owned()
}

fn col(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

fn audit_cols(table: &mut TableCreateStatement) {
    table
        .col(col("created_at").timestamp_with_time_zone().not_null())
        .col(col("created_by").string().not_null())
        .col(col("updated_at").timestamp_with_time_zone().not_null())
        .col(col("updated_by").string().not_null());
}

/// The index of signals by account, kind and time (on SQLite until
/// [`SignalsIndexedByAccountInBulk`]).
async fn signals_by_account(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    index(
        manager,
        "signals_account_kind_time",
        "signals",
        &["account_id", "kind", "occurred_at"],
        false,
    )
    .await
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(Alias::new(table));
    for c in cols {
        index.col(Alias::new(*c));
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePortfolioSignalsHealth {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut products = Table::create()
            .table(Alias::new("products"))
            .col(id_col("id"))
            .col(col("name").string().not_null())
            .col(col("family").string())
            .col(col("tiers").text().not_null())
            .col(col("adjacencies").text().not_null())
            .col(col("fits_segments").text().not_null())
            .col(col("wallet_estimates").text().not_null())
            .col(col("margin_percent").string())
            .to_owned();
        audit_cols(&mut products);
        manager.create_table(products).await?;

        let mut subscriptions = Table::create()
            .table(Alias::new("subscriptions"))
            .col(id_col("id"))
            .col(col("account_id").string().not_null())
            .col(col("product_id").string().not_null())
            .col(col("tier").string())
            .col(col("currency").string().not_null())
            .col(col("start_date").date().not_null())
            .col(col("end_date").date())
            .col(col("quantity").big_integer().not_null())
            .col(col("quota_limit").big_integer().not_null())
            .col(col("status").string().not_null())
            .col(col("cancel_date").date())
            .col(col("cancel_reason").text())
            .col(col("source_opportunity_id").string())
            .col(col("external_system").string())
            .col(col("external_id").string())
            .to_owned();
        audit_cols(&mut subscriptions);
        manager.create_table(subscriptions).await?;
        index(
            manager,
            "subscriptions_account",
            "subscriptions",
            &["account_id"],
            false,
        )
        .await?;
        index(
            manager,
            "subscriptions_external_ref",
            "subscriptions",
            &["external_system", "external_id"],
            true,
        )
        .await?;
        index(
            manager,
            "subscriptions_source_opportunity",
            "subscriptions",
            &["source_opportunity_id"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("subscription_amendments"))
                    .col(id_col("id"))
                    .col(col("subscription_id").string().not_null())
                    .col(col("effective_date").date().not_null())
                    .col(col("mrr_minor").big_integer().not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("created_by").string().not_null())
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "subscription_amendments_by_date",
            "subscription_amendments",
            &["subscription_id", "effective_date"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("signals"))
                    .col(
                        col("seq")
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(col("account_id").string().not_null())
                    .col(col("product_id").string())
                    .col(col("kind").string().not_null())
                    .col(col("value_e4").big_integer().not_null())
                    .col(col("limit_e4").big_integer())
                    .col(col("occurred_at").timestamp_with_time_zone().not_null())
                    .col(col("source").string().not_null())
                    .col(col("external_id").string())
                    .col(col("detail").text())
                    .col(col("recorded_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        signals_by_account(manager).await?;
        index(
            manager,
            "signals_dedup",
            "signals",
            &["source", "external_id"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("health_dirty"))
                    .col(id_col("account_id"))
                    .col(col("marked_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("scorecards"))
                    .col(col("scorecard_id").string().not_null())
                    .col(col("version").integer().not_null())
                    .col(col("definition").text().not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("created_by").string().not_null())
                    .primary_key(
                        Index::create()
                            .col(Alias::new("scorecard_id"))
                            .col(Alias::new("version")),
                    )
                    .to_owned(),
            )
            .await?;

        for table in ["health_scores", "health_current"] {
            let mut t = Table::create();
            t.table(Alias::new(table));
            if table == "health_scores" {
                t.col(id_col("id"))
                    .col(col("account_id").string().not_null())
                    .col(col("product_id").string().not_null());
            } else {
                t.col(col("account_id").string().not_null())
                    .col(col("product_id").string().not_null())
                    .primary_key(
                        Index::create()
                            .col(Alias::new("account_id"))
                            .col(Alias::new("product_id")),
                    );
            }
            t.col(col("score_e2").big_integer())
                .col(col("band").string())
                .col(col("coverage_e2").big_integer().not_null())
                .col(col("breakdown").text().not_null())
                .col(col("csm_sentiment").string())
                .col(col("scorecard_version").integer().not_null())
                .col(col("computed_at").timestamp_with_time_zone().not_null());
            manager.create_table(t.to_owned()).await?;
        }
        index(
            manager,
            "health_scores_history",
            "health_scores",
            &["account_id", "product_id", "computed_at"],
            false,
        )
        .await?;
        index(
            manager,
            "health_current_by_score",
            "health_current",
            &["product_id", "score_e2"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("health_overrides"))
                    .col(id_col("id"))
                    .col(col("account_id").string().not_null())
                    .col(col("product_id").string().not_null())
                    .col(col("score").integer().not_null())
                    .col(col("reason").text().not_null())
                    .col(col("principal").string().not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("expires_at").timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "health_overrides_target",
            "health_overrides",
            &["account_id", "product_id", "created_at"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("triggers"))
                    .col(id_col("id"))
                    .col(col("account_id").string().not_null())
                    .col(col("product_id").string().not_null())
                    .col(col("kind").string().not_null())
                    .col(col("motion").string().not_null())
                    .col(col("status").string().not_null())
                    .col(col("priority").string().not_null())
                    .col(col("reason").text().not_null())
                    .col(col("suppression_reason").text())
                    .col(col("fired_at").timestamp_with_time_zone().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .col(col("closed_at").timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "triggers_account",
            "triggers",
            &["account_id", "kind"],
            false,
        )
        .await?;
        index(
            manager,
            "triggers_status",
            "triggers",
            &["status", "fired_at"],
            false,
        )
        .await?;
        // One open trigger per (account, product, kind): a partial unique
        // index, which SQLite and PostgreSQL both understand.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX triggers_one_open ON triggers (account_id, product_id, kind) \
                 WHERE status IN ('READY', 'SUPPRESSED')",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "triggers",
            "health_overrides",
            "health_current",
            "health_scores",
            "scorecards",
            "health_dirty",
            "signals",
            "subscription_amendments",
            "subscriptions",
            "products",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Delivery rows and the staging cursor of the outbox dispatcher.
struct CreateOutbox;

impl MigrationName for CreateOutbox {
    fn name(&self) -> &str {
        "m20261125_000004_create_health_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::create_outbox_tables(manager, "health").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["health_outbox_cursor", "health_deliveries"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// `request_id` records of the health service's mutations.
struct CreateRequests;

impl MigrationName for CreateRequests {
    fn name(&self) -> &str {
        "m20261125_000005_create_health_requests"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateRequests {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::create_requests_table(manager, "health_requests").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("health_requests"))
                    .to_owned(),
            )
            .await
    }
}

/// One row per day the daily sweep ran: whichever process (or replica)
/// inserts the day's row sweeps; the others, and restarts, don't.
struct CreateSweeps;

impl MigrationName for CreateSweeps {
    fn name(&self) -> &str {
        "m20261125_000006_create_health_sweeps"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSweeps {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("health_sweeps"))
                    .col(
                        ColumnDef::new(Alias::new("day"))
                            .date()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("swept_at"))
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("health_sweeps")).to_owned())
            .await
    }
}

/// The won upsells booked as amendments: which subscription each deal grew,
/// from when and by how much. The opportunity is the key, so a retried
/// delivery books nothing twice, and cancelling the subscription finds the
/// deals whose credits it claws back.
struct CreateSubscriptionUpsells;

impl MigrationName for CreateSubscriptionUpsells {
    fn name(&self) -> &str {
        "m20261201_000007_create_subscription_upsells"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSubscriptionUpsells {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = |name: &str| ColumnDef::new(Alias::new(name)).not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("subscription_upsells"))
                    .col(column("opportunity_id").string().primary_key())
                    .col(column("subscription_id").string())
                    .col(column("effective_date").date())
                    .col(column("mrr_increase_minor").big_integer())
                    .col(column("created_at").timestamp_with_time_zone())
                    .col(column("created_by").string())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("subscription_upsells_by_subscription")
                    .table(Alias::new("subscription_upsells"))
                    .col(Alias::new("subscription_id"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("subscription_upsells"))
                    .to_owned(),
            )
            .await
    }
}

/// A trigger turned into an opportunity is CONVERTED and names it; it closes
/// when that opportunity closes, and the cooldown runs from then.
struct TriggersRecordTheirOpportunity;

impl MigrationName for TriggersRecordTheirOpportunity {
    fn name(&self) -> &str {
        "m20261201_000008_triggers_record_their_opportunity"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for TriggersRecordTheirOpportunity {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("triggers"))
                    .add_column(ColumnDef::new(Alias::new("opportunity_id")).string().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("triggers"))
                    .drop_column(Alias::new("opportunity_id"))
                    .to_owned(),
            )
            .await
    }
}

/// The service's webhook endpoints and their deliveries (an outbox of its own,
/// so a slow receiver never delays the deliveries to the other services).
struct CreateWebhooks;

impl MigrationName for CreateWebhooks {
    fn name(&self) -> &str {
        "m20261202_000100_create_health_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWebhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::create_webhook_tables(manager, "health").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::drop_webhook_tables(manager, "health").await
    }
}

/// The dirty-account queue is claimed: `claimed_until` is the lease of the
/// replica recomputing the account (NULL when nobody is), `generation`
/// counts the marks that arrived while it was claimed, so a recomputation
/// clears only a mark it has seen. Existing marks are unclaimed.
struct DirtyAccountsAreClaimed;

impl MigrationName for DirtyAccountsAreClaimed {
    fn name(&self) -> &str {
        "m20261202_000200_dirty_accounts_are_claimed"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DirtyAccountsAreClaimed {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement (SQLite takes one ALTER option at a time).
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("health_dirty"))
                    .add_column(
                        ColumnDef::new(Alias::new("generation"))
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("health_dirty"))
                    .add_column(
                        ColumnDef::new(Alias::new("claimed_until"))
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["claimed_until", "generation"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("health_dirty"))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// The revenue metrics read every amendment of every subscription: an index
/// that carries the MRR beside the key answers that join from the index
/// alone, without a look-up of each amendment's row (the unique key on
/// subscription and date stays what it was).
struct AmendmentsIndexTheirMrr;

impl MigrationName for AmendmentsIndexTheirMrr {
    fn name(&self) -> &str {
        "m20261204_000300_amendments_index_their_mrr"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AmendmentsIndexTheirMrr {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        index(
            manager,
            "subscription_amendments_with_mrr",
            "subscription_amendments",
            &["subscription_id", "effective_date", "mrr_minor"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("subscription_amendments_with_mrr")
                    .table(Alias::new("subscription_amendments"))
                    .to_owned(),
            )
            .await
    }
}

/// On SQLite, the per-account index of signals becomes a table of its own,
/// `signal_index`, filled in bulk and in key order up to the seq that
/// `signal_index_mark` records; signals after that mark (the tail) are
/// found by their seq, which grows as they arrive. An index maintained row
/// by row as signals of a thousand accounts arrive together touches a page
/// per signal, and each commit writes every such page to the WAL. Existing
/// signals are indexed here; none moves. PostgreSQL keeps its index: there
/// concurrent writers commit seqs out of order, so a mark could pass a seq
/// still in flight.
struct SignalsIndexedByAccountInBulk;

impl MigrationName for SignalsIndexedByAccountInBulk {
    fn name(&self) -> &str {
        "m20261207_000100_signals_indexed_by_account_in_bulk"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SignalsIndexedByAccountInBulk {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE signal_index (account_id TEXT NOT NULL, kind TEXT NOT NULL, \
             occurred_at TEXT NOT NULL, seq INTEGER NOT NULL, \
             PRIMARY KEY (account_id, kind, occurred_at, seq)) WITHOUT ROWID",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TABLE signal_index_mark (id INTEGER PRIMARY KEY CHECK (id = 1), \
             indexed_through INTEGER NOT NULL)",
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO signal_index (account_id, kind, occurred_at, seq) \
             SELECT account_id, kind, occurred_at, seq FROM signals \
             ORDER BY account_id, kind, occurred_at, seq",
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO signal_index_mark (id, indexed_through) \
             SELECT 1, COALESCE(MAX(seq), 0) FROM signals",
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("signals_account_kind_time")
                    .table(Alias::new("signals"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
            return Ok(());
        }
        signals_by_account(manager).await?;
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE signal_index_mark")
            .await?;
        db.execute_unprepared("DROP TABLE signal_index").await?;
        Ok(())
    }
}
