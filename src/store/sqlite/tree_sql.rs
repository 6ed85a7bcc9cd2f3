//! SQL for the Merkle tree over the audit log and its signed checkpoints: the nodes the writer
//! appends, proofs read from them, building the tree of a database that predates it, and the
//! checkpoints and cosignatures kept for witnesses.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::audit_sql::{SELECT_ENTRIES, entry_from_row, from_i64, to_i64};
use crate::audit::merkle::{
    Frontier, Hash, NodeId, Nodes, TreeProblem, stored_leaves, subtree_of_leaves,
};
use crate::audit::{Entry, Head, leaf_of};

/// The lowest level of the tree that is stored. Storing every node cost each entry two more
/// B-tree inserts than the entry itself (the leaf and, on average, one parent); from level 4
/// up, an entry costs an eighth of an insert, and a node below is hashed from the at most 16
/// entries under it when a proof needs it (four range reads of ≤ 8 entries an inclusion proof,
/// still O(log n) reads in all), as tlog-tiles keeps only whole tiles.
pub const STORED_FROM_LEVEL: u8 = 4;

/// Keeps a node the writer completed, if its level is stored.
pub fn insert_node(conn: &Connection, id: NodeId, hash: &Hash) -> Result<(), StoreError> {
    if id.level < STORED_FROM_LEVEL {
        return Ok(());
    }
    conn.prepare_cached("INSERT INTO audit_tree (level, idx, hash) VALUES (?1, ?2, ?3)")?
        .execute(params![id.level, to_i64(id.index), hash.as_slice()])?;
    Ok(())
}

/// A complete subtree's hash: stored, or hashed from the entries under it.
pub fn node(conn: &Connection, id: NodeId) -> Result<Hash, StoreError> {
    if id.level < STORED_FROM_LEVEL {
        return hashed_from_entries(conn, id);
    }
    stored_node(conn, id)?.ok_or(StoreError::TreeIncomplete(id.level, id.index))
}

fn stored_node(conn: &Connection, id: NodeId) -> Result<Option<Hash>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT hash FROM audit_tree WHERE level = ?1 AND idx = ?2")?
        .query_row(params![id.level, to_i64(id.index)], |row| {
            super::audit_sql::blob32(row, 0)
        })
        .optional()?)
}

/// The hash of the `2^level` leaves of node `id`, from their entries (leaf `i` is entry
/// `seq = i + 1`).
fn hashed_from_entries(conn: &Connection, id: NodeId) -> Result<Hash, StoreError> {
    let leaves = id.leaves();
    let hashes = conn
        .prepare_cached(&format!(
            "{SELECT_ENTRIES} WHERE seq > ?1 AND seq <= ?2 ORDER BY seq"
        ))?
        .query_map(
            params![to_i64(leaves.start), to_i64(leaves.end)],
            entry_from_row,
        )?
        .map(|entry| entry.map(|e| leaf_of(&e)))
        .collect::<Result<Vec<Hash>, _>>()?;
    subtree_of_leaves(id, hashes).ok_or(StoreError::TreeIncomplete(id.level, id.index))
}

/// Leaves the stored tree covers: its nodes at the lowest stored level, whole.
fn stored_size(conn: &Connection) -> Result<u64, StoreError> {
    let max: Option<i64> = conn.query_row(
        "SELECT MAX(idx) FROM audit_tree WHERE level = ?1",
        [STORED_FROM_LEVEL],
        |r| r.get(0),
    )?;
    Ok(stored_leaves(STORED_FROM_LEVEL, max.map(from_i64)))
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
            frontier.push(leaf_of(&entry), |id, h| insert_node(&tx, id, h))?;
        }
    }
    tx.commit()?;
    // Up to 15 entries past the stored levels are hashed again at every start.
    if frontier.size() - size > 1 << STORED_FROM_LEVEL {
        tracing::info!(
            from = size,
            to = frontier.size(),
            "built the audit log's Merkle tree"
        );
    }
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
    let mut problem: Option<TreeProblem> = None;
    let mut stmt = conn.prepare(&format!("{SELECT_ENTRIES} ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let entry = entry_from_row(row)?;
        frontier.push(leaf_of(&entry), |id, h| {
            if problem.is_none() && id.level >= STORED_FROM_LEVEL {
                problem = TreeProblem::of_node(id, entry.seq, stored_node(conn, id)?, h);
            }
            Ok::<(), StoreError>(())
        })?;
    }
    if problem.is_none() {
        let below: i64 = conn.query_row(
            "SELECT COUNT(*) FROM audit_tree WHERE level < ?1",
            [STORED_FROM_LEVEL],
            |r| r.get(0),
        )?;
        problem = TreeProblem::of_extent(
            stored_size(conn)?,
            frontier.size(),
            from_i64(below),
            STORED_FROM_LEVEL,
        );
    }
    Ok(problem.map(|p| p.to_string()))
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
