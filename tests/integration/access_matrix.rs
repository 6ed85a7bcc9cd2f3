//! The access-control matrix: every RPC the server declares (`Rpc::ALL`) called by every role
//! and without a certificate. Exactly the declared roles get past authorisation; every other
//! caller gets PERMISSION_DENIED (UNAUTHENTICATED without a certificate), and each refusal is
//! in the audit log under that RPC's name.

use crate::common;

use common::TestServer;
use safehire::api::Rpc;
use safehire::org::Role;
use safehire::proto;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// An empty request stream.
fn none<T>() -> tokio_stream::Iter<std::vec::IntoIter<T>> {
    tokio_stream::iter(Vec::new())
}

/// Calls `rpc` with an empty request: allowed callers then fail validation (or succeed), which
/// is all the matrix needs to tell them from refused ones.
async fn call(channel: Channel, rpc: &str) -> Code {
    use proto::alert_service_client::AlertServiceClient as Alerts;
    use proto::audit_service_client::AuditServiceClient as Audit;
    use proto::check_service_client::CheckServiceClient as Checks;
    use proto::organisation_service_client::OrganisationServiceClient as Orgs;
    use proto::oversight_service_client::OversightServiceClient as Oversight;
    use proto::registry_service_client::RegistryServiceClient as Registry;
    use proto::review_service_client::ReviewServiceClient as Reviews;
    use proto::roster_service_client::RosterServiceClient as Rosters;
    let ch = channel;
    let result: Result<(), Status> = match rpc {
        "CheckService.Check" => Checks::new(ch)
            .check(proto::CheckRequest::default())
            .await
            .map(drop),
        "CheckService.CheckBatch" => Checks::new(ch).check_batch(none()).await.map(drop),
        "RegistryService.Import" => Registry::new(ch).import(none()).await.map(drop),
        "RegistryService.Revoke" => Registry::new(ch)
            .revoke(proto::RecordRef::default())
            .await
            .map(drop),
        "RegistryService.Seal" => Registry::new(ch)
            .seal(proto::RecordRef::default())
            .await
            .map(drop),
        "RegistryService.Reinstate" => Registry::new(ch)
            .reinstate(proto::RecordRef::default())
            .await
            .map(drop),
        "RosterService.ReplaceRoster" => Rosters::new(ch).replace_roster(none()).await.map(drop),
        "RosterService.RecordHires" => Rosters::new(ch).record_hires(none()).await.map(drop),
        "RosterService.RecordDepartures" => {
            Rosters::new(ch).record_departures(none()).await.map(drop)
        }
        "RosterService.RunRecheck" => Rosters::new(ch)
            .run_recheck(proto::RecheckRequest::default())
            .await
            .map(drop),
        "RosterService.GetRoster" => Rosters::new(ch)
            .get_roster(proto::RosterQuery::default())
            .await
            .map(drop),
        "AlertService.WatchAlerts" => Alerts::new(ch)
            .watch_alerts(proto::WatchAlertsRequest { after_id: u64::MAX })
            .await
            .map(drop),
        "AlertService.ListAlerts" => Alerts::new(ch)
            .list_alerts(proto::ListAlertsRequest::default())
            .await
            .map(drop),
        "AlertService.AcknowledgeAlert" => Alerts::new(ch)
            .acknowledge_alert(proto::AcknowledgeRequest::default())
            .await
            .map(drop),
        "ReviewService.ListReviews" => Reviews::new(ch)
            .list_reviews(proto::ListReviewsRequest::default())
            .await
            .map(drop),
        "ReviewService.ResolveReview" => Reviews::new(ch)
            .resolve_review(proto::ResolveReviewRequest::default())
            .await
            .map(drop),
        "ReviewService.DisputeCheck" => Reviews::new(ch)
            .dispute_check(proto::DisputeCheckRequest::default())
            .await
            .map(drop),
        "OversightService.ComplianceReport" => Oversight::new(ch)
            .compliance_report(proto::ComplianceRequest {
                region_prefix: "x".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "OversightService.ListAuditEntries" => Oversight::new(ch)
            .list_audit_entries(proto::AuditQuery {
                action: "?".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "OversightService.WhoChecked" => Oversight::new(ch)
            .who_checked(proto::WhoCheckedRequest::default())
            .await
            .map(drop),
        "OrganisationService.Enroll" => Orgs::new(ch)
            .enroll(proto::EnrollRequest::default())
            .await
            .map(drop),
        "OrganisationService.Suspend" => Orgs::new(ch)
            .suspend(proto::StatusChangeRequest::default())
            .await
            .map(drop),
        "OrganisationService.Reinstate" => Orgs::new(ch)
            .reinstate(proto::StatusChangeRequest::default())
            .await
            .map(drop),
        "OrganisationService.List" => Orgs::new(ch)
            .list(proto::ListOrganisationsRequest {
                region_prefix: "x".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "OrganisationService.RevokeCertificate" => Orgs::new(ch)
            .revoke_certificate(proto::RevokeCertificateRequest::default())
            .await
            .map(drop),
        "OrganisationService.ListRevokedCertificates" => Orgs::new(ch)
            .list_revoked_certificates(proto::ListRevokedCertificatesRequest {})
            .await
            .map(drop),
        "AuditService.Head" => Audit::new(ch).head(proto::HeadRequest {}).await.map(drop),
        "AuditService.Verify" => Audit::new(ch)
            .verify(proto::VerifyRequest::default())
            .await
            .map(drop),
        "AuditService.Checkpoint" => Audit::new(ch)
            .checkpoint(proto::CheckpointRequest { size: u64::MAX })
            .await
            .map(drop),
        "AuditService.ConsistencyProof" => Audit::new(ch)
            .consistency_proof(proto::ConsistencyProofRequest::default())
            .await
            .map(drop),
        "AuditService.InclusionProof" => Audit::new(ch)
            .inclusion_proof(proto::InclusionProofRequest::default())
            .await
            .map(drop),
        "AuditService.AddCosignature" => Audit::new(ch)
            .add_cosignature(proto::AddCosignatureRequest::default())
            .await
            .map(drop),
        other => panic!("{other} is declared in Rpc::ALL but the matrix cannot call it"),
    };
    result.err().map_or(Code::Ok, |status| status.code())
}

#[tokio::test]
async fn exactly_the_declared_roles_pass_every_rpc() {
    let server = TestServer::start().await;
    let mut refusals = Vec::new();
    for rpc in Rpc::ALL {
        for role in Role::ALL {
            let code = call(server.channel(*role).await, rpc.name).await;
            if rpc.roles.contains(role) {
                assert!(
                    !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
                    "{} as {}: refused ({code:?}) though the role is allowed",
                    rpc.name,
                    role.label()
                );
            } else {
                assert_eq!(
                    code,
                    Code::PermissionDenied,
                    "{} as {}",
                    rpc.name,
                    role.label()
                );
                refusals.push((rpc.name.to_string(), "PERMISSION_DENIED".to_string()));
            }
        }
        let anonymous = server.channel_with(None).await.unwrap();
        assert_eq!(
            call(anonymous, rpc.name).await,
            Code::Unauthenticated,
            "{} without a certificate",
            rpc.name
        );
        refusals.push((rpc.name.to_string(), "UNAUTHENTICATED".to_string()));
    }
    // Every refusal is on the record, under the RPC it refused.
    let audited: Vec<(String, String)> = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.outcome == "PERMISSION_DENIED" || r.outcome == "UNAUTHENTICATED")
        .map(|r| (r.action, r.outcome))
        .collect();
    assert_eq!(audited, refusals);
    eprintln!(
        "{} RPCs x {} roles and no certificate: {} refusals, each audited",
        Rpc::ALL.len(),
        Role::ALL.len(),
        refusals.len()
    );
    assert!(
        Rpc::ALL.len() >= 26,
        "every RPC of every service is declared"
    );
}

/// Acting for someone else: a bureau for a unit it does not supervise, an employer for another
/// employer (its roster, re-check, checks, disputes) — each refused with PERMISSION_DENIED and
/// audited; and an employer sees only its own alerts, not another unit's.
#[tokio::test]
async fn nobody_acts_for_a_unit_outside_their_reach() {
    use proto::check_batch_request::Item as BatchItem;
    let server = TestServer::start().await;
    let bureau = server.org(Role::Bureau).uscc;
    let mut generator = safehire::synth::Generator::new(62, common::start_time().date());
    // `sibling` is supervised by the dev bureau; `foreign` by no bureau at all.
    let (sibling, foreign) = (generator.org(1), generator.org(2));
    let mut orgs = server.orgs(Role::Operator).await;
    for (unit, supervisor) in [(&sibling, bureau.clone()), (&foreign, String::new())] {
        orgs.enroll(proto::EnrollRequest {
            uscc: unit.uscc.clone(),
            name: unit.name.clone(),
            role: proto::Role::Employer as i32,
            region: unit.region.clone(),
            industry: proto::Industry::PrimarySecondarySchool as i32,
            supervising_bureau: supervisor,
        })
        .await
        .unwrap();
    }
    let other = foreign.uscc.clone();

    let mut refused = Vec::new();
    for role in [Role::Bureau, Role::Employer] {
        let (channel, target) = match role {
            Role::Bureau => (server.channel(role).await, other.clone()),
            _ => (server.channel(role).await, sibling.uscc.clone()),
        };
        let mut checks = proto::check_service_client::CheckServiceClient::new(channel.clone());
        let mut rosters = proto::roster_service_client::RosterServiceClient::new(channel.clone());
        let mut reviews = proto::review_service_client::ReviewServiceClient::new(channel);
        let (doc, name) = &common::people(63, 1)[0];
        let mut attempts: Vec<(&str, Result<(), Status>)> = Vec::new();
        attempts.push((
            "CheckService.Check",
            checks
                .check(proto::CheckRequest {
                    on_behalf_of: target.clone(),
                    ..common::check_request(doc, name, proto::Purpose::PreHire)
                })
                .await
                .map(drop),
        ));
        let header = proto::CheckBatchRequest {
            item: Some(BatchItem::Header(proto::BatchHeader {
                batch_id: "reach".into(),
                purpose: proto::Purpose::Periodic as i32,
                scope: proto::Scope::Art62 as i32,
                consent_policy: proto::ConsentPolicy::NotRequired as i32,
                consent_ref: String::new(),
                on_behalf_of: target.clone(),
            })),
        };
        let batch = match checks.check_batch(tokio_stream::iter(vec![header])).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => break Ok(()),
                        Err(status) => break Err(status),
                    }
                }
            }
            Err(status) => Err(status),
        };
        attempts.push(("CheckService.CheckBatch", batch));
        attempts.push((
            "RosterService.ReplaceRoster",
            rosters
                .replace_roster(tokio_stream::iter(common::roster_upload(
                    &target,
                    vec![common::member(1, doc, name, "2026-09-01")],
                    10,
                )))
                .await
                .map(drop),
        ));
        attempts.push((
            "RosterService.GetRoster",
            rosters
                .get_roster(proto::RosterQuery {
                    on_behalf_of: target.clone(),
                    max_due: 0,
                })
                .await
                .map(drop),
        ));
        attempts.push((
            "RosterService.RunRecheck",
            rosters
                .run_recheck(proto::RecheckRequest {
                    on_behalf_of: target.clone(),
                    scope: 0,
                })
                .await
                .map(drop),
        ));
        attempts.push((
            "ReviewService.DisputeCheck",
            reviews
                .dispute_check(proto::DisputeCheckRequest {
                    check_id: uuid::Uuid::now_v7().to_string(),
                    on_behalf_of: target.clone(),
                    note: "not ours".into(),
                })
                .await
                .map(drop),
        ));
        for (rpc, result) in attempts {
            let status = result.expect_err(&format!("{rpc} as {} for {target}", role.label()));
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{rpc} as {}: {status:?}",
                role.label()
            );
            refused.push(rpc.to_string());
        }
    }
    let audited: Vec<String> = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.outcome == "PERMISSION_DENIED")
        .map(|r| r.action)
        .collect();
    assert_eq!(audited, refused, "every refusal is audited, in order");

    // An alert for the sibling unit (its roster declared by the bureau): the bureau sees it,
    // the dev employer does not, and cannot acknowledge it.
    let (doc, name) = &common::people(64, 1)[0];
    server
        .rosters(Role::Bureau)
        .await
        .replace_roster(tokio_stream::iter(common::roster_upload(
            &sibling.uscc,
            vec![common::member(1, doc, name, "2026-09-01")],
            10,
        )))
        .await
        .unwrap();
    server
        .import(vec![common::record(
            1,
            "REC-REACH",
            doc,
            name,
            proto::Category::Sexual,
        )])
        .await;
    let server = &server;
    let listed = |role| async move {
        server
            .alerts(role)
            .await
            .list_alerts(proto::ListAlertsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .alerts
    };
    let seen_by_bureau = listed(Role::Bureau).await;
    assert_eq!(seen_by_bureau.len(), 1);
    assert_eq!(seen_by_bureau[0].employer, sibling.uscc);
    assert!(
        listed(Role::Employer).await.is_empty(),
        "not the employer's alert"
    );
    let acknowledged = server
        .alerts(Role::Employer)
        .await
        .acknowledge_alert(proto::AcknowledgeRequest {
            alert_id: seen_by_bureau[0].id,
            action: proto::AlertAction::Disputed as i32,
            note: "not ours".into(),
        })
        .await
        .expect_err("another unit's alert");
    assert!(
        matches!(acknowledged.code(), Code::PermissionDenied | Code::NotFound),
        "{acknowledged:?}"
    );
}
