//! Mutual TLS for the server: TLS 1.3 only, ring as the one crypto provider, and client
//! certificates verified against the configured CA. A connection without a certificate is let
//! through the handshake so that the RPC can be refused with a clear UNAUTHENTICATED status and
//! audited; a certificate from another CA fails the handshake itself.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

use crate::certs::{PeerCertInfo, peer_cert_info};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(String),
}

/// Installs ring as the process-wide rustls provider; the first call wins, later ones are no-ops.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.display().to_string(),
            reason: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The server's TLS configuration: TLS 1.3, h2, client certificates from `ca` (optional at the
/// handshake, required by every data RPC).
pub fn server_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    with_alpn(ca, cert, key, b"h2")
}

/// The web portal's TLS configuration: the same certificate, client CA and TLS 1.3 as the
/// gRPC listener, speaking HTTP/1.1 to browsers.
pub fn portal_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    with_alpn(ca, cert, key, b"http/1.1")
}

fn with_alpn(
    ca: &Path,
    cert: &Path,
    key: &Path,
    alpn: &[u8],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca_cert in load_certs(ca)? {
        roots.add(ca_cert)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key)?)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// What the server knows about the other end of a connection, worked out once per connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote: Option<SocketAddr>,
    /// The verified client certificate, when one was presented.
    pub cert: Option<Arc<PeerCertInfo>>,
    /// Why a presented certificate could not be read, when it could not.
    pub cert_problem: Option<String>,
}

/// A TLS connection carrying its [`PeerInfo`] into every request's extensions.
pub struct PeerStream {
    inner: TlsStream<TcpStream>,
    info: PeerInfo,
    /// The connection's place under `limits.max_connections`, given back when it closes.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl PeerInfo {
    /// What a server-side TLS connection says about its peer; the gRPC listener and the web
    /// portal both work the caller out with it, so that both see the same identity.
    pub fn of(stream: &TlsStream<TcpStream>) -> Self {
        let remote = stream.get_ref().0.peer_addr().ok();
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first().cloned());
        let (cert, cert_problem) = match leaf {
            None => (None, None),
            Some(der) => match peer_cert_info(der.as_ref()) {
                Ok(info) => (Some(Arc::new(info)), None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        PeerInfo {
            remote,
            cert,
            cert_problem,
        }
    }
}

impl PeerStream {
    pub fn new(inner: TlsStream<TcpStream>, slot: tokio::sync::OwnedSemaphorePermit) -> Self {
        Self {
            info: PeerInfo::of(&inner),
            inner,
            _slot: slot,
        }
    }
}

impl Connected for PeerStream {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
