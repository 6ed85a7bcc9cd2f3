//! `safehire batch FILE`: checks every person in a staff file (CSV in UTF-8, UTF-8 with BOM or
//! GB18030/GBK, or .xlsx) in one streamed batch, and writes one result row per input row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{CliError, ConnectArgs, exit, format_timestamp, print_json};
use crate::check::{Outcome, Purpose};
use crate::identity::DocType;
use crate::org::Role;
use crate::proto;
use crate::proto::check_batch_request::Item as Req;
use crate::proto::check_batch_response::Item as Resp;
use crate::proto::check_service_client::CheckServiceClient;
use crate::tabular::{Encoding, Table};

/// Rows per streamed message: hundreds, far below the 4 MiB message limit.
const CHUNK_ROWS: usize = 500;
const REQUIRED: &[&str] = &["doc_type", "doc_number", "name", "staff_ref"];
const OPTIONAL: &[&str] = &["hire_date", "consent_ref"];
const OUTPUT_EXTRA: &[&str] = &["outcome", "check_id", "checked_at", "error"];

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Staff file: .csv (UTF-8, UTF-8 with BOM, GB18030/GBK) or .xlsx, with the header
    /// doc_type,doc_number,name,staff_ref and optionally hire_date,consent_ref.
    pub file: PathBuf,
    /// periodic (yearly re-check), pre-hire or re-verify.
    #[arg(long)]
    pub purpose: String,
    /// sexual or art62.
    #[arg(long, default_value = "art62")]
    pub scope: String,
    /// Results file (CSV, UTF-8 with BOM so that spreadsheet software opens it correctly).
    #[arg(long)]
    pub out: PathBuf,
    /// One consent reference covering every row (pre-hire); otherwise each row's consent_ref.
    #[arg(long)]
    pub consent: Option<String>,
    /// USCC of the employer a bureau checks for.
    #[arg(long, default_value = "")]
    pub on_behalf_of: String,
    /// Encoding of a CSV file (utf-8, gb18030, gbk); detected when not given.
    #[arg(long)]
    pub encoding: Option<String>,
    /// Continue the interrupted batch recorded next to --out, without checking rows twice.
    #[arg(long)]
    pub resume: bool,
}

pub async fn run(connect: &ConnectArgs, args: BatchArgs, json: bool) -> Result<u8, CliError> {
    let (purpose, scope) = super::purpose_and_scope(&args.purpose, &args.scope)?;
    let encoding =
        match &args.encoding {
            None => None,
            Some(text) => Some(Encoding::parse(text).ok_or_else(|| {
                CliError::usage(format!("--encoding {text}: utf-8, gb18030 or gbk"))
            })?),
        };
    let batch_file = sidecar(&args.out);
    let batch_id = if args.resume {
        std::fs::read_to_string(&batch_file)
            .map_err(|e| CliError::io(&batch_file, format!("{e}; nothing to resume")))?
            .trim()
            .to_string()
    } else {
        let id = format!("{}-{}", stem(&args.file), uuid::Uuid::now_v7().simple());
        std::fs::write(&batch_file, &id).map_err(|e| CliError::io(&batch_file, e))?;
        id
    };

    let table = Table::open(&args.file, encoding)
        .map_err(|e| CliError::new(exit::INVALID_INPUT, e.to_string()))?;
    let columns = table
        .columns(REQUIRED, OPTIONAL)
        .map_err(|e| CliError::new(exit::INVALID_INPUT, e.to_string()))?;
    let header = table.header.clone();
    let policy = match (&args.consent, purpose) {
        (Some(_), _) => proto::ConsentPolicy::Batch,
        (None, Purpose::PreHire) => proto::ConsentPolicy::PerRow,
        (None, _) if columns.has("consent_ref") => proto::ConsentPolicy::PerRow,
        (None, _) => proto::ConsentPolicy::NotRequired,
    };

    // Every input row is kept (to write it back with its result); local problems are answered here.
    let mut inputs: Vec<(u64, Vec<String>)> = Vec::new();
    let mut local: HashMap<u64, String> = HashMap::new();
    let mut rows: Vec<proto::BatchRow> = Vec::new();
    for row in table.rows() {
        let row = row.map_err(|e| CliError::new(exit::INVALID_INPUT, e.to_string()))?;
        let doc_type = DocType::from_slug(columns.get(&row, "doc_type"));
        let problem = row
            .problems
            .first()
            .map(|(column, reason)| format!("{column}: {reason}"))
            .or_else(|| doc_type.as_ref().err().map(|e| e.to_string()));
        match (problem, doc_type) {
            (None, Ok(doc_type)) => rows.push(proto::BatchRow {
                row: row.number,
                subject: Some(proto::Identity {
                    doc_type: i32::from(doc_type.code()),
                    doc_number: columns.get(&row, "doc_number").to_string(),
                    name: columns.get(&row, "name").to_string(),
                }),
                consent_ref: columns.get(&row, "consent_ref").to_string(),
            }),
            (problem, _) => {
                local.insert(row.number, problem.unwrap_or_default());
            }
        }
        inputs.push((row.number, row.fields));
    }

    let progress = ProgressBar::new(inputs.len() as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} checking [{bar:30}] {pos}/{len} rows {per_sec} ({eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let (tx, rx) = mpsc::channel(8);
    let first = proto::CheckBatchRequest {
        item: Some(Req::Header(proto::BatchHeader {
            batch_id: batch_id.clone(),
            purpose: purpose.code(),
            scope: scope.code(),
            consent_policy: policy as i32,
            consent_ref: args.consent.clone().unwrap_or_default(),
            on_behalf_of: args.on_behalf_of.clone(),
        })),
    };
    let mut client = CheckServiceClient::new(connect.connect(Role::Employer).await?);
    tx.send(first)
        .await
        .map_err(|_| CliError::new(exit::FAILED, "could not start the batch"))?;
    let mut responses = client
        .check_batch(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let accepted = match responses.message().await? {
        Some(proto::CheckBatchResponse {
            item: Some(Resp::Accepted(a)),
        }) => a,
        _ => {
            return Err(CliError::new(
                exit::FAILED,
                "the server did not accept the batch",
            ));
        }
    };
    let skip_up_to = accepted.resume_after_row;
    let sender = tokio::spawn(async move {
        for chunk in rows
            .into_iter()
            .filter(|r| r.row > skip_up_to)
            .collect::<Vec<_>>()
            .chunks(CHUNK_ROWS)
        {
            let message = proto::CheckBatchRequest {
                item: Some(Req::Rows(proto::BatchRows {
                    rows: chunk.to_vec(),
                })),
            };
            if tx.send(message).await.is_err() {
                return;
            }
        }
    });

    let mut answers: HashMap<u64, proto::BatchResult> = HashMap::new();
    let mut broken = None;
    let mut summary = None;
    loop {
        match responses.message().await {
            Ok(Some(message)) => match message.item {
                Some(Resp::Results(results)) => {
                    progress.inc(results.results.len() as u64);
                    for result in results.results {
                        answers.insert(result.row, result);
                    }
                }
                Some(Resp::Summary(s)) => summary = Some(s),
                _ => {}
            },
            Ok(None) => break,
            Err(status) => {
                broken = Some(status);
                break;
            }
        }
    }
    sender.abort();
    progress.finish_and_clear();

    let tally = write_results(&args.out, &header, &inputs, &answers, &local)?;
    if json {
        print_json(&json!({
            "batch_id": batch_id,
            "rows": inputs.len(),
            "no_record": tally.no_record,
            "record_found": tally.record_found,
            "needs_review": tally.needs_review,
            "errors": tally.errors,
            "unanswered": tally.unanswered,
            "replayed": summary.map(|s| s.replayed).unwrap_or(0),
            "out": args.out.display().to_string(),
        }));
    } else {
        println!(
            "{} rows: {} NO_RECORD, {} RECORD_FOUND, {} NEEDS_REVIEW, {} errors{}; results in {}",
            inputs.len(),
            tally.no_record,
            tally.record_found,
            tally.needs_review,
            tally.errors,
            if tally.unanswered > 0 {
                format!(", {} not answered", tally.unanswered)
            } else {
                String::new()
            },
            args.out.display()
        );
    }
    if let Some(status) = broken {
        eprintln!(
            "error: the batch did not complete: {}; run again with --resume",
            CliError::from(status).message
        );
        return Ok(exit::BATCH_INCOMPLETE);
    }
    if tally.unanswered > 0 {
        return Ok(exit::BATCH_INCOMPLETE);
    }
    Ok(if tally.errors > 0 {
        exit::ROW_ERRORS
    } else {
        exit::OK
    })
}

#[derive(Default)]
struct Tally {
    no_record: u64,
    record_found: u64,
    needs_review: u64,
    errors: u64,
    unanswered: u64,
}

fn write_results(
    out: &Path,
    header: &[String],
    inputs: &[(u64, Vec<String>)],
    answers: &HashMap<u64, proto::BatchResult>,
    local: &HashMap<u64, String>,
) -> Result<Tally, CliError> {
    let file = std::fs::File::create(out).map_err(|e| CliError::io(out, e))?;
    let mut writer = std::io::BufWriter::new(file);
    std::io::Write::write_all(&mut writer, "\u{feff}".as_bytes())
        .map_err(|e| CliError::io(out, e))?;
    let mut csv = csv::Writer::from_writer(writer);
    let mut full_header: Vec<&str> = header.iter().map(String::as_str).collect();
    full_header.extend_from_slice(OUTPUT_EXTRA);
    csv.write_record(&full_header)
        .map_err(|e| CliError::io(out, e))?;
    let mut tally = Tally::default();
    for (number, fields) in inputs {
        let mut record: Vec<String> = fields.clone();
        record.resize(header.len(), String::new());
        let extra: [String; 4] = match (
            local.get(number),
            answers.get(number).and_then(|a| a.result.as_ref()),
        ) {
            (Some(problem), _) => {
                tally.errors += 1;
                [String::new(), String::new(), String::new(), problem.clone()]
            }
            (None, Some(proto::batch_result::Result::Check(check))) => {
                let outcome = Outcome::from_code(check.outcome).unwrap_or(Outcome::NoRecord);
                match outcome {
                    Outcome::NoRecord => tally.no_record += 1,
                    Outcome::RecordFound => tally.record_found += 1,
                    Outcome::NeedsReview => tally.needs_review += 1,
                }
                [
                    outcome.label().to_string(),
                    check.check_id.clone(),
                    format_timestamp(check.checked_at.as_ref()),
                    String::new(),
                ]
            }
            (None, Some(proto::batch_result::Result::Error(e))) => {
                tally.errors += 1;
                [
                    String::new(),
                    String::new(),
                    String::new(),
                    format!("{}: {}", e.field, e.reason),
                ]
            }
            (None, None) => {
                tally.unanswered += 1;
                [
                    String::new(),
                    String::new(),
                    String::new(),
                    "not answered; run again with --resume".into(),
                ]
            }
        };
        record.extend(extra);
        csv.write_record(&record)
            .map_err(|e| CliError::io(out, e))?;
    }
    csv.flush().map_err(|e| CliError::io(out, e))?;
    Ok(tally)
}

/// Where the batch id of a results file is kept, so that `--resume` continues the same batch.
fn sidecar(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".batch-id");
    out.with_file_name(name)
}

fn stem(file: &Path) -> String {
    let stem: String = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(24)
        .collect();
    if stem.is_empty() {
        "batch".into()
    } else {
        stem
    }
}
