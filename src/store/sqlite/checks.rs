//! Recording a check: its audit entry and, when its document matched a live record under
//! another name, the hidden review case that mismatch opens, in the same transaction — the same
//! write path as any check, so that neither the answer nor its timing tells the caller.

use std::sync::LazyLock;

use super::StoreError;
use super::writer::WriteCtx;
use crate::audit::{Entry, NewEntry};
use crate::check::{Outcome, Purpose};
use crate::store::tx::run_ready;
use crate::store::units;

/// A check to record.
#[derive(Debug, Clone)]
pub struct CheckRecord {
    pub entry: NewEntry,
    /// The document matched a live record under another name: a registrar reviews it; the
    /// caller was answered NO_RECORD and never learns of the case.
    pub name_mismatch: bool,
}

/// The audit entries that are answered checks, as a condition on `audit_log`: a check id, a
/// subject and an answer. The review and alert entries that follow a check name its id and
/// subject too (a case opened on a check even carries NEEDS_REVIEW), and are not checks.
pub static ANSWERED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "check_id <> '' AND subject IS NOT NULL AND action <> '{}' AND outcome IN ('{}', '{}', '{}')",
        units::OPEN_ACTION,
        Outcome::NoRecord.label(),
        Outcome::RecordFound.label(),
        Outcome::NeedsReview.label()
    )
});

/// Records a check in the writer's transaction (see [`units::record_check`]).
pub fn record(ctx: &mut WriteCtx<'_>, check: CheckRecord) -> Result<Entry, StoreError> {
    run_ready(units::record_check(ctx, check))
}

/// PRE_HIRE checks answered for `employer` since `since` (micros): the entries that carry an
/// answer, not the review cases some of them opened.
pub fn pre_hire_rows_since(
    conn: &rusqlite::Connection,
    employer: &str,
    since: i64,
) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM audit_log
             WHERE employer = ?1 AND at >= ?2 AND purpose = ?3 AND {}",
            *ANSWERED
        ))?
        .query_row(
            rusqlite::params![employer, since, Purpose::PreHire.label()],
            |row| row.get(0),
        )?;
    Ok(super::audit_sql::from_i64(count))
}
