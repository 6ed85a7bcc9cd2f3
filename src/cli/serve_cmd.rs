//! `safehire serve`: run the server until Ctrl-C or SIGTERM, then drain and flush.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
    /// Address of the Prometheus metrics listener (overrides metrics.listen and
    /// SAFEHIRE_METRICS__LISTEN): a second instance on one host needs its own.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Address of the web portal (overrides the config file and SAFEHIRE_PORTAL__LISTEN; turns
    /// the portal on).
    #[arg(long)]
    pub portal_listen: Option<SocketAddr>,
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
    if let Some(listen) = args.metrics_listen {
        config.metrics.listen = listen;
    }
    if let Some(portal) = args.portal_listen {
        config.portal.listen = portal;
        config.portal.enabled = Some(true);
    }
    config
        .validate()
        .map_err(|e| CliError::new(exit::INVALID_INPUT, e.to_string()))?;
    let traces = init_logging(&config)?;
    if traces.is_active() {
        tracing::info!(
            endpoint = config.telemetry.otlp_endpoint,
            service_name = config.telemetry.service_name,
            "exporting spans over OTLP/gRPC"
        );
    }
    let outcome = serve(config).await;
    if traces.is_active() {
        tracing::info!("flushing the trace export");
    }
    traces.shutdown().await;
    outcome
}

async fn serve(config: Config) -> Result<u8, CliError> {
    let server = crate::server::start(config, Arc::new(SystemClock))
        .await
        .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
    let addr = server.addr;
    if let Some(metrics) = server.metrics_addr {
        eprintln!("safehire metrics on http://{metrics}/metrics");
    }
    if let Some(portal) = server.portal_addr {
        eprintln!("safehire portal on https://{portal}/ (browser client certificates)");
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

/// Logs go to standard error; `RUST_LOG` filters them (default `info`). With `[telemetry]
/// otlp_endpoint` set (in a build with the `otel` feature), the spans also go to that
/// collector, under the same filter; the returned handle flushes them at the end.
fn init_logging(config: &Config) -> Result<crate::telemetry::TraceExport, CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match config.log_format {
        LogFormat::Json => logs.json().boxed(),
        LogFormat::Human => logs.boxed(),
    };
    let (traces, export) = crate::telemetry::start(&config.telemetry)
        .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init();
    Ok(export)
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
