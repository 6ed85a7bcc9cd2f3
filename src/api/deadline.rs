//! Deadlines on a call's streams, so that a client that stops sending, or stops reading, ends
//! its call with DEADLINE_EXCEEDED instead of holding a batch slot, a staged upload and a task
//! for as long as its connection lives (`limits.stream_idle_secs`).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};

use super::{ApiError, AppState};

/// How long a stream may stay silent, or leave results unread.
pub fn idle_limit(state: &AppState) -> Duration {
    Duration::from_secs(state.limits.stream_idle_secs)
}

/// The client's next message, or DEADLINE_EXCEEDED when none came within `idle`.
pub async fn next<T>(
    stream: &mut Streaming<T>,
    idle: Duration,
) -> Result<Option<Result<T, Status>>, ApiError> {
    tokio::time::timeout(idle, stream.next())
        .await
        .map_err(|_| {
            ApiError::DeadlineExceeded(format!(
                "no message from the client for {} s; the call was ended",
                idle.as_secs()
            ))
        })
}

/// Hands `item` to the response stream, waiting at most `idle` for the client to make room.
pub async fn send<T>(
    out: &mpsc::Sender<T>,
    item: T,
    idle: Duration,
    what: &str,
) -> Result<(), ApiError> {
    out.send_timeout(item, idle).await.map_err(|e| match e {
        mpsc::error::SendTimeoutError::Timeout(_) => ApiError::DeadlineExceeded(format!(
            "the client read no {what} for {} s; the call was ended",
            idle.as_secs()
        )),
        mpsc::error::SendTimeoutError::Closed(_) => {
            ApiError::Cancelled(format!("the client stopped reading {what}"))
        }
    })
}
