//! The verifiable audit log from the outside: receipts that verify offline with the log's key
//! alone, and the attacks of an operator who edits a copy of a real server's database —
//! deleting a unit's checks and re-hashing everything after them, truncating the newest
//! entries — caught by a witness holding an earlier checkpoint and by `audit verify
//! --checkpoint`.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::{TestServer, identity, people};
use safehire::audit::merkle::Frontier;
use safehire::audit::note::{Receipt, Verifier};
use safehire::audit::{Chain, Head, NewEntry};
use safehire::org::Role;
use safehire::proto::{self, Purpose};

fn cli(server: &TestServer, args: &[&str]) -> Output {
    crate::common::process::command()
        .args(args)
        .args(["--server", &server.url()])
        .arg("--certs-dir")
        .arg(server.certs_dir())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn pre_hire(doc: &str, name: &str) -> proto::CheckRequest {
    proto::CheckRequest {
        subject: Some(identity(doc, name)),
        purpose: Purpose::PreHire as i32,
        scope: proto::Scope::Art62 as i32,
        consent_ref: "CONSENT-2026-001".into(),
        on_behalf_of: String::new(),
    }
}

/// `count` checks by the dev employer; returns their answers.
async fn run_checks(server: &TestServer, seed: u64, count: usize) -> Vec<proto::CheckResponse> {
    let mut client = server.checks(Role::Employer).await;
    let mut answers = Vec::new();
    for (doc, name) in people(seed, count) {
        answers.push(
            client
                .check(pre_hire(&doc, &name))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    answers
}

fn log_key(server: &TestServer) -> String {
    let out = cli(server, &["audit", "log-key"]);
    assert!(out.status.success(), "{}", said(&out));
    stdout(&out).trim().to_string()
}

fn db_index_of(db: &Path, check_id: &str) -> u64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let seq: i64 = conn
        .query_row(
            "SELECT seq FROM audit_log WHERE check_id = ?1",
            [check_id],
            |r| r.get(0),
        )
        .unwrap();
    seq as u64 - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_answer_carries_its_log_index() {
    let server = TestServer::start().await;
    let single = run_checks(&server, 151, 2).await;
    for answer in &single {
        assert_eq!(
            answer.log_index,
            db_index_of(&server.db_path(), &answer.check_id)
        );
    }
    let rows: Vec<proto::BatchRow> = people(152, 3)
        .iter()
        .enumerate()
        .map(|(i, (doc, name))| proto::BatchRow {
            row: i as u64 + 1,
            subject: Some(identity(doc, name)),
            consent_ref: String::new(),
        })
        .collect();
    let header = proto::CheckBatchRequest {
        item: Some(proto::check_batch_request::Item::Header(
            proto::BatchHeader {
                batch_id: "receipts-1".into(),
                purpose: Purpose::PreHire as i32,
                scope: proto::Scope::Art62 as i32,
                consent_policy: proto::ConsentPolicy::Batch as i32,
                consent_ref: "CONSENT-2026-001".into(),
                on_behalf_of: String::new(),
            },
        )),
    };
    let requests = vec![
        header,
        proto::CheckBatchRequest {
            item: Some(proto::check_batch_request::Item::Rows(proto::BatchRows {
                rows,
            })),
        },
    ];
    let mut stream = server
        .checks(Role::Employer)
        .await
        .check_batch(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut checked = 0;
    while let Some(message) = stream.message().await.unwrap() {
        if let Some(proto::check_batch_response::Item::Results(results)) = message.item {
            for result in results.results {
                let Some(proto::batch_result::Result::Check(check)) = result.result else {
                    panic!("row {} refused", result.row);
                };
                assert_eq!(
                    check.log_index,
                    db_index_of(&server.db_path(), &check.check_id)
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_verifies_offline_and_fails_when_one_byte_changes() {
    let server = TestServer::start().await;
    let answers = run_checks(&server, 153, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("check.tlog-proof");
    let check = &answers[2];
    let out = cli(
        &server,
        &["receipt", &check.check_id, "--out", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", said(&out));
    let key = log_key(&server);
    assert!(key.starts_with("safehire.localhost/audit-log+"), "{key}");

    let verified = cli(
        &server,
        &[
            "receipt",
            "verify",
            file.to_str().unwrap(),
            "--log-key",
            &key,
        ],
    );
    assert!(verified.status.success(), "{}", said(&verified));
    assert!(
        stdout(&verified).contains(&check.check_id),
        "{}",
        said(&verified)
    );

    let text = std::fs::read(&file).unwrap();
    let receipt = Receipt::parse(std::str::from_utf8(&text).unwrap()).unwrap();
    assert_eq!(receipt.index, check.log_index);
    let verifier = Verifier::parse(&key).unwrap();
    receipt.verify(&verifier).unwrap();
    // Every single changed byte makes the receipt fail.
    for at in 0..text.len() {
        let mut spoiled = text.clone();
        spoiled[at] ^= 0x01;
        let accepted = std::str::from_utf8(&spoiled)
            .ok()
            .and_then(|t| Receipt::parse(t).ok())
            .is_some_and(|r| r.verify(&verifier).is_ok());
        assert!(!accepted, "a receipt changed at byte {at} still verifies");
    }
    let mut spoiled = text.clone();
    let at = text.len() / 3;
    spoiled[at] ^= 0x01;
    std::fs::write(&file, &spoiled).unwrap();
    let refused = cli(
        &server,
        &[
            "receipt",
            "verify",
            file.to_str().unwrap(),
            "--log-key",
            &key,
        ],
    );
    assert_eq!(refused.status.code(), Some(8), "{}", said(&refused));

    // An entry that is not the employer's own: a prosecutor gets its receipt, the employer
    // the answer for an entry that is not there.
    let conn = rusqlite::Connection::open_with_flags(
        server.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let start: i64 = conn
        .query_row(
            "SELECT seq FROM audit_log WHERE action = 'server.start'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let not_theirs = start as u64 - 1;
    let by_index = server
        .audit(Role::Prosecutor)
        .await
        .inclusion_proof(proto::InclusionProofRequest {
            entry: Some(proto::inclusion_proof_request::Entry::Index(not_theirs)),
        })
        .await
        .unwrap()
        .into_inner();
    Receipt::parse(&by_index.receipt)
        .unwrap()
        .verify(&verifier)
        .unwrap();
    let refused = server
        .audit(Role::Employer)
        .await
        .inclusion_proof(proto::InclusionProofRequest {
            entry: Some(proto::inclusion_proof_request::Entry::Index(not_theirs)),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);
}

/// Copies a stopped server's data folder (database, master key, log key) to `to`.
fn copy_data(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for file in std::fs::read_dir(from).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
    }
}

/// What an operator with the database could do: keep only the entries `keep` accepts,
/// renumber and re-hash the chain, throw away the tree (the server rebuilds it) and every
/// checkpoint that no longer fits.
fn rewrite(db: &Path, keep: impl Fn(&NewEntry, u64) -> bool) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT seq, at, caller, cert_fingerprint, role, action, employer, subject, purpose,
                    scope, outcome, check_id, registry_version, detail FROM audit_log ORDER BY seq",
        )
        .unwrap();
    let kept: Vec<NewEntry> = stmt
        .query_map([], |r| {
            let subject: Option<Vec<u8>> = r.get(7)?;
            let seq: i64 = r.get(0)?;
            Ok((
                seq as u64,
                NewEntry {
                    at_micros: r.get(1)?,
                    caller: r.get(2)?,
                    cert_fingerprint: r.get(3)?,
                    role: r.get(4)?,
                    action: r.get(5)?,
                    employer: r.get(6)?,
                    subject: subject.map(|s| safehire::keys::SubjectKey(s.try_into().unwrap())),
                    purpose: r.get(8)?,
                    scope: r.get(9)?,
                    outcome: r.get(10)?,
                    check_id: r.get(11)?,
                    registry_version: r.get::<_, i64>(12)? as u64,
                    detail: r.get(13)?,
                },
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .filter(|(seq, e)| keep(e, *seq))
        .map(|(_, e)| e)
        .collect();
    drop(stmt);
    let mut chain = Chain::new(Head::EMPTY, Frontier::EMPTY);
    conn.execute_batch("BEGIN; DELETE FROM audit_log; DELETE FROM audit_tree;")
        .unwrap();
    for body in kept {
        let e = chain.append(body, |_, _| Ok::<_, ()>(())).unwrap();
        let b = &e.body;
        conn.execute(
            "INSERT INTO audit_log (seq, at, caller, cert_fingerprint, role, action, employer,
                 subject, purpose, scope, outcome, check_id, registry_version, detail, prev_hash,
                 hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            rusqlite::params![
                e.seq as i64,
                b.at_micros,
                b.caller,
                b.cert_fingerprint,
                b.role,
                b.action,
                b.employer,
                b.subject.map(|s| s.0.to_vec()),
                b.purpose,
                b.scope,
                b.outcome,
                b.check_id,
                b.registry_version as i64,
                b.detail,
                e.prev_hash.to_vec(),
                e.hash.to_vec(),
            ],
        )
        .unwrap();
    }
    let size = chain.head().seq as i64;
    conn.execute("DELETE FROM audit_checkpoints WHERE size > ?1", [size])
        .unwrap();
    conn.execute("DELETE FROM audit_cosignatures WHERE size > ?1", [size])
        .unwrap();
    conn.execute_batch("COMMIT").unwrap();
}

/// A live log with a unit's checks among other entries, witnessed once: the witness keeps a
/// checkpoint and the test keeps a copy of it in `checkpoint.txt`.
struct Witnessed {
    server: TestServer,
    state: tempfile::TempDir,
    checkpoint: std::path::PathBuf,
    size: u64,
}

async fn witnessed() -> Witnessed {
    let server = TestServer::start().await;
    run_checks(&server, 154, 12).await;
    for _ in 0..5 {
        server
            .audit(Role::Prosecutor)
            .await
            .head(proto::HeadRequest {})
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let state = tempfile::tempdir().unwrap();
    let key = log_key(&server);
    let out = cli(
        &server,
        &[
            "audit",
            "witness",
            "--state",
            state.path().to_str().unwrap(),
            "--log-key",
            &key,
        ],
    );
    assert!(out.status.success(), "{}", said(&out));
    let checkpoint = state.path().join("checkpoint");
    let size: u64 = std::fs::read_to_string(&checkpoint)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        size >= 17,
        "the witnessed checkpoint covers the checks ({size})"
    );
    // The server serves the checkpoint with the witness's cosignature.
    let served = server
        .audit(Role::Employer)
        .await
        .checkpoint(proto::CheckpointRequest { size })
        .await
        .unwrap()
        .into_inner();
    assert!(
        served.checkpoint.contains("— witness.localhost/safehire "),
        "{}",
        served.checkpoint
    );
    // A second run, after more entries, accepts the grown log.
    run_checks(&server, 155, 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let again = cli(
        &server,
        &[
            "audit",
            "witness",
            "--state",
            state.path().to_str().unwrap(),
        ],
    );
    assert!(again.status.success(), "{}", said(&again));
    let kept = std::fs::read_to_string(&checkpoint).unwrap();
    let size: u64 = kept.lines().nth(1).unwrap().parse().unwrap();
    let copy = state.path().join("checkpoint.txt");
    std::fs::write(&copy, &kept).unwrap();
    Witnessed {
        server,
        state,
        checkpoint: copy,
        size,
    }
}

/// Stops the server, lets `tamper` edit a copy of its data, and starts a server on the copy
/// (which rebuilds the tree the attacker threw away and signs the forged history).
async fn tampered(w: &mut Witnessed, tamper: impl FnOnce(&Path)) -> TestServer {
    w.server.stop().await;
    let copy = tempfile::tempdir().unwrap().keep();
    copy_data(&w.server.config.data_dir, &copy);
    tamper(&copy.join("safehire.db"));
    let certs = w.server.certs_dir();
    TestServer::start_with(move |c| {
        c.data_dir = copy;
        c.tls.dev_dir = certs;
    })
    .await
}

fn verify_against(server: &TestServer, checkpoint: &Path, key: &str) -> Output {
    cli(
        server,
        &[
            "audit",
            "verify",
            "--db",
            server.db_path().to_str().unwrap(),
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--log-key",
            key,
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_units_checks_and_rehashing_is_caught_by_the_witness_and_the_checkpoint() {
    let mut w = witnessed().await;
    let key = log_key(&w.server);
    let employer = w.server.org(Role::Employer).uscc;
    let forged = tampered(&mut w, |db| {
        rewrite(db, |e, _| {
            !(e.action == "CheckService.Check" && e.employer == employer)
        })
    })
    .await;
    // The forged log grows past the witnessed size again, as a busy server's would.
    for _ in 0..(w.size as usize + 5) {
        forged
            .audit(Role::Prosecutor)
            .await
            .head(proto::HeadRequest {})
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    // The chain alone is fooled: it was re-hashed.
    let chain = cli(
        &forged,
        &[
            "audit",
            "verify",
            "--db",
            forged.db_path().to_str().unwrap(),
        ],
    );
    assert!(chain.status.success(), "{}", said(&chain));
    // The checkpoint is not.
    let against = verify_against(&forged, &w.checkpoint, &key);
    assert_eq!(against.status.code(), Some(8), "{}", said(&against));
    assert!(stdout(&against).contains("REWRITTEN"), "{}", said(&against));
    // Nor is the witness.
    let witness = cli(
        &forged,
        &[
            "audit",
            "witness",
            "--state",
            w.state.path().to_str().unwrap(),
        ],
    );
    assert_eq!(witness.status.code(), Some(8), "{}", said(&witness));
    assert!(said(&witness).contains("rewritten"), "{}", said(&witness));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncating_the_newest_entries_is_caught_by_the_witness_and_the_checkpoint() {
    let mut w = witnessed().await;
    let key = log_key(&w.server);
    let cut = w.size - 4;
    let forged = tampered(&mut w, |db| rewrite(db, |_, seq| seq <= cut)).await;
    let against = verify_against(&forged, &w.checkpoint, &key);
    assert_eq!(against.status.code(), Some(8), "{}", said(&against));
    assert!(stdout(&against).contains("TRUNCATED"), "{}", said(&against));
    let witness = cli(
        &forged,
        &[
            "audit",
            "witness",
            "--state",
            w.state.path().to_str().unwrap(),
        ],
    );
    assert_eq!(witness.status.code(), Some(8), "{}", said(&witness));
    assert!(said(&witness).contains("truncated"), "{}", said(&witness));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_copy_verifies_against_the_witnessed_checkpoint() {
    let mut w = witnessed().await;
    let key = log_key(&w.server);
    let copy = tampered(&mut w, |_| {}).await;
    let against = verify_against(&copy, &w.checkpoint, &key);
    assert!(against.status.success(), "{}", said(&against));
    let consistency = cli(&copy, &["audit", "consistency", "--old", "3"]);
    assert!(consistency.status.success(), "{}", said(&consistency));
    assert!(!stdout(&consistency).trim().is_empty());
}

/// `audit verify --db` on a copy of a real server's database after `edit`.
async fn verify_edited_copy(edit: &str) -> (Output, Output, TestServer) {
    verify_edited_copy_after(0, edit).await
}

/// [`verify_edited_copy`] of a log grown first by `more` PRE_HIRE checks (each one entry).
async fn verify_edited_copy_after(more: usize, edit: &str) -> (Output, Output, TestServer) {
    let mut server = TestServer::start().await;
    let (doc, name) = people(156, 1).pop().unwrap();
    server
        .import(vec![common::record(
            1,
            "REF-SEALED-1",
            &doc,
            &name,
            proto::Category::Sexual,
        )])
        .await;
    let found = server
        .checks(Role::Employer)
        .await
        .check(pre_hire(&doc, &name))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.outcome, proto::Outcome::RecordFound as i32);
    let mut checks = server.checks(Role::Employer).await;
    for (doc, name) in people(157, more) {
        checks.check(pre_hire(&doc, &name)).await.unwrap();
    }
    server.stop().await;
    let copy = tempfile::tempdir().unwrap().keep();
    copy_data(&server.config.data_dir, &copy);
    let db = copy.join("safehire.db");
    let db_arg = db.to_str().unwrap().to_string();
    let before = cli(&server, &["audit", "verify", "--db", &db_arg]);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(edit)
        .unwrap();
    let after = cli(&server, &["audit", "verify", "--db", &db_arg]);
    (before, after, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_sealed_in_the_table_is_named_by_verify() {
    let (before, after, _server) =
        verify_edited_copy("UPDATE records SET sealed = 1 WHERE source_ref = 'REF-SEALED-1'").await;
    assert!(before.status.success(), "{}", said(&before));
    assert_eq!(after.status.code(), Some(8), "{}", said(&after));
    assert!(
        stdout(&after).contains("record REF-SEALED-1: its stored state is not the one the log"),
        "{}",
        said(&after)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisations_role_changed_in_the_table_is_named_by_verify() {
    let operator = safehire::org::Role::Operator.code();
    let employer = safehire::devset::dev_enrolments()
        .unwrap()
        .into_iter()
        .find(|e| e.role == Role::Employer)
        .unwrap()
        .uscc
        .as_str()
        .to_string();
    let (before, after, _server) = verify_edited_copy(&format!(
        "UPDATE organisations SET role = {operator} WHERE uscc = '{employer}'"
    ))
    .await;
    assert!(before.status.success(), "{}", said(&before));
    assert_eq!(after.status.code(), Some(8), "{}", said(&after));
    assert!(
        stdout(&after).contains(&format!("organisation {employer}: its stored state")),
        "{}",
        said(&after)
    );
    // Only the edited organisation is named.
    assert_eq!(
        stdout(&after).matches("NOT EXPLAINED").count(),
        1,
        "{}",
        said(&after)
    );
}

/// PRE_HIRE checks enough for a log of more than 64 entries: stored tree nodes at levels 4, 5
/// and 6 (`STORED_FROM_LEVEL` is 4; the levels below are hashed from the entries).
const PAST_64_ENTRIES: usize = 70;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_tree_node_changed_in_the_table_is_named_by_verify() {
    // Level 5, index 1: the node over entries 33 to 64, completed by entry 64.
    let (before, after, server) = verify_edited_copy_after(
        PAST_64_ENTRIES,
        "UPDATE audit_tree SET hash = zeroblob(32) WHERE level = 5 AND idx = 1",
    )
    .await;
    assert!(server.audit_rows().len() > 64);
    assert!(before.status.success(), "{}", said(&before));
    assert_eq!(after.status.code(), Some(8), "{}", said(&after));
    assert!(
        stdout(&after).contains("tree node (level 5, index 1) does not match entry 64"),
        "{}",
        said(&after)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_node_below_the_stored_levels_is_reported_by_verify() {
    let (before, after, _server) = verify_edited_copy_after(
        PAST_64_ENTRIES,
        "INSERT INTO audit_tree (level, idx, hash) VALUES (0, 3, zeroblob(32))",
    )
    .await;
    assert!(before.status.success(), "{}", said(&before));
    assert_eq!(after.status.code(), Some(8), "{}", said(&after));
    assert!(
        stdout(&after).contains("the tree holds 1 nodes below level 4, which are never stored"),
        "{}",
        said(&after)
    );
}
