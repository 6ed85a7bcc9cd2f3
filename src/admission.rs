//! Who may hold a connection, one rule for both listeners (gRPC and the web portal): a place
//! under the listener's global limit and under its address's limit on arrival, a TLS handshake
//! within its deadline, and, for a connection that presented no client certificate, one of the
//! few places its address has for those. A flood of connections from one address, with or
//! without a certificate, must not take the places, memory and file descriptors the served
//! ones need. Every refusal is audited folded: one entry a minute per address and reason that
//! counts the ones folded into it, so that a flood cannot fill the log either.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::api::AppState;
use crate::audit::NewEntry;
use crate::metrics::{ConnectionRefusal, Listener};
use crate::throttle::{AddressSlot, AddressSlots, AuditSampler, REFUSALS_FOLDED_FOR};

/// A listener's connection limits.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionLimits {
    /// Connections open at once, handshakes included.
    pub max_connections: usize,
    /// Connections open at once from one address, handshakes included.
    pub per_address: usize,
    /// Connections without a client certificate open at once from one address.
    pub anonymous_per_address: usize,
    /// How long the TLS handshake may take.
    pub handshake_timeout: Duration,
}

/// Why a connection was not admitted; the text goes into the audit entry (never an identity:
/// only counts and the TLS library's reason).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0} connections already open")]
    OverLimit(usize),
    #[error("{0} connections already open from the address")]
    AddressLimit(usize),
    #[error("{0} connections without a client certificate already open from the address")]
    AnonymousLimit(usize),
    #[error("{0}")]
    Handshake(String),
}

impl Refused {
    fn kind(&self) -> ConnectionRefusal {
        match self {
            Refused::OverLimit(_) => ConnectionRefusal::OverLimit,
            Refused::AddressLimit(_) => ConnectionRefusal::AddressLimit,
            Refused::AnonymousLimit(_) => ConnectionRefusal::AnonymousLimit,
            Refused::Handshake(_) => ConnectionRefusal::Handshake,
        }
    }
}

/// The places an admitted connection holds, given back when it is dropped (with the
/// connection).
pub struct Ticket {
    _address: AddressSlot,
    _global: OwnedSemaphorePermit,
    _anonymous: Option<AddressSlot>,
}

/// One listener's admission: its limits, the places taken under them, and its refusals.
pub struct Admission {
    listener: Listener,
    limits: AdmissionLimits,
    slots: Arc<Semaphore>,
    address_slots: AddressSlots,
    anonymous_slots: AddressSlots,
    refusals: AuditSampler,
    state: Arc<AppState>,
}

impl Admission {
    pub fn new(listener: Listener, limits: AdmissionLimits, state: Arc<AppState>) -> Self {
        Self {
            listener,
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            address_slots: AddressSlots::new(limits.per_address),
            anonymous_slots: AddressSlots::new(limits.anonymous_per_address),
            refusals: AuditSampler::new(REFUSALS_FOLDED_FOR),
            state,
        }
    }

    /// On arrival, before any byte is read: a place under the address's limit, then under the
    /// global one.
    pub fn admit(&self, remote: SocketAddr) -> Result<Ticket, Refused> {
        let address = self
            .address_slots
            .take(remote.ip())
            .ok_or(Refused::AddressLimit(self.limits.per_address))?;
        let global = Arc::clone(&self.slots)
            .try_acquire_owned()
            .map_err(|_| Refused::OverLimit(self.limits.max_connections))?;
        Ok(Ticket {
            _address: address,
            _global: global,
            _anonymous: None,
        })
    }

    /// After the handshake: a connection that presented no client certificate also needs one
    /// of its address's places for those.
    pub fn after_handshake(
        &self,
        ticket: Ticket,
        remote: SocketAddr,
        has_cert: bool,
    ) -> Result<Ticket, Refused> {
        if has_cert {
            return Ok(ticket);
        }
        let anonymous = self
            .anonymous_slots
            .take(remote.ip())
            .ok_or(Refused::AnonymousLimit(self.limits.anonymous_per_address))?;
        Ok(Ticket {
            _anonymous: Some(anonymous),
            ..ticket
        })
    }

    /// The handshake within its deadline, then [`Admission::after_handshake`]; a refusal is
    /// audited (after the connection and its places are let go) and gives `None`.
    pub async fn handshake(
        &self,
        acceptor: &TlsAcceptor,
        tcp: TcpStream,
        remote: SocketAddr,
        ticket: Ticket,
    ) -> Option<(TlsStream<TcpStream>, Ticket)> {
        let refused =
            match tokio::time::timeout(self.limits.handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let has_cert = stream.get_ref().1.peer_certificates().is_some();
                    match self.after_handshake(ticket, remote, has_cert) {
                        Ok(ticket) => return Some((stream, ticket)),
                        Err(refused) => refused,
                    }
                }
                Ok(Err(e)) => {
                    drop(ticket);
                    Refused::Handshake(e.to_string())
                }
                Err(_) => {
                    drop(ticket);
                    Refused::Handshake("handshake timed out".into())
                }
            };
        self.refuse(remote, refused).await;
        None
    }

    /// [`Admission::admit`] for a connection just accepted: a refused one is closed at once
    /// and its refusal audited.
    pub async fn admit_or_close<T>(&self, tcp: T, remote: SocketAddr) -> Option<(T, Ticket)> {
        match self.admit(remote) {
            Ok(ticket) => Some((tcp, ticket)),
            Err(refused) => {
                drop(tcp);
                self.refuse(remote, refused).await;
                None
            }
        }
    }

    /// Counts and audits a refused connection, folded: the first of an address and reason
    /// each minute gets its own entry, which counts those folded into it since the last (a
    /// load balancer's TCP probe fails the handshake every few seconds, and would otherwise
    /// fill the log).
    pub async fn refuse(&self, remote: SocketAddr, refused: Refused) {
        let why = refused.kind();
        let state = &self.state;
        state.metrics.connection_refused(self.listener, why);
        let (action, outcome) = match why {
            ConnectionRefusal::OverLimit
            | ConnectionRefusal::AddressLimit
            | ConnectionRefusal::AnonymousLimit => ("net.connection", "RESOURCE_EXHAUSTED"),
            ConnectionRefusal::Handshake => ("tls.handshake", "UNAUTHENTICATED"),
        };
        let listener = self.listener.label();
        let Some(folded) = self.refusals.sample(
            &format!("{action} {} {}", why as u8, remote.ip()),
            Instant::now(),
        ) else {
            state.metrics.refusal_folded();
            tracing::debug!(%remote, reason = %refused, action, listener, "connection refused (folded)");
            return;
        };
        tracing::info!(%remote, reason = %refused, action, listener, "connection refused");
        let entry = NewEntry {
            at_micros: state.now_micros(),
            action: action.into(),
            outcome: outcome.into(),
            detail: format!(
                "remote={} listener={listener} reason={refused} folded={folded}",
                remote.ip()
            ),
            ..NewEntry::default()
        };
        if let Err(e) = state.store.append_audit(entry).await {
            tracing::error!(error = %e, "could not audit a refused connection");
        }
    }
}
