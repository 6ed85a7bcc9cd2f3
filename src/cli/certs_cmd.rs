//! `safehire certs init`: the dev certificate set (CA, server, one client per dev organisation).

use std::path::PathBuf;

use clap::Subcommand;

use super::{CliError, exit};
use crate::certs::{self, OrgCertRequest};
use crate::devset;

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create the dev CA, a server certificate for localhost/127.0.0.1 and one client
    /// certificate per role for the dev organisations.
    Init {
        #[arg(long, default_value = "certs/dev")]
        out: PathBuf,
        /// Replace a complete existing set (clients holding the old certificates stop working).
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cmd: CertsCommand) -> Result<u8, CliError> {
    match cmd {
        CertsCommand::Init { out, force } => {
            let orgs = devset::dev_orgs();
            let requests: Vec<OrgCertRequest<'_>> = orgs
                .iter()
                .map(|o| OrgCertRequest {
                    uscc: &o.uscc,
                    name: o.name,
                    role: o.role.slug(),
                })
                .collect();
            if !force && certs::dev_set_complete(&out, &requests) {
                println!(
                    "{} already holds a complete dev set (use --force to replace it)",
                    out.display()
                );
                return Ok(exit::OK);
            }
            let written = certs::write_dev_set(&out, &requests, time::OffsetDateTime::now_utc())
                .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
            for path in written {
                println!("wrote {}", path.display());
            }
            for org in &orgs {
                println!("  {:<10} {}  {}", org.role.slug(), org.uscc, org.name);
            }
            Ok(exit::OK)
        }
    }
}
