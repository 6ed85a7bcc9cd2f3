//! The server under test as a child process: the real `safehire serve`, on a free loopback port
//! with real mTLS and a data folder of its own, pinned to its own core when the machine has two.
//! One process per scenario, so that its peak memory (VmHWM) is that scenario's; stopped with
//! SIGTERM it drains, and its writer logs what group commit achieved, which is read back here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::BenchError;
use crate::org::Role;

/// How long a server may take to come up (dev certificates are made on the first start).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping server may take to drain and checkpoint a large WAL.
const STOP_TIMEOUT: Duration = Duration::from_secs(180);

/// Where the server runs.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `safehire` binary.
    pub binary: PathBuf,
    /// The folder the server runs in; its dev certificates are made under `certs/dev`.
    pub work_dir: PathBuf,
    /// The core the server is pinned to, if any (with `taskset`).
    pub core: Option<usize>,
    /// The binary is another build (`--server-binary`): it is given only the settings every
    /// build of the suite knows, since an older one refuses a newer key as unknown.
    pub other_build: bool,
}

/// What the audit writer did over the server's life, from its log line at shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WriterFigures {
    pub commits: u64,
    pub jobs: u64,
    pub audit_entries: u64,
    pub commit_seconds: f64,
}

/// A stopped server's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stopped {
    pub peak_rss_bytes: Option<u64>,
    pub writer: Option<WriterFigures>,
}

/// A running `safehire serve`.
pub struct ServerProcess {
    child: Child,
    pid: u32,
    pub addr: SocketAddr,
    certs: PathBuf,
    writer_line: JoinHandle<Option<String>>,
}

impl ServerProcess {
    /// Starts `safehire serve` on `data_dir` and waits until it listens.
    pub async fn start(launch: &Launch, data_dir: &Path) -> Result<Self, BenchError> {
        let mut command = match launch.core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(&launch.binary);
                c
            }
            None => Command::new(&launch.binary),
        };
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .current_dir(&launch.work_dir)
            // The client's own setting would be an unknown key to the server's configuration.
            .env_remove("SAFEHIRE_SERVER")
            .env("SAFEHIRE_LOG_FORMAT", "json")
            // A free port for the metrics listener, so that a server already running here
            // (on the default port) does not stop the suite.
            .env("SAFEHIRE_METRICS__LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn,safehire::store::sqlite::writer=info")
            // The suite measures the server's capacity, which one organisation's share of it
            // (`limits.calls_per_second_per_org`) is meant to stay far below; the limiter
            // still runs on every call.
            .env("SAFEHIRE_LIMITS__CALLS_PER_SECOND_PER_ORG", "10000000")
            .env("SAFEHIRE_LIMITS__CALL_BURST_PER_ORG", "10000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if !launch.other_build {
            // Millions of pre-hire rows a run: no daily quota either (a build from before the
            // quota has none to lift).
            command.env("SAFEHIRE_RULES__PRE_HIRE_ROWS_PER_DAY", "1000000000");
        }
        let mut child = command
            .spawn()
            .map_err(|e| BenchError::new(format!("{}: {e}", launch.binary.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::new("the server exited at once"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| BenchError::new("no standard error from the server"))?;
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let addr = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("safehire listening on ") {
                    return rest.split_whitespace().next().and_then(|a| a.parse().ok());
                }
                seen.push(line);
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            BenchError::new(format!("the server did not start: {}", seen.join(" | ")))
        })?;
        // Keep draining standard error (a full pipe would stall the server) and keep the
        // writer's closing line.
        let writer_line = tokio::spawn(async move {
            let mut found = None;
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("writer stopped") {
                    found = Some(line);
                }
            }
            found
        });
        Ok(Self {
            child,
            pid,
            addr,
            certs: launch.work_dir.join("certs").join("dev"),
            writer_line,
        })
    }

    /// A new connection (HTTP/2 over mTLS) presenting the dev certificate of `role`.
    pub async fn channel(&self, role: Role) -> Result<Channel, BenchError> {
        let read = |name: String| {
            let path = self.certs.join(&name);
            std::fs::read(&path).map_err(|e| BenchError::new(format!("{}: {e}", path.display())))
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read("ca.pem".into())?))
            .identity(Identity::from_pem(
                read(format!("{}.pem", role.slug()))?,
                read(format!("{}.key", role.slug()))?,
            ))
            .domain_name("localhost");
        Endpoint::from_shared(format!("https://{}", self.addr))
            .and_then(|e| e.tls_config(tls))
            .map_err(|e| BenchError::new(format!("endpoint: {e}")))?
            .connect()
            .await
            .map_err(|e| BenchError::new(format!("cannot connect to the server: {e}")))
    }

    /// `count` separate connections for `role`.
    pub async fn channels(&self, role: Role, count: usize) -> Result<Vec<Channel>, BenchError> {
        let mut channels = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            channels.push(self.channel(role).await?);
        }
        Ok(channels)
    }

    /// Stops the server as an operator would (SIGTERM: drain, flush, checkpoint) and returns
    /// its peak memory and what its writer did.
    pub async fn stop(mut self) -> Result<Stopped, BenchError> {
        let peak_rss_bytes = peak_rss_bytes(self.pid);
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .map_err(|e| BenchError::new(format!("kill: {e}")))?;
        if !signalled.success() {
            return Err(BenchError::new("the server could not be signalled to stop"));
        }
        let exited = tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .map_err(|_| BenchError::new("the server did not stop in time"))?
            .map_err(|e| BenchError::new(format!("waiting for the server: {e}")))?;
        if !exited.success() {
            return Err(BenchError::new(format!("the server stopped with {exited}")));
        }
        let line = (&mut self.writer_line).await.ok().flatten();
        Ok(Stopped {
            peak_rss_bytes,
            writer: line.as_deref().and_then(writer_figures),
        })
    }
}

/// The peak resident set (VmHWM) of a live process, from /proc.
fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The writer's closing log line (JSON) as figures.
fn writer_figures(line: &str) -> Option<WriterFigures> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields")?;
    let number = |key: &str| fields.get(key).and_then(serde_json::Value::as_u64);
    Some(WriterFigures {
        commits: number("commits")?,
        jobs: number("jobs")?,
        audit_entries: number("audit_entries")?,
        commit_seconds: number("commit_micros")? as f64 / 1e6,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_writer_line() {
        let line = r#"{"timestamp":"2026-11-24T09:00:00Z","level":"INFO","fields":{"message":"writer stopped","commits":10,"jobs":40,"audit_entries":41,"commit_micros":2500000},"target":"safehire::store::sqlite::writer"}"#;
        assert_eq!(
            writer_figures(line),
            Some(WriterFigures {
                commits: 10,
                jobs: 40,
                audit_entries: 41,
                commit_seconds: 2.5,
            })
        );
        assert_eq!(writer_figures("not json"), None);
    }

    #[test]
    fn reads_its_own_peak_memory() {
        assert!(peak_rss_bytes(std::process::id()).is_some_and(|b| b > 0));
    }
}
