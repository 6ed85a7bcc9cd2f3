//! The log's signing key: an Ed25519 seed in a file of its own, never the master hashing key,
//! so that publishing checkpoints can never put the key that hides identities at risk, and
//! rotating one never touches the other.

use std::path::{Path, PathBuf};

use super::note::{NoteError, NoteSigner};
use crate::keys::{KeyError, read_secret};

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error(
        "log signing key file {0} does not exist (in production, provision it with \
         `head -c 32 /dev/urandom`, mode 0600; in dev mode it is created)"
    )]
    Missing(PathBuf),
    #[error("log signing key file {path}: {problem}")]
    Unusable { path: PathBuf, problem: String },
    #[error(
        "log signing key file {0} is the master key file; the log needs a key of its own \
         ([audit_log] signing_key_file)"
    )]
    IsMasterKey(PathBuf),
    #[error("log signing key: {0}")]
    Note(#[from] NoteError),
}

/// Loads (in dev mode creating) the key at `path` and names it `origin`, the checkpoints'
/// origin line.
pub fn load_log_signer(
    path: &Path,
    master_key: &Path,
    origin: &str,
    create_if_missing: bool,
) -> Result<NoteSigner, SigningKeyError> {
    if same_file(path, master_key) {
        return Err(SigningKeyError::IsMasterKey(path.to_path_buf()));
    }
    let seed = read_secret(path, create_if_missing).map_err(|e| match e {
        KeyError::Missing { path } => SigningKeyError::Missing(path),
        other => SigningKeyError::Unusable {
            path: path.to_path_buf(),
            problem: problem(&other),
        },
    })?;
    Ok(NoteSigner::log(origin, &seed)?)
}

/// A witness's own key, in its state folder (created on its first run).
pub fn load_witness_signer(path: &Path, name: &str) -> Result<NoteSigner, SigningKeyError> {
    let seed = read_secret(path, true).map_err(|e| SigningKeyError::Unusable {
        path: path.to_path_buf(),
        problem: problem(&e),
    })?;
    Ok(NoteSigner::witness(name, &seed)?)
}

/// What is wrong with the file, without `KeyError`'s words for the master key.
fn problem(e: &KeyError) -> String {
    match e {
        KeyError::Missing { .. } => "does not exist".into(),
        KeyError::TooOpen { mode, .. } => {
            format!("is readable by group or others (mode {mode:o}); run `chmod 600` on it")
        }
        KeyError::WrongLength { len, .. } => format!("holds {len} bytes; it must hold exactly 32"),
        KeyError::Io { source, .. } => source.to_string(),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
