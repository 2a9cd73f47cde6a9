//! The tonic face of the credit service: decode, call, encode.

use contracts::pb::credit::v1 as pb;
use contracts::pb::credit::v1::compensation_credit_service_server::CompensationCreditService;
use std::collections::BTreeSet;
use std::sync::Arc;

use contracts::{ApiError, caller_of, page, principal_of, wire};
use prost::Message;
use sea_orm::DatabaseConnection;
use tokio_stream::StreamExt;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::convert::{
    deal_to_pb, dispute_to_pb, entries_to_pb, entry_to_pb, figures_to_pb, person_to_pb,
    policy_to_pb,
};
use crate::error::CreditError;
use crate::model::deal::{DealInput, deal_id, parse_splits};
use crate::model::inputs::{
    ApproveInput, ClawbackInput, ListDisputesInput, ListInput, ResolveInput, StatementInput,
    open_dispute,
};
use crate::model::ledger::statement;
use crate::model::people::{ListPeopleInput, PersonInput};
use crate::model::privacy::{self, Reader};
use crate::model::{PolicyInput, policy_id};
use crate::store::{DisputeFilter, EntryFilter, Resolution, StatementSubject, Store};

#[derive(Clone)]
pub struct CreditService {
    store: Store,
    webhooks: webhooks::Webhooks,
}

impl CreditService {
    pub fn new(db: DatabaseConnection) -> Self {
        let store = Store::new(db);
        // Webhooks of credit events carry every entry: only admin, revops and
        // connector keys register endpoints, and those read all (README).
        let webhooks = webhooks::Webhooks::new(
            store.db().clone(),
            store.write_gate(),
            store.events().clone(),
            webhooks::Tables::CREDIT,
        );
        Self { store, webhooks }
    }

    /// The same service, sending webhooks under `policy`.
    pub fn with_webhook_policy(mut self, policy: webhooks::Policy) -> Self {
        self.webhooks = self.webhooks.with_policy(policy);
        self
    }

    /// The service's webhooks, for their dispatcher.
    pub fn webhooks(&self) -> &webhooks::Webhooks {
        &self.webhooks
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn invalid(err: ApiError) -> CreditError {
    CreditError::from(err)
}

/// Longest accepted `request_id`, in bytes.
/// Where this service keeps its `request_id` records.
const REQUESTS: storage::idempotency::Requests =
    storage::idempotency::Requests::new("credit_request_records");

impl CreditService {
    /// What the caller reads of people's credit: everything, a person's own
    /// (and managed team's, its members from the directory), or totals only.
    async fn reader<T>(&self, request: &Request<T>) -> Result<Reader, CreditError> {
        let caller = caller_of(request);
        let members = match &caller.manages {
            Some(team) => self.store.team_members(team).await?,
            None => BTreeSet::new(),
        };
        Ok(privacy::reader_of(&caller, members))
    }

    /// A credit event as it may reach `reader`, or `None`. Policy and directory
    /// events reach everyone (both are readable by every role); any other reaches a
    /// person key only when it touches one of its rows, and a viewer never. What a
    /// person key gets names only its own entries: other entry ids are left out, and
    /// deal-wide sums (a clawback's recovered and forfeited totals, which include
    /// colleagues' shares) are removed.
    async fn event_for(
        &self,
        reader: &Reader,
        mut event: contracts::pb::common::v1::Event,
    ) -> Result<Option<contracts::pb::common::v1::Event>, CreditError> {
        if matches!(reader, Reader::Everything)
            || event.event_type.starts_with("credit.policy.")
            || event.event_type.starts_with("credit.person.")
        {
            return Ok(Some(event));
        }
        if matches!(reader, Reader::TotalsOnly) {
            return Ok(None);
        }
        use prost_types::value::Kind;
        let Some(data) = event.data.as_mut() else {
            return Ok(None);
        };
        let string = |v: &prost_types::Value| match &v.kind {
            Some(Kind::StringValue(s)) => Some(s.clone()),
            _ => None,
        };
        let mut ids = Vec::new();
        let mut named = Vec::new();
        for (key, value) in &data.fields {
            match (key.as_str(), &value.kind) {
                ("entry_id" | "adjustment_entry_id", Some(Kind::StringValue(id))) => {
                    ids.push(id.clone());
                }
                ("entry_ids", Some(Kind::ListValue(list))) => {
                    ids.extend(list.values.iter().filter_map(string));
                }
                ("participant_id", Some(Kind::StringValue(p))) => named.push(p.clone()),
                _ => {}
            }
        }
        let credited = self.store.credited(&ids).await?;
        let sees = |id: &str| {
            credited
                .get(id)
                .is_some_and(|(p, t)| reader.sees(p, t.as_deref()))
        };
        let visible = ids.iter().any(|id| sees(id)) || named.iter().any(|p| reader.sees(p, None));
        if !visible {
            return Ok(None);
        }
        if let Some(Kind::ListValue(list)) = data
            .fields
            .get_mut("entry_ids")
            .and_then(|v| v.kind.as_mut())
        {
            list.values
                .retain(|v| string(v).is_some_and(|id| sees(&id)));
        }
        data.fields.remove("recovered");
        data.fields.remove("forfeited");
        Ok(Some(event))
    }

    /// Runs a mutation in one transaction, at most once per caller and `request_id`
    /// (AIP-155, see `storage::idempotency`): a retry with the same id and the same
    /// request gets the first response back; the same id with another request is
    /// refused.
    async fn once<Req, T, F>(
        &self,
        method: &'static str,
        principal: &str,
        request_id: &str,
        request: &Req,
        run: F,
    ) -> Reply<T>
    where
        Req: Message,
        T: Message + Default,
        F: Future<Output = Result<T, CreditError>>,
    {
        let response = REQUESTS
            .once(
                self.store.db(),
                &self.store.write_gate(),
                method,
                principal,
                request_id,
                request,
                || run,
            )
            .await?;
        Ok(Response::new(response))
    }
}

#[tonic::async_trait]
impl CompensationCreditService for CreditService {
    #[tracing::instrument(skip_all)]
    async fn upsert_credit_policy(
        &self,
        request: Request<pb::UpsertCreditPolicyRequest>,
    ) -> Reply<pb::UpsertCreditPolicyResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let today = storage::now().date_naive();
        let input = PolicyInput::from_request(&req, today).map_err(invalid)?;
        self.once("UpsertCreditPolicy", &principal, &req.request_id, &req, async {
            let model = self.store.add_policy_version(&input, &principal).await?;
            tracing::info!(policy_id = %model.policy_id, version = model.version, "credit policy version added");
            Ok(pb::UpsertCreditPolicyResponse {
                policy: Some(policy_to_pb(model)?),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_credit_policy(
        &self,
        request: Request<pb::GetCreditPolicyRequest>,
    ) -> Reply<pb::GetCreditPolicyResponse> {
        let req = request.get_ref();
        let id = policy_id("policy_id", &req.policy_id).map_err(invalid)?;
        let found = match req.version {
            v if v < 0 => {
                return Err(invalid(ApiError::invalid("version", "must not be negative")).into());
            }
            0 => {
                let date = wire::optional_date("as_of_date", &req.as_of_date)
                    .map_err(invalid)?
                    .unwrap_or_else(|| storage::now().date_naive());
                self.store.policy_in_force(&id, date).await?
            }
            v => self.store.policy_version(&id, v).await?,
        };
        let model = found.ok_or(CreditError::PolicyNotFound(id))?;
        Ok(Response::new(pb::GetCreditPolicyResponse {
            policy: Some(policy_to_pb(model)?),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn record_deal_credits(
        &self,
        request: Request<pb::RecordDealCreditsRequest>,
    ) -> Reply<pb::RecordDealCreditsResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let input = DealInput::from_request(&req).map_err(invalid)?;
        self.once(
            "RecordDealCredits",
            &principal,
            &req.request_id,
            &req,
            async {
                let (view, created) = self.store.record_deal(&input, &principal).await?;
                tracing::info!(deal_id = %view.deal.deal_id, created, "deal credits recorded");
                Ok(pb::RecordDealCreditsResponse {
                    credits: Some(deal_to_pb(&view, storage::now())?),
                    created,
                })
            },
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn replace_deal_splits(
        &self,
        request: Request<pb::ReplaceDealSplitsRequest>,
    ) -> Reply<pb::ReplaceDealSplitsResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let deal = deal_id("deal_id", &req.deal_id).map_err(invalid)?;
        let splits = parse_splits(
            "participants",
            &req.participants,
            req.cs_led_without_handoff,
        )
        .map_err(invalid)?;
        let reason = wire::text("reason", &req.reason, wire::MAX_NOTE_LEN).map_err(invalid)?;
        self.once(
            "ReplaceDealSplits",
            &principal,
            &req.request_id,
            &req,
            async {
                let view = self
                    .store
                    .replace_splits(
                        &deal.to_string(),
                        &splits,
                        req.cs_led_without_handoff,
                        &reason,
                        &principal,
                    )
                    .await?;
                Ok(pb::ReplaceDealSplitsResponse {
                    credits: Some(deal_to_pb(&view, storage::now())?),
                })
            },
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_deal_credits(
        &self,
        request: Request<pb::GetDealCreditsRequest>,
    ) -> Reply<pb::GetDealCreditsResponse> {
        let deal = deal_id("deal_id", &request.get_ref().deal_id).map_err(invalid)?;
        let reader = self.reader(&request).await?;
        let mut view = self.store.deal(&deal.to_string()).await?;
        privacy::check_deal_read(
            &reader,
            &view.deal.deal_id,
            view.entries
                .iter()
                .map(|e| (e.participant_id.as_str(), e.team.as_deref()))
                .chain(
                    view.splits
                        .iter()
                        .map(|s| (s.participant_id.as_str(), s.team.as_deref())),
                ),
        )
        .map_err(CreditError::from)?;
        // A person key sees its own (and its team's) splits and entries only.
        view.entries
            .retain(|e| reader.sees(&e.participant_id, e.team.as_deref()));
        view.splits
            .retain(|s| reader.sees(&s.participant_id, s.team.as_deref()));
        Ok(Response::new(pb::GetDealCreditsResponse {
            credits: Some(deal_to_pb(&view, storage::now())?),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn approve_credits(
        &self,
        request: Request<pb::ApproveCreditsRequest>,
    ) -> Reply<pb::ApproveCreditsResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let input = ApproveInput::from_request(&req).map_err(invalid)?;
        self.once("ApproveCredits", &principal, &req.request_id, &req, async {
            let released = self
                .store
                .approve(
                    &input.entry_ids,
                    input.deal_id.as_deref(),
                    input.note.clone(),
                    &principal,
                )
                .await?;
            Ok(pb::ApproveCreditsResponse {
                released: entries_to_pb(&released, storage::now())?,
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn apply_clawback(
        &self,
        request: Request<pb::ApplyClawbackRequest>,
    ) -> Reply<pb::ApplyClawbackResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let input = ClawbackInput::from_request(&req).map_err(invalid)?;
        self.once("ApplyClawback", &principal, &req.request_id, &req, async {
            let outcome = self
                .store
                .apply_clawback(
                    input.deal_id.as_deref(),
                    input.subscription_id.as_deref(),
                    input.cancel_date,
                    &input.reason,
                    &principal,
                )
                .await?;
            Ok(pb::ApplyClawbackResponse {
                entries: entries_to_pb(&outcome.entries, storage::now())?,
                created: outcome.created,
                outside_window_deal_ids: outcome.outside_window,
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_ledger_entries(
        &self,
        request: Request<pb::ListLedgerEntriesRequest>,
    ) -> Reply<pb::ListLedgerEntriesResponse> {
        let input = ListInput::from_request(request.get_ref()).map_err(invalid)?;
        let reader = self.reader(&request).await?;
        privacy::check_person_rows(&reader, input.participant_id.as_deref())
            .map_err(CreditError::from)?;
        let filter = EntryFilter {
            visible_to: match reader {
                Reader::Person(scope) => Some(scope),
                _ => None,
            },
            participant_id: input.participant_id.clone(),
            deal_id: input.deal_id.clone(),
            kind: input.kind,
            role: input.role,
            start: input.start,
            end: input.end,
        };
        let mut entries = self
            .store
            .list_entries(&filter, input.after.as_deref(), input.page_size)
            .await?;
        let next_page_token = next_token(&mut entries, input.page_size, input.fingerprint);
        Ok(Response::new(pb::ListLedgerEntriesResponse {
            entries: entries_to_pb(&entries, storage::now())?,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn open_dispute(
        &self,
        request: Request<pb::OpenDisputeRequest>,
    ) -> Reply<pb::OpenDisputeResponse> {
        let caller = caller_of(&request);
        let principal = caller.name.clone();
        let req = request.into_inner();
        let (entry_id, reason) = open_dispute(&req).map_err(invalid)?;
        self.once("OpenDispute", &principal, &req.request_id, &req, async {
            let view = self.store.open_dispute(&entry_id, &reason, &caller).await?;
            Ok(pb::OpenDisputeResponse {
                dispute: Some(dispute_to_pb(&view)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn resolve_dispute(
        &self,
        request: Request<pb::ResolveDisputeRequest>,
    ) -> Reply<pb::ResolveDisputeResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let input = ResolveInput::from_request(&req).map_err(invalid)?;
        let resolution = match input.adjustment {
            Some(money) => Resolution::Adjust(money),
            None => Resolution::Reject,
        };
        self.once("ResolveDispute", &principal, &req.request_id, &req, async {
            let (view, adjustment) = self
                .store
                .resolve_dispute(
                    &input.dispute_id,
                    resolution,
                    input.note.clone(),
                    &principal,
                )
                .await?;
            Ok(pb::ResolveDisputeResponse {
                dispute: Some(dispute_to_pb(&view)),
                adjustment: adjustment
                    .map(|e| entry_to_pb(&e, storage::now()))
                    .transpose()?,
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_statement(
        &self,
        request: Request<pb::GetStatementRequest>,
    ) -> Reply<pb::GetStatementResponse> {
        let mut input = StatementInput::from_request(request.get_ref()).map_err(invalid)?;
        let reader = self.reader(&request).await?;
        let access = privacy::statement_access(
            &reader,
            input.participant_id.as_deref(),
            input.team.as_deref(),
        )
        .map_err(CreditError::from)?;
        input.participant_id = access.participant.clone();
        input.team = access.team.clone();
        let subject = match (&input.participant_id, &input.team) {
            (Some(p), _) => StatementSubject::Participant(p.clone()),
            (None, Some(team)) => StatementSubject::Team(team.clone()),
            (None, None) => StatementSubject::Everyone,
        };
        let entries = self.store.statement_entries(&subject, input.end).await?;
        let now = storage::now();
        let figures = statement(&entries, input.start, input.end, now)
            .ok_or_else(|| CreditError::Corrupt("statement total overflows".to_owned()))?;
        let mut period: Vec<_> = entries
            .into_iter()
            .filter(|e| e.created_at >= input.start)
            .filter(|e| input.after.as_ref().is_none_or(|after| &e.entry_id > after))
            .take(usize::try_from(input.page_size + 1).unwrap_or(usize::MAX))
            .collect();
        let mut next_page_token = next_token(&mut period, input.page_size, input.fingerprint);
        if !access.entries {
            // A viewer gets the figures, never the entries behind them.
            period.clear();
            next_page_token.clear();
        }
        Ok(Response::new(pb::GetStatementResponse {
            participant_id: input.participant_id.unwrap_or_default(),
            team: input.team.unwrap_or_default(),
            currencies: figures
                .iter()
                .map(figures_to_pb)
                .collect::<Result<_, _>>()?,
            entries: entries_to_pb(&period, now)?,
            next_page_token,
        }))
    }

    type WatchEventsStream = BoxStream<pb::WatchEventsResponse>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        let reader = self.reader(&request).await?;
        let stream = storage::events::watch_response(
            self.store.events(),
            self.store.db().pool().clone(),
            request.into_inner().options,
            crate::DOMAIN,
            |event| pb::WatchEventsResponse { event: Some(event) },
        )?;
        if matches!(reader, Reader::Everything) {
            return Ok(Response::new(stream));
        }
        // The same rows rule as the reads: a person key's stream carries the events
        // of its own (and its team's) entries, a viewer's none of a person's.
        let service = self.clone();
        let reader = Arc::new(reader);
        let filtered = stream
            .then(move |item| {
                let service = service.clone();
                let reader = reader.clone();
                async move {
                    let response = match item {
                        Ok(response) => response,
                        Err(status) => return Some(Err(status)),
                    };
                    let event = response.event?;
                    match service.event_for(&reader, event).await {
                        Ok(Some(event)) => Some(Ok(pb::WatchEventsResponse { event: Some(event) })),
                        Ok(None) => None,
                        Err(err) => Some(Err(Status::from(err))),
                    }
                }
            })
            .filter_map(|item| item);
        Ok(Response::new(Box::pin(filtered)))
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_person(
        &self,
        request: Request<pb::UpsertPersonRequest>,
    ) -> Reply<pb::UpsertPersonResponse> {
        let principal = principal_of(&request);
        let req = request.into_inner();
        let input = PersonInput::from_request(&req).map_err(invalid)?;
        self.once("UpsertPerson", &principal, &req.request_id, &req, async {
            let (model, changed) = self.store.upsert_person(&input, &principal).await?;
            tracing::info!(person_id = %model.person_id, version = model.version, changed, "person upserted");
            Ok(pb::UpsertPersonResponse {
                person: Some(person_to_pb(&model)),
                changed,
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Reply<pb::GetPersonResponse> {
        let id = crate::model::deal::participant_id("person_id", &request.get_ref().person_id)
            .map_err(invalid)?;
        let model = self
            .store
            .person(&id)
            .await?
            .ok_or_else(|| CreditError::not_found("person", &id))?;
        Ok(Response::new(pb::GetPersonResponse {
            person: Some(person_to_pb(&model)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_people(
        &self,
        request: Request<pb::ListPeopleRequest>,
    ) -> Reply<pb::ListPeopleResponse> {
        let input = ListPeopleInput::from_request(request.get_ref()).map_err(invalid)?;
        let mut people = self.store.list_people(&input).await?;
        let size = usize::try_from(input.page_size).unwrap_or(usize::MAX);
        let next_page_token = if people.len() > size {
            people.truncate(size);
            people
                .last()
                .map(|p| page::encode_token(&p.person_id, input.fingerprint))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListPeopleResponse {
            people: people.iter().map(person_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_disputes(
        &self,
        request: Request<pb::ListDisputesRequest>,
    ) -> Reply<pb::ListDisputesResponse> {
        let input = ListDisputesInput::from_request(request.get_ref()).map_err(invalid)?;
        let reader = self.reader(&request).await?;
        privacy::check_person_rows(&reader, input.participant_id.as_deref())
            .map_err(CreditError::from)?;
        let (open, outcome) = match input.status {
            None => (None, None),
            Some(pb::DisputeStatus::Open) => (Some(true), None),
            Some(pb::DisputeStatus::ResolvedAdjusted) => (Some(false), Some("RESOLVED_ADJUSTED")),
            Some(_) => (Some(false), Some("RESOLVED_REJECTED")),
        };
        let filter = DisputeFilter {
            open,
            outcome,
            participant_id: input.participant_id.clone(),
            deal_id: input.deal_id.clone(),
            visible_to: match reader {
                Reader::Person(scope) => Some(scope),
                _ => None,
            },
        };
        let mut disputes = self
            .store
            .list_disputes(&filter, input.after.as_deref(), input.page_size)
            .await?;
        let size = usize::try_from(input.page_size).unwrap_or(usize::MAX);
        let next_page_token = if disputes.len() > size {
            disputes.truncate(size);
            disputes
                .last()
                .map(|d| page::encode_token(&d.dispute.dispute_id, input.fingerprint))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListDisputesResponse {
            disputes: disputes.iter().map(dispute_to_pb).collect(),
            next_page_token,
        }))
    }

    // Webhooks: the shared methods of `webhooks::Webhooks`, on this service's endpoints.

    async fn create_webhook_endpoint(
        &self,
        request: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Reply<pb::CreateWebhookEndpointResponse> {
        let by = contracts::principal_of(&request);
        let req = request.into_inner();
        let endpoint = self
            .webhooks
            .create(&by, &req.request_id, &req, req.endpoint.clone())
            .await
            .map_err(|e| e.into_status(crate::DOMAIN))?;
        Ok(Response::new(pb::CreateWebhookEndpointResponse {
            endpoint: Some(endpoint),
        }))
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Reply<pb::ListWebhookEndpointsResponse> {
        let req = request.into_inner();
        let (endpoints, next_page_token) = self
            .webhooks
            .list(req.page_size, &req.page_token)
            .await
            .map_err(|e| e.into_status(crate::DOMAIN))?;
        Ok(Response::new(pb::ListWebhookEndpointsResponse {
            endpoints,
            next_page_token,
        }))
    }

    async fn disable_webhook_endpoint(
        &self,
        request: Request<pb::DisableWebhookEndpointRequest>,
    ) -> Reply<pb::DisableWebhookEndpointResponse> {
        let by = contracts::principal_of(&request);
        let req = request.into_inner();
        let endpoint = self
            .webhooks
            .disable(&by, &req.request_id, &req, &req.endpoint_id, &req.reason)
            .await
            .map_err(|e| e.into_status(crate::DOMAIN))?;
        Ok(Response::new(pb::DisableWebhookEndpointResponse {
            endpoint: Some(endpoint),
        }))
    }

    async fn enable_webhook_endpoint(
        &self,
        request: Request<pb::EnableWebhookEndpointRequest>,
    ) -> Reply<pb::EnableWebhookEndpointResponse> {
        let by = contracts::principal_of(&request);
        let req = request.into_inner();
        let endpoint = self
            .webhooks
            .enable(&by, &req.request_id, &req, &req.endpoint_id)
            .await
            .map_err(|e| e.into_status(crate::DOMAIN))?;
        Ok(Response::new(pb::EnableWebhookEndpointResponse {
            endpoint: Some(endpoint),
        }))
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<pb::DeleteWebhookEndpointRequest>,
    ) -> Reply<pb::DeleteWebhookEndpointResponse> {
        let by = contracts::principal_of(&request);
        let req = request.into_inner();
        self.webhooks
            .delete(&by, &req.request_id, &req, &req.endpoint_id)
            .await
            .map_err(|e| e.into_status(crate::DOMAIN))?;
        Ok(Response::new(pb::DeleteWebhookEndpointResponse {}))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Reply<pb::ListWebhookDeliveriesResponse> {
        let req = request.into_inner();
        let (deliveries, next_page_token) = self
            .webhooks
            .deliveries(&req.endpoint_id, req.page_size, &req.page_token)
            .await
            .map_err(|e| e.into_status(crate::DOMAIN))?;
        Ok(Response::new(pb::ListWebhookDeliveriesResponse {
            deliveries,
            next_page_token,
        }))
    }

    async fn replay_webhook_events(
        &self,
        request: Request<pb::ReplayWebhookEventsRequest>,
    ) -> Reply<pb::ReplayWebhookEventsResponse> {
        let by = contracts::principal_of(&request);
        let req = request.into_inner();
        let reply = self
            .webhooks
            .replay(
                &by,
                &req.request_id,
                &req,
                &req.endpoint_id,
                &req.after_cursor,
                |queued, next_cursor| pb::ReplayWebhookEventsResponse {
                    queued,
                    next_cursor,
                },
            )
            .await
            .map_err(|e| e.into_status(crate::DOMAIN))?;
        Ok(Response::new(reply))
    }
}

/// Trims a page fetched with one extra row and returns the token for the next page
/// (empty at the end).
fn next_token(
    entries: &mut Vec<crate::model::ledger::Entry>,
    page_size: u64,
    fingerprint: u64,
) -> String {
    let size = usize::try_from(page_size).unwrap_or(usize::MAX);
    if entries.len() > size {
        entries.truncate(size);
        entries
            .last()
            .map(|e| page::encode_token(&e.entry_id, fingerprint))
            .unwrap_or_default()
    } else {
        String::new()
    }
}
