//! Server configuration, layered: built-in dev defaults, then a TOML file, then `SAFEHIRE_…`
//! environment variables, then command-line flags. Every key has a default, so `safehire
//! serve` runs with no file at all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the gRPC API listens on.
    pub listen: SocketAddr,
    /// Folder for the database and, by default, the master key.
    pub data_dir: PathBuf,
    /// Dev mode creates what is missing on first start: master key, dev certificates, one dev
    /// organisation per role. Production sets it to false and provisions them.
    pub dev_mode: bool,
    /// The 32-byte master secret; default `<data_dir>/master.key`. Mode 0600, outside the database.
    pub master_key_file: Option<PathBuf>,
    /// Log lines as `human` or `json`.
    pub log_format: LogFormat,
    pub tls: TlsFiles,
    pub limits: Limits,
    pub rules: Rules,
    pub metrics: MetricsConfig,
    pub telemetry: TelemetryConfig,
    pub bootstrap: Bootstrap,
    pub audit_log: AuditLogConfig,
    pub portal: PortalConfig,
}

/// The verifiable log: who signs its checkpoints, under what name, how often.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditLogConfig {
    /// The Ed25519 seed (32 bytes, mode 0600) that signs checkpoints; default
    /// `<data_dir>/log-signing.key`. Never the master key file.
    pub signing_key_file: Option<PathBuf>,
    /// The checkpoints' origin line and the log key's name: a schema-less URL naming this log.
    pub origin: String,
    /// Least milliseconds between two checkpoints while entries arrive.
    pub checkpoint_interval_ms: u64,
}

impl Default for AuditLogConfig {
    fn default() -> Self {
        Self {
            signing_key_file: None,
            origin: "safehire.localhost/audit-log".into(),
            checkpoint_interval_ms: 1000,
        }
    }
}

/// The web portal (browsers with the organisation's client certificate) on its own HTTPS
/// listener. On by default only in dev mode: production opts in where browsers may reach it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// Unset: on in dev mode, off otherwise.
    pub enabled: Option<bool>,
    pub listen: SocketAddr,
    /// Portal connections open at once (TLS handshakes included); more are closed on arrival.
    pub max_connections: usize,
    /// Portal connections open at once from one address: a browser keeps about six, an office
    /// behind one NAT address a few browsers.
    pub max_connections_per_address: usize,
    /// Portal connections without a client certificate open at once from one address: they
    /// are only shown how to install one, which one browser's connections suffice for.
    pub max_anonymous_connections_per_address: usize,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            max_connections: 256,
            max_connections_per_address: 64,
            max_anonymous_connections_per_address: 8,
        }
    }
}

impl Config {
    /// Whether `serve` starts the portal.
    pub fn portal_enabled(&self) -> bool {
        self.portal.enabled.unwrap_or(self.dev_mode)
    }
}

/// Prometheus metrics on a plain-HTTP listener of their own (`GET /metrics`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// Loopback by default: the metrics carry no identity, but they are nobody else's business.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

/// OpenTelemetry trace export of the call spans (request id, method, caller organisation; never
/// an identity) over OTLP/gRPC. Only a build with the `otel` feature can export; any other
/// refuses a configured endpoint rather than ignore it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/gRPC endpoint, `http://host:port` or `https://host:port` (usually
    /// port 4317); empty: no export.
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            service_name: "safehire".into(),
        }
    }
}

impl TelemetryConfig {
    /// The endpoint to export to; `None` when export is off.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        Some(self.otlp_endpoint.as_str()).filter(|e| !e.is_empty())
    }
}

/// The first operator of a production install, where no one is enrolled yet and only an
/// operator may enrol: enrolled at start when set and not yet known, then left alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Bootstrap {
    /// USCC of the operator organisation (the one in its certificate); empty: nothing to do.
    pub operator_uscc: String,
    pub operator_name: String,
    /// Its 6-digit administrative division code.
    pub operator_region: String,
}

/// The intervals the law and supervision practice set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Days after which a roster member's last check no longer counts as this year's re-check
    /// (Minors Protection Law art. 62: at least once a year).
    pub recheck_interval_days: u32,
    /// Days after the hire date within which a pre-hire check still counts (a check the week
    /// a contract was signed, recorded a few days late).
    pub hire_grace_days: u32,
    /// Days a member with a hit (RECORD_FOUND or an alert) may stay on the roster before it is
    /// a finding.
    pub hit_on_staff_days: u32,
    /// Days an employer has to acknowledge an alert.
    pub alert_ack_days: u32,
    /// Checks about people never on the employer's roster are a finding above this many per
    /// current member (applicants who were not hired explain a few)…
    pub excess_query_ratio: f64,
    /// …and above this many in absolute terms, so that a small unit's hiring round is not one.
    pub excess_query_minimum: u32,
    /// YYYY-MM-DD, or empty: the day supervision began for every unit. Staff hired before a
    /// unit's onboarding day (this day, or else the unit's first roster) count as checked at
    /// hire once checked within `hire_grace_days` after it: they could not be checked before.
    pub supervision_start: String,
    /// A member removed within this many days of being declared churned.
    pub churn_window_days: u32,
    /// Churned members above this share of everyone declared are a finding.
    pub churn_share: f64,
    /// Share by which a roster may exceed its unit's enrolled headcount (staff change).
    pub headcount_margin: f64,
    /// PRE_HIRE rows an employer may check per calendar day.
    pub pre_hire_rows_per_day: u64,
    /// Per-organisation exceptions to `pre_hire_rows_per_day`, by USCC.
    pub pre_hire_rows_per_day_by_org: std::collections::BTreeMap<String, u64>,
}

impl Rules {
    /// `supervision_start` as a date; `None` when empty (validation refuses anything else).
    pub fn supervision_start_date(&self) -> Option<time::Date> {
        crate::registry::parse_date("supervision_start", self.supervision_start.trim()).ok()
    }

    /// The most members a unit enrolled with `headcount` may declare; `None` when it has none.
    pub fn max_members(&self, headcount: u64) -> Option<u64> {
        (headcount > 0)
            .then(|| (headcount as f64 * (1.0 + self.headcount_margin.max(0.0))).ceil() as u64)
    }

    /// The daily PRE_HIRE row quota of `employer`.
    pub fn pre_hire_rows_per_day_for(&self, employer: &str) -> u64 {
        self.pre_hire_rows_per_day_by_org
            .get(employer)
            .copied()
            .unwrap_or(self.pre_hire_rows_per_day)
    }
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            recheck_interval_days: 365,
            hire_grace_days: 7,
            hit_on_staff_days: 30,
            alert_ack_days: 7,
            excess_query_ratio: 2.0,
            excess_query_minimum: 50,
            supervision_start: String::new(),
            churn_window_days: 90,
            churn_share: 0.5,
            headcount_margin: 0.2,
            pre_hire_rows_per_day: 3_000,
            pre_hire_rows_per_day_by_org: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsFiles {
    /// Folder of the dev certificate set (`safehire certs init`); the defaults below live in it.
    pub dev_dir: PathBuf,
    /// CA whose certificates callers must present; default `<dev_dir>/ca.pem`.
    pub client_ca: Option<PathBuf>,
    /// Server certificate and key; default `<dev_dir>/server.pem` and `server.key`.
    pub server_cert: Option<PathBuf>,
    pub server_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most records in one import chunk message.
    pub max_import_chunk_records: usize,
    /// Most per-record errors listed in an import summary (all are counted).
    pub max_import_errors_reported: usize,
    /// Seconds a TLS handshake may take before the connection is dropped.
    pub handshake_timeout_secs: u64,
    /// Most rows in one batch of checks.
    pub max_batch_rows: u64,
    /// Most rows in one message of a batch.
    pub max_batch_chunk_rows: usize,
    /// Largest encoded row of a batch, in bytes.
    pub max_batch_row_bytes: usize,
    /// Batches one organisation may run at the same time.
    pub max_batches_in_flight_per_org: usize,
    /// Most members in one roster upload (one upload runs at a time per roster).
    pub max_roster_rows: u64,
    /// Calls one organisation may make per second, on average, and in a burst.
    pub calls_per_second_per_org: u32,
    pub call_burst_per_org: u32,
    /// Connections open at once (TLS handshakes included); more are closed on arrival.
    pub max_connections: usize,
    /// Connections open at once from one address (TLS handshakes included).
    pub max_connections_per_address: usize,
    /// Connections without a client certificate open at once from one address; each is closed
    /// after its first refusal anyway.
    pub max_anonymous_connections_per_address: usize,
    /// Seconds after the TLS handshake by which a connection must have sent the HTTP/2 preface
    /// (with a client certificate) or its first request (without one), or it is closed.
    pub first_request_timeout_secs: u64,
    /// Seconds a client stream may go without a message, or leave results unread, before the
    /// call is ended with DEADLINE_EXCEEDED.
    pub stream_idle_secs: u64,
    /// Seconds between HTTP/2 pings on a quiet connection; one not answered in as long closes
    /// the connection.
    pub keepalive_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("data"),
            dev_mode: true,
            master_key_file: None,
            log_format: LogFormat::Human,
            tls: TlsFiles::default(),
            limits: Limits::default(),
            rules: Rules::default(),
            metrics: MetricsConfig::default(),
            telemetry: TelemetryConfig::default(),
            bootstrap: Bootstrap::default(),
            audit_log: AuditLogConfig::default(),
            portal: PortalConfig::default(),
        }
    }
}

impl Default for TlsFiles {
    fn default() -> Self {
        Self {
            dev_dir: PathBuf::from("certs/dev"),
            client_ca: None,
            server_cert: None,
            server_key: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 * 1024 * 1024,
            max_import_chunk_records: 10_000,
            max_import_errors_reported: 1_000,
            handshake_timeout_secs: 10,
            max_batch_rows: 1_000_000,
            max_batch_chunk_rows: 5_000,
            max_batch_row_bytes: 1_024,
            max_batches_in_flight_per_org: 4,
            max_roster_rows: 200_000,
            calls_per_second_per_org: 100,
            call_burst_per_org: 200,
            max_connections: 1_024,
            max_connections_per_address: 256,
            max_anonymous_connections_per_address: 8,
            first_request_timeout_secs: 10,
            stream_idle_secs: 60,
            keepalive_secs: 30,
        }
    }
}

/// `SAFEHIRE_…` variables that are not server settings: the client's server address and the
/// sizes of the tests' long variants. `serve` ignores them, so a shell set up for the client or
/// a long test run can run it.
pub const NOT_SETTINGS: &[&str] = &[
    "SAFEHIRE_SERVER",
    "SAFEHIRE_SOAK_SECS",
    "SAFEHIRE_CRASH_SEEDS",
    "SAFEHIRE_ROSTER_RSS_ROWS",
    "SAFEHIRE_FLOOD_CALLS",
    "SAFEHIRE_UPDATE_SCREENSHOTS",
];

/// The process's `SAFEHIRE_…` settings, which `serve` applies over the file. A name or value
/// that is not UTF-8 cannot be a setting, so it is refused rather than skipped.
pub fn process_settings() -> Result<Vec<(String, String)>, ConfigError> {
    let mut found = Vec::new();
    for (name, value) in std::env::vars_os() {
        if !name.as_encoded_bytes().starts_with(b"SAFEHIRE_") {
            continue;
        }
        match (name.into_string(), value.into_string()) {
            (Ok(name), _) if NOT_SETTINGS.contains(&name.as_str()) => {}
            (Ok(name), Ok(value)) => found.push((name, value)),
            (name, _) => {
                return Err(ConfigError::Env {
                    var: format!("{name:?}"),
                    reason: "not UTF-8".into(),
                });
            }
        }
    }
    found.sort();
    Ok(found)
}

impl Config {
    /// Defaults, overlaid by `file` (when given) and then by `SAFEHIRE_…` variables from `env`.
    /// A variable names a key path with `__` between levels: `SAFEHIRE_LIMITS__MAX_MESSAGE_BYTES`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut tree = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            let overlay: toml::Value = toml::from_str(&text).map_err(|e| ConfigError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            merge(&mut tree, overlay);
        }
        for (var, value) in env {
            let Some(key) = var.strip_prefix("SAFEHIRE_") else {
                continue;
            };
            let path: Vec<String> = key.split("__").map(|p| p.to_ascii_lowercase()).collect();
            set_path(&mut tree, &path, parse_env_value(&value)).map_err(|reason| {
                ConfigError::Env {
                    var: var.clone(),
                    reason,
                }
            })?;
        }
        let config: Config = tree
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        Ok(config)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("safehire.db")
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    pub fn log_signing_key_path(&self) -> PathBuf {
        self.audit_log
            .signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("log-signing.key"))
    }

    pub fn client_ca_path(&self) -> PathBuf {
        self.tls
            .client_ca
            .clone()
            .unwrap_or_else(|| self.tls.dev_dir.join("ca.pem"))
    }

    pub fn server_cert_path(&self) -> PathBuf {
        self.tls
            .server_cert
            .clone()
            .unwrap_or_else(|| self.tls.dev_dir.join("server.pem"))
    }

    pub fn server_key_path(&self) -> PathBuf {
        self.tls
            .server_key
            .clone()
            .unwrap_or_else(|| self.tls.dev_dir.join("server.key"))
    }

    /// Refuses values that parse but would make the server misbehave: a zero limit refuses
    /// every call it bounds, a zero re-check interval makes every member due at every moment,
    /// day counts in the millions overflow date arithmetic, and a negative or NaN ratio turns
    /// the excess-query finding on or off for everyone. The error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let limits = &self.limits;
        let rules = &self.rules;
        if self.dev_mode && !self.listen.ip().is_loopback() {
            return Err(invalid(
                "dev_mode",
                format!(
                    "dev mode enrols well-known dev organisations and may only listen on loopback, not {}; set dev_mode = false and provision keys and certificates",
                    self.listen
                ),
            ));
        }
        not_empty("data_dir", Some(&self.data_dir))?;
        not_empty("master_key_file", self.master_key_file.as_ref())?;
        not_empty(
            "audit_log.signing_key_file",
            self.audit_log.signing_key_file.as_ref(),
        )?;
        let origin = &self.audit_log.origin;
        if origin.is_empty() || origin.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(invalid(
                "audit_log.origin",
                format!("{origin:?} must be non-empty, without spaces or '+' (a key name)"),
            ));
        }
        in_range(
            "audit_log.checkpoint_interval_ms",
            self.audit_log.checkpoint_interval_ms,
            0,
            3_600_000,
            "a checkpoint at least once an hour",
        )?;
        not_empty("tls.dev_dir", Some(&self.tls.dev_dir))?;
        not_empty("tls.client_ca", self.tls.client_ca.as_ref())?;
        not_empty("tls.server_cert", self.tls.server_cert.as_ref())?;
        not_empty("tls.server_key", self.tls.server_key.as_ref())?;
        for (key, value) in [
            ("limits.max_message_bytes", limits.max_message_bytes as u64),
            (
                "limits.max_import_chunk_records",
                limits.max_import_chunk_records as u64,
            ),
            ("limits.max_batch_rows", limits.max_batch_rows),
            (
                "limits.max_batch_chunk_rows",
                limits.max_batch_chunk_rows as u64,
            ),
            (
                "limits.max_batch_row_bytes",
                limits.max_batch_row_bytes as u64,
            ),
            (
                "limits.max_batches_in_flight_per_org",
                limits.max_batches_in_flight_per_org as u64,
            ),
            ("limits.max_roster_rows", limits.max_roster_rows),
            (
                "limits.calls_per_second_per_org",
                u64::from(limits.calls_per_second_per_org),
            ),
            (
                "limits.call_burst_per_org",
                u64::from(limits.call_burst_per_org),
            ),
            ("limits.max_connections", limits.max_connections as u64),
            (
                "limits.max_connections_per_address",
                limits.max_connections_per_address as u64,
            ),
            (
                "limits.max_anonymous_connections_per_address",
                limits.max_anonymous_connections_per_address as u64,
            ),
            ("portal.max_connections", self.portal.max_connections as u64),
            (
                "portal.max_connections_per_address",
                self.portal.max_connections_per_address as u64,
            ),
            (
                "portal.max_anonymous_connections_per_address",
                self.portal.max_anonymous_connections_per_address as u64,
            ),
        ] {
            in_range(
                key,
                value,
                1,
                u64::MAX,
                "0 would refuse every call it bounds",
            )?;
        }
        if limits.max_batch_row_bytes > limits.max_message_bytes {
            return Err(invalid(
                "limits.max_batch_row_bytes",
                format!(
                    "{} is larger than limits.max_message_bytes ({}): such a row could never arrive",
                    limits.max_batch_row_bytes, limits.max_message_bytes
                ),
            ));
        }
        in_range(
            "limits.handshake_timeout_secs",
            limits.handshake_timeout_secs,
            1,
            300,
            "0 drops every connection; minutes let idle connections pile up",
        )?;
        in_range(
            "limits.first_request_timeout_secs",
            limits.first_request_timeout_secs,
            1,
            300,
            "0 drops every connection; minutes let idle connections pile up",
        )?;
        in_range(
            "limits.stream_idle_secs",
            limits.stream_idle_secs,
            5,
            3_600,
            "a few seconds ends streams over a slow network; hours let stalled clients hold batch slots",
        )?;
        in_range(
            "limits.keepalive_secs",
            limits.keepalive_secs,
            5,
            3_600,
            "pings every second or two burden every connection; hours keep dead peers' connections open",
        )?;
        in_range(
            "rules.recheck_interval_days",
            u64::from(rules.recheck_interval_days),
            1,
            366,
            "the law requires a re-check at least once a year, and 0 makes everyone due always",
        )?;
        for (key, value) in [
            ("rules.hire_grace_days", rules.hire_grace_days),
            ("rules.hit_on_staff_days", rules.hit_on_staff_days),
            ("rules.alert_ack_days", rules.alert_ack_days),
        ] {
            in_range(
                key,
                u64::from(value),
                0,
                366,
                "more than a year defeats the rule, and huge values overflow date arithmetic",
            )?;
        }
        if !rules.supervision_start.trim().is_empty()
            && let Err((_, reason)) =
                crate::registry::parse_date("supervision_start", &rules.supervision_start)
        {
            return Err(invalid("rules.supervision_start", reason));
        }
        if !(rules.excess_query_ratio.is_finite() && rules.excess_query_ratio >= 0.0) {
            return Err(invalid(
                "rules.excess_query_ratio",
                format!(
                    "{} must be a finite number, 0 or more",
                    rules.excess_query_ratio
                ),
            ));
        }
        self.validate_telemetry()
    }

    fn validate_telemetry(&self) -> Result<(), ConfigError> {
        let telemetry = &self.telemetry;
        if telemetry.service_name.trim().is_empty() {
            return Err(invalid(
                "telemetry.service_name",
                "must not be empty".into(),
            ));
        }
        let Some(endpoint) = telemetry.otlp_endpoint() else {
            return Ok(());
        };
        if !cfg!(feature = "otel") {
            return Err(ConfigError::Invalid(
                "telemetry.otlp_endpoint is set but this build has no OpenTelemetry support; rebuild with --features otel".into(),
            ));
        }
        otlp_endpoint_problem(endpoint).map_or(Ok(()), |reason| {
            Err(invalid("telemetry.otlp_endpoint", reason))
        })
    }
}

/// Why `endpoint` cannot be an OTLP/gRPC collector address, if it cannot. The value is not
/// repeated in the reason: it might carry a password.
#[cfg(feature = "otel")]
fn otlp_endpoint_problem(endpoint: &str) -> Option<String> {
    use tonic::codegen::http::Uri;
    let Ok(uri) = endpoint.parse::<Uri>() else {
        return Some("is not a URL (expected http://host:port or https://host:port)".into());
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Some("must start with http:// or https://".into());
    }
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        return Some("has no host (expected http://host:port or https://host:port)".into());
    };
    if authority.as_str().contains('@') {
        return Some(
            "must not carry a user name or password (OTLP/gRPC sends none from the URL)".into(),
        );
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Some(
            "must have no path: OTLP/gRPC is scheme://host:port (usually port 4317); a path such as /v1/traces belongs to OTLP/HTTP, which safehire does not speak".into(),
        );
    }
    None
}

#[cfg(not(feature = "otel"))]
fn otlp_endpoint_problem(_endpoint: &str) -> Option<String> {
    None
}

fn invalid(key: &str, reason: String) -> ConfigError {
    ConfigError::Invalid(format!("{key}: {reason}"))
}

fn in_range(key: &str, value: u64, min: u64, max: u64, why: &str) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    let bounds = if max == u64::MAX {
        format!("at least {min}")
    } else {
        format!("between {min} and {max}")
    };
    Err(invalid(key, format!("{value} must be {bounds} ({why})")))
}

fn not_empty(key: &str, path: Option<&PathBuf>) -> Result<(), ConfigError> {
    match path {
        Some(p) if p.as_os_str().is_empty() => Err(invalid(key, "must not be empty".into())),
        _ => Ok(()),
    }
}

/// An environment value is read as a TOML value when it parses as one (numbers, booleans),
/// otherwise as a plain string (paths, addresses).
fn parse_env_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(base), toml::Value::Table(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

fn set_path(tree: &mut toml::Value, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut node = tree;
    for part in parents {
        node = node
            .as_table_mut()
            .ok_or_else(|| format!("{part} is not a section"))?
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    node.as_table_mut()
        .ok_or("not a section")?
        .insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let config = Config::load(None, Vec::new()).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(config.database_path(), PathBuf::from("data/safehire.db"));
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("safehire.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:6000\"\ndev_mode = false\n[limits]\nmax_import_chunk_records = 50\n",
        )
        .unwrap();
        let env = vec![
            ("SAFEHIRE_LISTEN".to_string(), "127.0.0.1:7000".to_string()),
            (
                "SAFEHIRE_LIMITS__MAX_MESSAGE_BYTES".to_string(),
                "1024".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let config = Config::load(Some(&file), env).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
        assert!(!config.dev_mode);
        assert_eq!(config.limits.max_import_chunk_records, 50);
        assert_eq!(config.limits.max_message_bytes, 1024);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let env = vec![("SAFEHIRE_LISTEN_ADDR".to_string(), "x".to_string())];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("listen_addr"), "{err}");
        let env = vec![("SAFEHIRE_LISTEN".to_string(), "nowhere".to_string())];
        assert!(Config::load(None, env).is_err());
    }

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        Config::default().validate().unwrap();
        type Spoil = fn(&mut Config);
        let cases: Vec<(&str, Spoil)> = vec![
            ("limits.max_message_bytes", |c| {
                c.limits.max_message_bytes = 0
            }),
            ("limits.max_batches_in_flight_per_org", |c| {
                c.limits.max_batches_in_flight_per_org = 0
            }),
            ("limits.max_batch_row_bytes", |c| {
                c.limits.max_batch_row_bytes = c.limits.max_message_bytes + 1
            }),
            ("limits.calls_per_second_per_org", |c| {
                c.limits.calls_per_second_per_org = 0
            }),
            ("limits.max_connections", |c| c.limits.max_connections = 0),
            ("limits.max_roster_rows", |c| c.limits.max_roster_rows = 0),
            ("limits.max_connections_per_address", |c| {
                c.limits.max_connections_per_address = 0
            }),
            ("limits.max_anonymous_connections_per_address", |c| {
                c.limits.max_anonymous_connections_per_address = 0
            }),
            ("portal.max_anonymous_connections_per_address", |c| {
                c.portal.max_anonymous_connections_per_address = 0
            }),
            ("limits.first_request_timeout_secs", |c| {
                c.limits.first_request_timeout_secs = 0
            }),
            ("dev_mode", |c| c.listen = "0.0.0.0:50051".parse().unwrap()),
            ("limits.stream_idle_secs", |c| c.limits.stream_idle_secs = 1),
            ("limits.keepalive_secs", |c| {
                c.limits.keepalive_secs = 86_400
            }),
            ("limits.handshake_timeout_secs", |c| {
                c.limits.handshake_timeout_secs = 0
            }),
            ("rules.recheck_interval_days", |c| {
                c.rules.recheck_interval_days = 0
            }),
            ("rules.recheck_interval_days", |c| {
                c.rules.recheck_interval_days = 730
            }),
            ("rules.hire_grace_days", |c| {
                c.rules.hire_grace_days = u32::MAX
            }),
            ("rules.excess_query_ratio", |c| {
                c.rules.excess_query_ratio = -0.5
            }),
            ("rules.excess_query_ratio", |c| {
                c.rules.excess_query_ratio = f64::NAN
            }),
            ("data_dir", |c| c.data_dir = PathBuf::new()),
            ("tls.server_key", |c| {
                c.tls.server_key = Some(PathBuf::new())
            }),
        ];
        for (key, spoil) in cases {
            let mut config = Config::default();
            spoil(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        let mut lenient = Config::default();
        lenient.limits.max_import_errors_reported = 0;
        lenient.rules.hire_grace_days = 0;
        lenient.rules.excess_query_ratio = 0.0;
        lenient.validate().unwrap();
    }

    #[test]
    fn telemetry_is_off_by_default_and_set_by_file_or_environment() {
        let config = Config::default();
        assert_eq!(config.telemetry.otlp_endpoint(), None);
        assert_eq!(config.telemetry.service_name, "safehire");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("safehire.toml");
        std::fs::write(&file, "[telemetry]\nservice_name = \"safehire-test\"\n").unwrap();
        let env = vec![(
            "SAFEHIRE_TELEMETRY__OTLP_ENDPOINT".to_string(),
            "http://127.0.0.1:4317".to_string(),
        )];
        let config = Config::load(Some(&file), env).unwrap();
        assert_eq!(
            config.telemetry.otlp_endpoint(),
            Some("http://127.0.0.1:4317")
        );
        assert_eq!(config.telemetry.service_name, "safehire-test");
        let mut unnamed = Config::default();
        unnamed.telemetry.service_name = " ".into();
        let err = unnamed.validate().unwrap_err().to_string();
        assert!(err.contains("telemetry.service_name"), "{err}");
    }

    #[cfg(not(feature = "otel"))]
    #[test]
    fn an_otlp_endpoint_is_refused_without_the_otel_feature() {
        let mut config = Config::default();
        config.telemetry.otlp_endpoint = "http://127.0.0.1:4317".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("telemetry.otlp_endpoint"), "{err}");
        assert!(err.contains("--features otel"), "{err}");
    }

    #[cfg(feature = "otel")]
    #[test]
    fn an_otlp_endpoint_must_be_a_grpc_collector_address() {
        let with = |endpoint: &str| {
            let mut config = Config::default();
            config.telemetry.otlp_endpoint = endpoint.into();
            config.validate()
        };
        for good in [
            "http://127.0.0.1:4317",
            "https://otel.example.org:4317",
            "http://collector:4317/",
            "http://[::1]:4317",
        ] {
            with(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for (bad, why) in [
            ("127.0.0.1:4317", "http://"),
            ("grpc://collector:4317", "http://"),
            ("http://", "URL"),
            ("not a url", "URL"),
            ("http://collector:4318/v1/traces", "no path"),
            ("https://user:hunter2@collector:4317", "password"),
        ] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains("telemetry.otlp_endpoint"), "{bad}: {err}");
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    mod hostile {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            /// Any file content and any SAFEHIRE_ variable give a configuration or an error
            /// naming where the problem is; never a panic.
            #[test]
            fn any_file_or_variable_loads_or_is_refused(
                text in ".{0,400}",
                var in "[A-Z_]{0,30}",
                value in ".{0,40}",
            ) {
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join("safehire.toml");
                std::fs::write(&file, &text).unwrap();
                let env = vec![(format!("SAFEHIRE_{var}"), value)];
                if let Err(e) = Config::load(Some(&file), env) {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
