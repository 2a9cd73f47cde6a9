//! What an import tells its user: progress on stderr while it runs, the
//! rejected rows (and optionally a rejects file), and a summary at the end.

use std::fmt;
use std::fs::File;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::mapping::Columns;

/// One data row of the file.
#[derive(Debug, Clone)]
pub struct Row {
    /// Line of the file the row starts on; the header is line 1.
    pub line: u64,
    pub record: csv::StringRecord,
}

/// Why a row was refused: the field it concerns (when known) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub field: Option<&'static str>,
    pub message: String,
}

impl RowError {
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            message: message.into(),
        }
    }

    pub fn row(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }
}

/// How a row landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landed {
    Created,
    Updated,
    Unchanged,
}

impl Landed {
    /// Created when the row's record is new, else updated when it changed.
    pub fn of(created: bool, changed: bool) -> Self {
        match (created, changed) {
            (true, _) => Self::Created,
            (false, true) => Self::Updated,
            (false, false) => Self::Unchanged,
        }
    }
}

/// Why a row went no further: it is rejected (the rest of the file goes on), or the
/// import stops.
#[derive(Debug)]
pub enum Halt {
    Reject(RowError),
    Stop(anyhow::Error),
}

impl From<RowError> for Halt {
    fn from(error: RowError) -> Self {
        Self::Reject(error)
    }
}

impl From<anyhow::Error> for Halt {
    fn from(err: anyhow::Error) -> Self {
        Self::Stop(err)
    }
}

/// A rejected row, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub line: u64,
    /// The CSV column of the field, when a column feeds it.
    pub column: Option<String>,
    pub field: Option<&'static str>,
    pub message: String,
}

impl Rejection {
    /// Where in the row and why, without the row number.
    pub fn reason(&self) -> String {
        let place = match (&self.column, self.field) {
            (Some(column), Some(field)) if column != field => {
                format!("column {column:?} ({field}): ")
            }
            (Some(column), _) => format!("column {column:?}: "),
            (None, Some(field)) => format!("{field}: "),
            (None, None) => String::new(),
        };
        format!("{place}{}", self.message)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}, {}", self.line, self.reason())
    }
}

/// Rows by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rows read: {} new, {} updated, {} unchanged, {} rejected",
            self.read, self.created, self.updated, self.unchanged, self.rejected
        )
    }
}

/// Progress on stderr: a bar on a terminal, a line every few seconds
/// otherwise (a log file, CI).
struct Progress {
    bar: Option<ProgressBar>,
    next_line: Instant,
    total_bytes: u64,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    fn new(total_bytes: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{percent:>3}% [{bar:20}] {wide_msg}") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Self {
            bar,
            next_line: Instant::now() + LINE_EVERY,
            total_bytes,
        }
    }

    fn update(&mut self, bytes: u64, tally: &Tally) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes);
                bar.set_message(tally.to_string());
            }
            None if Instant::now() >= self.next_line => {
                self.next_line = Instant::now() + LINE_EVERY;
                let percent = (bytes * 100).checked_div(self.total_bytes).unwrap_or(100);
                eprintln!("import: {percent}% of the file, {tally}");
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Collects outcomes while the rows are processed.
pub struct Report {
    pub tally: Tally,
    pub rejections: Vec<Rejection>,
    columns: Columns,
    rejects: Option<csv::Writer<File>>,
    progress: Progress,
}

impl Report {
    pub fn new(columns: Columns, rejects: Option<&Path>, total_bytes: u64) -> anyhow::Result<Self> {
        let rejects = match rejects {
            None => None,
            Some(path) => {
                let mut writer = csv::Writer::from_path(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                let mut header: Vec<&str> = columns.headers().iter().map(String::as_str).collect();
                header.extend(["reject_row", "reject_reason"]);
                writer.write_record(&header)?;
                Some(writer)
            }
        };
        Ok(Self {
            tally: Tally::default(),
            rejections: Vec::new(),
            columns,
            rejects,
            progress: Progress::new(total_bytes),
        })
    }

    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    pub fn read(&mut self, bytes: u64) {
        self.tally.read += 1;
        self.progress.update(bytes, &self.tally);
    }

    pub fn created(&mut self, n: u64) {
        self.tally.created += n;
    }

    pub fn updated(&mut self) {
        self.tally.updated += 1;
    }

    pub fn unchanged(&mut self, n: u64) {
        self.tally.unchanged += n;
    }

    /// Counts a row by how it landed, or records its rejection; a stop is the
    /// import's error.
    pub fn settle(&mut self, row: &Row, result: Result<Landed, Halt>) -> anyhow::Result<()> {
        match result {
            Ok(Landed::Created) => self.created(1),
            Ok(Landed::Updated) => self.updated(),
            Ok(Landed::Unchanged) => self.unchanged(1),
            Err(Halt::Reject(error)) => return self.reject(row, error),
            Err(Halt::Stop(err)) => return Err(err),
        }
        Ok(())
    }

    /// Records a refused row; the rest of the file goes on.
    pub fn reject(&mut self, row: &Row, error: RowError) -> anyhow::Result<()> {
        let rejection = Rejection {
            line: row.line,
            column: error
                .field
                .and_then(|f| self.columns.header_of(f))
                .map(str::to_owned),
            field: error.field,
            message: error.message,
        };
        if let Some(writer) = &mut self.rejects {
            let mut fields: Vec<String> = (0..self.columns.headers().len())
                .map(|i| row.record.get(i).unwrap_or_default().to_owned())
                .collect();
            fields.push(row.line.to_string());
            fields.push(rejection.reason());
            writer.write_record(&fields)?;
        }
        self.tally.rejected += 1;
        self.rejections.push(rejection);
        Ok(())
    }

    pub fn finish(&mut self) -> anyhow::Result<()> {
        self.progress.finish();
        if let Some(writer) = &mut self.rejects {
            writer.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_record_is_created_and_a_changed_one_updated() {
        assert_eq!(Landed::of(true, false), Landed::Created);
        assert_eq!(Landed::of(true, true), Landed::Created);
        assert_eq!(Landed::of(false, true), Landed::Updated);
        assert_eq!(Landed::of(false, false), Landed::Unchanged);
    }
}
