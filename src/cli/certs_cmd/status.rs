//! `safehire certs status`: every certificate in the given files and folders with its
//! fingerprint and days left, flagging those expired or about to expire — with an exit code, so
//! that a cron job alerts before an organisation (or everyone) is locked out.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::issue::DEFAULT_OUT_DIR;
use super::rfc3339;
use crate::certs::expiry::{CertSummary, Standing, summarise_file};
use crate::cli::{CliError, ConnectArgs, exit, print_json};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Certificate files (PEM), or folders whose `*.pem` files to look at.
    files: Vec<PathBuf>,
    /// A folder whose `*.pem` files to look at (repeatable). Without files or folders:
    /// --certs-dir and certs/issued.
    #[arg(long)]
    dir: Vec<PathBuf>,
    /// Flag certificates that end within this many days.
    #[arg(long, default_value_t = 30)]
    warn_days: u32,
}

pub fn run(connect: &ConnectArgs, args: StatusArgs, json: bool) -> Result<u8, CliError> {
    let mut dirs = args.dir;
    if args.files.is_empty() && dirs.is_empty() {
        dirs = [connect.certs_dir.clone(), PathBuf::from(DEFAULT_OUT_DIR)]
            .into_iter()
            .filter(|d| d.is_dir())
            .collect();
        if dirs.is_empty() {
            return Err(CliError::unavailable(format!(
                "neither {} nor {DEFAULT_OUT_DIR} exists; name certificate files or --dir",
                connect.certs_dir.display()
            )));
        }
    }
    let (named_dirs, mut files): (Vec<PathBuf>, Vec<PathBuf>) =
        args.files.into_iter().partition(|p| p.is_dir());
    for dir in dirs.iter().chain(&named_dirs) {
        files.extend(pem_files(dir)?);
    }

    let now = time::OffsetDateTime::now_utc();
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for file in &files {
        match summarise_file(file) {
            Ok(certs) => found.extend(certs),
            Err(e) => unreadable.push(e.to_string()),
        }
    }
    let standing = |c: &CertSummary| c.standing(now, args.warn_days);
    let count = |s: Standing| found.iter().filter(|c| standing(c) == s).count();
    let (expiring, expired) = (count(Standing::Expiring), count(Standing::Expired));

    if json {
        let certificates: Vec<serde_json::Value> = found
            .iter()
            .map(|c| {
                json!({
                    "path": c.path.display().to_string(),
                    "kind": c.kind.label(),
                    "subject": c.subject,
                    "fingerprint": c.fingerprint_sha256,
                    "not_after": rfc3339(c.not_after),
                    "days_left": c.days_left(now),
                    "state": standing(c).label(),
                })
            })
            .collect();
        print_json(&json!({
            "warn_days": args.warn_days,
            "certificates": certificates,
            "expiring": expiring,
            "expired": expired,
            "unreadable": unreadable,
        }));
    } else {
        println!(
            "{:<8} {:>5}  {:<20}  {:<6}  {:<20}  {:<64}  FILE",
            "STATE", "DAYS", "NOT AFTER", "KIND", "SUBJECT", "FINGERPRINT"
        );
        for c in &found {
            println!(
                "{:<8} {:>5}  {:<20}  {:<6}  {:<20}  {:<64}  {}",
                standing(c).label(),
                c.days_left(now),
                rfc3339(c.not_after),
                c.kind.label(),
                c.subject,
                c.fingerprint_sha256,
                c.path.display()
            );
        }
        for problem in &unreadable {
            eprintln!("error: {problem}");
        }
        println!(
            "{} certificates: {expired} expired, {expiring} expiring within {} days{}",
            found.len(),
            args.warn_days,
            if unreadable.is_empty() {
                String::new()
            } else {
                format!(", {} files unreadable", unreadable.len())
            }
        );
    }
    Ok(if expired + expiring > 0 {
        exit::FAILED
    } else if !unreadable.is_empty() {
        exit::UNAVAILABLE
    } else {
        exit::OK
    })
}

/// The `*.pem` files of `dir`, in name order.
fn pem_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| CliError::io(dir, e))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "pem") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
