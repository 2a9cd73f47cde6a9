//! GetTeamPerformance: the opportunities, their stage history and the
//! handoffs, read once, then the pure figures of `model::performance` for
//! each row the caller may read.

use contracts::pb::pipeline::v1 as pb;
use contracts::{Principal, page, wire};
use domain::DateRange;

use super::insights::win_rate_to_pb;
use super::page_of;
use crate::api::PipelineService;
use crate::convert::parse_row;
use crate::error::PipelineError;
use crate::model::forecast::StageHistory;
use crate::model::handoff::HandoffStatus;
use crate::model::performance::{
    Figures, PerformanceDeal, PerformanceHandoff, Scope, TeamFigures, figures, participant_figures,
    select, team_figures, teams_of,
};
use crate::model::whitespace::ratio_text;
use crate::store::OpportunityFilter;

fn figures_to_pb(f: &Figures) -> pb::PerformanceFigures {
    pb::PerformanceFigures {
        originated: f.originated,
        handed_off: f.handed_off,
        handoffs_accepted: f.handoffs_accepted,
        handoffs_taken: f.handoffs_taken,
        won: f.won,
        lost: f.lost,
        win_rate: ratio_text(f.win_rate),
        win_rates_by_motion: f.win_rates_by_motion.iter().map(win_rate_to_pb).collect(),
        amounts: f
            .amounts
            .iter()
            .map(|a| pb::PerformanceAmounts {
                currency_code: a.currency.code().to_owned(),
                originated_amount: Some(wire::money_to_pb(&a.originated)),
                won_amount: Some(wire::money_to_pb(&a.won)),
                lost_amount: Some(wire::money_to_pb(&a.lost)),
            })
            .collect(),
        avg_cycle_days: f
            .avg_cycle_days
            .map(|d| format!("{d:.2}"))
            .unwrap_or_default(),
    }
}

/// A validated `GetTeamPerformance`: the period, the participant and team
/// asked for, and the page.
struct PerformanceQuery {
    period: DateRange,
    participant: Option<String>,
    team: Option<String>,
    size: u64,
    fingerprint: u64,
    after: Option<String>,
}

fn performance_query(
    req: &pb::GetTeamPerformanceRequest,
    today: chrono::NaiveDate,
) -> Result<PerformanceQuery, PipelineError> {
    let period = wire::period(&req.month, &req.start_date, &req.end_date, today)?;
    let participant = wire::optional_text("participant", &req.participant, wire::MAX_NAME_LEN)
        .map_err(PipelineError::from)?;
    let team =
        wire::optional_text("team", &req.team, wire::MAX_NAME_LEN).map_err(PipelineError::from)?;
    let size = page::page_size("page_size", req.page_size).map_err(PipelineError::from)?;
    let fingerprint = page::fingerprint(&[
        "performance",
        &period.start().to_string(),
        &period.end().to_string(),
        participant.as_deref().unwrap_or_default(),
        team.as_deref().unwrap_or_default(),
    ]);
    let after = page::decode_token("page_token", &req.page_token, fingerprint)
        .map_err(PipelineError::from)?;
    Ok(PerformanceQuery {
        period,
        participant,
        team,
        size,
        fingerprint,
        after,
    })
}

fn team_to_pb(t: TeamFigures) -> pb::TeamPerformance {
    pb::TeamPerformance {
        team: t.team,
        members: t.members.into_iter().collect(),
        figures: Some(figures_to_pb(&t.figures)),
    }
}

impl PipelineService {
    pub(crate) async fn get_team_performance_op(
        &self,
        caller: &Principal,
        req: &pb::GetTeamPerformanceRequest,
    ) -> Result<pb::GetTeamPerformanceResponse, PipelineError> {
        let q = performance_query(req, self.now().date_naive())?;
        let (deals, handoffs) = self.performance_facts().await?;
        let teams = teams_of(&deals);
        let selection = select(caller, q.participant.as_deref(), q.team.as_deref(), &teams)
            .map_err(|r| PipelineError::Refused {
                reason: r.reason,
                message: r.message,
            })?;
        let rows: Vec<pb::ParticipantPerformance> =
            participant_figures(&deals, &handoffs, &q.period, selection.participants)
                .into_iter()
                .filter(|(p, _)| q.after.as_deref().is_none_or(|a| p.as_str() > a))
                .map(|(p, f)| pb::ParticipantPerformance {
                    team: teams.get(&p).cloned().unwrap_or_default(),
                    participant: p,
                    figures: Some(figures_to_pb(&f)),
                })
                .collect();
        let (participants, next_page_token) =
            page_of(rows, q.size, |r| r.participant.clone(), q.fingerprint);
        let team_rows = team_figures(&deals, &handoffs, &q.period, &teams, selection.teams);
        let total = figures(&deals, &handoffs, &q.period, Scope::Everyone);
        Ok(pb::GetTeamPerformanceResponse {
            start_date: q.period.start().to_string(),
            end_date: q.period.end().to_string(),
            participants,
            teams: team_rows.into_iter().map(team_to_pb).collect(),
            total: Some(figures_to_pb(&total)),
            next_page_token,
        })
    }

    /// Every opportunity (with when it closed, from its stage history) and
    /// every handoff.
    async fn performance_facts(
        &self,
    ) -> Result<(Vec<PerformanceDeal>, Vec<PerformanceHandoff>), PipelineError> {
        let rows = self
            .store
            .opportunities(&OpportunityFilter::default())
            .await?;
        let mut closed_at = StageHistory::from_rows(self.store.stage_history().await?).closed_at;
        let mut deals = Vec::with_capacity(rows.len());
        for m in rows {
            let p = parse_row(&m)?;
            deals.push(PerformanceDeal {
                motion: p.motion,
                amount: p.amount,
                stage: p.stage,
                owner: m.owner.clone(),
                owner_team: m.owner_team.clone(),
                originator: m.originator.clone(),
                created_at: m.created_at,
                close_date: p.stage.is_closed().then_some(m.close_date).flatten(),
                closed_at: closed_at.remove(&m.id),
                opportunity_id: m.id,
            });
        }
        let handoffs = self
            .store
            .all_handoffs()
            .await?
            .into_iter()
            .map(|h| PerformanceHandoff {
                accepted: (h.status == HandoffStatus::Accepted)
                    .then(|| h.resolved_at.zip(h.accepted_owner.clone()))
                    .flatten(),
                opportunity_id: h.opportunity_id,
                requested_at: h.requested_at,
            })
            .collect();
        Ok((deals, handoffs))
    }
}
