//! Migrations of the account-health service.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        Alias::new("health_migrations").into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateAccounts), Box::new(CreateEvents)]
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
