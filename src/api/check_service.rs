//! CheckService: one check, answered only after its audit entry is durable.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

use super::{ApiError, AppState, Rpc, convert};
use crate::audit::NewEntry;
use crate::check::{Candidate, NOT_STAFF, consent_required, decide, staff_only};
use crate::keys::SubjectKey;
use crate::org::{Caller, Role};
use crate::proto;
use crate::proto::check_service_server::CheckService;
use crate::store::CheckRecord;

/// Longest consent reference accepted.
pub const MAX_CONSENT_REF_LEN: usize = 64;
/// Most lookups answered in one read transaction.
const MAX_LOOKUP_GROUP: usize = 256;
/// Lookups waiting before checks wait to queue theirs.
const LOOKUP_QUEUE: usize = 4096;

pub struct CheckApi {
    state: Arc<AppState>,
    lookups: Lookups,
}

impl CheckApi {
    /// Needs a Tokio runtime: it starts the task that groups lookups.
    pub fn new(state: Arc<AppState>) -> Self {
        let lookups = Lookups::start(Arc::clone(&state));
        Self { state, lookups }
    }

    async fn check(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::CheckRequest,
    ) -> Result<proto::CheckResponse, ApiError> {
        let state = &self.state;
        let now = state.now();
        entry.employer = employer_for(state, caller, &req.on_behalf_of)?;
        let purpose = convert::purpose(req.purpose)?;
        entry.purpose = purpose.label().into();
        let scope = convert::scope(req.scope)?;
        entry.scope = scope.label().into();
        let (document, name) = convert::identity(
            "subject",
            req.subject.as_ref(),
            crate::clock::calendar_date(now),
        )?;
        let subject = state.keys.subject_key(&document);
        entry.subject = Some(subject);
        let consent_ref = validate_consent(&req.consent_ref, consent_required(purpose))?;
        if staff_only(purpose) {
            let member = state
                .store
                .are_members(entry.employer.clone(), state.today_text(), vec![subject])
                .await?;
            if member.first() != Some(&true) {
                return Err(ApiError::FailedPrecondition(format!("subject {NOT_STAFF}")));
            }
        } else if state.pre_hire_quota.take(state, &entry.employer, 1).await? == 0 {
            return Err(ApiError::ResourceExhausted(super::quota::spent(
                state,
                &entry.employer,
            )));
        }

        let name_tag = state.keys.name_tag(&subject, &name);
        let (registry_version, candidates) = match self.lookups.lookup(subject).await {
            Some(found) => found,
            // The group's read failed: alone, this lookup reports its own error (or succeeds).
            None => state.store.lookup(subject).await?,
        };
        let decision = decide(scope, name_tag, &candidates);
        let outcome = decision.outcome;
        let check_id = uuid::Uuid::now_v7().to_string();
        entry.outcome = outcome.label().into();
        entry.check_id = check_id.clone();
        entry.registry_version = registry_version;
        entry.detail = if consent_ref.is_empty() {
            String::new()
        } else {
            format!("consent_ref={consent_ref}")
        };
        let recorded = state
            .store
            .record_checks(vec![CheckRecord {
                entry: entry.clone(),
                name_mismatch: decision.name_mismatch,
            }])
            .await?
            .pop()
            .ok_or(ApiError::Store(crate::store::StoreError::NotWritten))?;
        state.metrics.checked(crate::metrics::CheckKind::Single, 1);
        Ok(proto::CheckResponse {
            outcome: convert::outcome_to_proto(outcome) as i32,
            check_id,
            checked_at: Some(convert::timestamp_micros(recorded.body.at_micros)),
            registry_version,
            scope: scope.code(),
            employer: entry.employer.clone(),
            review_id: 0,
            log_index: recorded.seq - 1,
        })
    }
}

type Found = (u64, Vec<Candidate>);

/// The lookups of concurrent single checks, answered together: one read transaction, and one
/// hand-off to a blocking thread, for every lookup waiting at that moment — group commit for
/// reads. In WAL mode SQLite empties a reader's page cache whenever the writer has committed, so
/// alone each lookup read its whole B-tree path again (four levels on 10,000,000 records) and
/// cost a thread hand-off; in a group the upper levels are read once. Every check of a group is
/// answered from the same registry version, the one its response names.
struct Lookups {
    queue: mpsc::Sender<(SubjectKey, oneshot::Sender<Option<Found>>)>,
}

impl Lookups {
    fn start(state: Arc<AppState>) -> Self {
        let (queue, mut waiting) = mpsc::channel(LOOKUP_QUEUE);
        tokio::spawn(async move {
            let mut group: Vec<(SubjectKey, oneshot::Sender<Option<Found>>)> =
                Vec::with_capacity(MAX_LOOKUP_GROUP);
            while waiting.recv_many(&mut group, MAX_LOOKUP_GROUP).await > 0 {
                let (subjects, replies): (Vec<_>, Vec<_>) = group.drain(..).unzip();
                match state.store.lookup_many(subjects).await {
                    Ok((version, found)) => {
                        for (reply, candidates) in replies.into_iter().zip(found) {
                            let _ = reply.send(Some((version, candidates)));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a grouped lookup failed; each retries alone");
                        for reply in replies {
                            let _ = reply.send(None);
                        }
                    }
                }
            }
        });
        Self { queue }
    }

    /// The registry version and the records under `subject`; `None` when the group's read
    /// failed (or the grouping task is gone), for the caller to look up alone.
    async fn lookup(&self, subject: SubjectKey) -> Option<Found> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((subject, reply)).await.ok()?;
        answer.await.ok().flatten()
    }
}

/// The employer a call counts for (a check, a roster, a re-check): an employer acts for
/// itself; a bureau names a unit it supervises.
pub(super) fn employer_for(
    state: &AppState,
    caller: &Caller,
    on_behalf_of: &str,
) -> Result<String, ApiError> {
    let on_behalf_of = on_behalf_of.trim();
    match caller.org.role {
        Role::Employer if on_behalf_of.is_empty() || on_behalf_of == caller.org.uscc => {
            Ok(caller.org.uscc.clone())
        }
        Role::Employer => Err(ApiError::PermissionDenied(
            "an employer acts only for itself; leave on_behalf_of empty".into(),
        )),
        Role::Bureau if on_behalf_of.is_empty() => Err(ApiError::invalid(
            "on_behalf_of",
            "a bureau must name the employer it acts for",
        )),
        Role::Bureau => {
            let employer = state
                .orgs
                .get(on_behalf_of)
                .filter(|o| o.role == Role::Employer)
                .ok_or_else(|| {
                    ApiError::PermissionDenied(format!(
                        "{on_behalf_of} is not an enrolled employer supervised by this bureau"
                    ))
                })?;
            if !caller.may_act_for(&employer) {
                return Err(ApiError::PermissionDenied(format!(
                    "{on_behalf_of} is not an enrolled employer supervised by this bureau"
                )));
            }
            Ok(employer.uscc)
        }
        _ => Err(ApiError::PermissionDenied(
            "only employers and bureaus act for employers".into(),
        )),
    }
}

/// A consent reference is the employer's own id for the signed authorisation it holds. It is
/// kept in the audit log, so it goes through the one free-text guard. Returns it trimmed
/// (empty when absent and not required).
pub fn validate_consent(consent_ref: &str, required: bool) -> Result<String, ApiError> {
    if consent_ref.trim().is_empty() && !required {
        return Ok(String::new());
    }
    convert::reference("consent_ref", consent_ref, MAX_CONSENT_REF_LEN).map_err(|e| match e {
        ApiError::InvalidArgument { field, reason } if consent_ref.trim().is_empty() => {
            ApiError::InvalidArgument {
                field,
                reason: format!(
                    "{reason} for PRE_HIRE: the reference of the applicant's signed authorisation"
                ),
            }
        }
        other => other,
    })
}

type BatchStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<proto::CheckBatchResponse, Status>> + Send>,
>;

#[tonic::async_trait]
impl CheckService for CheckApi {
    type CheckBatchStream = BatchStream;

    async fn check_batch(
        &self,
        request: Request<tonic::Streaming<proto::CheckBatchRequest>>,
    ) -> Result<Response<Self::CheckBatchStream>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::CHECK_BATCH).await?;
        let peer = request.extensions().get::<crate::tls::PeerInfo>().cloned();
        let mut stream = request.into_inner();
        let opened = super::batch::open(&self.state, &caller, &mut entry, &mut stream).await;
        let batch = self.state.finish(entry, opened).await?.into_inner();
        let (out, results) = tokio::sync::mpsc::channel(8);
        tokio::spawn(super::batch::run(
            Arc::clone(&self.state),
            batch,
            stream,
            out,
            peer,
        ));
        let results: BatchStream = Box::pin(tokio_stream::wrappers::ReceiverStream::new(results));
        Ok(Response::new(results))
    }

    async fn check(
        &self,
        request: Request<proto::CheckRequest>,
    ) -> Result<Response<proto::CheckResponse>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::CHECK).await?;
        let result = self.check(&caller, &mut entry, request.into_inner()).await;
        self.state.finish(entry, result).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_references_are_ids_not_identities() {
        assert!(validate_consent("", false).is_ok());
        assert!(validate_consent("", true).is_err());
        assert!(validate_consent("CONSENT-2026-0042", true).is_ok());
        assert!(validate_consent("11010519491231002X", true).is_err());
        assert!(validate_consent("张三同意书", true).is_err());
        assert!(validate_consent(&"A".repeat(65), true).is_err());
        assert!(validate_consent("140105.19560718.3079", true).is_err());
        assert!(validate_consent("110105-19491231-002X", true).is_err());
    }
}
