//! Once per database: the name tags of a database from before they were bound to the document
//! (issue 16), re-tagged from what is stored. An old tag is the keyed hash of the name alone,
//! and the bound tag is derived from it and the subject, so no plaintext is needed; each
//! record's new state is logged, so that `audit verify` still explains every record.

use rusqlite::OptionalExtension;

use super::StoreError;
use super::audit_sql::blob32;
use super::state_sql::with_record_state;
use super::writer::WriteCtx;
use crate::audit::NewEntry;
use crate::keys::{NameBinder, SubjectKey};

/// Marks a database whose name tags are bound to their documents.
const BOUND_KEY: &str = "name_tags_bound";

/// Every table that stores a name tag next to its subject.
const TAGGED_TABLES: [&str; 4] = [
    "records",
    "import_staging",
    "roster_members",
    "roster_staging",
];

/// Re-tags every stored name tag and logs each record's new state under `template`, once;
/// returns how many records it re-tagged (0 once done, or on a database without records).
pub fn bind_all(
    ctx: &mut WriteCtx<'_>,
    binder: &NameBinder,
    template: &NewEntry,
) -> Result<u64, StoreError> {
    let done: Option<String> = ctx
        .conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [BOUND_KEY], |r| {
            r.get(0)
        })
        .optional()?;
    if done.is_some() {
        return Ok(0);
    }
    for table in TAGGED_TABLES {
        retag(ctx, table, binder)?;
    }
    let refs: Vec<String> = ctx
        .conn
        .prepare("SELECT source_ref FROM records ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut retagged = 0;
    for source_ref in refs {
        let entry = with_record_state(ctx.conn, &source_ref, template.clone())?;
        ctx.audit(entry)?;
        retagged += 1;
    }
    ctx.conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
        [BOUND_KEY, &retagged.to_string()],
    )?;
    Ok(retagged)
}

/// Replaces each (subject, old tag) pair of `table` with its bound tag. All pairs are read
/// before any is written, so that no row is bound twice.
fn retag(ctx: &WriteCtx<'_>, table: &str, binder: &NameBinder) -> Result<(), StoreError> {
    let pairs: Vec<([u8; 32], [u8; 32])> = ctx
        .conn
        .prepare(&format!("SELECT DISTINCT subject, name_tag FROM {table}"))?
        .query_map([], |r| Ok((blob32(r, 0)?, blob32(r, 1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = ctx.conn.prepare(&format!(
        "UPDATE {table} SET name_tag = ?3 WHERE subject = ?1 AND name_tag = ?2"
    ))?;
    for (subject, old) in pairs {
        let bound = binder.bind(&SubjectKey(subject), &old);
        update.execute([subject.as_slice(), old.as_slice(), bound.0.as_slice()])?;
    }
    Ok(())
}
