//! SeaORM entities of the credit service's own tables, one file per table. The
//! ledger tables (all but `credit_policies`, `credit_request_records` and `credit_open_disputes`) only ever gain
//! rows, and database triggers refuse an update or delete of them; so does the people
//! directory (`credit_people`, one row per version of a person).

pub mod clawback;
pub mod deal;
pub mod dispute;
pub mod dispute_resolution;
pub mod ledger_entry;
pub mod open_dispute;
pub mod person;
pub mod policy;
pub mod release;
pub mod split_set;
