//! Bulk checks: a whole staff file as one `CheckService.CheckBatch` stream, end to end (rows
//! sent, every row validated, hashed, looked up, audited durably and answered), against the
//! in-process floor of the same work without network or audit: parse and hash each person and
//! look the chunk up in the index, straight on the database file.

use std::path::Path;
use std::time::Instant;

use super::BenchError;
use super::data;
use super::server::ServerProcess;
use crate::check::{Outcome, Scope, decide};
use crate::identity::{DocType, Document, PersonName};
use crate::keys::Keys;
use crate::org::Role;
use crate::proto;
use crate::proto::check_batch_request::Item as Request;
use crate::proto::check_batch_response::Item as Response;
use crate::proto::check_service_client::CheckServiceClient;
use crate::store::Store;

/// Rows per message, as `safehire batch` sends them.
const CHUNK_ROWS: u64 = 500;

/// One bulk run.
#[derive(Debug, Clone, Copy, Default)]
pub struct BulkRun {
    pub rows: u64,
    pub seconds: f64,
}

impl BulkRun {
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.rows as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Rows that are hits: every `HIT_EVERY`-th, starting with the first.
fn expected_hits(rows: u64, index_size: u64) -> u64 {
    if index_size == 0 {
        0
    } else {
        rows.div_ceil(data::HIT_EVERY)
    }
}

/// A fresh batch id in letters only: free-text ids are refused when they hold a run of 14
/// digits (it could be an identity number), which a hex UUID does now and then.
fn batch_id() -> String {
    let letters: String = uuid::Uuid::now_v7()
        .as_bytes()
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .map(|nibble| char::from(b'a' + nibble))
        .collect();
    format!("bench-{letters}")
}

/// Checks `rows` people in one batch against an index of `index_size` bench records.
pub async fn check_batch(
    server: &ServerProcess,
    rows: u64,
    index_size: u64,
) -> Result<BulkRun, BenchError> {
    let mut client = CheckServiceClient::new(server.channel(Role::Employer).await?);
    let header = proto::CheckBatchRequest {
        item: Some(Request::Header(proto::BatchHeader {
            batch_id: batch_id(),
            // A hiring round: periodic checks are for roster members only.
            purpose: proto::Purpose::PreHire as i32,
            scope: proto::Scope::Art62 as i32,
            consent_policy: proto::ConsentPolicy::Batch as i32,
            consent_ref: "CONSENT-BENCH-001".into(),
            on_behalf_of: String::new(),
        })),
    };
    // Made as they are sent, like a staff file read as it streams.
    let chunks =
        (0..rows)
            .step_by(CHUNK_ROWS as usize)
            .map(move |first| proto::CheckBatchRequest {
                item: Some(Request::Rows(proto::BatchRows {
                    rows: (first..(first + CHUNK_ROWS).min(rows))
                        .map(|i| proto::BatchRow {
                            row: i + 1,
                            subject: Some(data::subject(i, index_size).0),
                            consent_ref: String::new(),
                        })
                        .collect(),
                })),
            });
    let failed =
        |s: tonic::Status| BenchError::new(format!("batch: {:?}: {}", s.code(), s.message()));
    let started = Instant::now();
    let mut responses = client
        .check_batch(tokio_stream::iter(std::iter::once(header).chain(chunks)))
        .await
        .map_err(failed)?
        .into_inner();
    let (mut answered, mut hits, mut errors) = (0u64, 0u64, 0u64);
    while let Some(message) = responses.message().await.map_err(failed)? {
        if let Some(Response::Results(results)) = message.item {
            for result in results.results {
                answered += 1;
                match result.result {
                    Some(proto::batch_result::Result::Check(check))
                        if check.outcome() == proto::Outcome::RecordFound =>
                    {
                        hits += 1;
                    }
                    Some(proto::batch_result::Result::Check(_)) => {}
                    _ => errors += 1,
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let wanted = expected_hits(rows, index_size);
    if answered != rows || errors > 0 || hits != wanted {
        return Err(BenchError::new(format!(
            "batch answered {answered} of {rows} rows, {errors} errors, {hits} hits of {wanted}"
        )));
    }
    Ok(BulkRun { rows, seconds })
}

/// The floor: the same rows parsed, hashed and looked up in chunks on the database of
/// `data_dir` (the server must be stopped), in this process, without network or audit.
pub async fn in_process(
    data_dir: &Path,
    rows: u64,
    index_size: u64,
) -> Result<BulkRun, BenchError> {
    let keys = Keys::load(&data_dir.join("master.key"), false)
        .map_err(|e| BenchError::new(e.to_string()))?;
    let store = Store::open(&data_dir.join("safehire.db"), &keys.key_id_hex())
        .map_err(|e| BenchError::new(e.to_string()))?;
    // Made before the clock starts: only parsing, hashing and lookups are timed.
    let people: Vec<(String, String)> = (0..rows)
        .map(|i| {
            let subject = data::subject(i, index_size).0;
            (subject.doc_number, subject.name)
        })
        .collect();
    let today = time::OffsetDateTime::now_utc().date();
    let started = Instant::now();
    let mut hits = 0u64;
    for chunk in people.chunks(CHUNK_ROWS as usize) {
        let mut subjects = Vec::with_capacity(chunk.len());
        let mut tags = Vec::with_capacity(chunk.len());
        for (number, name) in chunk {
            let document = Document::parse(DocType::CnResidentId, number, today)
                .map_err(|e| BenchError::new(e.to_string()))?;
            let name = PersonName::parse(name).map_err(|e| BenchError::new(e.to_string()))?;
            let subject = keys.subject_key(&document);
            subjects.push(subject);
            tags.push(keys.name_tag(&subject, &name));
        }
        let (_, found) = store
            .lookup_many(subjects)
            .await
            .map_err(|e| BenchError::new(e.to_string()))?;
        hits += tags
            .iter()
            .zip(&found)
            .filter(|(tag, candidates)| {
                decide(Scope::Art62, **tag, candidates).outcome == Outcome::RecordFound
            })
            .count() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    store.close().await;
    let wanted = expected_hits(rows, index_size);
    if hits != wanted {
        return Err(BenchError::new(format!(
            "the in-process lookups found {hits} hits of {wanted}"
        )));
    }
    Ok(BulkRun { rows, seconds })
}
