//! The tonic face of the health service: decode, call, encode. No rules here.

use contracts::pb::common::v1::Audit;
use contracts::pb::health::v1 as pb;
use contracts::pb::health::v1::account_health_service_server::AccountHealthService;
use contracts::{principal_of, wire};
use sea_orm::DatabaseConnection;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::entity::account;
use crate::error::HealthError;
use crate::model::{AccountInput, optional_account_id, optional_external_ref};
use crate::store::Store;

#[derive(Clone)]
pub struct HealthService {
    store: Store,
}

impl HealthService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            store: Store::new(db),
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn unimplemented<T>(method: &'static str) -> Reply<T> {
    Err(HealthError::Unimplemented(method).into())
}

fn account_to_pb(m: account::Model) -> pb::Account {
    let external_ref = match (m.external_system, m.external_id) {
        (Some(system), Some(id)) => Some(pb::ExternalRef { system, id }),
        _ => None,
    };
    let segment = m
        .segment
        .as_deref()
        .and_then(|s| s.parse::<domain::Segment>().ok())
        .map(|s| wire::segment_to_pb(s) as i32)
        .unwrap_or_default();
    pb::Account {
        account_id: m.id,
        external_ref,
        name: m.name,
        segment,
        customer_since: wire::date_to_pb(m.customer_since),
        fiscal_year_start_month: m.fiscal_year_start_month,
        owner_csm: m.owner_csm.unwrap_or_default(),
        parent_account_id: m.parent_account_id.unwrap_or_default(),
        audit: Some(Audit {
            create_time: Some(wire::timestamp(m.created_at)),
            created_by: m.created_by,
            update_time: Some(wire::timestamp(m.updated_at)),
            updated_by: m.updated_by,
        }),
    }
}

#[tonic::async_trait]
impl AccountHealthService for HealthService {
    #[tracing::instrument(skip_all)]
    async fn upsert_account(
        &self,
        request: Request<pb::UpsertAccountRequest>,
    ) -> Reply<pb::UpsertAccountResponse> {
        let principal = principal_of(&request);
        let input = AccountInput::from_request(request.get_ref()).map_err(HealthError::from)?;
        let (model, created) = self.store.upsert_account(&input, &principal).await?;
        tracing::info!(account_id = %model.id, created, "account upserted");
        Ok(Response::new(pb::UpsertAccountResponse {
            account: Some(account_to_pb(model)),
            created,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Reply<pb::GetAccountResponse> {
        let req = request.get_ref();
        let id = optional_account_id("account_id", &req.account_id).map_err(HealthError::from)?;
        let external = optional_external_ref("external_ref", req.external_ref.as_ref())
            .map_err(HealthError::from)?;
        let (found, name) = match (id, external) {
            (Some(id), _) => (self.store.account(&id).await?, id.to_string()),
            (None, Some(ext)) => (self.store.account_by_external(&ext).await?, ext.to_string()),
            (None, None) => {
                return Err(HealthError::from(contracts::ApiError::invalid(
                    "account_id",
                    "account_id or external_ref is required",
                ))
                .into());
            }
        };
        let account = found.ok_or(HealthError::AccountNotFound(name))?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(account_to_pb(account)),
        }))
    }

    async fn list_accounts(
        &self,
        _: Request<pb::ListAccountsRequest>,
    ) -> Reply<pb::ListAccountsResponse> {
        unimplemented("ListAccounts")
    }

    async fn upsert_product(
        &self,
        _: Request<pb::UpsertProductRequest>,
    ) -> Reply<pb::UpsertProductResponse> {
        unimplemented("UpsertProduct")
    }

    async fn list_products(
        &self,
        _: Request<pb::ListProductsRequest>,
    ) -> Reply<pb::ListProductsResponse> {
        unimplemented("ListProducts")
    }

    async fn upsert_subscription(
        &self,
        _: Request<pb::UpsertSubscriptionRequest>,
    ) -> Reply<pb::UpsertSubscriptionResponse> {
        unimplemented("UpsertSubscription")
    }

    async fn cancel_subscription(
        &self,
        _: Request<pb::CancelSubscriptionRequest>,
    ) -> Reply<pb::CancelSubscriptionResponse> {
        unimplemented("CancelSubscription")
    }

    async fn list_subscriptions(
        &self,
        _: Request<pb::ListSubscriptionsRequest>,
    ) -> Reply<pb::ListSubscriptionsResponse> {
        unimplemented("ListSubscriptions")
    }

    async fn record_signals(
        &self,
        _: Request<pb::RecordSignalsRequest>,
    ) -> Reply<pb::RecordSignalsResponse> {
        unimplemented("RecordSignals")
    }

    async fn stream_signals(
        &self,
        _: Request<Streaming<pb::StreamSignalsRequest>>,
    ) -> Reply<pb::StreamSignalsResponse> {
        unimplemented("StreamSignals")
    }

    async fn upsert_scorecard(
        &self,
        _: Request<pb::UpsertScorecardRequest>,
    ) -> Reply<pb::UpsertScorecardResponse> {
        unimplemented("UpsertScorecard")
    }

    async fn get_account_health(
        &self,
        _: Request<pb::GetAccountHealthRequest>,
    ) -> Reply<pb::GetAccountHealthResponse> {
        unimplemented("GetAccountHealth")
    }

    async fn list_account_health(
        &self,
        _: Request<pb::ListAccountHealthRequest>,
    ) -> Reply<pb::ListAccountHealthResponse> {
        unimplemented("ListAccountHealth")
    }

    async fn get_health_history(
        &self,
        _: Request<pb::GetHealthHistoryRequest>,
    ) -> Reply<pb::GetHealthHistoryResponse> {
        unimplemented("GetHealthHistory")
    }

    async fn override_health(
        &self,
        _: Request<pb::OverrideHealthRequest>,
    ) -> Reply<pb::OverrideHealthResponse> {
        unimplemented("OverrideHealth")
    }

    async fn list_triggers(
        &self,
        _: Request<pb::ListTriggersRequest>,
    ) -> Reply<pb::ListTriggersResponse> {
        unimplemented("ListTriggers")
    }

    async fn get_trigger(
        &self,
        _: Request<pb::GetTriggerRequest>,
    ) -> Reply<pb::GetTriggerResponse> {
        unimplemented("GetTrigger")
    }

    async fn get_revenue_metrics(
        &self,
        _: Request<pb::GetRevenueMetricsRequest>,
    ) -> Reply<pb::GetRevenueMetricsResponse> {
        unimplemented("GetRevenueMetrics")
    }

    type WatchEventsStream = BoxStream<pb::WatchEventsResponse>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        let stream = storage::events::watch_response(
            self.store.events(),
            self.store.db().clone(),
            request.into_inner().options,
            crate::DOMAIN,
            |event| pb::WatchEventsResponse { event: Some(event) },
        )?;
        Ok(Response::new(stream))
    }
}
