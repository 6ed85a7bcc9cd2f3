//! The web portal against the real server: HTTPS with real client certificates, the pages'
//! headers and forms, the service rules reached through them, and (with Debian's Chromium and
//! playwright-core installed, as CI installs them) the whole employer and prosecutor scenario in
//! a real browser, whose screenshots go to docs/ when SAFEHIRE_UPDATE_SCREENSHOTS is set.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use safehire::org::Role;
use safehire::proto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{self, TestServer, people, record};

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The CSRF token of the page's first form.
    fn token(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form") + 19;
        self.body[at..at + 64].to_string()
    }
}

/// One HTTP/1.1 request to the portal over TLS, presenting `role`'s dev certificate or none.
pub(crate) async fn https(server: &TestServer, role: Option<Role>, request: &str) -> Reply {
    safehire::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(server.certs_dir().join("ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = match role.and_then(|r| server.credentials(r)) {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(&cert)
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(&key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.portal_addr.expect("the portal is on"))
        .await
        .unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
}

fn post(path: &str, fields: &[(&str, &str)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let body = body.join("&");
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn audited(server: &TestServer, action: &str) -> Vec<common::AuditRow> {
    server
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == action)
        .collect()
}

#[tokio::test]
async fn without_a_certificate_only_the_explanation_is_served() {
    let server = TestServer::start().await;
    for path in ["/", "/check", "/oversight", "/audit", "/staff/results"] {
        let reply = https(&server, None, &get(path)).await;
        assert_eq!(reply.status, 401, "{path}: {}", reply.head);
        assert!(
            reply.body.contains("需要单位数字证书"),
            "{path}: {}",
            reply.body
        );
        assert!(
            !reply.body.contains("<form") && !reply.body.contains("<nav"),
            "{}",
            reply.body
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    let english = https(&server, None, &get("/?lang=en")).await;
    assert!(
        english
            .body
            .contains("An organisation certificate is required")
    );
    // A form posted without a certificate reaches no service: nothing is checked or audited.
    let reply = https(&server, None, &post("/check", &[("doc_number", "1")])).await;
    assert_eq!(reply.status, 401);
    assert!(audited(&server, "CheckService.Check").is_empty());
}

#[tokio::test]
async fn pages_answer_by_the_services_own_rules_and_headers() {
    let server = TestServer::start().await;
    let logs = common::capture_logs();
    let person = people(1901, 2);
    let (hit, hit_name) = &person[0];
    let (clear, clear_name) = &person[1];
    server
        .import(vec![record(
            1,
            "REC-P-1",
            hit,
            hit_name,
            proto::Category::Sexual,
        )])
        .await;
    let employer = server.org(Role::Employer);

    let form = https(&server, Some(Role::Employer), &get("/check")).await;
    assert_eq!(form.status, 200, "{}", form.head);
    assert_eq!(form.header("cache-control"), Some("no-store"));
    assert_eq!(form.header("x-frame-options"), Some("DENY"));
    let csp = form.header("content-security-policy").unwrap_or_default();
    for rule in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(rule), "{csp}");
    }
    assert!(!form.body.contains("<script"), "no script at all");
    assert!(form.head.to_ascii_lowercase().find("set-cookie").is_none());
    let token = form.token();
    let fields = |doc: &'static str, number: &str, name: &str, consent: &str, csrf: &str| {
        post(
            "/check",
            &[
                ("csrf", csrf),
                ("doc_type", doc),
                ("doc_number", number),
                ("name", name),
                ("consent_ref", consent),
            ],
        )
    };

    // Without the page's token, or with another certificate's, nothing reaches the service.
    let forged = fields("cn-id", hit, hit_name, "CONSENT-2026-001", &"0".repeat(64));
    assert_eq!(
        https(&server, Some(Role::Employer), &forged).await.status,
        403
    );
    let borrowed = fields("cn-id", hit, hit_name, "CONSENT-2026-001", &token);
    assert_eq!(
        https(&server, Some(Role::Bureau), &borrowed).await.status,
        403
    );
    assert!(audited(&server, "CheckService.Check").is_empty());

    // With it, the check is the service's: the same answer, receipt and audit entry.
    let found = https(&server, Some(Role::Employer), &borrowed).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(
        found.body.contains("data-outcome=\"RECORD_FOUND\""),
        "{}",
        found.body
    );
    let clear_check = fields("身份证", clear, clear_name, "CONSENT-2026-001", &token);
    let answer = https(&server, Some(Role::Employer), &clear_check).await;
    assert!(
        answer.body.contains("data-outcome=\"NO_RECORD\""),
        "{}",
        answer.body
    );
    let checks = audited(&server, "CheckService.Check");
    assert_eq!(checks.len(), 2);
    assert!(
        checks
            .iter()
            .all(|r| r.caller == employer.uscc && r.has_subject)
    );

    // The service's own validation: PRE_HIRE without a consent reference is refused, audited.
    let no_consent = fields("cn-id", clear, clear_name, "", &token);
    let refused = https(&server, Some(Role::Employer), &no_consent).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("InvalidArgument") && refused.body.contains("consent"));

    // The service's own roles: a prosecutor may not check, whatever page it posts to.
    let page = https(&server, Some(Role::Prosecutor), &get("/audit")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let prosecutor_check = fields(
        "cn-id",
        clear,
        clear_name,
        "CONSENT-2026-001",
        &page.token(),
    );
    let denied = https(&server, Some(Role::Prosecutor), &prosecutor_check).await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert!(
        denied.body.contains("may not call CheckService.Check"),
        "{}",
        denied.body
    );
    assert!(
        audited(&server, "CheckService.Check")
            .iter()
            .any(|r| r.outcome == "PERMISSION_DENIED" && r.role == "PROSECUTOR")
    );

    // A bureau checks on behalf of a unit it supervises: the check counts for the unit.
    let bureau_form = https(&server, Some(Role::Bureau), &get("/check")).await;
    assert!(bureau_form.body.contains("name=\"on_behalf_of\""));
    let on_behalf = post(
        "/check",
        &[
            ("csrf", &bureau_form.token()),
            ("doc_type", "cn-id"),
            ("doc_number", clear),
            ("name", clear_name),
            ("consent_ref", "CONSENT-2026-002"),
            ("on_behalf_of", &employer.uscc),
        ],
    );
    let answer = https(&server, Some(Role::Bureau), &on_behalf).await;
    assert!(
        answer.body.contains("data-outcome=\"NO_RECORD\""),
        "{}",
        answer.body
    );
    let bureau = server.org(Role::Bureau);
    assert!(
        audited(&server, "CheckService.Check")
            .iter()
            .any(|r| r.caller == bureau.uscc
                && r.employer == employer.uscc
                && r.outcome == "NO_RECORD")
    );
    let overview = https(&server, Some(Role::Bureau), &get("/oversight")).await;
    assert_eq!(overview.status, 200, "{}", overview.body);

    for text in [hit, hit_name, clear, clear_name] {
        assert!(!logs.human().contains(text.as_str()), "{text} in the logs");
        assert!(!logs.json().contains(text.as_str()), "{text} in the logs");
    }
}

#[tokio::test]
async fn names_are_escaped_not_markup() {
    let server = TestServer::start().await;
    let mut generator = safehire::synth::Generator::new(19, common::start_time().date());
    let name = "<img src=x onerror=alert(1)>幼儿园";
    server
        .orgs(Role::Operator)
        .await
        .enroll(proto::EnrollRequest {
            uscc: generator.uscc(),
            name: name.into(),
            role: proto::Role::Employer as i32,
            region: "150602".into(),
            industry: proto::Industry::Kindergarten as i32,
            supervising_bureau: String::new(),
        })
        .await
        .expect("enrolled");
    // The report judges what the log held before now.
    server.clock.advance(time::Duration::minutes(1));
    let page = https(&server, Some(Role::Prosecutor), &get("/oversight")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("&lt;img src=x onerror=alert(1)&gt;幼儿园"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("<img"),
        "markup from a name reached the page"
    );
}

/// Where the browser tests' Node package is.
fn portal_package() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/portal")
}

/// Whether Chromium and playwright-core are here; in CI their absence is a failure.
fn browser_ready() -> bool {
    let chromium = Path::new("/usr/bin/chromium").exists();
    let playwright = portal_package()
        .join("node_modules/playwright-core")
        .exists();
    if chromium && playwright {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have /usr/bin/chromium ({chromium}) and tests/portal/node_modules \
         ({playwright}); .ci/run installs them"
    );
    eprintln!("note: chromium or playwright-core is missing; the portal browser test was skipped");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_employer_and_a_prosecutor_use_the_portal_in_chromium() {
    if !browser_ready() {
        return;
    }
    let server = TestServer::start().await;
    let logs = common::capture_logs();
    let employer = server.org(Role::Employer);
    let person = people(1902, 4);
    let (hit, hit_name) = &person[0];
    let (clear, clear_name) = &person[1];
    let (staff, staff_name) = &person[2];
    let (single, single_name) = &person[3];

    // A current member whose record arrives later: the alert the employer acknowledges.
    let upload = common::roster_upload(
        "",
        vec![common::member(1, staff, staff_name, "2025-09-01")],
        10,
    );
    server
        .rosters(Role::Employer)
        .await
        .replace_roster(tokio_stream::iter(upload))
        .await
        .expect("roster declared");
    server
        .import(vec![
            record(1, "REC-W-1", hit, hit_name, proto::Category::Sexual),
            record(2, "REC-W-2", staff, staff_name, proto::Category::Abuse),
        ])
        .await;

    // A GB18030 staff file with Chinese headers and Chinese document type names.
    let dir = server.dir.path().join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    let staff_file = dir.join("员工名单.csv");
    let wrong_digit = {
        let mut number = clear.clone();
        let last = number.pop().unwrap();
        number.push(if last == '0' { '1' } else { '0' });
        number
    };
    let rows = vec![
        vec![
            "身份证".into(),
            hit.clone(),
            hit_name.clone(),
            "T-001".into(),
        ],
        vec![
            "居民身份证".into(),
            clear.clone(),
            clear_name.clone(),
            "T-002".into(),
        ],
        vec![
            "身份证".into(),
            wrong_digit.clone(),
            clear_name.clone(),
            "T-003".into(),
        ],
        vec![
            "护照".into(),
            "E12345678".into(),
            "王小明".into(),
            "T-004".into(),
        ],
    ];
    safehire::tabular::write_csv(
        std::fs::File::create(&staff_file).unwrap(),
        &["证件类型", "证件号码", "姓名", "工号"],
        rows,
        safehire::tabular::Encoding::Gb18030,
        false,
    )
    .unwrap();
    assert!(std::str::from_utf8(&std::fs::read(&staff_file).unwrap()).is_err());
    // The prosecutor's report judges what the log held before now: the units enrolled above.
    server.clock.advance(time::Duration::minutes(1));

    let certs = server.certs_dir();
    let pair = |role: Role| {
        serde_json::json!({
            "cert": certs.join(format!("{}.pem", role.slug())),
            "key": certs.join(format!("{}.key", role.slug())),
        })
    };
    // The employer's browser holds the PKCS#12 file `certs issue --p12` would write.
    let read = |name: &str| std::fs::read_to_string(certs.join(name)).unwrap();
    let p12 = safehire::certs::pkcs12::pkcs12(
        &read("employer.pem"),
        &read("employer.key"),
        &read("ca.pem"),
        "portal-test-password",
        &employer.uscc,
    )
    .unwrap();
    let pfx = dir.join("employer.p12");
    std::fs::write(&pfx, p12).unwrap();
    // The screenshots in docs/ are refreshed only when asked, so that a test run never edits
    // the working tree: SAFEHIRE_UPDATE_SCREENSHOTS=1 cargo test --test integration portal::
    let shots = if std::env::var_os("SAFEHIRE_UPDATE_SCREENSHOTS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
    } else {
        let shots = dir.join("shots");
        std::fs::create_dir_all(&shots).unwrap();
        shots
    };
    let config = serde_json::json!({
        "url": format!("https://localhost:{}", server.portal_addr.unwrap().port()),
        "employer": { "pfx": pfx, "passphrase": "portal-test-password" },
        "prosecutor": pair(Role::Prosecutor),
        "employerUscc": employer.uscc,
        "staffFile": staff_file,
        "check": { "docNumber": single, "name": single_name },
        "shots": shots,
        "downloads": dir,
    });
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let result_path = dir.join("result.json");
    let ran = tokio::process::Command::new("timeout")
        .arg("300")
        .arg("node")
        .arg(portal_package().join("scenario.js"))
        .arg(&config_path)
        .arg(&result_path)
        .current_dir(portal_package())
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    let result: serde_json::Value = std::fs::read_to_string(&result_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    assert!(
        ran.status.success(),
        "the browser scenario failed: {}\n{}\n{}",
        result["error"],
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );

    // No certificate: the explanation, nothing else.
    assert_eq!(result["noCertStatus"], 401);
    assert!(
        result["noCertText"]
            .as_str()
            .unwrap()
            .contains("需要单位数字证书")
    );
    assert_eq!(result["noCertForms"], 0);
    // The single pre-hire check and its receipt, which the audit log holds.
    assert_eq!(result["checkOutcome"], "NO_RECORD");
    let receipt = result["checkReceipt"].as_str().unwrap();
    assert_eq!(receipt.len(), 36, "{receipt}");
    // The staff file's progress as the page arrived, and its results, row by row.
    assert_eq!(result["staffProgress"], "已处理 4 / 4", "{result}");
    let file = std::fs::read_to_string(result["resultsFile"].as_str().unwrap()).unwrap();
    let lines: Vec<&str> = file.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0], "行号,工号,查询结果,查询编号,查询时间,错误",
        "{file}"
    );
    let outcome = |staff_ref: &str| {
        let line = lines.iter().find(|l| l.contains(staff_ref)).unwrap();
        line.split(',').nth(2).unwrap().to_string()
    };
    assert_eq!(outcome("T-001"), "RECORD_FOUND", "{file}");
    assert_eq!(outcome("T-002"), "NO_RECORD", "{file}");
    assert_eq!(outcome("T-003"), "ERROR", "{file}");
    assert!(file.contains("check digit"), "{file}");
    assert_eq!(outcome("T-004"), "NO_RECORD", "{file}");
    // The alert, acknowledged.
    assert_eq!(result["alertsBefore"], 1);
    assert_eq!(result["alertsAfter"], 0);
    assert_eq!(result["acknowledged"], 1);
    let acks = audited(&server, "AlertService.AcknowledgeAlert");
    assert!(
        acks.iter()
            .any(|r| r.outcome == "OK" || r.outcome == "SUSPENDED_PENDING_REVIEW"),
        "{acks:?}"
    );
    // The prosecutor's view of the unit and its evidence.
    assert_eq!(result["unitUscc"], employer.uscc.as_str());
    assert!(
        result["unitEvidenceRows"].as_u64().unwrap() >= 3,
        "{result}"
    );
    assert!(result["auditVerified"].as_str().unwrap().contains("ok"));
    let checks = audited(&server, "CheckService.Check");
    assert!(
        checks
            .iter()
            .any(|r| r.caller == employer.uscc && r.outcome == "NO_RECORD")
    );

    // Privacy: no identity in the server's logs, the URLs the browser asked for, its cookies
    // or its storage.
    let urls = result["urls"].to_string();
    let cookies = result["cookies"].as_array().unwrap();
    let storage = result["storage"].to_string();
    assert!(cookies.is_empty(), "cookies: {cookies:?}");
    for (number, name) in &person {
        for text in [
            number.as_str(),
            name.as_str(),
            &encode(number),
            &encode(name),
        ] {
            assert!(!logs.human().contains(text), "{text} in the logs");
            assert!(!logs.json().contains(text), "{text} in the logs");
            assert!(!urls.contains(text), "{text} in a URL: {urls}");
            assert!(!storage.contains(text), "{text} in browser storage");
        }
    }
    for shot in [
        "portal-check-result.png",
        "portal-staff-results.png",
        "portal-oversight.png",
    ] {
        let size = std::fs::metadata(shots.join(shot)).map_or(0, |m| m.len());
        assert!(size > 10_000, "{shot}: {size} bytes");
    }
}

#[test]
fn certs_issue_writes_a_pkcs12_file_for_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = safehire::certs::CertAuthority::generate("portal test CA", 30, common::start_time())
        .unwrap();
    std::fs::create_dir_all(d.join("ca")).unwrap();
    std::fs::write(d.join("ca/ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(d.join("ca/ca.key"), ca.key_pem()).unwrap();
    std::fs::write(d.join("password"), "zhe-shi-kou-ling\n").unwrap();
    let uscc = safehire::synth::Generator::new(7, common::start_time().date()).uscc();
    let issue = |p12: &str| {
        common::process::safehire_with_env(
            d,
            &[
                "certs",
                "issue",
                "--certs-dir",
                "ca",
                "--org",
                &uscc,
                "--role",
                "employer",
                "--out-dir",
                "issued",
                "--force",
                "--p12",
                p12,
                "--p12-password-file",
                "password",
            ],
            &[],
        )
    };
    let out = issue("unit.p12");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("unit.p12"));
    let bytes = std::fs::read(d.join("unit.p12")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(d.join("unit.p12"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let strict = p12_keystore::Pkcs12ImportPolicy::Strict;
    let store = p12_keystore::KeyStore::from_pkcs12(&bytes, "zhe-shi-kou-ling", strict).unwrap();
    let (alias, chain) = store.private_key_chain().unwrap();
    assert_eq!(alias, uscc);
    assert_eq!(chain.certs().len(), 2, "the certificate and its CA");
    let strict = p12_keystore::Pkcs12ImportPolicy::Strict;
    assert!(p12_keystore::KeyStore::from_pkcs12(&bytes, "wrong", strict).is_err());
    // A password too short to protect a file sent by mail is refused.
    std::fs::write(d.join("password"), "short\n").unwrap();
    let out = issue("short.p12");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));
}

#[test]
fn cli_messages_follow_the_locale() {
    let dir = tempfile::tempdir().unwrap();
    let run = |lang: &str| {
        let args = [
            "certs",
            "issue",
            "--org",
            "not-a-code",
            "--role",
            "employer",
        ];
        let out = common::process::safehire_with_env(
            dir.path(),
            &args,
            &[("LANG", lang), ("LC_ALL", ""), ("LC_MESSAGES", "")],
        );
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run("zh_CN.UTF-8").starts_with("错误: --org not-a-code"));
    assert!(run("C.UTF-8").starts_with("error: --org not-a-code"));
}
