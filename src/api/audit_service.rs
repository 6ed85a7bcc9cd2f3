//! AuditService: the head of the chain and its verification, for prosecutors and operators.
//! These reads are audited like every other call.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{ApiError, AppState, Rpc, convert};
use crate::audit::note::{Note, Receipt, SignatureLine, Verifier};
use crate::audit::{Head, NewEntry, canonical};
use crate::org::{Caller, Role};
use crate::proto;
use crate::proto::audit_service_server::AuditService;

pub struct AuditApi {
    state: Arc<AppState>,
}

pub fn head_to_proto(head: &Head) -> proto::AuditHead {
    proto::AuditHead {
        sequence: head.seq,
        hash: hex::encode(head.hash),
        at: (head.seq > 0).then(|| convert::timestamp_micros(head.at_micros)),
    }
}

impl AuditApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    async fn head(&self, entry: &mut NewEntry) -> Result<proto::AuditHead, ApiError> {
        let head = self.state.store.audit_head().await?;
        entry.outcome = "OK".into();
        entry.detail = format!("head={}", head.seq);
        self.state.store.append_audit(entry.clone()).await?;
        Ok(head_to_proto(&head))
    }

    async fn verify(
        &self,
        entry: &mut NewEntry,
        req: proto::VerifyRequest,
    ) -> Result<proto::VerifyResponse, ApiError> {
        if req.to_sequence != 0 && req.to_sequence < req.from_sequence {
            return Err(ApiError::invalid("to_sequence", "is before from_sequence"));
        }
        let head = self.state.store.audit_head().await?;
        let verification = match self
            .state
            .store
            .verify_audit(req.from_sequence, req.to_sequence)
            .await
        {
            Err(crate::store::StoreError::NoSuchEntry(seq)) => {
                return Err(ApiError::invalid(
                    "from_sequence",
                    format!("entry {seq} does not exist (head is {})", head.seq),
                ));
            }
            other => other?,
        };
        let (first_broken, problem) = verification.first_broken.clone().unwrap_or_default();
        let tree_problem = self
            .state
            .store
            .check_audit_tree()
            .await?
            .unwrap_or_default();
        let unexplained = self.state.store.unexplained_state().await?;
        entry.outcome = if verification.ok() && tree_problem.is_empty() && unexplained.is_empty() {
            "OK"
        } else {
            "BROKEN"
        }
        .into();
        entry.detail = format!(
            "from={} to={} checked={} first_broken={first_broken}",
            req.from_sequence, req.to_sequence, verification.entries_checked
        );
        self.state.store.append_audit(entry.clone()).await?;
        Ok(proto::VerifyResponse {
            ok: verification.ok(),
            entries_checked: verification.entries_checked,
            first_broken_sequence: first_broken,
            problem,
            head: Some(head_to_proto(&head)),
            tree_problem,
            unexplained,
        })
    }

    async fn checkpoint(
        &self,
        entry: &mut NewEntry,
        req: proto::CheckpointRequest,
    ) -> Result<proto::CheckpointResponse, ApiError> {
        let state = &self.state;
        let found = if req.size == 0 {
            state.log.refresh(&state.store, state.now_micros()).await?
        } else {
            state.store.checkpoint(req.size).await?
        };
        let found = found.ok_or_else(|| {
            ApiError::NotFound(format!("size: no checkpoint of size {} is kept", req.size))
        })?;
        entry.outcome = "OK".into();
        entry.detail = format!("size={}", found.size);
        state.store.append_audit(entry.clone()).await?;
        Ok(proto::CheckpointResponse {
            checkpoint: found.served(),
            size: found.size,
            verifier_key: state.log.vkey(),
        })
    }

    async fn consistency(
        &self,
        entry: &mut NewEntry,
        req: proto::ConsistencyProofRequest,
    ) -> Result<proto::ConsistencyProofResponse, ApiError> {
        let state = &self.state;
        let newest = state
            .log
            .refresh(&state.store, state.now_micros())
            .await?
            .map_or(0, |c| c.size);
        let new = if req.new_size == 0 {
            newest
        } else {
            req.new_size
        };
        if new > newest {
            return Err(ApiError::invalid(
                "new_size",
                format!("{new} is beyond the newest checkpoint ({newest})"),
            ));
        }
        if req.old_size > new {
            return Err(ApiError::invalid(
                "old_size",
                format!("{} is larger than new_size {new}", req.old_size),
            ));
        }
        let hashes = state.store.consistency_proof(req.old_size, new).await?;
        entry.outcome = "OK".into();
        entry.detail = format!("old={} new={new}", req.old_size);
        state.store.append_audit(entry.clone()).await?;
        Ok(proto::ConsistencyProofResponse {
            old_size: req.old_size,
            new_size: new,
            hashes: hashes.iter().map(|h| h.to_vec()).collect(),
        })
    }

    async fn inclusion(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::InclusionProofRequest,
    ) -> Result<proto::InclusionProofResponse, ApiError> {
        use proto::inclusion_proof_request::Entry as By;
        let state = &self.state;
        let found = match req.entry {
            Some(By::CheckId(check_id)) if !check_id.trim().is_empty() => {
                state.store.check_entry(check_id.trim().to_string()).await?
            }
            Some(By::Index(index)) => state.store.audit_entry(index.saturating_add(1)).await?,
            _ => {
                return Err(ApiError::invalid("entry", "name a check_id or an index"));
            }
        };
        // An employer's own checks only; another's answers like one that is not there.
        let found = found
            .filter(|e| caller.org.role != Role::Employer || e.body.employer == caller.org.uscc)
            .ok_or_else(|| ApiError::NotFound("entry: no such entry of yours".into()))?;
        let index = found.seq - 1;
        let checkpoint = state
            .log
            .covering(&state.store, index, state.now_micros())
            .await?
            .ok_or_else(|| {
                ApiError::FailedPrecondition(
                    "no checkpoint covers the entry yet; try again in a moment".into(),
                )
            })?;
        let proof = state.store.inclusion_proof(index, checkpoint.size).await?;
        let receipt = Receipt {
            entry: canonical(found.seq, &found.body),
            index,
            proof,
            checkpoint: checkpoint.served(),
        };
        entry.outcome = "OK".into();
        entry.check_id = found.body.check_id.clone();
        entry.detail = format!("index={index} size={}", checkpoint.size);
        state.store.append_audit(entry.clone()).await?;
        Ok(proto::InclusionProofResponse {
            index,
            hashes: receipt.proof.iter().map(|h| h.to_vec()).collect(),
            checkpoint: receipt.checkpoint.clone(),
            receipt: receipt.render(),
            entry: receipt.entry,
        })
    }

    async fn cosign(
        &self,
        entry: &mut NewEntry,
        req: proto::AddCosignatureRequest,
    ) -> Result<proto::AddCosignatureResponse, ApiError> {
        let state = &self.state;
        let key = Verifier::parse(&req.witness_key)
            .map_err(|e| ApiError::invalid("witness_key", e.to_string()))?;
        if !key.is_cosigner() {
            return Err(ApiError::invalid(
                "witness_key",
                "is not a cosignature key (type 0x04)",
            ));
        }
        let line = SignatureLine::parse(&req.signature_line)
            .map_err(|e| ApiError::invalid("signature_line", e.to_string()))?;
        let kept = state.store.checkpoint(req.size).await?.ok_or_else(|| {
            ApiError::NotFound(format!("size: no checkpoint of size {} is kept", req.size))
        })?;
        let body = Note::parse(&kept.note)
            .map_err(|e| ApiError::FailedPrecondition(format!("the kept checkpoint: {e}")))?
            .text;
        Note {
            text: body,
            signatures: vec![line.clone()],
        }
        .verify(&key)
        .map_err(|e| ApiError::invalid("signature_line", e.to_string()))?;
        entry.outcome = "OK".into();
        entry.detail = format!("size={} witness={}", req.size, key.name);
        state
            .store
            .add_cosignature(req.size, key.name.clone(), line.text, entry.clone())
            .await?;
        let served = state
            .store
            .checkpoint(req.size)
            .await?
            .map(|c| c.served())
            .unwrap_or_default();
        Ok(proto::AddCosignatureResponse { checkpoint: served })
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn head(
        &self,
        request: Request<proto::HeadRequest>,
    ) -> Result<Response<proto::AuditHead>, Status> {
        let (_caller, mut entry) = self.state.authorize(&request, &Rpc::AUDIT_HEAD).await?;
        let result = self.head(&mut entry).await;
        self.state.finish(entry, result).await
    }

    async fn verify(
        &self,
        request: Request<proto::VerifyRequest>,
    ) -> Result<Response<proto::VerifyResponse>, Status> {
        let (_caller, mut entry) = self.state.authorize(&request, &Rpc::AUDIT_VERIFY).await?;
        let result = self.verify(&mut entry, request.into_inner()).await;
        self.state.finish(entry, result).await
    }

    async fn checkpoint(
        &self,
        request: Request<proto::CheckpointRequest>,
    ) -> Result<Response<proto::CheckpointResponse>, Status> {
        let (_caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::AUDIT_CHECKPOINT)
            .await?;
        let result = self.checkpoint(&mut entry, request.into_inner()).await;
        self.state.finish(entry, result).await
    }

    async fn consistency_proof(
        &self,
        request: Request<proto::ConsistencyProofRequest>,
    ) -> Result<Response<proto::ConsistencyProofResponse>, Status> {
        let (_caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::AUDIT_CONSISTENCY)
            .await?;
        let result = self.consistency(&mut entry, request.into_inner()).await;
        self.state.finish(entry, result).await
    }

    async fn inclusion_proof(
        &self,
        request: Request<proto::InclusionProofRequest>,
    ) -> Result<Response<proto::InclusionProofResponse>, Status> {
        let (caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::AUDIT_INCLUSION)
            .await?;
        let result = self
            .inclusion(&caller, &mut entry, request.into_inner())
            .await;
        self.state.finish(entry, result).await
    }

    async fn add_cosignature(
        &self,
        request: Request<proto::AddCosignatureRequest>,
    ) -> Result<Response<proto::AddCosignatureResponse>, Status> {
        let (_caller, mut entry) = self.state.authorize(&request, &Rpc::AUDIT_COSIGN).await?;
        let result = self.cosign(&mut entry, request.into_inner()).await;
        self.state.finish(entry, result).await
    }
}
