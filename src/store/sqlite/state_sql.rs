//! The registry's state bound to the log. Every entry of a record change (import, correction,
//! seal, revoke, reinstate) and of an organisation change (enrolment, role, status, supervising
//! bureau) ends with the digest of the row as it stands after the change, so that `audit
//! verify` can recompute what the tables must hold from the log alone and name each record or
//! organisation whose stored state the log does not explain (a `sealed` flipped in the table).
//!
//! What a state covers is the column list of its kind, here and nowhere else: a column added
//! later (a record's owner) is added to that list.

use std::collections::HashMap;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row};

use super::StoreError;
use super::writer::WriteCtx;
use crate::audit::NewEntry;

/// The columns of a record's state: everything that decides how it answers a check, and who
/// may change it.
const RECORD_STATE: &str =
    "source_ref, subject, name_tag, category, kind, decided_on, sealed, revoked, owner";
/// The columns of an organisation's state: everything that decides what it may do, and how
/// many staff it may declare.
const ORG_STATE: &str = "uscc, name, role, region, industry, supervising_bureau, status, headcount";

/// Marks a database whose records and organisations have had their state logged once.
const BASELINE_KEY: &str = "state_baseline";

/// SHA-256 over the row's columns, each tagged with its type and length-prefixed.
fn digest(row: &Row<'_>, columns: usize) -> Result<String, rusqlite::Error> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for i in 0..columns {
        match row.get_ref(i)? {
            ValueRef::Null => ctx.update(b"n"),
            ValueRef::Integer(v) => {
                ctx.update(b"i");
                ctx.update(&v.to_be_bytes());
            }
            ValueRef::Real(v) => {
                ctx.update(b"r");
                ctx.update(&v.to_be_bytes());
            }
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
                ctx.update(b"b");
                ctx.update(&(bytes.len() as u64).to_be_bytes());
                ctx.update(bytes);
            }
        }
    }
    Ok(hex::encode(ctx.finish()))
}

fn columns(list: &str) -> usize {
    list.split(',').count()
}

/// A record is named in the log by a hash of its source reference: the reference is the
/// registrar's own text, so the log keeps it out of the one token verification parses.
fn record_key(source_ref: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, source_ref.as_bytes());
    hex::encode(&digest.as_ref()[..16])
}

fn record_suffix(conn: &Connection, source_ref: &str) -> Result<String, StoreError> {
    let state = conn
        .prepare_cached(&format!(
            "SELECT {RECORD_STATE} FROM records WHERE source_ref = ?1"
        ))?
        .query_row([source_ref], |row| digest(row, columns(RECORD_STATE)))
        .optional()?
        .unwrap_or_default();
    Ok(format!("record={} state={state}", record_key(source_ref)))
}

fn org_suffix(conn: &Connection, uscc: &str) -> Result<String, StoreError> {
    let state = conn
        .prepare_cached(&format!(
            "SELECT {ORG_STATE} FROM organisations WHERE uscc = ?1"
        ))?
        .query_row([uscc], |row| digest(row, columns(ORG_STATE)))
        .optional()?
        .unwrap_or_default();
    Ok(format!("org={uscc} state={state}"))
}

fn append(detail: &str, suffix: String) -> String {
    if detail.is_empty() {
        suffix
    } else {
        format!("{detail} {suffix}")
    }
}

/// `entry` with the state of record `source_ref`, as it now stands, at the end of its detail.
pub fn with_record_state(
    conn: &Connection,
    source_ref: &str,
    entry: NewEntry,
) -> Result<NewEntry, StoreError> {
    let detail = append(&entry.detail, record_suffix(conn, source_ref)?);
    Ok(NewEntry { detail, ..entry })
}

/// `entry` with the state of organisation `uscc`, as it now stands, at the end of its detail.
pub fn with_org_state(
    conn: &Connection,
    uscc: &str,
    entry: NewEntry,
) -> Result<NewEntry, StoreError> {
    let detail = append(&entry.detail, org_suffix(conn, uscc)?);
    Ok(NewEntry { detail, ..entry })
}

/// Once per database: an entry for each record and organisation that predates the binding
/// (a database from before it), so that from then on every row has a state in the log.
pub fn baseline(ctx: &mut WriteCtx<'_>, template: &NewEntry) -> Result<u64, StoreError> {
    let done: Option<String> = ctx
        .conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [BASELINE_KEY],
            |r| r.get(0),
        )
        .optional()?;
    if done.is_some() {
        return Ok(0);
    }
    let refs: Vec<String> = ctx
        .conn
        .prepare("SELECT source_ref FROM records ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let usccs: Vec<String> = ctx
        .conn
        .prepare("SELECT uscc FROM organisations ORDER BY uscc")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut written = 0;
    for source_ref in refs {
        let entry = with_record_state(ctx.conn, &source_ref, template.clone())?;
        ctx.audit(entry)?;
        written += 1;
    }
    for uscc in usccs {
        let entry = with_org_state(
            ctx.conn,
            &uscc,
            NewEntry {
                employer: uscc.clone(),
                ..template.clone()
            },
        )?;
        ctx.audit(entry)?;
        written += 1;
    }
    ctx.conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
        [BASELINE_KEY, &written.to_string()],
    )?;
    Ok(written)
}

/// Only entries of these actions can bind state: a free-text field of any other entry must
/// never be able to forge one.
fn binds_state(action: &str) -> bool {
    action.starts_with("RegistryService.")
        || action.starts_with("OrganisationService.")
        || action.starts_with("server.")
}

/// The (kind, key, state) an entry's detail ends with, if any.
fn bound(detail: &str) -> Option<(&str, &str, &str)> {
    let mut tokens = detail.rsplit(' ');
    let state = tokens.next()?.strip_prefix("state=")?;
    let key = tokens.next()?;
    let (kind, key) = key.split_once('=')?;
    matches!(kind, "record" | "org").then_some((kind, key, state))
}

/// A kind of state: its name in the log, its table, its columns, and its key in the log.
type Kind = (&'static str, &'static str, &'static str, fn(&str) -> String);

/// Recomputes what the records and organisations tables must hold from the log, and names
/// every row the log does not explain: a state other than the last one logged, a row the log
/// never recorded, or a row the log recorded that is gone.
pub fn unexplained(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut logged: HashMap<(String, String), String> = HashMap::new();
    {
        let mut stmt = conn.prepare("SELECT action, detail FROM audit_log ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let action: String = row.get(0)?;
            if !binds_state(&action) {
                continue;
            }
            let detail: String = row.get(1)?;
            if let Some((kind, key, state)) = bound(&detail) {
                logged.insert((kind.to_string(), key.to_string()), state.to_string());
            }
        }
    }
    let mut problems = Vec::new();
    let kinds: [Kind; 2] = [
        ("record", "records", RECORD_STATE, record_key),
        ("org", "organisations", ORG_STATE, str::to_string),
    ];
    for (kind, table, state_columns, key_of) in kinds {
        let mut stmt = conn.prepare(&format!("SELECT {state_columns} FROM {table} ORDER BY 1"))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            let state = digest(row, columns(state_columns))?;
            let label = if kind == "record" {
                format!("record {name}")
            } else {
                format!("organisation {name}")
            };
            match logged.remove(&(kind.to_string(), key_of(&name))) {
                Some(expected) if expected == state => {}
                Some(_) => problems.push(format!(
                    "{label}: its stored state is not the one the log last recorded"
                )),
                None => problems.push(format!("{label}: the log never recorded it")),
            }
        }
    }
    let mut gone: Vec<String> = logged
        .into_keys()
        .map(|(kind, key)| format!("{kind} {key}: recorded in the log but missing from the table"))
        .collect();
    gone.sort();
    problems.extend(gone);
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_state_is_read_from_the_end_of_the_detail() {
        assert_eq!(
            bound("source_ref=A B record=00ff state=abc"),
            Some(("record", "00ff", "abc"))
        );
        assert_eq!(bound("state=abc"), None);
        assert_eq!(
            bound("role=EMPLOYER org=X state=1"),
            Some(("org", "X", "1"))
        );
        assert_eq!(bound("consent_ref=x other=1 state=1"), None);
    }
}
