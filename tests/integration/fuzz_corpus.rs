//! Replays the fuzz corpora (`fuzz/corpus/<target>/`: the seeds and the inputs afl found that
//! reach new code) through the same harnesses the afl targets run, so that `cargo test` keeps
//! every parser of untrusted input panic-free on them without afl installed.
//!
//! The harnesses are not copied: `fuzz/src/lib.rs` is compiled into this test as a module.

#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Runs `feed` on every file of `fuzz/corpus/<target>/`, and of `fuzz/crashes/<target>/` (the
/// reproducers of what afl found; kept out of the corpus, because afl refuses seeds it sees
/// crash), and fails naming each file that panicked.
fn replay(target: &str, mut feed: impl FnMut(&[u8])) {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let dir = fuzz.join("corpus").join(target);
    let mut files = inputs(&dir);
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    let crashes = fuzz.join("crashes").join(target);
    if crashes.is_dir() {
        files.extend(inputs(&crashes));
    }
    let mut panicked = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("read a corpus file");
        if catch_unwind(AssertUnwindSafe(|| feed(&data))).is_err() {
            panicked.push(file.display().to_string());
        }
    }
    assert!(
        panicked.is_empty(),
        "{} of {} inputs panicked: {panicked:#?}",
        panicked.len(),
        files.len()
    );
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn identity_corpus() {
    replay("fuzz_identity", harness::identity);
}

#[test]
fn uscc_corpus() {
    replay("fuzz_uscc", harness::uscc);
}

#[test]
fn roster_csv_corpus() {
    let scratch = harness::Scratch::new();
    replay("fuzz_roster_csv", |data| {
        harness::roster_csv(&scratch, data)
    });
}

#[test]
fn roster_xlsx_corpus() {
    let scratch = harness::Scratch::new();
    replay("fuzz_roster_xlsx", |data| {
        harness::roster_xlsx(&scratch, data)
    });
}

#[test]
fn registry_csv_corpus() {
    replay("fuzz_registry_csv", harness::registry_csv);
}

#[test]
fn config_corpus() {
    let scratch = harness::Scratch::new();
    replay("fuzz_config", |data| harness::config(&scratch, data));
}
