//! The gRPC services. This layer only translates between the proto and the domain, works out
//! who is calling, and enforces which roles may call what; every call, refused or not, is
//! audited before it is answered.

mod audit_service;
mod auth;
mod batch;
mod check_service;
mod convert;
mod error;
mod org_service;
mod registry_service;

use std::sync::Arc;

pub use audit_service::{AuditApi, head_to_proto as head_proto};
pub use auth::{OrgDirectory, Rpc};
pub use batch::BatchSlots;
pub use check_service::CheckApi;
pub use error::ApiError;
pub use org_service::OrgApi;
pub use registry_service::RegistryApi;

use crate::clock::Clock;
use crate::config::Limits;
use crate::keys::Keys;
use crate::store::Store;

/// What every service shares.
pub struct AppState {
    pub store: Store,
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
    pub orgs: OrgDirectory,
    pub limits: Limits,
    pub batch_slots: batch::BatchSlots,
}

impl AppState {
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    pub fn now_micros(&self) -> i64 {
        crate::clock::to_micros(self.clock.now())
    }
}
