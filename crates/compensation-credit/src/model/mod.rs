//! The credit service's rules, pure: no database, no tonic.
//!
//! - [`policy`]: validated credit policies (shares, overlays, basis, hold, clawback terms).
//! - [`deal`]: a deal's recording and split set, validated, and its credits planned to the
//!   cent with `domain::allocate_deal_credits`.
//! - [`ledger`]: entry kinds, HELD/RELEASED status, split replacement, clawbacks, balances
//!   and statements, all derived from append-only entries.
//! - [`people`]: the people directory's inputs and the look-alike id rule.
//! - [`privacy`]: who reads which rows (own, managed team, totals only) and separation of
//!   duties (nobody approves, adjusts or rules on their own credit).

pub mod deal;
pub mod inputs;
pub mod ledger;
pub mod people;
pub mod policy;
pub mod privacy;

pub use policy::*;
