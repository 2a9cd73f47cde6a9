//! Subscriptions: contracts and recurring sales, with their MRR history.

use chrono::{DateTime, NaiveDate, Utc};
use contracts::ApiError;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::{AccountId, ExternalId, Money, OpportunityId, ProductId, SubscriptionId};

use super::account::optional_external_ref;

/// How an upsert finds the subscription it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionKey {
    Id(SubscriptionId),
    External(ExternalId),
    /// The won opportunity that created it: a replay of the same close
    /// finds the same subscription.
    Opportunity(OpportunityId),
    New,
}

/// A validated subscription upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionInput {
    pub key: SubscriptionKey,
    pub external: Option<ExternalId>,
    pub source_opportunity: Option<OpportunityId>,
    pub account_id: AccountId,
    pub product_id: ProductId,
    pub tier: Option<String>,
    pub mrr: Money,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub quantity: i64,
    pub quota_limit: i64,
    /// When a changed MRR takes effect; `None` means `today`.
    pub mrr_effective_date: Option<NaiveDate>,
    /// Which day is "today" where the caller is (the request's `time_zone`).
    pub today: NaiveDate,
}

impl SubscriptionInput {
    /// `now` decides, in the request's `time_zone`, which day is today.
    pub fn from_request(
        req: &pb::UpsertSubscriptionRequest,
        now: DateTime<Utc>,
    ) -> Result<Self, ApiError> {
        let today = caller_today(&req.time_zone, now)?;
        let s = req
            .subscription
            .as_ref()
            .ok_or_else(|| ApiError::invalid(F, "is required"))?;
        let WireKey {
            key,
            external,
            source_opportunity,
        } = WireKey::from_pb(s)?;
        let account_id =
            AccountId::parse(&s.account_id).map_err(|e| ApiError::invalid(f("account_id"), e))?;
        let product_id =
            ProductId::parse(&s.product_id).map_err(|e| ApiError::invalid(f("product_id"), e))?;
        let mrr = mrr_from_pb(s.mrr.as_ref())?;
        let (start_date, end_date) = term_from_pb(s)?;
        check_counts(s)?;
        let mrr_effective_date = mrr_effective_date_from_pb(&req.mrr_effective_date, start_date)?;
        Ok(Self {
            key,
            external,
            source_opportunity,
            account_id,
            product_id,
            tier: wire::optional_text(&f("tier"), &s.tier, 64)?,
            mrr,
            start_date,
            end_date,
            quantity: if s.quantity == 0 { 1 } else { s.quantity },
            quota_limit: s.quota_limit,
            mrr_effective_date,
            today,
        })
    }
}

/// The request field the subscription is validated under.
const F: &str = "subscription";

fn f(name: &str) -> String {
    format!("{F}.{name}")
}

/// The identifying fields of an upsert and the key they make: the id first,
/// then the external ref, then the source opportunity.
struct WireKey {
    key: SubscriptionKey,
    external: Option<ExternalId>,
    source_opportunity: Option<OpportunityId>,
}

impl WireKey {
    fn from_pb(s: &pb::Subscription) -> Result<Self, ApiError> {
        let id = if s.subscription_id.is_empty() {
            None
        } else {
            Some(
                SubscriptionId::parse(&s.subscription_id)
                    .map_err(|e| ApiError::invalid(f("subscription_id"), e))?,
            )
        };
        let external = optional_external_ref(&f("external_ref"), s.external_ref.as_ref())?;
        let source_opportunity = if s.source_opportunity_id.is_empty() {
            None
        } else {
            Some(
                OpportunityId::parse(&s.source_opportunity_id)
                    .map_err(|e| ApiError::invalid(f("source_opportunity_id"), e))?,
            )
        };
        let key = match (&id, &external, &source_opportunity) {
            (Some(id), _, _) => SubscriptionKey::Id(*id),
            (None, Some(ext), _) => SubscriptionKey::External(ext.clone()),
            (None, None, Some(opp)) => SubscriptionKey::Opportunity(*opp),
            (None, None, None) => SubscriptionKey::New,
        };
        Ok(WireKey {
            key,
            external,
            source_opportunity,
        })
    }
}

fn mrr_from_pb(mrr: Option<&contracts::pb::common::v1::Money>) -> Result<Money, ApiError> {
    let mrr = wire::money(&f("mrr"), mrr)?;
    if mrr.is_negative() {
        return Err(ApiError::invalid(
            f("mrr.amount"),
            "MRR must not be negative",
        ));
    }
    Ok(mrr)
}

/// The start date and the optional end date, not before it.
fn term_from_pb(s: &pb::Subscription) -> Result<(NaiveDate, Option<NaiveDate>), ApiError> {
    let start_date = wire::date(&f("start_date"), &s.start_date)?;
    let end_date = wire::optional_date(&f("end_date"), &s.end_date)?;
    if end_date.is_some_and(|end| end < start_date) {
        return Err(ApiError::invalid(
            f("end_date"),
            "must not be before start_date",
        ));
    }
    Ok((start_date, end_date))
}

/// Quantity and quota limit are never negative.
fn check_counts(s: &pb::Subscription) -> Result<(), ApiError> {
    if s.quantity < 0 {
        return Err(ApiError::invalid(f("quantity"), "must not be negative"));
    }
    if s.quota_limit < 0 {
        return Err(ApiError::invalid(f("quota_limit"), "must not be negative"));
    }
    Ok(())
}

/// The request's `mrr_effective_date`, never before the subscription starts.
fn mrr_effective_date_from_pb(
    mrr_effective_date: &str,
    start_date: NaiveDate,
) -> Result<Option<NaiveDate>, ApiError> {
    let mrr_effective_date = wire::optional_date("mrr_effective_date", mrr_effective_date)?;
    if mrr_effective_date.is_some_and(|d| d < start_date) {
        return Err(ApiError::invalid(
            "mrr_effective_date",
            "an MRR change cannot take effect before the subscription starts",
        ));
    }
    Ok(mrr_effective_date)
}

/// Which day `now` is in the IANA zone `time_zone` (empty: UTC): SPEC §2
/// "`time_zone` decides which day is today".
pub fn caller_today(time_zone: &str, now: DateTime<Utc>) -> Result<NaiveDate, ApiError> {
    let tz = domain::TimeZoneName::parse_or_utc(time_zone)
        .map_err(|e| ApiError::invalid("time_zone", e))?;
    Ok(tz.date_of(now))
}

/// A validated cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub subscription_id: SubscriptionId,
    pub cancel_date: NaiveDate,
    pub reason: String,
}

impl Cancellation {
    /// Without a cancel date, the subscription is cancelled today where the
    /// caller is (`time_zone`, at `now`).
    pub fn from_request(
        req: &pb::CancelSubscriptionRequest,
        now: DateTime<Utc>,
    ) -> Result<Self, ApiError> {
        let today = caller_today(&req.time_zone, now)?;
        Ok(Self {
            subscription_id: SubscriptionId::parse(&req.subscription_id)
                .map_err(|e| ApiError::invalid("subscription_id", e))?,
            cancel_date: wire::optional_date("cancel_date", &req.cancel_date)?.unwrap_or(today),
            reason: wire::text("reason", &req.reason, wire::MAX_NOTE_LEN)?,
        })
    }
}

/// The MRR in force on `date`: the latest amendment effective on or before it.
pub fn mrr_on(amendments: &[(NaiveDate, i64)], date: NaiveDate) -> Option<i64> {
    amendments
        .iter()
        .filter(|(effective, _)| *effective <= date)
        .max_by_key(|(effective, _)| *effective)
        .map(|(_, mrr)| *mrr)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use contracts::pb::common::v1 as common;

    fn request(edit: impl FnOnce(&mut pb::Subscription)) -> pb::UpsertSubscriptionRequest {
        let mut s = pb::Subscription {
            account_id: AccountId::new().to_string(),
            product_id: ProductId::new().to_string(),
            mrr: Some(common::Money {
                currency_code: "BRL".into(),
                amount: "200.00".into(),
            }),
            start_date: "2026-02-10".into(),
            ..Default::default()
        };
        edit(&mut s);
        pb::UpsertSubscriptionRequest {
            subscription: Some(s),
            ..Default::default()
        }
    }

    fn field_of(err: ApiError) -> String {
        err.field()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not a field violation: {err:?}"))
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: Vec<(pb::UpsertSubscriptionRequest, &str)> = vec![
            (
                request(|s| s.mrr.as_mut().unwrap().amount = "-5".into()),
                "subscription.mrr.amount",
            ),
            (
                request(|s| s.mrr.as_mut().unwrap().currency_code = "BRX".into()),
                "subscription.mrr.currency_code",
            ),
            (
                request(|s| s.end_date = "2026-01-01".into()),
                "subscription.end_date",
            ),
            (request(|s| s.start_date.clear()), "subscription.start_date"),
            (
                request(|s| s.account_id = "acme".into()),
                "subscription.account_id",
            ),
            (request(|s| s.quantity = -1), "subscription.quantity"),
        ];
        for (req, field) in cases {
            assert_eq!(
                field_of(SubscriptionInput::from_request(&req, chrono::Utc::now()).unwrap_err()),
                field
            );
        }
        let ok = SubscriptionInput::from_request(&request(|_| {}), chrono::Utc::now()).unwrap();
        assert_eq!((ok.key, ok.quantity), (SubscriptionKey::New, 1));
    }

    #[test]
    fn today_is_the_callers_day_in_their_time_zone() {
        // 02:30 UTC on 1 March is still 28 February in São Paulo (UTC−3).
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-01T02:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(caller_today("", now).unwrap(), d("2026-03-01"));
        assert_eq!(
            caller_today("America/Sao_Paulo", now).unwrap(),
            d("2026-02-28")
        );
        assert_eq!(
            field_of(caller_today("Mars/Olympus", now).unwrap_err()),
            "time_zone"
        );
        let amend = SubscriptionInput::from_request(
            &pb::UpsertSubscriptionRequest {
                time_zone: "America/Sao_Paulo".into(),
                ..request(|_| {})
            },
            now,
        )
        .unwrap();
        assert_eq!(
            (amend.mrr_effective_date, amend.today),
            (None, d("2026-02-28"))
        );
        let cancel = Cancellation::from_request(
            &pb::CancelSubscriptionRequest {
                subscription_id: SubscriptionId::new().to_string(),
                reason: "moved to a competitor".into(),
                time_zone: "America/Sao_Paulo".into(),
                ..Default::default()
            },
            now,
        )
        .unwrap();
        assert_eq!(cancel.cancel_date, d("2026-02-28"));
    }

    #[test]
    fn mrr_follows_the_latest_amendment() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let history = [
            (d("2026-01-01"), 100),
            (d("2026-03-01"), 150),
            (d("2026-02-01"), 120),
        ];
        assert_eq!(mrr_on(&history, d("2025-12-31")), None);
        assert_eq!(mrr_on(&history, d("2026-02-15")), Some(120));
        assert_eq!(mrr_on(&history, d("2026-03-01")), Some(150));
    }
}
