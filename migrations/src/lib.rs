//! Schema migrations, one migrator per service.
//!
//! Each service owns its tables and its migration history: the three
//! migrators keep their history in separate tables (`health_migrations`,
//! `pipeline_migrations`, `credit_migrations`), so the services can share one
//! PostgreSQL database or use one each. Money columns are integer minor units
//! beside a currency code, never REAL; percentages are exact decimal text.

pub mod credit;
pub mod events;
pub mod health;
pub mod pipeline;

pub use sea_orm_migration::MigratorTrait;
