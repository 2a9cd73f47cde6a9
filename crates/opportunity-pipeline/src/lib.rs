//! OpportunityPipelineService (`expansion.pipeline.v1`): cross-sell and
//! upsell opportunities, stage gates, qualification, routing, the CS→Sales
//! handoff, whitespace and the forecast. It asks the health service over
//! gRPC; it never reads another service's tables.
//!
//! Reading order: [`api`] (the tonic trait, thin), `service` (what each RPC
//! does: validate, ask health, apply the rules, store), [`model`]
//! (validated inputs, the pure rules — `gates`, `qualification`,
//! `priority`, `routing`, `handoff`, `whitespace`, `forecast`, `performance`,
//! `config` — and the plans of the writes: `transition`, `creation`, `handoff`),
//! [`health`] (what is asked of the health service, behind a trait),
//! [`store`] (SeaORM queries and transactions), [`entity`], [`convert`]
//! (rows to wire messages).

pub mod api;
pub mod convert;
pub mod entity;
pub mod error;
pub mod health;
pub mod model;
pub mod outbox;
pub mod people;
mod service;
pub mod start;
pub mod store;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod fake_health_tests;

pub use api::PipelineService;
pub use contracts::pb::pipeline::v1::opportunity_pipeline_service_server::OpportunityPipelineServiceServer;
pub use health::{GrpcHealthGateway, HealthGateway, NoHealthService};
pub use model::config::PipelineConfig;
pub use people::{GrpcPeopleDirectory, NoPeopleDirectory, PeopleDirectory};

/// `ErrorInfo.domain` of this service's errors.
pub const DOMAIN: &str = "expansion.pipeline.v1";
