//! `safehire roster`: declare an employer's staff (replace, hire, leave), see who is due for
//! the yearly re-check (show), and re-check every current member (recheck).

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use clap::{Args, Subcommand};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::staff_file::{Chunk, StaffFile};
use super::{CliError, ConnectArgs, exit, format_timestamp, print_json};
use crate::check::{Outcome, Scope};
use crate::i18n::Lang;
use crate::org::Role;
use crate::proto;
use crate::proto::recheck_result::Item as Recheck;
use crate::proto::roster_service_client::RosterServiceClient;
use crate::proto::roster_upload::Item as Upload;
use crate::roster::RosterChange;

/// Members per streamed message: well under the server's per-message limit.
const CHUNK_MEMBERS: usize = 1_000;
const RESULTS_HEADER: &[&str] = &[
    "staff_ref",
    "outcome",
    "check_id",
    "checked_at",
    "review_id",
];

#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Upload the whole current staff (hire_date required); members missing from the file are
    /// recorded as departed. A file with a rejected row changes nothing unless --partial.
    Replace(UploadArgs),
    /// Add new staff (hire_date required); a departed member re-hired is current again.
    Hire(UploadArgs),
    /// Record staff who left (the file needs a departure_date column; `gen leavers` makes one).
    Leave(UploadArgs),
    /// Counts, the last re-check, and the members due for the yearly re-check.
    Show {
        /// USCC of the employer a bureau asks about.
        #[arg(long, default_value = "")]
        on_behalf_of: String,
        /// Most due members listed (server default 1,000); all are counted.
        #[arg(long)]
        max_due: Option<u32>,
    },
    /// Check every current member (purpose periodic), each with its own audit entry.
    Recheck {
        /// USCC of the employer a bureau re-checks for.
        #[arg(long, default_value = "")]
        on_behalf_of: String,
        /// sexual or art62.
        #[arg(long, default_value = "art62")]
        scope: String,
        /// Results file for every member (CSV, UTF-8 with BOM).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Staff file: .csv (UTF-8, UTF-8 with BOM, GB18030/GBK) or .xlsx, with the header
    /// doc_type,doc_number,name,staff_ref,hire_date (and departure_date to record leavers).
    pub file: PathBuf,
    /// USCC of the employer a bureau declares staff for.
    #[arg(long, default_value = "")]
    pub on_behalf_of: String,
    /// Encoding of a CSV file (utf-8, gb18030, gbk); detected when not given.
    #[arg(long)]
    pub encoding: Option<String>,
    /// Apply the valid rows even when some are rejected (exit 10). Without it a file with any
    /// rejected row changes nothing (exit 5).
    #[arg(long)]
    pub partial: bool,
}

pub async fn run(connect: &ConnectArgs, cmd: RosterCommand, json: bool) -> Result<u8, CliError> {
    match cmd {
        RosterCommand::Replace(args) => upload(connect, args, RosterChange::Replace, json).await,
        RosterCommand::Hire(args) => upload(connect, args, RosterChange::Hires, json).await,
        RosterCommand::Leave(args) => upload(connect, args, RosterChange::Departures, json).await,
        RosterCommand::Show {
            on_behalf_of,
            max_due,
        } => show(connect, on_behalf_of, max_due.unwrap_or(0), json).await,
        RosterCommand::Recheck {
            on_behalf_of,
            scope,
            out,
        } => recheck(connect, on_behalf_of, &scope, out.as_deref(), json).await,
    }
}

/// A row that was not applied: refused by the server, or not even sent.
struct Rejected {
    row: u64,
    field: String,
    reason: String,
}

async fn upload(
    connect: &ConnectArgs,
    args: UploadArgs,
    change: RosterChange,
    json: bool,
) -> Result<u8, CliError> {
    let file = StaffFile::open(&args.file, args.encoding.as_deref())?;
    let (needed, command) = match change {
        RosterChange::Departures => ("departure_date", "leave"),
        RosterChange::Replace => ("hire_date", "replace"),
        RosterChange::Hires => ("hire_date", "hire"),
    };
    if !file.has(needed) {
        return Err(CliError::new(
            exit::INVALID_INPUT,
            format!(
                "{}: roster {command} needs a {needed} column; nothing was sent",
                args.file.display()
            ),
        ));
    }
    let mut client = RosterServiceClient::new(connect.connect(Role::Employer).await?);
    let progress = super::progress_bar(file.approximate_rows, "uploading");
    let (requests, stream) = mpsc::channel(4);
    let header = proto::RosterUpload {
        item: Some(Upload::Header(proto::RosterHeader {
            on_behalf_of: args.on_behalf_of,
            partial: args.partial,
        })),
    };
    requests
        .send(Some(header))
        .await
        .map_err(|_| CliError::new(exit::FAILED, "could not start the upload"))?;
    let (failed, read_failure) = oneshot::channel();
    let reading = tokio::spawn(send_members(
        file.chunks(CHUNK_MEMBERS),
        requests,
        failed,
        progress.clone(),
    ));
    let stream = AbortableUpload {
        messages: stream,
        aborted: false,
    };
    let call = async {
        match change {
            RosterChange::Replace => client.replace_roster(stream).await,
            RosterChange::Hires => client.record_hires(stream).await,
            RosterChange::Departures => client.record_departures(stream).await,
        }
    };
    let reply = tokio::select! {
        reply = call => reply,
        Ok(error) = read_failure => {
            progress.finish_and_clear();
            return Err(error);
        }
    };
    progress.finish_and_clear();
    let summary = reply?.into_inner();
    let local = reading
        .await
        .map_err(|e| CliError::new(exit::FAILED, format!("reading the staff file failed: {e}")))?;
    print_summary(&summary, local, json);
    Ok(if !summary.applied {
        exit::INVALID_INPUT
    } else if summary.rejected > 0 {
        exit::ROW_ERRORS
    } else {
        exit::OK
    })
}

/// Sends the file's valid rows as members and keeps the lines with a local problem. When the
/// file cannot be read to its end, the upload is aborted (never ended), and the error goes to
/// `failed`: an ended stream would apply a truncated roster.
async fn send_members(
    mut chunks: mpsc::Receiver<Result<Chunk, CliError>>,
    requests: mpsc::Sender<Option<proto::RosterUpload>>,
    failed: oneshot::Sender<CliError>,
    progress: indicatif::ProgressBar,
) -> Vec<Rejected> {
    let mut local = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                let _ = requests.send(None).await;
                let _ = failed.send(error);
                return local;
            }
        };
        progress.inc(chunk.lines.len() as u64);
        // A row with a local problem is still sent, without an identity, so that the server
        // counts it as rejected and decides, in one place, whether the upload applies at all.
        let mut members: Vec<proto::RosterMember> = Vec::new();
        for line in chunk.lines {
            let Some(problem) = line.problem else {
                continue;
            };
            let (field, reason) = problem.split_once(": ").unwrap_or(("row", &problem));
            members.push(proto::RosterMember {
                row: line.number,
                ..Default::default()
            });
            local.push(Rejected {
                row: line.number,
                field: field.to_string(),
                reason: reason.to_string(),
            });
        }
        members.extend(chunk.rows.into_iter().map(|r| proto::RosterMember {
            row: r.number,
            subject: Some(r.identity),
            staff_ref: r.staff_ref,
            hire_date: r.hire_date,
            departure_date: r.departure_date,
        }));
        if members.is_empty() {
            continue;
        }
        let message = proto::RosterUpload {
            item: Some(Upload::Members(proto::RosterMembers { members })),
        };
        if requests.send(Some(message)).await.is_err() {
            break;
        }
    }
    local
}

/// The request stream of an upload; `None` from the reader aborts it: the stream then stays
/// open without another message until the connection closes, so the server discards the upload.
struct AbortableUpload {
    messages: mpsc::Receiver<Option<proto::RosterUpload>>,
    aborted: bool,
}

impl tokio_stream::Stream for AbortableUpload {
    type Item = proto::RosterUpload;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.aborted {
            return Poll::Pending;
        }
        match self.messages.poll_recv(cx) {
            Poll::Ready(Some(None)) => {
                self.aborted = true;
                Poll::Pending
            }
            Poll::Ready(Some(Some(message))) => Poll::Ready(Some(message)),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Prints the summary with the server's errors and the local ones, in row order; returns how
/// many rows were rejected in all.
/// Prints what the server did; a row rejected locally is shown with its local reason.
fn print_summary(summary: &proto::RosterSummary, local: Vec<Rejected>, json: bool) {
    let local_rows: std::collections::HashSet<u64> = local.iter().map(|e| e.row).collect();
    let sent_back = summary
        .errors
        .iter()
        .filter(|e| !local_rows.contains(&e.row))
        .map(|e| Rejected {
            row: e.row,
            field: e.field.clone(),
            reason: e.reason.clone(),
        });
    let mut errors = local;
    errors.extend(sent_back);
    errors.sort_by_key(|e| e.row);
    let (received, rejected) = (summary.received, summary.rejected);
    if json {
        let list: Vec<serde_json::Value> = errors
            .iter()
            .map(|e| json!({"row": e.row, "field": e.field, "reason": e.reason}))
            .collect();
        print_json(&json!({
            "employer": summary.employer,
            "received": received,
            "added": summary.added,
            "updated": summary.updated,
            "unchanged": summary.unchanged,
            "departed": summary.departed,
            "rejected": rejected,
            "current_members": summary.current_members,
            "applied": summary.applied,
            "errors": list,
            "errors_truncated": summary.errors_truncated,
        }));
        return;
    }
    let lang = Lang::from_env();
    if summary.applied {
        println!(
            "{}",
            lang.f(
                "cli.roster.applied",
                &[
                    &summary.employer,
                    &received,
                    &summary.added,
                    &summary.updated,
                    &summary.unchanged,
                    &summary.departed,
                    &rejected,
                    &summary.current_members,
                ]
            )
        );
    } else {
        println!(
            "{}",
            lang.f(
                "cli.roster.not_applied",
                &[
                    &summary.employer,
                    &rejected,
                    &received,
                    &summary.current_members
                ]
            )
        );
    }
    for e in &errors {
        println!(
            "{}",
            lang.f("cli.roster.row_error", &[&e.row, &e.field, &e.reason])
        );
    }
    if summary.errors_truncated {
        println!("{}", lang.t("cli.roster.errors_truncated"));
    }
}

async fn show(
    connect: &ConnectArgs,
    on_behalf_of: String,
    max_due: u32,
    json: bool,
) -> Result<u8, CliError> {
    let mut client = RosterServiceClient::new(connect.connect(Role::Employer).await?);
    let status = client
        .get_roster(proto::RosterQuery {
            on_behalf_of,
            max_due,
        })
        .await?
        .into_inner();
    if json {
        let due: Vec<serde_json::Value> = status
            .due
            .iter()
            .map(|d| {
                json!({
                    "staff_ref": d.staff_ref,
                    "hire_date": d.hire_date,
                    "last_checked_at": d.last_checked_at.as_ref().map(|t| format_timestamp(Some(t))),
                })
            })
            .collect();
        print_json(&json!({
            "employer": status.employer,
            "declared": status.declared,
            "current_members": status.current_members,
            "departed_members": status.departed_members,
            "last_replaced_at": status.last_replaced_at.as_ref().map(|t| format_timestamp(Some(t))),
            "last_recheck_at": status.last_recheck_at.as_ref().map(|t| format_timestamp(Some(t))),
            "recheck_interval_days": status.recheck_interval_days,
            "due_count": status.due_count,
            "due": due,
            "due_truncated": status.due_truncated,
        }));
        return Ok(exit::OK);
    }
    let lang = Lang::from_env();
    let line = |key: &str, value: &dyn std::fmt::Display| {
        println!("{}{value}", crate::i18n::pad(lang.t(key), 19));
    };
    line("cli.roster.employer", &status.employer);
    line(
        "cli.roster.declared",
        &lang.t(if status.declared {
            "cli.roster.yes"
        } else {
            "cli.roster.no"
        }),
    );
    line("cli.roster.current", &status.current_members);
    line("cli.roster.departed", &status.departed_members);
    line(
        "cli.roster.last_replaced",
        &or_never(&status.last_replaced_at, lang),
    );
    line(
        "cli.roster.last_recheck",
        &or_never(&status.last_recheck_at, lang),
    );
    line(
        "cli.roster.interval",
        &lang.f("cli.roster.days", &[&status.recheck_interval_days]),
    );
    println!("{}", lang.f("cli.roster.due", &[&status.due_count]));
    for d in &status.due {
        println!(
            "{}",
            lang.f(
                "cli.roster.due_line",
                &[
                    &d.staff_ref,
                    &d.hire_date,
                    &or_never(&d.last_checked_at, lang)
                ]
            )
        );
    }
    if status.due_truncated {
        println!("{}", lang.t("cli.roster.truncated"));
    }
    Ok(exit::OK)
}

fn or_never(at: &Option<prost_types::Timestamp>, lang: Lang) -> String {
    match at {
        Some(at) => format_timestamp(Some(at)),
        None => lang.t("cli.roster.never").into(),
    }
}

async fn recheck(
    connect: &ConnectArgs,
    on_behalf_of: String,
    scope: &str,
    out: Option<&Path>,
    json: bool,
) -> Result<u8, CliError> {
    let scope = Scope::parse(scope)
        .ok_or_else(|| CliError::usage(format!("--scope {scope}: one of {}", Scope::slugs())))?;
    let mut results = out.map(ResultsFile::create).transpose()?;
    let mut client = RosterServiceClient::new(connect.connect(Role::Employer).await?);
    // The member count only sizes the progress bar; the re-check itself counts what it checks.
    let members = client
        .get_roster(proto::RosterQuery {
            on_behalf_of: on_behalf_of.clone(),
            max_due: 1,
        })
        .await?
        .into_inner()
        .current_members;
    let progress = super::progress_bar(members, "re-checking");
    let mut stream = client
        .run_recheck(proto::RecheckRequest {
            on_behalf_of,
            scope: scope.code(),
        })
        .await?
        .into_inner();
    let mut tally = proto::RecheckSummary::default();
    let mut hits = Vec::new();
    let (summary, broken) = loop {
        match stream.message().await {
            Ok(Some(proto::RecheckResult {
                item: Some(Recheck::Member(member)),
            })) => {
                progress.inc(1);
                let outcome = Outcome::from_code(member.outcome);
                tally.members += 1;
                match outcome {
                    Some(Outcome::NoRecord) => tally.no_record += 1,
                    Some(Outcome::RecordFound) => tally.record_found += 1,
                    Some(Outcome::NeedsReview) => tally.needs_review += 1,
                    None => {}
                }
                if let Some(file) = results.as_mut() {
                    file.write(&member)?;
                }
                if outcome != Some(Outcome::NoRecord) {
                    if json {
                        hits.push(member);
                    } else {
                        progress.suspend(|| println!("{}", hit_line(&member)));
                    }
                }
            }
            Ok(Some(proto::RecheckResult {
                item: Some(Recheck::Summary(summary)),
            })) => break (Some(summary), None),
            Ok(Some(_)) => {}
            Ok(None) => break (None, None),
            Err(status) => break (None, Some(CliError::from(status))),
        }
    };
    progress.finish_and_clear();
    if let Some(file) = results {
        file.finish()?;
    }
    let complete = summary.is_some();
    let counts = summary.unwrap_or(tally);
    let lang = Lang::from_env();
    if json {
        let list: Vec<serde_json::Value> = hits.iter().map(hit_json).collect();
        print_json(&json!({
            "complete": complete,
            "members": counts.members,
            "no_record": counts.no_record,
            "record_found": counts.record_found,
            "needs_review": counts.needs_review,
            "results": list,
            "out": out.map(|p| p.display().to_string()),
        }));
    } else if complete {
        println!(
            "{}",
            lang.f(
                "cli.roster.rechecked",
                &[
                    &counts.members,
                    &counts.no_record,
                    &counts.record_found,
                    &counts.needs_review
                ]
            )
        );
    }
    if !complete {
        let why = broken.map_or("the stream ended without its summary".into(), |e| e.message);
        eprintln!(
            "{}: {}",
            lang.t("cli.error"),
            lang.f("cli.roster.recheck_incomplete", &[&counts.members, &why])
        );
        return Ok(exit::BATCH_INCOMPLETE);
    }
    Ok(exit::for_answers(
        counts.record_found,
        counts.needs_review,
        0,
    ))
}

fn outcome_label(code: i32) -> &'static str {
    Outcome::from_code(code).map_or("?", Outcome::label)
}

fn hit_line(member: &proto::RecheckMember) -> String {
    let review = if member.review_id != 0 {
        format!(" review {}", member.review_id)
    } else {
        String::new()
    };
    format!(
        "{} {} check {}{review}",
        member.staff_ref,
        outcome_label(member.outcome),
        member.check_id
    )
}

fn hit_json(member: &proto::RecheckMember) -> serde_json::Value {
    json!({
        "staff_ref": member.staff_ref,
        "outcome": outcome_label(member.outcome),
        "check_id": member.check_id,
        "checked_at": format_timestamp(member.checked_at.as_ref()),
        "registry_version": member.registry_version,
        "review_id": member.review_id,
    })
}

/// Every re-checked member as a CSV row, with a BOM so that spreadsheet software reads UTF-8.
struct ResultsFile {
    path: PathBuf,
    csv: csv::Writer<std::io::BufWriter<std::fs::File>>,
}

impl ResultsFile {
    fn create(path: &Path) -> Result<Self, CliError> {
        let file = std::fs::File::create(path).map_err(|e| CliError::io(path, e))?;
        let mut writer = std::io::BufWriter::new(file);
        std::io::Write::write_all(&mut writer, "\u{feff}".as_bytes())
            .map_err(|e| CliError::io(path, e))?;
        let mut csv = csv::Writer::from_writer(writer);
        csv.write_record(RESULTS_HEADER)
            .map_err(|e| CliError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            csv,
        })
    }

    fn write(&mut self, member: &proto::RecheckMember) -> Result<(), CliError> {
        let review = if member.review_id != 0 {
            member.review_id.to_string()
        } else {
            String::new()
        };
        self.csv
            .write_record([
                member.staff_ref.as_str(),
                outcome_label(member.outcome),
                member.check_id.as_str(),
                format_timestamp(member.checked_at.as_ref()).as_str(),
                review.as_str(),
            ])
            .map_err(|e| CliError::io(&self.path, e))
    }

    fn finish(mut self) -> Result<(), CliError> {
        self.csv.flush().map_err(|e| CliError::io(&self.path, e))
    }
}
