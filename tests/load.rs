//! Load and soak: 64 concurrent clients on loopback mixing single checks, batches and alert
//! watches while a registrar imports, for a bounded time. No errors other than the expected
//! ones, memory stays bounded, and the audit chain verifies afterwards.
//!
//! CI runs it for 15 seconds. The long variant is one environment variable away:
//! `SAFEHIRE_SOAK_SECS=600 cargo test --release --test load -- --nocapture`.
//!
//! A test binary of its own, unlike the rest of the suite, because it reports the peak memory
//! of its process: other tests in the same process would count in it.

#[path = "integration/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{TestServer, identity, member, people, record, roster_upload};
use safehire::org::Role;
use safehire::proto::{self, Category, Purpose};

#[derive(Default)]
struct Tally {
    checks: AtomicU64,
    batch_rows: AtomicU64,
    alerts: AtomicU64,
    /// Batches refused because the organisation already ran its limit of batches: expected
    /// with eight batch clients of one employer and a limit of four; they wait and retry.
    batches_turned_away: AtomicU64,
    errors: AtomicU64,
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_for_a_while_leave_a_verifiable_log() {
    let seconds: u64 = std::env::var("SAFEHIRE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    // This measures the server under load, far above one organisation's share of calls
    // (`tests/integration/limits.rs` holds an organisation to its share).
    let server = TestServer::start_uncaptured(|c| {
        c.limits.calls_per_second_per_org = 1_000_000;
        c.limits.call_burst_per_org = 1_000_000;
    })
    .await;
    let staff = people(101, 2_000);
    server
        .rosters(Role::Employer)
        .await
        .replace_roster(tokio_stream::iter(roster_upload(
            "",
            staff
                .iter()
                .enumerate()
                .map(|(i, (d, n))| member(i as u64 + 1, d, n, "2024-09-01"))
                .collect(),
            500,
        )))
        .await
        .unwrap();
    let channels = [
        server.channel(Role::Employer).await,
        server.channel(Role::Employer).await,
        server.channel(Role::Employer).await,
        server.channel(Role::Employer).await,
    ];
    let tally = Arc::new(Tally::default());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let staff = Arc::new(staff);
    let mut clients = Vec::new();
    for n in 0..64usize {
        let (channel, tally, staff) = (
            channels[n % channels.len()].clone(),
            Arc::clone(&tally),
            Arc::clone(&staff),
        );
        clients.push(tokio::spawn(async move {
            match n % 8 {
                // Alert watchers.
                0 => {
                    let mut alerts = proto::alert_service_client::AlertServiceClient::new(channel);
                    let mut stream = match alerts
                        .watch_alerts(proto::WatchAlertsRequest::default())
                        .await
                    {
                        Ok(s) => s.into_inner(),
                        Err(_) => return tally.errors.fetch_add(1, Ordering::Relaxed),
                    };
                    while Instant::now() < deadline {
                        match tokio::time::timeout(Duration::from_millis(200), stream.message())
                            .await
                        {
                            Ok(Ok(Some(_))) => tally.alerts.fetch_add(1, Ordering::Relaxed),
                            Ok(Ok(None)) | Ok(Err(_)) => {
                                return tally.errors.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => 0,
                        };
                    }
                    0
                }
                // Batches of 200 rows.
                1 => {
                    let mut checks = proto::check_service_client::CheckServiceClient::new(channel);
                    let mut round = 0;
                    while Instant::now() < deadline {
                        round += 1;
                        let mut messages = vec![common::batch_header(&format!("load-{n}-{round}"))];
                        let start = (round * 200) % 1_800;
                        messages.push(proto::CheckBatchRequest {
                            item: Some(proto::check_batch_request::Item::Rows(proto::BatchRows {
                                rows: staff[start..start + 200]
                                    .iter()
                                    .enumerate()
                                    .map(|(i, (d, name))| proto::BatchRow {
                                        row: i as u64 + 1,
                                        subject: Some(identity(d, name)),
                                        consent_ref: String::new(),
                                    })
                                    .collect(),
                            })),
                        });
                        let reply = match checks.check_batch(tokio_stream::iter(messages)).await {
                            Ok(reply) => reply,
                            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                                tally.batches_turned_away.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                            Err(_) => return tally.errors.fetch_add(1, Ordering::Relaxed),
                        };
                        let mut stream = reply.into_inner();
                        loop {
                            match stream.message().await {
                                Ok(Some(m)) => {
                                    if let Some(proto::check_batch_response::Item::Results(r)) =
                                        m.item
                                    {
                                        tally
                                            .batch_rows
                                            .fetch_add(r.results.len() as u64, Ordering::Relaxed);
                                    }
                                }
                                Ok(None) => break,
                                Err(_) => return tally.errors.fetch_add(1, Ordering::Relaxed),
                            }
                        }
                    }
                    0
                }
                // Single checks.
                _ => {
                    let mut checks = proto::check_service_client::CheckServiceClient::new(channel);
                    let mut i = n;
                    while Instant::now() < deadline {
                        i = (i + 64) % staff.len();
                        let (d, name) = &staff[i];
                        let request = proto::CheckRequest {
                            subject: Some(identity(d, name)),
                            purpose: Purpose::Periodic as i32,
                            scope: proto::Scope::Art62 as i32,
                            ..Default::default()
                        };
                        if checks.check(request).await.is_err() {
                            return tally.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        tally.checks.fetch_add(1, Ordering::Relaxed);
                    }
                    0
                }
            }
        }));
    }
    // A registrar imports a record for a member every second: each raises one alert, seen by
    // all eight watchers.
    let mut imported = 0;
    let mut registry = server.registry().await;
    while Instant::now() + Duration::from_millis(1_500) < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (d, n) = &staff[imported];
        registry
            .import(tokio_stream::iter(vec![proto::ImportChunk {
                records: vec![record(1, &format!("L{imported}"), d, n, Category::Abuse)],
            }]))
            .await
            .unwrap();
        imported += 1;
    }
    for client in clients {
        client.await.unwrap();
    }
    let (checks, rows, alerts, turned_away, errors) = (
        tally.checks.load(Ordering::Relaxed),
        tally.batch_rows.load(Ordering::Relaxed),
        tally.alerts.load(Ordering::Relaxed),
        tally.batches_turned_away.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
    );
    eprintln!(
        "{seconds} s, 64 clients: {checks} checks, {rows} batch rows, {alerts} alerts delivered, \
         {turned_away} batches turned away (limit per organisation), {errors} errors; \
         peak RSS {} MiB (server and clients in one process)",
        peak_rss_kib() / 1024
    );
    assert_eq!(errors, 0);
    assert!(checks > 0 && rows > 0);
    assert_eq!(alerts, imported as u64 * 8, "every watcher got every alert");
    assert!(
        peak_rss_kib() < 1024 * 1024,
        "memory stays bounded (peak {} KiB)",
        peak_rss_kib()
    );
    let verified = server
        .audit(Role::Prosecutor)
        .await
        .verify(proto::VerifyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(verified.ok, "{verified:?}");
}
