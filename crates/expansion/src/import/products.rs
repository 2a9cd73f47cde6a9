//! Products → `UpsertProduct`, keyed by name (products carry no CRM id).
//! Adjacencies and wallet estimates, which a CRM export doesn't have, are
//! kept as stored.

use contracts::pb::health::v1 as pb;
use rust_decimal::Decimal;

use super::client::{Refusal, refusal};
use super::mapping::Kind;
use super::report::{Report, Row, RowError};
use super::{Cells, Ctx, Importer, values};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    pub name: String,
    pub family: Option<String>,
    pub tiers: Option<Vec<String>>,
    pub fits_segments: Option<Vec<i32>>,
    pub margin_percent: Option<String>,
}

pub fn parse(cells: &Cells<'_>) -> Result<ProductRow, RowError> {
    let fits_segments = match cells.get("fits_segments") {
        None => None,
        Some(text) => Some(
            values::list(text)
                .iter()
                .map(|s| values::segment(s).map(|s| s as i32))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| RowError::field("fits_segments", m))?,
        ),
    };
    let margin_percent = match cells.get("margin_percent") {
        None => None,
        Some("") => Some(String::new()),
        Some(text) => Some(
            values::decimal(text)
                .map_err(|m| RowError::field("margin_percent", m))?
                .to_owned(),
        ),
    };
    Ok(ProductRow {
        name: cells.required("name")?.to_owned(),
        family: cells.get("family").map(str::to_owned),
        tiers: cells.get("tiers").map(values::list),
        fits_segments,
        margin_percent,
    })
}

fn wanted(row: &ProductRow, existing: Option<&pb::Product>) -> pb::Product {
    let base = existing.cloned().unwrap_or_default();
    pb::Product {
        product_id: base.product_id,
        name: row.name.clone(),
        family: row.family.clone().unwrap_or(base.family),
        tiers: row.tiers.clone().unwrap_or(base.tiers),
        adjacencies: base.adjacencies,
        fits_segments: row.fits_segments.clone().unwrap_or(base.fits_segments),
        wallet_estimates: base.wallet_estimates,
        margin_percent: row.margin_percent.clone().unwrap_or(base.margin_percent),
        audit: None,
    }
}

fn same_number(a: &str, b: &str) -> bool {
    match (a.parse::<Decimal>(), b.parse::<Decimal>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn unchanged(stored: &pb::Product, wanted: &pb::Product) -> bool {
    stored.family == wanted.family
        && stored.tiers == wanted.tiers
        && stored.fits_segments == wanted.fits_segments
        && same_number(&stored.margin_percent, &wanted.margin_percent)
}

#[derive(Default)]
pub struct Products;

impl Importer for Products {
    async fn row(&mut self, ctx: &mut Ctx, row: Row, out: &mut Report) -> anyhow::Result<()> {
        let product = match parse(&Cells::new(out.columns(), &row.record)) {
            Ok(product) => product,
            Err(error) => return out.reject(&row, error),
        };
        let existing = ctx
            .lookup
            .products()
            .await?
            .iter()
            .find(|p| p.name == product.name)
            .cloned();
        let wanted = wanted(&product, existing.as_ref());
        if existing.as_ref().is_some_and(|p| unchanged(p, &wanted)) {
            out.unchanged(1);
            return Ok(());
        }
        if ctx.dry_run {
            if existing.is_some() {
                out.updated();
            } else {
                out.created(1);
                // A later row of the same name is then an update.
                ctx.lookup.products().await?.push(wanted);
            }
            return Ok(());
        }
        let reply = ctx
            .lookup
            .health
            .upsert_product(pb::UpsertProductRequest {
                request_id: String::new(),
                product: Some(wanted),
            })
            .await;
        match reply {
            Ok(reply) => {
                let reply = reply.into_inner();
                if reply.created {
                    out.created(1);
                } else {
                    out.updated();
                }
                if let Some(stored) = reply.product {
                    let products = ctx.lookup.products().await?;
                    products.retain(|p| p.product_id != stored.product_id);
                    products.push(stored);
                }
                Ok(())
            }
            Err(status) => match refusal(Kind::Products, status) {
                Refusal::Row { error, .. } => out.reject(&row, error),
                Refusal::Fatal(err) => Err(err),
            },
        }
    }

    async fn finish(&mut self, _ctx: &mut Ctx, _out: &mut Report) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::mapping::Columns;
    use super::*;

    #[test]
    fn lists_and_margins() {
        let headers: Vec<String> = ["name", "tiers", "fits_segments", "margin_percent"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let columns = Columns::resolve(Kind::Products, &headers, &[]).unwrap();
        let record =
            csv::StringRecord::from(vec!["Analytics", "STARTER;PRO", "SMB|Enterprise", "72.5"]);
        let row = parse(&Cells::new(&columns, &record)).unwrap();
        assert_eq!(
            row.tiers,
            Some(vec!["STARTER".to_owned(), "PRO".to_owned()])
        );
        assert_eq!(row.fits_segments, Some(vec![1, 3]));
        let stored = pb::Product {
            name: "Analytics".into(),
            tiers: vec!["STARTER".into(), "PRO".into()],
            fits_segments: vec![1, 3],
            margin_percent: "72.50".into(),
            ..Default::default()
        };
        assert!(unchanged(&stored, &wanted(&row, Some(&stored))));
        let record = csv::StringRecord::from(vec!["Analytics", "", "Huge", "1"]);
        let err = parse(&Cells::new(&columns, &record)).unwrap_err();
        assert_eq!(err.field, Some("fits_segments"));
    }
}
