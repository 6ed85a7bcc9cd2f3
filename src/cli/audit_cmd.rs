//! `safehire audit`: the head of the chain and its verification, through the API or directly
//! on a database file (for a prosecutor holding a copy), and the trail itself: entries by
//! organisation, time, action or outcome, and who checked a given person.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use tonic::codec::Streaming;

use super::moment::{self, Edge};
use super::{CliError, ConnectArgs, exit, format_timestamp, print_json};
use crate::i18n::Lang;
use crate::identity::DocType;
use crate::org::Role;
use crate::proto;
use crate::proto::audit_service_client::AuditServiceClient;
use crate::proto::oversight_service_client::OversightServiceClient;
use crate::store;

/// Entries the server returns when no --limit is given (its default).
const SERVER_LIMIT: u64 = 10_000;
/// Hex characters of a subject hash shown in text: enough to tell entries apart by eye.
const SUBJECT_SHOWN: usize = 12;

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
        /// With --db: a signed checkpoint file; the file's entries up to its size must hash to
        /// its root, which finds deleted, edited, reordered or truncated entries even when the
        /// chain was re-hashed.
        #[arg(long, requires = "db")]
        checkpoint: Option<PathBuf>,
        /// The log's verifier key, to check the checkpoint's signature.
        #[arg(long, value_name = "VKEY", requires = "checkpoint", value_parser = super::vkey_or_file)]
        log_key: Option<String>,
    },
    /// The RFC 6962 consistency proof between two tree sizes (base64 hashes, one a line).
    Consistency {
        #[arg(long)]
        old: u64,
        /// Default: the newest checkpoint's size.
        #[arg(long, default_value_t = 0)]
        new: u64,
    },
    /// Follow the log as a witness: verify the newest checkpoint against the one kept in
    /// --state, keep it, cosign it and hand the cosignature back. Exit 8 when the log was
    /// rewritten or truncated (prosecutor).
    Witness {
        /// The witness's folder: its key, the log's key and the last checkpoint it accepted.
        #[arg(long)]
        state: PathBuf,
        /// The log's verifier key (first run; kept in --state afterwards).
        #[arg(long, value_name = "VKEY", value_parser = super::vkey_or_file)]
        log_key: Option<String>,
        /// The witness's key name.
        #[arg(long, default_value = "witness.localhost/safehire")]
        name: String,
    },
    /// Print the log's verifier key (C2SP vkey).
    LogKey,
    /// Print the newest signed checkpoint, with its cosignatures.
    Checkpoint {
        /// A kept checkpoint of this size instead of the newest.
        #[arg(long, default_value_t = 0)]
        size: u64,
    },
    /// Audit entries, oldest first, one per line; --json gives one JSON object per line
    /// (prosecutor).
    Log {
        /// Entries where this USCC is the caller or the employer.
        #[arg(long, value_name = "USCC", default_value = "")]
        org: String,
        /// From this moment (a date: its start, Beijing time; or an RFC 3339 time).
        #[arg(long, value_name = "DATE|DATETIME")]
        from: Option<String>,
        /// Up to this moment (a date: its end, Beijing time; or an RFC 3339 time).
        #[arg(long, value_name = "DATE|DATETIME")]
        to: Option<String>,
        /// Only this action, e.g. CheckService.Check.
        #[arg(long, default_value = "")]
        action: String,
        /// Only this outcome, e.g. RECORD_FOUND or PERMISSION_DENIED.
        #[arg(long, default_value = "")]
        outcome: String,
        /// Most entries returned (default, and 0: 10,000).
        #[arg(long)]
        limit: Option<u64>,
    },
    /// The checks of one person: the server hashes the identity and lists the entries about
    /// that subject. The identity is never printed, and the question itself is audited
    /// (prosecutor).
    WhoChecked {
        /// Document type: cn-id, passport, hk-macao, taiwan, foreign-pr.
        #[arg(long, default_value = "cn-id")]
        doc_type: String,
        #[arg(long)]
        doc_number: String,
        /// Name as on the document.
        #[arg(long)]
        name: String,
        /// From this moment (a date: its start, Beijing time; or an RFC 3339 time).
        #[arg(long, value_name = "DATE|DATETIME")]
        from: Option<String>,
        /// Up to this moment (a date: its end, Beijing time; or an RFC 3339 time).
        #[arg(long, value_name = "DATE|DATETIME")]
        to: Option<String>,
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
            checkpoint: Some(checkpoint),
            log_key,
            ..
        } => verify_against_checkpoint(&db, &checkpoint, log_key.as_deref(), json),
        AuditCommand::Verify {
            db: Some(db),
            from,
            to,
            ..
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
                    tree_problem: store::check_tree_file(&db)
                        .map_err(|e| CliError::io(&db, e))?
                        .unwrap_or_default(),
                    unexplained: store::unexplained_in_file(&db)
                        .map_err(|e| CliError::io(&db, e))?,
                },
                json,
            )
        }
        AuditCommand::Verify {
            db: None, from, to, ..
        } => {
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
        AuditCommand::Consistency { old, new } => {
            let mut client = AuditServiceClient::new(connect.connect(Role::Prosecutor).await?);
            let reply = client
                .consistency_proof(proto::ConsistencyProofRequest {
                    old_size: old,
                    new_size: new,
                })
                .await?
                .into_inner();
            let hashes: Vec<String> = reply.hashes.iter().map(|h| b64(h)).collect();
            if json {
                print_json(&json!({
                    "old_size": reply.old_size,
                    "new_size": reply.new_size,
                    "hashes": hashes,
                }));
            } else {
                for hash in hashes {
                    println!("{hash}");
                }
            }
            Ok(exit::OK)
        }
        AuditCommand::Witness {
            state,
            log_key,
            name,
        } => {
            let args = super::witness::WitnessArgs {
                state,
                log_key,
                name,
            };
            super::witness::run(connect, args, json).await
        }
        AuditCommand::LogKey => {
            let reply = fetch_checkpoint(connect, 0).await?;
            if json {
                print_json(&json!({"verifier_key": reply.verifier_key}));
            } else {
                println!("{}", reply.verifier_key);
            }
            Ok(exit::OK)
        }
        AuditCommand::Checkpoint { size } => {
            let reply = fetch_checkpoint(connect, size).await?;
            if json {
                print_json(&json!({"size": reply.size, "checkpoint": reply.checkpoint}));
            } else {
                print!("{}", reply.checkpoint);
            }
            Ok(exit::OK)
        }
        AuditCommand::Log {
            org,
            from,
            to,
            action,
            outcome,
            limit,
        } => {
            let query = proto::AuditQuery {
                organisation: org,
                from: moment::optional("--from", from.as_deref(), Edge::Start)?,
                to: moment::optional("--to", to.as_deref(), Edge::End)?,
                action,
                outcome,
                limit: limit.unwrap_or(0),
            };
            let mut client = OversightServiceClient::new(connect.connect(Role::Prosecutor).await?);
            let entries = client.list_audit_entries(query).await?.into_inner();
            let most = limit.filter(|&l| l > 0).unwrap_or(SERVER_LIMIT);
            print_trail(entries, most, json).await
        }
        AuditCommand::WhoChecked {
            doc_type,
            doc_number,
            name,
            from,
            to,
        } => {
            let doc_type = DocType::from_slug(&doc_type)
                .map_err(|e| CliError::usage(format!("--doc-type: {}", e.reason)))?;
            let request = proto::WhoCheckedRequest {
                subject: Some(proto::Identity {
                    doc_type: i32::from(doc_type.code()),
                    doc_number,
                    name,
                }),
                from: moment::optional("--from", from.as_deref(), Edge::Start)?,
                to: moment::optional("--to", to.as_deref(), Edge::End)?,
            };
            let mut client = OversightServiceClient::new(connect.connect(Role::Prosecutor).await?);
            let entries = client.who_checked(request).await?.into_inner();
            print_trail(entries, u64::MAX, json).await
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn fetch_checkpoint(
    connect: &ConnectArgs,
    size: u64,
) -> Result<proto::CheckpointResponse, CliError> {
    let mut client = AuditServiceClient::new(connect.connect(Role::Prosecutor).await?);
    Ok(client
        .checkpoint(proto::CheckpointRequest { size })
        .await?
        .into_inner())
}

/// `audit verify --db FILE --checkpoint FILE`: the file's first entries, as many as the
/// checkpoint covers, must form an intact chain whose Merkle root is the checkpoint's.
fn verify_against_checkpoint(
    db: &std::path::Path,
    file: &std::path::Path,
    log_key: Option<&str>,
    json: bool,
) -> Result<u8, CliError> {
    use crate::audit::note::{Checkpoint, Note, SignedCheckpoint, Verifier};
    let text = std::fs::read_to_string(file).map_err(|e| CliError::io(file, e))?;
    let bad = |e: crate::audit::note::NoteError| {
        CliError::new(exit::FAILED, format!("{}: {e}", file.display()))
    };
    let (checkpoint, signature) = match log_key {
        Some(key) => {
            let key =
                Verifier::parse(key).map_err(|e| CliError::usage(format!("--log-key: {e}")))?;
            (
                SignedCheckpoint::open(&text, &key).map_err(bad)?.checkpoint,
                "verified",
            )
        }
        None => {
            let note = Note::parse(&text).map_err(bad)?;
            (
                Checkpoint::parse_body(&note.text).map_err(bad)?,
                "not checked (no --log-key)",
            )
        }
    };
    let problem = if checkpoint.size == 0 {
        None
    } else {
        let (verification, head) =
            store::verify_file(db, 1, checkpoint.size).map_err(|e| CliError::io(db, e))?;
        if let Some((seq, why)) = &verification.first_broken {
            Some(format!("the chain breaks at entry {seq}: {why}"))
        } else if verification.entries_checked < checkpoint.size {
            Some(format!(
                "TRUNCATED: the file holds {} entries (head {}), the checkpoint covers {}",
                verification.entries_checked, head.seq, checkpoint.size
            ))
        } else if verification.root != Some(checkpoint.root) {
            Some(format!(
                "REWRITTEN: entries 1..{} do not hash to the checkpoint's root (an entry was \
                 deleted, edited or reordered, and the chain re-hashed)",
                checkpoint.size
            ))
        } else {
            None
        }
    };
    if json {
        print_json(&json!({
            "ok": problem.is_none(),
            "checkpoint_size": checkpoint.size,
            "signature": signature,
            "problem": problem,
        }));
    } else {
        match &problem {
            None => println!(
                "audit log OK against the checkpoint: entries 1..{} match its root (signature {signature})",
                checkpoint.size
            ),
            Some(problem) => println!("audit log does NOT match the checkpoint: {problem}"),
        }
    }
    Ok(if problem.is_none() {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// Prints entries as they arrive, so that a long trail starts showing at once. `limit` is the
/// most the server sends: reaching it means there may be more.
async fn print_trail(
    mut entries: Streaming<proto::AuditRecord>,
    limit: u64,
    json: bool,
) -> Result<u8, CliError> {
    let mut count = 0u64;
    while let Some(record) = entries.message().await? {
        count += 1;
        if json {
            super::print_json_line(&record_json(&record));
        } else {
            println!("{}", record_line(&record));
        }
    }
    if !json {
        println!("{count} {}", if count == 1 { "entry" } else { "entries" });
        if count >= limit {
            println!("(the limit: narrow the query or raise --limit to see more)");
        }
    }
    Ok(exit::OK)
}

/// One entry on one line, blank fields as "-" so that columns can be split on spaces.
fn record_line(r: &proto::AuditRecord) -> String {
    let or_dash = |text: &str| {
        if text.is_empty() {
            "-".to_string()
        } else {
            text.to_string()
        }
    };
    let subject = match r.subject_hash.get(..SUBJECT_SHOWN) {
        Some(short) => format!("subject:{short}"),
        None => "-".into(),
    };
    format!(
        "{}  {}  {}  {}  {}  {}  {}  {}  {}  {}",
        r.seq,
        format_timestamp(r.at.as_ref()),
        or_dash(&r.caller),
        or_dash(&r.role),
        or_dash(&r.action),
        or_dash(&r.employer),
        or_dash(&r.outcome),
        or_dash(&r.check_id),
        subject,
        or_dash(&r.detail)
    )
}

fn record_json(r: &proto::AuditRecord) -> serde_json::Value {
    json!({
        "seq": r.seq,
        "at": format_timestamp(r.at.as_ref()),
        "caller": r.caller,
        "role": r.role,
        "action": r.action,
        "employer": r.employer,
        "subject_hash": r.subject_hash,
        "purpose": r.purpose,
        "scope": r.scope,
        "outcome": r.outcome,
        "check_id": r.check_id,
        "registry_version": r.registry_version,
        "detail": r.detail,
        "hash": r.hash,
    })
}

fn print_head(head: &proto::AuditHead, json: bool) {
    if json {
        print_json(&json!({
            "sequence": head.sequence,
            "hash": head.hash,
            "at": format_timestamp(head.at.as_ref()),
        }));
    } else {
        let lang = Lang::from_env();
        let line = |key: &str, value: &dyn std::fmt::Display| {
            println!("{}{value}", crate::i18n::pad(lang.t(key), 10));
        };
        line("cli.audit.sequence", &head.sequence);
        line("cli.audit.hash", &head.hash);
        line("cli.audit.at", &format_timestamp(head.at.as_ref()));
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
            "tree_problem": reply.tree_problem,
            "unexplained": reply.unexplained,
        }));
    } else {
        let lang = Lang::from_env();
        if reply.ok {
            println!("{}", lang.f("cli.audit.ok", &[&reply.entries_checked]));
            if !reply.tree_problem.is_empty() {
                println!(
                    "{}",
                    lang.f("cli.audit.tree_problem", &[&reply.tree_problem])
                );
            }
            for problem in &reply.unexplained {
                println!("{}", lang.f("cli.audit.unexplained", &[problem]));
            }
            if let Some(head) = &reply.head
                && reply.tree_problem.is_empty()
                && reply.unexplained.is_empty()
            {
                println!(
                    "{}",
                    lang.f("cli.audit.head", &[&head.sequence, &head.hash])
                );
            }
        } else {
            println!(
                "{}",
                lang.f(
                    "cli.audit.broken",
                    &[
                        &reply.first_broken_sequence,
                        &reply.problem,
                        &reply.entries_checked
                    ]
                )
            );
        }
    }
    Ok(
        if reply.ok && reply.tree_problem.is_empty() && reply.unexplained.is_empty() {
            exit::OK
        } else {
            exit::FAILED
        },
    )
}
