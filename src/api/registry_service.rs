//! RegistryService: registrars load, revoke, seal and reinstate records. Identities are hashed as they
//! arrive; an import is staged and published at once at the end of the stream, so a broken
//! upload changes nothing.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use super::{ApiError, AppState, Rpc, convert, deadline};
use crate::audit::NewEntry;
use crate::org::Caller;
use crate::proto;
use crate::proto::registry_service_server::RegistryService;
use crate::registry::{HashedRecord, MAX_SOURCE_REF_LEN, parse_date};
use crate::store::{ImportOrder, RecordFlag};

/// Rows handed to the writer at a time while an import streams in: each hand-off is a job in a
/// group commit, so fewer, larger ones cost less (at 2,000 a 1,000,000-record import was 500
/// jobs); 10,000 hashed records are about 2 MiB.
const STAGE_BATCH: usize = 10_000;

pub struct RegistryApi {
    state: Arc<AppState>,
}

impl RegistryApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    fn hash_record(
        &self,
        record: &proto::ImportRecord,
        today: time::Date,
    ) -> Result<HashedRecord, ApiError> {
        let source_ref = convert::reference("source_ref", &record.source_ref, MAX_SOURCE_REF_LEN)?;
        let (document, name) = convert::identity("subject", record.subject.as_ref(), today)?;
        let category = convert::category(record.category)?;
        let kind = convert::record_kind(record.kind)?;
        let decided_on = parse_date("decided_on", &record.decided_on)
            .map_err(|(field, reason)| ApiError::invalid(field, reason))?;
        if decided_on > today {
            return Err(ApiError::invalid("decided_on", "is in the future"));
        }
        let subject = self.state.keys.subject_key(&document);
        Ok(HashedRecord {
            source_ref,
            subject,
            name_tag: self.state.keys.name_tag(&subject, &name),
            category,
            kind,
            decided_on,
            sealed: record.sealed,
        })
    }

    async fn import(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        mut stream: Streaming<proto::ImportChunk>,
        peer: Option<crate::tls::PeerInfo>,
    ) -> Result<proto::ImportSummary, ApiError> {
        let state = &self.state;
        let import_id = uuid::Uuid::now_v7().to_string();
        entry.detail = format!("import_id={import_id}");
        let mut summary = proto::ImportSummary {
            import_id: import_id.clone(),
            ..Default::default()
        };
        let mut pending: Vec<(u64, HashedRecord)> = Vec::with_capacity(STAGE_BATCH);
        let mut order = ImportOrder::default();
        let idle = deadline::idle_limit(state);
        let received = loop {
            let chunk = match deadline::next(&mut stream, idle).await {
                Err(stalled) => break Err(stalled),
                Ok(None) => break Ok(()),
                Ok(Some(Err(status))) => {
                    break Err(ApiError::Cancelled(format!(
                        "the import stream broke ({}); nothing was imported",
                        status.message()
                    )));
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            // The caller's standing is asked again on every message.
            if let Err(lost) = state.identify(peer.as_ref()) {
                break Err(lost);
            }
            if chunk.records.len() > state.limits.max_import_chunk_records {
                state.store.discard_import(import_id.clone()).await?;
                return Err(ApiError::invalid(
                    "records",
                    format!(
                        "a chunk holds at most {} records, got {}",
                        state.limits.max_import_chunk_records,
                        chunk.records.len()
                    ),
                ));
            }
            let today = crate::clock::calendar_date(state.now());
            for record in &chunk.records {
                summary.received += 1;
                match self.hash_record(record, today) {
                    Ok(hashed) => pending.push((order.key(&hashed), hashed)),
                    Err(ApiError::InvalidArgument { field, reason }) => {
                        summary.rejected += 1;
                        if summary.errors.len() < state.limits.max_import_errors_reported {
                            summary.errors.push(proto::RowError {
                                row: record.row,
                                field,
                                reason,
                            });
                        } else {
                            summary.errors_truncated = true;
                        }
                    }
                    Err(other) => return Err(other),
                }
            }
            if pending.len() >= STAGE_BATCH {
                state
                    .store
                    .stage_import(import_id.clone(), std::mem::take(&mut pending))
                    .await?;
            }
        };
        if let Err(ended) = received {
            state.store.discard_import(import_id.clone()).await?;
            return Err(ended);
        }
        if !pending.is_empty() {
            state.store.stage_import(import_id.clone(), pending).await?;
        }
        let template = NewEntry {
            caller: caller.org.uscc.clone(),
            ..entry.clone()
        };
        let closing = NewEntry {
            outcome: "IMPORTED".into(),
            ..template.clone()
        };
        let (received_n, rejected_n) = (summary.received, summary.rejected);
        let finished = state
            .store
            .finish_import(
                import_id.clone(),
                caller.org.uscc.clone(),
                state.now_micros(),
                template,
                move |counts| NewEntry {
                    registry_version: counts.registry_version,
                    detail: format!(
                        "{} received={received_n} created={} updated={} unchanged={} rejected={rejected_n}",
                        closing.detail, counts.created, counts.updated, counts.unchanged
                    ),
                    ..closing
                },
            )
            .await;
        let counts = match finished {
            Ok(counts) => counts,
            Err(e) => {
                state.store.discard_import(import_id).await?;
                return Err(e.into());
            }
        };
        summary.created = counts.created;
        summary.updated = counts.updated;
        summary.unchanged = counts.unchanged;
        summary.registry_version = counts.registry_version;
        state.alerts_raised(counts.alerts_raised);
        tracing::info!(
            received = summary.received,
            created = summary.created,
            updated = summary.updated,
            rejected = summary.rejected,
            version = summary.registry_version,
            alerts = counts.alerts_raised,
            "import finished"
        );
        Ok(summary)
    }

    async fn set_flag(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::RecordRef,
        flag: RecordFlag,
    ) -> Result<proto::RecordChange, ApiError> {
        let source_ref = convert::reference("source_ref", &req.source_ref, MAX_SOURCE_REF_LEN)?;
        let reason = convert::note("reason", &req.reason)?;
        entry.detail = format!("source_ref={source_ref} reason={reason}");
        let changed = self
            .state
            .store
            .set_record_flag(
                source_ref.clone(),
                flag,
                caller.org.uscc.clone(),
                self.state.now_micros(),
                entry.clone(),
            )
            .await?;
        let change = changed
            .ok_or_else(|| ApiError::NotFound(format!("no record with source_ref {source_ref}")))?;
        self.state.alerts_raised(change.alerts_raised);
        Ok(proto::RecordChange {
            source_ref,
            changed: change.changed,
            registry_version: change.registry_version,
        })
    }
}

impl RegistryApi {
    async fn transfer(
        &self,
        entry: &mut NewEntry,
        req: proto::TransferRecordRequest,
    ) -> Result<proto::RecordChange, ApiError> {
        let state = &self.state;
        let source_ref = convert::reference("source_ref", &req.source_ref, MAX_SOURCE_REF_LEN)?;
        let new_owner = req.new_owner.trim();
        state
            .orgs
            .get(new_owner)
            .filter(|o| o.role == crate::org::Role::Registrar)
            .ok_or_else(|| ApiError::invalid("new_owner", "is not an enrolled registrar"))?;
        let reason = convert::note("reason", &req.reason)?;
        entry.detail = format!("source_ref={source_ref} reason={reason}");
        let version = state
            .store
            .transfer_record(source_ref.clone(), new_owner.to_string(), entry.clone())
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no record with source_ref {source_ref}")))?;
        Ok(proto::RecordChange {
            source_ref,
            changed: true,
            registry_version: version,
        })
    }
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    async fn import(
        &self,
        request: Request<Streaming<proto::ImportChunk>>,
    ) -> Result<Response<proto::ImportSummary>, Status> {
        let (caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::REGISTRY_IMPORT)
            .await?;
        // On its own task: when the client goes away the server drops the call, but the import
        // still sees its stream break, discards what it staged and audits that.
        let api = RegistryApi::new(Arc::clone(&self.state));
        let peer = request.extensions().get::<crate::tls::PeerInfo>().cloned();
        let stream = request.into_inner();
        tokio::spawn(async move {
            let result = api.import(&caller, &mut entry, stream, peer).await;
            api.state.finish(entry, result).await
        })
        .await
        .map_err(|_| Status::internal("the import was interrupted"))?
    }

    async fn revoke(
        &self,
        request: Request<proto::RecordRef>,
    ) -> Result<Response<proto::RecordChange>, Status> {
        let (caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::REGISTRY_REVOKE)
            .await?;
        let result = self
            .set_flag(
                &caller,
                &mut entry,
                request.into_inner(),
                RecordFlag::Revoked,
            )
            .await;
        self.state.finish(entry, result).await
    }

    async fn seal(
        &self,
        request: Request<proto::RecordRef>,
    ) -> Result<Response<proto::RecordChange>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::REGISTRY_SEAL).await?;
        let result = self
            .set_flag(
                &caller,
                &mut entry,
                request.into_inner(),
                RecordFlag::Sealed,
            )
            .await;
        self.state.finish(entry, result).await
    }

    async fn reinstate(
        &self,
        request: Request<proto::RecordRef>,
    ) -> Result<Response<proto::RecordChange>, Status> {
        let (caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::REGISTRY_REINSTATE)
            .await?;
        let result = self
            .set_flag(
                &caller,
                &mut entry,
                request.into_inner(),
                RecordFlag::Reinstated,
            )
            .await;
        self.state.finish(entry, result).await
    }

    async fn transfer_record(
        &self,
        request: Request<proto::TransferRecordRequest>,
    ) -> Result<Response<proto::RecordChange>, Status> {
        let (_caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::REGISTRY_TRANSFER)
            .await?;
        let result = self.transfer(&mut entry, request.into_inner()).await;
        self.state.finish(entry, result).await
    }
}
