//! Accounts → `UpsertAccount`, keyed by the CRM id. A row whose parent
//! account comes later in the file waits until the end of the file.

use contracts::pb::health::v1 as pb;

use super::client::{Refusal, refusal};
use super::mapping::Kind;
use super::report::{Report, Row, RowError};
use super::{Cells, Ctx, Importer, values};

/// An account row, read. `None` means the file has no column for the
/// field: an existing account keeps its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub external_id: String,
    pub name: String,
    pub segment: Option<i32>,
    pub customer_since: Option<String>,
    pub fiscal_year_start_month: Option<i32>,
    pub owner_csm: Option<String>,
    /// The parent's CRM id; empty removes the parent.
    pub parent: Option<String>,
}

pub fn parse(cells: &Cells<'_>, date_format: &str) -> Result<AccountRow, RowError> {
    let segment = match cells.get("segment") {
        None => None,
        Some("") => Some(0),
        Some(text) => {
            Some(values::segment(text).map_err(|m| RowError::field("segment", m))? as i32)
        }
    };
    let customer_since = match cells.get("customer_since") {
        None => None,
        Some("") => Some(String::new()),
        Some(text) => Some(
            values::date(text, date_format)
                .map_err(|m| RowError::field("customer_since", m))?
                .to_string(),
        ),
    };
    let fiscal_year_start_month = match cells.get("fiscal_year_start_month") {
        None => None,
        Some("") => Some(0),
        Some(text) => Some(
            values::integer(text, 1, 12)
                .map_err(|m| RowError::field("fiscal_year_start_month", m))? as i32,
        ),
    };
    Ok(AccountRow {
        external_id: cells.required("external_id")?.to_owned(),
        name: cells.required("name")?.to_owned(),
        segment,
        customer_since,
        fiscal_year_start_month,
        owner_csm: cells.get("owner_csm").map(str::to_owned),
        parent: cells.get("parent_external_id").map(str::to_owned),
    })
}

/// The upsert that makes the stored account look like the row.
fn request(
    row: &AccountRow,
    existing: Option<&pb::Account>,
    parent_id: Option<String>,
    external_ref: pb::ExternalRef,
) -> pb::UpsertAccountRequest {
    let base = existing.cloned().unwrap_or_default();
    pb::UpsertAccountRequest {
        request_id: String::new(),
        account_id: String::new(),
        external_ref: Some(external_ref),
        name: row.name.clone(),
        segment: row.segment.unwrap_or(base.segment),
        customer_since: row.customer_since.clone().unwrap_or(base.customer_since),
        fiscal_year_start_month: row
            .fiscal_year_start_month
            .unwrap_or(base.fiscal_year_start_month),
        owner_csm: row.owner_csm.clone().unwrap_or(base.owner_csm),
        parent_account_id: parent_id.unwrap_or(base.parent_account_id),
    }
}

/// Whether `request` would leave `account` as it is.
fn unchanged(account: &pb::Account, request: &pb::UpsertAccountRequest) -> bool {
    account.name == request.name
        && account.segment == request.segment
        && account.customer_since == request.customer_since
        && account.fiscal_year_start_month == request.fiscal_year_start_month.max(1)
        && account.owner_csm == request.owner_csm
        && account.parent_account_id == request.parent_account_id
}

#[derive(Default)]
pub struct Accounts {
    /// Rows waiting for a parent that may come later in the file.
    waiting: Vec<Row>,
}

impl Accounts {
    async fn handle(
        &mut self,
        ctx: &mut Ctx,
        row: Row,
        out: &mut Report,
        may_wait: bool,
    ) -> anyhow::Result<()> {
        let parsed = parse(&Cells::new(out.columns(), &row.record), &ctx.date_format);
        let account = match parsed {
            Ok(account) => account,
            Err(error) => return out.reject(&row, error),
        };
        let parent_id = match account.parent.as_deref() {
            None => None,
            Some("") => Some(String::new()),
            Some(parent) => match ctx.lookup.account(parent).await? {
                Some(found) => Some(found.account_id),
                None if may_wait => {
                    self.waiting.push(row);
                    return Ok(());
                }
                None => {
                    let message = format!(
                        "no account has {} id {parent:?} (not in this file nor on the server)",
                        ctx.lookup.system
                    );
                    return out.reject(&row, RowError::field("parent_external_id", message));
                }
            },
        };
        let existing = ctx.lookup.account(&account.external_id).await?;
        let external_ref = ctx.lookup.external_ref(&account.external_id);
        let upsert = request(&account, existing.as_ref(), parent_id, external_ref);
        if existing.as_ref().is_some_and(|a| unchanged(a, &upsert)) {
            out.unchanged(1);
            return Ok(());
        }
        if ctx.dry_run {
            if existing.is_some() {
                out.updated();
            } else {
                out.created(1);
                // Later rows may name it as their parent.
                let planned = pb::Account {
                    account_id: format!("dry-run:{}", account.external_id),
                    ..Default::default()
                };
                ctx.lookup.remember_account(&account.external_id, planned);
            }
            return Ok(());
        }
        match ctx.lookup.health.upsert_account(upsert).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                if reply.created {
                    out.created(1);
                } else {
                    out.updated();
                }
                if let Some(stored) = reply.account {
                    ctx.lookup.remember_account(&account.external_id, stored);
                }
                Ok(())
            }
            Err(status) => match refusal(Kind::Accounts, status) {
                Refusal::Row { error, .. } => out.reject(&row, error),
                Refusal::Fatal(err) => Err(err),
            },
        }
    }
}

impl Importer for Accounts {
    async fn row(&mut self, ctx: &mut Ctx, row: Row, out: &mut Report) -> anyhow::Result<()> {
        self.handle(ctx, row, out, true).await
    }

    async fn finish(&mut self, ctx: &mut Ctx, out: &mut Report) -> anyhow::Result<()> {
        // Each pass lands the rows whose parents the previous pass created;
        // when a pass lands none, the parents left are missing.
        loop {
            let waiting = std::mem::take(&mut self.waiting);
            if waiting.is_empty() {
                return Ok(());
            }
            let before = waiting.len();
            for row in waiting {
                self.handle(ctx, row, out, true).await?;
            }
            if self.waiting.len() == before {
                for row in std::mem::take(&mut self.waiting) {
                    self.handle(ctx, row, out, false).await?;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::mapping::Columns;
    use super::*;

    fn parse_row(headers: &[&str], cells: &[&str]) -> Result<AccountRow, RowError> {
        let headers: Vec<String> = headers.iter().map(|s| (*s).to_owned()).collect();
        let columns = Columns::resolve(Kind::Accounts, &headers, &[]).unwrap();
        let record = csv::StringRecord::from(cells.to_vec());
        parse(&Cells::new(&columns, &record), "%m/%d/%Y")
    }

    #[test]
    fn a_row_becomes_an_account() {
        let row = parse_row(
            &[
                "external_id",
                "name",
                "segment",
                "customer_since",
                "fiscal_year_start_month",
            ],
            &["001A", "Acme", "Mid-Market", "01/15/2025", "4"],
        )
        .unwrap();
        assert_eq!(
            row.segment,
            Some(contracts::pb::common::v1::Segment::MidMarket as i32)
        );
        assert_eq!(row.customer_since.as_deref(), Some("2025-01-15"));
        assert_eq!(row.fiscal_year_start_month, Some(4));
        assert_eq!(row.owner_csm, None, "no column: left as stored");
    }

    #[test]
    fn bad_cells_name_their_field() {
        let headers = ["external_id", "name", "segment", "fiscal_year_start_month"];
        let field = |cells: &[&str]| parse_row(&headers, cells).unwrap_err().field;
        assert_eq!(field(&["", "Acme", "", ""]), Some("external_id"));
        assert_eq!(field(&["1", "", "", ""]), Some("name"));
        assert_eq!(field(&["1", "Acme", "Huge", ""]), Some("segment"));
        assert_eq!(
            field(&["1", "Acme", "", "13"]),
            Some("fiscal_year_start_month")
        );
    }

    #[test]
    fn missing_columns_keep_stored_values_and_empty_cells_clear_them() {
        let stored = pb::Account {
            account_id: "a".into(),
            name: "Acme".into(),
            segment: 3,
            customer_since: "2025-01-15".into(),
            fiscal_year_start_month: 4,
            owner_csm: "carla".into(),
            ..Default::default()
        };
        let row = parse_row(&["external_id", "name"], &["001A", "Acme"]).unwrap();
        let upsert = request(&row, Some(&stored), None, pb::ExternalRef::default());
        assert!(unchanged(&stored, &upsert));
        let row = parse_row(&["external_id", "name", "segment"], &["001A", "Acme", ""]).unwrap();
        let upsert = request(&row, Some(&stored), None, pb::ExternalRef::default());
        assert_eq!(upsert.segment, 0);
        assert!(!unchanged(&stored, &upsert));
        let row = parse_row(&["external_id", "name"], &["001A", "Acme Corp"]).unwrap();
        let upsert = request(&row, Some(&stored), None, pb::ExternalRef::default());
        assert!(!unchanged(&stored, &upsert));
        assert_eq!(upsert.owner_csm, "carla");
    }
}
