//! Migrations of the opportunity-pipeline service.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        Alias::new("pipeline_migrations").into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateOpportunities), Box::new(CreateEvents)]
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
