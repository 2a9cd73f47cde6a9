//! The domain parsers: whatever text arrives, they answer a value or a
//! typed error, and an accepted value prints back to a form that parses to
//! itself.

use std::str::FromStr;

use domain::{
    AccountId, CreditRole, DateRange, ExternalId, LedgerEntryId, Money, Month, NonEmptyText,
    OpportunityId, Percent, Stage, TimeZoneName, allocate_deal_credits, largest_remainder,
    parse_date,
};
use proptest::prelude::*;

use super::{TRICKY, fuzz, text_like};
use crate::regressions;

const DECIMAL: &str = "-?[0-9]{0,22}(\\.[0-9]{0,9})?";

fn currency_code() -> BoxedStrategy<String> {
    prop_oneof![
        8 => prop::sample::select(&["USD", "EUR", "BRL", "JPY", "KWD", "CLP", "GBP"][..])
            .prop_map(str::to_owned),
        2 => "[A-Z]{3}",
        1 => text_like("[A-Za-z]{0,4}"),
    ]
    .boxed()
}

/// A decimal string of any `i64` mantissa and 0–4 places (trailing zeros kept).
pub fn decimal_of_any_scale() -> BoxedStrategy<String> {
    (any::<i64>(), 0u32..=4)
        .prop_map(|(n, scale)| domain::Decimal::new(n, scale).to_string())
        .boxed()
}

/// A UUID in one of its spellings, sometimes with one character changed.
fn uuid_spelling() -> BoxedStrategy<String> {
    (
        any::<u128>(),
        0u8..6,
        prop::option::of((any::<usize>(), any::<char>())),
    )
        .prop_map(|(n, style, typo)| {
            let u = uuid::Uuid::from_u128(n);
            let mut text = match style {
                0 => u.hyphenated().to_string(),
                1 => u.hyphenated().to_string().to_uppercase(),
                2 => u.simple().to_string(),
                3 => u.braced().to_string(),
                4 => u.urn().to_string(),
                _ => u.as_u128().to_string(),
            };
            if let Some((at, c)) = typo {
                let at = at % text.len();
                if text.is_char_boundary(at) {
                    text.replace_range(at..=at, &c.to_string());
                }
            }
            text
        })
        .boxed()
}

/// A percentage, mostly 0–100% with up to six places, sometimes far beyond.
fn percent() -> BoxedStrategy<Percent> {
    let with_scale = |units: u32, scale: u32| {
        Percent::from_decimal(domain::Decimal::new(i64::from(units), scale)).unwrap()
    };
    prop_oneof![
        9 => (0u32..=100_000_000).prop_map(move |micros| with_scale(micros, 6)),
        1 => (0u32..=u32::MAX, 0u32..=6).prop_map(move |(units, scale)| with_scale(units, scale)),
    ]
    .boxed()
}

/// Shares totalling exactly 100% (cut points over 10^8 millionths), or
/// (one time in four) arbitrary shares.
fn hundred_percent_shares() -> BoxedStrategy<Vec<Percent>> {
    prop_oneof![
        3 => prop::collection::vec(0u32..=100_000_000, 0..5).prop_map(|mut cuts| {
            cuts.push(0);
            cuts.push(100_000_000);
            cuts.sort_unstable();
            cuts.windows(2)
                .map(|w| Percent::from_decimal(domain::Decimal::new(i64::from(w[1] - w[0]), 6)).unwrap())
                .collect()
        }),
        1 => prop::collection::vec(percent(), 0..6),
    ]
    .boxed()
}

/// `YYYY-MM-DD` text, usually a real date (any year 1–9999, days up to 31,
/// so some are not), sometimes noise.
fn date_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (0i32..=10_000, 0u32..=13, 0u32..=31).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        1 => text_like("[0-9]{4}-[0-9]{2}-[0-9]{2}"),
    ]
    .boxed()
}

#[test]
fn money_parses_or_refuses_and_round_trips() {
    fuzz(
        "money_parses_or_refuses_and_round_trips",
        regressions!("domain_parsers"),
        (
            currency_code(),
            prop_oneof![2 => decimal_of_any_scale(), 3 => text_like(DECIMAL)],
        ),
        |(code, amount)| {
            let Ok(money) = Money::parse(&code, &amount) else {
                return Ok(false);
            };
            prop_assert_eq!(money.currency().code(), code.as_str());
            let text = money.to_amount_string();
            prop_assert_eq!(Money::parse(&code, &text), Ok(money));
            prop_assert_eq!(
                Money::from_decimal(money.currency(), money.amount()),
                Ok(money)
            );
            // The printed form is the one canonical spelling: exactly the exponent's places.
            let places = text.split_once('.').map_or(0, |(_, f)| f.len());
            prop_assert_eq!(places, usize::from(money.currency().exponent()));
            Ok(true)
        },
    );
}

#[test]
fn money_arithmetic_is_checked() {
    fuzz(
        "money_arithmetic_is_checked",
        regressions!("domain_parsers"),
        (
            any::<i64>(),
            any::<i64>(),
            prop::sample::select(&["USD", "JPY", "KWD"][..]),
        ),
        |(a, b, code)| {
            let c = domain::Currency::parse(code).unwrap();
            let (x, y) = (Money::from_minor(c, a), Money::from_minor(c, b));
            prop_assert_eq!(x.checked_add(y).ok().map(|m| m.minor()), a.checked_add(b));
            prop_assert_eq!(x.checked_sub(y).ok().map(|m| m.minor()), a.checked_sub(b));
            prop_assert_eq!(x.checked_neg().ok().map(|m| m.minor()), a.checked_neg());
            let other = Money::from_minor(domain::Currency::parse("EUR").unwrap(), b);
            prop_assert!(x.checked_add(other).is_err(), "currencies must never mix");
            Ok(true)
        },
    );
}

#[test]
fn percent_parses_or_refuses_and_round_trips() {
    fuzz(
        "percent_parses_or_refuses_and_round_trips",
        regressions!("domain_parsers"),
        (text_like(DECIMAL),),
        |(text,)| {
            let Ok(p) = Percent::parse(&text) else {
                return Ok(false);
            };
            prop_assert_eq!(Percent::parse(&p.to_decimal_string()), Ok(p));
            prop_assert!(p.as_decimal().scale() <= domain::percent::MAX_PERCENT_PLACES);
            Ok(true)
        },
    );
}

#[test]
fn ids_parse_to_their_canonical_spelling() {
    fuzz(
        "ids_parse_to_their_canonical_spelling",
        regressions!("domain_parsers"),
        (prop_oneof![
            2 => uuid_spelling(),
            1 => text_like("[0-9a-fA-F{}-]{0,40}|urn:uuid:[0-9a-f-]{36}"),
        ],),
        |(text,)| {
            match AccountId::parse(&text) {
                Ok(id) => {
                    let canonical = id.to_string();
                    prop_assert_eq!(canonical.len(), 36);
                    prop_assert_eq!(&canonical, &canonical.to_lowercase());
                    prop_assert_eq!(AccountId::parse(&canonical), Ok(id));
                    // Every id type reads the same text the same way.
                    prop_assert_eq!(
                        OpportunityId::parse(&text).map(|o| o.to_string()),
                        Ok(canonical.clone())
                    );
                    prop_assert_eq!(
                        LedgerEntryId::parse(&text).map(|e| e.to_string()),
                        Ok(canonical)
                    );
                }
                Err(_) => prop_assert!(OpportunityId::parse(&text).is_err()),
            }
            Ok(AccountId::parse(&text).is_ok())
        },
    );
}

#[test]
fn external_ids_keep_their_bytes_within_limits() {
    fuzz(
        "external_ids_keep_their_bytes_within_limits",
        regressions!("domain_parsers"),
        (text_like("[a-z]{0,12}"), text_like("[A-Za-z0-9_-]{0,300}")),
        |(source, id)| {
            let Ok(ext) = ExternalId::parse(&source, &id) else {
                return Ok(false);
            };
            prop_assert_eq!(ext.source(), source.as_str());
            prop_assert_eq!(ext.id(), id.as_str());
            for part in [&source, &id] {
                prop_assert!(part.len() <= domain::ids::MAX_EXTERNAL_ID_BYTES);
                prop_assert!(!part.trim().is_empty());
                prop_assert!(!part.chars().any(char::is_control));
            }
            Ok(true)
        },
    );
}

#[test]
fn dates_have_one_spelling() {
    fuzz(
        "dates_have_one_spelling",
        regressions!("domain_parsers"),
        (date_text(),),
        |(text,)| {
            let Ok(date) = parse_date(&text) else {
                return Ok(false);
            };
            prop_assert_eq!(date.format("%Y-%m-%d").to_string(), text);
            Ok(true)
        },
    );
}

#[test]
fn months_have_one_spelling_and_a_whole_month() {
    fuzz(
        "months_have_one_spelling_and_a_whole_month",
        regressions!("domain_parsers"),
        (prop_oneof![
            4 => (0i32..=10_000, 0u32..=13).prop_map(|(y, m)| format!("{y:04}-{m:02}")),
            1 => text_like("[0-9]{4}-[0-9]{2}"),
        ],),
        |(text,)| {
            let Ok(month) = Month::parse(&text) else {
                return Ok(false);
            };
            prop_assert_eq!(month.to_string(), text.clone());
            let range = month.date_range();
            prop_assert!((28..=31).contains(&range.days()), "{}", range.days());
            prop_assert_eq!(range.start(), month.first_day());
            prop_assert_eq!(Month::from_str(&text), Ok(month));
            Ok(true)
        },
    );
}

#[test]
fn date_ranges_are_never_empty() {
    fuzz(
        "date_ranges_are_never_empty",
        regressions!("domain_parsers"),
        (
            date_text(),
            prop_oneof![3 => -3i64..400, 1 => any::<i64>()],
            date_text(),
        ),
        |(start, offset, other)| {
            // Usually an end a few days either side of the start.
            let end = parse_date(&start)
                .ok()
                .and_then(|d| d.checked_add_signed(chrono::Duration::try_days(offset)?))
                .map_or(other, |d| d.format("%Y-%m-%d").to_string());
            let Ok(range) = DateRange::parse(&start, &end) else {
                return Ok(false);
            };
            prop_assert!(range.start() < range.end());
            prop_assert!(range.days() > 0);
            prop_assert!(range.contains(range.start()));
            prop_assert!(!range.contains(range.end()));
            Ok(true)
        },
    );
}

#[test]
fn time_zones_are_iana_names() {
    fuzz(
        "time_zones_are_iana_names",
        regressions!("domain_parsers"),
        (prop_oneof![
            3 => prop::sample::select(chrono_tz::TZ_VARIANTS.as_slice())
                .prop_map(|tz| tz.name().to_owned()),
            2 => text_like("[A-Za-z]{1,10}/[A-Za-z_]{1,12}"),
        ],),
        |(name,)| {
            let Ok(zone) = TimeZoneName::parse(&name) else {
                return Ok(false);
            };
            prop_assert_eq!(TimeZoneName::parse(zone.name()), Ok(zone));
            // The first instant of a day is within a day of its UTC midnight, DST gaps or not.
            let date = chrono::NaiveDate::from_ymd_opt(2011, 12, 30).unwrap();
            let start = zone.start_of_day(date);
            let utc_midnight = date.and_hms_opt(0, 0, 0).unwrap().and_utc();
            prop_assert!((start - utc_midnight).num_hours().abs() <= 26);
            Ok(true)
        },
    );
}

#[test]
fn text_is_trimmed_bounded_and_printable() {
    fuzz(
        "text_is_trimmed_bounded_and_printable",
        regressions!("domain_parsers"),
        (
            text_like("[ a-zA-Z\\t\\n]{0,30}"),
            0usize..40,
            any::<bool>(),
        ),
        |(text, max, multiline)| {
            let parsed = if multiline {
                NonEmptyText::parse_multiline(&text, max)
            } else {
                NonEmptyText::parse(&text, max)
            };
            let Ok(t) = parsed else {
                return Ok(false);
            };
            prop_assert_eq!(t.as_str(), text.trim());
            prop_assert!(!t.as_str().is_empty());
            prop_assert!(t.as_str().chars().count() <= max);
            let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
            prop_assert!(!t.as_str().chars().any(|c| c.is_control() && !allowed(c)));
            Ok(true)
        },
    );
}

/// A random walk of stage moves, each from the wire value of a stage
/// (unknown values included), checked against the rule in words: one
/// step forward, one back, or CLOSED_LOST from any open stage; nothing
/// leaves a closed stage but a reopen, which restarts at IDENTIFIED.
#[test]
fn stage_moves_follow_the_transition_table() {
    fuzz(
        "stage_moves_follow_the_transition_table",
        regressions!("domain_parsers"),
        (prop::collection::vec(
            (super::enum_value(), any::<bool>()),
            1..30,
        ),),
        |(moves,)| {
            let mut at = Stage::Identified;
            for (wire, reopen) in moves {
                let Ok(Some(to)) = contracts::wire::stage("to_stage", wire) else {
                    prop_assert!(!(1..=7).contains(&wire), "{wire} is a stage");
                    continue;
                };
                if reopen {
                    match at.reopen_target() {
                        Some(target) => {
                            prop_assert!(at.is_closed());
                            at = target;
                        }
                        None => prop_assert!(at.is_open()),
                    }
                    continue;
                }
                let allowed = at.is_open()
                    && (to == Stage::ClosedLost
                        || at.next() == Some(to)
                        || at.previous() == Some(to));
                prop_assert_eq!(at.check_transition(to).is_ok(), allowed, "{} -> {}", at, to);
                if allowed {
                    at = to;
                }
                prop_assert_eq!(Stage::from_str(at.as_str()), Ok(at));
            }
            Ok(true)
        },
    );
}

/// Arbitrary bases (any i64, negative included) and shares (valid or
/// not): the allocation refuses or pays revenue credits summing to the
/// basis exactly.
#[test]
fn deal_credit_allocation_adds_up_or_refuses() {
    fuzz(
        "deal_credit_allocation_adds_up_or_refuses",
        regressions!("domain_parsers"),
        (
            prop_oneof![any::<i64>(), -1_000_000i64..1_000_000],
            percent(),
            hundred_percent_shares(),
            hundred_percent_shares(),
            prop::collection::vec(percent(), 0..3),
        ),
        |(basis, origination, originators, delivery, overlays)| {
            let named = |role: &str, shares: Vec<Percent>| -> Vec<(String, Percent)> {
                shares
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("{role}-{i}"), p))
                    .collect()
            };
            let originators = named("o", originators);
            let delivery = named("d", delivery);
            let overlays = named("x", overlays);
            let Ok(credits) =
                allocate_deal_credits(basis, origination, &originators, &delivery, &overlays)
            else {
                return Ok(false);
            };
            let revenue: i128 = credits
                .iter()
                .filter(|c| c.role() != CreditRole::Overlay)
                .map(|c| i128::from(c.minor()))
                .sum();
            prop_assert_eq!(revenue, i128::from(basis));
            prop_assert_eq!(
                credits.len(),
                originators.len() + delivery.len() + overlays.len()
            );
            Ok(true)
        },
    );
}

#[test]
fn largest_remainder_splits_exactly() {
    fuzz(
        "largest_remainder_splits_exactly",
        regressions!("domain_parsers"),
        (any::<i64>(), hundred_percent_shares()),
        |(total, shares)| {
            let Ok(parts) = largest_remainder(total, &shares) else {
                return Ok(false);
            };
            prop_assert_eq!(
                parts.iter().map(|p| i128::from(*p)).sum::<i128>(),
                i128::from(total)
            );
            prop_assert_eq!(parts.len(), shares.len());
            Ok(true)
        },
    );
}

#[test]
fn tricky_values_never_panic_any_parser() {
    fuzz(
        "tricky_values_never_panic_any_parser",
        regressions!("domain_parsers"),
        (prop::sample::select(TRICKY),),
        |(value,)| {
            let _ = Money::parse("USD", value);
            let _ = Money::parse(value, "1");
            let _ = Percent::parse(value);
            let _ = AccountId::parse(value);
            let _ = ExternalId::parse(value, value);
            let _ = parse_date(value);
            let _ = Month::parse(value);
            let _ = DateRange::parse(value, value);
            let _ = TimeZoneName::parse(value);
            let _ = NonEmptyText::parse(value, 10);
            let _ = Stage::from_str(value);
            Ok(true)
        },
    );
}
