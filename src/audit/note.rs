//! The C2SP text formats that let outsiders check the log without trusting its operator:
//! signed notes (c2sp.org/signed-note) with Ed25519 keys and their verifier keys, checkpoints
//! (c2sp.org/tlog-checkpoint), timestamped witness cosignatures (c2sp.org/tlog-cosignature) and
//! offline receipts (c2sp.org/tlog-proof). Only ring's Ed25519 is used.

use base64::Engine as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use super::merkle::{Hash, leaf_hash, verify_inclusion};
use super::{NewEntry, decode_canonical};

/// Signature type byte of a plain Ed25519 note signature (the log's).
const TYPE_ED25519: u8 = 0x01;
/// Signature type byte of a timestamped Ed25519 cosignature (a witness's).
const TYPE_COSIGNATURE: u8 = 0x04;
/// The first line of a receipt.
pub const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Signatures a note may carry before it is refused (the spec asks for at least 16).
const MAX_SIGNATURES: usize = 64;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("no valid signature by {0}")]
    NotSigned(String),
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
    #[error("the inclusion proof: {0}")]
    Proof(#[from] super::merkle::ProofError),
    #[error("the entry bytes are not a safehire audit entry{0}")]
    NotAnEntry(String),
}

fn malformed(what: &'static str, reason: impl Into<String>) -> NoteError {
    NoteError::Malformed {
        what,
        reason: reason.into(),
    }
}

/// `SHA-256(name || 0x0A || type || public key)[:4]`.
fn key_id(name: &str, sig_type: u8, public: &[u8]) -> [u8; 4] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(&[sig_type]);
    ctx.update(public);
    let digest = ctx.finish();
    let mut id = [0u8; 4];
    id.copy_from_slice(&digest.as_ref()[..4]);
    id
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// A key that signs notes: the log's (type 0x01) or a witness's (type 0x04).
pub struct NoteSigner {
    name: String,
    pair: Ed25519KeyPair,
    sig_type: u8,
    id: [u8; 4],
}

impl NoteSigner {
    fn new(name: &str, seed: &[u8; 32], sig_type: u8) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(malformed(
                "key name",
                "must be non-empty, without spaces or '+'",
            ));
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| malformed("signing key", "not an Ed25519 seed"))?;
        let id = key_id(name, sig_type, pair.public_key().as_ref());
        Ok(Self {
            name: name.to_string(),
            pair,
            sig_type,
            id,
        })
    }

    /// The log's key: signs checkpoints.
    pub fn log(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        Self::new(name, seed, TYPE_ED25519)
    }

    /// A witness's key: cosigns checkpoints.
    pub fn witness(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        Self::new(name, seed, TYPE_COSIGNATURE)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name+hex(key id)+base64(type || public key)`.
    pub fn vkey(&self) -> String {
        let mut material = vec![self.sig_type];
        material.extend_from_slice(self.pair.public_key().as_ref());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.id),
            b64().encode(material)
        )
    }

    /// Signs `text` (ending in a newline) and returns the whole note.
    pub fn sign_note(&self, text: &str) -> String {
        let sig = self.pair.sign(text.as_bytes());
        let mut bytes = self.id.to_vec();
        bytes.extend_from_slice(sig.as_ref());
        format!("{text}\n— {} {}\n", self.name, b64().encode(bytes))
    }

    /// The cosignature line for a checkpoint's `body` at `timestamp` (POSIX seconds).
    pub fn cosign(&self, body: &str, timestamp: u64) -> String {
        let message = cosigned_message(body, timestamp);
        let sig = self.pair.sign(message.as_bytes());
        let mut bytes = self.id.to_vec();
        bytes.extend_from_slice(&timestamp.to_be_bytes());
        bytes.extend_from_slice(sig.as_ref());
        format!("— {} {}\n", self.name, b64().encode(bytes))
    }
}

fn cosigned_message(body: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// A verifier key as parsed from its text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    pub name: String,
    id: [u8; 4],
    sig_type: u8,
    public: Vec<u8>,
}

impl Verifier {
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("verifier key", "expected name+keyid+key"));
        };
        if !valid_name(name) {
            return Err(malformed("verifier key", "bad key name"));
        }
        let id: [u8; 4] = hex::decode(id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed("verifier key", "the key id is not 8 hex digits"))?;
        let material = b64()
            .decode(material)
            .map_err(|_| malformed("verifier key", "the key is not base64"))?;
        let (sig_type, public) = match material.split_first() {
            Some((&t, public))
                if (t == TYPE_ED25519 || t == TYPE_COSIGNATURE) && public.len() == 32 =>
            {
                (t, public.to_vec())
            }
            _ => {
                return Err(malformed(
                    "verifier key",
                    "not an Ed25519 key (type 0x01 or 0x04, 32 bytes)",
                ));
            }
        };
        if key_id(name, sig_type, &public) != id {
            return Err(malformed(
                "verifier key",
                "the key id does not match the key",
            ));
        }
        Ok(Self {
            name: name.to_string(),
            id,
            sig_type,
            public,
        })
    }

    /// A witness's key (timestamped cosignatures), not a log's.
    pub fn is_cosigner(&self) -> bool {
        self.sig_type == TYPE_COSIGNATURE
    }

    /// Checks `line`'s signature, if it is this key's; `Ok(None)` for another key's line.
    /// Returns the cosignature's timestamp (0 for a plain note signature).
    fn check(&self, text: &str, line: &SignatureLine) -> Result<Option<u64>, NoteError> {
        if line.name != self.name || line.bytes.get(..4) != Some(&self.id[..]) {
            return Ok(None);
        }
        let public = UnparsedPublicKey::new(&ED25519, &self.public);
        let (message, sig, timestamp) = if self.sig_type == TYPE_COSIGNATURE {
            let Some(stamp) = line.bytes.get(4..12) else {
                return Err(NoteError::BadSignature(self.name.clone()));
            };
            let timestamp = u64::from_be_bytes(stamp.try_into().unwrap_or_default());
            (
                cosigned_message(text, timestamp),
                &line.bytes[12..],
                timestamp,
            )
        } else {
            (text.to_string(), &line.bytes[4..], 0)
        };
        public
            .verify(message.as_bytes(), sig)
            .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
        Ok(Some(timestamp))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLine {
    pub name: String,
    bytes: Vec<u8>,
    /// The line as it was, with its newline.
    pub text: String,
}

impl SignatureLine {
    pub fn parse(line: &str) -> Result<Self, NoteError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let rest = line
            .strip_prefix("— ")
            .ok_or_else(|| malformed("signature line", "does not start with an em dash"))?;
        let (name, sig) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("signature line", "no signature after the name"))?;
        if !valid_name(name) {
            return Err(malformed("signature line", "bad key name"));
        }
        let bytes = b64()
            .decode(sig)
            .map_err(|_| malformed("signature line", "the signature is not base64"))?;
        if bytes.len() < 5 {
            return Err(malformed("signature line", "the signature is too short"));
        }
        Ok(Self {
            name: name.to_string(),
            bytes,
            text: format!("{line}\n"),
        })
    }
}

/// A note split into its text (with the final newline) and its signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<SignatureLine>,
}

impl Note {
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        if note.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(malformed("note", "holds control characters"));
        }
        let cut = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("note", "no blank line before the signatures"))?;
        let text = &note[..=cut];
        let lines = &note[cut + 2..];
        if !lines.ends_with('\n') {
            return Err(malformed("note", "does not end in a newline"));
        }
        let signatures = lines
            .lines()
            .map(SignatureLine::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if signatures.is_empty() || signatures.len() > MAX_SIGNATURES {
            return Err(malformed(
                "note",
                format!("{} signatures", signatures.len()),
            ));
        }
        Ok(Self {
            text: text.to_string(),
            signatures,
        })
    }

    /// Verifies the signature by `key`; fails when there is none, or it does not verify.
    /// Returns the cosignature's timestamp (0 for the log's own signature).
    pub fn verify(&self, key: &Verifier) -> Result<u64, NoteError> {
        for line in &self.signatures {
            if let Some(timestamp) = key.check(&self.text, line)? {
                return Ok(timestamp);
            }
        }
        Err(NoteError::NotSigned(key.name.clone()))
    }

    pub fn render(&self) -> String {
        let mut out = format!("{}\n", self.text);
        for line in &self.signatures {
            out.push_str(&line.text);
        }
        out
    }
}

/// The three lines of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size, base64 root, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            b64().encode(self.root)
        )
    }

    pub fn parse_body(text: &str) -> Result<Self, NoteError> {
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        let size = lines.next().unwrap_or_default();
        let root = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(malformed("checkpoint", "no origin line"));
        }
        if size.len() > 1 && size.starts_with('0') {
            return Err(malformed("checkpoint", "the size has leading zeroes"));
        }
        let size = size
            .parse()
            .map_err(|_| malformed("checkpoint", "the size is not a number"))?;
        let root: Hash = b64()
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed("checkpoint", "the root is not a base64 SHA-256 hash"))?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

/// A checkpoint note whose log signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: Note,
}

impl SignedCheckpoint {
    /// Parses `note` and checks the log's signature with `log_key` (whose name is the origin).
    pub fn open(note: &str, log_key: &Verifier) -> Result<Self, NoteError> {
        let note = Note::parse(note)?;
        note.verify(log_key)?;
        let checkpoint = Checkpoint::parse_body(&note.text)?;
        if checkpoint.origin != log_key.name {
            return Err(malformed(
                "checkpoint",
                format!(
                    "origin {:?} is not the log key's {:?}",
                    checkpoint.origin, log_key.name
                ),
            ));
        }
        Ok(Self { checkpoint, note })
    }
}

/// An offline receipt: an entry's bytes, its index, the inclusion proof and the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub entry: Vec<u8>,
    pub index: u64,
    pub proof: Vec<Hash>,
    /// The checkpoint note, verbatim, with its signatures.
    pub checkpoint: String,
}

impl Receipt {
    pub fn render(&self) -> String {
        let mut out = format!("{PROOF_HEADER}\n");
        out.push_str(&format!("extra {}\n", b64().encode(&self.entry)));
        out.push_str(&format!("index {}\n", self.index));
        for hash in &self.proof {
            out.push_str(&b64().encode(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Everything a receipt's holder can check offline with the log's key alone: the
    /// checkpoint's signature, that the entry bytes are an audit entry at the stated index,
    /// and that the inclusion proof binds them to the signed root.
    pub fn verify(&self, log_key: &Verifier) -> Result<(Checkpoint, NewEntry), NoteError> {
        let signed = SignedCheckpoint::open(&self.checkpoint, log_key)?;
        let (seq, entry) =
            decode_canonical(&self.entry).ok_or_else(|| NoteError::NotAnEntry(String::new()))?;
        if seq != self.index + 1 {
            return Err(NoteError::NotAnEntry(format!(
                " at index {} (it says sequence {seq})",
                self.index
            )));
        }
        verify_inclusion(
            &leaf_hash(&self.entry),
            self.index,
            signed.checkpoint.size,
            &self.proof,
            &signed.checkpoint.root,
        )?;
        Ok((signed.checkpoint, entry))
    }

    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let what = "receipt";
        let mut rest = text
            .strip_prefix(PROOF_HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or_else(|| malformed(what, format!("does not start with {PROOF_HEADER}")))?;
        let next_line = |rest: &mut &str| -> Result<String, NoteError> {
            let (line, after) = rest
                .split_once('\n')
                .ok_or_else(|| malformed(what, "ends early"))?;
            *rest = after;
            Ok(line.to_string())
        };
        let line = next_line(&mut rest)?;
        let entry = line
            .strip_prefix("extra ")
            .ok_or_else(|| malformed(what, "no extra line with the entry"))
            .and_then(|e| {
                b64()
                    .decode(e)
                    .map_err(|_| malformed(what, "the extra line is not base64"))
            })?;
        let line = next_line(&mut rest)?;
        let index = line
            .strip_prefix("index ")
            .filter(|i| i.len() == 1 || !i.starts_with('0'))
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| malformed(what, "no index line"))?;
        let mut proof = Vec::new();
        loop {
            let line = next_line(&mut rest)?;
            if line.is_empty() {
                break;
            }
            let hash: Hash = b64()
                .decode(&line)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| malformed(what, "a proof line is not a base64 SHA-256 hash"))?;
            proof.push(hash);
        }
        Ok(Self {
            entry,
            index,
            proof,
            checkpoint: rest.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_note_example_of_the_spec_verifies() {
        let key = Verifier::parse(
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        )
        .unwrap();
        let note = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let parsed = Note::parse(note).unwrap();
        assert_eq!(parsed.verify(&key), Ok(0));
        let forged = note.replace("example message", "exemple message");
        assert!(Note::parse(&forged).unwrap().verify(&key).is_err());
    }

    #[test]
    fn a_checkpoint_verifies_against_its_vkey_and_not_once_changed() {
        let signer = NoteSigner::log("safehire.test/log", &[7; 32]).unwrap();
        let cp = Checkpoint {
            origin: "safehire.test/log".into(),
            size: 42,
            root: [9; 32],
        };
        let note = signer.sign_note(&cp.body());
        let key = Verifier::parse(&signer.vkey()).unwrap();
        let opened = SignedCheckpoint::open(&note, &key).unwrap();
        assert_eq!(opened.checkpoint, cp);
        assert!(SignedCheckpoint::open(&note.replace("\n42\n", "\n43\n"), &key).is_err());
    }

    #[test]
    fn a_cosignature_verifies_with_its_timestamp() {
        let log = NoteSigner::log("safehire.test/log", &[7; 32]).unwrap();
        let witness = NoteSigner::witness("witness.test/w1", &[8; 32]).unwrap();
        let body = Checkpoint {
            origin: "safehire.test/log".into(),
            size: 3,
            root: [1; 32],
        }
        .body();
        let mut note = log.sign_note(&body);
        note.push_str(&witness.cosign(&body, 1_700_000_000));
        let parsed = Note::parse(&note).unwrap();
        let wkey = Verifier::parse(&witness.vkey()).unwrap();
        assert_eq!(parsed.verify(&wkey), Ok(1_700_000_000));
        // The same key as a plain signer has another key id: its signature is not the witness's.
        assert!(witness.vkey().contains('+'));
        assert_ne!(
            NoteSigner::log("witness.test/w1", &[8; 32]).unwrap().vkey(),
            witness.vkey()
        );
    }

    #[test]
    fn a_receipt_round_trips() {
        let receipt = Receipt {
            entry: b"entry bytes".to_vec(),
            index: 0,
            proof: vec![[1; 32], [2; 32]],
            checkpoint: "o\n1\nAAAA\n\n— o AAAAAAA=\n".into(),
        };
        assert_eq!(Receipt::parse(&receipt.render()).unwrap(), receipt);
    }
}
