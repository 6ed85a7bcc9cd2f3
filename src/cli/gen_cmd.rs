//! `safehire gen`: synthetic, fictitious CSV data on standard output (or `--out`).
//!
//! Generated files are a function of the seed alone: the generator's "today" is
//! [`GEN_TODAY`], not the day it runs, so the README's examples (a record's reference, the
//! person it names) hold on any day. Only the dates that must be recent — a hire file's hire
//! dates, a leavers file's departure dates — are today's.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use time::macros::date;

use super::{CliError, exit};
use crate::synth::{self, Generator};
use crate::tabular::{self, Encoding, Table};

/// The fixed "today" of every generated file.
pub const GEN_TODAY: time::Date = date!(2026 - 01 - 01);

const HIRES_HEADER: [&str; 5] = synth::PEOPLE_HEADER;
const LEAVERS_HEADER: [&str; 5] = [
    "doc_type",
    "doc_number",
    "name",
    "staff_ref",
    "departure_date",
];

#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// Registry records: source_ref,doc_type,doc_number,name,category,kind,decided_on,sealed.
    /// Never the same people as `gen people`, whatever the seeds.
    Records {
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// People (applicants or staff): doc_type,doc_number,name,staff_ref,hire_date. Nobody from
    /// `gen records` unless planted with --with-records and --hits.
    People {
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        output: Output,
        /// A records file (`gen records` form) to take known hits from: its first unsealed rows.
        #[arg(long, requires = "hits")]
        with_records: Option<PathBuf>,
        /// How many people of the file are taken from --with-records, evenly spaced.
        #[arg(long, requires = "with_records", default_value_t = 0)]
        hits: u64,
    },
    /// New staff for `roster hire`: the people that follow the first --after of `gen people`
    /// with the same seed (so nobody already in that staff file, and staff refs that continue
    /// it), hired today.
    Hires {
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Rows of the staff file these people join (its `gen people` count).
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[command(flatten)]
        output: Output,
    },
    /// Leavers for `roster leave`: `count` evenly spaced people of a staff file (the last one
    /// first, so none of the hits `--with-records` plants from the first row), leaving today
    /// (doc_type,doc_number,name,staff_ref,departure_date).
    Leavers {
        /// The staff file (CSV or XLSX with the `gen people` columns).
        staff: PathBuf,
        count: u64,
        #[command(flatten)]
        output: Output,
    },
    /// Units in close contact with minors and, first, one education bureau per region that
    /// supervises them (uscc,name,role,region,industry,supervising_bureau). The dev region
    /// 150602 is always among the regions.
    Orgs {
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Where and how a staff-like file is written.
#[derive(Debug, clap::Args)]
pub struct Output {
    /// csv or xlsx (xlsx needs --out).
    #[arg(long, default_value = "csv")]
    format: String,
    /// Encoding of a CSV: utf-8 or gb18030 (what Chinese spreadsheet software exports).
    #[arg(long, default_value = "utf-8")]
    encoding: String,
    /// Start a UTF-8 CSV with a byte-order mark.
    #[arg(long)]
    bom: bool,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(cmd: GenCommand) -> Result<u8, CliError> {
    let today = crate::clock::calendar_date(time::OffsetDateTime::now_utc());
    match cmd {
        GenCommand::Records { count, seed } => {
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            csv_written(synth::write_records(
                out,
                &mut Generator::new(seed, GEN_TODAY),
                count,
            ))
        }
        GenCommand::Orgs { count, seed } => {
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            csv_written(synth::write_orgs(
                out,
                &mut Generator::new(seed, GEN_TODAY),
                count,
            ))
        }
        GenCommand::People {
            count,
            seed,
            output,
            with_records,
            hits,
        } => {
            let planted = match &with_records {
                Some(file) => known_hits(file, hits)?,
                None => Vec::new(),
            };
            let mut generator = Generator::new(seed, GEN_TODAY);
            let rows = (0..count).map(move |i| {
                let mut row = person_row(generator.person(i), None);
                if let Some(k) = synth::hit_slot(i, count, planted.len() as u64) {
                    row[..3].clone_from_slice(&planted[k]);
                }
                row
            });
            write(&output, &synth::PEOPLE_HEADER, rows)
        }
        GenCommand::Hires {
            count,
            seed,
            after,
            output,
        } => {
            let mut generator = Generator::new(seed, GEN_TODAY);
            for i in 0..after {
                generator.person(i);
            }
            let rows = (after..after.saturating_add(count))
                .map(move |i| person_row(generator.person(i), Some(today)));
            write(&output, &HIRES_HEADER, rows)
        }
        GenCommand::Leavers {
            staff,
            count,
            output,
        } => {
            let rows = leavers(&staff, count, today)?;
            write(&output, &LEAVERS_HEADER, rows.into_iter())
        }
    }
}

fn person_row(p: synth::PersonRow, hired: Option<time::Date>) -> Vec<String> {
    vec![
        p.doc_type.to_string(),
        p.doc_number,
        p.name,
        p.staff_ref,
        hired.unwrap_or(p.hire_date).to_string(),
    ]
}

/// The identities (doc_type, doc_number, name) of the first `hits` unsealed records of `file`.
fn known_hits(file: &Path, hits: u64) -> Result<Vec<[String; 3]>, CliError> {
    let table = Table::open(file, None)?;
    let columns = table.columns(&["doc_type", "doc_number", "name", "sealed"], &[])?;
    let mut found = Vec::new();
    for row in table.rows() {
        if found.len() as u64 >= hits {
            break;
        }
        let row = row?;
        if columns.get(&row, "sealed").trim() == "false" {
            found.push(["doc_type", "doc_number", "name"].map(|c| columns.get(&row, c).to_owned()));
        }
    }
    if (found.len() as u64) < hits {
        return Err(CliError::new(
            exit::INVALID_INPUT,
            format!(
                "{}: --hits {hits}, but the file has only {} unsealed records",
                file.display(),
                found.len()
            ),
        ));
    }
    Ok(found)
}

/// `count` evenly spaced rows of a staff file, leaving `today`.
fn leavers(staff: &Path, count: u64, today: time::Date) -> Result<Vec<Vec<String>>, CliError> {
    let table = Table::open(staff, None)?;
    let columns = table.columns(&["doc_type", "doc_number", "name", "staff_ref"], &[])?;
    let rows: Vec<_> = table.rows().collect::<Result<_, _>>()?;
    let total = rows.len() as u64;
    if count > total {
        return Err(CliError::new(
            exit::INVALID_INPUT,
            format!(
                "{}: {count} leavers asked, the file has {total} people",
                staff.display()
            ),
        ));
    }
    Ok(rows
        .iter()
        .enumerate()
        // Counted from the end, so that leavers are not the planted hits at the start.
        .filter(|&(i, _)| synth::hit_slot(total - 1 - i as u64, total, count).is_some())
        .map(|(_, row)| {
            let mut line: Vec<String> = ["doc_type", "doc_number", "name", "staff_ref"]
                .iter()
                .map(|c| columns.get(row, c).to_owned())
                .collect();
            line.push(today.to_string());
            line
        })
        .collect())
}

/// Writes a staff-like file in the form `output` asks for.
fn write(
    output: &Output,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<u8, CliError> {
    match output.format.as_str() {
        "xlsx" => {
            let file = output
                .out
                .as_deref()
                .ok_or_else(|| CliError::usage("--format xlsx needs --out FILE"))?;
            tabular::write_xlsx(file, header, rows)
                .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
        }
        "csv" => {
            let encoding = Encoding::parse(&output.encoding).ok_or_else(|| {
                CliError::usage(format!("--encoding {}: utf-8 or gb18030", output.encoding))
            })?;
            let written = match &output.out {
                Some(path) => {
                    let out = std::fs::File::create(path).map_err(|e| CliError::io(path, e))?;
                    tabular::write_csv(
                        std::io::BufWriter::new(out),
                        header,
                        rows,
                        encoding,
                        output.bom,
                    )
                }
                None => tabular::write_csv(
                    std::io::BufWriter::new(std::io::stdout().lock()),
                    header,
                    rows,
                    encoding,
                    output.bom,
                ),
            };
            match written {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(CliError::new(exit::FAILED, format!("writing: {e}")));
                }
                _ => {}
            }
        }
        other => return Err(CliError::usage(format!("--format {other}: csv or xlsx"))),
    }
    Ok(exit::OK)
}

fn csv_written(written: Result<(), csv::Error>) -> Result<u8, CliError> {
    match written {
        Ok(()) => Ok(exit::OK),
        // A closed pipe (`| head`) is not an error worth reporting.
        Err(e) if is_broken_pipe(&e) => Ok(exit::OK),
        Err(e) => Err(CliError::new(exit::FAILED, format!("writing: {e}"))),
    }
}

fn is_broken_pipe(error: &csv::Error) -> bool {
    matches!(error.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
}
