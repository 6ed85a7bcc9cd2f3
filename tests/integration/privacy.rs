//! No plaintext identity anywhere: after a scenario with known people, the database, its WAL
//! and every captured log line (human and JSON) are searched for their ID numbers and names in every form sent.

use crate::common;

use common::{TestServer, check_request, people, record};
use safehire::org::Role;
use safehire::proto::{Category, Purpose};

fn full_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap(),
            other => other,
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn no_id_number_or_name_reaches_the_database_the_wal_or_the_logs() {
    let logs = common::capture_logs();
    let mut server = TestServer::start().await;
    let mut p = people(41, 8);
    // Make sure an interpunct name is among them.
    let mut generator = safehire::synth::Generator::new(41, common::start_time().date());
    let interpunct = std::iter::repeat_with(|| generator.name())
        .find(|n| n.contains('·'))
        .unwrap();
    p[7].1 = interpunct;

    server
        .import(vec![
            record(1, "REC-P1", &p[0].0, &p[0].1, Category::Sexual),
            record(2, "REC-P2", &p[1].0, &p[1].1, Category::Abuse),
            record(3, "REC-P7", &p[7].0, &p[7].1, Category::Sexual),
        ])
        .await;
    let mut checks = server.checks(Role::Employer).await;
    for (id, name) in &p {
        checks
            .check(check_request(id, name, Purpose::PreHire))
            .await
            .unwrap();
        // Refused forms of the same people: a full-width number without consent, a wrong check digit.
        let mut no_consent = check_request(&full_width(id), name, Purpose::PreHire);
        no_consent.consent_ref.clear();
        assert!(checks.check(no_consent).await.is_err());
        let bad = format!("{}{}", &id[..17], if id.ends_with('1') { '2' } else { '1' });
        let refused = checks
            .check(check_request(&bad, name, Purpose::PreHire))
            .await
            .unwrap_err();
        assert!(
            !refused.message().contains(&id[..17]),
            "error message leaks the number"
        );
        assert!(
            !refused.message().contains(name.as_str()),
            "error message leaks the name"
        );
    }
    // A wrong-name check (NEEDS_REVIEW) mixes two people's data.
    checks
        .check(check_request(&p[0].0, &p[3].1, Purpose::PreHire))
        .await
        .unwrap();
    // The same people as a roster (one of them twice, one with a bad number), re-checked,
    // alerted on by a new record, and the alert disputed.
    let mut members: Vec<_> = p
        .iter()
        .enumerate()
        .map(|(i, (id, name))| common::member(i as u64 + 1, id, name, "2023-09-01"))
        .collect();
    members.push(common::member(9, &p[2].0, &p[2].1, "2023-09-01"));
    members.push(common::member(
        10,
        &format!("{}0", &p[4].0[..17]),
        &p[4].1,
        "2023-09-01",
    ));
    let mut rosters = server.rosters(Role::Employer).await;
    let summary = rosters
        .replace_roster(tokio_stream::iter(common::partial(common::roster_upload(
            "", members, 4,
        ))))
        .await
        .unwrap()
        .into_inner();
    assert!(summary.rejected >= 1);
    for error in &summary.errors {
        for (id, name) in &p {
            assert!(
                !error.reason.contains(&id[..17]),
                "roster error leaks a number"
            );
            assert!(
                !error.reason.contains(name.as_str()),
                "roster error leaks a name"
            );
        }
    }
    let mut recheck = rosters
        .run_recheck(safehire::proto::RecheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    while recheck.message().await.unwrap().is_some() {}
    server
        .import(vec![record(
            4,
            "REC-P5",
            &p[5].0,
            &p[5].1,
            Category::Sexual,
        )])
        .await;
    let mut alerts = server.alerts(Role::Employer).await;
    let raised = alerts
        .list_alerts(safehire::proto::ListAlertsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .alerts;
    assert_eq!(raised.len(), 1);
    alerts
        .acknowledge_alert(safehire::proto::AcknowledgeRequest {
            alert_id: raised[0].id,
            action: safehire::proto::AlertAction::Disputed as i32,
            note: "disputed".into(),
        })
        .await
        .unwrap();
    // Identities smuggled into free text: every one refused, naming the field.
    for (id, name) in &p[..3] {
        let dotted = format!("{}.{}.{}", &id[..6], &id[6..14], &id[14..]);
        let dashed = format!("{}-{}-{}", &id[..6], &id[6..14], &id[14..]);
        for consent in [dotted.clone(), dashed] {
            let mut request = check_request(id, name, Purpose::PreHire);
            request.consent_ref = consent;
            let refused = checks.check(request).await.unwrap_err();
            assert!(refused.message().starts_with("consent_ref:"), "{refused:?}");
        }
        let mut staff = common::member(1, id, name, "2020-09-01");
        staff.staff_ref = format!("{name}_{}_{}_{}", &id[..6], &id[6..14], &id[14..]);
        let upload = server
            .rosters(Role::Employer)
            .await
            .record_hires(tokio_stream::iter(common::roster_upload(
                "",
                vec![staff],
                10,
            )))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(upload.rejected, 1);
        assert_eq!(upload.errors[0].field, "staff_ref");
        let header = common::batch_header(&format!("{id}.csv"));
        let refused = match checks.check_batch(tokio_stream::iter(vec![header])).await {
            Err(status) => status,
            Ok(response) => response.into_inner().message().await.unwrap_err(),
        };
        assert!(refused.message().starts_with("batch_id:"), "{refused:?}");
        let refused = alerts
            .acknowledge_alert(safehire::proto::AcknowledgeRequest {
                alert_id: raised[0].id,
                action: safehire::proto::AlertAction::Dismissed as i32,
                note: format!("{name} {}", dotted.replace('.', " ")),
            })
            .await
            .unwrap_err();
        assert!(refused.message().starts_with("note:"), "{refused:?}");
    }
    // The audit trail as a prosecutor exports it: pseudonyms, never the index keys.
    let mut trail = safehire::proto::oversight_service_client::OversightServiceClient::new(
        server.channel(Role::Prosecutor).await,
    )
    .list_audit_entries(safehire::proto::AuditQuery::default())
    .await
    .unwrap()
    .into_inner();
    let mut exports = String::new();
    let mut pseudonyms = std::collections::HashSet::new();
    while let Some(record) = trail.message().await.unwrap() {
        exports.push_str(&format!("{record:?}\n"));
        if !record.subject_hash.is_empty() {
            pseudonyms.insert(record.subject_hash);
        }
    }
    assert!(!pseudonyms.is_empty());
    let index_keys: Vec<String> = rusqlite::Connection::open(server.db_path())
        .unwrap()
        .prepare("SELECT DISTINCT lower(hex(subject)) FROM audit_log WHERE subject IS NOT NULL")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        pseudonyms.len(),
        index_keys.len(),
        "one stable pseudonym per subject"
    );
    for key in &index_keys {
        assert!(
            !exports.contains(key.as_str()),
            "an export holds an index key"
        );
    }
    // The metrics after all that traffic: the expected series, and nothing about anyone.
    let metrics = server.scrape().await;
    for series in [
        "safehire_rpc_requests_total{method=\"CheckService.Check\",code=\"OK\"}",
        "safehire_rpc_requests_total{method=\"CheckService.Check\",code=\"INVALID_ARGUMENT\"}",
        "safehire_rpc_requests_total{method=\"RosterService.ReplaceRoster\",code=\"OK\"}",
        "safehire_rpc_duration_seconds_bucket{method=\"CheckService.Check\",le=\"+Inf\"}",
        "safehire_checks_total{kind=\"recheck\"}",
        "safehire_alerts_raised_total 1",
        "safehire_audit_commit_jobs_bucket{le=\"+Inf\"}",
        "safehire_database_bytes{file=\"db\"}",
    ] {
        assert!(
            metrics.contains(series),
            "metrics lack {series}:\n{metrics}"
        );
    }
    // Read the WAL before the clean stop checkpoints it away.
    let wal_path = server.db_path().with_extension("db-wal");
    let wal_live = std::fs::read(&wal_path).unwrap_or_default();
    assert!(!wal_live.is_empty(), "the WAL was read while in use");
    server.stop().await;

    let db = std::fs::read(server.db_path()).unwrap();
    let wal_after = std::fs::read(&wal_path).unwrap_or_default();
    let (logs, json_logs) = (logs.human(), logs.json());
    assert!(logs.contains("import finished"), "logs were captured");
    let json_lines: Vec<serde_json::Value> = json_logs
        .lines()
        .map(|l| serde_json::from_str(l).expect("each JSON log line parses"))
        .collect();
    assert!(
        json_lines
            .iter()
            .any(|l| l["fields"]["message"] == "import finished"),
        "JSON logs were captured"
    );
    let employer = server.org(Role::Employer).uscc;
    assert!(
        logs.lines().any(|l| l.contains("request_id=")
            && l.contains("method=/safehire.v1.CheckService/Check")
            && l.contains(&format!("caller={employer}"))),
        "log lines of a call carry its request id, method and caller"
    );
    for (id, name) in &p {
        for needle in [
            id.clone(),
            id[..17].to_string(),
            id[..14].to_string(),
            id[6..14].to_string(),
            full_width(id),
            id.to_lowercase(),
            name.clone(),
        ] {
            assert!(!contains(&db, &needle), "database holds {needle:?}");
            assert!(!contains(&wal_live, &needle), "WAL holds {needle:?}");
            assert!(!contains(&wal_after, &needle), "WAL holds {needle:?}");
            assert!(!logs.contains(&needle), "logs hold {needle:?}");
            assert!(!json_logs.contains(&needle), "JSON logs hold {needle:?}");
            assert!(!metrics.contains(&needle), "metrics hold {needle:?}");
            assert!(!exports.contains(&needle), "audit exports hold {needle:?}");
        }
    }
}
