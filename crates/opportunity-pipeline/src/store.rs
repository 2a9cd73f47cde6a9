//! The pipeline service's queries and transactions.

use domain::{OpportunityId, Stage};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set, TransactionTrait};
use storage::events::{EventLog, NewEvent};

use crate::entity::{history, opportunity};
use crate::error::PipelineError;
use crate::model::NewOpportunity;

/// Name of the pipeline service's event log table.
pub const EVENT_TABLE: &str = "pipeline_events";

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    events: EventLog,
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, PipelineError> {
    serde_json::to_string(value).map_err(|e| PipelineError::Corrupt(e.to_string()))
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            events: EventLog::new(EVENT_TABLE),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    pub async fn opportunity(
        &self,
        id: &OpportunityId,
    ) -> Result<Option<opportunity::Model>, PipelineError> {
        Ok(opportunity::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?)
    }

    /// Inserts the opportunity and its first history row (the stage it
    /// starts in) in one transaction.
    pub async fn create_opportunity(
        &self,
        new: &NewOpportunity,
        principal: &str,
    ) -> Result<opportunity::Model, PipelineError> {
        let now = storage::now();
        let id = OpportunityId::new().to_string();
        let row = opportunity::ActiveModel {
            id: Set(id.clone()),
            account_id: Set(new.account_id.to_string()),
            product_id: Set(new.product_id.to_string()),
            source_product_id: Set(new.source_product_id.map(|p| p.to_string())),
            name: Set(new.name.clone()),
            motion: Set(new.motion.as_str().to_owned()),
            amount_minor: Set(new.amount.minor()),
            currency: Set(new.amount.currency().code().to_owned()),
            stage: Set(new.stage.as_str().to_owned()),
            probability: Set(new.probability.to_decimal_string()),
            probability_overridden: Set(new.probability_overridden),
            forecast_category: Set(new.forecast_category.as_str_name().to_owned()),
            close_date: Set(new.close_date),
            source_kind: Set(new.source.kind().as_str_name().to_owned()),
            source_trigger_id: Set(match &new.source {
                crate::model::Source::Trigger(t) => Some(t.to_string()),
                _ => None,
            }),
            owner: Set(new.owner.clone()),
            owner_team: Set(new.owner_team.clone()),
            originator: Set(new.originator.clone()),
            stakeholders: Set(to_json(&new.stakeholders)?),
            discovery_notes: Set(new.discovery_notes.clone()),
            qualification: Set(to_json(&new.qualification)?),
            health_snapshot: Set(None),
            lost_reason: Set(None),
            version: Set(1),
            created_at: Set(now),
            created_by: Set(principal.to_owned()),
            updated_at: Set(now),
            updated_by: Set(principal.to_owned()),
        };
        let first_stage = history::ActiveModel {
            id: Set(domain::EventId::new().to_string()),
            opportunity_id: Set(id),
            field: Set("stage".to_owned()),
            previous_value: Set(None),
            new_value: Set(Some(Stage::Identified.as_str().to_owned())),
            principal: Set(principal.to_owned()),
            reason: Set(Some("created".to_owned())),
            changed_at: Set(now),
        };
        let txn = self.db.begin().await?;
        let model = row.insert(&txn).await?;
        first_stage.insert(&txn).await?;
        self.events
            .append(
                &txn,
                &[NewEvent {
                    event_type: "pipeline.opportunity.created",
                    subject_id: model.id.clone(),
                    data: serde_json::json!({
                        "opportunity_id": model.id,
                        "account_id": model.account_id,
                        "product_id": model.product_id,
                        "motion": model.motion,
                        "stage": model.stage,
                        "amount": new.amount.to_amount_string(),
                        "currency_code": model.currency,
                        "principal": principal,
                    }),
                }],
            )
            .await?;
        txn.commit().await?;
        self.events.committed();
        Ok(model)
    }
}
