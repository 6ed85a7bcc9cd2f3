//! The command line speaks the locale's language: with `LANG=zh_CN.UTF-8` the check answer,
//! the batch and roster summaries, the compliance report (text and HTML) and the error line
//! come out in Chinese from the shared message catalogue; in the C locale in English. The
//! outcome codes and the `--json` documents stay the same in both.

use std::path::Path;
use std::process::Output;

use crate::common;

use common::process::{command, serve};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn both(out: &Output) -> String {
    format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr))
}

/// `safehire ARGS` against `server` in the locale `lang`.
fn run_in(dir: &Path, server: &str, lang: &str, args: &[&str]) -> Output {
    command()
        .env("LANG", lang)
        .args(args)
        .args(["--server", server])
        .current_dir(dir)
        .output()
        .unwrap()
}

/// What each command must say in one language (and the other language must not).
struct Expect {
    lang: &'static str,
    check: &'static str,
    batch: &'static str,
    roster: &'static str,
    show: &'static str,
    report: &'static str,
    html: [&'static str; 3],
    error: &'static str,
    /// A word only the other language uses.
    foreign: &'static str,
}

const LANGUAGES: [Expect; 2] = [
    Expect {
        lang: "zh_CN.UTF-8",
        check: "NO_RECORD\n  未发现相关违法犯罪记录\n  查询编号",
        batch: "共 4 行：4 行 NO_RECORD（未发现记录），0 行 RECORD_FOUND（发现记录），0 行 NEEDS_REVIEW（需复查），0 行错误；结果文件 results.csv",
        roster: "的在职名单：收到 4 行，",
        show: "人需年度复查",
        report: "合规情况报告，截至 ",
        html: [
            "<html lang=\"zh-CN\">",
            "<h1>合规情况报告",
            "<h2>问题类型</h2>",
        ],
        error: "错误: ",
        foreign: "current members",
    },
    Expect {
        lang: "C",
        check: "NO_RECORD\n  check id          ",
        batch: "4 rows: 4 NO_RECORD, 0 RECORD_FOUND, 0 NEEDS_REVIEW, 0 errors; results in results.csv",
        roster: ": 4 received, ",
        show: " members due for the yearly re-check",
        report: "compliance report as of ",
        html: [
            "<html lang=\"en\">",
            "<h1>Compliance report",
            "<h2>Findings by kind</h2>",
        ],
        error: "error: ",
        foreign: "在职",
    },
];

#[test]
fn the_cli_and_the_report_follow_the_locale() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_serve, server) = serve(d);
    let people = command()
        .args(["gen", "people", "4", "--seed", "19", "--out", "staff.csv"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(people.status.success(), "{}", both(&people));
    let text = std::fs::read_to_string(d.join("staff.csv")).unwrap();
    let person: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();

    for expect in &LANGUAGES {
        let run = |args: &[&str]| run_in(d, &server, expect.lang, args);
        let said = |out: &Output, wanted: &str| {
            let text = both(out);
            assert!(
                text.contains(wanted),
                "{}: {wanted:?} in {text}",
                expect.lang
            );
            assert!(
                !text.contains(expect.foreign),
                "{}: {:?} in {text}",
                expect.lang,
                expect.foreign
            );
        };

        let check = run(&[
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
        ]);
        assert_eq!(check.status.code(), Some(0), "{}", both(&check));
        said(&check, expect.check);

        let batch = run(&[
            "batch",
            "staff.csv",
            "--purpose",
            "pre-hire",
            "--consent",
            "CONSENT-2026-001",
            "--out",
            "results.csv",
        ]);
        assert_eq!(batch.status.code(), Some(0), "{}", both(&batch));
        said(&batch, expect.batch);

        let roster = run(&["roster", "replace", "staff.csv"]);
        assert_eq!(roster.status.code(), Some(0), "{}", both(&roster));
        said(&roster, expect.roster);
        said(&run(&["roster", "show"]), expect.show);

        let report = run(&["oversight", "report"]);
        assert_eq!(report.status.code(), Some(0), "{}", both(&report));
        assert!(
            stdout(&report).starts_with(expect.report),
            "{}",
            both(&report)
        );

        let html = d.join("report.html");
        let written = run(&["oversight", "report", "--html", "report.html"]);
        assert_eq!(written.status.code(), Some(0), "{}", both(&written));
        let page = std::fs::read_to_string(&html).unwrap();
        for wanted in expect.html {
            assert!(page.contains(wanted), "{}: {wanted} in {page}", expect.lang);
        }

        // The error line, from an identity the server refuses.
        let refused = run(&[
            "check",
            "--doc-type",
            "cn-id",
            "--doc-number",
            "123",
            "--name",
            person[2],
            "--purpose",
            "pre-hire",
            "--consent",
            "CONSENT-2026-001",
        ]);
        assert_ne!(refused.status.code(), Some(0));
        assert!(
            String::from_utf8_lossy(&refused.stderr).starts_with(expect.error),
            "{}",
            both(&refused)
        );
    }

    // `--lang` overrides the locale, so that a report can be written for another reader.
    let english = run_in(
        d,
        &server,
        "zh_CN.UTF-8",
        &["oversight", "report", "--lang", "en", "--html", "en.html"],
    );
    assert_eq!(english.status.code(), Some(0), "{}", both(&english));
    let page = std::fs::read_to_string(d.join("en.html")).unwrap();
    assert!(
        page.contains("<html lang=\"en\">") && !page.contains("合规"),
        "{page}"
    );
    // The machine format is the same in every language.
    let json = run_in(d, &server, "zh_CN.UTF-8", &["--json", "roster", "show"]);
    let status: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(status["current_members"], 4, "{}", both(&json));
}

/// README.zh-CN.md's command-line steps in the Chinese locale: the batch summary it shows is
/// the one the CLI prints.
#[test]
fn the_chinese_readme_batch_line_is_true() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.zh-CN.md"))
            .unwrap();
    let shown = readme
        .lines()
        .find(|line| line.starts_with("共 ") && line.contains("NO_RECORD"))
        .expect("README.zh-CN.md shows a batch summary");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_serve, server) = serve(d);
    let run = |args: &[&str]| run_in(d, &server, "zh_CN.UTF-8", args);
    let records = run(&["gen", "records", "1000"]);
    assert!(records.status.success(), "{}", both(&records));
    std::fs::write(d.join("records.csv"), &records.stdout).unwrap();
    let import = run(&["--as", "registrar", "registry", "import", "records.csv"]);
    assert!(import.status.success(), "{}", both(&import));
    assert!(
        stdout(&import).starts_with("已导入 records.csv："),
        "{}",
        both(&import)
    );
    let people = run(&[
        "gen",
        "people",
        "100",
        "--out",
        "staff.csv",
        "--encoding",
        "gb18030",
    ]);
    assert!(people.status.success(), "{}", both(&people));
    let batch = run(&[
        "batch",
        "staff.csv",
        "--purpose",
        "pre-hire",
        "--consent",
        "CONSENT-2026-001",
        "--out",
        "results.csv",
    ]);
    assert_eq!(batch.status.code(), Some(0), "{}", both(&batch));
    assert_eq!(stdout(&batch).trim_end(), shown, "{}", both(&batch));
}
