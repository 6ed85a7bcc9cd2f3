//! `safehire config check FILE`: reads a configuration exactly as `serve` would (defaults, the
//! file, then the process's `SAFEHIRE_…` variables), refuses values that would make the server
//! misbehave, and prints the effective configuration as TOML, so that an operator sees before
//! a start what the server will do. The files the server needs are reported (present, mode,
//! size, parseable), never their content.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::{CliError, exit, print_json};
use crate::config::Config;
use crate::keys::{KeyError, Keys};

/// What replaces a value that looks like a secret.
const MASK: &str = "<masked>";

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file (with the SAFEHIRE_… variables of this process applied,
    /// as `serve` would) and print the effective configuration, secrets masked. Exit 0 when
    /// valid, 5 when not.
    Check {
        /// The TOML configuration file.
        file: PathBuf,
        /// Also exit 7 when a file the server needs (master key, TLS material) is missing,
        /// unreadable or unfit.
        #[arg(long)]
        require_files: bool,
    },
}

pub fn run(cmd: ConfigCommand, json: bool) -> Result<u8, CliError> {
    let ConfigCommand::Check {
        file,
        require_files,
    } = cmd;
    let text = std::fs::read_to_string(&file).map_err(|e| CliError::io(&file, e))?;
    // The file on its own first: parsed from text, an error points at its line and key.
    toml::from_str::<Config>(&text)
        .map_err(|e| CliError::new(exit::INVALID_INPUT, format!("{}: {e}", file.display())))?;
    let env = safehire_variables()?;
    let applied: Vec<String> = env.iter().map(|(name, _)| name.clone()).collect();
    let config = Config::load(Some(&file), env)
        .and_then(|config| config.validate().map(|()| config))
        .map_err(|e| CliError::new(exit::INVALID_INPUT, e.to_string()))?;

    let files = file_report(&config);
    let warnings = warnings(&config);
    let mut shown = effective_tree(&config)?;
    mask_secrets(&mut shown);
    if json {
        print_json(&json!({
            "file": file,
            "valid": true,
            "environment": applied,
            "config": shown,
            "files": files.iter().map(FileStatus::to_json).collect::<Vec<_>>(),
            "warnings": warnings,
        }));
    } else {
        print_text(&file, &applied, &files, &warnings, &shown)?;
    }
    if require_files && files.iter().any(|f| f.state == State::Problem) {
        eprintln!("error: a file the server needs is missing or unfit (see above)");
        return Ok(exit::UNAVAILABLE);
    }
    Ok(exit::OK)
}

fn safehire_variables() -> Result<Vec<(String, String)>, CliError> {
    crate::config::process_settings().map_err(|e| CliError::new(exit::INVALID_INPUT, e.to_string()))
}

fn print_text(
    file: &Path,
    applied: &[String],
    files: &[FileStatus],
    warnings: &[String],
    shown: &toml::Value,
) -> Result<(), CliError> {
    let applied = if applied.is_empty() {
        "none".to_string()
    } else {
        applied.join(", ")
    };
    println!("# {}: valid", file.display());
    println!("# SAFEHIRE_… variables applied: {applied}");
    for f in files {
        println!(
            "# {:<16} {}: {}{}",
            f.key,
            f.path.display(),
            f.state.label(),
            f.detail
        );
    }
    for warning in warnings {
        println!("# warning: {warning}");
    }
    let body = toml::to_string(shown)
        .map_err(|e| CliError::new(exit::FAILED, format!("printing the configuration: {e}")))?;
    print!("{body}");
    Ok(())
}

/// The configuration with every derived path filled in (the master key under `data_dir`, the
/// TLS files under `tls.dev_dir`), so that what is printed is what the server will open.
fn effective_tree(config: &Config) -> Result<toml::Value, CliError> {
    let mut effective = config.clone();
    effective.master_key_file = Some(config.master_key_path());
    effective.tls.client_ca = Some(config.client_ca_path());
    effective.tls.server_cert = Some(config.server_cert_path());
    effective.tls.server_key = Some(config.server_key_path());
    toml::Value::try_from(effective)
        .map_err(|e| CliError::new(exit::FAILED, format!("printing the configuration: {e}")))
}

/// Config holds only paths today; a key added later that carries a secret inline (a token, a
/// password, PEM text) must still never reach a terminal or a CI log through this command.
fn mask_secrets(value: &mut toml::Value) {
    match value {
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                if looks_secret(key) && !item.is_table() {
                    *item = toml::Value::String(MASK.into());
                } else {
                    mask_secrets(item);
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        toml::Value::String(text) if text.contains("-----BEGIN") => *text = MASK.into(),
        _ => {}
    }
}

/// A key whose name says secret, unless it names a file or folder (which is only a path).
fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let is_path = ["_file", "_dir", "_path"].iter().any(|s| key.ends_with(s));
    !is_path
        && [
            "secret",
            "password",
            "passwd",
            "passphrase",
            "token",
            "credential",
            "private",
            "api_key",
        ]
        .iter()
        .any(|word| key.contains(word))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ok,
    /// Missing, but dev mode creates it at the first start.
    CreatedAtStart,
    Problem,
}

impl State {
    fn label(self) -> &'static str {
        match self {
            State::Ok => "ok, ",
            State::CreatedAtStart => "missing; dev mode creates it at the first start",
            State::Problem => "PROBLEM: ",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::CreatedAtStart => "created_at_start",
            State::Problem => "problem",
        }
    }
}

struct FileStatus {
    key: &'static str,
    path: PathBuf,
    state: State,
    detail: String,
}

impl FileStatus {
    fn to_json(&self) -> serde_json::Value {
        json!({
            "key": self.key,
            "path": self.path,
            "state": self.state.slug(),
            "detail": self.detail,
        })
    }
}

/// The master key and the TLS material, each opened and parsed as the server would at start.
fn file_report(config: &Config) -> Vec<FileStatus> {
    let key_path = config.master_key_path();
    let key = match Keys::load(&key_path, false) {
        Ok(keys) => (
            State::Ok,
            format!(
                "{}, 32 bytes, key id {}",
                mode_text(&key_path),
                keys.key_id_hex()
            ),
        ),
        Err(KeyError::Missing { .. }) if config.dev_mode => (State::CreatedAtStart, String::new()),
        Err(e) => (State::Problem, e.to_string()),
    };
    let dev_creates = |explicit: &Option<PathBuf>| config.dev_mode && explicit.is_none();
    let certs = |path: &Path, created: bool| match crate::tls::load_certs(path) {
        Ok(list) => (State::Ok, format!("{} certificate(s)", list.len())),
        Err(_) if created && !path.exists() => (State::CreatedAtStart, String::new()),
        Err(e) => (State::Problem, e.to_string()),
    };
    let server_key_path = config.server_key_path();
    let server_key = match crate::tls::load_key(&server_key_path) {
        Ok(_) => (
            State::Ok,
            format!("a private key, {}", mode_text(&server_key_path)),
        ),
        Err(_) if dev_creates(&config.tls.server_key) && !server_key_path.exists() => {
            (State::CreatedAtStart, String::new())
        }
        Err(e) => (State::Problem, e.to_string()),
    };
    let client_ca = config.client_ca_path();
    let server_cert = config.server_cert_path();
    vec![
        status("master_key_file", key_path, key),
        status(
            "tls.client_ca",
            client_ca.clone(),
            certs(&client_ca, dev_creates(&config.tls.client_ca)),
        ),
        status(
            "tls.server_cert",
            server_cert.clone(),
            certs(&server_cert, dev_creates(&config.tls.server_cert)),
        ),
        status("tls.server_key", server_key_path, server_key),
    ]
}

fn status(key: &'static str, path: PathBuf, (state, detail): (State, String)) -> FileStatus {
    FileStatus {
        key,
        path,
        state,
        detail,
    }
}

#[cfg(unix)]
fn mode_text(path: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| format!("mode {:04o}", m.permissions().mode() & 0o7777))
        .unwrap_or_else(|e| format!("mode unknown ({e})"))
}

#[cfg(not(unix))]
fn mode_text(_path: &Path) -> String {
    "mode not applicable".into()
}

/// Settings that are valid but unwise in production.
fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if config.dev_mode && !config.listen.ip().is_loopback() {
        out.push(format!(
            "dev_mode = true on {}: dev organisations and their certificates are created at start; production sets dev_mode = false",
            config.listen
        ));
    }
    if !config.dev_mode && config.master_key_path().starts_with(&config.data_dir) {
        out.push(
            "master_key_file is inside data_dir: a copy of the data folder would carry the key with the database (see deploy/KEYS.md)"
                .into(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_paths_are_not() {
        // A PEM block's marker, assembled so that no scanner mistakes this test for a key.
        let pem = format!("-----BEGIN {}-----\\nMIG...", ["PRIVATE", "KEY"].join(" "));
        let mut tree: toml::Value = toml::from_str(&format!(
            r#"
            master_key_file = "/run/safehire/master.key"
            [future]
            api_token = "abc"
            password = 123
            token_file = "/etc/token"
            inline = "{pem}"
            [future.private]
            listen = "x"
            "#
        ))
        .unwrap();
        mask_secrets(&mut tree);
        let text = toml::to_string(&tree).unwrap();
        assert!(text.contains("/run/safehire/master.key"), "{text}");
        assert!(text.contains("/etc/token"), "{text}");
        assert!(!text.contains("abc") && !text.contains("123"), "{text}");
        assert!(!text.contains("BEGIN"), "{text}");
        assert_eq!(tree["future"]["private"]["listen"].as_str(), Some("x"));
    }

    #[test]
    fn the_effective_configuration_names_every_file_the_server_opens() {
        let config = Config::default();
        let tree = effective_tree(&config).unwrap();
        assert_eq!(
            tree["master_key_file"].as_str(),
            Some("data/master.key"),
            "{tree}"
        );
        assert_eq!(
            tree["tls"]["server_key"].as_str(),
            Some("certs/dev/server.key")
        );
        let reloaded: Config = tree.try_into().unwrap();
        assert_eq!(reloaded.master_key_path(), config.master_key_path());
    }

    #[test]
    fn dev_mode_on_a_public_address_is_warned_about() {
        let mut config = Config::default();
        assert!(warnings(&config).is_empty());
        config.listen = "0.0.0.0:50051".parse().unwrap();
        assert!(warnings(&config)[0].contains("dev_mode"));
        config.dev_mode = false;
        assert!(warnings(&config)[0].contains("inside data_dir"));
        config.master_key_file = Some(PathBuf::from("/run/safehire/master.key"));
        assert!(warnings(&config).is_empty());
    }
}
