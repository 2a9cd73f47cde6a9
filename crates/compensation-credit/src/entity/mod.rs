//! SeaORM entities of the credit service's own tables.

pub mod policy;
