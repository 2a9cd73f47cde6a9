//! Rows and views of the health service as wire messages.

use chrono::{DateTime, Utc};
use contracts::pb::common::v1::Audit;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::{Currency, Decimal, Money};

use crate::entity::{account, health_override, health_score, product, signal, trigger};
use crate::model::product::{
    AdjacencyLink, WalletEstimate, adjacencies_to_pb, segments_to_pb, wallet_to_pb,
};
use crate::model::scorecard::{Bands, MeasureResult};
use crate::model::signal::unscale;
use crate::revenue::CurrencyMetrics;
use crate::store::{AccountHealthView, ScoreView, SubscriptionView};

pub(crate) fn audit(
    created_at: DateTime<Utc>,
    created_by: String,
    updated_at: DateTime<Utc>,
    updated_by: String,
) -> Option<Audit> {
    Some(Audit {
        create_time: Some(wire::timestamp(created_at)),
        created_by,
        update_time: Some(wire::timestamp(updated_at)),
        updated_by,
    })
}

pub(crate) fn account_to_pb(m: account::Model) -> pb::Account {
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
        audit: audit(m.created_at, m.created_by, m.updated_at, m.updated_by),
    }
}

pub(crate) fn product_to_pb(m: product::Model) -> pb::Product {
    let tiers: Vec<String> = serde_json::from_str(&m.tiers).unwrap_or_default();
    let adjacencies: Vec<AdjacencyLink> = serde_json::from_str(&m.adjacencies).unwrap_or_default();
    let segments: Vec<String> = serde_json::from_str(&m.fits_segments).unwrap_or_default();
    let wallet: Vec<WalletEstimate> = serde_json::from_str(&m.wallet_estimates).unwrap_or_default();
    pb::Product {
        product_id: m.id,
        name: m.name,
        family: m.family.unwrap_or_default(),
        tiers,
        adjacencies: adjacencies_to_pb(&adjacencies),
        fits_segments: segments_to_pb(&segments),
        wallet_estimates: wallet_to_pb(&wallet),
        margin_percent: m.margin_percent.unwrap_or_default(),
        audit: audit(m.created_at, m.created_by, m.updated_at, m.updated_by),
    }
}

pub(crate) fn subscription_to_pb(view: SubscriptionView) -> pb::Subscription {
    let today = storage::now().date_naive();
    let mrr = view.mrr_minor(today);
    let m = view.row;
    let mrr = Currency::parse(&m.currency)
        .ok()
        .map(|c| wire::money_to_pb(&Money::from_minor(c, mrr)));
    let external_ref = match (m.external_system, m.external_id) {
        (Some(system), Some(id)) => Some(pb::ExternalRef { system, id }),
        _ => None,
    };
    pb::Subscription {
        subscription_id: m.id,
        account_id: m.account_id,
        product_id: m.product_id,
        tier: m.tier.unwrap_or_default(),
        mrr,
        start_date: wire::date_to_pb(Some(m.start_date)),
        end_date: wire::date_to_pb(m.end_date),
        quantity: m.quantity,
        quota_limit: m.quota_limit,
        status: m.status.to_pb() as i32,
        cancel_date: wire::date_to_pb(m.cancel_date),
        cancel_reason: m.cancel_reason.unwrap_or_default(),
        source_opportunity_id: m.source_opportunity_id.unwrap_or_default(),
        external_ref,
        audit: audit(m.created_at, m.created_by, m.updated_at, m.updated_by),
        latest_usage: None,
        // Filled in by `HealthService::named` on reads.
        account_name: String::new(),
        product_name: String::new(),
    }
}

/// A USAGE signal read against its limit (SPEC §3: the handoff shows the
/// usage CS saw).
pub(crate) fn usage_to_pb(s: &signal::Model) -> pb::UsageReading {
    let value = unscale(s.value_e4);
    let limit = s.limit_e4.map(unscale);
    pb::UsageReading {
        value: value.to_string(),
        limit: limit.map(|l| l.to_string()).unwrap_or_default(),
        percent_of_limit: limit
            .filter(|l| l.is_sign_positive() && !l.is_zero())
            .and_then(|l| value.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(l))
            .map(|p| {
                let p = p
                    .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointNearestEven);
                format!("{p:.2}")
            })
            .unwrap_or_default(),
        occur_time: Some(wire::timestamp(s.occurred_at)),
    }
}

pub(crate) fn score_text(e2: Option<i64>) -> String {
    e2.map(|v| Decimal::new(v, 2).normalize().to_string())
        .unwrap_or_default()
}

pub(crate) fn trend(now: Option<i64>, then: Option<i64>) -> i32 {
    let trend = match (now, then) {
        (Some(a), Some(b)) if a > b => pb::Trend::Up,
        (Some(a), Some(b)) if a < b => pb::Trend::Down,
        _ => pb::Trend::Same,
    };
    trend as i32
}

/// The per-measure breakdown kept (as JSON) with a score.
pub(crate) fn breakdown_to_pb(stored: &str) -> Vec<pb::MeasureScore> {
    let measures: Vec<MeasureResult> = serde_json::from_str(stored).unwrap_or_default();
    measures
        .into_iter()
        .map(|m| pb::MeasureScore {
            name: m.name,
            weight: m.weight.normalize().to_string(),
            has_data: m.score.is_some(),
            score: m
                .score
                .map(|s| s.normalize().to_string())
                .unwrap_or_default(),
        })
        .collect()
}

pub(crate) fn score_to_pb(view: &ScoreView, bands: &Bands) -> pb::HealthScore {
    let effective = view.effective_e2();
    pb::HealthScore {
        account_id: view.row.account_id.clone(),
        product_id: view.row.product_id.clone(),
        score: score_text(effective),
        band: wire::band_to_pb(effective.and_then(|e| bands.band_of(Decimal::new(e, 2)))) as i32,
        trend_vs_previous: trend(view.row.score_e2, view.previous_e2),
        trend_vs_30_days: trend(view.row.score_e2, view.month_ago_e2),
        coverage_percent: Decimal::new(view.row.coverage_e2, 2)
            .normalize()
            .to_string(),
        breakdown: breakdown_to_pb(&view.row.breakdown),
        r#override: view
            .override_
            .as_ref()
            .map(|o: &health_override::Model| pb::HealthOverride {
                score: o.score,
                reason: o.reason.clone(),
                principal: o.principal.clone(),
                create_time: Some(wire::timestamp(o.created_at)),
                expire_time: o.expires_at.map(wire::timestamp),
            }),
        csm_sentiment: view.row.csm_sentiment.clone().unwrap_or_default(),
        scorecard_version: view.row.scorecard_version,
        compute_time: Some(wire::timestamp(view.row.computed_at)),
        computed_score: score_text(view.row.score_e2),
        has_score: effective.is_some(),
        // Filled in by `HealthService::named` on reads.
        account_name: String::new(),
        product_name: String::new(),
    }
}

pub(crate) fn account_health_to_pb(view: &AccountHealthView) -> pb::AccountHealth {
    pb::AccountHealth {
        overall: Some(score_to_pb(&view.overall, &view.scorecard.bands)),
        products: view
            .products
            .iter()
            .map(|p| score_to_pb(p, &view.scorecard.bands))
            .collect(),
    }
}

pub(crate) fn history_to_pb(m: health_score::Model, bands: &Bands) -> pb::HealthScore {
    pb::HealthScore {
        account_id: m.account_id,
        product_id: m.product_id,
        score: score_text(m.score_e2),
        band: wire::band_to_pb(m.score_e2.and_then(|e| bands.band_of(Decimal::new(e, 2)))) as i32,
        coverage_percent: Decimal::new(m.coverage_e2, 2).normalize().to_string(),
        breakdown: breakdown_to_pb(&m.breakdown),
        csm_sentiment: m.csm_sentiment.unwrap_or_default(),
        scorecard_version: m.scorecard_version,
        compute_time: Some(wire::timestamp(m.computed_at)),
        computed_score: score_text(m.score_e2),
        has_score: m.score_e2.is_some(),
        ..Default::default()
    }
}

pub(crate) fn trigger_to_pb(t: trigger::Model) -> pb::Trigger {
    pb::Trigger {
        trigger_id: t.id,
        account_id: t.account_id,
        product_id: t.product_id,
        kind: t.kind.to_pb() as i32,
        suggested_motion: wire::motion_to_pb(t.motion.into()) as i32,
        status: t.status.to_pb() as i32,
        priority: t.priority.to_pb() as i32,
        reason: t.reason,
        suppression_reason: t.suppression_reason.unwrap_or_default(),
        fire_time: Some(wire::timestamp(t.fired_at)),
        close_time: t.closed_at.map(wire::timestamp),
        opportunity_id: t.opportunity_id.unwrap_or_default(),
        // Filled in by `HealthService::named` on reads.
        account_name: String::new(),
        product_name: String::new(),
    }
}

pub(crate) fn ratio(value: Option<Decimal>) -> String {
    value.map(|d| format!("{d:.4}")).unwrap_or_default()
}

// The v1 `starting_mrr` / `ending_mrr` are deprecated, and still carry the same values.
#[allow(deprecated)]
pub(crate) fn metrics_to_pb(m: CurrencyMetrics) -> pb::CurrencyMetrics {
    let money = |v: Money| Some(wire::money_to_pb(&v));
    pb::CurrencyMetrics {
        currency_code: m.currency.code().to_owned(),
        cross_sell_mrr: money(m.cross_sell_mrr),
        new_mrr: money(m.new_mrr),
        upsell_mrr: money(m.upsell_mrr),
        expansion_mrr: money(m.expansion_mrr),
        contraction_mrr: money(m.contraction_mrr),
        churned_mrr: money(m.churned_mrr),
        starting_mrr: money(m.opening_mrr),
        ending_mrr: money(m.closing_mrr),
        opening_mrr: money(m.opening_mrr),
        closing_mrr: money(m.closing_mrr),
        nrr: ratio(m.nrr),
        grr: ratio(m.grr),
        cross_sell_penetration: ratio(m.cross_sell_penetration),
        products_per_account: ratio(m.products_per_account),
        expansion_share: ratio(m.expansion_share),
        avg_days_to_first_cross_sell: ratio(m.avg_days_to_first_cross_sell),
    }
}
