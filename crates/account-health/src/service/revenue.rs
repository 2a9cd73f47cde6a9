//! Revenue: GetRevenueMetrics (the MRR bridge) and GetCohortRevenue.

use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::Month;
use domain::TimeZoneName;

use super::invalid;
use crate::cohort::Grain;
use crate::convert::{metrics_to_pb, ratio};
use crate::error::HealthError;
use crate::store::Store;

pub(crate) async fn get_revenue_metrics(
    store: &Store,
    req: &pb::GetRevenueMetricsRequest,
) -> Result<pb::GetRevenueMetricsResponse, HealthError> {
    let tz = TimeZoneName::parse_or_utc(&req.time_zone).map_err(|e| invalid("time_zone", e))?;
    // No period: the current month where the caller is (SPEC §2 `time_zone`).
    let today = tz.date_of(storage::now());
    let period = wire::period(&req.month, &req.start_date, &req.end_date, today)?;
    let metrics = store.revenue_metrics(&period).await?;
    Ok(pb::GetRevenueMetricsResponse {
        start_date: wire::date_to_pb(Some(period.start())),
        end_date: wire::date_to_pb(Some(period.end())),
        time_zone: tz.name().to_owned(),
        currencies: metrics.into_iter().map(metrics_to_pb).collect(),
    })
}

pub(crate) async fn get_cohort_revenue(
    store: &Store,
    req: &pb::GetCohortRevenueRequest,
) -> Result<pb::GetCohortRevenueResponse, HealthError> {
    let tz = TimeZoneName::parse_or_utc(&req.time_zone).map_err(|e| invalid("time_zone", e))?;
    let granularity: pb::CohortGranularity =
        wire::known_enum("granularity", req.granularity).map_err(HealthError::from)?;
    let grain = match granularity {
        pb::CohortGranularity::Quarter => Grain::Quarter,
        _ => Grain::Month,
    };
    let month = |field: &str, text: &str| -> Result<Option<Month>, HealthError> {
        if text.is_empty() {
            return Ok(None);
        }
        Ok(Some(Month::parse(text).map_err(|e| invalid(field, e))?))
    };
    let today = tz.date_of(storage::now());
    let end = match month("end_month", &req.end_month)? {
        Some(m) => m.first_day(),
        None => today,
    };
    let start = match month("start_month", &req.start_month)? {
        Some(m) => m.first_day(),
        // Twelve months, or four quarters, to the current one.
        None => {
            let back = match grain {
                Grain::Month => 11,
                Grain::Quarter => 9,
            };
            end.checked_sub_months(chrono::Months::new(back))
                .unwrap_or(end)
        }
    };
    if end < start {
        return Err(invalid("end_month", "is before start_month"));
    }
    let periods = grain.periods(start, end);
    if periods.len() > 120 {
        return Err(invalid("end_month", "a report spans at most 120 periods"));
    }
    let cohorts = store.cohort_revenue(grain, &periods).await?;
    let money = |m: &domain::Money| Some(wire::money_to_pb(m));
    Ok(pb::GetCohortRevenueResponse {
        granularity: match grain {
            Grain::Month => pb::CohortGranularity::Month,
            Grain::Quarter => pb::CohortGranularity::Quarter,
        } as i32,
        time_zone: tz.name().to_owned(),
        cohorts: cohorts
            .into_iter()
            .map(|c| pb::CohortRevenue {
                cohort: c.cohort.label,
                currency_code: c.currency.code().to_owned(),
                periods: c
                    .periods
                    .into_iter()
                    .map(|p| pb::CohortPeriod {
                        period: p.period.label,
                        start_date: wire::date_to_pb(Some(p.period.range.start())),
                        end_date: wire::date_to_pb(Some(p.period.range.end())),
                        accounts: p.accounts,
                        mrr: money(&p.mrr),
                        average_mrr: p.average_mrr.as_ref().and_then(money),
                        opening_mrr: money(&p.opening_mrr),
                        nrr: ratio(p.nrr),
                        mrr_since_acquisition: ratio(p.mrr_since_acquisition),
                    })
                    .collect(),
            })
            .collect(),
    })
}
