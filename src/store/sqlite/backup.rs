//! Online backup of the live database, taken while the server serves and writes.
//!
//! `VACUUM INTO` copies the database inside one read transaction: a consistent snapshot at one
//! commit, taken beside the writer without pausing it (WAL readers never block the writer).
//! SQLite's page-by-page backup API, stepped in pieces, starts over whenever another connection
//! commits, so under steady load it may never finish; in one step it holds the same read
//! transaction as `VACUUM INTO` but copies the free pages too, and leaves the copy marked as a
//! WAL database that a read-only verifier cannot open without its `-shm` file. The copy is
//! written beside its destination, its audit chain verified, fsynced, and only then renamed
//! into place, so a backup that exists is whole and verified. The master key is not in it.

use std::path::{Path, PathBuf};

use super::audit_sql;
use super::{StoreError, open_reader, restrict_permissions};
use crate::audit::{Head, Verification};

/// What a finished backup holds.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub path: PathBuf,
    pub bytes: u64,
    pub verification: Verification,
    pub head: Head,
}

/// Copies the database at `db` to `out`, which must not exist yet.
pub fn backup_file(db: &Path, out: &Path) -> Result<BackupSummary, StoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    if out.exists() {
        return Err(io(out)(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "already exists; a backup never replaces a file",
        )));
    }
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&partial)(e)),
    }
    let copied = copy_and_verify(db, &partial);
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    let (verification, head) = copied?;
    if !verification.ok() {
        return Err(StoreError::BackupUnverified {
            path: partial,
            problem: verification
                .first_broken
                .map(|(seq, problem)| format!("entry {seq}: {problem}"))
                .unwrap_or_default(),
        });
    }
    let file = std::fs::File::open(&partial).map_err(io(&partial))?;
    file.sync_all().map_err(io(&partial))?;
    let bytes = file.metadata().map_err(io(&partial))?.len();
    std::fs::rename(&partial, out).map_err(io(out))?;
    let folder = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(io(folder))?;
    Ok(BackupSummary {
        path: out.to_path_buf(),
        bytes,
        verification,
        head,
    })
}

fn copy_and_verify(db: &Path, partial: &Path) -> Result<(Verification, Head), StoreError> {
    if !db.is_file() {
        return Err(StoreError::Io {
            path: db.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no database here"),
        });
    }
    let source = open_reader(db)?;
    let target = partial.to_str().ok_or_else(|| StoreError::Io {
        path: partial.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the backup path is not UTF-8",
        ),
    })?;
    source.execute("VACUUM INTO ?1", [target])?;
    drop(source);
    restrict_permissions(partial)?;
    let copy = open_reader(partial)?;
    Ok((audit_sql::verify(&copy, 0, 0)?, audit_sql::head(&copy)?))
}
