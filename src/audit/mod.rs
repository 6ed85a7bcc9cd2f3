//! The tamper-evident audit log: every call, refused ones included, becomes an entry whose hash
//! covers the previous entry's hash, so that editing, deleting or reordering any entry breaks
//! the chain from that entry on. Storage lives in `store`; this module defines what an entry
//! is, how it is hashed, and how a chain is verified.

pub mod merkle;
pub mod note;
pub mod signing;

use std::fmt;

use crate::keys::SubjectKey;
use merkle::{Frontier, NodeId};

/// The hash that precedes the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// Domain separation for entry hashes, so that an entry hash can never be confused with any
/// other blake3 value in the system.
const ENTRY_TAG: &[u8] = b"safehire audit entry v1\0";

/// An entry before it has a place in the chain. Every field is free of plaintext identity: the
/// subject is a keyed hash and `detail` carries only codes and counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewEntry {
    pub at_micros: i64,
    /// USCC of the calling organisation, empty when the caller could not be identified.
    pub caller: String,
    pub cert_fingerprint: String,
    pub role: String,
    /// The RPC (`CheckService.Check`) or internal event (`server.start`).
    pub action: String,
    /// USCC of the employer a check counts for.
    pub employer: String,
    pub subject: Option<SubjectKey>,
    pub purpose: String,
    pub scope: String,
    /// The result: an outcome (`NO_RECORD`), an effect (`CREATED`) or a refusal (`PERMISSION_DENIED`).
    pub outcome: String,
    pub check_id: String,
    pub registry_version: u64,
    pub detail: String,
}

/// An entry in its place in the chain.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub body: NewEntry,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Entry#{} {:?} {}",
            self.seq,
            self.body.action,
            hex::encode(self.hash)
        )
    }
}

/// The newest entry's place, as pinned by outside parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
    pub at_micros: i64,
}

impl Head {
    pub const EMPTY: Head = Head {
        seq: 0,
        hash: GENESIS,
        at_micros: 0,
    };
}

/// The bytes an entry's hash covers: a fixed field order, each field length-prefixed so that
/// no two different entries share an encoding.
pub fn canonical(seq: u64, entry: &NewEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(ENTRY_TAG);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&entry.at_micros.to_le_bytes());
    for text in [
        &entry.caller,
        &entry.cert_fingerprint,
        &entry.role,
        &entry.action,
        &entry.employer,
    ] {
        put_bytes(&mut out, text.as_bytes());
    }
    match &entry.subject {
        Some(subject) => {
            out.push(1);
            out.extend_from_slice(&subject.0);
        }
        None => out.push(0),
    }
    for text in [
        &entry.purpose,
        &entry.scope,
        &entry.outcome,
        &entry.check_id,
    ] {
        put_bytes(&mut out, text.as_bytes());
    }
    out.extend_from_slice(&entry.registry_version.to_le_bytes());
    put_bytes(&mut out, entry.detail.as_bytes());
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads back what `canonical` wrote; `None` for bytes it cannot have written. A receipt's
/// holder uses it to see which check its entry is.
pub fn decode_canonical(bytes: &[u8]) -> Option<(u64, NewEntry)> {
    let mut cursor = Cursor(bytes.strip_prefix(ENTRY_TAG)?);
    let seq = u64::from_le_bytes(cursor.array()?);
    let at_micros = i64::from_le_bytes(cursor.array()?);
    let mut texts = Vec::with_capacity(9);
    for _ in 0..5 {
        texts.push(cursor.text()?);
    }
    let subject = match cursor.array::<1>()? {
        [1] => Some(SubjectKey(cursor.array()?)),
        [0] => None,
        _ => return None,
    };
    for _ in 0..4 {
        texts.push(cursor.text()?);
    }
    let registry_version = u64::from_le_bytes(cursor.array()?);
    let detail = cursor.text()?;
    if !cursor.0.is_empty() {
        return None;
    }
    let [
        caller,
        cert_fingerprint,
        role,
        action,
        employer,
        purpose,
        scope,
        outcome,
        check_id,
    ] = <[String; 9]>::try_from(texts).ok()?;
    Some((
        seq,
        NewEntry {
            at_micros,
            caller,
            cert_fingerprint,
            role,
            action,
            employer,
            subject,
            purpose,
            scope,
            outcome,
            check_id,
            registry_version,
            detail,
        },
    ))
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn text(&mut self) -> Option<String> {
        let len = usize::try_from(u32::from_le_bytes(self.array()?)).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

/// An entry's leaf hash in the Merkle tree (leaf `seq - 1`), on every backend.
pub fn leaf_of(entry: &Entry) -> merkle::Hash {
    merkle::leaf_hash(&canonical(entry.seq, &entry.body))
}

pub fn chain_hash(prev: &[u8; 32], seq: u64, entry: &NewEntry) -> [u8; 32] {
    chain_hash_of(prev, &canonical(seq, entry))
}

fn chain_hash_of(prev: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(prev);
    hasher.update(canonical);
    *hasher.finalize().as_bytes()
}

/// The running end of the chain and of the Merkle tree over it, owned by the single writer.
#[derive(Debug, Clone, Copy)]
pub struct Chain {
    head: Head,
    tree: Frontier,
}

impl Chain {
    /// `tree` must be the frontier of the tree over the entries up to `head`.
    pub fn new(head: Head, tree: Frontier) -> Self {
        Self { head, tree }
    }

    pub fn head(&self) -> Head {
        self.head
    }

    /// The tree's right edge after the head, for a backend that stores it with the head.
    pub fn tree(&self) -> Frontier {
        self.tree
    }

    /// Places `body` after the current head and returns it with its sequence and hashes; every
    /// Merkle node the entry completes goes to `store`, in the same transaction as the entry.
    pub fn append<E>(
        &mut self,
        body: NewEntry,
        store: impl FnMut(NodeId, &merkle::Hash) -> Result<(), E>,
    ) -> Result<Entry, E> {
        let seq = self.head.seq + 1;
        let bytes = canonical(seq, &body);
        self.tree.push(merkle::leaf_hash(&bytes), store)?;
        let hash = chain_hash_of(&self.head.hash, &bytes);
        let entry = Entry {
            seq,
            prev_hash: self.head.hash,
            hash,
            body,
        };
        self.head = Head {
            seq,
            hash,
            at_micros: entry.body.at_micros,
        };
        Ok(entry)
    }
}

/// The result of recomputing a stretch of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub entries_checked: u64,
    /// The first entry that does not fit, and why.
    pub first_broken: Option<(u64, String)>,
    /// The Merkle root over the entries checked, when the walk started at the first entry:
    /// what a signed checkpoint of that size must hold.
    pub root: Option<merkle::Hash>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Walks entries in sequence order, starting after the entry whose hash is `start_prev`
/// (`GENESIS` and seq 0 for the whole log), and stops at the first that does not fit: a gap in
/// the sequence, a wrong link to its predecessor, or a hash that does not match its content.
pub struct Verifier {
    expected_seq: u64,
    prev_hash: [u8; 32],
    checked: u64,
    broken: Option<(u64, String)>,
    tree: Option<Frontier>,
}

impl Verifier {
    pub fn new(start_seq: u64, start_prev: [u8; 32]) -> Self {
        Self {
            expected_seq: start_seq,
            prev_hash: start_prev,
            checked: 0,
            broken: None,
            tree: (start_seq == 1).then_some(Frontier::EMPTY),
        }
    }

    /// Feeds the next entry; returns false once the chain is known to be broken.
    pub fn feed(&mut self, entry: &Entry) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let bytes = canonical(entry.seq, &entry.body);
        let problem = if entry.seq != self.expected_seq {
            Some(format!(
                "sequence {} found where {} was expected (an entry is missing or reordered)",
                entry.seq, self.expected_seq
            ))
        } else if entry.prev_hash != self.prev_hash {
            Some("its link to the previous entry does not match that entry's hash".to_string())
        } else if chain_hash_of(&entry.prev_hash, &bytes) != entry.hash {
            Some("its content does not match its hash (the entry was altered)".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            self.broken = Some((self.expected_seq, problem));
            return false;
        }
        if let Some(tree) = self.tree.as_mut() {
            let _ = tree.push(merkle::leaf_hash(&bytes), |_, _| Ok::<_, ()>(()));
        }
        self.checked += 1;
        self.expected_seq += 1;
        self.prev_hash = entry.hash;
        true
    }

    pub fn finish(self) -> Verification {
        Verification {
            entries_checked: self.checked,
            root: self.tree.map(|tree| tree.root()),
            first_broken: self.broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: u64) -> Vec<Entry> {
        let mut chain = Chain::new(Head::EMPTY, Frontier::EMPTY);
        (0..n)
            .map(|i| {
                chain
                    .append(
                        NewEntry {
                            at_micros: i as i64,
                            action: "CheckService.Check".into(),
                            outcome: "NO_RECORD".into(),
                            subject: Some(SubjectKey([i as u8; 32])),
                            ..NewEntry::default()
                        },
                        |_, _| Ok::<_, ()>(()),
                    )
                    .unwrap()
            })
            .collect()
    }

    fn verify(entries: &[Entry]) -> Verification {
        let mut verifier = Verifier::new(1, GENESIS);
        for e in entries {
            if !verifier.feed(e) {
                break;
            }
        }
        verifier.finish()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let log = entries(5);
        let v = verify(&log);
        assert!(v.ok());
        assert_eq!(v.entries_checked, 5);
    }

    #[test]
    fn an_edited_entry_is_named() {
        let mut log = entries(5);
        log[2].body.outcome = "RECORD_FOUND".into();
        assert_eq!(verify(&log).first_broken.map(|b| b.0), Some(3));
    }

    #[test]
    fn a_deleted_entry_is_named() {
        let mut log = entries(5);
        log.remove(1);
        assert_eq!(verify(&log).first_broken.map(|b| b.0), Some(2));
    }

    #[test]
    fn a_rehashed_entry_breaks_the_next_link() {
        let mut log = entries(5);
        log[1].body.detail = "forged".into();
        log[1].hash = chain_hash(&log[1].prev_hash, 2, &log[1].body);
        assert_eq!(verify(&log).first_broken.map(|b| b.0), Some(3));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let a = NewEntry {
            caller: "ab".into(),
            role: "c".into(),
            ..NewEntry::default()
        };
        let b = NewEntry {
            caller: "a".into(),
            role: "bc".into(),
            ..NewEntry::default()
        };
        assert_ne!(canonical(1, &a), canonical(1, &b));
    }

    #[test]
    fn canonical_bytes_decode_to_the_entry() {
        for entry in entries(3) {
            let bytes = canonical(entry.seq, &entry.body);
            assert_eq!(
                decode_canonical(&bytes),
                Some((entry.seq, entry.body.clone()))
            );
            assert_eq!(decode_canonical(&bytes[..bytes.len() - 1]), None);
        }
    }

    #[test]
    fn verification_yields_the_merkle_root_of_the_entries() {
        let log = entries(6);
        let mut tree = Frontier::EMPTY;
        for e in &log {
            tree.push(merkle::leaf_hash(&canonical(e.seq, &e.body)), |_, _| {
                Ok::<_, ()>(())
            })
            .unwrap();
        }
        assert_eq!(verify(&log).root, Some(tree.root()));
    }
}
