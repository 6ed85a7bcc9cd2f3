//! SQL for the registry of records: lookups for checks, staged imports, revoke and seal.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::audit_sql::{blob32, from_i64, to_i64};
use super::writer::WriteCtx;
use crate::audit::NewEntry;
use crate::check::Candidate;
use crate::keys::{NameTag, SubjectKey};
use crate::registry::{Category, HashedRecord, ImportEffect};

/// The current registry version and every record stored under `subject`, read in one
/// transaction so that the version names exactly the state the answer came from.
pub fn lookup(
    conn: &Connection,
    subject: &SubjectKey,
) -> Result<(u64, Vec<Candidate>), StoreError> {
    let (version, mut all) = lookup_many(conn, std::slice::from_ref(subject))?;
    Ok((version, all.pop().unwrap_or_default()))
}

/// Like [`lookup`] for many subjects, all under the same registry version.
pub fn lookup_many(
    conn: &Connection,
    subjects: &[SubjectKey],
) -> Result<(u64, Vec<Vec<Candidate>>), StoreError> {
    let tx = conn.unchecked_transaction()?;
    let version = registry_version(&tx)?;
    let mut stmt = tx.prepare_cached(
        "SELECT name_tag, category, sealed, revoked FROM records WHERE subject = ?1",
    )?;
    let mut all = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let candidates = stmt
            .query_map([subject.0.as_slice()], |row| {
                Ok(Candidate {
                    name_tag: NameTag(blob32(row, 0)?),
                    category: Category::from_code(row.get(1)?).unwrap_or(Category::Sexual),
                    sealed: row.get(2)?,
                    revoked: row.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        all.push(candidates);
    }
    drop(stmt);
    tx.finish()?;
    Ok((version, all))
}

pub fn registry_version(conn: &Connection) -> Result<u64, StoreError> {
    Ok(from_i64(
        conn.prepare_cached("SELECT version FROM registry_state WHERE id = 1")?
            .query_row([], |row| row.get(0))?,
    ))
}

fn unbump_version(conn: &Connection) -> Result<u64, StoreError> {
    conn.prepare_cached("UPDATE registry_state SET version = version - 1 WHERE id = 1")?
        .execute([])?;
    registry_version(conn)
}

fn bump_version(conn: &Connection) -> Result<u64, StoreError> {
    conn.prepare_cached("UPDATE registry_state SET version = version + 1 WHERE id = 1")?
        .execute([])?;
    registry_version(conn)
}

/// Parks a chunk of an import until the import finishes; nothing in it is visible to checks.
/// Each row comes with its staging key (see [`super::ImportOrder`]), the order of publication.
pub fn stage(
    conn: &Connection,
    import_id: &str,
    rows: &[(u64, HashedRecord)],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO import_staging
             (import_id, row, source_ref, subject, name_tag, category, kind, decided_on, sealed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (row, record) in rows {
        stmt.execute(params![
            import_id,
            to_i64(*row),
            record.source_ref,
            record.subject.0.as_slice(),
            record.name_tag.0.as_slice(),
            record.category.code(),
            record.kind.code(),
            record.decided_on.to_string(),
            record.sealed,
        ])?;
    }
    Ok(())
}

pub fn discard(conn: &Connection, import_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM import_staging WHERE import_id = ?1")?
        .execute([import_id])?;
    Ok(())
}

/// Removes what broken imports left behind (a crash mid-stream).
pub fn discard_all_staged(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute("DELETE FROM import_staging", [])?)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub registry_version: u64,
    /// Alerts raised because a record now applies to someone on a current roster.
    pub alerts_raised: u64,
}

/// Makes a staged import visible at once: each record is created or updated by its source
/// reference and audited, under one new registry version. `audit` is the template for the
/// per-record entries; `summarise` makes the closing entry from the counts.
pub fn finish_import(
    ctx: &mut WriteCtx<'_>,
    import_id: &str,
    owner: &str,
    at_micros: i64,
    audit: &NewEntry,
    summarise: impl FnOnce(&ImportCounts) -> NewEntry,
) -> Result<ImportCounts, StoreError> {
    let version = bump_version(ctx.conn)?;
    let mut counts = ImportCounts {
        registry_version: version,
        ..ImportCounts::default()
    };
    // Walk the staged rows with a cursor while writing records: SQLite allows it on one
    // connection, and it keeps a million-row import out of memory. Key order is the order
    // `ImportOrder` chose: by slice of the subject index, a repeated reference last.
    let conn = ctx.conn;
    let mut stmt = conn.prepare_cached(
        "SELECT source_ref, subject, name_tag, category, kind, decided_on, sealed
         FROM import_staging WHERE import_id = ?1 ORDER BY row",
    )?;
    let mut rows = stmt.query([import_id])?;
    let mut applies_anew = Vec::new();
    // Alerts need someone on a roster: with no roster at all, no record needs the probe.
    let any_roster = any_roster(conn)?;
    while let Some(row) = rows.next()? {
        let source_ref: String = row.get(0)?;
        let record = HashedRowBytes {
            subject: hash_column(row, 1)?,
            name_tag: hash_column(row, 2)?,
            category: row.get(3)?,
            kind: row.get(4)?,
            decided_on: row.get(5)?,
            sealed: row.get(6)?,
            revoked: false,
        };
        let (effect, newly_applies) =
            upsert(conn, &source_ref, &record, owner, version, at_micros)?;
        if newly_applies && any_roster && ever_on_a_roster(conn, &record.subject)? {
            applies_anew.push((SubjectKey(record.subject), NameTag(record.name_tag)));
        }
        match effect {
            ImportEffect::Created => counts.created += 1,
            ImportEffect::Updated => counts.updated += 1,
            ImportEffect::Unchanged => {
                counts.unchanged += 1;
                continue;
            }
        }
        let entry = NewEntry {
            subject: Some(SubjectKey(record.subject)),
            outcome: if effect == ImportEffect::Created {
                "CREATED"
            } else {
                "UPDATED"
            }
            .into(),
            registry_version: version,
            detail: format!("source_ref={source_ref}"),
            ..audit.clone()
        };
        ctx.audit(super::state_sql::with_record_state(
            conn,
            &source_ref,
            entry,
        )?)?;
    }
    drop(rows);
    drop(stmt);
    discard(ctx.conn, import_id)?;
    let today = crate::roster::date_text(crate::clock::calendar_date(crate::clock::from_micros(
        at_micros,
    )));
    if counts.created == 0 && counts.updated == 0 {
        // Nothing changed, so no record carries the new version: the registry stays at the
        // version its answers already name.
        counts.registry_version = unbump_version(ctx.conn)?;
    }
    for (subject, name_tag) in applies_anew {
        let raised = super::alerts::raise_for_subject(
            ctx, subject, name_tag, version, &today, at_micros, audit,
        )?;
        counts.alerts_raised += raised.len() as u64;
    }
    ctx.audit(summarise(&counts))?;
    Ok(counts)
}

/// Whether anyone was ever declared with `subject`. Only such subjects can raise alerts, and
/// this one index probe keeps the import from running the alert query (which SQLite prepares
/// anew on every run) for each record, and from holding a list as long as the import.
fn ever_on_a_roster(conn: &Connection, subject: &[u8; 32]) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM roster_members WHERE subject = ?1)")?
        .query_row([subject.as_slice()], |row| row.get(0))?)
}

fn any_roster(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM roster_members)")?
        .query_row([], |row| row.get(0))?)
}

/// A 32-byte hash column read in place (as [`blob32`] does, without copying it to the heap
/// first: publishing reads two per record); a wrong length reads as all-ones.
fn hash_column(row: &rusqlite::Row<'_>, index: usize) -> Result<[u8; 32], rusqlite::Error> {
    Ok(row
        .get_ref(index)?
        .as_blob()
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .unwrap_or([0xff; 32]))
}

struct HashedRowBytes {
    subject: [u8; 32],
    name_tag: [u8; 32],
    category: i32,
    kind: i32,
    decided_on: String,
    sealed: bool,
    /// Read from the table; an import never sets it.
    revoked: bool,
}

/// Creates or updates a record; also says whether it now applies to its subject where it did
/// not before (new, unsealed, or moved to another subject), which raises alerts. The insert is
/// tried first: most imported records are new, and a new one then costs no separate lookup.
fn upsert(
    conn: &Connection,
    source_ref: &str,
    r: &HashedRowBytes,
    owner: &str,
    version: u64,
    at_micros: i64,
) -> Result<(ImportEffect, bool), StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO records (source_ref, subject, name_tag, category, kind, decided_on,
                                  sealed, revoked, version, updated_at, owner)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10)
             ON CONFLICT (source_ref) DO NOTHING",
        )?
        .execute(params![
            source_ref,
            r.subject.as_slice(),
            r.name_tag.as_slice(),
            r.category,
            r.kind,
            r.decided_on,
            r.sealed,
            to_i64(version),
            at_micros,
            owner,
        ])?;
    if inserted == 1 {
        return Ok((ImportEffect::Created, !r.sealed));
    }
    let old = conn
        .prepare_cached(
            "SELECT subject, name_tag, category, kind, decided_on, sealed, revoked, owner
             FROM records WHERE source_ref = ?1",
        )?
        .query_row([source_ref], |row| {
            Ok((
                HashedRowBytes {
                    subject: blob32(row, 0)?,
                    name_tag: blob32(row, 1)?,
                    category: row.get(2)?,
                    kind: row.get(3)?,
                    decided_on: row.get(4)?,
                    sealed: row.get(5)?,
                    revoked: row.get(6)?,
                },
                row.get::<_, Option<String>>(7)?,
            ))
        })?;
    let (old, old_owner) = old;
    if old_owner.as_deref() != Some(owner) {
        return Err(StoreError::NotOwner(source_ref.to_string()));
    }
    if old.subject == r.subject
        && old.name_tag == r.name_tag
        && old.category == r.category
        && old.kind == r.kind
        && old.decided_on == r.decided_on
        && old.sealed == r.sealed
    {
        return Ok((ImportEffect::Unchanged, false));
    }
    conn.prepare_cached(
        "UPDATE records SET subject = ?2, name_tag = ?3, category = ?4, kind = ?5,
                            decided_on = ?6, sealed = ?7, version = ?8, updated_at = ?9
         WHERE source_ref = ?1",
    )?
    .execute(params![
        source_ref,
        r.subject.as_slice(),
        r.name_tag.as_slice(),
        r.category,
        r.kind,
        r.decided_on,
        r.sealed,
        to_i64(version),
        at_micros,
    ])?;
    let newly_applies = !r.sealed && !old.revoked && (old.sealed || old.subject != r.subject);
    Ok((ImportEffect::Updated, newly_applies))
}

/// A flag a registrar sets on a record by its source reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFlag {
    Revoked,
    Sealed,
    /// Lifts a revocation.
    Reinstated,
}

impl RecordFlag {
    /// The column the flag sets and the value it sets it to.
    fn target(self) -> (&'static str, bool) {
        match self {
            RecordFlag::Revoked => ("revoked", true),
            RecordFlag::Sealed => ("sealed", true),
            RecordFlag::Reinstated => ("revoked", false),
        }
    }
}

/// What setting a flag did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagChange {
    pub changed: bool,
    pub registry_version: u64,
    pub alerts_raised: u64,
}

/// Sets `flag` on the record; `None` when there is no such record. The registry version moves
/// only when something changed; the call is audited either way.
pub fn set_flag(
    ctx: &mut WriteCtx<'_>,
    source_ref: &str,
    flag: RecordFlag,
    owner: &str,
    at_micros: i64,
    audit: NewEntry,
) -> Result<Option<FlagChange>, StoreError> {
    let (column, value) = flag.target();
    let current = ctx
        .conn
        .prepare_cached(&format!(
            "SELECT {column}, subject, sealed, name_tag, owner FROM records WHERE source_ref = ?1"
        ))?
        .query_row([source_ref], |row| {
            Ok((
                row.get::<_, bool>(0)?,
                blob32(row, 1)?,
                row.get::<_, bool>(2)?,
                NameTag(blob32(row, 3)?),
                row.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?;
    let Some((was, subject, sealed, name_tag, current_owner)) = current else {
        return Ok(None);
    };
    if current_owner.as_deref() != Some(owner) {
        return Err(StoreError::NotOwner(source_ref.to_string()));
    }
    let subject = SubjectKey(subject);
    let changed = was != value;
    let version = if changed {
        let version = bump_version(ctx.conn)?;
        ctx.conn
            .prepare_cached(&format!(
                "UPDATE records SET {column} = ?4, version = ?2, updated_at = ?3 WHERE source_ref = ?1"
            ))?
            .execute(params![source_ref, to_i64(version), at_micros, value])?;
        version
    } else {
        registry_version(ctx.conn)?
    };
    let entry = NewEntry {
        subject: Some(subject),
        outcome: if changed { "CHANGED" } else { "UNCHANGED" }.into(),
        registry_version: version,
        ..audit.clone()
    };
    ctx.audit(super::state_sql::with_record_state(
        ctx.conn, source_ref, entry,
    )?)?;
    let alerts_raised = if changed && flag == RecordFlag::Reinstated && !sealed {
        let today = crate::roster::date_text(crate::clock::calendar_date(
            crate::clock::from_micros(at_micros),
        ));
        super::alerts::raise_for_subject(
            ctx, subject, name_tag, version, &today, at_micros, &audit,
        )?
        .len() as u64
    } else {
        0
    };
    Ok(Some(FlagChange {
        changed,
        registry_version: version,
        alerts_raised,
    }))
}

/// Gives the record `source_ref` to `new_owner`, audited with the old owner; returns the
/// registry version, or `None` when there is no such record.
pub fn transfer(
    ctx: &mut WriteCtx<'_>,
    source_ref: &str,
    new_owner: &str,
    audit: NewEntry,
) -> Result<Option<u64>, StoreError> {
    let current = ctx
        .conn
        .prepare_cached("SELECT subject, owner FROM records WHERE source_ref = ?1")?
        .query_row([source_ref], |row| {
            Ok((blob32(row, 0)?, row.get::<_, Option<String>>(1)?))
        })
        .optional()?;
    let Some((subject, old_owner)) = current else {
        return Ok(None);
    };
    ctx.conn
        .prepare_cached("UPDATE records SET owner = ?2 WHERE source_ref = ?1")?
        .execute(params![source_ref, new_owner])?;
    let version = registry_version(ctx.conn)?;
    let entry = NewEntry {
        subject: Some(SubjectKey(subject)),
        outcome: "TRANSFERRED".into(),
        registry_version: version,
        detail: format!(
            "{} from={} to={new_owner}",
            audit.detail,
            old_owner.unwrap_or_default()
        ),
        ..audit
    };
    ctx.audit(super::state_sql::with_record_state(
        ctx.conn, source_ref, entry,
    )?)?;
    Ok(Some(version))
}
