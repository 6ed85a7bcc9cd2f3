//! `safehire health`: asks the server's `grpc.health.v1` service whether it is serving, over
//! TLS verified against the CA but without a client certificate. It is the probe for
//! Kubernetes and other supervisors: the kubelet's own gRPC probe speaks plaintext, which the
//! TLS-only port refuses (and audits as a failed handshake), so the image probes itself.

use std::time::Duration;

use clap::Args;
use serde_json::json;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{CliError, ConnectArgs, exit, print_json};

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Service to ask about, e.g. safehire.v1.CheckService; empty for the server as a whole.
    #[arg(long, default_value = "")]
    pub service: String,
    /// Give up after this many seconds (connection and call together).
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}

/// Exit 0 when serving, 8 when the server answers anything else, 7 when it cannot be reached
/// or does not answer in time.
pub async fn run(connect: &ConnectArgs, args: HealthArgs, json: bool) -> Result<u8, CliError> {
    let limit = Duration::from_secs(args.timeout_secs);
    let ask = async {
        let channel = connect.connect_anonymous().await?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await?;
        Ok::<_, CliError>(reply.into_inner().status())
    };
    let status = tokio::time::timeout(limit, ask).await.map_err(|_| {
        CliError::unavailable(format!(
            "{} did not answer within {} s",
            connect.server, args.timeout_secs
        ))
    })??;
    let name = status.as_str_name();
    if json {
        print_json(&json!({ "service": args.service, "status": name }));
    } else {
        println!("{name}");
    }
    Ok(if status == ServingStatus::Serving {
        exit::OK
    } else {
        exit::FAILED
    })
}
