//! `safehire gen`: synthetic, fictitious CSV data on standard output.

use clap::Subcommand;

use super::{CliError, exit};
use crate::synth::{self, Generator};

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
    },
    /// Employers: uscc,name,role,region,industry,supervising_bureau.
    Orgs {
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

pub fn run(cmd: GenCommand) -> Result<u8, CliError> {
    let today = time::OffsetDateTime::now_utc().date();
    let stdout = std::io::stdout().lock();
    let out = std::io::BufWriter::new(stdout);
    let written = match cmd {
        GenCommand::Records { count, seed } => {
            synth::write_records(out, &mut Generator::new(seed, today), count)
        }
        GenCommand::People { count, seed } => {
            synth::write_people(out, &mut Generator::new(seed, today), count)
        }
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

fn is_broken_pipe(error: &csv::Error) -> bool {
    matches!(error.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
}
