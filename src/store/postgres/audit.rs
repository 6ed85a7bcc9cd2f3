//! The audit log on PostgreSQL: group commits appended in one total order by several nodes
//! ([`PgTx`], used by `append_group` and the writer), and what the SQLite log offers (head,
//! entries, Merkle root and proofs, chain verification, checkpoints and cosignatures, the
//! stored tree's check and its catch-up at start), giving the same results from the same
//! entries.
//!
//! SQLite has one writer, which keeps the end of the chain in memory. Here every node writes,
//! so the order comes from the `audit_head` row: each group commit locks it `FOR UPDATE` as its
//! first statement (as Tessera and siglog sequence theirs), appends after what it holds, and
//! moves it before committing. A second node's group waits on the lock and then reads the
//! first one's head. READ COMMITTED suffices: the row lock serialises the groups, where
//! SERIALIZABLE would let them collide and fail as unique violations on `seq`.
//!
//! Nothing is computed twice: the entry bytes, chain hashes and tree come from `audit`
//! (`Chain`, `Frontier`, `Nodes`, `Verifier`), the stored levels and the value rules from the
//! SQLite modules.

use std::collections::HashMap;
use std::convert::Infallible;

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::IsolationLevel;
use tokio_postgres::Row;

use super::schema::MIGRATION_LOCK;
use super::writer::PgWriter;
use super::{Pg, PgError};
use crate::audit::merkle::{self, Frontier, Hash, NodeId, Nodes, TreeProblem};
use crate::audit::{Chain, Entry, GENESIS, Head, NewEntry, Verification, Verifier, leaf_of};
use crate::keys::SubjectKey;
use crate::store::sqlite::audit_sql::{SELECT_ENTRIES, from_i64, hash32, to_i64};
use crate::store::sqlite::tree_sql::{STORED_FROM_LEVEL, StoredCheckpoint};

/// Entries a verification reads per round trip: bounded memory on a log of any length.
const VERIFY_CHUNK: i32 = 4096;

/// The group's first statement: it waits for every other node's group commit to finish.
const LOCK_HEAD: &str =
    "SELECT seq, hash, at, tree_size, frontier FROM audit_head WHERE id = 1 FOR UPDATE";

/// A group's entries in one statement, one array per column.
const INSERT_ENTRIES: &str =
    "INSERT INTO audit_log (seq, at, caller, cert_fingerprint, role, action, employer, subject,
         purpose, scope, outcome, check_id, registry_version, detail, prev_hash, hash)
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
         $6::text[], $7::text[], $8::bytea[], $9::text[], $10::text[], $11::text[], $12::text[],
         $13::bigint[], $14::text[], $15::bytea[], $16::bytea[])";

const INSERT_NODES: &str = "INSERT INTO audit_tree (level, idx, hash)
     SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])";

const NOTE_CHECKS: &str = "UPDATE roster_members m
     SET last_checked_at = GREATEST(COALESCE(m.last_checked_at, c.at), c.at)
     FROM (SELECT employer, subject, MAX(at) AS at
           FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS u(employer, subject, at)
           GROUP BY employer, subject) AS c
     WHERE m.employer = c.employer AND m.subject = c.subject";

const UPDATE_HEAD: &str =
    "UPDATE audit_head SET seq = $1, hash = $2, at = $3, tree_size = $4, frontier = $5
     WHERE id = 1";

/// Appends `bodies` after the log's current end, in one transaction with the Merkle nodes they
/// complete and the moved head; returns them in their places once committed. Several nodes may
/// call this at once: their groups follow one another, never interleave.
pub async fn append_group(pg: &Pg, bodies: Vec<NewEntry>) -> Result<Vec<Entry>, PgError> {
    if bodies.is_empty() {
        return Ok(Vec::new());
    }
    let mut client = pg.client().await?;
    let mut tx = PgTx::begin(&mut client).await?;
    let entries = bodies.into_iter().map(|body| tx.audit(body)).collect();
    tx.commit().await?;
    Ok(entries)
}

/// A group commit's transaction as its jobs see it: the head row locked by its first
/// statement, the chain read from that row, and the entries and tree nodes appended so far.
/// Those are kept in memory and written in one statement each ([`PgTx::flush`]) when the group
/// ends, so a group costs the same round trips whatever its size.
pub struct PgTx<'c> {
    tx: Transaction<'c>,
    chain: Chain,
    entries: Vec<Entry>,
    nodes: Vec<(NodeId, Hash)>,
    /// Answered checks to count on their employers' rosters: (employer, subject, at).
    checks: Vec<(String, SubjectKey, i64)>,
}

impl<'c> PgTx<'c> {
    /// Begins a transaction on `client` whose first statement locks the head row: it waits for
    /// every other node's group commit to finish, then appends after it.
    pub async fn begin(client: &'c mut deadpool_postgres::Client) -> Result<Self, PgError> {
        let tx = client.transaction().await?;
        let row = tx
            .query_one(&tx.prepare_cached(LOCK_HEAD).await?, &[])
            .await?;
        let chain = chain_from_head(
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
        )?;
        Ok(Self {
            tx,
            chain,
            entries: Vec::new(),
            nodes: Vec::new(),
            checks: Vec::new(),
        })
    }

    /// The open transaction, for a job's own statements. Entries appended with
    /// [`PgTx::audit`] are not in `audit_log` yet: call [`PgTx::flush`] before reading it.
    pub fn transaction(&self) -> &Transaction<'c> {
        &self.tx
    }

    /// Places `body` after the last entry of this transaction (or of the log) and returns it
    /// with its sequence number and hashes; it is written when the group ends, or at the
    /// next [`PgTx::flush`].
    pub fn audit(&mut self, body: NewEntry) -> Entry {
        let nodes = &mut self.nodes;
        let entry = self
            .chain
            .append(body, |id, hash| {
                if id.level >= STORED_FROM_LEVEL {
                    nodes.push((id, *hash));
                }
                Ok::<_, Infallible>(())
            })
            .unwrap_or_else(|never| match never {});
        self.entries.push(entry.clone());
        entry
    }

    /// Counts an answered check on its employer's roster when the group is written (SQLite's
    /// `WriteCtx::note_check`). Only a check's own entry is given here: the review and alert
    /// entries that name the same check are not checks.
    pub fn note_check(&mut self, check: &NewEntry) {
        if let Some(subject) = check.subject.filter(|_| !check.check_id.is_empty()) {
            self.checks
                .push((check.employer.clone(), subject, check.at_micros));
        }
    }

    /// Writes the entries and tree nodes appended so far (one statement each), and the checks
    /// noted on the roster members checked (one statement for all), so that a read of
    /// `audit_log` in this transaction sees them.
    pub async fn flush(&mut self) -> Result<(), PgError> {
        if !self.entries.is_empty() {
            insert_entries(&self.tx, &self.entries).await?;
            self.entries.clear();
        }
        if !self.checks.is_empty() {
            note_checks(&self.tx, &self.checks).await?;
            self.checks.clear();
        }
        insert_nodes(&self.tx, &self.nodes).await?;
        self.nodes.clear();
        Ok(())
    }

    /// Writes what is pending, moves the head row and commits. The head row is updated even
    /// when nothing was appended: PostgreSQL answers COMMIT in a transaction that a failed
    /// statement aborted with a silent ROLLBACK, and this statement turns that into an error.
    pub async fn commit(mut self) -> Result<(), PgError> {
        self.flush().await?;
        let head = self.chain.head();
        let tree = self.chain.tree();
        self.tx
            .execute(
                &self.tx.prepare_cached(UPDATE_HEAD).await?,
                &[
                    &to_i64(head.seq),
                    &head.hash.as_slice(),
                    &head.at_micros,
                    &to_i64(tree.size()),
                    &frontier_bytes(&tree),
                ],
            )
            .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Rolls everything back, the head row lock with it.
    pub async fn rollback(self) -> Result<(), PgError> {
        Ok(self.tx.rollback().await?)
    }
}

/// Keeps the last check of each roster member among `checks` on its row: a member keeps the
/// latest time. Grouped first, since `UPDATE … FROM` applies only one of several rows that
/// match the same member.
async fn note_checks(
    tx: &impl GenericClient,
    checks: &[(String, SubjectKey, i64)],
) -> Result<(), PgError> {
    let employers: Vec<&str> = checks.iter().map(|c| c.0.as_str()).collect();
    let subjects: Vec<&[u8]> = checks.iter().map(|c| c.1.0.as_slice()).collect();
    let times: Vec<i64> = checks.iter().map(|c| c.2).collect();
    tx.execute(
        &tx.prepare_cached(NOTE_CHECKS).await?,
        &[&employers, &subjects, &times],
    )
    .await?;
    Ok(())
}

/// Tree nodes in one statement.
async fn insert_nodes(tx: &impl GenericClient, nodes: &[(NodeId, Hash)]) -> Result<(), PgError> {
    if nodes.is_empty() {
        return Ok(());
    }
    let levels: Vec<i16> = nodes.iter().map(|(id, _)| i16::from(id.level)).collect();
    let indexes: Vec<i64> = nodes.iter().map(|(id, _)| to_i64(id.index)).collect();
    let hashes: Vec<&[u8]> = nodes.iter().map(|(_, h)| h.as_slice()).collect();
    tx.execute(
        &tx.prepare_cached(INSERT_NODES).await?,
        &[&levels, &indexes, &hashes],
    )
    .await?;
    Ok(())
}

/// One INSERT for the whole group (an array per column through `unnest`): a round trip and
/// a statement per group, not per entry, while the head row is locked.
async fn insert_entries(tx: &impl GenericClient, entries: &[Entry]) -> Result<(), PgError> {
    let column = |f: fn(&Entry) -> &str| entries.iter().map(f).collect::<Vec<&str>>();
    let seq: Vec<i64> = entries.iter().map(|e| to_i64(e.seq)).collect();
    let at: Vec<i64> = entries.iter().map(|e| e.body.at_micros).collect();
    let subject: Vec<Option<&[u8]>> = entries
        .iter()
        .map(|e| e.body.subject.as_ref().map(|s| s.0.as_slice()))
        .collect();
    let version: Vec<i64> = entries
        .iter()
        .map(|e| to_i64(e.body.registry_version))
        .collect();
    let prev_hash: Vec<&[u8]> = entries.iter().map(|e| e.prev_hash.as_slice()).collect();
    let hash: Vec<&[u8]> = entries.iter().map(|e| e.hash.as_slice()).collect();
    let statement = tx.prepare_cached(INSERT_ENTRIES).await?;
    tx.execute(
        &statement,
        &[
            &seq,
            &at,
            &column(|e| e.body.caller.as_str()),
            &column(|e| e.body.cert_fingerprint.as_str()),
            &column(|e| e.body.role.as_str()),
            &column(|e| e.body.action.as_str()),
            &column(|e| e.body.employer.as_str()),
            &subject,
            &column(|e| e.body.purpose.as_str()),
            &column(|e| e.body.scope.as_str()),
            &column(|e| e.body.outcome.as_str()),
            &column(|e| e.body.check_id.as_str()),
            &version,
            &column(|e| e.body.detail.as_str()),
            &prev_hash,
            &hash,
        ],
    )
    .await?;
    Ok(())
}

/// The right edge as `audit_head.frontier` keeps it: its hashes, highest node first.
fn frontier_bytes(tree: &Frontier) -> Vec<u8> {
    tree.edge().flat_map(|(_, hash)| hash).collect()
}

/// The chain as the head row leaves it. The row is only ever written whole by
/// `append_group`; one whose parts disagree was edited, and appending after it would extend a
/// tree that does not match the log.
fn chain_from_head(
    seq: i64,
    hash: &[u8],
    at: i64,
    tree_size: i64,
    frontier: &[u8],
) -> Result<Chain, PgError> {
    let seq = from_i64(seq);
    if from_i64(tree_size) != seq {
        return Err(PgError::HeadCorrupt(
            "its tree size is not its sequence number",
        ));
    }
    let hash =
        <[u8; 32]>::try_from(hash).map_err(|_| PgError::HeadCorrupt("its hash is not 32 bytes"))?;
    let mut edge = frontier.chunks_exact(32);
    let bad_edge = PgError::HeadCorrupt("its frontier does not fit its tree size");
    if frontier.len() != 32 * seq.count_ones() as usize {
        return Err(bad_edge);
    }
    let tree = Frontier::from_edge(seq, |_| {
        edge.next()
            .map(hash32)
            .ok_or(PgError::HeadCorrupt("its frontier is short"))
    })?;
    let head = Head {
        seq,
        hash,
        at_micros: at,
    };
    Ok(Chain::new(head, tree))
}

/// The newest entry's place, read from the log itself as SQLite's `head` does (a log cut short
/// shows as such; the head row says where the next group goes).
pub async fn head(pg: &Pg) -> Result<Head, PgError> {
    let client = pg.client().await?;
    head_in(&client).await
}

async fn head_in(client: &impl GenericClient) -> Result<Head, PgError> {
    let row = client
        .query_opt(
            "SELECT seq, hash, at FROM audit_log ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    let Some(row) = row else {
        return Ok(Head::EMPTY);
    };
    Ok(Head {
        seq: from_i64(row.try_get(0)?),
        hash: hash32(row.try_get(1)?),
        at_micros: row.try_get(2)?,
    })
}

/// The entry `seq`, if the log holds it.
pub async fn entry(pg: &Pg, seq: u64) -> Result<Option<Entry>, PgError> {
    let client = pg.client().await?;
    let statement = client
        .prepare_cached(&format!("{SELECT_ENTRIES} WHERE seq = $1"))
        .await?;
    match client.query_opt(&statement, &[&to_i64(seq)]).await? {
        Some(row) => Ok(Some(entry_from_row(&row)?)),
        None => Ok(None),
    }
}

/// An entry from the columns of `SELECT_ENTRIES`, with SQLite's tolerance of wrong lengths.
fn entry_from_row(row: &Row) -> Result<Entry, PgError> {
    let subject: Option<&[u8]> = row.try_get(7)?;
    Ok(Entry {
        seq: from_i64(row.try_get(0)?),
        body: NewEntry {
            at_micros: row.try_get(1)?,
            caller: row.try_get(2)?,
            cert_fingerprint: row.try_get(3)?,
            role: row.try_get(4)?,
            action: row.try_get(5)?,
            employer: row.try_get(6)?,
            subject: subject.map(|s| SubjectKey(hash32(s))),
            purpose: row.try_get(8)?,
            scope: row.try_get(9)?,
            outcome: row.try_get(10)?,
            check_id: row.try_get(11)?,
            registry_version: from_i64(row.try_get(12)?),
            detail: row.try_get(13)?,
        },
        prev_hash: hash32(row.try_get(14)?),
        hash: hash32(row.try_get(15)?),
    })
}

/// The Merkle root of the log's first `size` entries.
pub async fn root(pg: &Pg, size: u64) -> Result<Hash, PgError> {
    let hashes = prove(pg, Proof::Root(size)).await?;
    Ok(hashes.first().copied().unwrap_or_else(merkle::empty_root))
}

/// The inclusion proof of leaf `index` in the tree of `size` entries.
pub async fn inclusion(pg: &Pg, index: u64, size: u64) -> Result<Vec<Hash>, PgError> {
    prove(pg, Proof::Inclusion(index, size)).await
}

/// The consistency proof between the trees of `old` and `new` entries.
pub async fn consistency(pg: &Pg, old: u64, new: u64) -> Result<Vec<Hash>, PgError> {
    prove(pg, Proof::Consistency(old, new)).await
}

/// What `merkle::Nodes` computes; one of these runs over any node reader.
#[derive(Clone, Copy)]
enum Proof {
    Root(u64),
    Inclusion(u64, u64),
    Consistency(u64, u64),
}

impl Proof {
    fn run<F, E>(self, nodes: &mut Nodes<F>) -> Result<Vec<Hash>, E>
    where
        F: FnMut(NodeId) -> Result<Hash, E>,
    {
        match self {
            Proof::Root(size) => Ok(vec![nodes.root(size)?]),
            Proof::Inclusion(index, size) => nodes.inclusion(index, size),
            Proof::Consistency(old, new) => nodes.consistency(old, new),
        }
    }
}

/// `Nodes` reads synchronously, a database asynchronously. Which nodes a proof reads depends
/// on the sizes alone, never on the hashes, so a first run with placeholder hashes lists them;
/// they are fetched in two statements in one snapshot (stored nodes, and the entries under the
/// lower ones, hashed as SQLite's `tree_sql` hashes them), and the second run uses them.
async fn prove(pg: &Pg, proof: Proof) -> Result<Vec<Hash>, PgError> {
    let mut client = pg.client().await?;
    let tx = snapshot(&mut client).await?;
    let hashes = prove_in(&tx, proof).await?;
    tx.commit().await?;
    Ok(hashes)
}

async fn prove_in(tx: &impl GenericClient, proof: Proof) -> Result<Vec<Hash>, PgError> {
    let mut wanted = Vec::new();
    proof
        .run(&mut Nodes::new(|id| {
            wanted.push(id);
            Ok::<_, Infallible>([0; 32])
        }))
        .unwrap_or_else(|never| match never {});
    let (stored, hashed): (Vec<NodeId>, Vec<NodeId>) = wanted
        .into_iter()
        .partition(|id| id.level >= STORED_FROM_LEVEL);

    let mut known = stored_nodes(tx, &stored).await?;
    if !hashed.is_empty() {
        let seqs: Vec<i64> = hashed
            .iter()
            .flat_map(NodeId::leaves)
            .map(|leaf| to_i64(leaf + 1))
            .collect();
        let statement = tx
            .prepare_cached(&format!(
                "{SELECT_ENTRIES} WHERE seq = ANY($1) ORDER BY seq"
            ))
            .await?;
        let mut leaves = HashMap::new();
        for row in tx.query(&statement, &[&seqs]).await? {
            let entry = entry_from_row(&row)?;
            leaves.insert(entry.seq, leaf_of(&entry));
        }
        for id in hashed {
            let under = id
                .leaves()
                .filter_map(|leaf| leaves.get(&(leaf + 1)).copied())
                .collect();
            if let Some(hash) = merkle::subtree_of_leaves(id, under) {
                known.insert(id, hash);
            }
        }
    }
    proof.run(&mut Nodes::new(|id: NodeId| {
        known
            .get(&id)
            .copied()
            .ok_or(PgError::TreeIncomplete(id.level, id.index))
    }))
}

/// A read-only snapshot: every statement in it sees the same committed state.
async fn snapshot(client: &mut deadpool_postgres::Client) -> Result<Transaction<'_>, PgError> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// The stored nodes among `ids`, in one statement.
async fn stored_nodes(
    tx: &impl GenericClient,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, PgError> {
    let mut known = HashMap::new();
    if ids.is_empty() {
        return Ok(known);
    }
    let levels: Vec<i16> = ids.iter().map(|id| i16::from(id.level)).collect();
    let indexes: Vec<i64> = ids.iter().map(|id| to_i64(id.index)).collect();
    let rows = tx
        .query(
            "SELECT t.level, t.idx, t.hash FROM audit_tree t
             JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx)
               ON t.level = w.level AND t.idx = w.idx",
            &[&levels, &indexes],
        )
        .await?;
    for row in rows {
        let level = u8::try_from(row.try_get::<_, i16>(0)?).unwrap_or(u8::MAX);
        let id = NodeId {
            level,
            index: from_i64(row.try_get(1)?),
        };
        known.insert(id, hash32(row.try_get(2)?));
    }
    Ok(known)
}

/// The durable size of the log and the Merkle root over it, read in one snapshot (what a
/// checkpoint signs).
pub async fn log_root(pg: &Pg) -> Result<(u64, Hash), PgError> {
    let mut client = pg.client().await?;
    let tx = snapshot(&mut client).await?;
    let size = head_in(&tx).await?.seq;
    let root = prove_in(&tx, Proof::Root(size)).await?;
    tx.commit().await?;
    Ok((
        size,
        root.first().copied().unwrap_or_else(merkle::empty_root),
    ))
}

/// The entry of the check `check_id` (its first, as SQLite's `check_entry`).
pub async fn check_entry(pg: &Pg, check_id: &str) -> Result<Option<Entry>, PgError> {
    if check_id.is_empty() {
        return Ok(None);
    }
    let client = pg.client().await?;
    let statement = client
        .prepare_cached(&format!(
            "{SELECT_ENTRIES} WHERE check_id = $1 AND check_id <> '' ORDER BY seq LIMIT 1"
        ))
        .await?;
    match client.query_opt(&statement, &[&check_id]).await? {
        Some(row) => Ok(Some(entry_from_row(&row)?)),
        None => Ok(None),
    }
}

/// Keeps a signed checkpoint, unless one of that size is kept already. Not audited, as on
/// SQLite; it takes no head lock because it assigns no identity and no audit entry.
pub async fn save_checkpoint(
    pg: &Pg,
    size: u64,
    signed_at: i64,
    note: &str,
) -> Result<(), PgError> {
    let client = pg.client().await?;
    client
        .execute(
            "INSERT INTO audit_checkpoints (size, signed_at, note) VALUES ($1, $2, $3)
             ON CONFLICT (size) DO NOTHING",
            &[&to_i64(size), &signed_at, &note],
        )
        .await?;
    Ok(())
}

/// The newest checkpoint (`size` 0) or the one of `size`, with its cosignatures in witness
/// byte order (the column is `COLLATE "C"`), read in one snapshot.
pub async fn checkpoint(pg: &Pg, size: u64) -> Result<Option<StoredCheckpoint>, PgError> {
    let mut client = pg.client().await?;
    let tx = snapshot(&mut client).await?;
    let found = checkpoint_in(&tx, size).await?;
    tx.commit().await?;
    Ok(found)
}

/// The newest kept checkpoint, if it covers entry `index` (0-based).
pub async fn checkpoint_covering(pg: &Pg, index: u64) -> Result<Option<StoredCheckpoint>, PgError> {
    let mut client = pg.client().await?;
    let tx = snapshot(&mut client).await?;
    let size: Option<i64> = tx
        .query_opt(
            "SELECT size FROM audit_checkpoints WHERE size > $1 ORDER BY size DESC LIMIT 1",
            &[&to_i64(index)],
        )
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    let found = match size {
        Some(size) => checkpoint_in(&tx, from_i64(size)).await?,
        None => None,
    };
    tx.commit().await?;
    Ok(found)
}

async fn checkpoint_in(
    tx: &impl GenericClient,
    size: u64,
) -> Result<Option<StoredCheckpoint>, PgError> {
    let row = if size == 0 {
        tx.query_opt(
            "SELECT size, signed_at, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
            &[],
        )
        .await?
    } else {
        tx.query_opt(
            "SELECT size, signed_at, note FROM audit_checkpoints WHERE size = $1",
            &[&to_i64(size)],
        )
        .await?
    };
    let Some(row) = row else {
        return Ok(None);
    };
    let size: i64 = row.try_get(0)?;
    let cosignatures = tx
        .query(
            "SELECT line FROM audit_cosignatures WHERE size = $1 ORDER BY witness",
            &[&size],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
    Ok(Some(StoredCheckpoint {
        size: from_i64(size),
        signed_at: row.try_get(1)?,
        note: row.try_get(2)?,
        cosignatures,
    }))
}

/// Keeps (or replaces) `witness`'s cosignature of the checkpoint of `size`, and appends
/// `audit`, in one group commit of `writer`.
pub async fn add_cosignature(
    writer: &PgWriter,
    size: u64,
    witness: String,
    line: String,
    audit: NewEntry,
) -> Result<Entry, PgError> {
    writer
        .run(move |tx| {
            let (witness, line, audit) = (witness.clone(), line.clone(), audit.clone());
            Box::pin(async move {
                tx.transaction()
                    .execute(
                        "INSERT INTO audit_cosignatures (size, witness, line, added_at)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (size, witness)
                         DO UPDATE SET line = excluded.line, added_at = excluded.added_at",
                        &[&to_i64(size), &witness, &line, &audit.at_micros],
                    )
                    .await?;
                Ok(tx.audit(audit))
            })
        })
        .await
}

/// Compares every stored node with the one recomputed from the entries, in one snapshot,
/// and names the first that is missing or differs, stored nodes beyond the log, or nodes below
/// the stored levels: the same report as SQLite's `check_stored` for the same rows.
pub async fn check_stored(pg: &Pg) -> Result<Option<String>, PgError> {
    let mut client = pg.client().await?;
    let tx = snapshot(&mut client).await?;
    let statement = tx
        .prepare_cached(&format!("{SELECT_ENTRIES} ORDER BY seq"))
        .await?;
    let portal = tx.bind(&statement, &[]).await?;
    let mut frontier = Frontier::EMPTY;
    let mut problem = None;
    while problem.is_none() {
        let rows = tx.query_portal(&portal, VERIFY_CHUNK).await?;
        let mut completed = Vec::new();
        for row in &rows {
            let entry = entry_from_row(row)?;
            push_leaf(&mut frontier, &entry, |id, hash| {
                completed.push((id, *hash, entry.seq));
            });
        }
        let ids: Vec<NodeId> = completed.iter().map(|(id, _, _)| *id).collect();
        let stored = stored_nodes(&tx, &ids).await?;
        problem = completed.iter().find_map(|(id, hash, seq)| {
            TreeProblem::of_node(*id, *seq, stored.get(id).copied(), hash)
        });
        if rows.len() < VERIFY_CHUNK as usize {
            break;
        }
    }
    if problem.is_none() {
        let below: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM audit_tree WHERE level < $1",
                &[&i16::from(STORED_FROM_LEVEL)],
            )
            .await?
            .try_get(0)?;
        problem = TreeProblem::of_extent(
            stored_size(&tx).await?,
            frontier.size(),
            from_i64(below),
            STORED_FROM_LEVEL,
        );
    }
    tx.commit().await?;
    Ok(problem.map(|p| p.to_string()))
}

/// Adds `entry`'s leaf to `frontier`, handing the completed nodes of stored levels to `keep`.
fn push_leaf(frontier: &mut Frontier, entry: &Entry, mut keep: impl FnMut(NodeId, &Hash)) {
    frontier
        .push(leaf_of(entry), |id, hash| {
            if id.level >= STORED_FROM_LEVEL {
                keep(id, hash);
            }
            Ok::<_, Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
}

/// Leaves the stored tree covers: its nodes at the lowest stored level, whole.
async fn stored_size(tx: &impl GenericClient) -> Result<u64, PgError> {
    let highest: Option<i64> = tx
        .query_one(
            "SELECT MAX(idx) FROM audit_tree WHERE level = $1",
            &[&i16::from(STORED_FROM_LEVEL)],
        )
        .await?
        .try_get(0)?;
    Ok(merkle::stored_leaves(
        STORED_FROM_LEVEL,
        highest.map(from_i64),
    ))
}

/// Brings the stored tree and the head row up to the log at a node's start, as SQLite's
/// `tree_sql::catch_up`: the leaves of entries the tree lacks are added (a tree whose newest
/// nodes were lost, or rows copied in without their tree), and the head row is moved to the
/// log's end. Runs under the migrations' advisory lock, so that nodes starting together build
/// it once (the second finds nothing left to do), and holds the head row so that no group
/// commit appends meanwhile. Refuses a tree or a head row ahead of the log: entries were
/// removed, and appending would hide it. Returns how many tree nodes it stored.
pub async fn catch_up(pg: &Pg) -> Result<u64, PgError> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let row = tx.query_one(LOCK_HEAD, &[]).await?;
    let head_seq = from_i64(row.try_get(0)?);
    let head_hash = hash32(row.try_get(1)?);
    let log = head_in(&tx).await?;
    let size = stored_size(&tx).await?;
    if size > log.seq {
        return Err(PgError::TreeAhead {
            tree: size,
            log: log.seq,
        });
    }
    if head_seq > log.seq {
        return Err(PgError::LogBehindHead {
            head: head_seq,
            log: log.seq,
        });
    }
    if head_seq == log.seq && head_hash != log.hash {
        return Err(PgError::HeadCorrupt("its hash is not the newest entry's"));
    }
    // Entries past the last whole node at the lowest stored level have no stored node yet.
    let whole = log.seq >> STORED_FROM_LEVEL << STORED_FROM_LEVEL;
    if size == whole && head_seq == log.seq {
        tx.commit().await?;
        return Ok(0);
    }
    let edge: Vec<NodeId> = merkle::right_edge(size).collect();
    let known = stored_nodes(&tx, &edge).await?;
    let mut frontier = Frontier::from_edge(size, |id| {
        known
            .get(&id)
            .copied()
            .ok_or(PgError::TreeIncomplete(id.level, id.index))
    })?;
    let statement = tx
        .prepare(&format!("{SELECT_ENTRIES} WHERE seq > $1 ORDER BY seq"))
        .await?;
    let portal = tx.bind(&statement, &[&to_i64(size)]).await?;
    let mut stored = 0;
    loop {
        let rows = tx.query_portal(&portal, VERIFY_CHUNK).await?;
        let mut nodes = Vec::new();
        for row in &rows {
            push_leaf(&mut frontier, &entry_from_row(row)?, |id, hash| {
                nodes.push((id, *hash));
            });
        }
        insert_nodes(&tx, &nodes).await?;
        stored += nodes.len() as u64;
        if rows.len() < VERIFY_CHUNK as usize {
            break;
        }
    }
    tx.execute(
        UPDATE_HEAD,
        &[
            &to_i64(log.seq),
            &log.hash.as_slice(),
            &log.at_micros,
            &to_i64(frontier.size()),
            &frontier_bytes(&frontier),
        ],
    )
    .await?;
    tx.commit().await?;
    if stored > 0 {
        tracing::info!(
            from = size,
            to = frontier.size(),
            nodes = stored,
            "built the audit log's Merkle tree"
        );
    }
    Ok(stored)
}

/// Recomputes the chain from `from` to `to` (inclusive; 0 means the start / the head), as
/// SQLite's `audit_sql::verify` does, trusting the stored hash of the entry before `from`. The
/// entries are read through a portal in chunks, in one snapshot.
pub async fn verify(pg: &Pg, from: u64, to: u64) -> Result<Verification, PgError> {
    let from = from.max(1);
    let to = if to == 0 { i64::MAX } else { to_i64(to) };
    let mut client = pg.client().await?;
    let tx = snapshot(&mut client).await?;
    let start_prev = if from == 1 {
        GENESIS
    } else {
        let row = tx
            .query_opt(
                "SELECT hash FROM audit_log WHERE seq = $1",
                &[&to_i64(from - 1)],
            )
            .await?
            .ok_or(PgError::NoSuchEntry(from - 1))?;
        hash32(row.try_get(0)?)
    };
    let mut verifier = Verifier::new(from, start_prev);
    let statement = tx
        .prepare_cached(&format!(
            "{SELECT_ENTRIES} WHERE seq >= $1 AND seq <= $2 ORDER BY seq"
        ))
        .await?;
    let portal = tx.bind(&statement, &[&to_i64(from), &to]).await?;
    'chunks: loop {
        let rows = tx.query_portal(&portal, VERIFY_CHUNK).await?;
        for row in &rows {
            if !verifier.feed(&entry_from_row(row)?) {
                break 'chunks;
            }
        }
        if rows.len() < VERIFY_CHUNK as usize {
            break;
        }
    }
    tx.commit().await?;
    Ok(verifier.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(i: i64) -> NewEntry {
        NewEntry {
            at_micros: i,
            action: "CheckService.Check".into(),
            outcome: "NO_RECORD".into(),
            ..NewEntry::default()
        }
    }

    #[test]
    fn the_head_row_rebuilds_the_chain_it_was_written_from() {
        for n in [0i64, 1, 16, 37, 64] {
            let mut chain = Chain::new(Head::EMPTY, Frontier::EMPTY);
            for i in 0..n {
                chain
                    .append(body(i), |_, _| Ok::<_, Infallible>(()))
                    .unwrap_or_else(|never| match never {});
            }
            let head = chain.head();
            let bytes = frontier_bytes(&chain.tree());
            let again = chain_from_head(
                to_i64(head.seq),
                &head.hash,
                head.at_micros,
                to_i64(chain.tree().size()),
                &bytes,
            )
            .expect("a head row as written");
            assert_eq!(again.head(), head);
            assert_eq!(again.tree().root(), chain.tree().root(), "size {n}");
        }
    }

    #[test]
    fn a_head_row_whose_parts_disagree_is_refused() {
        let hash = [0u8; 32];
        for (tree_size, frontier) in [(4, vec![0u8; 32]), (3, vec![0u8; 32]), (3, vec![0; 96])] {
            assert!(matches!(
                chain_from_head(3, &hash, 0, tree_size, &frontier),
                Err(PgError::HeadCorrupt(_))
            ));
        }
        assert!(chain_from_head(0, &hash[..31], 0, 0, &[]).is_err());
    }
}
