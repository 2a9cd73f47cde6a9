//! Validated inputs of the health service: what a request means once every
//! field has been checked. Pure; no database, no tonic.

use chrono::NaiveDate;
use contracts::ApiError;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::{AccountId, ExternalId, Segment};

/// How an upsert finds the account it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountKey {
    /// Update this account; it must exist.
    Id(AccountId),
    /// Create or update the account with this CRM id.
    External(ExternalId),
    /// Create a new account that no CRM knows.
    New,
}

/// An account upsert that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInput {
    pub key: AccountKey,
    pub external: Option<ExternalId>,
    pub name: String,
    pub segment: Option<Segment>,
    pub customer_since: Option<NaiveDate>,
    pub fiscal_year_start_month: u32,
    pub owner_csm: Option<String>,
    pub parent: Option<AccountId>,
}

/// Parses an id field; empty is `None`.
pub fn optional_account_id(field: &str, value: &str) -> Result<Option<AccountId>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    AccountId::parse(value)
        .map(Some)
        .map_err(|e| ApiError::invalid(field, e))
}

/// Parses an external reference; absent or both parts empty is `None`.
pub fn optional_external_ref(
    field: &str,
    value: Option<&pb::ExternalRef>,
) -> Result<Option<ExternalId>, ApiError> {
    match value {
        None => Ok(None),
        Some(r) if r.system.is_empty() && r.id.is_empty() => Ok(None),
        Some(r) => ExternalId::parse(&r.system, &r.id).map(Some).map_err(|e| {
            let sub = match e.field() {
                "source" => "system",
                other => other,
            };
            ApiError::invalid(format!("{field}.{sub}"), e)
        }),
    }
}

impl AccountInput {
    /// `today` bounds `customer_since`: a customer registered in the future is refused,
    /// like a signal from the future (a day of slack covers the caller's time zone).
    pub fn from_request(
        req: &pb::UpsertAccountRequest,
        today: NaiveDate,
    ) -> Result<Self, ApiError> {
        let id = optional_account_id("account_id", &req.account_id)?;
        let external = optional_external_ref("external_ref", req.external_ref.as_ref())?;
        let key = match (&id, &external) {
            (Some(id), _) => AccountKey::Id(*id),
            (None, Some(ext)) => AccountKey::External(ext.clone()),
            (None, None) => AccountKey::New,
        };
        let fiscal_year_start_month = match req.fiscal_year_start_month {
            0 => 1,
            m @ 1..=12 => m.unsigned_abs(),
            other => {
                return Err(ApiError::invalid(
                    "fiscal_year_start_month",
                    format!("{other} is not a month (1-12)"),
                ));
            }
        };
        let parent = optional_account_id("parent_account_id", &req.parent_account_id)?;
        if parent.is_some() && parent == id {
            return Err(ApiError::invalid(
                "parent_account_id",
                "an account cannot be its own parent",
            ));
        }
        let customer_since = wire::optional_date("customer_since", &req.customer_since)?;
        if let Some(since) = customer_since
            && today.succ_opt().is_some_and(|tomorrow| since > tomorrow)
        {
            return Err(ApiError::invalid(
                "customer_since",
                format!("{since} is in the future"),
            ));
        }
        Ok(Self {
            key,
            external,
            name: wire::text("name", &req.name, wire::MAX_NAME_LEN)?,
            segment: wire::segment("segment", req.segment)?,
            customer_since,
            fiscal_year_start_month,
            owner_csm: wire::optional_text("owner_csm", &req.owner_csm, wire::MAX_NAME_LEN)?,
            parent,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    #[test]
    fn a_customer_registered_in_the_future_is_refused() {
        let mut r = request();
        r.customer_since = "2026-12-02".into();
        assert!(
            AccountInput::from_request(&r, today()).is_ok(),
            "a day of slack"
        );
        r.customer_since = "2027-06-01".into();
        assert_eq!(
            field_of(AccountInput::from_request(&r, today()).unwrap_err()),
            "customer_since"
        );
    }

    use super::*;

    fn request() -> pb::UpsertAccountRequest {
        pb::UpsertAccountRequest {
            name: "Acme".into(),
            external_ref: Some(pb::ExternalRef {
                system: "salesforce".into(),
                id: "001A".into(),
            }),
            ..Default::default()
        }
    }

    fn field_of(err: ApiError) -> String {
        err.field()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not a field violation: {err:?}"))
    }

    #[test]
    fn external_ref_keys_the_upsert() {
        let input = AccountInput::from_request(&request(), today()).unwrap();
        assert!(matches!(input.key, AccountKey::External(_)));
        assert_eq!(input.fiscal_year_start_month, 1);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut r = request();
        r.name = String::new();
        assert_eq!(
            field_of(AccountInput::from_request(&r, today()).unwrap_err()),
            "name"
        );
        let mut r = request();
        r.fiscal_year_start_month = 13;
        assert_eq!(
            field_of(AccountInput::from_request(&r, today()).unwrap_err()),
            "fiscal_year_start_month"
        );
        let mut r = request();
        r.account_id = "nope".into();
        assert_eq!(
            field_of(AccountInput::from_request(&r, today()).unwrap_err()),
            "account_id"
        );
        let mut r = request();
        r.external_ref = Some(pb::ExternalRef {
            system: "sf".into(),
            id: String::new(),
        });
        assert_eq!(
            field_of(AccountInput::from_request(&r, today()).unwrap_err()),
            "external_ref.id"
        );
        let mut r = request();
        r.customer_since = "2026-13-01".into();
        assert_eq!(
            field_of(AccountInput::from_request(&r, today()).unwrap_err()),
            "customer_since"
        );
    }
}
