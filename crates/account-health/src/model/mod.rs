//! The health service's rules and validated inputs. Pure: no database, no
//! tonic; each rule is a function over plain values, tested with the seeds'
//! numbers.

pub mod account;
pub mod account_links;
pub mod backfill;
pub mod history;
pub mod portfolio;
pub mod product;
pub mod recompute;
pub mod reconcile;
pub mod scorecard;
pub mod signal;
pub mod subscription;
pub mod triggers;
pub mod upsell;

pub use account::{AccountInput, AccountKey, optional_account_id, optional_external_ref};
