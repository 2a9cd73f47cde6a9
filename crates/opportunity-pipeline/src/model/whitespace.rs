//! Whitespace and share of wallet (seed 001): the portfolio products an
//! account does not own that fit its segment, and how much of its addressable
//! spend flows through us.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use domain::{Currency, Decimal, Money, Motion, Segment};
use rust_decimal::RoundingStrategy;

/// Who serves a product area's spend today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedBy {
    Us,
    Competitor,
    InHouse,
    Unaddressed,
}

/// One wallet estimate: annual spend on a product area and who serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct WalletLine {
    pub product_area: String,
    pub annual_spend: Money,
    pub served_by: ServedBy,
}

/// One recorded estimate: a product area of an account, from a day on.
/// Estimates are never overwritten; a later one supersedes.
#[derive(Debug, Clone, PartialEq)]
pub struct WalletVersion {
    /// The recorded estimate's id.
    pub id: String,
    pub account_id: String,
    pub effective_date: NaiveDate,
    pub line: WalletLine,
}

/// The estimates in force on `as_of`: for each account and product area, the
/// one with the latest effective date on or before it, and among those of one
/// date the last recorded (`versions` come in record order). Sorted by account
/// and product area.
pub fn wallet_in_force(versions: &[WalletVersion], as_of: NaiveDate) -> Vec<&WalletVersion> {
    let mut in_force: BTreeMap<(&str, &str), &WalletVersion> = BTreeMap::new();
    for v in versions.iter().filter(|v| v.effective_date <= as_of) {
        let key = (v.account_id.as_str(), v.line.product_area.as_str());
        match in_force.get(&key) {
            Some(current) if current.effective_date > v.effective_date => {}
            _ => {
                in_force.insert(key, v);
            }
        }
    }
    in_force.into_values().collect()
}

/// Share of wallet as of each day of `dates`: the summaries of the estimates
/// in force that day.
pub fn share_series(
    versions: &[WalletVersion],
    dates: &[NaiveDate],
) -> Result<Vec<Vec<WalletSummary>>, domain::MoneyError> {
    dates
        .iter()
        .map(|d| {
            let lines: Vec<WalletLine> = wallet_in_force(versions, *d)
                .into_iter()
                .map(|v| v.line.clone())
                .collect();
            summarize_wallet(&lines)
        })
        .collect()
}

/// Share of wallet in one currency.
#[derive(Debug, Clone, PartialEq)]
pub struct WalletSummary {
    pub currency: Currency,
    pub total: Money,
    pub ours: Money,
    pub opportunity: Money,
    /// ours / total, 4 places; `None` when the total is zero.
    pub share_of_wallet: Option<Decimal>,
    pub opportunity_share: Option<Decimal>,
}

/// An exact ratio rounded half-even to 4 places (0.2875 = 28.75%).
pub fn ratio(numerator: Decimal, denominator: Decimal) -> Option<Decimal> {
    if denominator.is_zero() {
        return None;
    }
    numerator
        .checked_div(denominator)
        .map(|r| r.round_dp_with_strategy(4, RoundingStrategy::MidpointNearestEven))
}

/// A ratio as the wire shows it: always 4 decimals ("0.2900").
pub fn ratio_text(value: Option<Decimal>) -> String {
    value
        .map(|mut v| {
            v.rescale(4);
            v.to_string()
        })
        .unwrap_or_default()
}

/// Sums the wallet per currency (never mixing currencies): total addressable
/// spend, the part served by us, and the rest as opportunity.
pub fn summarize_wallet(lines: &[WalletLine]) -> Result<Vec<WalletSummary>, domain::MoneyError> {
    let mut by_currency: BTreeMap<&str, (Currency, Vec<&WalletLine>)> = BTreeMap::new();
    for line in lines {
        let currency = line.annual_spend.currency();
        by_currency
            .entry(currency.code())
            .or_insert_with(|| (currency, Vec::new()))
            .1
            .push(line);
    }
    by_currency
        .into_values()
        .map(|(currency, lines)| {
            let total = Money::checked_sum(currency, lines.iter().map(|l| l.annual_spend))?;
            let ours = Money::checked_sum(
                currency,
                lines
                    .iter()
                    .filter(|l| l.served_by == ServedBy::Us)
                    .map(|l| l.annual_spend),
            )?;
            let opportunity = total.checked_sub(ours)?;
            Ok(WalletSummary {
                currency,
                total,
                ours,
                opportunity,
                share_of_wallet: ratio(ours.amount(), total.amount()),
                opportunity_share: ratio(opportunity.amount(), total.amount()),
            })
        })
        .collect()
}

/// How a portfolio product relates to another (from the health service's portfolio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjacency {
    Adjacent,
    Complementary,
    Platform,
}

impl Adjacency {
    pub fn motion(self) -> Motion {
        match self {
            Adjacency::Adjacent => Motion::CrossSellAdjacent,
            Adjacency::Complementary => Motion::CrossSellComplementary,
            Adjacency::Platform => Motion::CrossSellPlatform,
        }
    }
}

/// A product of the portfolio, as whitespace needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PortfolioProduct {
    pub product_id: String,
    pub name: String,
    pub family: String,
    /// Empty means it fits every segment.
    pub fits_segments: Vec<Segment>,
    pub segment_wallets: Vec<(Segment, Money)>,
    pub adjacencies: Vec<(String, Adjacency)>,
}

/// A product the account could buy.
#[derive(Debug, Clone, PartialEq)]
pub struct WhitespaceItem {
    pub product_id: String,
    pub name: String,
    pub family: String,
    pub motion: Option<Motion>,
    pub estimated_annual_wallet: Option<Money>,
}

/// Portfolio products the account does not own that fit its segment, with a
/// suggested cross-sell motion when the product is adjacent to an owned one
/// (either direction), in portfolio order.
pub fn whitespace(
    portfolio: &[PortfolioProduct],
    owned: &HashSet<String>,
    segment: Option<Segment>,
) -> Vec<WhitespaceItem> {
    portfolio
        .iter()
        .filter(|p| !owned.contains(&p.product_id))
        .filter(|p| match segment {
            Some(s) => p.fits_segments.is_empty() || p.fits_segments.contains(&s),
            None => true,
        })
        .map(|p| {
            let declared = p
                .adjacencies
                .iter()
                .find(|(other, _)| owned.contains(other))
                .map(|(_, a)| *a);
            let reverse = || {
                portfolio
                    .iter()
                    .filter(|o| owned.contains(&o.product_id))
                    .find_map(|o| {
                        o.adjacencies
                            .iter()
                            .find(|(other, _)| *other == p.product_id)
                            .map(|(_, a)| *a)
                    })
            };
            WhitespaceItem {
                product_id: p.product_id.clone(),
                name: p.name.clone(),
                family: p.family.clone(),
                motion: declared.or_else(reverse).map(Adjacency::motion),
                estimated_annual_wallet: segment.and_then(|s| {
                    p.segment_wallets
                        .iter()
                        .find(|(ws, _)| *ws == s)
                        .map(|(_, m)| *m)
                }),
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line(area: &str, amount: &str, served_by: ServedBy) -> WalletLine {
        WalletLine {
            product_area: area.into(),
            annual_spend: Money::parse("USD", amount).unwrap(),
            served_by,
        }
    }

    /// Seed 001's mid-sized manufacturer: audit $150K and tax compliance $80K
    /// with us, the rest elsewhere — ~$800K total, $230K (29%) ours, $570K (71%) to win.
    #[test]
    fn seed_wallet_example() {
        use ServedBy::*;
        let lines = [
            line("audit", "150000", Us),
            line("tax compliance", "80000", Us),
            line("tax planning", "60000", Competitor),
            line("R&D tax credits", "40000", Unaddressed),
            line("transfer pricing", "50000", Competitor),
            line("M&A advisory", "200000", Competitor),
            line("fractional CFO", "120000", InHouse),
            line("financial systems consulting", "100000", Unaddressed),
        ];
        let s = summarize_wallet(&lines).unwrap();
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!(s.total, Money::parse("USD", "800000").unwrap());
        assert_eq!(s.ours, Money::parse("USD", "230000").unwrap());
        assert_eq!(s.opportunity, Money::parse("USD", "570000").unwrap());
        assert_eq!(ratio_text(s.share_of_wallet), "0.2875");
        assert_eq!(ratio_text(s.opportunity_share), "0.7125");
        // The seed rounds to whole percents: 29% and 71%.
        assert_eq!(s.share_of_wallet.unwrap().round_dp(2), Decimal::new(29, 2));
        assert_eq!(
            s.opportunity_share.unwrap().round_dp(2),
            Decimal::new(71, 2)
        );
    }

    fn version(area: &str, day: &str, amount: &str, served_by: ServedBy) -> WalletVersion {
        WalletVersion {
            id: format!("{area}@{day}"),
            account_id: "acme".into(),
            effective_date: day.parse().unwrap(),
            line: line(area, amount, served_by),
        }
    }

    /// The seed's "from 25% to 45% over two years": an $800K wallet where we
    /// serve $200K, then win tax planning ($60K) and later M&A advisory ($100K
    /// of a re-estimated $200K). Each estimate supersedes, none is lost.
    #[test]
    fn share_of_wallet_over_time() {
        use ServedBy::*;
        let versions = vec![
            version("audit", "2024-01-01", "200000", Us),
            version("tax planning", "2024-01-01", "60000", Competitor),
            version("M&A advisory", "2024-01-01", "200000", Competitor),
            version("other", "2024-01-01", "340000", Unaddressed),
            version("tax planning", "2025-01-01", "60000", Us),
            // A correction of the same day, recorded later, wins.
            version("M&A advisory", "2026-01-01", "150000", Us),
            version("M&A advisory", "2026-01-01", "100000", Us),
            version("other", "2026-01-01", "440000", Unaddressed),
        ];
        let days: Vec<NaiveDate> = ["2023-12-31", "2024-06-30", "2025-06-30", "2026-06-30"]
            .iter()
            .map(|d| d.parse().unwrap())
            .collect();
        let series = share_series(&versions, &days).unwrap();
        assert!(series[0].is_empty(), "no estimate yet");
        let share = |i: usize| ratio_text(series[i][0].share_of_wallet);
        // 200/800, 260/800, 360/800.
        assert_eq!(share(1), "0.2500");
        assert_eq!(share(2), "0.3250");
        assert_eq!(share(3), "0.4500");
        assert_eq!(series[3][0].total, Money::parse("USD", "800000").unwrap());
        assert_eq!(wallet_in_force(&versions, days[3]).len(), 4);
    }

    #[test]
    fn currencies_are_never_mixed_and_ratios_round_half_even() {
        let lines = [
            line("a", "100", ServedBy::Us),
            WalletLine {
                product_area: "b".into(),
                annual_spend: Money::parse("EUR", "50").unwrap(),
                served_by: ServedBy::Competitor,
            },
        ];
        let s = summarize_wallet(&lines).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].currency.code(), "EUR");
        assert_eq!(ratio_text(s[0].share_of_wallet), "0.0000");
        assert_eq!(ratio_text(s[1].share_of_wallet), "1.0000");
        // 1/3 → 0.3333; 0.00005 boundary: 1/20000 = 0.00005 → 0.0000 (half-even).
        assert_eq!(ratio_text(ratio(Decimal::ONE, Decimal::from(3))), "0.3333");
        assert_eq!(
            ratio_text(ratio(Decimal::ONE, Decimal::from(20_000))),
            "0.0000"
        );
        assert_eq!(
            ratio_text(ratio(Decimal::from(3), Decimal::from(20_000))),
            "0.0002"
        );
        assert_eq!(ratio_text(ratio(Decimal::ONE, Decimal::ZERO)), "");
    }

    #[test]
    fn whitespace_is_unowned_products_fitting_the_segment() {
        let usd = |a| Money::parse("USD", a).unwrap();
        let product = |id: &str, fits: Vec<Segment>| PortfolioProduct {
            product_id: id.into(),
            name: id.to_uppercase(),
            family: "f".into(),
            fits_segments: fits,
            segment_wallets: vec![(Segment::Enterprise, usd("120000"))],
            adjacencies: vec![],
        };
        let mut crm = product("crm", vec![]);
        crm.adjacencies = vec![("support".into(), Adjacency::Complementary)];
        let portfolio = vec![
            crm,
            product("support", vec![Segment::Enterprise]),
            product("smb-only", vec![Segment::Smb]),
            product("analytics", vec![Segment::Enterprise, Segment::MidMarket]),
        ];
        let owned: HashSet<String> = ["crm".to_owned()].into();
        let ws = whitespace(&portfolio, &owned, Some(Segment::Enterprise));
        let ids: Vec<&str> = ws.iter().map(|w| w.product_id.as_str()).collect();
        assert_eq!(ids, ["support", "analytics"]);
        assert_eq!(ws[0].motion, Some(Motion::CrossSellComplementary));
        assert_eq!(ws[1].motion, None);
        assert_eq!(ws[0].estimated_annual_wallet, Some(usd("120000")));
    }

    proptest::proptest! {
        /// Ours plus opportunity is the total, and the two shares add up to
        /// one within the rounding of two 4-place ratios.
        #[test]
        fn wallet_parts_add_up(
            spends in proptest::collection::vec((0i64..10_000_000_000, 0u8..4), 1..20)
        ) {
            let lines: Vec<WalletLine> = spends
                .iter()
                .enumerate()
                .map(|(i, (minor, who))| WalletLine {
                    product_area: format!("area {i}"),
                    annual_spend: Money::from_minor(Currency::USD, *minor),
                    served_by: match who {
                        0 => ServedBy::Us,
                        1 => ServedBy::Competitor,
                        2 => ServedBy::InHouse,
                        _ => ServedBy::Unaddressed,
                    },
                })
                .collect();
            let s = &summarize_wallet(&lines).unwrap()[0];
            proptest::prop_assert_eq!(s.ours.checked_add(s.opportunity).unwrap(), s.total);
            if let (Some(a), Some(b)) = (s.share_of_wallet, s.opportunity_share) {
                let sum = a + b;
                proptest::prop_assert!(sum >= Decimal::new(9999, 4) && sum <= Decimal::new(10001, 4));
            } else {
                proptest::prop_assert!(s.total.is_zero());
            }
        }
    }
}
