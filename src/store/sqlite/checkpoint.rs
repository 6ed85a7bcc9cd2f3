//! WAL checkpointing off the writer's path. SQLite's automatic checkpoint runs inside the commit
//! that crosses the threshold, so one unlucky batch chunk would pay for copying everything the
//! others wrote. A separate thread with its own connection copies the WAL back into the database
//! in the background (`PASSIVE`: it never blocks the writer or readers), and SQLite restarts the
//! WAL from its start once a checkpoint has caught up. Durability does not depend on it: a
//! committed transaction is already fsynced in the WAL, and a crash mid-checkpoint is repaired by
//! SQLite on the next open.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// How often the WAL is copied back when the server is busy.
const INTERVAL: Duration = Duration::from_millis(250);

pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("safehire-checkpoint".into())
            .spawn(move || run(&conn, &stopped))
            .map_err(StoreError::Thread)?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// One that runs no thread: what `Store::close` leaves in place of the running one.
    pub fn stopped() -> Self {
        Self {
            stop: None,
            thread: None,
        }
    }

    /// Stops the thread after one last checkpoint that also truncates the WAL file.
    pub fn close(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        if let Err(e) = checkpoint(conn, "PASSIVE") {
            tracing::warn!(error = %e, "background WAL checkpoint failed; will retry");
        }
    }
    if let Err(e) = checkpoint(conn, "TRUNCATE") {
        tracing::warn!(error = %e, "final WAL checkpoint failed; SQLite finishes it on next open");
    }
}

fn checkpoint(conn: &Connection, mode: &str) -> Result<(), rusqlite::Error> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
}
