//! The README's "First steps" walk-through, run as written: every `safehire` command of the
//! section's `sh` blocks, in order, on a fresh folder against a real server (the binary cargo
//! built for the tests), and every outcome shown under a command checked against what it
//! printed. The test reads README.md itself, so an edit of the README is what it runs.
//!
//! The rules, so that a README author knows what holds:
//! - The section runs from `## First steps` to the next `## ` heading. Lines that do not start
//!   with `safehire` (`cargo build`, `alias`) are not run: the test's binary stands in for them.
//!   A line ending in `\` continues on the next. `;` separates commands, `> FILE` writes standard
//!   output to FILE, an unquoted `#` starts a comment.
//! - A command whose comment says `Ctrl-C` (it runs until stopped) is not run.
//! - `# ` lines right under a command are its outcome: each must match a line of its output
//!   (standard output, then standard error), in order; `…` or `...` stands for any text, and runs
//!   of spaces count as one. `# exit N` gives the exit code; without one it must be 0.
//! - A placeholder `<key>` is replaced by `key` from the latest earlier output that has it: the
//!   last row of a CSV with a `key` column, or a text line `key   value` (`_` read as a space,
//!   so `<check_id>` takes the value of a `check id` line). An unknown placeholder fails the test.

use std::path::Path;

use super::common::process;

/// One command of the walk-through with what the README shows under it.
#[derive(Debug, Clone)]
struct Step {
    /// The line as written, for messages.
    line: String,
    args: Vec<String>,
    stdout_to: Option<String>,
    expected: Vec<String>,
    exit: i32,
}

/// What a step printed and returned.
struct Ran {
    code: i32,
    output: String,
}

fn first_steps(readme: &str) -> String {
    let start = readme
        .find("\n## First steps")
        .expect("README has a First steps section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_string()
}

/// The logical lines of the section's `sh` blocks (continuations joined).
fn block_lines(section: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    let mut pending = String::new();
    for raw in section.lines() {
        let trimmed = raw.trim_end();
        if trimmed.starts_with("```") {
            inside = !inside && trimmed == "```sh";
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        lines.push(std::mem::take(&mut pending));
    }
    lines
}

/// Shell-like words: whitespace-separated, double quotes grouping; the unquoted comment apart.
fn words(line: &str) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut has_word = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                has_word = true;
            }
            '#' if !quoted && !has_word => return (out, line[i..].to_string()),
            c if c.is_whitespace() && !quoted => {
                if has_word {
                    out.push(std::mem::take(&mut word));
                    has_word = false;
                }
            }
            c => {
                word.push(c);
                has_word = true;
            }
        }
    }
    if has_word {
        out.push(word);
    }
    (out, String::new())
}

fn parse(section: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    // Outcome lines attach to the last command of the line before them.
    let mut attach = false;
    for line in block_lines(section) {
        let text = line.trim();
        if let Some(outcome) = text.strip_prefix('#') {
            if !attach {
                continue;
            }
            let step = steps.last_mut().expect("an outcome follows a command");
            let outcome = outcome.strip_prefix(' ').unwrap_or(outcome);
            match outcome.trim().strip_prefix("exit ") {
                Some(code) => step.exit = code.trim().parse().expect("# exit N"),
                None => step.expected.push(outcome.to_string()),
            }
            continue;
        }
        attach = false;
        let (all, comment) = words(text);
        if all.first().map(String::as_str) != Some("safehire") || comment.contains("Ctrl-C") {
            continue;
        }
        for command in all.split(|w| w == ";") {
            let mut args = Vec::new();
            let mut stdout_to = None;
            let mut iter = command.iter();
            while let Some(word) = iter.next() {
                if word == ">" {
                    stdout_to = iter.next().cloned();
                } else {
                    args.push(word.clone());
                }
            }
            assert_eq!(args.first().map(String::as_str), Some("safehire"), "{line}");
            args.remove(0);
            steps.push(Step {
                line: text.to_string(),
                args,
                stdout_to,
                expected: Vec::new(),
                exit: 0,
            });
        }
        attach = true;
    }
    steps
}

/// `key` from one output: a CSV column's last row, or a `key   value` text line.
fn value_in(output: &str, key: &str) -> Option<String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(output.as_bytes());
    if let Ok(header) = reader.headers()
        && let Some(column) = header.iter().position(|h| h == key)
        && let Some(Ok(last)) = reader.records().last()
    {
        return last.get(column).map(str::to_string);
    }
    let label = key.replace('_', " ");
    output.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(&label)?;
        rest.starts_with("  ")
            .then(|| rest.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

fn substitute(word: &str, earlier: &[Ran]) -> Result<String, String> {
    let mut out = word.to_string();
    while let Some(open) = out.find('<') {
        let close = out[open..]
            .find('>')
            .map(|i| open + i)
            .ok_or_else(|| format!("unclosed placeholder in {word}"))?;
        let key = out[open + 1..close].to_string();
        let value = earlier
            .iter()
            .rev()
            .find_map(|ran| value_in(&ran.output, &key))
            .ok_or_else(|| format!("no earlier output gives <{key}>"))?;
        out.replace_range(open..=close, &value);
    }
    Ok(out)
}

fn run(dir: &Path, server: &str, steps: &[Step]) -> Vec<Ran> {
    let mut ran: Vec<Ran> = Vec::new();
    for step in steps {
        let args: Vec<String> = step
            .args
            .iter()
            .map(|w| substitute(w, &ran).unwrap_or_else(|e| panic!("{}: {e}", step.line)))
            .collect();
        let mut command = crate::common::process::command();
        command.args(&args).current_dir(dir);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SAFEHIRE_") {
                command.env_remove(name);
            }
        }
        let out = command.env("SAFEHIRE_SERVER", server).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(file) = &step.stdout_to {
            std::fs::write(dir.join(file), &out.stdout).unwrap();
        }
        ran.push(Ran {
            code: out.status.code().unwrap_or(-1),
            output: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
        });
    }
    ran
}

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `line` matches `pattern`, where `…` and `...` stand for any text.
fn matches(pattern: &str, line: &str) -> bool {
    let pattern = squeeze(&pattern.replace("...", "…"));
    let line = squeeze(line);
    let parts: Vec<&str> = pattern.split('…').map(str::trim).collect();
    let mut at = 0;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        let found = if i == 0 {
            line.starts_with(part).then_some(0)
        } else {
            line[at..].find(part).map(|p| p + at)
        };
        let Some(found) = found else {
            return false;
        };
        at = found + part.len();
    }
    parts.last().is_none_or(|last| last.is_empty()) || at == line.len()
}

/// Every step's exit code and outcome lines against what it did; the first mismatch.
fn check(steps: &[Step], ran: &[Ran]) -> Result<(), String> {
    for (step, ran) in steps.iter().zip(ran) {
        if ran.code != step.exit {
            return Err(format!(
                "`{}` exited {} (the README says {}):\n{}",
                step.line, ran.code, step.exit, ran.output
            ));
        }
        let mut lines = ran.output.lines();
        for expected in &step.expected {
            if !lines.any(|line| matches(expected, line)) {
                return Err(format!(
                    "`{}`: no line matches `{expected}` (in order) in:\n{}",
                    step.line, ran.output
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn the_first_steps_walk_through_holds() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let steps = parse(&first_steps(&readme));
    assert!(steps.len() >= 30, "only {} steps parsed", steps.len());
    let checked = steps.iter().filter(|s| !s.expected.is_empty()).count();
    assert!(checked >= 20, "only {checked} steps show an outcome");

    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = process::serve(dir.path());
    let ran = run(dir.path(), &url, &steps);
    if let Err(mismatch) = check(&steps, &ran) {
        panic!("the README's first steps do not hold: {mismatch}");
    }

    // The check has teeth: any one outcome changed (a count, a word, an exit code) fails it.
    for (i, step) in steps.iter().enumerate() {
        for (j, expected) in step.expected.iter().enumerate() {
            let mut changed = steps.clone();
            changed[i].expected[j] = format!("{expected} (changed)");
            assert!(
                check(&changed, &ran).is_err(),
                "changing `{expected}` under `{}` went unnoticed",
                step.line
            );
        }
        let mut changed = steps.clone();
        changed[i].exit = if step.exit == 0 { 3 } else { 0 };
        assert!(check(&changed, &ran).is_err(), "{}", step.line);
    }
}

#[test]
fn outcome_patterns_match_as_documented() {
    assert!(matches("RECORD_FOUND", "RECORD_FOUND"));
    assert!(matches("  check id          …", "  check id   01a2-77"));
    assert!(matches(
        "… entries verified",
        "audit chain OK: 12 entries verified"
    ));
    assert!(!matches("999 NO_RECORD", "1000 NO_RECORD"));
    assert!(!matches(
        "1000 rows: 1000 NO_RECORD",
        "1000 rows: 999 NO_RECORD, 1 RECORD_FOUND"
    ));
    assert_eq!(
        words(r#"safehire x --reason "a b"  # a comment"#),
        (
            vec![
                "safehire".into(),
                "x".into(),
                "--reason".into(),
                "a b".into()
            ],
            "# a comment".into()
        )
    );
    let csv = "doc_type,doc_number,name\ncn-id,1,甲\ncn-id,2,乙\n";
    assert_eq!(value_in(csv, "name").as_deref(), Some("乙"));
    assert_eq!(
        value_in("NO_RECORD\n  check id          abc\n", "check_id").as_deref(),
        Some("abc")
    );
}
