//! `safehire certs`: the dev set (`init`), organisations' certificates from the operator CA
//! (`issue`, `sign-csr`), the deny list (`revoke`, `revoked`) and expiry (`status`).

mod issue;
mod revoke;
mod status;

use std::path::PathBuf;

use clap::Subcommand;

use super::{CliError, ConnectArgs, exit};
use crate::certs::{self, CertError, OrgCertRequest};
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
    /// Issue an organisation's client certificate and a new private key from the operator CA.
    /// Prefer `sign-csr`, which never sees the organisation's key.
    Issue(issue::SigningArgs),
    /// Sign an organisation's certificate request (PEM CSR) with the operator CA: its private
    /// key never leaves it. A request naming another organisation is refused.
    SignCsr {
        /// The organisation's certificate request (PEM).
        csr: PathBuf,
        #[command(flatten)]
        signing: issue::SigningArgs,
    },
    /// Revoke one client certificate (operator): the server refuses it from the next call on,
    /// without a restart and without suspending its organisation.
    Revoke {
        /// The certificate's SHA-256 fingerprint (as `issue` printed it and the audit log
        /// records it), or its PEM file.
        certificate: String,
        /// Why, for the deny list and the audit log.
        #[arg(long)]
        reason: String,
    },
    /// List the revoked certificates (operator).
    Revoked,
    /// List certificates and when they expire. Exit 8 when one has expired or ends within
    /// --warn-days, so that a cron job can alert.
    Status(status::StatusArgs),
}

pub async fn run(connect: &ConnectArgs, cmd: CertsCommand, json: bool) -> Result<u8, CliError> {
    match cmd {
        CertsCommand::Init { out, force } => init(out, force),
        CertsCommand::Issue(signing) => issue::issue(connect, signing, json),
        CertsCommand::SignCsr { csr, signing } => issue::sign_csr(connect, &csr, signing, json),
        CertsCommand::Revoke {
            certificate,
            reason,
        } => revoke::revoke(connect, &certificate, reason, json).await,
        CertsCommand::Revoked => revoke::list(connect, json).await,
        CertsCommand::Status(args) => status::run(connect, args, json),
    }
}

fn init(out: PathBuf, force: bool) -> Result<u8, CliError> {
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

/// A certificate failure as the command line reports it: unreadable files are "could not be
/// read", bad input is "refused input", the rest a plain failure.
fn cert_error(error: CertError) -> CliError {
    let code = match &error {
        CertError::Io { .. } => exit::UNAVAILABLE,
        CertError::Pem(_) | CertError::Parse(_) | CertError::Invalid(_) => exit::INVALID_INPUT,
        CertError::Exists(_) => exit::USAGE,
        CertError::Rcgen(_) | CertError::KeyMismatch | CertError::Random => exit::FAILED,
    };
    let hint = if matches!(error, CertError::Exists(_)) {
        " (--force replaces it)"
    } else {
        ""
    };
    CliError::new(code, format!("{error}{hint}"))
}

/// The same, about one file.
fn file_error(path: &std::path::Path, error: CertError) -> CliError {
    let inner = cert_error(error);
    CliError::new(inner.code, format!("{}: {}", path.display(), inner.message))
}

/// RFC 3339, as the rest of the command line prints times.
fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
