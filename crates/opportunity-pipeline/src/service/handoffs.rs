//! The CS→Sales handoff: request with a complete package and a snapshot of
//! what CS saw, accept (the AE owns it), reject or withdraw, list.

use contracts::pb::pipeline::v1 as pb;
use contracts::{page, wire};
use domain::{HandoffId, OpportunityId};
use sea_orm::Set;

use super::{event, invalid, opt_text, parse_id};
use crate::api::PipelineService;
use crate::convert::{HandoffSnapshot, UsageLine, WhitespaceLine, handoff_to_pb, parse_row};
use crate::entity::{handoff, opportunity};
use crate::error::PipelineError;
use crate::health::owned_products;
use crate::model::HealthSnapshot;
use crate::model::handoff::{Acceptor, HandoffStatus, acceptor, due_at, handoff_package};
use crate::model::whitespace::whitespace;
use crate::store::{HandoffFilter, HistoryNote, OpportunityWrite, to_json};

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
            statuses.push(name.as_str().to_owned());
        }
        let opportunity_id = if req.opportunity_id.is_empty() {
            None
        } else {
            Some(parse_id("opportunity_id", &req.opportunity_id, OpportunityId::parse)?.to_string())
        };
        let fingerprint = page::fingerprint(&[
            &format!("{statuses:?}"),
            &req.overdue_only.to_string(),
            &req.opportunity_id,
        ]);
        let after = page::decode_token("page_token", &req.page_token, fingerprint)
            .map_err(PipelineError::from)?;
        let now = self.now();
        let mut rows = self
            .store
            .handoffs(&HandoffFilter {
                statuses,
                opportunity_id,
                overdue_at: req.overdue_only.then_some(now),
                after_id: after,
                limit: size + 1,
            })
            .await?;
        let more = rows.len() as u64 > size;
        rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => page::encode_token(&last.id, fingerprint),
            _ => String::new(),
        };
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
            .opportunity(&id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("opportunity", id.to_string()))?;
        let p = parse_row(&current)?;
        Self::ensure_open(&current, p.stage)?;
        // An import's handoff was requested when the CRM says (its SLA runs
        // from then), while the opportunity stood in its current stage.
        let requested_at = super::occur_time(
            req.occur_time.as_ref(),
            self.now(),
            Some(p.stage_entered_at),
        )?;
        if let Some(open) = self.store.open_handoff(&current.id).await? {
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
        let backdated = requested_at;
        let requested_at = requested_at.unwrap_or(now);
        let handoff_id = HandoffId::new().to_string();
        let row = handoff::ActiveModel {
            id: Set(handoff_id.clone()),
            opportunity_id: Set(current.id.clone()),
            status: Set(HandoffStatus::Requested.as_str().to_owned()),
            open_key: Set(Some(current.id.clone())),
            requested_by: Set(principal.clone()),
            package: Set(to_json(&package)?),
            snapshot: Set(to_json(&snapshot)?),
            requested_at: Set(requested_at),
            due_at: Set(due_at(requested_at, self.config.handoff_sla_hours)),
            resolved_at: Set(None),
            resolved_by: Set(None),
            accepted_owner: Set(None),
            accepted_team: Set(None),
            reason: Set(None),
        };
        let mut requested = event(
            "pipeline.handoff.requested",
            &handoff_id,
            serde_json::json!({
                "handoff_id": handoff_id,
                "opportunity_id": current.id,
                "account_id": current.account_id,
                "requested_by": principal,
                "snapshot_gaps": snapshot.gaps,
            }),
        );
        super::with_source_time(Some(&mut requested), backdated);
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
        let handoff_id = parse_id("handoff_id", &req.handoff_id, HandoffId::parse)?.to_string();
        let named = opt_text("owner", &req.owner, wire::MAX_NAME_LEN)?;
        let acceptor = acceptor(&caller, named).map_err(PipelineError::from)?;
        let mut owner_team = opt_text("owner_team", &req.owner_team, wire::MAX_NAME_LEN)?;
        let principal = caller.name.clone();
        let h = self
            .store
            .handoff(&handoff_id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("handoff", handoff_id.clone()))?;
        let current = self.load("opportunity_id", &h.opportunity_id).await?;
        let p = parse_row(&current)?;
        Self::ensure_open(&current, p.stage)?;
        // DELIVERY credit follows the owner: a named owner must be an AE of
        // the people directory (SPEC §6), whose team is the default one.
        if let Acceptor::Named(name) = &acceptor {
            let person = self
                .people
                .person(name)
                .await
                .map_err(|e| PipelineError::PeopleUnavailable(e.to_string()))?;
            match person {
                Some(person) if person.is_ae => {
                    if owner_team.is_none() && !person.team.is_empty() {
                        owner_team = Some(person.team);
                    }
                }
                Some(_) => {
                    return Err(PipelineError::precondition(
                        "OWNER_NOT_AN_AE",
                        name.clone(),
                        format!(
                            "{name} is in the people directory but not as an AE; a handoff \
                             goes to an AE, who becomes the owner credited with DELIVERY"
                        ),
                    ));
                }
                None => {
                    return Err(PipelineError::precondition(
                        "OWNER_NOT_A_KNOWN_AE",
                        name.clone(),
                        format!(
                            "{name} is not in the people directory; add them as an AE \
                             (UpsertPerson, role PERSON_ROLE_AE) or accept with the AE's own key"
                        ),
                    ));
                }
            }
        }
        let owner = acceptor.owner().to_owned();
        // The CSM who asked stays the originator; the AE becomes the owner.
        let originator = current
            .originator
            .clone()
            .unwrap_or_else(|| h.requested_by.clone());
        let changes = opportunity::ActiveModel {
            owner: Set(Some(owner.clone())),
            owner_team: Set(owner_team.clone()),
            originator: Set(Some(originator.clone())),
            ..Default::default()
        };
        let history = vec![HistoryNote {
            field: "owner",
            previous: current.owner.clone(),
            new: Some(owner.clone()),
            reason: Some(format!("handoff {handoff_id} accepted")),
        }];
        let events = vec![
            event(
                "pipeline.handoff.accepted",
                &handoff_id,
                serde_json::json!({
                    "handoff_id": handoff_id,
                    "opportunity_id": current.id,
                    "requested_by": h.requested_by,
                    "owner": owner,
                    "owner_team": owner_team,
                    "originator": originator,
                    "principal": principal,
                }),
            ),
            event(
                "pipeline.opportunity.updated",
                &current.id,
                serde_json::json!({
                    "opportunity_id": current.id,
                    "fields": ["owner", "owner_team", "originator"],
                    "principal": principal,
                }),
            ),
        ];
        let (h, opp) = self
            .store
            .resolve_handoff(
                &handoff_id,
                handoff::ActiveModel {
                    status: Set(HandoffStatus::Accepted.as_str().to_owned()),
                    accepted_owner: Set(Some(owner)),
                    accepted_team: Set(owner_team),
                    ..Default::default()
                },
                Some(OpportunityWrite {
                    id: current.id.clone(),
                    expected_version: current.version,
                    changes,
                    history,
                    events: Vec::new(),
                    occurred_at: None,
                }),
                events,
                &principal,
            )
            .await?;
        let now = self.now();
        Ok(pb::AcceptHandoffResponse {
            handoff: self.named(vec![handoff_to_pb(h, now)?]).await?.pop(),
            opportunity: opp.map(|o| self.to_pb(o)).transpose()?,
        })
    }

    pub(crate) async fn reject_handoff_once(
        &self,
        principal: String,
        req: &pb::RejectHandoffRequest,
    ) -> Result<pb::RejectHandoffResponse, PipelineError> {
        let handoff_id = parse_id("handoff_id", &req.handoff_id, HandoffId::parse)?.to_string();
        let reason = opt_text("reason", &req.reason, wire::MAX_NOTE_LEN)?;
        if !req.withdraw && reason.is_none() {
            return Err(invalid(
                "reason",
                "is required to reject a handoff: tell CS what is missing",
            ));
        }
        let h = self
            .store
            .handoff(&handoff_id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("handoff", handoff_id.clone()))?;
        let (status, event_type) = if req.withdraw {
            (HandoffStatus::Withdrawn, "pipeline.handoff.withdrawn")
        } else {
            (HandoffStatus::Rejected, "pipeline.handoff.rejected")
        };
        // A rejected handoff leaves the opportunity with CS: its owner only
        // ever changes on acceptance.
        let (h, _) = self
            .store
            .resolve_handoff(
                &handoff_id,
                handoff::ActiveModel {
                    status: Set(status.as_str().to_owned()),
                    reason: Set(reason.clone()),
                    ..Default::default()
                },
                None,
                vec![event(
                    event_type,
                    &handoff_id,
                    serde_json::json!({
                        "handoff_id": handoff_id,
                        "opportunity_id": h.opportunity_id,
                        "requested_by": h.requested_by,
                        "reason": reason,
                        "principal": principal,
                    }),
                )],
                &principal,
            )
            .await?;
        Ok(pb::RejectHandoffResponse {
            handoff: self.named(vec![handoff_to_pb(h, self.now())?]).await?.pop(),
        })
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
                snap.usage = subs
                    .iter()
                    .map(|s| UsageLine {
                        subscription_id: s.subscription_id.clone(),
                        product_id: s.product_id.clone(),
                        tier: s.tier.clone(),
                        quantity: s.quantity,
                        quota_limit: s.quota_limit,
                        mrr: s
                            .mrr
                            .map(|m| (m.currency().code().to_owned(), m.to_amount_string())),
                        usage: s.usage.clone(),
                    })
                    .collect();
            }
            Err(e) => snap.gaps.push(format!("usage: {e}")),
        }
        match (&subscriptions, account, portfolio) {
            (Ok(subs), Ok(account), Ok(portfolio)) => {
                snap.whitespace = whitespace(&portfolio, &owned_products(subs), account.segment)
                    .into_iter()
                    .map(|w| WhitespaceLine {
                        product_id: w.product_id,
                        name: w.name,
                        family: w.family,
                        motion: w.motion.map(|m| m.as_str().to_owned()),
                        wallet: w
                            .estimated_annual_wallet
                            .map(|m| (m.currency().code().to_owned(), m.to_amount_string())),
                    })
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
