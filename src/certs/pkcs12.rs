//! An organisation's certificate, key and CA as one password-protected PKCS#12 file, the form
//! browsers import (Settings → Manage certificates → Import). PBES2 with PBKDF2-HMAC-SHA-256 and
//! AES-256-CBC, HMAC-SHA-256 MAC: what OpenSSL 3, NSS and Windows read without legacy options.

use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use super::{CertError, cert_der_from_pem};

/// Shortest password accepted: the file travels by mail or USB stick.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The PKCS#12 bytes for `cert_pem` with its PKCS#8 `key_pem` and the CA `ca_pem`, under
/// `password`, named `alias` (the USCC) in the browser's list.
pub fn pkcs12(
    cert_pem: &str,
    key_pem: &str,
    ca_pem: &str,
    password: &str,
    alias: &str,
) -> Result<Vec<u8>, CertError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(CertError::Invalid(format!(
            "the PKCS#12 password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let p12 = |e: p12_keystore::error::Error| CertError::Invalid(format!("PKCS#12: {e}"));
    let cert =
        p12_keystore::Certificate::from_der(cert_der_from_pem(cert_pem)?.as_ref()).map_err(p12)?;
    let ca =
        p12_keystore::Certificate::from_der(cert_der_from_pem(ca_pem)?.as_ref()).map_err(p12)?;
    let key = match PrivateKeyDer::from_pem_slice(key_pem.as_bytes())? {
        PrivateKeyDer::Pkcs8(key) => key,
        _ => return Err(CertError::Invalid("the private key is not PKCS#8".into())),
    };
    let key = p12_keystore::PrivateKey::from_der(key.secret_pkcs8_der()).map_err(p12)?;
    let local_key_id: [u8; 20] = rand::random();
    let chain = p12_keystore::PrivateKeyChain::new(local_key_id.to_vec(), key, [cert, ca]);
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(alias, p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    store.writer(password).write().map_err(p12)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{CertAuthority, OrgCertRequest};

    #[test]
    fn reads_back_with_its_password_only() {
        let now = time::OffsetDateTime::now_utc();
        let ca = CertAuthority::generate("test CA", 30, now).unwrap();
        let org = OrgCertRequest {
            uscc: "91150602MA0N0000X4",
            name: "测试幼儿园",
            role: "employer",
        };
        let pair = ca.issue_client(&org, 30, now).unwrap();
        let bytes = pkcs12(
            &pair.cert_pem,
            &pair.key_pem,
            &ca.cert_pem(),
            "correct horse",
            "u",
        )
        .unwrap();
        let policy = p12_keystore::Pkcs12ImportPolicy::Strict;
        let store = p12_keystore::KeyStore::from_pkcs12(&bytes, "correct horse", policy).unwrap();
        let (alias, chain) = store.private_key_chain().unwrap();
        assert_eq!(alias, "u");
        assert_eq!(chain.certs().len(), 2);
        assert_eq!(
            chain.certs()[0].as_der(),
            cert_der_from_pem(&pair.cert_pem).unwrap().as_ref()
        );
        let policy = p12_keystore::Pkcs12ImportPolicy::Strict;
        assert!(p12_keystore::KeyStore::from_pkcs12(&bytes, "wrong horse", policy).is_err());
        let short = pkcs12(&pair.cert_pem, &pair.key_pem, &ca.cert_pem(), "short", "u");
        assert!(short.is_err());
    }
}
