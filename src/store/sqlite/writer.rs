//! The single writer: one thread owns the write connection and runs every change. Jobs that
//! arrive while a transaction commits are gathered into the next one (group commit), so one
//! fsync covers many audit entries, and no job's result is released before its commit is
//! durable.

use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::reviews::ReviewRow;
use crate::audit::{Chain, Entry, NewEntry};
use crate::keys::SubjectKey;
use crate::store::tx::{NewReview, Tx};

/// Most jobs committed in one transaction; bounds the latency a burst adds to its last job.
const MAX_JOBS_PER_COMMIT: usize = 4096;
/// Jobs queued before callers wait: back-pressure instead of unbounded memory.
const QUEUE_DEPTH: usize = 16 * 1024;
/// Times the writer gives up the CPU while it gathers a group, as long as each brings more
/// jobs. On a busy server the request threads then queue more jobs for the same commit, so one
/// fsync (which on a virtual disk costs CPU as well as time) covers more of them; on an idle
/// one the first yield finds nothing new and costs a microsecond.
const GATHER_YIELDS: usize = 3;
/// Statements the writer keeps prepared: every kind of change it makes, with room to spare, so
/// that a mix of checks, batches, imports and rosters never evicts one another's.
const STATEMENT_CACHE: usize = 128;

/// What a job sees: the open transaction and the end of the audit chain.
pub struct WriteCtx<'a> {
    pub conn: &'a Connection,
    chain: &'a mut Chain,
    /// The last employer this job asked about and whether it keeps a roster: a batch of a
    /// thousand applicants asks once, not once a row.
    rostered: Option<(String, bool)>,
}

impl<'a> WriteCtx<'a> {
    fn new(conn: &'a Connection, chain: &'a mut Chain) -> Self {
        Self {
            conn,
            chain,
            rostered: None,
        }
    }

    /// Appends an audit entry, and the Merkle nodes it completes, in the current transaction.
    pub fn audit(&mut self, body: NewEntry) -> Result<Entry, StoreError> {
        let conn = self.conn;
        let entry = self.chain.append(body, |id, hash| {
            super::tree_sql::insert_node(conn, id, hash)
        })?;
        super::audit_sql::insert(conn, &entry)?;
        Ok(entry)
    }

    /// Counts an answered check on its employer's roster (see [`super::rosters::note_check`]).
    /// Only a check's own entry may: the review, resolution and alert entries that name the
    /// same check id are not checks.
    pub fn note_check(&mut self, check: &NewEntry) -> Result<(), StoreError> {
        let rostered = match &self.rostered {
            Some((employer, rostered)) if *employer == check.employer => *rostered,
            _ => {
                let rostered = super::rosters::has_members(self.conn, &check.employer)?;
                self.rostered = Some((check.employer.clone(), rostered));
                rostered
            }
        };
        if rostered {
            super::rosters::note_check(self.conn, check)?;
        }
        Ok(())
    }
}

/// The SQLite transaction as units of work see it: every future is ready at once, since the
/// writer thread owns the connection.
impl Tx for WriteCtx<'_> {
    fn audit(&mut self, entry: NewEntry) -> impl Future<Output = Result<Entry, StoreError>> {
        std::future::ready(WriteCtx::audit(self, entry))
    }

    fn note_check(&mut self, check: &NewEntry) -> impl Future<Output = Result<(), StoreError>> {
        std::future::ready(WriteCtx::note_check(self, check))
    }

    fn insert_review(&mut self, case: NewReview) -> impl Future<Output = Result<u64, StoreError>> {
        std::future::ready(super::reviews::insert(self.conn, &case))
    }

    fn review(&mut self, id: u64) -> impl Future<Output = Result<Option<ReviewRow>, StoreError>> {
        std::future::ready(
            super::reviews::get(self.conn, id).map(|found| found.map(|(review, _)| review)),
        )
    }

    fn find_check(
        &mut self,
        employer: &str,
        check_id: &str,
    ) -> impl Future<Output = Result<Option<(SubjectKey, String)>, StoreError>> {
        std::future::ready(super::reviews::find_check(self.conn, employer, check_id))
    }
}

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A job runs inside the transaction and says whether it succeeded (so that its savepoint is
/// kept or rolled back) and how to report to its caller once the commit is known.
type Job = Box<dyn FnOnce(&mut WriteCtx<'_>) -> (bool, Completion) + Send>;

/// How a job is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// With the others of its commit, under a savepoint of its own: a failure undoes only it.
    Guarded,
    /// With the others, without a savepoint. A savepoint copies the original of every page the
    /// job is the first to change since the last one (4 KiB each, in memory), and jobs that
    /// only append — a check's entry, a batch chunk's rows — touch the same few pages job after
    /// job: a single check copied some 28 KiB. Such a job fails only when the database does
    /// (a full disk, an I/O error); if it does, its commit is rolled back whole and every job
    /// in it is told so, and nothing of it was acknowledged.
    Unguarded,
    /// In a transaction of its own, without a savepoint: for a job that rewrites hundreds of
    /// megabytes (publishing a large import), whose savepoint would cost as much memory; a
    /// failure rolls the transaction back.
    Alone,
}

/// A job and how it is committed.
struct Queued {
    job: Job,
    mode: Mode,
}

/// What the writer did over its life: how well group commit gathered jobs, and how long the
/// durable commits (the fsyncs) took. Logged when the writer stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub commits: u64,
    pub jobs: u64,
    pub audit_entries: u64,
    pub commit_micros: u64,
}

/// Told of every durable commit: how long COMMIT took and how many jobs it carried (metrics).
pub type CommitObserver = Box<dyn Fn(std::time::Duration, usize) + Send + Sync>;

/// The writer's life figures and whoever watches each commit.
struct Tally {
    stats: WriterStats,
    observer: Arc<OnceLock<CommitObserver>>,
}

pub struct Writer {
    jobs: Option<mpsc::Sender<Queued>>,
    thread: Option<JoinHandle<WriterStats>>,
    observer: Arc<OnceLock<CommitObserver>>,
}

impl Writer {
    pub fn start(conn: Connection, chain: Chain) -> Result<Self, StoreError> {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let observer = Arc::new(OnceLock::new());
        let tally = Tally {
            stats: WriterStats::default(),
            observer: Arc::clone(&observer),
        };
        let thread = std::thread::Builder::new()
            .name("safehire-writer".into())
            .spawn(move || run(conn, chain, queue, tally))
            .map_err(StoreError::Thread)?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
            observer,
        })
    }

    /// Sets who is told of every commit from now on (once; later calls are ignored).
    pub fn observe_commits(&self, observer: CommitObserver) {
        let _ = self.observer.set(observer);
    }

    /// Runs `job` in the next transaction; resolves once that transaction is durable. A job that
    /// fails is rolled back alone (savepoint) and does not affect the others in its commit.
    pub async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(job, Mode::Guarded).await
    }

    /// Like [`Writer::run`], without a savepoint, for a job that only appends and so fails
    /// only when the database does: its failure fails its whole commit (see
    /// [`Mode::Unguarded`]).
    pub async fn run_unguarded<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(job, Mode::Unguarded).await
    }

    /// Like [`Writer::run`], for a job that changes a great deal: it gets a transaction of its
    /// own, committed (or rolled back) without the others.
    pub async fn run_alone<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(job, Mode::Alone).await
    }

    async fn submit<T, F>(&self, job: F, mode: Mode) -> Result<T, StoreError>
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
            .send(Queued { job, mode })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        result.await.map_err(|_| StoreError::NotWritten)?
    }

    /// Lets queued jobs finish, commits them, stops the thread, and logs what it did.
    pub fn close(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take()
            && let Ok(stats) = thread.join()
        {
            tracing::info!(
                commits = stats.commits,
                jobs = stats.jobs,
                audit_entries = stats.audit_entries,
                commit_micros = stats.commit_micros,
                "writer stopped"
            );
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(
    conn: Connection,
    mut chain: Chain,
    mut queue: mpsc::Receiver<Queued>,
    mut stats: Tally,
) -> WriterStats {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_JOBS_PER_COMMIT);
    let mut next = queue.blocking_recv();
    while let Some(first) = next.take() {
        if first.mode == Mode::Alone {
            commit_alone(&conn, &mut chain, first.job, &mut stats);
            next = queue.blocking_recv();
            continue;
        }
        batch.push(first);
        next = gather(&mut queue, &mut batch);
        commit_batch(&conn, &mut chain, &mut batch, &mut stats);
        if next.is_none() {
            next = queue.blocking_recv();
        }
    }
    stats.stats
}

/// Adds the queued jobs to `batch`, giving up the CPU while that brings more (see
/// [`GATHER_YIELDS`]). Stops at a job that must run alone and returns it.
fn gather(queue: &mut mpsc::Receiver<Queued>, batch: &mut Vec<Queued>) -> Option<Queued> {
    let mut yields = 0;
    loop {
        let before = batch.len();
        while batch.len() < MAX_JOBS_PER_COMMIT {
            match queue.try_recv() {
                Ok(queued) if queued.mode == Mode::Alone => return Some(queued),
                Ok(queued) => batch.push(queued),
                Err(_) => break,
            }
        }
        let grew = batch.len() > before;
        if batch.len() >= MAX_JOBS_PER_COMMIT || yields == GATHER_YIELDS || (yields > 0 && !grew) {
            return None;
        }
        std::thread::yield_now();
        yields += 1;
    }
}

/// Runs a statement the writer runs again and again (transaction control), prepared once.
fn exec(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs a batch of jobs in one transaction. A job whose transaction could not even begin is
/// dropped unrun, which its caller sees as `NotWritten`; so are the jobs after an unguarded
/// job that failed, once the transaction is rolled back.
fn commit_batch(conn: &Connection, chain: &mut Chain, batch: &mut Vec<Queued>, stats: &mut Tally) {
    let chain_before = *chain;
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        tracing::error!(error = %e, jobs = batch.len(), "writer could not begin a transaction");
        batch.clear();
        return;
    }
    let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
    for Queued { job, mode } in batch.drain(..) {
        if mode == Mode::Unguarded {
            let (succeeded, completion) = job(&mut WriteCtx::new(conn, chain));
            if succeeded {
                completions.push(completion);
                continue;
            }
            *chain = chain_before;
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "writer could not roll back a failed commit");
            }
            // The failed job reports its own error; the others, that nothing was written.
            completion(Ok(()));
            let why =
                "another job of the same commit failed without a savepoint; nothing was written";
            for completion in completions {
                completion(Err(StoreError::CommitFailed(why.into())));
            }
            return;
        }
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            tracing::error!(error = %e, "writer could not open a savepoint; job dropped");
            continue;
        }
        let chain_at_job = *chain;
        let (succeeded, completion) = job(&mut WriteCtx::new(conn, chain));
        let closed = if succeeded {
            exec(conn, "RELEASE job")
        } else {
            *chain = chain_at_job;
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        if let Err(e) = closed {
            tracing::error!(error = %e, "writer could not close a savepoint");
        }
        completions.push(completion);
    }
    let committed = commit(conn, chain, chain_before, stats, completions.len());
    for completion in completions {
        completion(committed.clone().map_err(StoreError::CommitFailed));
    }
}

/// Runs one job in a transaction of its own: committed when it succeeds, rolled back whole
/// when it fails (its caller then sees the job's own error).
fn commit_alone(conn: &Connection, chain: &mut Chain, job: Job, stats: &mut Tally) {
    let chain_before = *chain;
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "writer could not begin a transaction");
        return;
    }
    let (succeeded, completion) = job(&mut WriteCtx::new(conn, chain));
    let committed = if succeeded {
        commit(conn, chain, chain_before, stats, 1)
    } else {
        *chain = chain_before;
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "writer could not roll back a failed job");
        }
        Ok(())
    };
    completion(committed.map_err(StoreError::CommitFailed));
}

/// Commits the open transaction of `jobs` jobs and counts it; on failure rolls it back and
/// puts the chain back where it was.
fn commit(
    conn: &Connection,
    chain: &mut Chain,
    chain_before: Chain,
    stats: &mut Tally,
    jobs: usize,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    let committed = exec(conn, "COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        *chain = chain_before;
        e.to_string()
    });
    if committed.is_ok() {
        let took = started.elapsed();
        let figures = &mut stats.stats;
        figures.commits += 1;
        figures.jobs += jobs as u64;
        figures.audit_entries += chain.head().seq - chain_before.head().seq;
        figures.commit_micros += u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Some(observe) = stats.observer.get() {
            observe(took, jobs);
        }
    }
    committed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Head;
    use crate::audit::merkle::Frontier;

    fn count(ctx: &mut WriteCtx<'_>) -> Result<i64, StoreError> {
        Ok(ctx
            .conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
    }

    #[tokio::test]
    async fn a_job_alone_commits_or_leaves_nothing() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let mut writer = Writer::start(conn, Chain::new(Head::EMPTY, Frontier::EMPTY)).unwrap();
        let failed = writer
            .run_alone(|ctx| {
                ctx.conn.execute("INSERT INTO t VALUES (1)", [])?;
                Err::<(), _>(StoreError::NotWritten)
            })
            .await;
        assert!(matches!(failed, Err(StoreError::NotWritten)));
        assert_eq!(writer.run(count).await.unwrap(), 0);
        writer
            .run_alone(|ctx| Ok(ctx.conn.execute("INSERT INTO t VALUES (2)", [])?))
            .await
            .unwrap();
        assert_eq!(writer.run(count).await.unwrap(), 1);
        writer.close();
    }

    /// An unguarded job has no savepoint: when it fails, its whole commit goes, the jobs
    /// before it are told that nothing was written, and the jobs after it are not run.
    #[tokio::test]
    async fn an_unguarded_failure_fails_its_whole_commit() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let mut writer =
            Arc::new(Writer::start(conn, Chain::new(Head::EMPTY, Frontier::EMPTY)).unwrap());
        // Holds the writer while the three jobs queue, so that they share one commit.
        let (open_gate, gate) = std::sync::mpsc::channel::<()>();
        let held = {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                writer
                    .run_alone(move |_| {
                        let _ = gate.recv_timeout(std::time::Duration::from_secs(10));
                        Ok(())
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        let insert = |x: i64, fail: bool, guarded: bool| {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                let job = move |ctx: &mut WriteCtx<'_>| {
                    ctx.conn.execute("INSERT INTO t VALUES (?1)", [x])?;
                    if fail {
                        return Err(StoreError::WriterGone);
                    }
                    Ok(())
                };
                if guarded {
                    writer.run(job).await
                } else {
                    writer.run_unguarded(job).await
                }
            })
        };
        let before = insert(1, false, true);
        tokio::task::yield_now().await;
        let failing = insert(2, true, false);
        tokio::task::yield_now().await;
        let after = insert(3, false, false);
        tokio::task::yield_now().await;
        open_gate.send(()).unwrap();
        held.await.unwrap().unwrap();
        assert!(matches!(
            before.await.unwrap(),
            Err(StoreError::CommitFailed(_))
        ));
        assert!(matches!(
            failing.await.unwrap(),
            Err(StoreError::WriterGone)
        ));
        assert!(matches!(after.await.unwrap(), Err(StoreError::NotWritten)));
        assert_eq!(writer.run(count).await.unwrap(), 0);
        Arc::get_mut(&mut writer).unwrap().close();
    }
}
