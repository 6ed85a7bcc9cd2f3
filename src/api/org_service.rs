//! OrganisationService: operators enrol and suspend organisations (a bureau enrols the units it
//! supervises) and revoke single client certificates; the changes take effect on the next call,
//! without a restart.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{ApiError, AppState, Rpc, convert};
use crate::audit::NewEntry;
use crate::org::{Caller, Enrolment, OrgStatus, Role};
use crate::proto;
use crate::proto::organisation_service_server::OrganisationService;
use crate::store::RevokedCert;

pub struct OrgApi {
    state: Arc<AppState>,
}

impl OrgApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    async fn enroll(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::EnrollRequest,
    ) -> Result<proto::Organisation, ApiError> {
        let role = convert::role(req.role)?;
        let industry = convert::industry(req.industry)?;
        let enrolment = Enrolment::new(
            &req.uscc,
            &req.name,
            role,
            &req.region,
            industry,
            &req.supervising_bureau,
        )?;
        entry.employer = enrolment.uscc.as_str().to_string();
        if caller.org.role == Role::Bureau {
            // A bureau enrols new units under itself, or updates units it already supervises;
            // it never re-enrols anyone else (another bureau's unit, or an operator,
            // registrar, prosecutor or bureau turned employer).
            let under_caller = enrolment.role == Role::Employer
                && enrolment
                    .supervising_bureau
                    .as_ref()
                    .is_some_and(|b| b.as_str() == caller.org.uscc);
            let existing_is_ours = match self.state.orgs.get(enrolment.uscc.as_str()) {
                None => true,
                Some(existing) => existing.role == Role::Employer && caller.may_act_for(&existing),
            };
            if !under_caller || !existing_is_ours {
                return Err(ApiError::PermissionDenied(
                    "a bureau enrols only new employers under itself, or updates those it supervises"
                        .into(),
                ));
            }
        }
        if let Some(bureau) = &enrolment.supervising_bureau {
            match self.state.orgs.get(bureau.as_str()) {
                Some(org) if org.role == Role::Bureau => {}
                Some(_) => {
                    return Err(ApiError::invalid(
                        "supervising_bureau",
                        format!("{} is not a bureau", bureau.as_str()),
                    ));
                }
                None => {
                    return Err(ApiError::invalid(
                        "supervising_bureau",
                        format!(
                            "{} is not enrolled; enrol the bureau first",
                            bureau.as_str()
                        ),
                    ));
                }
            }
        }
        entry.outcome = if self.state.orgs.get(enrolment.uscc.as_str()).is_some() {
            "UPDATED"
        } else {
            "CREATED"
        }
        .into();
        entry.detail = format!(
            "role={} region={} industry={}",
            enrolment.role.label(),
            enrolment.region,
            enrolment.industry.label()
        );
        let org = self
            .state
            .store
            .enroll(enrolment, self.state.now_micros(), entry.clone())
            .await?;
        self.state.orgs.put(org.clone());
        Ok(convert::organisation(&org))
    }

    async fn set_headcount(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::SetHeadcountRequest,
    ) -> Result<proto::SetHeadcountResponse, ApiError> {
        let uscc = crate::identity::Uscc::parse(&req.uscc)?;
        let uscc = uscc.as_str().to_string();
        let unit = self
            .state
            .orgs
            .get(&uscc)
            .filter(|o| o.role == Role::Employer)
            .filter(|o| caller.org.role == Role::Operator || caller.may_act_for(o))
            .ok_or_else(|| {
                ApiError::PermissionDenied(format!(
                    "{uscc} is not an enrolled employer within this caller's reach"
                ))
            })?;
        entry.employer = unit.uscc.clone();
        entry.outcome = "SET".into();
        entry.detail = format!("headcount={}", req.headcount);
        if !self
            .state
            .store
            .set_headcount(uscc.clone(), req.headcount, entry.clone())
            .await?
        {
            return Err(ApiError::NotFound(format!("no organisation {uscc}")));
        }
        Ok(proto::SetHeadcountResponse {
            uscc,
            headcount: req.headcount,
            max_members: self
                .state
                .rules
                .max_members(u64::from(req.headcount))
                .unwrap_or(0),
        })
    }

    async fn set_status(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::StatusChangeRequest,
        status: OrgStatus,
    ) -> Result<proto::Organisation, ApiError> {
        let uscc = crate::identity::Uscc::parse(&req.uscc)?;
        let uscc = uscc.as_str().to_string();
        if uscc == caller.org.uscc && status == OrgStatus::Suspended {
            return Err(ApiError::FailedPrecondition(
                "an operator cannot suspend its own organisation".into(),
            ));
        }
        let reason = convert::note("reason", &req.reason)?;
        entry.employer = uscc.clone();
        entry.outcome = status.label().into();
        entry.detail = format!("reason={reason}");
        let org = self
            .state
            .store
            .set_org_status(uscc.clone(), status, self.state.now_micros(), entry.clone())
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("organisation {uscc} is not enrolled")))?;
        self.state.orgs.put(org.clone());
        Ok(convert::organisation(&org))
    }

    async fn list(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::ListOrganisationsRequest,
    ) -> Result<Vec<proto::Organisation>, ApiError> {
        let role = match req.role {
            0 => None,
            code => Some(convert::role(code)?),
        };
        let prefix = convert::region_prefix(&req.region_prefix)?;
        let orgs: Vec<proto::Organisation> = self
            .state
            .orgs
            .all()
            .iter()
            .filter(|o| {
                caller.org.role != Role::Bureau
                    || o.uscc == caller.org.uscc
                    || caller.may_act_for(o)
            })
            .filter(|o| role.is_none_or(|r| o.role == r))
            .filter(|o| o.region.starts_with(&prefix))
            .map(convert::organisation)
            .collect();
        entry.outcome = "OK".into();
        entry.detail = format!("listed={}", orgs.len());
        self.state.store.append_audit(entry.clone()).await?;
        Ok(orgs)
    }

    async fn revoke_certificate(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::RevokeCertificateRequest,
    ) -> Result<proto::RevokeCertificateResponse, ApiError> {
        let fingerprint = crate::certs::parse_fingerprint(&req.fingerprint).ok_or_else(|| {
            ApiError::invalid(
                "fingerprint",
                "64 hex digits: the SHA-256 of the certificate's DER",
            )
        })?;
        if fingerprint == caller.cert_fingerprint {
            return Err(ApiError::FailedPrecondition(
                "an operator cannot revoke the certificate it is calling with".into(),
            ));
        }
        let reason = convert::note("reason", &req.reason)?;
        if reason.is_empty() {
            return Err(ApiError::invalid("reason", "is required"));
        }
        entry.outcome = "REVOKED".into();
        entry.detail = format!("fingerprint={fingerprint} reason={reason}");
        let revoked = RevokedCert {
            fingerprint,
            revoked_at: self.state.now_micros(),
            reason,
        };
        let (revoked, added) = self
            .state
            .store
            .revoke_certificate(revoked, entry.clone())
            .await?;
        self.state.revoked_certs.insert(revoked.fingerprint.clone());
        Ok(proto::RevokeCertificateResponse {
            certificate: Some(revoked_to_proto(revoked)),
            already_revoked: !added,
        })
    }

    async fn list_revoked(
        &self,
        entry: &mut NewEntry,
    ) -> Result<proto::ListRevokedCertificatesResponse, ApiError> {
        let certificates: Vec<proto::RevokedCertificate> = self
            .state
            .store
            .revoked_certificates()
            .await?
            .into_iter()
            .map(revoked_to_proto)
            .collect();
        entry.outcome = "OK".into();
        entry.detail = format!("listed={}", certificates.len());
        self.state.store.append_audit(entry.clone()).await?;
        Ok(proto::ListRevokedCertificatesResponse { certificates })
    }
}

fn revoked_to_proto(revoked: RevokedCert) -> proto::RevokedCertificate {
    proto::RevokedCertificate {
        fingerprint: revoked.fingerprint,
        revoked_at: Some(convert::timestamp_micros(revoked.revoked_at)),
        reason: revoked.reason,
    }
}

type OrgStream = Pin<Box<dyn Stream<Item = Result<proto::Organisation, Status>> + Send>>;

#[tonic::async_trait]
impl OrganisationService for OrgApi {
    async fn enroll(
        &self,
        request: Request<proto::EnrollRequest>,
    ) -> Result<Response<proto::Organisation>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::ORG_ENROLL).await?;
        let result = self.enroll(&caller, &mut entry, request.into_inner()).await;
        self.state.finish(entry, result).await
    }

    async fn suspend(
        &self,
        request: Request<proto::StatusChangeRequest>,
    ) -> Result<Response<proto::Organisation>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::ORG_SUSPEND).await?;
        let result = self
            .set_status(
                &caller,
                &mut entry,
                request.into_inner(),
                OrgStatus::Suspended,
            )
            .await;
        self.state.finish(entry, result).await
    }

    async fn set_headcount(
        &self,
        request: Request<proto::SetHeadcountRequest>,
    ) -> Result<Response<proto::SetHeadcountResponse>, Status> {
        let (caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::ORG_SET_HEADCOUNT)
            .await?;
        let result = self
            .set_headcount(&caller, &mut entry, request.into_inner())
            .await;
        self.state.finish(entry, result).await
    }

    async fn reinstate(
        &self,
        request: Request<proto::StatusChangeRequest>,
    ) -> Result<Response<proto::Organisation>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::ORG_REINSTATE).await?;
        let result = self
            .set_status(&caller, &mut entry, request.into_inner(), OrgStatus::Active)
            .await;
        self.state.finish(entry, result).await
    }

    type ListStream = OrgStream;

    async fn list(
        &self,
        request: Request<proto::ListOrganisationsRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::ORG_LIST).await?;
        let result = self.list(&caller, &mut entry, request.into_inner()).await;
        let orgs = self.state.finish(entry, result).await?.into_inner();
        let stream: OrgStream = Box::pin(tokio_stream::iter(orgs.into_iter().map(Ok)));
        Ok(Response::new(stream))
    }

    async fn revoke_certificate(
        &self,
        request: Request<proto::RevokeCertificateRequest>,
    ) -> Result<Response<proto::RevokeCertificateResponse>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::CERT_REVOKE).await?;
        let result = self
            .revoke_certificate(&caller, &mut entry, request.into_inner())
            .await;
        self.state.finish(entry, result).await
    }

    async fn list_revoked_certificates(
        &self,
        request: Request<proto::ListRevokedCertificatesRequest>,
    ) -> Result<Response<proto::ListRevokedCertificatesResponse>, Status> {
        let (_, mut entry) = self
            .state
            .authorize(&request, &Rpc::CERT_LIST_REVOKED)
            .await?;
        let result = self.list_revoked(&mut entry).await;
        self.state.finish(entry, result).await
    }
}
