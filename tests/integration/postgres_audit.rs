//! The PostgreSQL audit log against a real PostgreSQL 15 that the tests start
//! (common/postgres.rs): two nodes appending at once still give one gap-free chain, the same
//! entries give SQLite's chain hashes, roots and proofs, and proofs verify with the project's
//! verifier. Entries carry synthetic subjects (keyed hashes of generated documents) only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safehire::audit::merkle::{self, Frontier};
use safehire::audit::{Entry, NewEntry, leaf_of};
use safehire::identity::{DocType, Document};
use safehire::keys::Keys;
use safehire::store::postgres::writer::PgWriter;
use safehire::store::postgres::{Pg, PgError, PgOptions, audit};
use safehire::store::{CheckRecord, Store, units};
use safehire::synth::Generator;

use crate::common::postgres::{PgCluster, postgres_ready};
use crate::common::start_time;

/// A migrated database of its own and the URL for more pools ("nodes") on it.
pub(crate) async fn fresh() -> (Pg, String) {
    let db = PgCluster::shared().database().await;
    let pg = Pg::new(&PgOptions::new(db.url())).expect("pool");
    pg.migrate().await.expect("migrate");
    (pg, db.url())
}

/// `n` check entries as the check service writes them, for generated people.
pub(crate) fn synthetic_bodies(seed: u64, n: usize) -> Vec<NewEntry> {
    let today = start_time().date();
    let mut generator = Generator::new(seed, today);
    let keys = Keys::from_master(&[0x5a; 32]);
    let employer = generator.uscc();
    let start = start_time().unix_timestamp() * 1_000_000;
    (0..n)
        .map(|i| {
            let person = generator.person(i as u64);
            let doc_type = DocType::from_slug(person.doc_type).expect("a generated type");
            let document =
                Document::parse(doc_type, &person.doc_number, today).expect("a generated number");
            let found = i % 7 == 0;
            NewEntry {
                at_micros: start + i as i64,
                caller: employer.clone(),
                cert_fingerprint: hex::encode([seed as u8; 32]),
                role: "EMPLOYER".into(),
                action: "CheckService.Check".into(),
                employer: employer.clone(),
                subject: Some(keys.subject_key(&document)),
                purpose: "PRE_HIRE".into(),
                scope: "FULL".into(),
                outcome: if found { "RECORD_FOUND" } else { "NO_RECORD" }.into(),
                check_id: uuid::Uuid::now_v7().to_string(),
                registry_version: 1,
                detail: format!("seed={seed} n={i}"),
            }
        })
        .collect()
}

/// Every entry of the log, read back one by one.
pub(crate) async fn read_back(pg: &Pg, size: u64) -> Vec<Entry> {
    let mut entries = Vec::new();
    for seq in 1..=size {
        entries.push(
            audit::entry(pg, seq)
                .await
                .expect("read")
                .unwrap_or_else(|| panic!("entry {seq} is missing")),
        );
    }
    assert_eq!(audit::entry(pg, size + 1).await.expect("read"), None);
    entries
}

/// The root of the tree over `entries`, from `audit::merkle` alone.
pub(crate) fn merkle_root(entries: &[Entry]) -> merkle::Hash {
    let mut tree = Frontier::EMPTY;
    for entry in entries {
        tree.push(leaf_of(entry), |_, _| Ok::<_, ()>(()))
            .expect("no storage");
    }
    tree.root()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_appending_at_once_give_one_gap_free_chain() {
    if !postgres_ready() {
        return;
    }
    let (first, url) = fresh().await;
    let nodes = [
        Arc::new(first),
        Arc::new(Pg::new(&PgOptions::new(url)).expect("second node's pool")),
    ];
    let bodies = Arc::new(synthetic_bodies(20, 64));
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let node = Arc::clone(&nodes[(task % 2) as usize]);
        let bodies = Arc::clone(&bodies);
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(task);
            let mut appended = Vec::new();
            for group in 0..50 {
                let size = rng.random_range(1..=20);
                let batch: Vec<NewEntry> = (0..size)
                    .map(|k| NewEntry {
                        detail: format!("task={task} group={group} k={k}"),
                        ..bodies[rng.random_range(0..bodies.len())].clone()
                    })
                    .collect();
                let entries = audit::append_group(&node, batch.clone())
                    .await
                    .expect("append a group");
                let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
                let first = seqs[0];
                assert_eq!(seqs, (first..first + size).collect::<Vec<_>>());
                assert_eq!(
                    entries.iter().map(|e| &e.body).collect::<Vec<_>>(),
                    batch.iter().collect::<Vec<_>>()
                );
                appended.extend(entries);
            }
            appended
        }));
    }
    let mut appended = Vec::new();
    for task in tasks {
        appended.extend(task.await.expect("task"));
    }
    appended.sort_by_key(|e| e.seq);
    let n = appended.len() as u64;
    assert_eq!(
        appended.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "sequence numbers must be 1..=n, each once"
    );

    let pg = &nodes[1];
    let log = read_back(pg, n).await;
    assert_eq!(
        log, appended,
        "what each node was told is what the log holds"
    );
    let head = audit::head(pg).await.expect("head");
    assert_eq!(
        (head.seq, head.hash),
        (n, appended[appended.len() - 1].hash)
    );
    let verification = audit::verify(pg, 0, 0).await.expect("verify");
    assert!(verification.ok(), "{:?}", verification.first_broken);
    assert_eq!(verification.entries_checked, n);
    let root = merkle_root(&log);
    assert_eq!(verification.root, Some(root));
    assert_eq!(audit::root(pg, n).await.expect("root"), root);
    assert_eq!(audit::root(&nodes[0], n).await.expect("root"), root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_entries_give_sqlite_s_hashes_roots_and_proofs() {
    if !postgres_ready() {
        return;
    }
    let (pg, url) = fresh().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        Store::open(&dir.path().join("safehire.db"), "pg-audit-comparison").expect("open SQLite");
    let bodies = synthetic_bodies(21, 300);
    let mut rng = StdRng::seed_from_u64(21);
    let mut sqlite = Vec::new();
    let mut rest = bodies.as_slice();
    while !rest.is_empty() {
        let (group, after) = rest.split_at(rng.random_range(1..=20usize).min(rest.len()));
        rest = after;
        let mut expected = Vec::new();
        for body in group {
            expected.push(store.append_audit(body.clone()).await.expect("SQLite"));
        }
        let entries = audit::append_group(&pg, group.to_vec())
            .await
            .expect("PostgreSQL");
        assert_eq!(entries, expected, "the same chain hashes");
        sqlite.extend(expected);
        let (size, root) = store.log_root().await.expect("SQLite root");
        assert_eq!(
            audit::root(&pg, size).await.expect("root"),
            root,
            "size {size}"
        );
        assert_eq!(
            audit::head(&pg).await.expect("head"),
            store.audit_head().await.expect("SQLite head")
        );
    }
    let n = sqlite.len() as u64;
    assert_eq!(read_back(&pg, n).await, sqlite);
    for size in 0..=n {
        let prefix = &sqlite[..size as usize];
        assert_eq!(
            audit::root(&pg, size).await.expect("root"),
            merkle_root(prefix),
            "size {size}"
        );
    }
    for (index, size) in [(0, 1), (5, 16), (15, 16), (16, 17), (100, 257), (299, 300)] {
        assert_eq!(
            audit::inclusion(&pg, index, size).await.expect("inclusion"),
            store.inclusion_proof(index, size).await.expect("SQLite"),
            "inclusion of {index} in {size}"
        );
    }
    for (old, new) in [(1, 2), (7, 16), (16, 33), (33, 300), (255, 256), (300, 300)] {
        assert_eq!(
            audit::consistency(&pg, old, new)
                .await
                .expect("consistency"),
            store.consistency_proof(old, new).await.expect("SQLite"),
            "consistency {old} to {new}"
        );
    }
    for (from, to) in [(0, 0), (10, 40), (290, 0)] {
        assert_eq!(
            audit::verify(&pg, from, to).await.expect("verify"),
            store.verify_audit(from, to).await.expect("SQLite"),
            "verify {from}..{to}"
        );
    }

    for entry in [&sqlite[0], &sqlite[150], &sqlite[299]] {
        let found = audit::check_entry(&pg, &entry.body.check_id)
            .await
            .expect("check entry");
        assert_eq!(found.as_ref(), Some(entry));
        assert_eq!(
            found,
            store
                .check_entry(entry.body.check_id.clone())
                .await
                .expect("SQLite")
        );
    }
    for unknown in ["", "no-such-check"] {
        assert_eq!(audit::check_entry(&pg, unknown).await.expect("check"), None);
        assert_eq!(
            store.check_entry(unknown.into()).await.expect("SQLite"),
            None
        );
    }

    // Checkpoints: the first note of a size is kept, a second ignored, on both.
    for (size, at) in [(16u64, 1i64), (100, 2), (300, 3), (100, 4)] {
        let note = format!("checkpoint of {size} signed at {at}\n");
        audit::save_checkpoint(&pg, size, at, &note)
            .await
            .expect("save");
        store
            .save_checkpoint(size, at, note)
            .await
            .expect("SQLite save");
    }
    // Witness names whose byte order differs from a locale's (case, accents, punctuation),
    // one cosigning twice: the second line replaces the first. Each cosignature is audited.
    let witnesses = [
        "witness.example/zeta",
        "Witness.example/Alpha",
        "witness.example/Ärger",
        "_w.example",
        "witness.example/alpha",
        "witness.example/zeta",
    ];
    let mut writer = PgWriter::start(Arc::new(Pg::new(&PgOptions::new(url)).expect("pool")));
    let cosigning = synthetic_bodies(24, witnesses.len());
    for (k, (witness, body)) in witnesses.iter().zip(cosigning).enumerate() {
        let line = format!("— {witness} line{k}\n");
        let entry = audit::add_cosignature(
            &writer,
            100,
            witness.to_string(),
            line.clone(),
            body.clone(),
        )
        .await
        .expect("cosign");
        store
            .add_cosignature(100, witness.to_string(), line, body)
            .await
            .expect("SQLite cosign");
        assert_eq!(
            Some(entry),
            store.audit_entry(n + k as u64 + 1).await.expect("SQLite")
        );
    }
    // A BTreeSet of &str orders bytewise, as SQLite's BINARY and PostgreSQL's "C" do.
    let by_bytes: Vec<&str> = witnesses
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let cosigned = audit::checkpoint(&pg, 100)
        .await
        .expect("checkpoint")
        .expect("kept");
    assert_eq!(cosigned.note, "checkpoint of 100 signed at 2\n");
    let order: Vec<&str> = cosigned
        .cosignatures
        .iter()
        .map(|line| line.split(' ').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(order, by_bytes, "cosignatures in witness byte order");
    assert!(
        cosigned
            .cosignatures
            .contains(&"— witness.example/zeta line5\n".to_owned())
    );
    for size in [0, 16, 17, 100, 300] {
        assert_eq!(
            audit::checkpoint(&pg, size).await.expect("checkpoint"),
            store.checkpoint(size).await.expect("SQLite"),
            "checkpoint {size}"
        );
    }
    for index in [0, 15, 16, 99, 100, 150, 299, 300, 10_000] {
        assert_eq!(
            audit::checkpoint_covering(&pg, index)
                .await
                .expect("covering"),
            store.checkpoint_covering(index).await.expect("SQLite"),
            "checkpoint covering {index}"
        );
    }
    assert_eq!(
        audit::log_root(&pg).await.expect("log root"),
        store.log_root().await.expect("SQLite log root")
    );
    assert_eq!(
        audit::verify(&pg, 0, 0).await.expect("verify"),
        store.verify_audit(0, 0).await.expect("SQLite")
    );

    // The stored tree: sound on both, then the same two edits on both, named alike.
    assert_eq!(audit::check_stored(&pg).await.expect("check"), None);
    assert_eq!(store.check_audit_tree().await.expect("SQLite"), None);
    let sqlite_db = rusqlite::Connection::open(dir.path().join("safehire.db")).expect("SQLite");
    let client = pg.client().await.expect("client");
    let original: Vec<u8> = client
        .query_one(
            "SELECT hash FROM audit_tree WHERE level = 5 AND idx = 2",
            &[],
        )
        .await
        .expect("a level-5 node")
        .get(0);
    let zeros = vec![0u8; 32];
    let edits: [(&str, &str, &[u8]); 2] = [
        (
            "UPDATE audit_tree SET hash = $1 WHERE level = 5 AND idx = 2",
            "UPDATE audit_tree SET hash = ?1 WHERE level = 5 AND idx = 2",
            &zeros,
        ),
        (
            "INSERT INTO audit_tree (level, idx, hash) VALUES (0, 0, $1)",
            "INSERT INTO audit_tree (level, idx, hash) VALUES (0, 0, ?1)",
            &zeros,
        ),
    ];
    let expected = [
        "tree node (level 5, index 2) does not match entry 96",
        "the tree holds 1 nodes below level 4, which are never stored",
    ];
    for ((on_pg, on_sqlite, value), expected) in edits.into_iter().zip(expected) {
        client.execute(on_pg, &[&value]).await.expect("edit");
        sqlite_db.execute(on_sqlite, [value]).expect("SQLite edit");
        let found = audit::check_stored(&pg).await.expect("check");
        assert_eq!(found.as_deref(), Some(expected));
        assert_eq!(found, store.check_audit_tree().await.expect("SQLite"));
        client
            .execute(
                "UPDATE audit_tree SET hash = $1 WHERE level = 5 AND idx = 2",
                &[&original],
            )
            .await
            .expect("restore");
        sqlite_db
            .execute(
                "UPDATE audit_tree SET hash = ?1 WHERE level = 5 AND idx = 2",
                [&original],
            )
            .expect("SQLite restore");
    }
    writer.close().await;
    store.close().await;
}

/// Every stored node, in key order.
async fn stored_tree(pg: &Pg) -> Vec<(i16, i64, Vec<u8>)> {
    let client = pg.client().await.expect("client");
    client
        .query(
            "SELECT level, idx, hash FROM audit_tree ORDER BY level, idx",
            &[],
        )
        .await
        .expect("read the tree")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_rebuilds_lost_nodes_once_however_many_nodes_start() {
    if !postgres_ready() {
        return;
    }
    let (pg, url) = fresh().await;
    let mut log = Vec::new();
    for group in synthetic_bodies(25, 700).chunks(37) {
        log.extend(
            audit::append_group(&pg, group.to_vec())
                .await
                .expect("append"),
        );
    }
    assert_eq!(audit::catch_up(&pg).await.expect("nothing to do"), 0);
    let tree = stored_tree(&pg).await;
    let log_root = audit::log_root(&pg).await.expect("log root");
    assert_eq!(log_root, (700, merkle_root(&log)));

    // The nodes over entries past 200 are lost: every node whose leaves reach beyond it.
    let client = pg.client().await.expect("client");
    let lost = client
        .execute(
            "DELETE FROM audit_tree WHERE (idx + 1) * (1::bigint << level) > 200",
            &[],
        )
        .await
        .expect("lose nodes");
    assert!(lost > 0);
    assert_eq!(
        audit::check_stored(&pg).await.expect("check").as_deref(),
        Some("tree node (level 4, index 12) for entry 208 is missing")
    );

    // Two nodes start at once: one rebuilds, the other finds nothing left to do.
    let other = Pg::new(&PgOptions::new(url)).expect("second node's pool");
    let (first, second) = tokio::join!(audit::catch_up(&pg), audit::catch_up(&other));
    let mut added = [first.expect("catch up"), second.expect("catch up")];
    added.sort_unstable();
    assert_eq!(added, [0, lost], "the lost nodes, stored once");
    assert_eq!(
        stored_tree(&pg).await,
        tree,
        "the rebuilt tree is the one appends built"
    );
    assert_eq!(audit::check_stored(&other).await.expect("check"), None);
    assert_eq!(audit::log_root(&other).await.expect("log root"), log_root);

    // Appending goes on after it.
    log.extend(
        audit::append_group(&other, synthetic_bodies(26, 30))
            .await
            .expect("append"),
    );
    let verification = audit::verify(&pg, 0, 0).await.expect("verify");
    assert!(verification.ok(), "{:?}", verification.first_broken);
    assert_eq!(verification.root, Some(merkle_root(&log)));
    assert_eq!(audit::check_stored(&pg).await.expect("check"), None);

    // A log cut short under its tree is refused, not extended.
    client
        .execute("DELETE FROM audit_log WHERE seq > 600", &[])
        .await
        .expect("cut the log");
    let refused = audit::catch_up(&pg).await;
    assert!(
        matches!(
            refused,
            Err(PgError::TreeAhead {
                tree: 720,
                log: 600
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_from_postgres_verify_with_the_project_s_verifier() {
    if !postgres_ready() {
        return;
    }
    let (pg, _) = fresh().await;
    let bodies = synthetic_bodies(22, 700);
    let mut log = Vec::new();
    for group in bodies.chunks(37) {
        log.extend(
            audit::append_group(&pg, group.to_vec())
                .await
                .expect("append"),
        );
    }
    let n = log.len() as u64;
    let mut rng = StdRng::seed_from_u64(22);
    for _ in 0..60 {
        let size = rng.random_range(1..=n);
        let index = rng.random_range(0..size);
        let root = audit::root(&pg, size).await.expect("root");
        let proof = audit::inclusion(&pg, index, size).await.expect("inclusion");
        let leaf = leaf_of(&log[index as usize]);
        merkle::verify_inclusion(&leaf, index, size, &proof, &root)
            .unwrap_or_else(|e| panic!("inclusion of {index} in {size}: {e}"));
        let other = leaf_of(&log[((index + 1) % n) as usize]);
        assert!(merkle::verify_inclusion(&other, index, size, &proof, &root).is_err());

        let old = rng.random_range(1..=size);
        let old_root = audit::root(&pg, old).await.expect("old root");
        let proof = audit::consistency(&pg, old, size)
            .await
            .expect("consistency");
        merkle::verify_consistency(old, size, &old_root, &root, &proof)
            .unwrap_or_else(|e| panic!("consistency {old} to {size}: {e}"));
        if old < size {
            let forged = merkle::node_hash(&old_root, &old_root);
            assert!(merkle::verify_consistency(old, size, &forged, &root, &proof).is_err());
        }
    }
    assert!(matches!(
        audit::root(&pg, n + 1).await,
        Err(PgError::TreeIncomplete(..))
    ));
}

#[tokio::test]
async fn an_edited_entry_is_named_and_an_edited_head_is_refused() {
    if !postgres_ready() {
        return;
    }
    let (pg, _) = fresh().await;
    audit::append_group(&pg, synthetic_bodies(23, 40))
        .await
        .expect("append");
    let client = pg.client().await.expect("client");
    client
        .execute(
            "UPDATE audit_log SET outcome = 'NO_RECORD' WHERE seq = 8",
            &[],
        )
        .await
        .expect("tamper");
    let verification = audit::verify(&pg, 0, 0).await.expect("verify");
    assert_eq!(verification.first_broken.map(|(seq, _)| seq), Some(8));
    assert_eq!(verification.entries_checked, 7);

    client
        .execute("UPDATE audit_head SET tree_size = 39", &[])
        .await
        .expect("tamper with the head");
    let refused = audit::append_group(&pg, synthetic_bodies(23, 1)).await;
    assert!(
        matches!(refused, Err(PgError::HeadCorrupt(_))),
        "{refused:?}"
    );
    assert_eq!(audit::head(&pg).await.expect("head").seq, 40);
}

#[tokio::test]
async fn recorded_checks_note_the_latest_check_of_each_roster_member_as_sqlite_does() {
    if !postgres_ready() {
        return;
    }
    let (pg, _) = fresh().await;
    let bodies = synthetic_bodies(27, 4);
    let subject = |k: usize| bodies[k].subject.expect("a subject").0.to_vec();
    let employer = bodies[0].employer.clone();
    let start = bodies[0].at_micros;
    let client = pg.client().await.expect("client");
    let insert = "INSERT INTO roster_members (employer, subject, name_tag, staff_ref, hire_date,
                      declared_at, updated_at, last_checked_at)
                  VALUES ($1, $2, '\\x00', 'S', '2024-01-01', 0, 0, $3)";
    let later = start + 1_000_000;
    for (who, k, last) in [
        (employer.as_str(), 0, None),
        (employer.as_str(), 1, Some(later)),
        ("another employer", 0, None),
    ] {
        client
            .execute(insert, &[&who, &subject(k), &last])
            .await
            .expect("a roster member");
    }
    let at = |k: usize, micros: i64| NewEntry {
        at_micros: micros,
        ..bodies[k].clone()
    };
    let group = vec![
        at(0, start + 10),
        at(1, start + 5),
        at(0, start + 30),
        NewEntry {
            check_id: String::new(),
            ..at(0, start + 50)
        },
        at(0, start + 20),
        at(2, start + 40),
    ];
    let pg = Arc::new(pg);
    let mut writer = PgWriter::start(Arc::clone(&pg));
    for (k, entry) in group.into_iter().enumerate() {
        // The fourth entry is not a check (it names no check id); the second names a
        // mismatch, whose review entry repeats the check id and must not count as a check.
        record_check(&writer, entry, k == 1).await;
    }
    writer.close().await;
    let last_checks: BTreeMap<(String, Vec<u8>), Option<i64>> = client
        .query(
            "SELECT employer, subject, last_checked_at FROM roster_members",
            &[],
        )
        .await
        .expect("read the roster")
        .iter()
        .map(|row| ((row.get(0), row.get(1)), row.get(2)))
        .collect();
    let expected = BTreeMap::from([
        ((employer.clone(), subject(0)), Some(start + 30)),
        ((employer.clone(), subject(1)), Some(later)),
        (("another employer".to_owned(), subject(0)), None),
    ]);
    assert_eq!(last_checks, expected);
}

#[tokio::test]
async fn a_dispute_runs_the_same_rule_on_postgresql_as_on_sqlite() {
    if !postgres_ready() {
        return;
    }
    let (pg, _) = fresh().await;
    let pg = Arc::new(pg);
    let mut writer = PgWriter::start(Arc::clone(&pg));
    // Entry 0 answered RECORD_FOUND, entry 1 NO_RECORD (see `synthetic_bodies`).
    let bodies = synthetic_bodies(31, 2);
    for entry in bodies.clone() {
        record_check(&writer, entry, false).await;
    }
    let opened = dispute(&writer, &bodies[0], &bodies[0].check_id)
        .await
        .expect("a RECORD_FOUND check can be disputed")
        .expect("the check exists");
    assert_eq!(opened.check_id, bodies[0].check_id);
    assert_eq!(opened.employer, bodies[0].employer);
    assert_eq!(
        opened.reason,
        Some(safehire::roster::ReviewReason::Disputed)
    );
    let refused = dispute(&writer, &bodies[1], &bodies[1].check_id).await;
    assert_eq!(refused, Err("NO_RECORD".to_owned()));
    let unknown = dispute(&writer, &bodies[0], "no-such-check").await;
    assert_eq!(unknown, Ok(None));
    writer.close().await;
    let opening = audit::entry(&pg, 3).await.expect("read").expect("entry 3");
    assert_eq!(opening.body.action, units::OPEN_ACTION);
    assert_eq!(opening.body.outcome, "DISPUTED");
    assert_eq!(opening.body.detail, format!("review={}", opened.id));
    assert_eq!(audit::head(&pg).await.expect("head").seq, 3);
}

/// `body`'s employer disputes its check `check_id` through the PostgreSQL writer.
async fn dispute(
    writer: &PgWriter,
    body: &NewEntry,
    check_id: &str,
) -> Result<Option<safehire::store::ReviewRow>, String> {
    let (employer, check_id, audit) = (body.employer.clone(), check_id.to_owned(), body.clone());
    let at = body.at_micros + 1_000;
    writer
        .run(move |tx| {
            let (employer, check_id, audit) = (employer.clone(), check_id.clone(), audit.clone());
            Box::pin(async move { units::dispute_check(tx, employer, check_id, at, audit).await })
        })
        .await
        .expect("dispute")
}

/// Records a check through the PostgreSQL writer with the unit SQLite runs too.
async fn record_check(writer: &PgWriter, entry: NewEntry, name_mismatch: bool) {
    let check = CheckRecord {
        entry,
        name_mismatch,
    };
    writer
        .run(move |tx| {
            let check = check.clone();
            Box::pin(async move { units::record_check(tx, check).await })
        })
        .await
        .expect("record the check");
}
