//! `safehire batch FILE`: checks every person in a staff file (CSV in UTF-8, UTF-8 with BOM or
//! GB18030/GBK, or .xlsx) in one streamed batch, and writes one result row per input row.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use super::staff_file::{Chunk, Line, StaffFile};
use super::{CliError, ConnectArgs, exit, format_timestamp, print_json};
use crate::check::{Outcome, Purpose};
use crate::i18n::Lang;
use crate::org::Role;
use crate::proto;
use crate::proto::check_batch_request::Item as Req;
use crate::proto::check_batch_response::Item as Resp;
use crate::proto::check_service_client::CheckServiceClient;

/// Rows per streamed message: hundreds, far below the 4 MiB message limit.
const CHUNK_ROWS: usize = 500;
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
    let batch_file = sidecar(&args.out);
    let batch_id = if args.resume {
        std::fs::read_to_string(&batch_file)
            .map_err(|e| CliError::io(&batch_file, format!("{e}; nothing to resume")))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    } else {
        // A random id: a file name can carry an identity number, and the batch id is audited
        // for ever. The file name stays here, in the local sidecar, for the user.
        // A random UUID can hold a long run of decimal digits: draw again until the server's
        // free-text guard accepts it.
        let id = std::iter::repeat_with(|| uuid::Uuid::new_v4().to_string())
            .find(|id| crate::text::reference(id, crate::text::MAX_REF_LEN).is_ok())
            .unwrap_or_default();
        std::fs::write(&batch_file, format!("{id}\n{}\n", args.file.display()))
            .map_err(|e| CliError::io(&batch_file, e))?;
        id
    };

    let file = StaffFile::open(&args.file, args.encoding.as_deref())?;
    let policy = match (&args.consent, purpose) {
        (Some(_), _) => proto::ConsentPolicy::Batch,
        (None, Purpose::PreHire) => proto::ConsentPolicy::PerRow,
        (None, _) if file.has("consent_ref") => proto::ConsentPolicy::PerRow,
        (None, _) => proto::ConsentPolicy::NotRequired,
    };
    let mut results = ResultsFile::create(&args.out, &file.header)?;
    let progress = super::progress_bar(file.approximate_rows, "checking");

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
    let (lines_tx, mut lines) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel();
    let sender = tokio::spawn(send_rows(
        file.chunks(CHUNK_ROWS),
        accepted.resume_after_row,
        tx,
        lines_tx,
        stopped,
    ));

    let mut broken = None;
    let mut summary = None;
    loop {
        match responses.message().await {
            Ok(Some(message)) => match message.item {
                Some(Resp::Results(batch)) => {
                    progress.inc(batch.results.len() as u64);
                    for result in batch.results {
                        results.answer(result);
                    }
                    results.write_ready(&mut lines)?;
                }
                Some(Resp::Summary(s)) => summary = Some(s),
                _ => {}
            },
            Ok(None) => break,
            Err(status) => {
                broken = Some(CliError::from(status));
                break;
            }
        }
    }
    let _ = stop.send(());
    let read_failure = sender
        .await
        .map_err(|_| CliError::new(exit::FAILED, "reading the staff file stopped"))?;
    while let Some(chunk) = lines.recv().await {
        results.queue(chunk);
        results.write_ready(&mut lines)?;
    }
    progress.finish_and_clear();
    let tally = results.finish()?;
    if let Some(error) = read_failure {
        return Err(error);
    }
    let lang = Lang::from_env();
    if json {
        print_json(&json!({
            "batch_id": batch_id,
            "rows": tally.rows,
            "no_record": tally.no_record,
            "record_found": tally.record_found,
            "needs_review": tally.needs_review,
            "errors": tally.errors,
            "unanswered": tally.unanswered,
            "replayed": summary.map(|s| s.replayed).unwrap_or(0),
            "out": args.out.display().to_string(),
        }));
    } else {
        let unanswered = if tally.unanswered > 0 {
            lang.f("cli.batch.unanswered", &[&tally.unanswered])
        } else {
            String::new()
        };
        println!(
            "{}",
            lang.f(
                "cli.batch.summary",
                &[
                    &tally.rows,
                    &tally.no_record,
                    &tally.record_found,
                    &tally.needs_review,
                    &tally.errors,
                    &unanswered,
                    &args.out.display(),
                ]
            )
        );
    }
    if let Some(error) = broken {
        eprintln!(
            "{}: {}",
            lang.t("cli.error"),
            lang.f("cli.batch.incomplete", &[&error.message])
        );
        return Ok(exit::BATCH_INCOMPLETE);
    }
    if tally.unanswered > 0 {
        return Ok(exit::BATCH_INCOMPLETE);
    }
    Ok(exit::for_answers(
        tally.record_found,
        tally.needs_review,
        tally.errors,
    ))
}

/// Sends the file's rows after `skip_up_to` (rows a resumed batch already answered are replayed
/// by the server), and hands every line, in file order, to the results file. After `stopped`
/// it only reads on, so that every line still gets its row in the results. Returns the read
/// failure that ended the file early, if one did.
async fn send_rows(
    mut chunks: mpsc::Receiver<Result<Chunk, CliError>>,
    skip_up_to: u64,
    requests: mpsc::Sender<proto::CheckBatchRequest>,
    lines: mpsc::UnboundedSender<Vec<Line>>,
    mut stopped: oneshot::Receiver<()>,
) -> Option<CliError> {
    let mut sending = true;
    while let Some(chunk) = chunks.recv().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => return Some(error),
        };
        let rows: Vec<proto::BatchRow> = chunk
            .rows
            .into_iter()
            .filter(|r| r.number > skip_up_to)
            .map(|r| proto::BatchRow {
                row: r.number,
                subject: Some(r.identity),
                consent_ref: r.consent_ref,
            })
            .collect();
        // The lines go first: the results for these rows can only arrive after the rows.
        let _ = lines.send(chunk.lines);
        if sending && !rows.is_empty() {
            let message = proto::CheckBatchRequest {
                item: Some(Req::Rows(proto::BatchRows { rows })),
            };
            tokio::select! {
                sent = requests.send(message) => sending = sent.is_ok(),
                _ = &mut stopped => sending = false,
            }
        }
    }
    None
}

#[derive(Default)]
struct Tally {
    rows: u64,
    no_record: u64,
    record_found: u64,
    needs_review: u64,
    errors: u64,
    unanswered: u64,
}

/// The results CSV, written in file order as answers arrive: only lines still waiting for
/// their answer are held in memory.
struct ResultsFile {
    path: PathBuf,
    csv: csv::Writer<std::io::BufWriter<std::fs::File>>,
    width: usize,
    waiting: VecDeque<Line>,
    answers: HashMap<u64, proto::BatchResult>,
    tally: Tally,
}

impl ResultsFile {
    fn create(path: &Path, header: &[String]) -> Result<Self, CliError> {
        let file = std::fs::File::create(path).map_err(|e| CliError::io(path, e))?;
        let mut writer = std::io::BufWriter::new(file);
        std::io::Write::write_all(&mut writer, "\u{feff}".as_bytes())
            .map_err(|e| CliError::io(path, e))?;
        let mut csv = csv::Writer::from_writer(writer);
        let mut full_header: Vec<&str> = header.iter().map(String::as_str).collect();
        full_header.extend_from_slice(OUTPUT_EXTRA);
        csv.write_record(&full_header)
            .map_err(|e| CliError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            csv,
            width: header.len(),
            waiting: VecDeque::new(),
            answers: HashMap::new(),
            tally: Tally::default(),
        })
    }

    fn queue(&mut self, lines: Vec<Line>) {
        self.waiting.extend(lines);
    }

    fn answer(&mut self, result: proto::BatchResult) {
        self.answers.insert(result.row, result);
    }

    /// Writes every line at the front that has its answer, taking lines the reader has
    /// handed over as needed.
    fn write_ready(
        &mut self,
        lines: &mut mpsc::UnboundedReceiver<Vec<Line>>,
    ) -> Result<(), CliError> {
        loop {
            if self.waiting.is_empty() {
                match lines.try_recv() {
                    Ok(more) => self.queue(more),
                    Err(_) => return Ok(()),
                }
                continue;
            }
            let Some(front) = self.waiting.front() else {
                return Ok(());
            };
            let answer = match &front.problem {
                Some(_) => None,
                None => match self.answers.remove(&front.number) {
                    Some(answer) => Some(answer),
                    None => return Ok(()),
                },
            };
            if let Some(line) = self.waiting.pop_front() {
                self.write(line, answer)?;
            }
        }
    }

    fn write(&mut self, line: Line, answer: Option<proto::BatchResult>) -> Result<(), CliError> {
        let tally = &mut self.tally;
        tally.rows += 1;
        let extra: [String; 4] = match (line.problem, answer.and_then(|a| a.result)) {
            (Some(problem), _) => {
                tally.errors += 1;
                [String::new(), String::new(), String::new(), problem]
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
                    check.check_id,
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
        let mut record = line.fields;
        record.resize(self.width, String::new());
        record.extend(extra);
        self.csv
            .write_record(&record)
            .map_err(|e| CliError::io(&self.path, e))
    }

    /// Writes the lines that never got an answer and closes the file.
    fn finish(mut self) -> Result<Tally, CliError> {
        while let Some(line) = self.waiting.pop_front() {
            let answer = self.answers.remove(&line.number);
            self.write(line, answer)?;
        }
        self.csv.flush().map_err(|e| CliError::io(&self.path, e))?;
        Ok(self.tally)
    }
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
