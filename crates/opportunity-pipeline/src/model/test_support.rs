//! Rows and instants the model's unit tests share.

use chrono::{DateTime, TimeZone, Utc};
use domain::Stage;

use super::config::PipelineConfig;
use super::{Qualification, to_json};
use crate::entity::opportunity;

/// 2026-03-02 10:00 UTC, the tests' now.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

/// A USD 12,000 adjacent cross-sell at `stage`, at etag 3.
pub fn opportunity_row(stage: Stage) -> opportunity::Model {
    opportunity::Model {
        id: "01opp".into(),
        account_id: "acc-1".into(),
        product_id: "prod-2".into(),
        source_product_id: None,
        name: "Analytics".into(),
        motion: opportunity::StoredMotion::CrossSellAdjacent,
        amount_minor: 1_200_000,
        currency: "USD".into(),
        stage: stage.into(),
        probability: PipelineConfig::default()
            .probability(stage)
            .to_decimal_string(),
        probability_overridden: false,
        forecast_category: "FORECAST_CATEGORY_PIPELINE".into(),
        close_date: None,
        source_kind: "SOURCE_KIND_DISCOVERY".into(),
        source_trigger_id: None,
        owner: Some("ae@x".into()),
        owner_team: None,
        originator: Some("csm@x".into()),
        stakeholders: "[]".into(),
        discovery_notes: None,
        qualification: to_json(&Qualification::default()).unwrap(),
        health_snapshot: None,
        lost_reason: None,
        version: 3,
        created_at: now(),
        created_by: "csm@x".into(),
        updated_at: now(),
        updated_by: "csm@x".into(),
        stage_entered_at: Some(now()),
        strategic_value: None,
        subscription_id: None,
        account_name: Some("Acme".into()),
        product_name: Some("Analytics".into()),
    }
}
