//! RosterService: employers (or their bureau) declare their staff, re-check them all, and see
//! who is due. Uploads are staged as they stream and applied in one transaction at the end, so
//! a broken upload changes nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::check_service::employer_for;
use super::{ApiError, AppState, Rpc, convert, deadline};
use crate::audit::NewEntry;
use crate::check::{Outcome, Purpose, Scope, decide};
use crate::keys::SubjectKey;
use crate::org::Caller;
use crate::proto;
use crate::proto::roster_service_server::RosterService;
use crate::roster::{RosterChange, date_text, member_dates, recheck_due};
use crate::store::{CheckRecord, Member, StagedMember};

/// Rows handed to the writer at a time while an upload streams in.
const STAGE_BATCH: usize = 2_000;

/// What an upload asks for: the kind of change, and whether valid rows apply when others are
/// rejected.
#[derive(Clone, Copy)]
struct Intent {
    change: RosterChange,
    partial: bool,
}

/// Members checked per transaction in a re-check.
const RECHECK_PAGE: usize = 2_000;
/// Due members listed by default, and at most.
const DUE_DEFAULT: usize = 1_000;
const DUE_MAX: usize = 100_000;

pub struct RosterApi {
    state: Arc<AppState>,
}

type RecheckStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<proto::RecheckResult, Status>> + Send>,
>;

impl RosterApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    async fn upload(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        mut stream: Streaming<proto::RosterUpload>,
        change: RosterChange,
        peer: Option<crate::tls::PeerInfo>,
    ) -> Result<proto::RosterSummary, ApiError> {
        let state = &self.state;
        let idle = deadline::idle_limit(state);
        let header = match deadline::next(&mut stream, idle).await? {
            Some(Ok(proto::RosterUpload {
                item: Some(proto::roster_upload::Item::Header(header)),
            })) => header,
            Some(Err(status)) => {
                return Err(ApiError::Cancelled(format!(
                    "the upload broke before its header: {}",
                    status.message()
                )));
            }
            _ => {
                return Err(ApiError::invalid(
                    "header",
                    "the first message must be the roster header",
                ));
            }
        };
        let employer = employer_for(state, caller, &header.on_behalf_of)?;
        entry.employer = employer.clone();
        let _slot = state
            .upload_slots
            .acquire(&employer, 1, "roster upload is")?;
        let upload = uuid::Uuid::now_v7().to_string();
        entry.detail = format!("upload={upload} change={}", change.label());
        let result = self
            .stage_and_apply(
                entry,
                &mut stream,
                Intent {
                    change,
                    partial: header.partial,
                },
                employer,
                &upload,
                peer.as_ref(),
            )
            .await;
        if result.is_err() {
            // However the upload ended, nothing of it stays staged; what a failed discard
            // leaves is swept at the next start.
            let _ = state.store.discard_roster_upload(upload).await;
        }
        result
    }

    /// Receives the members of `upload`, stages the valid ones and applies them at once.
    async fn stage_and_apply(
        &self,
        entry: &mut NewEntry,
        stream: &mut Streaming<proto::RosterUpload>,
        intent: Intent,
        employer: String,
        upload: &str,
        peer: Option<&crate::tls::PeerInfo>,
    ) -> Result<proto::RosterSummary, ApiError> {
        let Intent { change, partial } = intent;
        let state = &self.state;
        let idle = deadline::idle_limit(state);
        let mut summary = proto::RosterSummary {
            employer: employer.clone(),
            ..Default::default()
        };
        let mut seen = Seen::default();
        let mut pending: Vec<(u64, StagedMember)> = Vec::with_capacity(STAGE_BATCH);
        let received = loop {
            let members = match deadline::next(stream, idle).await {
                Err(stalled) => break Err(stalled),
                Ok(None) => break Ok(()),
                Ok(Some(Err(status))) => {
                    break Err(ApiError::Cancelled(format!(
                        "the roster upload broke ({}); the roster is unchanged",
                        status.message()
                    )));
                }
                Ok(Some(Ok(proto::RosterUpload {
                    item: Some(proto::roster_upload::Item::Members(members)),
                }))) => {
                    // The caller's standing is asked again on every message.
                    state.identify(peer)?;
                    members.members
                }
                Ok(Some(Ok(proto::RosterUpload {
                    item: Some(proto::roster_upload::Item::Header(_)),
                }))) => {
                    return Err(ApiError::invalid(
                        "header",
                        "only the first message may be a header",
                    ));
                }
                Ok(Some(Ok(_))) => continue,
            };
            if members.len() > state.limits.max_batch_chunk_rows {
                return Err(ApiError::invalid(
                    "members",
                    format!(
                        "a message holds at most {} members, got {}",
                        state.limits.max_batch_chunk_rows,
                        members.len()
                    ),
                ));
            }
            if summary.received + members.len() as u64 > state.limits.max_roster_rows {
                return Err(ApiError::ResourceExhausted(format!(
                    "a roster upload holds at most {} members (limits.max_roster_rows); the roster is unchanged",
                    state.limits.max_roster_rows
                )));
            }
            let today = crate::clock::calendar_date(state.now());
            for member in &members {
                summary.received += 1;
                match self.validate(member, change, today, &mut seen) {
                    Ok(staged) => pending.push((member.row, staged)),
                    Err(ApiError::InvalidArgument { field, reason }) => {
                        reject(state, &mut summary, member.row, field, reason);
                    }
                    Err(other) => return Err(other),
                }
            }
            if pending.len() >= STAGE_BATCH {
                state
                    .store
                    .stage_roster(upload.to_string(), std::mem::take(&mut pending))
                    .await?;
            }
        };
        received?;
        if !pending.is_empty() {
            state
                .store
                .stage_roster(upload.to_string(), pending)
                .await?;
        }
        let closing = entry.clone();
        let (received, rejected) = (summary.received, summary.rejected);
        let max_members = state
            .rules
            .max_members(state.store.headcount(employer.clone()).await?);
        let unvetted = if change == RosterChange::Departures {
            0
        } else {
            state
                .store
                .unvetted_additions(upload.to_string(), employer.clone())
                .await?
        };
        let granted = state
            .pre_hire_quota
            .take(state, &employer, unvetted)
            .await?;
        if granted < unvetted {
            state.pre_hire_quota.give_back(&employer, granted).await?;
            return Err(ApiError::ResourceExhausted(format!(
                "{unvetted} new members were never checked PRE_HIRE by this employer and count against its daily quota: {}",
                super::quota::spent(state, &employer)
            )));
        }
        let how = crate::store::Application {
            change,
            today: state.today_text(),
            at_micros: state.now_micros(),
            partial,
            rejected_before: rejected,
            max_members,
        };
        let applied = state
            .store
            .apply_roster(upload.to_string(), employer.clone(), how, move |c| NewEntry {
                    outcome: if c.applied { "APPLIED" } else { "NOT_APPLIED" }.into(),
                    detail: format!(
                        "{} received={received} added={} updated={} unchanged={} departed={} rejected={} current={}",
                        closing.detail,
                        c.added,
                        c.updated,
                        c.unchanged,
                        c.departed,
                        rejected + c.rejected.len() as u64,
                        c.current_members
                    ),
                    ..closing
            })
            .await;
        let counts = match applied {
            // Nothing applied (a rejected row without a partial apply): the quota is not spent.
            Ok(counts) if !counts.applied => {
                state.pre_hire_quota.give_back(&employer, granted).await?;
                counts
            }
            Ok(counts) => counts,
            Err(e) => {
                state.pre_hire_quota.give_back(&employer, granted).await?;
                return Err(e.into());
            }
        };
        summary.applied = counts.applied;
        summary.added = counts.added;
        summary.updated = counts.updated;
        summary.unchanged = counts.unchanged;
        summary.departed = counts.departed;
        summary.current_members = counts.current_members;
        for (row, field, reason) in counts.rejected {
            reject(state, &mut summary, row, field, reason);
        }
        Ok(summary)
    }

    /// Runs an upload on its own task: when the client goes away, the server drops the call,
    /// but the upload still sees its stream break, discards what it staged and audits that.
    async fn upload_to_end(
        &self,
        request: Request<Streaming<proto::RosterUpload>>,
        rpc: &'static Rpc,
        change: RosterChange,
    ) -> Result<Response<proto::RosterSummary>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, rpc).await?;
        let api = RosterApi::new(Arc::clone(&self.state));
        let peer = request.extensions().get::<crate::tls::PeerInfo>().cloned();
        let stream = request.into_inner();
        tokio::spawn(async move {
            let result = api.upload(&caller, &mut entry, stream, change, peer).await;
            api.state.finish(entry, result).await
        })
        .await
        .map_err(|_| Status::internal("the roster upload was interrupted"))?
    }

    fn validate(
        &self,
        member: &proto::RosterMember,
        change: RosterChange,
        today: time::Date,
        seen: &mut Seen,
    ) -> Result<StagedMember, ApiError> {
        if !seen.rows.insert(member.row) {
            return Err(ApiError::invalid(
                "row",
                format!("row {} appears more than once in the upload", member.row),
            ));
        }
        let (document, name) = convert::identity("subject", member.subject.as_ref(), today)?;
        let staff_ref = convert::staff_ref(&member.staff_ref)?;
        let (hire, departure) =
            member_dates(change, &member.hire_date, &member.departure_date, today)
                .map_err(|(field, reason)| ApiError::invalid(field, reason))?;
        let subject = self.state.keys.subject_key(&document);
        if let Some(first) = seen.subjects.insert(subject, member.row) {
            return Err(ApiError::invalid(
                "subject",
                format!("the same person as row {first}"),
            ));
        }
        if change != RosterChange::Departures
            && let Some(first) = seen.staff_refs.insert(staff_ref.clone(), member.row)
        {
            return Err(ApiError::invalid(
                "staff_ref",
                format!("already used by row {first}"),
            ));
        }
        Ok(StagedMember {
            subject,
            name_tag: self.state.keys.name_tag(&subject, &name),
            staff_ref,
            hire_date: hire.map(date_text).unwrap_or_default(),
            departure_date: departure.map(date_text).unwrap_or_default(),
        })
    }

    async fn status(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        query: proto::RosterQuery,
    ) -> Result<proto::RosterStatus, ApiError> {
        let state = &self.state;
        let employer = employer_for(state, caller, &query.on_behalf_of)?;
        entry.employer = employer.clone();
        let max_due = convert::page_size(query.max_due, DUE_DEFAULT, DUE_MAX);
        let now = state.now();
        let today = state.today_text();
        let facts = state
            .store
            .roster_facts(employer.clone(), today.clone())
            .await?;
        let last = state
            .store
            .last_checks(employer.clone(), today.clone())
            .await?;
        let interval = state.rules.recheck_interval_days;
        let mut status = proto::RosterStatus {
            employer: employer.clone(),
            declared: facts.declared,
            current_members: facts.current_members,
            departed_members: facts.departed_members,
            last_replaced_at: facts.replaced_at.map(convert::timestamp_micros),
            last_recheck_at: facts.last_recheck_at.map(convert::timestamp_micros),
            recheck_interval_days: interval,
            ..Default::default()
        };
        let mut after = None;
        loop {
            let page = state
                .store
                .roster_members(employer.clone(), today.clone(), after, RECHECK_PAGE)
                .await?;
            let Some(last_member) = page.last() else {
                break;
            };
            after = Some(last_member.subject);
            for member in page {
                let checked = last.get(&member.subject).copied();
                if recheck_due(checked.map(crate::clock::from_micros), now, interval) {
                    status.due_count += 1;
                    if status.due.len() < max_due {
                        status.due.push(proto::DueMember {
                            staff_ref: member.staff_ref,
                            hire_date: member.hire_date,
                            last_checked_at: checked.map(convert::timestamp_micros),
                        });
                    } else {
                        status.due_truncated = true;
                    }
                }
            }
        }
        status.due.sort_by(|a, b| a.staff_ref.cmp(&b.staff_ref));
        entry.outcome = "OK".into();
        entry.detail = format!(
            "current={} due={}",
            status.current_members, status.due_count
        );
        state.store.append_audit(entry.clone()).await?;
        Ok(status)
    }

    async fn start_recheck(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::RecheckRequest,
    ) -> Result<RecheckStream, ApiError> {
        let state = &self.state;
        entry.employer = employer_for(state, caller, &req.on_behalf_of)?;
        let scope = match req.scope {
            0 => Scope::Art62,
            code => convert::scope(code)?,
        };
        entry.purpose = Purpose::Periodic.label().into();
        entry.scope = scope.label().into();
        let (out, results) = mpsc::channel(8);
        tokio::spawn(recheck(Arc::clone(state), entry.clone(), scope, out));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(
            results,
        )))
    }
}

/// Identities and staff references already in an upload, to name duplicates.
#[derive(Default)]
struct Seen {
    /// Row numbers name rows in the answer, so one may appear only once.
    rows: HashSet<u64>,
    subjects: HashMap<SubjectKey, u64>,
    staff_refs: HashMap<String, u64>,
}

fn reject(
    state: &AppState,
    summary: &mut proto::RosterSummary,
    row: u64,
    field: String,
    reason: String,
) {
    summary.rejected += 1;
    if summary.errors.len() < state.limits.max_import_errors_reported {
        summary.errors.push(proto::RowError { row, field, reason });
    } else {
        summary.errors_truncated = true;
    }
}

type RecheckOut = mpsc::Sender<Result<proto::RecheckResult, Status>>;

/// Checks every current member, a page per transaction, streaming each result once its audit
/// entry is durable; marks the re-check complete only when every member was checked.
async fn recheck(state: Arc<AppState>, template: NewEntry, scope: Scope, out: RecheckOut) {
    let mut summary = proto::RecheckSummary::default();
    let ended = recheck_members(&state, &template, scope, &out, &mut summary).await;
    let outcome = match &ended {
        Ok(()) => "COMPLETED",
        Err(e) => e.audit_outcome(),
    };
    let closing = NewEntry {
        at_micros: state.now_micros(),
        check_id: String::new(),
        subject: None,
        outcome: outcome.into(),
        detail: format!(
            "members={} no_record={} record_found={} needs_review={}",
            summary.members, summary.no_record, summary.record_found, summary.needs_review
        ),
        ..template.clone()
    };
    let written = match ended {
        Ok(()) => {
            state
                .store
                .finish_recheck(template.employer.clone(), closing.at_micros, closing)
                .await
        }
        Err(_) => state.store.append_audit(closing).await.map(|_| ()),
    };
    let last = match written {
        Ok(()) => Ok(proto::RecheckResult {
            item: Some(proto::recheck_result::Item::Summary(summary)),
        }),
        Err(e) => Err(ApiError::Store(e).into()),
    };
    let _ = out.send_timeout(last, deadline::idle_limit(&state)).await;
}

async fn recheck_members(
    state: &AppState,
    template: &NewEntry,
    scope: Scope,
    out: &RecheckOut,
    summary: &mut proto::RecheckSummary,
) -> Result<(), ApiError> {
    let today = state.today_text();
    let mut after = None;
    loop {
        let members: Vec<Member> = state
            .store
            .roster_members(
                template.employer.clone(),
                today.clone(),
                after,
                RECHECK_PAGE,
            )
            .await?;
        let Some(last) = members.last() else {
            return Ok(());
        };
        after = Some(last.subject);
        let (registry_version, found) = state
            .store
            .lookup_many(members.iter().map(|m| m.subject).collect())
            .await?;
        let at_micros = state.now_micros();
        let checks: Vec<CheckRecord> = members
            .iter()
            .zip(&found)
            .map(|(member, candidates)| {
                let decision = decide(scope, member.name_tag, candidates);
                CheckRecord {
                    entry: NewEntry {
                        at_micros,
                        subject: Some(member.subject),
                        outcome: decision.outcome.label().into(),
                        check_id: uuid::Uuid::now_v7().to_string(),
                        registry_version,
                        detail: format!("staff_ref={}", member.staff_ref),
                        ..template.clone()
                    },
                    name_mismatch: decision.name_mismatch,
                }
            })
            .collect();
        let recorded = state.store.record_checks(checks).await?;
        state
            .metrics
            .checked(crate::metrics::CheckKind::Recheck, recorded.len() as u64);
        for (member, entry) in members.into_iter().zip(recorded) {
            let outcome = Outcome::parse(&entry.body.outcome).unwrap_or(Outcome::NoRecord);
            summary.members += 1;
            match outcome {
                Outcome::NoRecord => summary.no_record += 1,
                Outcome::RecordFound => summary.record_found += 1,
                Outcome::NeedsReview => summary.needs_review += 1,
            }
            let result = proto::RecheckResult {
                item: Some(proto::recheck_result::Item::Member(proto::RecheckMember {
                    staff_ref: member.staff_ref,
                    outcome: convert::outcome_to_proto(outcome) as i32,
                    check_id: entry.body.check_id,
                    checked_at: Some(convert::timestamp_micros(entry.body.at_micros)),
                    registry_version,
                    review_id: 0,
                    log_index: entry.seq - 1,
                })),
            };
            deadline::send(
                out,
                Ok(result),
                deadline::idle_limit(state),
                "re-check results",
            )
            .await?;
        }
    }
}

#[tonic::async_trait]
impl RosterService for RosterApi {
    type RunRecheckStream = RecheckStream;

    async fn replace_roster(
        &self,
        request: Request<Streaming<proto::RosterUpload>>,
    ) -> Result<Response<proto::RosterSummary>, Status> {
        self.upload_to_end(request, &Rpc::ROSTER_REPLACE, RosterChange::Replace)
            .await
    }

    async fn record_hires(
        &self,
        request: Request<Streaming<proto::RosterUpload>>,
    ) -> Result<Response<proto::RosterSummary>, Status> {
        self.upload_to_end(request, &Rpc::ROSTER_HIRES, RosterChange::Hires)
            .await
    }

    async fn record_departures(
        &self,
        request: Request<Streaming<proto::RosterUpload>>,
    ) -> Result<Response<proto::RosterSummary>, Status> {
        self.upload_to_end(request, &Rpc::ROSTER_DEPARTURES, RosterChange::Departures)
            .await
    }

    async fn run_recheck(
        &self,
        request: Request<proto::RecheckRequest>,
    ) -> Result<Response<Self::RunRecheckStream>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::ROSTER_RECHECK).await?;
        let result = self
            .start_recheck(&caller, &mut entry, request.into_inner())
            .await;
        self.state.finish(entry, result).await
    }

    async fn get_roster(
        &self,
        request: Request<proto::RosterQuery>,
    ) -> Result<Response<proto::RosterStatus>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::ROSTER_GET).await?;
        let result = self.status(&caller, &mut entry, request.into_inner()).await;
        self.state.finish(entry, result).await
    }
}
