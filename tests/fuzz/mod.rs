//! Property-based fuzzing of everything that reads untrusted input before a
//! database sees it: the domain parsers (money, percentages, ids, external
//! ids, months, date ranges, time zones, text, stage moves, split
//! arithmetic), the wire conversions of `contracts` (money, dates, text,
//! enums, page sizes and tokens, the codec), and each service's request →
//! domain conversion, fed arbitrary protobuf messages built field by field
//! and arbitrary or mutated bytes decoded with prost.
//!
//! Nothing may panic; beyond that each property checks what an accepted
//! value must satisfy (it round-trips, it is within its bounds) and that a
//! refusal is INVALID_ARGUMENT naming a field.
//!
//! `EXPANSION_FUZZ_CASES` sets the inputs per property (default 500: 17,000
//! over the 34 properties, a few seconds). `EXPANSION_FUZZ_SEED` fixes the
//! random seed to replay a run. Failures are kept in
//! `tests/fuzz/regressions/` and replayed first on every run. See
//! RELIABILITY.md for the long run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod domain_parsers;
mod requests;
mod wire;

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};

/// Inputs per property when `EXPANSION_FUZZ_CASES` is not set.
const DEFAULT_CASES: u32 = 500;

/// The proptest configuration of every property; `regressions` is the file
/// failures are kept in (a path under `tests/fuzz/regressions/`).
pub fn config(regressions: &'static str) -> Config {
    let cases = std::env::var("EXPANSION_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let rng_seed = std::env::var("EXPANSION_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(RngSeed::Random, RngSeed::Fixed);
    Config {
        cases,
        rng_seed,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        // Shrinking a failure is quick here; don't let a pathological one hang CI.
        max_shrink_iters: 10_000,
        ..Config::default()
    }
}

/// Runs one property over `config(regressions)` inputs drawn from
/// `strategy` (after replaying the kept failures). `check` answers whether
/// the input was accepted or refused; both counts are printed, so a run
/// shows the inputs reached the code past validation.
pub fn fuzz<S>(
    name: &str,
    regressions: &'static str,
    strategy: S,
    check: impl Fn(S::Value) -> Result<bool, TestCaseError>,
) where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let accepted = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let mut runner = TestRunner::new(config(regressions));
    let result = runner.run(&strategy, |value| {
        let counter = if check(value)? { &accepted } else { &refused };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    if let Err(err) = result {
        panic!("{name}: {err}");
    }
    let (accepted, refused) = (accepted.into_inner(), refused.into_inner());
    eprintln!(
        "fuzz {name}: {} inputs, {accepted} accepted, {refused} refused",
        accepted + refused
    );
}

/// Where a module keeps its failures.
#[macro_export]
macro_rules! regressions {
    ($name:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fuzz/regressions/",
            $name,
            ".txt"
        )
    };
}

/// Text that is sometimes well-formed for `shape` (a regex), sometimes
/// arbitrary Unicode, sometimes one of the values parsers get wrong.
pub fn text_like(shape: &'static str) -> BoxedStrategy<String> {
    prop_oneof![
        4 => proptest::string::string_regex(shape).expect("regex"),
        2 => any::<String>(),
        1 => "[ -~]{0,40}",
        1 => prop::sample::select(TRICKY).prop_map(str::to_owned),
    ]
    .boxed()
}

/// Values that have broken parsers elsewhere: signs, exponents, NaN,
/// whitespace, separators, full-width digits, huge numbers, control and
/// zero-width characters, lone surrogate escapes, leap days.
pub const TRICKY: &[&str] = &[
    "",
    " ",
    "0",
    "-0",
    "+1",
    "-",
    ".",
    ".5",
    "5.",
    "1e3",
    "1E-3",
    "NaN",
    "inf",
    "-inf",
    "1,000",
    "1_000",
    "１２３",
    "0x10",
    "99999999999999999999999999999999999999999",
    "-99999999999999999999999999999999999999999",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "92233720368547758.07",
    "79228162514264337593543950335",
    "0.0000001",
    "1.2.3",
    "\u{0}",
    "\u{1b}[31m",
    "\u{200b}",
    "\u{feff}1",
    "\\ud800",
    "2024-02-29",
    "2023-02-29",
    "2024-13-01",
    "0000-01-01",
    "9999-12-31",
    "10000-01-01",
    "2024-1-1",
    "2024-01",
    "2024-00",
    "+2024-01",
    "-0001-01",
    "UTC",
    "utc",
    "America/Sao_Paulo",
    "Etc/GMT+14",
    "../../etc/passwd",
    "01937a9e-5c3e-7d2a-9a51-6b3f2c1d0e4f",
    "01937A9E-5C3E-7D2A-9A51-6B3F2C1D0E4F",
    "00000000-0000-0000-0000-000000000000",
    "{01937a9e-5c3e-7d2a-9a51-6b3f2c1d0e4f}",
    "urn:uuid:01937a9e-5c3e-7d2a-9a51-6b3f2c1d0e4f",
    "01937a9e5c3e7d2a9a516b3f2c1d0e4f",
];

/// An `i32` that is often a small enum value, sometimes anything.
pub fn enum_value() -> BoxedStrategy<i32> {
    prop_oneof![4 => -2i32..20, 1 => any::<i32>()].boxed()
}

/// Checks the convention every refusal follows: INVALID_ARGUMENT naming
/// a field whose path starts with one of `roots`.
pub fn assert_names_a_field(err: &contracts::ApiError, roots: &[&str]) {
    let field = err
        .field()
        .unwrap_or_else(|| panic!("refusal without a field: {err:?}"));
    assert!(
        roots.iter().any(|r| field == *r
            || field.starts_with(&format!("{r}."))
            || field.starts_with(&format!("{r}["))),
        "field {field:?} is not under {roots:?}: {err:?}"
    );
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}
