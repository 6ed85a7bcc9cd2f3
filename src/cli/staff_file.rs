//! Staff files (`safehire gen people` form: doc_type,doc_number,name,staff_ref and optional
//! hire_date, departure_date, consent_ref) read as a stream of chunks, for `batch` and `roster`.
//! Rows are read on a blocking thread, one chunk ahead of the network, so that a million-row
//! file never sits in memory whole.

use std::io::Read;
use std::path::Path;

use tokio::sync::mpsc;

use super::CliError;
use crate::identity::DocType;
use crate::proto;
use crate::tabular::{Columns, Encoding, Table, TableError};

const REQUIRED: &[&str] = &["doc_type", "doc_number", "name", "staff_ref"];
const OPTIONAL: &[&str] = &["hire_date", "departure_date", "consent_ref"];
/// Chunks read ahead of the network.
const READ_AHEAD: usize = 4;

/// One input row as read, kept to be written back with its result.
pub struct Line {
    pub number: u64,
    pub fields: Vec<String>,
    /// Why the row was not sent: a problem found before it reached the server.
    pub problem: Option<String>,
}

/// A row ready to send.
pub struct StaffRow {
    pub number: u64,
    pub identity: proto::Identity,
    pub staff_ref: String,
    pub hire_date: String,
    pub departure_date: String,
    pub consent_ref: String,
}

/// Consecutive lines of the file and the rows among them that are to be sent.
pub struct Chunk {
    pub lines: Vec<Line>,
    pub rows: Vec<StaffRow>,
}

/// An opened staff file whose header has the required columns.
pub struct StaffFile {
    table: Table,
    columns: Columns,
    pub header: Vec<String>,
    /// Rows in the file, for a progress bar (an estimate for CSV: its line count).
    pub approximate_rows: u64,
}

impl StaffFile {
    pub fn open(path: &Path, encoding: Option<&str>) -> Result<Self, CliError> {
        let encoding = match encoding {
            None => None,
            Some(text) => Some(Encoding::parse(text).ok_or_else(|| {
                CliError::usage(format!("--encoding {text}: utf-8, gb18030 or gbk"))
            })?),
        };
        let table = Table::open(path, encoding).map_err(invalid)?;
        let approximate_rows = match table.row_count() {
            Some(rows) => rows,
            None => count_lines(path)?.saturating_sub(1),
        };
        Self::with_table(table, approximate_rows)
    }

    /// A staff file uploaded to the web portal, read from memory (its identities never touch
    /// the disk), with the same columns and row rules as a file given to the command line.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, CliError> {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        let table = Table::from_bytes(name, bytes, None).map_err(invalid)?;
        let approximate_rows = table.row_count().unwrap_or(lines.saturating_sub(1));
        Self::with_table(table, approximate_rows)
    }

    fn with_table(table: Table, approximate_rows: u64) -> Result<Self, CliError> {
        let columns = table.columns(REQUIRED, OPTIONAL).map_err(invalid)?;
        let header = table.header.clone();
        Ok(Self {
            table,
            columns,
            header,
            approximate_rows,
        })
    }

    pub fn has(&self, column: &str) -> bool {
        self.columns.has(column)
    }

    /// Reads the file on a blocking thread into chunks of at most `rows_per_chunk` rows to send.
    /// A row that cannot be parsed becomes a line with its problem; a read failure ends the
    /// stream with an error.
    pub fn chunks(self, rows_per_chunk: usize) -> mpsc::Receiver<Result<Chunk, CliError>> {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        let Self { table, columns, .. } = self;
        tokio::task::spawn_blocking(move || {
            let width = table.header.len();
            let mut rows = table.rows();
            let mut chunk = Chunk::empty();
            while let Some(read) = rows.next() {
                match read {
                    Ok(row) => chunk.push(&columns, row.number, row.fields, row.problems),
                    Err(TableError::Format { reason, .. }) => chunk.lines.push(Line {
                        number: rows.last_number(),
                        fields: vec![String::new(); width],
                        problem: Some(reason),
                    }),
                    Err(other) => {
                        let _ = tx.blocking_send(Err(invalid(other)));
                        return;
                    }
                }
                if chunk.rows.len() >= rows_per_chunk
                    && tx
                        .blocking_send(Ok(std::mem::replace(&mut chunk, Chunk::empty())))
                        .is_err()
                {
                    return;
                }
            }
            if !chunk.lines.is_empty() {
                let _ = tx.blocking_send(Ok(chunk));
            }
        });
        rx
    }
}

impl Chunk {
    fn empty() -> Self {
        Self {
            lines: Vec::new(),
            rows: Vec::new(),
        }
    }

    fn push(
        &mut self,
        columns: &Columns,
        number: u64,
        fields: Vec<String>,
        problems: Vec<(String, String)>,
    ) {
        let get = |name: &str| {
            columns
                .index(name)
                .and_then(|i| fields.get(i))
                .map_or(String::new(), |f| f.trim().to_string())
        };
        let doc_type = DocType::from_slug(&get("doc_type"));
        let problem = problems
            .first()
            .map(|(column, reason)| format!("{column}: {reason}"))
            .or_else(|| doc_type.as_ref().err().map(|e| e.to_string()));
        match (problem, doc_type) {
            (None, Ok(doc_type)) => self.rows.push(StaffRow {
                number,
                identity: proto::Identity {
                    doc_type: i32::from(doc_type.code()),
                    doc_number: get("doc_number"),
                    name: get("name"),
                },
                staff_ref: get("staff_ref"),
                hire_date: get("hire_date"),
                departure_date: get("departure_date"),
                consent_ref: get("consent_ref"),
            }),
            (problem, _) => {
                self.lines.push(Line {
                    number,
                    fields,
                    problem: Some(problem.unwrap_or_default()),
                });
                return;
            }
        }
        self.lines.push(Line {
            number,
            fields,
            problem: None,
        });
    }
}

fn invalid(error: TableError) -> CliError {
    CliError::from(error)
}

/// Newlines in a file: a cheap row estimate for a CSV (a quoted field may hold more).
fn count_lines(path: &Path) -> Result<u64, CliError> {
    let mut file = std::fs::File::open(path).map_err(|e| CliError::io(path, e))?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(|e| CliError::io(path, e))?;
        if read == 0 {
            return Ok(lines);
        }
        lines += buffer[..read].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}
