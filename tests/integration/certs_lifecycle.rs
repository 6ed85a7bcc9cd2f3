//! Certificates for real organisations, end to end: the operator issues a certificate (or signs
//! the organisation's own request) with the CLI, enrols the organisation, the organisation calls
//! the API with it, and a revocation by fingerprint refuses the very next call without a
//! restart. Expiry is reported ahead of time, by `certs status` and by the server at start.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::process::{run, serve};
use common::{TestServer, check_request, people, read_audit_rows, start_time};
use safehire::certs::{self, CertAuthority, OrgCertRequest};
use safehire::devset::dev_orgs;
use safehire::identity::Uscc;
use safehire::org::Role;
use safehire::proto::{self, Purpose};
use tonic::Code;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output and error, for assertion messages.
fn shown(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// A fresh, valid organisation code from the project's generator, never a dev one.
fn new_uscc(seed: u64) -> String {
    let uscc = safehire::synth::Generator::new(seed, start_time().date()).uscc();
    assert!(dev_orgs().iter().all(|o| o.uscc != uscc));
    uscc
}

/// `safehire --as operator org enroll` for an employer supervised by the dev bureau.
fn enroll(dir: &Path, server: &str, uscc: &str) {
    let bureau = dev_orgs()
        .into_iter()
        .find(|o| o.role == Role::Bureau)
        .unwrap()
        .uscc;
    let region = Uscc::parse(uscc).unwrap().region().to_string();
    let out = run(
        dir,
        server,
        &[
            "--as",
            "operator",
            "org",
            "enroll",
            "--uscc",
            uscc,
            "--name",
            "阳光幼儿园",
            "--role",
            "employer",
            "--region",
            &region,
            "--industry",
            "kindergarten",
            "--bureau",
            &bureau,
        ],
    );
    assert!(out.status.success(), "{}", shown(&out));
}

/// One periodic check presenting `cert`/`key`, verifying the server with the dev CA.
fn check_as(dir: &Path, server: &str, cert: &str, key: &str, seed: u64) -> Output {
    let person = &people(seed, 1)[0];
    run(
        dir,
        server,
        &[
            "check",
            "--doc-type",
            "cn-id",
            "--doc-number",
            &person.0,
            "--name",
            &person.1,
            "--purpose",
            "pre-hire",
            "--consent",
            "CONSENT-2026-001",
            "--cert",
            cert,
            "--key",
            key,
            "--ca",
            "certs/dev/ca.pem",
        ],
    )
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", shown(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", shown(out)))
}

#[test]
fn an_issued_certificate_works_until_revoked_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (serve_process, server) = serve(dir.path());
    let uscc = new_uscc(101);

    let issued = json_of(&run(
        dir.path(),
        &server,
        &[
            "--json",
            "certs",
            "issue",
            "--org",
            &uscc,
            "--role",
            "employer",
            "--out-dir",
            "issued",
        ],
    ));
    let cert = format!("issued/{uscc}.pem");
    let key = format!("issued/{uscc}.key");
    assert_eq!(issued["certificate"], cert.as_str());
    assert_eq!(issued["key"], key.as_str());
    let fingerprint = issued["fingerprint"].as_str().unwrap().to_string();
    // The printed fingerprint is the one the server records and revokes by.
    let pem = std::fs::read_to_string(dir.path().join(&cert)).unwrap();
    let info = certs::peer_cert_info(&certs::cert_der_from_pem(&pem).unwrap()).unwrap();
    assert_eq!(info.fingerprint_sha256, fingerprint);
    assert_eq!(info.uscc_claim.as_deref(), Some(uscc.as_str()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(&key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Signed by the CA the server trusts, but nobody until enrolled.
    let before = check_as(dir.path(), &server, &cert, &key, 1);
    assert_eq!(before.status.code(), Some(6), "{}", shown(&before));
    assert!(
        text(&before.stderr).contains("not enrolled"),
        "{}",
        shown(&before)
    );

    enroll(dir.path(), &server, &uscc);
    let ok = check_as(dir.path(), &server, &cert, &key, 2);
    assert_eq!(ok.status.code(), Some(0), "{}", shown(&ok));
    assert!(text(&ok.stdout).starts_with("NO_RECORD"), "{}", shown(&ok));

    let revoke = run(
        dir.path(),
        &server,
        &[
            "--as",
            "operator",
            "certs",
            "revoke",
            &fingerprint,
            "--reason",
            "key leaked",
        ],
    );
    assert!(revoke.status.success(), "{}", shown(&revoke));

    // The very next call, same server process.
    let refused = check_as(dir.path(), &server, &cert, &key, 3);
    assert_eq!(refused.status.code(), Some(6), "{}", shown(&refused));
    assert!(
        text(&refused.stderr).contains("revoked"),
        "{}",
        shown(&refused)
    );
    // Only that certificate: the dev school is not affected.
    let other = run(
        dir.path(),
        &server,
        &[
            "check",
            "--doc-type",
            "cn-id",
            "--doc-number",
            &people(4, 1)[0].0,
            "--name",
            &people(4, 1)[0].1,
            "--purpose",
            "pre-hire",
            "--consent",
            "CONSENT-2026-001",
        ],
    );
    assert_eq!(other.status.code(), Some(0), "{}", shown(&other));

    let listed = json_of(&run(dir.path(), &server, &["--json", "certs", "revoked"]));
    assert_eq!(listed[0]["fingerprint"], fingerprint.as_str());
    assert_eq!(listed[0]["reason"], "key leaked");

    // Both the revocation and the refusal are on the record.
    let rows = read_audit_rows(&dir.path().join("data/safehire.db"));
    let revocation = rows
        .iter()
        .find(|r| r.action == "OrganisationService.RevokeCertificate")
        .expect("the revocation is audited");
    assert_eq!(revocation.outcome, "REVOKED");
    assert_eq!(revocation.role, "OPERATOR");
    assert!(revocation.detail.contains(&fingerprint), "{revocation:?}");
    let last_refusal = rows
        .iter()
        .rev()
        .find(|r| r.action == "CheckService.Check" && r.caller == uscc)
        .unwrap();
    assert_eq!(last_refusal.outcome, "UNAUTHENTICATED");
    assert!(last_refusal.detail.contains("revoked"), "{last_refusal:?}");

    // The deny list is durable: after a restart the certificate is still refused.
    drop(serve_process);
    let (_serve_again, server) = serve(dir.path());
    let still = check_as(dir.path(), &server, &cert, &key, 5);
    assert_eq!(still.status.code(), Some(6), "{}", shown(&still));
    assert!(text(&still.stderr).contains("revoked"), "{}", shown(&still));
}

#[test]
fn a_signed_request_keeps_the_private_key_with_the_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let (_serve, server) = serve(dir.path());
    let uscc = new_uscc(202);

    // The organisation's side: its own key and request.
    let org_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, uscc.as_str());
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "阳光幼儿园");
    let csr = params.serialize_request(&org_key).unwrap().pem().unwrap();
    std::fs::write(dir.path().join("org.csr"), csr).unwrap();
    std::fs::write(dir.path().join("org.key"), org_key.serialize_pem()).unwrap();

    // A request signed for another organisation is refused and writes nothing.
    let other = new_uscc(203);
    let mixed_up = run(
        dir.path(),
        &server,
        &[
            "certs",
            "sign-csr",
            "org.csr",
            "--org",
            &other,
            "--role",
            "employer",
            "--out-dir",
            "issued",
        ],
    );
    assert_eq!(mixed_up.status.code(), Some(5), "{}", shown(&mixed_up));
    assert!(
        text(&mixed_up.stderr).contains(&format!("not {other}")),
        "{}",
        shown(&mixed_up)
    );
    assert!(!dir.path().join(format!("issued/{other}.pem")).exists());

    let signed = json_of(&run(
        dir.path(),
        &server,
        &[
            "--json",
            "certs",
            "sign-csr",
            "org.csr",
            "--org",
            &uscc,
            "--role",
            "employer",
            "--out-dir",
            "issued",
        ],
    ));
    assert!(signed["key"].is_null(), "{signed}");
    assert!(
        !dir.path().join(format!("issued/{uscc}.key")).exists(),
        "the operator never holds the organisation's key"
    );
    let cert = format!("issued/{uscc}.pem");
    let pem = std::fs::read_to_string(dir.path().join(&cert)).unwrap();
    let der = certs::cert_der_from_pem(&pem).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        parsed.public_key().subject_public_key.data.as_ref(),
        org_key.public_key_raw(),
        "the certificate is for the organisation's own key"
    );

    enroll(dir.path(), &server, &uscc);
    let ok = check_as(dir.path(), &server, &cert, "org.key", 6);
    assert_eq!(ok.status.code(), Some(0), "{}", shown(&ok));
    assert!(text(&ok.stdout).starts_with("NO_RECORD"), "{}", shown(&ok));
}

#[test]
fn status_reports_certificates_about_to_expire() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertAuthority::generate("test CA", 3650, time::OffsetDateTime::now_utc()).unwrap();
    std::fs::create_dir(dir.path().join("ca")).unwrap();
    std::fs::write(dir.path().join("ca/ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("ca/ca.key"), ca.key_pem()).unwrap();
    let uscc = new_uscc(303);
    let issue = |days: &str, out_dir: &str| {
        run(
            dir.path(),
            "https://127.0.0.1:1",
            &[
                "certs",
                "issue",
                "--org",
                &uscc,
                "--role",
                "employer",
                "--days",
                days,
                "--ca-cert",
                "ca/ca.pem",
                "--ca-key",
                "ca/ca.key",
                "--out-dir",
                out_dir,
            ],
        )
    };
    let long = issue("825", "fine");
    assert!(long.status.success(), "{}", shown(&long));
    // The lifetime printed is the one asked for (whole days counted from a later "now" said 824).
    assert!(shown(&long).contains("(825 days)"), "{}", shown(&long));
    let short = issue("10", "soon");
    assert!(short.status.success(), "{}", shown(&short));

    let status = |args: &[&str]| {
        let mut all = vec!["certs", "status"];
        all.extend_from_slice(args);
        run(dir.path(), "https://127.0.0.1:1", &all)
    };
    let fine = status(&["--dir", "fine"]);
    assert_eq!(fine.status.code(), Some(0), "{}", shown(&fine));
    assert!(
        text(&fine.stdout).contains("0 expired, 0 expiring"),
        "{}",
        shown(&fine)
    );

    let soon = status(&["--dir", "fine", "--dir", "soon"]);
    assert_eq!(soon.status.code(), Some(8), "{}", shown(&soon));
    let line = text(&soon.stdout)
        .lines()
        .find(|l| l.contains("soon/"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(line.starts_with("EXPIRING"), "{}", shown(&soon));
    assert!(line.contains(&uscc), "{line}");
    assert!(text(&soon.stdout).contains("1 expiring within 30 days"));

    // The window is the operator's: 10 days left is no alarm with a 5-day window.
    let narrow = status(&["--warn-days", "5", &format!("soon/{uscc}.pem")]);
    assert_eq!(narrow.status.code(), Some(0), "{}", shown(&narrow));

    // An expired certificate is reported as such.
    let now = time::OffsetDateTime::now_utc();
    let org = OrgCertRequest {
        uscc: &uscc,
        name: "",
        role: "employer",
    };
    let expired = ca
        .issue_client_with_validity(
            &org,
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        )
        .unwrap();
    std::fs::write(dir.path().join("expired.pem"), expired.cert_pem).unwrap();
    let report = json_of_failure(&status(&["--json", "expired.pem"]));
    assert_eq!(report["expired"], 1);
    assert_eq!(report["certificates"][0]["state"], "EXPIRED");
    assert!(report["certificates"][0]["days_left"].as_i64().unwrap() < 0);
}

/// The JSON document of a command that exits 8.
fn json_of_failure(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(8), "{}", shown(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", shown(out)))
}

#[tokio::test]
async fn a_revocation_refuses_connections_already_open() {
    let server = TestServer::start().await;
    let dir = server.certs_dir();
    let ca = CertAuthority::from_pem(
        &std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(dir.join("ca.key")).unwrap(),
    )
    .unwrap();
    // A second certificate for the dev school, as in a rotation.
    let employer = server.org(Role::Employer);
    let org = OrgCertRequest {
        uscc: &employer.uscc,
        name: employer.name,
        role: "employer",
    };
    // The handshake checks validity against the real clock, not the server's test clock.
    let pair = ca
        .issue_client(&org, 30, time::OffsetDateTime::now_utc())
        .unwrap();
    let der = certs::cert_der_from_pem(&pair.cert_pem).unwrap();
    let fingerprint = certs::peer_cert_info(&der).unwrap().fingerprint_sha256;
    let channel = server
        .channel_with(Some((
            pair.cert_pem.into_bytes(),
            pair.key_pem.into_bytes(),
        )))
        .await
        .unwrap();
    let mut checks = proto::check_service_client::CheckServiceClient::new(channel);
    let person = &people(7, 1)[0];
    let request = || check_request(&person.0, &person.1, Purpose::PreHire);
    checks.check(request()).await.expect("valid before");

    let mut orgs = server.orgs(Role::Operator).await;
    let revoke = |fingerprint: &str, reason: &str| proto::RevokeCertificateRequest {
        fingerprint: fingerprint.into(),
        reason: reason.into(),
    };
    // Bad input is refused before anything is listed.
    let bad = orgs
        .revoke_certificate(revoke("abc", "x"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let no_reason = orgs
        .revoke_certificate(revoke(&fingerprint, " "))
        .await
        .unwrap_err();
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    let own = std::fs::read_to_string(dir.join("operator.pem")).unwrap();
    let own = certs::peer_cert_info(&certs::cert_der_from_pem(&own).unwrap()).unwrap();
    let locked_out = orgs
        .revoke_certificate(revoke(&own.fingerprint_sha256, "oops"))
        .await
        .unwrap_err();
    assert_eq!(locked_out.code(), Code::FailedPrecondition);
    checks.check(request()).await.expect("still valid");

    // Upper case with colons, as openssl prints it.
    let pasted = fingerprint
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    let first = orgs
        .revoke_certificate(revoke(&pasted, "laptop stolen"))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.already_revoked);
    assert_eq!(first.certificate.unwrap().fingerprint, fingerprint);

    let status = checks.check(request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("revoked"), "{}", status.message());
    // The dev school's own certificate is unaffected.
    server
        .checks(Role::Employer)
        .await
        .check(request())
        .await
        .expect("the other certificate still works");

    let again = orgs
        .revoke_certificate(revoke(&fingerprint, "again"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.already_revoked);
    assert_eq!(again.certificate.unwrap().reason, "laptop stolen");
    let outcomes: Vec<String> = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "OrganisationService.RevokeCertificate")
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "FAILED_PRECONDITION",
            "REVOKED",
            "UNCHANGED"
        ]
    );
}

#[tokio::test]
async fn the_server_warns_at_start_when_its_own_certificate_is_about_to_expire() {
    let capture = common::capture_logs();
    let certs_dir = tempfile::tempdir().unwrap();
    let dev = certs_dir.path().join("dev");
    safehire::devset::ensure_dev_certs(&dev, start_time()).unwrap();
    let ca = CertAuthority::from_pem(
        &std::fs::read_to_string(dev.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(dev.join("ca.key")).unwrap(),
    )
    .unwrap();
    let short = ca
        .issue_server(&["localhost", "127.0.0.1"], 10, start_time())
        .unwrap();
    let short_cert = certs_dir.path().join("short-lived-server.pem");
    let short_key = certs_dir.path().join("short-lived-server.key");
    std::fs::write(&short_cert, short.cert_pem).unwrap();
    std::fs::write(&short_key, short.key_pem).unwrap();

    let _warned = TestServer::start_with(|config| {
        config.tls.dev_dir = dev.clone();
        config.tls.server_cert = Some(short_cert.clone());
        config.tls.server_key = Some(short_key.clone());
    })
    .await;
    let quiet = TestServer::start().await;

    let logs = capture.human();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("certificate expires soon"))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|l| l.contains(&short_cert.display().to_string()) && l.contains("days_left=10")),
        "{warnings:?}"
    );
    let quiet_dir = quiet.certs_dir().display().to_string();
    assert!(
        warnings.iter().all(|l| !l.contains(&quiet_dir)),
        "{warnings:?}"
    );
}
