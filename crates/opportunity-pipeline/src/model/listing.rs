//! The orders of ListOpportunities: each row's sort key — creation (id)
//! order, close date, expected value or priority score — and the page
//! tokens that resume strictly after the last key.

use chrono::NaiveDate;
use contracts::pb::pipeline::v1 as pb;
use domain::Decimal;

use super::Parsed;
use super::priority::{expected_value, priority_score};
use super::qualification::Rating;
use crate::entity::opportunity;

/// A key that orders list results; pages resume strictly after the last key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortKey {
    pub group: String,
    pub value: Decimal,
    pub id: String,
}

impl SortKey {
    pub fn token_text(&self) -> String {
        format!("{}\u{1}{}\u{1}{}", self.group, self.value, self.id)
    }

    pub fn from_token_text(text: &str) -> Option<SortKey> {
        let mut parts = text.splitn(3, '\u{1}');
        let group = parts.next()?.to_owned();
        let value = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_owned();
        Some(SortKey { group, value, id })
    }
}

/// Creation order is id order (UUIDv7): the database pages it. The value
/// orders rank every matching row in memory first.
pub fn in_creation_order(sort: pb::OpportunitySortOrder) -> bool {
    matches!(
        sort,
        pb::OpportunitySortOrder::Unspecified | pb::OpportunitySortOrder::CreateTime
    )
}

/// Where the opportunity `m` (read as `p`) sorts in `sort` order on `today`.
pub fn sort_key(
    sort: pb::OpportunitySortOrder,
    m: &opportunity::Model,
    p: &Parsed,
    today: NaiveDate,
) -> SortKey {
    let id = m.id.clone();
    match sort {
        pb::OpportunitySortOrder::Unspecified | pb::OpportunitySortOrder::CreateTime => SortKey {
            group: String::new(),
            value: Decimal::ZERO,
            id,
        },
        pb::OpportunitySortOrder::CloseDate => SortKey {
            // Deals without a close date go last.
            group: m
                .close_date
                .map_or_else(|| "~".to_owned(), |d| d.to_string()),
            value: Decimal::ZERO,
            id,
        },
        // Highest first: the value is negated so every key sorts ascending.
        // Grouped by currency: amounts in different currencies never compare.
        pb::OpportunitySortOrder::ExpectedValue => SortKey {
            group: m.currency.clone(),
            value: -expected_value(p.amount, p.probability).amount(),
            id,
        },
        pb::OpportunitySortOrder::Priority => {
            let strategic = m.strategic_value.as_deref().and_then(Rating::parse);
            SortKey {
                group: m.currency.clone(),
                value: -priority_score(p.amount, p.probability, strategic, m.close_date, today)
                    .amount(),
                id,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::convert::parse_row;
    use crate::model::test_support::{now, opportunity_row};
    use domain::Stage;

    #[test]
    fn sort_keys_round_trip_through_tokens() {
        let key = SortKey {
            group: "USD".into(),
            value: Decimal::new(-35_000_000, 2),
            id: "01a2".into(),
        };
        assert_eq!(SortKey::from_token_text(&key.token_text()), Some(key));
        assert_eq!(SortKey::from_token_text("junk"), None);
    }

    #[test]
    fn values_sort_highest_first_within_a_currency_and_undated_deals_last() {
        let today = now().date_naive();
        let m = opportunity_row(Stage::Proposed);
        let p = parse_row(&m).unwrap();
        let key = |sort| sort_key(sort, &m, &p, today);
        assert!(in_creation_order(pb::OpportunitySortOrder::Unspecified));
        assert!(!in_creation_order(pb::OpportunitySortOrder::Priority));
        assert_eq!(
            key(pb::OpportunitySortOrder::CreateTime),
            SortKey {
                group: String::new(),
                value: Decimal::ZERO,
                id: "01opp".into()
            }
        );
        assert_eq!(key(pb::OpportunitySortOrder::CloseDate).group, "~");
        // USD 12,000 at PROPOSED's 60%: 7,200, negated.
        let expected = key(pb::OpportunitySortOrder::ExpectedValue);
        assert_eq!(expected.group, "USD");
        assert_eq!(expected.value, Decimal::new(-720_000, 2));
        let mut dated = m.clone();
        dated.close_date = NaiveDate::from_ymd_opt(2026, 4, 1);
        assert_eq!(
            sort_key(pb::OpportunitySortOrder::CloseDate, &dated, &p, today).group,
            "2026-04-01"
        );
        assert!(key(pb::OpportunitySortOrder::Priority).value < Decimal::ZERO);
    }
}
