//! SQL for the audit log: append, head, and a streaming walk for verification.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use crate::audit::{Entry, GENESIS, Head, NewEntry, Verification, Verifier};
use crate::keys::SubjectKey;

pub fn insert(conn: &Connection, entry: &Entry) -> Result<(), StoreError> {
    let b = &entry.body;
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at, caller, cert_fingerprint, role, action, employer, subject,
             purpose, scope, outcome, check_id, registry_version, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        to_i64(entry.seq),
        b.at_micros,
        b.caller,
        b.cert_fingerprint,
        b.role,
        b.action,
        b.employer,
        b.subject.as_ref().map(|s| s.0.as_slice()),
        b.purpose,
        b.scope,
        b.outcome,
        b.check_id,
        to_i64(b.registry_version),
        b.detail,
        entry.prev_hash.as_slice(),
        entry.hash.as_slice(),
    ])?;
    Ok(())
}

pub fn head(conn: &Connection) -> Result<Head, StoreError> {
    let head = conn
        .prepare_cached("SELECT seq, hash, at FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| {
            Ok(Head {
                seq: from_i64(row.get(0)?),
                hash: blob32(row, 1)?,
                at_micros: row.get(2)?,
            })
        })
        .optional()?;
    Ok(head.unwrap_or(Head::EMPTY))
}

/// Recomputes the chain from `from` to `to` (inclusive; 0 means the start / the head), one row
/// at a time, trusting the stored hash of the entry before `from`.
pub fn verify(conn: &Connection, from: u64, to: u64) -> Result<Verification, StoreError> {
    let from = from.max(1);
    let to = if to == 0 { i64::MAX } else { to_i64(to) };
    let start_prev = if from == 1 {
        GENESIS
    } else {
        conn.query_row(
            "SELECT hash FROM audit_log WHERE seq = ?1",
            [to_i64(from - 1)],
            |row| blob32(row, 0),
        )
        .optional()?
        .ok_or(StoreError::NoSuchEntry(from - 1))?
    };
    let mut verifier = Verifier::new(from, start_prev);
    let mut stmt = conn.prepare(&format!(
        "{SELECT_ENTRIES} WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq"
    ))?;
    let mut rows = stmt.query(params![to_i64(from), to])?;
    while let Some(row) = rows.next()? {
        if !verifier.feed(&entry_from_row(row)?) {
            break;
        }
    }
    Ok(verifier.finish())
}

/// Every column of an entry, in the order `entry_from_row` reads them.
pub const SELECT_ENTRIES: &str =
    "SELECT seq, at, caller, cert_fingerprint, role, action, employer, subject, purpose, scope,
            outcome, check_id, registry_version, detail, prev_hash, hash
     FROM audit_log";

pub fn entry_from_row(row: &Row<'_>) -> Result<Entry, rusqlite::Error> {
    let subject: Option<Vec<u8>> = row.get(7)?;
    // A subject of the wrong length cannot have been written by the writer; keep it visible to
    // verification as a content mismatch rather than failing the read.
    let subject = subject.map(|bytes| SubjectKey(hash32(&bytes)));
    Ok(Entry {
        seq: from_i64(row.get(0)?),
        body: NewEntry {
            at_micros: row.get(1)?,
            caller: row.get(2)?,
            cert_fingerprint: row.get(3)?,
            role: row.get(4)?,
            action: row.get(5)?,
            employer: row.get(6)?,
            subject,
            purpose: row.get(8)?,
            scope: row.get(9)?,
            outcome: row.get(10)?,
            check_id: row.get(11)?,
            registry_version: from_i64(row.get(12)?),
            detail: row.get(13)?,
        },
        prev_hash: blob32(row, 14)?,
        hash: blob32(row, 15)?,
    })
}

/// A 32-byte hash column; a wrong length reads as all-ones so that verification reports it.
pub fn blob32(row: &Row<'_>, index: usize) -> Result<[u8; 32], rusqlite::Error> {
    let bytes: Vec<u8> = row.get(index)?;
    Ok(hash32(&bytes))
}

/// A stored 32-byte value (hash or subject key) on any backend: the writer never stores
/// another length, so one reads as all-ones and verification reports the entry as altered
/// instead of the read failing.
pub fn hash32(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().unwrap_or([0xff; 32])
}

pub fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub fn from_i64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
