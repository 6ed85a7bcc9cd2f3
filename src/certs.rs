//! Certificates for safehire's mutual TLS.
//!
//! Every caller is an organisation, identified by the unified social credit
//! code (USCC) carried in its client certificate. This module issues the dev
//! set (CA, server, one client per organisation) and extracts the USCC claim
//! from a presented certificate. Roles and permissions deliberately do *not*
//! come from the certificate: the server looks the USCC up in its organisation
//! registry, so a role change or suspension never needs a new certificate.
//!
//! Real organisations get their certificates from the operator CA: issued with a fresh key,
//! or (better) signed from the organisation's own CSR ([`csr`]), so that its private key never
//! leaves it. [`expiry`] says which certificates are about to run out.

pub mod csr;
pub mod expiry;
pub mod pkcs12;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber,
};
use ring::rand::SecureRandom;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime, UtcOffset};
use x509_parser::asn1_rs::Tag;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::x509::X509Name;

/// Validity of the generated dev CA (10 years).
pub const DEV_CA_VALIDITY_DAYS: u32 = 3650;
/// Validity of server and client certificates: 825 days is the longest
/// lifetime common TLS clients accept for leaf certificates.
pub const LEAF_VALIDITY_DAYS: u32 = 825;

/// File names of a dev set; client files are `<role>.pem` / `<role>.key`.
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";
pub const SERVER_CERT_FILE: &str = "server.pem";
pub const SERVER_KEY_FILE: &str = "server.key";

/// Host names the dev server certificate is valid for.
const DEV_SERVER_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];
const DEV_CA_COMMON_NAME: &str = "safehire dev CA";
const USCC_URN_PREFIX: &str = "urn:uscc:";

/// One organisation to issue a client certificate for.
#[derive(Debug, Clone, Copy)]
pub struct OrgCertRequest<'a> {
    pub uscc: &'a str,
    pub name: &'a str,
    /// "operator", "registrar", "bureau", "employer", "prosecutor"; also the
    /// dev-set file name, so it must be a lower-case slug.
    pub role: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid PEM: {0}")]
    Pem(#[from] rustls_pki_types::pem::Error),
    #[error("cannot parse certificate: {0}")]
    Parse(String),
    #[error("CA private key does not belong to the CA certificate")]
    KeyMismatch,
    #[error("{0}")]
    Invalid(String),
    #[error("system random number generator failed")]
    Random,
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
}

/// A certificate and its private key (PKCS#8), both PEM-encoded.
pub struct PemPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for PemPair {
    /// Never print private keys into logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemPair")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// A CA that can sign certificates (loaded from PEM files or freshly generated).
pub struct CertAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl CertAuthority {
    /// Self-signed ECDSA P-256 CA. Path length 0: it signs leaf certificates only.
    pub fn generate(
        common_name: &str,
        validity_days: u32,
        now: OffsetDateTime,
    ) -> Result<Self, CertError> {
        let mut params = base_params(now, validity_window(now, validity_days)?)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and PKCS#8 private key. The issuer name
    /// and key identifier are copied byte-for-byte from the certificate so that
    /// issued certificates chain to it even if another tool created it.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())?;
        let cert = parse_cert(&der)?;
        if !cert.is_ca() {
            return Err(CertError::Invalid(
                "CA certificate lacks basicConstraints CA:TRUE".into(),
            ));
        }
        let key = KeyPair::from_pem(key_pem)?;
        if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
            return Err(CertError::KeyMismatch);
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = dn_from_x509(cert.subject())?;
        params.key_identifier_method = cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => {
                    Some(KeyIdMethod::PreSpecified(id.0.to_vec()))
                }
                _ => None,
            })
            .unwrap_or(KeyIdMethod::Sha256);
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem: cert_pem.to_owned(),
        })
    }

    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Server certificate for the given DNS names and IP addresses (e.g.
    /// "localhost", "127.0.0.1"), serverAuth EKU.
    pub fn issue_server(
        &self,
        hosts: &[&str],
        validity_days: u32,
        now: OffsetDateTime,
    ) -> Result<PemPair, CertError> {
        let Some(first) = hosts.first() else {
            return Err(CertError::Invalid(
                "server certificate needs at least one host".into(),
            ));
        };
        let not_after = validity_window(now, validity_days)?;
        let mut params = base_params(now, not_after)?;
        // `CertificateParams::new` sorts hosts into DNS-name and IP SANs.
        let sans = CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())?;
        params.subject_alt_names = sans.subject_alt_names;
        params.distinguished_name.push(DnType::CommonName, *first);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign_leaf(params)
    }

    /// Client certificate for an organisation: subject CN = the USCC, O = the
    /// org name, OU = role; SAN URI `urn:uscc:<USCC>`; clientAuth EKU. ECDSA P-256.
    pub fn issue_client(
        &self,
        org: &OrgCertRequest<'_>,
        validity_days: u32,
        now: OffsetDateTime,
    ) -> Result<PemPair, CertError> {
        self.issue_client_with_validity(org, now, validity_window(now, validity_days)?)
    }

    /// Same, but with a validity window you choose (tests use it to make an
    /// already-expired certificate).
    pub fn issue_client_with_validity(
        &self,
        org: &OrgCertRequest<'_>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<PemPair, CertError> {
        self.sign_leaf(client_params(org, not_before, not_after)?)
    }

    /// Client certificate for a public key whose private half the organisation keeps (the key
    /// of its CSR). Names and extensions are the same as [`CertAuthority::issue_client`]'s,
    /// whatever the request asked for, so that nobody can ask for another USCC. Returns the
    /// certificate PEM.
    pub fn certify_client_key(
        &self,
        org: &OrgCertRequest<'_>,
        public_key: &impl PublicKeyData,
        validity_days: u32,
        now: OffsetDateTime,
    ) -> Result<String, CertError> {
        let params = client_params(org, now, validity_window(now, validity_days)?)?;
        Ok(end_entity(params)
            .signed_by(public_key, &self.issuer)?
            .pem())
    }

    /// Fresh P-256 key, end-entity constraints, signed by this CA.
    fn sign_leaf(&self, params: CertificateParams) -> Result<PemPair, CertError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = end_entity(params).signed_by(&key, &self.issuer)?;
        Ok(PemPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// An organisation's client certificate: CN = USCC, O = name (left out when there is none),
/// OU = role, SAN URI `urn:uscc:<USCC>`, clientAuth.
fn client_params(
    org: &OrgCertRequest<'_>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, CertError> {
    check_uscc(org.uscc)?;
    let mut params = base_params(not_before, not_after)?;
    params.distinguished_name.push(DnType::CommonName, org.uscc);
    if !org.name.is_empty() {
        params
            .distinguished_name
            .push(DnType::OrganizationName, org.name);
    }
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, org.role);
    params.subject_alt_names = vec![SanType::URI(
        format!("{USCC_URN_PREFIX}{}", org.uscc).try_into()?,
    )];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

/// End-entity constraints: not a CA, signatures only, and the CA's key identifier so that
/// chain building finds the issuer even across a CA rotation with the same name.
fn end_entity(mut params: CertificateParams) -> CertificateParams {
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params
}

/// Params with the validity window and a random serial. A random serial (not
/// rcgen's key hash) keeps serials unique even if a key is ever re-certified.
fn base_params(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, CertError> {
    if not_after <= not_before {
        return Err(CertError::Invalid(
            "certificate not_after must be later than not_before".into(),
        ));
    }
    let mut serial = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| CertError::Random)?;
    serial[0] &= 0x7f; // serials must be positive
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    // rcgen writes the wall-clock fields as given; normalise to UTC.
    params.not_before = not_before.to_offset(UtcOffset::UTC);
    params.not_after = not_after.to_offset(UtcOffset::UTC);
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(params)
}

fn validity_window(now: OffsetDateTime, days: u32) -> Result<OffsetDateTime, CertError> {
    now.checked_add(Duration::days(i64::from(days)))
        .ok_or_else(|| CertError::Invalid(format!("validity of {days} days overflows")))
}

/// The USCC becomes a URI and a CN, so keep it to plain ASCII alphanumerics.
/// Checksum validation belongs to the organisation registry, not here.
fn check_uscc(uscc: &str) -> Result<(), CertError> {
    if uscc.is_empty() || !uscc.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CertError::Invalid(format!(
            "USCC {uscc:?} must be non-empty ASCII letters and digits"
        )));
    }
    Ok(())
}

fn parse_cert(der: &[u8]) -> Result<x509_parser::certificate::X509Certificate<'_>, CertError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(CertError::Parse("trailing data after certificate".into())),
        Err(e) => Err(CertError::Parse(e.to_string())),
    }
}

/// Rebuilds a subject name keeping each attribute's ASN.1 string type, because
/// chain building compares issuer and subject names byte-for-byte.
fn dn_from_x509(name: &X509Name<'_>) -> Result<DistinguishedName, CertError> {
    let bad = |what: &str| CertError::Parse(format!("CA subject: {what}"));
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(bad("multi-valued or empty RDN not supported"));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| bad("attribute OID too large"))?
            .collect();
        let data = attr.attr_value().data;
        let text = || std::str::from_utf8(data).map_err(|_| bad("attribute is not UTF-8"));
        let value = match attr.attr_value().header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text()?.to_owned()),
            Tag::PrintableString => DnValue::PrintableString(text()?.try_into()?),
            Tag::Ia5String => DnValue::Ia5String(text()?.try_into()?),
            Tag::T61String => DnValue::TeletexString(text()?.try_into()?),
            Tag::BmpString => {
                DnValue::BmpString(rcgen::string::BmpString::from_utf16be(data.to_vec())?)
            }
            Tag::UniversalString => DnValue::UniversalString(
                rcgen::string::UniversalString::from_utf32be(data.to_vec())?,
            ),
            _ => return Err(bad("unsupported attribute string type")),
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    Ok(dn)
}

/// Writes a complete dev set into `dir`: ca.pem, ca.key, server.pem,
/// server.key, and `<role>.pem` / `<role>.key` for each org. Every file is
/// written atomically (temp file in `dir`, then rename) so a crash never
/// leaves a half-written key; key files get mode 0600, `dir` 0700 if created.
/// Returns the paths written.
pub fn write_dev_set(
    dir: &Path,
    orgs: &[OrgCertRequest<'_>],
    now: OffsetDateTime,
) -> Result<Vec<PathBuf>, CertError> {
    check_roles(orgs)?;
    let ca = CertAuthority::generate(DEV_CA_COMMON_NAME, DEV_CA_VALIDITY_DAYS, now)?;
    let server = ca.issue_server(DEV_SERVER_HOSTS, LEAF_VALIDITY_DAYS, now)?;
    let mut files = vec![
        (CA_CERT_FILE.to_owned(), ca.cert_pem(), false),
        (CA_KEY_FILE.to_owned(), ca.key_pem(), true),
        (SERVER_CERT_FILE.to_owned(), server.cert_pem, false),
        (SERVER_KEY_FILE.to_owned(), server.key_pem, true),
    ];
    for org in orgs {
        let pair = ca.issue_client(org, LEAF_VALIDITY_DAYS, now)?;
        files.push((format!("{}.pem", org.role), pair.cert_pem, false));
        files.push((format!("{}.key", org.role), pair.key_pem, true));
    }

    create_private_dir(dir)?;
    files
        .into_iter()
        .map(|(name, contents, secret)| {
            let path = dir.join(name);
            write_atomic(
                &path,
                contents.as_bytes(),
                if secret { 0o600 } else { 0o644 },
            )?;
            Ok(path)
        })
        .collect()
}

/// True when `dir` already holds every file of a dev set for `orgs`; the
/// server only generates a set when this is false.
pub fn dev_set_complete(dir: &Path, orgs: &[OrgCertRequest<'_>]) -> bool {
    if check_roles(orgs).is_err() {
        return false;
    }
    let fixed = [CA_CERT_FILE, CA_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE].map(String::from);
    let per_org = orgs
        .iter()
        .flat_map(|o| [format!("{}.pem", o.role), format!("{}.key", o.role)]);
    fixed
        .into_iter()
        .chain(per_org)
        .all(|f| dir.join(f).is_file())
}

/// Roles become file names: only lower-case slugs, no clash with the CA or
/// server files, and one organisation per role.
fn check_roles(orgs: &[OrgCertRequest<'_>]) -> Result<(), CertError> {
    let mut seen = std::collections::HashSet::new();
    for org in orgs {
        let slug = !org.role.is_empty()
            && org
                .role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !slug || matches!(org.role, "ca" | "server") {
            return Err(CertError::Invalid(format!(
                "role {:?} cannot be used as a dev-set file name",
                org.role
            )));
        }
        if !seen.insert(org.role) {
            return Err(CertError::Invalid(format!(
                "two organisations share role {:?} in one dev set",
                org.role
            )));
        }
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), CertError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| CertError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// Temp file created with the final mode from the start (no window where a key
/// is readable by others), synced, then renamed over `path`.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| CertError::Io { path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut nonce = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| CertError::Random)?;
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", hex::encode(nonce)));

    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
        file.write_all(contents).map_err(io_err(&tmp))?;
        // The umask may have narrowed the mode; set it exactly.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(io_err(&tmp))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        file.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, path).map_err(io_err(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// What the server needs to know about a presented client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertInfo {
    /// USCC from the one SAN URI `urn:uscc:<X>`. Only a claim: the server must still find it
    /// in the organisation registry. Never read from the subject CN, which any CA tool fills in.
    pub uscc_claim: Option<String>,
    /// Why the certificate cannot identify an organisation (no or several `urn:uscc:` SAN URIs,
    /// no clientAuth extended key usage), when it cannot.
    pub identity_problem: Option<String>,
    /// The subject CN, for people reading a listing; never an identity.
    pub common_name: Option<String>,
    /// Lower-case hex SHA-256 of the DER, for audit logs and deny lists.
    pub fingerprint_sha256: String,
    pub not_after: OffsetDateTime,
}

/// Parses a DER certificate (as handed over by rustls after chain verification). A client
/// certificate identifies an organisation only with exactly one `urn:uscc:` SAN URI and the
/// clientAuth extended key usage: two SANs would leave the choice to the parser, and a
/// certificate made for a server or for signing must not open a client session.
pub fn peer_cert_info(der: &[u8]) -> Result<PeerCertInfo, CertError> {
    let cert = parse_cert(der)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| CertError::Parse(e.to_string()))?;
    let claims: Vec<String> = san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => uscc_from_urn(uri),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let client_auth = cert
        .extended_key_usage()
        .map_err(|e| CertError::Parse(e.to_string()))?
        .is_some_and(|eku| eku.value.client_auth);
    let identity_problem = match claims.len() {
        0 => Some("it carries no SAN URI urn:uscc:<code> (a subject CN is not read)".to_string()),
        1 if !client_auth => Some("it lacks the clientAuth extended key usage".to_string()),
        1 => None,
        n => Some(format!(
            "it carries {n} SAN URIs urn:uscc:<code> (exactly one is accepted)"
        )),
    };
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty())
        .map(str::to_owned);
    Ok(PeerCertInfo {
        uscc_claim: (claims.len() == 1).then(|| claims[0].clone()),
        identity_problem,
        common_name,
        fingerprint_sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, der)),
        not_after: cert.validity().not_after.to_datetime(),
    })
}

/// `urn:uscc:X` -> X. The "urn" scheme and namespace are case-insensitive (RFC 8141).
fn uscc_from_urn(uri: &str) -> Option<String> {
    let prefix = uri.get(..USCC_URN_PREFIX.len())?;
    let code = &uri[USCC_URN_PREFIX.len()..];
    (prefix.eq_ignore_ascii_case(USCC_URN_PREFIX) && !code.is_empty()).then(|| code.to_owned())
}

/// DER of the first certificate in a PEM string (e.g. to fingerprint a client
/// certificate file at enrolment time).
pub fn cert_der_from_pem(pem: &str) -> Result<CertificateDer<'static>, CertError> {
    Ok(CertificateDer::from_pem_slice(pem.as_bytes())?)
}

/// A fingerprint as people paste it (upper or lower case, with the colons and the
/// `sha256 Fingerprint=` prefix `openssl x509 -fingerprint -sha256` prints) in the form the
/// server records and the deny list keys on: 64 lower-case hex digits. `None` for anything else.
pub fn parse_fingerprint(text: &str) -> Option<String> {
    let value = text.rsplit('=').next().unwrap_or_default().trim();
    let hex: String = value
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// Writes an organisation's issued certificate as `<uscc>.pem` in `dir`, and the key the
/// operator made for it as `<uscc>.key` (mode 0600), each atomically. Existing files are kept
/// unless `replace`: overwriting the files an organisation uses by mistake would lock it out.
pub fn write_issued(
    dir: &Path,
    uscc: &str,
    cert_pem: &str,
    key_pem: Option<&str>,
    replace: bool,
) -> Result<Vec<PathBuf>, CertError> {
    check_uscc(uscc)?;
    let mut files = vec![(dir.join(format!("{uscc}.pem")), cert_pem, 0o644)];
    if let Some(key_pem) = key_pem {
        files.push((dir.join(format!("{uscc}.key")), key_pem, 0o600));
    }
    if !replace && let Some((path, _, _)) = files.iter().find(|(path, _, _)| path.exists()) {
        return Err(CertError::Exists(path.clone()));
    }
    create_private_dir(dir)?;
    files
        .into_iter()
        .map(|(path, contents, mode)| {
            write_atomic(&path, contents.as_bytes(), mode)?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

    const EMPLOYER: OrgCertRequest<'static> = OrgCertRequest {
        uscc: "91310000MA1K000001",
        name: "上海示例科技有限公司",
        role: "employer",
    };

    fn orgs() -> Vec<OrgCertRequest<'static>> {
        vec![
            OrgCertRequest {
                uscc: "12100000000000001X",
                name: "Operator",
                role: "operator",
            },
            EMPLOYER,
        ]
    }

    fn der(pem: &str) -> Vec<u8> {
        cert_der_from_pem(pem).unwrap().to_vec()
    }

    /// Checks `child` was signed by `ca`: names match and the ECDSA signature verifies.
    pub(super) fn assert_chains(child_pem: &str, ca_pem: &str) {
        let (child_der, ca_der) = (der(child_pem), der(ca_pem));
        let child = parse_cert(&child_der).unwrap();
        let ca = parse_cert(&ca_der).unwrap();
        assert_eq!(child.issuer().as_raw(), ca.subject().as_raw());
        // x509-parser's verify_signature needs its "verify" feature; ring does it directly.
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            ca.public_key().subject_public_key.data.as_ref(),
        );
        key.verify(
            child.tbs_certificate.as_ref(),
            child.signature_value.data.as_ref(),
        )
        .expect("signature by CA verifies");
    }

    #[test]
    fn client_cert_carries_uscc_in_san_uri() {
        let ca = CertAuthority::generate("test CA", DEV_CA_VALIDITY_DAYS, NOW).unwrap();
        let server = ca
            .issue_server(&["localhost", "127.0.0.1"], 825, NOW)
            .unwrap();
        assert_chains(&server.cert_pem, &ca.cert_pem());
        let client = ca.issue_client(&EMPLOYER, 825, NOW).unwrap();
        assert_chains(&client.cert_pem, &ca.cert_pem());

        let client_der = der(&client.cert_pem);
        let info = peer_cert_info(&client_der).unwrap();
        assert_eq!(info.uscc_claim.as_deref(), Some(EMPLOYER.uscc));
        assert_eq!(info.fingerprint_sha256.len(), 64);
        assert!(
            info.fingerprint_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(info.not_after, NOW + Duration::days(825));

        let cert = parse_cert(&client_der).unwrap();
        let org = cert.subject().iter_organization().next().unwrap();
        assert_eq!(org.as_str().unwrap(), EMPLOYER.name);
        let ou = cert.subject().iter_organizational_unit().next().unwrap();
        assert_eq!(ou.as_str().unwrap(), "employer");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
    }

    #[test]
    fn server_cert_has_dns_and_ip_sans() {
        let ca = CertAuthority::generate("test CA", 30, NOW).unwrap();
        let server = ca
            .issue_server(&["localhost", "127.0.0.1"], 30, NOW)
            .unwrap();
        let server_der = der(&server.cert_pem);
        let cert = parse_cert(&server_der).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        assert!(
            san.general_names
                .contains(&GeneralName::DNSName("localhost"))
        );
        assert!(
            san.general_names
                .contains(&GeneralName::IPAddress(&[127, 0, 0, 1]))
        );
        assert!(
            cert.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .server_auth
        );
        assert!(ca.issue_server(&[], 30, NOW).is_err());
    }

    /// A leaf signed by `ca` with the given names and extended key usages.
    fn shaped_leaf(
        ca: &CertAuthority,
        cn: &str,
        uris: &[&str],
        ekus: Vec<ExtendedKeyUsagePurpose>,
    ) -> Vec<u8> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = base_params(NOW, NOW + Duration::days(30)).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = uris
            .iter()
            .map(|u| SanType::URI(u.to_string().try_into().unwrap()))
            .collect();
        params.extended_key_usages = ekus;
        end_entity(params)
            .signed_by(&key, &ca.issuer)
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn only_one_san_uri_with_client_auth_identifies_an_organisation() {
        let ca = CertAuthority::generate("t", 30, NOW).unwrap();
        let uscc = "91110000ABCDEFGH12";
        let urn = format!("urn:uscc:{uscc}");
        let client = || vec![ExtendedKeyUsagePurpose::ClientAuth];

        let good = peer_cert_info(&shaped_leaf(&ca, uscc, &[&urn], client())).unwrap();
        assert_eq!(good.uscc_claim.as_deref(), Some(uscc));
        assert_eq!(good.identity_problem, None);

        let cn_only = peer_cert_info(&shaped_leaf(&ca, uscc, &[], client())).unwrap();
        assert_eq!(cn_only.uscc_claim, None, "the CN is not an identity");
        assert!(cn_only.identity_problem.unwrap().contains("no SAN URI"));
        assert_eq!(cn_only.common_name.as_deref(), Some(uscc));

        let two = format!("urn:uscc:{}", "91110000ABCDEFGH34");
        let twice = peer_cert_info(&shaped_leaf(&ca, uscc, &[&urn, &two], client())).unwrap();
        assert_eq!(twice.uscc_claim, None, "neither of two is chosen");
        assert!(twice.identity_problem.unwrap().contains("2 SAN URIs"));

        for ekus in [vec![], vec![ExtendedKeyUsagePurpose::ServerAuth]] {
            let info = peer_cert_info(&shaped_leaf(&ca, uscc, &[&urn], ekus)).unwrap();
            assert!(info.identity_problem.unwrap().contains("clientAuth"));
        }
    }

    #[test]
    fn expired_window_is_honoured() {
        let ca = CertAuthority::generate("test CA", 3650, NOW).unwrap();
        let not_after = NOW - Duration::days(1);
        let pair = ca
            .issue_client_with_validity(&EMPLOYER, NOW - Duration::days(30), not_after)
            .unwrap();
        let info = peer_cert_info(&der(&pair.cert_pem)).unwrap();
        assert_eq!(info.not_after, not_after);
        assert!(ca.issue_client_with_validity(&EMPLOYER, NOW, NOW).is_err());
    }

    #[test]
    fn rejects_bad_input() {
        let ca = CertAuthority::generate("test CA", 30, NOW).unwrap();
        let bad = OrgCertRequest {
            uscc: "91 310000/../x",
            ..EMPLOYER
        };
        assert!(matches!(
            ca.issue_client(&bad, 30, NOW),
            Err(CertError::Invalid(_))
        ));
        assert!(peer_cert_info(b"not a certificate").is_err());
        let dir = tempfile::tempdir().unwrap();
        let traversal = OrgCertRequest {
            role: "../evil",
            ..EMPLOYER
        };
        assert!(write_dev_set(dir.path(), &[traversal], NOW).is_err());
        assert!(write_dev_set(dir.path(), &[EMPLOYER, EMPLOYER], NOW).is_err());
    }

    #[test]
    fn from_pem_round_trips_and_chains() {
        let original = CertAuthority::generate("round trip CA", 3650, NOW).unwrap();
        let loaded = CertAuthority::from_pem(&original.cert_pem(), &original.key_pem()).unwrap();
        assert_eq!(loaded.cert_pem(), original.cert_pem());
        let client = loaded.issue_client(&EMPLOYER, 825, NOW).unwrap();
        assert_chains(&client.cert_pem, &original.cert_pem());

        let other = CertAuthority::generate("other CA", 3650, NOW).unwrap();
        assert!(matches!(
            CertAuthority::from_pem(&original.cert_pem(), &other.key_pem()),
            Err(CertError::KeyMismatch)
        ));
        let leaf = original.issue_client(&EMPLOYER, 825, NOW).unwrap();
        assert!(matches!(
            CertAuthority::from_pem(&leaf.cert_pem, &leaf.key_pem),
            Err(CertError::Invalid(_))
        ));
    }

    #[test]
    fn dev_set_written_with_private_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("certs/dev");
        let orgs = orgs();
        assert!(!dev_set_complete(&dir, &orgs));

        let written = write_dev_set(&dir, &orgs, NOW).unwrap();
        assert_eq!(written.len(), 4 + 2 * orgs.len());
        assert!(dev_set_complete(&dir, &orgs));
        assert!(written.iter().all(|p| p.starts_with(&dir)));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            for path in &written {
                let is_key = path.extension().is_some_and(|e| e == "key");
                assert_eq!(mode(path), if is_key { 0o600 } else { 0o644 }, "{path:?}");
            }
        }
        // No temp files left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), written.len());

        let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap();
        let ca = CertAuthority::from_pem(&read(CA_CERT_FILE), &read(CA_KEY_FILE)).unwrap();
        assert_chains(&read("employer.pem"), &ca.cert_pem());
        assert_chains(&read(SERVER_CERT_FILE), &ca.cert_pem());
        let info = peer_cert_info(&der(&read("operator.pem"))).unwrap();
        assert_eq!(info.uscc_claim.as_deref(), Some("12100000000000001X"));

        fs::remove_file(dir.join("employer.key")).unwrap();
        assert!(!dev_set_complete(&dir, &orgs));
    }

    #[test]
    fn fingerprints_are_read_in_every_usual_form() {
        let hex = "3f".repeat(32);
        let openssl = format!("sha256 Fingerprint={}", ["3F"; 32].join(":"));
        assert_eq!(parse_fingerprint(&hex).as_deref(), Some(hex.as_str()));
        assert_eq!(parse_fingerprint(&openssl).as_deref(), Some(hex.as_str()));
        assert_eq!(
            parse_fingerprint(&format!(" {} ", hex.to_uppercase())),
            Some(hex.clone())
        );
        assert_eq!(parse_fingerprint(&hex[..62]), None);
        assert_eq!(parse_fingerprint(&format!("{}zz", &hex[..62])), None);
        assert_eq!(parse_fingerprint(""), None);
    }

    #[test]
    fn issued_files_are_private_and_never_replaced_by_mistake() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("issued");
        let ca = CertAuthority::generate("test CA", 3650, NOW).unwrap();
        let pair = ca.issue_client(&EMPLOYER, 825, NOW).unwrap();
        let written = write_issued(
            &dir,
            EMPLOYER.uscc,
            &pair.cert_pem,
            Some(&pair.key_pem),
            false,
        )
        .unwrap();
        assert_eq!(
            written,
            [
                dir.join(format!("{}.pem", EMPLOYER.uscc)),
                dir.join(format!("{}.key", EMPLOYER.uscc))
            ]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&written[1]), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
        let again = ca.issue_client(&EMPLOYER, 825, NOW).unwrap();
        assert!(matches!(
            write_issued(&dir, EMPLOYER.uscc, &again.cert_pem, None, false),
            Err(CertError::Exists(_))
        ));
        assert_eq!(fs::read_to_string(&written[0]).unwrap(), pair.cert_pem);
        write_issued(&dir, EMPLOYER.uscc, &again.cert_pem, None, true).unwrap();
        assert_eq!(fs::read_to_string(&written[0]).unwrap(), again.cert_pem);
        assert!(write_issued(&dir, "../x", &again.cert_pem, None, true).is_err());
    }
}
