//! The command line end to end, as a newcomer uses it: `safehire serve` on dev defaults in an
//! empty folder, a generated records file imported, one of its people checked.

use std::path::Path;

use crate::common;

use common::process::{run, serve};

#[test]
fn first_steps_from_the_readme_work() {
    let dir = tempfile::tempdir().unwrap();
    let (_serve, server) = serve(dir.path());
    assert!(
        dir.path().join("certs/dev/employer.pem").exists(),
        "dev certificates generated"
    );
    assert!(
        dir.path().join("data/safehire.db").exists(),
        "database created"
    );

    let records = crate::common::process::command()
        .args(["gen", "records", "50", "--seed", "7"])
        .output()
        .unwrap();
    assert!(records.status.success());
    std::fs::write(dir.path().join("records.csv"), &records.stdout).unwrap();
    let text = String::from_utf8(records.stdout).unwrap();
    let mut rows = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>());
    let unsealed = rows.find(|r| r[7] == "false").expect("an unsealed record");
    let (doc_type, doc_number, name) = (
        unsealed[1].to_string(),
        unsealed[2].to_string(),
        unsealed[3].to_string(),
    );

    let import = run(
        dir.path(),
        &server,
        &["--as", "registrar", "registry", "import", "records.csv"],
    );
    let out = String::from_utf8_lossy(&import.stdout);
    assert!(
        import.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&import.stderr)
    );
    assert!(out.contains("50 created"), "{out}");

    let hit = run(
        dir.path(),
        &server,
        &[
            "check",
            "--doc-type",
            &doc_type,
            "--doc-number",
            &doc_number,
            "--name",
            &name,
            "--purpose",
            "pre-hire",
            "--consent",
            "CONSENT-1",
        ],
    );
    assert!(
        String::from_utf8_lossy(&hit.stdout).starts_with("RECORD_FOUND"),
        "{}",
        String::from_utf8_lossy(&hit.stdout)
    );
    assert_eq!(hit.status.code(), Some(3));

    let people = crate::common::process::command()
        .args(["gen", "people", "1", "--seed", "99"])
        .output()
        .unwrap();
    let people = String::from_utf8(people.stdout).unwrap();
    let person: Vec<&str> = people.lines().nth(1).unwrap().split(',').collect();
    let miss = run(
        dir.path(),
        &server,
        &[
            "--json",
            "check",
            "--doc-type",
            person[0],
            "--doc-number",
            person[1],
            "--name",
            person[2],
            "--purpose",
            "pre-hire",
            "--consent",
            "CONSENT-2026-001",
        ],
    );
    assert_eq!(miss.status.code(), Some(0));
    let reply: serde_json::Value = serde_json::from_slice(&miss.stdout).unwrap();
    assert_eq!(reply["outcome"], "NO_RECORD");

    let bad = run(
        dir.path(),
        &server,
        &[
            "check",
            "--doc-number",
            "110105194912310021",
            "--name",
            "王五",
            "--purpose",
            "pre-hire",
            "--consent",
            "CONSENT-2026-001",
        ],
    );
    assert_eq!(bad.status.code(), Some(5));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.starts_with("error: INVALID_ARGUMENT: subject.doc_number:"),
        "{err}"
    );
    assert!(!err.contains("panicked"));

    let verify = run(
        dir.path(),
        &server,
        &["--as", "prosecutor", "audit", "verify"],
    );
    assert!(String::from_utf8_lossy(&verify.stdout).contains("audit chain OK"));
}

#[test]
fn a_missing_server_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::common::process::command()
        .args([
            "check",
            "--doc-number",
            "1",
            "--name",
            "x",
            "--purpose",
            "pre-hire",
            "--consent",
            "CONSENT-2026-001",
            "--server",
            "https://127.0.0.1:1",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
}

/// The outcome column of a results file, by staff_ref.
fn outcomes(path: &Path) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .unwrap()
    };
    let (staff, outcome) = (col("staff_ref"), col("outcome"));
    reader
        .records()
        .map(|r| r.unwrap())
        .map(|r| (r[staff].to_string(), r[outcome].to_string()))
        .collect()
}

#[test]
fn a_staff_file_in_any_encoding_or_xlsx_gives_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let (_serve, server) = serve(dir.path());
    let d = dir.path();
    let generate = |args: &[&str]| {
        let out = crate::common::process::command()
            .args(["gen", "people", "300", "--seed", "5"])
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    generate(&["--encoding", "gb18030", "--out", "staff-gb.csv"]);
    generate(&["--bom", "--out", "staff-bom.csv"]);
    generate(&["--format", "xlsx", "--out", "staff.xlsx"]);
    let gb = std::fs::read(d.join("staff-gb.csv")).unwrap();
    assert!(
        std::str::from_utf8(&gb).is_err(),
        "the GB18030 file is not UTF-8"
    );

    // Records for the first ten people of the (UTF-8) file: they must come back RECORD_FOUND.
    let text = String::from_utf8(std::fs::read(d.join("staff-bom.csv")).unwrap()).unwrap();
    let mut records =
        String::from("source_ref,doc_type,doc_number,name,category,kind,decided_on,sealed\n");
    for (i, line) in text
        .trim_start_matches('\u{feff}')
        .lines()
        .skip(1)
        .take(10)
        .enumerate()
    {
        let f: Vec<&str> = line.split(',').collect();
        records.push_str(&format!(
            "REC-{i},{},{},{},sexual,conviction,2020-01-01,false\n",
            f[0], f[1], f[2]
        ));
    }
    std::fs::write(d.join("records.csv"), records).unwrap();
    let import = run(
        d,
        &server,
        &["--as", "registrar", "registry", "import", "records.csv"],
    );
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stdout)
    );

    let mut all = Vec::new();
    for (file, out) in [
        ("staff-gb.csv", "r-gb.csv"),
        ("staff-bom.csv", "r-bom.csv"),
        ("staff.xlsx", "r-xlsx.csv"),
    ] {
        let batch = run(
            d,
            &server,
            &[
                "batch",
                file,
                "--purpose",
                "pre-hire",
                "--consent",
                "CONSENT-2026-001",
                "--out",
                out,
            ],
        );
        let stdout = String::from_utf8_lossy(&batch.stdout);
        assert_eq!(
            batch.status.code(),
            Some(3),
            "{file}: 3, a hit among the rows: {stdout}{}",
            String::from_utf8_lossy(&batch.stderr)
        );
        assert!(
            stdout.contains("300 rows: 290 NO_RECORD, 10 RECORD_FOUND, 0 NEEDS_REVIEW, 0 errors"),
            "{file}: {stdout}"
        );
        all.push(outcomes(&d.join(out)));
    }
    assert_eq!(all[0].len(), 300);
    assert_eq!(all[0], all[1]);
    assert_eq!(all[0], all[2]);

    // --resume of a finished batch answers every row again from the record: no new checks.
    let again = run(
        d,
        &server,
        &[
            "--json",
            "batch",
            "staff-bom.csv",
            "--purpose",
            "pre-hire",
            "--consent",
            "CONSENT-2026-001",
            "--out",
            "r-bom.csv",
            "--resume",
        ],
    );
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["replayed"], 300);
    assert_eq!(outcomes(&d.join("r-bom.csv")), all[1]);
}

#[test]
fn bad_rows_get_their_own_error_in_file_order_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (_serve, server) = serve(dir.path());
    let d = dir.path();
    let mut generator = safehire::synth::Generator::new(41, time::macros::date!(2026 - 11 - 24));
    let mut text = String::from("doc_type,doc_number,name,staff_ref\n");
    for i in 0..6 {
        let (number, name) = (generator.resident_id(), generator.name());
        let (doc_type, number, name) = match i {
            1 => ("driving-licence", number, name),
            3 => {
                // The right length and date, the wrong check character.
                let mut wrong = number;
                let last = wrong.pop().unwrap();
                wrong.push(if last == '0' { '1' } else { '0' });
                ("cn-id", wrong, name)
            }
            4 => ("cn-id", number, String::new()),
            _ => ("cn-id", number, name),
        };
        text.push_str(&format!("{doc_type},{number},{name},S{i}\n"));
    }
    std::fs::write(d.join("staff.csv"), text).unwrap();
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
            "r.csv",
        ],
    );
    assert_eq!(
        batch.status.code(),
        Some(10),
        "{}{}",
        String::from_utf8_lossy(&batch.stdout),
        String::from_utf8_lossy(&batch.stderr)
    );
    let mut reader = csv::Reader::from_path(d.join("r.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let staff: Vec<&str> = rows.iter().map(|r| &r[3]).collect();
    assert_eq!(staff, ["S0", "S1", "S2", "S3", "S4", "S5"]);
    for (i, row) in rows.iter().enumerate() {
        let (outcome, error) = (&row[4], &row[7]);
        match i {
            1 => assert!(
                error.starts_with("doc_type: unknown document type"),
                "{error}"
            ),
            3 => assert!(error.starts_with("subject.doc_number"), "{error}"),
            4 => assert!(error.starts_with("subject.name"), "{error}"),
            _ => assert_eq!((outcome, error), ("NO_RECORD", ""), "row {i}"),
        }
        if matches!(i, 1 | 3 | 4) {
            assert_eq!(outcome, "", "row {i} has no outcome");
        }
    }
}
