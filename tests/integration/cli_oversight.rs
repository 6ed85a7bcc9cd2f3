//! Prosecutor oversight from the command line, against a real `safehire serve`: units enrolled
//! from a file (bad rows reported, the rest enrolled), one of them checks a person, and the
//! compliance report comes out as text, JSON, CSV and a self-contained HTML page, which a real
//! browser renders when one is installed. The audit trail answers by organisation and by
//! person without ever printing the person.

use std::path::Path;
use std::process::{Command, Output};

use crate::common;

use common::process::{run, serve};
use safehire::synth::{Generator, ORGS_HEADER};

/// The dev bureau (see `safehire::devset`), which supervises the units of the test.
const DEV_BUREAU: &str = "11150602MB0000003H";
const DEV_SCHOOL: &str = "12150602MB0000004H";

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

fn write_csv(path: &Path, rows: &[[&str; 6]]) {
    let mut text = ORGS_HEADER.join(",") + "\n";
    for row in rows {
        text += &(row.join(",") + "\n");
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn units_imported_checked_reported_and_traced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_serve, server) = serve(d);
    let run = |args: &[&str]| run(d, &server, args);

    let mut generator = Generator::new(5, time::macros::date!(2026 - 03 - 02));
    let units: Vec<String> = (0..4).map(|_| generator.uscc()).collect();
    let own = generator.uscc();
    let stranger = generator.uscc();
    let mut bad_uscc = units[0].clone();
    let last = if bad_uscc.ends_with('0') { "1" } else { "0" };
    bad_uscc.replace_range(17.., last);

    // Operator import: four good rows, one the client refuses, one the server refuses.
    write_csv(
        &d.join("units.csv"),
        &[
            [
                &units[0],
                "阳光幼儿园",
                "employer",
                "150602",
                "kindergarten",
                DEV_BUREAU,
            ],
            [
                &units[1],
                "东胜区第二小学",
                "employer",
                "150602",
                "primary-secondary-school",
                DEV_BUREAU,
            ],
            [
                &units[2],
                "星星托育中心",
                "employer",
                "150603",
                "childcare",
                DEV_BUREAU,
            ],
            [
                &units[3],
                "草原体育俱乐部",
                "employer",
                "150202",
                "sports",
                "",
            ],
            [&stranger, "动物园", "employer", "150602", "zoo", DEV_BUREAU],
            [
                &bad_uscc,
                "坏码学校",
                "employer",
                "150602",
                "kindergarten",
                DEV_BUREAU,
            ],
        ],
    );
    let import = run(&["org", "import", "units.csv"]);
    assert_eq!(import.status.code(), Some(10), "{}", both(&import));
    let said = stdout(&import);
    assert!(
        said.contains("row 5: industry: \"zoo\" is not one of"),
        "{said}"
    );
    assert!(said.contains("row 6: uscc: "), "{said}");
    assert!(
        said.ends_with("6 rows: 4 created, 0 updated, 2 rejected\n"),
        "{said}"
    );
    let again = json(&run(&["--json", "org", "import", "units.csv"]));
    assert_eq!(
        (again["created"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(4))
    );
    assert_eq!(again["errors"][1]["row"], 6);
    assert_eq!(again["errors"][1]["field"], "uscc");

    // A bureau enrols its own unit; a unit it would not supervise is refused by the server.
    write_csv(
        &d.join("own.csv"),
        &[
            [
                &own,
                "自家幼儿园",
                "employer",
                "150602",
                "kindergarten",
                DEV_BUREAU,
            ],
            [
                &stranger,
                "别家幼儿园",
                "employer",
                "150602",
                "kindergarten",
                "",
            ],
        ],
    );
    let import = run(&["--as", "bureau", "org", "import", "own.csv"]);
    assert_eq!(import.status.code(), Some(10), "{}", both(&import));
    let said = stdout(&import);
    assert!(
        said.contains("row 2: permission denied: a bureau enrols only"),
        "{said}"
    );
    assert!(
        said.ends_with("2 rows: 1 created, 0 updated, 1 rejected\n"),
        "{said}"
    );

    // The bureau checks one person for the first unit.
    let people = crate::common::process::command()
        .args(["gen", "people", "1", "--seed", "42"])
        .output()
        .unwrap();
    let text = stdout(&people);
    let person: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    let (doc_type, doc_number, name) = (person[0], person[1], person[2]);
    let check = run(&[
        "--as",
        "bureau",
        "check",
        "--doc-type",
        doc_type,
        "--doc-number",
        doc_number,
        "--name",
        name,
        "--purpose",
        "pre-hire",
        "--consent",
        "CONSENT-2026-001",
        "--on-behalf-of",
        &units[0],
    ]);
    assert_eq!(check.status.code(), Some(0), "{}", both(&check));

    // The report in every form.
    let summary = run(&["oversight", "report"]);
    assert_eq!(summary.status.code(), Some(0), "{}", both(&summary));
    let said = stdout(&summary);
    assert!(said.starts_with("compliance report as of "), "{said}");
    assert!(said.contains("units with findings: 6 of 6"), "{said}");
    assert!(
        said.contains(&format!(
            "{}  星星托育中心  150603  NEVER_CHECKED(1/1) NO_ROSTER(1/1)",
            units[2]
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "{}  阳光幼儿园  150602  NO_ROSTER(1/1)\n",
            units[0]
        )),
        "{said}"
    );
    assert!(said.contains("by supervising bureau:"), "{said}");

    let whole = json(&run(&[
        "--json",
        "oversight",
        "report",
        "--region",
        "1506",
        "--industry",
        "kindergarten",
    ]));
    let listed: Vec<&str> = whole["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["uscc"].as_str().unwrap())
        .collect();
    let mut expected = vec![units[0].as_str(), own.as_str()];
    expected.sort();
    assert_eq!(listed, expected, "{whole}");
    assert_eq!(whole["industry"], "kindergarten");
    assert_eq!(whole["audit_hash"].as_str().map(str::len), Some(64));
    let before = json(&run(&[
        "--json",
        "oversight",
        "report",
        "--as-of",
        "2001-01-01",
    ]));
    assert_eq!(
        before["units"].as_array().map(Vec::len),
        Some(0),
        "nobody was enrolled in 2001"
    );
    assert_eq!(
        before["as_of"], "2001-01-01T15:59:59.999999Z",
        "the end of the day in Beijing"
    );

    let files = run(&["oversight", "report", "--out", "r.csv", "--html", "r.html"]);
    assert_eq!(files.status.code(), Some(0), "{}", both(&files));
    let said = stdout(&files);
    let audit_seq: u64 = said
        .split("(audit head ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|seq| seq.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    // The same report for Chinese readers, as the README shows it.
    let chinese = run(&["oversight", "report", "--lang", "zh", "--html", "r.zh.html"]);
    assert_eq!(chinese.status.code(), Some(0), "{}", both(&chinese));
    let page = std::fs::read_to_string(d.join("r.zh.html")).unwrap();
    assert!(
        page.contains("<html lang=\"zh-CN\">") && page.contains("存在问题的单位（"),
        "{page}"
    );

    let text = std::fs::read_to_string(d.join("r.csv")).unwrap();
    assert!(text.starts_with('\u{feff}'), "UTF-8 with BOM");
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "uscc",
            "name",
            "region",
            "industry",
            "supervising_bureau",
            "checks",
            "current_members",
            "checked_in_time",
            "NEVER_CHECKED",
            "NO_ROSTER",
            "UNCHECKED_STAFF",
            "OVERDUE_RECHECK",
            "HIT_STILL_ON_STAFF",
            "UNACKNOWLEDGED_ALERT",
            "EXCESS_QUERIES",
            "ROSTER_CHURN",
            "findings"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let mut usccs: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    usccs.sort();
    let mut all = vec![
        units[0].as_str(),
        &units[1],
        &units[2],
        &units[3],
        &own,
        DEV_SCHOOL,
    ];
    all.sort();
    assert_eq!(usccs, all, "one row per unit");
    for row in &rows {
        if row[0] == units[0] {
            assert_eq!((&row[5], &row[8], &row[9]), ("1", "", "1"), "{row:?}");
            assert_eq!(&row[16], "NO_ROSTER");
        } else {
            assert_eq!((&row[5], &row[8]), ("0", "1"), "never checked: {row:?}");
            assert_eq!(&row[16], "NEVER_CHECKED; NO_ROSTER");
        }
    }
    let school = rows.iter().find(|r| r[0] == units[1]).unwrap();
    assert_eq!(
        (&school[1], &school[3], &school[4]),
        ("东胜区第二小学", "primary-secondary-school", DEV_BUREAU)
    );

    // The HTML names the audit entry the report rests on; find its hash in the trail.
    let trail = run(&["--json", "audit", "log", "--from", "2000-01-01"]);
    assert_eq!(trail.status.code(), Some(0), "{}", both(&trail));
    let entries: Vec<serde_json::Value> = stdout(&trail)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let head = entries
        .iter()
        .find(|e| e["seq"] == audit_seq)
        .unwrap_or_else(|| panic!("entry {audit_seq} in the trail"));
    let hash = head["hash"].as_str().unwrap();
    let html = std::fs::read_to_string(d.join("r.html")).unwrap();
    assert!(html.contains(hash), "the audit head hash {hash}");
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("<svg"));
    assert!(html.contains("<table class=\"findings\">"));
    assert!(html.contains("星星托育中心") && html.contains("草原体育俱乐部"));
    assert!(html.contains("no check on record"), "evidence text");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external reference"
    );
    assert!(!html.contains("<script"), "no script");
    assert!(
        !html.contains("<link") && !html.contains("<img"),
        "no external asset"
    );

    // The trail by organisation and by person; the person is never printed.
    let log = run(&[
        "audit",
        "log",
        "--org",
        &units[0],
        "--action",
        "CheckService.Check",
    ]);
    assert_eq!(log.status.code(), Some(0), "{}", both(&log));
    let said = stdout(&log);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "one entry and the count: {said}");
    let fields: Vec<&str> = lines[0].split("  ").collect();
    assert_eq!(
        &fields[2..7],
        [
            DEV_BUREAU,
            "BUREAU",
            "CheckService.Check",
            units[0].as_str(),
            "NO_RECORD"
        ],
        "{said}"
    );
    assert!(
        fields[8].starts_with("subject:") && fields[8].len() == "subject:".len() + 12,
        "{said}"
    );
    assert_eq!(lines[1], "1 entry");

    let who = run(&[
        "audit",
        "who-checked",
        "--doc-type",
        doc_type,
        "--doc-number",
        doc_number,
        "--name",
        name,
    ]);
    assert_eq!(who.status.code(), Some(0), "{}", both(&who));
    let said = both(&who);
    assert!(
        said.contains(&format!("  CheckService.Check  {}  NO_RECORD  ", units[0])),
        "{said}"
    );
    assert!(
        said.contains("OversightService.WhoChecked"),
        "the question is on the trail: {said}"
    );
    assert!(
        !said.contains(doc_number) && !said.contains(name),
        "identity echoed: {said}"
    );

    screenshot(d);
}

/// Renders the Chinese HTML report in headless Chromium when it is installed (CI installs it),
/// as the README's example (docs/report-example.png).
fn screenshot(dir: &Path) {
    let found = ["chromium", "chromium-browser"].iter().any(|browser| {
        Command::new("sh")
            .args(["-c", &format!("command -v {browser}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !found {
        eprintln!("note: chromium is not installed; the browser screenshot was skipped");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/screenshot/screenshot.sh");
    let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report-example.png");
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir.join("r.zh.html"))
        .arg(&png)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "a rendered page, not a blank one: {size} bytes"
    );
}
