//! The audit log: durable before the answer, chained, verifiable online and offline, and
//! tamper-evident down to the row.

use crate::common;

use common::{TestServer, check_request, people, record};
use safehire::org::Role;
use safehire::proto::{self, Category, Purpose};

#[tokio::test]
async fn editing_one_row_breaks_verification_at_that_row() {
    let mut server = TestServer::start().await;
    let p = people(31, 4);
    server
        .import(vec![record(1, "REC-1", &p[0].0, &p[0].1, Category::Sexual)])
        .await;
    for (id, name) in &p {
        server
            .checks(Role::Employer)
            .await
            .check(check_request(id, name, Purpose::PreHire))
            .await
            .unwrap();
    }
    let verified = server
        .audit(Role::Prosecutor)
        .await
        .verify(proto::VerifyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(verified.ok, "{}", verified.problem);
    server.stop().await;

    // Offline verification through the CLI on the intact file.
    let db = server.db_path();
    let intact = crate::common::process::command()
        .args(["audit", "verify", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stdout)
    );
    assert!(String::from_utf8_lossy(&intact.stdout).contains("audit chain OK"));

    // Someone turns a RECORD_FOUND into NO_RECORD in the file.
    let rows = server.audit_rows();
    let hit = rows.iter().find(|r| r.outcome == "RECORD_FOUND").unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE audit_log SET outcome = 'NO_RECORD' WHERE seq = ?1",
            [hit.seq],
        )
        .unwrap();
    }
    let broken = crate::common::process::command()
        .args(["audit", "verify", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(8));
    let report: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_broken_sequence"], hit.seq);

    // The server starts on the tampered file and reports the same through the API.
    server.restart().await;
    let verified = server
        .audit(Role::Operator)
        .await
        .verify(proto::VerifyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!verified.ok);
    assert_eq!(verified.first_broken_sequence, hit.seq as u64);
    // A range that ends before the edit still verifies.
    let before = server
        .audit(Role::Operator)
        .await
        .verify(proto::VerifyRequest {
            from_sequence: 1,
            to_sequence: hit.seq as u64 - 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(before.ok);
}

#[tokio::test]
async fn deleting_a_row_is_detected() {
    let mut server = TestServer::start().await;
    let p = people(32, 3);
    for (id, name) in &p {
        server
            .checks(Role::Employer)
            .await
            .check(check_request(id, name, Purpose::PreHire))
            .await
            .unwrap();
    }
    server.stop().await;
    let rows = server.audit_rows();
    let victim = rows[rows.len() - 2].seq;
    rusqlite::Connection::open(server.db_path())
        .unwrap()
        .execute("DELETE FROM audit_log WHERE seq = ?1", [victim])
        .unwrap();
    let (verification, _) = safehire::store::verify_file(&server.db_path(), 0, 0).unwrap();
    assert_eq!(verification.first_broken.map(|b| b.0), Some(victim as u64));
}

#[tokio::test]
async fn the_chain_continues_across_restarts_and_the_head_moves() {
    let mut server = TestServer::start().await;
    let p = people(33, 2);
    let mut audit = server.audit(Role::Prosecutor).await;
    let first = audit
        .head(proto::HeadRequest {})
        .await
        .unwrap()
        .into_inner();
    server
        .checks(Role::Employer)
        .await
        .check(check_request(&p[0].0, &p[0].1, Purpose::PreHire))
        .await
        .unwrap();
    let second = audit
        .head(proto::HeadRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(second.sequence > first.sequence);
    assert_eq!(second.hash.len(), 64);
    server.restart().await;
    server
        .checks(Role::Employer)
        .await
        .check(check_request(&p[1].0, &p[1].1, Purpose::PreHire))
        .await
        .unwrap();
    let verified = server
        .audit(Role::Prosecutor)
        .await
        .verify(proto::VerifyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(verified.ok, "{}", verified.problem);
    assert!(verified.entries_checked > second.sequence);
    // Prosecutors' own reads are audited too.
    let reads = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.action.starts_with("AuditService."))
        .count();
    assert_eq!(reads, 3);
    // The audit log is for prosecutors and operators only.
    let status = server
        .audit(Role::Employer)
        .await
        .head(proto::HeadRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn an_acknowledged_check_is_in_the_log_even_after_an_abrupt_stop() {
    let mut server = TestServer::start().await;
    let p = people(34, 20);
    let mut ids = Vec::new();
    for (id, name) in &p {
        let reply = server
            .checks(Role::Employer)
            .await
            .check(check_request(id, name, Purpose::PreHire))
            .await
            .unwrap();
        ids.push(reply.into_inner().check_id);
    }
    // Drop the server without a clean stop; what was acknowledged was already committed.
    server.server.take();
    let db = server.db_path();
    let conn = rusqlite::Connection::open(&db).unwrap();
    for id in &ids {
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM audit_log WHERE check_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "check {id} acknowledged but not in the log");
    }
}

#[tokio::test]
async fn the_server_refuses_an_open_key_file_or_another_key() {
    use std::os::unix::fs::PermissionsExt;
    let mut server = TestServer::start().await;
    server.stop().await;
    let key = server.config.master_key_path();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let clock = std::sync::Arc::new(server.clock.clone());
    let err = safehire::server::start(server.config.clone(), clock.clone())
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("readable by group or others"),
        "{err}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&key, [9u8; 32]).unwrap();
    let err = safehire::server::start(server.config.clone(), clock)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("another master key"), "{err}");
}
