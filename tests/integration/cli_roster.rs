//! The roster, alert and review commands end to end against a real `safehire serve`: declare a
//! staff file, import a record for one member, see the alert, re-check everyone, act on it.

use std::path::Path;
use std::process::Output;

use crate::common;

use common::process::{run, serve};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Both streams, for assertion messages.
fn both(out: &Output) -> String {
    format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr))
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(out)))
}

#[test]
fn a_roster_is_declared_alerted_rechecked_and_acted_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_serve, server) = serve(d);
    let run = |args: &[&str]| run(d, &server, args);

    let people = crate::common::process::command()
        .args(["gen", "people", "20", "--seed", "3", "--out", "staff.csv"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(people.status.success(), "{}", both(&people));

    let replace = run(&["roster", "replace", "staff.csv"]);
    assert_eq!(replace.status.code(), Some(0), "{}", both(&replace));
    assert!(
        stdout(&replace).contains(
            ": 20 received, 20 added, 0 updated, 0 unchanged, 0 departed, 0 rejected; 20 current members"
        ),
        "{}",
        both(&replace)
    );

    let show = run(&["roster", "show"]);
    assert!(
        stdout(&show).contains("20 members due for the yearly re-check"),
        "{}",
        both(&show)
    );
    let status = json(&run(&["--json", "roster", "show"]));
    assert_eq!(status["current_members"], 20);
    assert_eq!(status["due_count"], 20);
    assert_eq!(status["declared"], true);
    let due = status["due"].as_array().unwrap();
    assert_eq!(due.len(), 20);
    assert!(
        due.iter().all(|m| m["last_checked_at"].is_null()),
        "{due:?}"
    );

    // A record for the fifth person of the staff file.
    let text = std::fs::read_to_string(d.join("staff.csv")).unwrap();
    let person: Vec<&str> = text.lines().nth(5).unwrap().split(',').collect();
    let (doc_number, name, staff_ref) = (person[1], person[2], person[3]);
    std::fs::write(
        d.join("records.csv"),
        format!(
            "source_ref,doc_type,doc_number,name,category,kind,decided_on,sealed\n\
             REC-1,{},{doc_number},{name},sexual,conviction,2020-01-01,false\n",
            person[0]
        ),
    )
    .unwrap();
    let import = run(&["--as", "registrar", "registry", "import", "records.csv"]);
    assert!(import.status.success(), "{}", both(&import));

    let alerts = run(&["alerts", "list"]);
    let lines: Vec<String> = stdout(&alerts).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2, "one alert and the count: {lines:?}");
    assert!(lines[0].contains(&format!("  {staff_ref}  ")), "{lines:?}");
    assert!(lines[0].ends_with("unacknowledged"), "{lines:?}");
    let listed = json(&run(&["--json", "alerts", "list"]));
    let alert_list = listed["alerts"].as_array().unwrap();
    assert_eq!(alert_list.len(), 1);
    assert_eq!(alert_list[0]["staff_ref"], staff_ref);
    let alert_id = alert_list[0]["id"].as_u64().unwrap().to_string();

    let recheck = run(&["roster", "recheck", "--out", "r.csv"]);
    assert_eq!(recheck.status.code(), Some(3), "{}", both(&recheck));
    let said = stdout(&recheck);
    assert!(
        said.contains(&format!("{staff_ref} RECORD_FOUND check ")),
        "{said}"
    );
    assert!(
        said.contains("re-checked 20 members: 19 NO_RECORD, 1 RECORD_FOUND, 0 NEEDS_REVIEW"),
        "{said}"
    );
    let results = std::fs::read_to_string(d.join("r.csv")).unwrap();
    assert!(results.starts_with('\u{feff}'), "UTF-8 with BOM");
    let mut reader = csv::Reader::from_reader(results.trim_start_matches('\u{feff}').as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "staff_ref",
            "outcome",
            "check_id",
            "checked_at",
            "review_id"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 20);
    let found: Vec<&str> = rows
        .iter()
        .filter(|r| &r[1] == "RECORD_FOUND")
        .map(|r| &r[0])
        .collect();
    assert_eq!(found, [staff_ref]);
    assert_eq!(rows.iter().filter(|r| &r[1] == "NO_RECORD").count(), 19);
    assert!(rows.iter().all(|r| !r[2].is_empty() && !r[3].is_empty()));

    let status = json(&run(&["--json", "roster", "show"]));
    assert_eq!(status["due_count"], 0);
    assert!(status["last_recheck_at"].is_string(), "{status}");
    assert!(stdout(&run(&["roster", "show"])).contains("0 members due for the yearly re-check"));

    let ack = run(&[
        "alerts",
        "ack",
        &alert_id,
        "--action",
        "suspended-pending-review",
    ]);
    assert_eq!(ack.status.code(), Some(0), "{}", both(&ack));
    assert!(
        stdout(&ack).contains("SUSPENDED_PENDING_REVIEW"),
        "{}",
        both(&ack)
    );
    let again = run(&["alerts", "ack", &alert_id, "--action", "dismissed"]);
    assert_eq!(again.status.code(), Some(8), "{}", both(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).starts_with("error: FAILED_PRECONDITION:"),
        "{}",
        both(&again)
    );

    for out in [&alerts, &recheck, &ack] {
        let text = both(out);
        assert!(
            !text.contains(doc_number) && !text.contains(name),
            "no identity in output: {text}"
        );
    }

    // New hires with their own staff refs; the second has the wrong check character.
    let hires = crate::common::process::command()
        .args(["gen", "people", "3", "--seed", "77"])
        .output()
        .unwrap();
    let mut file = String::from("doc_type,doc_number,name,staff_ref,hire_date\n");
    for (i, line) in String::from_utf8(hires.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .enumerate()
    {
        let f: Vec<&str> = line.split(',').collect();
        let mut number = f[1].to_string();
        if i == 1 {
            let last = number.pop().unwrap();
            number.push(if last == '0' { '1' } else { '0' });
        }
        file.push_str(&format!("{},{number},{},H{i},{}\n", f[0], f[2], f[4]));
    }
    std::fs::write(d.join("hires.csv"), file).unwrap();
    // One bad row: without --partial nothing is applied (exit 5), with it the others (exit 10).
    let refused = run(&["roster", "hire", "hires.csv"]);
    assert_eq!(refused.status.code(), Some(5), "{}", both(&refused));
    assert!(
        stdout(&refused).contains("nothing applied, 1 of 3 rows rejected")
            && stdout(&refused).contains("; 20 current members"),
        "{}",
        both(&refused)
    );
    let hire = run(&["roster", "hire", "hires.csv", "--partial"]);
    assert_eq!(hire.status.code(), Some(10), "{}", both(&hire));
    let said = stdout(&hire);
    assert!(
        said.contains("3 received, 2 added, 0 updated, 0 unchanged, 0 departed, 1 rejected; 22 current members"),
        "{said}"
    );
    assert!(said.contains("row 2: subject.doc_number"), "{said}");

    // Two hires leave today.
    let today = time::OffsetDateTime::now_utc().date().to_string();
    std::fs::write(
        d.join("leave.csv"),
        hire_lines(d, "hires.csv", &["H0", "H2"], &today),
    )
    .unwrap();
    let leave = run(&["roster", "leave", "leave.csv"]);
    assert_eq!(leave.status.code(), Some(0), "{}", both(&leave));
    assert!(
        stdout(&leave).contains("2 departed, 0 rejected; 20 current members"),
        "{}",
        both(&leave)
    );
}

/// The rows of `file` for `staff_refs`, as a departures file leaving on `on`.
fn hire_lines(dir: &Path, file: &str, staff_refs: &[&str], on: &str) -> String {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    let mut out = String::from("doc_type,doc_number,name,staff_ref,departure_date\n");
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if staff_refs.contains(&f[3]) {
            out.push_str(&format!("{},{},{},{},{on}\n", f[0], f[1], f[2], f[3]));
        }
    }
    out
}
