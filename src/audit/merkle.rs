//! The RFC 6962 Merkle tree over the audit log: leaf and node hashes, the right edge the writer
//! extends as entries are committed, and inclusion and consistency proofs with their
//! verification (RFC 9162 §2.1.3–2.1.4). Storage is not known here: proofs read the hashes of
//! complete, aligned subtrees through a closure, so a proof on any log size costs O(log n)
//! reads of stored nodes.

use std::collections::HashMap;

use ring::digest::{Context, SHA256};

pub type Hash = [u8; 32];

/// `SHA-256(0x00 || entry)`: the leaf hash of an entry's canonical bytes.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x00]);
    ctx.update(entry);
    finish(ctx)
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x01]);
    ctx.update(left);
    ctx.update(right);
    finish(ctx)
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    finish(Context::new(&SHA256))
}

fn finish(ctx: Context) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// A stored node: the complete subtree of `2^level` leaves starting at leaf `index << level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    /// The 0-based indices of the leaves under this node.
    pub fn leaves(&self) -> std::ops::Range<u64> {
        let first = self.index << self.level;
        first..first + (1 << self.level)
    }
}

/// The hash of the complete subtree `id` from the hashes of its leaves, in order: how a node
/// below the stored levels is recomputed from its entries. `None` unless exactly `2^level`
/// leaves are given (the log lacks some of the node's entries).
pub fn subtree_of_leaves(id: NodeId, mut hashes: Vec<Hash>) -> Option<Hash> {
    if hashes.len() as u64 != 1 << id.level {
        return None;
    }
    while hashes.len() > 1 {
        hashes = hashes
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    hashes.first().copied()
}

/// The complete subtrees on the right edge of a tree of `size` leaves, highest first: exactly
/// the nodes that must be combined for its root, and what the writer keeps to extend it.
pub fn right_edge(size: u64) -> impl Iterator<Item = NodeId> {
    (0..64u8)
        .rev()
        .filter(move |level| size >> level & 1 == 1)
        .map(move |level| NodeId {
            level,
            index: (size >> level) - 1,
        })
}

/// The right edge of the tree, kept in memory by the single writer: the hash of the complete
/// subtree at each level whose bit is set in `size`. Small and `Copy`, so that a job that
/// rolls back puts the tree back with the rest of the chain.
#[derive(Clone, Copy)]
pub struct Frontier {
    size: u64,
    edge: [Hash; 64],
}

impl std::fmt::Debug for Frontier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frontier(size {})", self.size)
    }
}

impl Frontier {
    pub const EMPTY: Frontier = Frontier {
        size: 0,
        edge: [[0; 32]; 64],
    };

    /// The frontier of a tree of `size` leaves, from its right-edge nodes (as `right_edge`
    /// lists them).
    pub fn from_edge<E>(
        size: u64,
        mut read: impl FnMut(NodeId) -> Result<Hash, E>,
    ) -> Result<Self, E> {
        let mut frontier = Frontier {
            size,
            ..Frontier::EMPTY
        };
        for id in right_edge(size) {
            frontier.edge[usize::from(id.level)] = read(id)?;
        }
        Ok(frontier)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The right edge's nodes with their hashes, highest first (the order of `right_edge` and
    /// of `from_edge`): what a database keeps to rebuild the frontier without reading the tree.
    pub fn edge(&self) -> impl Iterator<Item = (NodeId, Hash)> + '_ {
        right_edge(self.size).map(|id| (id, self.edge[usize::from(id.level)]))
    }

    /// Appends a leaf and hands every node it completes (the leaf first) to `store`.
    pub fn push<E>(
        &mut self,
        leaf: Hash,
        mut store: impl FnMut(NodeId, &Hash) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut id = NodeId {
            level: 0,
            index: self.size,
        };
        let mut hash = leaf;
        store(id, &hash)?;
        while id.index & 1 == 1 {
            hash = node_hash(&self.edge[usize::from(id.level)], &hash);
            id = NodeId {
                level: id.level + 1,
                index: id.index >> 1,
            };
            store(id, &hash)?;
        }
        self.edge[usize::from(id.level)] = hash;
        self.size += 1;
        Ok(())
    }

    pub fn root(&self) -> Hash {
        let mut levels = (0..64u8).filter(|level| self.size >> level & 1 == 1);
        let Some(lowest) = levels.next() else {
            return empty_root();
        };
        levels.fold(self.edge[usize::from(lowest)], |acc, level| {
            node_hash(&self.edge[usize::from(level)], &acc)
        })
    }
}

/// Reads stored nodes at most once each: the incomplete subtrees of a proof share their parts.
pub struct Nodes<F> {
    read: F,
    seen: HashMap<NodeId, Hash>,
}

impl<F, E> Nodes<F>
where
    F: FnMut(NodeId) -> Result<Hash, E>,
{
    pub fn new(read: F) -> Self {
        Self {
            read,
            seen: HashMap::new(),
        }
    }

    fn node(&mut self, id: NodeId) -> Result<Hash, E> {
        if let Some(hash) = self.seen.get(&id) {
            return Ok(*hash);
        }
        let hash = (self.read)(id)?;
        self.seen.insert(id, hash);
        Ok(hash)
    }

    /// MTH(D[start:end]) for a subtree of the RFC 6962 recursion: its left parts are complete
    /// and aligned, so it is a fold over at most log n stored nodes.
    pub fn subtree(&mut self, start: u64, end: u64) -> Result<Hash, E> {
        let n = end - start;
        if n == 0 {
            return Ok(empty_root());
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            return self.node(NodeId {
                level: n.trailing_zeros() as u8,
                index: start / n,
            });
        }
        let k = split(n);
        let left = self.subtree(start, start + k)?;
        let right = self.subtree(start + k, end)?;
        Ok(node_hash(&left, &right))
    }

    pub fn root(&mut self, size: u64) -> Result<Hash, E> {
        self.subtree(0, size)
    }

    /// PATH(index, D[0:size]): the inclusion proof, from the leaf's sibling up.
    pub fn inclusion(&mut self, index: u64, size: u64) -> Result<Vec<Hash>, E> {
        let mut path = Vec::new();
        self.path(index, 0, size, &mut path)?;
        Ok(path)
    }

    fn path(&mut self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), E> {
        let n = end - start;
        if n <= 1 {
            return Ok(());
        }
        let k = split(n);
        if m < k {
            self.path(m, start, start + k, out)?;
            out.push(self.subtree(start + k, end)?);
        } else {
            self.path(m - k, start + k, end, out)?;
            out.push(self.subtree(start, start + k)?);
        }
        Ok(())
    }

    /// PROOF(old, D[0:new]): the consistency proof between two sizes (`old <= new`).
    pub fn consistency(&mut self, old: u64, new: u64) -> Result<Vec<Hash>, E> {
        let mut proof = Vec::new();
        if old > 0 && old < new {
            self.subproof(old, 0, new, true, &mut proof)?;
        }
        Ok(proof)
    }

    fn subproof(
        &mut self,
        m: u64,
        start: u64,
        end: u64,
        whole: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), E> {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(self.subtree(start, end)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, start + k, whole, out)?;
            out.push(self.subtree(start + k, end)?);
        } else {
            self.subproof(m - k, start + k, end, false, out)?;
            out.push(self.subtree(start, start + k)?);
        }
        Ok(())
    }
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("index {index} is not in a tree of {size} entries")]
    OutOfRange { index: u64, size: u64 },
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the signed root")]
    RootMismatch,
    #[error("the older tree ({old}) is larger than the newer ({new})")]
    Shrunk { old: u64, new: u64 },
}

/// RFC 9162 §2.1.3.2: does `proof` bind `leaf` at `index` to `root` of a tree of `size`?
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: is the tree of `new` entries with `new_root` an extension of the tree of
/// `old` entries with `old_root`?
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::Shrunk { old, new });
    }
    if old == new {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else if proof.is_empty() {
            Err(ProofError::RootMismatch)
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if old == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// What a check of the stored tree against the entries found first, worded the same on every
/// backend so that their reports can be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeProblem {
    /// The stored node differs from the one recomputed when entry `seq` completed it.
    Differs { node: NodeId, seq: u64 },
    /// Entry `seq` completed a node the tree does not hold.
    Missing { node: NodeId, seq: u64 },
    /// Stored nodes cover leaves the log does not hold.
    Ahead { tree: u64, log: u64 },
    /// Nodes below the lowest stored level, which the writer never stores.
    Below { nodes: u64, level: u8 },
}

impl TreeProblem {
    /// The problem with node `node` that entry `seq` completed with `computed`, given what the
    /// tree stores for it.
    pub fn of_node(node: NodeId, seq: u64, stored: Option<Hash>, computed: &Hash) -> Option<Self> {
        match stored {
            Some(stored) if stored == *computed => None,
            Some(_) => Some(TreeProblem::Differs { node, seq }),
            None => Some(TreeProblem::Missing { node, seq }),
        }
    }

    /// The problem, once every entry's nodes matched, with a tree covering `tree` leaves
    /// (`stored_leaves`) and holding `below` nodes under `lowest`, over a log of `log` entries.
    pub fn of_extent(tree: u64, log: u64, below: u64, lowest: u8) -> Option<Self> {
        if tree > log {
            Some(TreeProblem::Ahead { tree, log })
        } else if below > 0 {
            Some(TreeProblem::Below {
                nodes: below,
                level: lowest,
            })
        } else {
            None
        }
    }
}

impl std::fmt::Display for TreeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeProblem::Differs { node, seq } => write!(
                f,
                "tree node (level {}, index {}) does not match entry {seq}",
                node.level, node.index
            ),
            TreeProblem::Missing { node, seq } => write!(
                f,
                "tree node (level {}, index {}) for entry {seq} is missing",
                node.level, node.index
            ),
            TreeProblem::Ahead { tree, log } => write!(
                f,
                "the tree covers {tree} leaves but the log holds {log} entries"
            ),
            TreeProblem::Below { nodes, level } => write!(
                f,
                "the tree holds {nodes} nodes below level {level}, which are never stored"
            ),
        }
    }
}

/// The leaves a tree stored from level `lowest` up covers: its nodes at that level, whole,
/// given the highest index stored there.
pub fn stored_leaves(lowest: u8, highest_index: Option<u64>) -> u64 {
    highest_index.map_or(0, |index| (index + 1) << lowest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A tree built through the frontier, as the writer builds it, with every node it stored.
    fn build(n: u64) -> (Frontier, HashMap<NodeId, Hash>) {
        let mut stored = HashMap::new();
        let mut frontier = Frontier::EMPTY;
        for i in 0..n {
            frontier
                .push(leaf_hash(&i.to_le_bytes()), |id, h| {
                    stored.insert(id, *h);
                    Ok::<_, Infallible>(())
                })
                .unwrap();
        }
        (frontier, stored)
    }

    /// MTH straight from RFC 6962's definition, over the leaves.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn reader(stored: &HashMap<NodeId, Hash>) -> Nodes<impl FnMut(NodeId) -> Result<Hash, ()>> {
        Nodes::new(move |id| stored.get(&id).copied().ok_or(()))
    }

    #[test]
    fn the_frontier_root_is_the_rfc_root_at_every_size() {
        let leaves: Vec<Hash> = (0..70u64).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for n in 0..70 {
            let (frontier, stored) = build(n);
            let expected = reference_root(&leaves[..n as usize]);
            assert_eq!(frontier.root(), expected, "size {n}");
            assert_eq!(reader(&stored).root(n).unwrap(), expected, "size {n}");
            let again = Frontier::from_edge(n, |id| stored.get(&id).copied().ok_or(())).unwrap();
            assert_eq!(
                (again.size(), again.root()),
                (frontier.size(), frontier.root())
            );
        }
    }

    #[test]
    fn nodes_recomputed_from_their_leaves_match_the_stored_ones() {
        let (frontier, stored) = build(70);
        for (id, hash) in &stored {
            let leaves = id.leaves().map(|i| leaf_hash(&i.to_le_bytes())).collect();
            assert_eq!(subtree_of_leaves(*id, leaves), Some(*hash), "{id:?}");
        }
        let short = NodeId { level: 2, index: 0 };
        let three = (0..3u64).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        assert_eq!(subtree_of_leaves(short, three), None);
        let edge: Vec<(NodeId, Hash)> = frontier.edge().collect();
        assert_eq!(
            edge.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            right_edge(70).collect::<Vec<_>>()
        );
        let mut hashes = edge.iter().map(|(_, h)| *h);
        let again = Frontier::from_edge(70, |_| hashes.next().ok_or(())).unwrap();
        assert_eq!(again.root(), frontier.root());
    }

    #[test]
    fn known_answer_for_rfc_6962_leaves() {
        // The empty tree's root and a one-leaf tree's root from RFC 6962's test vectors
        // (certificate-transparency-go merkle tests).
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn an_inclusion_proof_for_every_97th_entry_of_10000_verifies() {
        let n = 10_000;
        let (frontier, stored) = build(n);
        let root = frontier.root();
        let mut nodes = reader(&stored);
        for index in (0..n).step_by(97) {
            let proof = nodes.inclusion(index, n).unwrap();
            let leaf = leaf_hash(&index.to_le_bytes());
            verify_inclusion(&leaf, index, n, &proof, &root).unwrap();
            let other = leaf_hash(&(index + 1).to_le_bytes());
            assert!(verify_inclusion(&other, index, n, &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_between_random_sizes_verify() {
        let n = 3_000;
        let (_, stored) = build(n);
        let mut nodes = reader(&stored);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..300 {
            let new = next(n) + 1;
            let old = next(new) + 1;
            let proof = nodes.consistency(old, new).unwrap();
            let (old_root, new_root) = (nodes.root(old).unwrap(), nodes.root(new).unwrap());
            verify_consistency(old, new, &old_root, &new_root, &proof).unwrap();
            if old < new {
                let forged = node_hash(&old_root, &old_root);
                assert!(verify_consistency(old, new, &forged, &new_root, &proof).is_err());
            }
        }
    }

    #[test]
    fn a_rewritten_history_has_no_consistency_proof() {
        let (_, honest) = build(40);
        let mut stored = HashMap::new();
        let mut frontier = Frontier::EMPTY;
        for i in 0..40u64 {
            let bytes = if i == 7 { 999u64 } else { i }.to_le_bytes();
            frontier
                .push(leaf_hash(&bytes), |id, h| {
                    stored.insert(id, *h);
                    Ok::<_, Infallible>(())
                })
                .unwrap();
        }
        let old_root = reader(&honest).root(20).unwrap();
        let proof = reader(&stored).consistency(20, 40).unwrap();
        assert_eq!(
            verify_consistency(20, 40, &old_root, &frontier.root(), &proof),
            Err(ProofError::RootMismatch)
        );
    }

    #[test]
    fn proofs_read_few_nodes_on_a_large_tree() {
        // The right edge of 5,000,000 and the subtrees of one path: tens of reads, not millions.
        let size = 5_000_000u64;
        let mut reads = 0;
        let mut nodes = Nodes::new(|_id: NodeId| {
            reads += 1;
            Ok::<_, Infallible>([0u8; 32])
        });
        nodes.inclusion(1_234_567, size).unwrap();
        nodes.consistency(3_000_001, size).unwrap();
        drop(nodes);
        assert!(reads < 100, "{reads} reads");
    }

    #[test]
    fn tree_problems_are_found_in_order_and_worded_for_both_backends() {
        let node = NodeId { level: 5, index: 2 };
        let hash = [7; 32];
        assert_eq!(TreeProblem::of_node(node, 96, Some(hash), &hash), None);
        assert_eq!(
            TreeProblem::of_node(node, 96, Some([0; 32]), &hash).map(|p| p.to_string()),
            Some("tree node (level 5, index 2) does not match entry 96".into())
        );
        assert_eq!(
            TreeProblem::of_node(node, 96, None, &hash).map(|p| p.to_string()),
            Some("tree node (level 5, index 2) for entry 96 is missing".into())
        );
        assert_eq!(
            TreeProblem::of_extent(32, 20, 1, 4),
            Some(TreeProblem::Ahead { tree: 32, log: 20 }),
            "a tree ahead of the log is named before stray low nodes"
        );
        assert_eq!(TreeProblem::of_extent(16, 20, 0, 4), None);
        assert_eq!(stored_leaves(4, None), 0);
        assert_eq!(stored_leaves(4, Some(11)), 192);
    }
}
