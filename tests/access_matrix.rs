//! The access-control matrix: every RPC the server declares (`Rpc::ALL`) called by every role
//! and without a certificate. Exactly the declared roles get past authorisation; every other
//! caller gets PERMISSION_DENIED (UNAUTHENTICATED without a certificate), and each refusal is
//! in the audit log under that RPC's name.

mod common;

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
    assert!(
        Rpc::ALL.len() >= 26,
        "every RPC of every service is declared"
    );
}
