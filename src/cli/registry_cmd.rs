//! `safehire registry`: import a records file, revoke, seal or reinstate a record (registrar).

use std::path::PathBuf;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{CliError, ConnectArgs, exit, print_json};
use crate::i18n::Lang;
use crate::identity::DocType;
use crate::org::Role;
use crate::proto;
use crate::proto::registry_service_client::RegistryServiceClient;
use crate::registry::{Category, RecordKind};

/// Records per streamed message: large enough to amortise framing, far below 4 MiB.
const CHUNK_RECORDS: usize = 500;
/// Per-row errors printed in human output (all are counted; --json lists all the server sent).
const ERRORS_SHOWN: usize = 20;

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Import records from a CSV file with the header
    /// source_ref,doc_type,doc_number,name,category,kind,decided_on,sealed.
    Import { file: PathBuf },
    /// Mark a record revoked (it is kept but never hits).
    Revoke {
        source_ref: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Mark a record sealed (kept, never a hit for an employer).
    Seal {
        source_ref: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift a revocation: an unsealed record hits again and raises alerts for current staff.
    Reinstate {
        source_ref: String,
        /// Why, for the audit log (a decision reference; no identity numbers or names).
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(connect: &ConnectArgs, cmd: RegistryCommand, json: bool) -> Result<u8, CliError> {
    match cmd {
        RegistryCommand::Import { file } => import(connect, file, json).await,
        RegistryCommand::Revoke { source_ref, reason } => {
            let mut client = RegistryServiceClient::new(connect.connect(Role::Registrar).await?);
            let reply = client
                .revoke(proto::RecordRef { source_ref, reason })
                .await?
                .into_inner();
            print_change("revoked", "was already revoked", &reply, json);
            Ok(exit::OK)
        }
        RegistryCommand::Seal { source_ref, reason } => {
            let mut client = RegistryServiceClient::new(connect.connect(Role::Registrar).await?);
            let reply = client
                .seal(proto::RecordRef { source_ref, reason })
                .await?
                .into_inner();
            print_change("sealed", "was already sealed", &reply, json);
            Ok(exit::OK)
        }
        RegistryCommand::Reinstate { source_ref, reason } => {
            let mut client = RegistryServiceClient::new(connect.connect(Role::Registrar).await?);
            let reply = client
                .reinstate(proto::RecordRef { source_ref, reason })
                .await?
                .into_inner();
            print_change("reinstated", "was not revoked", &reply, json);
            Ok(exit::OK)
        }
    }
}

/// `done` when the record changed, `unchanged` (e.g. "was already sealed") when it did not.
fn print_change(done: &str, unchanged: &str, reply: &proto::RecordChange, json: bool) {
    if json {
        print_json(&json!({
            "source_ref": reply.source_ref,
            "changed": reply.changed,
            "registry_version": reply.registry_version,
        }));
    } else if reply.changed {
        println!(
            "{} {done}; registry version {}",
            reply.source_ref, reply.registry_version
        );
    } else {
        println!(
            "{} {unchanged}; registry version {}",
            reply.source_ref, reply.registry_version
        );
    }
}

/// A row the client itself could not turn into a record.
struct LocalError {
    row: u64,
    field: String,
    reason: String,
}

async fn import(connect: &ConnectArgs, file: PathBuf, json: bool) -> Result<u8, CliError> {
    let size = std::fs::metadata(&file)
        .map_err(|e| CliError::io(&file, e))?
        .len();
    let reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&file)
        .map_err(|e| CliError::io(&file, e))?;
    let mut client = RegistryServiceClient::new(connect.connect(Role::Registrar).await?);

    let progress = ProgressBar::new(size);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} importing [{bar:30}] {percent}% {msg} ({eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let (chunks, outgoing) = mpsc::channel::<proto::ImportChunk>(8);
    let reading_progress = progress.clone();
    let reading =
        tokio::task::spawn_blocking(move || read_records(reader, chunks, reading_progress));
    let reply = client.import(ReceiverStream::new(outgoing)).await;
    let local = reading
        .await
        .map_err(|e| CliError::new(exit::FAILED, format!("reading the file failed: {e}")))?
        .map_err(|e| CliError::io(&file, e))?;
    progress.finish_and_clear();
    let summary = reply?.into_inner();

    let rejected = summary.rejected + local.len() as u64;
    if json {
        let mut errors: Vec<serde_json::Value> = local
            .iter()
            .map(|e| json!({"row": e.row, "field": e.field, "reason": e.reason}))
            .collect();
        errors.extend(
            summary
                .errors
                .iter()
                .map(|e| json!({"row": e.row, "field": e.field, "reason": e.reason})),
        );
        print_json(&json!({
            "import_id": summary.import_id,
            "received": summary.received + local.len() as u64,
            "created": summary.created,
            "updated": summary.updated,
            "unchanged": summary.unchanged,
            "rejected": rejected,
            "errors": errors,
            "errors_truncated": summary.errors_truncated,
            "registry_version": summary.registry_version,
        }));
    } else {
        let lang = Lang::from_env();
        println!(
            "{}",
            lang.f(
                "cli.registry.imported",
                &[
                    &file.display(),
                    &summary.created,
                    &summary.updated,
                    &summary.unchanged,
                    &rejected,
                    &summary.registry_version,
                ]
            )
        );
        let all = local
            .iter()
            .map(|e| (e.row, e.field.as_str(), e.reason.as_str()))
            .chain(
                summary
                    .errors
                    .iter()
                    .map(|e| (e.row, e.field.as_str(), e.reason.as_str())),
            );
        for (row, field, reason) in all.take(ERRORS_SHOWN) {
            println!(
                "{}",
                lang.f("cli.roster.row_error", &[&row, &field, &reason])
            );
        }
        if rejected as usize > ERRORS_SHOWN {
            println!(
                "{}",
                lang.f("cli.registry.more", &[&(rejected as usize - ERRORS_SHOWN)])
            );
        }
    }
    Ok(if rejected > 0 {
        exit::ROW_ERRORS
    } else {
        exit::OK
    })
}

/// Reads the CSV into chunks for the stream; rows it cannot even express as a record (an
/// unknown category, say) are reported locally. Rows are numbered from 1, the first after the
/// header.
fn read_records(
    mut reader: csv::Reader<std::fs::File>,
    chunks: mpsc::Sender<proto::ImportChunk>,
    progress: ProgressBar,
) -> Result<Vec<LocalError>, csv::Error> {
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| crate::tabular::header_names(h, name))
    };
    let columns: Vec<Option<usize>> = crate::synth::RECORDS_HEADER
        .iter()
        .map(|h| column(h))
        .collect();
    let mut local = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK_RECORDS);
    let started = std::time::Instant::now();
    for (index, row) in reader.records().enumerate() {
        let row_number = index as u64 + 1;
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                local.push(LocalError {
                    row: row_number,
                    field: "row".into(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let get = |i: usize| {
            columns[i]
                .and_then(|c| row.get(c))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        match to_record(row_number, &get) {
            Ok(record) => chunk.push(record),
            Err((field, reason)) => local.push(LocalError {
                row: row_number,
                field: field.into(),
                reason,
            }),
        }
        if chunk.len() == CHUNK_RECORDS {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_RECORDS));
            if chunks
                .blocking_send(proto::ImportChunk { records: full })
                .is_err()
            {
                return Ok(local);
            }
            progress.set_position(row.position().map(|p| p.byte()).unwrap_or(0));
            let rate = row_number as f64 / started.elapsed().as_secs_f64().max(0.001);
            progress.set_message(format!("{row_number} rows, {rate:.0} rows/s"));
        }
    }
    if !chunk.is_empty() {
        let _ = chunks.blocking_send(proto::ImportChunk { records: chunk });
    }
    Ok(local)
}

fn to_record(
    row: u64,
    get: &dyn Fn(usize) -> String,
) -> Result<proto::ImportRecord, (&'static str, String)> {
    let doc_type = DocType::from_slug(&get(1)).map_err(|e| ("doc_type", e.reason))?;
    let category = Category::parse(&get(4)).ok_or_else(|| {
        (
            "category",
            format!("unknown {:?}; one of {}", get(4), Category::slugs()),
        )
    })?;
    let kind = RecordKind::parse(&get(5)).ok_or_else(|| {
        (
            "kind",
            format!("unknown {:?}; one of {}", get(5), RecordKind::slugs()),
        )
    })?;
    let sealed = match get(7).to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" | "n" => false,
        "true" | "1" | "yes" | "y" => true,
        other => return Err(("sealed", format!("{other:?} is not true or false"))),
    };
    Ok(proto::ImportRecord {
        row,
        source_ref: get(0),
        subject: Some(proto::Identity {
            doc_type: i32::from(doc_type.code()),
            doc_number: get(2),
            name: get(3),
        }),
        category: category.code(),
        kind: kind.code(),
        decided_on: get(6),
        sealed,
    })
}
