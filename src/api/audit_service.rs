//! AuditService: the head of the chain and its verification, for prosecutors and operators.
//! These reads are audited like every other call.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{ApiError, AppState, Rpc, convert};
use crate::audit::{Head, NewEntry};
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
        entry.outcome = if verification.ok() { "OK" } else { "BROKEN" }.into();
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
        })
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
}
