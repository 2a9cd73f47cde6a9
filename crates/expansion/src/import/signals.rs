//! Signals → `RecordSignals`, in batches. The server deduplicates by
//! (source, external id), so a row imported twice is a duplicate; a row
//! without an external id gets one derived from its content. A batch the
//! server refuses names its bad signal: that row is rejected and the batch
//! sent again without it.

use contracts::pb::health::v1 as pb;

use super::client::{Refusal, refusal};
use super::mapping::Kind;
use super::report::{Report, Row, RowError};
use super::{Cells, Ctx, Importer, values};

#[derive(Debug, Clone, PartialEq)]
pub struct SignalRow {
    pub account: String,
    pub product: Option<String>,
    pub kind: pb::SignalKind,
    pub value: String,
    pub limit: String,
    pub occur_time: Option<prost_types::Timestamp>,
    pub source: String,
    pub external_id: String,
    pub detail: String,
}

pub fn parse(
    cells: &Cells<'_>,
    system: &str,
    date_format: &str,
    time_format: Option<&str>,
) -> Result<SignalRow, RowError> {
    let account = cells.required("account_external_id")?.to_owned();
    let kind =
        values::signal_kind(cells.required("kind")?).map_err(|m| RowError::field("kind", m))?;
    let number = |field: &'static str| -> Result<String, RowError> {
        match cells.optional(field) {
            None => Ok(String::new()),
            Some(text) => values::decimal(text)
                .map(str::to_owned)
                .map_err(|m| RowError::field(field, m)),
        }
    };
    let value = number("value")?;
    let limit = number("limit")?;
    let occur_text = cells.optional("occur_time").unwrap_or_default();
    let occur_time = match cells.optional("occur_time") {
        None => None,
        Some(text) => Some(contracts::wire::timestamp(
            values::timestamp(text, date_format, time_format)
                .map_err(|m| RowError::field("occur_time", m))?,
        )),
    };
    let product = cells.optional("product").map(str::to_owned);
    let detail = cells.optional("detail").unwrap_or_default().to_owned();
    let external_id = match cells.optional("external_id") {
        Some(id) => id.to_owned(),
        None => values::content_id(&[
            &account,
            product.as_deref().unwrap_or_default(),
            kind.as_str_name(),
            &value,
            &limit,
            occur_text,
            &detail,
        ]),
    };
    Ok(SignalRow {
        account,
        product,
        kind,
        value,
        limit,
        occur_time,
        source: cells.optional("source").unwrap_or(system).to_owned(),
        external_id,
        detail,
    })
}

/// Rows parsed and resolved, waiting to be sent as one batch.
#[derive(Default)]
pub struct Signals {
    pending: Vec<(Row, pb::Signal)>,
}

impl Signals {
    /// Sends the pending batch; a refused signal's row is rejected and the
    /// rest sent again, until the batch lands.
    async fn flush(&mut self, ctx: &mut Ctx, out: &mut Report) -> anyhow::Result<()> {
        if ctx.dry_run {
            // The server's deduplication is not asked: every signal counts as new.
            out.created(u64::try_from(self.pending.len()).unwrap_or(0));
            self.pending.clear();
            return Ok(());
        }
        while !self.pending.is_empty() {
            let signals: Vec<pb::Signal> = self.pending.iter().map(|(_, s)| s.clone()).collect();
            let reply = ctx
                .lookup
                .health
                .record_signals(pb::RecordSignalsRequest {
                    request_id: String::new(),
                    signals,
                })
                .await;
            match reply {
                Ok(reply) => {
                    let reply = reply.into_inner();
                    out.created(u64::try_from(reply.accepted).unwrap_or(0));
                    out.unchanged(u64::try_from(reply.duplicates).unwrap_or(0));
                    self.pending.clear();
                }
                Err(status) => match refusal(Kind::Signals, status) {
                    Refusal::Row {
                        index: Some(i),
                        error,
                    } if i < self.pending.len() => {
                        let (row, _) = self.pending.remove(i);
                        out.reject(&row, error)?;
                    }
                    Refusal::Row { error, .. } => {
                        // The batch as a whole: every row in it shares the reason.
                        for (row, _) in std::mem::take(&mut self.pending) {
                            out.reject(&row, error.clone())?;
                        }
                    }
                    Refusal::Fatal(err) => return Err(err),
                },
            }
        }
        Ok(())
    }
}

impl Importer for Signals {
    async fn row(&mut self, ctx: &mut Ctx, row: Row, out: &mut Report) -> anyhow::Result<()> {
        let parsed = parse(
            &Cells::new(out.columns(), &row.record),
            &ctx.lookup.system,
            &ctx.date_format,
            ctx.time_format.as_deref(),
        );
        let signal = match parsed {
            Ok(signal) => signal,
            Err(error) => return out.reject(&row, error),
        };
        let Some(account) = ctx.lookup.account(&signal.account).await? else {
            let message = format!(
                "no account has {} id {:?}; import the accounts first",
                ctx.lookup.system, signal.account
            );
            return out.reject(&row, RowError::field("account_external_id", message));
        };
        let product_id = match &signal.product {
            None => String::new(),
            Some(product) => match ctx.lookup.product_id(product).await? {
                Some(id) => id,
                None => {
                    let message = format!("no product is named {product:?}");
                    return out.reject(&row, RowError::field("product", message));
                }
            },
        };
        self.pending.push((
            row,
            pb::Signal {
                account_id: account.account_id,
                product_id,
                kind: signal.kind as i32,
                value: signal.value,
                limit: signal.limit,
                occur_time: signal.occur_time,
                source: signal.source,
                external_id: signal.external_id,
                detail: signal.detail,
            },
        ));
        if self.pending.len() >= ctx.batch {
            self.flush(ctx, out).await?;
        }
        Ok(())
    }

    async fn finish(&mut self, ctx: &mut Ctx, out: &mut Report) -> anyhow::Result<()> {
        self.flush(ctx, out).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::mapping::Columns;
    use super::*;

    fn parse_row(headers: &[&str], cells: &[&str]) -> Result<SignalRow, RowError> {
        let headers: Vec<String> = headers.iter().map(|s| (*s).to_owned()).collect();
        let columns = Columns::resolve(Kind::Signals, &headers, &[]).unwrap();
        let record = csv::StringRecord::from(cells.to_vec());
        parse(&Cells::new(&columns, &record), "hubspot", "%Y-%m-%d", None)
    }

    #[test]
    fn a_row_becomes_a_signal() {
        let s = parse_row(
            &[
                "account_external_id",
                "kind",
                "value",
                "limit",
                "occur_time",
                "external_id",
            ],
            &["001A", "usage", "85.5", "100", "2026-03-01", "U-1"],
        )
        .unwrap();
        assert_eq!(s.kind, pb::SignalKind::Usage);
        assert_eq!((s.value.as_str(), s.limit.as_str()), ("85.5", "100"));
        assert_eq!(s.occur_time.unwrap().seconds, 1_772_323_200);
        assert_eq!(
            (s.source.as_str(), s.external_id.as_str()),
            ("hubspot", "U-1")
        );
    }

    #[test]
    fn rows_without_an_id_get_one_from_their_content() {
        let headers = ["account_external_id", "kind", "value", "occur_time"];
        let a = parse_row(&headers, &["001A", "NPS", "9", "2026-03-01"]).unwrap();
        let again = parse_row(&headers, &["001A", "NPS", "9", "2026-03-01"]).unwrap();
        let other = parse_row(&headers, &["001A", "NPS", "8", "2026-03-01"]).unwrap();
        assert_eq!(a.external_id, again.external_id);
        assert_ne!(a.external_id, other.external_id);
    }

    #[test]
    fn bad_cells_name_their_field() {
        let headers = ["account_external_id", "kind", "value", "occur_time"];
        let field = |cells: &[&str]| parse_row(&headers, cells).unwrap_err().field;
        assert_eq!(field(&["001A", "page view", "1", ""]), Some("kind"));
        assert_eq!(field(&["001A", "LOGIN", "1,000", ""]), Some("value"));
        assert_eq!(
            field(&["001A", "LOGIN", "1", "last week"]),
            Some("occur_time")
        );
        assert_eq!(field(&["", "LOGIN", "1", ""]), Some("account_external_id"));
    }
}
