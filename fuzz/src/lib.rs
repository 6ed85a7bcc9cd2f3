//! Fuzz harnesses: each function feeds arbitrary bytes to one family of safehire's parsers of
//! untrusted input, the way the service and its command line do, and must never panic
//! (an `Err` is a fine answer). Besides "no panic", a few documented invariants are asserted:
//! canonical forms are fixed points of their parser (the hashed index depends on that) and
//! identity error reasons never repeat the input (they travel into logs).
//!
//! This file is shared, not copied: the afl targets in `src/bin/` call it through the
//! `safehire_fuzz` library, and the main crate's `tests/integration/fuzz_corpus.rs` includes it with
//! `#[path]` to replay the corpora under plain `cargo test`. So it may use only `safehire`,
//! `csv`, `time` and `std`, which both crates have.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use safehire::config::Config;
use safehire::identity::{
    DocType, Document, IdentityError, PersonName, Uscc, normalize_name, resident_id_check_char,
    uscc_check_char,
};
use safehire::org::{Enrolment, Industry, Role, validate_region};
use safehire::registry::{Category, RecordKind, parse_date};
use safehire::roster::{RosterChange, member_dates};
use safehire::synth::RECORDS_HEADER;
use safehire::tabular::{Encoding, Table, TableError};
use time::Date;

/// A fixed "today", so that a replayed input behaves exactly as it did under the fuzzer.
pub const TODAY: Date = time::macros::date!(2026 - 03 - 15);

/// Columns of a staff file (`safehire gen people`), as `src/cli/staff_file.rs` wants them.
const STAFF_REQUIRED: &[&str] = &["doc_type", "doc_number", "name", "staff_ref"];
const STAFF_OPTIONAL: &[&str] = &["hire_date", "departure_date", "consent_ref"];
/// Columns of an organisation file (`safehire org import`), as `src/cli/org_import.rs` wants them.
const ORG_REQUIRED: &[&str] = &["uscc", "name", "role", "region"];
const ORG_OPTIONAL: &[&str] = &["industry", "supervising_bureau"];

/// Identity documents of every type, personal names, document-type slugs.
pub fn identity(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let raw = raw.as_ref();
    for doc_type in DocType::ALL {
        document(doc_type, raw);
    }
    name(raw);
    if let Ok(doc_type) = DocType::from_slug(raw) {
        assert_eq!(DocType::from_slug(doc_type.slug()), Ok(doc_type));
    }
    if let Some(check) = resident_id_check_char(raw) {
        assert!(matches!(check, '0'..='9' | 'X'));
    }
}

/// Unified social credit codes, and organisation enrolments: the input's lines are the
/// fields uscc, name, role, region, industry, supervising_bureau of an Enroll request.
pub fn uscc(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let raw = raw.as_ref();
    uscc_code(raw);
    if let Some(check) = uscc_check_char(raw) {
        assert!(check.is_ascii_alphanumeric());
    }
    let mut fields = raw.split('\n');
    let mut next = || fields.next().unwrap_or("");
    let (code, org_name, role, region, industry, bureau) =
        (next(), next(), next(), next(), next(), next());
    uscc_code(code);
    uscc_code(bureau);
    let _ = validate_region(region);
    enrolment(code, org_name, role, region, industry, bureau);
}

/// A CSV staff or organisation file as read by `safehire roster`, `safehire batch` and
/// `safehire org import`: detected encoding, and GB18030 when asked for.
pub fn roster_csv(scratch: &Scratch, data: &[u8]) {
    let path = scratch.write("upload.csv", data);
    for encoding in [None, Some(Encoding::Gb18030), Some(Encoding::Utf8)] {
        table(&path, encoding);
    }
}

/// An `.xlsx` staff or organisation file, read the same way.
pub fn roster_xlsx(scratch: &Scratch, data: &[u8]) {
    let path = scratch.write("upload.xlsx", data);
    table(&path, None);
}

/// A registrar's import file (`safehire registry import`): read with the csv crate the way
/// `src/cli/registry_cmd.rs` does, then each row validated the way the RegistryService
/// validates an ImportRecord.
pub fn registry_csv(data: &[u8]) {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    let Ok(headers) = reader.headers().cloned() else {
        return;
    };
    let columns: Vec<Option<usize>> = RECORDS_HEADER
        .iter()
        .map(|name| {
            headers
                .iter()
                .position(|h| h.trim().trim_start_matches('\u{feff}') == *name)
        })
        .collect();
    for row in reader.records() {
        let Ok(row) = row else { continue };
        let get = |i: usize| columns[i].and_then(|c| row.get(c)).unwrap_or("").trim();
        record(
            get(0),
            get(1),
            get(2),
            get(3),
            get(4),
            get(5),
            get(6),
            get(7),
        );
    }
}

/// The server's TOML configuration file, then `SAFEHIRE_…` variables: the bytes after the
/// first NUL, if any, are `NAME=VALUE` lines given as the environment.
pub fn config(scratch: &Scratch, data: &[u8]) {
    let (file, env) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let env: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let path = scratch.write("safehire.toml", file);
    if let Ok(config) = Config::load(Some(&path), env) {
        let _ = config.validate();
        let _ = (config.database_path(), config.master_key_path());
        let _ = config.telemetry.otlp_endpoint();
    }
}

/// A private folder for the files the path-based parsers need, removed when dropped.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// A new folder under `std::env::temp_dir()` (point `TMPDIR` at a RAM disk for speed).
    pub fn new() -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "safehire-fuzz-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the scratch folder");
        Scratch { dir }
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, data).expect("write the scratch file");
        path
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn document(doc_type: DocType, raw: &str) {
    match Document::parse(doc_type, raw, TODAY) {
        Ok(doc) => {
            assert_eq!(doc.doc_type(), doc_type);
            let again = Document::parse(doc_type, doc.number(), TODAY)
                .expect("a canonical document number parses again");
            assert!(again == doc, "the canonical form is not a fixed point");
            assert_eq!(
                doc.birth_date().is_some(),
                doc_type == DocType::CnResidentId
            );
        }
        Err(e) => {
            assert_eq!(e.field, "doc_number");
            assert_private(&code_form(raw), &e);
        }
    }
}

fn name(raw: &str) {
    let once = normalize_name(raw);
    assert!(
        normalize_name(&once) == once,
        "name normalisation is not idempotent"
    );
    match PersonName::parse(raw) {
        Ok(name) => {
            let again = PersonName::parse(name.as_str()).expect("a canonical name parses again");
            assert!(
                again.as_str() == name.as_str(),
                "the canonical name is not a fixed point"
            );
        }
        Err(e) => {
            assert_eq!(e.field, "name");
            assert_private(&once, &e);
        }
    }
}

fn uscc_code(raw: &str) {
    match Uscc::parse(raw) {
        Ok(code) => {
            assert_eq!(code.as_str().len(), 18);
            assert_eq!(code.region().len(), 6);
            let again = Uscc::parse(code.as_str()).expect("a canonical USCC parses again");
            assert_eq!(again, code);
        }
        Err(e) => {
            assert_eq!(e.field, "uscc");
            assert_private(&code_form(raw), &e);
        }
    }
}

/// An Enroll request as the OrganisationService judges it; role and industry as the import
/// file gives them (slugs or labels), or as any proto code.
fn enrolment(uscc: &str, org_name: &str, role: &str, region: &str, industry: &str, bureau: &str) {
    let role = Role::parse(role).unwrap_or(Role::Employer);
    let industry = Industry::parse(industry);
    if let Ok(enrolment) = Enrolment::new(uscc, org_name, role, region, industry, bureau) {
        assert!(validate_region(&enrolment.region).is_ok());
        assert!(!enrolment.name.is_empty());
    }
}

/// One registry import row, as `to_record` in the CLI and `hash_record` in the server see it.
#[allow(clippy::too_many_arguments)]
fn record(
    source_ref: &str,
    doc_type: &str,
    doc_number: &str,
    person: &str,
    category: &str,
    kind: &str,
    decided_on: &str,
    sealed: &str,
) {
    let _ = safehire::text::reference(source_ref, safehire::registry::MAX_SOURCE_REF_LEN);
    let _ = (Category::parse(category), RecordKind::parse(kind));
    let _ = sealed.to_ascii_lowercase();
    if let Ok(doc_type) = DocType::from_slug(doc_type) {
        document(doc_type, doc_number);
    }
    name(person);
    let _ = parse_date("decided_on", decided_on);
}

/// Opens a table and reads it as both a staff file and an organisation file.
fn table(path: &Path, encoding: Option<Encoding>) {
    let Ok(table) = Table::open(path, encoding) else {
        return;
    };
    let _ = (table.row_count(), table.encoding());
    let staff = table.columns(STAFF_REQUIRED, STAFF_OPTIONAL).ok();
    let orgs = table.columns(ORG_REQUIRED, ORG_OPTIONAL).ok();
    let width = table.header.len();
    for row in table.rows() {
        let row = match row {
            Ok(row) => row,
            Err(TableError::Format { .. }) => continue,
            Err(_) => break,
        };
        assert!(
            row.fields.len() >= width,
            "a row is narrower than the header"
        );
        if !row.problems.is_empty() {
            continue;
        }
        let field = |columns: &safehire::tabular::Columns, name: &str| {
            columns.get(&row, name).trim().to_string()
        };
        if let Some(columns) = &staff {
            let get = |name: &str| field(columns, name);
            if let Ok(doc_type) = DocType::from_slug(&get("doc_type")) {
                document(doc_type, &get("doc_number"));
            }
            name(&get("name"));
            for change in [
                RosterChange::Replace,
                RosterChange::Hires,
                RosterChange::Departures,
            ] {
                let _ = member_dates(change, &get("hire_date"), &get("departure_date"), TODAY);
            }
        }
        if let Some(columns) = &orgs {
            let get = |name: &str| field(columns, name);
            enrolment(
                &get("uscc"),
                &get("name"),
                &get("role"),
                &get("region"),
                &get("industry"),
                &get("supervising_bureau"),
            );
        }
    }
}

/// The code-like canonical form that document and USCC errors must not repeat.
fn code_form(raw: &str) -> String {
    // The library's own normaliser is private; a valid-looking code is the input itself
    // in upper case without whitespace, which is what matters for the privacy rule.
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The privacy rule of `src/identity/error.rs`: a reason never repeats the input. Inputs
/// shorter than four characters are exempt ("got 17" unavoidably holds short digit runs).
fn assert_private(normalised: &str, e: &IdentityError) {
    if normalised.chars().count() >= 4 {
        assert!(
            !e.reason.contains(normalised),
            "an error reason repeats the input"
        );
    }
}
