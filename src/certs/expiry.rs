//! When certificates run out. An expired client certificate locks an organisation out of its
//! checks, an expired server certificate or CA locks everyone out, and neither says so ahead
//! of time by itself: `safehire certs status` lists them for the operator's cron, and the
//! server warns at start when its own certificate or CA is close to its end.

use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

use super::{CertError, parse_cert, peer_cert_info};

/// What a certificate is for, as far as expiry matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ca,
    Server,
    Client,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Ca => "ca",
            Kind::Server => "server",
            Kind::Client => "client",
        }
    }
}

/// Where a certificate stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Valid,
    /// Still valid, but ends within the warning window.
    Expiring,
    Expired,
}

impl Standing {
    pub fn label(self) -> &'static str {
        match self {
            Standing::Valid => "ok",
            Standing::Expiring => "EXPIRING",
            Standing::Expired => "EXPIRED",
        }
    }
}

/// One certificate of a PEM file.
#[derive(Debug, Clone)]
pub struct CertSummary {
    pub path: PathBuf,
    pub kind: Kind,
    /// The USCC a client certificate carries; the subject CN otherwise.
    pub subject: String,
    /// Lower-case hex SHA-256 of the DER: what the server audits and revokes by.
    pub fingerprint_sha256: String,
    pub not_after: OffsetDateTime,
}

impl CertSummary {
    /// Whole days from `now` to the end of validity; negative once expired.
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }

    /// Expired at `now`, or ending within `warn_days` of it.
    pub fn standing(&self, now: OffsetDateTime, warn_days: u32) -> Standing {
        if self.not_after <= now {
            Standing::Expired
        } else if self.not_after - now <= time::Duration::days(i64::from(warn_days)) {
            Standing::Expiring
        } else {
            Standing::Valid
        }
    }
}

/// Every certificate in a PEM file (a CA bundle holds several during a CA rotation).
pub fn summarise_file(path: &Path) -> Result<Vec<CertSummary>, CertError> {
    let pem = std::fs::read(path).map_err(|source| CertError::Io {
        path: path.to_owned(),
        source,
    })?;
    let ders = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>()?;
    if ders.is_empty() {
        return Err(CertError::Parse(format!(
            "{}: no certificate in the file",
            path.display()
        )));
    }
    ders.iter()
        .map(|der| summarise(path, der))
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Parse(format!("{}: {e}", path.display())))
}

fn summarise(path: &Path, der: &[u8]) -> Result<CertSummary, CertError> {
    let info = peer_cert_info(der)?;
    let cert = parse_cert(der)?;
    let server_auth = cert
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|eku| eku.value.server_auth);
    let kind = if cert.is_ca() {
        Kind::Ca
    } else if server_auth {
        Kind::Server
    } else {
        Kind::Client
    };
    Ok(CertSummary {
        path: path.to_owned(),
        kind,
        subject: info.uscc_claim.or(info.common_name).unwrap_or_default(),
        fingerprint_sha256: info.fingerprint_sha256,
        not_after: info.not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{CertAuthority, OrgCertRequest};
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

    #[test]
    fn kinds_days_and_standing() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertAuthority::generate("test CA", 3650, NOW).unwrap();
        let server = ca.issue_server(&["localhost"], 20, NOW).unwrap();
        let org = OrgCertRequest {
            uscc: "12150602MB00000041",
            name: "",
            role: "employer",
        };
        let client = ca.issue_client(&org, 825, NOW).unwrap();
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(
            &bundle,
            format!("{}{}{}", ca.cert_pem(), server.cert_pem, client.cert_pem),
        )
        .unwrap();

        let found = summarise_file(&bundle).unwrap();
        let kinds: Vec<Kind> = found.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [Kind::Ca, Kind::Server, Kind::Client]);
        assert_eq!(found[0].subject, "test CA");
        assert_eq!(found[1].subject, "localhost");
        assert_eq!(found[2].subject, org.uscc);
        assert_eq!(found[1].days_left(NOW), 20);

        let server = &found[1];
        assert_eq!(server.standing(NOW, 30), Standing::Expiring);
        assert_eq!(server.standing(NOW, 19), Standing::Valid);
        assert_eq!(server.standing(NOW, 20), Standing::Expiring);
        let later = NOW + Duration::days(20);
        assert_eq!(server.standing(later, 0), Standing::Expired);
        assert_eq!(server.days_left(NOW + Duration::days(25)), -5);
    }

    #[test]
    fn a_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        assert!(matches!(summarise_file(&empty), Err(CertError::Parse(_))));
        assert!(matches!(
            summarise_file(&dir.path().join("missing.pem")),
            Err(CertError::Io { .. })
        ));
    }
}
