//! Certificate signing requests, so that an organisation's private key never leaves it: the
//! organisation makes its key pair and a CSR, the operator signs the CSR with the operator CA.
//! The request's own signature is checked (the requester holds the key), and the names it
//! carries may not contradict the organisation the operator signs for. The certificate then
//! gets the names safehire sets, never the ones requested (see
//! [`super::CertAuthority::certify_client_key`]).

use rcgen::{PublicKeyData, SignatureAlgorithm};
use ring::signature::{self, VerificationAlgorithm};
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_SIG_ECDSA_WITH_SHA256,
    OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{CertError, uscc_from_urn};

/// A certificate request whose signature verified.
#[derive(Debug)]
pub struct SigningRequest {
    key: RequestKey,
    /// Every organisation the request names: subject CNs and `urn:uscc:` SAN URIs.
    named: Vec<String>,
    /// Subject O: the organisation's name, when the operator gives none.
    pub organisation: Option<String>,
}

/// The requester's public key, in the form rcgen certifies.
#[derive(Debug)]
struct RequestKey {
    raw: Vec<u8>,
    algorithm: &'static SignatureAlgorithm,
}

impl PublicKeyData for RequestKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }
}

impl SigningRequest {
    /// Parses a PEM `CERTIFICATE REQUEST` (what `openssl req -new` writes) and checks its
    /// signature.
    pub fn from_pem(pem: &str) -> Result<Self, CertError> {
        let der = CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())?;
        Self::from_der(der.as_ref())
    }

    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let csr = match X509CertificationRequest::from_der(der) {
            Ok(([], csr)) => csr,
            Ok(_) => {
                return Err(CertError::Parse(
                    "trailing data after the certificate request".into(),
                ));
            }
            Err(e) => return Err(CertError::Parse(format!("certificate request: {e}"))),
        };
        let info = &csr.certification_request_info;
        let (algorithm, verification) =
            key_algorithm(&info.subject_pki, &csr.signature_algorithm.algorithm)?;
        let raw = info.subject_pki.subject_public_key.data.to_vec();
        signature::UnparsedPublicKey::new(verification, &raw)
            .verify(info.raw, &csr.signature_value.data)
            .map_err(|_| {
                CertError::Invalid(
                    "the certificate request's signature does not verify (altered or damaged)"
                        .into(),
                )
            })?;

        let text = |value: &x509_parser::x509::AttributeTypeAndValue<'_>| {
            value.as_str().map(str::to_owned).map_err(|_| {
                CertError::Parse("certificate request: subject is not readable text".into())
            })
        };
        let mut named = info
            .subject
            .iter_common_name()
            .map(text)
            .collect::<Result<Vec<_>, _>>()?;
        for extension in csr.requested_extensions().into_iter().flatten() {
            if let ParsedExtension::SubjectAlternativeName(san) = extension {
                named.extend(san.general_names.iter().filter_map(|name| match name {
                    GeneralName::URI(uri) => uscc_from_urn(uri),
                    _ => None,
                }));
            }
        }
        let organisation = info
            .subject
            .iter_organization()
            .next()
            .map(text)
            .transpose()?;
        Ok(Self {
            key: RequestKey { raw, algorithm },
            named,
            organisation,
        })
    }

    /// The key to certify.
    pub fn public_key(&self) -> &impl PublicKeyData {
        &self.key
    }

    /// Refuses a request that names anyone but `uscc` (in its subject CN or a `urn:uscc:` SAN
    /// URI): signing it would mean the operator mixed up two organisations' requests. A
    /// request that names nobody is fine, since the certificate gets its names from the
    /// operator.
    pub fn check_names(&self, uscc: &str) -> Result<(), CertError> {
        let same = |name: &str| {
            crate::identity::Uscc::parse(name).is_ok_and(|parsed| parsed.as_str() == uscc)
        };
        match self.named.iter().find(|name| !same(name)) {
            Some(other) => Err(CertError::Invalid(format!(
                "the certificate request names {other:?}, not {uscc}"
            ))),
            None => Ok(()),
        }
    }
}

/// The key types safehire certifies — those rustls verifies for TLS 1.3 client certificates
/// and rcgen can describe — with the check of the request's signature that goes with each.
fn key_algorithm(
    spki: &SubjectPublicKeyInfo<'_>,
    signed_with: &x509_parser::der_parser::oid::Oid<'_>,
) -> Result<
    (
        &'static SignatureAlgorithm,
        &'static dyn VerificationAlgorithm,
    ),
    CertError,
> {
    let key = &spki.algorithm.algorithm;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    let sha256 = *signed_with == OID_SIG_ECDSA_WITH_SHA256;
    let sha384 = *signed_with == OID_SIG_ECDSA_WITH_SHA384;
    if *key == OID_SIG_ED25519 && *signed_with == OID_SIG_ED25519 {
        return Ok((&rcgen::PKCS_ED25519, &signature::ED25519));
    }
    if *key == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let p256 = &rcgen::PKCS_ECDSA_P256_SHA256;
        let p384 = &rcgen::PKCS_ECDSA_P384_SHA384;
        match curve {
            Some(c) if c == OID_EC_P256 && sha256 => {
                return Ok((p256, &signature::ECDSA_P256_SHA256_ASN1));
            }
            Some(c) if c == OID_EC_P256 && sha384 => {
                return Ok((p256, &signature::ECDSA_P256_SHA384_ASN1));
            }
            Some(c) if c == OID_NIST_EC_P384 && sha256 => {
                return Ok((p384, &signature::ECDSA_P384_SHA256_ASN1));
            }
            Some(c) if c == OID_NIST_EC_P384 && sha384 => {
                return Ok((p384, &signature::ECDSA_P384_SHA384_ASN1));
            }
            _ => {}
        }
    }
    Err(CertError::Invalid(
        "unsupported key or signature in the certificate request: use ECDSA P-256 (P-384 and Ed25519 are accepted too)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{CertAuthority, OrgCertRequest, peer_cert_info};
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
    use time::macros::datetime;

    const NOW: time::OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

    /// A valid code: the 17 characters given and their check character.
    fn uscc_of(body: &str) -> String {
        let check = crate::identity::uscc_check_char(body).unwrap();
        format!("{body}{check}")
    }

    fn valid_uscc() -> String {
        uscc_of("12150602MB0000004")
    }

    fn csr(cn: Option<&str>, san: Option<&str>, alg: &'static SignatureAlgorithm) -> String {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params
            .distinguished_name
            .push(DnType::OrganizationName, "示例幼儿园");
        if let Some(san) = san {
            params.subject_alt_names = vec![SanType::URI(san.try_into().unwrap())];
        }
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn a_request_is_certified_for_its_own_key() {
        let uscc = valid_uscc();
        let pem = csr(
            Some(&uscc),
            Some(&format!("urn:uscc:{uscc}")),
            &rcgen::PKCS_ECDSA_P256_SHA256,
        );
        let request = SigningRequest::from_pem(&pem).unwrap();
        request.check_names(&uscc).unwrap();
        assert_eq!(request.organisation.as_deref(), Some("示例幼儿园"));

        let ca = CertAuthority::generate("test CA", 3650, NOW).unwrap();
        let org = OrgCertRequest {
            uscc: &uscc,
            name: "示例幼儿园",
            role: "employer",
        };
        let cert_pem = ca
            .certify_client_key(&org, request.public_key(), 30, NOW)
            .unwrap();
        crate::certs::tests::assert_chains(&cert_pem, &ca.cert_pem());
        let der = crate::certs::cert_der_from_pem(&cert_pem).unwrap();
        let info = peer_cert_info(&der).unwrap();
        assert_eq!(info.uscc_claim.as_deref(), Some(uscc.as_str()));
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            cert.public_key().subject_public_key.data.as_ref(),
            request.key.raw.as_slice(),
            "the certificate carries the requester's key"
        );
    }

    #[test]
    fn other_key_types_are_accepted() {
        for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
            let request = SigningRequest::from_pem(&csr(None, None, alg)).unwrap();
            assert_eq!(request.public_key().algorithm(), alg);
            request.check_names(&valid_uscc()).unwrap();
        }
    }

    #[test]
    fn a_request_naming_another_organisation_is_refused() {
        let uscc = valid_uscc();
        let other = &uscc_of("91110000MA0000001");
        let by_cn = csr(Some(other), None, &rcgen::PKCS_ECDSA_P256_SHA256);
        let by_san = csr(
            Some(&uscc),
            Some(&format!("urn:uscc:{other}")),
            &rcgen::PKCS_ECDSA_P256_SHA256,
        );
        let by_name = csr(Some("示例幼儿园"), None, &rcgen::PKCS_ECDSA_P256_SHA256);
        for pem in [by_cn, by_san, by_name] {
            let request = SigningRequest::from_pem(&pem).unwrap();
            assert!(
                matches!(request.check_names(&uscc), Err(CertError::Invalid(_))),
                "{:?}",
                request.named
            );
        }
        // The same code in lower case is the same organisation.
        let lower = csr(
            Some(&uscc.to_lowercase()),
            None,
            &rcgen::PKCS_ECDSA_P256_SHA256,
        );
        SigningRequest::from_pem(&lower)
            .unwrap()
            .check_names(&uscc)
            .unwrap();
    }

    #[test]
    fn an_altered_or_broken_request_is_refused() {
        let pem = csr(Some(&valid_uscc()), None, &rcgen::PKCS_ECDSA_P256_SHA256);
        let der = CertificateSigningRequestDer::from_pem_slice(pem.as_bytes()).unwrap();
        let mut altered = der.as_ref().to_vec();
        // The last bytes are the signature's.
        let last = altered.len() - 1;
        altered[last] ^= 0x01;
        assert!(matches!(
            SigningRequest::from_der(&altered),
            Err(CertError::Invalid(_))
        ));
        assert!(SigningRequest::from_der(b"not a request").is_err());
        assert!(SigningRequest::from_pem("not PEM at all").is_err());
    }
}
