//! `safehire keys`: create a master secret and name one. The secret itself is never printed:
//! only its key id, which is what a database records to refuse the wrong key
//! (see deploy/KEYS.md).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::{CliError, exit, print_json};
use crate::keys::{KeyError, Keys};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new master secret: 32 random bytes, mode 0600. Refuses to replace a file.
    New {
        /// Where to write it, e.g. /etc/safehire/master.key.
        file: PathBuf,
    },
    /// Print the key id of a master secret (never the secret).
    Id {
        /// The master key file.
        file: PathBuf,
    },
}

pub fn run(cmd: KeysCommand, json: bool) -> Result<u8, CliError> {
    match cmd {
        KeysCommand::New { file } => {
            let keys = Keys::create(&file).map_err(|e| refusal(&file, e))?;
            let key_id = keys.key_id_hex();
            if json {
                print_json(&json!({ "file": file, "key_id": key_id }));
            } else {
                println!("wrote {} (32 bytes, mode 0600)", file.display());
                println!("key id {key_id}");
                eprintln!(
                    "back it up now, apart from the database: a database without its key is unreadable by design"
                );
            }
            Ok(exit::OK)
        }
        KeysCommand::Id { file } => {
            let keys = Keys::load(&file, false).map_err(|e| refusal(&file, e))?;
            if json {
                print_json(&json!({ "file": file, "key_id": keys.key_id_hex() }));
            } else {
                println!("{}", keys.key_id_hex());
            }
            Ok(exit::OK)
        }
    }
}

/// A file that is there but unfit (too open, wrong length, or in the way of a new key) is bad
/// input; one that cannot be read at all is a local file problem.
fn refusal(file: &Path, error: KeyError) -> CliError {
    match error {
        KeyError::Io { source, .. } if source.kind() == ErrorKind::AlreadyExists => CliError::new(
            exit::INVALID_INPUT,
            format!(
                "{} already exists; a master key is never replaced (a database bound to it would become unreadable)",
                file.display()
            ),
        ),
        e @ (KeyError::TooOpen { .. } | KeyError::WrongLength { .. }) => {
            CliError::new(exit::INVALID_INPUT, e.to_string())
        }
        e @ (KeyError::Missing { .. } | KeyError::Io { .. }) => {
            CliError::new(exit::UNAVAILABLE, e.to_string())
        }
    }
}
