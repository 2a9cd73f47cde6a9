//! The product portfolio: products, their tiers, adjacency to other
//! products, the segments they fit and the wallet each segment spends.

use contracts::ApiError;
use contracts::pb::common::v1 as common;
use contracts::pb::health::v1 as pb;
use contracts::wire;
use domain::{Currency, Money, Percent, ProductId, Segment};
use serde::{Deserialize, Serialize};

const MAX_TIERS: usize = 20;
const MAX_LINKS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjacencyLink {
    pub product_id: String,
    /// ADJACENT, COMPLEMENTARY or PLATFORM.
    pub adjacency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletEstimate {
    pub segment: String,
    pub currency: String,
    pub minor: i64,
}

/// A validated product upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductInput {
    /// Update this product (it must exist); `None` creates one.
    pub id: Option<ProductId>,
    pub name: String,
    pub family: Option<String>,
    pub tiers: Vec<String>,
    pub adjacencies: Vec<AdjacencyLink>,
    pub fits_segments: Vec<String>,
    pub wallet_estimates: Vec<WalletEstimate>,
    pub margin: Option<Percent>,
}

impl ProductInput {
    pub fn from_request(req: &pb::UpsertProductRequest) -> Result<Self, ApiError> {
        let p = req
            .product
            .as_ref()
            .ok_or_else(|| ApiError::invalid(F, "is required"))?;
        let id = optional_product_id(&p.product_id)?;
        let tiers = tiers_from_pb(&p.tiers)?;
        if p.adjacencies.len() > MAX_LINKS || p.wallet_estimates.len() > MAX_LINKS {
            return Err(ApiError::invalid(
                f("adjacencies"),
                format!("at most {MAX_LINKS} entries"),
            ));
        }
        let adjacencies = adjacencies_from_pb(&p.adjacencies, id)?;
        let fits_segments = fits_segments_from_pb(&p.fits_segments)?;
        let wallet_estimates = wallet_estimates_from_pb(&p.wallet_estimates)?;
        let margin = margin_from_pb(&p.margin_percent)?;
        Ok(Self {
            id,
            name: wire::text(&f("name"), &p.name, wire::MAX_NAME_LEN)?,
            family: wire::optional_text(&f("family"), &p.family, wire::MAX_NAME_LEN)?,
            tiers,
            adjacencies,
            fits_segments,
            wallet_estimates,
            margin,
        })
    }
}

/// The request field the product is validated under.
const F: &str = "product";

fn f(name: &str) -> String {
    format!("{F}.{name}")
}

/// Empty: a new product; otherwise the product to update.
fn optional_product_id(product_id: &str) -> Result<Option<ProductId>, ApiError> {
    if product_id.is_empty() {
        return Ok(None);
    }
    ProductId::parse(product_id)
        .map(Some)
        .map_err(|e| ApiError::invalid(f("product_id"), e))
}

/// At most [`MAX_TIERS`] tier names, each once.
fn tiers_from_pb(wire_tiers: &[String]) -> Result<Vec<String>, ApiError> {
    if wire_tiers.len() > MAX_TIERS {
        return Err(ApiError::invalid(
            f("tiers"),
            format!("at most {MAX_TIERS} tiers"),
        ));
    }
    let mut tiers: Vec<String> = Vec::with_capacity(wire_tiers.len());
    for (i, tier) in wire_tiers.iter().enumerate() {
        let tier = wire::text(&format!("{F}.tiers[{i}]"), tier, 64)?;
        if tiers.contains(&tier) {
            return Err(ApiError::invalid(
                format!("{F}.tiers[{i}]"),
                "appears twice",
            ));
        }
        tiers.push(tier);
    }
    Ok(tiers)
}

/// Links to other products (never to `id` itself), each with its kind.
fn adjacencies_from_pb(
    wire_links: &[pb::ProductAdjacency],
    id: Option<ProductId>,
) -> Result<Vec<AdjacencyLink>, ApiError> {
    let mut adjacencies = Vec::with_capacity(wire_links.len());
    for (i, a) in wire_links.iter().enumerate() {
        let at = |name: &str| format!("{F}.adjacencies[{i}].{name}");
        let other =
            ProductId::parse(&a.product_id).map_err(|e| ApiError::invalid(at("product_id"), e))?;
        if Some(other) == id {
            return Err(ApiError::invalid(
                at("product_id"),
                "a product is not adjacent to itself",
            ));
        }
        adjacencies.push(AdjacencyLink {
            product_id: other.to_string(),
            adjacency: adjacency_from_pb(&at("adjacency"), a.adjacency)?.to_owned(),
        });
    }
    Ok(adjacencies)
}

fn adjacency_from_pb(field: &str, adjacency: i32) -> Result<&'static str, ApiError> {
    Ok(match wire::known_enum::<pb::Adjacency>(field, adjacency)? {
        pb::Adjacency::Unspecified => {
            return Err(ApiError::invalid(field, "is required"));
        }
        pb::Adjacency::Adjacent => "ADJACENT",
        pb::Adjacency::Complementary => "COMPLEMENTARY",
        pb::Adjacency::Platform => "PLATFORM",
    })
}

/// The segments the product fits, each kept once in the order given.
fn fits_segments_from_pb(wire_segments: &[i32]) -> Result<Vec<String>, ApiError> {
    let mut fits_segments = Vec::new();
    for (i, s) in wire_segments.iter().enumerate() {
        let at = format!("{F}.fits_segments[{i}]");
        let segment =
            wire::segment(&at, *s)?.ok_or_else(|| ApiError::invalid(&at, "is required"))?;
        if !fits_segments.contains(&segment.as_str().to_owned()) {
            fits_segments.push(segment.as_str().to_owned());
        }
    }
    Ok(fits_segments)
}

/// One non-negative annual wallet per segment.
fn wallet_estimates_from_pb(
    wire_wallets: &[pb::SegmentWallet],
) -> Result<Vec<WalletEstimate>, ApiError> {
    let mut wallet_estimates: Vec<WalletEstimate> = Vec::new();
    for (i, w) in wire_wallets.iter().enumerate() {
        let at = |name: &str| format!("{F}.wallet_estimates[{i}].{name}");
        let segment = wire::segment(&at("segment"), w.segment)?
            .ok_or_else(|| ApiError::invalid(at("segment"), "is required"))?;
        let money = wire::money(&at("annual_wallet"), w.annual_wallet.as_ref())?;
        if money.is_negative() {
            return Err(ApiError::invalid(
                at("annual_wallet.amount"),
                "must not be negative",
            ));
        }
        if wallet_estimates
            .iter()
            .any(|x| x.segment == segment.as_str())
        {
            return Err(ApiError::invalid(at("segment"), "appears twice"));
        }
        wallet_estimates.push(WalletEstimate {
            segment: segment.as_str().to_owned(),
            currency: money.currency().code().to_owned(),
            minor: money.minor(),
        });
    }
    Ok(wallet_estimates)
}

/// An optional margin, 0–100 %.
fn margin_from_pb(margin_percent: &str) -> Result<Option<Percent>, ApiError> {
    wire::optional_percent(&f("margin_percent"), margin_percent)?
        .map(|m| m.ensure_between(Percent::ZERO, Percent::ONE_HUNDRED))
        .transpose()
        .map_err(|e| ApiError::invalid(f("margin_percent"), e))
}

/// Wire form of stored adjacency / segment / wallet lists.
pub fn adjacencies_to_pb(links: &[AdjacencyLink]) -> Vec<pb::ProductAdjacency> {
    links
        .iter()
        .map(|l| pb::ProductAdjacency {
            product_id: l.product_id.clone(),
            adjacency: pb::Adjacency::from_str_name(&format!("ADJACENCY_{}", l.adjacency))
                .unwrap_or_default() as i32,
        })
        .collect()
}

pub fn segments_to_pb(segments: &[String]) -> Vec<i32> {
    segments
        .iter()
        .filter_map(|s| s.parse::<Segment>().ok())
        .map(|s| wire::segment_to_pb(s) as i32)
        .collect()
}

pub fn wallet_to_pb(wallet: &[WalletEstimate]) -> Vec<pb::SegmentWallet> {
    wallet
        .iter()
        .filter_map(|w| {
            let segment = w.segment.parse::<Segment>().ok()?;
            let currency = Currency::parse(&w.currency).ok()?;
            Some(pb::SegmentWallet {
                segment: wire::segment_to_pb(segment) as i32,
                annual_wallet: Some(wire::money_to_pb(&Money::from_minor(currency, w.minor))),
            })
        })
        .collect()
}

/// Whether a segment enum on the wire names one in `segments`.
pub fn fits(segments: &[String], segment: common::Segment) -> bool {
    segments
        .iter()
        .any(|s| format!("SEGMENT_{s}") == segment.as_str_name())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(edit: impl FnOnce(&mut pb::Product)) -> pb::UpsertProductRequest {
        let mut product = pb::Product {
            name: "Analytics".into(),
            tiers: vec!["STARTER".into(), "PROFESSIONAL".into(), "ENTERPRISE".into()],
            fits_segments: vec![common::Segment::Enterprise as i32],
            wallet_estimates: vec![pb::SegmentWallet {
                segment: common::Segment::Enterprise as i32,
                annual_wallet: Some(common::Money {
                    currency_code: "USD".into(),
                    amount: "120000".into(),
                }),
            }],
            margin_percent: "72.5".into(),
            ..Default::default()
        };
        edit(&mut product);
        pb::UpsertProductRequest {
            request_id: String::new(),
            product: Some(product),
        }
    }

    fn field_of(err: ApiError) -> String {
        err.field()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not a field violation: {err:?}"))
    }

    #[test]
    fn valid_product() {
        let p = ProductInput::from_request(&request(|_| {})).unwrap();
        assert_eq!(p.tiers.len(), 3);
        assert_eq!(p.wallet_estimates[0].minor, 12_000_000);
        assert!(fits(&p.fits_segments, common::Segment::Enterprise));
        assert!(!fits(&p.fits_segments, common::Segment::Smb));
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: Vec<(pb::UpsertProductRequest, &str)> = vec![
            (request(|p| p.name.clear()), "product.name"),
            (
                request(|p| p.tiers.push("STARTER".into())),
                "product.tiers[3]",
            ),
            (
                request(|p| p.margin_percent = "101".into()),
                "product.margin_percent",
            ),
            (
                request(|p| p.fits_segments.push(9)),
                "product.fits_segments[1]",
            ),
            (
                request(|p| {
                    p.wallet_estimates[0].annual_wallet.as_mut().unwrap().amount = "-1".into()
                }),
                "product.wallet_estimates[0].annual_wallet.amount",
            ),
            (
                request(|p| {
                    p.adjacencies.push(pb::ProductAdjacency {
                        product_id: "nope".into(),
                        adjacency: pb::Adjacency::Adjacent as i32,
                    })
                }),
                "product.adjacencies[0].product_id",
            ),
        ];
        for (req, field) in cases {
            assert_eq!(
                field_of(ProductInput::from_request(&req).unwrap_err()),
                field
            );
        }
    }
}
