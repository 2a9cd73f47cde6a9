//! Expansion's domain vocabulary, shared by the three services.
//!
//! Values arrive as strings and integers on the wire and are parsed here, once, into types
//! that can only hold valid values: [`Money`] (a currency and integer minor units),
//! [`Percent`] (an exact decimal), one id type per entity ([`AccountId`], …), [`Month`] and
//! [`DateRange`] periods with a [`TimeZoneName`], and the closed sets [`Stage`], [`Motion`],
//! [`Segment`], [`HealthBand`] and [`CreditRole`]. Every parse error is a typed enum whose
//! message is written for the person who sent the value; the service crates turn those
//! messages into gRPC field violations.
//!
//! [`allocation`] holds the split arithmetic every implementation must agree on to the cent:
//! the largest-remainder method and the deal-credit allocation of SPEC §4.
//!
//! ```
//! use domain::{Money, Percent, allocate_deal_credits};
//!
//! // SPEC §4: B = 1000.01 USD, 25/75, one originator, delivery split 50/50.
//! let basis = Money::parse("USD", "1000.01")?;
//! let pct = |s| Percent::parse(s);
//! let credits = allocate_deal_credits(
//!     basis.minor(),
//!     pct("25")?,
//!     &[("csm", pct("100")?)],
//!     &[("ae-1", pct("50")?), ("ae-2", pct("50")?)],
//!     &[],
//! )?;
//! let amounts: Vec<String> = credits
//!     .iter()
//!     .map(|c| Money::from_minor(basis.currency(), c.minor()).to_amount_string())
//!     .collect();
//! assert_eq!(amounts, ["250.00", "375.01", "375.00"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Invariant:** this crate is pure. No I/O, no clocks other than UUIDv7 generation, no
//! async, no gRPC or database types, and no floating point anywhere near money.

mod decimal_text;
mod error;

pub mod allocation;
pub mod health_band;
pub mod ids;
pub mod money;
pub mod motion;
pub mod percent;
pub mod period;
pub mod segment;
pub mod stage;
pub mod text;

pub use allocation::{
    Allocation, AllocationError, CreditRole, allocate_deal_credits, largest_remainder,
    margin_basis, round_half_even_share,
};
pub use decimal_text::parse_decimal;
pub use error::ParseEnumError;
pub use health_band::HealthBand;
pub use ids::{
    AccountId, DisputeId, EventId, ExternalId, ExternalIdError, HandoffId, IdError, LedgerEntryId,
    OpportunityId, PolicyId, ProductId, ScorecardId, SignalId, SubscriptionId, TriggerId,
};
pub use money::{Currency, MAX_DEAL_MINOR, Money, MoneyError};
pub use motion::{BenchmarkVerdict, Motion};
pub use percent::{Percent, PercentError};
pub use period::{DateRange, Month, PeriodError, TimeZoneName, parse_date};
pub use segment::Segment;
pub use stage::{Stage, TransitionError};
pub use text::{NonEmptyText, TextError};

// Re-exported so callers name the same versions this crate's signatures use.
pub use chrono::{DateTime, NaiveDate, Utc};
pub use rust_decimal::Decimal;
pub use uuid::Uuid;
