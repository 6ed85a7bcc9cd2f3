//! A client command whose reader goes away (`safehire audit log | head -1`) ends quietly, as
//! Unix tools do, instead of panicking on its next line of output.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common;

use common::process::{run, serve};

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_a_client_command_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_serve, server) = serve(d);
    let staff = run(d, &server, &["gen", "people", "3000"]);
    std::fs::write(d.join("staff.csv"), &staff.stdout).unwrap();
    let batch = run(
        d,
        &server,
        &[
            "batch",
            "staff.csv",
            "--purpose",
            "pre-hire",
            "--consent",
            "CONSENT-2026-001",
            "--out",
            "results.csv",
        ],
    );
    assert!(batch.status.success(), "{batch:?}");

    // Far more lines than a pipe holds, read one, then hang up.
    let mut log = crate::common::process::command()
        .args(["--as", "prosecutor", "audit", "log", "--server", &server])
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(log.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    let ended = log.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&ended.stderr);
    assert!(!said.contains("panicked"), "{said}");
    assert!(
        ended.status.signal() == Some(libc::SIGPIPE) || ended.status.success(),
        "{:?}",
        ended.status
    );
}
