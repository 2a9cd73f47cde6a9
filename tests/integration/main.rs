//! Integration suite: the real `expansion` binary on a free port, called
//! with a real gRPC client (and grpcurl, as the README shows), on SQLite and
//! on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod auth;
mod bad_input;
mod claims;
mod compose;
mod console;
mod credit;
mod dashboards;
mod deliveries;
mod demo;
mod faults;
mod foundation;
// The property-based fuzzing of parsers and request conversions (no server).
#[path = "../fuzz/mod.rs"]
mod fuzz;
mod health;
mod http;
mod import;
mod import_crm;
mod metrics;
mod names;
mod outbox;
mod past;
mod pipeline;
mod privacy;
mod readme;
mod replicas;
mod revenue;
mod startup;
mod story;
mod webhooks;
