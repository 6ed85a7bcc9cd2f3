//! Cross-site request forgery: every form carries a token bound to the client certificate
//! that loaded it, keyed with a secret drawn when the portal starts. Another site can make the
//! browser send the certificate, but cannot read the page, so it cannot know the token. The
//! portal has no cookie and no session to fix.

use crate::tls::PeerInfo;

pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The token for forms shown to `peer`.
    pub fn token(&self, peer: &PeerInfo) -> String {
        self.hash(peer).to_hex().to_string()
    }

    /// Whether `submitted` is the token of `peer` (compared in constant time).
    pub fn verify(&self, peer: &PeerInfo, submitted: &str) -> bool {
        blake3::Hash::from_hex(submitted.trim()).is_ok_and(|given| given == self.hash(peer))
    }

    fn hash(&self, peer: &PeerInfo) -> blake3::Hash {
        let fingerprint = peer
            .cert
            .as_ref()
            .map_or("", |cert| cert.fingerprint_sha256.as_str());
        blake3::keyed_hash(&self.0, fingerprint.as_bytes())
    }
}
