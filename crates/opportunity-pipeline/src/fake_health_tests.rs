//! The service against a fake health service (in-memory SQLite, no
//! network): what the gates do with each answer health can give.

use std::sync::{Arc, Mutex};

use crate::health::{AccountInfo, HealthError, ProductInfo, SubscriptionInfo, TriggerInfo};
use crate::model::gates::{HealthView, ProductHealth};
use crate::model::whitespace::PortfolioProduct;
use crate::{HealthGateway, PipelineConfig, PipelineService};
use contracts::pb::common::v1::{HealthBand as PbBand, Money, Motion};
use contracts::pb::pipeline::v1 as pb;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_server::OpportunityPipelineService;
use domain::HealthBand;
use migrations::MigratorTrait;
use tonic::{Code, Request};
use tonic_types::StatusExt;

/// Answers whatever the test put in it; `None` means "down".
#[derive(Default)]
struct FakeHealth {
    view: Mutex<Option<HealthView>>,
}

impl FakeHealth {
    fn set(&self, view: Option<HealthView>) {
        *self.view.lock().unwrap() = view;
    }
}

fn down() -> HealthError {
    HealthError::Unavailable("fake health is down".into())
}

#[tonic::async_trait]
impl HealthGateway for FakeHealth {
    async fn account_health(&self, _: &str) -> Result<HealthView, HealthError> {
        self.view.lock().unwrap().clone().ok_or_else(down)
    }
    /// Every account and product exists: the references are real.
    async fn account(&self, id: &str) -> Result<AccountInfo, HealthError> {
        Ok(AccountInfo {
            account_id: id.into(),
            name: "Acme".into(),
            segment: None,
            owner_csm: String::new(),
            external_ref: Some(("salesforce".into(), format!("crm-{id}"))),
        })
    }
    async fn trigger(&self, id: &str) -> Result<TriggerInfo, HealthError> {
        Err(HealthError::NotFound(format!("trigger {id}")))
    }
    async fn product(&self, id: &str) -> Result<ProductInfo, HealthError> {
        Ok(ProductInfo {
            product_id: id.into(),
            name: "Analytics".into(),
        })
    }
    async fn portfolio(&self) -> Result<Vec<PortfolioProduct>, HealthError> {
        Err(down())
    }
    async fn active_subscriptions(&self, _: &str) -> Result<Vec<SubscriptionInfo>, HealthError> {
        Err(down())
    }
}

fn band_view(account: HealthBand, source: &str, source_band: HealthBand) -> HealthView {
    HealthView {
        account_band: Some(account),
        account_score: Some("70".into()),
        products: vec![ProductHealth {
            product_id: source.into(),
            band: Some(source_band),
            score: None,
        }],
    }
}

async fn service(fake: Arc<FakeHealth>) -> PipelineService {
    // One connection: every connection to `sqlite::memory:` is its own database.
    let mut options = sea_orm::ConnectOptions::new("sqlite::memory:");
    options.max_connections(1).min_connections(1);
    let db = sea_orm::Database::connect(options).await.unwrap();
    migrations::pipeline::Migrator::up(&db, None).await.unwrap();
    PipelineService::new(db, fake, PipelineConfig::default())
}

fn kinds(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .precondition_failure()
        .map(|p| p.violations.iter().map(|v| v.r#type.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn gates_follow_what_health_says() {
    let fake = Arc::new(FakeHealth::default());
    let svc = service(fake.clone()).await;
    let source = domain::ProductId::new().to_string();
    let created = svc
        .create_opportunity(Request::new(pb::CreateOpportunityRequest {
            request_id: String::new(),
            occur_time: None,
            opportunity: Some(pb::Opportunity {
                account_id: domain::AccountId::new().to_string(),
                product_id: domain::ProductId::new().to_string(),
                source_product_id: source.clone(),
                motion: Motion::CrossSellAdjacent as i32,
                amount: Some(Money {
                    currency_code: "USD".into(),
                    amount: "40000".into(),
                }),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    // Health had no score at creation: no snapshot, but the opportunity exists.
    assert!(created.health_snapshot.is_none());
    let advance = |override_reason: &str| pb::AdvanceStageRequest {
        opportunity_id: created.opportunity_id.clone(),
        etag: created.etag.clone(),
        to_stage: pb::Stage::Exploring as i32,
        override_reason: override_reason.into(),
        ..Default::default()
    };

    // Down: UNAVAILABLE, never a pass.
    let err = svc
        .advance_stage(Request::new(advance("")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);

    // RED account and YELLOW source product: both listed.
    fake.set(Some(band_view(
        HealthBand::Red,
        &source,
        HealthBand::Yellow,
    )));
    let err = svc
        .advance_stage(Request::new(advance("")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(kinds(&err), ["ACCOUNT_HEALTH", "SOURCE_PRODUCT_HEALTH"]);

    // GREEN both: passes, with a fresh snapshot.
    fake.set(Some(band_view(
        HealthBand::Green,
        &source,
        HealthBand::Green,
    )));
    let moved = svc
        .advance_stage(Request::new(advance("")))
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    let snap = moved.health_snapshot.unwrap();
    assert_eq!(snap.account_band, PbBand::Green as i32);
    assert_eq!(snap.source_product_band, PbBand::Green as i32);
    assert_eq!(snap.source_product_id, source);

    // Unknown trigger: NOT_FOUND from health is NOT_FOUND here.
    let err = svc
        .create_opportunity_from_trigger(Request::new(pb::CreateOpportunityFromTriggerRequest {
            trigger_id: domain::TriggerId::new().to_string(),
            amount: Some(Money {
                currency_code: "USD".into(),
                amount: "1000".into(),
            }),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}
