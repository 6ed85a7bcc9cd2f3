//! The gRPC services. This layer only translates between the proto and the domain, works out
//! who is calling, and enforces which roles may call what; every call, refused or not, is
//! audited before it is answered.

mod alert_service;
mod audit_service;
mod auth;
mod batch;
mod check_service;
pub mod codec;
mod convert;
mod deadline;
mod error;
mod org_service;
mod oversight_service;
mod quota;
mod registry_service;
mod review_service;
mod roster_service;
mod unserved;

use std::sync::Arc;

pub use alert_service::AlertApi;
pub use audit_service::{AuditApi, head_to_proto as head_proto};
pub use auth::{OrgDirectory, RevokedCerts, Rpc};
pub use batch::BatchSlots;
pub use check_service::CheckApi;
pub use convert::timestamp_micros;
pub use error::ApiError;
pub use org_service::OrgApi;
pub use oversight_service::OversightApi;
pub use registry_service::RegistryApi;
pub use review_service::ReviewApi;
pub use roster_service::RosterApi;
pub use unserved::{Reached, UnservedLayer};

use crate::clock::Clock;
use crate::config::{Limits, Rules};
use crate::keys::Keys;
use crate::store::Store;

/// What every service shares.
pub struct AppState {
    pub store: Store,
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
    pub orgs: OrgDirectory,
    /// Client certificates refused by fingerprint, whoever they name.
    pub revoked_certs: RevokedCerts,
    pub limits: Limits,
    pub rules: Rules,
    pub batch_slots: batch::BatchSlots,
    /// One roster upload at a time per employer roster.
    pub upload_slots: batch::BatchSlots,
    /// Set when the server begins to stop: open streams end with a status that says so.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// PRE_HIRE rows each employer used today (`rules.pre_hire_rows_per_day`).
    pub pre_hire_quota: quota::PreHireQuota,
    /// Bumped after alerts are committed; `WatchAlerts` streams wake on it and read the store.
    pub alert_bus: tokio::sync::watch::Sender<u64>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Each organisation's share of calls (`limits.calls_per_second_per_org`).
    pub call_rates: crate::throttle::RateLimiter,
    /// Folds like refusals (an organisation over its rate, a caller failing identification,
    /// requests refused before any service reads them) into one audit entry a minute.
    pub refusals: crate::throttle::AuditSampler,
    /// Signs and serves the audit log's checkpoints.
    pub log: crate::checkpoints::LogSigner,
}

impl AppState {
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    pub fn now_micros(&self) -> i64 {
        crate::clock::to_micros(self.clock.now())
    }

    /// Today as roster dates are written (YYYY-MM-DD).
    pub fn today_text(&self) -> String {
        crate::roster::date_text(crate::clock::calendar_date(self.now()))
    }

    /// Wakes the alert watchers after `raised` alerts were committed.
    pub fn alerts_raised(&self, raised: u64) {
        self.metrics.alerts_raised(raised);
        if raised > 0 {
            self.alert_bus.send_modify(|count| *count += raised);
        }
    }
}
