//! `safehire backup OUT`: a consistent copy of the live database, taken beside the running
//! server (what it does and why: `store::backup_file`); restoring it is in deploy/README.md.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{CliError, exit, print_json};
use crate::store::{self, StoreError};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup file to write; it must not exist yet.
    pub out: PathBuf,
    /// The live database (default: the default data folder's).
    #[arg(long, default_value = "data/safehire.db")]
    pub db: PathBuf,
}

pub fn run(args: BackupArgs, json: bool) -> Result<u8, CliError> {
    // A missing folder is made, not reported as a database that cannot be opened (SQLite's
    // words for a backup file it could not create).
    if let Some(folder) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|e| CliError::io(folder, e))?;
    }
    let summary = store::backup_file(&args.db, &args.out).map_err(|e| match e {
        StoreError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
            CliError::usage(e.to_string())
        }
        StoreError::BackupUnverified { .. } => CliError::new(exit::FAILED, e.to_string()),
        StoreError::Io { .. } => CliError::new(exit::UNAVAILABLE, e.to_string()),
        other => CliError::new(exit::FAILED, format!("{}: {other}", args.db.display())),
    })?;
    let head = crate::api::head_proto(&summary.head);
    if json {
        print_json(&json!({
            "backup": summary.path,
            "bytes": summary.bytes,
            "entries_checked": summary.verification.entries_checked,
            "head_sequence": head.sequence,
            "head_hash": head.hash,
        }));
    } else {
        println!(
            "backup written to {} ({} bytes); audit chain OK: {} entries, head {} {}",
            summary.path.display(),
            summary.bytes,
            summary.verification.entries_checked,
            head.sequence,
            head.hash
        );
        eprintln!("the master key is not in the backup: keep its own backup (deploy/KEYS.md)");
    }
    Ok(exit::OK)
}
