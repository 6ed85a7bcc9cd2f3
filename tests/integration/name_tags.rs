//! Name tags bound to the document (issue 16, item 6): one name on two documents gives two
//! tags, and a database whose tags are in the old form (the keyed hash of the name alone) is
//! re-tagged at start from what it stores — checks still find the record under its name,
//! roster alerts still need document and name, and `audit verify` still explains every record.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::process::command;
use common::{TestServer, check_request, member, people, record, roster_upload};
use safehire::identity::PersonName;
use safehire::org::Role;
use safehire::proto::{self, Category, Outcome, Purpose};

/// The tag as every database stored it before the binding: a keyed hash of the name alone,
/// under the key derived from the master secret with this context.
fn old_tag(master: &[u8; 32], name: &str) -> [u8; 32] {
    let key = blake3::derive_key("safehire 2026-11-24 name tag v1", master);
    let name = PersonName::parse(name).unwrap();
    *blake3::keyed_hash(&key, name.as_str().as_bytes()).as_bytes()
}

fn record_tag(db: &Path, source_ref: &str) -> Vec<u8> {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT name_tag FROM records WHERE source_ref = ?1",
            [source_ref],
            |r| r.get(0),
        )
        .unwrap()
}

async fn outcome(server: &TestServer, doc: &str, name: &str) -> i32 {
    server
        .checks(Role::Employer)
        .await
        .check(check_request(doc, name, Purpose::PreHire))
        .await
        .unwrap()
        .into_inner()
        .outcome
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_unbound_name_tags_is_retagged_once_at_start() {
    let mut server = TestServer::start().await;
    let p = people(1616, 4);
    let (a, b, c, d) = (&p[0], &p[1], &p[2], &p[3]);
    // A and B: two documents under one name. C and D: staff, without a record yet.
    server
        .import(vec![
            record(1, "REF-A", &a.0, &a.1, Category::Sexual),
            record(2, "REF-B", &b.0, &a.1, Category::Sexual),
        ])
        .await;
    server
        .rosters(Role::Employer)
        .await
        .replace_roster(tokio_stream::iter(roster_upload(
            "",
            vec![
                member(1, &c.0, &c.1, "2024-09-01"),
                member(2, &d.0, &d.1, "2024-09-01"),
            ],
            10,
        )))
        .await
        .unwrap();
    let db = server.db_path();
    let (bound_a, bound_b) = (record_tag(&db, "REF-A"), record_tag(&db, "REF-B"));
    assert_ne!(bound_a, bound_b, "one name on two documents shares no tag");

    // The database as it stood before the binding, on the stopped server.
    server.stop().await;
    let master: [u8; 32] = std::fs::read(server.config.master_key_path())
        .unwrap()
        .try_into()
        .unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        for (source_ref, name) in [("REF-A", &a.1), ("REF-B", &a.1)] {
            conn.execute(
                "UPDATE records SET name_tag = ?1 WHERE source_ref = ?2",
                rusqlite::params![old_tag(&master, name).as_slice(), source_ref],
            )
            .unwrap();
        }
        for (staff_ref, name) in [("S00001", &c.1), ("S00002", &d.1)] {
            let changed = conn
                .execute(
                    "UPDATE roster_members SET name_tag = ?1 WHERE staff_ref = ?2",
                    rusqlite::params![old_tag(&master, name).as_slice(), staff_ref],
                )
                .unwrap();
            assert_eq!(changed, 1, "{staff_ref}");
        }
        conn.execute("DELETE FROM meta WHERE key = 'name_tags_bound'", [])
            .unwrap();
    }
    assert_eq!(
        record_tag(&db, "REF-A"),
        record_tag(&db, "REF-B"),
        "the old form links the two"
    );

    server.restart().await;
    assert_eq!(record_tag(&db, "REF-A"), bound_a);
    assert_eq!(record_tag(&db, "REF-B"), bound_b);
    let logged = |server: &TestServer| {
        server
            .audit_rows()
            .iter()
            .filter(|r| r.action == "server.name_tags_bound")
            .count()
    };
    assert_eq!(logged(&server), 2, "one entry per re-tagged record");

    let found = Outcome::RecordFound as i32;
    assert_eq!(outcome(&server, &a.0, &a.1).await, found);
    assert_eq!(outcome(&server, &b.0, &a.1).await, found);
    assert_ne!(
        outcome(&server, &a.0, &c.1).await,
        found,
        "the name still counts"
    );

    // Alerts still need document and name: C's record under C's name alerts, D's document
    // under another name does not.
    server
        .import(vec![
            record(1, "REF-C", &c.0, &c.1, Category::Sexual),
            record(2, "REF-D", &d.0, &a.1, Category::Sexual),
        ])
        .await;
    let alerts = server
        .alerts(Role::Employer)
        .await
        .list_alerts(proto::ListAlertsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .alerts;
    let refs: Vec<&str> = alerts.iter().map(|a| a.staff_ref.as_str()).collect();
    assert_eq!(refs, ["S00001"]);

    // Once: a second start leaves the tags alone.
    server.restart().await;
    assert_eq!(logged(&server), 2);
    assert_eq!(outcome(&server, &c.0, &c.1).await, found);
    server.stop().await;

    let verify = command()
        .args(["audit", "verify", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", said(&verify));
    let stored = std::fs::read(&db).unwrap();
    for (_, name) in &p {
        let name = name.as_bytes();
        assert!(!stored.windows(name.len()).any(|w| w == name));
    }
}
