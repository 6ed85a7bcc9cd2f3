//! What a newcomer meets first, through the real binary against a real server: one exit-code
//! table that every command follows, and metrics that count every kind of check.

use std::path::Path;
use std::process::Output;

use super::common::process;

/// `safehire ARGS` in `dir` against `server`, with no inherited SAFEHIRE_ variables.
fn safehire(dir: &Path, server: &str, args: &[&str]) -> Output {
    let mut command = crate::common::process::command();
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SAFEHIRE_") {
            command.env_remove(name);
        }
    }
    command.env("SAFEHIRE_SERVER", server).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes `gen ARGS` standard output to `file`.
fn generate(dir: &Path, file: &str, args: &[&str]) {
    let out = safehire(dir, "https://127.0.0.1:1", args);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(dir.join(file), out.stdout).unwrap();
}

/// `file` with one character of the second data row's doc_number changed: a bad check digit.
fn with_bad_row(dir: &Path, from: &str, file: &str) {
    let content = std::fs::read_to_string(dir.join(from)).unwrap();
    let mut lines: Vec<String> = content.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[2].split(',').map(str::to_string).collect();
    let last = fields[1].pop().unwrap();
    fields[1].push(if last == '0' { '1' } else { '0' });
    lines[2] = fields.join(",");
    std::fs::write(dir.join(file), lines.join("\n") + "\n").unwrap();
}

fn words_of(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The codes of the README's exit-code table.
fn documented_codes() -> Vec<i32> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = &readme[readme.find("### Exit codes").expect("an exit-code table")..];
    table
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn every_command_exits_with_the_documented_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_server, url) = process::serve(d);
    let unreachable = "https://127.0.0.1:1";

    generate(d, "records.csv", &["gen", "records", "50"]);
    generate(
        d,
        "hits.csv",
        &[
            "gen",
            "people",
            "20",
            "--with-records",
            "records.csv",
            "--hits",
            "2",
        ],
    );
    generate(d, "clean.csv", &["gen", "people", "20", "--seed", "5"]);
    with_bad_row(d, "clean.csv", "bad-row.csv");
    std::fs::write(
        d.join("no-hire-date.csv"),
        "doc_type,doc_number,name,staff_ref\n",
    )
    .unwrap();
    generate(d, "units.csv", &["gen", "orgs", "3"]);
    with_bad_row(d, "records.csv", "bad-records.csv");
    let units = std::fs::read_to_string(d.join("units.csv")).unwrap();
    std::fs::write(
        d.join("bad-units.csv"),
        units.replace(",employer,", ",nobody,"),
    )
    .unwrap();
    generate(
        d,
        "more.csv",
        &["gen", "hires", "1", "--seed", "5", "--after", "20"],
    );
    let first = std::fs::read_to_string(d.join("clean.csv")).unwrap();
    let ref0 = first
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(3)
        .unwrap()
        .to_string();
    let more = std::fs::read_to_string(d.join("more.csv")).unwrap();
    std::fs::write(
        d.join("same-ref.csv"),
        more.replace(",S000020,", &format!(",{ref0},")),
    )
    .unwrap();
    generate(d, "strangers.csv", &["gen", "leavers", "hits.csv", "1"]);
    std::fs::write(d.join("tiny.key"), b"abc").unwrap();
    std::fs::write(d.join("bad.toml"), "listen = 5\n").unwrap();
    let record = std::fs::read_to_string(d.join("records.csv")).unwrap();
    let row: Vec<&str> = record.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[7], "false", "the first generated record is unsealed");
    let (doc, name) = (row[2], row[3]);
    let other = first.lines().nth(1).unwrap().split(',').collect::<Vec<_>>();
    let check = |doc: &str, name: &str| -> Vec<String> {
        [
            "check",
            "--doc-type",
            "cn-id",
            "--doc-number",
            doc,
            "--name",
            name,
            "--purpose",
            "pre-hire",
            "--consent",
            "CONSENT-2026-001",
        ]
        .map(str::to_string)
        .to_vec()
    };
    let pre_hire = ["--purpose", "pre-hire", "--consent", "CONSENT-2026-001"];
    let batch = |file: &str| -> Vec<String> {
        let mut args = words_of(&["batch", file, "--out", "results.csv"]);
        args.extend(pre_hire.map(str::to_string));
        args
    };
    let words = words_of;
    let mut bad_number = check(other[1], other[2]);
    bad_number[4].push('9');
    let mut as_registrar = words(&["--as", "registrar"]);
    as_registrar.extend(check(other[1], other[2]));

    // (what is tried, the command, where it is sent, the documented code). In order: later
    // rows rely on the records and the roster that earlier ones loaded.
    let table: Vec<(&str, Vec<String>, &str, i32)> = vec![
        (
            "gen: a usage error",
            words(&["gen", "people", "1", "--format", "nope"]),
            &url,
            2,
        ),
        (
            "import: all rows",
            words(&["--as", "registrar", "registry", "import", "records.csv"]),
            &url,
            0,
        ),
        (
            "import: a rejected row",
            words(&["--as", "registrar", "registry", "import", "bad-records.csv"]),
            &url,
            10,
        ),
        (
            "import: no such file",
            words(&["--as", "registrar", "registry", "import", "nope.csv"]),
            &url,
            7,
        ),
        (
            "import: not a registrar",
            words(&["--as", "employer", "registry", "import", "records.csv"]),
            &url,
            6,
        ),
        (
            "revoke: no such record",
            words(&[
                "--as",
                "registrar",
                "registry",
                "revoke",
                "REC-1900-0000000",
                "--reason",
                "x",
            ]),
            &url,
            8,
        ),
        ("check: no record", check(other[1], other[2]), &url, 0),
        ("check: a record", check(doc, name), &url, 3),
        ("check: a bad number", bad_number, &url, 5),
        ("check: a refused caller", as_registrar, &url, 6),
        ("check: no server", check(doc, name), unreachable, 7),
        (
            "check: an unknown flag",
            words(&["check", "--no-such-flag"]),
            &url,
            2,
        ),
        ("batch: all clear", batch("clean.csv"), &url, 0),
        ("batch: hits", batch("hits.csv"), &url, 3),
        ("batch: a row with an error", batch("bad-row.csv"), &url, 10),
        ("batch: no such file", batch("nope.csv"), &url, 7),
        ("batch: columns missing", batch("units.csv"), &url, 5),
        (
            "replace: one bad row, nothing applied",
            words(&["roster", "replace", "bad-row.csv"]),
            &url,
            5,
        ),
        (
            "replace: the others applied",
            words(&["roster", "replace", "bad-row.csv", "--partial"]),
            &url,
            10,
        ),
        (
            "replace: no hire_date column",
            words(&["roster", "replace", "no-hire-date.csv"]),
            &url,
            5,
        ),
        (
            "replace: no such file",
            words(&["roster", "replace", "nope.csv"]),
            &url,
            7,
        ),
        (
            "replace: all rows",
            words(&["roster", "replace", "clean.csv"]),
            &url,
            0,
        ),
        (
            "hire: a staff ref already in use",
            words(&["roster", "hire", "same-ref.csv"]),
            &url,
            5,
        ),
        (
            "hire: a new member",
            words(&["roster", "hire", "more.csv"]),
            &url,
            0,
        ),
        (
            "leave: not a member",
            words(&["roster", "leave", "strangers.csv"]),
            &url,
            5,
        ),
        ("recheck: all clear", words(&["roster", "recheck"]), &url, 0),
        (
            "replace: staff with hits",
            words(&["roster", "replace", "hits.csv"]),
            &url,
            0,
        ),
        ("recheck: a hit", words(&["roster", "recheck"]), &url, 3),
        (
            "org import: all rows",
            words(&["org", "import", "units.csv"]),
            &url,
            0,
        ),
        (
            "org import: rejected rows",
            words(&["org", "import", "bad-units.csv"]),
            &url,
            10,
        ),
        (
            "org import: no such file",
            words(&["org", "import", "nope.csv"]),
            &url,
            7,
        ),
        ("audit verify", words(&["audit", "verify"]), &url, 0),
        (
            "config check: an invalid file",
            words(&["config", "check", "bad.toml"]),
            &url,
            5,
        ),
        (
            "keys id: an unfit key file",
            words(&["keys", "id", "tiny.key"]),
            &url,
            5,
        ),
        (
            "keys id: no key file",
            words(&["keys", "id", "nope.key"]),
            &url,
            7,
        ),
    ];
    let documented = documented_codes();
    for (what, args, server, code) in &table {
        assert!(
            documented.contains(code),
            "{what}: {code} is not in the README's table"
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = safehire(d, server, &args);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{what}: safehire {}\n{}",
            args.join(" "),
            text(&out)
        );
    }
    let mut exercised: Vec<i32> = table.iter().map(|row| row.3).collect();
    exercised.sort_unstable();
    exercised.dedup();
    // 4 (NEEDS_REVIEW) and 11 (a broken batch) have tests of their own (batch::, checks::).
    let untried: Vec<i32> = documented
        .iter()
        .copied()
        .filter(|c| !exercised.contains(c) && ![4, 11].contains(c))
        .collect();
    assert_eq!(untried, Vec::<i32>::new(), "documented codes no row tries");
}

#[test]
fn metrics_count_single_batch_and_re_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_server, url, metrics) = process::serve_with_metrics(d);
    generate(d, "staff.csv", &["gen", "people", "25"]);
    let row: Vec<String> = std::fs::read_to_string(d.join("staff.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let consent = ["--purpose", "pre-hire", "--consent", "CONSENT-2026-001"];
    for _ in 0..2 {
        let mut args = vec!["check", "--doc-type", &row[0], "--doc-number", &row[1]];
        args.extend(["--name", &row[2]]);
        args.extend(consent);
        let out = safehire(d, &url, &args);
        assert!(out.status.success(), "{}", text(&out));
    }
    let mut args = vec!["batch", "staff.csv", "--out", "results.csv"];
    args.extend(consent);
    let out = safehire(d, &url, &args);
    assert!(out.status.success(), "{}", text(&out));
    for args in [
        &["roster", "replace", "staff.csv"][..],
        &["roster", "recheck"],
    ] {
        let out = safehire(d, &url, args);
        assert!(out.status.success(), "{}", text(&out));
    }

    let scraped = scrape(&metrics);
    for (kind, n) in [("single", 2), ("batch", 25), ("recheck", 25)] {
        let series = format!("safehire_checks_total{{kind=\"{kind}\"}} {n}\n");
        assert!(scraped.contains(&series), "{series:?} not in\n{scraped}");
    }
}

/// `GET /metrics` over plain HTTP from `url` (`http://ADDR/metrics`).
fn scrape(url: &str) -> String {
    use std::io::{Read, Write};
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}
