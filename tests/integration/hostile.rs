//! Hostile input through the real server: oversized messages, huge names, NUL bytes, invalid
//! UTF-8, invisible and right-to-left marks, homoglyph digits. Each gets a precise status that
//! names the field, nothing is leaked back, and the server stays healthy.

use crate::common;

use common::{TestServer, check_request, people};
use safehire::org::Role;
use safehire::proto::{self, Purpose};
use tonic::Code;

async fn check_status(server: &TestServer, doc: &str, name: &str) -> tonic::Status {
    server
        .checks(Role::Employer)
        .await
        .check(check_request(doc, name, Purpose::PreHire))
        .await
        .expect_err("refused")
}

async fn healthy(server: &TestServer) {
    let reply =
        tonic_health::pb::health_client::HealthClient::new(server.channel(Role::Employer).await)
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("the server still answers");
    assert_eq!(reply.into_inner().status, 1, "SERVING");
}

#[tokio::test]
async fn hostile_identities_get_precise_errors_and_the_server_stays_up() {
    let server = TestServer::start().await;
    let (doc, name) = people(81, 1).remove(0);

    let huge = check_status(&server, &doc, &"张".repeat(350_000)).await;
    assert_eq!(huge.code(), Code::InvalidArgument);
    assert!(
        huge.message().starts_with("subject.name: too long"),
        "{}",
        huge.message()
    );
    assert!(
        huge.message().len() < 200,
        "the answer does not echo the input"
    );

    let nul = check_status(&server, &doc, "张\0三").await;
    assert_eq!(nul.code(), Code::InvalidArgument);
    assert!(
        nul.message().starts_with("subject.name"),
        "{}",
        nul.message()
    );

    let nul_doc = check_status(&server, &format!("{}\0", &doc[..17]), &name).await;
    assert_eq!(nul_doc.code(), Code::InvalidArgument);
    assert!(nul_doc.message().starts_with("subject.doc_number"));

    // Arabic-Indic digits look like digits and are not: refused, not silently NO_RECORD.
    let arabic: String = doc
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0x0660 + d).unwrap(),
            None => c,
        })
        .collect();
    let homoglyph = check_status(&server, &arabic, &name).await;
    assert_eq!(homoglyph.code(), Code::InvalidArgument);
    assert!(homoglyph.message().starts_with("subject.doc_number"));

    // Invisible and right-to-left marks are dropped before hashing: the same person.
    let marked_doc = format!("\u{200F}{}\u{200B}", doc);
    let marked_name = format!("\u{202E}{}\u{FEFF}", name);
    let plain = server
        .checks(Role::Employer)
        .await
        .check(check_request(&doc, &name, Purpose::PreHire))
        .await
        .unwrap()
        .into_inner();
    let marked = server
        .checks(Role::Employer)
        .await
        .check(check_request(&marked_doc, &marked_name, Purpose::PreHire))
        .await;
    match marked {
        Ok(reply) => assert_eq!(reply.into_inner().outcome, plain.outcome),
        Err(status) => {
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(status.message().starts_with("subject."));
        }
    }

    // Combining marks piled on a name.
    let zalgo = format!("{}{}", name, "\u{0301}".repeat(500));
    let piled = check_status(&server, &doc, &zalgo).await;
    assert_eq!(piled.code(), Code::InvalidArgument);
    assert!(piled.message().starts_with("subject.name"));
    healthy(&server).await;
}

#[tokio::test]
async fn an_oversized_message_is_refused_with_a_status_not_a_dropped_connection() {
    let server = TestServer::start_with(|c| c.limits.max_message_bytes = 64 * 1024).await;
    let mut checks = server.checks(Role::Employer).await;
    let mut request = check_request("110105194912310029", "张三", Purpose::PreHire);
    request.consent_ref = "C".repeat(100 * 1024);
    let status = checks.check(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    // The same connection still works.
    let (doc, name) = people(82, 1).remove(0);
    checks
        .check(check_request(&doc, &name, Purpose::PreHire))
        .await
        .expect("the connection survives");
    healthy(&server).await;
}

/// A CheckRequest whose identity carries raw bytes where the proto says string.
#[derive(Clone, PartialEq, prost::Message)]
struct RawIdentity {
    #[prost(int32, tag = "1")]
    doc_type: i32,
    #[prost(bytes = "vec", tag = "2")]
    doc_number: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    name: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawCheckRequest {
    #[prost(message, optional, tag = "1")]
    subject: Option<RawIdentity>,
    #[prost(int32, tag = "2")]
    purpose: i32,
    #[prost(int32, tag = "3")]
    scope: i32,
}

#[tokio::test]
async fn invalid_utf8_is_refused_and_the_server_stays_up() {
    let server = TestServer::start().await;
    let mut grpc = tonic::client::Grpc::new(server.channel(Role::Employer).await);
    grpc.ready().await.unwrap();
    let request = RawCheckRequest {
        subject: Some(RawIdentity {
            doc_type: proto::DocType::CnResidentId as i32,
            doc_number: b"11010519491231\xff\xfe29".to_vec(),
            name: "张三".as_bytes().to_vec(),
        }),
        purpose: Purpose::Periodic as i32,
        scope: proto::Scope::Art62 as i32,
    };
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/safehire.v1.CheckService/Check");
    let codec = tonic_prost::ProstCodec::<RawCheckRequest, proto::CheckResponse>::default();
    let status = grpc
        .unary(tonic::Request::new(request), path, codec)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("doc_number"),
        "{}",
        status.message()
    );
    assert!(
        !status.message().contains("11010519491231"),
        "the error does not echo the number"
    );
    healthy(&server).await;
}
