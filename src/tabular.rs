//! Reading and writing staff files: CSV (UTF-8, UTF-8 with BOM, GB18030/GBK) and
//! `.xlsx` workbooks, as exported by Chinese employers.
//!
//! Reading is strict on purpose: a file decoded with the wrong encoding or a
//! spreadsheet that silently rounded an 18-digit ID number would make the
//! barring check look up the wrong people, so such input is reported instead of
//! guessed at.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use calamine::{Data, Range, Reader, SheetType, SheetVisible, Xlsx};

/// Text encoding of a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    Utf8,
    /// GB18030; GBK and GB2312 files are read as GB18030, their superset.
    Gb18030,
}

impl Encoding {
    /// Parses a user-given encoding name (case-insensitive): `utf-8`, `utf8`,
    /// `gb18030`, `gbk` or `gb2312`.
    pub fn parse(text: &str) -> Option<Encoding> {
        match text.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "gb18030" | "gbk" | "gb2312" => Some(Encoding::Gb18030),
            _ => None,
        }
    }

    /// Canonical name, for messages.
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Gb18030 => "GB18030",
        }
    }
}

/// Why a table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The content is not a table we can read faithfully.
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },
    /// The header lacks columns the caller needs.
    #[error("{path}: missing column(s) {missing}; the header must contain {expected}")]
    MissingColumns {
        path: String,
        missing: String,
        expected: String,
    },
}

/// Excel refuses to show more than 15 significant digits, so a number cell at
/// or above this magnitude has already lost digits (an 18-digit ID number).
const FLOAT_EXACT_LIMIT: f64 = 1e15;

/// Reason recorded for a number cell that may have lost digits.
const FLOAT_PROBLEM: &str = "number stored as a float; format the column as text";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based data row number: the first row after the header is 1.
    pub number: u64,
    /// Cell texts; at least as many as header columns (missing trailing
    /// fields read as "").
    pub fields: Vec<String>,
    /// Cell-level problems as (column name, reason); the field itself is "".
    /// Callers decide whether a problem in a column they do not use matters.
    pub problems: Vec<(String, String)>,
}

/// An opened table: the header is read, the rows are streamed by [`Table::rows`].
pub struct Table {
    /// Header names, trimmed, with any byte-order mark removed and trailing
    /// empty names dropped.
    pub header: Vec<String>,
    path: String,
    encoding: Option<Encoding>,
    source: Source,
}

enum Source {
    Csv(csv::Reader<Box<dyn Read + Send>>),
    /// calamine has no owned streaming reader, so the first sheet is held in
    /// memory; `next` is the relative index of the next data row.
    Xlsx {
        range: Range<Data>,
        next: usize,
    },
}

impl Table {
    /// Opens a `.csv` or `.xlsx` file, chosen by extension (case-insensitive),
    /// and reads its header row.
    ///
    /// CSV: with `encoding` None the file is UTF-8 if it is valid UTF-8 and
    /// GB18030 otherwise; a UTF-8 byte-order mark is stripped. A given encoding
    /// that contradicts the bytes is an error rather than garbled names.
    ///
    /// XLSX: the first visible worksheet; see [`Row::problems`] for number
    /// cells that cannot be trusted.
    pub fn open(path: &Path, encoding: Option<Encoding>) -> Result<Table, TableError> {
        Self::open_input(Input::File(path), encoding)
    }

    /// Like [`Table::open`] for a file held in memory (an upload to the portal) and named
    /// `name`: identities in it never touch the disk.
    pub fn from_bytes(
        name: &str,
        bytes: Vec<u8>,
        encoding: Option<Encoding>,
    ) -> Result<Table, TableError> {
        Self::open_input(Input::Bytes(Path::new(name), bytes), encoding)
    }

    fn open_input(input: Input<'_>, encoding: Option<Encoding>) -> Result<Table, TableError> {
        let path = input.path();
        let shown = path.display().to_string();
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => open_csv(input, shown, encoding),
            Some("xlsx") => open_xlsx(input, shown),
            Some("xls") => Err(format_error(
                shown,
                "old Excel .xls files are not supported; save the sheet as .xlsx or CSV",
            )),
            _ => Err(format_error(
                shown,
                "unsupported file type; expected a .csv or .xlsx file",
            )),
        }
    }

    /// Finds each wanted column by header name (trimmed, case-insensitive, English or one of
    /// its [`CHINESE_HEADERS`]).
    /// All missing required columns are reported at once so the user can fix
    /// the header in one go; a wanted name appearing twice is ambiguous and an
    /// error.
    pub fn columns(&self, required: &[&str], optional: &[&str]) -> Result<Columns, TableError> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for &name in required.iter().chain(optional) {
            let mut hits = self
                .header
                .iter()
                .enumerate()
                .filter(|(_, h)| header_names(h, name))
                .map(|(i, _)| i);
            match (hits.next(), hits.next()) {
                (Some(index), None) => found.push((name.trim().to_lowercase(), index)),
                (Some(first), Some(second)) => {
                    return Err(format_error(
                        self.path.clone(),
                        format!(
                            "column {name} appears more than once (columns {} and {})",
                            first + 1,
                            second + 1
                        ),
                    ));
                }
                (None, _) if required.contains(&name) => missing.push(name),
                (None, _) => {}
            }
        }
        if missing.is_empty() {
            Ok(Columns { found })
        } else {
            Err(TableError::MissingColumns {
                path: self.path.clone(),
                missing: missing.join(", "),
                expected: required.join(", "),
            })
        }
    }

    /// Streams the data rows. A row that cannot be parsed is an `Err` for that
    /// row and iteration continues; a read failure ends the iteration after
    /// its `Err`. Rows whose every field is blank are skipped (spreadsheets
    /// export formatted-but-empty rows) but still counted in [`Row::number`].
    pub fn rows(self) -> Rows {
        Rows {
            header: self.header,
            path: self.path,
            source: self.source,
            number: 0,
            done: false,
        }
    }

    /// Data rows (blank ones included) when known without reading them: a sheet's height.
    pub fn row_count(&self) -> Option<u64> {
        match &self.source {
            Source::Csv(_) => None,
            Source::Xlsx { range, next } => Some(range.height().saturating_sub(*next) as u64),
        }
    }

    /// The detected or given encoding; None for `.xlsx`.
    pub fn encoding(&self) -> Option<Encoding> {
        self.encoding
    }
}

/// Positions of the wanted columns, from [`Table::columns`].
#[derive(Debug, Clone)]
pub struct Columns {
    /// (lowercased wanted name, field index) of the columns present.
    found: Vec<(String, usize)>,
}

impl Columns {
    /// The field of `row` under column `name`; "" when the column is absent
    /// from the header or the row is short.
    pub fn get<'a>(&self, row: &'a Row, name: &str) -> &'a str {
        self.index(name)
            .and_then(|i| row.fields.get(i))
            .map_or("", String::as_str)
    }

    /// Whether an optional column is present in the header.
    pub fn has(&self, name: &str) -> bool {
        self.index(name).is_some()
    }

    /// Field index of column `name`, when the header has it.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.found
            .iter()
            .find(|(key, _)| same_name(key, name))
            .map(|&(_, i)| i)
    }
}

/// Iterator over the data rows of a [`Table`].
pub struct Rows {
    header: Vec<String>,
    path: String,
    source: Source,
    /// Number of the last row read (blank ones included).
    number: u64,
    done: bool,
}

impl Rows {
    /// Number of the last row read, so that a caller can name a row that failed to parse.
    pub fn last_number(&self) -> u64 {
        self.number
    }
}

impl Iterator for Rows {
    type Item = Result<Row, TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let row = match &mut self.source {
                Source::Csv(reader) => {
                    next_csv(reader, &self.path, self.number + 1, &mut self.done)
                }
                Source::Xlsx { range, next } => next_xlsx(range, next, &self.header),
            };
            let Some(row) = row else {
                self.done = true;
                break;
            };
            self.number += 1;
            match row {
                Ok((fields, problems)) if problems.is_empty() && is_blank(&fields) => continue,
                Ok((fields, problems)) => {
                    return Some(Ok(Row {
                        number: self.number,
                        fields: fit_to_header(fields, self.header.len()),
                        problems,
                    }));
                }
                Err(error) => return Some(Err(error)),
            }
        }
        None
    }
}

type RawRow = (Vec<String>, Vec<(String, String)>);

/// Reads the next CSV record, numbered `row` for messages; None at the end.
fn next_csv(
    reader: &mut csv::Reader<Box<dyn Read + Send>>,
    path: &str,
    row: u64,
    done: &mut bool,
) -> Option<Result<RawRow, TableError>> {
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Some(Ok((record.iter().map(str::to_owned).collect(), Vec::new()))),
        Ok(false) => None,
        Err(error) => {
            let line = error
                .position()
                .map_or_else(|| reader.position().line(), csv::Position::line);
            // The underlying reader cannot resume after an I/O error.
            *done = matches!(error.kind(), csv::ErrorKind::Io(_));
            Some(Err(csv_error(
                path,
                error,
                &format!("row {row} (line {line})"),
            )))
        }
    }
}

/// Renders the next non-header row of the sheet; None at the end.
fn next_xlsx(
    range: &Range<Data>,
    next: &mut usize,
    header: &[String],
) -> Option<Result<RawRow, TableError>> {
    if *next >= range.height() {
        return None;
    }
    let row = xlsx_row(range, *next, header);
    *next += 1;
    Some(Ok(row))
}

/// Where a table's bytes are: a file, or memory.
enum Input<'a> {
    File(&'a Path),
    Bytes(&'a Path, Vec<u8>),
}

impl Input<'_> {
    fn path(&self) -> &Path {
        match self {
            Input::File(path) | Input::Bytes(path, _) => path,
        }
    }
}

fn open_csv(
    input: Input<'_>,
    shown: String,
    requested: Option<Encoding>,
) -> Result<Table, TableError> {
    let scan = match &input {
        Input::File(path) => File::open(path).and_then(scan_utf8),
        Input::Bytes(_, bytes) => scan_utf8(bytes.as_slice()),
    }
    .map_err(|source| io_error(&shown, source))?;
    let encoding =
        choose_encoding(&scan, requested).map_err(|reason| format_error(&shown, reason))?;

    let file: Box<dyn Read + Send> = match input {
        Input::File(path) => Box::new(File::open(path).map_err(|source| io_error(&shown, source))?),
        Input::Bytes(_, bytes) => Box::new(io::Cursor::new(bytes)),
    };
    let input: Box<dyn Read + Send> = match encoding {
        Encoding::Utf8 => {
            let mut buffered = BufReader::new(file);
            // Stripped before csv sees it: a BOM followed by a quoted first
            // header would otherwise keep its quotes.
            if buffered
                .fill_buf()
                .map_err(|source| io_error(&shown, source))?
                .starts_with(UTF8_BOM)
            {
                buffered.consume(UTF8_BOM.len());
            }
            Box::new(buffered)
        }
        Encoding::Gb18030 => Box::new(Gb18030Reader::new(file)),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);

    let mut record = csv::StringRecord::new();
    let header = loop {
        match reader.read_record(&mut record) {
            Ok(true) => {
                let fields: Vec<String> = record.iter().map(str::to_owned).collect();
                if !is_blank(&fields) {
                    break fields;
                }
            }
            Ok(false) => return Err(format_error(shown, "no header row (the file is empty)")),
            Err(error) => return Err(csv_error(&shown, error, "header")),
        }
    };
    Ok(Table {
        header: clean_header(header),
        path: shown,
        encoding: Some(encoding),
        source: Source::Csv(reader),
    })
}

/// What a pass over the raw bytes says about UTF-8.
struct Utf8Scan {
    bom: bool,
    non_ascii: bool,
    /// Byte offset and 1-based line of the first invalid byte.
    invalid_at: Option<(u64, u64)>,
}

fn choose_encoding(scan: &Utf8Scan, requested: Option<Encoding>) -> Result<Encoding, String> {
    let invalid = |(offset, line): (u64, u64)| {
        format!("not valid UTF-8 at line {line} (byte offset {offset})")
    };
    match (requested, scan.invalid_at) {
        (Some(Encoding::Utf8), Some(at)) => Err(format!(
            "{}; the file may be GB18030/GBK: try --encoding gb18030",
            invalid(at)
        )),
        (None, Some(at)) if scan.bom => Err(format!(
            "starts with a UTF-8 byte-order mark but is {}",
            invalid(at)
        )),
        (None, Some(_)) => Ok(Encoding::Gb18030),
        (None | Some(Encoding::Utf8), None) => Ok(Encoding::Utf8),
        (Some(Encoding::Gb18030), None) if scan.non_ascii => Err(
            "the file is UTF-8 with non-ASCII text, which reading it as GB18030 would garble; \
             omit --encoding or use --encoding utf-8"
                .to_owned(),
        ),
        (Some(Encoding::Gb18030), _) => Ok(Encoding::Gb18030),
    }
}

/// Checks the whole file for UTF-8 validity in fixed-size chunks, so detection
/// costs one sequential read and no memory proportional to the file.
fn scan_utf8(mut file: impl Read) -> io::Result<Utf8Scan> {
    const CHUNK: usize = 64 * 1024;
    // Room for a chunk plus up to 3 bytes of a character split across reads.
    let mut buf = vec![0u8; CHUNK + 4];
    let mut carry = 0;
    let mut offset = 0u64; // file offset of buf[0]
    let mut line = 1u64;
    let mut scan = Utf8Scan {
        bom: false,
        non_ascii: false,
        invalid_at: None,
    };
    let mut first = true;
    loop {
        let read = file.read(&mut buf[carry..])?;
        let len = carry + read;
        if first && len >= UTF8_BOM.len() {
            scan.bom = buf.starts_with(UTF8_BOM);
            first = false;
        }
        let (valid, incomplete) = match std::str::from_utf8(&buf[..len]) {
            Ok(_) => (len, false),
            Err(e) => (e.valid_up_to(), e.error_len().is_none()),
        };
        let good = &buf[..valid];
        line += newlines(good);
        scan.non_ascii |= !good.is_ascii();
        // An incomplete character at the very end of the file is invalid too.
        if valid < len && (read == 0 || !incomplete) {
            scan.invalid_at = Some((offset + valid as u64, line));
            return Ok(scan);
        }
        if read == 0 {
            return Ok(scan);
        }
        buf.copy_within(valid..len, 0);
        carry = len - valid;
        offset += valid as u64;
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Streams GB18030 bytes as UTF-8, failing on malformed input instead of
/// inserting replacement characters that would garble names unnoticed.
struct Gb18030Reader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    input_start: usize,
    input_end: usize,
    output: Vec<u8>,
    output_start: usize,
    output_end: usize,
    /// Input bytes handed to the decoder so far, for error offsets.
    consumed: u64,
    eof: bool,
    finished: bool,
    at_start: bool,
    /// A decoding error to report once the output before it is delivered.
    pending_error: Option<String>,
}

impl<R: Read> Gb18030Reader<R> {
    fn new(inner: R) -> Self {
        const SIZE: usize = 64 * 1024;
        Gb18030Reader {
            inner,
            // GB18030 has its own BOM; encoding_rs only sniffs UTF BOMs, which
            // must not switch the encoding the caller chose.
            decoder: encoding_rs::GB18030.new_decoder_without_bom_handling(),
            input: vec![0; SIZE],
            input_start: 0,
            input_end: 0,
            output: vec![0; SIZE * 2],
            output_start: 0,
            output_end: 0,
            consumed: 0,
            eof: false,
            finished: false,
            at_start: true,
            pending_error: None,
        }
    }
}

impl<R: Read> Read for Gb18030Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.output_start < self.output_end {
                let n = buf.len().min(self.output_end - self.output_start);
                buf[..n].copy_from_slice(&self.output[self.output_start..self.output_start + n]);
                self.output_start += n;
                return Ok(n);
            }
            if let Some(message) = self.pending_error.take() {
                self.finished = true;
                return Err(io::Error::new(io::ErrorKind::InvalidData, message));
            }
            if self.finished {
                return Ok(0);
            }
            if self.input_start == self.input_end && !self.eof {
                let n = self.inner.read(&mut self.input)?;
                self.eof = n == 0;
                self.input_start = 0;
                self.input_end = n;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.input_start..self.input_end],
                &mut self.output,
                self.eof,
            );
            self.input_start += read;
            self.consumed += read as u64;
            self.output_start = 0;
            self.output_end = written;
            if self.at_start && written > 0 {
                self.at_start = false;
                // The GB18030 BOM decodes to U+FEFF; drop it like a UTF-8 BOM.
                if self.output[..written].starts_with(UTF8_BOM) {
                    self.output_start = UTF8_BOM.len();
                }
            }
            match result {
                encoding_rs::DecoderResult::InputEmpty => self.finished = self.eof,
                encoding_rs::DecoderResult::OutputFull => {}
                encoding_rs::DecoderResult::Malformed(bad, after) => {
                    let at = self.consumed - u64::from(bad) - u64::from(after);
                    self.pending_error =
                        Some(format!("not valid GB18030 text at byte offset {at}"));
                }
            }
        }
    }
}

/// Opens a workbook, turning a panic inside calamine into an error: on some crafted cell
/// references its own arithmetic overflows, which panics in a build with overflow checks
/// (calamine issues #694, #709; found by `fuzz/`). A file its user chose must not end their
/// client.
fn open_xlsx(input: Input<'_>, shown: String) -> Result<Table, TableError> {
    let named = shown.clone();
    let read = || match input {
        Input::File(path) => read_xlsx(calamine::open_workbook(path), shown),
        Input::Bytes(_, bytes) => read_xlsx(Xlsx::new(io::Cursor::new(bytes)), shown),
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(format_error(
            named,
            "not a readable .xlsx workbook: its sheet XML is malformed",
        ))
    })
}

fn read_xlsx<RS: std::io::Read + std::io::Seek>(
    opened: Result<Xlsx<RS>, calamine::XlsxError>,
    shown: String,
) -> Result<Table, TableError> {
    let mut workbook = opened.map_err(|e| match e {
        calamine::XlsxError::Io(source) => io_error(&shown, source),
        other => format_error(&shown, format!("not a readable .xlsx workbook: {other}")),
    })?;
    let sheets = workbook.sheets_metadata();
    let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
    // The sheet a person sees first: hidden sheets often hold lookup lists.
    let Some(name) = worksheets()
        .find(|s| s.visible == SheetVisible::Visible)
        .or_else(|| worksheets().next())
        .map(|s| s.name.clone())
    else {
        return Err(format_error(shown, "the workbook has no worksheet"));
    };
    let range = read_sheet(&mut workbook, &name)
        .map_err(|reason| format_error(&shown, format!("worksheet {name}: {reason}")))?;

    let mut next = 0;
    while next < range.height() {
        let (fields, _) = xlsx_row(&range, next, &[]);
        next += 1;
        if !is_blank(&fields) {
            return Ok(Table {
                header: clean_header(fields),
                path: shown,
                encoding: None,
                source: Source::Xlsx { range, next },
            });
        }
    }
    Err(format_error(
        shown,
        format!("no header row (worksheet {name} is empty)"),
    ))
}

/// Excel's grid: a cell reference past it does not come from a spreadsheet program.
const XLSX_MAX_ROWS: u32 = 1_048_576;
const XLSX_MAX_COLUMNS: u32 = 16_384;
/// Cells the box around a sheet's cells may span: a million-row staff file of sixteen columns.
const XLSX_MAX_GRID_CELLS: u64 = 16 * 1_048_576;

/// Reads a sheet cell by cell and builds its grid only once its extent is known to be sane.
/// calamine sizes the grid from the cell references as written, so one crafted reference
/// (`r="ZZZZZZZ3"`) would ask for hundreds of gigabytes and abort the process (calamine issues
/// #694, #709; found by `fuzz/`).
fn read_sheet<RS: std::io::Read + std::io::Seek>(
    workbook: &mut Xlsx<RS>,
    name: &str,
) -> Result<Range<Data>, String> {
    let mut reader = match workbook.worksheet_cells_reader(name) {
        Ok(reader) => reader,
        Err(calamine::XlsxError::NotAWorksheet(_)) => return Ok(Range::empty()),
        Err(e) => return Err(e.to_string()),
    };
    let mut cells = Vec::new();
    let (mut top, mut bottom, mut left, mut right) = (u32::MAX, 0, u32::MAX, 0);
    while let Some(cell) = reader.next_cell().map_err(|e| e.to_string())? {
        let (row, column) = cell.get_position();
        if row >= XLSX_MAX_ROWS || column >= XLSX_MAX_COLUMNS {
            return Err(format!(
                "a cell lies outside a spreadsheet's {XLSX_MAX_ROWS} rows and {XLSX_MAX_COLUMNS} columns"
            ));
        }
        if matches!(cell.get_value(), calamine::DataRef::Empty) {
            continue;
        }
        (top, bottom) = (top.min(row), bottom.max(row));
        (left, right) = (left.min(column), right.max(column));
        let spanned = u64::from(bottom - top + 1) * u64::from(right - left + 1);
        if spanned > XLSX_MAX_GRID_CELLS {
            return Err(format!(
                "its cells span {} rows and {} columns, more than {XLSX_MAX_GRID_CELLS} cells",
                bottom - top + 1,
                right - left + 1
            ));
        }
        cells.push(calamine::Cell::new(
            (row, column),
            Data::from(cell.get_value().clone()),
        ));
    }
    Ok(Range::from_sparse(cells))
}

/// Renders one sheet row as text; cells that cannot be trusted become "" plus
/// a problem naming their column.
fn xlsx_row(range: &Range<Data>, row: usize, header: &[String]) -> RawRow {
    let mut fields = Vec::with_capacity(range.width());
    let mut problems = Vec::new();
    for column in 0..range.width() {
        match range
            .get((row, column))
            .map_or(Ok(String::new()), render_cell)
        {
            Ok(text) => fields.push(text),
            Err(reason) => {
                let name = header
                    .get(column)
                    .filter(|h| !h.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("column {}", column + 1));
                problems.push((name, reason));
                fields.push(String::new());
            }
        }
    }
    (fields, problems)
}

fn render_cell(cell: &Data) -> Result<String, String> {
    match cell {
        Data::Empty => Ok(String::new()),
        Data::String(text) => Ok(text.clone()),
        Data::Int(n) => Ok(n.to_string()),
        Data::Float(f) if f.abs() >= FLOAT_EXACT_LIMIT => Err(FLOAT_PROBLEM.to_owned()),
        Data::Float(f) => Ok(render_number(*f)),
        Data::Bool(b) => Ok(b.to_string()),
        Data::DateTime(dt) if dt.is_duration() => Ok(render_number(dt.as_f64())),
        Data::DateTime(dt) => {
            let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
            Ok(if (h, mi, s, ms) == (0, 0, 0, 0) {
                format!("{y:04}-{mo:02}-{d:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
            })
        }
        Data::DateTimeIso(text) => Ok(text.strip_suffix("T00:00:00").unwrap_or(text).to_owned()),
        Data::DurationIso(text) => Ok(text.clone()),
        Data::Error(e) => Err(format!("the cell holds the Excel error {e}")),
    }
}

/// Whole numbers print without ".0" so IDs typed as numbers read back as typed.
fn render_number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < FLOAT_EXACT_LIMIT {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// Writes a CSV file in `encoding`, optionally with a byte-order mark (the
/// UTF-8 BOM, or U+FEFF encoded in GB18030), like spreadsheet exports do.
pub fn write_csv<W: Write>(
    out: W,
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
    encoding: Encoding,
    bom: bool,
) -> io::Result<()> {
    let mut sink = EncodingWriter {
        inner: out,
        encoding,
        pending: Vec::new(),
    };
    if bom {
        sink.write_all("\u{feff}".as_bytes())?;
    }
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::CRLF)
        .from_writer(sink);
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(&row)?;
    }
    writer.flush()?;
    let sink = writer
        .into_inner()
        .map_err(|e| io::Error::new(e.error().kind(), e.error().to_string()))?;
    sink.finish()
}

/// Encodes the UTF-8 produced by the csv writer, which may split a character
/// across writes, so incomplete trailing bytes wait for the next write.
struct EncodingWriter<W> {
    inner: W,
    encoding: Encoding,
    pending: Vec<u8>,
}

impl<W: Write> EncodingWriter<W> {
    fn finish(mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "text ended in the middle of a character",
            ));
        }
        self.inner.flush()
    }
}

impl<W: Write> Write for EncodingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.encoding == Encoding::Utf8 {
            return self.inner.write(buf);
        }
        self.pending.extend_from_slice(buf);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(text) => text.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        };
        let text = std::str::from_utf8(&self.pending[..valid])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // GB18030 covers all of Unicode, so nothing is unmappable.
        let (bytes, _, _) = encoding_rs::GB18030.encode(text);
        self.inner.write_all(&bytes)?;
        self.pending.drain(..valid);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a one-sheet `.xlsx` with every cell stored as text (and formatted
/// as text), so 18-digit ID numbers survive Excel.
pub fn write_xlsx(
    path: &Path,
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<(), TableError> {
    let shown = path.display().to_string();
    let failed = |e: rust_xlsxwriter::XlsxError| match e {
        rust_xlsxwriter::XlsxError::IoError(source) => io_error(&shown, source),
        other => format_error(&shown, other.to_string()),
    };
    let text = rust_xlsxwriter::Format::new().set_num_format("@");
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let header = header.iter().map(|h| (*h).to_owned());
    for (r, row) in std::iter::once(header.collect()).chain(rows).enumerate() {
        let r = u32::try_from(r).map_err(|_| format_error(&shown, "too many rows for .xlsx"))?;
        for (c, value) in row.into_iter().enumerate() {
            let c =
                u16::try_from(c).map_err(|_| format_error(&shown, "too many columns for .xlsx"))?;
            sheet
                .write_string_with_format(r, c, value, &text)
                .map_err(failed)?;
        }
    }
    workbook.save(path).map_err(failed)
}

fn csv_error(path: &str, error: csv::Error, place: &str) -> TableError {
    let reason = format!("{place}: {error}");
    match error.into_kind() {
        csv::ErrorKind::Io(source) if source.kind() != io::ErrorKind::InvalidData => {
            io_error(path, io::Error::new(source.kind(), reason))
        }
        _ => format_error(path, reason),
    }
}

fn io_error(path: &str, source: io::Error) -> TableError {
    TableError::Io {
        path: path.to_owned(),
        source,
    }
}

fn format_error(path: impl Into<String>, reason: impl Into<String>) -> TableError {
    TableError::Format {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The Chinese headers accepted for each column, by its English name: one table for staff,
/// result, registry and organisation files, so that a unit can keep the headers its own staff
/// sheets have (证件类型,证件号码,姓名,工号). The first Chinese name is the one written out.
pub const CHINESE_HEADERS: &[(&str, &[&str])] = &[
    ("row", &["行号"]),
    ("doc_type", &["证件类型"]),
    ("doc_number", &["证件号码", "证件号"]),
    ("name", &["姓名", "名称", "单位名称"]),
    ("staff_ref", &["工号", "员工编号"]),
    ("hire_date", &["入职日期"]),
    ("departure_date", &["离职日期"]),
    ("consent_ref", &["同意书编号", "授权书编号"]),
    ("outcome", &["查询结果"]),
    ("check_id", &["查询编号"]),
    ("checked_at", &["查询时间"]),
    ("review_id", &["复查编号"]),
    ("error", &["错误"]),
    ("source_ref", &["来源编号"]),
    ("category", &["类别"]),
    ("kind", &["种类"]),
    ("decided_on", &["决定日期"]),
    ("sealed", &["封存"]),
    ("uscc", &["统一社会信用代码"]),
    ("role", &["角色"]),
    ("region", &["行政区划代码"]),
    ("industry", &["行业"]),
    ("supervising_bureau", &["主管部门"]),
];

/// The Chinese header written for column `name`, or `name` itself when it has none.
pub fn chinese_header(name: &str) -> &str {
    CHINESE_HEADERS
        .iter()
        .find(|(english, _)| *english == name)
        .and_then(|(_, chinese)| chinese.first().copied())
        .unwrap_or(name)
}

/// Whether a header cell names column `wanted` (its English name), in English or Chinese.
pub fn header_names(header: &str, wanted: &str) -> bool {
    same_name(header, wanted)
        || CHINESE_HEADERS
            .iter()
            .filter(|(english, _)| same_name(english, wanted))
            .flat_map(|(_, chinese)| chinese.iter())
            .any(|chinese| same_name(header, chinese))
}

fn same_name(header: &str, wanted: &str) -> bool {
    let header = header.trim().trim_start_matches('\u{feff}').trim();
    let wanted = wanted.trim();
    header
        .chars()
        .flat_map(char::to_lowercase)
        .eq(wanted.chars().flat_map(char::to_lowercase))
}

fn clean_header(mut fields: Vec<String>) -> Vec<String> {
    if let Some(first) = fields.first_mut() {
        *first = first.trim_start_matches('\u{feff}').to_owned();
    }
    let mut header: Vec<String> = fields.into_iter().map(|f| f.trim().to_owned()).collect();
    while header.last().is_some_and(String::is_empty) {
        header.pop();
    }
    header
}

fn is_blank(fields: &[String]) -> bool {
    fields.iter().all(|f| f.trim().is_empty())
}

/// Pads short rows so every header column has a field, and drops empty
/// trailing cells past the header that spreadsheets tend to add.
fn fit_to_header(mut fields: Vec<String>, width: usize) -> Vec<String> {
    while fields.len() > width && fields.last().is_some_and(String::is_empty) {
        fields.pop();
    }
    fields.resize(fields.len().max(width), String::new());
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;
    use tempfile::TempDir;

    const HEADER: [&str; 5] = ["doc_type", "doc_number", "name", "staff_ref", "hire_date"];

    fn sample() -> Vec<Vec<String>> {
        [
            [
                "id_card",
                "11010119900307123X",
                "张三",
                "S-001",
                "2021-03-01",
            ],
            [
                "id_card",
                "650102198506154321",
                "艾力·买买提",
                "S-002",
                "2019-11-20",
            ],
            ["passport", "E12345678", "李四, \"小李\"", "S-003", ""],
            [
                "id_card",
                "44030419920101002x",
                "欧阳娜娜",
                "",
                "2023-07-15",
            ],
        ]
        .iter()
        .map(|r| r.iter().map(|f| (*f).to_owned()).collect())
        .collect()
    }

    /// Header, encoding and rows of a file that must read cleanly.
    fn read_all(
        path: &Path,
        encoding: Option<Encoding>,
    ) -> (Vec<String>, Option<Encoding>, Vec<Row>) {
        let table = Table::open(path, encoding).unwrap();
        let (header, detected) = (table.header.clone(), table.encoding());
        let rows = table.rows().collect::<Result<Vec<_>, _>>().unwrap();
        (header, detected, rows)
    }

    fn write_csv_file(dir: &TempDir, name: &str, encoding: Encoding, bom: bool) -> PathBuf {
        let path = dir.path().join(name);
        let file = File::create(&path).unwrap();
        write_csv(file, &HEADER, sample(), encoding, bom).unwrap();
        path
    }

    #[test]
    fn every_form_reads_back_identically() {
        let dir = TempDir::new().unwrap();
        let utf8 = write_csv_file(&dir, "plain.csv", Encoding::Utf8, false);
        let bom = write_csv_file(&dir, "bom.CSV", Encoding::Utf8, true);
        let gb = write_csv_file(&dir, "gb.csv", Encoding::Gb18030, false);
        let gb_bom = write_csv_file(&dir, "gb_bom.csv", Encoding::Gb18030, true);
        let xlsx = dir.path().join("staff.XLSX");
        write_xlsx(&xlsx, &HEADER, sample()).unwrap();

        assert!(fs::read(&bom).unwrap().starts_with(UTF8_BOM));
        assert!(std::str::from_utf8(&fs::read(&gb).unwrap()).is_err());

        let cases = [
            (&utf8, None, Some(Encoding::Utf8)),
            (&utf8, Some(Encoding::Utf8), Some(Encoding::Utf8)),
            (&bom, None, Some(Encoding::Utf8)),
            (&bom, Some(Encoding::Utf8), Some(Encoding::Utf8)),
            (&gb, None, Some(Encoding::Gb18030)),
            (&gb, Some(Encoding::Gb18030), Some(Encoding::Gb18030)),
            (&gb_bom, None, Some(Encoding::Gb18030)),
            (&gb_bom, Some(Encoding::Gb18030), Some(Encoding::Gb18030)),
            (&xlsx, None, None),
        ];
        let expected = sample();
        for (path, given, detected) in cases {
            let (header, encoding, rows) = read_all(path, given);
            assert_eq!(header, HEADER, "{}", path.display());
            assert_eq!(encoding, detected, "{}", path.display());
            let fields: Vec<_> = rows.iter().map(|r| r.fields.clone()).collect();
            assert_eq!(fields, expected, "{}", path.display());
            let numbers: Vec<_> = rows.iter().map(|r| r.number).collect();
            assert_eq!(numbers, [1, 2, 3, 4]);
            assert!(rows.iter().all(|r| r.problems.is_empty()));
        }
    }

    #[test]
    fn columns_are_found_by_name_and_missing_ones_listed() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("cols.csv");
        fs::write(&path, "\u{feff} Name ,DOC_NUMBER,extra\n张三,123\n").unwrap();
        let table = Table::open(&path, None).unwrap();
        let columns = table
            .columns(&["doc_number", "name"], &["staff_ref"])
            .unwrap();
        assert!(!columns.has("staff_ref"));
        let row = table.rows().next().unwrap().unwrap();
        assert_eq!(columns.get(&row, "name"), "张三");
        assert_eq!(columns.get(&row, "Doc_Number"), "123");
        assert_eq!(columns.get(&row, "staff_ref"), "");
        // A short row is padded to the header width.
        assert_eq!(row.fields, ["张三", "123", ""]);

        let table = Table::open(&path, None).unwrap();
        let error = table
            .columns(&["doc_type", "doc_number", "hire_date"], &[])
            .err()
            .unwrap();
        assert!(matches!(error, TableError::MissingColumns { .. }));
        assert_eq!(
            error.to_string(),
            format!(
                "{}: missing column(s) doc_type, hire_date; the header must contain \
                 doc_type, doc_number, hire_date",
                path.display()
            )
        );
    }

    #[test]
    fn chinese_headers_name_the_same_columns_in_gb18030_too() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("员工.csv");
        let rows = vec![vec![
            "身份证".to_owned(),
            "E12345678".to_owned(),
            "张三".to_owned(),
            "T-001".to_owned(),
            "2024-09-01".to_owned(),
        ]];
        let chinese: Vec<&str> = HEADER.iter().map(|h| chinese_header(h)).collect();
        assert_eq!(
            chinese,
            ["证件类型", "证件号码", "姓名", "工号", "入职日期"]
        );
        write_csv(
            File::create(&path).unwrap(),
            &chinese,
            rows,
            Encoding::Gb18030,
            false,
        )
        .unwrap();
        let table = Table::open(&path, None).unwrap();
        assert_eq!(table.encoding(), Some(Encoding::Gb18030));
        let columns = table
            .columns(
                &["doc_type", "doc_number", "name", "staff_ref"],
                &["hire_date", "consent_ref"],
            )
            .unwrap();
        assert!(!columns.has("consent_ref"));
        let row = table.rows().next().unwrap().unwrap();
        assert_eq!(columns.get(&row, "doc_type"), "身份证");
        assert_eq!(columns.get(&row, "name"), "张三");
        assert_eq!(columns.get(&row, "hire_date"), "2024-09-01");
        // An English and a Chinese header for one column are as ambiguous as two English ones.
        fs::write(&path, "姓名,name\n张三,张三\n").unwrap();
        let error = Table::open(&path, None)
            .unwrap()
            .columns(&["name"], &[])
            .err()
            .unwrap();
        assert!(error.to_string().contains("more than once"), "{error}");
    }

    #[test]
    fn duplicate_wanted_column_is_an_error() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("dup.csv");
        fs::write(&path, "name,doc_number,Name\na,1,b\n").unwrap();
        let table = Table::open(&path, None).unwrap();
        let error = table.columns(&["name"], &[]).err().unwrap();
        assert!(
            error
                .to_string()
                .contains("column name appears more than once")
        );
    }

    #[test]
    fn wrong_forced_encoding_is_a_clear_error() {
        let dir = TempDir::new().unwrap();
        let gb = write_csv_file(&dir, "gb.csv", Encoding::Gb18030, false);
        let error = Table::open(&gb, Some(Encoding::Utf8)).err().unwrap();
        assert!(matches!(error, TableError::Format { .. }));
        let message = error.to_string();
        assert!(message.contains("not valid UTF-8 at line 2"), "{message}");
        assert!(message.contains("gb18030"), "{message}");

        let utf8 = write_csv_file(&dir, "utf8.csv", Encoding::Utf8, false);
        let error = Table::open(&utf8, Some(Encoding::Gb18030)).err().unwrap();
        assert!(error.to_string().contains("would garble"), "{error}");

        // ASCII-only files read the same either way.
        let ascii = dir.path().join("ascii.csv");
        fs::write(&ascii, "name\nBob\n").unwrap();
        let table = Table::open(&ascii, Some(Encoding::Gb18030)).unwrap();
        assert_eq!(table.header, ["name"]);
    }

    #[test]
    fn utf8_bom_with_invalid_bytes_is_not_guessed() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("mixed.csv");
        fs::write(&path, b"\xEF\xBB\xBFname\n\xC4\xE3\n").unwrap();
        let error = Table::open(&path, None).err().unwrap();
        assert!(error.to_string().contains("byte-order mark"), "{error}");
    }

    #[test]
    fn malformed_gb18030_fails_at_its_row_and_stops() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("bad.csv");
        // "名" in GB18030 is C3 FB; 0xFF is never valid.
        let mut bytes = b"name\n".to_vec();
        bytes.extend_from_slice(b"\xC3\xFB\n");
        bytes.extend_from_slice(b"\xFF\xFF\n");
        bytes.extend_from_slice(b"ok\n");
        fs::write(&path, bytes).unwrap();
        let table = Table::open(&path, None).unwrap();
        assert_eq!(table.encoding(), Some(Encoding::Gb18030));
        let rows: Vec<_> = table.rows().collect();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].as_ref().unwrap().fields, ["名"]);
        let message = rows[1].as_ref().err().unwrap().to_string();
        assert!(message.contains("row 2"), "{message}");
        assert!(message.contains("not valid GB18030"), "{message}");
    }

    #[test]
    fn blank_rows_are_skipped_but_counted_and_short_rows_padded() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("blank.csv");
        fs::write(&path, "\n,,\na,b,c\n1,2,3\n,,\n\n4\n5,6,7,8\n").unwrap();
        let table = Table::open(&path, None).unwrap();
        assert_eq!(table.header, ["a", "b", "c"]);
        let rows: Vec<_> = table.rows().map(Result::unwrap).collect();
        let numbers: Vec<_> = rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [1, 3, 4]);
        assert_eq!(rows[1].fields, ["4", "", ""]);
        assert_eq!(rows[2].fields, ["5", "6", "7", "8"]);
    }

    #[test]
    fn xlsx_cells_are_rendered_and_float_ids_flagged() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("typed.xlsx");
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        for (c, name) in ["doc_number", "staff_ref", "hire_date", "active", "score"]
            .iter()
            .enumerate()
        {
            sheet.write_string(0, c as u16, *name).unwrap();
        }
        let date_format = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2021, 3, 1).unwrap();
        // Row 1: an 18-digit ID typed as a number; row 2: a 15-digit one.
        sheet.write_number(1, 0, 110101199003071234.0).unwrap();
        sheet.write_number(1, 1, 42.0).unwrap();
        sheet
            .write_datetime_with_format(1, 2, &date, &date_format)
            .unwrap();
        sheet.write_boolean(1, 3, true).unwrap();
        sheet.write_number(1, 4, 2.5).unwrap();
        sheet.write_number(2, 0, 110101900307123.0).unwrap();
        // Data row 3 is blank and skipped; data row 4 holds only a corrupt ID.
        sheet.write_number(4, 0, 440304199201010020.0).unwrap();
        workbook.save(&path).unwrap();

        let table = Table::open(&path, None).unwrap();
        assert_eq!(table.encoding(), None);
        let rows: Vec<_> = table.rows().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].number, 1);
        assert_eq!(rows[0].fields, ["", "42", "2021-03-01", "true", "2.5"]);
        assert_eq!(
            rows[0].problems,
            [("doc_number".to_owned(), FLOAT_PROBLEM.to_owned())]
        );
        assert_eq!(rows[1].number, 2);
        assert_eq!(rows[1].fields, ["110101900307123", "", "", "", ""]);
        assert!(rows[1].problems.is_empty());
        assert_eq!(rows[2].number, 4);
        assert_eq!(rows[2].problems.len(), 1);
    }

    #[test]
    fn tables_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<Table>();
        assert_send::<Rows>();
    }

    #[test]
    fn unsupported_and_broken_files_are_clear_errors() {
        let dir = TempDir::new().unwrap();
        for (name, expected) in [
            ("old.xls", "old Excel .xls files are not supported"),
            ("staff.txt", "unsupported file type"),
            ("noext", "unsupported file type"),
        ] {
            let path = dir.path().join(name);
            fs::write(&path, "name\nx\n").unwrap();
            let error = Table::open(&path, None).err().unwrap();
            assert!(matches!(error, TableError::Format { .. }));
            assert!(error.to_string().contains(expected), "{error}");
        }

        let empty = dir.path().join("empty.csv");
        fs::write(&empty, "").unwrap();
        let error = Table::open(&empty, None).err().unwrap();
        assert!(error.to_string().contains("no header row"), "{error}");

        let bom_only = dir.path().join("bom_only.csv");
        fs::write(&bom_only, UTF8_BOM).unwrap();
        let error = Table::open(&bom_only, None).err().unwrap();
        assert!(error.to_string().contains("no header row"), "{error}");

        let empty_xlsx = dir.path().join("empty.xlsx");
        write_xlsx(&empty_xlsx, &[], Vec::new()).unwrap();
        let error = Table::open(&empty_xlsx, None).err().unwrap();
        assert!(error.to_string().contains("no header row"), "{error}");

        let fake_xlsx = dir.path().join("fake.xlsx");
        fs::write(&fake_xlsx, "name\nx\n").unwrap();
        let error = Table::open(&fake_xlsx, None).err().unwrap();
        assert!(
            error.to_string().contains("not a readable .xlsx"),
            "{error}"
        );

        let missing = dir.path().join("missing.csv");
        let error = Table::open(&missing, None).err().unwrap();
        assert!(matches!(error, TableError::Io { .. }));
    }

    /// A cell reference past Excel's grid (found by `fuzz/`: calamine sized its grid from it
    /// and asked for 166 GB) is refused before any grid is built.
    #[test]
    fn a_cell_outside_the_grid_is_refused_not_allocated() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/crashes/fuzz_roster_xlsx/column-beyond-grid-oom.xlsx");
        let error = Table::open(&path, None).err().expect("refused");
        assert!(
            error
                .to_string()
                .contains("a cell lies outside a spreadsheet's 1048576 rows and 16384 columns"),
            "{error}"
        );
    }

    /// Crafted cell references on which calamine's own arithmetic overflows (a panic where
    /// overflow checks are on, as in this test build) are an error, never a panic.
    #[test]
    fn calamine_overflows_on_crafted_references_are_errors() {
        let crashes =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/crashes/fuzz_roster_xlsx");
        for file in ["column-letters-overflow.xlsx", "row-digits-overflow.xlsx"] {
            let error = Table::open(&crashes.join(file), None)
                .err()
                .unwrap_or_else(|| panic!("{file} is refused"));
            assert!(
                matches!(error, TableError::Format { .. }),
                "{file}: {error}"
            );
        }
        // Its bad <dimension> only feeds a warning when arithmetic wraps: read or refused,
        // but answered.
        let _ = Table::open(&crashes.join("dimension-end-before-start.xlsx"), None);
    }

    #[test]
    fn utf8_detection_spans_chunk_boundaries() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("big.csv");
        // 3-byte characters over 64 KiB chunks: some straddle a boundary.
        let name = "欧阳娜娜".repeat(20_000);
        let mut bytes = format!("name\n{name}\n").into_bytes();
        fs::write(&path, &bytes).unwrap();
        let (_, encoding, rows) = read_all(&path, None);
        assert_eq!(encoding, Some(Encoding::Utf8));
        assert_eq!(rows[0].fields, [name]);

        // A character cut off by the end of the file is not UTF-8.
        bytes.truncate(bytes.len() - 2);
        fs::write(&path, &bytes).unwrap();
        let error = Table::open(&path, Some(Encoding::Utf8)).err().unwrap();
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn encoding_names() {
        for name in ["utf-8", "UTF8", " Utf-8 "] {
            assert_eq!(Encoding::parse(name), Some(Encoding::Utf8));
        }
        for name in ["gb18030", "GBK", "gb2312"] {
            assert_eq!(Encoding::parse(name), Some(Encoding::Gb18030));
        }
        assert_eq!(Encoding::parse("big5"), None);
        assert_eq!(Encoding::Gb18030.label(), "GB18030");
    }

    #[test]
    fn gb18030_writer_survives_characters_split_across_buffers() {
        // Longer than csv's 8 KiB buffer so a flush falls inside a character.
        let name = "艾力·买买提".repeat(2000);
        let mut out = Vec::new();
        write_csv(
            &mut out,
            &["name"],
            [vec![name.clone()]],
            Encoding::Gb18030,
            false,
        )
        .unwrap();
        let (text, _, malformed) = encoding_rs::GB18030.decode(&out);
        assert!(!malformed);
        assert_eq!(text, format!("name\r\n{name}\r\n"));
    }

    mod hostile {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            /// Whatever bytes a "CSV" holds — invalid UTF-8, NULs, stray quotes, huge
            /// fields — opening and reading it never panics: rows or clear errors.
            #[test]
            fn any_bytes_read_as_rows_or_errors(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
                let dir = TempDir::new().unwrap();
                let path = dir.path().join("staff.csv");
                let mut bytes = b"doc_type,doc_number,name,staff_ref\n".to_vec();
                bytes.extend_from_slice(&body);
                fs::write(&path, &bytes).unwrap();
                for encoding in [None, Some(Encoding::Utf8), Some(Encoding::Gb18030)] {
                    if let Ok(table) = Table::open(&path, encoding) {
                        let _ = table.columns(&["doc_type", "doc_number"], &["hire_date"]);
                        for row in table.rows().take(10_000) {
                            if let Err(e) = row {
                                prop_assert!(!e.to_string().is_empty());
                            }
                        }
                    }
                }
            }

            /// Any bytes in a file named .xlsx are refused or read, never a panic.
            #[test]
            fn any_bytes_as_xlsx_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let dir = TempDir::new().unwrap();
                let path = dir.path().join("staff.xlsx");
                fs::write(&path, &body).unwrap();
                if let Ok(table) = Table::open(&path, None) {
                    for _ in table.rows().take(1_000) {}
                }
            }
        }
    }
}
