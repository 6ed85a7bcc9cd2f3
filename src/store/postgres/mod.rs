//! The PostgreSQL backend's foundation: a pool of connections to the database named by a
//! `postgres://` URL, TLS to it through rustls with the ring provider, and the schema
//! (`schema`). Several hosts in one URL with `target_session_attrs=read-write` reach whichever
//! of them is the primary, so that a failover needs no configuration change.
//!
//! TLS: `sslmode=require` (or `verify-full`, the same here) verifies the server's certificate
//! chain against a root CA *and* its host name, as libpq's `verify-full` does; safehire never
//! talks to a database whose identity it did not check. The CA comes from the URL's
//! `sslrootcert` or from [`PgOptions::root_ca`]; a CA given either way makes TLS required
//! unless the URL says `sslmode=disable`. Without one, connections are plain TCP or a unix
//! socket (a host that starts with `/`).

pub mod audit;
pub mod schema;
mod tx;
pub mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::tls::{TlsError, load_certs};

/// How many connections a pool holds unless told otherwise: the writer's one plus readers
/// for the two cores of a small node.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// Errors of the PostgreSQL backend. None of them repeats the URL, which may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("the database URL does not parse: {0}")]
    Url(tokio_postgres::Error),
    #[error("the database URL is malformed: {0}")]
    UrlSyntax(&'static str),
    #[error(
        "sslmode={0} is not supported: use sslmode=require (safehire always verifies the \
         server's certificate and host name) or sslmode=disable"
    )]
    SslMode(String),
    #[error(
        "sslmode=require needs the database's root CA: give it as sslrootcert=PATH in the URL \
         or in the store settings"
    )]
    NoRootCa,
    #[error("TLS to the database: {0}")]
    Tls(#[from] TlsError),
    #[error("the connection pool could not be built: {0}")]
    PoolBuild(#[from] deadpool_postgres::BuildError),
    #[error("no connection to the database: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(
        "the database was written by a newer safehire (schema {found}, this build knows {known})"
    )]
    SchemaTooNew { found: i64, known: usize },
    #[error("the audit head row was edited: {0}; refusing to append after it")]
    HeadCorrupt(&'static str),
    #[error("audit entry {0} does not exist")]
    NoSuchEntry(u64),
    #[error("the audit log's Merkle tree has no node at level {0}, index {1}")]
    TreeIncomplete(u8, u64),
    #[error(
        "the audit log's Merkle tree holds {tree} leaves but the log only {log} entries \
         (entries were removed from the database)"
    )]
    TreeAhead { tree: u64, log: u64 },
    #[error(
        "the audit head row is at entry {head} but the log ends at {log} (entries were \
         removed from the database); refusing to append after it"
    )]
    LogBehindHead { head: u64, log: u64 },
    #[error("the PostgreSQL writer has stopped")]
    WriterGone,
    #[error("the group commit holding this job failed: {0}")]
    NotCommitted(std::sync::Arc<PgError>),
}

/// Where the database is and how to reach it.
#[derive(Clone)]
pub struct PgOptions {
    /// A libpq-style URL: `postgres://user[:password]@host[:port][,host[:port]…]/db?params`.
    pub url: String,
    /// The PEM file of the CA that signed the database's certificate, when the URL gives no
    /// `sslrootcert`.
    pub root_ca: Option<PathBuf>,
    /// The most connections the pool opens.
    pub pool_size: usize,
}

impl PgOptions {
    /// Options for `url` with no separate CA and the default pool size.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            root_ca: None,
            pool_size: DEFAULT_POOL_SIZE,
        }
    }
}

impl std::fmt::Debug for PgOptions {
    /// The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &"[redacted]")
            .field("root_ca", &self.root_ca)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// A pool of connections to one PostgreSQL database (or to the primary of several hosts).
pub struct Pg {
    pool: Pool,
    tls: bool,
}

impl Pg {
    /// Builds the pool. No connection is opened yet: the first [`Pg::client`] opens one, so a
    /// database that is down is reported there.
    pub fn new(options: &PgOptions) -> Result<Self, PgError> {
        let target = Target::parse(&options.url)?;
        let mut config = target.config;
        let root_ca = target.root_ca.or_else(|| options.root_ca.clone());
        if root_ca.is_some() && config.get_ssl_mode() == SslMode::Prefer {
            config.ssl_mode(SslMode::Require);
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let tls = config.get_ssl_mode() == SslMode::Require;
        let manager = if tls {
            let ca = root_ca.ok_or(PgError::NoRootCa)?;
            Manager::from_config(
                config,
                MakeRustlsConnect::new(client_tls(&ca)?),
                manager_config,
            )
        } else {
            // `prefer` (tokio-postgres' default) with no CA: plain, as without TLS support.
            config.ssl_mode(SslMode::Disable);
            Manager::from_config(config, NoTls, manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .build()?;
        Ok(Self { pool, tls })
    }

    /// A connection from the pool, opened if none is idle.
    pub async fn client(&self) -> Result<Object, PgError> {
        Ok(self.pool.get().await?)
    }

    /// Whether connections use TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// Brings the schema up to date (see [`schema::migrate`]); returns how many migrations ran.
    pub async fn migrate(&self) -> Result<usize, PgError> {
        let mut client = self.client().await?;
        schema::migrate(&mut client).await
    }

    /// Closes the pool: idle connections are dropped and no new one is handed out.
    pub fn close(&self) {
        self.pool.close();
    }
}

/// rustls client settings for the database: ring, the default protocol versions (PostgreSQL
/// 15 speaks TLS 1.2 and 1.3), the one CA file as the only root, no client certificate.
fn client_tls(ca: &Path) -> Result<rustls::ClientConfig, PgError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert).map_err(TlsError::from)?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::from)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A URL split into what tokio-postgres reads and the libpq parameters it does not know.
struct Target {
    config: tokio_postgres::Config,
    root_ca: Option<PathBuf>,
}

impl Target {
    /// Takes `sslrootcert` out of a URL's query (tokio-postgres refuses unknown parameters)
    /// and reads `sslmode=verify-full` as `require`, which verifies as much here. A
    /// `key=value` connection string goes to tokio-postgres as it is.
    fn parse(url: &str) -> Result<Self, PgError> {
        let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
            let config = tokio_postgres::Config::from_str(url).map_err(PgError::Url)?;
            return Ok(Self {
                config,
                root_ca: None,
            });
        };
        let mut root_ca = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match (
                percent_decode(key)?.as_str(),
                percent_decode(value)?.as_str(),
            ) {
                ("sslrootcert", path) => root_ca = Some(PathBuf::from(path)),
                ("sslmode", "verify-full") => kept.push("sslmode=require".to_owned()),
                ("sslmode", mode @ ("allow" | "verify-ca")) => {
                    return Err(PgError::SslMode(mode.to_owned()));
                }
                _ => kept.push(pair.to_owned()),
            }
        }
        let rebuilt = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let config = tokio_postgres::Config::from_str(&rebuilt).map_err(PgError::Url)?;
        Ok(Self { config, root_ca })
    }
}

/// Decodes `%XX` escapes, as libpq does for URL parameters.
fn percent_decode(text: &str) -> Result<String, PgError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(PgError::UrlSyntax(
                    "a % escape is not followed by two hex digits",
                ))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PgError::UrlSyntax("a parameter is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::config::{Host, TargetSessionAttrs};

    #[test]
    fn multi_host_read_write_url() {
        let target = Target::parse(
            "postgres://app@db1:5432,db2:5433/safehire?target_session_attrs=read-write",
        )
        .expect("parses");
        assert_eq!(
            target.config.get_hosts(),
            &[Host::Tcp("db1".into()), Host::Tcp("db2".into())]
        );
        assert_eq!(target.config.get_ports(), &[5432, 5433]);
        assert_eq!(
            target.config.get_target_session_attrs(),
            TargetSessionAttrs::ReadWrite
        );
        assert!(target.root_ca.is_none());
    }

    #[test]
    fn sslrootcert_is_taken_out_and_verify_full_is_require() {
        let target = Target::parse(
            "postgresql://app@db/safehire?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20dir%2Fca.pem&application_name=safehire",
        )
        .expect("parses");
        assert_eq!(target.root_ca, Some(PathBuf::from("/etc/ca dir/ca.pem")));
        assert_eq!(target.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(target.config.get_application_name(), Some("safehire"));
    }

    #[test]
    fn weaker_modes_and_bad_escapes_are_refused() {
        assert!(matches!(
            Target::parse("postgres://db/x?sslmode=verify-ca"),
            Err(PgError::SslMode(_))
        ));
        assert!(matches!(
            Target::parse("postgres://db/x?sslrootcert=%zz"),
            Err(PgError::UrlSyntax(_))
        ));
    }

    #[test]
    fn require_without_a_ca_is_refused_before_connecting() {
        let error = Pg::new(&PgOptions::new("postgres://db/x?sslmode=require"))
            .err()
            .expect("refused");
        assert!(matches!(error, PgError::NoRootCa), "{error}");
    }

    #[test]
    fn errors_never_repeat_a_password() {
        let error = Pg::new(&PgOptions::new("postgres://app:s3cret@db/x?sslmode=bogus"))
            .err()
            .expect("refused");
        assert!(!error.to_string().contains("s3cret"), "{error}");
        let options = PgOptions::new("postgres://app:s3cret@db/x");
        assert!(!format!("{options:?}").contains("s3cret"));
    }
}
