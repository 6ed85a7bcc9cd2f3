//! The master secret and the keys derived from it. Identities are only ever kept as keyed
//! hashes: an 18-digit ID number has about 35 bits of entropy, so an unkeyed hash would be
//! reversed in minutes, while a keyed hash with the key outside the database reveals nobody.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::identity::{Document, PersonName};

const SUBJECT_CONTEXT: &str = "safehire 2026-11-24 subject key v1";
const NAME_CONTEXT: &str = "safehire 2026-11-24 name tag v1";
const KEY_ID_CONTEXT: &str = "safehire 2026-11-24 key id v1";
const PSEUDONYM_CONTEXT: &str = "safehire 2026-12-02 subject pseudonym v1";
const BOUND_NAME_CONTEXT: &str = "safehire 2026-12-02 document-bound name tag v1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "master key file {path} does not exist (in production, provision it; in dev mode it is created)"
    )]
    Missing { path: PathBuf },
    #[error(
        "master key file {path} is readable by group or others (mode {mode:o}); run `chmod 600` on it"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("master key file {path} holds {len} bytes; it must hold exactly 32")]
    WrongLength { path: PathBuf, len: usize },
    #[error("master key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A hashed document: the only form in which a person's identity is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubjectKey(pub [u8; 32]);

/// A hashed, normalised name bound to the hashed document it was given with: the second
/// factor of a match. Bound, so that two people of one name share no tag.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameTag(pub [u8; 32]);

/// Binds a document's name hash to its document. Kept apart from [`Keys`] (and `Clone`) so that
/// the one-time re-tag of a database from before the binding can take it to the writer.
#[derive(Clone)]
pub struct NameBinder {
    key: [u8; 32],
}

impl fmt::Debug for NameBinder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NameBinder")
    }
}

impl NameBinder {
    /// The tag of `unbound` (the keyed hash of the name alone, the form tags were stored in
    /// before the binding) given with `subject`. The only place that formula lives.
    pub fn bind(&self, subject: &SubjectKey, unbound: &[u8; 32]) -> NameTag {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(&subject.0);
        hasher.update(unbound);
        NameTag(*hasher.finalize().as_bytes())
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectKey({}…)", hex::encode(&self.0[..4]))
    }
}

impl fmt::Debug for NameTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameTag({}…)", hex::encode(&self.0[..4]))
    }
}

/// The per-purpose keys derived from the master secret. The master itself is dropped after
/// derivation.
pub struct Keys {
    subject: [u8; 32],
    name: [u8; 32],
    binder: NameBinder,
    key_id: [u8; 32],
    pseudonym: [u8; 32],
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys(id {})", self.key_id_hex())
    }
}

impl Keys {
    pub fn from_master(master: &[u8; 32]) -> Self {
        Self {
            subject: blake3::derive_key(SUBJECT_CONTEXT, master),
            name: blake3::derive_key(NAME_CONTEXT, master),
            binder: NameBinder {
                key: blake3::derive_key(BOUND_NAME_CONTEXT, master),
            },
            key_id: blake3::derive_key(KEY_ID_CONTEXT, master),
            pseudonym: blake3::derive_key(PSEUDONYM_CONTEXT, master),
        }
    }

    /// Loads the master secret from `path`, creating it first when `create_if_missing`.
    pub fn load(path: &Path, create_if_missing: bool) -> Result<Self, KeyError> {
        Ok(Self::from_master(&read_secret(path, create_if_missing)?))
    }

    /// Writes a new random master secret to `path` (mode 0600) and returns its keys. Never
    /// replaces an existing file: a database is bound to the key it was created with, so an
    /// overwritten key would orphan it.
    pub fn create(path: &Path) -> Result<Self, KeyError> {
        create_key_file(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::load(path, false)
    }

    pub fn subject_key(&self, document: &Document) -> SubjectKey {
        let mut hasher = blake3::Hasher::new_keyed(&self.subject);
        hasher.update(document.doc_type().slug().as_bytes());
        hasher.update(b"|");
        hasher.update(document.number().as_bytes());
        SubjectKey(*hasher.finalize().as_bytes())
    }

    /// The tag of `name` as given with the document hashed to `subject`.
    pub fn name_tag(&self, subject: &SubjectKey, name: &PersonName) -> NameTag {
        let unbound = blake3::keyed_hash(&self.name, name.as_str().as_bytes());
        self.binder.bind(subject, unbound.as_bytes())
    }

    /// What re-tags the name tags of a database from before the binding.
    pub fn name_binder(&self) -> NameBinder {
        self.binder.clone()
    }

    /// The hex pseudonym under which a subject leaves the server (audit exports): stable, so
    /// that a prosecutor can follow one person across exports, but under a key of its own, so
    /// that an exported value is no key into the index.
    pub fn pseudonym(&self, subject: &SubjectKey) -> String {
        hex::encode(blake3::keyed_hash(&self.pseudonym, &subject.0).as_bytes())
    }

    /// Names the key without revealing it, so that a database is never read with the wrong key
    /// (which would silently turn every hit into NO_RECORD).
    pub fn key_id_hex(&self) -> String {
        hex::encode(&self.key_id[..16])
    }
}

/// Reads a 32-byte secret kept in a file of its own (mode 0600), creating a random one first
/// when `create_if_missing`: the master secret, and the audit log's signing key, are kept so.
pub fn read_secret(path: &Path, create_if_missing: bool) -> Result<[u8; 32], KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !path.exists() {
        if !create_if_missing {
            return Err(KeyError::Missing {
                path: path.to_path_buf(),
            });
        }
        create_key_file(path).map_err(io)?;
    }
    check_permissions(path)?;
    let bytes = std::fs::read(path).map_err(io)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::WrongLength {
            path: path.to_path_buf(),
            len: bytes.len(),
        })
}

fn create_key_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut master = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut master)
        .map_err(|_| std::io::Error::other("the system random generator failed"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(&master)?;
    file.sync_all()
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_32_byte_key_and_reloads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let first = Keys::load(&path, true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
        let again = Keys::load(&path, false).unwrap();
        assert_eq!(first.key_id_hex(), again.key_id_hex());
    }

    #[test]
    fn refuses_missing_open_or_short_key_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        assert!(matches!(
            Keys::load(&path, false),
            Err(KeyError::Missing { .. })
        ));
        Keys::load(&path, true).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            Keys::load(&path, false),
            Err(KeyError::TooOpen { .. })
        ));
        std::fs::write(&path, [7u8; 31]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            Keys::load(&path, false),
            Err(KeyError::WrongLength { len: 31, .. })
        ));
    }

    #[test]
    fn create_writes_a_new_key_and_never_replaces_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let created = Keys::create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(Keys::create(&path), Err(KeyError::Io { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(
            created.key_id_hex(),
            Keys::load(&path, false).unwrap().key_id_hex()
        );
    }

    #[test]
    fn different_masters_give_unrelated_keys() {
        let a = Keys::from_master(&[1; 32]);
        let b = Keys::from_master(&[2; 32]);
        assert_ne!(a.key_id_hex(), b.key_id_hex());
        assert_ne!(a.subject, a.name);
        assert_ne!(a.name, a.binder.key);
    }

    #[test]
    fn one_name_on_two_documents_gives_two_tags() {
        let keys = Keys::from_master(&[3; 32]);
        let today = time::macros::date!(2026 - 03 - 02);
        let mut people = crate::synth::Generator::new(16, today);
        let first = Document::parse(
            crate::identity::DocType::CnResidentId,
            &people.resident_id(),
            today,
        )
        .unwrap();
        let second = Document::parse(
            crate::identity::DocType::CnResidentId,
            &people.resident_id(),
            today,
        )
        .unwrap();
        let name = PersonName::parse(&people.name()).unwrap();
        let (a, b) = (keys.subject_key(&first), keys.subject_key(&second));
        assert_ne!(a, b);
        assert_ne!(keys.name_tag(&a, &name), keys.name_tag(&b, &name));
        assert_eq!(keys.name_tag(&a, &name), keys.name_tag(&a, &name));
        let other = PersonName::parse(&people.name()).unwrap();
        assert_ne!(keys.name_tag(&a, &name), keys.name_tag(&a, &other));
    }
}
