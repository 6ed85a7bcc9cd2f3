//! The `safehire` command line: the server (`serve`), the client commands that talk to it over
//! mTLS, and the local tools (dev certificates, synthetic data, offline audit verification).

mod alerts_cmd;
mod audit_cmd;
mod backup_cmd;
mod batch_cmd;
mod bench_cmd;
mod certs_cmd;
mod check_cmd;
mod client;
mod config_cmd;
pub mod exit;
mod gen_cmd;
mod health_cmd;
mod keys_cmd;
mod moment;
mod org_cmd;
mod org_import;
mod oversight_cmd;
mod receipt_cmd;
mod registry_cmd;
pub(crate) mod report;
mod review_cmd;
mod roster_cmd;
mod serve_cmd;
pub(crate) mod staff_file;
mod witness;

use clap::{Parser, Subcommand};

pub use client::ConnectArgs;

#[derive(Debug, Parser)]
#[command(name = "safehire", version, about = "Pre-hire and yearly re-checks of staff who work with children", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Machine-readable output instead of text: one JSON document, or for the commands that
    /// stream (audit log, audit who-checked, alerts watch) one JSON object per line.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(serve_cmd::ServeArgs),
    /// Check one person (employer, or bureau with --on-behalf-of).
    Check(check_cmd::CheckArgs),
    /// Check every person in a staff file (CSV or XLSX) in one streamed batch.
    Batch(batch_cmd::BatchArgs),
    /// Load and manage records (registrar).
    #[command(subcommand)]
    Registry(registry_cmd::RegistryCommand),
    /// Staff rosters: declare staff, see who is due, re-check them all (employer, or bureau
    /// with --on-behalf-of).
    #[command(subcommand)]
    Roster(roster_cmd::RosterCommand),
    /// Alerts raised when a record starts to apply to current staff (employer, bureau).
    #[command(subcommand)]
    Alerts(alerts_cmd::AlertsCommand),
    /// Review cases: list, dispute a RECORD_FOUND check, resolve (registrar).
    #[command(subcommand)]
    Review(review_cmd::ReviewCommand),
    /// Enrol and manage organisations (operator).
    #[command(subcommand)]
    Org(org_cmd::OrgCommand),
    /// The audit log: head and verification (prosecutor, operator); the trail (prosecutor).
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// A check's receipt from the verifiable log, and its offline verification.
    Receipt(receipt_cmd::ReceiptArgs),
    /// Legal supervision: compliance reports (prosecutor; a bureau for its own units).
    #[command(subcommand)]
    Oversight(oversight_cmd::OversightCommand),
    /// Certificates: the dev set, organisations' certificates from the operator CA, revocation
    /// (operator) and expiry.
    #[command(subcommand)]
    Certs(certs_cmd::CertsCommand),
    /// Synthetic, fictitious data for tests, demos and benchmarks.
    #[command(subcommand)]
    Gen(gen_cmd::GenCommand),
    /// The benchmark suite: starts its own servers, prints every figure against its target.
    Bench(bench_cmd::BenchArgs),
    /// Configuration files: check one before a start.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// The master secret: create one, print its key id (never the secret).
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Is the server serving? Needs only the CA (--ca), no client certificate: for probes.
    Health(health_cmd::HealthArgs),
    /// Copy the live database (beside the running server) to a verified backup file.
    Backup(backup_cmd::BackupArgs),
}

/// A failure of a command: one line for the user and the exit code that goes with it.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(exit::UNAVAILABLE, message)
    }

    pub fn io(path: &std::path::Path, error: impl std::fmt::Display) -> Self {
        Self::new(exit::UNAVAILABLE, format!("{}: {error}", path.display()))
    }
}

/// A file that cannot be read is a local failure (7); one whose content is not a table of the
/// expected form is refused input (5) — the same for every command that reads a file.
impl From<crate::tabular::TableError> for CliError {
    fn from(error: crate::tabular::TableError) -> Self {
        let code = match error {
            crate::tabular::TableError::Io { .. } => exit::UNAVAILABLE,
            _ => exit::INVALID_INPUT,
        };
        Self::new(code, error.to_string())
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        let word = format!("{:?}", status.code());
        let message = if status.code() == tonic::Code::Unavailable {
            format!("server unavailable: {}", status.message())
        } else {
            format!("{}: {}", upper_snake(&word), status.message())
        };
        Self::new(exit::for_status(status.code()), message)
    }
}

/// `InvalidArgument` → `INVALID_ARGUMENT`, the form gRPC documentation uses.
fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// Runs a parsed command line; returns the exit code.
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    let json = cli.json;
    match cli.command {
        Command::Serve(args) => serve_cmd::run(args).await,
        Command::Check(args) => check_cmd::run(&cli.connect, args, json).await,
        Command::Batch(args) => batch_cmd::run(&cli.connect, args, json).await,
        Command::Registry(cmd) => registry_cmd::run(&cli.connect, cmd, json).await,
        Command::Roster(cmd) => roster_cmd::run(&cli.connect, cmd, json).await,
        Command::Alerts(cmd) => alerts_cmd::run(&cli.connect, cmd, json).await,
        Command::Review(cmd) => review_cmd::run(&cli.connect, cmd, json).await,
        Command::Org(cmd) => org_cmd::run(&cli.connect, cmd, json).await,
        Command::Audit(cmd) => audit_cmd::run(&cli.connect, cmd, json).await,
        Command::Receipt(args) => receipt_cmd::run(&cli.connect, args, json).await,
        Command::Oversight(cmd) => oversight_cmd::run(&cli.connect, cmd, json).await,
        Command::Certs(cmd) => certs_cmd::run(&cli.connect, cmd, json).await,
        Command::Gen(cmd) => gen_cmd::run(cmd),
        Command::Bench(args) => bench_cmd::run(args, json).await,
        Command::Config(cmd) => config_cmd::run(cmd, json),
        Command::Keys(cmd) => keys_cmd::run(cmd, json),
        Command::Health(args) => health_cmd::run(&cli.connect, args, json).await,
        Command::Backup(args) => backup_cmd::run(args, json),
    }
}

/// A `--log-key` value: the verifier key itself, or the file `safehire audit log-key > FILE`
/// wrote it to (a vkey always holds `+`, a file name given here need not).
pub fn vkey_or_file(value: &str) -> Result<String, String> {
    let path = std::path::Path::new(value);
    if !value.contains('+') || path.is_file() {
        return std::fs::read_to_string(path)
            .map(|text| text.trim().to_string())
            .map_err(|e| format!("{value}: neither a verifier key nor a readable file ({e})"));
    }
    Ok(value.to_string())
}

/// Prints `value` as pretty JSON on standard output.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Prints `value` as one line of compact JSON: the form of every streamed item (JSON lines), so
/// that a consumer can act on each as it arrives.
pub fn print_json_line(value: &serde_json::Value) {
    println!("{value}");
}

/// RFC 3339 text for a proto timestamp.
pub fn format_timestamp(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(|t| {
        time::OffsetDateTime::from_unix_timestamp(t.seconds)
            .ok()
            .map(|at| at + time::Duration::nanoseconds(i64::from(t.nanos)))
    })
    .and_then(|at| {
        at.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default()
}

/// The `--purpose` and `--scope` of a check or a batch.
pub fn purpose_and_scope(
    purpose: &str,
    scope: &str,
) -> Result<(crate::check::Purpose, crate::check::Scope), CliError> {
    use crate::check::{Purpose, Scope};
    let parsed_purpose = Purpose::parse(purpose).ok_or_else(|| {
        CliError::usage(format!("--purpose {purpose}: one of {}", Purpose::slugs()))
    })?;
    let parsed_scope = Scope::parse(scope)
        .ok_or_else(|| CliError::usage(format!("--scope {scope}: one of {}", Scope::slugs())))?;
    Ok((parsed_purpose, parsed_scope))
}

/// A progress bar with rows/s and ETA on a terminal; indicatif draws nothing when standard
/// error is not one.
pub fn progress_bar(rows: u64, doing: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(rows);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {doing} [{{bar:30}}] {{pos}}/{{len}} rows {{per_sec}} ({{eta}} left)"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}
