//! What a supervisor's health probe sees, which decides how deploy/ probes the server:
//! `grpc.health.v1` answers over TLS without a client certificate and leaves no audit entry,
//! so `safehire health` can probe from inside the pod; a bare TCP connection or plaintext
//! gRPC (the kubelet's `tcpSocket:` and `grpc:` probes) is a refused handshake that is
//! audited, one durable entry per probe, so deploy/ uses neither.

use crate::common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::TestServer;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::test]
async fn health_answers_without_a_client_certificate_and_is_not_audited() {
    let server = TestServer::start().await;
    let before = server.audit_rows().len();
    let channel = server
        .channel_with(None)
        .await
        .expect("TLS without a client certificate connects");
    let mut health = HealthClient::new(channel);
    for service in ["", "safehire.v1.CheckService"] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers an anonymous caller")
            .into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving, "{service:?}");
    }
    assert_eq!(
        server.audit_rows().len(),
        before,
        "probes do not fill the log"
    );
}

fn health_command(server: &TestServer, url: &str, extra: &[&str]) -> std::process::Output {
    let ca = server.certs_dir().join("ca.pem");
    crate::common::process::command()
        .args(["health", "--server", url, "--tls-server-name", "localhost"])
        .arg("--ca")
        .arg(ca)
        .args(extra)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn safehire_health_exits_0_when_serving_8_when_not_and_7_when_unreachable() {
    let server = TestServer::start().await;
    // The child process talks to the server on this runtime's other threads.
    let run = |url: &str, extra: &[&str]| {
        tokio::task::block_in_place(|| health_command(&server, url, extra))
    };
    let serving = run(&server.url(), &[]);
    assert_eq!(serving.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&serving.stdout).trim(), "SERVING");

    let unknown = run(&server.url(), &["--service", "no.such.Service"]);
    assert_eq!(
        unknown.status.code(),
        Some(8),
        "an unknown service is a failure"
    );

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("https://{addr}")
    };
    let unreachable = run(&closed, &["--timeout-secs", "2"]);
    assert_eq!(unreachable.status.code(), Some(7));
}

/// Both are refused handshakes; from one address within a minute they make one audit entry
/// (a load balancer probing every few seconds must not fill the log), and both are counted.
#[tokio::test]
async fn a_bare_tcp_connection_and_plaintext_grpc_are_audited_as_refused_handshakes() {
    let server = TestServer::start().await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        // What a tcpSocket probe does: connect, then close.
        drop(std::net::TcpStream::connect(addr).unwrap());
        // What the kubelet's grpc probe sends first: the HTTP/2 preface, in plaintext.
        let mut plain = std::net::TcpStream::connect(addr).unwrap();
        plain
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .unwrap();
        drop(plain);
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let metrics = server.scrape().await;
        let refused: Vec<_> = server
            .audit_rows()
            .into_iter()
            .filter(|r| r.action == "tls.handshake" && r.outcome == "UNAUTHENTICATED")
            .collect();
        if metrics.contains("safehire_connections_refused_total{reason=\"tls_handshake\"} 2")
            && !refused.is_empty()
        {
            break refused;
        }
        assert!(Instant::now() < deadline, "{metrics}\n{refused:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        refused.len(),
        1,
        "the second refusal is folded into the next entry"
    );
    assert!(
        refused[0].detail.contains("remote=127.0.0.1"),
        "{:?}",
        refused[0].detail
    );
}
