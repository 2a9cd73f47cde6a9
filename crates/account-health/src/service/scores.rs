//! Scorecards and health: UpsertScorecard, GetScorecard, ListScorecards, GetAccountHealth, ListAccountHealth, GetHealthHistory, OverrideHealth.

use contracts::page;
use contracts::pb::common::v1 as common;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::ProductId;

use super::{invalid, named, named_health, offset_of, page_start, require_account, scorecard_id};
use crate::convert::{account_health_to_pb, history_to_pb, score_to_pb};
use crate::entity::health_override;
use crate::error::HealthError;
use crate::model::optional_account_id;
use crate::model::scorecard::Scorecard;
use crate::store::ScoreView;
use crate::store::Store;

pub(crate) async fn upsert_scorecard(
    store: &Store,
    principal: String,
    req: &pb::UpsertScorecardRequest,
) -> Result<pb::UpsertScorecardResponse, HealthError> {
    let wire_card = req
        .scorecard
        .as_ref()
        .ok_or_else(|| invalid("scorecard", "is required"))?;
    let card = Scorecard::from_pb("scorecard", wire_card).map_err(HealthError::from)?;
    let stored = store.add_scorecard(&card, &principal).await?;
    Ok(pb::UpsertScorecardResponse {
        scorecard: Some(stored.to_pb()),
    })
}

pub(crate) async fn get_scorecard(
    store: &Store,
    req: &pb::GetScorecardRequest,
) -> Result<pb::GetScorecardResponse, HealthError> {
    let scorecard_id = scorecard_id("scorecard_id", &req.scorecard_id)?;
    if req.version < 0 {
        return Err(invalid(
            "version",
            "must be 0 (the latest) or a version number",
        ));
    }
    let (card, in_force) = store.scorecard(&scorecard_id, req.version).await?;
    Ok(pb::GetScorecardResponse {
        scorecard: Some(card.to_pb()),
        in_force,
    })
}

pub(crate) async fn list_scorecards(
    store: &Store,
    req: &pb::ListScorecardsRequest,
) -> Result<pb::ListScorecardsResponse, HealthError> {
    let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
    let scorecard_id = scorecard_id("scorecard_id", &req.scorecard_id)?;
    let filter = page::fingerprint(&[&scorecard_id]);
    let before = page_start(&req.page_token, filter)?
        .map(|v| {
            v.parse::<i32>()
                .map_err(|_| invalid("page_token", "is not a token this list gave out"))
        })
        .transpose()?;
    let (mut cards, in_force_version) = store
        .scorecard_versions(&scorecard_id, before, limit + 1)
        .await?;
    let next_page_token = page::next_page(&mut cards, limit, filter, |c| c.version.to_string());
    Ok(pb::ListScorecardsResponse {
        scorecards: cards.iter().map(Scorecard::to_pb).collect(),
        next_page_token,
        in_force_version,
    })
}

pub(crate) async fn get_account_health(
    store: &Store,
    req: &pb::GetAccountHealthRequest,
) -> Result<pb::GetAccountHealthResponse, HealthError> {
    let raw = &req.account_id;
    let id = optional_account_id("account_id", raw)
        .map_err(HealthError::from)?
        .ok_or_else(|| invalid("account_id", "is required"))?;
    let cache = &store.reads().health;
    if let Some(answer) = cache.get(&id, storage::now()) {
        return Ok(answer);
    }
    let ticket = cache.ticket();
    let view = store
        .checked_account_health(id)
        .await?
        .ok_or_else(|| HealthError::AccountNotFound(id.to_string()))?;
    let mut health = account_health_to_pb(&view);
    named_health(&view.names, &mut health);
    let answer = pb::GetAccountHealthResponse {
        health: Some(health),
    };
    cache.fill(ticket, id, answer.clone(), view.changes_at);
    Ok(answer)
}

pub(crate) async fn list_account_health(
    store: &Store,
    req: &pb::ListAccountHealthRequest,
) -> Result<pb::ListAccountHealthResponse, HealthError> {
    let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
    wire::filter_values("bands", &req.bands).map_err(HealthError::from)?;
    let mut bands = Vec::new();
    for (i, b) in req.bands.iter().enumerate() {
        let field = format!("bands[{i}]");
        wire::known_enum::<common::HealthBand>(&field, *b).map_err(HealthError::from)?;
        bands.push(wire::band_from_pb(*b).ok_or_else(|| invalid(&field, "is not a band"))?);
    }
    let descending = match wire::known_enum::<pb::HealthSortOrder>("sort", req.sort)
        .map_err(HealthError::from)?
    {
        pb::HealthSortOrder::ScoreDescending => true,
        pb::HealthSortOrder::Unspecified | pb::HealthSortOrder::ScoreAscending => false,
    };
    let owner = wire::optional_text("owner_csm", &req.owner_csm, wire::MAX_NAME_LEN)
        .map_err(HealthError::from)?;
    let filter = page::fingerprint(&[
        &format!("{:?}", req.bands),
        &req.sort.to_string(),
        &req.owner_csm,
    ]);
    let offset = offset_of(&req.page_token, filter)?;
    let mut rows = store
        .list_account_health(&bands, descending, owner.as_deref(), offset, limit + 1)
        .await?;
    let card = store.active_scorecard().await?;
    let next_page_token = page::next_offset_page(&mut rows, limit, filter, offset);
    let mut scores: Vec<pb::HealthScore> = rows
        .into_iter()
        .map(|row| {
            score_to_pb(
                &ScoreView {
                    row,
                    previous_e2: None,
                    month_ago_e2: None,
                    override_: None,
                },
                &card.bands,
            )
        })
        .collect();
    named(store, &mut scores).await?;
    Ok(pb::ListAccountHealthResponse {
        scores,
        next_page_token,
    })
}

pub(crate) async fn get_health_history(
    store: &Store,
    req: &pb::GetHealthHistoryRequest,
) -> Result<pb::GetHealthHistoryResponse, HealthError> {
    let (account_id, _) = require_account(store, "account_id", &req.account_id).await?;
    let product_id = if req.product_id.is_empty() {
        None
    } else {
        Some(ProductId::parse(&req.product_id).map_err(|e| invalid("product_id", e))?)
    };
    let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
    let start = wire::optional_instant("start_time", req.start_time.as_ref())?;
    let end = wire::optional_instant("end_time", req.end_time.as_ref())?;
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(invalid("end_time", "must be after start_time"));
    }
    let filter = page::fingerprint(&[
        &req.account_id,
        &req.product_id,
        &format!("{start:?}{end:?}"),
    ]);
    let offset = offset_of(&req.page_token, filter)?;
    let mut rows = store
        .health_history(account_id, product_id, (start, end), offset, limit + 1)
        .await?;
    let card = store.active_scorecard().await?;
    let next_page_token = page::next_offset_page(&mut rows, limit, filter, offset);
    let mut points: Vec<pb::HealthScore> = rows
        .into_iter()
        .map(|r| history_to_pb(r, &card.bands))
        .collect();
    named(store, &mut points).await?;
    Ok(pb::GetHealthHistoryResponse {
        points,
        next_page_token,
    })
}

pub(crate) async fn override_health(
    store: &Store,
    principal: String,
    req: &pb::OverrideHealthRequest,
) -> Result<pb::OverrideHealthResponse, HealthError> {
    let (account_id, account) = require_account(store, "account_id", &req.account_id).await?;
    // Stored in its canonical spelling: an id may arrive upper-case or unhyphenated.
    let mut product_id = String::new();
    if !req.product_id.is_empty() {
        let product = ProductId::parse(&req.product_id).map_err(|e| invalid("product_id", e))?;
        if store.product(product).await?.is_none() {
            return Err(invalid(
                "product_id",
                format!("no product has id {product}"),
            ));
        }
        product_id = product.to_string();
    }
    if !(0..=100).contains(&req.score) {
        return Err(invalid("score", "must be 0-100"));
    }
    let reason =
        wire::text("reason", &req.reason, wire::MAX_NOTE_LEN).map_err(HealthError::from)?;
    let now = storage::now();
    let expires_at = wire::optional_instant("expire_time", req.expire_time.as_ref())?;
    if expires_at.is_some_and(|t| t <= now) {
        return Err(invalid("expire_time", "must be in the future"));
    }
    store
        .override_health(health_override::Model {
            id: domain::EventId::new().to_string(),
            account_id: account.id.clone(),
            product_id,
            score: req.score,
            reason,
            principal,
            created_at: now,
            expires_at,
        })
        .await?;
    let view = store.account_health(account_id).await?;
    Ok(pb::OverrideHealthResponse {
        health: Some(account_health_to_pb(&view)),
    })
}
