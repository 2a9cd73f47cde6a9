//! Malformed requests to all three services, table-driven: wrong types,
//! out-of-range numbers, unknown enum values, empty and malformed ids,
//! references to nothing, bad money, dates, months and time zones, splits
//! that do not total 100%, strings beyond their limits, bytes that are not
//! UTF-8, illegal stage moves, page abuse, batches over the maximum and
//! messages over `--max-message-bytes`.
//!
//! Each case names the code it must get and what the details must say (the
//! `BadRequest` field path for INVALID_ARGUMENT, the resource for NOT_FOUND,
//! the `ErrorInfo` reason otherwise). After every case the stored state is
//! read back through the API (every list and get of the fixture, plus each
//! service's `WatchEvents` log) and must be what it was before. No case may
//! answer INTERNAL or take the server down.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contracts::pb::common::v1::{Event, Money, Motion, Segment, WatchEventsOptions};
use contracts::pb::credit::v1 as credit;
use contracts::pb::health::v1 as health;
use contracts::pb::pipeline::v1 as pipeline;
use prost::Message;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::harness::{Backend, Server};
use crate::on_both_databases;

on_both_databases!(
    malformed_requests_are_refused_and_change_nothing,
    ids_in_any_spelling_name_the_same_resource,
);

/// Largest message the server under test accepts: small enough that an
/// oversize request is cheap, large enough for a batch of 5001 signals.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

// ------------------------------------------------------------------ helpers

fn money(currency: &str, amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: currency.into(),
        amount: amount.into(),
    })
}

fn usd(amount: &str) -> Option<Money> {
    money("USD", amount)
}

/// A syntactically valid id that names nothing.
fn ghost() -> String {
    domain::EventId::new().to_string()
}

fn long(bytes: usize) -> String {
    "x".repeat(bytes)
}

fn ts(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos })
}

/// A message body as raw bytes, for requests no generated client can send.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RawBody(pub(crate) Vec<u8>);

impl Message for RawBody {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// `message` encoded, with the bytes of `marker` (a string field's value)
/// overwritten by bytes that are not UTF-8. The length stays the same, so
/// the framing is intact and only the string is invalid.
fn with_invalid_utf8(message: &impl Message, marker: &str) -> Vec<u8> {
    let mut bytes = message.encode_to_vec();
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .expect("marker in the encoding");
    for (i, b) in bytes[at..at + marker.len()].iter_mut().enumerate() {
        *b = if i % 2 == 0 { 0xff } else { 0xc3 };
    }
    bytes
}

async fn raw_call(channel: Channel, path: &'static str, body: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    grpc.unary(
        tonic::Request::new(RawBody(body)),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        contracts::codec::Codec::<RawBody, ()>::default(),
    )
    .await
    .map(|_| ())
}

struct Clients {
    health: health::account_health_service_client::AccountHealthServiceClient<Channel>,
    pipeline:
        pipeline::opportunity_pipeline_service_client::OpportunityPipelineServiceClient<Channel>,
    credit: credit::compensation_credit_service_client::CompensationCreditServiceClient<Channel>,
    channel: Channel,
}

impl Clients {
    async fn of(server: &Server) -> Clients {
        let channel = server.channel().await;
        Clients {
            health: health::account_health_service_client::AccountHealthServiceClient::new(
                channel.clone(),
            )
            .max_decoding_message_size(usize::MAX),
            pipeline:
                pipeline::opportunity_pipeline_service_client::OpportunityPipelineServiceClient::new(
                    channel.clone(),
                ),
            credit:
                credit::compensation_credit_service_client::CompensationCreditServiceClient::new(
                    channel.clone(),
                ),
            channel,
        }
    }
}

/// Every RPC a case may call, with its request.
macro_rules! calls {
    ($($variant:ident => $service:ident.$method:ident($request:ty)),* $(,)?) => {
        #[allow(clippy::large_enum_variant)]
        enum Call {
            $($variant($request),)*
            /// Client stream of `StreamSignals` messages.
            StreamSignals(Vec<health::StreamSignalsRequest>),
            /// A body sent as is to a method path.
            Raw(&'static str, Vec<u8>),
        }

        impl Call {
            async fn send(self, c: &mut Clients) -> Result<(), Status> {
                match self {
                    $(Call::$variant(request) => c.$service.$method(request).await.map(|_| ()),)*
                    Call::StreamSignals(messages) => c
                        .health
                        .stream_signals(tokio_stream::iter(messages))
                        .await
                        .map(|_| ()),
                    Call::Raw(path, body) => raw_call(c.channel.clone(), path, body).await,
                }
            }
        }
    };
}

calls! {
    UpsertAccount => health.upsert_account(health::UpsertAccountRequest),
    GetAccount => health.get_account(health::GetAccountRequest),
    ListAccounts => health.list_accounts(health::ListAccountsRequest),
    UpsertProduct => health.upsert_product(health::UpsertProductRequest),
    ListProducts => health.list_products(health::ListProductsRequest),
    UpsertSubscription => health.upsert_subscription(health::UpsertSubscriptionRequest),
    CancelSubscription => health.cancel_subscription(health::CancelSubscriptionRequest),
    ListSubscriptions => health.list_subscriptions(health::ListSubscriptionsRequest),
    RecordSignals => health.record_signals(health::RecordSignalsRequest),
    UpsertScorecard => health.upsert_scorecard(health::UpsertScorecardRequest),
    GetAccountHealth => health.get_account_health(health::GetAccountHealthRequest),
    ListAccountHealth => health.list_account_health(health::ListAccountHealthRequest),
    GetHealthHistory => health.get_health_history(health::GetHealthHistoryRequest),
    OverrideHealth => health.override_health(health::OverrideHealthRequest),
    ListTriggers => health.list_triggers(health::ListTriggersRequest),
    GetTrigger => health.get_trigger(health::GetTriggerRequest),
    ApplyUpsell => health.apply_upsell(health::ApplyUpsellRequest),
    ConvertTrigger => health.convert_trigger(health::ConvertTriggerRequest),
    CloseTrigger => health.close_trigger(health::CloseTriggerRequest),
    GetRevenueMetrics => health.get_revenue_metrics(health::GetRevenueMetricsRequest),
    GetCohortRevenue => health.get_cohort_revenue(health::GetCohortRevenueRequest),
    HealthEvents => health.watch_events(health::WatchEventsRequest),
    CreateOpportunity => pipeline.create_opportunity(pipeline::CreateOpportunityRequest),
    CreateFromTrigger => pipeline.create_opportunity_from_trigger(pipeline::CreateOpportunityFromTriggerRequest),
    GetOpportunity => pipeline.get_opportunity(pipeline::GetOpportunityRequest),
    ListOpportunities => pipeline.list_opportunities(pipeline::ListOpportunitiesRequest),
    UpdateOpportunity => pipeline.update_opportunity(pipeline::UpdateOpportunityRequest),
    AdvanceStage => pipeline.advance_stage(pipeline::AdvanceStageRequest),
    CloseOpportunity => pipeline.close_opportunity(pipeline::CloseOpportunityRequest),
    History => pipeline.get_opportunity_history(pipeline::GetOpportunityHistoryRequest),
    ScoreQualification => pipeline.score_qualification(pipeline::ScoreQualificationRequest),
    RouteOpportunity => pipeline.route_opportunity(pipeline::RouteOpportunityRequest),
    RequestHandoff => pipeline.request_handoff(pipeline::RequestHandoffRequest),
    AcceptHandoff => pipeline.accept_handoff(pipeline::AcceptHandoffRequest),
    RejectHandoff => pipeline.reject_handoff(pipeline::RejectHandoffRequest),
    ListHandoffs => pipeline.list_handoffs(pipeline::ListHandoffsRequest),
    UpsertWallet => pipeline.upsert_wallet_estimate(pipeline::UpsertWalletEstimateRequest),
    GetWhitespace => pipeline.get_whitespace(pipeline::GetWhitespaceRequest),
    GetForecast => pipeline.get_pipeline_forecast(pipeline::GetPipelineForecastRequest),
    GetPerformance => pipeline.get_team_performance(pipeline::GetTeamPerformanceRequest),
    GetWalletShare => pipeline.get_wallet_share_history(pipeline::GetWalletShareHistoryRequest),
    PipelineEvents => pipeline.watch_events(pipeline::WatchEventsRequest),
    UpsertPolicy => credit.upsert_credit_policy(credit::UpsertCreditPolicyRequest),
    GetPolicy => credit.get_credit_policy(credit::GetCreditPolicyRequest),
    RecordDeal => credit.record_deal_credits(credit::RecordDealCreditsRequest),
    ReplaceSplits => credit.replace_deal_splits(credit::ReplaceDealSplitsRequest),
    GetDealCredits => credit.get_deal_credits(credit::GetDealCreditsRequest),
    Approve => credit.approve_credits(credit::ApproveCreditsRequest),
    Clawback => credit.apply_clawback(credit::ApplyClawbackRequest),
    ListLedger => credit.list_ledger_entries(credit::ListLedgerEntriesRequest),
    OpenDispute => credit.open_dispute(credit::OpenDisputeRequest),
    ResolveDispute => credit.resolve_dispute(credit::ResolveDisputeRequest),
    GetStatement => credit.get_statement(credit::GetStatementRequest),
    CreditEvents => credit.watch_events(credit::WatchEventsRequest),
    UpsertPerson => credit.upsert_person(credit::UpsertPersonRequest),
    GetPerson => credit.get_person(credit::GetPersonRequest),
    ListPeople => credit.list_people(credit::ListPeopleRequest),
    ListDisputes => credit.list_disputes(credit::ListDisputesRequest),
}

/// What a case must be answered with.
#[derive(Debug, Clone)]
enum Want {
    /// INVALID_ARGUMENT whose first `BadRequest` violation is this field.
    Field(String),
    /// INVALID_ARGUMENT for a body that is no message at all (no field to name).
    Malformed,
    /// NOT_FOUND with `ResourceInfo` of this resource type.
    NotFound(&'static str),
    /// FAILED_PRECONDITION with this `ErrorInfo` reason.
    Precondition(&'static str),
    /// ABORTED with this `ErrorInfo` reason.
    Aborted(&'static str),
    /// ALREADY_EXISTS with this `ErrorInfo` reason.
    AlreadyExists(&'static str),
    /// RESOURCE_EXHAUSTED with `ErrorInfo` reason `MESSAGE_TOO_LARGE`: a
    /// message over `--max-message-bytes`, refused before any service code runs.
    TooLarge,
}

fn field(path: impl Into<String>) -> Want {
    Want::Field(path.into())
}

struct Case {
    name: &'static str,
    call: Call,
    want: Want,
}

fn case(name: &'static str, call: Call, want: Want) -> Case {
    Case { name, call, want }
}

/// Why `status` does not answer `want` (`None` when it does).
fn mismatch(status: &Status, want: &Want) -> Option<String> {
    let details = status.get_error_details();
    let reason = details.error_info().map(|i| i.reason.clone());
    let first_field = details
        .bad_request()
        .and_then(|b| b.field_violations.first())
        .map(|v| v.field.clone());
    let (code, ok) = match want {
        Want::Field(path) => (
            Code::InvalidArgument,
            first_field.as_deref() == Some(path.as_str())
                && reason.as_deref() == Some("INVALID_ARGUMENT"),
        ),
        Want::Malformed => (
            Code::InvalidArgument,
            reason.as_deref() == Some("MALFORMED_REQUEST"),
        ),
        Want::NotFound(resource) => (
            Code::NotFound,
            details
                .resource_info()
                .is_some_and(|r| r.resource_type == *resource),
        ),
        Want::Precondition(r) => (Code::FailedPrecondition, reason.as_deref() == Some(*r)),
        Want::Aborted(r) => (Code::Aborted, reason.as_deref() == Some(*r)),
        Want::AlreadyExists(r) => (Code::AlreadyExists, reason.as_deref() == Some(*r)),
        Want::TooLarge => (
            Code::ResourceExhausted,
            reason.as_deref() == Some("MESSAGE_TOO_LARGE"),
        ),
    };
    (status.code() != code || !ok).then(|| {
        format!(
            "got {:?} {:?} (field {first_field:?}, reason {reason:?}); want {want:?}",
            status.code(),
            status.message()
        )
    })
}

// ------------------------------------------------------------------ events

/// Every event a service's `WatchEvents` has streamed since the start.
#[derive(Clone, Default)]
struct EventLog(Arc<Mutex<Vec<Event>>>);

impl EventLog {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn follow<S>(&self, stream: S)
    where
        S: tokio_stream::Stream<Item = Result<Option<Event>, Status>> + Send + 'static,
    {
        let log = self.clone();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(Ok(Some(event))) = stream.next().await {
                log.0.lock().unwrap().push(event);
            }
        });
    }
}

struct Events {
    health: EventLog,
    pipeline: EventLog,
    credit: EventLog,
}

impl Events {
    async fn follow(c: &mut Clients) -> Events {
        let events = Events {
            health: EventLog::default(),
            pipeline: EventLog::default(),
            credit: EventLog::default(),
        };
        let options = || Some(WatchEventsOptions::default());
        let s = c
            .health
            .watch_events(health::WatchEventsRequest { options: options() })
            .await
            .unwrap()
            .into_inner();
        events.health.follow(s.map(|r| r.map(|r| r.event)));
        let s = c
            .pipeline
            .watch_events(pipeline::WatchEventsRequest { options: options() })
            .await
            .unwrap()
            .into_inner();
        events.pipeline.follow(s.map(|r| r.map(|r| r.event)));
        let s = c
            .credit
            .watch_events(credit::WatchEventsRequest { options: options() })
            .await
            .unwrap()
            .into_inner();
        events.credit.follow(s.map(|r| r.map(|r| r.event)));
        events
    }

    fn counts(&self) -> [usize; 3] {
        [self.health.len(), self.pipeline.len(), self.credit.len()]
    }

    /// Waits until no event has arrived for a second (background work such
    /// as health recomputation has finished).
    async fn settle(&self) -> [usize; 3] {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = self.counts();
        let mut quiet_since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.counts();
            if now != last {
                last = now;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= Duration::from_secs(1) {
                return now;
            }
            assert!(Instant::now() < deadline, "events never settled: {now:?}");
        }
    }
}

// ------------------------------------------------------------------ fixture

/// The stored state the cases run against.
struct Fixture {
    account: String,
    product: String,
    subscription: String,
    trigger: String,
    /// Open, at IDENTIFIED, with an open handoff.
    opportunity: pipeline::Opportunity,
    /// CLOSED_LOST.
    lost: pipeline::Opportunity,
    handoff: String,
    deal: String,
    deal_request: credit::RecordDealCreditsRequest,
    entries: Vec<String>,
    open_dispute: String,
    resolved_dispute: String,
}

fn participant(id: &str, role: credit::CreditRole, percent: &str) -> credit::Participant {
    credit::Participant {
        participant_id: id.into(),
        role: role as i32,
        percent: percent.into(),
        ..Default::default()
    }
}

fn stakeholder() -> pipeline::Stakeholder {
    pipeline::Stakeholder {
        name: "Dana".into(),
        role: "CFO".into(),
        budget_holder: true,
        decision_maker: true,
        ..Default::default()
    }
}

fn package() -> pipeline::HandoffPackage {
    pipeline::HandoffPackage {
        discovery_summary: "storage at 92% of the plan".into(),
        pain_points: vec!["limits".into()],
        stakeholders: vec![stakeholder()],
        decision_process: "CFO signs".into(),
        budget_status: pipeline::BudgetStatus::Allocated as i32,
        timing: "this quarter".into(),
        competitive_landscape: "none".into(),
        joint_call_time: None,
    }
}

async fn fixture(c: &mut Clients) -> Fixture {
    let account = c
        .health
        .upsert_account(health::UpsertAccountRequest {
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: "bad-input-acme".into(),
            }),
            name: "Acme".into(),
            segment: Segment::Enterprise as i32,
            customer_since: "2025-01-15".into(),
            owner_csm: "carla.csm".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .account_id;
    let product = c
        .health
        .upsert_product(health::UpsertProductRequest {
            request_id: String::new(),
            product: Some(health::Product {
                name: "Storage".into(),
                family: "infra".into(),
                tiers: vec!["STARTER".into(), "ENTERPRISE".into()],
                margin_percent: "70".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap()
        .product_id;
    let subscription = c
        .health
        .upsert_subscription(health::UpsertSubscriptionRequest {
            subscription: Some(health::Subscription {
                account_id: account.clone(),
                product_id: product.clone(),
                tier: "STARTER".into(),
                mrr: usd("1000.00"),
                start_date: "2025-02-01".into(),
                quota_limit: 100,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap()
        .subscription_id;
    c.health
        .record_signals(health::RecordSignalsRequest {
            request_id: String::new(),
            signals: vec![health::Signal {
                account_id: account.clone(),
                product_id: product.clone(),
                kind: health::SignalKind::Usage as i32,
                value: "92".into(),
                limit: "100".into(),
                source: "telemetry".into(),
                external_id: "bad-input-usage".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    // Reading health recomputes it (and opens the usage trigger) now.
    c.health
        .get_account_health(health::GetAccountHealthRequest {
            account_id: account.clone(),
        })
        .await
        .unwrap();
    let trigger = c
        .health
        .list_triggers(health::ListTriggersRequest {
            account_id: account.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .triggers
        .first()
        .expect("the usage signal opened a trigger")
        .trigger_id
        .clone();

    let new_opportunity = || pipeline::Opportunity {
        account_id: account.clone(),
        product_id: product.clone(),
        motion: Motion::UpsellCapacity as i32,
        amount: usd("50000.00"),
        close_date: "2027-03-31".into(),
        owner: "carla.csm".into(),
        originator: "carla.csm".into(),
        stakeholders: vec![stakeholder()],
        ..Default::default()
    };
    let create = |o| {
        let mut client = c.pipeline.clone();
        async move {
            client
                .create_opportunity(pipeline::CreateOpportunityRequest {
                    occur_time: None,
                    request_id: String::new(),
                    opportunity: Some(o),
                })
                .await
                .unwrap()
                .into_inner()
                .opportunity
                .unwrap()
        }
    };
    let opportunity = create(new_opportunity()).await;
    let lost = create(new_opportunity()).await;
    let lost = c
        .pipeline
        .close_opportunity(pipeline::CloseOpportunityRequest {
            opportunity_id: lost.opportunity_id.clone(),
            etag: lost.etag.clone(),
            won: false,
            lost_reason: "no budget".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    let handoff = c
        .pipeline
        .request_handoff(pipeline::RequestHandoffRequest {
            occur_time: None,
            request_id: String::new(),
            opportunity_id: opportunity.opportunity_id.clone(),
            package: Some(package()),
        })
        .await
        .unwrap()
        .into_inner()
        .handoff
        .unwrap()
        .handoff_id;
    c.pipeline
        .upsert_wallet_estimate(pipeline::UpsertWalletEstimateRequest {
            request_id: String::new(),
            estimate: Some(pipeline::WalletEstimate {
                account_id: account.clone(),
                product_area: "analytics".into(),
                annual_spend: usd("80000"),
                served_by: pipeline::WalletServedBy::Competitor as i32,
                competitor: "Initech".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();

    c.credit
        .upsert_credit_policy(credit::UpsertCreditPolicyRequest {
            request_id: String::new(),
            policy: Some(credit::CreditPolicy {
                effective_date: "2026-01-01".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    // A deal credits people of the directory.
    for (person, role) in [
        ("carla.csm", credit::PersonRole::Csm),
        ("alex.ae", credit::PersonRole::Ae),
    ] {
        c.credit
            .upsert_person(credit::UpsertPersonRequest {
                request_id: String::new(),
                person: Some(credit::Person {
                    person_id: person.into(),
                    display_name: person.into(),
                    role: role as i32,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let deal = domain::OpportunityId::new().to_string();
    let mut owner = participant("alex.ae", credit::CreditRole::Delivery, "");
    owner.owner = true;
    let deal_request = credit::RecordDealCreditsRequest {
        deal_id: deal.clone(),
        account_id: account.clone(),
        amount: usd("10000.00"),
        close_date: "2026-06-01".into(),
        participants: vec![
            participant("carla.csm", credit::CreditRole::Originator, ""),
            owner,
        ],
        ..Default::default()
    };
    let entries: Vec<String> = c
        .credit
        .record_deal_credits(deal_request.clone())
        .await
        .unwrap()
        .into_inner()
        .credits
        .unwrap()
        .entries
        .iter()
        .map(|e| e.entry_id.clone())
        .collect();
    assert_eq!(entries.len(), 2);
    let dispute = |entry: &str| credit::OpenDisputeRequest {
        request_id: String::new(),
        entry_id: entry.into(),
        reason: "the split was agreed at 30%".into(),
    };
    let open_dispute = c
        .credit
        .open_dispute(dispute(&entries[0]))
        .await
        .unwrap()
        .into_inner()
        .dispute
        .unwrap()
        .dispute_id;
    let resolved_dispute = c
        .credit
        .open_dispute(dispute(&entries[1]))
        .await
        .unwrap()
        .into_inner()
        .dispute
        .unwrap()
        .dispute_id;
    c.credit
        .resolve_dispute(credit::ResolveDisputeRequest {
            dispute_id: resolved_dispute.clone(),
            resolution: credit::DisputeResolution::Reject as i32,
            note: "as agreed".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    Fixture {
        account,
        product,
        subscription,
        trigger,
        opportunity,
        lost,
        handoff,
        deal,
        deal_request,
        entries,
        open_dispute,
        resolved_dispute,
    }
}

/// The service a case calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Health,
    Pipeline,
    Credit,
}

impl Call {
    fn service(&self) -> Service {
        match self {
            Call::Raw(path, _) if path.contains(".credit.") => Service::Credit,
            Call::Raw(path, _) if path.contains(".pipeline.") => Service::Pipeline,
            Call::Raw(..)
            | Call::StreamSignals(_)
            | Call::UpsertAccount(_)
            | Call::GetAccount(_)
            | Call::ListAccounts(_)
            | Call::UpsertProduct(_)
            | Call::ListProducts(_)
            | Call::UpsertSubscription(_)
            | Call::CancelSubscription(_)
            | Call::ListSubscriptions(_)
            | Call::RecordSignals(_)
            | Call::UpsertScorecard(_)
            | Call::GetAccountHealth(_)
            | Call::ListAccountHealth(_)
            | Call::GetHealthHistory(_)
            | Call::OverrideHealth(_)
            | Call::ListTriggers(_)
            | Call::GetTrigger(_)
            | Call::ApplyUpsell(_)
            | Call::ConvertTrigger(_)
            | Call::CloseTrigger(_)
            | Call::GetRevenueMetrics(_)
            | Call::GetCohortRevenue(_)
            | Call::HealthEvents(_) => Service::Health,
            Call::UpsertPolicy(_)
            | Call::GetPolicy(_)
            | Call::RecordDeal(_)
            | Call::ReplaceSplits(_)
            | Call::GetDealCredits(_)
            | Call::Approve(_)
            | Call::Clawback(_)
            | Call::ListLedger(_)
            | Call::OpenDispute(_)
            | Call::ResolveDispute(_)
            | Call::GetStatement(_)
            | Call::CreditEvents(_)
            | Call::UpsertPerson(_)
            | Call::GetPerson(_)
            | Call::ListPeople(_)
            | Call::ListDisputes(_) => Service::Credit,
            _ => Service::Pipeline,
        }
    }
}

/// What the API shows of one service's part of the fixture. Equal
/// snapshots before and after a case (with equal event counts: every write
/// appends an event) mean the case stored nothing.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
enum Snapshot {
    Health {
        accounts: Vec<health::Account>,
        products: Vec<health::Product>,
        subscriptions: Vec<health::Subscription>,
        triggers: Vec<health::Trigger>,
    },
    Pipeline {
        opportunities: Vec<pipeline::Opportunity>,
        history: Vec<Vec<pipeline::HistoryEntry>>,
        handoffs: Vec<pipeline::Handoff>,
        wallet: Vec<pipeline::WalletEstimate>,
    },
    Credit {
        policy: Option<credit::CreditPolicy>,
        policy_v2: Code,
        ledger: Vec<credit::LedgerEntry>,
        deal: Option<credit::DealCredits>,
    },
}

const PAGE: i32 = 1000;

async fn snapshot(c: &mut Clients, f: &Fixture, service: Service) -> Snapshot {
    match service {
        Service::Health => Snapshot::Health {
            accounts: c
                .health
                .list_accounts(health::ListAccountsRequest {
                    page_size: PAGE,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .accounts,
            products: c
                .health
                .list_products(health::ListProductsRequest {
                    page_size: PAGE,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .products,
            subscriptions: c
                .health
                .list_subscriptions(health::ListSubscriptionsRequest {
                    page_size: PAGE,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .subscriptions,
            triggers: c
                .health
                .list_triggers(health::ListTriggersRequest {
                    page_size: PAGE,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .triggers,
        },
        Service::Pipeline => {
            let mut history = Vec::new();
            for id in [&f.opportunity.opportunity_id, &f.lost.opportunity_id] {
                history.push(
                    c.pipeline
                        .get_opportunity_history(pipeline::GetOpportunityHistoryRequest {
                            opportunity_id: id.clone(),
                            page_size: PAGE,
                            ..Default::default()
                        })
                        .await
                        .unwrap()
                        .into_inner()
                        .entries,
                );
            }
            Snapshot::Pipeline {
                opportunities: c
                    .pipeline
                    .list_opportunities(pipeline::ListOpportunitiesRequest {
                        page_size: PAGE,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .opportunities,
                history,
                handoffs: c
                    .pipeline
                    .list_handoffs(pipeline::ListHandoffsRequest {
                        page_size: PAGE,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .handoffs,
                wallet: c
                    .pipeline
                    .get_whitespace(pipeline::GetWhitespaceRequest {
                        account_id: f.account.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .wallet,
            }
        }
        Service::Credit => Snapshot::Credit {
            policy: c
                .credit
                .get_credit_policy(credit::GetCreditPolicyRequest {
                    policy_id: String::new(),
                    version: 1,
                    as_of_date: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .policy,
            policy_v2: c
                .credit
                .get_credit_policy(credit::GetCreditPolicyRequest {
                    policy_id: String::new(),
                    version: 2,
                    as_of_date: String::new(),
                })
                .await
                .map_or_else(|s| s.code(), |_| Code::Ok),
            ledger: c
                .credit
                .list_ledger_entries(credit::ListLedgerEntriesRequest {
                    page_size: PAGE,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .entries,
            deal: c
                .credit
                .get_deal_credits(credit::GetDealCreditsRequest {
                    deal_id: f.deal.clone(),
                })
                .await
                .unwrap()
                .into_inner()
                .credits,
        },
    }
}

async fn snapshot_all(c: &mut Clients, f: &Fixture) -> Vec<Snapshot> {
    let mut all = Vec::new();
    for service in [Service::Health, Service::Pipeline, Service::Credit] {
        all.push(snapshot(c, f, service).await);
    }
    all
}

// ------------------------------------------------------------------ cases

/// A signal that is valid but whose account and product are the fixture's.
fn good_signal(f: &Fixture, external_id: &str) -> health::Signal {
    health::Signal {
        account_id: f.account.clone(),
        product_id: f.product.clone(),
        kind: health::SignalKind::Login as i32,
        value: "3".into(),
        source: "bad-input-probe".into(),
        external_id: external_id.into(),
        ..Default::default()
    }
}

fn signals(list: Vec<health::Signal>) -> Call {
    Call::RecordSignals(health::RecordSignalsRequest {
        request_id: String::new(),
        signals: list,
    })
}

#[rustfmt::skip]
fn health_cases(f: &Fixture, probes: &mut Vec<health::Signal>) -> Vec<Case> {
    use health::SignalKind as Kind;
    let account = |patch: fn(&mut health::UpsertAccountRequest)| {
        let mut r = health::UpsertAccountRequest {
            name: "Globex".into(),
            external_ref: Some(health::ExternalRef {
                system: "salesforce".into(),
                id: "bad-input-globex".into(),
            }),
            ..Default::default()
        };
        patch(&mut r);
        Call::UpsertAccount(r)
    };
    let product = |patch: fn(&mut health::Product)| {
        let mut p = health::Product {
            name: "Analytics".into(),
            tiers: vec!["STARTER".into()],
            ..Default::default()
        };
        patch(&mut p);
        Call::UpsertProduct(health::UpsertProductRequest {
            request_id: String::new(),
            product: Some(p),
        })
    };
    let subscription = |patch: &dyn Fn(&mut health::Subscription)| {
        let mut s = health::Subscription {
            account_id: f.account.clone(),
            product_id: f.product.clone(),
            tier: "ENTERPRISE".into(),
            mrr: usd("500.00"),
            start_date: "2025-03-01".into(),
            ..Default::default()
        };
        patch(&mut s);
        Call::UpsertSubscription(health::UpsertSubscriptionRequest {
            subscription: Some(s),
            ..Default::default()
        })
    };
    let upsell = |patch: &dyn Fn(&mut health::ApplyUpsellRequest)| {
        let mut r = health::ApplyUpsellRequest {
            opportunity_id: domain::OpportunityId::new().to_string(),
            account_id: f.account.clone(),
            product_id: f.product.clone(),
            mrr_increase: usd("100.00"),
            effective_date: "2026-06-01".into(),
            ..Default::default()
        };
        patch(&mut r);
        Call::ApplyUpsell(r)
    };
    let signal = |patch: &dyn Fn(&mut health::Signal)| {
        let mut s = good_signal(f, "bad-input-never-stored");
        patch(&mut s);
        signals(vec![s])
    };
    let scorecard = |patch: fn(&mut health::Scorecard)| {
        let mut card = health::Scorecard {
            name: "default".into(),
            measures: vec![health::Measure {
                name: "usage".into(),
                group: "product".into(),
                signal_kind: Kind::Usage as i32,
                aggregation: health::Aggregation::RatioToLimit as i32,
                window_days: 30,
                weight: "1".into(),
                thresholds: vec![health::Threshold {
                    min_value: "0".into(),
                    score: 50,
                }],
            }],
            ..Default::default()
        };
        patch(&mut card);
        Call::UpsertScorecard(health::UpsertScorecardRequest {
            request_id: String::new(),
            scorecard: Some(card),
        })
    };
    let metrics = |month: &str, start: &str, end: &str, zone: &str| {
        Call::GetRevenueMetrics(health::GetRevenueMetricsRequest {
            month: month.into(),
            start_date: start.into(),
            end_date: end.into(),
            time_zone: zone.into(),
        })
    };
    let overrides = |patch: &dyn Fn(&mut health::OverrideHealthRequest)| {
        let mut r = health::OverrideHealthRequest {
            account_id: f.account.clone(),
            score: 40,
            reason: "exec escalation".into(),
            ..Default::default()
        };
        patch(&mut r);
        Call::OverrideHealth(r)
    };

    // A batch whose first signal is fine and whose second is not: nothing
    // of it may be stored (checked at the end by sending the probes again).
    let probe = good_signal(f, "bad-input-probe-1");
    probes.push(probe.clone());
    let mut bad_second = good_signal(f, "bad-input-probe-x");
    bad_second.value = "lots".into();
    let partial_batch = signals(vec![probe, bad_second]);
    let probe = good_signal(f, "bad-input-probe-2");
    probes.push(probe.clone());
    let unknown_second = health::Signal {
        account_id: ghost(),
        ..good_signal(f, "bad-input-probe-y")
    };
    let partial_unknown = signals(vec![probe, unknown_second]);
    let probe = good_signal(f, "bad-input-probe-3");
    probes.push(probe.clone());
    let mut too_many = vec![probe];
    too_many.extend((0..5000).map(|i| good_signal(f, &format!("bad-input-batch-{i}"))));
    let invalid_utf8 = with_invalid_utf8(
        &health::RecordSignalsRequest {
            request_id: String::new(),
            signals: vec![good_signal(f, "UTF8-MARKER")],
        },
        "UTF8-MARKER",
    );
    let invalid_utf8_name = with_invalid_utf8(
        &health::UpsertAccountRequest {
            name: "NAME-MARKER".into(),
            ..Default::default()
        },
        "NAME-MARKER",
    );
    let oversize = health::RecordSignalsRequest {
        request_id: String::new(),
        signals: (0..4000)
            .map(|i| health::Signal {
                detail: long(400),
                ..good_signal(f, &format!("bad-input-big-{i}"))
            })
            .collect(),
    }
    .encode_to_vec();
    assert!(oversize.len() > MAX_MESSAGE_BYTES);

    vec![
        // accounts
        case("account: empty name", account(|r| r.name.clear()), field("name")),
        case("account: name over 256 bytes", account(|r| r.name = long(257)), field("name")),
        case("account: control character in name", account(|r| r.name = "Acme\u{1b}[31m".into()), field("name")),
        case("account: unknown segment 999", account(|r| r.segment = 999), field("segment")),
        case("account: negative segment", account(|r| r.segment = -1), field("segment")),
        case("account: customer since 2099", account(|r| r.customer_since = "2099-01-01".into()), field("customer_since")),
        case("account: fiscal month 13", account(|r| r.fiscal_year_start_month = 13), field("fiscal_year_start_month")),
        case("account: fiscal month -1", account(|r| r.fiscal_year_start_month = -1), field("fiscal_year_start_month")),
        case("account: February 30th", account(|r| r.customer_since = "2025-02-30".into()), field("customer_since")),
        case("account: date with slashes", account(|r| r.customer_since = "2025/01/15".into()), field("customer_since")),
        case("account: malformed account_id", account(|r| r.account_id = "acct-42".into()), field("account_id")),
        case("account: update of an account that does not exist", account(|r| r.account_id = ghost()), Want::NotFound("account")),
        case("account: external id without system", account(|r| r.external_ref.as_mut().unwrap().system.clear()), field("external_ref.system")),
        case("account: external id over 255 bytes", account(|r| r.external_ref.as_mut().unwrap().id = long(256)), field("external_ref.id")),
        case("account: external id with a newline", account(|r| r.external_ref.as_mut().unwrap().id = "001\nA".into()), field("external_ref.id")),
        case("account: malformed parent", account(|r| r.parent_account_id = "parent".into()), field("parent_account_id")),
        case("account: parent that does not exist", account(|r| r.parent_account_id = domain::AccountId::new().to_string()), field("parent_account_id")),
        case("account: request_id over 256 bytes", account(|r| r.request_id = long(257)), field("request_id")),
        case("account: name that is not UTF-8", Call::Raw("/expansion.health.v1.AccountHealthService/UpsertAccount", invalid_utf8_name), field("name")),
        case("get account: neither id nor external ref", Call::GetAccount(health::GetAccountRequest::default()), field("account_id")),
        case("get account: malformed id", Call::GetAccount(health::GetAccountRequest { account_id: "42".into(), external_ref: None }), field("account_id")),
        case("get account: unknown id", Call::GetAccount(health::GetAccountRequest { account_id: ghost(), external_ref: None }), Want::NotFound("account")),
        case("get account: unknown external ref", Call::GetAccount(health::GetAccountRequest { account_id: String::new(), external_ref: Some(health::ExternalRef { system: "salesforce".into(), id: "nobody".into() }) }), Want::NotFound("account")),
        case("list accounts: negative page_size", Call::ListAccounts(health::ListAccountsRequest { page_size: -1, ..Default::default() }), field("page_size")),
        case("list accounts: garbage page_token", Call::ListAccounts(health::ListAccountsRequest { page_token: "not-a-token".into(), ..Default::default() }), field("page_token")),
        case("list accounts: unknown segment", Call::ListAccounts(health::ListAccountsRequest { segment: 42, ..Default::default() }), field("segment")),
        case("list accounts: malformed parent", Call::ListAccounts(health::ListAccountsRequest { parent_account_id: "p".into(), ..Default::default() }), field("parent_account_id")),
        // products
        case("product: missing", Call::UpsertProduct(health::UpsertProductRequest::default()), field("product")),
        case("product: empty name", product(|p| p.name.clear()), field("product.name")),
        case("product: 21 tiers", product(|p| p.tiers = (0..21).map(|i| format!("T{i}")).collect()), field("product.tiers")),
        case("product: margin is a word", product(|p| p.margin_percent = "high".into()), field("product.margin_percent")),
        case("product: margin with seven decimals", product(|p| p.margin_percent = "72.1234567".into()), field("product.margin_percent")),
        case("product: malformed adjacency id", product(|p| { p.adjacencies = vec![health::ProductAdjacency { product_id: "x".into(), adjacency: 1 }] }), field("product.adjacencies[0].product_id")),
        case("product: unknown adjacency kind", product(|p| { p.adjacencies = vec![health::ProductAdjacency { product_id: domain::ProductId::new().to_string(), adjacency: 999 }] }), field("product.adjacencies[0].adjacency")),
        case("product: unknown segment it fits", product(|p| p.fits_segments = vec![999]), field("product.fits_segments[0]")),
        case("product: wallet with three decimals", product(|p| { p.wallet_estimates = vec![health::SegmentWallet { segment: 1, annual_wallet: usd("10.001") }] }), field("product.wallet_estimates[0].annual_wallet.amount")),
        case("product: wallet in an unknown currency", product(|p| { p.wallet_estimates = vec![health::SegmentWallet { segment: 1, annual_wallet: money("ABC", "10") }] }), field("product.wallet_estimates[0].annual_wallet.currency_code")),
        case("product: malformed product_id", product(|p| p.product_id = "prod-1".into()), field("product.product_id")),
        case("list products: negative page_size", Call::ListProducts(health::ListProductsRequest { page_size: -7, ..Default::default() }), field("page_size")),
        case("list products: unknown segment", Call::ListProducts(health::ListProductsRequest { fits_segment: 7, ..Default::default() }), field("fits_segment")),
        // subscriptions
        case("subscription: missing", Call::UpsertSubscription(health::UpsertSubscriptionRequest::default()), field("subscription")),
        case("subscription: empty account id", subscription(&|s| s.account_id.clear()), field("subscription.account_id")),
        case("subscription: unknown account", subscription(&|s| s.account_id = domain::AccountId::new().to_string()), field("subscription.account_id")),
        case("subscription: unknown product", subscription(&|s| s.product_id = domain::ProductId::new().to_string()), field("subscription.product_id")),
        case("subscription: negative MRR", subscription(&|s| s.mrr = usd("-1.00")), field("subscription.mrr.amount")),
        case("subscription: MRR is text", subscription(&|s| s.mrr = usd("one thousand")), field("subscription.mrr.amount")),
        case("subscription: lower-case currency", subscription(&|s| s.mrr = money("usd", "5")), field("subscription.mrr.currency_code")),
        case("subscription: MRR in yen with decimals", subscription(&|s| s.mrr = money("JPY", "5.5")), field("subscription.mrr.amount")),
        case("subscription: ends before it starts", subscription(&|s| s.end_date = "2025-01-01".into()), field("subscription.end_date")),
        case("subscription: negative quantity", subscription(&|s| s.quantity = -5), field("subscription.quantity")),
        case("subscription: negative quota", subscription(&|s| s.quota_limit = -1), field("subscription.quota_limit")),
        case("subscription: tier the product lacks", subscription(&|s| s.tier = "PLATINUM".into()), field("subscription.tier")),
        case("subscription: switch to EUR (mixed currencies)", subscription(&|s| { s.subscription_id = f.subscription.clone(); s.mrr = money("EUR", "900"); }), field("subscription.mrr.currency_code")),
        case("subscription: unknown subscription id", subscription(&|s| s.subscription_id = domain::SubscriptionId::new().to_string()), Want::NotFound("subscription")),
        case("cancel: malformed id", Call::CancelSubscription(health::CancelSubscriptionRequest { subscription_id: "s".into(), cancel_date: "2026-01-01".into(), ..Default::default() }), field("subscription_id")),
        case("cancel: unknown subscription", Call::CancelSubscription(health::CancelSubscriptionRequest { subscription_id: domain::SubscriptionId::new().to_string(), cancel_date: "2026-01-01".into(), reason: "churned".into(), ..Default::default() }), Want::NotFound("subscription")),
        case("cancel: no reason", Call::CancelSubscription(health::CancelSubscriptionRequest { subscription_id: f.subscription.clone(), cancel_date: "2026-01-01".into(), ..Default::default() }), field("reason")),
        case("cancel: 2026-13-01", Call::CancelSubscription(health::CancelSubscriptionRequest { subscription_id: f.subscription.clone(), cancel_date: "2026-13-01".into(), reason: "churned".into(), ..Default::default() }), field("cancel_date")),
        case("list subscriptions: unknown status", Call::ListSubscriptions(health::ListSubscriptionsRequest { status: 3, ..Default::default() }), field("status")),
        case("list subscriptions: malformed product", Call::ListSubscriptions(health::ListSubscriptionsRequest { product_id: "p".into(), ..Default::default() }), field("product_id")),
        // signals
        case("signals: 5001 in one batch", signals(too_many), field("signals")),
        case("signals: empty account id", signal(&|s| s.account_id.clear()), field("signals[0].account_id")),
        case("signals: unknown account", signal(&|s| s.account_id = ghost()), field("signals[0].account_id")),
        case("signals: unknown product", signal(&|s| s.product_id = ghost()), field("signals[0].product_id")),
        case("signals: kind 999", signal(&|s| s.kind = 999), field("signals[0].kind")),
        case("signals: kind unspecified", signal(&|s| s.kind = 0), field("signals[0].kind")),
        case("signals: value is text", signal(&|s| s.value = "ten".into()), field("signals[0].value")),
        case("signals: negative value", signal(&|s| s.value = "-1".into()), field("signals[0].value")),
        case("signals: value in exponent form", signal(&|s| s.value = "1e9".into()), field("signals[0].value")),
        case("signals: value with 5 decimals", signal(&|s| s.value = "1.00001".into()), field("signals[0].value")),
        case("signals: value beyond i64", signal(&|s| s.value = "99999999999999999999".into()), field("signals[0].value")),
        case("signals: value at the 28-digit decimal limit", signal(&|s| s.value = "79228162514264337593543950335".into()), field("signals[0].value")),
        case("signals: value with a digit separator", signal(&|s| s.value = "1_000".into()), field("signals[0].value")),
        case("signals: value with a leading dot", signal(&|s| s.value = ".5".into()), field("signals[0].value")),
        case("signals: limit with a plus sign", signal(&|s| { s.kind = Kind::Usage as i32; s.limit = "+100".into(); }), field("signals[0].limit")),
        case("signals: NPS of 11", signal(&|s| { s.kind = Kind::Nps as i32; s.value = "11".into(); }), field("signals[0].value")),
        case("signals: usage without a limit", signal(&|s| s.kind = Kind::Usage as i32), field("signals[0].limit")),
        case("signals: zero limit", signal(&|s| { s.kind = Kind::Usage as i32; s.limit = "0".into(); }), field("signals[0].limit")),
        case("signals: from the future", signal(&|s| s.occur_time = ts(4_102_444_800, 0)), field("signals[0].occur_time")),
        case("signals: negative nanos", signal(&|s| s.occur_time = ts(1_700_000_000, -1)), field("signals[0].occur_time")),
        case("signals: year 1 BC", signal(&|s| s.occur_time = ts(-62_200_000_000, 0)), field("signals[0].occur_time")),
        case("signals: external id over 255 bytes", signal(&|s| s.external_id = long(256)), field("signals[0].external_id")),
        case("signals: control character in source", signal(&|s| s.source = "tele\u{7}metry".into()), field("signals[0].source")),
        case("signals: detail over 2048 bytes", signal(&|s| s.detail = long(2049)), field("signals[0].detail")),
        case("signals: second of two is bad", partial_batch, field("signals[1].value")),
        case("signals: second of two names no account", partial_unknown, field("signals[1].account_id")),
        case("signals: external id that is not UTF-8", Call::Raw("/expansion.health.v1.AccountHealthService/RecordSignals", invalid_utf8), field("signals.external_id")),
        case("signals: body that is no message", Call::Raw("/expansion.health.v1.AccountHealthService/RecordSignals", vec![0xff; 7]), Want::Malformed),
        case("signals: message over --max-message-bytes", Call::Raw("/expansion.health.v1.AccountHealthService/RecordSignals", oversize), Want::TooLarge),
        case("stream signals: first message bad", Call::StreamSignals(vec![health::StreamSignalsRequest { signals: vec![health::Signal { kind: 999, ..good_signal(f, "bad-input-stream") }] }]), field("batches[0].signals[0].kind")),
        // scorecards
        case("scorecard: missing", Call::UpsertScorecard(health::UpsertScorecardRequest::default()), field("scorecard")),
        case("scorecard: negative weight", scorecard(|c| c.measures[0].weight = "-1".into()), field("scorecard.measures[0].weight")),
        case("scorecard: weight is text", scorecard(|c| c.measures[0].weight = "heavy".into()), field("scorecard.measures[0].weight")),
        case("scorecard: weight with a plus sign", scorecard(|c| c.measures[0].weight = "+1".into()), field("scorecard.measures[0].weight")),
        case("scorecard: threshold with a digit separator", scorecard(|c| c.measures[0].thresholds[0].min_value = "1_0".into()), field("scorecard.measures[0].thresholds[0].min_value")),
        case("scorecard: window of 0 days", scorecard(|c| c.measures[0].window_days = 0), field("scorecard.measures[0].window_days")),
        case("scorecard: window of 731 days", scorecard(|c| c.measures[0].window_days = 731), field("scorecard.measures[0].window_days")),
        case("scorecard: threshold score 101", scorecard(|c| c.measures[0].thresholds[0].score = 101), field("scorecard.measures[0].thresholds[0].score")),
        case("scorecard: unknown aggregation", scorecard(|c| c.measures[0].aggregation = 999), field("scorecard.measures[0].aggregation")),
        case("scorecard: unknown signal kind", scorecard(|c| c.measures[0].signal_kind = 77), field("scorecard.measures[0].signal_kind")),
        case("scorecard: unknown missing-data policy", scorecard(|c| c.missing_data_policy = 9), field("scorecard.missing_data_policy")),
        // health, history, overrides, triggers
        case("health: empty account id", Call::GetAccountHealth(health::GetAccountHealthRequest::default()), field("account_id")),
        case("health: unknown account", Call::GetAccountHealth(health::GetAccountHealthRequest { account_id: ghost() }), Want::NotFound("account")),
        case("list health: band unspecified", Call::ListAccountHealth(health::ListAccountHealthRequest { bands: vec![0], ..Default::default() }), field("bands[0]")),
        case("list health: unknown sort", Call::ListAccountHealth(health::ListAccountHealthRequest { sort: 5, ..Default::default() }), field("sort")),
        case("list health: garbage page_token", Call::ListAccountHealth(health::ListAccountHealthRequest { page_token: "0a".into(), ..Default::default() }), field("page_token")),
        case("list health: 100,000 bands", Call::ListAccountHealth(health::ListAccountHealthRequest { bands: vec![1; 100_000], ..Default::default() }), field("bands")),
        case("history: end before start", Call::GetHealthHistory(health::GetHealthHistoryRequest { account_id: f.account.clone(), start_time: ts(1_800_000_000, 0), end_time: ts(1_700_000_000, 0), ..Default::default() }), field("end_time")),
        case("history: malformed product", Call::GetHealthHistory(health::GetHealthHistoryRequest { account_id: f.account.clone(), product_id: "p".into(), ..Default::default() }), field("product_id")),
        case("history: nanos out of range", Call::GetHealthHistory(health::GetHealthHistoryRequest { account_id: f.account.clone(), start_time: ts(1_700_000_000, 2_000_000_000), ..Default::default() }), field("start_time")),
        case("override: score 101", overrides(&|r| r.score = 101), field("score")),
        case("override: score -1", overrides(&|r| r.score = -1), field("score")),
        case("override: no reason", overrides(&|r| r.reason.clear()), field("reason")),
        case("override: reason over 16 KiB", overrides(&|r| r.reason = long(16 * 1024 + 1)), field("reason")),
        case("override: expired already", overrides(&|r| r.expire_time = ts(1_600_000_000, 0)), field("expire_time")),
        case("override: unknown product", overrides(&|r| r.product_id = domain::ProductId::new().to_string()), field("product_id")),
        case("override: unknown account", overrides(&|r| r.account_id = ghost()), Want::NotFound("account")),
        case("triggers: status unspecified", Call::ListTriggers(health::ListTriggersRequest { statuses: vec![0], ..Default::default() }), field("statuses[0]")),
        case("triggers: status 999", Call::ListTriggers(health::ListTriggersRequest { statuses: vec![1, 999], ..Default::default() }), field("statuses[1]")),
        case("triggers: 100,000 statuses", Call::ListTriggers(health::ListTriggersRequest { statuses: vec![1; 100_000], ..Default::default() }), field("statuses")),
        case("triggers: kind 999", Call::ListTriggers(health::ListTriggersRequest { kind: 999, ..Default::default() }), field("kind")),
        case("triggers: page_token from another list", Call::ListTriggers(health::ListTriggersRequest { page_token: contracts::page::encode_token("x", 1), ..Default::default() }), field("page_token")),
        case("trigger: malformed id", Call::GetTrigger(health::GetTriggerRequest { trigger_id: "t-1".into() }), field("trigger_id")),
        case("trigger: unknown", Call::GetTrigger(health::GetTriggerRequest { trigger_id: ghost() }), Want::NotFound("trigger")),
        case("upsell: malformed opportunity", upsell(&|r| r.opportunity_id = "o-1".into()), field("opportunity_id")),
        case("upsell: no increase", upsell(&|r| r.mrr_increase = None), field("mrr_increase")),
        case("upsell: negative increase", upsell(&|r| r.mrr_increase = money("USD", "-1")), field("mrr_increase.amount")),
        case("upsell: increase with a tenth of a cent", upsell(&|r| r.mrr_increase = money("USD", "1.005")), field("mrr_increase.amount")),
        case("upsell: no effective date", upsell(&|r| r.effective_date.clear()), field("effective_date")),
        case("upsell: malformed subscription", upsell(&|r| r.subscription_id = "s".into()), field("subscription_id")),
        case("upsell: unknown account", upsell(&|r| r.account_id = domain::AccountId::new().to_string()), Want::NotFound("account")),
        case("upsell: unknown product", upsell(&|r| r.product_id = ghost()), Want::NotFound("product")),
        case("upsell: before the contract starts", upsell(&|r| r.effective_date = "2025-01-15".into()), Want::Precondition("NO_SUBSCRIPTION_IN_FORCE")),
        case("upsell: in another currency", upsell(&|r| r.mrr_increase = money("EUR", "100")), Want::Precondition("CURRENCY_MISMATCH")),
        case("convert trigger: malformed id", Call::ConvertTrigger(health::ConvertTriggerRequest { trigger_id: "t".into(), opportunity_id: ghost(), ..Default::default() }), field("trigger_id")),
        case("convert trigger: no opportunity", Call::ConvertTrigger(health::ConvertTriggerRequest { trigger_id: ghost(), ..Default::default() }), field("opportunity_id")),
        case("convert trigger: unknown", Call::ConvertTrigger(health::ConvertTriggerRequest { trigger_id: ghost(), opportunity_id: ghost(), ..Default::default() }), Want::NotFound("trigger")),
        case("close trigger: malformed opportunity", Call::CloseTrigger(health::CloseTriggerRequest { trigger_id: ghost(), opportunity_id: "o".into(), ..Default::default() }), field("opportunity_id")),
        case("close trigger: unknown", Call::CloseTrigger(health::CloseTriggerRequest { trigger_id: ghost(), ..Default::default() }), Want::NotFound("trigger")),
        // revenue metrics: months, ranges, zones
        case("metrics: month and range", metrics("2025-02", "2025-02-01", "2025-03-01", ""), field("month")),
        case("metrics: month 13", metrics("2025-13", "", "", ""), field("month")),
        case("metrics: month without zero", metrics("2025-2", "", "", ""), field("month")),
        case("metrics: month 0000-00", metrics("0000-00", "", "", ""), field("month")),
        case("metrics: unknown time zone", metrics("2025-02", "", "", "Mars/Olympus_Mons"), field("time_zone")),
        case("metrics: time zone offset", metrics("2025-02", "", "", "+03:00"), field("time_zone")),
        case("metrics: range ends before it starts", metrics("", "2025-03-01", "2025-02-01", ""), field("end_date")),
        case("metrics: range of eleven years", metrics("", "2015-01-01", "2026-01-01", ""), field("end_date")),
        case("metrics: start on February 29th 2025", metrics("", "2025-02-29", "2025-03-01", ""), field("start_date")),
        case("metrics: range without an end", metrics("", "2025-02-01", "", ""), field("end_date")),
        case("cohorts: granularity 7", Call::GetCohortRevenue(health::GetCohortRevenueRequest { granularity: 7, ..Default::default() }), field("granularity")),
        case("cohorts: month 13", Call::GetCohortRevenue(health::GetCohortRevenueRequest { start_month: "2025-13".into(), ..Default::default() }), field("start_month")),
        case("cohorts: end before start", Call::GetCohortRevenue(health::GetCohortRevenueRequest { start_month: "2025-06".into(), end_month: "2025-05".into(), ..Default::default() }), field("end_month")),
        case("cohorts: 121 months", Call::GetCohortRevenue(health::GetCohortRevenueRequest { start_month: "2015-01".into(), end_month: "2025-01".into(), ..Default::default() }), field("end_month")),
        case("cohorts: unknown time zone", Call::GetCohortRevenue(health::GetCohortRevenueRequest { time_zone: "Mars/Olympus_Mons".into(), ..Default::default() }), field("time_zone")),
        case("health events: garbage cursor", Call::HealthEvents(health::WatchEventsRequest { options: Some(WatchEventsOptions { after_cursor: "ev1.zz".into(), event_types: vec![] }) }), field("options.after_cursor")),
        case("health events: 65 type prefixes", Call::HealthEvents(health::WatchEventsRequest { options: Some(WatchEventsOptions { after_cursor: String::new(), event_types: vec!["health.".into(); 65] }) }), field("options.event_types")),
    ]
}

#[rustfmt::skip]
fn pipeline_cases(f: &Fixture) -> Vec<Case> {
    let o = &f.opportunity;
    let create = |patch: &dyn Fn(&mut pipeline::Opportunity)| {
        let mut new = pipeline::Opportunity {
            account_id: f.account.clone(),
            product_id: f.product.clone(),
            motion: Motion::CrossSellAdjacent as i32,
            amount: usd("48000.00"),
            ..Default::default()
        };
        patch(&mut new);
        Call::CreateOpportunity(pipeline::CreateOpportunityRequest {
            occur_time: None,
            request_id: String::new(),
            opportunity: Some(new),
        })
    };
    let update = |mask: &[&str], patch: &dyn Fn(&mut pipeline::Opportunity)| {
        let mut changed = o.clone();
        patch(&mut changed);
        Call::UpdateOpportunity(pipeline::UpdateOpportunityRequest {
            request_id: String::new(),
            opportunity: Some(changed),
            update_mask: mask.iter().map(|m| (*m).to_owned()).collect(),
        })
    };
    let advance = |opp: &pipeline::Opportunity,
                   patch: &dyn Fn(&mut pipeline::AdvanceStageRequest)| {
        let mut r = pipeline::AdvanceStageRequest {
            opportunity_id: opp.opportunity_id.clone(),
            etag: opp.etag.clone(),
            to_stage: pipeline::Stage::Exploring as i32,
            ..Default::default()
        };
        patch(&mut r);
        Call::AdvanceStage(r)
    };
    let close = |opp: &pipeline::Opportunity,
                 patch: &dyn Fn(&mut pipeline::CloseOpportunityRequest)| {
        let mut r = pipeline::CloseOpportunityRequest {
            opportunity_id: opp.opportunity_id.clone(),
            etag: opp.etag.clone(),
            won: false,
            lost_reason: "went with a competitor".into(),
            ..Default::default()
        };
        patch(&mut r);
        Call::CloseOpportunity(r)
    };
    let wallet = |patch: &dyn Fn(&mut pipeline::WalletEstimate)| {
        let mut e = pipeline::WalletEstimate {
            account_id: f.account.clone(),
            product_area: "security".into(),
            annual_spend: usd("1000"),
            served_by: pipeline::WalletServedBy::InHouse as i32,
            ..Default::default()
        };
        patch(&mut e);
        Call::UpsertWallet(pipeline::UpsertWalletEstimateRequest {
            request_id: String::new(),
            estimate: Some(e),
        })
    };
    let forecast = |start: &str, end: &str, currency: &str| {
        Call::GetForecast(pipeline::GetPipelineForecastRequest {
            currency_code: currency.into(),
            owner_team: String::new(),
            close_date_start: start.into(),
            close_date_end: end.into(),
        })
    };
    let history_token_of_other_list =
        contracts::page::encode_token("x", contracts::page::fingerprint(&["other"]));
    let stale_etag = (o.etag.parse::<i64>().unwrap() + 5).to_string();
    vec![
        case("create: missing opportunity", Call::CreateOpportunity(pipeline::CreateOpportunityRequest::default()), field("opportunity")),
        case("create: empty account id", create(&|n| n.account_id.clear()), field("opportunity.account_id")),
        case("create: malformed product id", create(&|n| n.product_id = "p-1".into()), field("opportunity.product_id")),
        case("create: motion unspecified", create(&|n| n.motion = 0), field("opportunity.motion")),
        case("create: motion 999", create(&|n| n.motion = 999), field("opportunity.motion")),
        case("create: no amount", create(&|n| n.amount = None), field("opportunity.amount")),
        case("create: amount is text", create(&|n| n.amount = usd("forty thousand")), field("opportunity.amount.amount")),
        case("create: amount with three decimals", create(&|n| n.amount = usd("48000.005")), field("opportunity.amount.amount")),
        case("create: zero amount", create(&|n| n.amount = usd("0")), field("opportunity.amount.amount")),
        case("create: negative amount", create(&|n| n.amount = usd("-48000")), field("opportunity.amount.amount")),
        case("create: amount with a plus sign", create(&|n| n.amount = usd("+48000")), field("opportunity.amount.amount")),
        case("create: amount beyond the largest deal", create(&|n| n.amount = usd("10000000000000.01")), field("opportunity.amount.amount")),
        case("create: amount beyond i64 minor units", create(&|n| n.amount = usd("92233720368547758.08")), field("opportunity.amount.amount")),
        case("create: unknown currency", create(&|n| n.amount = money("XYZ", "1")), field("opportunity.amount.currency_code")),
        case("create: empty currency", create(&|n| n.amount = money("", "1")), field("opportunity.amount.currency_code")),
        case("create: starts at QUALIFIED", create(&|n| n.stage = pipeline::Stage::Qualified as i32), field("opportunity.stage")),
        case("create: stage 999", create(&|n| n.stage = 999), field("opportunity.stage")),
        case("create: probability 101", create(&|n| n.probability = "101".into()), field("opportunity.probability")),
        case("create: probability is text", create(&|n| n.probability = "likely".into()), field("opportunity.probability")),
        case("create: forecast category 999", create(&|n| n.forecast_category = 999), field("opportunity.forecast_category")),
        case("create: source kind 999", create(&|n| { n.source = Some(pipeline::Source { kind: 999, trigger_id: String::new() }) }), field("opportunity.source.kind")),
        case("create: source trigger malformed", create(&|n| { n.source = Some(pipeline::Source { kind: pipeline::SourceKind::Trigger as i32, trigger_id: "t".into() }) }), field("opportunity.source.trigger_id")),
        case("create: close date 2027-02-29", create(&|n| n.close_date = "2027-02-29".into()), field("opportunity.close_date")),
        case("create: name over 256 bytes", create(&|n| n.name = long(257)), field("opportunity.name")),
        case("create: 101 stakeholders", create(&|n| n.stakeholders = vec![stakeholder(); 101]), field("opportunity.stakeholders")),
        case("create: stakeholder without a name", create(&|n| { n.stakeholders = vec![pipeline::Stakeholder { name: String::new(), ..stakeholder() }] }), field("opportunity.stakeholders[0].name")),
        case("create: relationship strength 11", create(&|n| { n.qualification = Some(pipeline::Qualification { relationship_strength: 11, ..Default::default() }) }), field("opportunity.qualification.relationship_strength")),
        case("create: budget status 999", create(&|n| { n.qualification = Some(pipeline::Qualification { budget_status: 999, ..Default::default() }) }), field("opportunity.qualification.budget_status")),
        case("create: fit rating 999", create(&|n| { n.qualification = Some(pipeline::Qualification { fit: 999, ..Default::default() }) }), field("opportunity.qualification.fit")),
        case("create: strategic value 999", create(&|n| n.strategic_value = 999), field("opportunity.strategic_value")),
        case("create: notes over 16 KiB", create(&|n| n.discovery_notes = long(16 * 1024 + 1)), field("opportunity.discovery_notes")),
        case("from trigger: malformed trigger", Call::CreateFromTrigger(pipeline::CreateOpportunityFromTriggerRequest { trigger_id: "t-1".into(), amount: usd("1000"), ..Default::default() }), field("trigger_id")),
        case("from trigger: zero amount", Call::CreateFromTrigger(pipeline::CreateOpportunityFromTriggerRequest { trigger_id: f.trigger.clone(), amount: usd("0"), ..Default::default() }), field("amount.amount")),
        case("from trigger: amount beyond the largest deal", Call::CreateFromTrigger(pipeline::CreateOpportunityFromTriggerRequest { trigger_id: f.trigger.clone(), amount: usd("92233720368547758.07"), ..Default::default() }), field("amount.amount")),
        case("from trigger: unknown trigger", Call::CreateFromTrigger(pipeline::CreateOpportunityFromTriggerRequest { trigger_id: ghost(), amount: usd("1000"), ..Default::default() }), Want::NotFound("trigger")),
        case("get: empty id", Call::GetOpportunity(pipeline::GetOpportunityRequest::default()), field("opportunity_id")),
        case("get: unknown id", Call::GetOpportunity(pipeline::GetOpportunityRequest { opportunity_id: ghost() }), Want::NotFound("opportunity")),
        case("list: negative page_size", Call::ListOpportunities(pipeline::ListOpportunitiesRequest { page_size: i32::MIN, ..Default::default() }), field("page_size")),
        case("list: 100,000 stages", Call::ListOpportunities(pipeline::ListOpportunitiesRequest { stages: vec![1; 100_000], ..Default::default() }), field("stages")),
        case("list: odd-length page_token", Call::ListOpportunities(pipeline::ListOpportunitiesRequest { page_token: "abc".into(), ..Default::default() }), field("page_token")),
        case("list: page_token of another filter", Call::ListOpportunities(pipeline::ListOpportunitiesRequest { page_token: history_token_of_other_list.clone(), ..Default::default() }), field("page_token")),
        case("list: page_token over 4 KiB", Call::ListOpportunities(pipeline::ListOpportunitiesRequest { page_token: "ab".repeat(4096), ..Default::default() }), field("page_token")),
        case("list: stage 999", Call::ListOpportunities(pipeline::ListOpportunitiesRequest { stages: vec![999], ..Default::default() }), field("stages[0]")),
        case("list: motion 999", Call::ListOpportunities(pipeline::ListOpportunitiesRequest { motion: 999, ..Default::default() }), field("motion")),
        case("list: sort 999", Call::ListOpportunities(pipeline::ListOpportunitiesRequest { sort: 999, ..Default::default() }), field("sort")),
        case("list: lower-case currency", Call::ListOpportunities(pipeline::ListOpportunitiesRequest { currency_code: "usd".into(), ..Default::default() }), field("currency_code")),
        case("update: no etag", update(&["amount"], &|n| n.etag.clear()), field("opportunity.etag")),
        case("update: etag is text", update(&["amount"], &|n| n.etag = "W/\"1\"".into()), field("opportunity.etag")),
        case("update: etag 0", update(&["amount"], &|n| n.etag = "0".into()), field("opportunity.etag")),
        case("update: stale etag", update(&["amount"], &|n| n.etag = stale_etag.clone()), Want::Aborted("ETAG_MISMATCH")),
        case("update: mask names the stage", update(&["stage"], &|_| {}), field("update_mask[0]")),
        case("update: mask names the account", update(&["name", "account_id"], &|_| {}), field("update_mask[1]")),
        case("update: amount with three decimals", update(&["amount"], &|n| n.amount = usd("1.001")), field("opportunity.amount.amount")),
        case("update: amount beyond the largest deal", update(&["amount"], &|n| { n.amount = money("JPY", "1000000000000001") }), field("opportunity.amount.amount")),
        case("update: probability -1", update(&["probability"], &|n| n.probability = "-1".into()), field("opportunity.probability")),
        case("update: unknown opportunity", update(&["amount"], &|n| n.opportunity_id = ghost()), Want::NotFound("opportunity")),
        case("update: closed opportunity", Call::UpdateOpportunity(pipeline::UpdateOpportunityRequest { request_id: String::new(), opportunity: Some(pipeline::Opportunity { discovery_notes: "more".into(), ..f.lost.clone() }), update_mask: vec!["discovery_notes".into()] }), Want::Precondition("OPPORTUNITY_CLOSED")),
        case("advance: skips a stage", advance(o, &|r| r.to_stage = pipeline::Stage::Qualified as i32), Want::Precondition("INVALID_STAGE_TRANSITION")),
        case("advance: to CLOSED_WON", advance(o, &|r| r.to_stage = pipeline::Stage::ClosedWon as i32), field("to_stage")),
        case("advance: stage 999", advance(o, &|r| r.to_stage = 999), field("to_stage")),
        case("advance: no stage", advance(o, &|r| r.to_stage = 0), field("to_stage")),
        case("advance: stale etag", advance(o, &|r| r.etag = stale_etag.clone()), Want::Aborted("ETAG_MISMATCH")),
        case("advance: malformed id", advance(o, &|r| r.opportunity_id = "o-1".into()), field("opportunity_id")),
        case("advance: unknown opportunity", advance(o, &|r| r.opportunity_id = ghost()), Want::NotFound("opportunity")),
        case("advance: reopen without a reason", advance(&f.lost, &|r| { r.reopen = true; r.to_stage = 0; }), field("reason")),
        case("advance: reopen at EXPLORING", advance(&f.lost, &|r| { r.reopen = true; r.reason = "customer came back".into(); }), field("to_stage")),
        case("advance: reopen an open opportunity", advance(o, &|r| { r.reopen = true; r.to_stage = 0; r.reason = "again".into(); }), Want::Precondition("OPPORTUNITY_NOT_CLOSED")),
        case("advance: a closed opportunity", advance(&f.lost, &|_| {}), Want::Precondition("INVALID_STAGE_TRANSITION")),
        case("close: won from IDENTIFIED", close(o, &|r| { r.won = true; r.lost_reason.clear(); }), Want::Precondition("INVALID_STAGE_TRANSITION")),
        case("close: lost without a reason", close(o, &|r| r.lost_reason.clear()), field("lost_reason")),
        case("close: close date 2026-04-31", close(o, &|r| r.close_date = "2026-04-31".into()), field("close_date")),
        case("close: already lost", close(&f.lost, &|_| {}), Want::Precondition("INVALID_STAGE_TRANSITION")),
        case("history: negative page_size", Call::History(pipeline::GetOpportunityHistoryRequest { opportunity_id: o.opportunity_id.clone(), page_size: -1, ..Default::default() }), field("page_size")),
        case("history: page_token of another list", Call::History(pipeline::GetOpportunityHistoryRequest { opportunity_id: o.opportunity_id.clone(), page_token: history_token_of_other_list.clone(), ..Default::default() }), field("page_token")),
        case("history: unknown opportunity", Call::History(pipeline::GetOpportunityHistoryRequest { opportunity_id: ghost(), ..Default::default() }), Want::NotFound("opportunity")),
        case("score: no ratings", Call::ScoreQualification(pipeline::ScoreQualificationRequest::default()), field("fit")),
        case("score: fit 999", Call::ScoreQualification(pipeline::ScoreQualificationRequest { fit: 999, applicability: 1, capability: 1, competitive_position: 1, ..Default::default() }), field("fit")),
        case("route: amount without motion", Call::RouteOpportunity(pipeline::RouteOpportunityRequest { amount: usd("1000"), ..Default::default() }), field("motion")),
        case("route: amount is text", Call::RouteOpportunity(pipeline::RouteOpportunityRequest { amount: usd("ten"), motion: 1, ..Default::default() }), field("amount.amount")),
        case("route: unknown opportunity", Call::RouteOpportunity(pipeline::RouteOpportunityRequest { opportunity_id: ghost(), ..Default::default() }), Want::NotFound("opportunity")),
        case("handoff: no package", Call::RequestHandoff(pipeline::RequestHandoffRequest { opportunity_id: o.opportunity_id.clone(), ..Default::default() }), field("package")),
        case("handoff: empty package", Call::RequestHandoff(pipeline::RequestHandoffRequest { opportunity_id: o.opportunity_id.clone(), package: Some(pipeline::HandoffPackage::default()), ..Default::default() }), field("package.discovery_summary")),
        case("handoff: one already open", Call::RequestHandoff(pipeline::RequestHandoffRequest { opportunity_id: o.opportunity_id.clone(), package: Some(package()), ..Default::default() }), Want::Precondition("HANDOFF_ALREADY_OPEN")),
        case("handoff: closed opportunity", Call::RequestHandoff(pipeline::RequestHandoffRequest { opportunity_id: f.lost.opportunity_id.clone(), package: Some(package()), ..Default::default() }), Want::Precondition("OPPORTUNITY_CLOSED")),
        case("handoff: unknown opportunity", Call::RequestHandoff(pipeline::RequestHandoffRequest { opportunity_id: ghost(), package: Some(package()), ..Default::default() }), Want::NotFound("opportunity")),
        case("accept: malformed handoff id", Call::AcceptHandoff(pipeline::AcceptHandoffRequest { handoff_id: "h".into(), owner: "alex.ae".into(), ..Default::default() }), field("handoff_id")),
        case("accept: no owner", Call::AcceptHandoff(pipeline::AcceptHandoffRequest { handoff_id: f.handoff.clone(), ..Default::default() }), field("owner")),
        case("accept: unknown handoff", Call::AcceptHandoff(pipeline::AcceptHandoffRequest { handoff_id: ghost(), owner: "alex.ae".into(), ..Default::default() }), Want::NotFound("handoff")),
        case("reject: no reason", Call::RejectHandoff(pipeline::RejectHandoffRequest { handoff_id: f.handoff.clone(), ..Default::default() }), field("reason")),
        case("reject: unknown handoff", Call::RejectHandoff(pipeline::RejectHandoffRequest { handoff_id: ghost(), reason: "not ready".into(), ..Default::default() }), Want::NotFound("handoff")),
        case("handoffs: status 999", Call::ListHandoffs(pipeline::ListHandoffsRequest { statuses: vec![999], ..Default::default() }), field("statuses[0]")),
        case("handoffs: 100,000 statuses", Call::ListHandoffs(pipeline::ListHandoffsRequest { statuses: vec![1; 100_000], ..Default::default() }), field("statuses")),
        case("handoffs: malformed opportunity", Call::ListHandoffs(pipeline::ListHandoffsRequest { opportunity_id: "o".into(), ..Default::default() }), field("opportunity_id")),
        case("wallet: missing estimate", Call::UpsertWallet(pipeline::UpsertWalletEstimateRequest::default()), field("estimate")),
        case("wallet: malformed account", wallet(&|e| e.account_id = "a".into()), field("estimate.account_id")),
        case("wallet: no product area", wallet(&|e| e.product_area.clear()), field("estimate.product_area")),
        case("wallet: negative spend", wallet(&|e| e.annual_spend = usd("-1")), field("estimate.annual_spend.amount")),
        case("wallet: spend beyond the largest amount", wallet(&|e| e.annual_spend = usd("90000000000000000")), field("estimate.annual_spend.amount")),
        case("wallet: served by unspecified", wallet(&|e| e.served_by = 0), field("estimate.served_by")),
        case("wallet: served by 999", wallet(&|e| e.served_by = 999), field("estimate.served_by")),
        case("whitespace: malformed account", Call::GetWhitespace(pipeline::GetWhitespaceRequest { account_id: "a".into(), ..Default::default() }), field("account_id")),
        case("whitespace: unknown account", Call::GetWhitespace(pipeline::GetWhitespaceRequest { account_id: domain::AccountId::new().to_string(), ..Default::default() }), Want::NotFound("account")),
        case("forecast: two-letter currency", forecast("", "", "US"), field("currency_code")),
        case("forecast: end before start", forecast("2027-01-01", "2026-01-01", ""), field("close_date_end")),
        case("forecast: day 32", forecast("2026-01-32", "", ""), field("close_date_start")),
        case("wallet: effective February 30th", wallet(&|e| e.effective_date = "2026-02-30".into()), field("estimate.effective_date")),
        case("whitespace: as of day 32", Call::GetWhitespace(pipeline::GetWhitespaceRequest { account_id: f.account.clone(), as_of_date: "2026-01-32".into() }), field("as_of_date")),
        case("performance: month and range", Call::GetPerformance(pipeline::GetTeamPerformanceRequest { month: "2026-01".into(), start_date: "2026-01-01".into(), end_date: "2026-02-01".into(), ..Default::default() }), field("month")),
        case("performance: range ends before it starts", Call::GetPerformance(pipeline::GetTeamPerformanceRequest { start_date: "2026-02-01".into(), end_date: "2026-01-01".into(), ..Default::default() }), field("end_date")),
        case("performance: negative page size", Call::GetPerformance(pipeline::GetTeamPerformanceRequest { page_size: -1, ..Default::default() }), field("page_size")),
        case("performance: forged page token", Call::GetPerformance(pipeline::GetTeamPerformanceRequest { page_token: "zz".into(), ..Default::default() }), field("page_token")),
        case("performance: participant of 300 characters", Call::GetPerformance(pipeline::GetTeamPerformanceRequest { participant: "p".repeat(300), ..Default::default() }), field("participant")),
        case("wallet share: malformed account", Call::GetWalletShare(pipeline::GetWalletShareHistoryRequest { account_id: "a".into(), ..Default::default() }), field("account_id")),
        case("wallet share: month 00", Call::GetWalletShare(pipeline::GetWalletShareHistoryRequest { start_month: "2026-00".into(), ..Default::default() }), field("start_month")),
        case("wallet share: 121 months", Call::GetWalletShare(pipeline::GetWalletShareHistoryRequest { start_month: "2015-01".into(), end_month: "2025-01".into(), ..Default::default() }), field("end_month")),
        case("pipeline events: cursor without prefix", Call::PipelineEvents(pipeline::WatchEventsRequest { options: Some(WatchEventsOptions { after_cursor: "12345".into(), event_types: vec![] }) }), field("options.after_cursor")),
    ]
}

#[rustfmt::skip]
fn credit_cases(f: &Fixture) -> Vec<Case> {
    use credit::CreditRole::{Delivery, Originator, Overlay};
    let policy = |patch: &dyn Fn(&mut credit::CreditPolicy)| {
        let mut p = credit::CreditPolicy {
            policy_id: "emea".into(),
            effective_date: "2026-01-01".into(),
            ..Default::default()
        };
        patch(&mut p);
        Call::UpsertPolicy(credit::UpsertCreditPolicyRequest {
            request_id: String::new(),
            policy: Some(p),
        })
    };
    let overlay = |name: &str, percent: &str| credit::OverlayRule {
        name: name.into(),
        percent: percent.into(),
    };
    let deal = |patch: &dyn Fn(&mut credit::RecordDealCreditsRequest)| {
        let mut r = credit::RecordDealCreditsRequest {
            deal_id: domain::OpportunityId::new().to_string(),
            amount: usd("20000.00"),
            close_date: "2026-07-01".into(),
            participants: vec![
                participant("carla.csm", Originator, ""),
                participant("alex.ae", Delivery, ""),
            ],
            ..Default::default()
        };
        patch(&mut r);
        Call::RecordDeal(r)
    };
    let replace = |patch: &dyn Fn(&mut credit::ReplaceDealSplitsRequest)| {
        let mut owner = participant("alex.ae", Delivery, "");
        owner.owner = true;
        let mut r = credit::ReplaceDealSplitsRequest {
            deal_id: f.deal.clone(),
            participants: vec![participant("carla.csm", Originator, ""), owner],
            reason: "territory change".into(),
            ..Default::default()
        };
        patch(&mut r);
        Call::ReplaceSplits(r)
    };
    let ledger = |patch: &dyn Fn(&mut credit::ListLedgerEntriesRequest)| {
        let mut r = credit::ListLedgerEntriesRequest::default();
        patch(&mut r);
        Call::ListLedger(r)
    };
    let resolve = |patch: &dyn Fn(&mut credit::ResolveDisputeRequest)| {
        let mut r = credit::ResolveDisputeRequest {
            dispute_id: f.open_dispute.clone(),
            resolution: credit::DisputeResolution::Adjust as i32,
            adjustment: usd("100.00"),
            ..Default::default()
        };
        patch(&mut r);
        Call::ResolveDispute(r)
    };
    let statement = |patch: &dyn Fn(&mut credit::GetStatementRequest)| {
        let mut r = credit::GetStatementRequest {
            start_date: "2026-01-01".into(),
            end_date: "2027-01-01".into(),
            ..Default::default()
        };
        patch(&mut r);
        Call::GetStatement(r)
    };
    let changed_replay = credit::RecordDealCreditsRequest {
        amount: usd("10000.01"),
        ..f.deal_request.clone()
    };
    let invalid_utf8_participant = with_invalid_utf8(
        &credit::RecordDealCreditsRequest {
            participants: vec![participant("PARTICIPANT-MARKER", Delivery, "")],
            ..f.deal_request.clone()
        },
        "PARTICIPANT-MARKER",
    );
    let person = |patch: &dyn Fn(&mut credit::Person)| {
        let mut p = credit::Person {
            person_id: "pat.ae".into(),
            role: credit::PersonRole::Ae as i32,
            ..Default::default()
        };
        patch(&mut p);
        Call::UpsertPerson(credit::UpsertPersonRequest { request_id: String::new(), person: Some(p) })
    };
    vec![
        case("person: missing", Call::UpsertPerson(credit::UpsertPersonRequest::default()), field("person")),
        case("person: empty id", person(&|p| p.person_id.clear()), field("person.person_id")),
        case("person: id over 128 bytes", person(&|p| p.person_id = long(129)), field("person.person_id")),
        case("person: role unspecified", person(&|p| p.role = 0), field("person.role")),
        case("person: role 999", person(&|p| p.role = 999), field("person.role")),
        case("person: their own manager", person(&|p| p.manager_id = "pat.ae".into()), field("person.manager_id")),
        case("person: unknown manager", person(&|p| p.manager_id = "nobody.known".into()), Want::NotFound("person")),
        case("get person: unknown", Call::GetPerson(credit::GetPersonRequest { person_id: "nobody.known".into() }), Want::NotFound("person")),
        case("list people: page_size -1", Call::ListPeople(credit::ListPeopleRequest { page_size: -1, ..Default::default() }), field("page_size")),
        case("list people: role 999", Call::ListPeople(credit::ListPeopleRequest { role: 999, ..Default::default() }), field("role")),
        case("disputes: page_size -1", Call::ListDisputes(credit::ListDisputesRequest { page_size: -1, ..Default::default() }), field("page_size")),
        case("disputes: status 999", Call::ListDisputes(credit::ListDisputesRequest { status: 999, ..Default::default() }), field("status")),
        case("disputes: malformed deal id", Call::ListDisputes(credit::ListDisputesRequest { deal_id: "deal-1".into(), ..Default::default() }), field("deal_id")),
        case("disputes: garbage page token", Call::ListDisputes(credit::ListDisputesRequest { page_token: "zz".into(), ..Default::default() }), field("page_token")),
        case("policy: missing", Call::UpsertPolicy(credit::UpsertCreditPolicyRequest::default()), field("policy")),
        case("policy: origination is text", policy(&|p| p.origination_percent = "a quarter".into()), field("policy.origination_percent")),
        case("policy: origination 150%", policy(&|p| p.origination_percent = "150".into()), field("policy.origination_percent")),
        case("policy: origination -5%", policy(&|p| p.origination_percent = "-5".into()), field("policy.origination_percent")),
        case("policy: origination with 7 decimals", policy(&|p| p.origination_percent = "25.0000001".into()), field("policy.origination_percent")),
        case("policy: 30% + 60% is not 100%", policy(&|p| { p.origination_percent = "30".into(); p.delivery_percent = "60".into(); }), field("policy.delivery_percent")),
        case("policy: 33.33% + 66.66% is not 100%", policy(&|p| { p.origination_percent = "33.33".into(); p.delivery_percent = "66.66".into(); }), field("policy.delivery_percent")),
        case("policy: overlay without a name", policy(&|p| p.overlays = vec![overlay("", "5")]), field("policy.overlays[0].name")),
        case("policy: overlay named twice", policy(&|p| p.overlays = vec![overlay("se", "5"), overlay("se", "3")]), field("policy.overlays[1].name")),
        case("policy: overlay without a percent", policy(&|p| p.overlays = vec![overlay("se", "")]), field("policy.overlays[0].percent")),
        case("policy: overlays over 1000%", policy(&|p| p.overlays = vec![overlay("a", "600"), overlay("b", "600")]), field("policy.overlays")),
        case("policy: 33 overlays", policy(&|p| p.overlays = (0..33).map(|i| overlay(&format!("o{i}"), "1")).collect()), field("policy.overlays")),
        case("policy: basis 999", policy(&|p| p.basis = 999), field("policy.basis")),
        case("policy: clawback mode 999", policy(&|p| p.clawback_mode = 999), field("policy.clawback_mode")),
        case("policy: hold of -1 days", policy(&|p| p.hold_days = -1), field("policy.hold_days")),
        case("policy: window of 3651 days", policy(&|p| p.clawback_window_days = 3651), field("policy.clawback_window_days")),
        case("policy: id with spaces", policy(&|p| p.policy_id = "EMEA 2027".into()), field("policy.policy_id")),
        case("policy: effective 2026-00-10", policy(&|p| p.effective_date = "2026-00-10".into()), field("policy.effective_date")),
        case("policy: request_id over 256 bytes (the limit of every service)", Call::UpsertPolicy(credit::UpsertCreditPolicyRequest { request_id: long(257), policy: Some(credit::CreditPolicy::default()) }), field("request_id")),
        case("get policy: upper-case id", Call::GetPolicy(credit::GetCreditPolicyRequest { policy_id: "Default".into(), ..Default::default() }), field("policy_id")),
        case("get policy: version -1", Call::GetPolicy(credit::GetCreditPolicyRequest { version: -1, ..Default::default() }), field("version")),
        case("get policy: as_of_date 'today'", Call::GetPolicy(credit::GetCreditPolicyRequest { as_of_date: "today".into(), ..Default::default() }), field("as_of_date")),
        case("get policy: unknown policy", Call::GetPolicy(credit::GetCreditPolicyRequest { policy_id: "ghost".into(), version: 1, ..Default::default() }), Want::NotFound("credit policy")),
        case("get policy: a named one, none in force in 2020", Call::GetPolicy(credit::GetCreditPolicyRequest { policy_id: "margin".into(), as_of_date: "2020-01-01".into(), ..Default::default() }), Want::NotFound("credit policy")),
        case("deal: empty deal id", deal(&|r| r.deal_id.clear()), field("deal_id")),
        case("deal: malformed deal id", deal(&|r| r.deal_id = "deal-1".into()), field("deal_id")),
        case("deal: no amount", deal(&|r| r.amount = None), field("amount")),
        case("deal: amount is text", deal(&|r| r.amount = usd("twenty grand")), field("amount.amount")),
        case("deal: amount with three decimals", deal(&|r| r.amount = usd("20000.001")), field("amount.amount")),
        case("deal: amount in exponent form", deal(&|r| r.amount = usd("2e4")), field("amount.amount")),
        case("deal: negative amount", deal(&|r| r.amount = usd("-20000")), field("amount.amount")),
        case("deal: zero amount", deal(&|r| r.amount = usd("0.00")), field("amount.amount")),
        case("deal: amount beyond the largest deal", deal(&|r| r.amount = usd("10000000000000000")), field("amount.amount")),
        case("deal: unknown currency", deal(&|r| r.amount = money("DOGE", "1")), field("amount.currency_code")),
        case("deal: margin 101%", deal(&|r| r.margin_percent = "101".into()), field("margin_percent")),
        case("deal: close date missing", deal(&|r| r.close_date.clear()), field("close_date")),
        case("deal: close date 2026-06-31", deal(&|r| r.close_date = "2026-06-31".into()), field("close_date")),
        case("deal: no participants", deal(&|r| r.participants.clear()), field("participants")),
        case("deal: 65 participants", deal(&|r| { r.participants = (0..65) .map(|i| participant(&format!("ae-{i}"), Delivery, "")) .collect() }), field("participants")),
        case("deal: role 999", deal(&|r| r.participants[1].role = 999), field("participants[1].role")),
        case("deal: role unspecified", deal(&|r| r.participants[0].role = 0), field("participants[0].role")),
        case("deal: percent is text", deal(&|r| r.participants[1].percent = "half".into()), field("participants[1].percent")),
        case("deal: delivery splits 50% + 40%", deal(&|r| { r.participants[1].percent = "50".into(); r.participants.push(participant("sam.ae", Delivery, "40")); }), field("participants[2].percent")),
        case("deal: delivery splits 33.33% x 3", deal(&|r| { r.participants[1].percent = "33.33".into(); r.participants .push(participant("sam.ae", Delivery, "33.33")); r.participants .push(participant("kim.ae", Delivery, "33.33")); }), field("participants[3].percent")),
        case("deal: two delivery without percents", deal(&|r| r.participants.push(participant("sam.ae", Delivery, ""))), field("participants[1].percent")),
        case("deal: participant listed twice", deal(&|r| r.participants.push(participant("alex.ae", Delivery, "50"))), field("participants[2].participant_id")),
        case("deal: two owners", deal(&|r| { r.participants[0].owner = true; r.participants[1].owner = true; }), field("participants[1].owner")),
        case("deal: participant id over 128 bytes", deal(&|r| r.participants[0].participant_id = long(129)), field("participants[0].participant_id")),
        case("deal: no delivery participant", deal(&|r| r.participants.truncate(1)), field("participants")),
        case("deal: CS-led with a delivery participant", deal(&|r| r.cs_led_without_handoff = true), field("participants[1].role")),
        case("deal: overlay rule on an originator", deal(&|r| r.participants[0].overlay_rule = "account_team".into()), field("participants[0].overlay_rule")),
        case("deal: overlay of 1001%", deal(&|r| r.participants.push(participant("se", Overlay, "1001"))), field("participants[2].percent")),
        case("deal: overlay rule the policy lacks", deal(&|r| { r.participants.push(credit::Participant { overlay_rule: "ghost_rule".into(), ..participant("se", Overlay, "") }) }), field("participants[2].overlay_rule")),
        case("deal: policy id with capitals", deal(&|r| r.policy_id = "EMEA".into()), field("policy_id")),
        case("deal: malformed account", deal(&|r| r.account_id = "a".into()), field("account_id")),
        case("deal: malformed subscription", deal(&|r| r.subscription_id = "s".into()), field("subscription_id")),
        case("deal: unknown policy", deal(&|r| r.policy_id = "ghost".into()), Want::Precondition("NO_POLICY_IN_FORCE")),
        case("deal: a named policy with no version in force", deal(&|r| { r.policy_id = "margin".into(); r.margin_percent = "70".into(); r.close_date = "2025-06-01".into(); }), Want::Precondition("NO_POLICY_IN_FORCE")),
        case("deal: replayed with another amount", Call::RecordDeal(changed_replay), Want::AlreadyExists("DEAL_ALREADY_CREDITED")),
        case("deal: participant id that is not UTF-8", Call::Raw("/expansion.credit.v1.CompensationCreditService/RecordDealCredits", invalid_utf8_participant), field("participants.participant_id")),
        case("replace: unknown deal", replace(&|r| r.deal_id = ghost()), Want::NotFound("deal")),
        case("replace: no reason", replace(&|r| r.reason.clear()), field("reason")),
        case("replace: splits total 90%", replace(&|r| { r.participants[1].percent = "90".into(); r.participants.push(participant("sam.ae", Delivery, "0")); }), field("participants[2].percent")),
        case("replace: owner removed", replace(&|r| r.participants[1] = participant("sam.ae", Delivery, "")), Want::Precondition("OWNER_SPLIT_REQUIRED")),
        case("replace: owner kept at 0%", replace(&|r| { r.participants[1].percent = "0".into(); r.participants.push(participant("sam.ae", Delivery, "100")); }), Want::Precondition("OWNER_SPLIT_REQUIRED")),
        case("replace: another owner", replace(&|r| { r.participants[0].owner = true; r.participants[1].owner = false; }), field("participants[0].owner")),
        case("deal credits: empty id", Call::GetDealCredits(credit::GetDealCreditsRequest::default()), field("deal_id")),
        case("deal credits: unknown deal", Call::GetDealCredits(credit::GetDealCreditsRequest { deal_id: ghost() }), Want::NotFound("deal")),
        case("approve: nothing named", Call::Approve(credit::ApproveCreditsRequest::default()), field("deal_id")),
        case("approve: entries and a deal", Call::Approve(credit::ApproveCreditsRequest { entry_ids: vec![f.entries[0].clone()], deal_id: f.deal.clone(), ..Default::default() }), field("deal_id")),
        case("approve: malformed entry id", Call::Approve(credit::ApproveCreditsRequest { entry_ids: vec![f.entries[0].clone(), "e".into()], ..Default::default() }), field("entry_ids[1]")),
        case("approve: 1001 entry ids", Call::Approve(credit::ApproveCreditsRequest { entry_ids: (0..1001).map(|_| ghost()).collect(), ..Default::default() }), field("entry_ids")),
        case("approve: unknown entry", Call::Approve(credit::ApproveCreditsRequest { entry_ids: vec![ghost()], ..Default::default() }), Want::NotFound("ledger entry")),
        case("approve: unknown deal", Call::Approve(credit::ApproveCreditsRequest { deal_id: ghost(), ..Default::default() }), Want::NotFound("deal")),
        case("approve: NUL in the note", Call::Approve(credit::ApproveCreditsRequest { deal_id: f.deal.clone(), note: "ok\u{0}".into(), ..Default::default() }), field("note")),
        case("clawback: nothing named", Call::Clawback(credit::ApplyClawbackRequest { cancel_date: "2026-07-01".into(), ..Default::default() }), field("deal_id")),
        case("clawback: malformed subscription", Call::Clawback(credit::ApplyClawbackRequest { subscription_id: "s".into(), cancel_date: "2026-07-01".into(), ..Default::default() }), field("subscription_id")),
        case("clawback: no cancel date", Call::Clawback(credit::ApplyClawbackRequest { deal_id: f.deal.clone(), ..Default::default() }), field("cancel_date")),
        case("clawback: cancel date 01/07/2026", Call::Clawback(credit::ApplyClawbackRequest { deal_id: f.deal.clone(), cancel_date: "01/07/2026".into(), ..Default::default() }), field("cancel_date")),
        case("clawback: unknown deal", Call::Clawback(credit::ApplyClawbackRequest { deal_id: ghost(), cancel_date: "2026-07-01".into(), ..Default::default() }), Want::NotFound("deal")),
        case("ledger: negative page_size", ledger(&|r| r.page_size = -1), field("page_size")),
        case("ledger: garbage page_token", ledger(&|r| r.page_token = "zz".into()), field("page_token")),
        case("ledger: kind 999", ledger(&|r| r.kind = 999), field("kind")),
        case("ledger: role 999", ledger(&|r| r.role = 999), field("role")),
        case("ledger: end before start", ledger(&|r| { r.start_time = ts(1_800_000_000, 0); r.end_time = ts(1_700_000_000, 0); }), field("end_time")),
        case("ledger: negative nanos", ledger(&|r| r.start_time = ts(0, -5)), field("start_time")),
        case("ledger: malformed deal", ledger(&|r| r.deal_id = "d".into()), field("deal_id")),
        case("dispute: malformed entry", Call::OpenDispute(credit::OpenDisputeRequest { entry_id: "e".into(), reason: "wrong".into(), ..Default::default() }), field("entry_id")),
        case("dispute: no reason", Call::OpenDispute(credit::OpenDisputeRequest { entry_id: f.entries[0].clone(), ..Default::default() }), field("reason")),
        case("dispute: unknown entry", Call::OpenDispute(credit::OpenDisputeRequest { entry_id: ghost(), reason: "wrong".into(), ..Default::default() }), Want::NotFound("ledger entry")),
        case("dispute: one already open", Call::OpenDispute(credit::OpenDisputeRequest { entry_id: f.entries[0].clone(), reason: "again".into(), ..Default::default() }), Want::Precondition("DISPUTE_ALREADY_OPEN")),
        case("resolve: malformed dispute", resolve(&|r| r.dispute_id = "d".into()), field("dispute_id")),
        case("resolve: no resolution", resolve(&|r| r.resolution = 0), field("resolution")),
        case("resolve: resolution 999", resolve(&|r| r.resolution = 999), field("resolution")),
        case("resolve: adjust without an amount", resolve(&|r| r.adjustment = None), field("adjustment")),
        case("resolve: adjust by zero", resolve(&|r| r.adjustment = usd("0")), field("adjustment.amount")),
        case("resolve: adjust in EUR a USD entry", resolve(&|r| r.adjustment = money("EUR", "100")), field("adjustment.currency_code")),
        case("resolve: reject with an amount", resolve(&|r| r.resolution = credit::DisputeResolution::Reject as i32), field("adjustment")),
        case("resolve: unknown dispute", resolve(&|r| r.dispute_id = ghost()), Want::NotFound("dispute")),
        case("resolve: already resolved", resolve(&|r| r.dispute_id = f.resolved_dispute.clone()), Want::Precondition("DISPUTE_ALREADY_RESOLVED")),
        case("statement: no start", statement(&|r| r.start_date.clear()), field("start_date")),
        case("statement: end before start", statement(&|r| r.end_date = "2025-01-01".into()), field("end_date")),
        case("statement: participant and team", statement(&|r| { r.participant_id = "carla.csm".into(); r.team = "cs".into(); }), field("team")),
        case("statement: negative page_size", statement(&|r| r.page_size = -2), field("page_size")),
        case("credit events: cursor beyond i64", Call::CreditEvents(credit::WatchEventsRequest { options: Some(WatchEventsOptions { after_cursor: "ev1.ffffffffffffffffff".into(), event_types: vec![] }) }), field("options.after_cursor")),
    ]
}

// ------------------------------------------------------------------ the test

async fn malformed_requests_are_refused_and_change_nothing(backend: Backend) {
    let max = MAX_MESSAGE_BYTES.to_string();
    let server = Server::start(&backend, &["--max-message-bytes", &max]);
    let mut c = Clients::of(&server).await;
    let events = Events::follow(&mut c).await;
    let f = fixture(&mut c).await;
    let settled = events.settle().await;
    let before = snapshot_all(&mut c, &f).await;

    let mut probes = Vec::new();
    let mut cases = health_cases(&f, &mut probes);
    cases.extend(pipeline_cases(&f));
    cases.extend(credit_cases(&f));
    let tried = cases.len();
    assert!(tried >= 100, "only {tried} cases");

    let mut failures = Vec::new();
    for Case { name, call, want } in cases {
        let service = call.service();
        let expected = &before[service as usize];
        match call.send(&mut c).await {
            Ok(()) => failures.push(format!("{name}: accepted; want {want:?}")),
            Err(status) => {
                if status.code() == Code::Internal {
                    failures.push(format!("{name}: INTERNAL {:?}", status.message()));
                } else if let Some(why) = mismatch(&status, &want) {
                    failures.push(format!("{name}: {why}"));
                }
            }
        }
        if snapshot(&mut c, &f, service).await != *expected {
            failures.push(format!("{name}: stored state of {service:?} changed"));
        }
        if events.counts() != settled {
            failures.push(format!(
                "{name}: events {:?} became {:?}",
                settled,
                events.counts()
            ));
        }
    }
    // Late events would show here; then the probes of the refused batches
    // are still new (accepted, not duplicates): none of them was stored.
    tokio::time::sleep(Duration::from_millis(500)).await;
    if events.counts() != settled {
        failures.push(format!(
            "events {settled:?} became {:?} after the cases",
            events.counts()
        ));
    }
    if snapshot_all(&mut c, &f).await != before {
        failures.push("stored state changed".to_owned());
    }
    let replay = c
        .health
        .record_signals(health::RecordSignalsRequest {
            request_id: String::new(),
            signals: probes.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    if (replay.accepted, replay.duplicates) != (i64::try_from(probes.len()).unwrap(), 0) {
        failures.push(format!("a refused batch stored part of itself: {replay:?}"));
    }
    assert!(
        failures.is_empty(),
        "{} failures over {tried} cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("bad input: {tried} malformed requests refused, state unchanged");
    // The server is still up and answering.
    c.health
        .get_account(health::GetAccountRequest {
            account_id: f.account.clone(),
            external_ref: None,
        })
        .await
        .unwrap();
}

/// A UUID is accepted in any standard spelling (upper case, no hyphens,
/// braces); whatever is stored or looked up must be its canonical form, or
/// the write lands on an id nothing else uses.
async fn ids_in_any_spelling_name_the_same_resource(backend: Backend) {
    let server = Server::start(&backend, &[]);
    let mut c = Clients::of(&server).await;
    let f = fixture(&mut c).await;
    let upper = |id: &str| id.to_uppercase();
    let simple = |id: &str| id.replace('-', "");

    let by_upper = c
        .health
        .get_account(health::GetAccountRequest {
            account_id: upper(&f.account),
            external_ref: None,
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(by_upper.account_id, f.account);

    let health = c
        .health
        .override_health(health::OverrideHealthRequest {
            account_id: simple(&f.account),
            product_id: upper(&f.product),
            score: 35,
            reason: "exec escalation".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .health
        .unwrap();
    let product = health
        .products
        .iter()
        .find(|p| p.product_id == f.product)
        .expect("the product's score");
    assert_eq!(
        product.r#override.as_ref().map(|o| o.score),
        Some(35),
        "the override landed on another spelling of the product id: {health:?}"
    );
    assert_eq!(product.score, "35");

    let history = |product_id: String| {
        let mut client = c.health.clone();
        let account = f.account.clone();
        async move {
            client
                .get_health_history(health::GetHealthHistoryRequest {
                    account_id: account,
                    product_id,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .points
        }
    };
    let canonical = history(f.product.clone()).await;
    assert!(!canonical.is_empty());
    assert_eq!(history(upper(&f.product)).await, canonical);
    assert_eq!(history(format!("{{{}}}", f.product)).await, canonical);

    let opportunity = c
        .pipeline
        .get_opportunity(pipeline::GetOpportunityRequest {
            opportunity_id: upper(&f.opportunity.opportunity_id),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(opportunity.opportunity_id, f.opportunity.opportunity_id);
    let credits = c
        .credit
        .get_deal_credits(credit::GetDealCreditsRequest {
            deal_id: simple(&f.deal),
        })
        .await
        .unwrap()
        .into_inner()
        .credits
        .unwrap();
    assert_eq!(credits.deal_id, f.deal);
}
