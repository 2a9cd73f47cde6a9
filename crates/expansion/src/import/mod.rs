//! `expansion import`: loads a CSV file from a CRM export into a running
//! server through the public gRPC API, as any connector would.
//!
//! Reading order: [`mapping`] (which column feeds which field), [`values`]
//! (reading one cell), one module per kind of file ([`accounts`],
//! [`products`], [`subscriptions`], [`signals`]), [`client`] (look-ups and
//! how a refusal becomes a rejected row), [`report`] (progress and summary).
//!
//! Every write is keyed by something the CRM owns (its account and contract
//! ids, the product name, the signal's source and id), so importing the same
//! file twice stores nothing twice. A rejected row never stops the rest.

mod accounts;
mod client;
mod mapping;
mod products;
mod report;
mod signals;
mod subscriptions;
mod values;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

pub use mapping::Kind;
pub use report::Tally;

use client::Lookup;
use mapping::Columns;
use report::{Report, Row, RowError};

/// Exit status of an import that finished with rejected rows (sysexits'
/// `EX_DATAERR`: the input data was incorrect). 0 means every row landed or
/// was already there; 1 that the import could not run or had to stop.
pub const EXIT_REJECTED: i32 = 65;

/// Signals per `RecordSignals` call at most (the server's batch limit).
const MAX_BATCH: i64 = 5000;

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// What the file holds.
    #[arg(long, env = "EXPANSION_IMPORT_KIND", value_enum)]
    pub kind: Kind,
    /// The CSV file (UTF-8, with a header row).
    pub file: PathBuf,
    /// Address of a server running the health service (scheme optional).
    #[arg(long, env = "EXPANSION_TARGET", default_value = "127.0.0.1:50051")]
    pub target: String,
    /// API key sent as `authorization: Bearer KEY`.
    #[arg(long, env = "EXPANSION_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Column mapping, `HEADER=field,…`, e.g. `Account ID=external_id`;
    /// applied after --mapping. A column named after a field feeds it
    /// without being mapped.
    #[arg(long, env = "EXPANSION_IMPORT_MAP")]
    pub map: Option<String>,
    /// Column mapping file, TOML or JSON (by extension): `"HEADER" = "field"`
    /// entries, shared or under a `[accounts]`, `[products]`,
    /// `[subscriptions]` or `[signals]` table.
    #[arg(long, env = "EXPANSION_IMPORT_MAPPING")]
    pub mapping: Option<PathBuf>,
    /// The CRM the external ids come from (the `system` of every external
    /// reference, and the default `source` of signals).
    #[arg(long, env = "EXPANSION_IMPORT_SYSTEM", default_value = "salesforce")]
    pub system: String,
    /// Currency of amounts when the file has no currency column (ISO 4217).
    #[arg(long, env = "EXPANSION_IMPORT_CURRENCY")]
    pub currency: Option<String>,
    /// Another way the export writes dates, as a strftime pattern (e.g.
    /// `%m/%d/%Y`); `YYYY-MM-DD` is always read.
    #[arg(long, env = "EXPANSION_IMPORT_DATE_FORMAT", default_value = "%Y-%m-%d")]
    pub date_format: String,
    /// Field delimiter of the file, e.g. `;`.
    #[arg(long, env = "EXPANSION_IMPORT_DELIMITER", default_value_t = ',')]
    pub delimiter: char,
    /// Signals per `RecordSignals` call.
    #[arg(long, env = "EXPANSION_IMPORT_BATCH", default_value_t = 500,
          value_parser = clap::value_parser!(u16).range(1..=MAX_BATCH))]
    pub batch: u16,
    /// Write the rejected rows here, as CSV: the row's cells plus
    /// `reject_row` and `reject_reason`.
    #[arg(long, env = "EXPANSION_IMPORT_REJECTS")]
    pub rejects: Option<PathBuf>,
}

/// The cells of one row, read by field name.
pub struct Cells<'a> {
    columns: &'a Columns,
    record: &'a csv::StringRecord,
}

impl<'a> Cells<'a> {
    pub fn new(columns: &'a Columns, record: &'a csv::StringRecord) -> Self {
        Self { columns, record }
    }

    /// `None` when no column feeds `field`; the cell (maybe empty) otherwise.
    pub fn get(&self, field: &str) -> Option<&'a str> {
        self.columns.get(self.record, field)
    }

    /// The cell, or `None` when it is empty or no column feeds the field.
    pub fn optional(&self, field: &str) -> Option<&'a str> {
        self.get(field).filter(|v| !v.is_empty())
    }

    pub fn required(&self, field: &'static str) -> Result<&'a str, RowError> {
        self.optional(field)
            .ok_or_else(|| RowError::field(field, "is required"))
    }
}

/// What every row of a run shares.
pub struct Ctx {
    lookup: Lookup,
    currency: Option<String>,
    date_format: String,
    batch: usize,
}

/// One kind of file: takes its rows one by one, then finishes (sends what
/// it held back).
trait Importer {
    async fn row(&mut self, ctx: &mut Ctx, row: Row, out: &mut Report) -> anyhow::Result<()>;
    async fn finish(&mut self, ctx: &mut Ctx, out: &mut Report) -> anyhow::Result<()>;
}

/// Header → field pairs: the mapping file's, then `--map`'s (which win for
/// the same header).
fn mapping_pairs(args: &ImportArgs) -> anyhow::Result<Vec<(String, String)>> {
    let mut pairs = match &args.mapping {
        Some(path) => mapping::parse_file(path, args.kind)?,
        None => Vec::new(),
    };
    if let Some(inline) = &args.map {
        for (header, field) in mapping::parse_inline(inline)? {
            pairs.retain(|(h, _)| !h.trim().eq_ignore_ascii_case(header.trim()));
            pairs.push((header, field));
        }
    }
    Ok(pairs)
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Opens the file for reading, past a UTF-8 byte order mark.
fn open(path: &Path, delimiter: u8) -> anyhow::Result<(csv::Reader<BufReader<File>>, u64)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut input = BufReader::new(file);
    if input.fill_buf()?.starts_with(BOM) {
        input.consume(BOM.len());
    }
    let reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(input);
    Ok((reader, size))
}

/// Runs the import and prints its summary; the tally says how it went.
pub async fn run(args: ImportArgs) -> anyhow::Result<Tally> {
    let delimiter = u8::try_from(args.delimiter)
        .ok()
        .filter(u8::is_ascii)
        .context("--delimiter must be one ASCII character")?;
    let pairs = mapping_pairs(&args)?;
    let (mut reader, size) = open(&args.file, delimiter)?;
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("reading the header row of {}", args.file.display()))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if headers.iter().all(String::is_empty) {
        bail!("{} has no header row", args.file.display());
    }
    let columns = Columns::resolve(args.kind, &headers, &pairs)
        .with_context(|| format!("columns of {}", args.file.display()))?;
    let ignored = columns.ignored();
    let mut report = Report::new(columns.clone(), args.rejects.as_deref(), size)?;
    if !ignored.is_empty() {
        report.note(&format!(
            "import: no field reads the columns {}",
            ignored.join(", ")
        ));
    }
    let health = client::connect(&args.target, args.api_key.as_deref()).await?;
    let mut ctx = Ctx {
        lookup: Lookup::new(health, args.system.clone()),
        currency: args.currency.clone(),
        date_format: args.date_format.clone(),
        batch: usize::from(args.batch),
    };
    let result = match args.kind {
        Kind::Accounts => {
            drive(
                &mut accounts::Accounts::default(),
                &mut ctx,
                &mut reader,
                &mut report,
            )
            .await
        }
        Kind::Products => drive(&mut products::Products, &mut ctx, &mut reader, &mut report).await,
        Kind::Subscriptions => {
            drive(
                &mut subscriptions::Subscriptions,
                &mut ctx,
                &mut reader,
                &mut report,
            )
            .await
        }
        Kind::Signals => {
            drive(
                &mut signals::Signals::default(),
                &mut ctx,
                &mut reader,
                &mut report,
            )
            .await
        }
    };
    report.finish()?;
    println!(
        "{} from {}: {}",
        args.kind.as_str(),
        args.file.display(),
        report.tally
    );
    for rejection in &report.rejections {
        println!("  {rejection}");
    }
    if let Some(path) = &args.rejects
        && report.tally.rejected > 0
    {
        println!("rejected rows written to {}", path.display());
    }
    result?;
    Ok(report.tally)
}

/// Feeds every data row of the file to `importer`.
async fn drive<I: Importer>(
    importer: &mut I,
    ctx: &mut Ctx,
    reader: &mut csv::Reader<BufReader<File>>,
    out: &mut Report,
) -> anyhow::Result<()> {
    let width = out.columns().headers().len();
    let mut raw = csv::ByteRecord::new();
    loop {
        let more = reader
            .read_byte_record(&mut raw)
            .context("reading the file")?;
        if !more {
            break;
        }
        let line = raw.position().map_or(0, csv::Position::line);
        let bytes = raw.position().map_or(0, csv::Position::byte);
        if raw
            .iter()
            .all(|cell| cell.iter().all(u8::is_ascii_whitespace))
        {
            continue; // a blank line, or one of only delimiters
        }
        out.read(bytes);
        let row = match csv::StringRecord::from_byte_record(raw.clone()) {
            Ok(mut record) => {
                record.trim();
                Row { line, record }
            }
            Err(_) => {
                let lossy: Vec<String> = raw
                    .iter()
                    .map(|cell| String::from_utf8_lossy(cell).into_owned())
                    .collect();
                let row = Row {
                    line,
                    record: csv::StringRecord::from(lossy),
                };
                out.reject(
                    &row,
                    RowError::row("is not UTF-8 text; export the file as UTF-8"),
                )?;
                continue;
            }
        };
        if row.record.len() != width {
            let message = format!("has {} cells; the header has {width}", row.record.len());
            out.reject(&row, RowError::row(message))?;
            continue;
        }
        importer
            .row(ctx, row, out)
            .await
            .map_err(|e| client::stopped_at(e, Some(line)))?;
    }
    importer
        .finish(ctx, out)
        .await
        .map_err(|e| client::stopped_at(e, None))
}
