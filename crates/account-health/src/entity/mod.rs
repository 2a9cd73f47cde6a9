//! SeaORM entities of the health service's own tables.

pub mod account;
