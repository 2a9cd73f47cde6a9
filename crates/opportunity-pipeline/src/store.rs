//! The pipeline service's queries and transactions.
//!
//! Every change to an opportunity goes through [`Store::update_opportunity`]:
//! one guarded UPDATE (`version = expected`, so a stale etag changes nothing),
//! its history rows and its events, in one transaction.

use chrono::{DateTime, Utc};
use domain::{AccountId, HandoffId, Motion, OpportunityId, Stage, TriggerId};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use storage::events::{EventLog, NewEvent};

use crate::entity::handoff::HandoffStatus;
use crate::entity::opportunity::{StoredMotion, StoredStage};
use crate::entity::{handoff, history, opportunity, wallet_estimate};
use crate::error::PipelineError;
use crate::model::creation::OpportunityCreation;

/// Name of the pipeline service's event log table.
pub const EVENT_TABLE: &str = "pipeline_events";

pub use crate::model::transition::HistoryNote;

/// A guarded change to one opportunity.
pub struct OpportunityWrite {
    pub id: String,
    /// The version the change was computed from (the caller's etag).
    pub expected_version: i64,
    /// Only the `Set` columns change; `version`, `updated_at/by` are handled here.
    pub changes: opportunity::ActiveModel,
    pub history: Vec<HistoryNote>,
    pub events: Vec<NewEvent>,
    /// When the change happened in the source system (`occur_time`, an
    /// import's): the stage's entry and the history rows are stamped with
    /// it; `None`: now.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// Filters of `ListOpportunities` that SQL applies.
#[derive(Debug, Clone, Default)]
pub struct OpportunityFilter {
    pub account_id: Option<String>,
    pub stages: Vec<Stage>,
    pub motion: Option<Motion>,
    pub owner: Option<String>,
    pub owner_team: Option<String>,
    pub currency: Option<String>,
    /// Stalled only: per open stage, entered before this instant.
    pub stalled_before: Option<Vec<(Stage, DateTime<Utc>)>>,
    /// Keyset paging in id (creation) order: ids after this one…
    pub after_id: Option<String>,
    /// …and at most this many.
    pub limit: Option<u64>,
}

/// Filters of `ListHandoffs`.
#[derive(Debug, Clone, Default)]
pub struct HandoffFilter {
    pub statuses: Vec<HandoffStatus>,
    pub opportunity_id: Option<String>,
    /// Overdue only: REQUESTED and due before this instant.
    pub overdue_at: Option<DateTime<Utc>>,
    pub after_id: Option<String>,
    pub limit: u64,
}

#[derive(Clone)]
pub struct Store {
    db: storage::Db,
    events: EventLog,
    /// On SQLite, write transactions (and the outbox's writes) take turns.
    writer: storage::WriteGate,
}

pub use crate::model::to_json;

fn history_row(
    opportunity_id: &str,
    note: &HistoryNote,
    principal: &str,
    now: DateTime<Utc>,
) -> history::ActiveModel {
    history::ActiveModel {
        id: Set(domain::EventId::new().to_string()),
        opportunity_id: Set(opportunity_id.to_owned()),
        field: Set(note.field.to_owned()),
        previous_value: Set(note.previous.clone()),
        new_value: Set(note.new.clone()),
        principal: Set(principal.to_owned()),
        reason: Set(note.reason.clone()),
        changed_at: Set(now),
    }
}

/// The CRM references of the accounts pipeline events name.
const ACCOUNT_REFS: &str = "pipeline_account_refs";

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            writer: storage::WriteGate::for_db(&db),
            db: storage::Db::new(db),
            // Pipeline events name accounts: each with its CRM reference, as
            // health gave it when the pipeline last asked (`remember_account`).
            events: EventLog::new(EVENT_TABLE).with_account_refs(storage::events::AccountRefs {
                table: ACCOUNT_REFS,
                id: "account_id",
                system: "external_system",
                external_id: "external_id",
            }),
        }
    }

    /// Keeps the CRM reference of an account health named, for the events
    /// that will name it (an account's reference does not change).
    pub async fn remember_account(
        &self,
        account: &crate::health::AccountInfo,
    ) -> Result<(), PipelineError> {
        use sea_orm::sea_query::{Alias, OnConflict, Query};
        let Some((system, external_id)) = &account.external_ref else {
            return Ok(());
        };
        let insert = Query::insert()
            .into_table(Alias::new(ACCOUNT_REFS))
            .columns([
                Alias::new("account_id"),
                Alias::new("external_system"),
                Alias::new("external_id"),
            ])
            .values([
                account.account_id.clone().into(),
                system.clone().into(),
                external_id.clone().into(),
            ])
            .map_err(|e| PipelineError::from(contracts::ApiError::internal(e)))?
            .on_conflict(
                OnConflict::column(Alias::new("account_id"))
                    .update_columns([Alias::new("external_system"), Alias::new("external_id")])
                    .to_owned(),
            )
            .to_owned();
        let _write = self.writer.enter().await;
        self.db
            .execute(&insert)
            .await
            .map_err(|e| PipelineError::from(storage::db_error(e)))?;
        Ok(())
    }

    pub fn writer(&self) -> &storage::WriteGate {
        &self.writer
    }

    pub fn db(&self) -> &storage::Db {
        &self.db
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// The account and product names the opportunities `ids` keep, by id.
    pub async fn opportunity_names(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, (String, String)>, PipelineError> {
        let rows = opportunity::Entity::find()
            .filter(opportunity::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|o| {
                (
                    o.id,
                    (
                        o.account_name.unwrap_or_default(),
                        o.product_name.unwrap_or_default(),
                    ),
                )
            })
            .collect())
    }

    pub async fn opportunity(
        &self,
        id: OpportunityId,
    ) -> Result<Option<opportunity::Model>, PipelineError> {
        Ok(opportunity::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?)
    }

    /// The opportunity created from a trigger, if any.
    pub async fn opportunity_from_trigger(
        &self,
        trigger_id: TriggerId,
    ) -> Result<Option<opportunity::Model>, PipelineError> {
        Ok(opportunity::Entity::find()
            .filter(opportunity::Column::SourceTriggerId.eq(trigger_id.to_string()))
            .one(&self.db)
            .await?)
    }

    /// Inserts a planned opportunity (`model::creation::plan_creation`), its
    /// history rows and its `created` event, in one transaction.
    pub async fn create_opportunity(
        &self,
        creation: OpportunityCreation,
        principal: &str,
    ) -> Result<opportunity::Model, PipelineError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let model = creation.row.insert(&txn).await?;
        for note in &creation.history {
            history_row(&model.id, note, principal, creation.created_at)
                .insert(&txn)
                .await?;
        }
        self.events.append(&txn, &[creation.event]).await?;
        txn.commit().await?;
        self.events.committed();
        Ok(model)
    }

    /// Applies a guarded change inside `txn`: fails with ETAG_MISMATCH (or
    /// NOT_FOUND) and changes nothing when the stored version moved on.
    async fn apply_write<C: ConnectionTrait>(
        &self,
        txn: &C,
        write: OpportunityWrite,
        principal: &str,
        now: DateTime<Utc>,
    ) -> Result<opportunity::Model, PipelineError> {
        let mut changes = write.changes;
        changes.updated_at = Set(now);
        changes.updated_by = Set(principal.to_owned());
        // When it happened: now, or the source system's time of an import.
        let at = write.occurred_at.unwrap_or(now);
        // A stage move enters its stage at the instant its history row records.
        if matches!(changes.stage_entered_at, sea_orm::ActiveValue::Set(Some(_))) {
            changes.stage_entered_at = Set(Some(at));
        }
        let result = opportunity::Entity::update_many()
            .set(changes)
            .col_expr(
                opportunity::Column::Version,
                Expr::col(opportunity::Column::Version).add(1),
            )
            .filter(opportunity::Column::Id.eq(write.id.as_str()))
            .filter(opportunity::Column::Version.eq(write.expected_version))
            .exec(txn)
            .await?;
        if result.rows_affected == 0 {
            let current = opportunity::Entity::find_by_id(write.id.clone())
                .one(txn)
                .await?;
            return Err(match current {
                None => PipelineError::NotFound("opportunity", write.id),
                Some(row) => PipelineError::EtagMismatch(format!(
                    "etag {} is stale: opportunity {} is now at etag {}; read it again and retry",
                    write.expected_version, row.id, row.version
                )),
            });
        }
        for note in &write.history {
            history_row(&write.id, note, principal, at)
                .insert(txn)
                .await?;
        }
        self.events.append(txn, &write.events).await?;
        opportunity::Entity::find_by_id(write.id.clone())
            .one(txn)
            .await?
            .ok_or(PipelineError::NotFound("opportunity", write.id))
    }

    /// Applies a guarded change in its own transaction.
    pub async fn update_opportunity(
        &self,
        write: OpportunityWrite,
        principal: &str,
    ) -> Result<opportunity::Model, PipelineError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let model = self
            .apply_write(&txn, write, principal, storage::now())
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok(model)
    }

    /// Every opportunity matching `filter`, oldest first.
    pub async fn opportunities(
        &self,
        filter: &OpportunityFilter,
    ) -> Result<Vec<opportunity::Model>, PipelineError> {
        use opportunity::Column as C;
        let mut query = opportunity::Entity::find();
        if let Some(a) = &filter.account_id {
            query = query.filter(C::AccountId.eq(a.as_str()));
        }
        if !filter.stages.is_empty() {
            query =
                query.filter(C::Stage.is_in(filter.stages.iter().map(|s| StoredStage::from(*s))));
        }
        if let Some(m) = filter.motion {
            query = query.filter(C::Motion.eq(StoredMotion::from(m)));
        }
        if let Some(o) = &filter.owner {
            query = query.filter(C::Owner.eq(o.as_str()));
        }
        if let Some(t) = &filter.owner_team {
            query = query.filter(C::OwnerTeam.eq(t.as_str()));
        }
        if let Some(c) = &filter.currency {
            query = query.filter(C::Currency.eq(c.as_str()));
        }
        if let Some(cutoffs) = &filter.stalled_before {
            let mut any = Condition::any();
            for (stage, before) in cutoffs {
                any = any.add(
                    Condition::all()
                        .add(C::Stage.eq(StoredStage::from(*stage)))
                        .add(
                            Condition::any().add(C::StageEnteredAt.lt(*before)).add(
                                Condition::all()
                                    .add(C::StageEnteredAt.is_null())
                                    .add(C::UpdatedAt.lt(*before)),
                            ),
                        ),
                );
            }
            // No stage can stall: nothing matches.
            if cutoffs.is_empty() {
                any = any.add(C::Id.is_null());
            }
            query = query.filter(any);
        }
        if let Some(after) = &filter.after_id {
            query = query.filter(C::Id.gt(after.as_str()));
        }
        if let Some(limit) = filter.limit {
            query = query.limit(limit);
        }
        Ok(query.order_by_asc(C::Id).all(&self.db).await?)
    }

    /// A page of an opportunity's history, oldest first.
    pub async fn history(
        &self,
        opportunity_id: OpportunityId,
        after_id: Option<&str>,
        limit: u64,
    ) -> Result<Vec<history::Model>, PipelineError> {
        use history::Column as C;
        let mut query =
            history::Entity::find().filter(C::OpportunityId.eq(opportunity_id.to_string()));
        if let Some(after) = after_id {
            query = query.filter(C::Id.gt(after));
        }
        Ok(query.order_by_asc(C::Id).limit(limit).all(&self.db).await?)
    }

    /// Every stage history row (for conversion and cycle times).
    pub async fn stage_history(&self) -> Result<Vec<history::Model>, PipelineError> {
        use history::Column as C;
        Ok(history::Entity::find()
            .filter(C::Field.eq("stage"))
            .order_by_asc(C::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn handoff(&self, id: HandoffId) -> Result<Option<handoff::Model>, PipelineError> {
        Ok(handoff::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?)
    }

    pub async fn open_handoff(
        &self,
        opportunity_id: OpportunityId,
    ) -> Result<Option<handoff::Model>, PipelineError> {
        Ok(handoff::Entity::find()
            .filter(handoff::Column::OpenKey.eq(opportunity_id.to_string()))
            .one(&self.db)
            .await?)
    }

    /// Inserts a REQUESTED handoff and its event.
    pub async fn insert_handoff(
        &self,
        row: handoff::ActiveModel,
        event: NewEvent,
    ) -> Result<handoff::Model, PipelineError> {
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let model = row.insert(&txn).await?;
        self.events.append(&txn, &[event]).await?;
        txn.commit().await?;
        self.events.committed();
        Ok(model)
    }

    /// Moves a REQUESTED handoff to its final state (only if it is still
    /// REQUESTED) and applies the opportunity change that goes with it, in
    /// one transaction.
    pub async fn resolve_handoff(
        &self,
        handoff_id: HandoffId,
        changes: handoff::ActiveModel,
        opportunity: Option<OpportunityWrite>,
        events: Vec<NewEvent>,
        principal: &str,
    ) -> Result<(handoff::Model, Option<opportunity::Model>), PipelineError> {
        let handoff_id = handoff_id.to_string();
        let now = storage::now();
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let mut changes = changes;
        changes.open_key = Set(None);
        changes.resolved_at = Set(Some(now));
        changes.resolved_by = Set(Some(principal.to_owned()));
        let result = handoff::Entity::update_many()
            .set(changes)
            .filter(handoff::Column::Id.eq(handoff_id.as_str()))
            .filter(handoff::Column::Status.eq(HandoffStatus::Requested))
            .exec(&txn)
            .await?;
        if result.rows_affected == 0 {
            let status = handoff::Entity::find_by_id(handoff_id.clone())
                .one(&txn)
                .await?
                .map(|h| h.status);
            return Err(match status {
                None => PipelineError::NotFound("handoff", handoff_id),
                Some(status) => PipelineError::precondition(
                    "HANDOFF_NOT_OPEN",
                    &handoff_id,
                    format!("handoff {handoff_id} is already {}", status.to_value()),
                ),
            });
        }
        let opportunity = match opportunity {
            Some(write) => Some(self.apply_write(&txn, write, principal, now).await?),
            None => None,
        };
        self.events.append(&txn, &events).await?;
        let handoff = handoff::Entity::find_by_id(handoff_id.clone())
            .one(&txn)
            .await?
            .ok_or(PipelineError::NotFound("handoff", handoff_id))?;
        txn.commit().await?;
        self.events.committed();
        Ok((handoff, opportunity))
    }

    pub async fn handoffs(
        &self,
        filter: &HandoffFilter,
    ) -> Result<Vec<handoff::Model>, PipelineError> {
        use handoff::Column as C;
        let mut query = handoff::Entity::find();
        if !filter.statuses.is_empty() {
            query = query.filter(C::Status.is_in(filter.statuses.iter().copied()));
        }
        if let Some(o) = &filter.opportunity_id {
            query = query.filter(C::OpportunityId.eq(o.as_str()));
        }
        if let Some(at) = filter.overdue_at {
            query = query
                .filter(C::Status.eq(HandoffStatus::Requested))
                .filter(C::DueAt.lt(at));
        }
        if let Some(after) = &filter.after_id {
            query = query.filter(C::Id.gt(after.as_str()));
        }
        Ok(query
            .order_by_asc(C::Id)
            .limit(filter.limit)
            .all(&self.db)
            .await?)
    }

    /// Records an estimate of one product area of an account: a new row that
    /// supersedes the earlier ones from its effective date (never an update).
    pub async fn upsert_wallet(
        &self,
        row: wallet_estimate::Model,
        principal: &str,
    ) -> Result<wallet_estimate::Model, PipelineError> {
        let now = storage::now();
        let _write = self.writer.enter().await;
        let txn = self.db.begin().await?;
        let model = wallet_estimate::ActiveModel {
            id: Set(domain::EventId::new().to_string()),
            account_id: Set(row.account_id.clone()),
            product_area: Set(row.product_area.clone()),
            annual_spend_minor: Set(row.annual_spend_minor),
            currency: Set(row.currency.clone()),
            served_by: Set(row.served_by.clone()),
            competitor: Set(row.competitor.clone()),
            notes: Set(row.notes.clone()),
            created_at: Set(now),
            created_by: Set(principal.to_owned()),
            updated_at: Set(now),
            updated_by: Set(principal.to_owned()),
            effective_date: Set(row.effective_date),
        }
        .insert(&txn)
        .await?;
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "pipeline.wallet_estimate.upserted".into(),
                    subject_id: model.account_id.clone(),
                    data: serde_json::json!({
                        "account_id": model.account_id,
                        "product_area": model.product_area,
                        "annual_spend_minor": model.annual_spend_minor.to_string(),
                        "currency_code": model.currency,
                        "served_by": model.served_by,
                        "effective_date": model.effective_date.to_string(),
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok(model)
    }

    /// Every estimate ever recorded of one account (`None`: of every
    /// account), in record order.
    pub async fn wallet(
        &self,
        account_id: Option<AccountId>,
    ) -> Result<Vec<wallet_estimate::Model>, PipelineError> {
        use wallet_estimate::Column as C;
        let mut query = wallet_estimate::Entity::find();
        if let Some(account_id) = account_id {
            query = query.filter(C::AccountId.eq(account_id.to_string()));
        }
        Ok(query.order_by_asc(C::Id).all(&self.db).await?)
    }

    /// Every handoff, in id order (for the performance figures).
    pub async fn all_handoffs(&self) -> Result<Vec<handoff::Model>, PipelineError> {
        Ok(handoff::Entity::find()
            .order_by_asc(handoff::Column::Id)
            .all(&self.db)
            .await?)
    }
}
