//! `safehire certs revoke` and `safehire certs revoked`: the server's certificate deny list.

use std::path::Path;

use serde_json::json;

use super::file_error;
use crate::certs;
use crate::cli::{CliError, ConnectArgs, exit, format_timestamp, print_json};
use crate::org::Role;
use crate::proto;
use crate::proto::organisation_service_client::OrganisationServiceClient;

pub async fn revoke(
    connect: &ConnectArgs,
    certificate: &str,
    reason: String,
    json: bool,
) -> Result<u8, CliError> {
    let fingerprint = fingerprint_of(certificate)?;
    let mut client = OrganisationServiceClient::new(connect.connect(Role::Operator).await?);
    let response = client
        .revoke_certificate(proto::RevokeCertificateRequest {
            fingerprint,
            reason,
        })
        .await?
        .into_inner();
    let revoked = response.certificate.unwrap_or_default();
    if json {
        print_json(&json!({
            "fingerprint": revoked.fingerprint,
            "revoked_at": format_timestamp(revoked.revoked_at.as_ref()),
            "reason": revoked.reason,
            "already_revoked": response.already_revoked,
        }));
    } else if response.already_revoked {
        println!(
            "{} was already revoked at {}: {}",
            revoked.fingerprint,
            format_timestamp(revoked.revoked_at.as_ref()),
            revoked.reason
        );
    } else {
        println!(
            "revoked {}: the server refuses it from the next call on",
            revoked.fingerprint
        );
    }
    Ok(exit::OK)
}

pub async fn list(connect: &ConnectArgs, json: bool) -> Result<u8, CliError> {
    let mut client = OrganisationServiceClient::new(connect.connect(Role::Operator).await?);
    let revoked = client
        .list_revoked_certificates(proto::ListRevokedCertificatesRequest {})
        .await?
        .into_inner()
        .certificates;
    if json {
        let list: Vec<serde_json::Value> = revoked
            .iter()
            .map(|r| {
                json!({
                    "fingerprint": r.fingerprint,
                    "revoked_at": format_timestamp(r.revoked_at.as_ref()),
                    "reason": r.reason,
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(list));
        return Ok(exit::OK);
    }
    for r in &revoked {
        println!(
            "{}  {}  {}",
            format_timestamp(r.revoked_at.as_ref()),
            r.fingerprint,
            r.reason
        );
    }
    println!("{} revoked certificates", revoked.len());
    Ok(exit::OK)
}

/// A fingerprint as given, or the fingerprint of the certificate file named.
fn fingerprint_of(certificate: &str) -> Result<String, CliError> {
    if let Some(fingerprint) = certs::parse_fingerprint(certificate) {
        return Ok(fingerprint);
    }
    let path = Path::new(certificate);
    let pem = std::fs::read_to_string(path).map_err(|e| {
        CliError::usage(format!(
            "{certificate}: neither a SHA-256 fingerprint (64 hex digits) nor a readable certificate file ({e})"
        ))
    })?;
    certs::cert_der_from_pem(&pem)
        .and_then(|der| certs::peer_cert_info(&der))
        .map(|info| info.fingerprint_sha256)
        .map_err(|e| file_error(path, e))
}
