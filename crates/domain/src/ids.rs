//! Identifiers: one newtype per entity over a UUID, and the external CRM id.
//!
//! A separate type per entity means an `AccountId` can never be passed where an
//! `OpportunityId` is expected. New ids are UUIDv7: time-ordered, so they index well and
//! sort by creation, which keyset pagination relies on.

use std::fmt;

use thiserror::Error;
use uuid::Uuid;

use crate::text::{TextError, check_text};

/// Why an id string was refused. The messages omit the field name: the caller's field
/// violation names the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be a UUID")]
    Malformed,
    /// The all-zero UUID is what an unset field looks like, never a real entity.
    #[error("must not be the nil UUID")]
    Nil,
}

fn parse_uuid(text: &str) -> Result<Uuid, IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    let uuid = Uuid::try_parse(text).map_err(|_| IdError::Malformed)?;
    if uuid.is_nil() {
        return Err(IdError::Nil);
    }
    Ok(uuid)
}

macro_rules! uuid_id {
    ($( $(#[$meta:meta])* $name:ident ),+ $(,)?) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
            pub struct $name(Uuid);

            impl $name {
                /// A fresh, time-ordered (v7) id.
                // No `Default`: a silently generated id would hide a missing one.
                #[allow(clippy::new_without_default)]
                pub fn new() -> Self {
                    Self(Uuid::now_v7())
                }

                /// Parses a UUID in any standard spelling (hyphenated, simple, braced, URN;
                /// either case). It always prints hyphenated lower-case.
                pub fn parse(text: &str) -> Result<Self, IdError> {
                    parse_uuid(text).map(Self)
                }

                /// Wraps a UUID read back from storage.
                pub const fn from_uuid(uuid: Uuid) -> Self {
                    Self(uuid)
                }

                pub const fn as_uuid(&self) -> Uuid {
                    self.0
                }
            }

            impl fmt::Display for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    fmt::Display::fmt(&self.0.hyphenated(), f)
                }
            }

            impl std::str::FromStr for $name {
                type Err = IdError;

                fn from_str(s: &str) -> Result<Self, Self::Err> {
                    Self::parse(s)
                }
            }

            impl From<$name> for Uuid {
                fn from(id: $name) -> Uuid {
                    id.0
                }
            }
        )+
    };
}

uuid_id!(
    /// A customer account.
    AccountId,
    /// A product of the portfolio.
    ProductId,
    /// A subscription (contract or recurring sale).
    SubscriptionId,
    /// An ingested signal.
    SignalId,
    /// A scorecard (all versions share the id).
    ScorecardId,
    /// An expansion trigger.
    TriggerId,
    /// An expansion opportunity (also the deal id the credit service keys on).
    OpportunityId,
    /// A CS→Sales handoff.
    HandoffId,
    /// A credit policy (all versions share the id).
    PolicyId,
    /// One append-only ledger entry.
    LedgerEntryId,
    /// A dispute over a ledger entry.
    DisputeId,
    /// An event (outbox row, watch-stream item).
    EventId,
);

/// Longest source-system name or external id, in bytes (CRM ids are far shorter; the cap
/// keeps a unique index cheap).
pub const MAX_EXTERNAL_ID_BYTES: usize = 255;

/// An id in another system, e.g. Salesforce `0015g00000XyZab`: the pair is unique, which
/// makes connector upserts idempotent. Kept byte for byte (no trimming, no case folding):
/// ids are opaque keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId {
    source: String,
    id: String,
}

/// Which half of an external id was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExternalIdError {
    #[error("external id source {0}")]
    Source(TextError),
    #[error("external id {0}")]
    Id(TextError),
}

impl ExternalIdError {
    /// The sub-field at fault, for a field path such as `external_id.source`.
    pub fn field(&self) -> &'static str {
        match self {
            ExternalIdError::Source(_) => "source",
            ExternalIdError::Id(_) => "id",
        }
    }

    /// The problem, worded without the field name.
    pub fn problem(&self) -> &TextError {
        match self {
            ExternalIdError::Source(problem) | ExternalIdError::Id(problem) => problem,
        }
    }
}

impl ExternalId {
    /// Both parts must be non-blank, at most [`MAX_EXTERNAL_ID_BYTES`] bytes and free of
    /// control characters.
    pub fn parse(source: &str, id: &str) -> Result<ExternalId, ExternalIdError> {
        check_external_part(source).map_err(ExternalIdError::Source)?;
        check_external_part(id).map_err(ExternalIdError::Id)?;
        Ok(ExternalId {
            source: source.to_owned(),
            id: id.to_owned(),
        })
    }

    /// The system the id belongs to, e.g. `"salesforce"`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The id inside that system.
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn check_external_part(value: &str) -> Result<(), TextError> {
    if value.len() > MAX_EXTERNAL_ID_BYTES {
        return Err(TextError::TooManyBytes {
            max: MAX_EXTERNAL_ID_BYTES,
        });
    }
    check_text(value, false)
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const SAMPLE: &str = "0190b6a2-7c1e-7d3a-9f00-0123456789ab";

    #[test]
    fn new_ids_are_v7_and_time_ordered() {
        let first = AccountId::new();
        let second = AccountId::new();
        assert_eq!(first.as_uuid().get_version_num(), 7);
        assert_ne!(first, second);
        assert!(first < second);
    }

    #[test]
    fn parses_and_prints_canonically() {
        let id = OpportunityId::parse(SAMPLE).unwrap();
        assert_eq!(id.to_string(), SAMPLE);
        let upper = OpportunityId::parse(&SAMPLE.to_uppercase()).unwrap();
        assert_eq!(upper, id);
        assert_eq!(upper.to_string(), SAMPLE);
        let simple = OpportunityId::parse(&SAMPLE.replace('-', "")).unwrap();
        assert_eq!(simple, id);
        assert_eq!(OpportunityId::from_str(SAMPLE).unwrap(), id);
        assert_eq!(OpportunityId::from_uuid(id.as_uuid()), id);
        assert_eq!(Uuid::from(id), id.as_uuid());
    }

    #[test]
    fn refuses_bad_ids() {
        assert_eq!(AccountId::parse(""), Err(IdError::Empty));
        assert_eq!(
            AccountId::parse("").unwrap_err().to_string(),
            "must not be empty"
        );
        for bad in [
            "abc",
            " 0190b6a2-7c1e-7d3a-9f00-0123456789ab",
            "0190b6a2-7c1e-7d3a-9f00-0123456789a",
            "zz90b6a2-7c1e-7d3a-9f00-0123456789ab",
        ] {
            assert_eq!(AccountId::parse(bad), Err(IdError::Malformed), "{bad:?}");
        }
        assert_eq!(
            AccountId::parse("abc").unwrap_err().to_string(),
            "must be a UUID"
        );
        assert_eq!(
            AccountId::parse("00000000-0000-0000-0000-000000000000"),
            Err(IdError::Nil)
        );
    }

    #[test]
    fn external_ids_are_checked_and_kept_verbatim() {
        let id = ExternalId::parse("salesforce", "0015g00000XyZab").unwrap();
        assert_eq!(id.source(), "salesforce");
        assert_eq!(id.id(), "0015g00000XyZab");
        assert_eq!(id.to_string(), "salesforce:0015g00000XyZab");
        let spaced = ExternalId::parse("hubspot", "a b").unwrap();
        assert_eq!(spaced.id(), "a b");
        assert_eq!(
            ExternalId::parse("x", &"é".repeat(127)).unwrap().id().len(),
            254
        );
    }

    #[test]
    fn external_id_errors_name_the_part() {
        let err = ExternalId::parse("", "1").unwrap_err();
        assert_eq!(err.field(), "source");
        assert_eq!(err.problem(), &TextError::Empty);
        assert_eq!(err.to_string(), "external id source must not be empty");
        let err = ExternalId::parse("crm", "  ").unwrap_err();
        assert_eq!(err.field(), "id");
        assert_eq!(err.to_string(), "external id must not be empty");
        let err = ExternalId::parse("crm", &"x".repeat(256)).unwrap_err();
        assert_eq!(err.to_string(), "external id must be at most 255 bytes");
        assert!(ExternalId::parse("crm", &"x".repeat(255)).is_ok());
        // 128 two-byte characters are 256 bytes.
        assert!(ExternalId::parse("crm", &"é".repeat(128)).is_err());
        let err = ExternalId::parse("c\u{0}rm", "1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "external id source must not contain control characters"
        );
        assert!(ExternalId::parse("crm", "1\n").is_err());
    }
}
