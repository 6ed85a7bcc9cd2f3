//! Checks through the real server over mTLS: outcomes, matching rules, refusals, bad input.

use crate::common;

use common::{TestServer, check_request, people, record};
use safehire::org::Role;
use safehire::proto::{self, Category, Outcome, Purpose};
use tonic::Code;

async fn outcome(
    server: &TestServer,
    role: Role,
    request: proto::CheckRequest,
) -> Result<proto::CheckResponse, tonic::Status> {
    server
        .checks(role)
        .await
        .check(request)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn found_not_found_and_a_name_mismatch_answers_no_record() {
    let server = TestServer::start().await;
    let p = people(11, 3);
    let summary = server
        .import(vec![
            record(1, "REC-1", &p[0].0, &p[0].1, Category::Sexual),
            record(2, "REC-2", &p[1].0, &p[1].1, Category::Abuse),
        ])
        .await;
    assert_eq!((summary.created, summary.rejected), (2, 0));

    let found = outcome(
        &server,
        Role::Employer,
        check_request(&p[0].0, &p[0].1, Purpose::PreHire),
    )
    .await
    .unwrap();
    assert_eq!(found.outcome(), Outcome::RecordFound);
    assert_eq!(found.registry_version, summary.registry_version);
    assert!(!found.check_id.is_empty());
    assert_eq!(found.employer, server.org(Role::Employer).uscc);

    let none = outcome(
        &server,
        Role::Employer,
        check_request(&p[2].0, &p[2].1, Purpose::PreHire),
    )
    .await
    .unwrap();
    assert_eq!(none.outcome(), Outcome::NoRecord);

    // Same document, another name: answered exactly like no record (the registrar reviews it).
    let mismatch = outcome(
        &server,
        Role::Employer,
        check_request(&p[1].0, &p[2].1, Purpose::PreHire),
    )
    .await
    .unwrap();
    assert_eq!(mismatch.outcome(), Outcome::NoRecord);
    assert_eq!(mismatch.review_id, 0);

    // The SEXUAL scope does not see an abuse record.
    let mut narrow = check_request(&p[1].0, &p[1].1, Purpose::PreHire);
    narrow.scope = proto::Scope::Sexual as i32;
    assert_eq!(
        outcome(&server, Role::Employer, narrow)
            .await
            .unwrap()
            .outcome(),
        Outcome::NoRecord
    );

    // Each answered check is one audit entry with its outcome and a hashed subject.
    let rows = server.audit_rows();
    let checks: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "CheckService.Check")
        .collect();
    assert_eq!(checks.len(), 4);
    assert_eq!(checks[0].outcome, "RECORD_FOUND");
    assert!(checks.iter().all(|r| r.has_subject && r.role == "EMPLOYER"));
    assert!(checks[0].detail.contains("consent_ref=CONSENT-0001"));
}

#[tokio::test]
async fn sealed_and_revoked_records_never_hit() {
    let server = TestServer::start().await;
    let p = people(12, 3);
    let mut sealed_on_import = record(1, "REC-S", &p[0].0, &p[0].1, Category::Sexual);
    sealed_on_import.sealed = true;
    server
        .import(vec![
            sealed_on_import,
            record(2, "REC-R", &p[1].0, &p[1].1, Category::Sexual),
            record(3, "REC-L", &p[2].0, &p[2].1, Category::Trafficking),
        ])
        .await;
    let check = |i: usize| {
        outcome(
            &server,
            Role::Employer,
            check_request(&p[i].0, &p[i].1, Purpose::PreHire),
        )
    };
    assert_eq!(
        check(0).await.unwrap().outcome(),
        Outcome::NoRecord,
        "sealed on import"
    );
    assert_eq!(check(1).await.unwrap().outcome(), Outcome::RecordFound);
    assert_eq!(check(2).await.unwrap().outcome(), Outcome::RecordFound);

    let mut registry = server.registry().await;
    let revoked = registry
        .revoke(proto::RecordRef {
            source_ref: "REC-R".into(),
            reason: "(2026)蒙06刑终12号".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.changed);
    let sealed = registry
        .seal(proto::RecordRef {
            source_ref: "REC-L".into(),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(sealed.changed);
    assert!(sealed.registry_version > revoked.registry_version);
    assert_eq!(
        check(1).await.unwrap().outcome(),
        Outcome::NoRecord,
        "revoked"
    );
    let after = check(2).await.unwrap();
    assert_eq!(after.outcome(), Outcome::NoRecord, "sealed later");
    assert_eq!(after.registry_version, sealed.registry_version);

    // Revoking again changes nothing; an unknown reference is NOT_FOUND.
    let again = registry
        .revoke(proto::RecordRef {
            source_ref: "REC-R".into(),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.changed);
    let missing = registry
        .revoke(proto::RecordRef {
            source_ref: "REC-NONE".into(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn reimport_updates_and_never_duplicates() {
    let server = TestServer::start().await;
    let p = people(13, 2);
    let first = server
        .import(vec![record(1, "REC-9", &p[0].0, &p[0].1, Category::Abuse)])
        .await;
    assert_eq!(first.created, 1);
    let same = server
        .import(vec![record(1, "REC-9", &p[0].0, &p[0].1, Category::Abuse)])
        .await;
    assert_eq!((same.created, same.updated, same.unchanged), (0, 0, 1));
    // The registrar corrects the identity on the record: the old person no longer hits.
    let corrected = server
        .import(vec![record(1, "REC-9", &p[1].0, &p[1].1, Category::Abuse)])
        .await;
    assert_eq!(corrected.updated, 1);
    assert!(corrected.registry_version > first.registry_version);
    let old = outcome(
        &server,
        Role::Employer,
        check_request(&p[0].0, &p[0].1, Purpose::PreHire),
    )
    .await
    .unwrap();
    assert_eq!(old.outcome(), Outcome::NoRecord);
    let new = outcome(
        &server,
        Role::Employer,
        check_request(&p[1].0, &p[1].1, Purpose::PreHire),
    )
    .await
    .unwrap();
    assert_eq!(new.outcome(), Outcome::RecordFound);
    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn import_reports_each_bad_record_and_goes_on() {
    let server = TestServer::start().await;
    let p = people(14, 3);
    let mut bad_check = p[1].0.clone();
    let last = bad_check.pop().unwrap();
    bad_check.push(if last == '0' { '1' } else { '0' });
    let mut no_category = record(3, "REC-C", &p[2].0, &p[2].1, Category::Sexual);
    no_category.category = 0;
    let summary = server
        .import(vec![
            record(1, "REC-A", &p[0].0, &p[0].1, Category::Sexual),
            record(2, "REC-B", &bad_check, &p[1].1, Category::Sexual),
            no_category,
            record(4, "bad ref with spaces", &p[2].0, &p[2].1, Category::Sexual),
        ])
        .await;
    assert_eq!(
        (summary.received, summary.created, summary.rejected),
        (4, 1, 3)
    );
    let fields: Vec<(u64, &str)> = summary
        .errors
        .iter()
        .map(|e| (e.row, e.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            (2, "subject.doc_number"),
            (3, "category"),
            (4, "source_ref")
        ]
    );
    assert!(
        summary.errors[0].reason.contains("check digit should be"),
        "{}",
        summary.errors[0].reason
    );
    assert!(
        !summary
            .errors
            .iter()
            .any(|e| e.reason.contains(&p[1].0[..17]))
    );
}

#[tokio::test]
async fn consent_is_required_for_pre_hire() {
    let server = TestServer::start().await;
    let p = people(15, 1);
    let mut request = check_request(&p[0].0, &p[0].1, Purpose::PreHire);
    request.consent_ref.clear();
    let refused = outcome(&server, Role::Employer, request).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with("consent_ref:"),
        "{}",
        refused.message()
    );
    // Periodic re-checks need no consent, but only for staff on the roster.
    let periodic = check_request(&p[0].0, &p[0].1, Purpose::Periodic);
    assert_eq!(
        outcome(&server, Role::Employer, periodic)
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    let refusal = server
        .audit_rows()
        .into_iter()
        .find(|r| r.outcome == "INVALID_ARGUMENT")
        .unwrap();
    assert_eq!(refusal.detail, "field=consent_ref");
    assert!(
        refusal.has_subject,
        "the refused check still names (hashed) whom it was about"
    );
}

#[tokio::test]
async fn a_bureau_checks_only_for_units_it_supervises() {
    let server = TestServer::start().await;
    let p = people(16, 1);
    let school = server.org(Role::Employer).uscc;
    let mut request = check_request(&p[0].0, &p[0].1, Purpose::PreHire);
    request.on_behalf_of = school.clone();
    let ok = outcome(&server, Role::Bureau, request.clone())
        .await
        .unwrap();
    assert_eq!(ok.employer, school);

    // A kindergarten enrolled under no bureau at all.
    let mut generator = safehire::synth::Generator::new(99, common::start_time().date());
    let other = generator.uscc();
    server
        .orgs(Role::Operator)
        .await
        .enroll(proto::EnrollRequest {
            uscc: other.clone(),
            name: "阳光幼儿园".into(),
            role: proto::Role::Employer as i32,
            region: "150602".into(),
            industry: proto::Industry::Kindergarten as i32,
            supervising_bureau: String::new(),
        })
        .await
        .unwrap();
    request.on_behalf_of = other.clone();
    let refused = outcome(&server, Role::Bureau, request.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    request.on_behalf_of.clear();
    let missing = outcome(&server, Role::Bureau, request.clone())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    // An employer cannot check for another employer either.
    request.on_behalf_of = other;
    let employer = outcome(&server, Role::Employer, request).await.unwrap_err();
    assert_eq!(employer.code(), Code::PermissionDenied);
    let denied = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.outcome == "PERMISSION_DENIED")
        .count();
    assert_eq!(denied, 2);
}

#[tokio::test]
async fn bad_identity_numbers_are_answered_precisely() {
    let server = TestServer::start().await;
    let p = people(17, 1);
    let (id, name) = (&p[0].0, &p[0].1);
    server
        .import(vec![record(1, "REC-F", id, name, Category::Sexual)])
        .await;

    let expect_invalid = |number: String, needle: &'static str| {
        let request = check_request(&number, name, Purpose::PreHire);
        let server = &server;
        async move {
            let status = outcome(server, Role::Employer, request).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{number}");
            assert!(
                status.message().starts_with("subject.doc_number:"),
                "{}",
                status.message()
            );
            assert!(
                status.message().contains(needle),
                "{} lacks {needle}",
                status.message()
            );
            assert!(
                !status.message().contains(&number),
                "the message repeats the number"
            );
        }
    };
    // Wrong check digit: the message names the right one.
    let right = id.chars().last().unwrap();
    let wrong = if right == '1' { '2' } else { '1' };
    expect_invalid(format!("{}{wrong}", &id[..17]), "check digit should be").await;
    // Impossible date.
    let body = format!("{}19900230{}", &id[..6], &id[14..17]);
    let check = safehire::identity::resident_id_check_char(&body).unwrap();
    expect_invalid(format!("{body}{check}"), "1990-02-30").await;
    // Wrong length.
    expect_invalid(id[..16].to_string(), "18").await;

    // Full-width digits and a lower-case x normalise to the same person.
    let full_width: String = id
        .chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap(),
            'X' => 'x',
            other => other,
        })
        .collect();
    let found = outcome(
        &server,
        Role::Employer,
        check_request(&full_width, name, Purpose::PreHire),
    )
    .await
    .unwrap();
    assert_eq!(found.outcome(), Outcome::RecordFound);
    // Spaces inside a Chinese name do not hide it.
    let spaced: String = name.chars().map(|c| format!("{c} ")).collect();
    let found = outcome(
        &server,
        Role::Employer,
        check_request(id, &spaced, Purpose::PreHire),
    )
    .await
    .unwrap();
    assert_eq!(found.outcome(), Outcome::RecordFound);
}

#[tokio::test]
async fn missing_fields_are_named() {
    let server = TestServer::start().await;
    let p = people(18, 1);
    let mut no_purpose = check_request(&p[0].0, &p[0].1, Purpose::PreHire);
    no_purpose.purpose = 0;
    let status = outcome(&server, Role::Employer, no_purpose)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("purpose:"),
        "{}",
        status.message()
    );
    let mut no_subject = check_request(&p[0].0, &p[0].1, Purpose::PreHire);
    no_subject.subject = None;
    let status = outcome(&server, Role::Employer, no_subject)
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("subject:"),
        "{}",
        status.message()
    );
    let mut no_name = check_request(&p[0].0, "", Purpose::PreHire);
    no_name.scope = proto::Scope::Sexual as i32;
    let status = outcome(&server, Role::Employer, no_name).await.unwrap_err();
    assert!(
        status.message().starts_with("subject.name:"),
        "{}",
        status.message()
    );
}
