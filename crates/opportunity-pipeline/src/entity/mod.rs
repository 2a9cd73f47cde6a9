//! SeaORM entities of the pipeline service's own tables.

pub mod history;
pub mod opportunity;
