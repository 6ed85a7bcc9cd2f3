//! SQL for review cases (复查): opening one, listing them, resolving one.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use super::audit_sql::{from_i64, to_i64};
use super::writer::WriteCtx;
use crate::audit::NewEntry;
use crate::keys::SubjectKey;
use crate::roster::{ReviewReason, ReviewResolution};
use crate::store::tx::NewReview;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRow {
    pub id: u64,
    pub employer: String,
    pub reason: Option<ReviewReason>,
    pub check_id: String,
    pub alert_id: Option<u64>,
    pub opened_at: i64,
    pub resolution: Option<ReviewResolution>,
    pub resolved_at: Option<i64>,
    pub resolved_by: String,
    pub note: String,
    /// Filled for registrars only: the records whose document matched.
    pub source_refs: Vec<String>,
}

/// Whose cases a caller sees.
#[derive(Debug, Clone)]
pub enum ReviewViewer {
    Registrar,
    Employer(String),
    Bureau(String),
}

/// Inserts a case (its opening entry is the unit of work's, `units::open_review`); returns its id.
pub fn insert(conn: &Connection, case: &NewReview) -> Result<u64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO reviews (employer, subject, reason, check_id, alert_id, opened_at, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, '')",
    )?
    .execute(params![
        case.employer,
        case.subject.0.as_slice(),
        case.reason.code(),
        case.check_id,
        case.alert_id.map(to_i64),
        case.opened_at
    ])?;
    Ok(from_i64(conn.last_insert_rowid()))
}

const REVIEW_COLUMNS: &str = "r.id, r.employer, r.reason, r.check_id, r.alert_id, r.opened_at,
     r.resolution, r.resolved_at, r.resolved_by, r.note, r.subject";

fn review_from_row(row: &Row<'_>) -> Result<(ReviewRow, SubjectKey), rusqlite::Error> {
    Ok((
        ReviewRow {
            id: from_i64(row.get(0)?),
            employer: row.get(1)?,
            reason: ReviewReason::from_code(row.get(2)?),
            check_id: row.get(3)?,
            alert_id: row.get::<_, Option<i64>>(4)?.map(from_i64),
            opened_at: row.get(5)?,
            resolution: row
                .get::<_, Option<i32>>(6)?
                .and_then(ReviewResolution::from_code),
            resolved_at: row.get(7)?,
            resolved_by: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
            note: row.get(9)?,
            source_refs: Vec::new(),
        },
        SubjectKey(super::audit_sql::blob32(row, 10)?),
    ))
}

/// Cases `viewer` may see with an id above `after`, oldest first, at most `limit`.
pub fn list(
    conn: &Connection,
    viewer: &ReviewViewer,
    open_only: bool,
    after: u64,
    limit: usize,
) -> Result<Vec<ReviewRow>, StoreError> {
    let (scope, who) = match viewer {
        ReviewViewer::Registrar => ("?1 = ?1", String::new()),
        // A name mismatch's case is the registrar's alone: seeing it would tell the employer
        // that a record exists under the document it sent.
        ReviewViewer::Employer(uscc) => ("r.employer = ?1 AND r.reason != 1", uscc.clone()),
        ReviewViewer::Bureau(uscc) => (
            "r.employer IN (SELECT uscc FROM organisations WHERE supervising_bureau = ?1)
             AND r.reason != 1",
            uscc.clone(),
        ),
    };
    let open = if open_only {
        "AND r.resolution IS NULL"
    } else {
        ""
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {REVIEW_COLUMNS} FROM reviews r WHERE {scope} AND r.id > ?2 {open}
         ORDER BY r.id LIMIT ?3"
    ))?;
    let found: Vec<(ReviewRow, SubjectKey)> = stmt
        .query_map(
            params![who, to_i64(after), i64::try_from(limit).unwrap_or(i64::MAX)],
            review_from_row,
        )?
        .collect::<Result<_, _>>()?;
    let registrar = matches!(viewer, ReviewViewer::Registrar);
    found
        .into_iter()
        .map(|(mut review, subject)| {
            if registrar {
                review.source_refs = source_refs(conn, subject)?;
            }
            Ok(review)
        })
        .collect()
}

fn source_refs(conn: &Connection, subject: SubjectKey) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT source_ref FROM records WHERE subject = ?1 ORDER BY id")?;
    let refs = stmt
        .query_map([subject.0.as_slice()], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(refs)
}

pub fn get(conn: &Connection, id: u64) -> Result<Option<(ReviewRow, SubjectKey)>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {REVIEW_COLUMNS} FROM reviews r WHERE r.id = ?1"
        ))?
        .query_row([to_i64(id)], review_from_row)
        .optional()?)
}

/// Resolves an open case and audits it. `Ok(None)`: no such case; a resolved case is returned
/// unchanged with `false`.
pub fn resolve(
    ctx: &mut WriteCtx<'_>,
    id: u64,
    resolution: ReviewResolution,
    by: &str,
    note: &str,
    at_micros: i64,
    audit: NewEntry,
) -> Result<Option<(ReviewRow, bool)>, StoreError> {
    let Some((review, subject)) = get(ctx.conn, id)? else {
        return Ok(None);
    };
    if review.resolution.is_some() {
        return Ok(Some((review, false)));
    }
    ctx.conn
        .prepare_cached(
            "UPDATE reviews SET resolution = ?2, resolved_at = ?3, resolved_by = ?4, note = ?5
             WHERE id = ?1",
        )?
        .execute(params![to_i64(id), resolution.code(), at_micros, by, note])?;
    let entry = NewEntry {
        employer: review.employer.clone(),
        subject: Some(subject),
        outcome: resolution.label().into(),
        check_id: review.check_id.clone(),
        detail: format!("review={id}"),
        ..audit
    };
    ctx.audit(entry.clone())?;
    // A registrar who confirms that a mismatched name is the same person (a legal name
    // change) tells the employer and its bureau now, naming the check.
    if review.reason == Some(ReviewReason::NeedsReview) && resolution == ReviewResolution::Confirmed
    {
        super::alerts::raise_for_check(
            ctx,
            &review.employer,
            subject,
            &review.check_id,
            at_micros,
            &entry,
        )?;
    }
    Ok(get(ctx.conn, id)?.map(|(review, _)| (review, true)))
}

/// The subject and outcome of a check counted for `employer`, by its check id.
pub fn find_check(
    conn: &Connection,
    employer: &str,
    check_id: &str,
) -> Result<Option<(SubjectKey, String)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT subject, outcome FROM audit_log
             WHERE employer = ?1 AND check_id = ?2 AND subject IS NOT NULL",
        )?
        .query_row(params![employer, check_id], |row| {
            Ok((SubjectKey(super::audit_sql::blob32(row, 0)?), row.get(1)?))
        })
        .optional()?)
}
