//! `safehire serve`: run the server until Ctrl-C or SIGTERM, then drain and flush.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{CliError, exit};
use crate::clock::SystemClock;
use crate::config::{Config, LogFormat};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides the config file and SAFEHIRE_LISTEN).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// TOML configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data folder (overrides the config file and SAFEHIRE_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: ServeArgs) -> Result<u8, CliError> {
    let settings = crate::config::process_settings().map_err(|e| CliError::usage(e.to_string()))?;
    let mut config = Config::load(args.config.as_deref(), settings)
        .map_err(|e| CliError::usage(e.to_string()))?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    config
        .validate()
        .map_err(|e| CliError::new(exit::INVALID_INPUT, e.to_string()))?;
    init_logging(config.log_format);
    let server = crate::server::start(config, Arc::new(SystemClock))
        .await
        .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
    let addr = server.addr;
    if let Some(metrics) = server.metrics_addr {
        eprintln!("safehire metrics on http://{metrics}/metrics");
    }
    eprintln!("safehire listening on {addr} (mTLS); Ctrl-C to stop");
    shutdown_signal().await;
    tracing::info!("stopping: draining calls and flushing the audit log");
    server
        .shutdown()
        .await
        .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
    tracing::info!("stopped");
    Ok(exit::OK)
}

/// Logs go to standard error; `RUST_LOG` filters them (default `info`).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
