//! The access-control matrix: every RPC the server declares (`Rpc::ALL`) called by every role
//! and without a certificate. Exactly the declared roles get past authorisation; every other
//! caller gets PERMISSION_DENIED (UNAUTHENTICATED without a certificate), and each refusal is
//! in the audit log under that RPC's name. Certificates of the wrong shape (a CN only, no
//! clientAuth, two USCC SANs) identify nobody, and one that expires stops on an open channel.

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
        "OrganisationService.SetHeadcount" => Orgs::new(ch)
            .set_headcount(proto::SetHeadcountRequest::default())
            .await
            .map(drop),
        "RegistryService.TransferRecord" => Registry::new(ch)
            .transfer_record(proto::TransferRecordRequest::default())
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
        // Refusals without a certificate are folded per address and reason: the first of the
        // minute is on the record, and counts the others when the next one is written.
        if !refusals
            .iter()
            .any(|(_, outcome)| outcome == "UNAUTHENTICATED")
        {
            refusals.push((rpc.name.to_string(), "UNAUTHENTICATED".to_string()));
        }
    }
    // Every refusal of a known caller is on the record, under the RPC it refused.
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
    // Not yours and not there answer alike, and the refusal is not put on the other unit's
    // record.
    let missing = server
        .alerts(Role::Employer)
        .await
        .acknowledge_alert(proto::AcknowledgeRequest {
            alert_id: seen_by_bureau[0].id + 1_000,
            action: proto::AlertAction::Disputed as i32,
            note: "not ours".into(),
        })
        .await
        .expect_err("no such alert");
    assert_eq!(acknowledged.code(), Code::NotFound, "{acknowledged:?}");
    assert_eq!(missing.code(), Code::NotFound);
    fn shape(message: &str) -> Vec<&str> {
        message
            .split_whitespace()
            .filter(|w| w.parse::<u64>().is_err())
            .collect()
    }
    assert_eq!(shape(acknowledged.message()), shape(missing.message()));
    let employers: Vec<String> = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "AlertService.AcknowledgeAlert")
        .map(|r| r.employer)
        .collect();
    assert!(
        !employers.contains(&sibling.uscc),
        "refusals are not audited under the victim: {employers:?}"
    );
}

/// A leaf from the dev CA with the names and extended key usages given, valid until `until`.
fn shaped_cert(
    server: &TestServer,
    cn: &str,
    uris: &[String],
    ekus: Vec<rcgen::ExtendedKeyUsagePurpose>,
    until: time::OffsetDateTime,
) -> (Vec<u8>, Vec<u8>) {
    use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyPair, SanType};
    let dir = server.certs_dir();
    let ca_pem = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).unwrap()).unwrap();
    let ca_der = safehire::certs::cert_der_from_pem(&ca_pem).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    let ca_cn = ca
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params.distinguished_name.push(DnType::CommonName, ca_cn);
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = until;
    params.subject_alt_names = uris
        .iter()
        .map(|u| SanType::URI(u.clone().try_into().unwrap()))
        .collect();
    params.extended_key_usages = ekus;
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
}

#[tokio::test]
async fn only_a_certificate_of_the_strict_shape_identifies_its_organisation() {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let server = TestServer::start().await;
    let employer = server.org(Role::Employer).uscc;
    let urn = format!("urn:uscc:{employer}");
    let other = format!("urn:uscc:{}", server.org(Role::Operator).uscc);
    let year = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    let head = |channel: Channel| async move {
        proto::roster_service_client::RosterServiceClient::new(channel)
            .get_roster(proto::RosterQuery::default())
            .await
    };
    let shapes = [
        (
            "CN only",
            shaped_cert(&server, &employer, &[], vec![ClientAuth], year),
            "no SAN URI",
        ),
        (
            "no EKU",
            shaped_cert(&server, &employer, std::slice::from_ref(&urn), vec![], year),
            "clientAuth",
        ),
        (
            "serverAuth only",
            shaped_cert(
                &server,
                &employer,
                std::slice::from_ref(&urn),
                vec![ServerAuth],
                year,
            ),
            "clientAuth",
        ),
        (
            "two SANs",
            shaped_cert(
                &server,
                &employer,
                &[urn.clone(), other],
                vec![ClientAuth],
                year,
            ),
            "2 SAN URIs",
        ),
    ];
    for (what, identity, reason) in shapes {
        match server.channel_with(Some(identity)).await {
            // rustls itself refuses a certificate whose EKU excludes clientAuth.
            Err(_) => assert_eq!(what, "serverAuth only"),
            Ok(channel) => match head(channel).await {
                // rustls refuses it at the handshake, which a lazy channel reports on the call.
                Err(status) if what == "serverAuth only" => {
                    assert!(status.message().contains("transport error"), "{status:?}");
                }
                Err(status) => {
                    assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
                    assert!(
                        status.message().contains(reason),
                        "{what}: {}",
                        status.message()
                    );
                }
                Ok(_) => panic!("{what} was accepted"),
            },
        }
    }
    // The strict shape is accepted, and stops working on its open channel once it expires by
    // the server's clock, within the next call.
    let until = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let good = shaped_cert(&server, &employer, &[urn], vec![ClientAuth], until);
    let channel = server.channel_with(Some(good)).await.unwrap();
    head(channel.clone())
        .await
        .expect("a conforming certificate is accepted");
    server.clock.set(until + time::Duration::seconds(1));
    let expired = head(channel).await.expect_err("expired on an open channel");
    assert_eq!(expired.code(), Code::Unauthenticated);
    assert!(
        expired.message().contains("expired"),
        "{}",
        expired.message()
    );
    let row = server.audit_rows().into_iter().last().unwrap();
    assert_eq!(row.outcome, "UNAUTHENTICATED");
    assert!(row.detail.contains("expired"), "{row:?}");
}
