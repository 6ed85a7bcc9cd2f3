//! The single writer: one thread owns the write connection and runs every change. Jobs that
//! arrive while a transaction commits are gathered into the next one (group commit), so one
//! fsync covers many audit entries, and no job's result is released before its commit is
//! durable.

use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use crate::audit::{Chain, Entry, NewEntry};

/// Most jobs committed in one transaction; bounds the latency a burst adds to its last job.
const MAX_JOBS_PER_COMMIT: usize = 4096;
/// Jobs queued before callers wait: back-pressure instead of unbounded memory.
const QUEUE_DEPTH: usize = 16 * 1024;

/// What a job sees: the open transaction and the end of the audit chain.
pub struct WriteCtx<'a> {
    pub conn: &'a Connection,
    chain: &'a mut Chain,
}

impl WriteCtx<'_> {
    /// Appends an audit entry in the current transaction.
    pub fn audit(&mut self, body: NewEntry) -> Result<Entry, StoreError> {
        let entry = self.chain.append(body);
        super::audit_sql::insert(self.conn, &entry)?;
        Ok(entry)
    }
}

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A job runs inside the transaction and says whether it succeeded (so that its savepoint is
/// kept or rolled back) and how to report to its caller once the commit is known.
type Job = Box<dyn FnOnce(&mut WriteCtx<'_>) -> (bool, Completion) + Send>;

pub struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start(conn: Connection, chain: Chain) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("safehire-writer".into())
            .spawn(move || run(conn, chain, queue))
            .map_err(StoreError::Thread)?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `job` in the next transaction; resolves once that transaction is durable. A job that
    /// fails is rolled back alone (savepoint) and does not affect the others in its commit.
    pub async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |ctx| {
            let outcome = job(ctx);
            let succeeded = outcome.is_ok();
            let completion: Completion = Box::new(move |committed| {
                let _ = done.send(committed.and(outcome));
            });
            (succeeded, completion)
        });
        self.jobs
            .as_ref()
            .ok_or(StoreError::WriterGone)?
            .send(job)
            .await
            .map_err(|_| StoreError::WriterGone)?;
        result.await.map_err(|_| StoreError::NotWritten)?
    }

    /// Lets queued jobs finish, commits them, and stops the thread.
    pub fn close(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(conn: Connection, mut chain: Chain, mut queue: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_JOBS_PER_COMMIT);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_JOBS_PER_COMMIT {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&conn, &mut chain, &mut batch);
    }
}

/// Runs a batch of jobs in one transaction. A job whose transaction could not even begin is
/// dropped unrun, which its caller sees as `NotWritten`.
fn commit_batch(conn: &Connection, chain: &mut Chain, batch: &mut Vec<Job>) {
    let chain_before = *chain;
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, jobs = batch.len(), "writer could not begin a transaction");
        batch.clear();
        return;
    }
    let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
    for job in batch.drain(..) {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            tracing::error!(error = %e, "writer could not open a savepoint; job dropped");
            continue;
        }
        let chain_at_job = *chain;
        let (succeeded, completion) = job(&mut WriteCtx { conn, chain });
        let closed = if succeeded {
            conn.execute_batch("RELEASE job")
        } else {
            *chain = chain_at_job;
            conn.execute_batch("ROLLBACK TO job; RELEASE job")
        };
        if let Err(e) = closed {
            tracing::error!(error = %e, "writer could not close a savepoint");
        }
        completions.push(completion);
    }
    let committed = conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        *chain = chain_before;
        e.to_string()
    });
    for completion in completions {
        completion(committed.clone().map_err(StoreError::CommitFailed));
    }
}
