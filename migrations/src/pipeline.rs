//! Migrations of the opportunity-pipeline service.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        Alias::new("pipeline_migrations").into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOpportunities),
            Box::new(CreateEvents),
            Box::new(AddStageTracking),
            Box::new(CreateHandoffs),
            Box::new(CreateWalletEstimates),
            Box::new(CreateRequests),
            Box::new(CreateOutbox),
            Box::new(OneOpportunityPerTrigger),
            Box::new(WalletEstimateHistory),
            Box::new(AddReferences),
            Box::new(CreateWebhooks),
            Box::new(CreateAccountRefs),
        ]
    }
}

#[derive(DeriveIden)]
enum Opportunities {
    Table,
    Id,
    AccountId,
    ProductId,
    SourceProductId,
    Name,
    Motion,
    AmountMinor,
    Currency,
    Stage,
    Probability,
    ProbabilityOverridden,
    ForecastCategory,
    CloseDate,
    SourceKind,
    SourceTriggerId,
    Owner,
    OwnerTeam,
    Originator,
    Stakeholders,
    DiscoveryNotes,
    Qualification,
    HealthSnapshot,
    LostReason,
    Version,
    CreatedAt,
    CreatedBy,
    UpdatedAt,
    UpdatedBy,
}

#[derive(DeriveIden)]
enum OpportunityHistory {
    Table,
    Id,
    OpportunityId,
    Field,
    PreviousValue,
    NewValue,
    Principal,
    Reason,
    ChangedAt,
}

struct CreateOpportunities;

impl MigrationName for CreateOpportunities {
    fn name(&self) -> &str {
        "m20261125_000001_create_opportunities"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOpportunities {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Opportunities as O;
        manager
            .create_table(
                Table::create()
                    .table(O::Table)
                    .col(ColumnDef::new(O::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(O::AccountId).string().not_null())
                    .col(ColumnDef::new(O::ProductId).string().not_null())
                    .col(ColumnDef::new(O::SourceProductId).string())
                    .col(ColumnDef::new(O::Name).string().not_null())
                    .col(ColumnDef::new(O::Motion).string().not_null())
                    .col(ColumnDef::new(O::AmountMinor).big_integer().not_null())
                    .col(ColumnDef::new(O::Currency).string().not_null())
                    .col(ColumnDef::new(O::Stage).string().not_null())
                    .col(ColumnDef::new(O::Probability).string().not_null())
                    .col(
                        ColumnDef::new(O::ProbabilityOverridden)
                            .boolean()
                            .not_null(),
                    )
                    .col(ColumnDef::new(O::ForecastCategory).string().not_null())
                    .col(ColumnDef::new(O::CloseDate).date())
                    .col(ColumnDef::new(O::SourceKind).string().not_null())
                    .col(ColumnDef::new(O::SourceTriggerId).string())
                    .col(ColumnDef::new(O::Owner).string())
                    .col(ColumnDef::new(O::OwnerTeam).string())
                    .col(ColumnDef::new(O::Originator).string())
                    .col(ColumnDef::new(O::Stakeholders).text().not_null())
                    .col(ColumnDef::new(O::DiscoveryNotes).text())
                    .col(ColumnDef::new(O::Qualification).text().not_null())
                    .col(ColumnDef::new(O::HealthSnapshot).text())
                    .col(ColumnDef::new(O::LostReason).string())
                    .col(ColumnDef::new(O::Version).big_integer().not_null())
                    .col(
                        ColumnDef::new(O::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(O::CreatedBy).string().not_null())
                    .col(
                        ColumnDef::new(O::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(O::UpdatedBy).string().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("opportunities_account", O::AccountId),
            ("opportunities_stage", O::Stage),
            ("opportunities_owner", O::Owner),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(O::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }

        use OpportunityHistory as H;
        manager
            .create_table(
                Table::create()
                    .table(H::Table)
                    .col(ColumnDef::new(H::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(H::OpportunityId).string().not_null())
                    .col(ColumnDef::new(H::Field).string().not_null())
                    .col(ColumnDef::new(H::PreviousValue).string())
                    .col(ColumnDef::new(H::NewValue).string())
                    .col(ColumnDef::new(H::Principal).string().not_null())
                    .col(ColumnDef::new(H::Reason).text())
                    .col(
                        ColumnDef::new(H::ChangedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("opportunity_history_opportunity")
                    .table(H::Table)
                    .col(H::OpportunityId)
                    .col(H::ChangedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OpportunityHistory::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Opportunities::Table).to_owned())
            .await
    }
}

struct CreateEvents;

impl MigrationName for CreateEvents {
    fn name(&self) -> &str {
        "m20261125_000002_create_pipeline_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEvents {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::create_event_table(manager, "pipeline_events").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::drop_event_table(manager, "pipeline_events").await
    }
}

#[derive(DeriveIden)]
enum StageTracking {
    StageEnteredAt,
    StrategicValue,
}

/// When an opportunity entered its current stage (a copy of its latest stage
/// history row's time, kept in the same transaction so stalled deals can be
/// filtered in SQL) and its strategic value.
struct AddStageTracking;

impl MigrationName for AddStageTracking {
    fn name(&self) -> &str {
        "m20261125_000003_opportunity_stage_tracking"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddStageTracking {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One ALTER option per statement: SQLite takes no more.
        manager
            .alter_table(
                Table::alter()
                    .table(Opportunities::Table)
                    .add_column(
                        ColumnDef::new(StageTracking::StageEnteredAt).timestamp_with_time_zone(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Opportunities::Table)
                    .add_column(ColumnDef::new(StageTracking::StrategicValue).string())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Opportunities::Table)
                    .value(
                        StageTracking::StageEnteredAt,
                        Expr::col(Opportunities::UpdatedAt),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [("opportunities_stage_entered", StageTracking::StageEnteredAt)] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Opportunities::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("opportunities_trigger")
                    .table(Opportunities::Table)
                    .col(Opportunities::SourceTriggerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["opportunities_stage_entered", "opportunities_trigger"] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(Opportunities::Table)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Opportunities::Table)
                    .drop_column(StageTracking::StrategicValue)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Opportunities::Table)
                    .drop_column(StageTracking::StageEnteredAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Handoffs {
    Table,
    Id,
    OpportunityId,
    Status,
    /// The opportunity id while the handoff is REQUESTED, NULL after: its
    /// unique index allows one open handoff per opportunity.
    OpenKey,
    RequestedBy,
    Package,
    Snapshot,
    RequestedAt,
    DueAt,
    ResolvedAt,
    ResolvedBy,
    AcceptedOwner,
    AcceptedTeam,
    Reason,
}

struct CreateHandoffs;

impl MigrationName for CreateHandoffs {
    fn name(&self) -> &str {
        "m20261125_000004_create_handoffs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateHandoffs {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Handoffs as H;
        manager
            .create_table(
                Table::create()
                    .table(H::Table)
                    .col(ColumnDef::new(H::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(H::OpportunityId).string().not_null())
                    .col(ColumnDef::new(H::Status).string().not_null())
                    .col(ColumnDef::new(H::OpenKey).string().unique_key())
                    .col(ColumnDef::new(H::RequestedBy).string().not_null())
                    .col(ColumnDef::new(H::Package).text().not_null())
                    .col(ColumnDef::new(H::Snapshot).text().not_null())
                    .col(
                        ColumnDef::new(H::RequestedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(H::DueAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(H::ResolvedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(H::ResolvedBy).string())
                    .col(ColumnDef::new(H::AcceptedOwner).string())
                    .col(ColumnDef::new(H::AcceptedTeam).string())
                    .col(ColumnDef::new(H::Reason).text())
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("handoffs_opportunity", H::OpportunityId),
            ("handoffs_status_due", H::Status),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(H::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Handoffs::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum WalletEstimates {
    Table,
    Id,
    AccountId,
    ProductArea,
    AnnualSpendMinor,
    Currency,
    ServedBy,
    Competitor,
    Notes,
    CreatedAt,
    CreatedBy,
    UpdatedAt,
    UpdatedBy,
    EffectiveDate,
}

struct CreateWalletEstimates;

impl MigrationName for CreateWalletEstimates {
    fn name(&self) -> &str {
        "m20261125_000005_create_wallet_estimates"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWalletEstimates {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use WalletEstimates as W;
        manager
            .create_table(
                Table::create()
                    .table(W::Table)
                    .col(ColumnDef::new(W::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(W::AccountId).string().not_null())
                    .col(ColumnDef::new(W::ProductArea).string().not_null())
                    .col(ColumnDef::new(W::AnnualSpendMinor).big_integer().not_null())
                    .col(ColumnDef::new(W::Currency).string().not_null())
                    .col(ColumnDef::new(W::ServedBy).string().not_null())
                    .col(ColumnDef::new(W::Competitor).string())
                    .col(ColumnDef::new(W::Notes).text())
                    .col(
                        ColumnDef::new(W::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(W::CreatedBy).string().not_null())
                    .col(
                        ColumnDef::new(W::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(W::UpdatedBy).string().not_null())
                    .to_owned(),
            )
            .await?;
        // One estimate per product area of an account: the upsert key.
        manager
            .create_index(
                Index::create()
                    .name("wallet_estimates_account_area")
                    .table(W::Table)
                    .col(W::AccountId)
                    .col(W::ProductArea)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WalletEstimates::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum PipelineRequests {
    Table,
    /// `Method:request_id`.
    Key,
    /// Hash of the request, so a reused id with another request is refused.
    Fingerprint,
    /// Hex of the encoded response; NULL while the first call is in flight.
    Response,
    CreatedAt,
}

/// Idempotency records of the pipeline's mutations (AIP-155 `request_id`).
struct CreateRequests;

impl MigrationName for CreateRequests {
    fn name(&self) -> &str {
        "m20261125_000006_create_pipeline_requests"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateRequests {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use PipelineRequests as R;
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(ColumnDef::new(R::Key).string().not_null().primary_key())
                    .col(ColumnDef::new(R::Fingerprint).string().not_null())
                    .col(ColumnDef::new(R::Response).text())
                    .col(
                        ColumnDef::new(R::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PipelineRequests::Table).to_owned())
            .await
    }
}

/// Delivery rows and the staging cursor of the outbox dispatcher.
struct CreateOutbox;

impl MigrationName for CreateOutbox {
    fn name(&self) -> &str {
        "m20261125_000007_create_pipeline_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::create_outbox_tables(manager, "pipeline").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["pipeline_outbox_cursor", "pipeline_deliveries"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// A trigger becomes at most one opportunity: the database says so, not a
/// check before the write.
struct OneOpportunityPerTrigger;

impl MigrationName for OneOpportunityPerTrigger {
    fn name(&self) -> &str {
        "m20261201_000008_one_opportunity_per_trigger"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OneOpportunityPerTrigger {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("opportunities_trigger")
                    .table(Opportunities::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("opportunities_one_per_trigger")
                    .table(Opportunities::Table)
                    .col(Opportunities::SourceTriggerId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("opportunities_one_per_trigger")
                    .table(Opportunities::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("opportunities_trigger")
                    .table(Opportunities::Table)
                    .col(Opportunities::SourceTriggerId)
                    .to_owned(),
            )
            .await
    }
}

/// Wallet estimates keep their history: each has the day it holds from, and a
/// new one is a new row, so the one-row-per-area key goes. Existing estimates
/// hold from the day they were last written.
struct WalletEstimateHistory;

impl MigrationName for WalletEstimateHistory {
    fn name(&self) -> &str {
        "m20261202_000009_wallet_estimate_history"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for WalletEstimateHistory {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use WalletEstimates as W;
        manager
            .alter_table(
                Table::alter()
                    .table(W::Table)
                    .add_column(
                        ColumnDef::new(W::EffectiveDate)
                            .date()
                            .not_null()
                            .default("1970-01-01"),
                    )
                    .to_owned(),
            )
            .await?;
        let backfill = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                "UPDATE wallet_estimates SET effective_date = (updated_at AT TIME ZONE 'UTC')::date"
            }
            _ => "UPDATE wallet_estimates SET effective_date = substr(updated_at, 1, 10)",
        };
        manager
            .get_connection()
            .execute_unprepared(backfill)
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("wallet_estimates_account_area")
                    .table(W::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("wallet_estimates_account_area_date")
                    .table(W::Table)
                    .col(W::AccountId)
                    .col(W::ProductArea)
                    .col(W::EffectiveDate)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("wallet_estimates_account_area_date")
                    .table(WalletEstimates::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum References {
    SubscriptionId,
    AccountName,
    ProductName,
}

/// What an opportunity names, as the health service knew it at creation:
/// the subscription an upsell grows, and the account's and product's names.
struct AddReferences;

impl MigrationName for AddReferences {
    fn name(&self) -> &str {
        "m20261202_000010_opportunity_references"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddReferences {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One ALTER option per statement: SQLite takes no more.
        for col in [
            References::SubscriptionId,
            References::AccountName,
            References::ProductName,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Opportunities::Table)
                        .add_column(ColumnDef::new(col).string())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            References::ProductName,
            References::AccountName,
            References::SubscriptionId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Opportunities::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// The service's webhook endpoints and their deliveries (an outbox of its own,
/// so a slow receiver never delays the deliveries to the other services).
struct CreateWebhooks;

impl MigrationName for CreateWebhooks {
    fn name(&self) -> &str {
        "m20261202_000100_create_pipeline_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWebhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::create_webhook_tables(manager, "pipeline").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::drop_webhook_tables(manager, "pipeline").await
    }
}

/// The CRM references of the accounts the pipeline's events name, as health
/// gave them: events carry `account_external_ref` beside `account_id`.
struct CreateAccountRefs;

impl MigrationName for CreateAccountRefs {
    fn name(&self) -> &str {
        "m20261202_000101_create_pipeline_account_refs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAccountRefs {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = |n: &str| ColumnDef::new(Alias::new(n));
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("pipeline_account_refs"))
                    .col(c("account_id").string().not_null().primary_key())
                    .col(c("external_system").string().not_null())
                    .col(c("external_id").string().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("pipeline_account_refs"))
                    .to_owned(),
            )
            .await
    }
}
