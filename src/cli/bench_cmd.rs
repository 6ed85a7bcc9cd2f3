//! `safehire bench`: the benchmark suite (what it measures and how to read it: BENCHMARKS.md).
//! Prints the table, writes the JSON report, and exits 0 when the suite ran to its end, whether
//! or not every target was met: the table says which were.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, exit};
use crate::bench::{self, Settings};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Small sizes and short runs (under a minute): 300,000 records, 100,000-row batch, 3 s runs.
    #[arg(long)]
    pub quick: bool,
    /// Seconds each measured run lasts (default 5; 3 with --quick).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Records in the large index (default 10,000,000).
    #[arg(long, value_name = "RECORDS")]
    pub large_index: Option<u64>,
    /// Rows in the bulk batch and records per import (default 1,000,000).
    #[arg(long, value_name = "ROWS")]
    pub rows: Option<u64>,
    /// Run only one part: `core` (checks, scaling, bulk, import, memory) or `oversight` (the
    /// prosecutor's compliance report over a province's supervision data).
    #[arg(long, value_name = "PART")]
    pub only: Option<Part>,
    /// Units enrolled for the oversight part (default 10,000; 1,000 with --quick), each with
    /// 100 roster members and 500 checks.
    #[arg(long, value_name = "UNITS")]
    pub units: Option<u64>,
    /// Where to write the JSON report.
    #[arg(long, value_name = "FILE", default_value = "bench-report.json")]
    pub report: PathBuf,
    /// A new or empty folder for the servers' data, kept afterwards (default: a temporary one).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Leave server and client unpinned (by default the server runs on core 0, this on core 1).
    #[arg(long)]
    pub no_pin: bool,
    /// Serve with this `safehire` binary instead of this one: the same client sends the same
    /// requests, so that two builds compare on equal terms.
    #[arg(long, value_name = "BINARY")]
    pub server_binary: Option<PathBuf>,
}

/// The parts of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Core,
    Oversight,
}

pub async fn run(args: BenchArgs, json: bool) -> Result<u8, CliError> {
    let mut settings = if args.quick {
        Settings::quick()
    } else {
        Settings::full()
    };
    if let Some(seconds) = args.duration {
        if !(seconds > 0.0 && seconds <= 600.0) {
            return Err(CliError::usage(
                "--duration: more than 0 and at most 600 seconds",
            ));
        }
        settings.measure = std::time::Duration::from_secs_f64(seconds);
    }
    if let Some(records) = args.large_index {
        settings.large_index = records.max(settings.small_index);
    }
    if let Some(rows) = args.rows {
        if rows == 0 || rows > 1_000_000 {
            return Err(CliError::usage(
                "--rows: 1 to 1,000,000 (the server's largest batch)",
            ));
        }
        settings.bulk_rows = rows;
        settings.import_records = rows;
    }
    if let Some(units) = args.units {
        if !(1..=50_000).contains(&units) {
            return Err(CliError::usage("--units: 1 to 50,000"));
        }
        let scale = &mut settings.oversight;
        scale.checks = scale.checks / scale.units.max(1) * units;
        scale.units = units;
    }
    match args.only {
        Some(Part::Core) => settings.oversight.units = 0,
        Some(Part::Oversight) => settings.core = false,
        None => {}
    }
    settings.pin = !args.no_pin;
    settings.work_dir = args.work_dir;
    settings.server_binary = args.server_binary;

    let report = bench::run(settings, |line| eprintln!("{line}"))
        .await
        .map_err(|e| CliError::new(exit::FAILED, format!("bench: {e}")))?;
    let document = serde_json::to_value(&report)
        .map_err(|e| CliError::new(exit::FAILED, format!("bench report: {e}")))?;
    let text = serde_json::to_string_pretty(&document).unwrap_or_else(|_| document.to_string());
    std::fs::write(&args.report, text + "\n").map_err(|e| CliError::io(&args.report, e))?;
    if json {
        super::print_json(&document);
    } else {
        print!("{}", bench::table(&report));
        println!("\nreport written to {}", args.report.display());
    }
    Ok(exit::OK)
}
