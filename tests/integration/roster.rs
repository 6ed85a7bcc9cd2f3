//! Rosters, the yearly re-check, continuous alerts and review cases, through the real server
//! over mTLS: replacement and its atomicity, re-check outcomes and their audit, alerts to the
//! employer and its bureau, acknowledgements, reviews, and a year passing on the test clock.

use crate::common;

use std::time::Duration;

use common::{TestServer, member, people, record, roster_upload};
use safehire::org::Role;
use safehire::proto::{self, Category};
use tokio_stream::StreamExt;

const HIRED: &str = "2024-09-01";

async fn replace(
    server: &TestServer,
    role: Role,
    on_behalf_of: &str,
    members: Vec<proto::RosterMember>,
) -> Result<proto::RosterSummary, tonic::Status> {
    server
        .rosters(role)
        .await
        .replace_roster(tokio_stream::iter(roster_upload(
            on_behalf_of,
            members,
            300,
        )))
        .await
        .map(|r| r.into_inner())
}

async fn roster_status(server: &TestServer) -> proto::RosterStatus {
    server
        .rosters(Role::Employer)
        .await
        .get_roster(proto::RosterQuery {
            max_due: 100_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// Runs a re-check to its end: each member's result and the summary.
async fn recheck(server: &TestServer) -> (Vec<proto::RecheckMember>, proto::RecheckSummary) {
    let mut stream = server
        .rosters(Role::Employer)
        .await
        .run_recheck(proto::RecheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut members = Vec::new();
    let mut summary = None;
    while let Some(message) = stream.message().await.unwrap() {
        match message.item {
            Some(proto::recheck_result::Item::Member(m)) => members.push(m),
            Some(proto::recheck_result::Item::Summary(s)) => summary = Some(s),
            None => {}
        }
    }
    (members, summary.expect("a re-check ends with its summary"))
}

fn members_of(p: &[(String, String)], first_row: u64) -> Vec<proto::RosterMember> {
    p.iter()
        .enumerate()
        .map(|(i, (doc, name))| member(first_row + i as u64, doc, name, HIRED))
        .collect()
}

#[tokio::test]
async fn a_roster_replaced_twice_keeps_only_the_second() {
    let server = TestServer::start().await;
    let p = people(61, 50);
    let first = replace(&server, Role::Employer, "", members_of(&p[..30], 1))
        .await
        .unwrap();
    assert_eq!((first.added, first.current_members), (30, 30));

    // The second roster keeps 10 of the first (rows 21..30) and adds 20 new people.
    let second = replace(&server, Role::Employer, "", members_of(&p[20..], 21))
        .await
        .unwrap();
    assert_eq!(
        (second.added, second.unchanged, second.departed),
        (20, 10, 20)
    );
    assert_eq!(second.current_members, 30);

    let (checked, summary) = recheck(&server).await;
    assert_eq!(summary.members, 30);
    let mut refs: Vec<String> = checked.into_iter().map(|m| m.staff_ref).collect();
    refs.sort();
    let expected: Vec<String> = (21..=50).map(|row| format!("S{row:05}")).collect();
    assert_eq!(refs, expected);
    let status = roster_status(&server).await;
    assert_eq!((status.current_members, status.departed_members), (30, 20));
}

#[tokio::test]
async fn a_broken_upload_leaves_the_roster_as_it_was() {
    let server = TestServer::start().await;
    let p = people(62, 3_010);
    replace(&server, Role::Employer, "", members_of(&p[..10], 1))
        .await
        .unwrap();

    // A second upload sends its header and 3,000 members (enough to be staged in the
    // database), then the connection goes.
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    for message in roster_upload("", members_of(&p[10..], 11), 500) {
        tx.send(message).await.unwrap();
    }
    let proxy = common::CuttableProxy::start(server.addr).await;
    let mut client = proto::roster_service_client::RosterServiceClient::new(
        server.channel_via(&proxy, Role::Employer).await,
    );
    let call = tokio::spawn(async move {
        client
            .replace_roster(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();
    assert!(
        call.await.unwrap().is_err(),
        "the client sees the call fail"
    );
    drop(tx);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let status = roster_status(&server).await;
    assert_eq!((status.current_members, status.departed_members), (10, 0));
    let (checked, _) = recheck(&server).await;
    let mut refs: Vec<String> = checked.into_iter().map(|m| m.staff_ref).collect();
    refs.sort();
    assert_eq!(
        refs,
        (1..=10).map(|r| format!("S{r:05}")).collect::<Vec<_>>()
    );
    let broken = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "RosterService.ReplaceRoster")
        .map(|r| r.outcome)
        .collect::<Vec<_>>();
    assert_eq!(broken, ["APPLIED", "CANCELLED"]);
    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    let staged: i64 = conn
        .query_row("SELECT COUNT(*) FROM roster_staging", [], |r| r.get(0))
        .unwrap();
    assert_eq!(staged, 0, "nothing of the broken upload is left staged");
}

#[tokio::test]
async fn recheck_finds_the_planted_hit_and_audits_one_periodic_check_per_member() {
    let server = TestServer::start().await;
    let p = people(63, 120);
    replace(&server, Role::Employer, "", members_of(&p, 1))
        .await
        .unwrap();
    // Someone not on the roster has a record too: the re-check must not report them.
    let stranger = people(64, 1);
    server
        .import(vec![
            record(1, "REC-R1", &p[41].0, &p[41].1, Category::Sexual),
            record(
                2,
                "REC-R2",
                &stranger[0].0,
                &stranger[0].1,
                Category::Sexual,
            ),
        ])
        .await;

    let (checked, summary) = recheck(&server).await;
    assert_eq!(
        (
            summary.members,
            summary.record_found,
            summary.needs_review,
            summary.no_record
        ),
        (120, 1, 0, 119)
    );
    let hits: Vec<&str> = checked
        .iter()
        .filter(|m| m.outcome == proto::Outcome::RecordFound as i32)
        .map(|m| m.staff_ref.as_str())
        .collect();
    assert_eq!(hits, ["S00042"]);

    let rows = server.audit_rows();
    let periodic: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "RosterService.RunRecheck" && r.has_subject)
        .collect();
    assert_eq!(periodic.len(), 120, "one audited check per member");
    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    let purposes: Vec<String> = conn
        .prepare(
            "SELECT DISTINCT purpose FROM audit_log
             WHERE action = 'RosterService.RunRecheck' AND subject IS NOT NULL",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(purposes, ["PERIODIC"]);
    let closing = rows
        .iter()
        .rfind(|r| r.action == "RosterService.RunRecheck")
        .unwrap();
    assert_eq!(closing.outcome, "COMPLETED");
    assert!(roster_status(&server).await.last_recheck_at.is_some());
}

/// Waits (at most a second) for the next alert on a watch.
async fn next_alert(stream: &mut tonic::Streaming<proto::Alert>, who: &str) -> proto::Alert {
    tokio::time::timeout(Duration::from_secs(1), stream.next())
        .await
        .unwrap_or_else(|_| panic!("{who}: no alert within one second"))
        .expect("the watch is open")
        .expect("an alert")
}

#[tokio::test]
async fn a_new_record_for_current_staff_alerts_the_employer_and_its_bureau_within_a_second() {
    let server = TestServer::start().await;
    let p = people(65, 20);
    replace(&server, Role::Employer, "", members_of(&p, 1))
        .await
        .unwrap();
    let employer = server.org(Role::Employer).uscc;
    let mut employer_watch = server
        .alerts(Role::Employer)
        .await
        .watch_alerts(proto::WatchAlertsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut bureau_watch = server
        .alerts(Role::Bureau)
        .await
        .watch_alerts(proto::WatchAlertsRequest::default())
        .await
        .unwrap()
        .into_inner();

    server
        .import(vec![record(1, "REC-A1", &p[6].0, &p[6].1, Category::Abuse)])
        .await;
    let to_employer = next_alert(&mut employer_watch, "employer").await;
    let to_bureau = next_alert(&mut bureau_watch, "bureau").await;
    assert_eq!(to_employer.staff_ref, "S00007");
    assert_eq!(to_employer.employer, employer);
    assert_eq!(
        to_bureau.id, to_employer.id,
        "the bureau sees the same alert"
    );
    assert_eq!(to_employer.action, 0, "not yet acknowledged");

    // A watch resumed from the cursor gets nothing twice, and the next alert arrives.
    let mut resumed = server
        .alerts(Role::Employer)
        .await
        .watch_alerts(proto::WatchAlertsRequest {
            after_id: to_employer.id,
        })
        .await
        .unwrap()
        .into_inner();
    server
        .import(vec![record(
            1,
            "REC-A2",
            &p[11].0,
            &p[11].1,
            Category::Sexual,
        )])
        .await;
    let next = next_alert(&mut resumed, "resumed watch").await;
    assert_eq!(next.staff_ref, "S00012");
    assert!(next.id > to_employer.id);

    // The alert says nothing about the record; the audit log has who was alerted, by whom.
    let raised: Vec<_> = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "alert.raise")
        .collect();
    assert_eq!(raised.len(), 2);
    assert!(
        raised
            .iter()
            .all(|r| r.employer == employer && r.has_subject)
    );
}

#[tokio::test]
async fn departed_staff_and_sealed_records_raise_no_alert_and_a_reinstated_record_does() {
    let server = TestServer::start().await;
    let p = people(66, 10);
    replace(&server, Role::Employer, "", members_of(&p, 1))
        .await
        .unwrap();
    let mut leaver = member(3, &p[2].0, &p[2].1, HIRED);
    leaver.departure_date = "2026-02-28".into();
    let left = server
        .rosters(Role::Employer)
        .await
        .record_departures(tokio_stream::iter(roster_upload("", vec![leaver], 10)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((left.departed, left.current_members), (1, 9));

    let mut departed_record = record(1, "REC-D1", &p[2].0, &p[2].1, Category::Sexual);
    departed_record.row = 1;
    let mut sealed = record(2, "REC-S1", &p[4].0, &p[4].1, Category::Sexual);
    sealed.sealed = true;
    let revoked_later = record(3, "REC-V1", &p[5].0, &p[5].1, Category::Abuse);
    server
        .registry()
        .await
        .revoke(proto::RecordRef {
            source_ref: "REC-V1".into(),
            reason: "test".into(),
        })
        .await
        .expect_err("no such record yet");
    server
        .import(vec![departed_record, sealed, revoked_later.clone()])
        .await;
    // REC-V1 alerted once; revoke it, then reinstate it: a second alert.
    let list = |alerts: &mut proto::alert_service_client::AlertServiceClient<_>| {
        let request = proto::ListAlertsRequest::default();
        let mut client = alerts.clone();
        async move { client.list_alerts(request).await.unwrap().into_inner() }
    };
    let mut alerts = server.alerts(Role::Employer).await;
    let first = list(&mut alerts).await;
    let refs: Vec<&str> = first.alerts.iter().map(|a| a.staff_ref.as_str()).collect();
    assert_eq!(refs, ["S00006"], "neither the leaver nor the sealed record");

    let mut registry = server.registry().await;
    registry
        .revoke(proto::RecordRef {
            source_ref: "REC-V1".into(),
            reason: "appeal upheld".into(),
        })
        .await
        .unwrap();
    let reinstated = registry
        .reinstate(proto::RecordRef {
            source_ref: "REC-V1".into(),
            reason: "retrial confirmed the conviction".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reinstated.changed);
    let second = list(&mut alerts).await;
    let refs: Vec<&str> = second.alerts.iter().map(|a| a.staff_ref.as_str()).collect();
    assert_eq!(refs, ["S00006", "S00006"]);
    assert_eq!(
        second.alerts[1].registry_version,
        reinstated.registry_version
    );
}

#[tokio::test]
async fn acknowledging_records_the_action_once() {
    let server = TestServer::start().await;
    let p = people(67, 5);
    replace(&server, Role::Employer, "", members_of(&p, 1))
        .await
        .unwrap();
    server
        .import(vec![
            record(1, "REC-K1", &p[0].0, &p[0].1, Category::Sexual),
            record(2, "REC-K2", &p[1].0, &p[1].1, Category::Abuse),
        ])
        .await;
    let mut alerts = server.alerts(Role::Employer).await;
    let listed = alerts
        .list_alerts(proto::ListAlertsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .alerts;
    assert_eq!(listed.len(), 2);
    // REC-K1 concerns the first member (S00001), REC-K2 the second.
    let by_ref = |staff_ref: &str| listed.iter().find(|a| a.staff_ref == staff_ref).unwrap().id;
    let (first, second) = (by_ref("S00001"), by_ref("S00002"));

    let suspended = alerts
        .acknowledge_alert(proto::AcknowledgeRequest {
            alert_id: first,
            action: proto::AlertAction::SuspendedPendingReview as i32,
            note: "suspended from classroom duty".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        suspended.action,
        proto::AlertAction::SuspendedPendingReview as i32
    );
    assert!(suspended.acknowledged_at.is_some());
    assert_eq!(suspended.acknowledged_by, server.org(Role::Employer).uscc);

    let again = alerts
        .acknowledge_alert(proto::AcknowledgeRequest {
            alert_id: first,
            action: proto::AlertAction::Dismissed as i32,
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    assert!(again.message().contains("SUSPENDED_PENDING_REVIEW"));

    // Disputing opens a review case that the registrars see.
    let disputed = alerts
        .acknowledge_alert(proto::AcknowledgeRequest {
            alert_id: second,
            action: proto::AlertAction::Disputed as i32,
            note: "different person, same number".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(disputed.review_id, 0);
    let cases = server
        .reviews(Role::Registrar)
        .await
        .list_reviews(proto::ListReviewsRequest {
            open_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].alert_id, second);
    assert_eq!(cases[0].source_refs, ["REC-K2"]);

    let pending = alerts
        .list_alerts(proto::ListAlertsRequest {
            unacknowledged_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(pending.alerts.is_empty());
    let missing = alerts
        .acknowledge_alert(proto::AcknowledgeRequest {
            alert_id: 999,
            action: proto::AlertAction::Dismissed as i32,
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let acks: Vec<String> = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "AlertService.AcknowledgeAlert")
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        acks,
        [
            "SUSPENDED_PENDING_REVIEW",
            "FAILED_PRECONDITION",
            "DISPUTED",
            "NOT_FOUND"
        ]
    );
}

/// A name mismatch answers like no record and opens a case only registrars see; a registrar
/// who confirms it is the same person (a legal name change) alerts the employer, naming the
/// check.
#[tokio::test]
async fn a_name_mismatch_is_a_hidden_case_and_its_confirmation_alerts_the_employer() {
    let server = TestServer::start().await;
    let p = people(68, 2);
    server
        .import(vec![record(
            1,
            "REC-N1",
            &p[0].0,
            &p[1].1,
            Category::Sexual,
        )])
        .await;
    let check = server
        .checks(Role::Employer)
        .await
        .check(common::check_request(
            &p[0].0,
            &p[0].1,
            proto::Purpose::PreHire,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.outcome, proto::Outcome::NoRecord as i32);
    assert_eq!(check.review_id, 0, "the case is not the employer's to see");

    let mut registrar = server.reviews(Role::Registrar).await;
    let open = registrar
        .list_reviews(proto::ListReviewsRequest {
            open_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].check_id, check.check_id);
    assert_eq!(open[0].reason, proto::ReviewReason::NeedsReview as i32);
    assert_eq!(open[0].source_refs, ["REC-N1"]);
    for role in [Role::Employer, Role::Bureau] {
        let seen = server
            .reviews(role)
            .await
            .list_reviews(proto::ListReviewsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .reviews;
        assert!(seen.is_empty(), "{role:?} sees the hidden case: {seen:?}");
    }

    // Employers may not resolve; the registrar does.
    let refused = server
        .reviews(Role::Employer)
        .await
        .resolve_review(proto::ResolveReviewRequest {
            review_id: open[0].id,
            resolution: proto::ReviewResolution::Confirmed as i32,
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let resolved = registrar
        .resolve_review(proto::ResolveReviewRequest {
            review_id: open[0].id,
            resolution: proto::ReviewResolution::Confirmed as i32,
            note: "legal name change on file".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resolved.resolution,
        proto::ReviewResolution::Confirmed as i32
    );

    for role in [Role::Employer, Role::Bureau] {
        let alerts = server
            .alerts(role)
            .await
            .list_alerts(proto::ListAlertsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .alerts;
        assert_eq!(alerts.len(), 1, "{role:?}");
        assert_eq!(alerts[0].check_id, check.check_id);
        assert_eq!(alerts[0].employer, server.org(Role::Employer).uscc);
    }

    let steps: Vec<(String, String)> = server
        .audit_rows()
        .into_iter()
        .filter(|r| {
            r.action.starts_with("review.")
                || r.action.starts_with("alert.")
                || r.action == "ReviewService.ResolveReview"
        })
        .map(|r| (r.action, r.outcome))
        .collect();
    let step = |a: &str, o: &str| (a.to_string(), o.to_string());
    assert_eq!(
        steps,
        [
            step("review.open", "NEEDS_REVIEW"),
            step("ReviewService.ResolveReview", "PERMISSION_DENIED"),
            step("ReviewService.ResolveReview", "CONFIRMED"),
            step("alert.raise", "RAISED"),
        ]
    );
}

#[tokio::test]
async fn a_disputed_hit_opens_a_case_and_only_hits_can_be_disputed() {
    let server = TestServer::start().await;
    let p = people(69, 2);
    server
        .import(vec![record(
            1,
            "REC-P1",
            &p[0].0,
            &p[0].1,
            Category::Sexual,
        )])
        .await;
    let mut checks = server.checks(Role::Employer).await;
    let hit = checks
        .check(common::check_request(
            &p[0].0,
            &p[0].1,
            proto::Purpose::PreHire,
        ))
        .await
        .unwrap()
        .into_inner();
    let miss = checks
        .check(common::check_request(
            &p[1].0,
            &p[1].1,
            proto::Purpose::PreHire,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut reviews = server.reviews(Role::Employer).await;
    let case = reviews
        .dispute_check(proto::DisputeCheckRequest {
            check_id: hit.check_id.clone(),
            note: "applicant disputes".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(case.reason, proto::ReviewReason::Disputed as i32);
    assert_eq!(case.check_id, hit.check_id);
    let not_a_hit = reviews
        .dispute_check(proto::DisputeCheckRequest {
            check_id: miss.check_id,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(not_a_hit.code(), tonic::Code::FailedPrecondition);
    let unknown = reviews
        .dispute_check(proto::DisputeCheckRequest {
            check_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn after_366_days_every_member_is_due() {
    let server = TestServer::start().await;
    let p = people(70, 25);
    replace(&server, Role::Employer, "", members_of(&p, 1))
        .await
        .unwrap();
    let never = roster_status(&server).await;
    assert_eq!(never.due_count, 25, "never checked: all due");
    assert!(never.due.iter().all(|d| d.last_checked_at.is_none()));

    recheck(&server).await;
    let checked = roster_status(&server).await;
    assert_eq!(checked.due_count, 0);
    assert!(checked.declared);
    assert_eq!(checked.recheck_interval_days, 365);

    server.clock.advance(time::Duration::days(365));
    assert_eq!(
        roster_status(&server).await.due_count,
        0,
        "365 days is in time"
    );
    server.clock.advance(time::Duration::days(1));
    let late = roster_status(&server).await;
    assert_eq!(late.due_count, 25);
    let mut refs: Vec<&str> = late.due.iter().map(|d| d.staff_ref.as_str()).collect();
    refs.sort();
    assert_eq!(
        refs,
        (1..=25).map(|r| format!("S{r:05}")).collect::<Vec<_>>()
    );
    assert!(late.due.iter().all(|d| d.last_checked_at.is_some()));
}

#[tokio::test]
async fn bad_rows_are_reported_per_row_and_the_upload_goes_on() {
    let server = TestServer::start().await;
    let p = people(71, 8);
    let mut rows = members_of(&p, 1);
    let mut wrong = p[1].0.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    rows[1].subject = Some(common::identity(&wrong, &p[1].1));
    rows[2].hire_date = String::new();
    rows[3].staff_ref = rows[0].staff_ref.clone();
    rows[4].subject = rows[0].subject.clone();
    rows[4].staff_ref = "S-other".into();
    rows[5].staff_ref = p[5].0.clone();
    let summary = server
        .rosters(Role::Employer)
        .await
        .replace_roster(tokio_stream::iter(common::partial(roster_upload(
            "", rows, 300,
        ))))
        .await
        .unwrap()
        .into_inner();
    assert!(summary.applied);
    assert_eq!((summary.added, summary.rejected), (3, 5));
    let errors: Vec<(u64, &str)> = summary
        .errors
        .iter()
        .map(|e| (e.row, e.field.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (2, "subject.doc_number"),
            (3, "hire_date"),
            (4, "staff_ref"),
            (5, "subject"),
            (6, "staff_ref"),
        ]
    );
    assert!(
        summary.errors.iter().all(|e| !e.reason.contains(&p[5].0)),
        "no error repeats an identity number"
    );

    // Leaving needs a current member.
    let mut stranger = member(1, &people(72, 1)[0].0, &people(72, 1)[0].1, HIRED);
    stranger.departure_date = "2026-03-01".into();
    let left = server
        .rosters(Role::Employer)
        .await
        .record_departures(tokio_stream::iter(roster_upload("", vec![stranger], 10)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((left.departed, left.rejected), (0, 1));
    assert_eq!(left.errors[0].field, "subject");
}

#[tokio::test]
async fn a_bureau_keeps_the_rosters_of_the_units_it_supervises_only() {
    let server = TestServer::start().await;
    let p = people(73, 4);
    let employer = server.org(Role::Employer).uscc;
    let by_bureau = replace(&server, Role::Bureau, &employer, members_of(&p, 1))
        .await
        .unwrap();
    assert_eq!(by_bureau.employer, employer);
    assert_eq!(roster_status(&server).await.current_members, 4);

    let prosecutor = server.org(Role::Prosecutor).uscc;
    let refused = replace(&server, Role::Bureau, &prosecutor, members_of(&p, 1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let itself = replace(&server, Role::Employer, &prosecutor, members_of(&p, 1))
        .await
        .unwrap_err();
    assert_eq!(itself.code(), tonic::Code::PermissionDenied);
    let registrar = replace(&server, Role::Registrar, "", members_of(&p, 1))
        .await
        .unwrap_err();
    assert_eq!(registrar.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn a_roster_file_with_a_rejected_row_changes_nothing() {
    let server = TestServer::start().await;
    let p = people(72, 6);
    replace(&server, Role::Employer, "", members_of(&p[..5], 1))
        .await
        .unwrap();

    // Every row rejected (no hire dates), then a one-row file with one typo: before, each of
    // these departed the whole staff.
    let mut undated = members_of(&p[..5], 1);
    for m in &mut undated {
        m.hire_date = String::new();
    }
    let mut typo = members_of(&p[5..], 1);
    typo[0].hire_date = "2024-13-01".into();
    for upload in [undated, typo] {
        let summary = replace(&server, Role::Employer, "", upload).await.unwrap();
        assert!(!summary.applied, "{summary:?}");
        assert_eq!(
            (summary.added, summary.departed, summary.current_members),
            (0, 0, 5),
            "{summary:?}"
        );
        assert_eq!(summary.rejected as usize, summary.errors.len());
    }
    let status = roster_status(&server).await;
    assert_eq!((status.current_members, status.departed_members), (5, 0));

    // Hires and departures are all or nothing too.
    let mut hires = members_of(&p[5..], 6);
    hires.push(member(7, &p[0].0, &p[0].1, "not a date"));
    let refused = server
        .rosters(Role::Employer)
        .await
        .record_hires(tokio_stream::iter(roster_upload("", hires.clone(), 10)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((refused.applied, refused.added), (false, 0));
    assert_eq!(roster_status(&server).await.current_members, 5);
    let partial = server
        .rosters(Role::Employer)
        .await
        .record_hires(tokio_stream::iter(common::partial(roster_upload(
            "", hires, 10,
        ))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (partial.applied, partial.added, partial.rejected),
        (true, 1, 1)
    );
    assert_eq!(roster_status(&server).await.current_members, 6);
}

#[tokio::test]
async fn staff_refs_are_unique_among_current_members() {
    let server = TestServer::start().await;
    let p = people(73, 4);
    replace(&server, Role::Employer, "", members_of(&p[..3], 1))
        .await
        .unwrap();
    let hire = |person: &(String, String), staff_ref: &str| {
        let mut m = member(1, &person.0, &person.1, HIRED);
        m.staff_ref = staff_ref.into();
        m
    };
    let taken = members_of(&p[..1], 1)[0].staff_ref.clone();
    let mut rosters = server.rosters(Role::Employer).await;
    let clash = rosters
        .record_hires(tokio_stream::iter(roster_upload(
            "",
            vec![hire(&p[3], &taken)],
            10,
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(!clash.applied);
    assert_eq!(
        (
            clash.errors[0].field.as_str(),
            clash.errors[0].reason.as_str()
        ),
        ("staff_ref", "is already used by another current member")
    );
    // The member's own ref on a re-declaration is no clash; once its holder left, it is free.
    let own = rosters
        .record_hires(tokio_stream::iter(roster_upload(
            "",
            vec![hire(&p[0], &taken)],
            10,
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((own.applied, own.unchanged), (true, 1), "{own:?}");
    let mut leaver = member(1, &p[0].0, &p[0].1, "");
    leaver.departure_date = "2026-01-01".into();
    leaver.staff_ref = taken.clone();
    let left = rosters
        .record_departures(tokio_stream::iter(roster_upload("", vec![leaver], 10)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(left.departed, 1, "{left:?}");
    let reused = rosters
        .record_hires(tokio_stream::iter(roster_upload(
            "",
            vec![hire(&p[3], &taken)],
            10,
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reused.applied, reused.added), (true, 1), "{reused:?}");
}

/// The last check of a member is kept on the roster: an applicant checked before being hired is
/// not due once on the roster (the upload reads it from the log), and a later check of a member
/// counts (the writer keeps it on the member row).
#[tokio::test]
async fn a_members_last_check_follows_checks_before_and_after_joining() {
    let server = TestServer::start().await;
    let p = people(71, 3);
    let mut checks = server.checks(Role::Employer).await;
    checks
        .check(common::check_request(
            &p[0].0,
            &p[0].1,
            proto::Purpose::PreHire,
        ))
        .await
        .unwrap();
    replace(&server, Role::Employer, "", members_of(&p, 1))
        .await
        .unwrap();
    let joined = roster_status(&server).await;
    assert_eq!(
        joined.due_count, 2,
        "the applicant checked before hiring is not due"
    );
    assert!(joined.due.iter().all(|d| d.last_checked_at.is_none()));

    server.clock.advance(time::Duration::days(366));
    let due = roster_status(&server).await;
    assert_eq!(due.due_count, 3);
    assert!(
        due.due
            .iter()
            .any(|d| d.staff_ref == "S00001" && d.last_checked_at.is_some())
    );
    checks
        .check(common::check_request(
            &p[0].0,
            &p[0].1,
            proto::Purpose::Periodic,
        ))
        .await
        .unwrap();
    let after = roster_status(&server).await;
    assert_eq!(after.due_count, 2, "a PERIODIC check of a member counts");
    assert!(after.due.iter().all(|d| d.staff_ref != "S00001"));
}

/// A member's last check is the check's own time. The case a name mismatch opens, its
/// resolution a year later and the alert that follows all name the check, and none of them is
/// a check: after them the member is still due.
#[tokio::test]
async fn a_review_resolved_later_does_not_count_as_a_check() {
    let server = TestServer::start().await;
    let p = people(72, 2);
    server
        .import(vec![record(
            1,
            "REC-R1",
            &p[0].0,
            &p[1].1,
            Category::Sexual,
        )])
        .await;
    replace(&server, Role::Employer, "", members_of(&p[..1], 1))
        .await
        .unwrap();
    let check = server
        .checks(Role::Employer)
        .await
        .check(common::check_request(
            &p[0].0,
            &p[0].1,
            proto::Purpose::Periodic,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.outcome, proto::Outcome::NoRecord as i32);
    let checked_at = roster_status(&server).await;
    assert_eq!(checked_at.due_count, 0, "the member was just checked");

    server.clock.advance(time::Duration::days(366));
    let before = roster_status(&server).await;
    assert_eq!(before.due_count, 1);
    let last_check = before.due[0].last_checked_at;
    assert!(last_check.is_some());

    let mut registrar = server.reviews(Role::Registrar).await;
    let open = registrar
        .list_reviews(proto::ListReviewsRequest {
            open_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].check_id, check.check_id);
    registrar
        .resolve_review(proto::ResolveReviewRequest {
            review_id: open[0].id,
            resolution: proto::ReviewResolution::Confirmed as i32,
            note: String::new(),
        })
        .await
        .unwrap();

    let after = roster_status(&server).await;
    assert_eq!(
        after.due_count, 1,
        "the resolution and its alert moved the member's last check: {:?}",
        after.due
    );
    assert_eq!(after.due[0].last_checked_at, last_check);
}
