//! Validated forms of the ledger requests (approve, clawback, list, disputes,
//! statements). Each parser names the field it refuses; nothing here touches storage.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use contracts::pb::credit::v1 as pb;
use contracts::{ApiError, page, wire};
use domain::{DisputeId, LedgerEntryId, Money, SubscriptionId};

use super::deal::{MAX_AMOUNT_MINOR, deal_id, optional_role, participant_id};
use super::ledger::EntryKind;

/// Most entry ids one ApproveCredits call may list.
pub const MAX_APPROVE_IDS: usize = 1000;

fn optional<T>(
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    if value.is_empty() {
        Ok(None)
    } else {
        parse(value).map(Some)
    }
}

pub fn entry_id(field: &str, value: &str) -> Result<String, ApiError> {
    LedgerEntryId::parse(value)
        .map(|id| id.to_string())
        .map_err(|e| ApiError::invalid(field, e))
}

/// Free text that explains a write (a reason or a note).
pub fn note(field: &str, value: &str) -> Result<Option<String>, ApiError> {
    wire::optional_text(field, value, wire::MAX_NOTE_LEN)
}

/// What ApproveCredits releases: listed entries, or every held entry of one deal.
#[derive(Debug, Clone, PartialEq)]
pub struct ApproveInput {
    pub entry_ids: Vec<String>,
    pub deal_id: Option<String>,
    pub note: Option<String>,
}

impl ApproveInput {
    pub fn from_request(req: &pb::ApproveCreditsRequest) -> Result<Self, ApiError> {
        if req.entry_ids.len() > MAX_APPROVE_IDS {
            return Err(ApiError::invalid(
                "entry_ids",
                format!("at most {MAX_APPROVE_IDS} ids per call"),
            ));
        }
        let entry_ids = req
            .entry_ids
            .iter()
            .enumerate()
            .map(|(i, id)| entry_id(&format!("entry_ids[{i}]"), id))
            .collect::<Result<Vec<_>, _>>()?;
        let deal = optional(&req.deal_id, |v| {
            deal_id("deal_id", v).map(|d| d.to_string())
        })?;
        match (entry_ids.is_empty(), &deal) {
            (true, None) => {
                return Err(ApiError::invalid(
                    "deal_id",
                    "give entry_ids or a deal_id to approve",
                ));
            }
            (false, Some(_)) => {
                return Err(ApiError::invalid(
                    "deal_id",
                    "give entry_ids or a deal_id, not both",
                ));
            }
            _ => {}
        }
        Ok(Self {
            entry_ids,
            deal_id: deal,
            note: note("note", &req.note)?,
        })
    }
}

/// A cancellation to claw back: one deal, or every deal of a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct ClawbackInput {
    pub deal_id: Option<String>,
    pub subscription_id: Option<String>,
    pub cancel_date: NaiveDate,
    pub reason: String,
}

impl ClawbackInput {
    pub fn from_request(req: &pb::ApplyClawbackRequest) -> Result<Self, ApiError> {
        let deal = optional(&req.deal_id, |v| {
            deal_id("deal_id", v).map(|d| d.to_string())
        })?;
        let subscription = optional(&req.subscription_id, |v| {
            SubscriptionId::parse(v)
                .map(|s| s.to_string())
                .map_err(|e| ApiError::invalid("subscription_id", e))
        })?;
        if deal.is_none() && subscription.is_none() {
            return Err(ApiError::invalid(
                "deal_id",
                "a deal_id or a subscription_id is required",
            ));
        }
        Ok(Self {
            deal_id: deal,
            subscription_id: subscription,
            cancel_date: wire::date("cancel_date", &req.cancel_date)?,
            reason: note("reason", &req.reason)?
                .unwrap_or_else(|| "subscription cancelled".to_owned()),
        })
    }
}

/// A validated ListLedgerEntries request: filters, page size and the key to resume after.
#[derive(Debug, Clone, PartialEq)]
pub struct ListInput {
    pub participant_id: Option<String>,
    pub deal_id: Option<String>,
    pub kind: Option<EntryKind>,
    pub role: Option<domain::CreditRole>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub page_size: u64,
    pub after: Option<String>,
    /// Binds page tokens to these filters.
    pub fingerprint: u64,
}

impl ListInput {
    pub fn from_request(req: &pb::ListLedgerEntriesRequest) -> Result<Self, ApiError> {
        let page_size = page::page_size("page_size", req.page_size)?;
        let participant = optional(&req.participant_id, |v| participant_id("participant_id", v))?;
        let deal = optional(&req.deal_id, |v| {
            deal_id("deal_id", v).map(|d| d.to_string())
        })?;
        let kind = EntryKind::from_pb("kind", req.kind)?;
        let role = optional_role("role", req.role)?;
        let start = wire::optional_instant("start_time", req.start_time.as_ref())?;
        let end = wire::optional_instant("end_time", req.end_time.as_ref())?;
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            return Err(ApiError::invalid(
                "end_time",
                "must not be before start_time",
            ));
        }
        let fingerprint = page::fingerprint(&[
            "ledger",
            participant.as_deref().unwrap_or_default(),
            deal.as_deref().unwrap_or_default(),
            kind.map(EntryKind::as_str).unwrap_or_default(),
            role.map(|r| r.as_str()).unwrap_or_default(),
            &start.map(|t| t.to_rfc3339()).unwrap_or_default(),
            &end.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ]);
        let after = page::decode_token("page_token", &req.page_token, fingerprint)?;
        Ok(Self {
            participant_id: participant,
            deal_id: deal,
            kind,
            role,
            start,
            end,
            page_size,
            after,
            fingerprint,
        })
    }
}

/// An OpenDispute request.
pub fn open_dispute(req: &pb::OpenDisputeRequest) -> Result<(LedgerEntryId, String), ApiError> {
    Ok((
        LedgerEntryId::parse(&req.entry_id).map_err(|e| ApiError::invalid("entry_id", e))?,
        wire::text("reason", &req.reason, wire::MAX_NOTE_LEN)?,
    ))
}

/// How a dispute is to be resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolveInput {
    pub dispute_id: DisputeId,
    /// `Some` to adjust by this signed amount; `None` to reject.
    pub adjustment: Option<Money>,
    pub note: Option<String>,
}

impl ResolveInput {
    pub fn from_request(req: &pb::ResolveDisputeRequest) -> Result<Self, ApiError> {
        let dispute_id =
            DisputeId::parse(&req.dispute_id).map_err(|e| ApiError::invalid("dispute_id", e))?;
        let adjustment =
            match wire::known_enum::<pb::DisputeResolution>("resolution", req.resolution)? {
                pb::DisputeResolution::Unspecified => {
                    return Err(ApiError::invalid(
                        "resolution",
                        "is required: ADJUST or REJECT",
                    ));
                }
                pb::DisputeResolution::Adjust => {
                    let m = wire::money("adjustment", req.adjustment.as_ref())?;
                    if m.is_zero() {
                        return Err(ApiError::invalid(
                            "adjustment.amount",
                            "must not be zero; reject the dispute instead",
                        ));
                    }
                    if m.minor().unsigned_abs() > MAX_AMOUNT_MINOR.unsigned_abs() {
                        return Err(ApiError::invalid(
                            "adjustment.amount",
                            format!("{m} is beyond the largest adjustment allowed"),
                        ));
                    }
                    Some(m)
                }
                pb::DisputeResolution::Reject => {
                    if wire::optional_money("adjustment", req.adjustment.as_ref())?.is_some() {
                        return Err(ApiError::invalid(
                            "adjustment",
                            "only an ADJUST resolution takes an adjustment",
                        ));
                    }
                    None
                }
            };
        Ok(Self {
            dispute_id,
            adjustment,
            note: note("note", &req.note)?,
        })
    }
}

/// A validated GetStatement request.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementInput {
    /// At most one of `participant_id` and `team` is set; neither is everyone's statement.
    pub participant_id: Option<String>,
    pub team: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub page_size: u64,
    pub after: Option<String>,
    pub fingerprint: u64,
}

impl StatementInput {
    pub fn from_request(req: &pb::GetStatementRequest) -> Result<Self, ApiError> {
        let participant = optional(&req.participant_id, |v| participant_id("participant_id", v))?;
        let team = optional(&req.team, |v| participant_id("team", v))?;
        if participant.is_some() && team.is_some() {
            return Err(ApiError::invalid(
                "team",
                "give a participant_id or a team, not both",
            ));
        }
        let start_date = wire::date("start_date", &req.start_date)?;
        let end_date = wire::date("end_date", &req.end_date)?;
        if end_date <= start_date {
            return Err(ApiError::invalid("end_date", "must be after start_date"));
        }
        let page_size = page::page_size("page_size", req.page_size)?;
        let fingerprint = page::fingerprint(&[
            "statement",
            participant.as_deref().unwrap_or_default(),
            team.as_deref().unwrap_or_default(),
            &start_date.to_string(),
            &end_date.to_string(),
        ]);
        let after = page::decode_token("page_token", &req.page_token, fingerprint)?;
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
        Ok(Self {
            participant_id: participant,
            team,
            start: midnight(start_date),
            end: midnight(end_date),
            page_size,
            after,
            fingerprint,
        })
    }
}

/// ListDisputes' filters and page.
#[derive(Debug, Clone, PartialEq)]
pub struct ListDisputesInput {
    pub status: Option<pb::DisputeStatus>,
    pub participant_id: Option<String>,
    pub deal_id: Option<String>,
    pub page_size: u64,
    pub after: Option<String>,
    pub fingerprint: u64,
}

impl ListDisputesInput {
    pub fn from_request(req: &pb::ListDisputesRequest) -> Result<Self, ApiError> {
        let page_size = page::page_size("page_size", req.page_size)?;
        let status = match wire::known_enum::<pb::DisputeStatus>("status", req.status)? {
            pb::DisputeStatus::Unspecified => None,
            status => Some(status),
        };
        let participant = optional(&req.participant_id, |v| participant_id("participant_id", v))?;
        let deal = optional(&req.deal_id, |v| {
            deal_id("deal_id", v).map(|d| d.to_string())
        })?;
        let fingerprint = page::fingerprint(&[
            "disputes",
            status.map(|s| s.as_str_name()).unwrap_or_default(),
            participant.as_deref().unwrap_or_default(),
            deal.as_deref().unwrap_or_default(),
        ]);
        let after = page::decode_token("page_token", &req.page_token, fingerprint)?;
        Ok(Self {
            status,
            participant_id: participant,
            deal_id: deal,
            page_size,
            after,
            fingerprint,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn field_of(err: ApiError) -> String {
        err.field()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not a field violation: {err:?}"))
    }

    #[test]
    fn dispute_lists_check_their_filters_and_bind_tokens() {
        let req = pb::ListDisputesRequest {
            status: pb::DisputeStatus::Open as i32,
            participant_id: "ana.ae".into(),
            ..Default::default()
        };
        let first = ListDisputesInput::from_request(&req).unwrap();
        assert_eq!(first.status, Some(pb::DisputeStatus::Open));
        let token = page::encode_token("some-id", first.fingerprint);
        let other = pb::ListDisputesRequest {
            page_token: token,
            participant_id: "bea.ae".into(),
            ..req.clone()
        };
        assert_eq!(
            field_of(ListDisputesInput::from_request(&other).unwrap_err()),
            "page_token"
        );
        let bad = pb::ListDisputesRequest {
            deal_id: "not-a-deal".into(),
            ..Default::default()
        };
        assert_eq!(
            field_of(ListDisputesInput::from_request(&bad).unwrap_err()),
            "deal_id"
        );
        let bad = pb::ListDisputesRequest {
            status: 42,
            ..Default::default()
        };
        assert_eq!(
            field_of(ListDisputesInput::from_request(&bad).unwrap_err()),
            "status"
        );
    }

    #[test]
    fn approve_needs_ids_or_a_deal() {
        let err = ApproveInput::from_request(&pb::ApproveCreditsRequest::default()).unwrap_err();
        assert_eq!(field_of(err), "deal_id");
        let err = ApproveInput::from_request(&pb::ApproveCreditsRequest {
            entry_ids: vec![LedgerEntryId::new().to_string(), "x".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(field_of(err), "entry_ids[1]");
    }

    #[test]
    fn list_tokens_are_bound_to_filters() {
        let req = pb::ListLedgerEntriesRequest {
            participant_id: "carla".into(),
            ..Default::default()
        };
        let first = ListInput::from_request(&req).unwrap();
        assert_eq!(first.page_size, page::DEFAULT_PAGE_SIZE);
        let token = page::encode_token("some-id", first.fingerprint);
        let next = ListInput::from_request(&pb::ListLedgerEntriesRequest {
            page_token: token.clone(),
            ..req.clone()
        })
        .unwrap();
        assert_eq!(next.after.as_deref(), Some("some-id"));
        let other = pb::ListLedgerEntriesRequest {
            participant_id: "dan".into(),
            page_token: token,
            ..Default::default()
        };
        assert_eq!(
            field_of(ListInput::from_request(&other).unwrap_err()),
            "page_token"
        );
        let negative = pb::ListLedgerEntriesRequest {
            page_size: -1,
            ..Default::default()
        };
        assert_eq!(
            field_of(ListInput::from_request(&negative).unwrap_err()),
            "page_size"
        );
        let bad_kind = pb::ListLedgerEntriesRequest {
            kind: 7,
            ..Default::default()
        };
        assert_eq!(
            field_of(ListInput::from_request(&bad_kind).unwrap_err()),
            "kind"
        );
    }

    #[test]
    fn resolutions_are_checked() {
        let base = pb::ResolveDisputeRequest {
            dispute_id: DisputeId::new().to_string(),
            resolution: pb::DisputeResolution::Adjust as i32,
            adjustment: Some(contracts::pb::common::v1::Money {
                currency_code: "USD".into(),
                amount: "-10.00".into(),
            }),
            ..Default::default()
        };
        assert_eq!(
            ResolveInput::from_request(&base)
                .unwrap()
                .adjustment
                .unwrap()
                .minor(),
            -1000
        );
        let mut zero = base.clone();
        zero.adjustment.as_mut().unwrap().amount = "0".into();
        assert_eq!(
            field_of(ResolveInput::from_request(&zero).unwrap_err()),
            "adjustment.amount"
        );
        let mut none = base.clone();
        none.resolution = 0;
        assert_eq!(
            field_of(ResolveInput::from_request(&none).unwrap_err()),
            "resolution"
        );
        let mut reject = base;
        reject.resolution = pb::DisputeResolution::Reject as i32;
        assert_eq!(
            field_of(ResolveInput::from_request(&reject).unwrap_err()),
            "adjustment"
        );
    }

    #[test]
    fn statements_take_at_most_one_subject_and_a_period() {
        let ok = pb::GetStatementRequest {
            participant_id: "carla".into(),
            start_date: "2026-01-01".into(),
            end_date: "2026-02-01".into(),
            ..Default::default()
        };
        assert!(StatementInput::from_request(&ok).is_ok());
        let mut both = ok.clone();
        both.team = "cs".into();
        assert_eq!(
            field_of(StatementInput::from_request(&both).unwrap_err()),
            "team"
        );
        let mut backwards = ok;
        backwards.end_date = "2025-12-31".into();
        assert_eq!(
            field_of(StatementInput::from_request(&backwards).unwrap_err()),
            "end_date"
        );
    }
}
