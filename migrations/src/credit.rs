//! Migrations of the compensation-credit service.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        Alias::new("credit_migrations").into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateCreditPolicies), Box::new(CreateEvents)]
    }
}

#[derive(DeriveIden)]
enum CreditPolicies {
    Table,
    PolicyId,
    Version,
    EffectiveDate,
    OriginationPercent,
    DeliveryPercent,
    Overlays,
    Basis,
    HoldDays,
    ClawbackWindowDays,
    ClawbackMode,
    CreatedAt,
    CreatedBy,
}

struct CreateCreditPolicies;

impl MigrationName for CreateCreditPolicies {
    fn name(&self) -> &str {
        "m20261125_000001_create_credit_policies"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCreditPolicies {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use CreditPolicies as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(ColumnDef::new(P::PolicyId).string().not_null())
                    .col(ColumnDef::new(P::Version).integer().not_null())
                    .col(ColumnDef::new(P::EffectiveDate).date().not_null())
                    .col(ColumnDef::new(P::OriginationPercent).string().not_null())
                    .col(ColumnDef::new(P::DeliveryPercent).string().not_null())
                    .col(ColumnDef::new(P::Overlays).text().not_null())
                    .col(ColumnDef::new(P::Basis).string().not_null())
                    .col(ColumnDef::new(P::HoldDays).integer().not_null())
                    .col(ColumnDef::new(P::ClawbackWindowDays).integer().not_null())
                    .col(ColumnDef::new(P::ClawbackMode).string().not_null())
                    .col(
                        ColumnDef::new(P::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(P::CreatedBy).string().not_null())
                    .primary_key(Index::create().col(P::PolicyId).col(P::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("credit_policies_effective")
                    .table(P::Table)
                    .col(P::PolicyId)
                    .col(P::EffectiveDate)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CreditPolicies::Table).to_owned())
            .await
    }
}

struct CreateEvents;

impl MigrationName for CreateEvents {
    fn name(&self) -> &str {
        "m20261125_000002_create_credit_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEvents {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::create_event_table(manager, "credit_events").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::drop_event_table(manager, "credit_events").await
    }
}
