//! `expansion demo`: loads a realistic sample dataset through the public
//! gRPC API, so every README example shows real data. Re-running it changes
//! nothing: everything it writes is keyed by CRM ids, external ids, request
//! ids or deal ids.

use anyhow::Context;
use chrono::{Datelike, Duration, NaiveDate, Utc};
use contracts::client::{AuthChannel, ClientOptions};
use contracts::pb::common::v1::{Money, Motion, Segment};
use contracts::pb::credit::v1 as credit;
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use contracts::pb::health::v1 as health;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use contracts::pb::pipeline::v1 as pipeline;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_client::OpportunityPipelineServiceClient;

/// The demo's people: who its deals credit (id, name, role, team).
pub const PEOPLE: [(&str, &str, credit::PersonRole, &str); 5] = [
    (
        "carla.csm",
        "Carla Diaz",
        credit::PersonRole::Csm,
        "customer-success",
    ),
    (
        "diego.csm",
        "Diego Ruiz",
        credit::PersonRole::Csm,
        "customer-success",
    ),
    (
        "mei.csm",
        "Mei Tan",
        credit::PersonRole::Csm,
        "customer-success",
    ),
    (
        "alex.ae",
        "Alex Kim",
        credit::PersonRole::Ae,
        "enterprise-sales",
    ),
    (
        "sam.ae",
        "Sam Okafor",
        credit::PersonRole::Ae,
        "commercial-sales",
    ),
];

/// RevOps, who reads everyone's pay and approves credits, beside the people.
pub const REVOPS: &str = "rita.revops";

/// `serve --demo --keys-file F`: a key in F for each of the demo's people (a
/// csm or ae key bound to them, reading only their own pay) and for RevOps,
/// for each that has none in force. Returns `(name, role, token)` of the
/// keys it made: a token is shown once, so a second start makes none.
pub fn people_keys(
    keys_file: &std::path::Path,
) -> anyhow::Result<Vec<(String, contracts::access::Role, String)>> {
    use contracts::access::Role;
    let file = crate::auth::keys::KeysFile::load(keys_file)?;
    let in_force = |name: &str| {
        file.keys
            .iter()
            .any(|k| k.name == name && k.revoked_at.is_none())
    };
    let wanted = PEOPLE
        .iter()
        .map(|(id, _, role, _)| {
            let role = if *role == credit::PersonRole::Ae {
                Role::Ae
            } else {
                Role::Csm
            };
            (*id, role)
        })
        .chain([(REVOPS, Role::Revops)]);
    let mut made = Vec::new();
    for (name, role) in wanted {
        if in_force(name) {
            continue;
        }
        let created = crate::auth::command::create_key(
            keys_file,
            &crate::auth::command::KeySpec::new(name, role),
        )?;
        made.push((name.to_owned(), role, created.token));
    }
    Ok(made)
}

type Health = AccountHealthServiceClient<AuthChannel>;
type Pipeline = OpportunityPipelineServiceClient<AuthChannel>;
type Credit = CompensationCreditServiceClient<AuthChannel>;

fn usd(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount: amount.into(),
    })
}

struct ProductSpec {
    name: &'static str,
    family: &'static str,
    adjacency: Option<health::Adjacency>,
    segments: &'static [Segment],
    wallets: &'static [(Segment, &'static str)],
    margin: &'static str,
}

const PRODUCTS: [ProductSpec; 5] = [
    ProductSpec {
        name: "Core Platform",
        family: "platform",
        adjacency: None,
        segments: &[Segment::Smb, Segment::MidMarket, Segment::Enterprise],
        wallets: &[
            (Segment::Smb, "6000"),
            (Segment::MidMarket, "36000"),
            (Segment::Enterprise, "180000"),
        ],
        margin: "80",
    },
    ProductSpec {
        name: "Analytics",
        family: "insights",
        adjacency: Some(health::Adjacency::Adjacent),
        segments: &[Segment::MidMarket, Segment::Enterprise],
        wallets: &[
            (Segment::MidMarket, "24000"),
            (Segment::Enterprise, "120000"),
        ],
        margin: "72",
    },
    ProductSpec {
        name: "Automation",
        family: "workflow",
        adjacency: Some(health::Adjacency::Complementary),
        segments: &[Segment::Smb, Segment::MidMarket, Segment::Enterprise],
        wallets: &[
            (Segment::Smb, "4000"),
            (Segment::MidMarket, "18000"),
            (Segment::Enterprise, "60000"),
        ],
        margin: "70",
    },
    ProductSpec {
        name: "Data Cloud",
        family: "data",
        adjacency: Some(health::Adjacency::Platform),
        segments: &[Segment::Enterprise],
        wallets: &[(Segment::Enterprise, "250000")],
        margin: "55",
    },
    ProductSpec {
        name: "Success Hub",
        family: "cs",
        adjacency: Some(health::Adjacency::Complementary),
        segments: &[Segment::MidMarket, Segment::Enterprise],
        wallets: &[
            (Segment::MidMarket, "15000"),
            (Segment::Enterprise, "60000"),
        ],
        margin: "75",
    },
];

#[derive(Clone, Copy)]
struct AccountSpec {
    crm: &'static str,
    name: &'static str,
    segment: Segment,
    /// Registration (and first contract), days before the anchor: cohorts over two years.
    since_days_ago: i64,
    fiscal_month: i32,
    csm: &'static str,
    core_mrr: &'static str,
    /// Latest usage, percent of the plan's limit.
    usage: u32,
}

const ACCOUNTS: [AccountSpec; 12] = [
    AccountSpec {
        crm: "0015g00000ACME",
        name: "Acme Corp",
        segment: Segment::Enterprise,
        since_days_ago: 700,
        fiscal_month: 1,
        csm: "carla.csm",
        core_mrr: "15000.00",
        usage: 92,
    },
    AccountSpec {
        crm: "0015g00000GLBX",
        name: "Globex",
        segment: Segment::Enterprise,
        since_days_ago: 670,
        fiscal_month: 4,
        csm: "carla.csm",
        core_mrr: "18000.00",
        usage: 85,
    },
    AccountSpec {
        crm: "0015g00000INIT",
        name: "Initech",
        segment: Segment::Enterprise,
        since_days_ago: 610,
        fiscal_month: 7,
        csm: "diego.csm",
        core_mrr: "12000.00",
        usage: 60,
    },
    AccountSpec {
        crm: "0015g00000UMBR",
        name: "Umbrella Health",
        segment: Segment::Enterprise,
        since_days_ago: 550,
        fiscal_month: 10,
        csm: "diego.csm",
        core_mrr: "20000.00",
        usage: 45,
    },
    AccountSpec {
        crm: "0015g00000STRK",
        name: "Stark Logistics",
        segment: Segment::MidMarket,
        since_days_ago: 690,
        fiscal_month: 3,
        csm: "mei.csm",
        core_mrr: "3000.00",
        usage: 88,
    },
    AccountSpec {
        crm: "0015g00000WAYN",
        name: "Wayne Retail",
        segment: Segment::MidMarket,
        since_days_ago: 430,
        fiscal_month: 9,
        csm: "mei.csm",
        core_mrr: "2800.00",
        usage: 70,
    },
    AccountSpec {
        crm: "0015g00000HOOL",
        name: "Hooli Media",
        segment: Segment::MidMarket,
        since_days_ago: 330,
        fiscal_month: 6,
        csm: "carla.csm",
        core_mrr: "3500.00",
        usage: 30,
    },
    AccountSpec {
        crm: "0015g00000SOYL",
        name: "Soylent Foods",
        segment: Segment::MidMarket,
        since_days_ago: 270,
        fiscal_month: 11,
        csm: "diego.csm",
        core_mrr: "2500.00",
        usage: 55,
    },
    AccountSpec {
        crm: "0015g00000PIED",
        name: "Pied Piper",
        segment: Segment::Smb,
        since_days_ago: 640,
        fiscal_month: 2,
        csm: "mei.csm",
        core_mrr: "500.00",
        usage: 95,
    },
    AccountSpec {
        crm: "0015g00000VAND",
        name: "Vandelay Imports",
        segment: Segment::Smb,
        since_days_ago: 600,
        fiscal_month: 5,
        csm: "mei.csm",
        core_mrr: "450.00",
        usage: 40,
    },
    AccountSpec {
        crm: "0015g00000KRMR",
        name: "Kramerica",
        segment: Segment::Smb,
        since_days_ago: 150,
        fiscal_month: 8,
        csm: "carla.csm",
        core_mrr: "400.00",
        usage: 20,
    },
    AccountSpec {
        crm: "0015g00000BLTH",
        name: "Bluth Homes",
        segment: Segment::Smb,
        since_days_ago: 75,
        fiscal_month: 12,
        csm: "diego.csm",
        core_mrr: "600.00",
        usage: 65,
    },
];

async fn products(h: &mut Health) -> anyhow::Result<Vec<String>> {
    let existing = h
        .list_products(health::ListProductsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .products;
    let mut ids: Vec<String> = Vec::new();
    for spec in &PRODUCTS {
        if let Some(p) = existing.iter().find(|p| p.name == spec.name) {
            ids.push(p.product_id.clone());
            continue;
        }
        let adjacencies = match (spec.adjacency, ids.first()) {
            (Some(adjacency), Some(core)) => vec![health::ProductAdjacency {
                product_id: core.clone(),
                adjacency: adjacency as i32,
            }],
            _ => Vec::new(),
        };
        let product = h
            .upsert_product(health::UpsertProductRequest {
                request_id: format!("demo-product-{}", spec.name),
                product: Some(health::Product {
                    name: spec.name.into(),
                    family: spec.family.into(),
                    tiers: vec!["STARTER".into(), "PROFESSIONAL".into(), "ENTERPRISE".into()],
                    adjacencies,
                    fits_segments: spec.segments.iter().map(|s| *s as i32).collect(),
                    wallet_estimates: spec
                        .wallets
                        .iter()
                        .map(|(segment, amount)| health::SegmentWallet {
                            segment: *segment as i32,
                            annual_wallet: usd(amount),
                        })
                        .collect(),
                    margin_percent: spec.margin.into(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .product
            .context("product")?;
        ids.push(product.product_id);
    }
    Ok(ids)
}

/// A subscription to upsert, keyed by its CRM id.
struct Contract<'a> {
    key: &'a str,
    account: &'a str,
    product: &'a str,
    tier: &'a str,
    mrr: &'a str,
    start: &'a str,
    end: &'a str,
    source_opportunity: &'a str,
    /// Later MRR changes `(effective date, MRR)`: upsells and contractions.
    amendments: &'a [(String, &'a str)],
}

async fn subscription(h: &mut Health, c: Contract<'_>) -> anyhow::Result<String> {
    let Contract {
        key,
        account,
        product,
        tier,
        mrr,
        start,
        end,
        source_opportunity,
        amendments,
    } = c;
    let mut sub = health::Subscription {
        account_id: account.into(),
        product_id: product.into(),
        tier: tier.into(),
        mrr: usd(mrr),
        start_date: start.into(),
        end_date: end.into(),
        quantity: 1,
        quota_limit: 1000,
        source_opportunity_id: source_opportunity.into(),
        external_ref: Some(health::ExternalRef {
            system: "salesforce".into(),
            id: key.into(),
        }),
        ..Default::default()
    };
    // Each MRR is stated with the day it holds from, so loading again (when
    // later amendments exist) writes nothing.
    let id = h
        .upsert_subscription(health::UpsertSubscriptionRequest {
            subscription: Some(sub.clone()),
            mrr_effective_date: start.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .subscription
        .context("subscription")?
        .subscription_id;
    for (date, amount) in amendments {
        sub.mrr = usd(amount);
        h.upsert_subscription(health::UpsertSubscriptionRequest {
            subscription: Some(sub.clone()),
            mrr_effective_date: date.clone(),
            ..Default::default()
        })
        .await?;
    }
    Ok(id)
}

fn signal(
    account: &str,
    product: &str,
    kind: health::SignalKind,
    value: &str,
    limit: &str,
    id: String,
    days_ago: i64,
) -> health::Signal {
    let at = Utc::now() - Duration::days(days_ago);
    health::Signal {
        account_id: account.into(),
        product_id: product.into(),
        kind: kind as i32,
        value: value.into(),
        limit: limit.into(),
        occur_time: Some(contracts::wire::timestamp(at)),
        source: "demo".into(),
        external_id: id,
        detail: String::new(),
    }
}

/// The signals that fire the other triggers, and one account in trouble,
/// by the account's place in [`ACCOUNTS`].
fn behaviour(index: usize, id: &str, core: &str) -> Vec<health::Signal> {
    use health::SignalKind as K;
    let s = |product: &str, kind, external: &str, days_ago| {
        signal(id, product, kind, "1", "", external.into(), days_ago)
    };
    match index {
        1 => vec![s("", K::OrgInitiative, "GLBX-cs-team", 8)],
        2 => vec![s(core, K::PremiumWorkaround, "INIT-workaround", 3)],
        5 => vec![s(core, K::DataExport, "WAYN-export", 4)],
        7 => vec![s(core, K::ValueMilestone, "SOYL-milestone", 6)],
        10 => vec![
            s("", K::Escalation, "KRMR-esc-1", 3),
            s("", K::Escalation, "KRMR-esc-2", 9),
            s(core, K::UpgradePageVisit, "KRMR-upgrade", 1),
        ],
        _ => Vec::new(),
    }
}

/// The account whose registration tells a later load the anchor of the
/// first: Bluth Homes, which no README example edits.
const ANCHOR_ACCOUNT: AccountSpec = ACCOUNTS[11];

/// The day the dataset is anchored to: today on the first load; on later
/// loads the first load's day (read back from a demo account's registration), so every
/// date — and every request id's request — stays what it was.
async fn anchor(h: &mut Health) -> anyhow::Result<NaiveDate> {
    let today = Utc::now().date_naive();
    let known = h
        .get_account(health::GetAccountRequest {
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: ANCHOR_ACCOUNT.crm.into(),
            }),
            ..Default::default()
        })
        .await;
    match known {
        Ok(reply) => {
            let since = reply
                .into_inner()
                .account
                .and_then(|a| NaiveDate::parse_from_str(&a.customer_since, "%Y-%m-%d").ok());
            Ok(since
                .map(|d| (d + Duration::days(ANCHOR_ACCOUNT.since_days_ago)).min(today))
                .unwrap_or(today))
        }
        Err(e) if e.code() == tonic::Code::NotFound => Ok(today),
        Err(e) => Err(e.into()),
    }
}

/// `days` before (negative: after) the anchor, as the wire writes a date.
fn day(anchor: NaiveDate, days_ago: i64) -> String {
    (anchor - Duration::days(days_ago)).to_string()
}

/// When a deal's steps happened, in days before the anchor: its creation,
/// its first stage moves (the rest, and everything after a handoff Sales
/// accepted, happen as the demo loads), and its handoff request. Stamped
/// with the import-only `occur_time`, so the pipeline has a past: deals
/// stalled in a stage, a handoff past its SLA, cycle times of weeks.
struct Timeline {
    created: i64,
    stages: &'static [i64],
    handoff: Option<i64>,
}

fn timeline(key: &str) -> Timeline {
    let (created, stages, handoff): (i64, &'static [i64], Option<i64>) = match key {
        // Stalled: six weeks at IDENTIFIED, over five at EXPLORING (30 days allowed).
        "identified" => (41, &[], None),
        "exploring" => (75, &[38], None),
        "qualified" => (60, &[45, 20], None),
        // The handoff Sales has not answered: requested four days ago (48
        // hours allowed), the deal proposed since.
        "proposed" => (50, &[35, 12, 3], Some(4)),
        "negotiating" => (90, &[70, 55], None),
        "won" => (120, &[100, 80], None),
        "lost" => (65, &[50], None),
        "won-cs-led" => (45, &[30, 20, 10, 5], None),
        // This month's book is this month's: created as the demo loads.
        _ => (0, &[], None),
    };
    Timeline {
        created,
        stages,
        handoff,
    }
}

/// `days_ago` days before the anchor at `hour`:00 UTC (always in the past:
/// the anchor is today at the latest), or `None` for 0: now.
fn past(anchor: NaiveDate, days_ago: i64, hour: u32) -> Option<prost_types::Timestamp> {
    (days_ago > 0)
        .then(|| (anchor - Duration::days(days_ago)).and_hms_opt(hour, 0, 0))
        .flatten()
        .map(|t| contracts::wire::timestamp(t.and_utc()))
}

/// What the demo loaded.
#[derive(Debug, Default)]
pub struct Summary {
    pub accounts: usize,
    pub products: usize,
    pub subscriptions: usize,
    pub signals: i64,
    pub opportunities: usize,
    pub won_deals: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "demo data: {} accounts, {} products, {} subscriptions, {} new signals, {} opportunities ({} won; the outbox credits them)",
            self.accounts,
            self.products,
            self.subscriptions,
            self.signals,
            self.opportunities,
            self.won_deals
        )
    }
}

/// Loads the dataset into the server at `target` (`host:port`, scheme
/// optional), calling with the options' API key when it has one.
pub async fn load(target: &str, options: &ClientOptions) -> anyhow::Result<Summary> {
    let channel = contracts::client::connect(target, options)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut h = Health::new(channel.clone());
    let mut p = Pipeline::new(channel.clone());
    let mut c = Credit::new(channel);
    let mut summary = Summary::default();

    let anchor = anchor(&mut h).await?;
    let product_ids = products(&mut h).await?;
    let (core, analytics, automation) = (&product_ids[0], &product_ids[1], &product_ids[2]);
    let (data_cloud, success_hub) = (&product_ids[3], &product_ids[4]);
    summary.products = product_ids.len();

    let mut account_ids = Vec::new();
    for spec in &ACCOUNTS {
        let AccountSpec {
            crm,
            name,
            segment,
            since_days_ago,
            fiscal_month: fiscal,
            csm,
            core_mrr: mrr,
            usage,
        } = *spec;
        let since = day(anchor, since_days_ago);
        // Upsells and a contraction of the core contracts, months ago.
        let amendments: Vec<(String, &str)> = match crm {
            "0015g00000GLBX" => vec![(day(anchor, 95), "21000.00")],
            "0015g00000UMBR" => vec![(day(anchor, 60), "17500.00")],
            "0015g00000STRK" => vec![(day(anchor, 40), "3600.00")],
            _ => Vec::new(),
        };
        let account = h
            .upsert_account(health::UpsertAccountRequest {
                external_ref: Some(health::ExternalRef {
                    system: "salesforce".into(),
                    id: crm.into(),
                }),
                name: name.into(),
                segment: segment as i32,
                customer_since: since.clone(),
                fiscal_year_start_month: fiscal,
                owner_csm: csm.into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .account
            .context("account")?;
        let id = account.account_id;
        subscription(
            &mut h,
            Contract {
                key: &format!("{crm}-core"),
                account: &id,
                product: core,
                tier: "PROFESSIONAL",
                mrr,
                start: &since,
                end: "",
                source_opportunity: "",
                amendments: &amendments,
            },
        )
        .await?;
        summary.subscriptions += 1;
        let mut signals = vec![
            signal(
                &id,
                core,
                health::SignalKind::Usage,
                &usage.to_string(),
                "100",
                format!("{crm}-usage-1"),
                2,
            ),
            signal(
                &id,
                core,
                health::SignalKind::ActiveUsers,
                &(usage.min(100) * 9 / 10).to_string(),
                "100",
                format!("{crm}-seats-1"),
                2,
            ),
            signal(
                &id,
                "",
                health::SignalKind::Nps,
                if usage >= 50 { "9" } else { "6" },
                "",
                format!("{crm}-nps-1"),
                20,
            ),
            signal(
                &id,
                "",
                health::SignalKind::CsmSentiment,
                if usage >= 50 { "4" } else { "3" },
                "",
                format!("{crm}-sentiment-1"),
                5,
            ),
        ];
        // Months of history before that, a reading every four weeks since the
        // account joined: usage climbing to today's where it is high, sliding
        // to it where it is low (Kramerica's trouble), and an earlier survey
        // with the same score. The health service scores each past month end
        // from them, so every account has a history of months.
        for month in 1..=6 {
            let days_ago = 33 + 28 * (month - 1);
            if days_ago >= since_days_ago {
                break;
            }
            let step = u32::try_from(month).unwrap_or(0);
            let then = if usage >= 50 {
                usage.saturating_sub(4 * step)
            } else {
                usage + 6 * step
            };
            signals.push(signal(
                &id,
                core,
                health::SignalKind::Usage,
                &then.to_string(),
                "100",
                format!("{crm}-usage-m{month}"),
                days_ago,
            ));
            signals.push(signal(
                &id,
                core,
                health::SignalKind::ActiveUsers,
                &(then.min(100) * 9 / 10).to_string(),
                "100",
                format!("{crm}-seats-m{month}"),
                days_ago,
            ));
        }
        if since_days_ago > 110 {
            signals.push(signal(
                &id,
                "",
                health::SignalKind::Nps,
                if usage >= 50 { "9" } else { "6" },
                "",
                format!("{crm}-nps-0"),
                110,
            ));
        }
        // What fires the other triggers, and an account in trouble: in the
        // same batch, so the month ends are scored with them.
        signals.extend(behaviour(account_ids.len(), &id, core));
        // Heavy use (power users) only where usage is high.
        let logins = if usage >= 88 { "40" } else { "12" };
        for day in 0..3 {
            signals.push(signal(
                &id,
                core,
                health::SignalKind::Login,
                logins,
                "",
                format!("{crm}-logins-{day}"),
                day,
            ));
        }
        summary.signals += h
            .record_signals(health::RecordSignalsRequest {
                request_id: String::new(),
                signals,
            })
            .await?
            .into_inner()
            .accepted;
        account_ids.push(id);
    }
    summary.accounts = account_ids.len();

    // A year of cross-sells (one this month) and a churned module.
    let this_month = anchor.with_day(1).unwrap_or(anchor).to_string();
    let cross_sells = [
        (
            "0015g00000ACME-analytics",
            0,
            analytics,
            "4000.00",
            day(anchor, 180),
            day(anchor, -185),
        ),
        (
            "0015g00000GLBX-success",
            1,
            success_hub,
            "1500.00",
            day(anchor, 120),
            String::new(),
        ),
        (
            "0015g00000STRK-automation",
            4,
            automation,
            "900.00",
            day(anchor, 80),
            String::new(),
        ),
        (
            "0015g00000PIED-automation",
            8,
            automation,
            "150.00",
            this_month,
            String::new(),
        ),
        (
            "0015g00000VAND-automation",
            9,
            automation,
            "120.00",
            day(anchor, 200),
            String::new(),
        ),
    ];
    let mut churned = String::new();
    for (key, account, product, mrr, start, end) in &cross_sells {
        let id = subscription(
            &mut h,
            Contract {
                key,
                account: &account_ids[*account],
                product,
                tier: "STARTER",
                mrr,
                start,
                end,
                source_opportunity: "",
                amendments: &[],
            },
        )
        .await?;
        if key.ends_with("VAND-automation") {
            churned = id;
        }
    }
    summary.subscriptions += cross_sells.len();
    h.cancel_subscription(health::CancelSubscriptionRequest {
        request_id: "demo-cancel-vandelay".into(),
        subscription_id: churned,
        cancel_date: day(anchor, 45),
        reason: "budget cut".into(),
        time_zone: String::new(),
    })
    .await
    .or_else(|e| {
        if e.code() == tonic::Code::FailedPrecondition {
            Ok(tonic::Response::new(Default::default()))
        } else {
            Err(e)
        }
    })?;

    // Credit policy: 25% origination, 75% delivery, 5% account-team overlay.
    let policy = c
        .get_credit_policy(credit::GetCreditPolicyRequest {
            policy_id: "default".into(),
            version: 0,
            as_of_date: "2025-01-01".into(),
        })
        .await;
    if policy.is_err() {
        c.upsert_credit_policy(credit::UpsertCreditPolicyRequest {
            request_id: "demo-policy".into(),
            policy: Some(credit::CreditPolicy {
                policy_id: "default".into(),
                effective_date: "2025-01-01".into(),
                origination_percent: "25".into(),
                hold_days: 30,
                clawback_window_days: 90,
                ..Default::default()
            }),
        })
        .await?;
    }

    // The people directory: who the demo's participants are, so a key named after
    // one of them (`expansion keys create --name mei.csm --role csm`) reads their pay.
    for (id, name, role, team) in PEOPLE {
        // Idempotent by content: the same person again adds no version.
        c.upsert_person(credit::UpsertPersonRequest {
            request_id: String::new(),
            person: Some(credit::Person {
                person_id: id.into(),
                display_name: name.into(),
                role: role as i32,
                team: team.into(),
                ..Default::default()
            }),
        })
        .await?;
    }

    // The seed's wallet: $800K addressable, $230K with us today — up from
    // $150K two years ago and $190K a year ago (each estimate supersedes the
    // one before from its date; none is overwritten).
    use pipeline::WalletServedBy::{Competitor, InHouse, Unaddressed, Us};
    let vintages = [
        (
            730,
            "2y",
            [("Core Platform", "150000"), ("Analytics", "280000")],
        ),
        (
            365,
            "1y",
            [("Core Platform", "190000"), ("Analytics", "240000")],
        ),
    ];
    for (days_ago, vintage, lines) in vintages {
        let effective = day(anchor, days_ago);
        let rest = [
            ("Data Cloud", "250000", InHouse),
            ("Automation", "120000", Unaddressed),
        ];
        let all = [
            (lines[0].0, lines[0].1, Us),
            (lines[1].0, lines[1].1, Competitor),
            rest[0],
            rest[1],
        ];
        for (area, amount, served) in all {
            p.upsert_wallet_estimate(pipeline::UpsertWalletEstimateRequest {
                request_id: format!("demo-wallet-acme-{area}-{vintage}"),
                estimate: Some(pipeline::WalletEstimate {
                    account_id: account_ids[0].clone(),
                    product_area: area.into(),
                    annual_spend: usd(amount),
                    served_by: served as i32,
                    effective_date: effective.clone(),
                    ..Default::default()
                }),
            })
            .await?;
        }
    }
    for (area, amount, served) in [
        ("Core Platform", "230000", Us),
        ("Analytics", "200000", Competitor),
    ] {
        p.upsert_wallet_estimate(pipeline::UpsertWalletEstimateRequest {
            request_id: format!("demo-wallet-acme-{area}"),
            estimate: Some(pipeline::WalletEstimate {
                account_id: account_ids[0].clone(),
                product_area: area.into(),
                annual_spend: usd(amount),
                served_by: served as i32,
                effective_date: anchor.to_string(),
                ..Default::default()
            }),
        })
        .await?;
    }

    // Opportunities at every stage.
    let qualified = pipeline::Qualification {
        need_confirmed: true,
        budget_status: pipeline::BudgetStatus::Allocated as i32,
        decision_process_known: true,
        relationship_strength: 8,
        fit: pipeline::Rating::High as i32,
        applicability: pipeline::Rating::High as i32,
        capability: pipeline::Rating::Medium as i32,
        competitive_position: pipeline::Rating::High as i32,
    };
    let cfo = pipeline::Stakeholder {
        name: "Dana Whitfield".into(),
        title: "CFO".into(),
        role: "economic buyer".into(),
        budget_holder: true,
        decision_maker: true,
        email: "dana@example.com".into(),
    };
    use pipeline::Stage as S;
    let alex = Some(("alex.ae", "enterprise-sales"));
    let sam = Some(("sam.ae", "commercial-sales"));
    type Plan<'a> = (
        &'a str,
        usize,
        &'a String,
        Motion,
        &'a str,
        S,
        Option<(&'a str, &'a str)>,
    );
    let plans: [Plan<'_>; 14] = [
        (
            "identified",
            3,
            analytics,
            Motion::CrossSellAdjacent,
            "60000",
            S::Identified,
            None,
        ),
        (
            "exploring",
            1,
            analytics,
            Motion::CrossSellAdjacent,
            "90000",
            S::Exploring,
            None,
        ),
        (
            "qualified",
            0,
            automation,
            Motion::CrossSellComplementary,
            "48000",
            S::Qualified,
            None,
        ),
        (
            "proposed",
            4,
            analytics,
            Motion::CrossSellAdjacent,
            "30000",
            S::Proposed,
            alex,
        ),
        (
            "negotiating",
            1,
            core,
            Motion::UpsellTier,
            "120000",
            S::Negotiating,
            alex,
        ),
        (
            "won",
            0,
            core,
            Motion::UpsellCapacity,
            "500000",
            S::ClosedWon,
            alex,
        ),
        (
            "lost",
            5,
            automation,
            Motion::CrossSellComplementary,
            "26000",
            S::ClosedLost,
            None,
        ),
        (
            "won-cs-led",
            8,
            core,
            Motion::UpsellCapacity,
            "26000",
            S::ClosedWon,
            None,
        ),
        // The rest of this month's book: more people, every motion closing.
        (
            "book-initech-analytics",
            2,
            analytics,
            Motion::CrossSellAdjacent,
            "45000",
            S::ClosedWon,
            sam,
        ),
        (
            "book-umbrella-data-cloud",
            3,
            data_cloud,
            Motion::CrossSellPlatform,
            "150000",
            S::ClosedLost,
            sam,
        ),
        (
            "book-stark-capacity",
            4,
            core,
            Motion::UpsellCapacity,
            "30000",
            S::ClosedWon,
            sam,
        ),
        (
            "book-wayne-automation",
            5,
            automation,
            Motion::CrossSellComplementary,
            "28000",
            S::ClosedLost,
            None,
        ),
        (
            "book-soylent-tier",
            7,
            core,
            Motion::UpsellTier,
            "25000",
            S::ClosedLost,
            None,
        ),
        (
            "book-bluth-capacity",
            11,
            core,
            Motion::UpsellCapacity,
            "25000",
            S::ClosedWon,
            None,
        ),
    ];
    for (key, account, product, motion, amount, target, handoff) in plans {
        let account_id = &account_ids[account];
        let csm = ACCOUNTS[account].csm;
        let rid = |step: &str| format!("demo-{key}-{step}");
        let history = timeline(key);
        let at = |days_ago: Option<i64>, hour: u32| days_ago.and_then(|d| past(anchor, d, hour));
        let mut opp = p
            .create_opportunity(pipeline::CreateOpportunityRequest {
                request_id: rid("create"),
                opportunity: Some(pipeline::Opportunity {
                    account_id: account_id.clone(),
                    product_id: product.clone(),
                    source_product_id: if motion == Motion::CrossSellAdjacent
                        || motion == Motion::CrossSellComplementary
                    {
                        core.clone()
                    } else {
                        String::new()
                    },
                    motion: motion as i32,
                    amount: usd(amount),
                    name: format!("{} — {key}", ACCOUNTS[account].name),
                    close_date: day(anchor, -45),
                    owner: csm.into(),
                    owner_team: "customer-success".into(),
                    originator: csm.into(),
                    stakeholders: vec![cfo.clone()],
                    qualification: Some(qualified),
                    discovery_notes: "Outgrowing the current plan; budget set for next quarter."
                        .into(),
                    ..Default::default()
                }),
                occur_time: at(Some(history.created), 9),
            })
            .await?
            .into_inner()
            .opportunity
            .context("opportunity")?;
        summary.opportunities += 1;
        let path: &[S] = match target {
            S::Identified => &[],
            S::Exploring => &[S::Exploring],
            S::Qualified => &[S::Exploring, S::Qualified],
            S::Proposed => &[S::Exploring, S::Qualified, S::Proposed],
            S::Negotiating | S::ClosedWon => {
                &[S::Exploring, S::Qualified, S::Proposed, S::Negotiating]
            }
            // Lost after Sales took it over.
            S::ClosedLost if handoff.is_some() => &[S::Exploring, S::Qualified, S::Proposed],
            _ => &[S::Exploring],
        };
        for (step, stage) in path.iter().enumerate() {
            if let Some((ae, team)) = handoff
                && *stage == S::Proposed
            {
                let requested = p
                    .request_handoff(pipeline::RequestHandoffRequest {
                        request_id: rid("handoff"),
                        opportunity_id: opp.opportunity_id.clone(),
                        package: Some(pipeline::HandoffPackage {
                            discovery_summary: "Usage near the plan's limit; the team wants more."
                                .into(),
                            pain_points: vec!["hitting limits every month".into()],
                            stakeholders: vec![cfo.clone()],
                            decision_process: "CFO signs above $25K after a security review".into(),
                            budget_status: pipeline::BudgetStatus::Allocated as i32,
                            timing: "this quarter".into(),
                            competitive_landscape: "no incumbent for this module".into(),
                            joint_call_time: None,
                        }),
                        occur_time: at(history.handoff, 11),
                    })
                    .await?
                    .into_inner()
                    .handoff
                    .context("handoff")?;
                if target != S::Proposed {
                    let accepted = p
                        .accept_handoff(pipeline::AcceptHandoffRequest {
                            request_id: rid("accept"),
                            handoff_id: requested.handoff_id,
                            owner: ae.into(),
                            owner_team: team.into(),
                        })
                        .await?
                        .into_inner();
                    opp = accepted.opportunity.context("opportunity")?;
                }
            }
            opp = p
                .advance_stage(pipeline::AdvanceStageRequest {
                    request_id: rid(&format!("stage-{step}")),
                    opportunity_id: opp.opportunity_id.clone(),
                    etag: opp.etag.clone(),
                    to_stage: *stage as i32,
                    // The book's cross-sells grow from products not yet GREEN.
                    override_reason: if key.starts_with("book-") {
                        "demo book: sample data".into()
                    } else {
                        String::new()
                    },
                    reopen: false,
                    reason: String::new(),
                    occur_time: at(history.stages.get(step).copied(), 14),
                })
                .await?
                .into_inner()
                .opportunity
                .context("opportunity")?;
        }
        if target == S::ClosedWon || target == S::ClosedLost {
            p.close_opportunity(pipeline::CloseOpportunityRequest {
                request_id: rid("close"),
                opportunity_id: opp.opportunity_id.clone(),
                etag: opp.etag.clone(),
                won: target == S::ClosedWon,
                lost_reason: if target == S::ClosedLost {
                    "chose a bundled competitor".into()
                } else {
                    String::new()
                },
                close_date: anchor.to_string(),
            })
            .await?;
        }
        if target == S::ClosedWon {
            // The close-won outbox takes it from here: the new subscription
            // in health, the credits in credit.
            summary.won_deals += 1;
        }
    }
    Ok(summary)
}
