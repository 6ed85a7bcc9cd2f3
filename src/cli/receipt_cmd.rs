//! `safehire receipt`: a check's receipt from the verifiable log (a C2SP tlog-proof file), and
//! its offline verification with nothing but the log's verifier key — the unit's evidence
//! that it did check, should a report say otherwise.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{CliError, ConnectArgs, exit, print_json};
use crate::audit::note::{Receipt, Verifier};
use crate::org::Role;
use crate::proto;
use crate::proto::audit_service_client::AuditServiceClient;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReceiptArgs {
    #[command(subcommand)]
    pub verify: Option<ReceiptCommand>,
    /// The check id of the answer (an employer's own checks; a prosecutor's: any).
    pub check_id: Option<String>,
    /// Where to write the receipt (`.tlog-proof`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Check a receipt offline against the log's verifier key.
    Verify {
        file: PathBuf,
        /// The log's verifier key, as `safehire audit log-key` prints it, or a file holding it.
        #[arg(long, value_name = "VKEY", value_parser = super::vkey_or_file)]
        log_key: String,
    },
}

pub async fn run(connect: &ConnectArgs, args: ReceiptArgs, json: bool) -> Result<u8, CliError> {
    match args {
        ReceiptArgs {
            verify: Some(ReceiptCommand::Verify { file, log_key }),
            ..
        } => verify(&file, &log_key, json),
        ReceiptArgs {
            check_id: Some(check_id),
            out: Some(out),
            ..
        } => {
            let mut client = AuditServiceClient::new(connect.connect(Role::Employer).await?);
            let reply = client
                .inclusion_proof(proto::InclusionProofRequest {
                    entry: Some(proto::inclusion_proof_request::Entry::CheckId(check_id)),
                })
                .await?
                .into_inner();
            std::fs::write(&out, &reply.receipt).map_err(|e| CliError::io(&out, e))?;
            if json {
                print_json(&json!({"file": out.display().to_string(), "index": reply.index}));
            } else {
                println!(
                    "receipt for log index {} written to {}",
                    reply.index,
                    out.display()
                );
            }
            Ok(exit::OK)
        }
        _ => Err(CliError::usage(
            "give CHECK_ID --out FILE, or `verify FILE --log-key VKEY`",
        )),
    }
}

fn verify(file: &std::path::Path, log_key: &str, json: bool) -> Result<u8, CliError> {
    let key = Verifier::parse(log_key).map_err(|e| CliError::usage(format!("--log-key: {e}")))?;
    let text = std::fs::read_to_string(file).map_err(|e| CliError::io(file, e))?;
    let verified = Receipt::parse(&text).and_then(|receipt| {
        let (checkpoint, entry) = receipt.verify(&key)?;
        Ok((receipt.index, checkpoint, entry))
    });
    match verified {
        Ok((index, checkpoint, entry)) => {
            if json {
                print_json(&json!({
                    "ok": true,
                    "index": index,
                    "tree_size": checkpoint.size,
                    "origin": checkpoint.origin,
                    "action": entry.action,
                    "employer": entry.employer,
                    "outcome": entry.outcome,
                    "check_id": entry.check_id,
                    "at": super::format_timestamp(Some(&crate::api::timestamp_micros(entry.at_micros))),
                }));
            } else {
                println!(
                    "receipt OK: entry {index} is in the log signed by {} (tree size {})",
                    checkpoint.origin, checkpoint.size
                );
                println!(
                    "{} {} for {}: {} at {}",
                    entry.action,
                    entry.check_id,
                    entry.employer,
                    entry.outcome,
                    super::format_timestamp(Some(&crate::api::timestamp_micros(entry.at_micros)))
                );
            }
            Ok(exit::OK)
        }
        Err(e) => {
            if json {
                print_json(&json!({"ok": false, "problem": e.to_string()}));
            } else {
                println!("receipt does NOT verify: {e}");
            }
            Ok(exit::FAILED)
        }
    }
}
