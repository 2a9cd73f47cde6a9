//! The credit service's rules, pure: no database, no tonic.
//!
//! - [`policy`]: validated credit policies (shares, overlays, basis, hold, clawback terms)
//!   and the next version a policy gains.
//! - [`deal`]: a deal's recording and split set, validated, and its credits planned to the
//!   cent with `domain::allocate_deal_credits`.
//! - [`recording`]: what recording a won deal writes (the deal, its first split set, its
//!   CREDIT entries, the event).
//! - [`splits`]: what replacing a deal's split set writes (reversals and new credits).
//! - [`clawback`]: what a cancellation claws back, deal by deal.
//! - [`release`]: what an approval releases.
//! - [`disputes`]: what opening and resolving a dispute write.
//! - [`ledger`]: entry kinds, HELD/RELEASED status, the entries each write appends,
//!   balances and statements, all derived from append-only entries.
//! - [`people`]: the people directory's inputs, the look-alike id rule, a person's next
//!   version, and the rule that a deal credits people of the directory.
//! - [`privacy`]: who reads which rows (own, managed team, totals only) and separation of
//!   duties (nobody approves, adjusts or rules on their own credit).
//! - [`views`]: a deal and a dispute as the rules read them.
//!
//! Each `plan_*` function takes the rows a write decides on and returns what to write
//! (rows, entries, events); the store loads, calls it and writes in one transaction.

pub mod clawback;
pub mod deal;
pub mod disputes;
pub mod inputs;
pub mod ledger;
pub mod people;
pub mod policy;
pub mod privacy;
pub mod recording;
pub mod release;
pub mod splits;
#[cfg(test)]
pub(crate) mod test_support;
pub mod views;

pub use policy::*;

use crate::error::CreditError;

/// A stored value that does not read (or a value that does not write) as expected.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> CreditError {
    CreditError::Corrupt(what.to_string())
}

/// A value as the JSON text a column stores.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CreditError> {
    serde_json::to_string(value).map_err(corrupt)
}
