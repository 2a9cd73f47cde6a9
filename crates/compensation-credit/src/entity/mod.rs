//! SeaORM entities of the credit service's own tables. Every table but
//! `credit_policies`' history is append-only, enforced by database triggers.

pub mod clawback;
pub mod deal;
pub mod dispute;
pub mod dispute_resolution;
pub mod ledger_entry;
pub mod policy;
pub mod release;
pub mod split_set;
