//! OpportunityPipelineService (`expansion.pipeline.v1`): cross-sell and
//! upsell opportunities, stage gates, qualification, routing, the CS→Sales
//! handoff, whitespace and the forecast. It asks the health service over
//! gRPC; it never reads another service's tables.
//!
//! Reading order: [`api`] (the tonic trait, thin), [`model`] (validated
//! inputs, pure), [`store`] (SeaORM queries and transactions), [`entity`].

pub mod api;
pub mod entity;
pub mod error;
pub mod model;
pub mod store;

pub use api::PipelineService;
pub use contracts::pb::pipeline::v1::opportunity_pipeline_service_server::OpportunityPipelineServiceServer;

/// `ErrorInfo.domain` of this service's errors.
pub const DOMAIN: &str = "expansion.pipeline.v1";
