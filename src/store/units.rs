//! Units of work: the business rules that read and write in one transaction, written once over
//! [`Tx`] and run by either backend's writer. Each takes owned or borrowed inputs only, so a
//! backend may run it again after a failed group commit.

use super::tx::{NewReview, Tx};
use super::{CheckRecord, ReviewRow, StoreError};
use crate::audit::{Entry, NewEntry};
use crate::check::Outcome;
use crate::roster::ReviewReason;

/// The action of the entry that opens a case.
pub const OPEN_ACTION: &str = "review.open";

/// Records a check: its entry, its count on the employer's roster and, when its document
/// matched a live record under another name, the hidden case a registrar reviews — in the
/// same transaction, so that neither the answer nor its timing tells the caller.
pub async fn record_check(tx: &mut impl Tx, check: CheckRecord) -> Result<Entry, StoreError> {
    let entry = tx.audit(check.entry).await?;
    tx.note_check(&entry.body).await?;
    if let (true, Some(subject)) = (check.name_mismatch, entry.body.subject) {
        let case = NewReview {
            employer: entry.body.employer.clone(),
            subject,
            reason: ReviewReason::NeedsReview,
            check_id: entry.body.check_id.clone(),
            alert_id: None,
            opened_at: entry.body.at_micros,
        };
        open_review(tx, case, &entry.body).await?;
    }
    Ok(entry)
}

/// Opens a case and audits the opening with a copy of `audit`; returns the case's id.
pub async fn open_review(
    tx: &mut impl Tx,
    case: NewReview,
    audit: &NewEntry,
) -> Result<u64, StoreError> {
    let id = tx.insert_review(case.clone()).await?;
    tx.audit(NewEntry {
        action: OPEN_ACTION.into(),
        employer: case.employer,
        subject: Some(case.subject),
        outcome: case.reason.label().into(),
        check_id: case.check_id,
        detail: match case.alert_id {
            Some(alert) => format!("review={id} alert={alert}"),
            None => format!("review={id}"),
        },
        ..audit.clone()
    })
    .await?;
    Ok(id)
}

/// An employer disputes one of its own checks: only a RECORD_FOUND answer can be disputed, and
/// doing so opens a DISPUTED case. `Ok(Err(outcome))` names the outcome that cannot be;
/// `Ok(Ok(None))` means the employer made no such check.
pub async fn dispute_check(
    tx: &mut impl Tx,
    employer: String,
    check_id: String,
    at_micros: i64,
    audit: NewEntry,
) -> Result<Result<Option<ReviewRow>, String>, StoreError> {
    let Some((subject, outcome)) = tx.find_check(&employer, &check_id).await? else {
        return Ok(Ok(None));
    };
    if outcome != Outcome::RecordFound.label() {
        return Ok(Err(outcome));
    }
    let case = NewReview {
        employer,
        subject,
        reason: ReviewReason::Disputed,
        check_id,
        alert_id: None,
        opened_at: at_micros,
    };
    let id = open_review(tx, case, &audit).await?;
    Ok(Ok(tx.review(id).await?))
}
