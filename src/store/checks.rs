//! Recording a check: its audit entry and, for a NEEDS_REVIEW outcome, the review case it opens,
//! in the same transaction, so that no held hire is without a case.

use super::StoreError;
use super::reviews;
use super::writer::WriteCtx;
use crate::audit::{Entry, NewEntry};
use crate::check::Outcome;
use crate::roster::ReviewReason;

/// Appends the check's entry; returns it and the review case it opened, if any.
pub fn record(ctx: &mut WriteCtx<'_>, check: NewEntry) -> Result<(Entry, Option<u64>), StoreError> {
    let opens_review = check.outcome == Outcome::NeedsReview.label();
    let entry = ctx.audit(check)?;
    let review = match (opens_review, entry.body.subject) {
        (true, Some(subject)) => Some(reviews::open(
            ctx,
            &entry.body.employer,
            subject,
            ReviewReason::NeedsReview,
            &entry.body.check_id,
            None,
            entry.body.at_micros,
            &entry.body,
        )?),
        _ => None,
    };
    Ok((entry, review))
}
