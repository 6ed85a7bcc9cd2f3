//! `safehire audit witness`: what a prosecutor, or any outsider, runs from a timer. It keeps
//! the last checkpoint it accepted in its state folder, accepts a newer one only with the log's
//! signature and a consistency proof from the kept one, cosigns it with its own key and hands
//! the cosignature back. A log rewritten or truncated below the kept checkpoint is refused with
//! exit code 8 and a message that says which.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{CliError, ConnectArgs, exit, print_json};
use crate::audit::merkle::{Hash, verify_consistency};
use crate::audit::note::{SignedCheckpoint, Verifier};
use crate::audit::signing::load_witness_signer;
use crate::org::Role;
use crate::proto;
use crate::proto::audit_service_client::AuditServiceClient;

/// Files in the state folder.
const KEY_FILE: &str = "witness.key";
const LOG_KEY_FILE: &str = "log.vkey";
const CHECKPOINT_FILE: &str = "checkpoint";

pub struct WitnessArgs {
    pub state: PathBuf,
    pub log_key: Option<String>,
    pub name: String,
}

/// Why a checkpoint was refused: the log is not the one the witness saw.
fn inconsistent(message: String, json: bool) -> Result<u8, CliError> {
    if json {
        print_json(&json!({"ok": false, "problem": message}));
    } else {
        eprintln!("LOG INCONSISTENT: {message}");
    }
    Ok(exit::FAILED)
}

pub async fn run(connect: &ConnectArgs, args: WitnessArgs, json: bool) -> Result<u8, CliError> {
    std::fs::create_dir_all(&args.state).map_err(|e| CliError::io(&args.state, e))?;
    let log_key = log_key(&args.state, args.log_key.as_deref())?;
    let signer = load_witness_signer(&args.state.join(KEY_FILE), &args.name)
        .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
    let mut client = AuditServiceClient::new(connect.connect(Role::Prosecutor).await?);
    let served = client
        .checkpoint(proto::CheckpointRequest { size: 0 })
        .await?
        .into_inner();
    let new = match SignedCheckpoint::open(&served.checkpoint, &log_key) {
        Ok(new) => new,
        Err(e) => {
            return inconsistent(
                format!("the server's checkpoint is not the log's: {e}"),
                json,
            );
        }
    };
    let kept_path = args.state.join(CHECKPOINT_FILE);
    let kept = read_kept(&kept_path, &log_key)?;
    if let Some(kept) = &kept {
        let (old, size) = (&kept.checkpoint, new.checkpoint.size);
        if size < old.size {
            return inconsistent(
                format!(
                    "the log was truncated: its newest checkpoint has {size} entries, fewer than \
                     the {} of the checkpoint kept in {}",
                    old.size,
                    kept_path.display()
                ),
                json,
            );
        }
        let proof: Vec<Hash> = client
            .consistency_proof(proto::ConsistencyProofRequest {
                old_size: old.size,
                new_size: size,
            })
            .await?
            .into_inner()
            .hashes
            .iter()
            .filter_map(|h| h.as_slice().try_into().ok())
            .collect();
        if let Err(e) = verify_consistency(old.size, size, &old.root, &new.checkpoint.root, &proof)
        {
            return inconsistent(
                format!(
                    "the log was rewritten: its checkpoint of {size} entries does not extend the \
                     kept checkpoint of {} ({e})",
                    old.size
                ),
                json,
            );
        }
    }
    write_private(&kept_path, &served.checkpoint)?;
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let line = signer.cosign(&new.note.text, timestamp);
    client
        .add_cosignature(proto::AddCosignatureRequest {
            size: new.checkpoint.size,
            signature_line: line,
            witness_key: signer.vkey(),
        })
        .await?;
    let from = kept.as_ref().map_or(0, |k| k.checkpoint.size);
    if json {
        print_json(&json!({
            "ok": true,
            "previous_size": from,
            "size": new.checkpoint.size,
            "witness_key": signer.vkey(),
        }));
    } else {
        println!(
            "checkpoint {} consistent with the kept {from}; cosigned as {}",
            new.checkpoint.size,
            signer.name()
        );
        println!("witness key {}", signer.vkey());
    }
    Ok(exit::OK)
}

/// The log key given, kept for later runs; or the one kept by an earlier run.
fn log_key(state: &Path, given: Option<&str>) -> Result<Verifier, CliError> {
    let path = state.join(LOG_KEY_FILE);
    let text = match given {
        Some(key) => {
            if let Ok(kept) = std::fs::read_to_string(&path)
                && kept.trim() != key.trim()
            {
                return Err(CliError::usage(format!(
                    "--log-key differs from the key kept in {}; a witness follows one log",
                    path.display()
                )));
            }
            write_private(&path, &format!("{}\n", key.trim()))?;
            key.to_string()
        }
        None => std::fs::read_to_string(&path).map_err(|_| {
            CliError::usage(format!(
                "no --log-key given and none kept in {} (first run: pass `safehire audit log-key`'s output)",
                path.display()
            ))
        })?,
    };
    Verifier::parse(&text).map_err(|e| CliError::usage(format!("--log-key: {e}")))
}

fn read_kept(path: &Path, key: &Verifier) -> Result<Option<SignedCheckpoint>, CliError> {
    match std::fs::read_to_string(path) {
        Ok(text) => SignedCheckpoint::open(&text, key)
            .map(Some)
            .map_err(|e| CliError::new(exit::FAILED, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::io(path, e)),
    }
}

/// Writes through a temporary file, so that a crash never leaves half a checkpoint kept.
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| CliError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CliError::io(path, e))
}
