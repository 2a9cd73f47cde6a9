//! Opportunities → `CreateOpportunity`, then `AdvanceStage` up to the CRM's
//! stage: a CRM's open pipeline brought in. Keyed by the CRM's opportunity
//! id through the request id (`import:<system>:Opportunity/<id>`, kept for
//! good), so a re-run finds the opportunity it created and only moves it on
//! to a later stage. Closed deals are not imported (their credits are
//! `RecordDealCredits`, see "Connecting a CRM").
//!
//! The CRM's dates, when the file has them (`create_time`, `stage_enter_time`),
//! become the import-only `occur_time` of the creation and of the moves to
//! the row's stage, so stalled deals, cycle time and forecasts count from
//! the CRM's history rather than the day of the import.
//!
//! The health gates are passed with an override naming the import (the deal
//! already stands at that stage in the CRM; the override is recorded in its
//! history); QUALIFIED's own criteria are checked as always, from the row's
//! qualification columns, and a row they refuse is rejected with every unmet
//! condition, its opportunity left at the last stage it reached.

use contracts::pb::common::v1 as common;
use contracts::pb::pipeline::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

use super::client::{Refusal, refusal};
use super::mapping::Kind;
use super::report::{Report, Row, RowError};
use super::{Cells, Ctx, Importer, values};

#[derive(Debug, Clone, PartialEq)]
pub struct OpportunityRow {
    pub external_id: String,
    pub account: String,
    pub product: String,
    pub stage: pb::Stage,
    /// The opportunity as created (at IDENTIFIED), ids still to resolve.
    pub opportunity: pb::Opportunity,
    /// When the CRM created it (`None`: it is created now).
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    /// When it entered its stage in the CRM: the moves up to it are stamped
    /// with it (`None`: they happen now).
    pub stage_entered: Option<chrono::DateTime<chrono::Utc>>,
}

fn enum_name(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| {
            if c == ' ' || c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

fn motion(text: &str) -> Result<common::Motion, String> {
    let name = enum_name(text);
    let name = name.strip_prefix("MOTION_").unwrap_or(&name);
    common::Motion::from_str_name(&format!("MOTION_{name}"))
        .filter(|m| *m != common::Motion::Unspecified)
        .ok_or_else(|| {
            format!(
                "{text:?} is not a motion (UPSELL_TIER, UPSELL_FEATURE, UPSELL_CAPACITY, \
                 CROSS_SELL_ADJACENT, CROSS_SELL_COMPLEMENTARY, CROSS_SELL_PLATFORM)"
            )
        })
}

fn stage(text: &str) -> Result<pb::Stage, String> {
    let name = enum_name(text);
    let name = name.strip_prefix("STAGE_").unwrap_or(&name);
    let stage = pb::Stage::from_str_name(&format!("STAGE_{name}"))
        .filter(|s| *s != pb::Stage::Unspecified)
        .ok_or_else(|| {
            format!(
                "{text:?} is not a stage (IDENTIFIED, EXPLORING, QUALIFIED, PROPOSED, \
                 NEGOTIATING); map the CRM's stage names under [opportunities.values.stage]"
            )
        })?;
    match stage {
        pb::Stage::ClosedWon | pb::Stage::ClosedLost => Err(format!(
            "{text:?}: closed deals are not imported, only the open pipeline (a won deal's \
             credits are RecordDealCredits)"
        )),
        open => Ok(open),
    }
}

fn budget(text: &str) -> Result<pb::BudgetStatus, String> {
    let name = enum_name(text);
    let name = name.strip_prefix("BUDGET_STATUS_").unwrap_or(&name);
    pb::BudgetStatus::from_str_name(&format!("BUDGET_STATUS_{name}"))
        .filter(|b| *b != pb::BudgetStatus::Unspecified)
        .ok_or_else(|| {
            format!("{text:?} is not a budget status (UNKNOWN, IDENTIFIED, ALLOCATED, APPROVED)")
        })
}

fn flag(cells: &Cells<'_>, field: &'static str) -> Result<bool, RowError> {
    match cells
        .optional(field)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("false" | "no" | "0") => Ok(false),
        Some("true" | "yes" | "1") => Ok(true),
        Some(other) => Err(RowError::field(
            field,
            format!("{other:?} is not true or false"),
        )),
    }
}

pub fn parse(
    cells: &Cells<'_>,
    currency: Option<&str>,
    date_format: &str,
    time_format: Option<&str>,
) -> Result<OpportunityRow, RowError> {
    let currency = cells.optional("currency").or(currency).ok_or_else(|| {
        RowError::field(
            "currency",
            "no currency: add a currency column or pass --currency",
        )
    })?;
    let amount = values::money(currency, cells.required("amount")?)
        .map_err(|m| RowError::field("amount", m))?;
    let motion = motion(cells.required("motion")?).map_err(|m| RowError::field("motion", m))?;
    let stage = match cells.optional("stage") {
        None => pb::Stage::Identified,
        Some(text) => stage(text).map_err(|m| RowError::field("stage", m))?,
    };
    let close_date = match cells.optional("close_date") {
        None => String::new(),
        Some(text) => values::date(text, date_format)
            .map_err(|m| RowError::field("close_date", m))?
            .to_string(),
    };
    let budget_status = match cells.optional("budget_status") {
        None => pb::BudgetStatus::Unspecified,
        Some(text) => budget(text).map_err(|m| RowError::field("budget_status", m))?,
    };
    let relationship_strength = match cells.optional("relationship_strength") {
        None => 0,
        Some(text) => i32::try_from(
            values::integer(text, 0, 10)
                .map_err(|m| RowError::field("relationship_strength", m))?,
        )
        .unwrap_or(0),
    };
    let time = |field: &'static str| {
        cells
            .optional(field)
            .map(|text| {
                values::timestamp(text, date_format, time_format)
                    .map_err(|m| RowError::field(field, m))
            })
            .transpose()
    };
    let mut created = time("create_time")?;
    let stage_entered = time("stage_enter_time")?;
    match (created, stage_entered) {
        // At IDENTIFIED, entering the stage is the creation.
        (None, Some(entered)) if stage == pb::Stage::Identified => created = Some(entered),
        (None, Some(_)) => {
            return Err(RowError::field(
                "stage_enter_time",
                "needs create_time too: a deal enters its stage after it is created",
            ));
        }
        (Some(c), Some(e)) if e < c => {
            return Err(RowError::field(
                "stage_enter_time",
                format!("is before create_time ({})", c.to_rfc3339()),
            ));
        }
        _ => {}
    }
    let text = |field| cells.optional(field).unwrap_or_default().to_owned();
    Ok(OpportunityRow {
        created,
        stage_entered: stage_entered.filter(|_| stage != pb::Stage::Identified),
        external_id: cells.required("external_id")?.to_owned(),
        account: cells.required("account_external_id")?.to_owned(),
        product: cells.required("product")?.to_owned(),
        stage,
        opportunity: pb::Opportunity {
            motion: motion as i32,
            amount: Some(contracts::wire::money_to_pb(&amount)),
            close_date,
            owner: text("owner"),
            owner_team: text("owner_team"),
            originator: text("originator"),
            name: text("name"),
            qualification: Some(pb::Qualification {
                need_confirmed: flag(cells, "need_confirmed")?,
                budget_status: budget_status as i32,
                decision_process_known: flag(cells, "decision_process_known")?,
                relationship_strength,
                ..Default::default()
            }),
            ..Default::default()
        },
    })
}

/// The open stages in order, IDENTIFIED first.
const OPEN: [pb::Stage; 5] = [
    pb::Stage::Identified,
    pb::Stage::Exploring,
    pb::Stage::Qualified,
    pb::Stage::Proposed,
    pb::Stage::Negotiating,
];

fn order(stage: i32) -> Option<usize> {
    OPEN.iter().position(|s| *s as i32 == stage)
}

/// A gate's refusal as a row's reason: its message and every unmet condition.
fn gate_refusal(status: &tonic::Status, reached: pb::Stage, to: pb::Stage) -> RowError {
    let conditions: Vec<String> = status
        .get_details_precondition_failure()
        .map(|p| p.violations.into_iter().map(|v| v.description).collect())
        .unwrap_or_default();
    let why = if conditions.is_empty() {
        status.message().to_owned()
    } else {
        conditions.join("; ")
    };
    RowError::field(
        "stage",
        format!(
            "stopped at {}: {} refused: {why}",
            reached.as_str_name().trim_start_matches("STAGE_"),
            to.as_str_name().trim_start_matches("STAGE_")
        ),
    )
}

/// The server's reason for refusing a request's `occur_time` (the CRM's
/// date: in the future, or before the stage the deal stands in was entered).
fn time_refused(status: &tonic::Status) -> Option<String> {
    (status.code() == Code::InvalidArgument)
        .then(|| status.get_details_bad_request())
        .flatten()?
        .field_violations
        .into_iter()
        .find(|v| v.field == "occur_time")
        .map(|v| v.description)
}

pub struct Opportunities;

impl Importer for Opportunities {
    async fn row(&mut self, ctx: &mut Ctx, row: Row, out: &mut Report) -> anyhow::Result<()> {
        let parsed = parse(
            &Cells::new(out.columns(), &row.record),
            ctx.currency.as_deref(),
            &ctx.date_format,
            ctx.time_format.as_deref(),
        );
        let mut opp = match parsed {
            Ok(opp) => opp,
            Err(error) => return out.reject(&row, error),
        };
        let Some(account) = ctx.lookup.account(&opp.account).await? else {
            let message = format!(
                "no account has {} id {:?}; import the accounts first",
                ctx.lookup.system, opp.account
            );
            return out.reject(&row, RowError::field("account_external_id", message));
        };
        let Some(product_id) = ctx.lookup.product_id(&opp.product).await? else {
            let message = format!("no product is named {:?}", opp.product);
            return out.reject(&row, RowError::field("product", message));
        };
        if ctx.dry_run {
            out.created(1);
            return Ok(());
        }
        opp.opportunity.account_id = account.account_id;
        opp.opportunity.product_id = product_id;
        let request_id = format!(
            "import:{}:Opportunity/{}",
            ctx.lookup.system, opp.external_id
        );
        let created = ctx
            .lookup
            .pipeline
            .create_opportunity(pb::CreateOpportunityRequest {
                request_id: request_id.clone(),
                opportunity: Some(opp.opportunity.clone()),
                occur_time: opp.created.map(contracts::wire::timestamp),
            })
            .await;
        let first = match created {
            Ok(reply) => reply.into_inner().opportunity.unwrap_or_default(),
            Err(status) => {
                if let Some(why) = time_refused(&status) {
                    return out.reject(&row, RowError::field("create_time", why));
                }
                let reused = status.code() == Code::InvalidArgument
                    && status
                        .get_details_bad_request()
                        .and_then(|b| b.field_violations.into_iter().next())
                        .is_some_and(|v| v.field == "request_id");
                if reused {
                    let message = format!(
                        "was imported before with other values (request id {request_id:?}); \
                         change it in Expansion with UpdateOpportunity"
                    );
                    return out.reject(&row, RowError::row(message));
                }
                return match refusal(Kind::Opportunities, status) {
                    Refusal::Row { error, .. } => out.reject(&row, error),
                    Refusal::Fatal(err) => Err(err),
                };
            }
        };
        let first_written = first.audit.as_ref().and_then(|a| a.update_time);
        // A replay answers the opportunity as first created: read where it is now.
        let mut current = match ctx
            .lookup
            .pipeline
            .get_opportunity(pb::GetOpportunityRequest {
                opportunity_id: first.opportunity_id.clone(),
            })
            .await
        {
            Ok(reply) => reply.into_inner().opportunity.unwrap_or(first),
            Err(status) => return Err(super::client::fatal(status, "reading an opportunity")),
        };
        // A replay answers the first response: an opportunity written before
        // this run began was there already. (Its update time, not its create
        // time: that is the CRM's when the file dates it.)
        let was_new = first_written
            .and_then(|t| {
                chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
            })
            .is_some_and(|created| created >= ctx.started);
        let Some(from) = order(current.stage) else {
            // Closed in Expansion since: it is no longer the CRM's to move.
            out.unchanged(1);
            return Ok(());
        };
        let Some(to) = order(opp.stage as i32) else {
            return out.reject(&row, RowError::field("stage", "not an open stage"));
        };
        let mut moved = false;
        for next in OPEN.iter().take(to + 1).skip(from + 1) {
            let reached = OPEN[order(current.stage).unwrap_or(0)];
            let reply = ctx
                .lookup
                .pipeline
                .advance_stage(pb::AdvanceStageRequest {
                    request_id: format!("{request_id}:{}", next.as_str_name()),
                    opportunity_id: current.opportunity_id.clone(),
                    etag: current.etag.clone(),
                    to_stage: *next as i32,
                    override_reason: format!(
                        "imported from {} at {}",
                        ctx.lookup.system,
                        opp.stage.as_str_name().trim_start_matches("STAGE_")
                    ),
                    occur_time: opp.stage_entered.map(contracts::wire::timestamp),
                    ..Default::default()
                })
                .await;
            match reply {
                Ok(reply) => {
                    moved = true;
                    if let Some(now) = reply.into_inner().opportunity {
                        current = now;
                    }
                }
                Err(status) if status.code() == Code::FailedPrecondition => {
                    return out.reject(&row, gate_refusal(&status, reached, *next));
                }
                Err(status) => {
                    if let Some(why) = time_refused(&status) {
                        return out.reject(&row, RowError::field("stage_enter_time", why));
                    }
                    return match refusal(Kind::Opportunities, status) {
                        Refusal::Row { error, .. } => out.reject(&row, error),
                        Refusal::Fatal(err) => Err(err),
                    };
                }
            }
        }
        match (was_new, moved) {
            (true, _) => out.created(1),
            (false, true) => out.updated(),
            (false, false) => out.unchanged(1),
        }
        Ok(())
    }

    async fn finish(&mut self, _: &mut Ctx, _: &mut Report) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::mapping::Columns;
    use super::*;

    fn parse_row(headers: &[&str], cells: &[&str]) -> Result<OpportunityRow, RowError> {
        let headers: Vec<String> = headers.iter().map(|s| (*s).to_owned()).collect();
        let columns = Columns::resolve(Kind::Opportunities, &headers, &[]).unwrap();
        let record = csv::StringRecord::from(cells.to_vec());
        parse(
            &Cells::new(&columns, &record),
            Some("USD"),
            "%m/%d/%Y",
            Some("%m/%d/%Y %H:%M"),
        )
    }

    const HEADERS: [&str; 9] = [
        "external_id",
        "account_external_id",
        "product",
        "motion",
        "stage",
        "amount",
        "close_date",
        "owner",
        "originator",
    ];

    #[test]
    fn a_row_becomes_an_open_opportunity() {
        let row = parse_row(
            &HEADERS,
            &[
                "006A",
                "001A",
                "Analytics",
                "Cross-sell adjacent",
                "Exploring",
                "48000.00",
                "03/31/2027",
                "alex.ae",
                "carla.csm",
            ],
        )
        .unwrap();
        assert_eq!(row.stage, pb::Stage::Exploring);
        assert_eq!(
            row.opportunity.motion,
            common::Motion::CrossSellAdjacent as i32
        );
        assert_eq!(row.opportunity.close_date, "2027-03-31");
        assert_eq!(row.opportunity.amount.unwrap().amount, "48000.00");
        assert_eq!(row.opportunity.owner, "alex.ae");
        assert_eq!(row.opportunity.originator, "carla.csm");
    }

    #[test]
    fn bad_and_closed_rows_name_their_field() {
        let field = |cells: &[&str]| parse_row(&HEADERS, cells).unwrap_err();
        let base = [
            "006A",
            "001A",
            "Analytics",
            "UPSELL_TIER",
            "",
            "100",
            "",
            "",
            "",
        ];
        let with = |i: usize, v: &'static str| {
            let mut cells = base;
            cells[i] = v;
            cells
        };
        assert_eq!(field(&with(3, "resell")).field, Some("motion"));
        assert_eq!(field(&with(5, "1,000")).field, Some("amount"));
        let closed = field(&with(4, "Closed Won"));
        assert_eq!(closed.field, Some("stage"));
        assert!(closed.message.contains("open pipeline"), "{closed:?}");
        assert_eq!(field(&with(4, "Prospecting")).field, Some("stage"));
        assert_eq!(
            parse_row(&HEADERS, &base).unwrap().stage,
            pb::Stage::Identified
        );
    }

    #[test]
    fn the_crm_dates_become_the_creation_and_stage_times() {
        let mut headers = HEADERS.to_vec();
        headers.extend(["create_time", "stage_enter_time"]);
        let row = |stage: &'static str, created: &'static str, entered: &'static str| {
            parse_row(
                &headers,
                &[
                    "006A",
                    "001A",
                    "Analytics",
                    "UPSELL_TIER",
                    stage,
                    "100",
                    "",
                    "",
                    "",
                    created,
                    entered,
                ],
            )
        };
        let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let ok = row("Qualified", "01/15/2026 09:30", "2026-03-01").unwrap();
        assert_eq!(ok.created, Some(at("2026-01-15T09:30:00Z")));
        assert_eq!(ok.stage_entered, Some(at("2026-03-01T00:00:00Z")));
        // Neither: created and moved now.
        let now = row("Qualified", "", "").unwrap();
        assert_eq!((now.created, now.stage_entered), (None, None));
        // At IDENTIFIED the stage's entry is the creation.
        let identified = row("Identified", "", "2026-02-01").unwrap();
        assert_eq!(identified.created, Some(at("2026-02-01T00:00:00Z")));
        assert_eq!(identified.stage_entered, None);
        // A stage entered before the deal was created, or without a creation.
        let early = row("Exploring", "2026-03-01", "2026-02-01").unwrap_err();
        assert_eq!(early.field, Some("stage_enter_time"));
        let alone = row("Exploring", "", "2026-02-01").unwrap_err();
        assert_eq!(alone.field, Some("stage_enter_time"));
        assert_eq!(
            row("Exploring", "soon", "").unwrap_err().field,
            Some("create_time")
        );
    }
}
