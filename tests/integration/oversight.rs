//! Legal supervision through the real server: a district of 20 units lives through 420 days on
//! the test clock — some never check, one hires without checking, one skips the yearly
//! re-check, one keeps a hit on staff, one checks 200 strangers — and the compliance report
//! flags exactly those units with exactly those findings; a bureau sees only its own units; the
//! report is reproducible; the audit trail answers "who checked this person".

use crate::common;

use std::collections::BTreeMap;

use common::{TestServer, check_request, member, people, record, roster_upload};
use safehire::clock::Clock;
use safehire::org::Role;
use safehire::proto::{self, Category, FindingKind, Purpose};
use time::Duration;

const DISTRICT: &str = "150702";

struct Unit {
    uscc: String,
    staff: Vec<(String, String)>,
}

async fn enroll(server: &TestServer, uscc: &str, name: &str, bureau: &str) {
    server
        .orgs(Role::Operator)
        .await
        .enroll(proto::EnrollRequest {
            uscc: uscc.into(),
            name: name.into(),
            role: proto::Role::Employer as i32,
            region: DISTRICT.into(),
            industry: proto::Industry::Kindergarten as i32,
            supervising_bureau: bureau.into(),
        })
        .await
        .unwrap();
}

/// A pre-hire check by the bureau on behalf of `unit`.
async fn check(server: &TestServer, unit: &str, person: &(String, String), purpose: Purpose) {
    let mut request = check_request(&person.0, &person.1, purpose);
    request.on_behalf_of = unit.to_string();
    server
        .checks(Role::Bureau)
        .await
        .check(request)
        .await
        .unwrap();
}

async fn replace_roster(server: &TestServer, unit: &Unit, hired: &str) {
    let members = unit
        .staff
        .iter()
        .enumerate()
        .map(|(i, (doc, name))| member(i as u64 + 1, doc, name, hired))
        .collect();
    server
        .rosters(Role::Bureau)
        .await
        .replace_roster(tokio_stream::iter(roster_upload(&unit.uscc, members, 50)))
        .await
        .unwrap();
}

async fn recheck(server: &TestServer, unit: &str) {
    let mut stream = server
        .rosters(Role::Bureau)
        .await
        .run_recheck(proto::RecheckRequest {
            on_behalf_of: unit.into(),
            scope: 0,
        })
        .await
        .unwrap()
        .into_inner();
    while stream.message().await.unwrap().is_some() {}
}

fn date_of(server: &TestServer) -> String {
    safehire::roster::date_text(safehire::clock::calendar_date(server.clock.now()))
}

/// The report as (header, units by USCC, bureau groups by key, totals).
struct Report {
    header: proto::ReportHeader,
    units: BTreeMap<String, proto::UnitReport>,
    bureaus: BTreeMap<String, proto::GroupSummary>,
    regions: BTreeMap<String, proto::GroupSummary>,
    totals: proto::ReportTotals,
    items: Vec<proto::ComplianceItem>,
}

async fn report(
    server: &TestServer,
    role: Role,
    as_of: time::OffsetDateTime,
) -> Result<Report, tonic::Status> {
    let mut stream = server
        .channel(role)
        .await
        .pipe(proto::oversight_service_client::OversightServiceClient::new)
        .compliance_report(proto::ComplianceRequest {
            as_of: Some(prost_types::Timestamp {
                seconds: as_of.unix_timestamp(),
                nanos: 0,
            }),
            region_prefix: "1507".into(),
            industry: 0,
        })
        .await?
        .into_inner();
    let mut report = Report {
        header: Default::default(),
        units: BTreeMap::new(),
        bureaus: BTreeMap::new(),
        regions: BTreeMap::new(),
        totals: Default::default(),
        items: Vec::new(),
    };
    while let Some(item) = stream.message().await? {
        report.items.push(item.clone());
        match item.item {
            Some(proto::compliance_item::Item::Header(h)) => report.header = h,
            Some(proto::compliance_item::Item::Unit(u)) => {
                report.units.insert(u.uscc.clone(), u);
            }
            Some(proto::compliance_item::Item::Bureau(b)) => {
                report.bureaus.insert(b.key.clone(), b);
            }
            Some(proto::compliance_item::Item::Region(r)) => {
                report.regions.insert(r.key.clone(), r);
            }
            Some(proto::compliance_item::Item::Totals(t)) => report.totals = t,
            None => {}
        }
    }
    Ok(report)
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

fn kinds(unit: &proto::UnitReport) -> Vec<FindingKind> {
    unit.findings
        .iter()
        .map(|f| FindingKind::try_from(f.kind).unwrap())
        .collect()
}

#[tokio::test]
async fn the_report_flags_exactly_the_units_that_broke_the_rules() {
    let server = TestServer::start().await;
    let bureau = server.org(Role::Bureau).uscc;
    let mut generator = safehire::synth::Generator::new(90, common::start_time().date());
    let everyone = people(91, 20 * 5 + 1 + 200);
    let mut units = Vec::new();
    for i in 0..20 {
        let uscc = generator.uscc();
        enroll(&server, &uscc, &format!("第{}幼儿园", i + 1), &bureau).await;
        units.push(Unit {
            uscc,
            staff: everyone[i * 5..i * 5 + 5].to_vec(),
        });
    }
    // Two units of another bureau in the same district: the prosecutor sees them, our bureau
    // does not.
    let other_bureau = generator.uscc();
    server
        .orgs(Role::Operator)
        .await
        .enroll(proto::EnrollRequest {
            uscc: other_bureau.clone(),
            name: "另一教育局".into(),
            role: proto::Role::Bureau as i32,
            region: DISTRICT.into(),
            industry: proto::Industry::NotApplicable as i32,
            supervising_bureau: String::new(),
        })
        .await
        .unwrap();
    let others = [generator.uscc(), generator.uscc()];
    for (i, uscc) in others.iter().enumerate() {
        enroll(&server, uscc, &format!("外区学校{i}"), &other_bureau).await;
    }
    let (never, hires_unchecked, skips_recheck, keeps_hit, fishing) = (0..3, 3, 4, 5, 6);

    // Day 0: every unit but the first three checks its staff before hiring and declares them.
    let hired = date_of(&server);
    for unit in &units[3..] {
        let staff = if std::ptr::eq(unit, &units[hires_unchecked]) {
            &unit.staff[..4]
        } else {
            &unit.staff[..]
        };
        for person in staff {
            check(&server, &unit.uscc, person, Purpose::PreHire).await;
        }
        let declared = Unit {
            uscc: unit.uscc.clone(),
            staff: staff.to_vec(),
        };
        replace_roster(&server, &declared, &hired).await;
    }

    // Day 360: the yearly re-check, by all of them but one.
    server.clock.advance(Duration::days(360));
    for (i, unit) in units.iter().enumerate().skip(3) {
        if i != skips_recheck {
            recheck(&server, &unit.uscc).await;
        }
    }

    // Day 365: a hire without a check.
    server.clock.advance(Duration::days(5));
    let late = &units[hires_unchecked];
    let mut new_member = member(5, &late.staff[4].0, &late.staff[4].1, &date_of(&server));
    new_member.staff_ref = "S00005".into();
    server
        .rosters(Role::Bureau)
        .await
        .record_hires(tokio_stream::iter(roster_upload(
            &late.uscc,
            vec![new_member],
            10,
        )))
        .await
        .unwrap();

    // Day 370: 200 checks of people who never join the staff.
    server.clock.advance(Duration::days(5));
    for stranger in &everyone[101..301] {
        check(&server, &units[fishing].uscc, stranger, Purpose::PreHire).await;
    }

    // Day 380: a record for a member of one unit; it acknowledges the alert the next day but
    // keeps the person on staff.
    server.clock.advance(Duration::days(10));
    let kept = &units[keeps_hit].staff[2];
    server
        .import(vec![record(
            1,
            "REC-O1",
            &kept.0,
            &kept.1,
            Category::Sexual,
        )])
        .await;
    server.clock.advance(Duration::days(1));
    let alerts = server
        .alerts(Role::Bureau)
        .await
        .list_alerts(proto::ListAlertsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .alerts;
    assert_eq!(alerts.len(), 1);
    server
        .alerts(Role::Bureau)
        .await
        .acknowledge_alert(proto::AcknowledgeRequest {
            alert_id: alerts[0].id,
            action: proto::AlertAction::SuspendedPendingReview as i32,
            note: String::new(),
        })
        .await
        .unwrap();

    // Day 420: the prosecutor asks.
    server.clock.advance(Duration::days(39));
    let as_of = server.clock.now();
    let seen = report(&server, Role::Prosecutor, as_of).await.unwrap();
    assert_eq!(seen.units.len(), 22);
    let mut expected: BTreeMap<String, Vec<FindingKind>> = BTreeMap::new();
    for i in never {
        expected.insert(
            units[i].uscc.clone(),
            vec![FindingKind::NeverChecked, FindingKind::NoRoster],
        );
    }
    for uscc in &others {
        expected.insert(
            uscc.clone(),
            vec![FindingKind::NeverChecked, FindingKind::NoRoster],
        );
    }
    expected.insert(
        units[hires_unchecked].uscc.clone(),
        vec![FindingKind::UncheckedStaff],
    );
    expected.insert(
        units[skips_recheck].uscc.clone(),
        vec![FindingKind::OverdueRecheck],
    );
    expected.insert(
        units[keeps_hit].uscc.clone(),
        vec![FindingKind::HitStillOnStaff],
    );
    expected.insert(
        units[fishing].uscc.clone(),
        vec![FindingKind::ExcessQueries],
    );
    let flagged: BTreeMap<String, Vec<FindingKind>> = seen
        .units
        .values()
        .filter(|u| !u.findings.is_empty())
        .map(|u| (u.uscc.clone(), kinds(u)))
        .collect();
    assert_eq!(flagged, expected);

    // The evidence behind the findings.
    let unit = |i: usize| &seen.units[&units[i].uscc];
    let evidence = |i: usize| (unit(i).findings[0].count, unit(i).findings[0].of);
    assert_eq!(evidence(hires_unchecked), (1, 5));
    assert_eq!(evidence(skips_recheck), (5, 5));
    assert_eq!(evidence(keeps_hit), (1, 5));
    assert_eq!(unit(fishing).findings[0].count, 200);

    // The bureau aggregate: 20 units, 7 with findings; checked in time = members neither
    // overdue nor hired unchecked (U4: 4 of 5, U5: 0 of 5, the other 15 rostered: all 5).
    let ours = &seen.bureaus[&bureau];
    assert_eq!((ours.units, ours.units_with_findings), (20, 7));
    assert_eq!(ours.current_members, 17 * 5);
    assert_eq!(ours.checked_in_time, 15 * 5 + 4);
    assert_eq!(seen.bureaus[&other_bureau].units_with_findings, 2);
    assert_eq!(seen.regions[DISTRICT].units, 22);
    assert_eq!(
        (seen.totals.units, seen.totals.units_with_findings),
        (22, 9)
    );

    // A bureau sees only its own units; an employer is refused.
    let own = report(&server, Role::Bureau, as_of).await.unwrap();
    assert_eq!(own.units.len(), 20);
    assert!(own.units.keys().all(|u| !others.contains(u)));
    assert_eq!(own.bureaus.len(), 1);
    let refused = report(&server, Role::Employer, as_of)
        .await
        .err()
        .expect("an employer may not see reports");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    // Reproducible: the same moment gives the same report, stating the same audit head, though
    // the reports themselves were audited in between.
    let again = report(&server, Role::Prosecutor, as_of).await.unwrap();
    assert_eq!(again.items, seen.items);
    assert!(seen.header.audit_seq > 0);
    let head = server
        .audit(Role::Prosecutor)
        .await
        .head(proto::HeadRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(head.sequence > seen.header.audit_seq, "later entries exist");

    // Later, the moment the report stated gives the same report again.
    server.clock.advance(Duration::minutes(5));
    let stated = safehire::clock::from_micros(
        seen.header.as_of.as_ref().unwrap().seconds * 1_000_000
            + i64::from(seen.header.as_of.as_ref().unwrap().nanos) / 1_000,
    );
    let later = report(&server, Role::Prosecutor, stated).await.unwrap();
    assert_eq!(later.header.audit_seq, seen.header.audit_seq);
    assert_eq!(later.units, seen.units);

    // A report of an earlier moment: before the alert, the hit was not yet a finding.
    let earlier = report(&server, Role::Prosecutor, as_of - Duration::days(41))
        .await
        .unwrap();
    assert!(kinds(&earlier.units[&units[keeps_hit].uscc]).is_empty());
}

#[tokio::test]
async fn the_audit_trail_streams_by_organisation_and_answers_who_checked_a_person() {
    let server = TestServer::start().await;
    let p = people(95, 3);
    let employer = server.org(Role::Employer).uscc;
    let mut checks = server.checks(Role::Employer).await;
    for person in &p {
        checks
            .check(check_request(&person.0, &person.1, Purpose::PreHire))
            .await
            .unwrap();
    }
    checks
        .check(check_request(&p[0].0, &p[0].1, Purpose::PreHire))
        .await
        .unwrap();
    let mut oversight = proto::oversight_service_client::OversightServiceClient::new(
        server.channel(Role::Prosecutor).await,
    );
    let mut trail = oversight
        .list_audit_entries(proto::AuditQuery {
            organisation: employer.clone(),
            action: "CheckService.Check".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut listed = Vec::new();
    while let Some(entry) = trail.message().await.unwrap() {
        listed.push(entry);
    }
    assert_eq!(listed.len(), 4);
    assert!(listed.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(listed.iter().all(|e| e.subject_hash.len() == 64));

    let mut who = oversight
        .who_checked(proto::WhoCheckedRequest {
            subject: Some(common::identity(&p[0].0, &p[0].1)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut found = Vec::new();
    while let Some(entry) = who.message().await.unwrap() {
        found.push(entry);
    }
    let checks_of_p0: Vec<(&str, &str)> = found
        .iter()
        .filter(|e| e.action == "CheckService.Check")
        .map(|e| (e.employer.as_str(), e.purpose.as_str()))
        .collect();
    assert_eq!(
        checks_of_p0,
        [
            (employer.as_str(), "PRE_HIRE"),
            (employer.as_str(), "PRE_HIRE")
        ]
    );
    // The question itself is on the record, with the subject it asked about.
    let asked = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "OversightService.WhoChecked")
        .collect::<Vec<_>>();
    assert_eq!(asked.len(), 1);
    assert!(asked[0].has_subject);
    assert!(
        found
            .iter()
            .any(|e| e.action == "OversightService.WhoChecked")
    );

    // Only prosecutors read the trail.
    let refused = proto::oversight_service_client::OversightServiceClient::new(
        server.channel(Role::Bureau).await,
    )
    .list_audit_entries(proto::AuditQuery::default())
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn a_bureau_enrols_its_own_units_and_no_one_else() {
    let server = TestServer::start().await;
    let bureau = server.org(Role::Bureau).uscc;
    let mut generator = safehire::synth::Generator::new(96, common::start_time().date());
    let unit = generator.uscc();
    let mut orgs = server.orgs(Role::Bureau).await;
    let request = |uscc: &str, role: proto::Role, bureau: &str| proto::EnrollRequest {
        uscc: uscc.into(),
        name: "第三小学".into(),
        role: role as i32,
        region: DISTRICT.into(),
        industry: proto::Industry::PrimarySecondarySchool as i32,
        supervising_bureau: bureau.into(),
    };
    orgs.enroll(request(&unit, proto::Role::Employer, &bureau))
        .await
        .expect("a new unit under itself");
    orgs.enroll(request(&unit, proto::Role::Employer, &bureau))
        .await
        .expect("an update of its own unit");
    for (target, why) in [
        (server.org(Role::Prosecutor).uscc, "the prosecutor"),
        (server.org(Role::Operator).uscc, "the operator"),
        (server.org(Role::Registrar).uscc, "the registrar"),
    ] {
        let refused = orgs
            .enroll(request(&target, proto::Role::Employer, &bureau))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{why}");
    }
    let refused = orgs
        .enroll(request(&generator.uscc(), proto::Role::Bureau, ""))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "a bureau");
    let prosecutor = server
        .orgs(Role::Operator)
        .await
        .list(proto::ListOrganisationsRequest {
            role: proto::Role::Prosecutor as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(prosecutor.role, proto::Role::Prosecutor as i32, "unchanged");
}

/// The grace period after a hire is counted in Beijing days. Two people hired on 2 March, the
/// grace being 7 days: one checked at 23:30 on the 9th in Beijing (in time), one at 07:30 on
/// the 10th in Beijing — still the 9th in UTC, and late all the same.
#[tokio::test]
async fn the_days_of_the_rules_are_beijing_days() {
    let server = TestServer::start().await;
    let bureau = server.org(Role::Bureau).uscc;
    let mut generator = safehire::synth::Generator::new(95, common::start_time().date());
    let uscc = generator.uscc();
    enroll(&server, &uscc, "北京时间幼儿园", &bureau).await;
    let unit = Unit {
        uscc,
        staff: people(96, 2),
    };
    server
        .clock
        .set(time::macros::datetime!(2026-03-02 10:00 +8));
    replace_roster(&server, &unit, "2026-03-02").await;

    server
        .clock
        .set(time::macros::datetime!(2026-03-09 23:30 +8));
    check(&server, &unit.uscc, &unit.staff[0], Purpose::PreHire).await;
    server
        .clock
        .set(time::macros::datetime!(2026-03-10 07:30 +8));
    assert_eq!(
        server.clock.now().to_offset(time::UtcOffset::UTC).date(),
        time::macros::date!(2026 - 03 - 09),
        "the second check is still on the 9th in UTC"
    );
    check(&server, &unit.uscc, &unit.staff[1], Purpose::PreHire).await;

    server.clock.advance(Duration::days(5));
    let report = report(&server, Role::Prosecutor, server.clock.now())
        .await
        .unwrap();
    let found = &report.units[&unit.uscc];
    assert_eq!(kinds(found), [FindingKind::UncheckedStaff], "{found:?}");
    assert_eq!(
        (found.findings[0].count, found.findings[0].of),
        (1, 2),
        "{:?}",
        found.findings[0]
    );
}

/// A report for a past `as_of` sees the roster as it was declared then. After that day, one
/// member's hire date is corrected and the other leaves and is rehired; the report for the
/// earlier day is unchanged (with the dates as they are now, it would count neither as staff
/// on that day).
#[tokio::test]
async fn a_past_report_keeps_the_roster_as_it_was_declared_then() {
    let server = TestServer::start().await;
    let bureau = server.org(Role::Bureau).uscc;
    let mut generator = safehire::synth::Generator::new(97, common::start_time().date());
    let uscc = generator.uscc();
    enroll(&server, &uscc, "回溯幼儿园", &bureau).await;
    let unit = Unit {
        uscc,
        staff: people(98, 2),
    };
    server
        .clock
        .set(time::macros::datetime!(2026-03-02 10:00 +8));
    replace_roster(&server, &unit, "2026-03-02").await;
    for person in &unit.staff {
        check(&server, &unit.uscc, person, Purpose::PreHire).await;
    }
    server.clock.advance(Duration::days(10));
    let as_of = server.clock.now();
    let before = report(&server, Role::Prosecutor, as_of).await.unwrap();
    let then = &before.units[&unit.uscc];
    assert_eq!((then.current_members, then.checked_in_time), (2, 2));
    assert!(then.findings.is_empty(), "{then:?}");

    // Day 20: a new roster keeps only the first member, with a corrected hire date; the
    // second leaves. Day 50: the second is hired again.
    server.clock.advance(Duration::days(10));
    let corrected = vec![member(1, &unit.staff[0].0, &unit.staff[0].1, "2026-03-20")];
    server
        .rosters(Role::Bureau)
        .await
        .replace_roster(tokio_stream::iter(roster_upload(&unit.uscc, corrected, 50)))
        .await
        .unwrap();
    server.clock.advance(Duration::days(30));
    let rehired = vec![member(
        2,
        &unit.staff[1].0,
        &unit.staff[1].1,
        &date_of(&server),
    )];
    server
        .rosters(Role::Bureau)
        .await
        .record_hires(tokio_stream::iter(roster_upload(&unit.uscc, rehired, 50)))
        .await
        .unwrap();

    let after = report(&server, Role::Prosecutor, as_of).await.unwrap();
    assert_eq!(after.units[&unit.uscc], *then, "the past report changed");
    server.clock.advance(Duration::minutes(1));
    let today = report(&server, Role::Prosecutor, server.clock.now())
        .await
        .unwrap();
    assert_eq!(today.units[&unit.uscc].current_members, 2);
}

#[tokio::test]
async fn staff_on_board_before_the_first_roster_clear_once_checked_within_grace() {
    let server = TestServer::start().await;
    let bureau = server.org(Role::Bureau).uscc;
    let mut generator = safehire::synth::Generator::new(98, common::start_time().date());
    let unit = Unit {
        uscc: generator.uscc(),
        staff: people(99, 6),
    };
    enroll(&server, &unit.uscc, "老员工幼儿园", &bureau).await;
    // The unit joins with staff hired years ago, who could not have been checked before hire.
    replace_roster(&server, &unit, "2015-09-01").await;
    server.clock.advance(Duration::days(10));
    let finding = |report: &Report| {
        report.units[&unit.uscc]
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::UncheckedStaff as i32)
            .cloned()
    };
    let before = report(&server, Role::Prosecutor, server.clock.now())
        .await
        .unwrap();
    let unchecked = finding(&before).expect("nobody checked within the grace period");
    assert_eq!((unchecked.count, unchecked.of), (6, 6));
    assert!(
        unchecked
            .detail
            .ends_with("0 hired without a pre-hire check, 6 on staff and never checked"),
        "{}",
        unchecked.detail
    );

    // A second unit of the same bureau checks its staff within the grace period after joining.
    let prompt = Unit {
        uscc: generator.uscc(),
        staff: people(100, 5),
    };
    enroll(&server, &prompt.uscc, "及时幼儿园", &bureau).await;
    replace_roster(&server, &prompt, "2015-09-01").await;
    server.clock.advance(Duration::days(3));
    recheck(&server, &prompt.uscc).await;
    server.clock.advance(Duration::days(30));
    let after = report(&server, Role::Prosecutor, server.clock.now())
        .await
        .unwrap();
    assert_eq!(kinds(&after.units[&prompt.uscc]), [], "the finding cleared");
    assert_eq!(after.units[&prompt.uscc].checked_in_time, 5);
    // The late unit's first check comes after its grace period: a late check, told apart.
    recheck(&server, &unit.uscc).await;
    server.clock.advance(Duration::days(1));
    let late = report(&server, Role::Prosecutor, server.clock.now())
        .await
        .unwrap();
    let late = finding(&late).expect("checked only after the grace period");
    assert!(
        late.detail
            .ends_with("6 hired without a pre-hire check, 0 on staff and never checked"),
        "{}",
        late.detail
    );
}
