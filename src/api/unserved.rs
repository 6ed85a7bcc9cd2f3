//! Requests that tonic refuses before any service reads them: an unknown method, a message
//! over `limits.max_message_bytes`, one that does not decode. They reach no handler, so this
//! layer around every service audits them (folded per address and reason, like every other
//! refusal) and counts them; it also tells the connection that a request arrived.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::{BoxFuture, Service};

use super::{ApiError, AppState, Rpc};
use crate::audit::NewEntry;
use crate::tls::PeerInfo;

/// Put in every request; `authorize` sets it, so that a refusal seen on the way out without it
/// is one that no handler saw (and so did not audit).
#[derive(Clone, Default)]
pub struct Reached(Arc<AtomicBool>);

impl Reached {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The layer, for `Server::builder().layer`.
#[derive(Clone)]
pub struct UnservedLayer {
    state: Arc<AppState>,
}

impl UnservedLayer {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

impl<S> tower_layer::Layer<S> for UnservedLayer {
    type Service = Unserved<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Unserved {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

#[derive(Clone)]
pub struct Unserved<S> {
    inner: S,
    state: Arc<AppState>,
}

impl<S> Service<Request<Body>> for Unserved<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let peer = request.extensions().get::<PeerInfo>().cloned();
        if let Some(peer) = &peer {
            peer.spoke();
        }
        let reached = Reached::default();
        request.extensions_mut().insert(reached.clone());
        let action = Rpc::ALL
            .iter()
            .find(|rpc| path_names(request.uri().path(), rpc.name))
            .map_or("grpc.unknown_method", |rpc| rpc.name);
        let answered = self.inner.call(request);
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            let response = answered.await?;
            if !reached.0.load(Ordering::Relaxed)
                && let Some(error) = unserved(&response, action)
            {
                audit(&state, peer.as_ref(), action, error).await;
            }
            Ok(response)
        })
    }
}

/// `/safehire.v1.CheckService/Check` names `CheckService.Check`.
fn path_names(path: &str, rpc: &str) -> bool {
    let Some((service, method)) = rpc.split_once('.') else {
        return false;
    };
    path.strip_prefix("/safehire.v1.")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(s, m)| s == service && m == method)
}

/// The refusal in a response that no handler saw, if it is one of tonic's own; the health
/// and reflection services answer without a handler of ours, and their answers are not refusals.
fn unserved(response: &Response<Body>, action: &str) -> Option<ApiError> {
    let code = response.headers().get("grpc-status")?.to_str().ok()?;
    let (field, reason) = match code {
        "12" if action == "grpc.unknown_method" => ("method", "no such method"),
        "11" | "8" => ("message.size", "larger than limits.max_message_bytes"),
        "13" | "3" => ("message.encoding", "not a message of the method's type"),
        _ => return None,
    };
    Some(ApiError::invalid(field, reason))
}

/// Audits an unserved request under the method it named (never the path itself, which is
/// the caller's free text), folded per address or certificate and reason.
async fn audit(state: &AppState, peer: Option<&PeerInfo>, action: &str, error: ApiError) {
    let cert = peer.and_then(|p| p.cert.as_ref());
    let who = match (cert, peer.and_then(|p| p.remote)) {
        (Some(cert), _) => cert.fingerprint_sha256.clone(),
        (None, Some(remote)) => remote.ip().to_string(),
        (None, None) => "-".to_string(),
    };
    let entry = NewEntry {
        at_micros: state.now_micros(),
        action: action.to_string(),
        cert_fingerprint: cert
            .map(|c| c.fingerprint_sha256.clone())
            .unwrap_or_default(),
        caller: cert.and_then(|c| c.uscc_claim.clone()).unwrap_or_default(),
        ..NewEntry::default()
    };
    let key = format!("unserved {who} {action} {error}");
    let _ = state.refuse_folded(&key, entry, error).await;
}
