//! SQL for the organisation registry.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use crate::clock::from_micros;
use crate::org::{Enrolment, Industry, OrgStatus, Organisation, Role};

const COLUMNS: &str = "uscc, name, role, region, industry, supervising_bureau, status, enrolled_at";

fn from_row(row: &Row<'_>) -> Result<Organisation, rusqlite::Error> {
    Ok(Organisation {
        uscc: row.get(0)?,
        name: row.get(1)?,
        role: Role::from_code(row.get(2)?).unwrap_or(Role::Employer),
        region: row.get(3)?,
        industry: Industry::from_code(row.get(4)?).unwrap_or(Industry::Other),
        supervising_bureau: row.get(5)?,
        status: OrgStatus::from_code(row.get(6)?).unwrap_or(OrgStatus::Suspended),
        enrolled_at: from_micros(row.get(7)?),
    })
}

pub fn get(conn: &Connection, uscc: &str) -> Result<Option<Organisation>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM organisations WHERE uscc = ?1"
        ))?
        .query_row([uscc], from_row)
        .optional()?)
}

pub fn all(conn: &Connection) -> Result<Vec<Organisation>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM organisations ORDER BY uscc"
    ))?;
    let orgs = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(orgs)
}

/// Creates the organisation, or updates its details keeping its status and enrolment time.
pub fn upsert(
    conn: &Connection,
    e: &Enrolment,
    at_micros: i64,
) -> Result<Organisation, StoreError> {
    conn.prepare_cached(
        "INSERT INTO organisations (uscc, name, role, region, industry, supervising_bureau, status,
                                    enrolled_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT (uscc) DO UPDATE SET
             name = excluded.name, role = excluded.role, region = excluded.region,
             industry = excluded.industry, supervising_bureau = excluded.supervising_bureau,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        e.uscc.as_str(),
        e.name,
        e.role.code(),
        e.region,
        e.industry.code(),
        e.supervising_bureau.as_ref().map(|b| b.as_str()),
        OrgStatus::Active.code(),
        at_micros,
    ])?;
    get(conn, e.uscc.as_str())?.ok_or(StoreError::NotWritten)
}

pub fn set_status(
    conn: &Connection,
    uscc: &str,
    status: OrgStatus,
    at_micros: i64,
) -> Result<Option<Organisation>, StoreError> {
    conn.prepare_cached("UPDATE organisations SET status = ?2, updated_at = ?3 WHERE uscc = ?1")?
        .execute(params![uscc, status.code(), at_micros])?;
    get(conn, uscc)
}

/// Sets the enrolled headcount; `false` when there is no such organisation.
pub fn set_headcount(conn: &Connection, uscc: &str, headcount: u32) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("UPDATE organisations SET headcount = ?2 WHERE uscc = ?1")?
        .execute(params![uscc, headcount])?
        == 1)
}

/// The enrolled headcount (0: not set, or no such organisation).
pub fn headcount(conn: &Connection, uscc: &str) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT headcount FROM organisations WHERE uscc = ?1")?
        .query_row([uscc], |row| row.get::<_, i64>(0))
        .optional()?
        .map_or(0, super::audit_sql::from_i64))
}
