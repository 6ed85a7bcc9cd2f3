//! SQL for alerts: raising them when a record starts to apply to someone on a current roster,
//! listing them for the employer or its bureau, and acknowledging them.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use super::audit_sql::{blob32, from_i64, to_i64};
use super::writer::WriteCtx;
use crate::audit::NewEntry;
use crate::keys::{NameTag, SubjectKey};
use crate::roster::{AlertAction, ReviewReason};
use crate::store::tx::{NewReview, run_ready};
use crate::store::units;

/// An alert as stored, without its subject (which never leaves the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub id: u64,
    pub employer: String,
    pub staff_ref: String,
    pub created_at: i64,
    pub registry_version: u64,
    pub action: Option<AlertAction>,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: String,
    pub review_id: Option<u64>,
    /// The check a registrar's confirmation of a name mismatch turned into this alert.
    pub check_id: String,
}

/// Whose alerts a caller sees.
#[derive(Debug, Clone)]
pub enum AlertViewer {
    Employer(String),
    Bureau(String),
}

/// Raises one alert per employer that has `subject` under the record's name (`name_tag`) on
/// its current roster on `today` (YYYY-MM-DD), each audited with a copy of `audit`. A member
/// with the document but another name gets no alert — else a roster of arbitrary documents
/// would monitor strangers — but a hidden registrar review, as a mismatched check does.
/// Returns the new alerts' ids.
pub fn raise_for_subject(
    ctx: &mut WriteCtx<'_>,
    subject: SubjectKey,
    name_tag: NameTag,
    registry_version: u64,
    today: &str,
    at_micros: i64,
    audit: &NewEntry,
) -> Result<Vec<u64>, StoreError> {
    let members: Vec<(String, String, Option<String>, [u8; 32])> = ctx
        .conn
        .prepare_cached(
            "SELECT m.employer, m.staff_ref, o.supervising_bureau, m.name_tag
             FROM roster_members m LEFT JOIN organisations o ON o.uscc = m.employer
             WHERE m.subject = ?1 AND (m.departure_date IS NULL OR m.departure_date > ?2)",
        )?
        .query_map(params![subject.0.as_slice(), today], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, blob32(row, 3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut raised = Vec::with_capacity(members.len());
    for (employer, staff_ref, bureau, member_tag) in members {
        if NameTag(member_tag) != name_tag {
            let case = NewReview {
                employer: employer.clone(),
                subject,
                reason: ReviewReason::NeedsReview,
                check_id: String::new(),
                alert_id: None,
                opened_at: at_micros,
            };
            run_ready(units::open_review(ctx, case, audit))?;
            continue;
        }
        raised.push(insert(
            ctx,
            &employer,
            bureau,
            subject,
            &staff_ref,
            "",
            registry_version,
            at_micros,
            audit,
        )?);
    }
    Ok(raised)
}

/// Raises the alert a registrar's confirmation of a mismatched check owes `employer` (and its
/// bureau), naming the check; the staff reference is the member's when the person is on its
/// roster.
pub fn raise_for_check(
    ctx: &mut WriteCtx<'_>,
    employer: &str,
    subject: SubjectKey,
    check_id: &str,
    at_micros: i64,
    audit: &NewEntry,
) -> Result<u64, StoreError> {
    let bureau: Option<String> = ctx
        .conn
        .prepare_cached("SELECT supervising_bureau FROM organisations WHERE uscc = ?1")?
        .query_row([employer], |row| row.get(0))
        .optional()?
        .flatten();
    let staff_ref: String = ctx
        .conn
        .prepare_cached(
            "SELECT staff_ref FROM roster_members WHERE employer = ?1 AND subject = ?2",
        )?
        .query_row(params![employer, subject.0.as_slice()], |row| row.get(0))
        .optional()?
        .unwrap_or_default();
    let version = super::records::registry_version(ctx.conn)?;
    insert(
        ctx, employer, bureau, subject, &staff_ref, check_id, version, at_micros, audit,
    )
}

#[allow(clippy::too_many_arguments)]
fn insert(
    ctx: &mut WriteCtx<'_>,
    employer: &str,
    bureau: Option<String>,
    subject: SubjectKey,
    staff_ref: &str,
    check_id: &str,
    registry_version: u64,
    at_micros: i64,
    audit: &NewEntry,
) -> Result<u64, StoreError> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO alerts (employer, bureau, subject, staff_ref, created_at,
                                 registry_version, check_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            employer,
            bureau,
            subject.0.as_slice(),
            staff_ref,
            at_micros,
            to_i64(registry_version),
            check_id
        ])?;
    let id = from_i64(ctx.conn.last_insert_rowid());
    ctx.audit(NewEntry {
        action: "alert.raise".into(),
        employer: employer.to_string(),
        subject: Some(subject),
        outcome: "RAISED".into(),
        registry_version,
        detail: if check_id.is_empty() {
            format!(
                "alert={id} staff_ref={staff_ref} bureau={}",
                bureau.unwrap_or_default()
            )
        } else {
            format!(
                "alert={id} staff_ref={staff_ref} bureau={} check={check_id}",
                bureau.unwrap_or_default()
            )
        },
        ..audit.clone()
    })?;
    Ok(id)
}

const ALERT_COLUMNS: &str = "id, employer, staff_ref, created_at, registry_version, action,
     acknowledged_at, acknowledged_by, review_id, check_id";

fn alert_from_row(row: &Row<'_>) -> Result<AlertRow, rusqlite::Error> {
    Ok(AlertRow {
        id: from_i64(row.get(0)?),
        employer: row.get(1)?,
        staff_ref: row.get(2)?,
        created_at: row.get(3)?,
        registry_version: from_i64(row.get(4)?),
        action: row
            .get::<_, Option<i32>>(5)?
            .and_then(AlertAction::from_code),
        acknowledged_at: row.get(6)?,
        acknowledged_by: row.get::<_, Option<String>>(7)?.unwrap_or_default(),
        review_id: row.get::<_, Option<i64>>(8)?.map(from_i64),
        check_id: row.get(9)?,
    })
}

/// Alerts `viewer` may see with an id above `after`, oldest first, at most `limit`.
pub fn list(
    conn: &Connection,
    viewer: &AlertViewer,
    after: u64,
    unacknowledged_only: bool,
    limit: usize,
) -> Result<Vec<AlertRow>, StoreError> {
    let (column, uscc) = match viewer {
        AlertViewer::Employer(uscc) => ("employer", uscc),
        AlertViewer::Bureau(uscc) => ("bureau", uscc),
    };
    let pending = if unacknowledged_only {
        "AND action IS NULL"
    } else {
        ""
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE {column} = ?1 AND id > ?2 {pending}
         ORDER BY id LIMIT ?3"
    ))?;
    let rows = stmt
        .query_map(
            params![
                uscc,
                to_i64(after),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            alert_from_row,
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn get(conn: &Connection, id: u64) -> Result<Option<(AlertRow, SubjectKey)>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS}, subject FROM alerts WHERE id = ?1"
        ))?
        .query_row([to_i64(id)], |row| {
            Ok((
                alert_from_row(row)?,
                SubjectKey(super::audit_sql::blob32(row, 10)?),
            ))
        })
        .optional()?)
}

/// Records the action taken on an alert (a DISPUTED one opens a review case) and audits it.
/// An alert already acknowledged keeps its first action: `Ok(None)` says so.
pub fn acknowledge(
    ctx: &mut WriteCtx<'_>,
    id: u64,
    action: AlertAction,
    by: &str,
    at_micros: i64,
    audit: NewEntry,
) -> Result<Option<AlertRow>, StoreError> {
    let Some((alert, subject)) = get(ctx.conn, id)? else {
        return Ok(None);
    };
    if alert.action.is_some() {
        return Ok(None);
    }
    let review_id = if action == AlertAction::Disputed {
        let case = NewReview {
            employer: alert.employer.clone(),
            subject,
            reason: ReviewReason::Disputed,
            check_id: String::new(),
            alert_id: Some(id),
            opened_at: at_micros,
        };
        Some(run_ready(units::open_review(ctx, case, &audit))?)
    } else {
        None
    };
    ctx.conn
        .prepare_cached(
            "UPDATE alerts SET action = ?2, acknowledged_at = ?3, acknowledged_by = ?4,
                               review_id = ?5
             WHERE id = ?1",
        )?
        .execute(params![
            to_i64(id),
            action.code(),
            at_micros,
            by,
            review_id.map(to_i64)
        ])?;
    ctx.audit(NewEntry {
        employer: alert.employer.clone(),
        subject: Some(subject),
        outcome: action.label().into(),
        ..audit
    })?;
    Ok(get(ctx.conn, id)?.map(|(alert, _)| alert))
}

/// The newest alert id; where a new watcher's wait starts.
pub fn latest_id(conn: &Connection) -> Result<u64, StoreError> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT MAX(id) FROM alerts")?
        .query_row([], |row| row.get(0))?;
    Ok(id.map(from_i64).unwrap_or(0))
}
