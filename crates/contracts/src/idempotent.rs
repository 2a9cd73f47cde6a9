//! The mutations' requests, each carrying the caller's `request_id`
//! (AIP-155): what `storage::idempotency` needs to run a call at most once.

use crate::pb::{credit::v1 as credit, health::v1 as health, pipeline::v1 as pipeline};

/// A request message whose `request_id` makes a retry answer again instead
/// of acting twice.
pub trait Idempotent: prost::Message {
    /// The caller's id for this call; empty when the caller gave none.
    fn request_id(&self) -> &str;
}

macro_rules! idempotent {
    ($($message:ty),+ $(,)?) => {$(
        impl Idempotent for $message {
            fn request_id(&self) -> &str {
                &self.request_id
            }
        }
    )+};
}

idempotent!(
    health::UpsertAccountRequest,
    health::UpsertProductRequest,
    health::UpsertSubscriptionRequest,
    health::CancelSubscriptionRequest,
    health::ApplyUpsellRequest,
    health::RecordSignalsRequest,
    health::UpsertScorecardRequest,
    health::OverrideHealthRequest,
    health::ConvertTriggerRequest,
    health::CloseTriggerRequest,
    health::RetryDeliveryRequest,
    pipeline::CreateOpportunityRequest,
    pipeline::CreateOpportunityFromTriggerRequest,
    pipeline::UpdateOpportunityRequest,
    pipeline::AdvanceStageRequest,
    pipeline::CloseOpportunityRequest,
    pipeline::RequestHandoffRequest,
    pipeline::AcceptHandoffRequest,
    pipeline::RejectHandoffRequest,
    pipeline::UpsertWalletEstimateRequest,
    pipeline::RetryDeliveryRequest,
    credit::UpsertCreditPolicyRequest,
    credit::RecordDealCreditsRequest,
    credit::ReplaceDealSplitsRequest,
    credit::ApproveCreditsRequest,
    credit::ApplyClawbackRequest,
    credit::OpenDisputeRequest,
    credit::ResolveDisputeRequest,
    credit::UpsertPersonRequest,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_its_own_request_id() {
        let req = health::UpsertAccountRequest {
            request_id: "r-1".into(),
            ..Default::default()
        };
        assert_eq!(req.request_id(), "r-1");
        assert_eq!(credit::UpsertPersonRequest::default().request_id(), "");
    }
}
