//! Calls into the gRPC service implementations, in-process: a `tonic::Request` carrying the
//! connection's [`PeerInfo`] as the gRPC listener's requests do, so that the service's own
//! `authorize` identifies the caller, checks the role, applies the rate and audits the call.

use std::sync::Arc;

use tokio_stream::{Stream, StreamExt};
use tonic::codec::Codec;
use tonic::{Request, Status, Streaming};
use tracing::Instrument;

use crate::api::{AlertApi, AppState, AuditApi, CheckApi, OversightApi, ReviewApi, RosterApi};
use crate::tls::PeerInfo;

/// The services the portal's pages call.
pub struct Services {
    pub check: CheckApi,
    pub roster: RosterApi,
    pub alerts: AlertApi,
    pub reviews: ReviewApi,
    pub oversight: OversightApi,
    pub audit: AuditApi,
    /// The largest message a client stream may carry, as on the gRPC listener.
    pub max_message: usize,
}

impl Services {
    pub fn new(state: Arc<AppState>) -> Self {
        Self {
            max_message: state.limits.max_message_bytes,
            check: CheckApi::new(Arc::clone(&state)),
            roster: RosterApi::new(Arc::clone(&state)),
            alerts: AlertApi::new(Arc::clone(&state)),
            reviews: ReviewApi::new(Arc::clone(&state)),
            oversight: OversightApi::new(Arc::clone(&state)),
            audit: AuditApi::new(state),
        }
    }

    /// A client stream of `items`, framed and decoded as the gRPC listener would decode them.
    pub fn stream_of<T>(&self, items: Vec<T>) -> Streaming<T>
    where
        T: prost::Message + Default + Send + 'static,
    {
        let mut framed = Vec::new();
        for item in items {
            let body = item.encode_to_vec();
            framed.push(0u8);
            framed.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
            framed.extend_from_slice(&body);
        }
        let decoder = tonic_prost::ProstCodec::<T, T>::default().decoder();
        Streaming::new_request(
            decoder,
            http_body_util::Full::new(bytes::Bytes::from(framed)),
            None,
            Some(self.max_message),
        )
    }
}

/// A request as the gRPC listener would hand it to the service.
pub fn request<T>(peer: &PeerInfo, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(peer.clone());
    request
}

/// Runs one call in a span like the gRPC listener's (a request id, the method and, once
/// `authorize` has it, the caller), so that its log lines read the same.
pub async fn traced<F: std::future::Future>(method: &'static str, call: F) -> F::Output {
    let span = tracing::info_span!(
        "call",
        request_id = %uuid::Uuid::now_v7(),
        method = %method,
        caller = tracing::field::Empty,
        via = "portal",
    );
    call.instrument(span).await
}

/// Every message of a server stream, or the first error.
pub async fn collect<T, S>(stream: S) -> Result<Vec<T>, Status>
where
    S: Stream<Item = Result<T, Status>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item?);
    }
    Ok(items)
}
