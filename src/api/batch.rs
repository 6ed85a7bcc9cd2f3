//! CheckService.CheckBatch: a stream of rows, each a check with its own durable audit entry,
//! answered per row. Chunks are validated, hashed and looked up while earlier chunks commit;
//! the bounded response channel is the flow control: a client that stops reading stops the
//! server reading its rows.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::{Status, Streaming};

use super::check_service::{employer_for, validate_consent};
use super::{ApiError, AppState, convert, deadline};
use crate::audit::NewEntry;
use crate::check::{ConsentPolicy, NOT_STAFF, Outcome, Purpose, Scope, decide, staff_only};
use crate::org::Caller;
use crate::proto;
use crate::proto::check_batch_request::Item as RequestItem;
use crate::proto::check_batch_response::Item as ResponseItem;
use crate::store::{BatchState, CheckRecord, Recorded, RowAnswer};
use crate::tls::PeerInfo;

/// Chunks committing at once: enough to overlap hashing and lookups with the writer.
const COMMITS_IN_FLIGHT: usize = 4;
/// Replayed answers per message.
const REPLAY_PAGE: usize = 2_000;
/// Longest client batch id.
const MAX_BATCH_ID_LEN: usize = 64;

pub type Responses = mpsc::Sender<Result<proto::CheckBatchResponse, Status>>;

/// Long calls under way per organisation (batches, roster uploads), so that one employer cannot
/// take every writer slot or fill the staging table.
#[derive(Default)]
pub struct BatchSlots {
    running: Arc<Mutex<HashMap<String, usize>>>,
}

/// Frees an organisation's batch slot when the batch ends, however it ends.
pub struct SlotGuard {
    running: Arc<Mutex<HashMap<String, usize>>>,
    org: String,
}

impl BatchSlots {
    pub fn acquire(&self, org: &str, limit: usize, what: &str) -> Result<SlotGuard, ApiError> {
        let mut running = self
            .running
            .lock()
            .map_err(|_| ApiError::ResourceExhausted(format!("{what} slots unavailable")))?;
        let count = running.entry(org.to_string()).or_insert(0);
        if *count >= limit {
            return Err(ApiError::ResourceExhausted(format!(
                "{limit} {what} already running for this organisation; wait for one to finish"
            )));
        }
        *count += 1;
        Ok(SlotGuard {
            running: Arc::clone(&self.running),
            org: org.to_string(),
        })
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock()
            && let Some(count) = running.get_mut(&self.org)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.org);
            }
        }
    }
}

/// A batch whose header was accepted.
pub struct OpenBatch {
    template: NewEntry,
    client_batch_id: String,
    purpose: Purpose,
    scope: Scope,
    policy: ConsentPolicy,
    batch_consent: String,
    state: BatchState,
    _slot: SlotGuard,
}

/// Reads and checks the header, takes a batch slot, and opens (or resumes) the batch.
pub async fn open(
    state: &AppState,
    caller: &Caller,
    entry: &mut NewEntry,
    stream: &mut Streaming<proto::CheckBatchRequest>,
) -> Result<OpenBatch, ApiError> {
    let first = match deadline::next(stream, deadline::idle_limit(state)).await? {
        Some(Ok(message)) => message,
        Some(Err(status)) => {
            return Err(ApiError::Cancelled(format!(
                "the stream broke before its header: {}",
                status.message()
            )));
        }
        None => {
            return Err(ApiError::invalid(
                "header",
                "the stream ended before its header",
            ));
        }
    };
    let Some(RequestItem::Header(header)) = first.item else {
        return Err(ApiError::invalid(
            "header",
            "the first message must be the batch header",
        ));
    };
    let client_batch_id = convert::reference("batch_id", &header.batch_id, MAX_BATCH_ID_LEN)?;
    entry.detail = format!("batch={client_batch_id}");
    entry.employer = employer_for(state, caller, &header.on_behalf_of)?;
    let purpose = convert::purpose(header.purpose)?;
    entry.purpose = purpose.label().into();
    let scope = convert::scope(header.scope)?;
    entry.scope = scope.label().into();
    let policy = convert::required(
        "consent_policy",
        header.consent_policy,
        ConsentPolicy::from_code,
        ConsentPolicy::slugs,
    )?;
    match policy {
        ConsentPolicy::NotRequired if purpose == Purpose::PreHire => {
            return Err(ApiError::invalid(
                "consent_policy",
                "PRE_HIRE checks need consent: use PER_ROW or BATCH",
            ));
        }
        ConsentPolicy::Batch => {
            validate_consent(&header.consent_ref, true)?;
        }
        _ => {}
    }
    let slot = state.batch_slots.acquire(
        &caller.org.uscc,
        state.limits.max_batches_in_flight_per_org,
        "batches are",
    )?;
    let batch_state = state
        .store
        .open_batch(
            entry.employer.clone(),
            client_batch_id.clone(),
            caller.org.uscc.clone(),
            purpose.code(),
            scope.code(),
            state.now_micros(),
            entry.clone(),
        )
        .await?;
    if batch_state.purpose != purpose.code() || batch_state.scope != scope.code() {
        return Err(ApiError::FailedPrecondition(format!(
            "batch {client_batch_id} was started with another purpose or scope; resume it with the same header or choose a new batch id"
        )));
    }
    Ok(OpenBatch {
        template: NewEntry {
            action: entry.action.clone(),
            caller: entry.caller.clone(),
            cert_fingerprint: entry.cert_fingerprint.clone(),
            role: entry.role.clone(),
            employer: entry.employer.clone(),
            purpose: entry.purpose.clone(),
            scope: entry.scope.clone(),
            ..NewEntry::default()
        },
        client_batch_id,
        purpose,
        scope,
        policy,
        batch_consent: header.consent_ref.trim().to_string(),
        state: batch_state,
        _slot: slot,
    })
}

#[derive(Default)]
struct Counts {
    rows: u64,
    no_record: u64,
    record_found: u64,
    needs_review: u64,
    errors: u64,
    replayed: u64,
}

impl Counts {
    fn count(&mut self, result: &proto::BatchResult) {
        self.rows += 1;
        match &result.result {
            Some(proto::batch_result::Result::Check(check)) => match check.outcome() {
                proto::Outcome::RecordFound => self.record_found += 1,
                proto::Outcome::NeedsReview => self.needs_review += 1,
                _ => self.no_record += 1,
            },
            _ => self.errors += 1,
        }
    }
}

type Commit = JoinHandle<Result<Vec<proto::BatchResult>, ApiError>>;

/// Runs an open batch to its end, sending results to `out`.
pub async fn run(
    state: Arc<AppState>,
    batch: OpenBatch,
    mut stream: Streaming<proto::CheckBatchRequest>,
    out: Responses,
    peer: Option<PeerInfo>,
) {
    let mut counts = Counts::default();
    let ended = drive(
        &state,
        &batch,
        &mut stream,
        &out,
        &mut counts,
        peer.as_ref(),
    )
    .await;
    let (outcome, failure) = match ended {
        Ok(()) => ("COMPLETED", None),
        Err(e) => (e.audit_outcome(), Some(e)),
    };
    let closing = NewEntry {
        at_micros: state.now_micros(),
        outcome: outcome.into(),
        detail: format!(
            "batch={} rows={} no_record={} record_found={} needs_review={} errors={} replayed={}",
            batch.client_batch_id,
            counts.rows,
            counts.no_record,
            counts.record_found,
            counts.needs_review,
            counts.errors,
            counts.replayed
        ),
        ..batch.template.clone()
    };
    let logged = state.store.append_audit(closing).await;
    // The batch is over once its closing entry is durable: its slot is free for the next batch
    // even while the last message waits (up to the idle limit) for a client that may not read.
    drop(batch);
    if let Err(e) = logged {
        let _ = out
            .send_timeout(Err(ApiError::Store(e).into()), deadline::idle_limit(&state))
            .await;
        return;
    }
    let last = match failure {
        None => Ok(proto::CheckBatchResponse {
            item: Some(ResponseItem::Summary(proto::BatchSummary {
                rows: counts.rows,
                no_record: counts.no_record,
                record_found: counts.record_found,
                needs_review: counts.needs_review,
                errors: counts.errors,
                replayed: counts.replayed,
            })),
        }),
        Some(e) => Err(e.into()),
    };
    let _ = out.send_timeout(last, deadline::idle_limit(&state)).await;
}

async fn drive(
    state: &Arc<AppState>,
    batch: &OpenBatch,
    stream: &mut Streaming<proto::CheckBatchRequest>,
    out: &Responses,
    counts: &mut Counts,
    peer: Option<&PeerInfo>,
) -> Result<(), ApiError> {
    send(
        state,
        out,
        ResponseItem::Accepted(proto::BatchAccepted {
            batch_id: batch.client_batch_id.clone(),
            resumed: batch.state.resumed,
            rows_answered: batch.state.rows_answered,
            resume_after_row: batch.state.last_row,
        }),
    )
    .await?;
    if batch.state.rows_answered > 0 {
        replay_all(state, batch, out, counts).await?;
    }
    let mut commits: VecDeque<Commit> = VecDeque::new();
    let mut last_row = batch.state.last_row;
    let mut rows_seen = batch.state.rows_answered;
    let mut over_limit = None;
    let mut input_open = true;
    let idle = deadline::idle_limit(state);
    // Deliver each chunk's results as soon as it is durable, and read more rows while fewer
    // than COMMITS_IN_FLIGHT chunks are committing.
    while input_open || !commits.is_empty() {
        tokio::select! {
            biased;
            finished = async { commits.front_mut().expect("guarded by the condition").await },
                if !commits.is_empty() =>
            {
                commits.pop_front();
                let results = finished
                    .map_err(|_| ApiError::Cancelled("a batch commit was interrupted".into()))??;
                for result in &results {
                    counts.count(result);
                }
                send(state, out, ResponseItem::Results(proto::BatchResults { results })).await?;
            }
            message = deadline::next(stream, idle), if input_open && commits.len() < COMMITS_IN_FLIGHT => {
                let Some(message) = message? else {
                    input_open = false;
                    continue;
                };
                let message = message.map_err(|status| {
                    ApiError::Cancelled(format!("the batch stream broke: {}", status.message()))
                })?;
                // A batch runs for minutes: its caller's standing is asked again per message.
                state.identify(peer)?;
                let mut rows = match message.item {
                    Some(RequestItem::Rows(rows)) => rows.rows,
                    Some(RequestItem::Header(_)) => {
                        return Err(ApiError::invalid(
                            "header",
                            "only the first message may be a header",
                        ));
                    }
                    None => continue,
                };
                if rows.len() > state.limits.max_batch_chunk_rows {
                    return Err(ApiError::invalid(
                        "rows",
                        format!(
                            "a message holds at most {} rows, got {}",
                            state.limits.max_batch_chunk_rows,
                            rows.len()
                        ),
                    ));
                }
                let room = state.limits.max_batch_rows.saturating_sub(rows_seen) as usize;
                if rows.len() > room {
                    rows.truncate(room);
                    over_limit = Some(state.limits.max_batch_rows);
                    input_open = false;
                }
                rows_seen += rows.len() as u64;
                let prepared = prepare(state, batch, rows, &mut last_row).await?;
                commits.push_back(tokio::spawn(commit(Arc::clone(state), batch.state.id, prepared)));
            }
        }
    }
    if let Some(limit) = over_limit {
        return Err(ApiError::ResourceExhausted(format!(
            "a batch holds at most {limit} rows; rows after the first {limit} were not checked"
        )));
    }
    Ok(())
}

async fn send(state: &AppState, out: &Responses, item: ResponseItem) -> Result<(), ApiError> {
    deadline::send(
        out,
        Ok(proto::CheckBatchResponse { item: Some(item) }),
        deadline::idle_limit(state),
        "results",
    )
    .await
}

/// Answers every row recorded for a resumed batch, before any new row.
async fn replay_all(
    state: &AppState,
    batch: &OpenBatch,
    out: &Responses,
    counts: &mut Counts,
) -> Result<(), ApiError> {
    let mut from = 0u64;
    loop {
        let page = state
            .store
            .recorded_rows(batch.state.id, from, u64::MAX, REPLAY_PAGE)
            .await?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        from = last + 1;
        let results: Vec<proto::BatchResult> = page
            .into_iter()
            .map(|(row, recorded)| replayed(row, recorded))
            .collect();
        for result in &results {
            counts.count(result);
        }
        counts.replayed += results.len() as u64;
        send(
            state,
            out,
            ResponseItem::Results(proto::BatchResults { results }),
        )
        .await?;
    }
}

fn replayed(row: u64, recorded: Recorded) -> proto::BatchResult {
    let result = match recorded {
        Recorded::Checked {
            seq,
            outcome,
            check_id,
            at_micros,
            registry_version,
            scope,
            employer,
        } => proto::batch_result::Result::Check(proto::CheckResponse {
            outcome: Outcome::parse(&outcome)
                .map(|o| convert::outcome_to_proto(o) as i32)
                .unwrap_or_default(),
            check_id,
            checked_at: Some(convert::timestamp_micros(at_micros)),
            registry_version,
            scope: Scope::parse(&scope).map(Scope::code).unwrap_or_default(),
            employer,
            review_id: 0,
            log_index: seq.saturating_sub(1),
        }),
        Recorded::Refused { field, reason } => {
            proto::batch_result::Result::Error(proto::RowError { row, field, reason })
        }
    };
    proto::BatchResult {
        row,
        result: Some(result),
    }
}

/// A chunk ready to commit: answers in row order, with what to reply for each.
struct Prepared {
    answers: Vec<(u64, RowAnswer)>,
    /// Rows answered again from the record, sent without a new audit entry.
    replies: Vec<proto::BatchResult>,
}

/// Validates and hashes a chunk, looks its subjects up, and decides each outcome.
async fn prepare(
    state: &AppState,
    batch: &OpenBatch,
    rows: Vec<proto::BatchRow>,
    last_row: &mut u64,
) -> Result<Prepared, ApiError> {
    let now = state.now();
    let at_micros = crate::clock::to_micros(now);
    let today = crate::clock::calendar_date(now);
    let mut answers = Vec::with_capacity(rows.len());
    let mut replies = Vec::new();
    let mut valid = Vec::with_capacity(rows.len());
    let resumed_up_to = batch.state.last_row;
    let mut seen_before = Vec::new();
    for row in rows {
        if row.row <= resumed_up_to && batch.state.resumed {
            seen_before.push(row.row);
            continue;
        }
        let number = row.row;
        let checked = if number == 0 || number <= *last_row {
            Err(ApiError::invalid(
                "row",
                format!(
                    "row numbers must be positive and increase (after {})",
                    *last_row
                ),
            ))
        } else {
            *last_row = number;
            validate_row(state, batch, &row, today)
        };
        match checked {
            Ok((subject, name_tag, consent)) => valid.push((number, subject, name_tag, consent)),
            Err(ApiError::InvalidArgument { field, reason }) if number > 0 => {
                answers.push((number, RowAnswer::Refused { field, reason }));
            }
            Err(ApiError::InvalidArgument { field, reason }) => {
                replies.push(error_result(number, field, reason));
            }
            Err(other) => return Err(other),
        }
    }
    if !seen_before.is_empty() {
        replies.extend(replay_rows(state, batch, &seen_before).await?);
    }
    if batch.purpose == Purpose::PreHire {
        let employer = &batch.template.employer;
        let granted = state
            .pre_hire_quota
            .take(state, employer, valid.len() as u64)
            .await?;
        let granted = usize::try_from(granted).unwrap_or(usize::MAX);
        if granted < valid.len() {
            let reason = super::quota::spent(state, employer);
            for (number, ..) in valid.drain(granted..) {
                answers.push((
                    number,
                    RowAnswer::Refused {
                        field: "row".into(),
                        reason: reason.clone(),
                    },
                ));
            }
        }
    }
    let subjects: Vec<_> = valid.iter().map(|v| v.1).collect();
    let members = if staff_only(batch.purpose) {
        state
            .store
            .are_members(
                batch.template.employer.clone(),
                state.today_text(),
                subjects.clone(),
            )
            .await?
    } else {
        vec![true; subjects.len()]
    };
    let (registry_version, found) = state.store.lookup_many(subjects).await?;
    for (((number, subject, name_tag, consent), candidates), member) in
        valid.into_iter().zip(found).zip(members)
    {
        let mut detail = format!("batch={} row={number}", batch.client_batch_id);
        if !member {
            // Refused, and audited with its subject: the prosecutor counts it.
            answers.push((
                number,
                RowAnswer::Denied {
                    entry: Box::new(NewEntry {
                        at_micros,
                        subject: Some(subject),
                        outcome: "FAILED_PRECONDITION".into(),
                        detail,
                        ..batch.template.clone()
                    }),
                    field: "subject".into(),
                    reason: NOT_STAFF.into(),
                },
            ));
            continue;
        }
        let decision = decide(batch.scope, name_tag, &candidates);
        if !consent.is_empty() {
            detail.push_str(" consent_ref=");
            detail.push_str(&consent);
        }
        answers.push((
            number,
            RowAnswer::Checked(Box::new(CheckRecord {
                entry: NewEntry {
                    at_micros,
                    subject: Some(subject),
                    outcome: decision.outcome.label().into(),
                    check_id: uuid::Uuid::now_v7().to_string(),
                    registry_version,
                    detail,
                    ..batch.template.clone()
                },
                name_mismatch: decision.name_mismatch,
            })),
        ));
    }
    answers.sort_by_key(|(row, _)| *row);
    Ok(Prepared { answers, replies })
}

type ValidRow = (crate::keys::SubjectKey, crate::keys::NameTag, String);

fn validate_row(
    state: &AppState,
    batch: &OpenBatch,
    row: &proto::BatchRow,
    today: time::Date,
) -> Result<ValidRow, ApiError> {
    let size = row.encoded_len();
    if size > state.limits.max_batch_row_bytes {
        return Err(ApiError::invalid(
            "row",
            format!(
                "too large: {size} bytes, at most {}",
                state.limits.max_batch_row_bytes
            ),
        ));
    }
    let (document, name) = convert::identity("subject", row.subject.as_ref(), today)?;
    let consent = match batch.policy {
        ConsentPolicy::PerRow => {
            validate_consent(&row.consent_ref, batch.purpose == Purpose::PreHire)?
        }
        ConsentPolicy::Batch => batch.batch_consent.clone(),
        ConsentPolicy::NotRequired => String::new(),
    };
    let subject = state.keys.subject_key(&document);
    Ok((subject, state.keys.name_tag(&subject, &name), consent))
}

/// Rows of a resumed batch that the client sent again: answered from the record when they
/// are in it (a row never answered before gets an error asking for a new row number).
async fn replay_rows(
    state: &AppState,
    batch: &OpenBatch,
    rows: &[u64],
) -> Result<Vec<proto::BatchResult>, ApiError> {
    let (Some(first), Some(last)) = (rows.iter().min(), rows.iter().max()) else {
        return Ok(Vec::new());
    };
    let recorded: HashMap<u64, Recorded> = state
        .store
        .recorded_rows(
            batch.state.id,
            *first,
            *last,
            rows.len().max(1) * 2 + REPLAY_PAGE,
        )
        .await?
        .into_iter()
        .collect();
    let mut recorded = recorded;
    Ok(rows
        .iter()
        .map(|row| match recorded.remove(row) {
            Some(answer) => replayed(*row, answer),
            None => error_result(
                *row,
                "row".into(),
                format!(
                    "row {row} is not after the rows this batch already answered; number new rows after {}",
                    batch.state.last_row
                ),
            ),
        })
        .collect())
}

fn error_result(row: u64, field: String, reason: String) -> proto::BatchResult {
    proto::BatchResult {
        row,
        result: Some(proto::batch_result::Result::Error(proto::RowError {
            row,
            field,
            reason,
        })),
    }
}

/// Commits a chunk's checks and answers durably, then builds the replies in row order.
async fn commit(
    state: Arc<AppState>,
    batch_id: i64,
    prepared: Prepared,
) -> Result<Vec<proto::BatchResult>, ApiError> {
    let Prepared {
        answers,
        mut replies,
    } = prepared;
    let mut results: Vec<proto::BatchResult> = answers
        .iter()
        .map(|(row, answer)| match answer {
            RowAnswer::Checked(check) => {
                let entry = &check.entry;
                proto::BatchResult {
                    row: *row,
                    result: Some(proto::batch_result::Result::Check(proto::CheckResponse {
                        outcome: Outcome::parse(&entry.outcome)
                            .map(|o| convert::outcome_to_proto(o) as i32)
                            .unwrap_or_default(),
                        check_id: entry.check_id.clone(),
                        checked_at: Some(convert::timestamp_micros(entry.at_micros)),
                        registry_version: entry.registry_version,
                        scope: Scope::parse(&entry.scope)
                            .map(Scope::code)
                            .unwrap_or_default(),
                        employer: entry.employer.clone(),
                        review_id: 0,
                        log_index: 0,
                    })),
                }
            }
            RowAnswer::Refused { field, reason } | RowAnswer::Denied { field, reason, .. } => {
                error_result(*row, field.clone(), reason.clone())
            }
        })
        .collect();
    if !answers.is_empty() {
        let checked = answers
            .iter()
            .filter(|(_, answer)| matches!(answer, RowAnswer::Checked(_)))
            .count() as u64;
        let seqs = state.store.record_batch_rows(batch_id, answers).await?;
        state
            .metrics
            .checked(crate::metrics::CheckKind::Batch, checked);
        for (result, seq) in results.iter_mut().zip(seqs) {
            if let (Some(seq), Some(proto::batch_result::Result::Check(check))) =
                (seq, result.result.as_mut())
            {
                check.log_index = seq - 1;
            }
        }
    }
    results.append(&mut replies);
    results.sort_by_key(|r| r.row);
    Ok(results)
}
