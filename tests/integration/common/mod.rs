//! Test helpers: a real server on 127.0.0.1:0 with real mTLS certificates generated for the
//! test, a temp data folder, a clock the test can move, and clients for each dev role.

#![allow(dead_code)]

pub mod postgres;
pub mod process;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use safehire::clock::ManualClock;
use safehire::config::Config;
use safehire::devset::{DevOrg, dev_orgs};
use safehire::org::Role;
use safehire::proto;
use safehire::server::RunningServer;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Log lines written while a test holds a capture, every level of every crate, in both formats.
/// Lines written while nobody captures are dropped: the whole suite runs in one process, and
/// keeping every trace line of every test would take gigabytes.
pub struct LogCapture {
    human_from: usize,
    json_from: usize,
}

static CAPTURING: AtomicUsize = AtomicUsize::new(0);

/// Starts capturing; lines of tests running meanwhile are captured too (more to scan, not less).
pub fn capture_logs() -> LogCapture {
    let (human, json) = log_buffers();
    // The count goes up under the buffer's lock, so that no line is half in and half out.
    let human = human.lock().unwrap();
    let json = json.lock().unwrap();
    CAPTURING.fetch_add(1, Ordering::SeqCst);
    LogCapture {
        human_from: human.len(),
        json_from: json.len(),
    }
}

impl LogCapture {
    /// The lines written since the capture began, in the human format.
    pub fn human(&self) -> String {
        let (human, _) = log_buffers();
        String::from_utf8_lossy(&human.lock().unwrap()[self.human_from..]).into_owned()
    }

    /// The same lines in the JSON format production writes.
    pub fn json(&self) -> String {
        let (_, json) = log_buffers();
        String::from_utf8_lossy(&json.lock().unwrap()[self.json_from..]).into_owned()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        let (human, json) = log_buffers();
        let (mut human, mut json) = (human.lock().unwrap(), json.lock().unwrap());
        if CAPTURING.fetch_sub(1, Ordering::SeqCst) == 1 {
            human.clear();
            json.clear();
        }
    }
}

type Buffer = Arc<Mutex<Vec<u8>>>;

/// Every event at every level, written twice: human and JSON, as `log_format` chooses.
fn log_buffers() -> (Buffer, Buffer) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    static BUFFERS: OnceLock<(Buffer, Buffer)> = OnceLock::new();
    BUFFERS
        .get_or_init(|| {
            let (human, json) = (Buffer::default(), Buffer::default());
            let human_writer = CaptureWriter(Arc::clone(&human));
            let json_writer = CaptureWriter(Arc::clone(&json));
            let _ = tracing_subscriber::registry()
                .with(tracing_subscriber::EnvFilter::new("trace"))
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(move || human_writer.clone())
                        .with_ansi(false),
                )
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_writer(move || json_writer.clone()),
                )
                .try_init();
            (human, json)
        })
        .clone()
}

#[derive(Clone)]
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut buffer = self.0.lock().unwrap();
        if CAPTURING.load(Ordering::SeqCst) > 0 {
            buffer.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub addr: std::net::SocketAddr,
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The web portal's address (on, as in dev mode, on a free port).
    pub portal_addr: Option<std::net::SocketAddr>,
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub config: Config,
}

pub fn start_time() -> time::OffsetDateTime {
    time::macros::datetime!(2026-03-02 09:00 UTC)
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts with the test's changes to the configuration (limits, say).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        log_buffers();
        Self::start_uncaptured(adjust).await
    }

    /// Starts without capturing the logs: every log line is kept in memory for the plaintext
    /// scans, which a test that runs for minutes (the soak) would mistake for a leak.
    pub async fn start_uncaptured(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("data"),
            tls: safehire::config::TlsFiles {
                dev_dir: dir.path().join("certs"),
                ..Default::default()
            },
            metrics: safehire::config::MetricsConfig {
                enabled: true,
                listen: "127.0.0.1:0".parse().unwrap(),
            },
            // Batches of ten thousand and more applicants: tests of the quota lower it.
            rules: safehire::config::Rules {
                pre_hire_rows_per_day: 1_000_000,
                ..Default::default()
            },
            portal: safehire::config::PortalConfig {
                enabled: None,
                listen: "127.0.0.1:0".parse().unwrap(),
                ..Default::default()
            },
            ..Config::default()
        };
        let mut config = config;
        adjust(&mut config);
        let clock = ManualClock::new(start_time());
        let server = safehire::server::start(config.clone(), Arc::new(clock.clone()))
            .await
            .expect("server starts");
        TestServer {
            addr: server.addr,
            metrics_addr: server.metrics_addr,
            portal_addr: server.portal_addr,
            server: Some(server),
            dir,
            clock,
            config,
        }
    }

    /// Starts the server again on the same data and certificates (after `stop`).
    pub async fn restart(&mut self) {
        self.stop().await;
        let server = safehire::server::start(self.config.clone(), Arc::new(self.clock.clone()))
            .await
            .expect("server restarts");
        self.addr = server.addr;
        self.metrics_addr = server.metrics_addr;
        self.portal_addr = server.portal_addr;
        self.server = Some(server);
    }

    pub fn certs_dir(&self) -> PathBuf {
        self.config.tls.dev_dir.clone()
    }

    pub fn db_path(&self) -> PathBuf {
        self.config.database_path()
    }

    pub fn org(&self, role: Role) -> DevOrg {
        dev_orgs().into_iter().find(|o| o.role == role).unwrap()
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A channel presenting the dev certificate of `role`.
    pub async fn channel(&self, role: Role) -> Channel {
        self.channel_with(self.credentials(role))
            .await
            .expect("connects")
    }

    /// The dev certificate and key (PEM) of `role`, for [`Self::channel_with`].
    pub fn credentials(&self, role: Role) -> Option<(Vec<u8>, Vec<u8>)> {
        let dir = self.certs_dir();
        let cert = std::fs::read(dir.join(format!("{}.pem", role.slug()))).unwrap();
        let key = std::fs::read(dir.join(format!("{}.key", role.slug()))).unwrap();
        Some((cert, key))
    }

    /// A channel presenting the dev certificate of `role` through `proxy`, whose connections
    /// the test can cut.
    pub async fn channel_via(&self, proxy: &CuttableProxy, role: Role) -> Channel {
        self.connect(&format!("https://{}", proxy.addr), self.credentials(role))
            .await
            .expect("connects through the proxy")
    }

    /// A channel presenting `identity` (certificate, key PEM), or no certificate at all.
    pub async fn channel_with(
        &self,
        identity: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Channel, tonic::transport::Error> {
        self.connect(&self.url(), identity).await
    }

    async fn connect(
        &self,
        url: &str,
        identity: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Channel, tonic::transport::Error> {
        connect(&self.certs_dir(), url, identity).await
    }

    pub async fn checks(
        &self,
        role: Role,
    ) -> proto::check_service_client::CheckServiceClient<Channel> {
        proto::check_service_client::CheckServiceClient::new(self.channel(role).await)
    }

    pub async fn registry(&self) -> proto::registry_service_client::RegistryServiceClient<Channel> {
        proto::registry_service_client::RegistryServiceClient::new(
            self.channel(Role::Registrar).await,
        )
    }

    pub async fn orgs(
        &self,
        role: Role,
    ) -> proto::organisation_service_client::OrganisationServiceClient<Channel> {
        proto::organisation_service_client::OrganisationServiceClient::new(self.channel(role).await)
    }

    pub async fn audit(
        &self,
        role: Role,
    ) -> proto::audit_service_client::AuditServiceClient<Channel> {
        proto::audit_service_client::AuditServiceClient::new(self.channel(role).await)
    }

    pub async fn rosters(
        &self,
        role: Role,
    ) -> proto::roster_service_client::RosterServiceClient<Channel> {
        proto::roster_service_client::RosterServiceClient::new(self.channel(role).await)
    }

    pub async fn alerts(
        &self,
        role: Role,
    ) -> proto::alert_service_client::AlertServiceClient<Channel> {
        proto::alert_service_client::AlertServiceClient::new(self.channel(role).await)
    }

    pub async fn reviews(
        &self,
        role: Role,
    ) -> proto::review_service_client::ReviewServiceClient<Channel> {
        proto::review_service_client::ReviewServiceClient::new(self.channel(role).await)
    }

    /// The metrics endpoint's text, fetched with a bare HTTP/1.1 GET.
    pub async fn scrape(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.metrics_addr.expect("metrics are on");
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        socket.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
    }

    /// Stops the server cleanly (drains, flushes the audit log).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
    }

    /// Every audit entry as (action, outcome, caller, detail), read from the database file.
    pub fn audit_rows(&self) -> Vec<AuditRow> {
        read_audit_rows(&self.db_path())
    }

    /// Imports `records` and returns the summary.
    pub async fn import(&self, records: Vec<proto::ImportRecord>) -> proto::ImportSummary {
        let chunks = vec![proto::ImportChunk { records }];
        self.registry()
            .await
            .import(tokio_stream::iter(chunks))
            .await
            .expect("import succeeds")
            .into_inner()
    }
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub action: String,
    pub outcome: String,
    pub caller: String,
    pub role: String,
    pub employer: String,
    pub has_subject: bool,
    pub detail: String,
}

pub fn read_audit_rows(db: &Path) -> Vec<AuditRow> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT seq, action, outcome, caller, role, employer, subject IS NOT NULL, detail FROM audit_log ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(AuditRow {
            seq: r.get(0)?,
            action: r.get(1)?,
            outcome: r.get(2)?,
            caller: r.get(3)?,
            role: r.get(4)?,
            employer: r.get(5)?,
            has_subject: r.get(6)?,
            detail: r.get(7)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A server not stopped by the test is left to the runtime's end; its temp dir goes now.
        self.server.take();
    }
}

/// A person in the wire form.
pub fn identity(doc_number: &str, name: &str) -> proto::Identity {
    proto::Identity {
        doc_type: proto::DocType::CnResidentId as i32,
        doc_number: doc_number.to_string(),
        name: name.to_string(),
    }
}

pub fn record(
    row: u64,
    source_ref: &str,
    doc_number: &str,
    name: &str,
    category: proto::Category,
) -> proto::ImportRecord {
    proto::ImportRecord {
        row,
        source_ref: source_ref.to_string(),
        subject: Some(identity(doc_number, name)),
        category: category as i32,
        kind: proto::RecordKind::Conviction as i32,
        decided_on: "2019-05-20".to_string(),
        sealed: false,
    }
}

pub fn check_request(doc_number: &str, name: &str, purpose: proto::Purpose) -> proto::CheckRequest {
    proto::CheckRequest {
        subject: Some(identity(doc_number, name)),
        purpose: purpose as i32,
        scope: proto::Scope::Art62 as i32,
        consent_ref: if purpose == proto::Purpose::PreHire {
            "CONSENT-0001".into()
        } else {
            String::new()
        },
        on_behalf_of: String::new(),
    }
}

/// The header of a batch of applicants under `batch_id`: PRE_HIRE, one consent reference for
/// every row (PERIODIC batches are for roster members only).
pub fn batch_header(batch_id: &str) -> proto::CheckBatchRequest {
    proto::CheckBatchRequest {
        item: Some(proto::check_batch_request::Item::Header(
            proto::BatchHeader {
                batch_id: batch_id.into(),
                purpose: proto::Purpose::PreHire as i32,
                scope: proto::Scope::Art62 as i32,
                consent_policy: proto::ConsentPolicy::Batch as i32,
                consent_ref: "CONSENT-2026-001".into(),
                ..Default::default()
            },
        )),
    }
}

/// Fictitious people from the project's own generator, distinct by document number.
pub fn people(seed: u64, n: usize) -> Vec<(String, String)> {
    let mut generator = safehire::synth::Generator::new(seed, start_time().date());
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    while out.len() < n {
        let id = generator.resident_id();
        if seen.insert(id.clone()) {
            out.push((id, generator.name()));
        }
    }
    out
}

/// A roster member in the wire form, hired on `hire_date`.
pub fn member(row: u64, doc_number: &str, name: &str, hire_date: &str) -> proto::RosterMember {
    proto::RosterMember {
        row,
        subject: Some(identity(doc_number, name)),
        staff_ref: format!("S{row:05}"),
        hire_date: hire_date.to_string(),
        departure_date: String::new(),
    }
}

/// A roster upload: the header, then the members in chunks of `chunk`.
pub fn roster_upload(
    on_behalf_of: &str,
    members: Vec<proto::RosterMember>,
    chunk: usize,
) -> Vec<proto::RosterUpload> {
    let mut messages = vec![proto::RosterUpload {
        item: Some(proto::roster_upload::Item::Header(proto::RosterHeader {
            on_behalf_of: on_behalf_of.to_string(),
            ..Default::default()
        })),
    }];
    for part in members.chunks(chunk.max(1)) {
        messages.push(proto::RosterUpload {
            item: Some(proto::roster_upload::Item::Members(proto::RosterMembers {
                members: part.to_vec(),
            })),
        });
    }
    messages
}

/// The same upload asking for a partial apply: the valid rows apply despite rejected ones.
pub fn partial(mut upload: Vec<proto::RosterUpload>) -> Vec<proto::RosterUpload> {
    if let Some(proto::RosterUpload {
        item: Some(proto::roster_upload::Item::Header(header)),
    }) = upload.first_mut()
    {
        header.partial = true;
    }
    upload
}

/// A channel to `url` trusting the CA in `certs` and presenting `identity` (certificate, key
/// PEM), or no certificate at all.
pub async fn connect(
    certs: &Path,
    url: &str,
    identity: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<Channel, tonic::transport::Error> {
    safehire::tls::install_crypto_provider();
    let ca = std::fs::read(certs.join("ca.pem")).unwrap();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(url.to_string())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
}

/// A TCP relay in front of the server whose connections the test can cut, as a broken network
/// or a killed client would (the server sees its streams fail, not end), or freeze, as a cut
/// cable or a suspended laptop would (nothing arrives from the client any more, and nothing
/// closes).
pub struct CuttableProxy {
    pub addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
    frozen: tokio::sync::watch::Sender<bool>,
    /// Set when the server closed a connection that was frozen.
    server_hung_up: tokio::sync::watch::Sender<bool>,
}

impl CuttableProxy {
    pub async fn start(server: std::net::SocketAddr) -> CuttableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = tokio::sync::watch::channel(false);
        let (frozen, _) = tokio::sync::watch::channel(false);
        let (server_hung_up, _) = tokio::sync::watch::channel(false);
        let (cuts, freezes, hang_ups) = (cut.clone(), frozen.clone(), server_hung_up.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = cuts.subscribe();
                let mut frozen = freezes.subscribe();
                let hang_ups = hang_ups.clone();
                tokio::spawn(async move {
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(server).await else {
                        return;
                    };
                    let froze = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => false,
                        _ = cut.wait_for(|cut| *cut) => false,
                        _ = frozen.wait_for(|frozen| *frozen) => true,
                    };
                    if froze {
                        // What the server sends is lost on the way; the client's side stays
                        // open and says nothing.
                        let _ = tokio::io::copy(&mut upstream, &mut tokio::io::sink()).await;
                        hang_ups.send_replace(true);
                        std::future::pending::<()>().await;
                        drop(client);
                    }
                });
            }
        });
        CuttableProxy {
            addr,
            cut,
            frozen,
            server_hung_up,
        }
    }

    /// Stops every connection through the proxy dead, without closing any.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Waits until the server closes a frozen connection.
    pub async fn server_hangs_up(&self) {
        let mut hung_up = self.server_hung_up.subscribe();
        hung_up.wait_for(|hung_up| *hung_up).await.unwrap();
    }

    /// Drops every connection through the proxy.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }
}
