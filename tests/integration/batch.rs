//! CheckBatch through the real server: one result per row, one audit entry per valid row,
//! per-row errors that do not stop the batch, resuming a broken stream, limits.

use crate::common;

use std::collections::HashMap;

use common::{TestServer, identity, people, record};
use safehire::org::Role;
use safehire::proto::{
    self, Category, check_batch_request::Item as Req, check_batch_response::Item as Resp,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn chunk(rows: &[proto::BatchRow]) -> proto::CheckBatchRequest {
    proto::CheckBatchRequest {
        item: Some(Req::Rows(proto::BatchRows {
            rows: rows.to_vec(),
        })),
    }
}

fn row(number: u64, doc: &str, name: &str) -> proto::BatchRow {
    proto::BatchRow {
        row: number,
        subject: Some(identity(doc, name)),
        consent_ref: String::new(),
    }
}

#[derive(Default, Debug)]
struct Collected {
    accepted: Option<proto::BatchAccepted>,
    results: Vec<proto::BatchResult>,
    summary: Option<proto::BatchSummary>,
    status: Option<tonic::Status>,
}

/// Sends the header and `rows` in chunks of `per_chunk`, reads everything back.
async fn run_batch(
    server: &TestServer,
    batch_id: &str,
    rows: Vec<proto::BatchRow>,
    per_chunk: usize,
) -> Collected {
    let (tx, rx) = mpsc::channel(4);
    let id = batch_id.to_string();
    tokio::spawn(async move {
        let _ = tx.send(common::batch_header(&id)).await;
        for part in rows.chunks(per_chunk) {
            if tx.send(chunk(part)).await.is_err() {
                return;
            }
        }
    });
    let mut client = server.checks(Role::Employer).await;
    let mut collected = Collected::default();
    let mut stream = match client.check_batch(ReceiverStream::new(rx)).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            collected.status = Some(status);
            return collected;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(message)) => match message.item {
                Some(Resp::Accepted(a)) => collected.accepted = Some(a),
                Some(Resp::Results(r)) => collected.results.extend(r.results),
                Some(Resp::Summary(s)) => collected.summary = Some(s),
                None => {}
            },
            Ok(None) => break,
            Err(status) => {
                collected.status = Some(status);
                break;
            }
        }
    }
    collected
}

fn outcome_of(result: &proto::BatchResult) -> String {
    match &result.result {
        Some(proto::batch_result::Result::Check(c)) => c
            .outcome()
            .as_str_name()
            .trim_start_matches("OUTCOME_")
            .to_string(),
        Some(proto::batch_result::Result::Error(e)) => format!("ERROR {}", e.field),
        None => "NONE".into(),
    }
}

#[tokio::test]
async fn ten_thousand_rows_with_a_known_mix() {
    let server = TestServer::start().await;
    let p = people(51, 10_000);
    // Rows 1..=300 have records (hits); 301..=400 match a record's document under another name.
    let records: Vec<_> = (0..400)
        .map(|i| {
            record(
                i as u64 + 1,
                &format!("REC-{i}"),
                &p[i].0,
                &p[i].1,
                Category::Sexual,
            )
        })
        .collect();
    let summary = server.import(records).await;
    assert_eq!(summary.created, 400);
    let mut expected = HashMap::new();
    let mut rows = Vec::new();
    for (i, (doc, name)) in p.iter().enumerate() {
        let number = i as u64 + 1;
        let (doc, name, outcome) = if i % 200 == 199 {
            // 50 malformed rows: a wrong check character.
            let last = doc.chars().last().unwrap();
            let bad = format!("{}{}", &doc[..17], if last == '1' { '2' } else { '1' });
            (bad, name.clone(), "ERROR subject.doc_number")
        } else if i < 300 {
            (doc.clone(), name.clone(), "RECORD_FOUND")
        } else if i < 400 {
            // Another person's name, never one equal to this person's own.
            let other = (1_000..)
                .map(|k| &p[(i + k) % 10_000].1)
                .find(|n| *n != name)
                .unwrap();
            // Answered like no record: the mismatch goes to a registrar, unseen.
            (doc.clone(), other.clone(), "NO_RECORD")
        } else {
            (doc.clone(), name.clone(), "NO_RECORD")
        };
        expected.insert(number, outcome.to_string());
        rows.push(row(number, &doc, &name));
    }
    let before = server.audit_rows().len();
    let collected = run_batch(&server, "staff-2026", rows, 500).await;
    assert!(collected.status.is_none(), "{:?}", collected.status);
    assert_eq!(collected.results.len(), 10_000);
    let mut answered = HashMap::new();
    for result in &collected.results {
        assert!(
            answered.insert(result.row, outcome_of(result)).is_none(),
            "row {} answered twice",
            result.row
        );
    }
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(row, want)| answered.get(row) != Some(want))
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "rows with an unexpected outcome: {wrong:?}"
    );
    let summary = collected.summary.unwrap();
    assert_eq!(
        (
            summary.rows,
            summary.errors,
            summary.record_found,
            summary.needs_review
        ),
        (10_000, 50, 299, 0)
    );
    // One audit entry per valid row, one per hidden review case the mismatches opened, plus
    // the batch's opening and closing entries.
    let entries = server.audit_rows();
    let per_row = entries[before..]
        .iter()
        .filter(|r| r.action == "CheckService.CheckBatch" && r.has_subject)
        .count();
    assert_eq!(per_row, 9_950);
    let reviews = entries[before..]
        .iter()
        .filter(|r| r.action == "review.open" && r.outcome == "NEEDS_REVIEW")
        .count();
    assert_eq!(reviews, 99);
    assert_eq!(entries.len() - before, 9_950 + 99 + 2);
    let opened: usize = collected
        .results
        .iter()
        .filter(|r| {
            matches!(&r.result, Some(proto::batch_result::Result::Check(c)) if c.review_id != 0)
        })
        .count();
    assert_eq!(opened, 0, "no row names the registrar's case");
}

#[tokio::test]
async fn a_broken_stream_resumes_without_checking_twice() {
    let server = TestServer::start().await;
    let p = people(52, 2_000);
    server
        .import(vec![record(
            1,
            "REC-H",
            &p[10].0,
            &p[10].1,
            Category::Abuse,
        )])
        .await;
    let rows: Vec<_> = p
        .iter()
        .enumerate()
        .map(|(i, (d, n))| row(i as u64 + 1, d, n))
        .collect();

    // First attempt: send half, read some results, then drop the connection.
    {
        // Room for the header and every chunk: they are queued before the call starts.
        let (tx, rx) = mpsc::channel(8);
        let mut client = server.checks(Role::Employer).await;
        tx.send(common::batch_header("resume-me")).await.unwrap();
        for part in rows[..1_000].chunks(250) {
            tx.send(chunk(part)).await.unwrap();
        }
        let mut stream = client
            .check_batch(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        let mut got = 0;
        while got < 1_000 {
            match stream.message().await.unwrap().unwrap().item {
                Some(Resp::Results(r)) => got += r.results.len(),
                _ => continue,
            }
        }
        drop(stream);
        drop(tx);
    }
    // The server notices the broken stream; give it a moment to close the batch.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // Second attempt, same batch id: the server says where to resume and replays what it answered.
    let second = run_batch(&server, "resume-me", rows[1_000..].to_vec(), 250).await;
    assert!(second.status.is_none(), "{:?}", second.status);
    let accepted = second.accepted.unwrap();
    assert!(accepted.resumed);
    assert_eq!(accepted.resume_after_row, 1_000);
    assert_eq!(second.results.len(), 2_000);
    let mut rows_seen: Vec<u64> = second.results.iter().map(|r| r.row).collect();
    rows_seen.sort();
    rows_seen.dedup();
    assert_eq!(rows_seen.len(), 2_000);
    assert_eq!(second.summary.unwrap().replayed, 1_000);
    let hit = second.results.iter().find(|r| r.row == 11).unwrap();
    assert_eq!(outcome_of(hit), "RECORD_FOUND");

    // Sending already-answered rows again answers them from the record, without new checks.
    let checks_before = server
        .audit_rows()
        .iter()
        .filter(|r| r.has_subject && r.action == "CheckService.CheckBatch")
        .count();
    assert_eq!(
        checks_before, 2_000,
        "each row checked and audited exactly once"
    );
    let third = run_batch(&server, "resume-me", rows[..10].to_vec(), 10).await;
    assert_eq!(third.results.len(), 2_000 + 10);
    let checks_after = server
        .audit_rows()
        .iter()
        .filter(|r| r.has_subject && r.action == "CheckService.CheckBatch")
        .count();
    assert_eq!(checks_after, checks_before);
}

#[tokio::test]
async fn exceeding_the_row_limit_is_a_clear_status() {
    let server = TestServer::start_with(|c| c.limits.max_batch_rows = 100).await;
    let p = people(53, 150);
    let rows: Vec<_> = p
        .iter()
        .enumerate()
        .map(|(i, (d, n))| row(i as u64 + 1, d, n))
        .collect();
    let collected = run_batch(&server, "too-big", rows, 40).await;
    let status = collected.status.expect("refused");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status.message().contains("at most 100 rows"),
        "{}",
        status.message()
    );
    assert_eq!(
        collected.results.len(),
        100,
        "the rows within the limit were answered"
    );
}

#[tokio::test]
async fn a_bad_header_is_refused_with_the_field_named() {
    let server = TestServer::start().await;
    let (tx, rx) = mpsc::channel(2);
    let mut pre_hire = common::batch_header("h1");
    if let Some(Req::Header(h)) = &mut pre_hire.item {
        h.consent_policy = proto::ConsentPolicy::NotRequired as i32;
        h.consent_ref = String::new();
    }
    tx.send(pre_hire).await.unwrap();
    drop(tx);
    let status = server
        .checks(Role::Employer)
        .await
        .check_batch(ReceiverStream::new(rx))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().starts_with("consent_policy:"),
        "{}",
        status.message()
    );

    let (tx, rx) = mpsc::channel(2);
    tx.send(chunk(&[])).await.unwrap();
    drop(tx);
    let status = server
        .checks(Role::Employer)
        .await
        .check_batch(ReceiverStream::new(rx))
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("header:"),
        "{}",
        status.message()
    );
}
