//! Stored rows → wire messages. Rows were validated on the way in, so an
//! unreadable value means a corrupt row (INTERNAL, logged), never bad input.

use chrono::{DateTime, NaiveDate, Utc};
use contracts::pb::common::v1 as common;
use contracts::pb::common::v1::Audit;
use contracts::pb::pipeline::v1 as pb;
use contracts::wire;
use domain::{Currency, Money, Motion, Percent};

use crate::entity::{handoff, history, opportunity, wallet_estimate};
use crate::error::PipelineError;
use crate::model::config::PipelineConfig;
use crate::model::handoff::{HandoffPackage, HandoffStatus, is_overdue};
use crate::model::priority::{expected_value, priority_score};
use crate::model::qualification::Rating;
use crate::model::{
    HealthSnapshot, Qualification, Stakeholder, days_in_stage, is_stalled, rating_from_name,
    rating_to_pb,
};

fn corrupt(what: &str, id: &str) -> PipelineError {
    PipelineError::Corrupt(format!("{id}: unreadable {what}"))
}

fn enum_value(name: &str, parse: impl Fn(&str) -> Option<i32>) -> i32 {
    parse(name).unwrap_or_default()
}

pub use crate::model::Parsed;

pub fn parse_row(m: &opportunity::Model) -> Result<Parsed, PipelineError> {
    let currency = Currency::parse(&m.currency).map_err(|_| corrupt("currency", &m.id))?;
    Ok(Parsed {
        stage: m.stage.into(),
        motion: m.motion.into(),
        amount: Money::from_minor(currency, m.amount_minor),
        probability: Percent::parse(&m.probability).map_err(|_| corrupt("probability", &m.id))?,
        stakeholders: serde_json::from_str(&m.stakeholders)
            .map_err(|_| corrupt("stakeholders", &m.id))?,
        qualification: serde_json::from_str(&m.qualification)
            .map_err(|_| corrupt("qualification", &m.id))?,
        stage_entered_at: m.stage_entered_at.unwrap_or(m.updated_at),
    })
}

pub fn stakeholder_to_pb(s: Stakeholder) -> pb::Stakeholder {
    pb::Stakeholder {
        name: s.name,
        title: s.title,
        role: s.role,
        budget_holder: s.budget_holder,
        decision_maker: s.decision_maker,
        email: s.email,
    }
}

pub fn snapshot_to_pb(s: &HealthSnapshot) -> pb::HealthSnapshot {
    pb::HealthSnapshot {
        account_band: wire::band_to_pb(s.account_band.as_deref().and_then(|name| name.parse().ok()))
            as i32,
        account_score: s.account_score.clone().unwrap_or_default(),
        source_product_band: wire::band_to_pb(
            s.source_product_band
                .as_deref()
                .and_then(|name| name.parse().ok()),
        ) as i32,
        capture_time: DateTime::<Utc>::from_timestamp_micros(s.captured_unix_micros)
            .map(wire::timestamp),
        source_product_id: s.source_product_id.clone().unwrap_or_default(),
        product_bands: s
            .products
            .iter()
            .map(|(id, band, score)| pb::ProductBand {
                product_id: id.clone(),
                band: wire::band_to_pb(band.as_deref().and_then(|name| name.parse().ok())) as i32,
                score: score.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

pub fn opportunity_to_pb(
    m: opportunity::Model,
    config: &PipelineConfig,
    now: DateTime<Utc>,
) -> Result<pb::Opportunity, PipelineError> {
    let p = parse_row(&m)?;
    let strategic = m.strategic_value.as_deref().and_then(Rating::parse);
    let snapshot: Option<HealthSnapshot> = match &m.health_snapshot {
        Some(text) => Some(serde_json::from_str(text).map_err(|_| corrupt("snapshot", &m.id))?),
        None => None,
    };
    let today: NaiveDate = now.date_naive();
    Ok(pb::Opportunity {
        etag: m.version.to_string(),
        opportunity_id: m.id,
        account_id: m.account_id,
        product_id: m.product_id,
        source_product_id: m.source_product_id.unwrap_or_default(),
        motion: wire::motion_to_pb(p.motion) as i32,
        amount: Some(wire::money_to_pb(&p.amount)),
        stage: wire::stage_to_pb(p.stage) as i32,
        probability: m.probability,
        probability_overridden: m.probability_overridden,
        forecast_category: enum_value(&m.forecast_category, |n| {
            pb::ForecastCategory::from_str_name(n).map(|c| c as i32)
        }),
        close_date: wire::date_to_pb(m.close_date),
        source: Some(pb::Source {
            kind: enum_value(&m.source_kind, |n| {
                pb::SourceKind::from_str_name(n).map(|k| k as i32)
            }),
            trigger_id: m.source_trigger_id.unwrap_or_default(),
        }),
        owner: m.owner.unwrap_or_default(),
        owner_team: m.owner_team.unwrap_or_default(),
        originator: m.originator.unwrap_or_default(),
        stakeholders: p.stakeholders.into_iter().map(stakeholder_to_pb).collect(),
        discovery_notes: m.discovery_notes.unwrap_or_default(),
        qualification: Some(qualification_to_pb(p.qualification)),
        health_snapshot: snapshot.as_ref().map(snapshot_to_pb),
        lost_reason: m.lost_reason.unwrap_or_default(),
        name: m.name,
        deliveries: Vec::new(),
        audit: Some(audit(
            m.created_at,
            m.created_by,
            m.updated_at,
            m.updated_by,
        )),
        strategic_value: rating_to_pb(strategic) as i32,
        expected_value: Some(wire::money_to_pb(&expected_value(p.amount, p.probability))),
        priority_score: Some(wire::money_to_pb(&priority_score(
            p.amount,
            p.probability,
            strategic,
            m.close_date,
            today,
        ))),
        stage_enter_time: Some(wire::timestamp(p.stage_entered_at)),
        days_in_stage: i32::try_from(days_in_stage(p.stage_entered_at, now)).unwrap_or(i32::MAX),
        stalled: is_stalled(p.stage, p.stage_entered_at, now, config),
        subscription_id: m.subscription_id.unwrap_or_default(),
        account_name: m.account_name.unwrap_or_default(),
        product_name: m.product_name.unwrap_or_default(),
    })
}

fn budget_status_to_pb(name: &str) -> i32 {
    enum_value(name, |n| {
        pb::BudgetStatus::from_str_name(n).map(|b| b as i32)
    })
}

pub fn qualification_to_pb(q: Qualification) -> pb::Qualification {
    let rating = |name: &str| rating_to_pb(rating_from_name(name)) as i32;
    pb::Qualification {
        need_confirmed: q.need_confirmed,
        budget_status: budget_status_to_pb(&q.budget_status),
        decision_process_known: q.decision_process_known,
        relationship_strength: q.relationship_strength,
        fit: rating(&q.fit),
        applicability: rating(&q.applicability),
        capability: rating(&q.capability),
        competitive_position: rating(&q.competitive_position),
    }
}

fn audit(
    created_at: DateTime<Utc>,
    created_by: String,
    updated_at: DateTime<Utc>,
    updated_by: String,
) -> Audit {
    Audit {
        create_time: Some(wire::timestamp(created_at)),
        created_by,
        update_time: Some(wire::timestamp(updated_at)),
        updated_by,
    }
}

pub fn history_to_pb(h: history::Model) -> pb::HistoryEntry {
    pb::HistoryEntry {
        field: h.field,
        previous_value: h.previous_value.unwrap_or_default(),
        new_value: h.new_value.unwrap_or_default(),
        principal: h.principal,
        change_time: Some(wire::timestamp(h.changed_at)),
        reason: h.reason.unwrap_or_default(),
    }
}

pub use crate::model::handoff::{HandoffSnapshot, UsageLine, UsageReading, WhitespaceLine};

pub fn whitespace_line_to_pb(w: &WhitespaceLine) -> pb::WhitespaceProduct {
    pb::WhitespaceProduct {
        product_id: w.product_id.clone(),
        name: w.name.clone(),
        motion: w
            .motion
            .as_deref()
            .and_then(|m| m.parse::<Motion>().ok())
            .map(|m| wire::motion_to_pb(m) as i32)
            .unwrap_or_default(),
        estimated_annual_wallet: w.wallet.as_ref().map(money_pair_to_pb),
        family: w.family.clone(),
    }
}

pub fn handoff_to_pb(h: handoff::Model, now: DateTime<Utc>) -> Result<pb::Handoff, PipelineError> {
    let package: HandoffPackage =
        serde_json::from_str(&h.package).map_err(|_| corrupt("package", &h.id))?;
    let snapshot: HandoffSnapshot =
        serde_json::from_str(&h.snapshot).map_err(|_| corrupt("snapshot", &h.id))?;
    Ok(pb::Handoff {
        overdue: is_overdue(h.status, h.due_at, now),
        handoff_id: h.id,
        opportunity_id: h.opportunity_id,
        status: handoff_status_to_pb(h.status) as i32,
        requested_by: h.requested_by,
        accepted_by: h.accepted_owner.unwrap_or_default(),
        accepted_team: h.accepted_team.unwrap_or_default(),
        reject_reason: h.reason.unwrap_or_default(),
        package: Some(package_to_pb(package)),
        health_snapshot: snapshot.health.as_ref().map(snapshot_to_pb),
        request_time: Some(wire::timestamp(h.requested_at)),
        resolve_time: h.resolved_at.map(wire::timestamp),
        due_time: Some(wire::timestamp(h.due_at)),
        resolved_by: h.resolved_by.unwrap_or_default(),
        usage: snapshot.usage.iter().map(usage_line_to_pb).collect(),
        whitespace: snapshot
            .whitespace
            .iter()
            .map(whitespace_line_to_pb)
            .collect(),
        snapshot_gaps: snapshot.gaps,
        // Filled from the opportunity by the service.
        account_name: String::new(),
        product_name: String::new(),
    })
}

pub fn handoff_status_to_pb(status: HandoffStatus) -> pb::HandoffStatus {
    match status {
        HandoffStatus::Requested => pb::HandoffStatus::Requested,
        HandoffStatus::Accepted => pb::HandoffStatus::Accepted,
        HandoffStatus::Rejected => pb::HandoffStatus::Rejected,
        HandoffStatus::Withdrawn => pb::HandoffStatus::Withdrawn,
    }
}

pub fn package_to_pb(package: HandoffPackage) -> pb::HandoffPackage {
    pb::HandoffPackage {
        discovery_summary: package.discovery_summary,
        pain_points: package.pain_points,
        stakeholders: package
            .stakeholders
            .into_iter()
            .map(stakeholder_to_pb)
            .collect(),
        decision_process: package.decision_process,
        budget_status: budget_status_to_pb(&package.budget_status),
        timing: package.timing,
        competitive_landscape: package.competitive_landscape,
        joint_call_time: package
            .joint_call_unix
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
            .map(wire::timestamp),
    }
}

fn money_pair_to_pb((currency_code, amount): &(String, String)) -> common::Money {
    common::Money {
        currency_code: currency_code.clone(),
        amount: amount.clone(),
    }
}

/// A subscription in a handoff's snapshot, with its latest usage if any.
pub fn usage_line_to_pb(u: &UsageLine) -> pb::SubscriptionUsage {
    let reading = u.usage.as_ref();
    pb::SubscriptionUsage {
        subscription_id: u.subscription_id.clone(),
        product_id: u.product_id.clone(),
        tier: u.tier.clone(),
        quantity: u.quantity,
        quota_limit: u.quota_limit,
        mrr: u.mrr.as_ref().map(money_pair_to_pb),
        usage_value: reading.map(|r| r.value.clone()).unwrap_or_default(),
        usage_limit: reading.map(|r| r.limit.clone()).unwrap_or_default(),
        usage_percent_of_limit: reading
            .map(|r| r.percent_of_limit.clone())
            .unwrap_or_default(),
        usage_time: reading
            .and_then(|r| DateTime::<Utc>::from_timestamp(r.unix, 0))
            .map(wire::timestamp),
    }
}

pub fn served_by_to_pb(name: &str) -> i32 {
    pb::WalletServedBy::from_str_name(name)
        .map(|s| s as i32)
        .unwrap_or_default()
}

pub fn wallet_to_pb(w: wallet_estimate::Model) -> Result<pb::WalletEstimate, PipelineError> {
    let currency = Currency::parse(&w.currency).map_err(|_| corrupt("currency", &w.id))?;
    Ok(pb::WalletEstimate {
        account_id: w.account_id,
        product_area: w.product_area,
        annual_spend: Some(wire::money_to_pb(&Money::from_minor(
            currency,
            w.annual_spend_minor,
        ))),
        served_by: served_by_to_pb(&w.served_by),
        competitor: w.competitor.unwrap_or_default(),
        notes: w.notes.unwrap_or_default(),
        audit: Some(audit(
            w.created_at,
            w.created_by,
            w.updated_at,
            w.updated_by,
        )),
        effective_date: w.effective_date.to_string(),
    })
}
