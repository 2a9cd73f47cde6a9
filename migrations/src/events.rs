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

/// Creates `<prefix>_deliveries` (one row per event and target) and
/// `<prefix>_outbox_cursor` (how far the dispatcher has staged).
pub async fn create_outbox_tables(manager: &SchemaManager<'_>, prefix: &str) -> Result<(), DbErr> {
    let deliveries = format!("{prefix}_deliveries");
    let c = |n: &str| ColumnDef::new(Alias::new(n));
    manager
        .create_table(
            Table::create()
                .table(Alias::new(&deliveries))
                .col(c("event_id").string().not_null())
                .col(c("target").string().not_null())
                .col(c("event_seq").big_integer().not_null())
                .col(c("subject_id").string().not_null())
                .col(c("status").string().not_null())
                .col(c("attempts").integer().not_null())
                .col(c("last_error").text())
                .col(c("next_attempt_at").timestamp_with_time_zone().not_null())
                .col(c("created_at").timestamp_with_time_zone().not_null())
                .primary_key(
                    Index::create()
                        .col(Alias::new("event_id"))
                        .col(Alias::new("target")),
                )
                .to_owned(),
        )
        .await?;
    for (name, cols) in [
        ("due", ["status", "next_attempt_at"]),
        ("subject", ["subject_id", "event_seq"]),
    ] {
        manager
            .create_index(
                Index::create()
                    .name(format!("{deliveries}_{name}"))
                    .table(Alias::new(&deliveries))
                    .col(Alias::new(cols[0]))
                    .col(Alias::new(cols[1]))
                    .to_owned(),
            )
            .await?;
    }
    manager
        .create_table(
            Table::create()
                .table(Alias::new(format!("{prefix}_outbox_cursor")))
                .col(c("name").string().not_null().primary_key())
                .col(c("seq").big_integer().not_null())
                .to_owned(),
        )
        .await
}

/// Creates `<table>` for `request_id` records (AIP-155): the key
/// (`Method:request_id`), the request's fingerprint and, once the call
/// succeeded, its encoded response.
pub async fn create_requests_table(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    let c = |n: &str| ColumnDef::new(Alias::new(n));
    manager
        .create_table(
            Table::create()
                .table(Alias::new(table))
                .col(c("key").string().not_null().primary_key())
                .col(c("fingerprint").string().not_null())
                .col(c("response").text())
                .col(c("created_at").timestamp_with_time_zone().not_null())
                .to_owned(),
        )
        .await
}

/// Creates a service's webhook tables: `<prefix>_webhook_endpoints` (one row
/// per registered endpoint, its secret and state), and the outbox tables
/// `<prefix>_webhook_deliveries` / `<prefix>_webhook_outbox_cursor` (one
/// delivery per event and endpoint, the endpoint id as the target), with an
/// index for an endpoint's delivery log, and `<prefix>_webhook_requests`
/// (`request_id` records of the webhook methods).
pub async fn create_webhook_tables(manager: &SchemaManager<'_>, prefix: &str) -> Result<(), DbErr> {
    let c = |n: &str| ColumnDef::new(Alias::new(n));
    manager
        .create_table(
            Table::create()
                .table(Alias::new(format!("{prefix}_webhook_endpoints")))
                .col(c("endpoint_id").string().not_null().primary_key())
                .col(c("url").text().not_null())
                .col(c("event_types").text().not_null())
                .col(c("secret").text().not_null())
                .col(c("description").text().not_null())
                .col(c("state").string().not_null())
                .col(c("disabled_reason").text().not_null())
                .col(c("consecutive_failures").integer().not_null())
                .col(c("start_seq").big_integer().not_null())
                .col(c("created_by").string().not_null())
                .col(c("created_at").timestamp_with_time_zone().not_null())
                .to_owned(),
        )
        .await?;
    create_requests_table(manager, &format!("{prefix}_webhook_requests")).await?;
    let outbox = format!("{prefix}_webhook");
    create_outbox_tables(manager, &outbox).await?;
    let deliveries = format!("{outbox}_deliveries");
    manager
        .create_index(
            Index::create()
                .name(format!("{deliveries}_target"))
                .table(Alias::new(&deliveries))
                .col(Alias::new("target"))
                .col(Alias::new("event_seq"))
                .to_owned(),
        )
        .await
}

pub async fn drop_webhook_tables(manager: &SchemaManager<'_>, prefix: &str) -> Result<(), DbErr> {
    for table in [
        format!("{prefix}_webhook_endpoints"),
        format!("{prefix}_webhook_deliveries"),
        format!("{prefix}_webhook_outbox_cursor"),
        format!("{prefix}_webhook_requests"),
    ] {
        manager
            .drop_table(Table::drop().table(Alias::new(table)).to_owned())
            .await?;
    }
    Ok(())
}
