//! A throw-away PostgreSQL 15 cluster for the tests: `initdb` and `pg_ctl` from Debian's
//! `postgresql-15` (or `SAFEHIRE_PG_BIN`) in a temp folder, listening on 127.0.0.1 at a free
//! port and on a unix socket in that folder, with `synchronous_commit = on` and TLS on (a
//! certificate from a CA made for the run). `initdb` and `pg_ctl` refuse root, so as root they
//! run as the `postgres` user (`runuser`); any other user runs them directly.
//!
//! One cluster serves the whole test process ([`PgCluster::shared`]), with a fresh database
//! per test ([`PgCluster::database`]). A guardian shell holds the read end of a pipe from this
//! process: when the process ends, however it ends, the pipe closes and the guardian stops the
//! server (`pg_ctl stop -m immediate`) and removes the folder. A cluster of its own
//! ([`PgCluster::start`]) is stopped the same way when it is dropped. Without `initdb` the
//! tests skip ([`postgres_ready`]), except in CI.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use safehire::certs::CertAuthority;

const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";

fn bin_dir() -> PathBuf {
    PathBuf::from(std::env::var("SAFEHIRE_PG_BIN").unwrap_or(DEFAULT_BIN.into()))
}

/// Whether PostgreSQL 15's `initdb` is here; in CI its absence is a failure (.ci/run installs
/// it), elsewhere the PostgreSQL tests are skipped, as the browser tests are without Chromium.
pub fn postgres_ready() -> bool {
    let initdb = bin_dir().join("initdb");
    if initdb.exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have {} (Debian's postgresql-15); .ci/run installs it",
        initdb.display()
    );
    eprintln!(
        "note: {} is missing; a PostgreSQL test was skipped",
        initdb.display()
    );
    false
}

/// A running cluster.
pub struct PgCluster {
    dir: PathBuf,
    port: u16,
    guardian: Mutex<Option<Child>>,
}

/// A database of its own in a cluster, for one test.
pub struct PgDatabase {
    pub name: String,
    port: u16,
    dir: PathBuf,
}

impl PgCluster {
    /// The cluster every test of this process shares, started on first use.
    pub fn shared() -> &'static PgCluster {
        static SHARED: OnceLock<PgCluster> = OnceLock::new();
        SHARED.get_or_init(|| PgCluster::start(&[]))
    }

    /// A cluster of its own, with `settings` (postgresql.conf lines) after the usual ones.
    pub fn start(settings: &[&str]) -> PgCluster {
        let bin = bin_dir();
        assert!(
            bin.join("initdb").exists(),
            "{} is missing: install Debian's postgresql-15 (.ci/run does) or set SAFEHIRE_PG_BIN",
            bin.join("initdb").display()
        );
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("safehire-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        if as_postgres {
            chown_to_postgres(&dir);
        }
        let data = dir.join("data");
        let run = |program: &str| -> Command {
            let mut command = if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(program));
                c
            } else {
                Command::new(bin.join(program))
            };
            // runuser keeps the working directory, which the postgres user may not enter.
            command.current_dir(&dir).stdin(Stdio::null());
            command
        };
        // The guardian first, so that a failed start is cleaned up too.
        let guardian = guardian(run("pg_ctl"), &dir, &data);

        let initdb = run("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
            ])
            .arg("--no-sync")
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );

        write_certificates(&dir, as_postgres);
        let conf = data.join("postgresql.conf");
        let mut lines = vec![
            "listen_addresses = '127.0.0.1'".to_owned(),
            format!("unix_socket_directories = '{}'", dir.display()),
            "synchronous_commit = on".to_owned(),
            "fsync = on".to_owned(),
            "max_connections = 200".to_owned(),
            "ssl = on".to_owned(),
            format!("ssl_cert_file = '{}'", dir.join("server.crt").display()),
            format!("ssl_key_file = '{}'", dir.join("server.key").display()),
        ];
        lines.extend(settings.iter().map(|s| s.to_string()));
        append(&conf, &format!("\n# safehire tests\n{}", lines.join("\n")));

        // The free port may be taken by another test before the server binds it: try again
        // on another (a later `port` line overrides an earlier one).
        let log = dir.join("server.log");
        let mut tries = 0;
        let port = loop {
            let port = free_port();
            append(&conf, &format!("port = {port}"));
            let started = run("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "start"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run pg_ctl start");
            tries += 1;
            if started.success() {
                break port;
            }
            assert!(
                tries < 3,
                "pg_ctl start failed: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        PgCluster {
            dir,
            port,
            guardian: Mutex::new(Some(guardian)),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder of the unix socket (and of the data directory, certificates and log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The PEM of the CA that signed the server's certificate (for 127.0.0.1 and localhost).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A URL for the cluster's `postgres` database over TCP, without TLS.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A new empty database, `t_<n>`.
    pub async fn database(&self) -> PgDatabase {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let name = format!("t_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let (client, connection) =
            tokio_postgres::connect(&self.admin_url(), tokio_postgres::NoTls)
                .await
                .expect("connect to the test cluster");
        let task = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        drop(client);
        let _ = task.await;
        PgDatabase {
            name,
            port: self.port,
            dir: self.dir.clone(),
        }
    }
}

impl Drop for PgCluster {
    /// Closes the guardian's pipe and waits while it stops the server and removes the folder.
    fn drop(&mut self) {
        let guardian = self.guardian.get_mut().map(Option::take);
        if let Ok(Some(mut guardian)) = guardian {
            drop(guardian.stdin.take());
            let _ = guardian.wait();
        }
    }
}

impl PgDatabase {
    /// Over TCP to 127.0.0.1, without TLS.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, self.name)
    }

    /// Over the unix socket (a host that starts with `/`, percent-encoded in the URL).
    pub fn socket_url(&self) -> String {
        let host = self.dir.display().to_string().replace('/', "%2F");
        format!("postgres://postgres@{host}:{}/{}", self.port, self.name)
    }

    /// Over TCP with TLS required, verified against the cluster's CA.
    pub fn tls_url(&self, host: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/{}?sslmode=require&sslrootcert={}",
            self.port,
            self.name,
            self.dir.join("ca.pem").display()
        )
    }
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .status()
        .expect("run chown");
    assert!(
        status.success(),
        "chown postgres {} failed: running as root needs a `postgres` user (Debian's \
         postgresql-15 makes one)",
        path.display()
    );
}

/// A shell in a process group of its own (a Ctrl-C to the tests does not reach it) that
/// waits for its stdin to close, then stops the server and removes `dir`.
fn guardian(pg_ctl: Command, dir: &Path, data: &Path) -> Child {
    let mut stop: Vec<String> = vec![pg_ctl.get_program().to_string_lossy().into_owned()];
    stop.extend(pg_ctl.get_args().map(|a| a.to_string_lossy().into_owned()));
    stop.extend(["stop", "-m", "immediate", "-w", "-D"].map(String::from));
    stop.push(data.display().to_string());
    let quoted: Vec<String> = stop.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "cat >/dev/null; {} >/dev/null 2>&1; rm -rf '{}'",
        quoted.join(" "),
        dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the cluster's guardian")
}

/// A CA and a server certificate for 127.0.0.1 and localhost; the key readable by its owner
/// only, as PostgreSQL requires.
fn write_certificates(dir: &Path, as_postgres: bool) {
    let now = time::OffsetDateTime::now_utc();
    let ca = CertAuthority::generate("safehire test PostgreSQL CA", 30, now).expect("CA");
    let server = ca
        .issue_server(&["127.0.0.1", "localhost"], 30, now)
        .expect("server certificate");
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).expect("write ca.pem");
    std::fs::write(dir.join("server.crt"), &server.cert_pem).expect("write server.crt");
    let key = dir.join("server.key");
    std::fs::write(&key, &server.key_pem).expect("write server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
    if as_postgres {
        for file in ["ca.pem", "server.crt", "server.key"] {
            chown_to_postgres(&dir.join(file));
        }
    }
}

/// Appends `text` and a line end to the configuration file.
fn append(conf: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(conf)
        .expect("open postgresql.conf");
    writeln!(file, "{text}").expect("write postgresql.conf");
}

/// A port nobody listens on now (the kernel's pick for a socket closed at once).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}
