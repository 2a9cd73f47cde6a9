//! Expansion triggers (the seeds' trigger-based approach): which moments of
//! need an account's signals and contracts show, the motion each suggests,
//! and whether the account is healthy enough to act on it.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use contracts::pb::health::v1 as pb;
use domain::{Decimal, HealthBand, Motion};
use sea_orm::sea_query::StringLen;
use sea_orm::{DeriveActiveEnum, EnumIter};

use super::signal::SignalKind;

/// Tunables of the trigger rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerConfig {
    /// USAGE at or above this percent of its limit fires a capacity upsell…
    pub usage_percent: Decimal,
    /// …with high priority at or above this one.
    pub usage_high_percent: Decimal,
    /// How far back signal-driven rules look.
    pub lookback_days: i64,
    pub renewal_window_days: i64,
    pub fiscal_year_window_days: i64,
    /// LOGIN values summing to this within the lookback mark power users.
    pub power_user_logins: Decimal,
    /// After a trigger closes, the same (account, product, kind) stays quiet this long.
    pub cooldown_days: i64,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self {
            usage_percent: Decimal::from(80),
            usage_high_percent: Decimal::from(90),
            lookback_days: 30,
            renewal_window_days: 90,
            fiscal_year_window_days: 60,
            power_user_logins: Decimal::from(100),
            cooldown_days: 14,
        }
    }
}

/// The moment of need a trigger names; stored as its name in `triggers.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum TriggerKind {
    #[sea_orm(string_value = "USAGE_CAPACITY")]
    UsageCapacity,
    #[sea_orm(string_value = "PREMIUM_WORKAROUND")]
    PremiumWorkaround,
    #[sea_orm(string_value = "DATA_EXPORT")]
    DataExport,
    #[sea_orm(string_value = "VALUE_MILESTONE")]
    ValueMilestone,
    #[sea_orm(string_value = "RENEWAL_WINDOW")]
    RenewalWindow,
    #[sea_orm(string_value = "FISCAL_YEAR_WINDOW")]
    FiscalYearWindow,
    #[sea_orm(string_value = "FEATURE_REQUEST")]
    FeatureRequest,
    #[sea_orm(string_value = "UPGRADE_INTEREST")]
    UpgradeInterest,
    #[sea_orm(string_value = "POWER_USERS")]
    PowerUsers,
    #[sea_orm(string_value = "ORG_INITIATIVE")]
    OrgInitiative,
}

impl TriggerKind {
    pub const ALL: [TriggerKind; 10] = [
        Self::UsageCapacity,
        Self::PremiumWorkaround,
        Self::DataExport,
        Self::ValueMilestone,
        Self::RenewalWindow,
        Self::FiscalYearWindow,
        Self::FeatureRequest,
        Self::UpgradeInterest,
        Self::PowerUsers,
        Self::OrgInitiative,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsageCapacity => "USAGE_CAPACITY",
            Self::PremiumWorkaround => "PREMIUM_WORKAROUND",
            Self::DataExport => "DATA_EXPORT",
            Self::ValueMilestone => "VALUE_MILESTONE",
            Self::RenewalWindow => "RENEWAL_WINDOW",
            Self::FiscalYearWindow => "FISCAL_YEAR_WINDOW",
            Self::FeatureRequest => "FEATURE_REQUEST",
            Self::UpgradeInterest => "UPGRADE_INTEREST",
            Self::PowerUsers => "POWER_USERS",
            Self::OrgInitiative => "ORG_INITIATIVE",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn to_pb(self) -> pb::TriggerKind {
        pb::TriggerKind::from_str_name(&format!("TRIGGER_KIND_{}", self.as_str()))
            .unwrap_or(pb::TriggerKind::Unspecified)
    }

    pub fn from_pb(kind: pb::TriggerKind) -> Option<Self> {
        kind.as_str_name()
            .strip_prefix("TRIGGER_KIND_")
            .and_then(Self::parse)
    }

    /// The motion each trigger suggests (seed 002: the trigger decides the motion).
    pub fn motion(self) -> Motion {
        match self {
            Self::UsageCapacity => Motion::UpsellCapacity,
            Self::PremiumWorkaround
            | Self::ValueMilestone
            | Self::RenewalWindow
            | Self::UpgradeInterest => Motion::UpsellTier,
            Self::FeatureRequest => Motion::UpsellFeature,
            Self::DataExport | Self::FiscalYearWindow => Motion::CrossSellAdjacent,
            Self::PowerUsers => Motion::CrossSellComplementary,
            Self::OrgInitiative => Motion::CrossSellPlatform,
        }
    }
}

/// A signal as the trigger rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerSignal {
    pub kind: SignalKind,
    pub product_id: Option<String>,
    pub value: Decimal,
    pub limit: Option<Decimal>,
    pub occurred_at: DateTime<Utc>,
    pub detail: Option<String>,
}

/// An active subscription as the trigger rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerSubscription {
    pub product_id: String,
    pub end_date: Option<NaiveDate>,
}

/// What the rules say should be open right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub kind: TriggerKind,
    /// `None` for account-wide triggers.
    pub product_id: Option<String>,
    pub high_priority: bool,
    pub reason: String,
}

/// Every trigger the account's recent signals and contracts call for.
pub fn candidates(
    config: &TriggerConfig,
    signals: &[TriggerSignal],
    subscriptions: &[TriggerSubscription],
    fiscal_year_start_month: u32,
    now: DateTime<Utc>,
) -> Vec<Candidate> {
    let since = now - Duration::days(config.lookback_days);
    let recent: Vec<&TriggerSignal> = signals
        .iter()
        .filter(|s| s.occurred_at > since && s.occurred_at <= now)
        .collect();
    let today = now.date_naive();
    let mut out = usage_capacity(config, &recent);
    out.extend(presence(config, &recent));
    out.extend(power_users(config, &recent));
    out.extend(renewal_windows(config, subscriptions, today));
    out.extend(fiscal_year_window(
        config,
        subscriptions,
        fiscal_year_start_month,
        today,
    ));
    one_per_target(out)
}

/// The latest USAGE per product against its limit.
fn usage_capacity(config: &TriggerConfig, recent: &[&TriggerSignal]) -> Vec<Candidate> {
    let mut latest_usage: BTreeMap<Option<String>, &TriggerSignal> = BTreeMap::new();
    for s in recent.iter().filter(|s| s.kind == SignalKind::Usage) {
        let slot = latest_usage.entry(s.product_id.clone()).or_insert(s);
        if s.occurred_at > slot.occurred_at {
            *slot = s;
        }
    }
    let mut out = Vec::new();
    for (product, s) in latest_usage {
        let Some(limit) = s.limit.filter(|l| !l.is_zero()) else {
            continue;
        };
        let percent = s.value * Decimal::ONE_HUNDRED / limit;
        if percent >= config.usage_percent {
            out.push(Candidate {
                kind: TriggerKind::UsageCapacity,
                product_id: product,
                high_priority: percent >= config.usage_high_percent,
                reason: format!("usage at {}% of the limit", percent.round_dp(1).normalize()),
            });
        }
    }
    out
}

/// Signals whose mere presence in the lookback is the moment of need, with
/// what they say.
const PRESENCE: [(SignalKind, TriggerKind, &str); 7] = [
    (
        SignalKind::PremiumWorkaround,
        TriggerKind::PremiumWorkaround,
        "premium workaround",
    ),
    (
        SignalKind::DataExport,
        TriggerKind::DataExport,
        "data exported to another tool",
    ),
    (
        SignalKind::ValueMilestone,
        TriggerKind::ValueMilestone,
        "value milestone reached",
    ),
    (
        SignalKind::FeatureRequest,
        TriggerKind::FeatureRequest,
        "premium feature requested",
    ),
    (
        SignalKind::UpgradePageVisit,
        TriggerKind::UpgradeInterest,
        "upgrade page visited",
    ),
    (
        SignalKind::WebinarAttended,
        TriggerKind::UpgradeInterest,
        "advanced-use webinar attended",
    ),
    (
        SignalKind::OrgInitiative,
        TriggerKind::OrgInitiative,
        "organisational initiative",
    ),
];

/// One candidate per (kind, product) that a [`PRESENCE`] signal fired,
/// counting them and quoting up to three distinct notes.
fn presence(config: &TriggerConfig, recent: &[&TriggerSignal]) -> Vec<Candidate> {
    let mut seen: BTreeMap<(TriggerKind, Option<String>), (usize, Vec<String>)> = BTreeMap::new();
    for s in recent {
        for (signal_kind, trigger_kind, what) in PRESENCE {
            if s.kind == signal_kind {
                let entry = seen
                    .entry((trigger_kind, s.product_id.clone()))
                    .or_insert((0, Vec::new()));
                entry.0 += 1;
                let note = match &s.detail {
                    Some(detail) => format!("{what}: {detail}"),
                    None => what.to_owned(),
                };
                if !entry.1.contains(&note) && entry.1.len() < 3 {
                    entry.1.push(note);
                }
            }
        }
    }
    seen.into_iter()
        .map(|((kind, product), (count, notes))| Candidate {
            kind,
            product_id: product,
            high_priority: false,
            reason: format!(
                "{} ({count} in the last {} days)",
                notes.join("; "),
                config.lookback_days
            ),
        })
        .collect()
}

/// Power users: heavy login activity on a product.
fn power_users(config: &TriggerConfig, recent: &[&TriggerSignal]) -> Vec<Candidate> {
    let mut logins: BTreeMap<Option<String>, Decimal> = BTreeMap::new();
    for s in recent.iter().filter(|s| s.kind == SignalKind::Login) {
        *logins.entry(s.product_id.clone()).or_default() += s.value;
    }
    logins
        .into_iter()
        .filter(|(_, total)| *total >= config.power_user_logins)
        .map(|(product, total)| Candidate {
            kind: TriggerKind::PowerUsers,
            product_id: product,
            high_priority: false,
            reason: format!(
                "{} logins in the last {} days",
                total.normalize(),
                config.lookback_days
            ),
        })
        .collect()
}

/// Subscriptions ending within the renewal window.
fn renewal_windows(
    config: &TriggerConfig,
    subscriptions: &[TriggerSubscription],
    today: NaiveDate,
) -> Vec<Candidate> {
    subscriptions
        .iter()
        .filter_map(|sub| {
            let end = sub.end_date?;
            let days = (end - today).num_days();
            (0..=config.renewal_window_days)
                .contains(&days)
                .then(|| Candidate {
                    kind: TriggerKind::RenewalWindow,
                    product_id: Some(sub.product_id.clone()),
                    high_priority: false,
                    reason: format!("renewal on {end}, in {days} days"),
                })
        })
        .collect()
}

/// The fiscal year's start within its window, for an account with a
/// subscription.
fn fiscal_year_window(
    config: &TriggerConfig,
    subscriptions: &[TriggerSubscription],
    fiscal_year_start_month: u32,
    today: NaiveDate,
) -> Option<Candidate> {
    if subscriptions.is_empty() {
        return None;
    }
    let start = next_fiscal_year_start(today, fiscal_year_start_month)?;
    let days = (start - today).num_days();
    (days <= config.fiscal_year_window_days).then(|| Candidate {
        kind: TriggerKind::FiscalYearWindow,
        product_id: None,
        high_priority: false,
        reason: format!("fiscal year starts on {start}, in {days} days"),
    })
}

/// One candidate per (kind, product): the first (the rules group already,
/// but renewals of two subscriptions of one product merge).
fn one_per_target(all: Vec<Candidate>) -> Vec<Candidate> {
    let mut unique: Vec<Candidate> = Vec::with_capacity(all.len());
    for c in all {
        if !unique
            .iter()
            .any(|u| u.kind == c.kind && u.product_id == c.product_id)
        {
            unique.push(c);
        }
    }
    unique
}

/// The first day of the fiscal year on or after `today`.
pub fn next_fiscal_year_start(today: NaiveDate, start_month: u32) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(today.year(), start_month, 1)?;
    if this_year >= today {
        Some(this_year)
    } else {
        NaiveDate::from_ymd_opt(today.year() + 1, start_month, 1)
    }
}

/// `None` when a trigger may be acted on; else why it is suppressed. The
/// seeds' rule: product A's success is non-negotiable — never expand a RED
/// account, nor grow from a RED product.
pub fn suppression(
    account_band: Option<HealthBand>,
    product: Option<(&str, Option<HealthBand>)>,
) -> Option<String> {
    if account_band == Some(HealthBand::Red) {
        return Some("the account is RED: fix its health before expanding".to_owned());
    }
    if let Some((name, Some(HealthBand::Red))) = product {
        return Some(format!("product {name} is RED: fix product {name} first"));
    }
    None
}

// ---------------------------------------------------------------------------------------
// Lifecycle (see [`TriggerStatus`]): CONVERTED counts as open, so no trigger of its
// (account, product, kind) fires while it is.

pub use crate::entity::trigger::TriggerStatus;

/// What a conversion or a close does to a stored trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleStep {
    /// Nothing to write: a repeat of what is already stored.
    Unchanged,
    /// Write this status and opportunity; `closes` stamps the close time.
    Write {
        status: TriggerStatus,
        opportunity_id: Option<String>,
        closes: bool,
    },
}

/// Why a trigger cannot take that step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleRefusal {
    #[error("trigger {trigger} already became opportunity {opportunity}")]
    ConvertedToAnother {
        trigger: String,
        opportunity: String,
    },
}

/// Turning a trigger into `opportunity`: an open trigger becomes CONVERTED; one that
/// closed meanwhile (its condition cleared) keeps CLOSED but names the opportunity; a
/// repeat changes nothing; another opportunity is refused.
pub fn plan_conversion(
    trigger: &str,
    status: TriggerStatus,
    current: Option<&str>,
    opportunity: &str,
) -> Result<LifecycleStep, LifecycleRefusal> {
    match current {
        Some(existing) if existing == opportunity => Ok(LifecycleStep::Unchanged),
        Some(existing) => Err(LifecycleRefusal::ConvertedToAnother {
            trigger: trigger.to_owned(),
            opportunity: existing.to_owned(),
        }),
        None if status == TriggerStatus::Closed => Ok(LifecycleStep::Write {
            status: TriggerStatus::Closed,
            opportunity_id: Some(opportunity.to_owned()),
            closes: false,
        }),
        None => Ok(LifecycleStep::Write {
            status: TriggerStatus::Converted,
            opportunity_id: Some(opportunity.to_owned()),
            closes: false,
        }),
    }
}

/// Closing a trigger: a converted one only for its own opportunity (which has
/// closed); an open one whatever is named (it is dismissed); a closed one is unchanged.
pub fn plan_close(
    trigger: &str,
    status: TriggerStatus,
    current: Option<&str>,
    opportunity: Option<&str>,
) -> Result<LifecycleStep, LifecycleRefusal> {
    if status == TriggerStatus::Closed {
        return Ok(LifecycleStep::Unchanged);
    }
    if status == TriggerStatus::Converted
        && let (Some(existing), Some(named)) = (current, opportunity)
        && existing != named
    {
        return Err(LifecycleRefusal::ConvertedToAnother {
            trigger: trigger.to_owned(),
            opportunity: existing.to_owned(),
        });
    }
    Ok(LifecycleStep::Write {
        status: TriggerStatus::Closed,
        opportunity_id: current.map(str::to_owned),
        closes: true,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn a_trigger_converts_once_and_closes_with_its_opportunity() {
        let convert = |status, current| plan_conversion("t1", status, current, "o1");
        assert_eq!(
            convert(TriggerStatus::Ready, None),
            Ok(LifecycleStep::Write {
                status: TriggerStatus::Converted,
                opportunity_id: Some("o1".into()),
                closes: false
            })
        );
        assert_eq!(
            convert(TriggerStatus::Converted, Some("o1")),
            Ok(LifecycleStep::Unchanged)
        );
        assert!(convert(TriggerStatus::Converted, Some("o2")).is_err());
        // Auto-closed before the conversion arrived: it stays closed, naming the deal.
        assert_eq!(
            convert(TriggerStatus::Closed, None),
            Ok(LifecycleStep::Write {
                status: TriggerStatus::Closed,
                opportunity_id: Some("o1".into()),
                closes: false
            })
        );
        assert_eq!(
            plan_close("t1", TriggerStatus::Converted, Some("o1"), Some("o1")),
            Ok(LifecycleStep::Write {
                status: TriggerStatus::Closed,
                opportunity_id: Some("o1".into()),
                closes: true
            })
        );
        assert!(plan_close("t1", TriggerStatus::Converted, Some("o1"), Some("o2")).is_err());
        assert_eq!(
            plan_close("t1", TriggerStatus::Closed, Some("o1"), Some("o1")),
            Ok(LifecycleStep::Unchanged)
        );
        assert_eq!(
            plan_close("t1", TriggerStatus::Ready, None, None),
            Ok(LifecycleStep::Write {
                status: TriggerStatus::Closed,
                opportunity_id: None,
                closes: true
            })
        );
    }

    use super::*;

    fn signal(
        kind: SignalKind,
        product: &str,
        value: i64,
        limit: Option<i64>,
        days_ago: i64,
    ) -> TriggerSignal {
        TriggerSignal {
            kind,
            product_id: Some(product.to_owned()),
            value: Decimal::from(value),
            limit: limit.map(Decimal::from),
            occurred_at: Utc::now() - Duration::days(days_ago),
            detail: None,
        }
    }

    fn kinds(c: &[Candidate]) -> Vec<(TriggerKind, bool)> {
        c.iter().map(|c| (c.kind, c.high_priority)).collect()
    }

    #[test]
    fn usage_at_80_fires_capacity_and_90_is_high_priority() {
        let cfg = TriggerConfig::default();
        let now = Utc::now();
        let at = |v| {
            candidates(
                &cfg,
                &[signal(SignalKind::Usage, "p", v, Some(100), 1)],
                &[],
                1,
                now,
            )
        };
        assert!(at(79).is_empty());
        assert_eq!(kinds(&at(80)), vec![(TriggerKind::UsageCapacity, false)]);
        assert_eq!(kinds(&at(95)), vec![(TriggerKind::UsageCapacity, true)]);
        // Only the latest reading counts: usage that fell back clears the condition.
        let fell = candidates(
            &cfg,
            &[
                signal(SignalKind::Usage, "p", 95, Some(100), 5),
                signal(SignalKind::Usage, "p", 40, Some(100), 1),
            ],
            &[],
            1,
            now,
        );
        assert!(fell.is_empty());
    }

    #[test]
    fn each_signal_rule_suggests_its_motion() {
        let cfg = TriggerConfig::default();
        for (kind, trigger, motion) in [
            (
                SignalKind::PremiumWorkaround,
                TriggerKind::PremiumWorkaround,
                Motion::UpsellTier,
            ),
            (
                SignalKind::DataExport,
                TriggerKind::DataExport,
                Motion::CrossSellAdjacent,
            ),
            (
                SignalKind::ValueMilestone,
                TriggerKind::ValueMilestone,
                Motion::UpsellTier,
            ),
            (
                SignalKind::FeatureRequest,
                TriggerKind::FeatureRequest,
                Motion::UpsellFeature,
            ),
            (
                SignalKind::UpgradePageVisit,
                TriggerKind::UpgradeInterest,
                Motion::UpsellTier,
            ),
            (
                SignalKind::WebinarAttended,
                TriggerKind::UpgradeInterest,
                Motion::UpsellTier,
            ),
            (
                SignalKind::OrgInitiative,
                TriggerKind::OrgInitiative,
                Motion::CrossSellPlatform,
            ),
        ] {
            let c = candidates(&cfg, &[signal(kind, "p", 1, None, 2)], &[], 1, Utc::now());
            assert_eq!(c.len(), 1, "{kind:?}");
            assert_eq!((c[0].kind, c[0].kind.motion()), (trigger, motion));
            // Outside the lookback it does not fire.
            assert!(
                candidates(&cfg, &[signal(kind, "p", 1, None, 31)], &[], 1, Utc::now()).is_empty()
            );
        }
        let logins: Vec<_> = (0..10)
            .map(|d| signal(SignalKind::Login, "p", 10, None, d))
            .collect();
        let c = candidates(&cfg, &logins, &[], 1, Utc::now());
        assert_eq!(
            (c[0].kind, c[0].kind.motion()),
            (TriggerKind::PowerUsers, Motion::CrossSellComplementary)
        );
    }

    #[test]
    fn time_windows() {
        let cfg = TriggerConfig::default();
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let subs = [
            TriggerSubscription {
                product_id: "a".into(),
                end_date: Some(d("2027-02-20")),
            },
            TriggerSubscription {
                product_id: "b".into(),
                end_date: Some(d("2027-03-01")),
            },
        ];
        // Fiscal year starting in January: 37 days away → inside 60.
        let c = candidates(&cfg, &[], &subs, 1, now);
        assert_eq!(
            kinds(&c),
            vec![
                (TriggerKind::RenewalWindow, false),
                (TriggerKind::FiscalYearWindow, false)
            ]
        );
        assert_eq!(c[0].product_id.as_deref(), Some("a"));
        // Fiscal year in April: too far; no subscriptions: no fiscal trigger.
        assert_eq!(candidates(&cfg, &[], &subs, 4, now).len(), 1);
        assert!(candidates(&cfg, &[], &[], 1, now).is_empty());
        assert_eq!(
            next_fiscal_year_start(d("2026-11-25"), 11),
            Some(d("2027-11-01"))
        );
        assert_eq!(
            next_fiscal_year_start(d("2026-11-01"), 11),
            Some(d("2026-11-01"))
        );
    }

    #[test]
    fn red_accounts_and_red_products_suppress() {
        assert!(
            suppression(
                Some(HealthBand::Green),
                Some(("A", Some(HealthBand::Yellow)))
            )
            .is_none()
        );
        assert!(suppression(None, None).is_none());
        let account = suppression(Some(HealthBand::Red), None).unwrap();
        assert!(account.contains("account is RED"));
        let product =
            suppression(Some(HealthBand::Green), Some(("A", Some(HealthBand::Red)))).unwrap();
        assert_eq!(product, "product A is RED: fix product A first");
    }
}
