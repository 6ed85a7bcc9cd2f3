//! Lawful use only, replaying the attacks of issue 16 against the real server: an enumeration
//! batch of a birth date's thousand document numbers learns nothing and is quota-limited;
//! PERIODIC checks of strangers are refused; strangers laundered through the roster are a
//! finding at least as clear as checking them directly; identities in free text are refused
//! naming the field.

use crate::common;

use common::{TestServer, batch_header, check_request, member, people, record, roster_upload};
use safehire::org::Role;
use safehire::proto::{self, Category, FindingKind, Outcome, Purpose};
use time::Duration;
use tonic::Code;

/// The check character of the first 17 characters of a resident ID (ISO 7064 MOD 11-2).
fn check_char(first17: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    b"10X98765432"[(sum % 11) as usize] as char
}

/// Every valid resident ID sharing the county and birth date of `id`: `id` itself first.
fn same_county_and_birth_date(id: &str) -> Vec<String> {
    let prefix = &id[..14];
    let mut ids = vec![id.to_string()];
    for seq in 0..1000 {
        let first17 = format!("{prefix}{seq:03}");
        let candidate = format!("{first17}{}", check_char(&first17));
        if candidate != id {
            ids.push(candidate);
        }
    }
    ids
}

fn rows(ids: &[String], name: &str) -> Vec<proto::BatchRow> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| proto::BatchRow {
            row: i as u64 + 1,
            subject: Some(common::identity(id, name)),
            consent_ref: String::new(),
        })
        .collect()
}

/// Runs a batch; returns every row's result and the summary (or the status that ended it).
async fn run_batch(
    server: &TestServer,
    header: proto::CheckBatchRequest,
    rows: Vec<proto::BatchRow>,
) -> Vec<proto::BatchResult> {
    let mut messages = vec![header];
    for chunk in rows.chunks(500) {
        messages.push(proto::CheckBatchRequest {
            item: Some(proto::check_batch_request::Item::Rows(proto::BatchRows {
                rows: chunk.to_vec(),
            })),
        });
    }
    let mut stream = server
        .checks(Role::Employer)
        .await
        .check_batch(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    let mut results = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        if let Some(proto::check_batch_response::Item::Results(r)) = message.item {
            results.extend(r.results);
        }
    }
    results
}

fn row_error(result: &proto::BatchResult) -> Option<&proto::RowError> {
    match &result.result {
        Some(proto::batch_result::Result::Error(e)) => Some(e),
        _ => None,
    }
}

fn row_outcome(result: &proto::BatchResult) -> Option<Outcome> {
    match &result.result {
        Some(proto::batch_result::Result::Check(c)) => Some(c.outcome()),
        _ => None,
    }
}

#[tokio::test]
async fn an_enumeration_batch_reveals_nothing_and_is_quota_limited() {
    let server = TestServer::start_with(|c| c.rules.pre_hire_rows_per_day = 600).await;
    let real = &people(161, 1)[0];
    server
        .import(vec![record(
            1,
            "REC-E1",
            &real.0,
            &real.1,
            Category::Sexual,
        )])
        .await;
    let ids = same_county_and_birth_date(&real.0);
    assert!(ids.len() >= 999);

    // PERIODIC: nobody here is on the roster, so every row is refused, per row.
    let mut periodic = batch_header("enum-periodic");
    if let Some(proto::check_batch_request::Item::Header(h)) = &mut periodic.item {
        h.purpose = Purpose::Periodic as i32;
        h.consent_policy = proto::ConsentPolicy::NotRequired as i32;
        h.consent_ref = String::new();
    }
    let results = run_batch(&server, periodic, rows(&ids, "张三")).await;
    assert_eq!(results.len(), ids.len());
    for result in &results {
        let error = row_error(result).expect("a refusal, not an answer");
        assert_eq!(error.field, "subject");
        assert!(error.reason.contains("roster"), "{}", error.reason);
    }

    // PRE_HIRE with a consent reference: the real record's row (row 1) answers exactly like
    // the others, and the quota ends the sweep.
    let results = run_batch(&server, batch_header("enum-pre-hire"), rows(&ids, "张三")).await;
    assert_eq!(results.len(), ids.len());
    let answered: Vec<Outcome> = results.iter().filter_map(row_outcome).collect();
    assert_eq!(answered.len(), 600, "the quota is counted in rows");
    assert!(answered.iter().all(|o| *o == Outcome::NoRecord));
    assert_eq!(row_outcome(&results[0]), Some(Outcome::NoRecord));
    for result in &results[600..] {
        let error = row_error(result).unwrap();
        assert!(error.reason.contains("retry after"), "{}", error.reason);
    }
    // The review the mismatch opened is the registrar's alone.
    let employer_sees = server
        .reviews(Role::Employer)
        .await
        .list_reviews(proto::ListReviewsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert!(employer_sees.is_empty());
    let registrar_sees = server
        .reviews(Role::Registrar)
        .await
        .list_reviews(proto::ListReviewsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert_eq!(registrar_sees.len(), 1);

    // Once spent, a single check is refused with the time to retry; the next day it is not.
    let refused = server
        .checks(Role::Employer)
        .await
        .check(check_request(&real.0, &real.1, Purpose::PreHire))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("retry after"),
        "{}",
        refused.message()
    );
    server.clock.advance(Duration::days(1));
    let found = server
        .checks(Role::Employer)
        .await
        .check(check_request(&real.0, &real.1, Purpose::PreHire))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.outcome(), Outcome::RecordFound);
}

#[tokio::test]
async fn periodic_checks_are_for_current_roster_members_only() {
    let server = TestServer::start().await;
    let p = people(162, 3);
    let today = safehire::roster::date_text(safehire::clock::calendar_date(
        safehire::clock::Clock::now(&server.clock),
    ));
    let members = vec![member(1, &p[0].0, &p[0].1, &today)];
    server
        .rosters(Role::Employer)
        .await
        .replace_roster(tokio_stream::iter(roster_upload("", members, 10)))
        .await
        .unwrap();
    let mut checks = server.checks(Role::Employer).await;
    let staff = checks
        .check(check_request(&p[0].0, &p[0].1, Purpose::Periodic))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(staff.outcome(), Outcome::NoRecord);
    for purpose in [Purpose::Periodic, Purpose::ReVerify] {
        let stranger = checks
            .check(check_request(&p[1].0, &p[1].1, purpose))
            .await
            .unwrap_err();
        assert_eq!(stranger.code(), Code::FailedPrecondition);
        assert!(
            stranger.message().contains("roster"),
            "{}",
            stranger.message()
        );
    }
    let refused: Vec<_> = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "CheckService.Check" && r.outcome == "FAILED_PRECONDITION")
        .collect();
    assert_eq!(refused.len(), 2, "each refusal is audited");
    assert!(refused.iter().all(|r| r.has_subject));
}

async fn enroll(server: &TestServer, uscc: &str) {
    server
        .orgs(Role::Operator)
        .await
        .enroll(proto::EnrollRequest {
            uscc: uscc.into(),
            name: "甲培训学校".into(),
            role: proto::Role::Employer as i32,
            region: "150702".into(),
            industry: proto::Industry::OffCampusTraining as i32,
            supervising_bureau: server.org(Role::Bureau).uscc,
        })
        .await
        .unwrap();
}

async fn findings(server: &TestServer, uscc: &str) -> Vec<proto::Finding> {
    let now = safehire::clock::Clock::now(&server.clock);
    let mut stream = server
        .channel(Role::Prosecutor)
        .await
        .pipe_into()
        .compliance_report(proto::ComplianceRequest {
            as_of: Some(prost_types::Timestamp {
                seconds: now.unix_timestamp(),
                nanos: 0,
            }),
            region_prefix: String::new(),
            industry: 0,
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(item) = stream.message().await.unwrap() {
        if let Some(proto::compliance_item::Item::Unit(u)) = item.item
            && u.uscc == uscc
        {
            return u.findings;
        }
    }
    panic!("{uscc} is not in the report");
}

trait IntoOversight {
    fn pipe_into(
        self,
    ) -> proto::oversight_service_client::OversightServiceClient<tonic::transport::Channel>;
}
impl IntoOversight for tonic::transport::Channel {
    fn pipe_into(
        self,
    ) -> proto::oversight_service_client::OversightServiceClient<tonic::transport::Channel> {
        proto::oversight_service_client::OversightServiceClient::new(self)
    }
}

fn count(findings: &[proto::Finding], kind: FindingKind) -> u64 {
    findings
        .iter()
        .find(|f| f.kind == kind as i32)
        .map_or(0, |f| f.count)
}

/// A checks 300 strangers directly; B declares the same 300 as its staff, re-checks them, then
/// replaces them with its 10 real staff. B is flagged at least as clearly as A.
#[tokio::test]
async fn strangers_laundered_through_the_roster_are_a_finding() {
    let server = TestServer::start().await;
    let strangers = people(163, 300);
    let staff = people(164, 10);
    let a = safehire::synth::Generator::new(163, common::start_time().date()).uscc();
    enroll(&server, &a).await;
    for s in &strangers {
        let mut request = check_request(&s.0, &s.1, Purpose::PreHire);
        request.on_behalf_of = a.clone();
        server
            .checks(Role::Bureau)
            .await
            .check(request)
            .await
            .unwrap();
    }

    let b = server.org(Role::Employer).uscc;
    let today = safehire::roster::date_text(safehire::clock::calendar_date(
        safehire::clock::Clock::now(&server.clock),
    ));
    let declare = |people: &[(String, String)]| {
        people
            .iter()
            .enumerate()
            .map(|(i, (doc, name))| member(i as u64 + 1, doc, name, &today))
            .collect::<Vec<_>>()
    };
    let mut rosters = server.rosters(Role::Employer).await;
    rosters
        .replace_roster(tokio_stream::iter(roster_upload(
            "",
            declare(&strangers),
            100,
        )))
        .await
        .unwrap();
    let mut recheck = rosters
        .run_recheck(proto::RecheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    while recheck.message().await.unwrap().is_some() {}
    server.clock.advance(Duration::days(1));
    for s in &staff {
        server
            .checks(Role::Employer)
            .await
            .check(check_request(&s.0, &s.1, Purpose::PreHire))
            .await
            .unwrap();
    }
    rosters
        .replace_roster(tokio_stream::iter(roster_upload("", declare(&staff), 100)))
        .await
        .unwrap();
    server.clock.advance(Duration::days(1));

    let of_a = findings(&server, &a).await;
    let of_b = findings(&server, &b).await;
    assert_eq!(count(&of_a, FindingKind::ExcessQueries), 300, "{of_a:?}");
    assert!(
        count(&of_b, FindingKind::ExcessQueries) >= count(&of_a, FindingKind::ExcessQueries),
        "{of_b:?}"
    );
    assert_eq!(count(&of_b, FindingKind::RosterChurn), 300, "{of_b:?}");
}

/// Every free-text example of the issue is refused, naming the field.
#[tokio::test]
async fn identities_in_free_text_are_refused_naming_the_field() {
    let server = TestServer::start().await;
    let p = people(165, 1);
    let mut checks = server.checks(Role::Employer).await;
    for consent in ["140105.19560718.3079", "110105-19491231-002X"] {
        let mut request = check_request(&p[0].0, &p[0].1, Purpose::PreHire);
        request.consent_ref = consent.into();
        let refused = checks.check(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            refused.message().starts_with("consent_ref:"),
            "{consent}: {}",
            refused.message()
        );
    }

    let mut staff = member(1, &p[0].0, &p[0].1, "2020-09-01");
    staff.staff_ref = "吕建_140105_19560718_3079".into();
    let summary = server
        .rosters(Role::Employer)
        .await
        .replace_roster(tokio_stream::iter(roster_upload("", vec![staff], 10)))
        .await
        .map(|r| r.into_inner());
    match summary {
        Ok(summary) => {
            assert_eq!(summary.errors.len(), 1, "{summary:?}");
            assert_eq!(summary.errors[0].field, "staff_ref");
        }
        Err(status) => assert!(status.message().contains("staff_ref"), "{status:?}"),
    }

    let header = batch_header("140105195607183079.csv");
    let results = match checks.check_batch(tokio_stream::iter(vec![header])).await {
        Err(status) => status,
        Ok(response) => response.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(results.code(), Code::InvalidArgument);
    assert!(
        results.message().starts_with("batch_id:"),
        "{}",
        results.message()
    );

    let refused = server
        .registry()
        .await
        .revoke(proto::RecordRef {
            source_ref: "REC-2019-0000001".into(),
            reason: "wrong person: 110105 19491231 002X".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with("reason:"),
        "{}",
        refused.message()
    );

    for forged in ["ok\u{2028}2026 FORGED ENTRY", "txt\u{202E}fdp.exe"] {
        let refused = server
            .alerts(Role::Employer)
            .await
            .acknowledge_alert(proto::AcknowledgeRequest {
                alert_id: 1,
                action: proto::AlertAction::Dismissed as i32,
                note: forged.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{forged:?}");
        assert!(
            refused.message().starts_with("note:"),
            "{}",
            refused.message()
        );
    }
}

/// A second registrar (another region) may not re-import, seal or revoke a record it did not
/// create; each refusal is audited; an operator's transfer hands it over.
#[tokio::test]
async fn a_second_registrar_is_refused_until_an_operator_transfers_the_record() {
    let server = TestServer::start().await;
    let p = people(166, 1);
    let imported = record(1, "REC-R1", &p[0].0, &p[0].1, Category::Sexual);
    server.import(vec![imported.clone()]).await;

    let mut generator = safehire::synth::Generator::new(166, common::start_time().date());
    let second = generator.uscc();
    server
        .orgs(Role::Operator)
        .await
        .enroll(proto::EnrollRequest {
            uscc: second.clone(),
            name: "另一地区法院".into(),
            role: proto::Role::Registrar as i32,
            region: "440305".into(),
            industry: 0,
            supervising_bureau: String::new(),
        })
        .await
        .unwrap();
    let dir = server.certs_dir();
    let ca = safehire::certs::CertAuthority::from_pem(
        &std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(dir.join("ca.key")).unwrap(),
    )
    .unwrap();
    let pair = ca
        .issue_client(
            &safehire::certs::OrgCertRequest {
                uscc: &second,
                name: "另一地区法院",
                role: "registrar",
            },
            30,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    let channel = server
        .channel_with(Some((
            pair.cert_pem.into_bytes(),
            pair.key_pem.into_bytes(),
        )))
        .await
        .unwrap();
    let mut other = proto::registry_service_client::RegistryServiceClient::new(channel);
    let mut sealed = imported.clone();
    sealed.sealed = true;
    let refused = other
        .import(tokio_stream::iter(vec![proto::ImportChunk {
            records: vec![sealed],
        }]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("REC-R1"),
        "{}",
        refused.message()
    );
    let by_ref = || proto::RecordRef {
        source_ref: "REC-R1".into(),
        reason: "entered in error".into(),
    };
    assert_eq!(
        other.revoke(by_ref()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        other.seal(by_ref()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    // Still a hit: nothing changed.
    let still = server
        .checks(Role::Employer)
        .await
        .check(check_request(&p[0].0, &p[0].1, Purpose::PreHire))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.outcome(), Outcome::RecordFound);
    let refusals = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.caller == second && r.outcome == "PERMISSION_DENIED")
        .count();
    assert_eq!(refusals, 3, "each refusal is audited");

    server
        .channel(Role::Operator)
        .await
        .pipe_registry()
        .transfer_record(proto::TransferRecordRequest {
            source_ref: "REC-R1".into(),
            new_owner: second.clone(),
            reason: "feed moved to the new court".into(),
        })
        .await
        .unwrap();
    other.revoke(by_ref()).await.unwrap();
    assert!(
        server
            .audit_rows()
            .iter()
            .any(|r| r.action == "RegistryService.TransferRecord" && r.outcome == "TRANSFERRED")
    );
}

trait IntoRegistry {
    fn pipe_registry(
        self,
    ) -> proto::registry_service_client::RegistryServiceClient<tonic::transport::Channel>;
}
impl IntoRegistry for tonic::transport::Channel {
    fn pipe_registry(
        self,
    ) -> proto::registry_service_client::RegistryServiceClient<tonic::transport::Channel> {
        proto::registry_service_client::RegistryServiceClient::new(self)
    }
}

/// A roster of documents under other names monitors nobody: a new record alerts only the
/// member whose document and name both match; a document-only match goes to a registrar.
#[tokio::test]
async fn alerts_need_the_document_and_the_name() {
    let server = TestServer::start().await;
    let p = people(167, 2);
    let today = safehire::roster::date_text(safehire::clock::calendar_date(
        safehire::clock::Clock::now(&server.clock),
    ));
    // p[0]'s document under p[1]'s name: the silent-monitoring attempt.
    let members = vec![member(1, &p[0].0, &p[1].1, &today)];
    server
        .rosters(Role::Employer)
        .await
        .replace_roster(tokio_stream::iter(roster_upload("", members, 10)))
        .await
        .unwrap();
    server
        .import(vec![record(
            1,
            "REC-M1",
            &p[0].0,
            &p[0].1,
            Category::Sexual,
        )])
        .await;
    let alerts = server
        .alerts(Role::Employer)
        .await
        .list_alerts(proto::ListAlertsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .alerts;
    assert!(alerts.is_empty(), "{alerts:?}");
    let cases = server
        .reviews(Role::Registrar)
        .await
        .list_reviews(proto::ListReviewsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].reason, proto::ReviewReason::NeedsReview as i32);
}

/// A ten-person kindergarten cannot declare three thousand strangers: its roster is bounded by
/// the headcount its bureau enrolled it with, plus the margin; a refused upload changes nothing.
#[tokio::test]
async fn a_roster_cannot_grow_past_the_enrolled_headcount() {
    let server = TestServer::start_with(|c| c.rules.headcount_margin = 0.2).await;
    let unit = safehire::synth::Generator::new(168, common::start_time().date()).uscc();
    enroll(&server, &unit).await;
    let set = server
        .orgs(Role::Bureau)
        .await
        .set_headcount(proto::SetHeadcountRequest {
            uscc: unit.clone(),
            headcount: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.max_members, 12);
    // An employer does not set its own headcount.
    let refused = server
        .orgs(Role::Employer)
        .await
        .set_headcount(proto::SetHeadcountRequest {
            uscc: unit.clone(),
            headcount: 5_000,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let today = safehire::roster::date_text(safehire::clock::calendar_date(
        safehire::clock::Clock::now(&server.clock),
    ));
    let p = people(168, 3_000);
    let declare = |n: usize| {
        p[..n]
            .iter()
            .enumerate()
            .map(|(i, (doc, name))| member(i as u64 + 1, doc, name, &today))
            .collect::<Vec<_>>()
    };
    let mut rosters = server.rosters(Role::Bureau).await;
    let kept = rosters
        .replace_roster(tokio_stream::iter(roster_upload(&unit, declare(12), 100)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.current_members, 12);
    let refused = rosters
        .replace_roster(tokio_stream::iter(roster_upload(
            &unit,
            declare(3_000),
            500,
        )))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("headcount"),
        "{}",
        refused.message()
    );
    let status = rosters
        .get_roster(proto::RosterQuery {
            on_behalf_of: unit.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.current_members, 12,
        "the refused upload changed nothing"
    );
}

/// After the first declaration, members who join without a PRE_HIRE check by the employer
/// count against its PRE_HIRE quota; the first declaration of existing staff does not.
#[tokio::test]
async fn unchecked_additions_after_the_first_declaration_count_against_the_quota() {
    let server = TestServer::start_with(|c| c.rules.pre_hire_rows_per_day = 20).await;
    let today = safehire::roster::date_text(safehire::clock::calendar_date(
        safehire::clock::Clock::now(&server.clock),
    ));
    let p = people(169, 60);
    // Rows (and so staff refs) follow each person's place in `p`: staff refs are unique among
    // current members.
    let declare = |from: usize, to: usize| {
        (from..to)
            .map(|i| member(i as u64 + 1, &p[i].0, &p[i].1, &today))
            .collect::<Vec<_>>()
    };
    let mut rosters = server.rosters(Role::Employer).await;
    // The first declaration: 30 existing staff, beyond the quota, are not held back.
    rosters
        .replace_roster(tokio_stream::iter(roster_upload("", declare(0, 30), 100)))
        .await
        .unwrap();
    // One applicant checked PRE_HIRE joins freely; 25 unchecked strangers do not.
    server
        .checks(Role::Employer)
        .await
        .check(check_request(&p[30].0, &p[30].1, Purpose::PreHire))
        .await
        .unwrap();
    let hired = rosters
        .record_hires(tokio_stream::iter(roster_upload("", declare(30, 31), 10)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hired.added, 1);
    let refused = rosters
        .record_hires(tokio_stream::iter(roster_upload("", declare(31, 56), 10)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("retry after"),
        "{}",
        refused.message()
    );
    // Within what is left (19 rows), they join and use it up.
    let hired = rosters
        .record_hires(tokio_stream::iter(roster_upload("", declare(31, 50), 10)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hired.added, 19);
    let spent = server
        .checks(Role::Employer)
        .await
        .check(check_request(&p[59].0, &p[59].1, Purpose::PreHire))
        .await
        .unwrap_err();
    assert_eq!(spent.code(), Code::ResourceExhausted);
}

fn metric(scrape: &str, series: &str) -> u64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// After a restart the day's PRE_HIRE rows are counted from the log once, under the employer's
/// lock: concurrent first checks wait for that one count instead of each scanning the log,
/// and the quota they share is still exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_checks_after_a_restart_count_the_quota_once() {
    // Rows enough in the log that its count takes a while, as after a day of batches.
    const BEFORE: usize = 3_000;
    const LEFT: u64 = 12;
    const CONCURRENT: usize = 64;
    const QUOTA: u64 = BEFORE as u64 + LEFT;
    let mut server = TestServer::start_with(|c| c.rules.pre_hire_rows_per_day = QUOTA).await;
    let p = people(174, BEFORE + CONCURRENT + 1);
    let ids: Vec<String> = p[..BEFORE].iter().map(|(doc, _)| doc.clone()).collect();
    let results = run_batch(&server, batch_header("before-restart"), rows(&ids, "张三")).await;
    assert_eq!(results.iter().filter_map(row_outcome).count(), BEFORE);
    server.restart().await;
    let read = "safehire_quota_counts_read_total";
    let before = metric(&server.scrape().await, read);

    let channel = server.channel(Role::Employer).await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(CONCURRENT));
    let mut wave = tokio::task::JoinSet::new();
    for (doc, name) in &p[BEFORE..BEFORE + CONCURRENT] {
        let mut client = proto::check_service_client::CheckServiceClient::new(channel.clone());
        let request = check_request(doc, name, Purpose::PreHire);
        let start = std::sync::Arc::clone(&start);
        wave.spawn(async move {
            start.wait().await;
            client.check(request).await
        });
    }
    let (mut answered, mut spent) = (0, 0);
    while let Some(answer) = wave.join_next().await {
        match answer.unwrap() {
            Ok(_) => answered += 1,
            Err(status) if status.code() == Code::ResourceExhausted => spent += 1,
            Err(status) => panic!("{status:?}"),
        }
    }
    let after = metric(&server.scrape().await, read);
    assert_eq!(
        after - before,
        1,
        "the day's count was read {} times",
        after - before
    );
    assert_eq!(answered, LEFT, "what the restart left of the quota");
    assert_eq!(spent, CONCURRENT as u64 - LEFT);
    let (doc, name) = &p[BEFORE + CONCURRENT];
    let refused = server
        .checks(Role::Employer)
        .await
        .check(check_request(doc, name, Purpose::PreHire))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        metric(&server.scrape().await, read),
        after,
        "counted once a day"
    );
}
