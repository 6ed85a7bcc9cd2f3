//! Back-pressure through the real server: one organisation held to its share of calls while
//! another is served, connections past the limit closed on arrival, silent peers found by
//! HTTP/2 pings, and stalled streams ended so that they give back what they held.

use crate::common;

use std::time::{Duration, Instant};

use common::{CuttableProxy, TestServer, check_request, member, people, roster_upload};
use safehire::org::Role;
use safehire::proto::{self, check_batch_request::Item as Req, check_batch_response::Item as Resp};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_over_its_rate_is_refused_while_others_are_served() {
    let server = TestServer::start_with(|c| {
        c.limits.calls_per_second_per_org = 10;
        c.limits.call_burst_per_org = 10;
    })
    .await;
    let employer = server.org(Role::Employer).uscc;
    let flood = server.checks(Role::Employer).await;
    let asked = people(7, 60);
    let mut calls = tokio::task::JoinSet::new();
    for (doc, name) in asked.clone() {
        let mut client = flood.clone();
        calls.spawn(async move {
            client
                .check(check_request(&doc, &name, proto::Purpose::PreHire))
                .await
        });
    }
    let (mut served, mut refused) = (0, Vec::new());
    while let Some(answer) = calls.join_next().await {
        match answer.unwrap() {
            Ok(_) => served += 1,
            Err(status) => refused.push(status),
        }
    }
    assert!(
        (10..=20).contains(&served),
        "the burst and what refilled during the flood are served: {served}"
    );
    assert_eq!(served + refused.len(), 60);
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains(&employer)
                && status.message().contains("10 calls per second")
                && status.message().contains("retry in"),
            "{}",
            status.message()
        );
    }

    // Another organisation is not held back by the first one's flood, even acting for the
    // same unit: the share is the caller's.
    let mut bureau = server.checks(Role::Bureau).await;
    for (doc, name) in people(8, 5) {
        let request = proto::CheckRequest {
            on_behalf_of: employer.clone(),
            ..check_request(&doc, &name, proto::Purpose::PreHire)
        };
        bureau
            .check(request)
            .await
            .expect("the bureau has its own share");
    }

    // The refusals made one audit entry, not one each; the metrics count every one.
    let rows = server.audit_rows();
    let audited: Vec<_> = rows
        .iter()
        .filter(|r| r.caller == employer && r.outcome == "RESOURCE_EXHAUSTED")
        .collect();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].action, "CheckService.Check");
    let metrics = server.scrape().await;
    let counted = format!(
        "safehire_rpc_requests_total{{method=\"CheckService.Check\",code=\"RESOURCE_EXHAUSTED\"}} {}",
        refused.len()
    );
    assert!(metrics.contains(&counted), "{metrics}");

    // A moment later the bucket has refilled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (doc, name) = &asked[0];
    flood
        .clone()
        .check(check_request(doc, name, proto::Purpose::PreHire))
        .await
        .expect("served again once the rate allows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_closed_on_arrival() {
    let server = TestServer::start_with(|c| c.limits.max_connections = 2).await;
    let health = |channel| tonic_health::pb::health_client::HealthClient::new(channel);
    let ask = tonic_health::pb::HealthCheckRequest::default();
    let first = server.channel(Role::Employer).await;
    let second = server.channel(Role::Bureau).await;
    health(first.clone()).check(ask.clone()).await.unwrap();
    health(second.clone()).check(ask.clone()).await.unwrap();

    let identity = || server.credentials(Role::Employer);
    let third = server.channel_with(identity()).await;
    assert!(third.is_err(), "a third connection is closed on arrival");
    let metrics = server.scrape().await;
    assert!(
        metrics.contains("safehire_connections_refused_total{reason=\"connection_limit\"} 1"),
        "{metrics}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .audit_rows()
        .iter()
        .any(|r| r.action == "net.connection" && r.outcome == "RESOURCE_EXHAUSTED")
    {
        assert!(Instant::now() < deadline, "the refusal is audited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Closing a connection gives its place back.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        if let Ok(channel) = server.channel_with(identity()).await {
            break channel;
        }
        assert!(
            Instant::now() < deadline,
            "a place frees up when a connection closes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    health(again).check(ask.clone()).await.unwrap();
    health(second).check(ask).await.unwrap();
}

/// A peer gone silent without closing its connection (a cut cable, a suspended laptop) is found
/// by the HTTP/2 pings: one not answered within `keepalive_secs` closes the connection, and the
/// place it held is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_found_by_pings_and_its_place_given_back() {
    let server = TestServer::start_with(|c| {
        c.limits.max_connections = 1;
        c.limits.keepalive_secs = 5;
    })
    .await;
    let health = |channel| tonic_health::pb::health_client::HealthClient::new(channel);
    let ask = tonic_health::pb::HealthCheckRequest::default();
    let proxy = CuttableProxy::start(server.addr).await;
    let silent = server.channel_via(&proxy, Role::Employer).await;
    health(silent.clone()).check(ask.clone()).await.unwrap();
    assert!(
        server
            .channel_with(server.credentials(Role::Bureau))
            .await
            .is_err(),
        "the one place is taken"
    );

    proxy.freeze();
    let frozen_at = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), proxy.server_hangs_up())
        .await
        .expect("the server closes a connection whose pings go unanswered");
    let found_after = frozen_at.elapsed();
    assert!(
        found_after >= Duration::from_secs(5),
        "not before a ping went unanswered: {found_after:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        if let Ok(channel) = server.channel_with(server.credentials(Role::Bureau)).await {
            break channel;
        }
        assert!(Instant::now() < deadline, "the silent peer's place is free");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    health(again).check(ask).await.unwrap();
    drop(silent);
}

/// Runs a batch of one row (person `seed`) to its end and returns the rows its summary counts.
async fn one_row_batch(
    checks: &mut proto::check_service_client::CheckServiceClient<tonic::transport::Channel>,
    batch_id: &str,
    seed: u64,
) -> u64 {
    let (doc, name) = &people(seed, 1)[0];
    let row = proto::CheckBatchRequest {
        item: Some(Req::Rows(proto::BatchRows {
            rows: vec![proto::BatchRow {
                row: 1,
                subject: Some(common::identity(doc, name)),
                consent_ref: String::new(),
            }],
        })),
    };
    let mut responses = checks
        .check_batch(tokio_stream::iter(vec![
            common::batch_header(batch_id),
            row,
        ]))
        .await
        .expect("the batch is accepted")
        .into_inner();
    let mut rows = 0;
    while let Some(message) = responses.message().await.unwrap() {
        if let Some(Resp::Summary(summary)) = message.item {
            rows = summary.rows;
        }
    }
    rows
}

/// A batch whose client sends its header and then nothing is ended after the idle limit, and
/// its slot (the only one here) is free for the next batch; a roster upload that stalls after
/// its first members is ended too, and the roster is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_streams_are_ended_and_give_back_what_they_held() {
    let server = TestServer::start_with(|c| {
        c.limits.stream_idle_secs = 5;
        c.limits.max_batches_in_flight_per_org = 1;
    })
    .await;
    let mut checks = server.checks(Role::Employer).await;
    let (tx, rx) = mpsc::channel(4);
    tx.send(common::batch_header("stalled")).await.unwrap();
    let started = Instant::now();
    let mut responses = checks
        .check_batch(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let accepted = responses.message().await.unwrap().and_then(|m| m.item);
    assert!(matches!(accepted, Some(Resp::Accepted(_))), "{accepted:?}");
    let ended = tokio::time::timeout(Duration::from_secs(60), responses.message())
        .await
        .expect("the server ends the stalled batch itself")
        .expect_err("the stalled batch is ended");
    assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");
    assert!(
        ended
            .message()
            .contains("no message from the client for 5 s"),
        "{}",
        ended.message()
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(30),
        "{waited:?}"
    );
    drop(tx);

    assert_eq!(
        one_row_batch(&mut checks, "next", 9).await,
        1,
        "the stalled batch's slot was given back"
    );
    assert!(
        server
            .audit_rows()
            .iter()
            .any(|r| r.action == "CheckService.CheckBatch" && r.outcome == "DEADLINE_EXCEEDED"),
        "the ended batch is audited"
    );

    // A roster upload that stalls after its first members.
    let mut rosters = server.rosters(Role::Employer).await;
    let staff: Vec<_> = people(10, 3)
        .iter()
        .enumerate()
        .map(|(i, (d, n))| member(i as u64 + 1, d, n, "2026-09-01"))
        .collect();
    let (tx, rx) = mpsc::channel(4);
    for message in roster_upload("", staff, 3) {
        tx.send(message).await.unwrap();
    }
    let stalled = tokio::time::timeout(
        Duration::from_secs(60),
        rosters.replace_roster(ReceiverStream::new(rx)),
    )
    .await
    .expect("the server ends the stalled upload itself")
    .expect_err("the stalled upload is ended");
    assert_eq!(stalled.code(), Code::DeadlineExceeded, "{stalled:?}");
    drop(tx);
    let roster = rosters
        .get_roster(proto::RosterQuery::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        !roster.declared && roster.current_members == 0,
        "{roster:?}"
    );
}

/// A client that sends a whole batch and then reads none of the results holds its batch only
/// until the idle limit: the results it left unread end the batch with DEADLINE_EXCEEDED, the
/// ending is audited, and the organisation's only batch slot is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_let_go() {
    let server = TestServer::start_with(|c| {
        c.limits.stream_idle_secs = 5;
        c.limits.max_batches_in_flight_per_org = 1;
    })
    .await;
    let mut checks = server.checks(Role::Employer).await;
    // More results than the client's HTTP/2 window (2 MiB) and the server's buffers hold.
    let rows: Vec<proto::BatchRow> = people(11, 100_000)
        .iter()
        .enumerate()
        .map(|(i, (doc, name))| proto::BatchRow {
            row: i as u64 + 1,
            subject: Some(common::identity(doc, name)),
            consent_ref: String::new(),
        })
        .collect();
    let mut messages = vec![common::batch_header("unread")];
    messages.extend(rows.chunks(500).map(|chunk| proto::CheckBatchRequest {
        item: Some(Req::Rows(proto::BatchRows {
            rows: chunk.to_vec(),
        })),
    }));
    // The response is held, never read.
    let _unread = checks
        .check_batch(tokio_stream::iter(messages))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server
        .audit_rows()
        .iter()
        .any(|r| r.action == "CheckService.CheckBatch" && r.outcome == "DEADLINE_EXCEEDED")
    {
        assert!(
            Instant::now() < deadline,
            "the server lets go of a client that reads nothing ({} of its rows were checked)",
            server
                .audit_rows()
                .iter()
                .filter(|r| r.action == "CheckService.CheckBatch" && r.has_subject)
                .count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        one_row_batch(&mut checks, "after", 12).await,
        1,
        "the slot was given back"
    );
}
