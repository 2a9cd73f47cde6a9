//! Wallet estimates, whitespace and share of wallet, and the forecast.

use std::collections::HashSet;

use chrono::NaiveDate;
use contracts::pb::pipeline::v1 as pb;
use contracts::wire;
use domain::{AccountId, BenchmarkVerdict, Currency, Money, Month};

use super::{bucket_pb, currency_filter, invalid, opt_text, parse_id, unavailable};
use crate::api::PipelineService;
use crate::convert::{WhitespaceLine, parse_row, wallet_to_pb, whitespace_line_to_pb};
use crate::entity::{opportunity, wallet_estimate};
use crate::error::PipelineError;
use crate::health::{HealthError, owned_products};
use crate::model::forecast::{
    Bucket, CurrencyForecast, ForecastDeal, StageHistory, WinRate, closes_within, forecast,
};
use crate::model::whitespace::{
    ServedBy, WalletLine, WalletSummary, WalletVersion, ratio_text, share_series, summarize_wallet,
    wallet_in_force, whitespace,
};
use crate::store::OpportunityFilter;

impl PipelineService {
    pub(crate) async fn get_whitespace_op(
        &self,
        req: &pb::GetWhitespaceRequest,
    ) -> Result<pb::GetWhitespaceResponse, PipelineError> {
        let id = parse_id("account_id", &req.account_id, AccountId::parse)?;
        let account_id = id.to_string();
        let (account, portfolio, subscriptions) = tokio::join!(
            self.health.account(&account_id),
            self.health.portfolio(),
            self.health.active_subscriptions(&account_id),
        );
        let account = match account {
            Ok(a) => a,
            Err(HealthError::NotFound(_)) => {
                return Err(PipelineError::NotFound("account", account_id));
            }
            Err(e) => return Err(unavailable(e)),
        };
        let portfolio = portfolio.map_err(unavailable)?;
        let subscriptions = subscriptions.map_err(unavailable)?;
        let items = whitespace(&portfolio, &owned_products(&subscriptions), account.segment);
        let as_of = match wire::optional_date("as_of_date", &req.as_of_date)
            .map_err(PipelineError::from)?
        {
            Some(day) => day,
            None => self.now().date_naive(),
        };
        let rows = self.store.wallet(Some(id)).await?;
        let versions = wallet_versions(&rows)?;
        let in_force: HashSet<&str> = wallet_in_force(&versions, as_of)
            .into_iter()
            .map(|v| v.id.as_str())
            .collect();
        let lines: Vec<WalletLine> = versions
            .iter()
            .filter(|v| in_force.contains(v.id.as_str()))
            .map(|v| v.line.clone())
            .collect();
        let mut rows: Vec<wallet_estimate::Model> = rows
            .iter()
            .filter(|r| in_force.contains(r.id.as_str()))
            .cloned()
            .collect();
        rows.sort_by(|a, b| a.product_area.cmp(&b.product_area));
        let summaries = summarize_wallet(&lines)
            .map_err(|e| PipelineError::Corrupt(format!("wallet sum: {e}")))?;
        let summaries: Vec<pb::WalletSummary> = summaries.iter().map(summary_to_pb).collect();
        Ok(pb::GetWhitespaceResponse {
            account_id,
            whitespace: items
                .iter()
                .map(|w| whitespace_line_to_pb(&WhitespaceLine::of(w)))
                .collect(),
            wallet: rows
                .into_iter()
                .map(wallet_to_pb)
                .collect::<Result<_, _>>()?,
            summaries,
            segment: account
                .segment
                .map(|s| wire::segment_to_pb(s) as i32)
                .unwrap_or_default(),
        })
    }

    pub(crate) async fn get_pipeline_forecast_op(
        &self,
        req: &pb::GetPipelineForecastRequest,
    ) -> Result<pb::GetPipelineForecastResponse, PipelineError> {
        let filter = OpportunityFilter {
            currency: currency_filter("currency_code", &req.currency_code)?,
            owner_team: opt_text("owner_team", &req.owner_team, wire::MAX_NAME_LEN)?,
            ..Default::default()
        };
        let start = wire::optional_date("close_date_start", &req.close_date_start)
            .map_err(PipelineError::from)?;
        let end = wire::optional_date("close_date_end", &req.close_date_end)
            .map_err(PipelineError::from)?;
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            return Err(invalid("close_date_end", "is before close_date_start"));
        }
        let rows = self.store.opportunities(&filter).await?;
        let mut history = StageHistory::from_rows(self.store.stage_history().await?);
        let deals = rows
            .iter()
            .filter(|m| closes_within(m.close_date, start, end))
            .map(|m| forecast_deal(m, &mut history))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(pb::GetPipelineForecastResponse {
            forecasts: forecast(&deals)
                .iter()
                .map(currency_forecast_to_pb)
                .collect(),
        })
    }

    pub(crate) async fn upsert_wallet_estimate_once(
        &self,
        principal: String,
        req: &pb::UpsertWalletEstimateRequest,
    ) -> Result<pb::UpsertWalletEstimateResponse, PipelineError> {
        let e = req
            .estimate
            .as_ref()
            .ok_or_else(|| invalid("estimate", "is required"))?;
        let account_id = parse_id("estimate.account_id", &e.account_id, AccountId::parse)?;
        let product_area = wire::text("estimate.product_area", &e.product_area, wire::MAX_NAME_LEN)
            .map_err(PipelineError::from)?;
        let spend = wire::money("estimate.annual_spend", e.annual_spend.as_ref())
            .map_err(PipelineError::from)?;
        if spend.is_negative() {
            return Err(invalid(
                "estimate.annual_spend.amount",
                "must not be negative",
            ));
        }
        // Whitespace sums every estimate of the account: keep each within a deal's bound.
        if spend.minor() > domain::MAX_DEAL_MINOR {
            return Err(invalid(
                "estimate.annual_spend.amount",
                format!(
                    "{spend} is beyond the largest amount, {}",
                    domain::Money::from_minor(spend.currency(), domain::MAX_DEAL_MINOR)
                ),
            ));
        }
        let served_by: pb::WalletServedBy =
            wire::known_enum("estimate.served_by", e.served_by).map_err(PipelineError::from)?;
        if served_by == pb::WalletServedBy::Unspecified {
            return Err(invalid(
                "estimate.served_by",
                "is required: US, COMPETITOR, IN_HOUSE or UNADDRESSED",
            ));
        }
        let competitor = opt_text("estimate.competitor", &e.competitor, wire::MAX_NAME_LEN)?;
        let notes = opt_text("estimate.notes", &e.notes, wire::MAX_NOTE_LEN)?;
        // An account the health service knows (SPEC §3 "References are real").
        let account = account_id.to_string();
        let info = self
            .health
            .account(&account)
            .await
            .map_err(|e| super::reference_error("account", &account, e))?;
        self.store.remember_account(&info).await?;
        let now = self.now();
        let effective_date = wire::optional_date("estimate.effective_date", &e.effective_date)
            .map_err(PipelineError::from)?
            .unwrap_or_else(|| now.date_naive());
        let model = self
            .store
            .upsert_wallet(
                wallet_estimate::Model {
                    id: String::new(),
                    account_id: account_id.to_string(),
                    product_area,
                    annual_spend_minor: spend.minor(),
                    currency: spend.currency().code().to_owned(),
                    served_by: served_by.as_str_name().to_owned(),
                    competitor,
                    notes,
                    created_at: now,
                    created_by: principal.clone(),
                    updated_at: now,
                    updated_by: principal.clone(),
                    effective_date,
                },
                &principal,
            )
            .await?;
        Ok(pb::UpsertWalletEstimateResponse {
            estimate: Some(wallet_to_pb(model)?),
        })
    }
}

/// An opportunity as the forecast sees it, with what its stage history says.
fn forecast_deal(
    m: &opportunity::Model,
    history: &mut StageHistory,
) -> Result<ForecastDeal, PipelineError> {
    let p = parse_row(m)?;
    Ok(ForecastDeal {
        motion: p.motion,
        product_id: m.product_id.clone(),
        stage: p.stage,
        amount: p.amount,
        probability: p.probability,
        owner_team: m.owner_team.clone(),
        created_at: m.created_at,
        closed_at: p
            .stage
            .is_closed()
            .then(|| history.closed_at.get(&m.id).copied())
            .flatten(),
        stages_reached: history.reached.remove(&m.id).unwrap_or_default(),
    })
}

fn currency_forecast_to_pb(f: &CurrencyForecast) -> pb::CurrencyForecast {
    let buckets = |groups: &[(String, Bucket)]| -> Vec<pb::GroupForecast> {
        groups
            .iter()
            .map(|(k, b)| bucket_pb(k.clone(), b))
            .collect()
    };
    pb::CurrencyForecast {
        currency_code: f.currency.code().to_owned(),
        stages: f
            .stages
            .iter()
            .map(|s| pb::StageForecast {
                stage: wire::stage_to_pb(s.stage) as i32,
                count: s.bucket.count,
                amount: Some(wire::money_to_pb(&s.bucket.amount)),
                weighted_amount: Some(wire::money_to_pb(&s.bucket.weighted)),
                conversion_rate: ratio_text(s.conversion),
            })
            .collect(),
        by_motion: buckets(&f.by_motion),
        by_owner_team: buckets(&f.by_owner_team),
        win_rates: f.win_rates.iter().map(win_rate_to_pb).collect(),
        win_rates_by_product: f
            .win_rates_by_product
            .iter()
            .map(|w| pb::ProductWinRate {
                product_id: w.product_id.clone(),
                won: w.won,
                lost: w.lost,
                win_rate: ratio_text(w.rate),
            })
            .collect(),
        avg_cycle_days: f
            .avg_cycle_days
            .map(|d| format!("{d:.2}"))
            .unwrap_or_default(),
        avg_deal_size: f.avg_deal_size.as_ref().map(wire::money_to_pb),
        open_amount: Some(wire::money_to_pb(&f.open.amount)),
        open_weighted_amount: Some(wire::money_to_pb(&f.open.weighted)),
    }
}

/// A motion's win rate as the wire shows it.
pub(crate) fn win_rate_to_pb(w: &WinRate) -> pb::MotionWinRate {
    pb::MotionWinRate {
        motion: wire::motion_to_pb(w.motion) as i32,
        won: w.won,
        lost: w.lost,
        win_rate: ratio_text(w.rate),
        benchmark_low: ratio_text(Some(w.benchmark.0)),
        benchmark_high: ratio_text(Some(w.benchmark.1)),
        verdict: match w.verdict {
            None => pb::BenchmarkVerdict::Unspecified,
            Some(BenchmarkVerdict::Below) => pb::BenchmarkVerdict::Below,
            Some(BenchmarkVerdict::Within) => pb::BenchmarkVerdict::Within,
            Some(BenchmarkVerdict::Above) => pb::BenchmarkVerdict::Above,
        } as i32,
    }
}

fn summary_to_pb(s: &WalletSummary) -> pb::WalletSummary {
    pb::WalletSummary {
        currency_code: s.currency.code().to_owned(),
        total_wallet: Some(wire::money_to_pb(&s.total)),
        our_spend: Some(wire::money_to_pb(&s.ours)),
        opportunity: Some(wire::money_to_pb(&s.opportunity)),
        share_of_wallet: ratio_text(s.share_of_wallet),
        opportunity_share: ratio_text(s.opportunity_share),
    }
}

/// Stored estimates as the wallet rules read them, in record order.
fn wallet_versions(rows: &[wallet_estimate::Model]) -> Result<Vec<WalletVersion>, PipelineError> {
    rows.iter()
        .map(|r| {
            let currency = Currency::parse(&r.currency)
                .map_err(|_| PipelineError::Corrupt(format!("wallet {}: currency", r.id)))?;
            let served_by = match pb::WalletServedBy::from_str_name(&r.served_by) {
                Some(pb::WalletServedBy::Us) => ServedBy::Us,
                Some(pb::WalletServedBy::Competitor) => ServedBy::Competitor,
                Some(pb::WalletServedBy::InHouse) => ServedBy::InHouse,
                _ => ServedBy::Unaddressed,
            };
            Ok(WalletVersion {
                id: r.id.clone(),
                account_id: r.account_id.clone(),
                effective_date: r.effective_date,
                line: WalletLine {
                    product_area: r.product_area.clone(),
                    annual_spend: Money::from_minor(currency, r.annual_spend_minor),
                    served_by,
                },
            })
        })
        .collect()
}

/// Most months a share-of-wallet series spans.
const MAX_SERIES_MONTHS: usize = 120;

impl PipelineService {
    pub(crate) async fn get_wallet_share_history_op(
        &self,
        req: &pb::GetWalletShareHistoryRequest,
    ) -> Result<pb::GetWalletShareHistoryResponse, PipelineError> {
        let account_id = if req.account_id.is_empty() {
            None
        } else {
            Some(parse_id("account_id", &req.account_id, AccountId::parse)?)
        };
        let today = self.now().date_naive();
        let month = |field: &str, text: &str| -> Result<Option<Month>, PipelineError> {
            if text.is_empty() {
                return Ok(None);
            }
            Month::parse(text).map(Some).map_err(|e| invalid(field, e))
        };
        let current = Month::containing(today).map_err(|e| invalid("end_month", e))?;
        let end = month("end_month", &req.end_month)?.unwrap_or(current);
        let start = match month("start_month", &req.start_month)? {
            Some(m) => m,
            None => {
                let mut m = end;
                for _ in 0..11 {
                    m = m.previous().unwrap_or(m);
                }
                m
            }
        };
        if end < start {
            return Err(invalid("end_month", "is before start_month"));
        }
        let mut months = vec![start];
        while let Some(last) = months.last().copied()
            && last < end
        {
            if months.len() >= MAX_SERIES_MONTHS {
                return Err(invalid(
                    "end_month",
                    format!("a series spans at most {MAX_SERIES_MONTHS} months"),
                ));
            }
            match last.next() {
                Some(next) => months.push(next),
                None => break,
            }
        }
        let days: Vec<NaiveDate> = months
            .iter()
            .map(|m| if *m == current { today } else { m.last_day() })
            .collect();
        let rows = self.store.wallet(account_id).await?;
        let versions = wallet_versions(&rows)?;
        let series = share_series(&versions, &days)
            .map_err(|e| PipelineError::Corrupt(format!("wallet sum: {e}")))?;
        Ok(pb::GetWalletShareHistoryResponse {
            account_id: account_id.map(|a| a.to_string()).unwrap_or_default(),
            points: months
                .iter()
                .zip(&days)
                .zip(series)
                .map(|((m, day), summaries)| pb::WalletSharePoint {
                    month: m.to_string(),
                    as_of_date: day.to_string(),
                    summaries: summaries.iter().map(summary_to_pb).collect(),
                })
                .collect(),
        })
    }
}
