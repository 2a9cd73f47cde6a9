//! The MRR bridge through the API, as a RevOps user checks it: random books of
//! subscriptions — amendments on month edges, several on one day, backdated
//! corrections, same-day start and cancel, cancellations after amendments, two
//! currencies — are written through `UpsertSubscription` / `CancelSubscription`,
//! then every month of the year, the year itself and a custom range split in two
//! must tie (closing = opening + new + cross-sell + upsell − contraction −
//! churned), and every flow of a range must be the sum of its parts.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use contracts::pb::common::v1::{Money, Segment};
use contracts::pb::health::v1 as pb;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use tonic::transport::Channel;

use crate::harness::{Backend, Server};
use crate::on_both_databases;

on_both_databases!(random_books_tie_out_month_by_month);

type Client = AccountHealthServiceClient<Channel>;

/// A small deterministic generator (xorshift64*): the books differ by seed,
/// and a failure names the seed that made it.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A day of 2026, most often on or beside a month's edge.
    fn day(&mut self) -> NaiveDate {
        let first =
            NaiveDate::from_ymd_opt(2026, 1 + u32::try_from(self.below(12)).unwrap(), 1).unwrap();
        match self.below(4) {
            0 => first,
            1 => first.pred_opt().unwrap().max(date("2026-01-01")),
            2 => first + Duration::days(i64::try_from(self.below(28)).unwrap()),
            _ => (first + Duration::days(31))
                .with_day(1)
                .unwrap()
                .pred_opt()
                .unwrap(),
        }
    }

    fn amount(&mut self) -> String {
        format!("{}.{:02}", 50 + self.below(5000), self.below(100))
    }
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn money(currency: &str, amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: currency.into(),
        amount: amount.into(),
    })
}

/// What a book holds, as its writer knows it: each subscription's currency,
/// start, cancellation and MRR by effective date (the last written wins).
struct Written {
    currency: &'static str,
    start: NaiveDate,
    cancel: Option<NaiveDate>,
    mrr: BTreeMap<NaiveDate, i64>,
}

impl Written {
    /// The MRR in force at the close of `day`, by the writer's own reckoning.
    fn mrr_on(&self, day: NaiveDate) -> i64 {
        let active = self.start <= day && self.cancel.is_none_or(|cancel| cancel > day);
        let latest = self.mrr.range(..=day).next_back();
        latest.filter(|_| active).map_or(0, |(_, mrr)| *mrr)
    }
}

/// Σ MRR in force at the close of `day`, per currency.
fn mrr_on(book: &[Written], day: NaiveDate) -> BTreeMap<String, i64> {
    let mut total: BTreeMap<String, i64> = BTreeMap::new();
    for written in book {
        *total.entry(written.currency.to_owned()).or_default() += written.mrr_on(day);
    }
    total
}

async fn write_book(c: &mut Client, seed: u64) -> Vec<Written> {
    let mut book = Vec::new();
    let mut dice = Dice(seed);
    let mut products = Vec::new();
    for name in ["Core", "Insights", "Payments"] {
        let product = c
            .upsert_product(pb::UpsertProductRequest {
                product: Some(pb::Product {
                    name: format!("{name} {seed}"),
                    family: format!("family-{seed}"),
                    fits_segments: vec![Segment::MidMarket as i32],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        products.push(product.product_id);
    }
    let mut accounts = Vec::new();
    for i in 0..4 {
        // Registered from mid-2025 to mid-2026: some before their first contract's
        // month, some in it.
        let since = date("2025-07-01") + Duration::days(i64::try_from(dice.below(330)).unwrap());
        let account = c
            .upsert_account(pb::UpsertAccountRequest {
                external_ref: Some(pb::ExternalRef {
                    system: "hubspot".into(),
                    id: format!("book-{seed}-{i}"),
                }),
                name: format!("Book {seed} account {i}"),
                segment: Segment::MidMarket as i32,
                customer_since: since.to_string(),
                owner_csm: "carla.csm".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .account
            .unwrap();
        accounts.push(account.account_id);
    }
    for _ in 0..10 {
        let account = &accounts[usize::try_from(dice.below(4)).unwrap()];
        let product = &products[usize::try_from(dice.below(3)).unwrap()];
        let currency = if dice.chance(70) { "USD" } else { "BRL" };
        let start = dice.day();
        let mut subscription = pb::Subscription {
            account_id: account.clone(),
            product_id: product.clone(),
            tier: "STARTER".into(),
            mrr: money(currency, &dice.amount()),
            start_date: start.to_string(),
            ..Default::default()
        };
        let mut written = Written {
            currency,
            start,
            cancel: None,
            mrr: BTreeMap::from([(start, minor(subscription.mrr.as_ref()))]),
        };
        let created = c
            .upsert_subscription(pb::UpsertSubscriptionRequest {
                subscription: Some(subscription.clone()),
                mrr_effective_date: start.to_string(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .subscription
            .unwrap();
        subscription.subscription_id = created.subscription_id.clone();
        let mut last = start;
        for _ in 0..dice.below(4) {
            // Forward amendments, sometimes a second one on the same day, sometimes a
            // correction backdated before the last one.
            let effective = match dice.below(3) {
                0 => last,
                1 => (start + (last - start) / 2).max(start),
                _ => dice.day().max(start),
            };
            last = last.max(effective);
            subscription.mrr = money(currency, &dice.amount());
            written
                .mrr
                .insert(effective, minor(subscription.mrr.as_ref()));
            c.upsert_subscription(pb::UpsertSubscriptionRequest {
                subscription: Some(subscription.clone()),
                mrr_effective_date: effective.to_string(),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        if dice.chance(40) {
            let cancel = if dice.chance(20) {
                start
            } else {
                dice.day().max(start)
            };
            c.cancel_subscription(pb::CancelSubscriptionRequest {
                subscription_id: created.subscription_id,
                cancel_date: cancel.to_string(),
                reason: "churned".into(),
                ..Default::default()
            })
            .await
            .unwrap();
            written.cancel = Some(cancel);
        }
        book.push(written);
    }
    book
}

fn minor(money: Option<&Money>) -> i64 {
    let amount = &money.expect("a figure").amount;
    let (whole, cents) = amount.split_once('.').unwrap_or((amount, "00"));
    whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

/// `[new, cross-sell, upsell, contraction, churned]` and `(opening, closing)` per currency.
type Figures = BTreeMap<String, ([i64; 5], (i64, i64))>;

async fn figures(c: &mut Client, start: NaiveDate, end: NaiveDate) -> Figures {
    let reply = c
        .get_revenue_metrics(pb::GetRevenueMetricsRequest {
            start_date: start.to_string(),
            end_date: end.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    reply
        .currencies
        .iter()
        .map(|m| {
            #[allow(deprecated)]
            let (starting, ending) = (minor(m.starting_mrr.as_ref()), minor(m.ending_mrr.as_ref()));
            let (opening, closing) = (minor(m.opening_mrr.as_ref()), minor(m.closing_mrr.as_ref()));
            assert_eq!(
                (starting, ending),
                (opening, closing),
                "v1 fields keep the values"
            );
            let flows = [
                minor(m.new_mrr.as_ref()),
                minor(m.cross_sell_mrr.as_ref()),
                minor(m.upsell_mrr.as_ref()),
                minor(m.contraction_mrr.as_ref()),
                minor(m.churned_mrr.as_ref()),
            ];
            let [new, cross_sell, upsell, contraction, churned] = flows;
            assert_eq!(
                closing,
                opening + new + cross_sell + upsell - contraction - churned,
                "{} [{start}, {end}) does not tie: {m:?}",
                m.currency_code
            );
            (m.currency_code.clone(), (flows, (opening, closing)))
        })
        .collect()
}

fn sum(parts: &[&Figures]) -> BTreeMap<String, [i64; 5]> {
    let mut total: BTreeMap<String, [i64; 5]> = BTreeMap::new();
    for part in parts {
        for (code, (flows, _)) in *part {
            let entry = total.entry(code.clone()).or_default();
            for (t, f) in entry.iter_mut().zip(flows) {
                *t += f;
            }
        }
    }
    total
}

async fn random_books_tie_out_month_by_month(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = server.health().await;
    let mut book = Vec::new();
    for seed in [0x5eed_0001_u64, 0x5eed_0002, 0x5eed_0003] {
        book.extend(write_book(&mut c, seed).await);
    }
    let mut months = Vec::new();
    let mut first = date("2026-01-01");
    for _ in 0..12 {
        let next = (first + Duration::days(31)).with_day(1).unwrap();
        let month = figures(&mut c, first, next).await;
        // Every subscription and amendment was read back: the month closes
        // with what the writer reckons was in force on its last day.
        let closing: BTreeMap<String, i64> = month
            .iter()
            .map(|(code, (_, (_, closing)))| (code.clone(), *closing))
            .collect();
        assert_eq!(closing, mrr_on(&book, next.pred_opt().unwrap()), "{first}");
        months.push(month);
        first = next;
    }
    // One month closes with what the next opens with.
    for pair in months.windows(2) {
        for (code, (_, (_, closing))) in &pair[0] {
            assert_eq!(pair[1][code].1.0, *closing, "{code}: close ≠ next open");
        }
    }
    let year = figures(&mut c, date("2026-01-01"), date("2027-01-01")).await;
    let year_flows: BTreeMap<String, [i64; 5]> = year
        .iter()
        .map(|(code, (flows, _))| (code.clone(), *flows))
        .collect();
    assert_eq!(
        year_flows,
        sum(&months.iter().collect::<Vec<_>>()),
        "a year is its months"
    );
    assert!(
        year_flows.values().any(|f| f[2] > 0) && year_flows.values().any(|f| f[3] > 0),
        "the books have upsells and contractions: {year_flows:?}"
    );

    // A custom range, split at an arbitrary day.
    let (start, middle, end) = (date("2026-02-15"), date("2026-04-01"), date("2026-06-10"));
    let whole = figures(&mut c, start, end).await;
    let left = figures(&mut c, start, middle).await;
    let right = figures(&mut c, middle, end).await;
    let whole_flows: BTreeMap<String, [i64; 5]> = whole
        .iter()
        .map(|(code, (flows, _))| (code.clone(), *flows))
        .collect();
    assert_eq!(whole_flows, sum(&[&left, &right]));
}
