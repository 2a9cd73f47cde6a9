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

use super::client::refusal;
use super::mapping::Kind;
use super::report::{Halt, Landed, Report, Row, RowError};
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
    let relationship_strength = relationship_strength(cells)?;
    let time = |field: &'static str| {
        cells
            .optional(field)
            .map(|text| {
                values::timestamp(text, date_format, time_format)
                    .map_err(|m| RowError::field(field, m))
            })
            .transpose()
    };
    let (created, stage_entered) =
        crm_history(stage, time("create_time")?, time("stage_enter_time")?)?;
    let text = |field| cells.optional(field).unwrap_or_default().to_owned();
    Ok(OpportunityRow {
        created,
        stage_entered,
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

/// The relationship strength, 0–10 (empty: 0).
fn relationship_strength(cells: &Cells<'_>) -> Result<i32, RowError> {
    match cells.optional("relationship_strength") {
        None => Ok(0),
        Some(text) => Ok(i32::try_from(
            values::integer(text, 0, 10)
                .map_err(|m| RowError::field("relationship_strength", m))?,
        )
        .unwrap_or(0)),
    }
}

/// A moment of the CRM's history, when the file has it.
type When = Option<chrono::DateTime<chrono::Utc>>;

/// When the CRM created the deal and when it entered its `stage`, as the import dates
/// them. At IDENTIFIED, entering the stage is the creation (and no move is dated);
/// past it, a stage enter time needs a create time no later than it.
fn crm_history(
    stage: pb::Stage,
    created: When,
    stage_entered: When,
) -> Result<(When, When), RowError> {
    let identified = stage == pb::Stage::Identified;
    match (created, stage_entered) {
        (None, Some(entered)) if identified => return Ok((Some(entered), None)),
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
    Ok((created, stage_entered.filter(|_| !identified)))
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
        let landed = match parsed {
            Ok(opp) => import(ctx, opp).await,
            Err(error) => Err(error.into()),
        };
        out.settle(&row, landed)
    }

    async fn finish(&mut self, _: &mut Ctx, _: &mut Report) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Creates the row's opportunity (a re-run finds the one it created) and moves it on
/// to the row's stage.
async fn import(ctx: &mut Ctx, mut opp: OpportunityRow) -> Result<Landed, Halt> {
    let account = ctx.lookup.known_account(&opp.account).await?;
    let product_id = ctx.lookup.known_product(&opp.product).await?;
    if ctx.dry_run {
        return Ok(Landed::Created);
    }
    opp.opportunity.account_id = account.account_id;
    opp.opportunity.product_id = product_id;
    let request_id = format!(
        "import:{}:Opportunity/{}",
        ctx.lookup.system, opp.external_id
    );
    let first = create(ctx, &opp, &request_id).await?;
    let first_written = first.audit.as_ref().and_then(|a| a.update_time);
    let current = read_current(ctx, first).await?;
    let was_new = written_since(first_written, ctx.started);
    let Some(from) = order(current.stage) else {
        // Closed in Expansion since: it is no longer the CRM's to move.
        return Ok(Landed::Unchanged);
    };
    let Some(to) = order(opp.stage as i32) else {
        return Err(RowError::field("stage", "not an open stage").into());
    };
    let moved = advance(ctx, &opp, current, &request_id, (from, to)).await?;
    Ok(Landed::of(was_new, moved))
}

/// Creates the opportunity at IDENTIFIED, keyed by `request_id` and dated by the CRM's
/// create time; a replay answers the opportunity as first created.
async fn create(
    ctx: &mut Ctx,
    opp: &OpportunityRow,
    request_id: &str,
) -> Result<pb::Opportunity, Halt> {
    let created = ctx
        .lookup
        .pipeline
        .create_opportunity(pb::CreateOpportunityRequest {
            request_id: request_id.to_owned(),
            opportunity: Some(opp.opportunity.clone()),
            occur_time: opp.created.map(contracts::wire::timestamp),
        })
        .await;
    match created {
        Ok(reply) => Ok(reply.into_inner().opportunity.unwrap_or_default()),
        Err(status) => Err(creation_refused(status, request_id)),
    }
}

/// A refused creation: the CRM's create time refused, the request id imported before
/// with other values, or the server's refusal as such.
fn creation_refused(status: tonic::Status, request_id: &str) -> Halt {
    if let Some(why) = time_refused(&status) {
        return RowError::field("create_time", why).into();
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
        return RowError::row(message).into();
    }
    refusal(Kind::Opportunities, status).into()
}

/// Where the opportunity stands now: a replay answered it as first created.
async fn read_current(ctx: &mut Ctx, first: pb::Opportunity) -> Result<pb::Opportunity, Halt> {
    match ctx
        .lookup
        .pipeline
        .get_opportunity(pb::GetOpportunityRequest {
            opportunity_id: first.opportunity_id.clone(),
        })
        .await
    {
        Ok(reply) => Ok(reply.into_inner().opportunity.unwrap_or(first)),
        Err(status) => Err(super::client::fatal(status, "reading an opportunity").into()),
    }
}

/// Whether an opportunity first written at `written` was written by this run, begun
/// at `started`: a replay answers the first response, so one written before was there
/// already. (Its update time, not its create time: that is the CRM's when the file
/// dates it.)
fn written_since(
    written: Option<prost_types::Timestamp>,
    started: chrono::DateTime<chrono::Utc>,
) -> bool {
    written
        .and_then(|t| {
            chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
        })
        .is_some_and(|created| created >= started)
}

/// Moves `current` from open stage `from` up to `to` (positions in [`OPEN`]), one
/// stage at a time; whether it moved.
async fn advance(
    ctx: &mut Ctx,
    opp: &OpportunityRow,
    mut current: pb::Opportunity,
    request_id: &str,
    (from, to): (usize, usize),
) -> Result<bool, Halt> {
    let mut moved = false;
    for next in OPEN.iter().take(to + 1).skip(from + 1) {
        let reached = OPEN[order(current.stage).unwrap_or(0)];
        let request = advance_request(&ctx.lookup.system, opp, &current, request_id, *next);
        match ctx.lookup.pipeline.advance_stage(request).await {
            Ok(reply) => {
                moved = true;
                if let Some(now) = reply.into_inner().opportunity {
                    current = now;
                }
            }
            Err(status) => return Err(advance_refused(status, reached, *next)),
        }
    }
    Ok(moved)
}

/// The move of `current` to `next`: keyed by the creation's request id and the stage,
/// past the health gates with an override naming the import, dated by the CRM's stage
/// enter time.
fn advance_request(
    system: &str,
    opp: &OpportunityRow,
    current: &pb::Opportunity,
    request_id: &str,
    next: pb::Stage,
) -> pb::AdvanceStageRequest {
    pb::AdvanceStageRequest {
        request_id: format!("{request_id}:{}", next.as_str_name()),
        opportunity_id: current.opportunity_id.clone(),
        etag: current.etag.clone(),
        to_stage: next as i32,
        override_reason: format!(
            "imported from {system} at {}",
            opp.stage.as_str_name().trim_start_matches("STAGE_")
        ),
        occur_time: opp.stage_entered.map(contracts::wire::timestamp),
        ..Default::default()
    }
}

/// A refused move from `reached` to `to`: a gate's refusal with its conditions, the
/// CRM's stage enter time refused, or the server's refusal as such.
fn advance_refused(status: tonic::Status, reached: pb::Stage, to: pb::Stage) -> Halt {
    if status.code() == Code::FailedPrecondition {
        return gate_refusal(&status, reached, to).into();
    }
    if let Some(why) = time_refused(&status) {
        return RowError::field("stage_enter_time", why).into();
    }
    refusal(Kind::Opportunities, status).into()
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

    fn bad_request(field: &str, description: &str) -> tonic::Status {
        tonic::Status::with_error_details(
            Code::InvalidArgument,
            "invalid",
            tonic_types::ErrorDetails::with_bad_request(vec![tonic_types::FieldViolation::new(
                field,
                description,
            )]),
        )
    }

    fn rejected(halt: Halt) -> RowError {
        match halt {
            Halt::Reject(error) => error,
            Halt::Stop(err) => panic!("stopped: {err}"),
        }
    }

    #[test]
    fn a_refused_creation_names_what_the_row_got_wrong() {
        let future = rejected(creation_refused(
            bad_request("occur_time", "is in the future"),
            "r",
        ));
        assert_eq!(future.field, Some("create_time"));
        assert_eq!(future.message, "is in the future");
        let reused = rejected(creation_refused(
            bad_request("request_id", "was used with another request"),
            "import:crm:Opportunity/006A",
        ));
        assert_eq!(reused.field, None);
        assert!(
            reused.message.contains("\"import:crm:Opportunity/006A\""),
            "{reused:?}"
        );
        assert!(reused.message.contains("UpdateOpportunity"), "{reused:?}");
        assert!(matches!(
            creation_refused(tonic::Status::unavailable("down"), "r"),
            Halt::Stop(_)
        ));
    }

    #[test]
    fn a_refused_move_names_the_gate_or_the_stage_time() {
        let gate = tonic::Status::with_error_details(
            Code::FailedPrecondition,
            "gate",
            tonic_types::ErrorDetails::with_precondition_failure(vec![
                tonic_types::PreconditionViolation::new("GATE", "health", "health is 40"),
            ]),
        );
        let refused = rejected(advance_refused(
            gate,
            pb::Stage::Exploring,
            pb::Stage::Qualified,
        ));
        assert_eq!(refused.field, Some("stage"));
        assert_eq!(
            refused.message,
            "stopped at EXPLORING: QUALIFIED refused: health is 40"
        );
        let early = rejected(advance_refused(
            bad_request("occur_time", "is before the stage was entered"),
            pb::Stage::Identified,
            pb::Stage::Exploring,
        ));
        assert_eq!(early.field, Some("stage_enter_time"));
    }

    #[test]
    fn a_move_is_keyed_by_its_stage_and_names_the_import() {
        let row = parse_row(
            &HEADERS,
            &[
                "006A",
                "001A",
                "Analytics",
                "UPSELL_TIER",
                "Proposed",
                "100",
                "",
                "",
                "",
            ],
        )
        .unwrap();
        let current = pb::Opportunity {
            opportunity_id: "opp-1".into(),
            etag: "e1".into(),
            ..Default::default()
        };
        let request = advance_request(
            "salesforce",
            &row,
            &current,
            "import:x",
            pb::Stage::Exploring,
        );
        assert_eq!(request.request_id, "import:x:STAGE_EXPLORING");
        assert_eq!(
            (request.opportunity_id.as_str(), request.etag.as_str()),
            ("opp-1", "e1")
        );
        assert_eq!(request.to_stage, pb::Stage::Exploring as i32);
        assert_eq!(
            request.override_reason,
            "imported from salesforce at PROPOSED"
        );
    }

    #[test]
    fn only_what_this_run_wrote_counts_as_created() {
        let started = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        assert!(written_since(at(1_800_000_000), started));
        assert!(written_since(at(1_800_000_100), started));
        assert!(!written_since(at(1_799_999_999), started));
        assert!(!written_since(None, started));
    }
}
