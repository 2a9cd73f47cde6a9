//! Accounts and products: UpsertAccount, GetAccount, ListAccounts, UpsertProduct, GetProduct, ListProducts.

use contracts::page;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::ProductId;

use super::{invalid, kept, page_start};
use crate::convert::{account_to_pb, product_to_pb};
use crate::error::HealthError;
use crate::model::AccountInput;
use crate::model::optional_account_id;
use crate::model::optional_external_ref;
use crate::model::product::ProductInput;
use crate::store::Store;

pub(crate) async fn upsert_account(
    store: &Store,
    principal: String,
    req: &pb::UpsertAccountRequest,
) -> Result<pb::UpsertAccountResponse, HealthError> {
    let input =
        AccountInput::from_request(req, storage::now().date_naive()).map_err(HealthError::from)?;
    let (model, created) = store.upsert_account(&input, &principal).await?;
    tracing::info!(account_id = %model.id, created, "account upserted");
    Ok(pb::UpsertAccountResponse {
        account: Some(account_to_pb(model)),
        created,
    })
}

pub(crate) async fn get_account(
    store: &Store,
    req: &pb::GetAccountRequest,
) -> Result<pb::GetAccountResponse, HealthError> {
    kept(&store.reads().accounts, req, None, read_account(store, req)).await
}

async fn read_account(
    store: &Store,
    req: &pb::GetAccountRequest,
) -> Result<pb::GetAccountResponse, HealthError> {
    let id = optional_account_id("account_id", &req.account_id).map_err(HealthError::from)?;
    let external = optional_external_ref("external_ref", req.external_ref.as_ref())
        .map_err(HealthError::from)?;
    let (found, name) = match (id, external) {
        (Some(id), _) => (store.account(id).await?, id.to_string()),
        (None, Some(ext)) => (store.account_by_external(&ext).await?, ext.to_string()),
        (None, None) => {
            return Err(invalid(
                "account_id",
                "account_id or external_ref is required",
            ));
        }
    };
    let account = found.ok_or(HealthError::AccountNotFound(name))?;
    Ok(pb::GetAccountResponse {
        account: Some(account_to_pb(account)),
    })
}

pub(crate) async fn list_accounts(
    store: &Store,
    req: &pb::ListAccountsRequest,
) -> Result<pb::ListAccountsResponse, HealthError> {
    let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
    let segment = wire::segment("segment", req.segment).map_err(HealthError::from)?;
    let owner = wire::optional_text("owner_csm", &req.owner_csm, wire::MAX_NAME_LEN)
        .map_err(HealthError::from)?;
    let parent = optional_account_id("parent_account_id", &req.parent_account_id)
        .map_err(HealthError::from)?;
    let filter = page::fingerprint(&[
        &req.segment.to_string(),
        &req.owner_csm,
        &req.parent_account_id,
    ]);
    let after = page_start(&req.page_token, filter)?;
    let mut rows = store
        .list_accounts(
            segment.map(|s| s.as_str()),
            owner.as_deref(),
            parent,
            after.as_deref(),
            limit + 1,
        )
        .await?;
    let next_page_token = page::next_page(&mut rows, limit, filter, |a| a.id.clone());
    Ok(pb::ListAccountsResponse {
        accounts: rows.into_iter().map(account_to_pb).collect(),
        next_page_token,
    })
}

pub(crate) async fn upsert_product(
    store: &Store,
    principal: String,
    req: &pb::UpsertProductRequest,
) -> Result<pb::UpsertProductResponse, HealthError> {
    let input = ProductInput::from_request(req).map_err(HealthError::from)?;
    let (model, created) = store.upsert_product(&input, &principal).await?;
    Ok(pb::UpsertProductResponse {
        product: Some(product_to_pb(model)),
        created,
    })
}

pub(crate) async fn list_products(
    store: &Store,
    req: &pb::ListProductsRequest,
) -> Result<pb::ListProductsResponse, HealthError> {
    // Nothing in a product page depends on the day.
    kept(
        &store.reads().products,
        req,
        None,
        read_products(store, req),
    )
    .await
}

async fn read_products(
    store: &Store,
    req: &pb::ListProductsRequest,
) -> Result<pb::ListProductsResponse, HealthError> {
    let limit = page::page_size("page_size", req.page_size).map_err(HealthError::from)?;
    let family = wire::optional_text("family", &req.family, wire::MAX_NAME_LEN)
        .map_err(HealthError::from)?;
    let segment = wire::segment("fits_segment", req.fits_segment).map_err(HealthError::from)?;
    let filter = page::fingerprint(&[&req.family, &req.fits_segment.to_string()]);
    let mut after = page_start(&req.page_token, filter)?;
    // The segment filter reads the stored JSON list; keep paging until the
    // page is full and one more fits (so a token means more products), or
    // the products run out.
    let wanted = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut out = Vec::new();
    loop {
        let rows = store
            .list_products(family.as_deref(), after.as_deref(), limit + 1)
            .await?;
        let exhausted = u64::try_from(rows.len()).unwrap_or(u64::MAX) <= limit;
        after = rows.last().map(|p| p.id.clone());
        for row in rows {
            if out.len() < wanted && fits_segment(&row, segment) {
                out.push(row);
            }
        }
        if exhausted || out.len() >= wanted {
            break;
        }
    }
    let next_page_token = page::next_page(&mut out, limit, filter, |p| p.id.clone());
    Ok(pb::ListProductsResponse {
        products: out.into_iter().map(product_to_pb).collect(),
        next_page_token,
    })
}

pub(crate) async fn get_product(
    store: &Store,
    req: &pb::GetProductRequest,
) -> Result<pb::GetProductResponse, HealthError> {
    let raw = &req.product_id;
    let id = ProductId::parse(raw).map_err(|e| invalid("product_id", e))?;
    let product = store
        .product(id)
        .await?
        .ok_or_else(|| HealthError::ProductNotFound(id.to_string()))?;
    Ok(pb::GetProductResponse {
        product: Some(product_to_pb(product)),
    })
}

/// Whether a product fits `segment` (any product fits no segment): its
/// stored JSON list of segments names it.
fn fits_segment(product: &crate::entity::product::Model, segment: Option<domain::Segment>) -> bool {
    segment.is_none_or(|s| {
        serde_json::from_str::<Vec<String>>(&product.fits_segments)
            .unwrap_or_default()
            .iter()
            .any(|x| x == s.as_str())
    })
}
