//! `safehire backup` while the server is under load, and a restore: the copy's chain verifies,
//! it holds every check acknowledged before the backup began, and a server started on it (with
//! the same master key) answers from the restored registry.

use crate::common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::process::{channel, serve_unthrottled};
use common::{check_request, people, record};
use safehire::proto::{self, Category, Purpose};

fn safehire(dir: &Path, args: &[&str]) -> std::process::Output {
    crate::common::process::command()
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_to_a_verifiable_serving_database() {
    let live = tempfile::tempdir().unwrap();
    let (server, url) = serve_unthrottled(live.path());
    let registered = people(81, 50);
    proto::registry_service_client::RegistryServiceClient::new(
        channel(live.path(), &url, "registrar").await,
    )
    .import(tokio_stream::iter(vec![proto::ImportChunk {
        records: registered
            .iter()
            .enumerate()
            .map(|(i, (d, n))| record(i as u64 + 1, &format!("B{i}"), d, n, Category::Sexual))
            .collect(),
    }]))
    .await
    .unwrap();

    // Four clients checking as fast as they can until the backup is done.
    let employer = channel(live.path(), &url, "employer").await;
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for lane in 0..4u64 {
        let (channel, acknowledged, stop) = (
            employer.clone(),
            Arc::clone(&acknowledged),
            Arc::clone(&stop),
        );
        load.push(tokio::spawn(async move {
            let mut client = proto::check_service_client::CheckServiceClient::new(channel);
            let applicants = people(90 + lane, 4_000);
            for (doc, name) in applicants.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let reply = client
                    .check(check_request(doc, name, Purpose::PreHire))
                    .await
                    .expect("checks succeed during the backup");
                acknowledged
                    .lock()
                    .unwrap()
                    .push(reply.into_inner().check_id);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    assert!(!before.is_empty(), "the load is running");
    let out = live.path().join("backup.db");
    let dir = live.path().to_path_buf();
    let backup = tokio::task::spawn_blocking(move || {
        safehire(&dir, &["backup", "backup.db", "--db", "data/safehire.db"])
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    for lane in load {
        lane.await.unwrap();
    }
    let during = acknowledged.lock().unwrap().len() - before.len();
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let said = String::from_utf8_lossy(&backup.stdout);
    assert!(said.contains("audit chain OK"), "{said}");
    assert!(
        !live.path().join("backup.db.partial").exists(),
        "no partial file is left"
    );
    let again = safehire(live.path(), &["backup", "backup.db"]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a backup never replaces a file"
    );
    drop(server);
    eprintln!(
        "{} checks acknowledged before the backup, {during} while it ran",
        before.len()
    );

    // Restore: the copy as the database of a fresh folder, with the same master key.
    let restored = tempfile::tempdir().unwrap();
    let data = restored.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(&out, data.join("safehire.db")).unwrap();
    std::fs::copy(live.path().join("data/master.key"), data.join("master.key")).unwrap();
    let verified = safehire(
        restored.path(),
        &["audit", "verify", "--db", "data/safehire.db"],
    );
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let conn = rusqlite::Connection::open_with_flags(
        data.join("safehire.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut lookup = conn
        .prepare("SELECT COUNT(*) FROM audit_log WHERE check_id = ?1")
        .unwrap();
    for check_id in &before {
        let found: i64 = lookup.query_row([check_id], |r| r.get(0)).unwrap();
        assert_eq!(found, 1, "check {check_id}, acknowledged before the backup");
    }
    drop(lookup);
    drop(conn);

    let (_server, url) = serve_unthrottled(restored.path());
    let (doc, name) = &registered[7];
    let answer = proto::check_service_client::CheckServiceClient::new(
        channel(restored.path(), &url, "employer").await,
    )
    .check(check_request(doc, name, Purpose::PreHire))
    .await
    .unwrap()
    .into_inner();
    assert_eq!(
        answer.outcome,
        proto::Outcome::RecordFound as i32,
        "the restored server answers from the restored registry"
    );
}
