//! The group-commit writer on PostgreSQL, one per node: callers submit jobs, and one task
//! gathers what is queued (up to [`MAX_JOBS_PER_GROUP`]) into one transaction whose first
//! statement locks `audit_head` ([`PgTx::begin`]), so that the groups of every node follow one
//! another in one total order. The jobs' audit entries and tree nodes are written in one
//! statement each at the end of the group, then the head row is moved and the transaction
//! committed; every job's result is released only after COMMIT succeeded, so nothing is
//! acknowledged before it is durable. A failed COMMIT (or a connection lost mid-group) fails
//! every job of the group.
//!
//! A failed job must not lose the others, and SQLite's answer, a savepoint per job, does not
//! carry over: PostgreSQL savepoints are subtransactions, and more than 64 in one transaction
//! overflow each backend's subtransaction cache, after which every concurrent snapshot pays
//! `pg_subtrans` lookups. So there is none. When job `k` fails, the group is rolled back, job
//! `k` gets its own error, jobs `0..k` are run again (without it) and committed, and the jobs
//! after `k` form the next transaction. Jobs are therefore `Fn`, runnable more than once, and
//! must do nothing outside the transaction they are given. Splitting at the failed job (rather
//! than re-running the whole group without it each time) runs a job at most twice, however
//! many of its group fail, at the cost of one more commit per failure.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::audit::PgTx;
use super::{Pg, PgError};

/// Most jobs in one transaction: bounds how long a group holds the head row, which every
/// node's next group waits for.
pub const MAX_JOBS_PER_GROUP: usize = 1024;
/// Jobs queued before callers wait: back-pressure instead of unbounded memory.
const QUEUE_DEPTH: usize = 16 * 1024;
/// Times the writer yields while it gathers a group, as long as each brings more jobs (as the
/// SQLite writer does): on a busy node the callers queue more jobs for the same commit.
const GATHER_YIELDS: usize = 3;

/// What a job returns: its work, as a future that borrows the group's transaction.
pub type JobFuture<'a, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'a>>;

/// A job's run: whether it succeeded (its outcome is kept for its caller).
type Run<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// A submitted job, whatever its result type.
trait Queued: Send {
    fn run<'a, 'c>(&'a mut self, tx: &'a mut PgTx<'c>) -> Run<'a>;
    /// Answers the caller: the job's own error if its last run failed, else the group's
    /// failure if there was one, else its result.
    fn finish(self: Box<Self>, group: Result<(), Arc<PgError>>);
}

struct Submitted<F, T, E> {
    job: F,
    outcome: Option<Result<T, E>>,
    done: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Queued for Submitted<F, T, E>
where
    F: for<'a, 'c> Fn(&'a mut PgTx<'c>) -> JobFuture<'a, T, E> + Send + 'static,
    T: Send + 'static,
    E: From<PgError> + Send + 'static,
{
    fn run<'a, 'c>(&'a mut self, tx: &'a mut PgTx<'c>) -> Run<'a> {
        Box::pin(async move {
            let outcome = (self.job)(tx).await;
            let succeeded = outcome.is_ok();
            self.outcome = Some(outcome);
            succeeded
        })
    }

    fn finish(self: Box<Self>, group: Result<(), Arc<PgError>>) {
        let answer = match (self.outcome, group) {
            (Some(Err(own)), _) => Err(own),
            (_, Err(failed)) => Err(E::from(PgError::NotCommitted(failed))),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (None, Ok(())) => Err(E::from(PgError::WriterGone)),
        };
        let _ = self.done.send(answer);
    }
}

/// A node's writer: a task that commits submitted jobs in groups.
pub struct PgWriter {
    jobs: Option<mpsc::Sender<Box<dyn Queued>>>,
    task: Option<JoinHandle<()>>,
}

impl PgWriter {
    /// Starts the writer's task on the current tokio runtime.
    pub fn start(pg: Arc<Pg>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        Self {
            jobs: Some(jobs),
            task: Some(tokio::spawn(run(pg, queue))),
        }
    }

    /// Runs `job` in the next group commit; resolves once that commit is durable, with the
    /// job's result, its own error, or the group's failure. Write it as
    /// `|tx| Box::pin(async move { … })`, cloning what it captures inside the closure, since it
    /// may run more than once.
    pub async fn run<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'a, 'c> Fn(&'a mut PgTx<'c>) -> JobFuture<'a, T, E> + Send + 'static,
        T: Send + 'static,
        E: From<PgError> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let queued: Box<dyn Queued> = Box::new(Submitted {
            job,
            outcome: None,
            done,
        });
        self.jobs
            .as_ref()
            .ok_or(PgError::WriterGone)?
            .send(queued)
            .await
            .map_err(|_| PgError::WriterGone)?;
        answer.await.map_err(|_| PgError::WriterGone)?
    }

    /// Lets queued jobs finish, commits them and stops the task.
    pub async fn close(&mut self) {
        self.jobs.take();
        if let Some(task) = self.task.take()
            && task.await.is_err()
        {
            tracing::error!("the PostgreSQL writer did not stop cleanly");
        }
    }
}

async fn run(pg: Arc<Pg>, mut queue: mpsc::Receiver<Box<dyn Queued>>) {
    while let Some(first) = queue.recv().await {
        let mut group = VecDeque::from([first]);
        gather(&mut queue, &mut group).await;
        commit_group(&pg, group).await;
    }
}

/// Adds the queued jobs to `group`, yielding while that brings more (see [`GATHER_YIELDS`]).
async fn gather(
    queue: &mut mpsc::Receiver<Box<dyn Queued>>,
    group: &mut VecDeque<Box<dyn Queued>>,
) {
    let mut yields = 0;
    loop {
        let before = group.len();
        while group.len() < MAX_JOBS_PER_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push_back(job),
                Err(_) => break,
            }
        }
        let grew = group.len() > before;
        if group.len() >= MAX_JOBS_PER_GROUP || yields == GATHER_YIELDS || (yields > 0 && !grew) {
            return;
        }
        tokio::task::yield_now().await;
        yields += 1;
    }
}

/// Commits `group`, splitting it at each failed job (see the module's comment), and answers
/// every job.
async fn commit_group(pg: &Pg, group: VecDeque<Box<dyn Queued>>) {
    let mut now = group;
    let mut next = VecDeque::new();
    while !now.is_empty() || !next.is_empty() {
        if now.is_empty() {
            std::mem::swap(&mut now, &mut next);
        }
        match attempt(pg, &mut now).await {
            Ok(None) => {
                for job in now.drain(..) {
                    job.finish(Ok(()));
                }
            }
            Ok(Some(failed)) => {
                let mut after = now.split_off(failed);
                if let Some(job) = after.pop_front() {
                    job.finish(Ok(()));
                }
                after.append(&mut next);
                next = after;
            }
            Err(error) => {
                tracing::error!(
                    error = %error,
                    jobs = now.len() + next.len(),
                    "a PostgreSQL group commit failed"
                );
                let error = Arc::new(error);
                for job in now.drain(..).chain(next.drain(..)) {
                    job.finish(Err(Arc::clone(&error)));
                }
            }
        }
    }
}

/// Runs `jobs` in one transaction and commits it (`Ok(None)`), or rolls it back at the first
/// job that fails and says which (`Ok(Some(k))`). An error: the transaction could not begin,
/// roll back or commit, and none of its jobs is durable (or, for a lost COMMIT answer, known
/// to be).
async fn attempt(pg: &Pg, jobs: &mut VecDeque<Box<dyn Queued>>) -> Result<Option<usize>, PgError> {
    let mut client = pg.client().await?;
    let mut tx = PgTx::begin(&mut client).await?;
    for (k, job) in jobs.iter_mut().enumerate() {
        if !job.run(&mut tx).await {
            tx.rollback().await?;
            return Ok(Some(k));
        }
    }
    tx.commit().await?;
    Ok(None)
}
