//! An outsider's verifier, written from the C2SP specs (`signed-note`, `tlog-checkpoint`,
//! `tlog-cosignature`, `tlog-proof`) and RFC 9162 alone, with nothing of safehire's own code:
//! only `ring` for SHA-256 and Ed25519 and `base64`. It checks what the real binary hands out —
//! the verifier key, a checkpoint, a receipt, a consistency proof — so that a format the specs'
//! other implementations would reject cannot pass because both sides share a mistake.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::digest::{SHA256, digest};
use ring::signature::{ED25519, UnparsedPublicKey};

use crate::common;
use common::process::{run, serve};

/// A parsed verifier key: `name+hex(key id)+base64(type || public key)`.
struct Vkey {
    name: String,
    id: [u8; 4],
    kind: u8,
    public: Vec<u8>,
}

fn parse_vkey(text: &str) -> Vkey {
    let mut parts = text.trim().splitn(3, '+');
    let name = parts.next().expect("vkey name").to_string();
    let id_hex = parts.next().expect("vkey id");
    let key = B64
        .decode(parts.next().expect("vkey key"))
        .expect("vkey base64");
    assert!(!name.is_empty() && !name.contains(char::is_whitespace));
    assert_eq!(id_hex.len(), 8, "key id is 8 lowercase hex digits");
    assert_eq!(id_hex, id_hex.to_lowercase());
    let id: [u8; 4] = hex::decode(id_hex).unwrap().try_into().unwrap();
    let (kind, public) = (key[0], key[1..].to_vec());
    assert_eq!(public.len(), 32, "an Ed25519 public key");
    let vkey = Vkey {
        name,
        id,
        kind,
        public,
    };
    assert_eq!(
        key_id(&vkey.name, vkey.kind, &vkey.public),
        vkey.id,
        "recommended key id"
    );
    vkey
}

/// `SHA-256(name || 0x0A || type || public key)[:4]`, as `signed-note` recommends.
fn key_id(name: &str, kind: u8, public: &[u8]) -> [u8; 4] {
    let mut input = name.as_bytes().to_vec();
    input.push(b'\n');
    input.push(kind);
    input.extend_from_slice(public);
    digest(&SHA256, &input).as_ref()[..4].try_into().unwrap()
}

/// Splits a signed note into its text (with the final newline) and its signature lines, as
/// (key name, decoded signature) pairs.
fn split_note(note: &str) -> (String, Vec<(String, Vec<u8>)>) {
    assert!(
        !note.chars().any(|c| c < ' ' && c != '\n'),
        "no control characters but newline"
    );
    let at = note
        .rfind("\n\n")
        .expect("a blank line before the signatures");
    let text = note[..=at].to_string();
    let signatures = note[at + 2..]
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let rest = line
                .strip_prefix("— ")
                .expect("a signature line starts with an em dash");
            let (name, sig) = rest.split_once(' ').expect("name and signature");
            (name.to_string(), B64.decode(sig).expect("signature base64"))
        })
        .collect();
    (text, signatures)
}

/// Verifies that `vkey` (type 0x01) signed the note; returns the note text.
fn verify_note(note: &str, vkey: &Vkey) -> String {
    assert_eq!(vkey.kind, 0x01, "a log key is plain Ed25519");
    let (text, signatures) = split_note(note);
    let (_, sig) = signatures
        .iter()
        .find(|(name, sig)| name == &vkey.name && sig.len() >= 4 && sig[..4] == vkey.id)
        .expect("a signature by the log key");
    UnparsedPublicKey::new(&ED25519, &vkey.public)
        .verify(text.as_bytes(), &sig[4..])
        .expect("the log's signature verifies");
    text
}

/// Verifies a timestamped Ed25519 cosignature (type 0x04) on a checkpoint's text.
fn verify_cosignature(text: &str, signature: &[u8], vkey: &Vkey) {
    assert_eq!(vkey.kind, 0x04);
    assert_eq!(signature.len(), 4 + 8 + 64, "key id, timestamp, signature");
    assert_eq!(signature[..4], vkey.id);
    let time = u64::from_be_bytes(signature[4..12].try_into().unwrap());
    let message = format!("cosignature/v1\ntime {time}\n{text}");
    UnparsedPublicKey::new(&ED25519, &vkey.public)
        .verify(message.as_bytes(), &signature[12..])
        .expect("the cosignature verifies");
}

struct Checkpoint {
    origin: String,
    size: u64,
    root: [u8; 32],
}

fn parse_checkpoint(text: &str) -> Checkpoint {
    let lines: Vec<&str> = text.strip_suffix('\n').unwrap().split('\n').collect();
    assert!(lines.len() >= 3, "origin, size, root");
    let size = lines[1];
    assert!(size == "0" || !size.starts_with('0'), "no leading zeroes");
    Checkpoint {
        origin: lines[0].to_string(),
        size: size.parse().expect("a decimal tree size"),
        root: B64
            .decode(lines[2])
            .unwrap()
            .try_into()
            .expect("a SHA-256 root"),
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&SHA256);
    for part in parts {
        ctx.update(part);
    }
    ctx.finish().as_ref().try_into().unwrap()
}

fn leaf_hash(entry: &[u8]) -> [u8; 32] {
    sha256(&[&[0x00], entry])
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    sha256(&[&[0x01], left, right])
}

/// RFC 9162 §2.1.3.2.
fn inclusion_root(index: u64, size: u64, leaf: [u8; 32], proof: &[[u8; 32]]) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = leaf;
    for p in proof {
        if s_n == 0 {
            return None;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    (s_n == 0).then_some(r)
}

/// RFC 9162 §2.1.4.2: true when `proof` shows the tree of `second` entries extends the tree of
/// `first` entries.
fn consistent(
    first: u64,
    second: u64,
    first_root: [u8; 32],
    second_root: [u8; 32],
    proof: &[[u8; 32]],
) -> bool {
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 || first > second || proof.is_empty() {
        return false;
    }
    let mut path: Vec<[u8; 32]> = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_root);
    }
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    fr == first_root && sr == second_root && s_n == 0
}

/// A `tlog-proof@v1` file: extra data, index, inclusion proof, checkpoint note.
struct Receipt {
    extra: Vec<u8>,
    index: u64,
    proof: Vec<[u8; 32]>,
    checkpoint: String,
}

fn parse_receipt(text: &str) -> Receipt {
    let mut lines = text.split('\n');
    assert_eq!(lines.next(), Some("c2sp.org/tlog-proof@v1"));
    let mut line = lines.next().unwrap();
    let mut extra = Vec::new();
    if let Some(data) = line.strip_prefix("extra ") {
        extra = B64.decode(data).expect("extra base64");
        line = lines.next().unwrap();
    }
    let index = line.strip_prefix("index ").expect("an index line");
    assert!(index == "0" || !index.starts_with('0'));
    let mut proof = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        proof.push(
            B64.decode(line)
                .unwrap()
                .try_into()
                .expect("a SHA-256 hash"),
        );
    }
    Receipt {
        extra,
        index: index.parse().unwrap(),
        proof,
        checkpoint: lines.collect::<Vec<_>>().join("\n"),
    }
}

fn stdout_of(dir: &Path, server: &str, args: &[&str]) -> String {
    let out = run(dir, server, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_outsider_verifies_checkpoints_receipts_and_consistency_from_the_specs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (_serve, server) = serve(dir.path());
    let dir = dir.path();

    let vkey = parse_vkey(&stdout_of(dir, &server, &["audit", "log-key"]));

    // A few checks, each with its receipt.
    let people = common::people(15, 5);
    let mut receipts = Vec::new();
    for (doc_number, name) in &people {
        let answer = stdout_of(
            dir,
            &server,
            &[
                "check",
                "--doc-type",
                "cn-id",
                "--doc-number",
                doc_number,
                "--name",
                name,
                "--purpose",
                "pre-hire",
                "--consent",
                "CONSENT-2026-001",
                "--json",
            ],
        );
        let json: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let check_id = json["check_id"].as_str().expect("a check id").to_string();
        receipts.push(check_id);
    }
    // Let the signer cover them (at most one checkpoint a second while entries arrive).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let first_note = stdout_of(dir, &server, &["audit", "checkpoint"]);
    let first = parse_checkpoint(&verify_note(&first_note, &vkey));
    assert_eq!(first.origin, vkey.name, "the log's key name is its origin");
    assert!(first.size as usize > people.len());

    for check_id in &receipts {
        let file = dir.join(format!("{check_id}.tlog-proof"));
        stdout_of(
            dir,
            &server,
            &["receipt", check_id, "--out", file.to_str().unwrap()],
        );
        let receipt = parse_receipt(&std::fs::read_to_string(&file).unwrap());
        let checkpoint = parse_checkpoint(&verify_note(&receipt.checkpoint, &vkey));
        let root = inclusion_root(
            receipt.index,
            checkpoint.size,
            leaf_hash(&receipt.extra),
            &receipt.proof,
        );
        assert_eq!(
            root,
            Some(checkpoint.root),
            "receipt for {check_id} proves inclusion"
        );
        assert!(
            String::from_utf8_lossy(&receipt.extra).contains(check_id.as_str()),
            "the entry bytes name the check"
        );
        // One changed byte of the entry and the proof no longer binds it.
        let mut forged = receipt.extra.clone();
        forged[0] ^= 1;
        assert_ne!(
            inclusion_root(
                receipt.index,
                checkpoint.size,
                leaf_hash(&forged),
                &receipt.proof
            ),
            Some(checkpoint.root)
        );
    }

    // More entries, a newer checkpoint, and the proof that it extends the first.
    for (doc_number, name) in common::people(16, 3) {
        stdout_of(
            dir,
            &server,
            &[
                "check",
                "--doc-type",
                "cn-id",
                "--doc-number",
                &doc_number,
                "--name",
                &name,
                "--purpose",
                "pre-hire",
                "--consent",
                "CONSENT-2026-002",
            ],
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let second_note = stdout_of(dir, &server, &["audit", "checkpoint"]);
    let second = parse_checkpoint(&verify_note(&second_note, &vkey));
    assert!(second.size > first.size);
    let proof: Vec<[u8; 32]> = stdout_of(
        dir,
        &server,
        &[
            "audit",
            "consistency",
            "--old",
            &first.size.to_string(),
            "--new",
            &second.size.to_string(),
        ],
    )
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(|l| B64.decode(l.trim()).unwrap().try_into().unwrap())
    .collect();
    assert!(consistent(
        first.size,
        second.size,
        first.root,
        second.root,
        &proof
    ));
    assert!(
        !consistent(first.size, second.size, second.root, second.root, &proof),
        "a wrong old root is refused"
    );

    // A witness cosigns the newest checkpoint; the server then serves it with the cosignature,
    // which verifies under the witness's key as tlog-cosignature defines it.
    let state = dir.join("witness");
    let log_key = stdout_of(dir, &server, &["audit", "log-key"]);
    let witnessed = stdout_of(
        dir,
        &server,
        &[
            "--as",
            "prosecutor",
            "audit",
            "witness",
            "--state",
            state.to_str().unwrap(),
            "--log-key",
            log_key.trim(),
        ],
    );
    let witness_key = witnessed
        .lines()
        .find_map(|l| l.strip_prefix("witness key "))
        .expect("the witness prints its key");
    let witness = parse_vkey(witness_key);
    // The witness's own calls are audited, so a newer checkpoint may already be out: ask for the
    // one it cosigned.
    let cosigned_size = witnessed
        .lines()
        .find_map(|l| l.strip_prefix("checkpoint ")?.split(' ').next())
        .expect("the witness names the checkpoint it cosigned");
    let served = stdout_of(
        dir,
        &server,
        &["audit", "checkpoint", "--size", cosigned_size],
    );
    let text = verify_note(&served, &vkey);
    let (_, signatures) = split_note(&served);
    let (_, cosignature) = signatures
        .iter()
        .find(|(name, sig)| name == &witness.name && sig[..4] == witness.id)
        .expect("the served checkpoint carries the witness's cosignature");
    verify_cosignature(&text, cosignature, &witness);
}
