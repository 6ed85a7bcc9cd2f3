//! Who is calling, and may they: the caller's organisation comes from its certificate (the
//! USCC in its one `urn:uscc:` SAN URI, never the subject CN); its role and status come from the server's own
//! registry. Every RPC declares the roles that may call it.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use tonic::{Request, Response, Status};

use super::{ApiError, AppState};
use crate::audit::NewEntry;
use crate::org::{Caller, OrgStatus, Organisation, Role};
use crate::tls::PeerInfo;

/// An RPC and the roles allowed to call it.
#[derive(Debug)]
pub struct Rpc {
    pub name: &'static str,
    pub roles: &'static [Role],
}

impl Rpc {
    pub const CHECK: Rpc = Rpc {
        name: "CheckService.Check",
        roles: &[Role::Employer, Role::Bureau],
    };
    pub const CHECK_BATCH: Rpc = Rpc {
        name: "CheckService.CheckBatch",
        roles: &[Role::Employer, Role::Bureau],
    };
    pub const REGISTRY_IMPORT: Rpc = Rpc {
        name: "RegistryService.Import",
        roles: &[Role::Registrar],
    };
    pub const REGISTRY_REVOKE: Rpc = Rpc {
        name: "RegistryService.Revoke",
        roles: &[Role::Registrar],
    };
    pub const REGISTRY_SEAL: Rpc = Rpc {
        name: "RegistryService.Seal",
        roles: &[Role::Registrar],
    };
    pub const REGISTRY_REINSTATE: Rpc = Rpc {
        name: "RegistryService.Reinstate",
        roles: &[Role::Registrar],
    };
    pub const ORG_SET_HEADCOUNT: Rpc = Rpc {
        name: "OrganisationService.SetHeadcount",
        roles: &[Role::Operator, Role::Bureau],
    };
    pub const REGISTRY_TRANSFER: Rpc = Rpc {
        name: "RegistryService.TransferRecord",
        roles: &[Role::Operator],
    };
    pub const ROSTER_REPLACE: Rpc = Rpc {
        name: "RosterService.ReplaceRoster",
        roles: &[Role::Employer, Role::Bureau],
    };
    pub const ROSTER_HIRES: Rpc = Rpc {
        name: "RosterService.RecordHires",
        roles: &[Role::Employer, Role::Bureau],
    };
    pub const ROSTER_DEPARTURES: Rpc = Rpc {
        name: "RosterService.RecordDepartures",
        roles: &[Role::Employer, Role::Bureau],
    };
    pub const ROSTER_RECHECK: Rpc = Rpc {
        name: "RosterService.RunRecheck",
        roles: &[Role::Employer, Role::Bureau],
    };
    pub const ROSTER_GET: Rpc = Rpc {
        name: "RosterService.GetRoster",
        roles: &[Role::Employer, Role::Bureau],
    };
    pub const ALERT_WATCH: Rpc = Rpc {
        name: "AlertService.WatchAlerts",
        roles: &[Role::Employer, Role::Bureau],
    };
    pub const ALERT_LIST: Rpc = Rpc {
        name: "AlertService.ListAlerts",
        roles: &[Role::Employer, Role::Bureau],
    };
    pub const ALERT_ACKNOWLEDGE: Rpc = Rpc {
        name: "AlertService.AcknowledgeAlert",
        roles: &[Role::Employer, Role::Bureau],
    };
    pub const REVIEW_LIST: Rpc = Rpc {
        name: "ReviewService.ListReviews",
        roles: &[Role::Registrar, Role::Employer, Role::Bureau],
    };
    pub const REVIEW_RESOLVE: Rpc = Rpc {
        name: "ReviewService.ResolveReview",
        roles: &[Role::Registrar],
    };
    pub const REVIEW_DISPUTE: Rpc = Rpc {
        name: "ReviewService.DisputeCheck",
        roles: &[Role::Employer, Role::Bureau],
    };
    pub const OVERSIGHT_REPORT: Rpc = Rpc {
        name: "OversightService.ComplianceReport",
        roles: &[Role::Prosecutor, Role::Bureau],
    };
    pub const OVERSIGHT_TRAIL: Rpc = Rpc {
        name: "OversightService.ListAuditEntries",
        roles: &[Role::Prosecutor],
    };
    pub const OVERSIGHT_WHO_CHECKED: Rpc = Rpc {
        name: "OversightService.WhoChecked",
        roles: &[Role::Prosecutor],
    };
    pub const ORG_ENROLL: Rpc = Rpc {
        name: "OrganisationService.Enroll",
        roles: &[Role::Operator, Role::Bureau],
    };
    pub const ORG_SUSPEND: Rpc = Rpc {
        name: "OrganisationService.Suspend",
        roles: &[Role::Operator],
    };
    pub const ORG_REINSTATE: Rpc = Rpc {
        name: "OrganisationService.Reinstate",
        roles: &[Role::Operator],
    };
    pub const ORG_LIST: Rpc = Rpc {
        name: "OrganisationService.List",
        roles: &[Role::Operator, Role::Prosecutor, Role::Bureau],
    };
    pub const CERT_REVOKE: Rpc = Rpc {
        name: "OrganisationService.RevokeCertificate",
        roles: &[Role::Operator],
    };
    pub const CERT_LIST_REVOKED: Rpc = Rpc {
        name: "OrganisationService.ListRevokedCertificates",
        roles: &[Role::Operator],
    };
    pub const AUDIT_HEAD: Rpc = Rpc {
        name: "AuditService.Head",
        roles: &[Role::Operator, Role::Prosecutor],
    };
    pub const AUDIT_VERIFY: Rpc = Rpc {
        name: "AuditService.Verify",
        roles: &[Role::Operator, Role::Prosecutor],
    };
    /// Checkpoints and consistency proofs reveal nothing but the log's shape: anyone enrolled
    /// may follow the log.
    pub const AUDIT_CHECKPOINT: Rpc = Rpc {
        name: "AuditService.Checkpoint",
        roles: &[
            Role::Employer,
            Role::Bureau,
            Role::Registrar,
            Role::Prosecutor,
            Role::Operator,
        ],
    };
    pub const AUDIT_CONSISTENCY: Rpc = Rpc {
        name: "AuditService.ConsistencyProof",
        roles: &[
            Role::Employer,
            Role::Bureau,
            Role::Registrar,
            Role::Prosecutor,
            Role::Operator,
        ],
    };
    /// An employer's receipts for its own checks; a prosecutor's for any entry.
    pub const AUDIT_INCLUSION: Rpc = Rpc {
        name: "AuditService.InclusionProof",
        roles: &[Role::Employer, Role::Prosecutor, Role::Operator],
    };
    pub const AUDIT_COSIGN: Rpc = Rpc {
        name: "AuditService.AddCosignature",
        roles: &[Role::Operator, Role::Prosecutor],
    };

    /// Every RPC, for the access-control tests and documentation.
    pub const ALL: &'static [&'static Rpc] = &[
        &Rpc::CHECK,
        &Rpc::CHECK_BATCH,
        &Rpc::REGISTRY_IMPORT,
        &Rpc::REGISTRY_REVOKE,
        &Rpc::REGISTRY_SEAL,
        &Rpc::REGISTRY_REINSTATE,
        &Rpc::REGISTRY_TRANSFER,
        &Rpc::ORG_SET_HEADCOUNT,
        &Rpc::ROSTER_REPLACE,
        &Rpc::ROSTER_HIRES,
        &Rpc::ROSTER_DEPARTURES,
        &Rpc::ROSTER_RECHECK,
        &Rpc::ROSTER_GET,
        &Rpc::ALERT_WATCH,
        &Rpc::ALERT_LIST,
        &Rpc::ALERT_ACKNOWLEDGE,
        &Rpc::REVIEW_LIST,
        &Rpc::REVIEW_RESOLVE,
        &Rpc::REVIEW_DISPUTE,
        &Rpc::OVERSIGHT_REPORT,
        &Rpc::OVERSIGHT_TRAIL,
        &Rpc::OVERSIGHT_WHO_CHECKED,
        &Rpc::ORG_ENROLL,
        &Rpc::ORG_SUSPEND,
        &Rpc::ORG_REINSTATE,
        &Rpc::ORG_LIST,
        &Rpc::CERT_REVOKE,
        &Rpc::CERT_LIST_REVOKED,
        &Rpc::AUDIT_HEAD,
        &Rpc::AUDIT_VERIFY,
        &Rpc::AUDIT_CHECKPOINT,
        &Rpc::AUDIT_CONSISTENCY,
        &Rpc::AUDIT_INCLUSION,
        &Rpc::AUDIT_COSIGN,
    ];
}

/// The organisation registry held in memory, so that identifying a caller costs no database
/// read; every change goes to the database first and then here.
#[derive(Default)]
pub struct OrgDirectory {
    by_uscc: RwLock<HashMap<String, Organisation>>,
}

impl OrgDirectory {
    pub fn new(orgs: Vec<Organisation>) -> Self {
        Self {
            by_uscc: RwLock::new(orgs.into_iter().map(|o| (o.uscc.clone(), o)).collect()),
        }
    }

    pub fn get(&self, uscc: &str) -> Option<Organisation> {
        self.by_uscc.read().ok().and_then(|m| m.get(uscc).cloned())
    }

    pub fn put(&self, org: Organisation) {
        if let Ok(mut map) = self.by_uscc.write() {
            map.insert(org.uscc.clone(), org);
        }
    }

    /// Every organisation, ordered by USCC.
    pub fn all(&self) -> Vec<Organisation> {
        let mut orgs: Vec<Organisation> = self
            .by_uscc
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        orgs.sort_by(|a, b| a.uscc.cmp(&b.uscc));
        orgs
    }
}

/// The certificate deny list held in memory and consulted on every call, so that a revocation
/// takes effect on the next call without a database read per call; like the directory, every
/// change goes to the database first and then here.
#[derive(Default)]
pub struct RevokedCerts {
    fingerprints: RwLock<HashSet<String>>,
}

impl RevokedCerts {
    pub fn new(fingerprints: impl IntoIterator<Item = String>) -> Self {
        Self {
            fingerprints: RwLock::new(fingerprints.into_iter().collect()),
        }
    }

    /// A poisoned lock still holds every revocation made before the panic, so it is read
    /// through rather than taken to mean "nothing is revoked".
    pub fn contains(&self, fingerprint: &str) -> bool {
        self.fingerprints
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(fingerprint)
    }

    pub fn insert(&self, fingerprint: String) {
        self.fingerprints
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(fingerprint);
    }
}

/// Whether `rpc` is open to the caller's role: refused ones are audited one by one, since the
/// caller is known and accountable for each.
fn permitted(caller: &Caller, rpc: &Rpc) -> Result<(), ApiError> {
    if rpc.roles.contains(&caller.org.role) {
        return Ok(());
    }
    let allowed: Vec<&str> = rpc.roles.iter().map(|r| r.label()).collect();
    Err(ApiError::PermissionDenied(format!(
        "role {} may not call {} (allowed: {})",
        caller.org.role.label(),
        rpc.name,
        allowed.join(", ")
    )))
}

impl AppState {
    /// Establishes the caller of `rpc` and checks its role; a refusal is audited before it is
    /// returned. On success, also returns the audit entry template for the call.
    pub async fn authorize<T>(
        &self,
        request: &Request<T>,
        rpc: &Rpc,
    ) -> Result<(Caller, NewEntry), Status> {
        let mut entry = NewEntry {
            at_micros: self.now_micros(),
            action: rpc.name.to_string(),
            ..NewEntry::default()
        };
        if let Some(reached) = request.extensions().get::<super::Reached>() {
            reached.set();
        }
        let peer = request.extensions().get::<PeerInfo>();
        if let Some(cert) = peer.and_then(|p| p.cert.as_ref()) {
            entry.cert_fingerprint = cert.fingerprint_sha256.clone();
            entry.caller = cert.uscc_claim.clone().unwrap_or_default();
        }
        if !entry.caller.is_empty() {
            tracing::Span::current().record("caller", entry.caller.as_str());
        }
        let caller = match self.identify(peer) {
            Ok(caller) => caller,
            Err(e) => {
                if let Some(org) = self.orgs.get(&entry.caller) {
                    entry.role = org.role.label().to_string();
                }
                let who = match peer {
                    Some(PeerInfo {
                        cert: Some(cert), ..
                    }) => cert.fingerprint_sha256.clone(),
                    Some(PeerInfo {
                        remote: Some(remote),
                        ..
                    }) => remote.ip().to_string(),
                    _ => "-".to_string(),
                };
                if let Some(peer) = peer.filter(|p| p.cert.is_none()) {
                    peer.close_after_refusal();
                }
                return Err(self.refuse_folded(&format!("id {who} {e}"), entry, e).await);
            }
        };
        entry.role = caller.org.role.label().to_string();
        if let Err(e) = permitted(&caller, rpc) {
            return Err(self.refuse(entry, e).await);
        }
        match self
            .call_rates
            .admit(&caller.org.uscc, std::time::Instant::now())
        {
            Ok(()) => Ok((caller, entry)),
            Err(wait) => Err(self.refuse_over_rate(entry, wait).await),
        }
    }

    /// Works out who is calling from the connection's certificate and the registry, and
    /// whether they may call at all now: not revoked, not expired by the server's clock, their
    /// organisation enrolled and active. Asked again on every call and every stream message,
    /// so that a change of standing reaches connections and streams already open.
    pub fn identify(&self, peer: Option<&PeerInfo>) -> Result<Caller, ApiError> {
        let peer = peer.ok_or_else(|| ApiError::Unauthenticated("no TLS connection".into()))?;
        if let Some(problem) = &peer.cert_problem {
            return Err(ApiError::Unauthenticated(format!(
                "the client certificate could not be read: {problem}"
            )));
        }
        let cert = peer.cert.as_ref().ok_or_else(|| {
            ApiError::Unauthenticated("a client certificate is required for this service".into())
        })?;
        if self.revoked_certs.contains(&cert.fingerprint_sha256) {
            return Err(ApiError::Unauthenticated(
                "the client certificate has been revoked".into(),
            ));
        }
        if let Some(problem) = &cert.identity_problem {
            return Err(ApiError::Unauthenticated(format!(
                "the client certificate identifies no organisation: {problem}"
            )));
        }
        if cert.not_after <= self.now() {
            return Err(ApiError::Unauthenticated(
                "the client certificate has expired".into(),
            ));
        }
        let uscc = cert.uscc_claim.as_deref().ok_or_else(|| {
            ApiError::Unauthenticated("the client certificate names no organisation".into())
        })?;
        let org = self.orgs.get(uscc).ok_or_else(|| {
            ApiError::Unauthenticated(format!("organisation {uscc} is not enrolled"))
        })?;
        if org.status != OrgStatus::Active {
            return Err(ApiError::PermissionDenied(format!(
                "organisation {uscc} is suspended"
            )));
        }
        Ok(Caller {
            org,
            cert_fingerprint: cert.fingerprint_sha256.clone(),
        })
    }

    /// Counts a finished call by its outcome, timed from its audit entry (to the first message
    /// for a stream).
    fn observe(&self, entry: &NewEntry, code: &str) {
        let took = self.now_micros().saturating_sub(entry.at_micros).max(0);
        self.metrics.call(
            &entry.action,
            code,
            std::time::Duration::from_micros(took.unsigned_abs()),
        );
    }

    /// Audits a refused call (durably) and turns the refusal into its status.
    pub async fn refuse(&self, entry: NewEntry, error: ApiError) -> Status {
        let detail = error.audit_detail();
        self.refuse_noting(entry, error, detail).await
    }

    async fn refuse_noting(&self, entry: NewEntry, error: ApiError, detail: String) -> Status {
        self.observe(&entry, error.audit_outcome());
        let refusal = NewEntry {
            outcome: error.audit_outcome().to_string(),
            detail,
            ..entry
        };
        tracing::info!(
            action = %refusal.action,
            caller = %refusal.caller,
            outcome = %refusal.outcome,
            detail = %refusal.detail,
            "refused"
        );
        match self.store.append_audit(refusal).await {
            Ok(_) => error.into(),
            Err(e) => ApiError::Store(e).into(),
        }
    }

    /// Refuses a call over its organisation's rate, folded per organisation.
    async fn refuse_over_rate(&self, entry: NewEntry, wait: std::time::Duration) -> Status {
        let error = ApiError::ResourceExhausted(format!(
            "organisation {} is over its rate of {} calls per second; retry in {} ms",
            entry.caller,
            self.call_rates.rate(),
            wait.as_millis().max(1)
        ));
        let key = format!("rate {}", entry.caller);
        self.refuse_folded(&key, entry, error).await
    }

    /// Refuses a call like others of its `key` (who, and why). The first refusal of a minute
    /// is audited (durably, like any refusal) and counts the ones before it that were not: a
    /// client retrying in a tight loop, or anyone on the network without a certificate, must
    /// not turn the audit log into a log of its retries.
    pub async fn refuse_folded(&self, key: &str, entry: NewEntry, error: ApiError) -> Status {
        let Some(folded) = self.refusals.sample(key, std::time::Instant::now()) else {
            self.metrics.refusal_folded();
            self.observe(&entry, error.audit_outcome());
            return error.into();
        };
        let detail = format!(
            "{}; {folded} earlier refusals folded into this entry",
            error.audit_detail()
        );
        self.refuse_noting(entry, error, detail).await
    }

    /// Ends a call: passes a success through (the handler has audited it), audits a failure.
    pub async fn finish<R>(
        &self,
        entry: NewEntry,
        result: Result<R, ApiError>,
    ) -> Result<Response<R>, Status> {
        match result {
            Ok(reply) => {
                self.observe(&entry, "OK");
                tracing::debug!(outcome = "OK", "call answered");
                Ok(Response::new(reply))
            }
            Err(e) => Err(self.refuse(entry, e).await),
        }
    }
}
