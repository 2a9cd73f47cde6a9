//! Migrations of the compensation-credit service.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        Alias::new("credit_migrations").into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateCreditPolicies),
            Box::new(CreateEvents),
            Box::new(CreateCreditLedger),
            Box::new(RefuseLedgerRewrites),
            Box::new(CreateCreditRequests),
            Box::new(CreateCreditPeople),
            Box::new(CreateOpenDisputes),
            Box::new(CreateWebhooks),
            Box::new(AddDealNames),
            Box::new(RequestRecords),
        ]
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

#[derive(DeriveIden)]
enum CreditDeals {
    Table,
    DealId,
    AccountId,
    ProductId,
    SubscriptionId,
    Currency,
    AmountMinor,
    MarginPercent,
    BasisMinor,
    CloseDate,
    PolicyId,
    PolicyVersion,
    Recording,
    HoldUntil,
    CreatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum CreditSplitSets {
    Table,
    DealId,
    Revision,
    Participants,
    CsLedWithoutHandoff,
    Reason,
    CreatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum CreditLedgerEntries {
    Table,
    EntryId,
    Kind,
    DealId,
    ParticipantId,
    Role,
    Team,
    AmountMinor,
    Currency,
    PolicyId,
    PolicyVersion,
    Principal,
    CreatedAt,
    Reason,
    ReversesEntryId,
    HoldUntil,
    SplitRevision,
}

#[derive(DeriveIden)]
enum CreditReleases {
    Table,
    EntryId,
    DealId,
    ReleasedAt,
    ReleasedBy,
    Note,
}

#[derive(DeriveIden)]
enum CreditClawbacks {
    Table,
    DealId,
    SubscriptionId,
    CancelDate,
    Mode,
    Reason,
    CreatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum CreditDisputes {
    Table,
    DisputeId,
    EntryId,
    OpenedBy,
    Reason,
    OpenedAt,
}

#[derive(DeriveIden)]
enum CreditDisputeResolutions {
    Table,
    DisputeId,
    Outcome,
    Note,
    AdjustmentEntryId,
    ResolvedAt,
    ResolvedBy,
}

/// The tables behind deal credits. Every one of them only ever gets rows
/// added: a deal's recording, each split set (by revision), ledger entries,
/// releases, clawbacks, disputes and their resolutions. Status and balances
/// are derived from them, so nothing needs updating.
struct CreateCreditLedger;

impl MigrationName for CreateCreditLedger {
    fn name(&self) -> &str {
        "m20261125_000003_create_credit_ledger"
    }
}

fn timestamp<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(col);
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCreditLedger {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use CreditDeals as D;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .col(ColumnDef::new(D::DealId).string().not_null().primary_key())
                    .col(ColumnDef::new(D::AccountId).string().null())
                    .col(ColumnDef::new(D::ProductId).string().null())
                    .col(ColumnDef::new(D::SubscriptionId).string().null())
                    .col(ColumnDef::new(D::Currency).string().not_null())
                    .col(ColumnDef::new(D::AmountMinor).big_integer().not_null())
                    .col(ColumnDef::new(D::MarginPercent).string().null())
                    .col(ColumnDef::new(D::BasisMinor).big_integer().not_null())
                    .col(ColumnDef::new(D::CloseDate).date().not_null())
                    .col(ColumnDef::new(D::PolicyId).string().not_null())
                    .col(ColumnDef::new(D::PolicyVersion).integer().not_null())
                    .col(ColumnDef::new(D::Recording).text().not_null())
                    .col(timestamp(D::HoldUntil))
                    .col(timestamp(D::CreatedAt))
                    .col(ColumnDef::new(D::CreatedBy).string().not_null())
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "credit_deals_subscription",
            D::Table,
            vec![D::SubscriptionId.into_iden()],
        )
        .await?;

        use CreditSplitSets as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .col(ColumnDef::new(S::DealId).string().not_null())
                    .col(ColumnDef::new(S::Revision).integer().not_null())
                    .col(ColumnDef::new(S::Participants).text().not_null())
                    .col(ColumnDef::new(S::CsLedWithoutHandoff).boolean().not_null())
                    .col(ColumnDef::new(S::Reason).text().null())
                    .col(timestamp(S::CreatedAt))
                    .col(ColumnDef::new(S::CreatedBy).string().not_null())
                    .primary_key(Index::create().col(S::DealId).col(S::Revision))
                    .to_owned(),
            )
            .await?;

        use CreditLedgerEntries as L;
        manager
            .create_table(
                Table::create()
                    .table(L::Table)
                    .col(ColumnDef::new(L::EntryId).string().not_null().primary_key())
                    .col(ColumnDef::new(L::Kind).string().not_null())
                    .col(ColumnDef::new(L::DealId).string().not_null())
                    .col(ColumnDef::new(L::ParticipantId).string().not_null())
                    .col(ColumnDef::new(L::Role).string().not_null())
                    .col(ColumnDef::new(L::Team).string().null())
                    .col(ColumnDef::new(L::AmountMinor).big_integer().not_null())
                    .col(ColumnDef::new(L::Currency).string().not_null())
                    .col(ColumnDef::new(L::PolicyId).string().not_null())
                    .col(ColumnDef::new(L::PolicyVersion).integer().not_null())
                    .col(ColumnDef::new(L::Principal).string().not_null())
                    .col(timestamp(L::CreatedAt))
                    .col(ColumnDef::new(L::Reason).text().null())
                    .col(ColumnDef::new(L::ReversesEntryId).string().null())
                    .col(timestamp(L::HoldUntil))
                    .col(ColumnDef::new(L::SplitRevision).integer().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("credit_ledger_entries_deal", L::DealId),
            ("credit_ledger_entries_participant", L::ParticipantId),
            ("credit_ledger_entries_team", L::Team),
            ("credit_ledger_entries_created", L::CreatedAt),
            ("credit_ledger_entries_reverses", L::ReversesEntryId),
        ] {
            index(manager, name, L::Table, vec![col.into_iden()]).await?;
        }

        use CreditReleases as R;
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(ColumnDef::new(R::EntryId).string().not_null().primary_key())
                    .col(ColumnDef::new(R::DealId).string().not_null())
                    .col(timestamp(R::ReleasedAt))
                    .col(ColumnDef::new(R::ReleasedBy).string().not_null())
                    .col(ColumnDef::new(R::Note).text().null())
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "credit_releases_deal",
            R::Table,
            vec![R::DealId.into_iden()],
        )
        .await?;

        use CreditClawbacks as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(ColumnDef::new(C::DealId).string().not_null().primary_key())
                    .col(ColumnDef::new(C::SubscriptionId).string().null())
                    .col(ColumnDef::new(C::CancelDate).date().not_null())
                    .col(ColumnDef::new(C::Mode).string().not_null())
                    .col(ColumnDef::new(C::Reason).text().null())
                    .col(timestamp(C::CreatedAt))
                    .col(ColumnDef::new(C::CreatedBy).string().not_null())
                    .to_owned(),
            )
            .await?;

        use CreditDisputes as X;
        manager
            .create_table(
                Table::create()
                    .table(X::Table)
                    .col(
                        ColumnDef::new(X::DisputeId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(X::EntryId).string().not_null())
                    .col(ColumnDef::new(X::OpenedBy).string().not_null())
                    .col(ColumnDef::new(X::Reason).text().not_null())
                    .col(timestamp(X::OpenedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "credit_disputes_entry",
            X::Table,
            vec![X::EntryId.into_iden()],
        )
        .await?;

        use CreditDisputeResolutions as Y;
        manager
            .create_table(
                Table::create()
                    .table(Y::Table)
                    .col(
                        ColumnDef::new(Y::DisputeId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Y::Outcome).string().not_null())
                    .col(ColumnDef::new(Y::Note).text().null())
                    .col(ColumnDef::new(Y::AdjustmentEntryId).string().null())
                    .col(timestamp(Y::ResolvedAt))
                    .col(ColumnDef::new(Y::ResolvedBy).string().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CreditDisputeResolutions::Table.into_iden(),
            CreditDisputes::Table.into_iden(),
            CreditClawbacks::Table.into_iden(),
            CreditReleases::Table.into_iden(),
            CreditLedgerEntries::Table.into_iden(),
            CreditSplitSets::Table.into_iden(),
            CreditDeals::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Tables the database itself keeps append-only: the code has no update or
/// delete path for them, and these triggers refuse one from anywhere else
/// (a script, a console), so history cannot be rewritten even by mistake.
const APPEND_ONLY_TABLES: [&str; 7] = [
    "credit_deals",
    "credit_split_sets",
    "credit_ledger_entries",
    "credit_releases",
    "credit_clawbacks",
    "credit_disputes",
    "credit_dispute_resolutions",
];

/// The message both databases raise on an attempt to change a ledger row.
pub const APPEND_ONLY_MESSAGE: &str = "ledger entries are append-only";

struct RefuseLedgerRewrites;

impl MigrationName for RefuseLedgerRewrites {
    fn name(&self) -> &str {
        "m20261125_000004_refuse_credit_ledger_rewrites"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RefuseLedgerRewrites {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                db.execute_unprepared(&format!(
                    "CREATE OR REPLACE FUNCTION credit_refuse_rewrite() RETURNS trigger \
                     LANGUAGE plpgsql AS $$ BEGIN \
                     RAISE EXCEPTION '{APPEND_ONLY_MESSAGE} (%)', TG_TABLE_NAME; \
                     END $$"
                ))
                .await?;
                for table in APPEND_ONLY_TABLES {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {table}_refuse_rewrite \
                         BEFORE UPDATE OR DELETE ON {table} \
                         FOR EACH ROW EXECUTE FUNCTION credit_refuse_rewrite()"
                    ))
                    .await?;
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {table}_refuse_truncate \
                         BEFORE TRUNCATE ON {table} \
                         FOR EACH STATEMENT EXECUTE FUNCTION credit_refuse_rewrite()"
                    ))
                    .await?;
                }
            }
            _ => {
                for table in APPEND_ONLY_TABLES {
                    for op in ["UPDATE", "DELETE"] {
                        db.execute_unprepared(&format!(
                            "CREATE TRIGGER {table}_refuse_{op} BEFORE {op} ON {table} \
                             BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
                        ))
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
        for table in APPEND_ONLY_TABLES {
            if postgres {
                for suffix in ["rewrite", "truncate"] {
                    db.execute_unprepared(&format!(
                        "DROP TRIGGER IF EXISTS {table}_refuse_{suffix} ON {table}"
                    ))
                    .await?;
                }
            } else {
                for op in ["UPDATE", "DELETE"] {
                    db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {table}_refuse_{op}"))
                        .await?;
                }
            }
        }
        if postgres {
            db.execute_unprepared("DROP FUNCTION IF EXISTS credit_refuse_rewrite()")
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum CreditRequests {
    Table,
    RequestId,
    Method,
    Request,
    Response,
    CreatedAt,
    CreatedBy,
}

/// `credit_requests`: the first response to each mutation sent with a `request_id`
/// (AIP-155), so a retry gets the same answer. Not part of the ledger: rows older than
/// the retention (at least 24 h) may be purged.
struct CreateCreditRequests;

impl MigrationName for CreateCreditRequests {
    fn name(&self) -> &str {
        "m20261125_000005_create_credit_requests"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCreditRequests {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use CreditRequests as Q;
        manager
            .create_table(
                Table::create()
                    .table(Q::Table)
                    .col(
                        ColumnDef::new(Q::RequestId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Q::Method).string().not_null())
                    .col(ColumnDef::new(Q::Request).blob().not_null())
                    .col(ColumnDef::new(Q::Response).blob().not_null())
                    .col(timestamp(Q::CreatedAt))
                    .col(ColumnDef::new(Q::CreatedBy).string().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CreditRequests::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum CreditPeople {
    Table,
    PersonId,
    Version,
    DisplayName,
    Role,
    Team,
    ManagerId,
    Skeleton,
    CreatedAt,
    CreatedBy,
}

/// `credit_people`: the people directory, one row per version of a person
/// (the latest is in force), so who changed someone's team or manager, and
/// when, stays on record. Append-only like the ledger, with the same
/// triggers. `skeleton` is the person id's Unicode TR39 skeleton: two ids
/// with one skeleton look alike, and the second is refused.
struct CreateCreditPeople;

impl MigrationName for CreateCreditPeople {
    fn name(&self) -> &str {
        "m20261201_000006_create_credit_people"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCreditPeople {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use CreditPeople as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(ColumnDef::new(P::PersonId).string().not_null())
                    .col(ColumnDef::new(P::Version).integer().not_null())
                    .col(ColumnDef::new(P::DisplayName).string().null())
                    .col(ColumnDef::new(P::Role).string().not_null())
                    .col(ColumnDef::new(P::Team).string().null())
                    .col(ColumnDef::new(P::ManagerId).string().null())
                    .col(ColumnDef::new(P::Skeleton).string().not_null())
                    .col(timestamp(P::CreatedAt))
                    .col(ColumnDef::new(P::CreatedBy).string().not_null())
                    .primary_key(Index::create().col(P::PersonId).col(P::Version))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "credit_people_skeleton",
            P::Table,
            vec![P::Skeleton.into_iden()],
        )
        .await?;
        let db = manager.get_connection();
        let table = "credit_people";
        match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER {table}_refuse_rewrite BEFORE UPDATE OR DELETE ON {table} \
                     FOR EACH ROW EXECUTE FUNCTION credit_refuse_rewrite()"
                ))
                .await?;
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER {table}_refuse_truncate BEFORE TRUNCATE ON {table} \
                     FOR EACH STATEMENT EXECUTE FUNCTION credit_refuse_rewrite()"
                ))
                .await?;
            }
            _ => {
                for op in ["UPDATE", "DELETE"] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {table}_refuse_{op} BEFORE {op} ON {table} \
                         BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CreditPeople::Table).to_owned())
            .await
    }
}

/// One open dispute per ledger entry, kept by the database: a dispute claims
/// its entry here when it opens and releases it when it is resolved, so two
/// concurrent OpenDispute calls cannot both open one. Disputes and their
/// resolutions stay append-only; this claim table is not part of the ledger.
/// Existing unresolved disputes claim their entries (the earliest per entry).
struct CreateOpenDisputes;

impl MigrationName for CreateOpenDisputes {
    fn name(&self) -> &str {
        "m20261201_000007_create_credit_open_disputes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOpenDisputes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("credit_open_disputes"))
                    .col(
                        ColumnDef::new(Alias::new("entry_id"))
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Alias::new("dispute_id")).string().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO credit_open_disputes (entry_id, dispute_id) \
                 SELECT d.entry_id, MIN(d.dispute_id) FROM credit_disputes d \
                 WHERE NOT EXISTS (SELECT 1 FROM credit_dispute_resolutions r \
                                   WHERE r.dispute_id = d.dispute_id) \
                 GROUP BY d.entry_id",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("credit_open_disputes"))
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
        "m20261202_000100_create_credit_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWebhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::create_webhook_tables(manager, "credit").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::drop_webhook_tables(manager, "credit").await
    }
}

#[derive(DeriveIden)]
enum DealNames {
    AccountName,
    ProductName,
}

/// The names a deal was recorded with, shown beside the ids of its entries.
struct AddDealNames;

impl MigrationName for AddDealNames {
    fn name(&self) -> &str {
        "m20261202_000101_credit_deal_names"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddDealNames {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One ALTER option per statement: SQLite takes no more.
        for col in [DealNames::AccountName, DealNames::ProductName] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CreditDeals::Table)
                        .add_column(ColumnDef::new(col).string())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [DealNames::ProductName, DealNames::AccountName] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CreditDeals::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// `credit_request_records`: the `request_id` records (AIP-155) in the shape every
/// service shares (`storage::idempotency`), written in the transaction of the
/// mutation they answer. They replace `credit_requests`, whose rows were written
/// after the mutation committed; only retries in flight during the upgrade lose
/// their first answer (and then run once more).
struct RequestRecords;

impl MigrationName for RequestRecords {
    fn name(&self) -> &str {
        "m20261202_000201_credit_request_records"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RequestRecords {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::create_requests_table(manager, "credit_request_records").await?;
        manager
            .drop_table(Table::drop().table(CreditRequests::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        CreateCreditRequests.up(manager).await?;
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("credit_request_records"))
                    .to_owned(),
            )
            .await
    }
}
