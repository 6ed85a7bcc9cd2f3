//! `safehire audit`: the head of the chain and its verification, through the API or directly
//! on a database file (for a prosecutor holding a copy).

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::{CliError, ConnectArgs, exit, format_timestamp, print_json};
use crate::org::Role;
use crate::proto;
use crate::proto::audit_service_client::AuditServiceClient;
use crate::store;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the newest entry's sequence number and hash.
    Head {
        /// Read this database file directly instead of asking the server.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Recompute the chain and name the first broken entry.
    Verify {
        /// Verify this database file directly (read-only) instead of asking the server.
        #[arg(long)]
        db: Option<PathBuf>,
        /// First sequence number (default: the start).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Last sequence number (default: the head).
        #[arg(long, default_value_t = 0)]
        to: u64,
    },
}

pub async fn run(connect: &ConnectArgs, cmd: AuditCommand, json: bool) -> Result<u8, CliError> {
    match cmd {
        AuditCommand::Head { db: Some(db) } => {
            let head = store::head_of_file(&db).map_err(|e| CliError::io(&db, e))?;
            print_head(&crate::api::head_proto(&head), json);
            Ok(exit::OK)
        }
        AuditCommand::Head { db: None } => {
            let mut client = AuditServiceClient::new(connect.connect(Role::Prosecutor).await?);
            let head = client.head(proto::HeadRequest {}).await?.into_inner();
            print_head(&head, json);
            Ok(exit::OK)
        }
        AuditCommand::Verify {
            db: Some(db),
            from,
            to,
        } => {
            let (verification, head) =
                store::verify_file(&db, from, to).map_err(|e| CliError::io(&db, e))?;
            let (first, problem) = verification.first_broken.clone().unwrap_or_default();
            report(
                &proto::VerifyResponse {
                    ok: verification.ok(),
                    entries_checked: verification.entries_checked,
                    first_broken_sequence: first,
                    problem,
                    head: Some(crate::api::head_proto(&head)),
                },
                json,
            )
        }
        AuditCommand::Verify { db: None, from, to } => {
            let mut client = AuditServiceClient::new(connect.connect(Role::Prosecutor).await?);
            let reply = client
                .verify(proto::VerifyRequest {
                    from_sequence: from,
                    to_sequence: to,
                })
                .await?
                .into_inner();
            report(&reply, json)
        }
    }
}

fn print_head(head: &proto::AuditHead, json: bool) {
    if json {
        print_json(&json!({
            "sequence": head.sequence,
            "hash": head.hash,
            "at": format_timestamp(head.at.as_ref()),
        }));
    } else {
        println!("sequence  {}", head.sequence);
        println!("hash      {}", head.hash);
        println!("at        {}", format_timestamp(head.at.as_ref()));
    }
}

fn report(reply: &proto::VerifyResponse, json: bool) -> Result<u8, CliError> {
    if json {
        print_json(&json!({
            "ok": reply.ok,
            "entries_checked": reply.entries_checked,
            "first_broken_sequence": reply.first_broken_sequence,
            "problem": reply.problem,
            "head_sequence": reply.head.as_ref().map(|h| h.sequence),
            "head_hash": reply.head.as_ref().map(|h| h.hash.clone()),
        }));
    } else if reply.ok {
        println!("audit chain OK: {} entries verified", reply.entries_checked);
        if let Some(head) = &reply.head {
            println!("head {} {}", head.sequence, head.hash);
        }
    } else {
        println!(
            "audit chain BROKEN at entry {}: {} ({} entries before it verified)",
            reply.first_broken_sequence, reply.problem, reply.entries_checked
        );
    }
    Ok(if reply.ok { exit::OK } else { exit::FAILED })
}
