//! The tonic face of the credit service: decode, call, encode.

use contracts::pb::common::v1::Audit;
use contracts::pb::credit::v1 as pb;
use contracts::pb::credit::v1::compensation_credit_service_server::CompensationCreditService;
use contracts::{ApiError, principal_of, wire};
use sea_orm::DatabaseConnection;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::entity::policy;
use crate::error::CreditError;
use crate::model::{OverlayRule, PolicyInput, policy_id};
use crate::store::Store;

#[derive(Clone)]
pub struct CreditService {
    store: Store,
}

impl CreditService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            store: Store::new(db),
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn unimplemented<T>(method: &'static str) -> Reply<T> {
    Err(CreditError::Unimplemented(method).into())
}

fn policy_to_pb(m: policy::Model) -> Result<pb::CreditPolicy, CreditError> {
    let overlays: Vec<OverlayRule> = serde_json::from_str(&m.overlays)
        .map_err(|e| CreditError::Corrupt(format!("policy {} v{}: {e}", m.policy_id, m.version)))?;
    Ok(pb::CreditPolicy {
        policy_id: m.policy_id,
        version: m.version,
        effective_date: wire::date_to_pb(Some(m.effective_date)),
        origination_percent: m.origination_percent,
        delivery_percent: m.delivery_percent,
        overlays: overlays
            .into_iter()
            .map(|o| pb::OverlayRule {
                name: o.name,
                percent: o.percent,
            })
            .collect(),
        basis: pb::CreditBasis::from_str_name(&m.basis).unwrap_or_default() as i32,
        hold_days: m.hold_days,
        clawback_window_days: m.clawback_window_days,
        clawback_mode: pb::ClawbackMode::from_str_name(&m.clawback_mode).unwrap_or_default() as i32,
        audit: Some(Audit {
            create_time: Some(wire::timestamp(m.created_at)),
            created_by: m.created_by.clone(),
            update_time: Some(wire::timestamp(m.created_at)),
            updated_by: m.created_by,
        }),
    })
}

#[tonic::async_trait]
impl CompensationCreditService for CreditService {
    #[tracing::instrument(skip_all)]
    async fn upsert_credit_policy(
        &self,
        request: Request<pb::UpsertCreditPolicyRequest>,
    ) -> Reply<pb::UpsertCreditPolicyResponse> {
        let principal = principal_of(&request);
        let today = storage::now().date_naive();
        let input =
            PolicyInput::from_request(request.get_ref(), today).map_err(CreditError::from)?;
        let model = self.store.add_policy_version(&input, &principal).await?;
        tracing::info!(policy_id = %model.policy_id, version = model.version, "credit policy version added");
        Ok(Response::new(pb::UpsertCreditPolicyResponse {
            policy: Some(policy_to_pb(model)?),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_credit_policy(
        &self,
        request: Request<pb::GetCreditPolicyRequest>,
    ) -> Reply<pb::GetCreditPolicyResponse> {
        let req = request.get_ref();
        let id = policy_id("policy_id", &req.policy_id).map_err(CreditError::from)?;
        let found = match req.version {
            v if v < 0 => {
                return Err(CreditError::from(ApiError::invalid(
                    "version",
                    "must not be negative",
                ))
                .into());
            }
            0 => {
                let date = wire::optional_date("as_of_date", &req.as_of_date)
                    .map_err(CreditError::from)?
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

    async fn record_deal_credits(
        &self,
        _: Request<pb::RecordDealCreditsRequest>,
    ) -> Reply<pb::RecordDealCreditsResponse> {
        unimplemented("RecordDealCredits")
    }

    async fn replace_deal_splits(
        &self,
        _: Request<pb::ReplaceDealSplitsRequest>,
    ) -> Reply<pb::ReplaceDealSplitsResponse> {
        unimplemented("ReplaceDealSplits")
    }

    async fn get_deal_credits(
        &self,
        _: Request<pb::GetDealCreditsRequest>,
    ) -> Reply<pb::GetDealCreditsResponse> {
        unimplemented("GetDealCredits")
    }

    async fn approve_credits(
        &self,
        _: Request<pb::ApproveCreditsRequest>,
    ) -> Reply<pb::ApproveCreditsResponse> {
        unimplemented("ApproveCredits")
    }

    async fn apply_clawback(
        &self,
        _: Request<pb::ApplyClawbackRequest>,
    ) -> Reply<pb::ApplyClawbackResponse> {
        unimplemented("ApplyClawback")
    }

    async fn list_ledger_entries(
        &self,
        _: Request<pb::ListLedgerEntriesRequest>,
    ) -> Reply<pb::ListLedgerEntriesResponse> {
        unimplemented("ListLedgerEntries")
    }

    async fn open_dispute(
        &self,
        _: Request<pb::OpenDisputeRequest>,
    ) -> Reply<pb::OpenDisputeResponse> {
        unimplemented("OpenDispute")
    }

    async fn resolve_dispute(
        &self,
        _: Request<pb::ResolveDisputeRequest>,
    ) -> Reply<pb::ResolveDisputeResponse> {
        unimplemented("ResolveDispute")
    }

    async fn get_statement(
        &self,
        _: Request<pb::GetStatementRequest>,
    ) -> Reply<pb::GetStatementResponse> {
        unimplemented("GetStatement")
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
