//! SeaORM entities of the health service's own tables.

pub mod account;
pub mod amendment;
pub mod dirty;
pub mod health_current;
pub mod health_override;
pub mod health_score;
pub mod product;
pub mod scorecard;
pub mod signal;
pub mod subscription;
pub mod trigger;
pub mod upsell;
