//! The OpenTelemetry export (feature `otel`), end to end: the real `safehire serve` exports its
//! call spans over OTLP/gRPC to a collector this test runs on loopback, flushes them when it is
//! stopped with SIGTERM, and the spans name the method and the caller but never the person
//! checked. A call that carries a W3C `traceparent` is exported inside the caller's trace.

#![cfg(feature = "otel")]

use crate::common;
use common::process::terminate;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

/// The caller's trace, as its `traceparent` header gives it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Everything the collector was sent.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A collector on a free loopback port; its URL.
async fn start_collector(collector: Collector) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

/// `safehire serve` in `dir` exporting to `endpoint`, with only the SAFEHIRE_… variables set
/// here; returns it with its URL once it listens.
fn serve(dir: &Path, endpoint: &str) -> (Child, String) {
    let mut command = crate::common::process::command();
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SAFEHIRE_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .env("RUST_LOG", "info")
        .env("SAFEHIRE_METRICS__ENABLED", "false")
        .env("SAFEHIRE_PORTAL__ENABLED", "false")
        .env("SAFEHIRE_TELEMETRY__OTLP_ENDPOINT", endpoint)
        .env("SAFEHIRE_TELEMETRY__SERVICE_NAME", "safehire-otel-test")
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(rest) = line.strip_prefix("safehire listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, format!("https://{addr}"))
}

fn run(dir: &Path, args: &[&str]) -> Output {
    crate::common::process::command()
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(value: Option<&AnyValue>) -> Option<&str> {
    match value?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| text(kv.value.as_ref()))
}

#[tokio::test(flavor = "multi_thread")]
async fn call_spans_reach_the_collector_at_shutdown_without_the_person_checked() {
    let collector = Collector::default();
    let endpoint = start_collector(collector.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();

    let (person, status) = tokio::task::spawn_blocking(move || {
        let (mut server, url) = serve(&path, &endpoint);
        let people = run(&path, &["gen", "people", "1", "--seed", "31"]);
        let people = String::from_utf8(people.stdout).unwrap();
        let person: Vec<String> = people
            .lines()
            .nth(1)
            .expect("one generated person")
            .split(',')
            .map(str::to_string)
            .collect();
        let check = run(
            &path,
            &[
                "check",
                "--server",
                &url,
                "--doc-type",
                &person[0],
                "--doc-number",
                &person[1],
                "--name",
                &person[2],
                "--purpose",
                "pre-hire",
                "--consent",
                "CONSENT-2026-001",
            ],
        );
        assert_eq!(
            check.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        // The same check from an HR system that traces its own work.
        tokio::runtime::Handle::current().block_on(async {
            let certs = path.join("certs/dev");
            let identity = Some((
                std::fs::read(certs.join("employer.pem")).unwrap(),
                std::fs::read(certs.join("employer.key")).unwrap(),
            ));
            let channel = common::connect(&certs, &url, identity).await.unwrap();
            let mut request = tonic::Request::new(common::check_request(
                &person[1],
                &person[2],
                safehire::proto::Purpose::PreHire,
            ));
            request
                .metadata_mut()
                .insert("traceparent", TRACEPARENT.parse().unwrap());
            safehire::proto::check_service_client::CheckServiceClient::new(channel)
                .check(request)
                .await
                .unwrap();
        });
        (person, terminate(&mut server, Duration::from_secs(30)))
    })
    .await
    .unwrap();
    assert!(status.success(), "serve exited with {status}");

    // The batch is sent at shutdown (the SDK's scheduled export is 5 s away), and the
    // server exits only after the flush: it is all here already.
    let requests = collector.0.lock().unwrap().clone();
    assert!(!requests.is_empty(), "the collector received nothing");
    let resources: Vec<_> = requests.iter().flat_map(|r| &r.resource_spans).collect();
    for resource in &resources {
        let attributes = &resource.resource.as_ref().unwrap().attributes;
        assert_eq!(
            attribute(attributes, "service.name"),
            Some("safehire-otel-test")
        );
    }
    let spans: Vec<_> = resources
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let checks: Vec<_> = spans
        .iter()
        .filter(|s| {
            s.name == "call"
                && attribute(&s.attributes, "method") == Some("/safehire.v1.CheckService/Check")
        })
        .collect();
    let (trace_id, parent_id) = (
        hex::decode(TRACE_ID).unwrap(),
        hex::decode(PARENT_ID).unwrap(),
    );
    let joined: Vec<_> = checks.iter().filter(|s| s.trace_id == trace_id).collect();
    assert_eq!(joined.len(), 1, "one check joined the caller's trace");
    assert_eq!(joined[0].parent_span_id, parent_id);
    let check = checks
        .iter()
        .find(|s| s.trace_id != trace_id && s.parent_span_id.is_empty())
        .unwrap_or_else(|| {
            let names: Vec<_> = spans
                .iter()
                .map(|s| (&s.name, attribute(&s.attributes, "method")))
                .collect();
            panic!("no call span for the check among {names:?}")
        });
    assert!(
        attribute(&check.attributes, "request_id").is_some_and(|id| id.len() == 36),
        "{:?}",
        check.attributes
    );
    assert!(
        attribute(&check.attributes, "caller").is_some_and(|c| !c.is_empty()),
        "the caller organisation is recorded: {:?}",
        check.attributes
    );

    // Not the document number, nor the name, anywhere in what left the process.
    let sent: Vec<u8> = requests.iter().flat_map(Message::encode_to_vec).collect();
    for secret in [&person[1], &person[2]] {
        assert!(
            !sent.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} was exported"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_collector_does_not_hold_up_the_server() {
    // A port nobody listens on: the export fails, the calls do not, and the stop is prompt.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let status = tokio::task::spawn_blocking(move || {
        let (mut server, url) = serve(&path, &endpoint);
        let health = run(
            &path,
            &["health", "--server", &url, "--ca", "certs/dev/ca.pem"],
        );
        assert_eq!(
            health.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&health.stderr)
        );
        terminate(&mut server, Duration::from_secs(20))
    })
    .await
    .unwrap();
    assert!(status.success(), "serve exited with {status}");
}
