//! The tonic face of the credit service: unwrap the request, call [`crate::service`],
//! wrap the answer.

use contracts::pb::credit::v1 as pb;
use contracts::pb::credit::v1::compensation_credit_service_server::CompensationCreditService;
use std::sync::Arc;

use contracts::{caller_of, principal_of};
use sea_orm::DatabaseConnection;
use tokio_stream::StreamExt;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::error::CreditError;
use crate::model::privacy::Reader;
use crate::service;
use crate::store::Store;

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

impl CreditService {
    /// What the caller reads of people's credit (see [`service::reader`]).
    async fn reader<T>(&self, request: &Request<T>) -> Result<Reader, CreditError> {
        service::reader(&self.store, &caller_of(request)).await
    }

    /// A credit event as it may reach `reader` (see [`service::events::visible_event`]).
    async fn event_for(
        &self,
        reader: &Reader,
        event: contracts::pb::common::v1::Event,
    ) -> Result<Option<contracts::pb::common::v1::Event>, CreditError> {
        service::events::visible_event(&self.store, reader, event).await
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
        let reply =
            service::policies::upsert(&self.store, &principal, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn get_credit_policy(
        &self,
        request: Request<pb::GetCreditPolicyRequest>,
    ) -> Reply<pb::GetCreditPolicyResponse> {
        let reply = service::policies::get(&self.store, request.get_ref()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn record_deal_credits(
        &self,
        request: Request<pb::RecordDealCreditsRequest>,
    ) -> Reply<pb::RecordDealCreditsResponse> {
        let principal = principal_of(&request);
        let reply = service::deals::record(&self.store, &principal, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn replace_deal_splits(
        &self,
        request: Request<pb::ReplaceDealSplitsRequest>,
    ) -> Reply<pb::ReplaceDealSplitsResponse> {
        let principal = principal_of(&request);
        let reply =
            service::deals::replace_splits(&self.store, &principal, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn get_deal_credits(
        &self,
        request: Request<pb::GetDealCreditsRequest>,
    ) -> Reply<pb::GetDealCreditsResponse> {
        let caller = caller_of(&request);
        let reply = service::deals::get(&self.store, &caller, request.get_ref()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn approve_credits(
        &self,
        request: Request<pb::ApproveCreditsRequest>,
    ) -> Reply<pb::ApproveCreditsResponse> {
        let principal = principal_of(&request);
        let reply = service::ledger::approve(&self.store, &principal, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn apply_clawback(
        &self,
        request: Request<pb::ApplyClawbackRequest>,
    ) -> Reply<pb::ApplyClawbackResponse> {
        let principal = principal_of(&request);
        let reply =
            service::ledger::clawback(&self.store, &principal, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn list_ledger_entries(
        &self,
        request: Request<pb::ListLedgerEntriesRequest>,
    ) -> Reply<pb::ListLedgerEntriesResponse> {
        let caller = caller_of(&request);
        let reply = service::ledger::list_entries(&self.store, &caller, request.get_ref()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn open_dispute(
        &self,
        request: Request<pb::OpenDisputeRequest>,
    ) -> Reply<pb::OpenDisputeResponse> {
        let caller = caller_of(&request);
        let reply = service::disputes::open(&self.store, &caller, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn resolve_dispute(
        &self,
        request: Request<pb::ResolveDisputeRequest>,
    ) -> Reply<pb::ResolveDisputeResponse> {
        let principal = principal_of(&request);
        let reply =
            service::disputes::resolve(&self.store, &principal, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn get_statement(
        &self,
        request: Request<pb::GetStatementRequest>,
    ) -> Reply<pb::GetStatementResponse> {
        let caller = caller_of(&request);
        let reply = service::statements::get(&self.store, &caller, request.get_ref()).await?;
        Ok(Response::new(reply))
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
        let reply = service::people::upsert(&self.store, &principal, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Reply<pb::GetPersonResponse> {
        let reply = service::people::get(&self.store, request.get_ref()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn list_people(
        &self,
        request: Request<pb::ListPeopleRequest>,
    ) -> Reply<pb::ListPeopleResponse> {
        let reply = service::people::list(&self.store, request.get_ref()).await?;
        Ok(Response::new(reply))
    }

    #[tracing::instrument(skip_all)]
    async fn list_disputes(
        &self,
        request: Request<pb::ListDisputesRequest>,
    ) -> Reply<pb::ListDisputesResponse> {
        let caller = caller_of(&request);
        let reply = service::disputes::list(&self.store, &caller, request.get_ref()).await?;
        Ok(Response::new(reply))
    }

    // The seven webhook RPCs, each one call into `webhooks::rpc` on this
    // service's endpoints.
    webhooks::rpc::webhook_rpcs!(webhooks, crate::DOMAIN);
}
