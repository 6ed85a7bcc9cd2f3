//! Who may call what: certificates, enrolment, suspension and roles, each refusal audited.

use crate::common;

use common::{TestServer, check_request, people};
use safehire::certs::{CertAuthority, OrgCertRequest, PemPair};
use safehire::org::Role;
use safehire::proto::{self, Purpose};
use tonic::Code;

/// The dev CA of `server`, to issue test certificates from it.
fn dev_ca(server: &TestServer) -> CertAuthority {
    let dir = server.certs_dir();
    CertAuthority::from_pem(
        &std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(dir.join("ca.key")).unwrap(),
    )
    .unwrap()
}

/// One periodic check presenting `pair`; a failed handshake or a refused call is an `Err`.
async fn check_with(server: &TestServer, pair: PemPair, seed: u64) -> Result<(), String> {
    let p = people(seed, 1);
    let identity = Some((pair.cert_pem.into_bytes(), pair.key_pem.into_bytes()));
    let channel = server
        .channel_with(identity)
        .await
        .map_err(|e| e.to_string())?;
    proto::check_service_client::CheckServiceClient::new(channel)
        .check(check_request(&p[0].0, &p[0].1, Purpose::PreHire))
        .await
        .map(|_| ())
        .map_err(|s| s.to_string())
}

#[tokio::test]
async fn an_employer_calling_the_registry_is_refused_and_audited() {
    let server = TestServer::start().await;
    let mut as_employer = proto::registry_service_client::RegistryServiceClient::new(
        server.channel(Role::Employer).await,
    );
    let status = as_employer
        .revoke(proto::RecordRef {
            source_ref: "REC-1".into(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status
            .message()
            .contains("EMPLOYER may not call RegistryService.Revoke"),
        "{}",
        status.message()
    );
    let status = as_employer
        .import(tokio_stream::iter(Vec::<proto::ImportChunk>::new()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let employer = server.org(Role::Employer).uscc;
    let refusals: Vec<_> = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.outcome == "PERMISSION_DENIED")
        .collect();
    assert_eq!(refusals.len(), 2);
    assert_eq!(refusals[0].action, "RegistryService.Revoke");
    assert_eq!(refusals[1].action, "RegistryService.Import");
    assert!(
        refusals
            .iter()
            .all(|r| r.caller == employer && r.role == "EMPLOYER")
    );
}

#[tokio::test]
async fn no_certificate_is_refused_and_audited() {
    let server = TestServer::start().await;
    let channel = server
        .channel_with(None)
        .await
        .expect("TLS without a client certificate connects");
    let p = people(21, 1);
    let status = proto::check_service_client::CheckServiceClient::new(channel)
        .check(check_request(&p[0].0, &p[0].1, Purpose::PreHire))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("client certificate is required"),
        "{}",
        status.message()
    );
    let row = server
        .audit_rows()
        .into_iter()
        .find(|r| r.outcome == "UNAUTHENTICATED")
        .unwrap();
    assert_eq!(row.action, "CheckService.Check");
    assert_eq!(row.caller, "");
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails_the_handshake_and_is_audited() {
    let server = TestServer::start().await;
    let now = time::OffsetDateTime::now_utc();
    let rogue = CertAuthority::generate("rogue CA", 30, now).unwrap();
    let employer = server.org(Role::Employer);
    let forged = rogue
        .issue_client(
            &OrgCertRequest {
                uscc: &employer.uscc,
                name: employer.name,
                role: "employer",
            },
            30,
            now,
        )
        .unwrap();
    let result = check_with(&server, forged, 22).await;
    assert!(
        result.is_err(),
        "a forged certificate must not get an answer"
    );
    // The handshake refusal is audited (asynchronously to the client's error; give it a moment).
    let mut audited = false;
    for _ in 0..50 {
        if server
            .audit_rows()
            .iter()
            .any(|r| r.action == "tls.handshake" && r.outcome == "UNAUTHENTICATED")
        {
            audited = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(audited, "handshake refusal audited");
    assert!(
        !server
            .audit_rows()
            .iter()
            .any(|r| r.action == "CheckService.Check")
    );
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let server = TestServer::start().await;
    let ca = dev_ca(&server);
    let employer = server.org(Role::Employer);
    let now = time::OffsetDateTime::now_utc();
    let expired = ca
        .issue_client_with_validity(
            &OrgCertRequest {
                uscc: &employer.uscc,
                name: employer.name,
                role: "employer",
            },
            now - time::Duration::days(400),
            now - time::Duration::days(35),
        )
        .unwrap();
    let result = check_with(&server, expired, 23).await;
    assert!(result.is_err());
}

#[tokio::test]
async fn unknown_and_suspended_organisations_are_refused() {
    let server = TestServer::start().await;
    let ca = dev_ca(&server);
    let mut generator = safehire::synth::Generator::new(5, common::start_time().date());
    let stranger = generator.uscc();
    let now = time::OffsetDateTime::now_utc();
    let pair = ca
        .issue_client(
            &OrgCertRequest {
                uscc: &stranger,
                name: "未登记培训机构",
                role: "employer",
            },
            30,
            now,
        )
        .unwrap();
    let p = people(24, 1);
    let channel = server
        .channel_with(Some((
            pair.cert_pem.into_bytes(),
            pair.key_pem.into_bytes(),
        )))
        .await
        .unwrap();
    let status = proto::check_service_client::CheckServiceClient::new(channel)
        .check(check_request(&p[0].0, &p[0].1, Purpose::PreHire))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("is not enrolled"));

    // Suspension takes effect on the next call, without a restart; reinstatement too.
    let employer = server.org(Role::Employer).uscc;
    let mut operator = server.orgs(Role::Operator).await;
    let suspended = operator
        .suspend(proto::StatusChangeRequest {
            uscc: employer.clone(),
            reason: "licence withdrawn".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(suspended.status(), proto::OrgStatus::Suspended);
    let mut checks = server.checks(Role::Employer).await;
    let status = checks
        .check(check_request(&p[0].0, &p[0].1, Purpose::PreHire))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("suspended"));
    operator
        .reinstate(proto::StatusChangeRequest {
            uscc: employer,
            reason: String::new(),
        })
        .await
        .unwrap();
    assert!(
        checks
            .check(check_request(&p[0].0, &p[0].1, Purpose::PreHire))
            .await
            .is_ok()
    );
    let outcomes: Vec<String> = server.audit_rows().into_iter().map(|r| r.outcome).collect();
    assert!(outcomes.contains(&"UNAUTHENTICATED".to_string()));
    assert!(outcomes.contains(&"SUSPENDED".to_string()));
    assert!(outcomes.contains(&"PERMISSION_DENIED".to_string()));
}

#[tokio::test]
async fn organisations_list_by_role_and_supervision() {
    let server = TestServer::start().await;
    let all = collect(
        server
            .orgs(Role::Prosecutor)
            .await
            .list(proto::ListOrganisationsRequest::default())
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(all.len(), 5);
    let bureau_view = collect(
        server
            .orgs(Role::Bureau)
            .await
            .list(proto::ListOrganisationsRequest::default())
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    let mut seen: Vec<String> = bureau_view.iter().map(|o| o.uscc.clone()).collect();
    seen.sort();
    let mut expected = vec![
        server.org(Role::Bureau).uscc,
        server.org(Role::Employer).uscc,
    ];
    expected.sort();
    assert_eq!(
        seen, expected,
        "a bureau sees itself and the units it supervises"
    );
    let status = server
        .orgs(Role::Employer)
        .await
        .list(proto::ListOrganisationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let bad = server
        .orgs(Role::Operator)
        .await
        .enroll(proto::EnrollRequest {
            uscc: "91350100M000100Y44".into(),
            name: "x".into(),
            role: proto::Role::Employer as i32,
            region: "150602".into(),
            industry: proto::Industry::Sports as i32,
            supervising_bureau: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("uscc:"), "{}", bad.message());
}

async fn collect(mut stream: tonic::Streaming<proto::Organisation>) -> Vec<proto::Organisation> {
    let mut out = Vec::new();
    while let Some(org) = stream.message().await.unwrap() {
        out.push(org);
    }
    out
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let server = TestServer::start().await;
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(server.channel(Role::Employer).await);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "safehire.v1.CheckService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(server.channel(Role::Employer).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("no service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "safehire.v1.CheckService",
        "safehire.v1.RegistryService",
        "safehire.v1.OrganisationService",
        "safehire.v1.AuditService",
    ] {
        assert!(
            names.contains(&service.to_string()),
            "{names:?} lacks {service}"
        );
    }

    // v1alpha too, the version Python's grpcio-reflection speaks.
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest as AlphaRequest,
        server_reflection_client::ServerReflectionClient as AlphaClient,
        server_reflection_request::MessageRequest as AlphaMessage,
        server_reflection_response::MessageResponse as AlphaResponse,
    };
    let mut alpha = AlphaClient::new(server.channel(Role::Employer).await);
    let mut responses = alpha
        .server_reflection_info(tokio_stream::iter(vec![AlphaRequest {
            host: String::new(),
            message_request: Some(AlphaMessage::ListServices(String::new())),
        }]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(AlphaResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("no v1alpha service list")
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "safehire.v1.CheckService"),
        "v1alpha lists {:?}",
        list.service
    );
}

#[tokio::test]
async fn the_first_operator_of_an_install_is_enrolled_from_the_configuration() {
    let mut generator = safehire::synth::Generator::new(7, common::start_time().date());
    let uscc = generator.uscc();
    let first = uscc.clone();
    let mut server = TestServer::start_with(move |c| {
        c.bootstrap.operator_uscc = first;
        c.bootstrap.operator_name = "某省人民检察院运维中心".into();
        c.bootstrap.operator_region = "150000".into();
    })
    .await;
    let operators = || async {
        let mut stream = server
            .orgs(Role::Operator)
            .await
            .list(proto::ListOrganisationsRequest {
                role: proto::Role::Operator as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut found = Vec::new();
        while let Some(org) = stream.message().await.unwrap() {
            found.push(org.uscc);
        }
        found
    };
    assert!(operators().await.contains(&uscc));
    server.restart().await;
    let bootstraps = server
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "server.bootstrap_operator")
        .count();
    assert_eq!(bootstraps, 1, "enrolled once, left alone on the next start");
}
