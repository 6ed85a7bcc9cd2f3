//! Mutual TLS for the server: TLS 1.3 only, ring as the one crypto provider, and client
//! certificates verified against the configured CA. A connection without a certificate is let
//! through the handshake so that the RPC can be refused with a clear UNAUTHENTICATED status and
//! audited, and is closed shortly after; a certificate from another CA fails the handshake
//! itself. A connection that sends no request within its deadline is closed too.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

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

/// How long a connection refused for want of a certificate stays open after the refusal, so
/// that the refusal itself reaches the client.
const LINGER_AFTER_REFUSAL: Duration = Duration::from_millis(100);

/// What the server knows about the other end of a connection, worked out once per connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote: Option<SocketAddr>,
    /// The verified client certificate, when one was presented.
    pub cert: Option<Arc<PeerCertInfo>>,
    /// Why a presented certificate could not be read, when it could not.
    pub cert_problem: Option<String>,
    conn: Arc<ConnectionState>,
}

/// What the requests on a connection tell the connection itself.
#[derive(Debug, Default)]
struct ConnectionState {
    /// A request arrived: the first-request deadline no longer applies.
    spoke: AtomicBool,
    /// A refusal was answered on a connection that can never be served: close it.
    closing: AtomicBool,
}

impl PeerInfo {
    /// What is known of a peer, for any transport that authenticates it (the TLS listener
    /// here; another front end in the same process).
    pub fn new(
        remote: Option<SocketAddr>,
        cert: Option<Arc<PeerCertInfo>>,
        cert_problem: Option<String>,
    ) -> Self {
        Self {
            remote,
            cert,
            cert_problem,
            conn: Arc::default(),
        }
    }

    /// Marks that a request arrived on the connection.
    pub fn spoke(&self) {
        self.conn.spoke.store(true, Ordering::Relaxed);
    }

    /// Closes the connection shortly after the refusal being answered has been sent: a
    /// connection without a certificate can never be served, and must not stay open to be
    /// refused again and again.
    pub fn close_after_refusal(&self) {
        self.conn.closing.store(true, Ordering::Relaxed);
    }
}

/// What a connection holds while it is open (its places under the connection limits), given
/// back when it closes.
pub type Held = Vec<Box<dyn Send + Sync>>;

/// A TLS connection carrying its [`PeerInfo`] into every request's extensions.
pub struct PeerStream {
    inner: TlsStream<TcpStream>,
    info: PeerInfo,
    _held: Held,
    /// Until the first request: when the connection is closed if none has arrived.
    first_request: Option<Pin<Box<tokio::time::Sleep>>>,
    /// After a refusal that closes the connection: when it closes.
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
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
        PeerInfo::new(remote, cert, cert_problem)
    }
}

impl PeerStream {
    /// Wraps a connection whose handshake is done; it is closed if nothing arrives within
    /// `first_request_timeout`: the HTTP/2 preface from a caller with a certificate, the
    /// first request's headers from one without.
    pub fn new(inner: TlsStream<TcpStream>, held: Held, first_request_timeout: Duration) -> Self {
        Self {
            info: PeerInfo::of(&inner),
            inner,
            _held: held,
            first_request: Some(Box::pin(tokio::time::sleep(first_request_timeout))),
            linger: None,
        }
    }

    /// Whether the connection is to end now (reads then see the end of the stream, and the
    /// HTTP/2 server closes it); otherwise arranges to be woken when it is to end.
    fn ended(&mut self, cx: &mut Context<'_>) -> bool {
        if self.info.conn.closing.load(Ordering::Relaxed) {
            let linger = self
                .linger
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER_AFTER_REFUSAL)));
            if linger.as_mut().poll(cx).is_ready() {
                return true;
            }
        }
        if self.info.conn.spoke.load(Ordering::Relaxed) {
            self.first_request = None;
        } else if let Some(deadline) = &mut self.first_request
            && deadline.as_mut().poll(cx).is_ready()
        {
            tracing::info!(remote = ?self.info.remote, "connection closed: no request before the deadline");
            return true;
        }
        false
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
        let this = self.get_mut();
        if this.ended(cx) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        // A caller with a certificate may open its channel long before its first call: for
        // it the HTTP/2 preface arriving is enough. Without one, only a request is.
        if this.first_request.is_some() && this.info.cert.is_some() && buf.filled().len() > before {
            this.info.spoke();
        }
        read
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
        let this = self.get_mut();
        // A refusal's answer is flushed while the read side waits on a quiet client: arm the
        // linger here so that its end wakes the connection.
        this.ended(cx);
        Pin::new(&mut this.inner).poll_flush(cx)
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
