//! The transaction interface that units of work are written against. A rule that reads and
//! writes in one transaction (a check opening its hidden review, a dispute) is written once,
//! in `units`, over [`Tx`]; each backend supplies only these primitives, so the rule cannot
//! drift between SQLite and PostgreSQL.
//!
//! The methods return futures so that PostgreSQL's can await the database; SQLite's are always
//! ready, and its writer thread runs a unit with [`run_ready`] without an async runtime.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::{ReviewRow, StoreError};
use crate::audit::{Entry, NewEntry};
use crate::keys::SubjectKey;
use crate::roster::ReviewReason;

/// A review case to insert.
#[derive(Debug, Clone)]
pub struct NewReview {
    pub employer: String,
    pub subject: SubjectKey,
    pub reason: ReviewReason,
    /// Empty when the case was not opened on a check (an alert's name mismatch or dispute).
    pub check_id: String,
    pub alert_id: Option<u64>,
    pub opened_at: i64,
}

/// What a unit of work may do inside its transaction.
pub trait Tx {
    /// Appends an audit entry (and the Merkle nodes it completes).
    fn audit(&mut self, entry: NewEntry) -> impl Future<Output = Result<Entry, StoreError>>;

    /// Counts an answered check on its employer's roster, moving the member's last check.
    fn note_check(&mut self, check: &NewEntry) -> impl Future<Output = Result<(), StoreError>>;

    /// Inserts a review case; returns its id, which follows commit order.
    fn insert_review(&mut self, case: NewReview) -> impl Future<Output = Result<u64, StoreError>>;

    /// The case `id`, as a registrar sees it.
    fn review(&mut self, id: u64) -> impl Future<Output = Result<Option<ReviewRow>, StoreError>>;

    /// The subject and outcome label of `employer`'s own check `check_id`, if it made one.
    fn find_check(
        &mut self,
        employer: &str,
        check_id: &str,
    ) -> impl Future<Output = Result<Option<(SubjectKey, String)>, StoreError>>;
}

/// Runs a unit of work whose every await is already ready (the SQLite transaction's): one poll
/// finishes it. A unit that waited would be a bug in a backend, and fails its job.
pub fn run_ready<T>(unit: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    match pin!(unit).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::CommitFailed(
            "a unit of work waited inside the SQLite writer".into(),
        )),
    }
}
