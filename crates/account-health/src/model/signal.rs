//! Signals: what a connector tells us about an account, validated.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use contracts::ApiError;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::{AccountId, Decimal, ProductId};

/// Signal values keep at most this many decimal places (stored ×10⁴).
pub const VALUE_SCALE: u32 = 4;
/// Most signals accepted in one `RecordSignals` call or stream message.
pub const MAX_BATCH: usize = 5000;
/// Longest external id / source / detail kept, in bytes.
const MAX_SOURCE_LEN: usize = 128;
const MAX_EXTERNAL_ID_LEN: usize = 255;
const MAX_DETAIL_LEN: usize = 2048;

/// The kinds of signal, as stored (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalKind {
    Usage,
    ActiveUsers,
    Nps,
    Csat,
    SupportTicket,
    Escalation,
    Login,
    ValueMilestone,
    FeatureRequest,
    PremiumWorkaround,
    DataExport,
    UpgradePageVisit,
    WebinarAttended,
    OrgInitiative,
    CsmSentiment,
}

impl SignalKind {
    pub const ALL: [SignalKind; 15] = [
        Self::Usage,
        Self::ActiveUsers,
        Self::Nps,
        Self::Csat,
        Self::SupportTicket,
        Self::Escalation,
        Self::Login,
        Self::ValueMilestone,
        Self::FeatureRequest,
        Self::PremiumWorkaround,
        Self::DataExport,
        Self::UpgradePageVisit,
        Self::WebinarAttended,
        Self::OrgInitiative,
        Self::CsmSentiment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usage => "USAGE",
            Self::ActiveUsers => "ACTIVE_USERS",
            Self::Nps => "NPS",
            Self::Csat => "CSAT",
            Self::SupportTicket => "SUPPORT_TICKET",
            Self::Escalation => "ESCALATION",
            Self::Login => "LOGIN",
            Self::ValueMilestone => "VALUE_MILESTONE",
            Self::FeatureRequest => "FEATURE_REQUEST",
            Self::PremiumWorkaround => "PREMIUM_WORKAROUND",
            Self::DataExport => "DATA_EXPORT",
            Self::UpgradePageVisit => "UPGRADE_PAGE_VISIT",
            Self::WebinarAttended => "WEBINAR_ATTENDED",
            Self::OrgInitiative => "ORG_INITIATIVE",
            Self::CsmSentiment => "CSM_SENTIMENT",
        }
    }

    /// Parses a wire enum value; UNSPECIFIED is `None`.
    pub fn from_pb(field: &str, value: i32) -> Result<Option<Self>, ApiError> {
        let kind: pb::SignalKind = wire::known_enum(field, value)?;
        Ok(match kind {
            pb::SignalKind::Unspecified => None,
            pb::SignalKind::Usage => Some(Self::Usage),
            pb::SignalKind::ActiveUsers => Some(Self::ActiveUsers),
            pb::SignalKind::Nps => Some(Self::Nps),
            pb::SignalKind::Csat => Some(Self::Csat),
            pb::SignalKind::SupportTicket => Some(Self::SupportTicket),
            pb::SignalKind::Escalation => Some(Self::Escalation),
            pb::SignalKind::Login => Some(Self::Login),
            pb::SignalKind::ValueMilestone => Some(Self::ValueMilestone),
            pb::SignalKind::FeatureRequest => Some(Self::FeatureRequest),
            pb::SignalKind::PremiumWorkaround => Some(Self::PremiumWorkaround),
            pb::SignalKind::DataExport => Some(Self::DataExport),
            pb::SignalKind::UpgradePageVisit => Some(Self::UpgradePageVisit),
            pb::SignalKind::WebinarAttended => Some(Self::WebinarAttended),
            pb::SignalKind::OrgInitiative => Some(Self::OrgInitiative),
            pb::SignalKind::CsmSentiment => Some(Self::CsmSentiment),
        })
    }

    pub fn to_pb(self) -> pb::SignalKind {
        pb::SignalKind::from_str_name(&format!("SIGNAL_KIND_{}", self.as_str()))
            .unwrap_or(pb::SignalKind::Unspecified)
    }

    /// The range a value of this kind must fall in, if the kind has one.
    fn value_range(self) -> Option<(Decimal, Decimal)> {
        match self {
            Self::Nps => Some((Decimal::ZERO, Decimal::TEN)),
            Self::Csat | Self::CsmSentiment => Some((Decimal::ONE, Decimal::from(5))),
            _ => None,
        }
    }

    /// Kinds measured against a limit (quota, seats).
    fn needs_limit(self) -> bool {
        matches!(self, Self::Usage | Self::ActiveUsers)
    }
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignalKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown signal kind {s:?}"))
    }
}

/// A validated signal, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSignal {
    pub account_id: AccountId,
    pub product_id: Option<ProductId>,
    pub kind: SignalKind,
    /// Value ×10⁴.
    pub value_e4: i64,
    /// Limit ×10⁴, for USAGE and ACTIVE_USERS.
    pub limit_e4: Option<i64>,
    pub occurred_at: DateTime<Utc>,
    pub source: String,
    pub external_id: Option<String>,
    pub detail: Option<String>,
}

/// Parses a non-negative decimal signal value into ×10⁴ units.
fn scaled(field: &str, text: &str) -> Result<(Decimal, i64), ApiError> {
    // The one decimal grammar of the API: no "+5", ".5", "5." or "1_000".
    let value = domain::parse_decimal(text)
        .ok_or_else(|| ApiError::invalid(field, format!("{text:?} is not a decimal number")))?;
    let value = value.normalize();
    if value.scale() > VALUE_SCALE {
        return Err(ApiError::invalid(
            field,
            format!("at most {VALUE_SCALE} decimal places"),
        ));
    }
    if value.is_sign_negative() && !value.is_zero() {
        return Err(ApiError::invalid(field, "must not be negative"));
    }
    // Checked: a value near Decimal's 28-digit limit must not overflow (and panic) here.
    let e4 = value
        .checked_mul(Decimal::from(10_000))
        .and_then(|v| i64::try_from(v.trunc()).ok())
        .ok_or_else(|| ApiError::invalid(field, "is too large"))?;
    Ok((value, e4))
}

/// Converts ×10⁴ units back to a decimal.
pub fn unscale(e4: i64) -> Decimal {
    Decimal::new(e4, VALUE_SCALE).normalize()
}

impl NewSignal {
    /// Validates one signal; `field` is its path, e.g. `signals[3]`.
    /// `now` bounds `occur_time` (a signal from the future is refused).
    pub fn from_pb(field: &str, s: &pb::Signal, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let f = |name: &str| format!("{field}.{name}");
        let account_id =
            AccountId::parse(&s.account_id).map_err(|e| ApiError::invalid(f("account_id"), e))?;
        let product_id = if s.product_id.is_empty() {
            None
        } else {
            Some(
                ProductId::parse(&s.product_id)
                    .map_err(|e| ApiError::invalid(f("product_id"), e))?,
            )
        };
        let kind = SignalKind::from_pb(&f("kind"), s.kind)?
            .ok_or_else(|| ApiError::invalid(f("kind"), "is required"))?;
        let value_text = if s.value.is_empty() {
            "1"
        } else {
            s.value.as_str()
        };
        let (value, value_e4) = scaled(&f("value"), value_text)?;
        if let Some((lo, hi)) = kind.value_range()
            && (value < lo || value > hi)
        {
            return Err(ApiError::invalid(
                f("value"),
                format!("{kind} must be between {lo} and {hi}"),
            ));
        }
        let limit_e4 = if s.limit.is_empty() {
            if kind.needs_limit() {
                return Err(ApiError::invalid(
                    f("limit"),
                    format!("{kind} needs the limit it is measured against"),
                ));
            }
            None
        } else {
            let (limit, e4) = scaled(&f("limit"), &s.limit)?;
            if limit.is_zero() {
                return Err(ApiError::invalid(f("limit"), "must be greater than zero"));
            }
            Some(e4)
        };
        let occurred_at = match &s.occur_time {
            None => now,
            Some(ts) => {
                let nanos = u32::try_from(ts.nanos)
                    .ok()
                    .filter(|n| *n < 1_000_000_000)
                    .ok_or_else(|| ApiError::invalid(f("occur_time"), "nanos out of range"))?;
                DateTime::from_timestamp(ts.seconds, nanos)
                    .filter(|t| t.timestamp() >= 0)
                    .ok_or_else(|| ApiError::invalid(f("occur_time"), "is out of range"))?
            }
        };
        if occurred_at > now + chrono::Duration::minutes(5) {
            return Err(ApiError::invalid(f("occur_time"), "is in the future"));
        }
        let source = wire::optional_text(&f("source"), &s.source, MAX_SOURCE_LEN)?
            .unwrap_or_else(|| "api".to_owned());
        let external_id =
            wire::optional_text(&f("external_id"), &s.external_id, MAX_EXTERNAL_ID_LEN)?;
        let detail = wire::optional_text(&f("detail"), &s.detail, MAX_DETAIL_LEN)?;
        Ok(Self {
            account_id,
            product_id,
            kind,
            value_e4,
            limit_e4,
            occurred_at: storage_precision(occurred_at),
            source,
            external_id,
            detail,
        })
    }
}

/// Microsecond precision, as both databases keep it.
fn storage_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// Validates a batch: size, then every signal (the first bad one is named).
pub fn batch_from_pb(
    field: &str,
    signals: &[pb::Signal],
    now: DateTime<Utc>,
) -> Result<Vec<NewSignal>, ApiError> {
    if signals.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            field,
            format!(
                "{} signals in one batch; at most {MAX_BATCH}",
                signals.len()
            ),
        ));
    }
    signals
        .iter()
        .enumerate()
        .map(|(i, s)| NewSignal::from_pb(&format!("{field}[{i}]"), s, now))
        .collect()
}

/// Refuses a batch naming an account or a product that does not exist:
/// the first signal that does, by its path under `field` (e.g.
/// `signals[3].account_id`). `known_*` are the ids the store found.
pub fn check_references(
    field: &str,
    batch: &[NewSignal],
    known_accounts: &std::collections::BTreeSet<String>,
    known_products: &std::collections::BTreeSet<String>,
) -> Result<(), ApiError> {
    for (i, s) in batch.iter().enumerate() {
        let account = s.account_id.to_string();
        if !known_accounts.contains(&account) {
            return Err(ApiError::invalid(
                format!("{field}[{i}].account_id"),
                format!("no account has id {account}"),
            ));
        }
        if let Some(p) = s.product_id.map(|p| p.to_string())
            && !known_products.contains(&p)
        {
            return Err(ApiError::invalid(
                format!("{field}[{i}].product_id"),
                format!("no product has id {p}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_naming_an_unknown_account_or_product_names_the_first_such_signal() {
        let now = Utc::now();
        let known = signal(pb::SignalKind::Login, "1", "");
        let account = known.account_id.clone();
        let product = ProductId::new();
        let with_product = pb::Signal {
            product_id: product.to_string(),
            ..known.clone()
        };
        let batch = batch_from_pb("signals", &[known, with_product], now).unwrap();
        let accounts = [account].into_iter().collect();
        let products = [product.to_string()].into_iter().collect();
        assert!(check_references("signals", &batch, &accounts, &products).is_ok());
        let err = check_references("signals", &batch, &accounts, &Default::default());
        assert_eq!(field_of(err.unwrap_err()), "signals[1].product_id");
        let err = check_references("batches[2].signals", &batch, &Default::default(), &products);
        assert_eq!(
            field_of(err.unwrap_err()),
            "batches[2].signals[0].account_id"
        );
    }

    fn signal(kind: pb::SignalKind, value: &str, limit: &str) -> pb::Signal {
        pb::Signal {
            account_id: AccountId::new().to_string(),
            kind: kind as i32,
            value: value.into(),
            limit: limit.into(),
            ..Default::default()
        }
    }

    fn field_of(err: ApiError) -> String {
        err.field()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not a field violation: {err:?}"))
    }

    #[test]
    fn values_are_checked_by_kind() {
        let now = Utc::now();
        let ok =
            NewSignal::from_pb("s", &signal(pb::SignalKind::Usage, "85.5", "100"), now).unwrap();
        assert_eq!((ok.value_e4, ok.limit_e4), (855_000, Some(1_000_000)));
        for (kind, value, limit, field) in [
            (pb::SignalKind::Nps, "11", "", "s.value"),
            (pb::SignalKind::Csat, "0", "", "s.value"),
            (pb::SignalKind::Usage, "10", "", "s.limit"),
            (pb::SignalKind::Usage, "10", "0", "s.limit"),
            (pb::SignalKind::Login, "-1", "", "s.value"),
            (pb::SignalKind::Login, "1e3", "", "s.value"),
            (pb::SignalKind::Login, "1.00001", "", "s.value"),
            (
                pb::SignalKind::Login,
                "79228162514264337593543950335",
                "",
                "s.value",
            ),
            (pb::SignalKind::Login, "922337203685478", "", "s.value"),
            (pb::SignalKind::Login, "1_000", "", "s.value"),
            (pb::SignalKind::Login, ".5", "", "s.value"),
            (pb::SignalKind::Login, "+5", "", "s.value"),
            (pb::SignalKind::Usage, "5", "5.", "s.limit"),
            (pb::SignalKind::Unspecified, "1", "", "s.kind"),
        ] {
            let err = NewSignal::from_pb("s", &signal(kind, value, limit), now).unwrap_err();
            assert_eq!(field_of(err), field, "{kind:?} {value} {limit}");
        }
        let mut future = signal(pb::SignalKind::Login, "1", "");
        future.occur_time = Some(prost_types::Timestamp {
            seconds: now.timestamp() + 3600,
            nanos: 0,
        });
        assert_eq!(
            field_of(NewSignal::from_pb("s", &future, now).unwrap_err()),
            "s.occur_time"
        );
        assert_eq!(unscale(855_000).to_string(), "85.5");
    }

    #[test]
    fn batches_name_the_bad_signal() {
        let now = Utc::now();
        let mut batch = vec![signal(pb::SignalKind::Login, "1", ""); 3];
        batch[2].account_id = "x".into();
        let err = batch_from_pb("signals", &batch, now).unwrap_err();
        assert_eq!(field_of(err), "signals[2].account_id");
    }
}
