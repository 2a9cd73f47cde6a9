//! The CS→Sales handoff: request with a complete package and a snapshot of
//! what CS saw, accept (the AE owns it), reject or withdraw, list.

use contracts::pb::pipeline::v1 as pb;
use contracts::{page, wire};
use domain::{HandoffId, OpportunityId};
use sea_orm::ActiveEnum;

use super::{invalid, opt_text, page_of, parse_id};
use crate::api::PipelineService;
use crate::convert::{handoff_to_pb, parse_row};
use crate::entity::{handoff, opportunity};
use crate::error::PipelineError;
use crate::health::owned_products;
use crate::model::HealthSnapshot;
use crate::model::handoff::{
    Acceptor, HandoffResolution, HandoffSnapshot, HandoffStatus, UsageLine, WhitespaceLine,
    acceptor, handoff_package, named_owner_team, plan_acceptance, plan_rejection, plan_request,
};
use crate::model::transition::Planning;
use crate::model::whitespace::whitespace;
use crate::store::{HandoffFilter, OpportunityWrite};

impl PipelineService {
    pub(crate) async fn list_handoffs_op(
        &self,
        req: &pb::ListHandoffsRequest,
    ) -> Result<pb::ListHandoffsResponse, PipelineError> {
        let size = page::page_size("page_size", req.page_size).map_err(PipelineError::from)?;
        wire::filter_values("statuses", &req.statuses).map_err(PipelineError::from)?;
        let mut statuses = Vec::new();
        for (i, s) in req.statuses.iter().enumerate() {
            let status: pb::HandoffStatus =
                wire::known_enum(&format!("statuses[{i}]"), *s).map_err(PipelineError::from)?;
            let name = match status {
                pb::HandoffStatus::Unspecified => continue,
                pb::HandoffStatus::Requested => HandoffStatus::Requested,
                pb::HandoffStatus::Accepted => HandoffStatus::Accepted,
                pb::HandoffStatus::Rejected => HandoffStatus::Rejected,
                pb::HandoffStatus::Withdrawn => HandoffStatus::Withdrawn,
            };
            statuses.push(name);
        }
        let opportunity_id = if req.opportunity_id.is_empty() {
            None
        } else {
            Some(parse_id("opportunity_id", &req.opportunity_id, OpportunityId::parse)?.to_string())
        };
        let fingerprint = page::fingerprint(&[
            // By the stored names, as the tokens issued so far were.
            &format!(
                "{:?}",
                statuses.iter().map(|s| s.to_value()).collect::<Vec<_>>()
            ),
            &req.overdue_only.to_string(),
            &req.opportunity_id,
        ]);
        let after = page::decode_token("page_token", &req.page_token, fingerprint)
            .map_err(PipelineError::from)?;
        let now = self.now();
        let rows = self
            .store
            .handoffs(&HandoffFilter {
                statuses,
                opportunity_id,
                overdue_at: req.overdue_only.then_some(now),
                after_id: after,
                limit: size + 1,
            })
            .await?;
        let (rows, next_page_token) = page_of(rows, size, |h| h.id.clone(), fingerprint);
        let handoffs = rows
            .into_iter()
            .map(|h| handoff_to_pb(h, now))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(pb::ListHandoffsResponse {
            handoffs: self.named(handoffs).await?,
            next_page_token,
        })
    }

    pub(crate) async fn request_handoff_once(
        &self,
        principal: String,
        req: &pb::RequestHandoffRequest,
    ) -> Result<pb::RequestHandoffResponse, PipelineError> {
        let id = parse_id("opportunity_id", &req.opportunity_id, OpportunityId::parse)?;
        let package =
            handoff_package("package", req.package.as_ref()).map_err(PipelineError::from)?;
        let current = self
            .store
            .opportunity(id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("opportunity", id.to_string()))?;
        let p = parse_row(&current)?;
        Self::ensure_open(&current, p.stage)?;
        // An import's handoff was requested when the CRM says (its SLA runs
        // from then), while the opportunity stood in its current stage.
        let backdated = super::occur_time(
            req.occur_time.as_ref(),
            self.now(),
            Some(p.stage_entered_at),
        )?;
        if let Some(open) = self.store.open_handoff(id).await? {
            return Err(PipelineError::precondition(
                "HANDOFF_ALREADY_OPEN",
                &current.id,
                format!(
                    "opportunity {} already has open handoff {}",
                    current.id, open.id
                ),
            ));
        }
        // The account and product it names exist (SPEC §3 "References are real").
        self.check_references(&current.account_id, &current.product_id, None)
            .await?;
        let snapshot = self.handoff_snapshot(&current).await;
        let now = self.now();
        let at = Planning {
            config: &self.config,
            now,
            principal: &principal,
        };
        let (row, requested) = plan_request(
            &current,
            HandoffId::new(),
            &package,
            &snapshot,
            backdated,
            at,
        )?;
        let model = self
            .store
            .insert_handoff(row, requested)
            .await
            .map_err(|e| match e {
                // Lost a race with another request for the same opportunity.
                PipelineError::Store(db) if db.sql_err().is_some() => PipelineError::precondition(
                    "HANDOFF_ALREADY_OPEN",
                    &current.id,
                    format!("opportunity {} already has an open handoff", current.id),
                ),
                other => other,
            })?;
        Ok(pb::RequestHandoffResponse {
            handoff: self.named(vec![handoff_to_pb(model, now)?]).await?.pop(),
        })
    }

    pub(crate) async fn accept_handoff_once(
        &self,
        caller: contracts::Principal,
        req: &pb::AcceptHandoffRequest,
    ) -> Result<pb::AcceptHandoffResponse, PipelineError> {
        let handoff_id = parse_id("handoff_id", &req.handoff_id, HandoffId::parse)?;
        let named = opt_text("owner", &req.owner, wire::MAX_NAME_LEN)?;
        let acceptor = acceptor(&caller, named).map_err(PipelineError::from)?;
        let owner_team = opt_text("owner_team", &req.owner_team, wire::MAX_NAME_LEN)?;
        let h = self.load_handoff(handoff_id).await?;
        let current = self.load("opportunity_id", &h.opportunity_id).await?;
        let p = parse_row(&current)?;
        Self::ensure_open(&current, p.stage)?;
        let owner_team = match &acceptor {
            Acceptor::CallingAe(_) => owner_team,
            Acceptor::Named(name) => {
                let person = self
                    .people
                    .person(name)
                    .await
                    .map_err(|e| PipelineError::PeopleUnavailable(e.to_string()))?;
                named_owner_team(name, person, owner_team)?
            }
        };
        let owner = acceptor.owner().to_owned();
        let plan = plan_acceptance(&h, &current, owner, owner_team, &caller.name);
        let (h, opp) = self
            .resolve(handoff_id, Some(&current), plan, &caller.name)
            .await?;
        Ok(pb::AcceptHandoffResponse {
            handoff: self.named(vec![handoff_to_pb(h, self.now())?]).await?.pop(),
            opportunity: opp.map(|o| self.to_pb(o)).transpose()?,
        })
    }

    pub(crate) async fn reject_handoff_once(
        &self,
        principal: String,
        req: &pb::RejectHandoffRequest,
    ) -> Result<pb::RejectHandoffResponse, PipelineError> {
        let handoff_id = parse_id("handoff_id", &req.handoff_id, HandoffId::parse)?;
        let reason = opt_text("reason", &req.reason, wire::MAX_NOTE_LEN)?;
        if !req.withdraw && reason.is_none() {
            return Err(invalid(
                "reason",
                "is required to reject a handoff: tell CS what is missing",
            ));
        }
        let h = self.load_handoff(handoff_id).await?;
        let plan = plan_rejection(&h, req.withdraw, reason, &principal);
        let (h, _) = self.resolve(handoff_id, None, plan, &principal).await?;
        Ok(pb::RejectHandoffResponse {
            handoff: self.named(vec![handoff_to_pb(h, self.now())?]).await?.pop(),
        })
    }

    async fn load_handoff(&self, handoff_id: HandoffId) -> Result<handoff::Model, PipelineError> {
        self.store
            .handoff(handoff_id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("handoff", handoff_id.to_string()))
    }

    /// Writes a planned resolution of handoff `id`; the opportunity's change
    /// is guarded by the version of `current` it was planned from.
    async fn resolve(
        &self,
        id: HandoffId,
        current: Option<&opportunity::Model>,
        plan: HandoffResolution,
        principal: &str,
    ) -> Result<(handoff::Model, Option<opportunity::Model>), PipelineError> {
        let write = current
            .zip(plan.opportunity)
            .map(|(current, change)| OpportunityWrite {
                id: current.id.clone(),
                expected_version: current.version,
                changes: change.changes,
                history: change.history,
                events: change.events,
                occurred_at: None,
            });
        self.store
            .resolve_handoff(id, plan.changes, write, plan.events, principal)
            .await
    }

    /// Handoffs with the names their opportunities keep beside the ids.
    async fn named(
        &self,
        mut handoffs: Vec<pb::Handoff>,
    ) -> Result<Vec<pb::Handoff>, PipelineError> {
        let ids: Vec<String> = handoffs.iter().map(|h| h.opportunity_id.clone()).collect();
        let names = self.store.opportunity_names(&ids).await?;
        for h in &mut handoffs {
            if let Some((account, product)) = names.get(&h.opportunity_id) {
                h.account_name.clone_from(account);
                h.product_name.clone_from(product);
            }
        }
        Ok(handoffs)
    }

    /// What Sales should see of the account when it takes the deal: health,
    /// usage (active subscriptions) and whitespace, each best effort; what
    /// could not be captured is listed in `gaps`.
    pub(crate) async fn handoff_snapshot(&self, current: &opportunity::Model) -> HandoffSnapshot {
        let account_id = current.account_id.as_str();
        let (health, subscriptions, account, portfolio) = tokio::join!(
            self.health.account_health(account_id),
            self.health.active_subscriptions(account_id),
            self.health.account(account_id),
            self.health.portfolio(),
        );
        let mut snap = HandoffSnapshot::default();
        match health {
            Ok(view) => {
                snap.health = Some(HealthSnapshot::capture(
                    &view,
                    current.source_product_id.as_deref(),
                    self.now(),
                ));
                if view.account_band.is_none() {
                    snap.gaps
                        .push("health score: the account has no score yet".to_owned());
                }
            }
            Err(e) => snap.gaps.push(format!("health score: {e}")),
        }
        match &subscriptions {
            Ok(subs) => {
                snap.usage = subs.iter().map(UsageLine::of).collect();
            }
            Err(e) => snap.gaps.push(format!("usage: {e}")),
        }
        match (&subscriptions, account, portfolio) {
            (Ok(subs), Ok(account), Ok(portfolio)) => {
                snap.whitespace = whitespace(&portfolio, &owned_products(subs), account.segment)
                    .iter()
                    .map(WhitespaceLine::of)
                    .collect();
            }
            (_, Err(e), _) | (_, _, Err(e)) => snap.gaps.push(format!("whitespace: {e}")),
            (Err(_), _, _) => snap
                .gaps
                .push("whitespace: owned products unknown (see usage)".to_owned()),
        }
        snap
    }
}
