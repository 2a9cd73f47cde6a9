//! `expansion import`: loads a CSV file from a CRM export into a running
//! server through the public gRPC API, as any connector would.
//!
//! Reading order: [`mapping`] (which column feeds which field), [`values`]
//! (reading one cell), one module per kind of file ([`accounts`],
//! [`products`], [`subscriptions`], [`signals`], [`people`]), [`client`] (look-ups and
//! how a refusal becomes a rejected row), [`report`] (progress and summary).
//!
//! Every write is keyed by something the CRM owns (its account and contract
//! ids, the product name, the signal's source and id, the person's id), so importing the same
//! file twice stores nothing twice. A rejected row never stops the rest.

mod accounts;
mod client;
mod mapping;
mod opportunities;
mod people;
mod products;
mod report;
mod signals;
mod subscriptions;
mod values;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
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

/// Rejected rows listed in the summary; `--rejects` has them all.
const MAX_LISTED: usize = 100;

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
    /// The API key (`authorization: Bearer KEY`) and, for an `https://`
    /// target, the CA to trust.
    #[command(flatten)]
    pub client: crate::auth::ClientArgs,
    /// Column mapping, `HEADER=field,…`, e.g. `Account ID=external_id`;
    /// applied after --mapping. A column named after a field feeds it
    /// without being mapped.
    #[arg(long, env = "EXPANSION_IMPORT_MAP")]
    pub map: Option<String>,
    /// Column mapping file, TOML or JSON (by extension): `"HEADER" = "field"`
    /// entries, shared or under a table per kind (`[accounts]`, …), and value
    /// maps (`[accounts.values.segment]` `"Large Enterprise" = "ENTERPRISE"`).
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
    /// Another way the export writes date-times, as a strftime pattern read
    /// as UTC (e.g. `%m/%d/%Y %H:%M` for `03/31/2026 14:22`); RFC 3339 and
    /// `YYYY-MM-DD HH:MM[:SS]` are always read.
    #[arg(long, env = "EXPANSION_IMPORT_TIME_FORMAT")]
    pub time_format: Option<String>,
    /// Read, check and look up every row, and report what would be written,
    /// without writing anything.
    #[arg(long, env = "EXPANSION_IMPORT_DRY_RUN")]
    pub dry_run: bool,
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
    time_format: Option<String>,
    batch: usize,
    /// `--dry-run`: every write is counted, not sent.
    dry_run: bool,
    /// When this run began: what was created before was there already.
    started: chrono::DateTime<chrono::Utc>,
}

/// One kind of file: takes its rows one by one, then finishes (sends what
/// it held back).
trait Importer {
    async fn row(&mut self, ctx: &mut Ctx, row: Row, out: &mut Report) -> anyhow::Result<()>;
    async fn finish(&mut self, ctx: &mut Ctx, out: &mut Report) -> anyhow::Result<()>;
}

/// Header → field pairs: the mapping file's, then `--map`'s (which win for
/// the same header); and the mapping file's value maps.
fn mapping_of(args: &ImportArgs) -> anyhow::Result<mapping::Mapping> {
    let mut mapping = match &args.mapping {
        Some(path) => mapping::parse_file(path, args.kind)?,
        None => mapping::Mapping::default(),
    };
    if let Some(inline) = &args.map {
        for (header, field) in mapping::parse_inline(inline)? {
            mapping
                .pairs
                .retain(|(h, _)| !h.trim().eq_ignore_ascii_case(header.trim()));
            mapping.pairs.push((header, field));
        }
    }
    Ok(mapping)
}

/// A line of the summary on stdout. A reader that went away (`import … |
/// head`) is no failure of the import: the rest is not printed, and the
/// exit status still says how the import went.
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(err) = writeln!(out, "{line}")
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("import: writing the summary: {err}");
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Watches the bytes the CSV reader reads, noting where each line that has
/// content starts, so that a row's number is its line in the file. (The
/// reader's own count skips blank lines, and a row's position is where the
/// reader began looking for it, blank lines included.)
struct Lines<R> {
    inner: R,
    read: u64,
    line: u64,
    at_line_start: bool,
    /// (offset, line) of the first content byte of each line not yet passed.
    starts: VecDeque<(u64, u64)>,
}

impl<R> Lines<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            read: 0,
            line: 1,
            at_line_start: true,
            starts: VecDeque::new(),
        }
    }

    /// The line of the first content at or after byte `offset`; offsets
    /// only grow from call to call.
    fn line_of(&mut self, offset: u64) -> u64 {
        while self.starts.front().is_some_and(|&(at, _)| at < offset) {
            self.starts.pop_front();
        }
        self.starts.front().map_or(self.line, |&(_, line)| line)
    }
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, byte) in buf[..n].iter().enumerate() {
            match byte {
                b'\n' => {
                    self.line += 1;
                    self.at_line_start = true;
                }
                b'\r' => {}
                _ => {
                    if self.at_line_start {
                        self.starts.push_back((self.read + i as u64, self.line));
                    }
                    self.at_line_start = false;
                }
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

type Input = csv::Reader<Lines<BufReader<File>>>;

/// Opens the file for reading, past a UTF-8 byte order mark.
fn open(path: &Path, delimiter: u8) -> anyhow::Result<(Input, u64)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut input = BufReader::new(file);
    if input.fill_buf()?.starts_with(BOM) {
        input.consume(BOM.len());
    }
    let reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(Lines::new(input));
    Ok((reader, size))
}

/// Runs the import and prints its summary; the tally says how it went.
pub async fn run(args: ImportArgs) -> anyhow::Result<Tally> {
    let delimiter = u8::try_from(args.delimiter)
        .ok()
        .filter(u8::is_ascii)
        .context("--delimiter must be one ASCII character")?;
    let mapping = mapping_of(&args)?;
    let (mut reader, size) = open(&args.file, delimiter)?;
    let columns = columns_of(&args, &mut reader, &mapping)?;
    let (health, credit, pipeline) = client::connect(&args.target, args.client.options()?).await?;
    let mut report = Report::new(columns, args.rejects.as_deref(), size)?;
    let mut ctx = Ctx {
        lookup: Lookup::new(health, credit, pipeline, args.system.clone()),
        currency: args.currency.clone(),
        date_format: args.date_format.clone(),
        time_format: args.time_format.clone(),
        batch: usize::from(args.batch),
        dry_run: args.dry_run,
        started: chrono::Utc::now(),
    };
    let result = drive_kind(args.kind, &mut ctx, &mut reader, &mut report).await;
    report.finish()?;
    summarise(&args, &mut report);
    result?;
    Ok(report.tally)
}

/// The file's columns: its header row read with the mapping (a column no field reads
/// is said on stderr).
fn columns_of(
    args: &ImportArgs,
    reader: &mut Input,
    mapping: &mapping::Mapping,
) -> anyhow::Result<Columns> {
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("reading the header row of {}", args.file.display()))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if headers.iter().all(String::is_empty) {
        bail!("{} has no header row", args.file.display());
    }
    let columns =
        Columns::resolve_with_values(args.kind, &headers, &mapping.pairs, &mapping.values)
            .with_context(|| format!("columns of {}", args.file.display()))?;
    let ignored = columns.ignored();
    if !ignored.is_empty() {
        eprintln!("import: no field reads the columns {}", ignored.join(", "));
    }
    Ok(columns)
}

/// Feeds every row of the file to the importer of its `kind`.
async fn drive_kind(
    kind: Kind,
    ctx: &mut Ctx,
    reader: &mut Input,
    report: &mut Report,
) -> anyhow::Result<()> {
    match kind {
        Kind::Accounts => drive(&mut accounts::Accounts::default(), ctx, reader, report).await,
        Kind::Products => drive(&mut products::Products, ctx, reader, report).await,
        Kind::Subscriptions => drive(&mut subscriptions::Subscriptions, ctx, reader, report).await,
        Kind::Signals => drive(&mut signals::Signals::default(), ctx, reader, report).await,
        Kind::People => drive(&mut people::People::default(), ctx, reader, report).await,
        Kind::Opportunities => drive(&mut opportunities::Opportunities, ctx, reader, report).await,
    }
}

/// Prints the summary: the tally, the first rejected rows in file order, and where
/// the rest are.
fn summarise(args: &ImportArgs, report: &mut Report) {
    say(format_args!(
        "{} from {}{}: {}",
        args.kind.as_str(),
        args.file.display(),
        if args.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        },
        report.tally
    ));
    report.rejections.sort_by_key(|r| r.line);
    for rejection in report.rejections.iter().take(MAX_LISTED) {
        say(format_args!("  {rejection}"));
    }
    if report.rejections.len() > MAX_LISTED {
        say(format_args!(
            "  … and {} more rejected rows{}",
            report.rejections.len() - MAX_LISTED,
            if args.rejects.is_some() {
                ""
            } else {
                " (--rejects FILE writes them all)"
            }
        ));
    }
    if let Some(path) = &args.rejects
        && report.tally.rejected > 0
    {
        say(format_args!("rejected rows written to {}", path.display()));
    }
}

/// The next data row of the file, with how far into the file it ends.
enum Next {
    Row(Row, u64),
    /// A row that can't be read as one: not UTF-8, or not as wide as the header.
    Unreadable(Row, RowError, u64),
    End,
}

fn next_row(reader: &mut Input, raw: &mut csv::ByteRecord, width: usize) -> anyhow::Result<Next> {
    loop {
        if !reader.read_byte_record(raw).context("reading the file")? {
            return Ok(Next::End);
        }
        if raw
            .iter()
            .all(|cell| cell.iter().all(u8::is_ascii_whitespace))
        {
            continue; // a line of only delimiters
        }
        let start = raw.position().map_or(0, csv::Position::byte);
        let line = reader.get_mut().line_of(start);
        let bytes = reader.position().byte();
        return Ok(match csv::StringRecord::from_byte_record(raw.clone()) {
            Ok(mut record) => {
                record.trim();
                let row = Row { line, record };
                if row.record.len() == width {
                    Next::Row(row, bytes)
                } else {
                    let message = format!("has {} cells; the header has {width}", row.record.len());
                    Next::Unreadable(row, RowError::row(message), bytes)
                }
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
                let error = RowError::row("is not UTF-8 text; export the file as UTF-8");
                Next::Unreadable(row, error, bytes)
            }
        });
    }
}

/// Feeds every data row of the file to `importer`.
async fn drive<I: Importer>(
    importer: &mut I,
    ctx: &mut Ctx,
    reader: &mut Input,
    out: &mut Report,
) -> anyhow::Result<()> {
    let width = out.columns().headers().len();
    let mut raw = csv::ByteRecord::new();
    loop {
        match next_row(reader, &mut raw, width)? {
            Next::End => break,
            Next::Unreadable(row, error, bytes) => {
                out.read(bytes);
                out.reject(&row, error)?;
            }
            Next::Row(row, bytes) => {
                out.read(bytes);
                let line = row.line;
                importer
                    .row(ctx, row, out)
                    .await
                    .map_err(|e| client::stopped_at(e, Some(line)))?;
            }
        }
    }
    importer
        .finish(ctx, out)
        .await
        .map_err(|e| client::stopped_at(e, None))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every row of `bytes` read as a file: line, cells, or the reason it
    /// can't be read.
    fn rows(bytes: &[u8]) -> Vec<(u64, Result<Vec<String>, String>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file.csv");
        std::fs::write(&path, bytes).unwrap();
        let (mut reader, _) = open(&path, b',').unwrap();
        let width = reader.headers().unwrap().len();
        let mut raw = csv::ByteRecord::new();
        let mut out = Vec::new();
        loop {
            match next_row(&mut reader, &mut raw, width).unwrap() {
                Next::End => return out,
                Next::Row(row, _) => {
                    out.push((row.line, Ok(row.record.iter().map(str::to_owned).collect())))
                }
                Next::Unreadable(row, error, _) => out.push((row.line, Err(error.message))),
            }
        }
    }

    fn cells(values: &[&str]) -> Result<Vec<String>, String> {
        Ok(values.iter().map(|v| (*v).to_owned()).collect())
    }

    #[test]
    fn rows_are_numbered_by_their_line_in_the_file() {
        let file = b"\xEF\xBB\xBFid,name\r\n1, Acme \r\n\r\n2,\"Globex, \"\"Intl\"\"\nEurope\"\r\n,\r\n3,Initech\r\n";
        assert_eq!(
            rows(file),
            vec![
                (2, cells(&["1", "Acme"])),
                (4, cells(&["2", "Globex, \"Intl\"\nEurope"])),
                (7, cells(&["3", "Initech"])),
            ]
        );
    }

    #[test]
    fn the_bom_is_not_part_of_the_first_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bom.csv");
        std::fs::write(&path, b"\xEF\xBB\xBFexternal_id,name\n1,Acme\n").unwrap();
        let (mut reader, _) = open(&path, b',').unwrap();
        assert_eq!(reader.headers().unwrap().get(0), Some("external_id"));
    }

    #[test]
    fn rows_that_cannot_be_read_are_reported_not_fatal() {
        let found = rows(b"id,name\n1,Acme,extra\n2,\xFF\xFE\n3,Initech\n");
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].0, 2);
        assert!(found[0].1.as_ref().unwrap_err().contains("has 3 cells"));
        assert_eq!(found[1].0, 3);
        assert!(found[1].1.as_ref().unwrap_err().contains("UTF-8"));
        assert_eq!(found[2], (4, cells(&["3", "Initech"])));
    }
}
