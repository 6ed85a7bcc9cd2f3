//! The real `safehire` binary as a child process: a server on a free port in a folder of its
//! own, and client commands against it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_safehire");

/// `safehire` in the C locale whatever the runner's: English is the tested default, and a
/// test that wants Chinese sets `LANG` itself.
pub fn command() -> Command {
    let mut command = Command::new(BIN);
    command
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", "C");
    command
}

/// A running `safehire serve`, killed when dropped.
pub struct Serve(Child);

impl Serve {
    /// The server's process id (to read its /proc entries).
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Stops the server with SIGTERM and returns its exit status, within `limit`.
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        terminate(&mut self.0, limit)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `safehire serve` in `dir` on a free port and returns it with its address.
pub fn serve(dir: &Path) -> (Serve, String) {
    let (serve, url, _) = serve_with_metrics(dir);
    (serve, url)
}

/// Starts `safehire serve` in `dir` with no practical limit on an organisation's call rate, for
/// tests that drive more calls than one organisation's share (durability under a storm), and no
/// daily PRE_HIRE quota.
pub fn serve_unthrottled(dir: &Path) -> (Serve, String) {
    let (serve, url, _) = spawn(
        dir,
        &[
            ("SAFEHIRE_LIMITS__CALLS_PER_SECOND_PER_ORG", "1000000"),
            ("SAFEHIRE_LIMITS__CALL_BURST_PER_ORG", "1000000"),
            // Thousands of applicants and a re-declared roster a minute: no daily quota either.
            ("SAFEHIRE_RULES__PRE_HIRE_ROWS_PER_DAY", "100000000"),
        ],
    );
    (serve, url)
}

/// Starts `safehire serve` in `dir` with the gRPC port and the metrics port both free ones;
/// returns it with both addresses (the second as the URL of `/metrics`).
pub fn serve_with_metrics(dir: &Path) -> (Serve, String, String) {
    spawn(dir, &[])
}

fn spawn(dir: &Path, env: &[(&str, &str)]) -> (Serve, String, String) {
    let mut child = command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env("SAFEHIRE_METRICS__LISTEN", "127.0.0.1:0")
        .env("SAFEHIRE_PORTAL__LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut metrics = String::new();
    let addr = loop {
        let line = lines.next().expect("server printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("safehire metrics on ") {
            metrics = rest.split_whitespace().next().unwrap().to_string();
        }
        if let Some(rest) = line.strip_prefix("safehire listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Serve(child), format!("https://{addr}"), metrics)
}

/// A client channel to the server started in `dir`, presenting the dev certificate of `role`
/// (`employer`, `registrar`, …) from the set the server made there.
pub async fn channel(dir: &Path, url: &str, role: &str) -> tonic::transport::Channel {
    let certs = dir.join("certs/dev");
    let read = |name: String| std::fs::read(certs.join(name)).unwrap();
    let identity = (read(format!("{role}.pem")), read(format!("{role}.key")));
    super::connect(&certs, url, Some(identity)).await.unwrap()
}

/// Runs a client command in `dir` against `server`.
pub fn run(dir: &Path, server: &str, args: &[&str]) -> Output {
    command()
        .args(args)
        .args(["--server", server])
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `safehire ARGS` in `dir`, with exactly the SAFEHIRE_… variables in `env` (none inherited).
pub fn safehire_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = command();
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SAFEHIRE_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

/// SIGTERM, as systemd or Kubernetes stop the server, then its exit within `limit`.
pub fn terminate(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the server did not stop within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
