//! `expansion demo`: loads a realistic sample dataset through the public
//! gRPC API, so every README example shows real data. The data is
//! `demo/dataset.toml`; this module only reads it and makes the calls.
//! Re-running it changes nothing: everything it writes is keyed by CRM ids,
//! external ids, request ids or deal ids.

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
use serde::Deserialize;

/// The dataset, as the binary carries it.
const DATASET: &str = include_str!("../demo/dataset.toml");

/// RevOps, who reads everyone's pay and approves credits, beside the people.
pub const REVOPS: &str = "rita.revops";

/// The demo's dataset (`demo/dataset.toml`). Enum values are the protobuf
/// names, read with [`named`]; days count back from the anchor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    people: Vec<PersonRow>,
    products: Vec<ProductRow>,
    accounts: Vec<AccountRow>,
    cross_sells: Vec<CrossSellRow>,
    policy: PolicyRow,
    wallet: Vec<WalletRow>,
    story: Story,
    deals: Vec<DealRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonRow {
    id: String,
    name: String,
    role: String,
    team: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductRow {
    name: String,
    family: String,
    /// How it sits beside the first product (the core); none for the core.
    adjacency: Option<String>,
    tiers: Vec<String>,
    segments: Vec<String>,
    /// `[segment, annual wallet in USD]`.
    wallets: Vec<(String, String)>,
    margin: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountRow {
    crm: String,
    name: String,
    segment: String,
    /// Registration (and the core contract's start): cohorts over two years.
    since_days_ago: i64,
    fiscal_month: i32,
    csm: String,
    core_mrr: String,
    /// Latest usage, percent of the plan's limit.
    usage: u32,
    /// Later core MRRs: `[days_ago, MRR]`, upsells and contractions.
    #[serde(default)]
    amendments: Vec<(i64, String)>,
    /// What fires the other triggers.
    #[serde(default)]
    signals: Vec<SignalRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalRow {
    kind: String,
    id: String,
    days_ago: i64,
    /// On the core product; else on the account.
    #[serde(default)]
    core: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrossSellRow {
    key: String,
    account: String,
    product: String,
    mrr: String,
    start_days_ago: Option<i64>,
    #[serde(default)]
    starts_this_month: bool,
    end_days_ago: Option<i64>,
    cancel: Option<CancelRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelRow {
    request_id: String,
    days_ago: i64,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRow {
    request_id: String,
    policy_id: String,
    effective_date: String,
    origination_percent: String,
    hold_days: i32,
    clawback_window_days: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletRow {
    account: String,
    request_prefix: String,
    days_ago: i64,
    vintage: Option<String>,
    /// `[product area, annual spend in USD, who serves it]`.
    lines: Vec<(String, String, String)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Story {
    discovery_notes: String,
    close_in_days: i64,
    lost_reason: String,
    override_reason: String,
    budget_status: String,
    stakeholder: StakeholderRow,
    qualification: QualificationRow,
    handoff_summary: String,
    pain_points: Vec<String>,
    decision_process: String,
    timing: String,
    competitive_landscape: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StakeholderRow {
    name: String,
    title: String,
    role: String,
    email: String,
    budget_holder: bool,
    decision_maker: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QualificationRow {
    need_confirmed: bool,
    decision_process_known: bool,
    relationship_strength: i32,
    fit: String,
    applicability: String,
    capability: String,
    competitive_position: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DealRow {
    key: String,
    account: String,
    product: String,
    motion: String,
    amount: String,
    target: String,
    handoff: Option<HandoffRow>,
    #[serde(default)]
    created_days_ago: i64,
    /// The days of the first stage moves; the rest happen as the demo loads.
    #[serde(default)]
    stage_days_ago: Vec<i64>,
    /// This month's book: its cross-sells grow from products not yet GREEN.
    #[serde(default)]
    book: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoffRow {
    owner: String,
    team: String,
    days_ago: Option<i64>,
}

/// The protobuf enum value called `name` (`"SEGMENT_SMB"`), by the
/// generated `from_str_name`.
fn named<E>(name: &str, from_str_name: fn(&str) -> Option<E>) -> anyhow::Result<E> {
    from_str_name(name).with_context(|| format!("demo dataset: {name:?} is not a known value"))
}

impl Dataset {
    /// The dataset the binary carries, with every name it uses checked.
    pub fn load() -> anyhow::Result<Dataset> {
        let dataset: Dataset = toml::from_str(DATASET).context("reading demo/dataset.toml")?;
        dataset.check()?;
        Ok(dataset)
    }

    /// Every enum name resolves and every account, product and person a row
    /// names is in the dataset.
    fn check(&self) -> anyhow::Result<()> {
        for person in &self.people {
            named(&person.role, credit::PersonRole::from_str_name)?;
        }
        for product in &self.products {
            if let Some(adjacency) = &product.adjacency {
                named(adjacency, health::Adjacency::from_str_name)?;
            }
            for segment in product
                .segments
                .iter()
                .chain(product.wallets.iter().map(|w| &w.0))
            {
                named(segment, Segment::from_str_name)?;
            }
        }
        for account in &self.accounts {
            named(&account.segment, Segment::from_str_name)?;
            self.person(&account.csm)?;
            for signal in &account.signals {
                named(&signal.kind, health::SignalKind::from_str_name)?;
            }
        }
        let accounts = self.accounts.iter().map(|a| a.crm.as_str());
        let known = |crm: &str| accounts.clone().any(|a| a == crm);
        for sell in &self.cross_sells {
            anyhow::ensure!(
                known(&sell.account),
                "demo dataset: no account {}",
                sell.account
            );
            self.product(&sell.product)?;
        }
        for estimate in &self.wallet {
            anyhow::ensure!(
                known(&estimate.account),
                "demo dataset: no account {}",
                estimate.account
            );
            for (_, _, served) in &estimate.lines {
                named(served, pipeline::WalletServedBy::from_str_name)?;
            }
        }
        self.story.check()?;
        for deal in &self.deals {
            self.account(&deal.account)?;
            self.product(&deal.product)?;
            named(&deal.motion, Motion::from_str_name)?;
            named(&deal.target, pipeline::Stage::from_str_name)?;
            if let Some(handoff) = &deal.handoff {
                self.person(&handoff.owner)?;
            }
        }
        Ok(())
    }

    fn account(&self, crm: &str) -> anyhow::Result<(usize, &AccountRow)> {
        self.accounts
            .iter()
            .enumerate()
            .find(|(_, a)| a.crm == crm)
            .with_context(|| format!("demo dataset: no account {crm}"))
    }

    fn product(&self, name: &str) -> anyhow::Result<usize> {
        self.products
            .iter()
            .position(|p| p.name == name)
            .with_context(|| format!("demo dataset: no product {name}"))
    }

    fn person(&self, id: &str) -> anyhow::Result<&PersonRow> {
        self.people
            .iter()
            .find(|p| p.id == id)
            .with_context(|| format!("demo dataset: no person {id}"))
    }

    /// The account whose registration tells a later load the anchor of the
    /// first: the last one, which no README example edits.
    fn anchor_account(&self) -> anyhow::Result<&AccountRow> {
        self.accounts.last().context("demo dataset: no accounts")
    }
}

impl Story {
    fn check(&self) -> anyhow::Result<()> {
        self.qualification()?;
        named(&self.budget_status, pipeline::BudgetStatus::from_str_name)?;
        Ok(())
    }

    fn qualification(&self) -> anyhow::Result<pipeline::Qualification> {
        let q = &self.qualification;
        let rating = |name: &str| named(name, pipeline::Rating::from_str_name).map(|r| r as i32);
        Ok(pipeline::Qualification {
            need_confirmed: q.need_confirmed,
            budget_status: named(&self.budget_status, pipeline::BudgetStatus::from_str_name)?
                as i32,
            decision_process_known: q.decision_process_known,
            relationship_strength: q.relationship_strength,
            fit: rating(&q.fit)?,
            applicability: rating(&q.applicability)?,
            capability: rating(&q.capability)?,
            competitive_position: rating(&q.competitive_position)?,
        })
    }

    fn stakeholder(&self) -> pipeline::Stakeholder {
        let s = self.stakeholder.clone();
        pipeline::Stakeholder {
            name: s.name,
            title: s.title,
            role: s.role,
            budget_holder: s.budget_holder,
            decision_maker: s.decision_maker,
            email: s.email,
        }
    }

    fn handoff_package(&self) -> anyhow::Result<pipeline::HandoffPackage> {
        Ok(pipeline::HandoffPackage {
            discovery_summary: self.handoff_summary.clone(),
            pain_points: self.pain_points.clone(),
            stakeholders: vec![self.stakeholder()],
            decision_process: self.decision_process.clone(),
            budget_status: named(&self.budget_status, pipeline::BudgetStatus::from_str_name)?
                as i32,
            timing: self.timing.clone(),
            competitive_landscape: self.competitive_landscape.clone(),
            joint_call_time: None,
        })
    }
}

/// `serve --demo --keys-file F`: a key in F for each of the demo's people (a
/// csm or ae key bound to them, reading only their own pay) and for RevOps,
/// for each that has none in force. Returns `(name, role, token)` of the
/// keys it made: a token is shown once, so a second start makes none.
pub fn people_keys(
    keys_file: &std::path::Path,
) -> anyhow::Result<Vec<(String, contracts::access::Role, String)>> {
    use contracts::access::Role;
    let dataset = Dataset::load()?;
    let file = crate::auth::keys::KeysFile::load(keys_file)?;
    let in_force = |name: &str| {
        file.keys
            .iter()
            .any(|k| k.name == name && k.revoked_at.is_none())
    };
    let wanted = dataset
        .people
        .iter()
        .map(|p| {
            let role = if p.role == "PERSON_ROLE_AE" {
                Role::Ae
            } else {
                Role::Csm
            };
            (p.id.as_str(), role)
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

fn crm_ref(id: &str) -> Option<health::ExternalRef> {
    Some(health::ExternalRef {
        system: "salesforce".into(),
        id: id.into(),
    })
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

/// A load in progress: the clients, the dataset, the anchor day and the ids
/// the server gave so far.
struct Loader<'a> {
    h: Health,
    p: Pipeline,
    c: Credit,
    data: &'a Dataset,
    anchor: NaiveDate,
    /// Product ids, in the dataset's order.
    products: Vec<String>,
    /// Account ids, in the dataset's order.
    accounts: Vec<String>,
    summary: Summary,
}

/// Loads the dataset into the server at `target` (`host:port`, scheme
/// optional), calling with the options' API key when it has one.
pub async fn load(target: &str, options: &ClientOptions) -> anyhow::Result<Summary> {
    let data = Dataset::load()?;
    let channel = contracts::client::connect(target, options)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut h = Health::new(channel.clone());
    let anchor = anchor(&mut h, data.anchor_account()?).await?;
    let mut loader = Loader {
        h,
        p: Pipeline::new(channel.clone()),
        c: Credit::new(channel),
        data: &data,
        anchor,
        products: Vec::new(),
        accounts: Vec::new(),
        summary: Summary::default(),
    };
    loader.products().await?;
    loader.accounts().await?;
    loader.cross_sells().await?;
    loader.credit().await?;
    loader.wallet().await?;
    loader.deals().await?;
    Ok(loader.summary)
}

/// The day the dataset is anchored to: today on the first load; on later
/// loads the first load's day (read back from `account`'s registration), so
/// every date — and every request id's request — stays what it was.
async fn anchor(h: &mut Health, account: &AccountRow) -> anyhow::Result<NaiveDate> {
    let today = Utc::now().date_naive();
    let known = h
        .get_account(health::GetAccountRequest {
            external_ref: crm_ref(&account.crm),
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
                .map(|d| (d + Duration::days(account.since_days_ago)).min(today))
                .unwrap_or(today))
        }
        Err(e) if e.code() == tonic::Code::NotFound => Ok(today),
        Err(e) => Err(e.into()),
    }
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
    /// Later MRR changes `(effective date, MRR)`: upsells and contractions.
    amendments: &'a [(String, &'a str)],
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

/// An account's usage, seats, survey and sentiment today and over the months
/// before: usage climbing to today's where it is high, sliding to it where
/// it is low, and an earlier survey with the same score. The health service
/// scores each past month end from them, so every account has a history.
fn account_signals(spec: &AccountRow, id: &str, core: &str) -> Vec<health::Signal> {
    use health::SignalKind as K;
    let (crm, usage) = (spec.crm.as_str(), spec.usage);
    let happy = usage >= 50;
    let usage_at = |value: u32, suffix: &str, days_ago| {
        [
            signal(
                id,
                core,
                K::Usage,
                &value.to_string(),
                "100",
                format!("{crm}-usage-{suffix}"),
                days_ago,
            ),
            signal(
                id,
                core,
                K::ActiveUsers,
                &(value.min(100) * 9 / 10).to_string(),
                "100",
                format!("{crm}-seats-{suffix}"),
                days_ago,
            ),
        ]
    };
    let mut signals = usage_at(usage, "1", 2).to_vec();
    signals.push(signal(
        id,
        "",
        K::Nps,
        if happy { "9" } else { "6" },
        "",
        format!("{crm}-nps-1"),
        20,
    ));
    signals.push(signal(
        id,
        "",
        K::CsmSentiment,
        if happy { "4" } else { "3" },
        "",
        format!("{crm}-sentiment-1"),
        5,
    ));
    // A reading every four weeks since the account joined.
    for month in 1..=6u32 {
        let days_ago = 33 + 28 * (i64::from(month) - 1);
        if days_ago >= spec.since_days_ago {
            break;
        }
        let then = if happy {
            usage.saturating_sub(4 * month)
        } else {
            usage + 6 * month
        };
        signals.extend(usage_at(then, &format!("m{month}"), days_ago));
    }
    if spec.since_days_ago > 110 {
        signals.push(signal(
            id,
            "",
            K::Nps,
            if happy { "9" } else { "6" },
            "",
            format!("{crm}-nps-0"),
            110,
        ));
    }
    signals
}

/// A deal's path to its target stage, through the stages before it.
fn path(target: pipeline::Stage, handed_off: bool) -> &'static [pipeline::Stage] {
    use pipeline::Stage as S;
    match target {
        S::Identified => &[],
        S::Exploring => &[S::Exploring],
        S::Qualified => &[S::Exploring, S::Qualified],
        S::Proposed => &[S::Exploring, S::Qualified, S::Proposed],
        S::Negotiating | S::ClosedWon => &[S::Exploring, S::Qualified, S::Proposed, S::Negotiating],
        // Lost after Sales took it over.
        S::ClosedLost if handed_off => &[S::Exploring, S::Qualified, S::Proposed],
        _ => &[S::Exploring],
    }
}

/// `days_ago` days before `anchor` at `hour`:00 UTC (always in the past:
/// the anchor is today at the latest), or `None` for none or 0: now.
fn past(anchor: NaiveDate, days_ago: Option<i64>, hour: u32) -> Option<prost_types::Timestamp> {
    days_ago
        .filter(|d| *d > 0)
        .and_then(|d| (anchor - Duration::days(d)).and_hms_opt(hour, 0, 0))
        .map(|t| contracts::wire::timestamp(t.and_utc()))
}

/// Answers FAILED_PRECONDITION (already done) as done.
fn done_already<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<(), tonic::Status> {
    match result {
        Err(e) if e.code() != tonic::Code::FailedPrecondition => Err(e),
        _ => Ok(()),
    }
}

impl Loader<'_> {
    /// `days` before (negative: after) the anchor, as the wire writes a date.
    fn day(&self, days_ago: i64) -> String {
        (self.anchor - Duration::days(days_ago)).to_string()
    }

    fn account_id(&self, crm: &str) -> anyhow::Result<String> {
        let (index, _) = self.data.account(crm)?;
        self.accounts
            .get(index)
            .cloned()
            .context("account not loaded")
    }

    fn product_id(&self, name: &str) -> anyhow::Result<String> {
        let index = self.data.product(name)?;
        self.products
            .get(index)
            .cloned()
            .context("product not loaded")
    }

    fn core(&self) -> anyhow::Result<String> {
        self.products.first().cloned().context("no core product")
    }

    async fn products(&mut self) -> anyhow::Result<()> {
        let existing = self
            .h
            .list_products(health::ListProductsRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner()
            .products;
        for spec in &self.data.products {
            if let Some(p) = existing.iter().find(|p| p.name == spec.name) {
                self.products.push(p.product_id.clone());
                continue;
            }
            let product = product_of(spec, self.products.first())?;
            let made = self
                .h
                .upsert_product(health::UpsertProductRequest {
                    request_id: format!("demo-product-{}", spec.name),
                    product: Some(product),
                })
                .await?
                .into_inner()
                .product
                .context("product")?;
            self.products.push(made.product_id);
        }
        self.summary.products = self.products.len();
        Ok(())
    }

    async fn accounts(&mut self) -> anyhow::Result<()> {
        let core = self.core()?;
        for spec in &self.data.accounts {
            let since = self.day(spec.since_days_ago);
            let account = self
                .h
                .upsert_account(health::UpsertAccountRequest {
                    external_ref: crm_ref(&spec.crm),
                    name: spec.name.clone(),
                    segment: named(&spec.segment, Segment::from_str_name)? as i32,
                    customer_since: since.clone(),
                    fiscal_year_start_month: spec.fiscal_month,
                    owner_csm: spec.csm.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .account
                .context("account")?;
            let id = account.account_id;
            let amendments: Vec<(String, &str)> = spec
                .amendments
                .iter()
                .map(|(days_ago, mrr)| (self.day(*days_ago), mrr.as_str()))
                .collect();
            let contract = Contract {
                key: &format!("{}-core", spec.crm),
                account: &id,
                product: &core,
                tier: "PROFESSIONAL",
                mrr: &spec.core_mrr,
                start: &since,
                end: "",
                amendments: &amendments,
            };
            subscription(&mut self.h, contract).await?;
            self.summary.subscriptions += 1;
            let signals = self.signals_of(spec, &id, &core)?;
            self.summary.signals += self
                .h
                .record_signals(health::RecordSignalsRequest {
                    request_id: String::new(),
                    signals,
                })
                .await?
                .into_inner()
                .accepted;
            self.accounts.push(id);
        }
        self.summary.accounts = self.accounts.len();
        Ok(())
    }

    /// An account's signals: its history, what fires its triggers (in the
    /// same batch, so the month ends are scored with them), and its logins
    /// — heavy use (power users) only where usage is high.
    fn signals_of(
        &self,
        spec: &AccountRow,
        id: &str,
        core: &str,
    ) -> anyhow::Result<Vec<health::Signal>> {
        let mut signals = account_signals(spec, id, core);
        for s in &spec.signals {
            let kind = named(&s.kind, health::SignalKind::from_str_name)?;
            let product = if s.core { core } else { "" };
            signals.push(signal(id, product, kind, "1", "", s.id.clone(), s.days_ago));
        }
        let logins = if spec.usage >= 88 { "40" } else { "12" };
        for day in 0..3 {
            let external = format!("{}-logins-{day}", spec.crm);
            signals.push(signal(
                id,
                core,
                health::SignalKind::Login,
                logins,
                "",
                external,
                day,
            ));
        }
        Ok(signals)
    }

    async fn cross_sells(&mut self) -> anyhow::Result<()> {
        let this_month = self.anchor.with_day(1).unwrap_or(self.anchor).to_string();
        for sell in &self.data.cross_sells {
            let start = match sell.start_days_ago {
                Some(days_ago) if !sell.starts_this_month => self.day(days_ago),
                _ => this_month.clone(),
            };
            let end = sell.end_days_ago.map(|d| self.day(d)).unwrap_or_default();
            let contract = Contract {
                key: &sell.key,
                account: &self.account_id(&sell.account)?,
                product: &self.product_id(&sell.product)?,
                tier: "STARTER",
                mrr: &sell.mrr,
                start: &start,
                end: &end,
                amendments: &[],
            };
            let id = subscription(&mut self.h, contract).await?;
            if let Some(cancel) = &sell.cancel {
                let cancelled = self
                    .h
                    .cancel_subscription(health::CancelSubscriptionRequest {
                        request_id: cancel.request_id.clone(),
                        subscription_id: id,
                        cancel_date: self.day(cancel.days_ago),
                        reason: cancel.reason.clone(),
                        time_zone: String::new(),
                    })
                    .await;
                done_already(cancelled)?;
            }
        }
        self.summary.subscriptions += self.data.cross_sells.len();
        Ok(())
    }

    /// The credit policy (unless one is in force) and the people directory:
    /// who the participants are, so a key named after one of them reads
    /// their pay.
    async fn credit(&mut self) -> anyhow::Result<()> {
        let policy = &self.data.policy;
        let in_force = self
            .c
            .get_credit_policy(credit::GetCreditPolicyRequest {
                policy_id: policy.policy_id.clone(),
                version: 0,
                as_of_date: policy.effective_date.clone(),
            })
            .await;
        if in_force.is_err() {
            self.c
                .upsert_credit_policy(credit::UpsertCreditPolicyRequest {
                    request_id: policy.request_id.clone(),
                    policy: Some(credit::CreditPolicy {
                        policy_id: policy.policy_id.clone(),
                        effective_date: policy.effective_date.clone(),
                        origination_percent: policy.origination_percent.clone(),
                        hold_days: policy.hold_days,
                        clawback_window_days: policy.clawback_window_days,
                        ..Default::default()
                    }),
                })
                .await?;
        }
        for person in &self.data.people {
            // Idempotent by content: the same person again adds no version.
            self.c
                .upsert_person(credit::UpsertPersonRequest {
                    request_id: String::new(),
                    person: Some(credit::Person {
                        person_id: person.id.clone(),
                        display_name: person.name.clone(),
                        role: named(&person.role, credit::PersonRole::from_str_name)? as i32,
                        team: person.team.clone(),
                        ..Default::default()
                    }),
                })
                .await?;
        }
        Ok(())
    }

    async fn wallet(&mut self) -> anyhow::Result<()> {
        for estimate in &self.data.wallet {
            let account_id = self.account_id(&estimate.account)?;
            let effective = self.day(estimate.days_ago);
            for (area, amount, served) in &estimate.lines {
                let request_id = match &estimate.vintage {
                    Some(vintage) => format!("{}-{area}-{vintage}", estimate.request_prefix),
                    None => format!("{}-{area}", estimate.request_prefix),
                };
                self.p
                    .upsert_wallet_estimate(pipeline::UpsertWalletEstimateRequest {
                        request_id,
                        estimate: Some(pipeline::WalletEstimate {
                            account_id: account_id.clone(),
                            product_area: area.clone(),
                            annual_spend: usd(amount),
                            served_by: named(served, pipeline::WalletServedBy::from_str_name)?
                                as i32,
                            effective_date: effective.clone(),
                            ..Default::default()
                        }),
                    })
                    .await?;
            }
        }
        Ok(())
    }

    async fn deals(&mut self) -> anyhow::Result<()> {
        let data = self.data;
        for deal in &data.deals {
            self.deal(deal).await?;
            self.summary.opportunities += 1;
            if deal.target == "STAGE_CLOSED_WON" {
                // The close-won outbox takes it from here: the new
                // subscription in health, the credits in credit.
                self.summary.won_deals += 1;
            }
        }
        Ok(())
    }

    /// One deal: created (owned by the account's CSM), moved along its path
    /// — handed off to Sales on the way to PROPOSED where it has a handoff —
    /// and closed if its target is a close.
    async fn deal(&mut self, deal: &DealRow) -> anyhow::Result<()> {
        use pipeline::Stage as S;
        let target = named(&deal.target, S::from_str_name)?;
        let mut opp = self.create(deal).await?;
        let rid = |step: &str| format!("demo-{}-{step}", deal.key);
        for (step, stage) in path(target, deal.handoff.is_some()).iter().enumerate() {
            if let Some(handoff) = &deal.handoff
                && *stage == S::Proposed
            {
                let handed = self
                    .hand_off(deal, handoff, &opp.opportunity_id, target)
                    .await?;
                opp = handed.unwrap_or(opp);
            }
            let override_reason = if deal.book {
                self.data.story.override_reason.clone()
            } else {
                String::new()
            };
            opp = self
                .p
                .advance_stage(pipeline::AdvanceStageRequest {
                    request_id: rid(&format!("stage-{step}")),
                    opportunity_id: opp.opportunity_id.clone(),
                    etag: opp.etag.clone(),
                    to_stage: *stage as i32,
                    override_reason,
                    reopen: false,
                    reason: String::new(),
                    occur_time: past(self.anchor, deal.stage_days_ago.get(step).copied(), 14),
                })
                .await?
                .into_inner()
                .opportunity
                .context("opportunity")?;
        }
        if target == S::ClosedWon || target == S::ClosedLost {
            let lost = target == S::ClosedLost;
            self.p
                .close_opportunity(pipeline::CloseOpportunityRequest {
                    request_id: rid("close"),
                    opportunity_id: opp.opportunity_id.clone(),
                    etag: opp.etag.clone(),
                    won: !lost,
                    lost_reason: if lost {
                        self.data.story.lost_reason.clone()
                    } else {
                        String::new()
                    },
                    close_date: self.anchor.to_string(),
                })
                .await?;
        }
        Ok(())
    }

    async fn create(&mut self, deal: &DealRow) -> anyhow::Result<pipeline::Opportunity> {
        let story = &self.data.story;
        let (_, account) = self.data.account(&deal.account)?;
        let motion = named(&deal.motion, Motion::from_str_name)?;
        let cross_sell =
            motion == Motion::CrossSellAdjacent || motion == Motion::CrossSellComplementary;
        let opportunity = pipeline::Opportunity {
            account_id: self.account_id(&deal.account)?,
            product_id: self.product_id(&deal.product)?,
            source_product_id: if cross_sell {
                self.core()?
            } else {
                String::new()
            },
            motion: motion as i32,
            amount: usd(&deal.amount),
            name: format!("{} — {}", account.name, deal.key),
            close_date: self.day(-story.close_in_days),
            owner: account.csm.clone(),
            owner_team: self.data.person(&account.csm)?.team.clone(),
            originator: account.csm.clone(),
            stakeholders: vec![story.stakeholder()],
            qualification: Some(story.qualification()?),
            discovery_notes: story.discovery_notes.clone(),
            ..Default::default()
        };
        self.p
            .create_opportunity(pipeline::CreateOpportunityRequest {
                request_id: format!("demo-{}-create", deal.key),
                opportunity: Some(opportunity),
                occur_time: past(self.anchor, Some(deal.created_days_ago), 9),
            })
            .await?
            .into_inner()
            .opportunity
            .context("opportunity")
    }

    /// Requests the handoff to Sales, and accepts it unless the deal stops at
    /// PROPOSED (the handoff Sales has not answered): the opportunity as the
    /// accept left it.
    async fn hand_off(
        &mut self,
        deal: &DealRow,
        handoff: &HandoffRow,
        opportunity_id: &str,
        target: pipeline::Stage,
    ) -> anyhow::Result<Option<pipeline::Opportunity>> {
        let requested = self
            .p
            .request_handoff(pipeline::RequestHandoffRequest {
                request_id: format!("demo-{}-handoff", deal.key),
                opportunity_id: opportunity_id.into(),
                package: Some(self.data.story.handoff_package()?),
                occur_time: past(self.anchor, handoff.days_ago, 11),
            })
            .await?
            .into_inner()
            .handoff
            .context("handoff")?;
        if target == pipeline::Stage::Proposed {
            return Ok(None);
        }
        let accepted = self
            .p
            .accept_handoff(pipeline::AcceptHandoffRequest {
                request_id: format!("demo-{}-accept", deal.key),
                handoff_id: requested.handoff_id,
                owner: handoff.owner.clone(),
                owner_team: handoff.team.clone(),
            })
            .await?
            .into_inner();
        accepted.opportunity.context("opportunity").map(Some)
    }
}

/// The product `spec` describes; `core` is the id its adjacency points at.
fn product_of(spec: &ProductRow, core: Option<&String>) -> anyhow::Result<health::Product> {
    let adjacencies = match (&spec.adjacency, core) {
        (Some(adjacency), Some(core)) => vec![health::ProductAdjacency {
            product_id: core.clone(),
            adjacency: named(adjacency, health::Adjacency::from_str_name)? as i32,
        }],
        _ => Vec::new(),
    };
    let segment = |name: &str| named(name, Segment::from_str_name).map(|s| s as i32);
    Ok(health::Product {
        name: spec.name.clone(),
        family: spec.family.clone(),
        tiers: spec.tiers.clone(),
        adjacencies,
        fits_segments: spec
            .segments
            .iter()
            .map(|s| segment(s))
            .collect::<Result<_, _>>()?,
        wallet_estimates: spec
            .wallets
            .iter()
            .map(|(s, amount)| {
                Ok(health::SegmentWallet {
                    segment: segment(s)?,
                    annual_wallet: usd(amount),
                })
            })
            .collect::<anyhow::Result<_>>()?,
        margin_percent: spec.margin.clone(),
        ..Default::default()
    })
}

/// Upserts the contract with its first MRR, then each amendment. Each MRR is
/// stated with the day it holds from, so loading again (when later
/// amendments exist) writes nothing.
async fn subscription(h: &mut Health, c: Contract<'_>) -> anyhow::Result<String> {
    let mut sub = health::Subscription {
        account_id: c.account.into(),
        product_id: c.product.into(),
        tier: c.tier.into(),
        mrr: usd(c.mrr),
        start_date: c.start.into(),
        end_date: c.end.into(),
        quantity: 1,
        quota_limit: 1000,
        external_ref: crm_ref(c.key),
        ..Default::default()
    };
    let id = h
        .upsert_subscription(health::UpsertSubscriptionRequest {
            subscription: Some(sub.clone()),
            mrr_effective_date: c.start.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .subscription
        .context("subscription")?
        .subscription_id;
    for (date, amount) in c.amendments {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_dataset_reads_and_names_only_what_it_has() {
        let data = Dataset::load().unwrap();
        assert_eq!(data.accounts.len(), 12);
        assert_eq!(data.products.len(), 5);
        assert_eq!(data.deals.len(), 14);
        assert_eq!(data.anchor_account().unwrap().name, "Bluth Homes");
    }

    #[test]
    fn a_misspelt_name_in_the_dataset_is_an_error() {
        let mut data = Dataset::load().unwrap();
        data.deals[0].motion = "MOTION_CROSS_SELL_ADJACNT".into();
        assert!(data.check().is_err());
        data.deals[0].motion = "MOTION_CROSS_SELL_ADJACENT".into();
        data.deals[0].account = "0015g00000NONE".into();
        assert!(data.check().is_err());
    }

    #[test]
    fn deals_walk_the_stages_before_their_target() {
        use pipeline::Stage as S;
        assert!(path(S::Identified, false).is_empty());
        assert_eq!(path(S::ClosedWon, true).last(), Some(&S::Negotiating));
        assert_eq!(path(S::ClosedLost, true).last(), Some(&S::Proposed));
        assert_eq!(path(S::ClosedLost, false), &[S::Exploring]);
    }

    #[test]
    fn history_readings_stop_at_registration() {
        let data = Dataset::load().unwrap();
        let (_, bluth) = data.account("0015g00000BLTH").unwrap();
        let signals = account_signals(bluth, "a", "p");
        // Registered 75 days ago: readings at 33 and 61 days, no earlier survey.
        assert!(signals.iter().any(|s| s.external_id.ends_with("usage-m2")));
        assert!(!signals.iter().any(|s| s.external_id.ends_with("usage-m3")));
        assert!(!signals.iter().any(|s| s.external_id.ends_with("nps-0")));
    }
}
