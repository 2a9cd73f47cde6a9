//! SeaORM entities of the pipeline service's own tables.

pub mod handoff;
pub mod history;
pub mod opportunity;
pub mod wallet_estimate;
