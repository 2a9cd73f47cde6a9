//! The credit service's rules, pure: no database, no tonic.
//!
//! - [`policy`]: validated credit policies (shares, overlays, basis, hold, clawback terms).
//! - [`deal`]: a deal's recording and split set, validated, and its credits planned to the
//!   cent with `domain::allocate_deal_credits`.
//! - [`ledger`]: entry kinds, HELD/RELEASED status, split replacement, clawbacks, balances
//!   and statements, all derived from append-only entries.

pub mod deal;
pub mod inputs;
pub mod ledger;
pub mod policy;

pub use policy::*;
