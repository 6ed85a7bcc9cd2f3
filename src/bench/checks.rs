//! Single checks and their ceiling: `CheckService.Check` against `grpc.health.v1.Health/Check`
//! on the same server, over the same mTLS connections, at the same concurrency. The health
//! check does nothing but cross the network stack, so the ratio says how much of the ceiling a
//! real check (validate, hash, look up, durable audit entry) keeps.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::BenchError;
use super::data;
use super::load::{Measured, Phases, channels_for, closed_loop};
use super::server::ServerProcess;
use crate::org::Role;
use crate::proto;
use crate::proto::check_service_client::CheckServiceClient;

/// The baseline: health checks at `concurrency`.
pub async fn health(
    server: &ServerProcess,
    concurrency: usize,
    phases: Phases,
) -> Result<Measured, BenchError> {
    let channels = server
        .channels(Role::Employer, channels_for(concurrency))
        .await?;
    Ok(
        closed_loop(&channels, concurrency, phases, |channel, _| async move {
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|_| ())
                .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
        })
        .await,
    )
}

/// Periodic checks at `concurrency` against an index of `index_size` bench records; an answer
/// that is not the expected outcome counts as an error.
pub async fn checks(
    server: &ServerProcess,
    concurrency: usize,
    phases: Phases,
    index_size: u64,
) -> Result<Measured, BenchError> {
    let channels = server
        .channels(Role::Employer, channels_for(concurrency))
        .await?;
    Ok(closed_loop(
        &channels,
        concurrency,
        phases,
        move |channel, n| async move {
            let (request, hit) = data::check_request(n, index_size);
            let reply = CheckServiceClient::new(channel)
                .check(request)
                .await
                .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?
                .into_inner();
            let expected = if hit {
                proto::Outcome::RecordFound
            } else {
                proto::Outcome::NoRecord
            };
            if reply.outcome() == expected {
                Ok(())
            } else {
                Err(format!("expected {expected:?}, got {:?}", reply.outcome()))
            }
        },
    )
    .await)
}
