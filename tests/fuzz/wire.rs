//! The wire conversions of `contracts`: money, dates, text, enums, page
//! sizes and tokens, and the codec's answer to bytes that are no message.

use contracts::pb::common::v1 as common;
use contracts::pb::{credit::v1 as credit, health::v1 as health, pipeline::v1 as pipeline};
use contracts::{page, wire};
use proptest::prelude::*;
use prost::Message;

use super::{assert_names_a_field, enum_value, fuzz, text_like};
use crate::regressions;

fn money() -> BoxedStrategy<Option<common::Money>> {
    prop_oneof![
        1 => Just(None),
        8 => (
            prop_oneof![
                4 => prop::sample::select(&["USD", "EUR", "JPY", "KWD"][..]).prop_map(str::to_owned),
                1 => text_like("[A-Z]{3}"),
            ],
            prop_oneof![
                2 => super::domain_parsers::decimal_of_any_scale(),
                3 => text_like("-?[0-9]{0,20}(\\.[0-9]{0,5})?"),
            ],
        )
            .prop_map(|(currency_code, amount)| Some(common::Money { currency_code, amount })),
    ]
    .boxed()
}

/// Decodes `bytes` as `M`; a failure must be what the server answers for
/// an undecodable request: INVALID_ARGUMENT, never a panic or INTERNAL.
fn decode_like_the_server<M: Message + Default>(bytes: &[u8]) -> Result<M, tonic::Status> {
    M::decode(bytes).map_err(|err| {
        let status = contracts::codec::decode_error(std::any::type_name::<M>(), &err);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        status
    })
}

#[test]
fn money_is_refused_on_its_sub_field_or_round_trips() {
    fuzz(
        "money_is_refused_on_its_sub_field_or_round_trips",
        regressions!("wire"),
        (money(),),
        |(value,)| {
            let outcome = wire::money("o.amount", value.as_ref());
            let accepted = outcome.is_ok();
            match outcome {
                Ok(m) => {
                    prop_assert_eq!(wire::money("o.amount", Some(&wire::money_to_pb(&m))), Ok(m))
                }
                Err(e) => {
                    let field = e.field().unwrap();
                    prop_assert!(
                        ["o.amount", "o.amount.currency_code", "o.amount.amount"].contains(&field),
                        "{}",
                        field
                    );
                }
            }
            let optional = wire::optional_money("m", value.as_ref());
            if let Some(v) = &value
                && v.currency_code.is_empty()
                && v.amount.is_empty()
            {
                prop_assert_eq!(optional, Ok(None));
            }
            Ok(accepted)
        },
    );
}

#[test]
fn dates_are_iso_calendar_dates() {
    fuzz(
        "dates_are_iso_calendar_dates",
        regressions!("wire"),
        (prop_oneof![
            2 => (0i32..=10_000, 0u32..=13, 0u32..=31)
                .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
            1 => text_like("[0-9]{4}-[0-9]{2}-[0-9]{2}"),
        ],),
        |(text,)| {
            let outcome = wire::optional_date("d", &text);
            let accepted = outcome.is_ok();
            match outcome {
                Ok(Some(d)) => prop_assert_eq!(wire::date_to_pb(Some(d)), text.clone()),
                Ok(None) => prop_assert!(text.is_empty()),
                Err(e) => assert_names_a_field(&e, &["d"]),
            }
            if let Err(e) = wire::date("d", &text) {
                assert_names_a_field(&e, &["d"]);
            }
            Ok(accepted)
        },
    );
}

#[test]
fn text_fields_are_bounded_and_printable() {
    fuzz(
        "text_fields_are_bounded_and_printable",
        regressions!("wire"),
        (text_like("[ -~]{0,300}"), 0usize..300),
        |(text, max)| {
            let outcome = wire::optional_text("t", &text, max);
            let accepted = outcome.is_ok();
            match outcome {
                Ok(Some(t)) => {
                    prop_assert!(t.len() <= max);
                    prop_assert!(!t.trim().is_empty());
                    prop_assert!(!t.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
                }
                Ok(None) => prop_assert!(text.is_empty()),
                Err(e) => assert_names_a_field(&e, &["t"]),
            }
            Ok(accepted)
        },
    );
}

#[test]
fn percentages_parse_or_name_the_field() {
    fuzz(
        "percentages_parse_or_name_the_field",
        regressions!("wire"),
        (text_like("-?[0-9]{0,5}(\\.[0-9]{0,8})?"),),
        |(text,)| {
            let outcome = wire::optional_percent("p", &text);
            if let Err(e) = &outcome {
                assert_names_a_field(e, &["p"]);
            }
            Ok(outcome.is_ok())
        },
    );
}

#[test]
fn enums_accept_exactly_the_declared_values() {
    fuzz(
        "enums_accept_exactly_the_declared_values",
        regressions!("wire"),
        (enum_value(),),
        |(value,)| {
            prop_assert_eq!(
                wire::segment("s", value).is_ok(),
                common::Segment::try_from(value).is_ok()
            );
            prop_assert_eq!(
                wire::motion("m", value).is_ok(),
                common::Motion::try_from(value).is_ok()
            );
            prop_assert_eq!(
                wire::stage("s", value).is_ok(),
                pipeline::Stage::try_from(value).is_ok()
            );
            let known: Result<credit::CreditRole, _> = wire::known_enum("r", value);
            prop_assert_eq!(known.is_ok(), (0..=3).contains(&value));
            if let Err(e) = wire::segment("s", value) {
                assert_names_a_field(&e, &["s"]);
            }
            Ok(common::Segment::try_from(value).is_ok())
        },
    );
}

#[test]
fn page_sizes_are_coerced_or_refused() {
    fuzz(
        "page_sizes_are_coerced_or_refused",
        regressions!("wire"),
        (any::<i32>(),),
        |(size,)| {
            let outcome = page::page_size("page_size", size);
            let accepted = outcome.is_ok();
            match outcome {
                Ok(n) => {
                    prop_assert!(size >= 0);
                    prop_assert!((1..=page::MAX_PAGE_SIZE).contains(&n));
                }
                Err(e) => {
                    prop_assert!(size < 0);
                    assert_names_a_field(&e, &["page_size"]);
                }
            }
            Ok(accepted)
        },
    );
}

#[test]
fn page_tokens_round_trip_and_reject_everything_else() {
    fuzz(
        "page_tokens_round_trip_and_reject_everything_else",
        regressions!("wire"),
        (
            any::<String>(),
            any::<u64>(),
            any::<u64>(),
            text_like("[0-9a-f]{0,64}"),
        ),
        |(key, filter, other, garbage)| {
            let token = page::encode_token(&key, filter);
            if token.len() <= 4096 {
                prop_assert_eq!(
                    page::decode_token("page_token", &token, filter),
                    Ok(Some(key.clone()))
                );
            }
            if other != filter {
                prop_assert!(page::decode_token("page_token", &token, other).is_err());
            }
            let outcome = page::decode_token("page_token", &garbage, filter);
            let accepted = outcome.is_ok();
            match outcome {
                Ok(Some(k)) => {
                    prop_assert_eq!(page::encode_token(&k, filter), garbage.to_lowercase())
                }
                Ok(None) => prop_assert!(garbage.is_empty()),
                Err(e) => assert_names_a_field(&e, &["page_token"]),
            }
            Ok(accepted)
        },
    );
}

/// Arbitrary bytes as the body of a request: decoded or refused as the
/// server would (INVALID_ARGUMENT), for a message of each service.
#[test]
fn arbitrary_bodies_decode_or_are_invalid_argument() {
    fuzz(
        "arbitrary_bodies_decode_or_are_invalid_argument",
        regressions!("wire"),
        (prop::collection::vec(any::<u8>(), 0..256),),
        |(bytes,)| {
            let decoded = decode_like_the_server::<health::RecordSignalsRequest>(&bytes).is_ok();
            let _ = decode_like_the_server::<health::UpsertScorecardRequest>(&bytes);
            let _ = decode_like_the_server::<pipeline::CreateOpportunityRequest>(&bytes);
            let _ = decode_like_the_server::<pipeline::UpdateOpportunityRequest>(&bytes);
            let _ = decode_like_the_server::<credit::RecordDealCreditsRequest>(&bytes);
            let _ = decode_like_the_server::<credit::ListLedgerEntriesRequest>(&bytes);
            Ok(decoded)
        },
    );
}
