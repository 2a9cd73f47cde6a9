//! AccountHealthService (`expansion.health.v1`): accounts, the product
//! portfolio, subscriptions, signals, scorecards, health scores, expansion
//! triggers and revenue metrics. The other two services lean on it over gRPC.
//!
//! Reading order: [`api`] (the tonic trait, thin), [`model`] (validated
//! inputs, pure), [`store`] (SeaORM queries and transactions), [`entity`].

pub mod api;
pub mod cohort;
pub mod convert;
pub mod entity;
pub mod error;
pub mod model;
pub mod outbox;
pub mod revenue;
pub mod service;
pub mod start;
pub mod store;
pub mod worker;

pub use api::HealthService;
pub use contracts::pb::health::v1::account_health_service_server::AccountHealthServiceServer;

/// `ErrorInfo.domain` of this service's errors.
pub const DOMAIN: &str = "expansion.health.v1";
