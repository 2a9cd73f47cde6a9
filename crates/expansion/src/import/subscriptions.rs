//! Subscriptions → `UpsertSubscription`, keyed by the CRM id of the
//! contract (the subscription's external reference); a `cancel_date`
//! cancels an active subscription with `CancelSubscription`.

use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::Money;

use super::client::refusal;
use super::mapping::Kind;
use super::report::{Halt, Landed, Report, Row, RowError};
use super::{Cells, Ctx, Importer, values};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRow {
    pub external_id: String,
    pub account: String,
    pub product: String,
    pub mrr: Money,
    pub start_date: String,
    pub end_date: Option<String>,
    pub tier: Option<String>,
    pub quantity: Option<i64>,
    pub quota_limit: Option<i64>,
    pub mrr_effective_date: Option<String>,
    pub cancel_date: Option<String>,
    pub cancel_reason: Option<String>,
}

fn optional_date(
    cells: &Cells<'_>,
    field: &'static str,
    format: &str,
) -> Result<Option<String>, RowError> {
    match cells.get(field) {
        None => Ok(None),
        Some("") => Ok(Some(String::new())),
        Some(text) => values::date(text, format)
            .map(|d| Some(d.to_string()))
            .map_err(|m| RowError::field(field, m)),
    }
}

fn optional_count(cells: &Cells<'_>, field: &'static str) -> Result<Option<i64>, RowError> {
    match cells.get(field) {
        None => Ok(None),
        Some("") => Ok(Some(0)),
        Some(text) => values::integer(text, 0, i64::MAX)
            .map(Some)
            .map_err(|m| RowError::field(field, m)),
    }
}

pub fn parse(
    cells: &Cells<'_>,
    currency: Option<&str>,
    date_format: &str,
) -> Result<SubscriptionRow, RowError> {
    let currency = cells.optional("currency").or(currency).ok_or_else(|| {
        RowError::field(
            "currency",
            "no currency: add a currency column or pass --currency",
        )
    })?;
    domain::Currency::parse(&currency.to_ascii_uppercase())
        .map_err(|e| RowError::field("currency", format!("{currency:?}: {e}")))?;
    let mrr =
        values::money(currency, cells.required("mrr")?).map_err(|m| RowError::field("mrr", m))?;
    let start_date = values::date(cells.required("start_date")?, date_format)
        .map_err(|m| RowError::field("start_date", m))?
        .to_string();
    Ok(SubscriptionRow {
        external_id: cells.required("external_id")?.to_owned(),
        account: cells.required("account_external_id")?.to_owned(),
        product: cells.required("product")?.to_owned(),
        mrr,
        start_date,
        end_date: optional_date(cells, "end_date", date_format)?,
        tier: cells.get("tier").map(str::to_owned),
        quantity: optional_count(cells, "quantity")?,
        quota_limit: optional_count(cells, "quota_limit")?,
        mrr_effective_date: optional_date(cells, "mrr_effective_date", date_format)?,
        cancel_date: optional_date(cells, "cancel_date", date_format)?.filter(|d| !d.is_empty()),
        cancel_reason: cells.optional("cancel_reason").map(str::to_owned),
    })
}

fn wanted(
    row: &SubscriptionRow,
    existing: Option<&pb::Subscription>,
    account_id: String,
    product_id: String,
    external_ref: pb::ExternalRef,
) -> pb::Subscription {
    let base = existing.cloned().unwrap_or_default();
    pb::Subscription {
        account_id,
        product_id,
        tier: row.tier.clone().unwrap_or(base.tier),
        mrr: Some(wire::money_to_pb(&row.mrr)),
        start_date: row.start_date.clone(),
        end_date: row.end_date.clone().unwrap_or(base.end_date),
        quantity: row.quantity.unwrap_or(base.quantity),
        quota_limit: row.quota_limit.unwrap_or(base.quota_limit),
        external_ref: Some(external_ref),
        ..Default::default()
    }
}

fn money_of(value: Option<&contracts::pb::common::v1::Money>) -> Option<Money> {
    value.and_then(|m| Money::parse(&m.currency_code, &m.amount).ok())
}

fn unchanged(stored: &pb::Subscription, wanted: &pb::Subscription) -> bool {
    stored.product_id == wanted.product_id
        && stored.tier == wanted.tier
        && money_of(stored.mrr.as_ref()) == money_of(wanted.mrr.as_ref())
        && stored.start_date == wanted.start_date
        && stored.end_date == wanted.end_date
        && stored.quantity == wanted.quantity.max(1)
        && stored.quota_limit == wanted.quota_limit
}

#[derive(Default)]
pub struct Subscriptions;

/// Puts the stored subscription in the cache of its account.
async fn remember(ctx: &mut Ctx, stored: pb::Subscription) -> anyhow::Result<()> {
    let cached = ctx.lookup.subscriptions(&stored.account_id).await?;
    cached.retain(|s| s.subscription_id != stored.subscription_id);
    cached.push(stored);
    Ok(())
}

impl Importer for Subscriptions {
    async fn row(&mut self, ctx: &mut Ctx, row: Row, out: &mut Report) -> anyhow::Result<()> {
        let parsed = parse(
            &Cells::new(out.columns(), &row.record),
            ctx.currency.as_deref(),
            &ctx.date_format,
        );
        let landed = match parsed {
            Ok(sub) => import(ctx, &sub).await,
            Err(error) => Err(error.into()),
        };
        out.settle(&row, landed)
    }

    async fn finish(&mut self, _ctx: &mut Ctx, _out: &mut Report) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Writes the row's subscription unless it is stored as the row has it, then cancels
/// it when the row has a cancel date and it is active.
async fn import(ctx: &mut Ctx, sub: &SubscriptionRow) -> Result<Landed, Halt> {
    let account = ctx.lookup.known_account(&sub.account).await?;
    let product_id = ctx.lookup.known_product(&sub.product).await?;
    let external_ref = ctx.lookup.external_ref(&sub.external_id);
    let existing = ctx
        .lookup
        .subscriptions(&account.account_id)
        .await?
        .iter()
        .find(|s| s.external_ref.as_ref() == Some(&external_ref))
        .cloned();
    let wanted = wanted(
        sub,
        existing.as_ref(),
        account.account_id,
        product_id,
        external_ref,
    );
    if ctx.dry_run {
        return Ok(dry_run_landing(sub, existing.as_ref(), &wanted));
    }
    let mut current = existing.clone();
    let mut created = false;
    let mut changed = false;
    if !existing.as_ref().is_some_and(|s| unchanged(s, &wanted)) {
        let reply = upsert(ctx, sub, wanted).await?;
        created = reply.created;
        changed = true;
        current = reply.subscription;
    }
    if let (Some(cancel_date), Some(stored)) = (&sub.cancel_date, &current)
        && stored.status == pb::SubscriptionStatus::Active as i32
    {
        match cancel(ctx, sub, stored, cancel_date).await {
            Ok(cancelled) => {
                changed = true;
                current = cancelled;
            }
            Err(halt) => {
                if let Some(stored) = current {
                    remember(ctx, stored).await?;
                }
                return Err(halt);
            }
        }
    }
    if changed && let Some(stored) = current {
        remember(ctx, stored).await?;
    }
    Ok(Landed::of(created, changed))
}

/// How a dry run counts the row: created when no subscription has its id, updated when
/// it would be written or cancelled.
fn dry_run_landing(
    sub: &SubscriptionRow,
    existing: Option<&pb::Subscription>,
    wanted: &pb::Subscription,
) -> Landed {
    let upsert = !existing.is_some_and(|s| unchanged(s, wanted));
    let cancel = sub.cancel_date.is_some()
        && existing.is_none_or(|s| s.status == pb::SubscriptionStatus::Active as i32);
    Landed::of(existing.is_none(), upsert || cancel)
}

/// Writes the subscription as `wanted`, its MRR change effective from the row's date.
async fn upsert(
    ctx: &mut Ctx,
    sub: &SubscriptionRow,
    wanted: pb::Subscription,
) -> Result<pb::UpsertSubscriptionResponse, Halt> {
    let reply = ctx
        .lookup
        .health
        .upsert_subscription(pb::UpsertSubscriptionRequest {
            request_id: String::new(),
            subscription: Some(wanted),
            mrr_effective_date: sub.mrr_effective_date.clone().unwrap_or_default(),
            time_zone: String::new(),
        })
        .await;
    match reply {
        Ok(reply) => Ok(reply.into_inner()),
        Err(status) => Err(refusal(Kind::Subscriptions, status).into()),
    }
}

/// Cancels the stored subscription on `cancel_date`, for the row's reason (else the
/// CRM's cancellation); the subscription as cancelled.
async fn cancel(
    ctx: &mut Ctx,
    sub: &SubscriptionRow,
    stored: &pb::Subscription,
    cancel_date: &str,
) -> Result<Option<pb::Subscription>, Halt> {
    let reply = ctx
        .lookup
        .health
        .cancel_subscription(pb::CancelSubscriptionRequest {
            request_id: String::new(),
            subscription_id: stored.subscription_id.clone(),
            cancel_date: cancel_date.to_owned(),
            reason: sub
                .cancel_reason
                .clone()
                .unwrap_or_else(|| format!("cancelled in {}", ctx.lookup.system)),
            time_zone: String::new(),
        })
        .await;
    match reply {
        Ok(reply) => Ok(reply.into_inner().subscription),
        Err(status) => Err(refusal(Kind::Subscriptions, status).into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::mapping::Columns;
    use super::*;

    const HEADERS: [&str; 7] = [
        "external_id",
        "account_external_id",
        "product",
        "mrr",
        "currency",
        "start_date",
        "end_date",
    ];

    fn parse_row(cells: &[&str], currency: Option<&str>) -> Result<SubscriptionRow, RowError> {
        let headers: Vec<String> = HEADERS.iter().map(|s| (*s).to_owned()).collect();
        let columns = Columns::resolve(Kind::Subscriptions, &headers, &[]).unwrap();
        let record = csv::StringRecord::from(cells.to_vec());
        parse(&Cells::new(&columns, &record), currency, "%Y-%m-%d")
    }

    #[test]
    fn a_row_becomes_a_subscription() {
        let row = parse_row(
            &["S1", "001A", "Analytics", "1234.5", "", "2026-01-01", ""],
            Some("EUR"),
        )
        .unwrap();
        assert_eq!(row.mrr, Money::parse("EUR", "1234.50").unwrap());
        assert_eq!(row.end_date.as_deref(), Some(""));
        assert_eq!(row.tier, None);
    }

    #[test]
    fn bad_cells_name_their_field() {
        let field = |cells: &[&str], currency| parse_row(cells, currency).unwrap_err().field;
        let ok = ["S1", "001A", "Analytics", "100", "USD", "2026-01-01", ""];
        let with = |i: usize, v: &'static str| {
            let mut cells = ok;
            cells[i] = v;
            cells
        };
        assert_eq!(field(&with(3, "1,200.00"), None), Some("mrr"));
        assert_eq!(field(&with(3, "100.001"), None), Some("mrr"));
        assert_eq!(field(&with(4, ""), None), Some("currency"));
        assert_eq!(field(&with(4, "DOLLARS"), None), Some("currency"));
        assert_eq!(field(&with(5, "2026-13-01"), None), Some("start_date"));
        assert_eq!(field(&with(6, "soon"), None), Some("end_date"));
        assert_eq!(field(&with(0, ""), None), Some("external_id"));
    }

    #[test]
    fn a_stored_subscription_equal_to_the_row_is_unchanged() {
        let row = parse_row(
            &["S1", "001A", "Analytics", "100", "USD", "2026-01-01", ""],
            None,
        )
        .unwrap();
        let external_ref = pb::ExternalRef {
            system: "salesforce".into(),
            id: "S1".into(),
        };
        let first = wanted(&row, None, "a".into(), "p".into(), external_ref.clone());
        // What the server keeps: quantity 1 when none is given, MRR as stored.
        let mut stored = first.clone();
        stored.quantity = 1;
        stored.mrr = Some(contracts::pb::common::v1::Money {
            currency_code: "USD".into(),
            amount: "100.00".into(),
        });
        let again = wanted(
            &row,
            Some(&stored),
            "a".into(),
            "p".into(),
            external_ref.clone(),
        );
        assert!(unchanged(&stored, &again));
        let raised = parse_row(
            &["S1", "001A", "Analytics", "120", "USD", "2026-01-01", ""],
            None,
        )
        .unwrap();
        let changed = wanted(&raised, Some(&stored), "a".into(), "p".into(), external_ref);
        assert!(!unchanged(&stored, &changed));
    }

    /// Subscription S1's cells, at an MRR of 100 USD.
    const S1: [&str; 7] = ["S1", "001A", "Analytics", "100", "USD", "2026-01-01", ""];

    fn s1_ref() -> pb::ExternalRef {
        pb::ExternalRef {
            system: "salesforce".into(),
            id: "S1".into(),
        }
    }

    #[test]
    fn a_dry_run_counts_what_would_be_written_or_cancelled() {
        let mut row = parse_row(&S1, None).unwrap();
        let first = wanted(&row, None, "a".into(), "p".into(), s1_ref());
        assert_eq!(dry_run_landing(&row, None, &first), Landed::Created);
        let mut stored = pb::Subscription {
            quantity: 1,
            status: pb::SubscriptionStatus::Active as i32,
            ..first
        };
        let again = wanted(&row, Some(&stored), "a".into(), "p".into(), s1_ref());
        assert_eq!(
            dry_run_landing(&row, Some(&stored), &again),
            Landed::Unchanged
        );
        row.cancel_date = Some("2026-06-30".into());
        assert_eq!(
            dry_run_landing(&row, Some(&stored), &again),
            Landed::Updated
        );
        stored.status = pb::SubscriptionStatus::Cancelled as i32;
        assert_eq!(
            dry_run_landing(&row, Some(&stored), &again),
            Landed::Unchanged
        );
    }
}
