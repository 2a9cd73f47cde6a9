//! The event table every service keeps for `WatchEvents` (and, later, its
//! outbox): an append-only log ordered by `seq`.

use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum Events {
    Seq,
    EventId,
    EventType,
    SubjectId,
    Data,
    OccurredAt,
}

/// Creates `<table>`: `seq` orders events (the resume cursor), `event_id` is
/// unique so an event is never stored twice.
pub async fn create_event_table(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Alias::new(table))
                .col(
                    ColumnDef::new(Events::Seq)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(Events::EventId)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(Events::EventType).string().not_null())
                .col(ColumnDef::new(Events::SubjectId).string().not_null())
                .col(ColumnDef::new(Events::Data).text().not_null())
                .col(
                    ColumnDef::new(Events::OccurredAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await
}

pub async fn drop_event_table(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(Alias::new(table)).to_owned())
        .await
}
