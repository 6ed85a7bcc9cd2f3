//! SQL for legal supervision: a unit's facts as they stood at a moment, the audit head at that
//! moment, and streamed walks of the audit log by organisation, time, action, outcome or subject.

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::StoreError;
use super::audit_sql::{blob32, from_i64, to_i64};
use crate::audit::{Entry, Head};
use crate::check::{Outcome, Purpose};
use crate::keys::SubjectKey;
use crate::oversight::{AlertFact, CheckFact, MemberFact, UnitFacts};
use crate::registry::parse_date;
use crate::roster::{AlertAction, ReviewResolution};

/// Everything `employer` had on record at `as_of` (micros): its checks, its roster, the alerts
/// raised for it and the review cases closed in the person's favour. Later acknowledgements and
/// resolutions are left out, so that the same moment always gives the same facts.
pub fn unit_facts(conn: &Connection, employer: &str, as_of: i64) -> Result<UnitFacts, StoreError> {
    let mut facts = UnitFacts::default();
    let mut checks = conn.prepare_cached(&format!(
        "SELECT subject, at, outcome FROM audit_log
         WHERE employer = ?1 AND at <= ?2 AND {}",
        *super::checks::ANSWERED
    ))?;
    let mut rows = checks.query(params![employer, as_of])?;
    while let Some(row) = rows.next()? {
        let outcome: String = row.get(2)?;
        let Some(outcome) = Outcome::parse(&outcome) else {
            continue;
        };
        facts.checks.push(CheckFact {
            subject: SubjectKey(blob32(row, 0)?),
            at_micros: row.get(1)?,
            outcome,
        });
    }
    facts.roster_declared_at = conn
        .prepare_cached(
            "SELECT declared_at FROM rosters WHERE employer = ?1 AND declared_at <= ?2",
        )?
        .query_row(params![employer, as_of], |row| row.get(0))
        .optional()?;
    // Each member's dates as they stood at `as_of`: the current row if its dates were already
    // in effect then, else the earlier version that was.
    let mut members = conn.prepare_cached(
        "SELECT subject, hire_date, departure_date, declared_at FROM roster_members
         WHERE employer = ?1 AND declared_at <= ?2 AND dates_from <= ?2
         UNION ALL
         SELECT v.subject, v.hire_date, v.departure_date, m.declared_at
         FROM roster_member_versions v
         JOIN roster_members m ON m.employer = v.employer AND m.subject = v.subject
         WHERE v.employer = ?1 AND v.valid_to > ?2 AND v.valid_from <= ?2",
    )?;
    let mut rows = members.query(params![employer, as_of])?;
    while let Some(row) = rows.next()? {
        let hire: String = row.get(1)?;
        let departure: Option<String> = row.get(2)?;
        let Ok(hire_date) = parse_date("hire_date", &hire) else {
            continue;
        };
        facts.members.push(MemberFact {
            subject: SubjectKey(blob32(row, 0)?),
            hire_date,
            departure_date: departure.and_then(|d| parse_date("departure_date", &d).ok()),
            declared_at_micros: row.get(3)?,
        });
    }
    let mut alerts = conn.prepare_cached(
        "SELECT subject, created_at, acknowledged_at, action FROM alerts
         WHERE employer = ?1 AND created_at <= ?2",
    )?;
    let mut rows = alerts.query(params![employer, as_of])?;
    while let Some(row) = rows.next()? {
        let acknowledged: Option<i64> = row.get(2)?;
        let acknowledged = acknowledged.filter(|at| *at <= as_of);
        facts.alerts.push(AlertFact {
            subject: SubjectKey(blob32(row, 0)?),
            created_at_micros: row.get(1)?,
            acknowledged_at_micros: acknowledged,
            action: acknowledged
                .and(row.get::<_, Option<i32>>(3)?)
                .and_then(AlertAction::from_code),
        });
    }
    // PERIODIC and RE_VERIFY checks refused because the person was not on the roster: the
    // prosecutor counts them with the people checked who were never staff.
    let mut refused = conn.prepare_cached(
        "SELECT subject FROM audit_log
         WHERE employer = ?1 AND at <= ?2 AND outcome = 'FAILED_PRECONDITION'
           AND subject IS NOT NULL AND purpose IN (?3, ?4)",
    )?;
    let mut rows = refused.query(params![
        employer,
        as_of,
        Purpose::Periodic.label(),
        Purpose::ReVerify.label()
    ])?;
    while let Some(row) = rows.next()? {
        facts.refused_not_staff.push(SubjectKey(blob32(row, 0)?));
    }
    let mut cleared = conn.prepare_cached(
        "SELECT subject FROM reviews
         WHERE employer = ?1 AND resolved_at <= ?2 AND resolution IN (?3, ?4)",
    )?;
    let mut rows = cleared.query(params![
        employer,
        as_of,
        ReviewResolution::Cleared.code(),
        ReviewResolution::IdentityCorrected.code()
    ])?;
    while let Some(row) = rows.next()? {
        facts.cleared.insert(SubjectKey(blob32(row, 0)?));
    }
    Ok(facts)
}

/// The last audit entry written at or before `as_of`.
pub fn head_at(conn: &Connection, as_of: i64) -> Result<Head, StoreError> {
    let head = conn
        .prepare_cached(
            "SELECT seq, hash, at FROM audit_log WHERE at <= ?1 ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([as_of], |row| {
            Ok(Head {
                seq: from_i64(row.get(0)?),
                hash: blob32(row, 1)?,
                at_micros: row.get(2)?,
            })
        })
        .optional()?;
    Ok(head.unwrap_or(Head::EMPTY))
}

/// What a walk of the audit log keeps.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub organisation: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub subject: Option<SubjectKey>,
    pub limit: u64,
}

/// Walks the matching entries oldest first, handing each to `emit` until it returns false or
/// `limit` entries were handed over. One row in memory at a time.
pub fn walk(
    conn: &Connection,
    filter: &AuditFilter,
    mut emit: impl FnMut(Entry) -> bool,
) -> Result<(), StoreError> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(org) = &filter.organisation {
        clauses.push("(caller = ? OR employer = ?)");
        values.push(org.clone().into());
        values.push(org.clone().into());
    }
    if let Some(from) = filter.from {
        clauses.push("at >= ?");
        values.push(from.into());
    }
    if let Some(to) = filter.to {
        clauses.push("at <= ?");
        values.push(to.into());
    }
    if let Some(action) = &filter.action {
        clauses.push("action = ?");
        values.push(action.clone().into());
    }
    if let Some(outcome) = &filter.outcome {
        clauses.push("outcome = ?");
        values.push(outcome.clone().into());
    }
    if let Some(subject) = filter.subject {
        clauses.push("subject = ?");
        values.push(subject.0.to_vec().into());
    }
    let condition = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let mut stmt = conn.prepare(&format!(
        "{} {condition} ORDER BY seq LIMIT ?",
        super::audit_sql::SELECT_ENTRIES
    ))?;
    values.push(to_i64(filter.limit).into());
    let mut rows = stmt.query(params_from_iter(values))?;
    while let Some(row) = rows.next()? {
        if !emit(super::audit_sql::entry_from_row(row)?) {
            break;
        }
    }
    Ok(())
}
