//! SQL for the Merkle tree over the audit log and its signed checkpoints: the nodes the writer
//! appends, proofs read from them, building the tree of a database that predates it, and the
//! checkpoints and cosignatures kept for witnesses.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::audit_sql::{SELECT_ENTRIES, entry_from_row, from_i64, to_i64};
use crate::audit::merkle::{Frontier, Hash, NodeId, Nodes, leaf_hash};
use crate::audit::{Entry, Head, canonical};

pub fn insert_node(conn: &Connection, id: NodeId, hash: &Hash) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO audit_tree (level, idx, hash) VALUES (?1, ?2, ?3)")?
        .execute(params![id.level, to_i64(id.index), hash.as_slice()])?;
    Ok(())
}

pub fn node(conn: &Connection, id: NodeId) -> Result<Hash, StoreError> {
    conn.prepare_cached("SELECT hash FROM audit_tree WHERE level = ?1 AND idx = ?2")?
        .query_row(params![id.level, to_i64(id.index)], |row| {
            super::audit_sql::blob32(row, 0)
        })
        .optional()?
        .ok_or(StoreError::TreeIncomplete(id.level, id.index))
}

/// Leaves in the stored tree.
fn stored_size(conn: &Connection) -> Result<u64, StoreError> {
    let max: Option<i64> =
        conn.query_row("SELECT MAX(idx) FROM audit_tree WHERE level = 0", [], |r| {
            r.get(0)
        })?;
    Ok(max.map_or(0, |m| from_i64(m) + 1))
}

/// The tree's right edge for the log ending at `head`, after adding the leaves of entries the
/// tree does not hold yet (all of them, the first time a database from before the tree opens).
pub fn catch_up(conn: &Connection, head: Head) -> Result<Frontier, StoreError> {
    let size = stored_size(conn)?;
    if size > head.seq {
        return Err(StoreError::TreeAhead {
            tree: size,
            log: head.seq,
        });
    }
    let mut frontier = Frontier::from_edge(size, |id| node(conn, id))?;
    if size == head.seq {
        return Ok(frontier);
    }
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare(&format!("{SELECT_ENTRIES} WHERE seq > ?1 ORDER BY seq"))?;
        let mut rows = stmt.query([to_i64(size)])?;
        while let Some(row) = rows.next()? {
            let entry = entry_from_row(row)?;
            frontier.push(leaf_hash(&canonical(entry.seq, &entry.body)), |id, h| {
                insert_node(&tx, id, h)
            })?;
        }
    }
    tx.commit()?;
    tracing::info!(
        from = size,
        to = frontier.size(),
        "built the audit log's Merkle tree"
    );
    Ok(frontier)
}

fn nodes(conn: &Connection) -> Nodes<impl FnMut(NodeId) -> Result<Hash, StoreError> + '_> {
    Nodes::new(move |id| node(conn, id))
}

pub fn root(conn: &Connection, size: u64) -> Result<Hash, StoreError> {
    nodes(conn).root(size)
}

pub fn inclusion(conn: &Connection, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
    nodes(conn).inclusion(index, size)
}

pub fn consistency(conn: &Connection, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
    nodes(conn).consistency(old, new)
}

/// Recomputes the tree from the entries and compares every stored node; names the first that
/// is missing or differs, or stored nodes beyond the log.
pub fn check_stored(conn: &Connection) -> Result<Option<String>, StoreError> {
    let mut frontier = Frontier::EMPTY;
    let mut problem: Option<String> = None;
    let mut stmt = conn.prepare(&format!("{SELECT_ENTRIES} ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let entry = entry_from_row(row)?;
        frontier.push(leaf_hash(&canonical(entry.seq, &entry.body)), |id, h| {
            if problem.is_none() {
                match node(conn, id) {
                    Ok(stored) if stored == *h => {}
                    Ok(_) => {
                        problem = Some(format!(
                            "tree node (level {}, index {}) does not match entry {}",
                            id.level, id.index, entry.seq
                        ));
                    }
                    Err(StoreError::TreeIncomplete(..)) => {
                        problem = Some(format!(
                            "tree node (level {}, index {}) for entry {} is missing",
                            id.level, id.index, entry.seq
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })?;
    }
    if problem.is_none() {
        let size = stored_size(conn)?;
        if size > frontier.size() {
            problem = Some(format!(
                "the tree holds {size} leaves but the log {} entries",
                frontier.size()
            ));
        }
    }
    Ok(problem)
}

pub fn entry(conn: &Connection, seq: u64) -> Result<Option<Entry>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{SELECT_ENTRIES} WHERE seq = ?1"))?
        .query_row([to_i64(seq)], entry_from_row)
        .optional()?)
}

/// The entry of the check `check_id`.
pub fn check_entry(conn: &Connection, check_id: &str) -> Result<Option<Entry>, StoreError> {
    if check_id.is_empty() {
        return Ok(None);
    }
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT_ENTRIES} WHERE check_id = ?1 AND check_id <> '' ORDER BY seq LIMIT 1"
        ))?
        .query_row([check_id], entry_from_row)
        .optional()?)
}

/// A signed checkpoint as kept, with the cosignature lines witnesses handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub signed_at: i64,
    /// The note as the log signed it.
    pub note: String,
    pub cosignatures: Vec<String>,
}

impl StoredCheckpoint {
    /// The note with every cosignature line after the log's signature.
    pub fn served(&self) -> String {
        let mut out = self.note.clone();
        for line in &self.cosignatures {
            out.push_str(line);
        }
        out
    }
}

pub fn insert_checkpoint(
    conn: &Connection,
    size: u64,
    signed_at: i64,
    note: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO audit_checkpoints (size, signed_at, note) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![to_i64(size), signed_at, note])?;
    Ok(())
}

/// The newest checkpoint (`size` 0), or the one of that size.
pub fn checkpoint(conn: &Connection, size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
    let found = if size == 0 {
        conn.prepare_cached(
            "SELECT size, signed_at, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
    } else {
        conn.prepare_cached("SELECT size, signed_at, note FROM audit_checkpoints WHERE size = ?1")?
            .query_row([to_i64(size)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?
    };
    let Some((size, signed_at, note)) = found else {
        return Ok(None);
    };
    let cosignatures = conn
        .prepare_cached("SELECT line FROM audit_cosignatures WHERE size = ?1 ORDER BY witness")?
        .query_map([size], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(Some(StoredCheckpoint {
        size: from_i64(size),
        signed_at,
        note,
        cosignatures,
    }))
}

/// The newest kept checkpoint, if it covers entry `index` (0-based).
pub fn checkpoint_covering(
    conn: &Connection,
    index: u64,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    let size: Option<i64> = conn
        .prepare_cached(
            "SELECT size FROM audit_checkpoints WHERE size > ?1 ORDER BY size DESC LIMIT 1",
        )?
        .query_row([to_i64(index)], |r| r.get(0))
        .optional()?;
    match size {
        Some(size) => checkpoint(conn, from_i64(size)),
        None => Ok(None),
    }
}

/// Keeps (or replaces) `witness`'s cosignature of the checkpoint of `size`.
pub fn upsert_cosignature(
    conn: &Connection,
    size: u64,
    witness: &str,
    line: &str,
    at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_cosignatures (size, witness, line, added_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line, added_at = excluded.added_at",
    )?
    .execute(params![to_i64(size), witness, line, at])?;
    Ok(())
}
