//! `safehire gen`: synthetic, fictitious CSV data on standard output.

use clap::Subcommand;

use super::{CliError, exit};
use crate::synth::{self, Generator};
use crate::tabular::{self, Encoding};

#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// Registry records: source_ref,doc_type,doc_number,name,category,kind,decided_on,sealed.
    Records {
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// People (applicants or staff): doc_type,doc_number,name,staff_ref,hire_date.
    People {
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
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
        out: Option<std::path::PathBuf>,
    },
    /// Employers: uscc,name,role,region,industry,supervising_bureau.
    Orgs {
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

pub fn run(cmd: GenCommand) -> Result<u8, CliError> {
    let today = crate::clock::calendar_date(time::OffsetDateTime::now_utc());
    if let GenCommand::People {
        count,
        seed,
        format,
        encoding,
        bom,
        out: file,
    } = &cmd
    {
        return people(
            *count,
            *seed,
            today,
            format,
            encoding,
            *bom,
            file.as_deref(),
        );
    }
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match cmd {
        GenCommand::Records { count, seed } => {
            synth::write_records(out, &mut Generator::new(seed, today), count)
        }
        GenCommand::People { .. } => Ok(()),
        GenCommand::Orgs { count, seed } => {
            synth::write_orgs(out, &mut Generator::new(seed, today), count)
        }
    };
    match written {
        Ok(()) => Ok(exit::OK),
        // A closed pipe (`| head`) is not an error worth reporting.
        Err(e) if is_broken_pipe(&e) => Ok(exit::OK),
        Err(e) => Err(CliError::new(exit::FAILED, format!("writing: {e}"))),
    }
}

/// People in any of the input forms a staff file comes in.
fn people(
    count: u64,
    seed: u64,
    today: time::Date,
    format: &str,
    encoding: &str,
    bom: bool,
    file: Option<&std::path::Path>,
) -> Result<u8, CliError> {
    let mut generator = Generator::new(seed, today);
    let rows = (0..count).map(move |i| {
        let p = generator.person(i);
        vec![
            p.doc_type.to_string(),
            p.doc_number,
            p.name,
            p.staff_ref,
            p.hire_date.to_string(),
        ]
    });
    match format {
        "xlsx" => {
            let file = file.ok_or_else(|| CliError::usage("--format xlsx needs --out FILE"))?;
            tabular::write_xlsx(file, &synth::PEOPLE_HEADER, rows)
                .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
        }
        "csv" => {
            let encoding = Encoding::parse(encoding).ok_or_else(|| {
                CliError::usage(format!("--encoding {encoding}: utf-8 or gb18030"))
            })?;
            let written = match file {
                Some(path) => {
                    let out = std::fs::File::create(path).map_err(|e| CliError::io(path, e))?;
                    tabular::write_csv(
                        std::io::BufWriter::new(out),
                        &synth::PEOPLE_HEADER,
                        rows,
                        encoding,
                        bom,
                    )
                }
                None => tabular::write_csv(
                    std::io::BufWriter::new(std::io::stdout().lock()),
                    &synth::PEOPLE_HEADER,
                    rows,
                    encoding,
                    bom,
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

fn is_broken_pipe(error: &csv::Error) -> bool {
    matches!(error.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
}
