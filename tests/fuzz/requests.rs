//! Each service's request → domain conversion, fed arbitrary messages
//! built field by field, and arbitrary mutations of valid encodings decoded
//! with prost. Each field is valid most of the time and wrong (malformed,
//! out of range, an unknown enum value, huge) some of the time, so a good
//! share of the inputs pass validation and reach the rules behind it. A
//! conversion accepts (and what it accepted keeps its invariants) or
//! refuses with INVALID_ARGUMENT on a field of the request; it never panics.

use account_health::model::AccountInput;
use account_health::model::product::ProductInput;
use account_health::model::scorecard::Scorecard;
use account_health::model::signal::batch_from_pb;
use account_health::model::subscription::{Cancellation, SubscriptionInput};
use compensation_credit::model::deal::{DealInput, allocate, credit_basis, resolve_splits};
use compensation_credit::model::inputs::{
    ApproveInput, ClawbackInput, ListInput, ResolveInput, StatementInput, open_dispute,
};
use compensation_credit::model::{PolicyInput, Terms};
use contracts::pb::common::v1 as common;
use contracts::pb::credit::v1 as credit;
use contracts::pb::health::v1 as health;
use contracts::pb::pipeline::v1 as pipeline;
use domain::{CreditRole, MAX_DEAL_MINOR, Percent, Stage};
use opportunity_pipeline::PipelineConfig;
use opportunity_pipeline::model::handoff::handoff_package;
use opportunity_pipeline::model::{NewOpportunity, UpdateRequest, etag};
use proptest::prelude::*;
use prost::Message;

use super::{assert_names_a_field, enum_value, fuzz, text_like};
use crate::regressions;

// ------------------------------------------------------------ field values

/// `valid` nine times in ten, otherwise text shaped like `noise` (or any
/// string, or one of the tricky values).
fn mostly(
    valid: impl Strategy<Value = String> + 'static,
    noise: &'static str,
) -> BoxedStrategy<String> {
    prop_oneof![9 => valid, 1 => text_like(noise)].boxed()
}

/// An enum value in `0..=max` nine times in ten, otherwise any `i32`.
fn enum_in(max: i32) -> BoxedStrategy<i32> {
    prop_oneof![9 => 0..=max, 1 => enum_value()].boxed()
}

/// A required enum value (`1..=max`) nine times in ten.
fn required_enum(max: i32) -> BoxedStrategy<i32> {
    prop_oneof![9 => 1..=max, 1 => enum_value()].boxed()
}

fn small(max: i32) -> BoxedStrategy<i32> {
    prop_oneof![9 => 0..=max, 1 => any::<i32>()].boxed()
}

fn small_i64(max: i64) -> BoxedStrategy<i64> {
    prop_oneof![9 => 0..=max, 1 => any::<i64>()].boxed()
}

fn id() -> BoxedStrategy<String> {
    prop_oneof![
        18 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        1 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).simple().to_string().to_uppercase()),
        1 => Just(String::new()),
        1 => text_like("[0-9a-f-]{0,40}"),
    ]
    .boxed()
}

fn optional_id() -> BoxedStrategy<String> {
    prop_oneof![3 => Just(String::new()), 7 => id()].boxed()
}

fn name() -> BoxedStrategy<String> {
    mostly("[A-Za-z][A-Za-z .-]{0,20}", "[ -~]{0,300}")
}

fn optional_text() -> BoxedStrategy<String> {
    prop_oneof![3 => Just(String::new()), 6 => name(), 1 => "[ -~]{250,260}"].boxed()
}

/// A non-negative decimal, sometimes negative, huge or malformed.
fn decimal() -> BoxedStrategy<String> {
    mostly(
        "[0-9]{1,4}(\\.[0-9]{1,4})?",
        "-?[0-9]{1,30}(\\.[0-9]{1,30})?",
    )
}

fn percent_text() -> BoxedStrategy<String> {
    mostly(
        "[0-9]{1,2}(\\.[0-9]{1,2})?|100",
        "-?[0-9]{1,5}(\\.[0-9]{1,8})?",
    )
}

fn date() -> BoxedStrategy<String> {
    mostly(
        (2020i32..2030, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
    )
}

fn optional_date() -> BoxedStrategy<String> {
    prop_oneof![1 => Just(String::new()), 3 => date()].boxed()
}

fn money() -> BoxedStrategy<Option<common::Money>> {
    let currency = mostly(
        prop::sample::select(&["USD", "EUR", "BRL", "JPY", "KWD"][..]).prop_map(str::to_owned),
        "[A-Za-z]{0,4}",
    );
    let amount = prop_oneof![
        16 => (1i64..10_000_000, 0u32..3)
            .prop_map(|(units, scale)| domain::Decimal::new(units, scale).to_string()),
        1 => (-1_000_000i64..=0).prop_map(|units| units.to_string()),
        1 => "[0-9]{13,20}(\\.[0-9]{1,3})?",
        2 => text_like("[ -~]{0,12}"),
    ];
    prop_oneof![
        1 => Just(None),
        19 => (currency, amount)
            .prop_map(|(currency_code, amount)| Some(common::Money { currency_code, amount })),
    ]
    .boxed()
}

fn timestamp() -> BoxedStrategy<Option<prost_types::Timestamp>> {
    prop_oneof![
        3 => Just(None),
        6 => (0i64..1_700_000_000, 0i32..1_000_000_000)
            .prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
        1 => (any::<i64>(), any::<i32>())
            .prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
    ]
    .boxed()
}

fn short_vec<T: std::fmt::Debug>(
    item: impl Strategy<Value = T>,
    max: usize,
) -> impl Strategy<Value = Vec<T>> {
    prop::collection::vec(item, 0..=max)
}

/// Applies random byte edits to a valid encoding: the message then fails to
/// decode in every way prost can fail, or decodes to something odd.
fn mutated(bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut bytes = bytes;
    for &(at, value, how) in edits {
        if bytes.is_empty() {
            bytes.push(value);
            continue;
        }
        let at = at % bytes.len();
        match how % 3 {
            0 => bytes[at] = value,
            1 => bytes.insert(at, value),
            _ => {
                bytes.remove(at);
            }
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4)
}

// ------------------------------------------------------------ health

prop_compose! {
    fn account_request()(
        request_id in prop_oneof![3 => Just(String::new()), 1 => optional_text()],
        account_id in prop_oneof![3 => Just(String::new()), 1 => id()],
        external_ref in prop::option::of((name(), mostly("[A-Za-z0-9]{1,20}", "[ -~]{0,300}"))),
        name in name(),
        segment in enum_in(3),
        customer_since in optional_date(),
        fiscal_year_start_month in small(12),
        owner_csm in optional_text(),
        parent_account_id in prop_oneof![3 => Just(String::new()), 1 => id()],
    ) -> health::UpsertAccountRequest {
        health::UpsertAccountRequest {
            request_id,
            account_id,
            external_ref: external_ref.map(|(system, id)| health::ExternalRef { system, id }),
            name,
            segment,
            customer_since,
            fiscal_year_start_month,
            owner_csm,
            parent_account_id,
        }
    }
}

prop_compose! {
    fn product_request()(
        missing in prop::bool::weighted(0.03),
        product_id in prop_oneof![3 => Just(String::new()), 1 => id()],
        name in name(),
        family in optional_text(),
        tiers in prop_oneof![19 => short_vec(name(), 4), 1 => prop::collection::vec(name(), 21..23)],
        adjacencies in short_vec((id(), required_enum(3)), 2),
        fits_segments in short_vec(required_enum(3), 2),
        wallet in short_vec((required_enum(3), money()), 1),
        margin_percent in prop_oneof![1 => Just(String::new()), 3 => percent_text()],
    ) -> health::UpsertProductRequest {
        health::UpsertProductRequest {
            request_id: String::new(),
            product: (!missing).then(|| health::Product {
                product_id,
                name,
                family,
                tiers,
                adjacencies: adjacencies
                    .into_iter()
                    .map(|(product_id, adjacency)| health::ProductAdjacency { product_id, adjacency })
                    .collect(),
                fits_segments,
                wallet_estimates: wallet
                    .into_iter()
                    .map(|(segment, annual_wallet)| health::SegmentWallet { segment, annual_wallet })
                    .collect(),
                margin_percent,
                audit: None,
            }),
        }
    }
}

prop_compose! {
    fn subscription_request()(
        ids in (
            prop_oneof![3 => Just(String::new()), 1 => id()],
            id(),
            id(),
            prop_oneof![3 => Just(String::new()), 1 => id()],
        ),
        tier in optional_text(),
        mrr in money(),
        dates in (
            date(),
            prop_oneof![3 => Just(String::new()), 1 => date()],
            prop_oneof![3 => Just(String::new()), 1 => date()],
        ),
        quantity in small_i64(100),
        quota_limit in small_i64(1000),
        status in enum_in(2),
    ) -> health::UpsertSubscriptionRequest {
        let (subscription_id, account_id, product_id, source_opportunity_id) = ids;
        let (start_date, end_date, mrr_effective_date) = dates;
        health::UpsertSubscriptionRequest {
            request_id: String::new(),
            subscription: Some(health::Subscription {
                subscription_id,
                account_id,
                product_id,
                tier,
                mrr,
                start_date,
                end_date,
                quantity,
                quota_limit,
                status,
                source_opportunity_id,
                ..Default::default()
            }),
            mrr_effective_date,
            time_zone: String::new(),
        }
    }
}

prop_compose! {
    fn signal()(
        account_id in id(),
        product_id in optional_id(),
        kind in required_enum(15),
        value in prop_oneof![1 => Just(String::new()), 2 => "[0-9]|10", 3 => decimal()],
        limit in prop_oneof![1 => Just(String::new()), 3 => decimal()],
        occur_time in timestamp(),
        source in optional_text(),
        external_id in optional_text(),
        detail in prop_oneof![9 => optional_text(), 1 => "[a-z]{2040,2060}"],
    ) -> health::Signal {
        health::Signal { account_id, product_id, kind, value, limit, occur_time, source, external_id, detail }
    }
}

fn threshold() -> impl Strategy<Value = health::Threshold> {
    (decimal(), small(100)).prop_map(|(min_value, score)| health::Threshold { min_value, score })
}

fn measure() -> impl Strategy<Value = health::Measure> {
    (
        name(),
        required_enum(15),
        required_enum(5),
        prop_oneof![9 => 1i32..=730, 1 => any::<i32>()],
        decimal(),
        prop_oneof![19 => prop::collection::vec(threshold(), 1..4), 1 => Just(Vec::new())],
    )
        .prop_map(
            |(name, signal_kind, aggregation, window_days, weight, thresholds)| health::Measure {
                name,
                group: "g".into(),
                signal_kind,
                aggregation,
                window_days,
                weight,
                thresholds,
            },
        )
}

/// Bands rising strictly to 100, or (rarely) anything.
fn bands() -> impl Strategy<Value = Vec<health::BandBound>> {
    prop_oneof![
        6 => Just(Vec::new()),
        3 => (0i32..99).prop_map(|red| vec![
            health::BandBound { band: common::HealthBand::Red as i32, upper: red },
            health::BandBound { band: common::HealthBand::Green as i32, upper: 100 },
        ]),
        1 => short_vec((enum_value(), small(110)), 4).prop_map(|list| {
            list.into_iter().map(|(band, upper)| health::BandBound { band, upper }).collect()
        }),
    ]
}

prop_compose! {
    fn scorecard()(
        name in name(),
        measures in prop_oneof![19 => prop::collection::vec(measure(), 1..4), 1 => Just(Vec::new())],
        missing_data_policy in enum_in(2),
        bands in bands(),
    ) -> health::Scorecard {
        health::Scorecard { name, measures, missing_data_policy, bands, ..Default::default() }
    }
}

// ------------------------------------------------------------ pipeline

fn stakeholder() -> impl Strategy<Value = pipeline::Stakeholder> {
    (
        name(),
        optional_text(),
        name(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(name, title, role, budget_holder, decision_maker)| pipeline::Stakeholder {
                name,
                title,
                role,
                budget_holder,
                decision_maker,
                email: String::new(),
            },
        )
}

fn stakeholders() -> impl Strategy<Value = Vec<pipeline::Stakeholder>> {
    prop_oneof![
        19 => short_vec(stakeholder(), 3),
        1 => stakeholder().prop_map(|s| vec![s; 101]),
    ]
}

prop_compose! {
    fn qualification()(
        flags in (any::<bool>(), any::<bool>()),
        budget_status in enum_in(4),
        relationship_strength in small(10),
        ratings in (enum_in(3), enum_in(3), enum_in(3), enum_in(3)),
    ) -> pipeline::Qualification {
        pipeline::Qualification {
            need_confirmed: flags.0,
            budget_status,
            decision_process_known: flags.1,
            relationship_strength,
            fit: ratings.0,
            applicability: ratings.1,
            capability: ratings.2,
            competitive_position: ratings.3,
        }
    }
}

prop_compose! {
    fn opportunity()(
        ids in (id(), id(), id(), prop_oneof![3 => Just(String::new()), 1 => id()]),
        enums in (required_enum(6), enum_in(1), enum_in(5), enum_in(3)),
        amount in money(),
        probability in prop_oneof![2 => Just(String::new()), 1 => percent_text()],
        close_date in optional_date(),
        source in prop_oneof![3 => Just(None), 1 => (enum_in(3), optional_id()).prop_map(Some)],
        people in (optional_text(), optional_text(), optional_text(), optional_text()),
        stakeholders in stakeholders(),
        discovery_notes in prop_oneof![19 => optional_text(), 1 => "[a-z]{16380,16390}"],
        qualification in prop::option::of(qualification()),
        etag in mostly("[1-9][0-9]{0,3}", "-?[0-9]{1,20}"),
    ) -> pipeline::Opportunity {
        let (opportunity_id, account_id, product_id, source_product_id) = ids;
        let (owner, owner_team, originator, name) = people;
        let (motion, stage, forecast_category, strategic_value) = enums;
        pipeline::Opportunity {
            opportunity_id,
            account_id,
            product_id,
            source_product_id,
            motion,
            amount,
            stage,
            probability,
            forecast_category,
            close_date,
            source: source.map(|(kind, trigger_id)| pipeline::Source { kind, trigger_id }),
            owner,
            owner_team,
            originator,
            stakeholders,
            discovery_notes,
            qualification,
            strategic_value,
            etag,
            name,
            ..Default::default()
        }
    }
}

fn update_mask() -> impl Strategy<Value = Vec<String>> {
    short_vec(
        prop_oneof![
            9 => prop::sample::select(opportunity_pipeline::model::UPDATABLE_FIELDS)
                .prop_map(str::to_owned),
            1 => text_like("[a-z_.]{0,20}"),
        ],
        3,
    )
}

prop_compose! {
    fn package()(
        texts in (name(), name(), name(), name()),
        pain_points in prop_oneof![9 => prop::collection::vec(name(), 1..3), 1 => Just(Vec::new())],
        stakeholders in prop_oneof![9 => prop::collection::vec(stakeholder(), 1..3), 1 => Just(Vec::new())],
        budget_status in enum_in(4),
        joint_call_time in timestamp(),
    ) -> pipeline::HandoffPackage {
        let (discovery_summary, decision_process, timing, competitive_landscape) = texts;
        pipeline::HandoffPackage {
            discovery_summary,
            pain_points,
            stakeholders,
            decision_process,
            budget_status,
            timing,
            competitive_landscape,
            joint_call_time,
        }
    }
}

// ------------------------------------------------------------ credit

prop_compose! {
    fn policy_request()(
        policy_id in prop_oneof![3 => Just(String::new()), 1 => mostly("[a-z0-9_-]{1,64}", "[ -~]{0,70}")],
        effective_date in optional_date(),
        origination_percent in prop_oneof![1 => Just(String::new()), 3 => percent_text()],
        delivery_percent in prop_oneof![9 => Just(String::new()), 1 => percent_text()],
        overlays in short_vec((name(), prop_oneof![9 => "[0-9]{1,2}", 1 => percent_text()]), 2),
        basis in enum_in(2),
        hold_days in small(3650),
        clawback_window_days in small(3650),
        clawback_mode in enum_in(2),
    ) -> credit::UpsertCreditPolicyRequest {
        credit::UpsertCreditPolicyRequest {
            request_id: String::new(),
            policy: Some(credit::CreditPolicy {
                policy_id,
                version: 0,
                effective_date,
                origination_percent,
                delivery_percent,
                overlays: overlays
                    .into_iter()
                    .map(|(name, percent)| credit::OverlayRule { name, percent })
                    .collect(),
                basis,
                hold_days,
                clawback_window_days,
                clawback_mode,
                audit: None,
            }),
        }
    }
}

/// Sub-splits of one revenue role that total 100%, and some that do not.
const GOOD_SPLITS: &[&[&str]] = &[
    &[""],
    &["100"],
    &["50", "50"],
    &["25", "75"],
    &["33.333333", "33.333333", "33.333334"],
    &["100", "0"],
];
const BAD_SPLITS: &[&[&str]] = &[&["50"], &["50", "40"], &["", ""], &["60", "60"]];

fn sub_splits() -> BoxedStrategy<Vec<&'static str>> {
    prop_oneof![
        4 => prop::sample::select(GOOD_SPLITS).prop_map(<[&str]>::to_vec),
        1 => prop::sample::select(BAD_SPLITS).prop_map(<[&str]>::to_vec),
    ]
    .boxed()
}

fn participants() -> impl Strategy<Value = Vec<credit::Participant>> {
    let split_set = (
        sub_splits(),
        sub_splits(),
        prop_oneof![3 => Just(None), 1 => prop::option::of(prop_oneof![
            3 => Just(String::new()), 1 => "[0-9]{1,3}",
        ])],
        prop::option::of(0usize..3),
        // Rarely: one field of one participant replaced by noise.
        prop_oneof![9 => Just(None), 1 => (0usize..4, 0u8..4, text_like("[ -~]{0,130}"), enum_value()).prop_map(Some)],
    )
        .prop_map(|(originators, delivery, overlay, owner, noise)| {
            let mut list = Vec::new();
            let people = ["carla", "ana", "bia"];
            for (i, p) in originators.iter().enumerate() {
                list.push(credit::Participant { participant_id: people[i].into(), role: 1, percent: (*p).into(), ..Default::default() });
            }
            let people = ["alex", "sam", "kim"];
            for (i, p) in delivery.iter().enumerate() {
                list.push(credit::Participant { participant_id: people[i].into(), role: 2, percent: (*p).into(), ..Default::default() });
            }
            if let Some(percent) = overlay {
                list.push(credit::Participant { participant_id: "se".into(), role: 3, percent, ..Default::default() });
            }
            if let Some(i) = owner.filter(|i| *i < list.len()) {
                list[i].owner = true;
            }
            let count = list.len().max(1);
            if let Some((i, field, text, number)) = noise
                && let Some(p) = list.get_mut(i % count)
            {
                match field {
                    0 => p.participant_id = text,
                    1 => p.percent = text,
                    2 => p.role = number,
                    _ => p.overlay_rule = text,
                }
            }
            list
        });
    prop_oneof![
        30 => split_set,
        1 => Just(Vec::new()),
        1 => Just(vec![credit::Participant { participant_id: "p".into(), role: 2, ..Default::default() }; 65]),
    ]
}

prop_compose! {
    fn deal_request()(
        deal_id in id(),
        ids in (optional_id(), optional_id(), optional_id()),
        amount in money(),
        margin_percent in prop_oneof![3 => Just(String::new()), 1 => percent_text()],
        close_date in date(),
        policy_id in prop_oneof![9 => Just(String::new()), 1 => text_like("[a-z]{1,8}")],
        participants in participants(),
        cs_led_without_handoff in prop::bool::weighted(0.1),
    ) -> credit::RecordDealCreditsRequest {
        let (account_id, product_id, subscription_id) = ids;
        credit::RecordDealCreditsRequest {
            request_id: String::new(),
            deal_id,
            account_id,
            product_id,
            amount,
            margin_percent,
            close_date,
            policy_id,
            participants,
            cs_led_without_handoff,
            subscription_id,
            account_name: String::new(),
            product_name: String::new(),
        }
    }
}

/// The terms a validated policy request would be stored with.
fn terms_of(p: &PolicyInput) -> Terms {
    Terms {
        policy_id: p.policy_id.clone(),
        version: 1,
        origination: p.origination,
        overlays: p.overlays.clone(),
        basis: p.basis,
        hold_days: p.hold_days,
        clawback_window_days: p.clawback_window_days,
        clawback_mode: p.clawback_mode,
    }
}

fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
}

/// Everything RecordDealCredits computes before it writes, for a deal
/// under a policy: a refusal names a field of the request; an allocation
/// pays revenue credits summing to the basis exactly.
fn record_deal(
    policy: &credit::UpsertCreditPolicyRequest,
    deal: &credit::RecordDealCreditsRequest,
) -> bool {
    let Ok(policy) = PolicyInput::from_request(policy, today()) else {
        return false;
    };
    let terms = terms_of(&policy);
    let input = match DealInput::from_request(deal) {
        Ok(input) => input,
        Err(e) => {
            assert_names_a_field(
                &e,
                &[
                    "deal_id",
                    "account_id",
                    "product_id",
                    "subscription_id",
                    "amount",
                    "margin_percent",
                    "close_date",
                    "policy_id",
                    "participants",
                ],
            );
            return false;
        }
    };
    assert!(input.amount.is_positive() && input.amount.minor() <= MAX_DEAL_MINOR);
    let resolved = match resolve_splits("participants", &input.splits, &terms) {
        Ok(resolved) => resolved,
        Err(e) => {
            assert_names_a_field(&e, &["participants"]);
            return false;
        }
    };
    let basis = match credit_basis(input.amount, input.margin, &terms) {
        Ok(basis) => basis,
        Err(e) => {
            assert_names_a_field(&e, &["margin_percent"]);
            return false;
        }
    };
    assert!((0..=input.amount.minor()).contains(&basis));
    let credits = match allocate(
        "participants",
        basis,
        terms.origination,
        &resolved,
        input.cs_led_without_handoff,
    ) {
        Ok(credits) => credits,
        Err(e) => {
            assert_names_a_field(&e, &["participants"]);
            return false;
        }
    };
    let revenue: i128 = credits
        .iter()
        .filter(|c| c.role != CreditRole::Overlay)
        .map(|c| i128::from(c.minor))
        .sum();
    assert_eq!(revenue, i128::from(basis), "{credits:?}");
    let overlay: i128 = credits
        .iter()
        .filter(|c| c.role == CreditRole::Overlay)
        .map(|c| i128::from(c.minor))
        .sum();
    assert!(overlay <= 10 * i128::from(basis) + 1, "{credits:?}");
    assert!(credits.iter().all(|c| c.minor >= 0), "{credits:?}");
    true
}

// ------------------------------------------------------------ properties

#[test]
fn health_accounts() {
    fuzz(
        "health_accounts",
        regressions!("requests"),
        (account_request(),),
        |(req,)| {
            let outcome = AccountInput::from_request(&req, today());
            let accepted = outcome.is_ok();
            match outcome {
                Ok(input) => {
                    prop_assert!((1..=12).contains(&input.fiscal_year_start_month));
                    prop_assert!(!input.name.trim().is_empty() && input.name.len() <= 256);
                }
                Err(e) => assert_names_a_field(
                    &e,
                    &[
                        "account_id",
                        "external_ref",
                        "name",
                        "segment",
                        "customer_since",
                        "fiscal_year_start_month",
                        "owner_csm",
                        "parent_account_id",
                    ],
                ),
            }
            Ok(accepted)
        },
    );
}

#[test]
fn health_products() {
    fuzz(
        "health_products",
        regressions!("requests"),
        (product_request(),),
        |(req,)| {
            let outcome = ProductInput::from_request(&req);
            let accepted = outcome.is_ok();
            match outcome {
                Ok(input) => {
                    prop_assert!(input.tiers.len() <= 20);
                    if let Some(m) = input.margin {
                        prop_assert!(!m.is_negative() && m <= Percent::ONE_HUNDRED);
                    }
                }
                Err(e) => assert_names_a_field(&e, &["product"]),
            }
            Ok(accepted)
        },
    );
}

#[test]
fn health_subscriptions() {
    fuzz(
        "health_subscriptions",
        regressions!("requests"),
        (
            subscription_request(),
            (optional_id(), optional_date(), optional_text()),
        ),
        |(req, cancel)| {
            let outcome = SubscriptionInput::from_request(&req, chrono::Utc::now());
            let accepted = outcome.is_ok();
            match outcome {
                Ok(input) => {
                    prop_assert!(!input.mrr.is_negative());
                    prop_assert!(input.quantity >= 0 && input.quota_limit >= 0);
                    prop_assert!(input.end_date.is_none_or(|end| end >= input.start_date));
                }
                Err(e) => assert_names_a_field(&e, &["subscription", "mrr_effective_date"]),
            }
            let cancel = health::CancelSubscriptionRequest {
                request_id: String::new(),
                subscription_id: cancel.0,
                cancel_date: cancel.1,
                reason: cancel.2,
                time_zone: String::new(),
            };
            if let Err(e) = Cancellation::from_request(&cancel, chrono::Utc::now()) {
                assert_names_a_field(&e, &["subscription_id", "cancel_date", "reason"]);
            }
            Ok(accepted)
        },
    );
}

#[test]
fn health_signal_batches() {
    fuzz(
        "health_signal_batches",
        regressions!("requests"),
        (short_vec(signal(), 6),),
        |(signals,)| {
            let now = chrono::Utc::now();
            let outcome = batch_from_pb("signals", &signals, now);
            let accepted = outcome.is_ok();
            match outcome {
                Ok(batch) => {
                    prop_assert_eq!(batch.len(), signals.len());
                    for s in batch {
                        prop_assert!(s.value_e4 >= 0);
                        prop_assert!(s.limit_e4.is_none_or(|l| l > 0));
                        prop_assert!(s.occurred_at <= now + chrono::Duration::minutes(5));
                        prop_assert!(!s.source.is_empty());
                    }
                }
                Err(e) => assert_names_a_field(&e, &["signals"]),
            }
            Ok(accepted)
        },
    );
}

#[test]
fn health_scorecards() {
    fuzz(
        "health_scorecards",
        regressions!("requests"),
        (scorecard(),),
        |(card,)| {
            let outcome = Scorecard::from_pb("scorecard", &card);
            let accepted = outcome.is_ok();
            match outcome {
                Ok(parsed) => prop_assert!(!parsed.measures.is_empty()),
                Err(e) => assert_names_a_field(&e, &["scorecard"]),
            }
            Ok(accepted)
        },
    );
}

#[test]
fn pipeline_new_opportunities() {
    fuzz(
        "pipeline_new_opportunities",
        regressions!("requests"),
        (prop::option::of(opportunity()),),
        |(o,)| {
            let req = pipeline::CreateOpportunityRequest {
                occur_time: None,
                request_id: String::new(),
                opportunity: o,
            };
            let outcome = NewOpportunity::from_request(&req, &PipelineConfig::default());
            let accepted = outcome.is_ok();
            match outcome {
                Ok(new) => {
                    prop_assert_eq!(new.stage, Stage::Identified);
                    prop_assert!(new.amount.is_positive() && new.amount.minor() <= MAX_DEAL_MINOR);
                    prop_assert!(
                        !new.probability.is_negative() && new.probability <= Percent::ONE_HUNDRED
                    );
                    prop_assert!(
                        new.stakeholders.len() <= opportunity_pipeline::model::MAX_STAKEHOLDERS
                    );
                }
                Err(e) => assert_names_a_field(&e, &["opportunity"]),
            }
            Ok(accepted)
        },
    );
}

#[test]
fn pipeline_updates() {
    fuzz(
        "pipeline_updates",
        regressions!("requests"),
        (prop::option::of(opportunity()), update_mask()),
        |(o, mask)| {
            let req = pipeline::UpdateOpportunityRequest {
                request_id: String::new(),
                opportunity: o,
                update_mask: mask,
            };
            let outcome = UpdateRequest::from_request(&req);
            let accepted = outcome.is_ok();
            match outcome {
                Ok(update) => {
                    prop_assert!(update.etag > 0);
                    if let Some(amount) = update.patch.amount {
                        prop_assert!(amount.is_positive() && amount.minor() <= MAX_DEAL_MINOR);
                    }
                }
                Err(e) => assert_names_a_field(&e, &["opportunity", "update_mask"]),
            }
            Ok(accepted)
        },
    );
}

#[test]
fn pipeline_handoff_packages() {
    fuzz(
        "pipeline_handoff_packages",
        regressions!("requests"),
        (prop::option::of(package()), text_like("-?[0-9]{1,20}")),
        |(p, tag)| {
            if let Err(e) = handoff_package("package", p.as_ref()) {
                assert_names_a_field(&e, &["package"]);
            }
            let outcome = etag("etag", &tag);
            let accepted = outcome.is_ok();
            match outcome {
                Ok(v) => prop_assert!(v > 0),
                Err(e) => assert_names_a_field(&e, &["etag"]),
            }
            Ok(accepted)
        },
    );
}

#[test]
fn credit_policies_total_one_hundred() {
    fuzz(
        "credit_policies_total_one_hundred",
        regressions!("requests"),
        (policy_request(),),
        |(req,)| {
            let outcome = PolicyInput::from_request(&req, today());
            let accepted = outcome.is_ok();
            match outcome {
                Ok(p) => {
                    prop_assert_eq!(
                        p.origination.checked_add(p.delivery),
                        Some(Percent::ONE_HUNDRED)
                    );
                    prop_assert!(!p.origination.is_negative() && !p.delivery.is_negative());
                    let overlays =
                        Percent::checked_sum(p.overlays.iter().map(|(_, x)| *x)).unwrap();
                    prop_assert!(overlays <= Percent::from_whole(1000));
                    prop_assert!(!p.overlays.is_empty());
                }
                Err(e) => assert_names_a_field(&e, &["policy"]),
            }
            Ok(accepted)
        },
    );
}

#[test]
fn credit_deals_allocate_exactly() {
    fuzz(
        "credit_deals_allocate_exactly",
        regressions!("requests"),
        (policy_request(), deal_request()),
        |(policy, deal)| Ok(record_deal(&policy, &deal)),
    );
}

#[test]
fn credit_ledger_requests() {
    fuzz(
        "credit_ledger_requests",
        regressions!("requests"),
        (
            short_vec(id(), 3),
            optional_id(),
            optional_id(),
            (
                optional_text(),
                optional_text(),
                optional_date(),
                optional_date(),
            ),
            (enum_in(3), enum_in(3), enum_in(2)),
            (timestamp(), timestamp()),
            (
                small(2000),
                prop_oneof![9 => Just(String::new()), 1 => text_like("[0-9a-f]{0,40}")],
            ),
            money(),
        ),
        |(entry_ids, deal, subscription, texts, enums, times, page, adjustment)| {
            let (note, who, date_a, date_b) = texts;
            let approve = credit::ApproveCreditsRequest {
                request_id: String::new(),
                entry_ids: entry_ids.clone(),
                deal_id: deal.clone(),
                note: note.clone(),
            };
            if let Err(e) = ApproveInput::from_request(&approve) {
                assert_names_a_field(&e, &["entry_ids", "deal_id", "note"]);
            }
            let clawback = credit::ApplyClawbackRequest {
                request_id: String::new(),
                deal_id: deal.clone(),
                subscription_id: subscription,
                cancel_date: date_a.clone(),
                reason: note.clone(),
            };
            if let Err(e) = ClawbackInput::from_request(&clawback) {
                assert_names_a_field(&e, &["deal_id", "subscription_id", "cancel_date", "reason"]);
            }
            let list = credit::ListLedgerEntriesRequest {
                page_size: page.0,
                page_token: page.1.clone(),
                participant_id: who.clone(),
                deal_id: deal.clone(),
                kind: enums.0,
                role: enums.1,
                start_time: times.0,
                end_time: times.1,
            };
            let outcome = ListInput::from_request(&list);
            let accepted = outcome.is_ok();
            match outcome {
                Ok(input) => {
                    prop_assert!((1..=1000).contains(&input.page_size));
                    if let (Some(s), Some(e)) = (input.start, input.end) {
                        prop_assert!(s <= e);
                    }
                }
                Err(e) => assert_names_a_field(
                    &e,
                    &[
                        "page_size",
                        "page_token",
                        "participant_id",
                        "deal_id",
                        "kind",
                        "role",
                        "start_time",
                        "end_time",
                    ],
                ),
            }
            let dispute = credit::OpenDisputeRequest {
                request_id: String::new(),
                entry_id: entry_ids.first().cloned().unwrap_or_default(),
                reason: note.clone(),
            };
            if let Err(e) = open_dispute(&dispute) {
                assert_names_a_field(&e, &["entry_id", "reason"]);
            }
            let resolve = credit::ResolveDisputeRequest {
                request_id: String::new(),
                dispute_id: deal.clone(),
                resolution: enums.2,
                adjustment,
                note: note.clone(),
            };
            let outcome = ResolveInput::from_request(&resolve);

            match outcome {
                Ok(r) => {
                    if let Some(m) = r.adjustment {
                        prop_assert!(
                            !m.is_zero()
                                && m.minor().unsigned_abs() <= MAX_DEAL_MINOR.unsigned_abs()
                        );
                    }
                }
                Err(e) => {
                    assert_names_a_field(&e, &["dispute_id", "resolution", "adjustment", "note"])
                }
            }
            let statement = credit::GetStatementRequest {
                participant_id: who,
                team: note,
                start_date: date_a,
                end_date: date_b,
                page_size: page.0,
                page_token: page.1,
            };
            let outcome = StatementInput::from_request(&statement);

            match outcome {
                Ok(s) => prop_assert!(s.start < s.end),
                Err(e) => assert_names_a_field(
                    &e,
                    &[
                        "participant_id",
                        "team",
                        "start_date",
                        "end_date",
                        "page_size",
                        "page_token",
                    ],
                ),
            }
            Ok(accepted)
        },
    );
}

/// Valid encodings with random byte edits: whatever prost decodes goes
/// through the same conversions.
#[test]
fn mutated_bodies_are_converted_or_refused() {
    fuzz(
        "mutated_bodies_are_converted_or_refused",
        regressions!("requests"),
        (
            short_vec(signal(), 3),
            opportunity(),
            deal_request(),
            edits(),
        ),
        |(signals, o, deal, edits)| {
            let body = health::RecordSignalsRequest {
                request_id: String::new(),
                signals,
            }
            .encode_to_vec();
            let decoded = health::RecordSignalsRequest::decode(mutated(body, &edits).as_slice());
            let accepted = decoded.is_ok();
            if let Ok(req) = decoded
                && let Err(e) = batch_from_pb("signals", &req.signals, chrono::Utc::now())
            {
                assert_names_a_field(&e, &["signals"]);
            }
            let body = pipeline::CreateOpportunityRequest {
                occur_time: None,
                request_id: String::new(),
                opportunity: Some(o),
            }
            .encode_to_vec();
            if let Ok(req) =
                pipeline::CreateOpportunityRequest::decode(mutated(body, &edits).as_slice())
                && let Err(e) = NewOpportunity::from_request(&req, &PipelineConfig::default())
            {
                assert_names_a_field(&e, &["opportunity"]);
            }
            let body = deal.encode_to_vec();
            if let Ok(req) =
                credit::RecordDealCreditsRequest::decode(mutated(body, &edits).as_slice())
            {
                record_deal(
                    &credit::UpsertCreditPolicyRequest {
                        request_id: String::new(),
                        policy: Some(Default::default()),
                    },
                    &req,
                );
            }
            Ok(accepted)
        },
    );
}
