//! SQL for rosters: staging an upload, applying it in one transaction, the current members, and
//! the last check of each member, kept on its row.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::audit_sql::blob32;
use super::writer::WriteCtx;
use crate::audit::NewEntry;
use crate::keys::{NameTag, SubjectKey};
use crate::roster::RosterChange;

/// One validated, hashed row of a roster upload. Dates are `YYYY-MM-DD`, empty when absent.
#[derive(Debug, Clone)]
pub struct StagedMember {
    pub subject: SubjectKey,
    pub name_tag: NameTag,
    pub staff_ref: String,
    pub hire_date: String,
    pub departure_date: String,
}

/// A current member, as a re-check needs it.
#[derive(Debug, Clone)]
pub struct Member {
    pub subject: SubjectKey,
    pub name_tag: NameTag,
    pub staff_ref: String,
    pub hire_date: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterCounts {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub departed: u64,
    /// Rows that could only be judged against the roster: (row, field, reason).
    pub rejected: Vec<(u64, String, String)>,
    pub current_members: u64,
    /// False when the upload was refused whole because rows were rejected.
    pub applied: bool,
}

/// What `roster show` reports besides the due members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterFacts {
    pub declared: bool,
    pub current_members: u64,
    pub departed_members: u64,
    pub replaced_at: Option<i64>,
    pub last_recheck_at: Option<i64>,
}

pub fn stage(
    conn: &Connection,
    upload: &str,
    rows: &[(u64, StagedMember)],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO roster_staging (upload, row, subject, name_tag, staff_ref, hire_date,
                                     departure_date)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (row, m) in rows {
        stmt.execute(params![
            upload,
            super::audit_sql::to_i64(*row),
            m.subject.0.as_slice(),
            m.name_tag.0.as_slice(),
            m.staff_ref,
            m.hire_date,
            m.departure_date,
        ])?;
    }
    Ok(())
}

pub fn discard(conn: &Connection, upload: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM roster_staging WHERE upload = ?1")?
        .execute([upload])?;
    Ok(())
}

/// Removes what broken uploads left behind (a crash mid-stream).
pub fn discard_all_staged(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute("DELETE FROM roster_staging", [])?)
}

/// How a staged upload is applied: the change, the day (YYYY-MM-DD) that dates the departures
/// a replacement implies, and whether valid rows apply despite rejected ones.
#[derive(Debug, Clone)]
pub struct Application {
    pub change: RosterChange,
    pub today: String,
    pub at_micros: i64,
    pub partial: bool,
    /// Rows the caller already rejected before staging (bad identities, dates, duplicates).
    pub rejected_before: u64,
    /// The most current members the roster may hold (its unit's headcount and margin).
    pub max_members: Option<u64>,
}

/// Applies a staged upload to `employer`'s roster at once and audits it with one entry made by
/// `summarise` — or, when a row is rejected and no partial apply was asked for, applies nothing
/// ([`crate::roster::applies`]) and still audits the attempt.
pub fn apply(
    ctx: &mut WriteCtx<'_>,
    upload: &str,
    employer: &str,
    how: &Application,
    summarise: impl FnOnce(&RosterCounts) -> NewEntry,
) -> Result<RosterCounts, StoreError> {
    let conn = ctx.conn;
    let (change, today, at_micros) = (how.change, how.today.as_str(), how.at_micros);
    let mut counts = RosterCounts::default();
    let mut accepted = Vec::new();
    {
        let mut staged = conn.prepare_cached(
            "SELECT row, subject, name_tag, staff_ref, hire_date, departure_date
             FROM roster_staging WHERE upload = ?1 ORDER BY row",
        )?;
        let mut rows = staged.query([upload])?;
        while let Some(row) = rows.next()? {
            let number = super::audit_sql::from_i64(row.get(0)?);
            let member = StagedMember {
                subject: SubjectKey(blob32(row, 1)?),
                name_tag: NameTag(blob32(row, 2)?),
                staff_ref: row.get(3)?,
                hire_date: row.get(4)?,
                departure_date: row.get(5)?,
            };
            match judge(conn, employer, change, &member, today)? {
                Some((field, reason)) => counts.rejected.push((number, field.into(), reason)),
                None => accepted.push(member),
            }
        }
    }
    let rejected = how.rejected_before + counts.rejected.len() as u64;
    if !crate::roster::applies(rejected, how.partial) {
        discard(conn, upload)?;
        counts.current_members = current_count(conn, employer, today)?;
        ctx.audit(summarise(&counts))?;
        return Ok(counts);
    }
    counts.applied = true;
    if change != RosterChange::Departures {
        conn.prepare_cached(
            "INSERT INTO rosters (employer, declared_at) VALUES (?1, ?2)
             ON CONFLICT (employer) DO NOTHING",
        )?
        .execute(params![employer, at_micros])?;
    }
    let mut newcomers = false;
    for member in &accepted {
        match change {
            RosterChange::Departures => {
                depart(conn, employer, member, today, at_micros)?;
                counts.departed += 1;
            }
            _ => match upsert(conn, employer, member, today, at_micros)? {
                Effect::New => {
                    counts.added += 1;
                    newcomers = true;
                }
                Effect::Added => counts.added += 1,
                Effect::Updated => counts.updated += 1,
                Effect::Unchanged => counts.unchanged += 1,
            },
        }
    }
    if change == RosterChange::Replace {
        counts.departed = conn
            .prepare_cached(
                "UPDATE roster_members SET departure_date = ?3, updated_at = ?4
                 WHERE employer = ?1 AND (departure_date IS NULL OR departure_date > ?3)
                   AND subject NOT IN (SELECT subject FROM roster_staging WHERE upload = ?2)",
            )?
            .execute(params![employer, upload, today, at_micros])? as u64;
        conn.prepare_cached("UPDATE rosters SET replaced_at = ?2 WHERE employer = ?1")?
            .execute(params![employer, at_micros])?;
    }
    if newcomers {
        fill_last_checks(conn, upload, employer)?;
    }
    discard(conn, upload)?;
    counts.current_members = current_count(conn, employer, today)?;
    // Checked inside the transaction: refused, the change leaves the roster as it was.
    if let Some(max) = how.max_members
        && counts.current_members > max
    {
        return Err(StoreError::OverHeadcount {
            members: counts.current_members,
            max,
        });
    }
    ctx.audit(summarise(&counts))?;
    Ok(counts)
}

/// Why a staged row cannot apply to the roster as it stands, if it cannot: a leaver who is not
/// a current member, or a staff reference another current member already has (alerts and
/// re-check results name people by it, so two would be indistinguishable). A replacement
/// departs everyone it does not name, so only its own rows (checked unique upstream) count.
fn judge(
    conn: &Connection,
    employer: &str,
    change: RosterChange,
    m: &StagedMember,
    today: &str,
) -> Result<Option<(&'static str, String)>, StoreError> {
    Ok(match change {
        RosterChange::Departures => (!is_current(conn, employer, &m.subject, today)?)
            .then(|| ("subject", "is not a current member of this roster".into())),
        RosterChange::Hires => conn
            .prepare_cached(
                "SELECT 1 FROM roster_members
                 WHERE employer = ?1 AND staff_ref = ?2 AND subject <> ?3
                   AND (departure_date IS NULL OR departure_date > ?4)",
            )?
            .query_row(
                params![employer, m.staff_ref, m.subject.0.as_slice(), today],
                |_| Ok(()),
            )
            .optional()?
            .map(|()| {
                (
                    "staff_ref",
                    "is already used by another current member".into(),
                )
            }),
        RosterChange::Replace => None,
    })
}

fn is_current(
    conn: &Connection,
    employer: &str,
    subject: &SubjectKey,
    today: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM roster_members WHERE employer = ?1 AND subject = ?2
               AND (departure_date IS NULL OR departure_date > ?3))",
        )?
        .query_row(params![employer, subject.0.as_slice(), today], |row| {
            row.get(0)
        })?)
}

enum Effect {
    /// Never on this roster before: its last check is still to be found in the log.
    New,
    Added,
    Updated,
    Unchanged,
}

fn upsert(
    conn: &Connection,
    employer: &str,
    m: &StagedMember,
    today: &str,
    at_micros: i64,
) -> Result<Effect, StoreError> {
    let existing = conn
        .prepare_cached(
            "SELECT name_tag, staff_ref, hire_date, departure_date FROM roster_members
             WHERE employer = ?1 AND subject = ?2",
        )?
        .query_row(params![employer, m.subject.0.as_slice()], |row| {
            Ok((
                blob32(row, 0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })
        .optional()?;
    let effect = match existing {
        None => Effect::New,
        Some((_, _, _, Some(departed))) if departed.as_str() <= today => Effect::Added,
        Some((name_tag, staff_ref, hire_date, departure))
            if name_tag == m.name_tag.0
                && staff_ref == m.staff_ref
                && hire_date == m.hire_date
                && departure.is_none() =>
        {
            return Ok(Effect::Unchanged);
        }
        Some(_) => Effect::Updated,
    };
    conn.prepare_cached(
        "INSERT INTO roster_members (employer, subject, name_tag, staff_ref, hire_date,
                                     departure_date, declared_at, updated_at, dates_from)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?6, ?6)
         ON CONFLICT (employer, subject) DO UPDATE SET
             name_tag = excluded.name_tag, staff_ref = excluded.staff_ref,
             hire_date = excluded.hire_date, departure_date = NULL,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        employer,
        m.subject.0.as_slice(),
        m.name_tag.0.as_slice(),
        m.staff_ref,
        m.hire_date,
        at_micros,
    ])?;
    Ok(effect)
}

/// Records a current member's departure; false when the subject is not a current member.
fn depart(
    conn: &Connection,
    employer: &str,
    m: &StagedMember,
    today: &str,
    at_micros: i64,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE roster_members SET departure_date = ?3, updated_at = ?5
             WHERE employer = ?1 AND subject = ?2
               AND (departure_date IS NULL OR departure_date > ?4)",
        )?
        .execute(params![
            employer,
            m.subject.0.as_slice(),
            m.departure_date,
            today,
            at_micros
        ])?;
    Ok(changed > 0)
}

fn current_count(conn: &Connection, employer: &str, today: &str) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM roster_members
             WHERE employer = ?1 AND (departure_date IS NULL OR departure_date > ?2)",
        )?
        .query_row(params![employer, today], |row| row.get(0))?;
    Ok(super::audit_sql::from_i64(count))
}

/// Current members after `after` (by subject hash, the table's order), at most `limit`.
pub fn current_members(
    conn: &Connection,
    employer: &str,
    today: &str,
    after: Option<SubjectKey>,
    limit: usize,
) -> Result<Vec<Member>, StoreError> {
    let after = after.map(|s| s.0.to_vec()).unwrap_or_default();
    let mut stmt = conn.prepare_cached(
        "SELECT subject, name_tag, staff_ref, hire_date FROM roster_members
         WHERE employer = ?1 AND subject > ?2
           AND (departure_date IS NULL OR departure_date > ?3)
         ORDER BY subject LIMIT ?4",
    )?;
    let rows = stmt
        .query_map(
            params![
                employer,
                after,
                today,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| {
                Ok(Member {
                    subject: SubjectKey(blob32(row, 0)?),
                    name_tag: NameTag(blob32(row, 1)?),
                    staff_ref: row.get(2)?,
                    hire_date: row.get(3)?,
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Whether each of `subjects` is a current member of `employer`'s roster on `today`.
pub fn are_members(
    conn: &Connection,
    employer: &str,
    today: &str,
    subjects: &[SubjectKey],
) -> Result<Vec<bool>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM roster_members
                        WHERE employer = ?1 AND subject = ?2
                          AND (departure_date IS NULL OR departure_date > ?3))",
    )?;
    subjects
        .iter()
        .map(|s| Ok(stmt.query_row(params![employer, s.0.as_slice(), today], |row| row.get(0))?))
        .collect()
}

/// Members of a staged upload who would join `employer`'s roster for the first time without
/// a PRE_HIRE check by it: after the first declaration they count against its PRE_HIRE
/// quota, so that a roster cannot launder checks of strangers. Zero before the first
/// declaration (existing staff are not held back).
pub fn unvetted_additions(
    conn: &Connection,
    upload: &str,
    employer: &str,
) -> Result<u64, StoreError> {
    let declared: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM rosters WHERE employer = ?1)")?
        .query_row([employer], |row| row.get(0))?;
    if !declared {
        return Ok(0);
    }
    let count: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM roster_staging s
             WHERE s.upload = ?1
               AND NOT EXISTS (SELECT 1 FROM roster_members m
                               WHERE m.employer = ?2 AND m.subject = s.subject)
               AND NOT EXISTS (SELECT 1 FROM audit_log a
                               WHERE a.subject = s.subject AND a.employer = ?2
                                 AND a.purpose = ?3 AND a.outcome IN (?4, ?5))",
        )?
        .query_row(
            params![
                upload,
                employer,
                crate::check::Purpose::PreHire.label(),
                crate::check::Outcome::NoRecord.label(),
                crate::check::Outcome::RecordFound.label()
            ],
            |row| row.get(0),
        )?;
    Ok(super::audit_sql::from_i64(count))
}

pub fn facts(conn: &Connection, employer: &str, today: &str) -> Result<RosterFacts, StoreError> {
    let roster = conn
        .prepare_cached("SELECT replaced_at, last_recheck_at FROM rosters WHERE employer = ?1")?
        .query_row([employer], |row| {
            Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?))
        })
        .optional()?;
    let Some((replaced_at, last_recheck_at)) = roster else {
        return Ok(RosterFacts::default());
    };
    let current_members = current_count(conn, employer, today)?;
    let all: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM roster_members WHERE employer = ?1")?
        .query_row([employer], |row| row.get(0))?;
    Ok(RosterFacts {
        declared: true,
        current_members,
        departed_members: super::audit_sql::from_i64(all).saturating_sub(current_members),
        replaced_at,
        last_recheck_at,
    })
}

pub fn set_recheck_done(conn: &Connection, employer: &str, at: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE rosters SET last_recheck_at = ?2 WHERE employer = ?1")?
        .execute(params![employer, at])?;
    Ok(())
}

/// Whether `employer` has ever declared anyone (current or departed members keep their rows).
pub fn has_members(conn: &Connection, employer: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM roster_members WHERE employer = ?1)")?
        .query_row(params![employer], |row| row.get(0))?)
}

/// Keeps the last check of a roster member on its row, in the check's transaction. A check of
/// someone on `employer`'s roster, current or departed, is one point update by the primary
/// key; of anyone else (an applicant) one B-tree descent that finds nothing and writes
/// nothing, so the bulk path pays no write amplification (see BENCHMARKS.md, "GetRoster").
pub fn note_check(conn: &Connection, entry: &NewEntry) -> Result<(), StoreError> {
    let Some(subject) = entry.subject.filter(|_| !entry.check_id.is_empty()) else {
        return Ok(());
    };
    conn.prepare_cached(
        "UPDATE roster_members SET last_checked_at = max(coalesce(last_checked_at, ?3), ?3)
         WHERE employer = ?1 AND subject = ?2",
    )?
    .execute(params![
        entry.employer,
        subject.0.as_slice(),
        entry.at_micros
    ])?;
    Ok(())
}

/// Gives members who joined the roster for the first time in upload `upload` their last check
/// by `employer` before they joined. The log has no index on the subject, so this is one pass
/// over the employer's check entries (through `audit_log_employer`), grouped inside SQLite
/// over the staged subjects only: it runs only when an upload adds someone never declared
/// before, uploads are row-limited and one at a time per organisation, and it keeps every
/// later GetRoster to the roster's own rows.
fn fill_last_checks(conn: &Connection, upload: &str, employer: &str) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "WITH last (subject, at) AS (
             SELECT subject, MAX(at) FROM audit_log
             WHERE employer = ?1 AND {}
               AND subject IN (SELECT subject FROM roster_staging WHERE upload = ?2)
             GROUP BY subject)
         UPDATE roster_members SET last_checked_at = last.at
         FROM last
         WHERE roster_members.employer = ?1 AND roster_members.subject = last.subject
           AND roster_members.last_checked_at IS NULL",
        *super::checks::ANSWERED
    ))?
    .execute(params![employer, upload])?;
    Ok(())
}

/// The time of the latest check counted for `employer` of each of its current members (on
/// `today`) that was ever checked by it, from the member rows [`note_check`] keeps: the work
/// is bounded by the roster, not by every check the employer ever made.
pub fn last_checks(
    conn: &Connection,
    employer: &str,
    today: &str,
) -> Result<HashMap<SubjectKey, i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT subject, last_checked_at FROM roster_members
         WHERE employer = ?1 AND last_checked_at IS NOT NULL
           AND (departure_date IS NULL OR departure_date > ?2)",
    )?;
    let mut rows = stmt.query(params![employer, today])?;
    let mut last: HashMap<SubjectKey, i64> = HashMap::new();
    while let Some(row) = rows.next()? {
        last.insert(SubjectKey(blob32(row, 0)?), row.get(1)?);
    }
    Ok(last)
}
