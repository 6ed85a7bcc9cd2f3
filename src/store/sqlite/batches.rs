//! SQL for batches of checks: opening or resuming one, recording each row's answer, and
//! replaying the answers of rows already done.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::audit_sql::{from_i64, to_i64};
use super::checks::CheckRecord;
use super::writer::WriteCtx;
use crate::audit::NewEntry;

/// A batch as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchState {
    pub id: i64,
    pub purpose: i32,
    pub scope: i32,
    pub rows_answered: u64,
    pub last_row: u64,
    pub resumed: bool,
}

/// Opens the batch `client_batch_id` of `employer`, or finds it when it exists.
pub fn open(
    ctx: &mut WriteCtx<'_>,
    employer: &str,
    client_batch_id: &str,
    caller: &str,
    purpose: i32,
    scope: i32,
    at_micros: i64,
) -> Result<BatchState, StoreError> {
    let conn = ctx.conn;
    let existing = conn
        .prepare_cached(
            "SELECT id, purpose, scope FROM batches WHERE employer = ?1 AND client_batch_id = ?2",
        )?
        .query_row(params![employer, client_batch_id], |row| {
            Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    if let Some((id, purpose, scope)) = existing {
        let (rows_answered, last_row): (i64, Option<i64>) = conn
            .prepare_cached("SELECT COUNT(*), MAX(row) FROM batch_rows WHERE batch = ?1")?
            .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        return Ok(BatchState {
            id,
            purpose,
            scope,
            rows_answered: from_i64(rows_answered),
            last_row: from_i64(last_row.unwrap_or(0)),
            resumed: true,
        });
    }
    conn.prepare_cached(
        "INSERT INTO batches (employer, client_batch_id, caller, purpose, scope, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        employer,
        client_batch_id,
        caller,
        purpose,
        scope,
        at_micros
    ])?;
    Ok(BatchState {
        id: conn.last_insert_rowid(),
        purpose,
        scope,
        rows_answered: 0,
        last_row: 0,
        resumed: false,
    })
}

/// One row's answer to record.
pub enum RowAnswer {
    Checked(Box<CheckRecord>),
    /// Refused for a reason the prosecutor must see (a check of someone not on the roster):
    /// audited with `entry`, and answered with the error.
    Denied {
        entry: Box<NewEntry>,
        field: String,
        reason: String,
    },
    Refused {
        field: String,
        reason: String,
    },
}

/// Records a chunk's answers: each check's audit entry (and hidden review case) and the row's
/// pointer to it, in one transaction. Returns, per answer, the check's audit sequence number
/// (none for a row answered with an error).
pub fn record(
    ctx: &mut WriteCtx<'_>,
    batch: i64,
    answers: Vec<(u64, RowAnswer)>,
) -> Result<Vec<Option<u64>>, StoreError> {
    let mut seqs = Vec::with_capacity(answers.len());
    for (row, answer) in answers {
        let (seq, field, reason) = match answer {
            RowAnswer::Checked(check) => {
                let entry = super::checks::record(ctx, *check)?;
                seqs.push(Some(entry.seq));
                (Some(to_i64(entry.seq)), None, None)
            }
            RowAnswer::Denied {
                entry,
                field,
                reason,
            } => {
                let entry = ctx.audit(*entry)?;
                seqs.push(None);
                (Some(to_i64(entry.seq)), Some(field), Some(reason))
            }
            RowAnswer::Refused { field, reason } => {
                seqs.push(None);
                (None, Some(field), Some(reason))
            }
        };
        ctx.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO batch_rows (batch, row, audit_seq, error_field, error_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![batch, to_i64(row), seq, field, reason])?;
    }
    Ok(seqs)
}

/// What was answered for a row, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Checked {
        /// The check's audit sequence number.
        seq: u64,
        outcome: String,
        check_id: String,
        at_micros: i64,
        registry_version: u64,
        scope: String,
        employer: String,
    },
    Refused {
        field: String,
        reason: String,
    },
}

const RECORDED_SQL: &str = "SELECT b.row, a.outcome, a.check_id, a.at, a.registry_version, a.scope,
            a.employer, b.error_field, b.error_reason, b.audit_seq
     FROM batch_rows b LEFT JOIN audit_log a ON a.seq = b.audit_seq
     WHERE b.batch = ?1";

fn recorded_from_row(row: &rusqlite::Row<'_>) -> Result<(u64, Recorded), rusqlite::Error> {
    let number = from_i64(row.get(0)?);
    let outcome: Option<String> = row.get(1)?;
    let error_field: Option<String> = row.get(7)?;
    let recorded = match (outcome, error_field) {
        (_, Some(field)) => Recorded::Refused {
            field,
            reason: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
        },
        (Some(outcome), None) => Recorded::Checked {
            seq: from_i64(row.get::<_, Option<i64>>(9)?.unwrap_or(0)),
            outcome,
            check_id: row.get(2)?,
            at_micros: row.get(3)?,
            registry_version: from_i64(row.get(4)?),
            scope: row.get(5)?,
            employer: row.get(6)?,
        },
        (None, None) => Recorded::Refused {
            field: String::new(),
            reason: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
        },
    };
    Ok((number, recorded))
}

/// Recorded answers for rows `from..=to` of a batch, in row order, at most `limit` of them.
pub fn recorded_range(
    conn: &Connection,
    batch: i64,
    from: u64,
    to: u64,
    limit: usize,
) -> Result<Vec<(u64, Recorded)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{RECORDED_SQL} AND b.row >= ?2 AND b.row <= ?3 ORDER BY b.row LIMIT ?4"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(
            params![batch, to_i64(from), to_i64(to), limit],
            recorded_from_row,
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
