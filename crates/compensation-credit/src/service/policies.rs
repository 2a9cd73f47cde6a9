//! UpsertCreditPolicy and GetCreditPolicy.

use contracts::pb::credit::v1 as pb;
use contracts::{ApiError, wire};

use super::{invalid, once};
use crate::convert::policy_to_pb;
use crate::error::CreditError;
use crate::model::{PolicyInput, policy_id};
use crate::store::Store;

/// Appends the next version of the policy (a missing effective date is today).
pub async fn upsert(
    store: &Store,
    principal: &str,
    req: pb::UpsertCreditPolicyRequest,
) -> Result<pb::UpsertCreditPolicyResponse, CreditError> {
    let today = storage::now().date_naive();
    let input = PolicyInput::from_request(&req, today).map_err(invalid)?;
    once(store, "UpsertCreditPolicy", principal, &req, async {
        let model = store.add_policy_version(&input, principal).await?;
        tracing::info!(policy_id = %model.policy_id, version = model.version, "credit policy version added");
        Ok(pb::UpsertCreditPolicyResponse {
            policy: Some(policy_to_pb(model)?),
        })
    })
    .await
}

/// A version by number, or the one in force on a date (today by default).
pub async fn get(
    store: &Store,
    req: &pb::GetCreditPolicyRequest,
) -> Result<pb::GetCreditPolicyResponse, CreditError> {
    let id = policy_id("policy_id", &req.policy_id).map_err(invalid)?;
    let found = match req.version {
        v if v < 0 => {
            return Err(invalid(ApiError::invalid(
                "version",
                "must not be negative",
            )));
        }
        0 => {
            let date = wire::optional_date("as_of_date", &req.as_of_date)
                .map_err(invalid)?
                .unwrap_or_else(|| storage::now().date_naive());
            store.policy_in_force(&id, date).await?
        }
        v => store.policy_version(&id, v).await?,
    };
    let model = found.ok_or(CreditError::PolicyNotFound(id))?;
    Ok(pb::GetCreditPolicyResponse {
        policy: Some(policy_to_pb(model)?),
    })
}
