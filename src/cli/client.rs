//! How the command-line client reaches the server: which certificate it presents (a dev role
//! with `--as`, or explicit files for real use) and where the server is.

use std::path::{Path, PathBuf};

use clap::Args;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::CliError;
use crate::org::Role;

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Server address.
    #[arg(
        long,
        global = true,
        env = "SAFEHIRE_SERVER",
        default_value = "https://127.0.0.1:50051"
    )]
    pub server: String,
    /// Act as this dev organisation (its certificate from --certs-dir): operator, registrar,
    /// bureau, employer or prosecutor.
    #[arg(long = "as", global = true, value_name = "ROLE")]
    pub as_role: Option<String>,
    /// Folder of the dev certificate set.
    #[arg(long, global = true, default_value = "certs/dev")]
    pub certs_dir: PathBuf,
    /// Client certificate (PEM), for real use instead of --as.
    #[arg(long, global = true, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, global = true, requires = "cert")]
    pub key: Option<PathBuf>,
    /// CA certificate that signed the server's certificate.
    #[arg(long, global = true)]
    pub ca: Option<PathBuf>,
    /// Name the server's certificate must carry (default: the host in --server).
    #[arg(long, global = true)]
    pub tls_server_name: Option<String>,
}

impl ConnectArgs {
    /// Opens a channel, presenting the certificate of `default_role` unless told otherwise.
    pub async fn connect(&self, default_role: Role) -> Result<Channel, CliError> {
        let (cert, key) = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ => {
                let role = match &self.as_role {
                    Some(text) => Role::parse(text).ok_or_else(|| {
                        CliError::usage(format!("--as {text}: one of {}", Role::slugs()))
                    })?,
                    None => default_role,
                };
                (
                    self.certs_dir.join(format!("{}.pem", role.slug())),
                    self.certs_dir.join(format!("{}.key", role.slug())),
                )
            }
        };
        self.open(Some(Identity::from_pem(read(&cert)?, read(&key)?)))
            .await
    }

    /// Opens a channel without a client certificate: enough for the health service, which
    /// answers before any caller is identified (a probe is no organisation).
    pub async fn connect_anonymous(&self) -> Result<Channel, CliError> {
        self.open(None).await
    }

    async fn open(&self, identity: Option<Identity>) -> Result<Channel, CliError> {
        let ca = self
            .ca
            .clone()
            .unwrap_or_else(|| self.certs_dir.join("ca.pem"));
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&ca)?));
        if let Some(identity) = identity {
            tls = tls.identity(identity);
        }
        if let Some(name) = &self.tls_server_name {
            tls = tls.domain_name(name.clone());
        }
        let endpoint = Endpoint::from_shared(self.server.clone())
            .map_err(|e| CliError::usage(format!("--server {}: {e}", self.server)))?
            .tls_config(tls)
            .map_err(|e| CliError::unavailable(format!("TLS setup: {e}")))?;
        endpoint.connect().await.map_err(|e| {
            CliError::unavailable(format!(
                "cannot reach {}: {} (is `safehire serve` running?)",
                self.server,
                source_chain(&e)
            ))
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| {
        CliError::unavailable(format!(
            "{}: {e} (run `safehire serve` once in dev mode, or `safehire certs init`, to create the dev certificates)",
            path.display()
        ))
    })
}

/// The error and its causes on one line: tonic's top-level transport error says little.
pub fn source_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = inner.source();
    }
    parts.join(": ")
}
