//! The one place where failures become gRPC statuses. Messages name the field and the reason
//! and never carry an identity; storage failures are logged and answered as INTERNAL without
//! their detail.

use tonic::{Code, Status};

use crate::identity::IdentityError;
use crate::org::EnrolmentError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Cancelled(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    /// A registrar touching another's record is a refusal the caller must read, not a
    /// storage failure.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotOwner(_) => ApiError::PermissionDenied(e.to_string()),
            StoreError::OverHeadcount { .. } => ApiError::FailedPrecondition(e.to_string()),
            other => ApiError::Store(other),
        }
    }
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field with where it sits in the request (`subject.doc_number`).
    pub fn within(self, parent: &str) -> Self {
        match self {
            ApiError::InvalidArgument { field, reason } => ApiError::InvalidArgument {
                field: format!("{parent}.{field}"),
                reason,
            },
            other => other,
        }
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidArgument { .. } => Code::InvalidArgument,
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::PermissionDenied(_) => Code::PermissionDenied,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::Cancelled(_) => Code::Cancelled,
            ApiError::ResourceExhausted(_) => Code::ResourceExhausted,
            ApiError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            ApiError::Store(StoreError::WriterGone) => Code::Unavailable,
            ApiError::Store(_) => Code::Internal,
        }
    }

    /// The outcome word written to the audit log for a refused call.
    pub fn audit_outcome(&self) -> &'static str {
        match self.code() {
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::NotFound => "NOT_FOUND",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Cancelled => "CANCELLED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::Unavailable => "UNAVAILABLE",
            _ => "INTERNAL",
        }
    }

    /// What the audit log keeps of a refusal: the field for bad input (never the reason, which
    /// may quote part of what was sent), the message otherwise.
    pub fn audit_detail(&self) -> String {
        match self {
            ApiError::InvalidArgument { field, .. } => format!("field={field}"),
            ApiError::Store(_) => "storage failure".into(),
            other => other.to_string(),
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        ApiError::invalid(e.field, e.reason)
    }
}

impl From<EnrolmentError> for ApiError {
    fn from(e: EnrolmentError) -> Self {
        ApiError::invalid(e.field, e.reason)
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        if let ApiError::Store(inner) = &e {
            tracing::error!(error = %inner, "storage failure");
            return Status::new(e.code(), "storage failure; the call was not carried out");
        }
        Status::new(e.code(), e.to_string())
    }
}
