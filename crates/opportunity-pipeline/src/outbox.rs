//! Closing a deal won reaches the other two services: the health service
//! gets the new subscription of a cross-sell, or the amendment of the
//! subscription an upsell grows (so whitespace and revenue follow; never a
//! subscription invented for an upsell), the credit
//! service records the deal's credits — originator the CSM, delivery the AE
//! who accepted the handoff, overlay the account team. Driven from the
//! `pipeline.opportunity.closed_won` event by `storage::outbox`.

use contracts::client::AuthChannel;
use contracts::pb::common::v1::Money;
use contracts::pb::credit::v1 as credit;
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use contracts::pb::health::v1 as health;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use domain::{Currency, Decimal};
use rust_decimal::RoundingStrategy;
use serde_json::Value;
use storage::events::StoredEvent;
use storage::outbox::{Courier, DeliveryStatus, Failure};

pub const HEALTH: &str = "health";
pub const CREDIT: &str = "credit";
const CLOSED_WON: &str = "pipeline.opportunity.closed_won";
const CLOSED_LOST: &str = "pipeline.opportunity.closed_lost";
const CREATED: &str = "pipeline.opportunity.created";

/// The pipeline's outbox: closed-won events, one delivery per target, over
/// the store's own event log (so a commit wakes the dispatcher at once).
pub fn outbox(
    writer: storage::WriteGate,
    log: storage::events::EventLog,
) -> storage::outbox::Outbox {
    storage::outbox::Outbox::new(log, "pipeline_deliveries", "pipeline_outbox_cursor", writer)
}

/// The wire form of an opportunity's deliveries.
pub fn deliveries_to_pb(
    rows: Vec<storage::outbox::Delivery>,
) -> Vec<contracts::pb::pipeline::v1::OutboxDelivery> {
    rows.into_iter().map(delivery_to_pb).collect()
}

/// One delivery on the wire.
pub fn delivery_to_pb(d: storage::outbox::Delivery) -> contracts::pb::pipeline::v1::OutboxDelivery {
    use contracts::pb::pipeline::v1 as pb;
    pb::OutboxDelivery {
        target: d.target,
        status: match d.status {
            DeliveryStatus::Pending => pb::DeliveryStatus::Pending,
            DeliveryStatus::Delivered => pb::DeliveryStatus::Delivered,
            DeliveryStatus::Parked => pb::DeliveryStatus::Parked,
        } as i32,
        attempts: d.attempts,
        last_error: d.last_error.unwrap_or_default(),
        event_id: d.event_id,
        opportunity_id: d.subject_id,
        next_attempt_time: (d.status == DeliveryStatus::Pending)
            .then(|| contracts::wire::timestamp(d.next_attempt_at)),
    }
}

/// The stored status a `ListDeliveries` filter names; `None` for all.
pub fn status_filter(
    status: contracts::pb::pipeline::v1::DeliveryStatus,
) -> Option<DeliveryStatus> {
    use contracts::pb::pipeline::v1::DeliveryStatus as Wire;
    match status {
        Wire::Unspecified => None,
        Wire::Pending => Some(DeliveryStatus::Pending),
        Wire::Delivered => Some(DeliveryStatus::Delivered),
        Wire::Parked => Some(DeliveryStatus::Parked),
    }
}

/// Delivers closed-won deals to health and credit.
pub struct PipelineCourier {
    health: Option<AccountHealthServiceClient<AuthChannel>>,
    credit: Option<CompensationCreditServiceClient<AuthChannel>>,
}

impl PipelineCourier {
    /// `None` for a service this deployment cannot reach: its deliveries
    /// wait (PENDING, with the reason) until an address is configured.
    pub fn new(health: Option<AuthChannel>, credit: Option<AuthChannel>) -> Self {
        Self {
            health: health.map(AccountHealthServiceClient::new),
            credit: credit.map(CompensationCreditServiceClient::new),
        }
    }
}

fn text<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn field(data: &Value, key: &str) -> Result<String, Failure> {
    text(data, key)
        .map(str::to_owned)
        .ok_or_else(|| Failure::Park(format!("closed_won event lacks {key}")))
}

/// Monthly recurring revenue of an annual amount, half-even to the minor unit.
pub fn monthly(annual_minor: i64) -> i64 {
    (Decimal::from(annual_minor) / Decimal::from(12))
        .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
        .try_into()
        .unwrap_or(i64::MAX)
}

/// The subscription a won deal creates; keyed by the opportunity, so a
/// repeated delivery finds the same subscription.
pub fn subscription_request(data: &Value) -> Result<health::UpsertSubscriptionRequest, Failure> {
    let currency = Currency::parse(&field(data, "currency_code")?)
        .map_err(|e| Failure::Park(e.to_string()))?;
    let annual: i64 = field(data, "amount_minor")?
        .parse()
        .map_err(|_| Failure::Park("closed_won amount_minor is not a number".into()))?;
    let mrr = domain::Money::from_minor(currency, monthly(annual));
    Ok(health::UpsertSubscriptionRequest {
        request_id: String::new(),
        subscription: Some(health::Subscription {
            account_id: field(data, "account_id")?,
            product_id: field(data, "product_id")?,
            mrr: Some(contracts::wire::money_to_pb(&mrr)),
            start_date: field(data, "close_date")?,
            quantity: 1,
            source_opportunity_id: field(data, "opportunity_id")?,
            ..Default::default()
        }),
        mrr_effective_date: String::new(),
        time_zone: String::new(),
    })
}

/// What a won upsell asks of health (SPEC §3): an amendment of the
/// account's subscription of the product in force on the close date — MRR
/// raised by the annual amount / 12 (half-even to the minor unit), the next
/// tier for UPSELL_TIER — recorded with the opportunity, so a repeated
/// delivery books it once and a cancellation claws its credits back.
pub fn upsell_request(data: &Value) -> Result<health::ApplyUpsellRequest, Failure> {
    let currency = Currency::parse(&field(data, "currency_code")?)
        .map_err(|e| Failure::Park(e.to_string()))?;
    let annual: i64 = field(data, "amount_minor")?
        .parse()
        .map_err(|_| Failure::Park("closed_won amount_minor is not a number".into()))?;
    let increase = domain::Money::from_minor(currency, monthly(annual));
    Ok(health::ApplyUpsellRequest {
        request_id: String::new(),
        opportunity_id: field(data, "opportunity_id")?,
        account_id: field(data, "account_id")?,
        product_id: field(data, "product_id")?,
        subscription_id: text(data, "subscription_id").unwrap_or_default().to_owned(),
        mrr_increase: Some(contracts::wire::money_to_pb(&increase)),
        effective_date: field(data, "close_date")?,
        next_tier: text(data, "motion") == Some(domain::Motion::UpsellTier.as_str()),
    })
}

/// Health's answer when the account has no subscription of the product in
/// force on the close date.
fn holds_nothing_to_grow(status: &tonic::Status) -> bool {
    use tonic_types::StatusExt;
    status.code() == tonic::Code::FailedPrecondition
        && status
            .get_error_details()
            .error_info()
            .is_some_and(|info| info.reason == "NO_SUBSCRIPTION_IN_FORCE")
}

/// Credit refusals no retry can change: the deal was credited otherwise or
/// clawed back, or the policy wants an owner split the event does not carry.
/// (A participant missing from the directory, or no policy in force, may be
/// put right, so those wait and retry.)
const FINAL_CREDIT_REFUSALS: &[&str] = &[
    "DEAL_ALREADY_CREDITED",
    "DEAL_CLAWED_BACK",
    "OWNER_SPLIT_REQUIRED",
];

/// How a refused `RecordDealCredits` is handled: parked with credit's
/// words when retrying cannot help, otherwise as any gRPC failure.
fn credit_failure(status: &tonic::Status) -> Failure {
    use tonic_types::StatusExt;
    let final_refusal = status.code() == tonic::Code::FailedPrecondition
        && status
            .get_error_details()
            .error_info()
            .is_some_and(|info| FINAL_CREDIT_REFUSALS.contains(&info.reason.as_str()));
    if final_refusal {
        Failure::Park(format!("{:?}: {}", status.code(), status.message()))
    } else {
        Failure::from_status(status)
    }
}

/// Is this closed-won deal an upsell (an amendment) rather than a new subscription?
fn is_upsell(data: &Value) -> bool {
    text(data, "motion")
        .and_then(|m| m.parse::<domain::Motion>().ok())
        .is_some_and(domain::Motion::is_upsell)
}

/// The credits of a won deal (SPEC §3 "Credit participants"): ORIGINATOR is
/// the opportunity's originator; DELIVERY is the owner who closed it — the AE
/// who accepted the handoff, or the owner of a deal that never had one. Only
/// when originator and closing owner are the same person (a CS-led deal) does
/// that person get both shares. The account team rides on the policy's
/// overlay rule.
pub fn credits_request(event: &StoredEvent) -> Result<credit::RecordDealCreditsRequest, Failure> {
    let data = &event.data;
    let handoff = data.get("handoff").filter(|h| !h.is_null());
    let owner = text(data, "owner");
    let originator = text(data, "originator")
        .or_else(|| handoff.and_then(|h| text(h, "requested_by")))
        .or(owner)
        .ok_or_else(|| Failure::Park("closed_won event names no originator or owner".into()))?;
    let account_id = field(data, "account_id")?;
    let mut participants = Vec::new();
    let delivery = handoff
        .and_then(|h| text(h, "accepted_by"))
        .or(owner)
        .filter(|closer| *closer != originator);
    participants.push(credit::Participant {
        participant_id: originator.to_owned(),
        role: credit::CreditRole::Originator as i32,
        percent: "100".into(),
        team: "customer-success".into(),
        owner: delivery.is_none(),
        overlay_rule: String::new(),
    });
    if let Some(closer) = delivery {
        let team = handoff
            .and_then(|h| text(h, "accepted_team"))
            .or_else(|| text(data, "owner_team"))
            .unwrap_or("sales");
        participants.push(credit::Participant {
            participant_id: closer.to_owned(),
            role: credit::CreditRole::Delivery as i32,
            percent: "100".into(),
            team: team.to_owned(),
            owner: true,
            overlay_rule: String::new(),
        });
    }
    participants.push(credit::Participant {
        participant_id: format!("account-team:{account_id}"),
        role: credit::CreditRole::Overlay as i32,
        percent: String::new(),
        team: "account-team".into(),
        owner: false,
        overlay_rule: String::new(),
    });
    Ok(credit::RecordDealCreditsRequest {
        request_id: format!("outbox:{}", event.event_id),
        deal_id: field(data, "opportunity_id")?,
        account_id,
        product_id: field(data, "product_id")?,
        amount: Some(Money {
            currency_code: field(data, "currency_code")?,
            amount: field(data, "amount")?,
        }),
        margin_percent: String::new(),
        close_date: field(data, "close_date")?,
        policy_id: String::new(),
        participants,
        cs_led_without_handoff: delivery.is_none(),
        subscription_id: String::new(),
        // Names the opportunity keeps (absent in events older than them).
        account_name: text(data, "account_name").unwrap_or_default().to_owned(),
        product_name: text(data, "product_name").unwrap_or_default().to_owned(),
    })
}

/// The trigger an opportunity came from follows it (SPEC §3 "References are
/// real"): converted when the opportunity is created, closed when it closes.
/// Both are idempotent in health, so a repeated delivery changes nothing.
async fn deliver_trigger_step(
    client: &mut AccountHealthServiceClient<AuthChannel>,
    event: &StoredEvent,
) -> Result<(), Failure> {
    let data = &event.data;
    let Some(trigger_id) = text(data, "trigger_id") else {
        return Ok(());
    };
    let opportunity_id = field(data, "opportunity_id")?;
    let sent = if event.event_type == CREATED {
        client
            .convert_trigger(health::ConvertTriggerRequest {
                request_id: String::new(),
                trigger_id: trigger_id.to_owned(),
                opportunity_id,
            })
            .await
            .map(|_| ())
    } else {
        client
            .close_trigger(health::CloseTriggerRequest {
                request_id: String::new(),
                trigger_id: trigger_id.to_owned(),
                opportunity_id,
            })
            .await
            .map(|_| ())
    };
    // A trigger health does not know, or one another opportunity converted, will
    // not change by retrying: parked with health's words.
    sent.map_err(|s| match s.code() {
        tonic::Code::NotFound | tonic::Code::FailedPrecondition => {
            Failure::Park(format!("{:?}: {}", s.code(), s.message()))
        }
        _ => Failure::from_status(&s),
    })
}

#[tonic::async_trait]
impl Courier for PipelineCourier {
    fn targets(&self, event: &StoredEvent) -> Vec<&'static str> {
        match event.event_type.as_str() {
            CLOSED_WON => vec![HEALTH, CREDIT],
            // The trigger it came from is converted, then closed with it.
            CREATED | CLOSED_LOST if text(&event.data, "trigger_id").is_some() => vec![HEALTH],
            _ => Vec::new(),
        }
    }

    async fn deliver(&self, target: &str, event: &StoredEvent) -> Result<(), Failure> {
        match target {
            HEALTH => {
                let mut client = self.health.clone().ok_or_else(|| {
                    Failure::Retry("no health service address is configured".into())
                })?;
                if event.event_type != CLOSED_WON {
                    return deliver_trigger_step(&mut client, event).await;
                }
                if is_upsell(&event.data) {
                    return match client.apply_upsell(upsell_request(&event.data)?).await {
                        Ok(_) => deliver_trigger_step(&mut client, event).await,
                        // No subscription of the product in force on the close
                        // date (cancelled since): nothing to grow, and no
                        // subscription is invented. Parked, with health's words.
                        Err(status) if holds_nothing_to_grow(&status) => {
                            Err(Failure::Park(status.message().to_owned()))
                        }
                        Err(status) => Err(Failure::from_status(&status)),
                    };
                }
                client
                    .upsert_subscription(subscription_request(&event.data)?)
                    .await
                    .map_err(|s| Failure::from_status(&s))?;
                deliver_trigger_step(&mut client, event).await
            }
            CREDIT => {
                let request = credits_request(event)?;
                let mut client = self.credit.clone().ok_or_else(|| {
                    Failure::Retry("no credit service address is configured".into())
                })?;
                client
                    .record_deal_credits(request)
                    .await
                    .map(|_| ())
                    .map_err(|s| credit_failure(&s))
            }
            other => Err(Failure::Park(format!("unknown target {other}"))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn credit_refusals_that_cannot_change_park_and_the_rest_wait() {
        use tonic_types::{ErrorDetails, StatusExt};
        let refused = |reason: &str| {
            tonic::Status::with_error_details(
                tonic::Code::FailedPrecondition,
                "refused",
                ErrorDetails::with_error_info(
                    reason,
                    "expansion.credit.v1",
                    std::collections::HashMap::<String, String>::new(),
                ),
            )
        };
        for reason in FINAL_CREDIT_REFUSALS {
            assert!(
                matches!(credit_failure(&refused(reason)), Failure::Park(_)),
                "{reason}"
            );
        }
        for reason in ["UNKNOWN_PARTICIPANT", "NO_POLICY_IN_FORCE"] {
            assert!(
                matches!(credit_failure(&refused(reason)), Failure::Retry(_)),
                "{reason}"
            );
        }
        let down = tonic::Status::unavailable("credit is down");
        assert!(matches!(credit_failure(&down), Failure::Retry(_)));
    }

    fn event(handoff: Value) -> StoredEvent {
        StoredEvent {
            seq: 7,
            event_id: "e1".into(),
            event_type: CLOSED_WON.into(),
            subject_id: "o1".into(),
            data: serde_json::json!({
                "opportunity_id": "o1", "account_id": "a1", "product_id": "p1",
                "amount": "120000.00", "amount_minor": "12000000", "currency_code": "USD",
                "close_date": "2026-11-20", "originator": "carla.csm", "owner": "alex.ae",
                "owner_team": "enterprise-sales", "handoff": handoff,
            }),
            occurred_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn handoff_deals_split_originator_and_delivery() {
        let r = credits_request(&event(serde_json::json!({
            "requested_by": "carla.csm", "accepted_by": "alex.ae", "accepted_team": "enterprise-sales"
        })))
        .unwrap();
        let roles: Vec<(String, i32, bool)> = r
            .participants
            .iter()
            .map(|p| (p.participant_id.clone(), p.role, p.owner))
            .collect();
        assert_eq!(
            roles,
            vec![
                (
                    "carla.csm".into(),
                    credit::CreditRole::Originator as i32,
                    false
                ),
                ("alex.ae".into(), credit::CreditRole::Delivery as i32, true),
                (
                    "account-team:a1".into(),
                    credit::CreditRole::Overlay as i32,
                    false
                ),
            ]
        );
        assert!(!r.cs_led_without_handoff);
        assert_eq!(r.request_id, "outbox:e1");
    }

    #[test]
    fn cs_led_deals_credit_the_csm_with_both_shares() {
        let mut cs_led = event(Value::Null);
        cs_led.data["owner"] = "carla.csm".into();
        let r = credits_request(&cs_led).unwrap();
        assert!(r.cs_led_without_handoff);
        assert_eq!(r.participants[0].participant_id, "carla.csm");
        assert!(r.participants[0].owner);
        assert_eq!(r.participants.len(), 2);
    }

    #[test]
    fn a_deal_closed_by_its_ae_without_a_handoff_credits_the_ae_with_delivery() {
        let r = credits_request(&event(Value::Null)).unwrap();
        assert!(!r.cs_led_without_handoff);
        let roles: Vec<(&str, i32, bool)> = r
            .participants
            .iter()
            .map(|p| (p.participant_id.as_str(), p.role, p.owner))
            .collect();
        assert_eq!(
            roles[..2],
            [
                ("carla.csm", credit::CreditRole::Originator as i32, false),
                ("alex.ae", credit::CreditRole::Delivery as i32, true),
            ]
        );
        assert_eq!(r.participants[1].team, "enterprise-sales");
    }

    #[test]
    fn an_upsell_amends_the_subscription_by_a_twelfth_and_a_tier_upsell_moves_up() {
        let mut won = event(Value::Null);
        won.data["motion"] = "UPSELL_TIER".into();
        assert!(is_upsell(&won.data));
        let r = upsell_request(&won.data).unwrap();
        assert_eq!(r.mrr_increase.unwrap().amount, "10000.00");
        assert_eq!(
            (r.opportunity_id.as_str(), r.effective_date.as_str()),
            ("o1", "2026-11-20")
        );
        assert!(r.next_tier);
        won.data["motion"] = "UPSELL_CAPACITY".into();
        assert!(!upsell_request(&won.data).unwrap().next_tier);
        won.data["motion"] = "CROSS_SELL_ADJACENT".into();
        assert!(!is_upsell(&won.data));
    }

    #[test]
    fn the_subscription_bills_a_twelfth_of_the_annual_amount() {
        let r = subscription_request(&event(Value::Null).data).unwrap();
        let s = r.subscription.unwrap();
        assert_eq!(s.mrr.unwrap().amount, "10000.00");
        assert_eq!(s.source_opportunity_id, "o1");
        assert_eq!(monthly(100), 8);
        assert_eq!(monthly(102), 8); // 8.5 → 8, half-even
        assert_eq!(monthly(114), 10); // 9.5 → 10
    }
}
