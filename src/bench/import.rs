//! Registry imports through `RegistryService.Import`, as a registrar's client sends them: the
//! records streamed in chunks, published by the server in one transaction at the end. Timed
//! from the first chunk to the summary, so publication is included.

use std::ops::Range;
use std::time::Instant;

use super::BenchError;
use super::data;
use super::server::ServerProcess;
use crate::org::Role;
use crate::proto;
use crate::proto::registry_service_client::RegistryServiceClient;

/// Records per message: well under both the 10,000-record and the 4 MiB message limits.
const CHUNK_RECORDS: u64 = 5_000;

/// One import.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportRun {
    pub records: u64,
    pub seconds: f64,
}

impl ImportRun {
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.records as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Imports bench records `records` (each new to the registry) as the dev registrar.
pub async fn import(server: &ServerProcess, records: Range<u64>) -> Result<ImportRun, BenchError> {
    let mut client = RegistryServiceClient::new(server.channel(Role::Registrar).await?)
        .max_decoding_message_size(64 * 1024 * 1024);
    let expected = records.end.saturating_sub(records.start);
    let end = records.end;
    // Made as they are sent, so that ten million records never sit in memory.
    let chunks = (records.start..end)
        .step_by(CHUNK_RECORDS as usize)
        .map(move |first| proto::ImportChunk {
            records: (first..(first + CHUNK_RECORDS).min(end))
                .map(data::record)
                .collect(),
        });
    let started = Instant::now();
    let summary = client
        .import(tokio_stream::iter(chunks))
        .await
        .map_err(|s| BenchError::new(format!("import: {:?}: {}", s.code(), s.message())))?
        .into_inner();
    let seconds = started.elapsed().as_secs_f64();
    if summary.created != expected {
        let first = summary
            .errors
            .first()
            .map(|e| format!("; row {}: {} {}", e.row, e.field, e.reason))
            .unwrap_or_default();
        return Err(BenchError::new(format!(
            "import created {} of {expected} records ({} rejected, {} updated){first}",
            summary.created, summary.rejected, summary.updated
        )));
    }
    Ok(ImportRun {
        records: expected,
        seconds,
    })
}
