//! The PostgreSQL group-commit writer against a real PostgreSQL 15 (common/postgres.rs): two
//! nodes' writers under many concurrent callers, one job in ten failing on purpose, still give
//! one gap-free chain holding exactly the successful jobs' entries and writes; a connection
//! killed in the middle of a group fails every job of it and leaves nothing of it behind.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use safehire::audit::{Entry, NewEntry};
use safehire::store::postgres::writer::{JobFuture, PgWriter};
use safehire::store::postgres::{Pg, PgError, PgOptions, audit};
use tokio::sync::Notify;

use crate::common::postgres::postgres_ready;
use crate::postgres_audit::{fresh, merkle_root, read_back, synthetic_bodies};

/// A job's own failure, as a domain unit of work would have one.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error("refused on purpose")]
    OnPurpose,
}

/// What job `id` does: a row of its own in `meta` and an audit entry naming it; then job
/// `id % 20 == 3` fails after both (its writes must not survive), and `id % 20 == 13` runs a
/// statement that fails in the database (aborting the transaction).
fn job(
    id: u64,
    body: NewEntry,
) -> impl for<'a, 'c> Fn(&'a mut audit::PgTx<'c>) -> JobFuture<'a, Entry, JobError> + Send + 'static
{
    move |tx| {
        let body = body.clone();
        Box::pin(async move {
            tx.transaction()
                .execute(
                    "INSERT INTO meta (key, value) VALUES ($1, 'written')",
                    &[&format!("job-{id}")],
                )
                .await
                .map_err(PgError::from)?;
            let entry = tx.audit(NewEntry {
                detail: format!("job={id}"),
                ..body
            });
            match id % 20 {
                3 => Err(JobError::OnPurpose),
                13 => {
                    tx.transaction()
                        .execute(
                            "INSERT INTO meta (key, value) VALUES ('taken', 'again')",
                            &[],
                        )
                        .await
                        .map_err(PgError::from)?;
                    Ok(entry)
                }
                _ => Ok(entry),
            }
        })
    }
}

fn fails_on_purpose(id: u64) -> bool {
    matches!(id % 20, 3 | 13)
}

/// The ids of the jobs whose `meta` rows are in the database.
async fn written_jobs(pg: &Pg) -> BTreeSet<u64> {
    let client = pg.client().await.expect("client");
    client
        .query("SELECT key FROM meta WHERE key LIKE 'job-%'", &[])
        .await
        .expect("read meta")
        .iter()
        .map(|row| {
            let key: String = row.get(0);
            key["job-".len()..].parse().expect("a job id")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_keep_every_successful_job_once_and_no_failed_one() {
    if !postgres_ready() {
        return;
    }
    let (first, url) = fresh().await;
    let first = Arc::new(first);
    first
        .client()
        .await
        .expect("client")
        .execute(
            "INSERT INTO meta (key, value) VALUES ('taken', 'once')",
            &[],
        )
        .await
        .expect("seed the key jobs collide on");
    let second = Arc::new(Pg::new(&PgOptions::new(url)).expect("second node's pool"));
    let writers = [
        Arc::new(PgWriter::start(Arc::clone(&first))),
        Arc::new(PgWriter::start(Arc::clone(&second))),
    ];
    let bodies = Arc::new(synthetic_bodies(30, 50));
    const SUBMITTERS: u64 = 48;
    const JOBS_EACH: u64 = 20;
    let mut tasks = Vec::new();
    for submitter in 0..SUBMITTERS {
        // Half the submitters on each node: both see failed jobs among successful ones.
        let writer = Arc::clone(&writers[(submitter * 2 / SUBMITTERS) as usize]);
        let bodies = Arc::clone(&bodies);
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for k in 0..JOBS_EACH {
                // Consecutive ids at each step: the jobs failing on purpose sit among successful
                // ones in a group, not all at one position.
                let id = k * SUBMITTERS + submitter;
                let body = bodies[(id % bodies.len() as u64) as usize].clone();
                results.push((id, writer.run(job(id, body)).await));
            }
            results
        }));
    }
    let mut succeeded: BTreeMap<u64, Entry> = BTreeMap::new();
    for task in tasks {
        for (id, result) in task.await.expect("submitter") {
            match result {
                Ok(entry) => {
                    assert!(!fails_on_purpose(id), "job {id} should have failed");
                    assert_eq!(entry.body.detail, format!("job={id}"));
                    succeeded.insert(id, entry);
                }
                Err(JobError::OnPurpose) => assert_eq!(id % 20, 3, "job {id}"),
                Err(JobError::Pg(PgError::Db(e))) if id % 20 == 13 => {
                    assert!(e.as_db_error().is_some(), "job {id}: {e}");
                }
                Err(e) => panic!("job {id} failed: {e}"),
            }
        }
    }
    let total = SUBMITTERS * JOBS_EACH;
    assert_eq!(succeeded.len() as u64, total - total / 10);

    let mut entries: Vec<Entry> = succeeded.values().cloned().collect();
    entries.sort_by_key(|e| e.seq);
    let n = entries.len() as u64;
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "sequence numbers 1..=n, each once"
    );
    let log = read_back(&second, n).await;
    assert_eq!(
        log, entries,
        "the log holds what each job was told, and nothing else"
    );
    assert_eq!(
        written_jobs(&first).await,
        succeeded.keys().copied().collect::<BTreeSet<_>>(),
        "exactly the successful jobs' own writes are kept"
    );
    let verification = audit::verify(&first, 0, 0).await.expect("verify");
    assert!(verification.ok(), "{:?}", verification.first_broken);
    assert_eq!(verification.entries_checked, n);
    let root = merkle_root(&log);
    assert_eq!(verification.root, Some(root));
    assert_eq!(audit::log_root(&second).await.expect("log root"), (n, root));
    assert_eq!(audit::check_stored(&first).await.expect("check"), None);
    for writer in writers {
        let mut writer = Arc::into_inner(writer).expect("no submitter holds it");
        writer.close().await;
    }
}

/// Polls `future` once: a job submitted this way is queued when this returns.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_group_fails_every_job_of_it() {
    if !postgres_ready() {
        return;
    }
    let (pg, url) = fresh().await;
    let pg = Arc::new(pg);
    let killer = Arc::new(Pg::new(&PgOptions::new(url)).expect("second pool"));
    let mut writer = PgWriter::start(Arc::clone(&pg));
    let bodies = synthetic_bodies(31, 12);

    // A job that holds the writer until the next group is queued behind it.
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let gate = {
        let (started, release, body) = (
            Arc::clone(&started),
            Arc::clone(&release),
            bodies[0].clone(),
        );
        writer.run(move |tx| {
            let (started, release, body) =
                (Arc::clone(&started), Arc::clone(&release), body.clone());
            Box::pin(async move {
                let entry = tx.audit(body);
                started.notify_one();
                release.notified().await;
                Ok::<_, PgError>(entry)
            })
        })
    };
    let mut gate = Box::pin(gate);
    assert!(poll_once(&mut gate).await.is_pending());
    started.notified().await;

    // Ten jobs, one group: the fifth has its own connection killed from another pool.
    let killed = Arc::new(AtomicBool::new(false));
    let mut doomed = Vec::new();
    for k in 0..10u64 {
        let (killer, killed, body) = (
            Arc::clone(&killer),
            Arc::clone(&killed),
            bodies[1 + k as usize].clone(),
        );
        let mut submitted = Box::pin(writer.run(move |tx| {
            let (killer, killed, body) = (Arc::clone(&killer), Arc::clone(&killed), body.clone());
            Box::pin(async move {
                tx.transaction()
                    .execute(
                        "INSERT INTO meta (key, value) VALUES ($1, 'written')",
                        &[&format!("job-{k}")],
                    )
                    .await
                    .map_err(PgError::from)?;
                let entry = tx.audit(body);
                if k == 4 && !killed.swap(true, Ordering::SeqCst) {
                    let row = tx
                        .transaction()
                        .query_one("SELECT pg_backend_pid()", &[])
                        .await
                        .map_err(PgError::from)?;
                    let pid: i32 = row.get(0);
                    let terminated: bool = killer
                        .client()
                        .await?
                        .query_one("SELECT pg_terminate_backend($1, 10000)", &[&pid])
                        .await
                        .map_err(PgError::from)?
                        .get(0);
                    assert!(terminated, "backend {pid} terminated");
                }
                Ok::<_, PgError>(entry)
            })
        }));
        assert!(poll_once(&mut submitted).await.is_pending());
        doomed.push(submitted);
    }
    release.notify_one();
    let before = gate.await.expect("the gate's group commits");
    assert_eq!(before.seq, 1);
    for (k, submitted) in doomed.into_iter().enumerate() {
        let answer = submitted.await;
        assert!(
            answer.is_err(),
            "job {k} of the killed group got {answer:?}"
        );
    }
    assert!(killed.load(Ordering::SeqCst), "the fifth job ran");
    assert_eq!(
        audit::head(&pg).await.expect("head").seq,
        1,
        "nothing of the group"
    );
    assert_eq!(
        written_jobs(&pg).await,
        BTreeSet::new(),
        "no job's own write either"
    );

    // The writer goes on with a new connection.
    let after = writer
        .run(move |tx| {
            let body = bodies[11].clone();
            Box::pin(async move { Ok::<_, PgError>(tx.audit(body)) })
        })
        .await
        .expect("the next group commits");
    assert_eq!(after.seq, 2);
    let verification = audit::verify(&pg, 0, 0).await.expect("verify");
    assert!(verification.ok(), "{:?}", verification.first_broken);
    assert_eq!(verification.entries_checked, 2);
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_sees_the_group_s_entries_in_audit_log_once_flushed() {
    if !postgres_ready() {
        return;
    }
    let (pg, _) = fresh().await;
    let pg = Arc::new(pg);
    let mut writer = PgWriter::start(Arc::clone(&pg));
    let bodies = synthetic_bodies(32, 40);
    let counts = writer
        .run(move |tx| {
            let bodies = bodies.clone();
            Box::pin(async move {
                let count = "SELECT count(*) FROM audit_log";
                let (first, second) = bodies.split_at(20);
                for body in first {
                    tx.audit(body.clone());
                }
                let before: i64 = tx
                    .transaction()
                    .query_one(count, &[])
                    .await
                    .map_err(PgError::from)?
                    .get(0);
                tx.flush().await?;
                let flushed: i64 = tx
                    .transaction()
                    .query_one(count, &[])
                    .await
                    .map_err(PgError::from)?
                    .get(0);
                for body in second {
                    tx.audit(body.clone());
                }
                Ok::<_, PgError>((before, flushed))
            })
        })
        .await
        .expect("the group commits");
    assert_eq!(counts, (0, 20), "pending entries are written by flush");
    let log = read_back(&pg, 40).await;
    assert_eq!(
        audit::log_root(&pg).await.expect("log root"),
        (40, merkle_root(&log))
    );
    assert_eq!(audit::check_stored(&pg).await.expect("check"), None);
    let verification = audit::verify(&pg, 0, 0).await.expect("verify");
    assert!(verification.ok(), "{:?}", verification.first_broken);
    writer.close().await;
}
