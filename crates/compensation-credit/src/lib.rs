//! CompensationCreditService (`expansion.credit.v1`): credit policies,
//! origination vs delivery splits, the append-only credit ledger, holds,
//! approvals, clawbacks, disputes and statements. People are paid from these
//! numbers: amounts are exact minor units and nothing is ever rewritten.
//!
//! Reading order: [`api`] (the tonic trait, thin), [`service`] (what each RPC
//! does), [`model`] (validated inputs and the rules, pure: each write's planner),
//! [`store`] (SeaORM queries and transactions), [`entity`] (one file per table),
//! [`events`] (the events the service appends), [`convert`] (to the wire),
//! [`error`].

pub mod api;
pub mod convert;
pub mod entity;
pub mod error;
pub mod events;
pub mod model;
pub mod service;
pub mod start;
pub mod store;

pub use api::CreditService;
pub use contracts::pb::credit::v1::compensation_credit_service_server::CompensationCreditServiceServer;

/// `ErrorInfo.domain` of this service's errors.
pub const DOMAIN: &str = "expansion.credit.v1";
