//! Subscription writes as plans: what an upsert and a cancellation write —
//! the row, the MRR amendment, the event, the account to recompute — or why
//! they are refused. Pure: the store loads the account, product, stored
//! subscription and its MRR history, and writes what these return (a won
//! upsell's booking is [`super::upsell::plan_upsell_booking`]).

use chrono::{DateTime, NaiveDate, Utc};
use contracts::ApiError;
use domain::SubscriptionId;
use storage::events::NewEvent;

use super::subscription::{Cancellation, SubscriptionInput, SubscriptionKey, mrr_on};
use crate::entity::{product, subscription};
use crate::error::HealthError;

pub use crate::entity::subscription::SubscriptionStatus;

/// A subscription with its MRR history, oldest amendment first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    pub row: subscription::Model,
    pub amendments: Vec<(NaiveDate, i64)>,
}

impl SubscriptionView {
    /// MRR in force on `date`, or the first amount for a subscription that
    /// has not started yet.
    pub fn mrr_minor(&self, date: NaiveDate) -> i64 {
        mrr_on(&self.amendments, date)
            .or_else(|| self.amendments.first().map(|(_, m)| *m))
            .unwrap_or(0)
    }
}

/// An MRR movement: the MRR in force from `effective`. One per date: a
/// second one of that date corrects the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amendment {
    pub subscription_id: String,
    pub effective: NaiveDate,
    pub mrr_minor: i64,
}

/// The MRR history once `amendment` is written, oldest first.
pub fn amended(history: &[(NaiveDate, i64)], amendment: &Amendment) -> Vec<(NaiveDate, i64)> {
    let mut out: Vec<(NaiveDate, i64)> = history
        .iter()
        .copied()
        .filter(|(date, _)| *date != amendment.effective)
        .collect();
    out.push((amendment.effective, amendment.mrr_minor));
    out.sort_by_key(|(date, _)| *date);
    out
}

/// What an upsert was planned from, loaded in its transaction.
#[derive(Debug, Clone)]
pub struct UpsertLoad {
    pub account_exists: bool,
    pub product: Option<product::Model>,
    /// The subscription the input's key finds.
    pub existing: Option<subscription::Model>,
    /// The existing subscription's MRR history (empty for a new one).
    pub history: Vec<(NaiveDate, i64)>,
}

/// What an upsert writes.
#[derive(Debug, Clone, PartialEq)]
pub enum UpsertPlan {
    /// The stored contract re-sent with the MRR in force: no write, no
    /// event, no recomputation.
    Unchanged(SubscriptionView),
    Write(SubscriptionWrite),
}

/// The row (inserted when `created`, else updated), the MRR movement if the
/// amount in force changes, the event, and the account to recompute.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionWrite {
    /// The row as written, with its history once the amendment is in.
    pub view: SubscriptionView,
    pub created: bool,
    pub amendment: Option<Amendment>,
    pub event: NewEvent,
    pub dirty_account: String,
}

/// Plans an upsert of `input` by `principal`: the account and product must
/// exist, the tier be one of the product's, and a stored subscription stay
/// on its account and currency. The first amount takes effect at the start;
/// a changed amount is an amendment from its effective date (default today).
pub fn plan_upsert(
    input: &SubscriptionInput,
    load: UpsertLoad,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<UpsertPlan, HealthError> {
    check_target(input, load.account_exists, load.product.as_ref())?;
    if let (SubscriptionKey::Id(id), None) = (&input.key, &load.existing) {
        return Err(HealthError::SubscriptionNotFound(id.to_string()));
    }
    let amendment_date = input
        .mrr_effective_date
        .unwrap_or(input.today)
        .max(input.start_date);
    if let Some(current) = &load.existing {
        check_stays(input, current)?;
        if subscription_unchanged(current, input)
            && mrr_on(&load.history, amendment_date) == Some(input.mrr.minor())
        {
            return Ok(UpsertPlan::Unchanged(SubscriptionView {
                row: current.clone(),
                amendments: load.history,
            }));
        }
    }
    let created = load.existing.is_none();
    let row = upserted_row(input, load.existing, principal, now);
    let effective = if created {
        input.start_date
    } else {
        amendment_date
    };
    let amendment =
        (mrr_on(&load.history, effective) != Some(input.mrr.minor())).then(|| Amendment {
            subscription_id: row.id.clone(),
            effective,
            mrr_minor: input.mrr.minor(),
        });
    let amendments = match &amendment {
        Some(a) => amended(&load.history, a),
        None => load.history,
    };
    let event = upserted_event(input, &row, created, principal);
    Ok(UpsertPlan::Write(SubscriptionWrite {
        dirty_account: row.account_id.clone(),
        view: SubscriptionView { row, amendments },
        created,
        amendment,
        event,
    }))
}

/// The account and product named exist, and the tier is the product's.
fn check_target(
    input: &SubscriptionInput,
    account_exists: bool,
    product: Option<&product::Model>,
) -> Result<(), HealthError> {
    if !account_exists {
        return Err(ApiError::invalid(
            "subscription.account_id",
            format!("no account has id {}", input.account_id),
        )
        .into());
    }
    let product = product.ok_or_else(|| {
        ApiError::invalid(
            "subscription.product_id",
            format!("no product has id {}", input.product_id),
        )
    })?;
    if let Some(tier) = &input.tier {
        let tiers: Vec<String> = serde_json::from_str(&product.tiers).unwrap_or_default();
        if !tiers.is_empty() && !tiers.contains(tier) {
            return Err(ApiError::invalid(
                "subscription.tier",
                format!("product {} has tiers {}", product.name, tiers.join(", ")),
            )
            .into());
        }
    }
    Ok(())
}

/// A stored subscription keeps its account and its currency.
fn check_stays(input: &SubscriptionInput, current: &subscription::Model) -> Result<(), ApiError> {
    if current.account_id != input.account_id.to_string() {
        return Err(ApiError::invalid(
            "subscription.account_id",
            "a subscription cannot move to another account",
        ));
    }
    if current.currency != input.mrr.currency().code() {
        return Err(ApiError::invalid(
            "subscription.mrr.currency_code",
            format!("the subscription is billed in {}", current.currency),
        ));
    }
    Ok(())
}

/// The row an upsert writes: the input's contract fields; a stored one keeps
/// its status, cancellation, creation and the references the input leaves out.
fn upserted_row(
    input: &SubscriptionInput,
    existing: Option<subscription::Model>,
    principal: &str,
    now: DateTime<Utc>,
) -> subscription::Model {
    let external_system = input.external.as_ref().map(|e| e.source().to_owned());
    let external_id = input.external.as_ref().map(|e| e.id().to_owned());
    let source_opportunity_id = input.source_opportunity.map(|o| o.to_string());
    let mut row = subscription::Model {
        id: SubscriptionId::new().to_string(),
        account_id: input.account_id.to_string(),
        product_id: input.product_id.to_string(),
        tier: input.tier.clone(),
        currency: input.mrr.currency().code().to_owned(),
        start_date: input.start_date,
        end_date: input.end_date,
        quantity: input.quantity,
        quota_limit: input.quota_limit,
        status: SubscriptionStatus::Active,
        cancel_date: None,
        cancel_reason: None,
        source_opportunity_id,
        external_system,
        external_id,
        created_at: now,
        created_by: principal.to_owned(),
        updated_at: now,
        updated_by: principal.to_owned(),
    };
    if let Some(current) = existing {
        row.id = current.id;
        row.status = current.status;
        row.cancel_date = current.cancel_date;
        row.cancel_reason = current.cancel_reason;
        row.external_system = row.external_system.or(current.external_system);
        row.external_id = row.external_id.or(current.external_id);
        row.source_opportunity_id = row.source_opportunity_id.or(current.source_opportunity_id);
        row.created_at = current.created_at;
        row.created_by = current.created_by;
    }
    row
}

fn upserted_event(
    input: &SubscriptionInput,
    row: &subscription::Model,
    created: bool,
    principal: &str,
) -> NewEvent {
    NewEvent {
        event_type: if created {
            "health.subscription.created"
        } else {
            "health.subscription.updated"
        }
        .into(),
        subject_id: row.id.clone(),
        data: serde_json::json!({
            "subscription_id": row.id,
            "account_id": row.account_id,
            "product_id": row.product_id,
            "tier": row.tier,
            "mrr": input.mrr.to_amount_string(),
            "currency_code": row.currency,
            "start_date": row.start_date.to_string(),
            "source_opportunity_id": row.source_opportunity_id,
            "principal": principal,
        }),
    }
}

/// Whether `input` would leave the stored contract's fields as they are (the
/// MRR is compared separately, against the amount in force).
fn subscription_unchanged(current: &subscription::Model, input: &SubscriptionInput) -> bool {
    let external_same = input.external.as_ref().is_none_or(|ext| {
        current.external_system.as_deref() == Some(ext.source())
            && current.external_id.as_deref() == Some(ext.id())
    });
    let opportunity_same = input
        .source_opportunity
        .is_none_or(|o| current.source_opportunity_id.as_deref() == Some(o.to_string().as_str()));
    external_same
        && opportunity_same
        && current.product_id == input.product_id.to_string()
        && current.tier == input.tier
        && current.start_date == input.start_date
        && current.end_date == input.end_date
        && current.quantity == input.quantity
        && current.quota_limit == input.quota_limit
}

/// What a cancellation writes: the cancelled row, its event, the account
/// to recompute.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelPlan {
    pub row: subscription::Model,
    pub event: NewEvent,
    pub dirty_account: String,
}

/// Plans cancelling `current` (with its MRR `amendments` and the won
/// `upsell_deals` that grew it, whose credits are clawed back too): `None`
/// when it was already cancelled on that date; another date, or one before
/// the start, is refused. The event carries the MRR lost: the amount in
/// force the day before.
pub fn plan_cancellation(
    current: &subscription::Model,
    cancel: &Cancellation,
    amendments: &[(NaiveDate, i64)],
    upsell_deals: &[String],
    principal: &str,
    now: DateTime<Utc>,
) -> Result<Option<CancelPlan>, HealthError> {
    if current.status == SubscriptionStatus::Cancelled {
        if current.cancel_date != Some(cancel.cancel_date) {
            return Err(HealthError::AlreadyCancelled(
                current.id.clone(),
                current
                    .cancel_date
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
            ));
        }
        return Ok(None);
    }
    if cancel.cancel_date < current.start_date {
        return Err(ApiError::invalid(
            "cancel_date",
            format!("the subscription starts on {}", current.start_date),
        )
        .into());
    }
    let mrr_before = cancel
        .cancel_date
        .pred_opt()
        .and_then(|d| mrr_on(amendments, d))
        .unwrap_or(0);
    let currency = domain::Currency::parse(&current.currency)
        .map_err(|e| HealthError::Corrupt(e.to_string()))?;
    let mut row = current.clone();
    row.status = SubscriptionStatus::Cancelled;
    row.cancel_date = Some(cancel.cancel_date);
    row.cancel_reason = Some(cancel.reason.clone());
    row.updated_at = now;
    row.updated_by = principal.to_owned();
    let event = NewEvent {
        event_type: "health.subscription.cancelled".into(),
        subject_id: row.id.clone(),
        data: serde_json::json!({
            "subscription_id": row.id,
            "account_id": row.account_id,
            "product_id": row.product_id,
            "source_opportunity_id": row.source_opportunity_id,
            "upsell_opportunity_ids": upsell_deals,
            "cancel_date": cancel.cancel_date.to_string(),
            "reason": cancel.reason,
            "mrr": domain::Money::from_minor(currency, mrr_before).to_amount_string(),
            "currency_code": row.currency,
            "principal": principal,
        }),
    };
    Ok(Some(CancelPlan {
        dirty_account: row.account_id.clone(),
        row,
        event,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;
    use domain::{AccountId, Currency, Money, ProductId};

    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap()
    }

    fn input(mrr_minor: i64) -> SubscriptionInput {
        SubscriptionInput {
            key: SubscriptionKey::New,
            external: None,
            source_opportunity: None,
            account_id: AccountId::new(),
            product_id: ProductId::new(),
            tier: Some("PRO".into()),
            mrr: Money::from_minor(Currency::USD, mrr_minor),
            start_date: date("2026-01-01"),
            end_date: None,
            quantity: 1,
            quota_limit: 0,
            mrr_effective_date: None,
            today: date("2026-06-15"),
        }
    }

    fn product(input: &SubscriptionInput) -> product::Model {
        product::Model {
            id: input.product_id.to_string(),
            name: "Analytics".into(),
            family: None,
            tiers: r#"["STARTER","PRO"]"#.into(),
            adjacencies: "[]".into(),
            fits_segments: "[]".into(),
            wallet_estimates: "{}".into(),
            margin_percent: None,
            created_at: now(),
            created_by: "t".into(),
            updated_at: now(),
            updated_by: "t".into(),
        }
    }

    fn load(input: &SubscriptionInput, existing: Option<&SubscriptionView>) -> UpsertLoad {
        UpsertLoad {
            account_exists: true,
            product: Some(product(input)),
            existing: existing.map(|v| v.row.clone()),
            history: existing.map(|v| v.amendments.clone()).unwrap_or_default(),
        }
    }

    fn written(plan: UpsertPlan) -> SubscriptionWrite {
        match plan {
            UpsertPlan::Write(write) => write,
            UpsertPlan::Unchanged(_) => panic!("planned no write"),
        }
    }

    fn field_of(err: HealthError) -> String {
        match err {
            HealthError::Invalid(api) => api.field().unwrap_or_default().to_owned(),
            other => panic!("not a field violation: {other:?}"),
        }
    }

    /// A subscription of 200.00 a month since 1 January.
    fn created() -> (SubscriptionInput, SubscriptionWrite) {
        let input = input(20_000);
        let plan = plan_upsert(&input, load(&input, None), "revops", now()).unwrap();
        (input, written(plan))
    }

    #[test]
    fn a_new_subscription_is_active_with_its_first_mrr_from_the_start() {
        let (input, write) = created();
        assert!(write.created);
        assert_eq!(write.view.row.status, SubscriptionStatus::Active);
        assert_eq!(write.view.amendments, [(date("2026-01-01"), 20_000)]);
        assert_eq!(write.dirty_account, input.account_id.to_string());
        assert_eq!(write.event.event_type, "health.subscription.created");
        assert_eq!(write.event.data["mrr"], "200.00");
    }

    #[test]
    fn resending_the_stored_contract_writes_nothing() {
        let (mut again, write) = created();
        again.key = SubscriptionKey::Id(write.view.row.id.parse().unwrap());
        let plan = plan_upsert(&again, load(&again, Some(&write.view)), "revops", now());
        assert_eq!(plan.unwrap(), UpsertPlan::Unchanged(write.view));
    }

    #[test]
    fn a_changed_mrr_is_one_amendment_from_today_and_keeps_the_row() {
        let (first, write) = created();
        let mut raise = input(30_000);
        raise.account_id = first.account_id;
        raise.product_id = first.product_id;
        raise.key = SubscriptionKey::Id(write.view.row.id.parse().unwrap());
        let update =
            written(plan_upsert(&raise, load(&raise, Some(&write.view)), "csm", now()).unwrap());
        assert!(!update.created);
        assert_eq!(update.view.row.id, write.view.row.id);
        assert_eq!(update.view.row.created_by, "revops");
        assert_eq!(
            update.amendment,
            Some(Amendment {
                subscription_id: write.view.row.id.clone(),
                effective: date("2026-06-15"),
                mrr_minor: 30_000,
            })
        );
        assert_eq!(
            update.view.amendments,
            [(date("2026-01-01"), 20_000), (date("2026-06-15"), 30_000)]
        );
        assert_eq!(update.event.event_type, "health.subscription.updated");
    }

    #[test]
    fn an_upsert_is_refused_on_the_field_at_fault() {
        let input = input(100);
        let mut no_account = load(&input, None);
        no_account.account_exists = false;
        let err = plan_upsert(&input, no_account, "t", now()).unwrap_err();
        assert_eq!(field_of(err), "subscription.account_id");
        let mut no_product = load(&input, None);
        no_product.product = None;
        let err = plan_upsert(&input, no_product, "t", now()).unwrap_err();
        assert_eq!(field_of(err), "subscription.product_id");
        let mut gold = input.clone();
        gold.tier = Some("GOLD".into());
        let err = plan_upsert(&gold, load(&gold, None), "t", now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid request: subscription.tier: product Analytics has tiers STARTER, PRO"
        );
        let (_, write) = created();
        let mut other = input.clone();
        other.key = SubscriptionKey::Id(write.view.row.id.parse().unwrap());
        let err = plan_upsert(&other, load(&other, Some(&write.view)), "t", now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid request: subscription.account_id: a subscription cannot move to another account"
        );
        other.key = SubscriptionKey::Id(domain::SubscriptionId::new());
        assert!(matches!(
            plan_upsert(&other, load(&other, None), "t", now()),
            Err(HealthError::SubscriptionNotFound(_))
        ));
    }

    #[test]
    fn an_amendment_of_the_same_date_corrects_it() {
        let history = [(date("2026-01-01"), 100), (date("2026-03-01"), 150)];
        let fix = Amendment {
            subscription_id: "s".into(),
            effective: date("2026-01-01"),
            mrr_minor: 120,
        };
        assert_eq!(
            amended(&history, &fix),
            [(date("2026-01-01"), 120), (date("2026-03-01"), 150)]
        );
    }

    fn cancellation(on: &str) -> Cancellation {
        Cancellation {
            subscription_id: domain::SubscriptionId::new(),
            cancel_date: date(on),
            reason: "moved to a competitor".into(),
        }
    }

    #[test]
    fn a_cancellation_records_the_mrr_lost_and_the_upsells_to_claw_back() {
        let (_, write) = created();
        let mut amendments = write.view.amendments.clone();
        amendments.push((date("2026-05-01"), 25_000));
        let deals = ["o1".to_owned()];
        let plan = plan_cancellation(
            &write.view.row,
            &cancellation("2026-06-30"),
            &amendments,
            &deals,
            "csm",
            now(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(plan.row.status, SubscriptionStatus::Cancelled);
        assert_eq!(plan.row.cancel_date, Some(date("2026-06-30")));
        assert_eq!(plan.event.data["mrr"], "250.00");
        assert_eq!(plan.event.data["upsell_opportunity_ids"][0], "o1");
        assert_eq!(plan.dirty_account, write.view.row.account_id);
    }

    #[test]
    fn cancelling_again_on_the_same_date_is_a_no_op_and_on_another_refused() {
        let (_, write) = created();
        let mut cancelled = write.view.row.clone();
        cancelled.status = SubscriptionStatus::Cancelled;
        cancelled.cancel_date = Some(date("2026-06-30"));
        let same = plan_cancellation(
            &cancelled,
            &cancellation("2026-06-30"),
            &[],
            &[],
            "t",
            now(),
        );
        assert_eq!(same.unwrap(), None);
        let other = plan_cancellation(
            &cancelled,
            &cancellation("2026-07-31"),
            &[],
            &[],
            "t",
            now(),
        );
        assert!(matches!(other, Err(HealthError::AlreadyCancelled(..))));
        let early = plan_cancellation(
            &write.view.row,
            &cancellation("2025-12-31"),
            &[],
            &[],
            "t",
            now(),
        );
        assert_eq!(field_of(early.unwrap_err()), "cancel_date");
    }
}
