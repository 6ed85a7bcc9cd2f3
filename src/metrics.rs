//! Prometheus metrics, kept in memory and rendered in the text exposition format on a listener
//! of their own (loopback by default), so that scraping needs no client certificate and never
//! shares a port with the data. Labels are RPC names, status codes and kinds — never an
//! identity, an organisation or anything a caller sent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Upper bounds of the latency buckets, in seconds.
const SECONDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Upper bounds of the entries-per-commit buckets.
const ENTRIES: [f64; 10] = [
    1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0,
];

/// A cumulative histogram with fixed buckets.
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// The sum, in millionths, so that it stays an integer.
    sum_millionths: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_millionths: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64) {
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            if value <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_millionths
            .fetch_add((value * 1e6).max(0.0) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.sum_millionths.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// How a person came to be checked.
#[derive(Debug, Clone, Copy)]
pub enum CheckKind {
    Single,
    Batch,
    Recheck,
}

/// Why a connection was closed before any call.
#[derive(Debug, Clone, Copy)]
pub enum ConnectionRefusal {
    /// `max_connections` (of `[limits]`, or `[portal]` for the portal) were already open.
    OverLimit = 0,
    /// The TLS handshake failed or timed out.
    Handshake = 1,
    /// `max_connections_per_address` were already open from the address.
    AddressLimit = 2,
    /// `max_anonymous_connections_per_address` without a certificate were already open.
    AnonymousLimit = 3,
}

/// Which listener refused a connection: the portal's refusals are counted under reasons of
/// their own (`portal_…`), so that the gRPC series stay as they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Grpc = 0,
    Portal = 1,
}

impl Listener {
    /// The name in audit entries and log lines.
    pub fn label(self) -> &'static str {
        match self {
            Listener::Grpc => "grpc",
            Listener::Portal => "portal",
        }
    }
}

/// The `reason` label of each [`ConnectionRefusal`], in its order.
const REFUSAL_REASONS: [&str; 4] = [
    "connection_limit",
    "tls_handshake",
    "address_limit",
    "anonymous_limit",
];

/// Every series the server exposes.
pub struct Metrics {
    database: PathBuf,
    calls: Mutex<BTreeMap<(String, String), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    checks: [AtomicU64; 3],
    alerts_raised: AtomicU64,
    /// Connections closed before any call, by listener and [`ConnectionRefusal`].
    connections_refused: [[AtomicU64; 4]; 2],
    /// Times a PRE_HIRE quota was counted from the audit log (once per employer and day).
    quota_counts_read: AtomicU64,
    /// Refusals folded into a later audit entry instead of written one by one.
    refusals_folded: AtomicU64,
    commit_seconds: Histogram,
    commit_entries: Histogram,
}

impl Metrics {
    pub fn new(database: PathBuf) -> Self {
        Self {
            database,
            calls: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(BTreeMap::new()),
            checks: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            alerts_raised: AtomicU64::new(0),
            connections_refused: Default::default(),
            refusals_folded: AtomicU64::new(0),
            quota_counts_read: AtomicU64::new(0),
            commit_seconds: Histogram::new(&SECONDS),
            commit_entries: Histogram::new(&ENTRIES),
        }
    }

    /// One finished call of `method` (`CheckService.Check`) with its gRPC code name.
    pub fn call(&self, method: &str, code: &str, took: Duration) {
        if let Ok(mut calls) = self.calls.lock() {
            *calls
                .entry((method.to_string(), code.to_string()))
                .or_default() += 1;
        }
        if let Ok(mut latency) = self.latency.lock() {
            latency
                .entry(method.to_string())
                .or_insert_with(|| Histogram::new(&SECONDS))
                .observe(took.as_secs_f64());
        }
    }

    pub fn checked(&self, kind: CheckKind, people: u64) {
        self.checks[kind as usize].fetch_add(people, Ordering::Relaxed);
    }

    pub fn alerts_raised(&self, alerts: u64) {
        self.alerts_raised.fetch_add(alerts, Ordering::Relaxed);
    }

    pub fn connection_refused(&self, listener: Listener, why: ConnectionRefusal) {
        self.connections_refused[listener as usize][why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One count of an employer's PRE_HIRE rows of the day read from the audit log.
    pub fn quota_count_read(&self) {
        self.quota_counts_read.fetch_add(1, Ordering::Relaxed);
    }

    pub fn refusal_folded(&self) {
        self.refusals_folded.fetch_add(1, Ordering::Relaxed);
    }

    /// One group commit of the writer: how long it took and how many jobs it carried.
    pub fn commit(&self, took: Duration, jobs: usize) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.commit_entries.observe(jobs as f64);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP safehire_rpc_requests_total Calls finished, by method and gRPC code.\n",
        );
        out.push_str("# TYPE safehire_rpc_requests_total counter\n");
        if let Ok(calls) = self.calls.lock() {
            for ((method, code), n) in calls.iter() {
                let _ = writeln!(
                    out,
                    "safehire_rpc_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP safehire_rpc_duration_seconds Time to answer a call (to the first message for streams).\n");
        out.push_str("# TYPE safehire_rpc_duration_seconds histogram\n");
        if let Ok(latency) = self.latency.lock() {
            for (method, histogram) in latency.iter() {
                histogram.render(
                    &mut out,
                    "safehire_rpc_duration_seconds",
                    &format!("method=\"{method}\""),
                );
            }
        }
        out.push_str("# HELP safehire_checks_total People checked, by how.\n");
        out.push_str("# TYPE safehire_checks_total counter\n");
        for (kind, name) in ["single", "batch", "recheck"].iter().enumerate() {
            let _ = writeln!(
                out,
                "safehire_checks_total{{kind=\"{name}\"}} {}",
                self.checks[kind].load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP safehire_alerts_raised_total Alerts raised for employers.\n");
        out.push_str("# TYPE safehire_alerts_raised_total counter\n");
        let _ = writeln!(
            out,
            "safehire_alerts_raised_total {}",
            self.alerts_raised.load(Ordering::Relaxed)
        );
        out.push_str("# HELP safehire_connections_refused_total Connections closed before any call, by reason (the portal's: portal_…).\n");
        out.push_str("# TYPE safehire_connections_refused_total counter\n");
        for (listener, prefix) in [(Listener::Grpc, ""), (Listener::Portal, "portal_")] {
            for (i, reason) in REFUSAL_REASONS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "safehire_connections_refused_total{{reason=\"{prefix}{reason}\"}} {}",
                    self.connections_refused[listener as usize][i].load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP safehire_refusals_folded_total Refused calls and connections counted in a later audit entry instead of one each.\n");
        out.push_str("# TYPE safehire_refusals_folded_total counter\n");
        let _ = writeln!(
            out,
            "safehire_refusals_folded_total {}",
            self.refusals_folded.load(Ordering::Relaxed)
        );
        out.push_str("# HELP safehire_quota_counts_read_total PRE_HIRE quotas counted from the audit log (once per employer and day).\n");
        out.push_str("# TYPE safehire_quota_counts_read_total counter\n");
        let _ = writeln!(
            out,
            "safehire_quota_counts_read_total {}",
            self.quota_counts_read.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP safehire_audit_commit_seconds Duration of one durable group commit.\n",
        );
        out.push_str("# TYPE safehire_audit_commit_seconds histogram\n");
        self.commit_seconds
            .render(&mut out, "safehire_audit_commit_seconds", "");
        out.push_str("# HELP safehire_audit_commit_jobs Writes carried by one group commit.\n");
        out.push_str("# TYPE safehire_audit_commit_jobs histogram\n");
        self.commit_entries
            .render(&mut out, "safehire_audit_commit_jobs", "");
        out.push_str("# HELP safehire_database_bytes Size of the database and its WAL.\n");
        out.push_str("# TYPE safehire_database_bytes gauge\n");
        for (file, suffix) in [("db", ""), ("wal", "-wal")] {
            let mut path = self.database.clone().into_os_string();
            path.push(suffix);
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let _ = writeln!(out, "safehire_database_bytes{{file=\"{file}\"}} {bytes}");
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped. A deliberately small HTTP/1.1
/// responder: one request per connection, then close.
pub async fn serve(listener: TcpListener, metrics: std::sync::Arc<Metrics>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let metrics = std::sync::Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut head = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                true
            })
            .await;
            if !matches!(read, Ok(true)) {
                return;
            }
            let (status, body) = if head.starts_with(b"GET /metrics ") {
                ("200 OK", metrics.render())
            } else {
                (
                    "404 Not Found",
                    "only /metrics is served here\n".to_string(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

/// Binds the metrics listener; `None` when metrics are switched off.
pub async fn bind(listen: Option<SocketAddr>) -> std::io::Result<Option<TcpListener>> {
    match listen {
        None => Ok(None),
        Some(addr) => TcpListener::bind(addr).await.map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_series_are_labelled() {
        let metrics = Metrics::new(PathBuf::from("/nonexistent/safehire.db"));
        metrics.call("CheckService.Check", "OK", Duration::from_millis(3));
        metrics.call("CheckService.Check", "OK", Duration::from_millis(30));
        metrics.call(
            "CheckService.Check",
            "INVALID_ARGUMENT",
            Duration::from_micros(200),
        );
        metrics.checked(CheckKind::Batch, 500);
        let text = metrics.render();
        assert!(
            text.contains(
                "safehire_rpc_requests_total{method=\"CheckService.Check\",code=\"OK\"} 2"
            )
        );
        assert!(text.contains(
            "safehire_rpc_duration_seconds_bucket{method=\"CheckService.Check\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "safehire_rpc_duration_seconds_bucket{method=\"CheckService.Check\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("safehire_checks_total{kind=\"batch\"} 500"));
        assert!(text.contains("safehire_database_bytes{file=\"db\"} 0"));
    }
}
