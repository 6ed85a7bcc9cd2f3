//! Signing checkpoints of the audit log. A checkpoint is signed only over what a read
//! connection sees, and in WAL mode with `synchronous = FULL` a reader sees a commit only after
//! its WAL frames were synced: a checkpoint never covers an entry that is not durable. Signing
//! happens at most once per interval, and only when the log grew; every checkpoint is kept.

use std::time::{Duration, Instant};

use crate::audit::merkle::Hash;
use crate::audit::note::{Checkpoint, NoteSigner};
use crate::store::{Store, StoreError, StoredCheckpoint};

pub struct LogSigner {
    signer: NoteSigner,
    interval: Duration,
    /// When the last checkpoint was signed; held while signing so two never race.
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl LogSigner {
    pub fn new(signer: NoteSigner, interval: Duration) -> Self {
        Self {
            signer,
            interval,
            last: tokio::sync::Mutex::new(None),
        }
    }

    pub fn vkey(&self) -> String {
        self.signer.vkey()
    }

    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Signs a checkpoint of the durable log when it grew since the newest one kept and the
    /// interval has passed since the last signing; returns the newest kept checkpoint.
    pub async fn refresh(
        &self,
        store: &Store,
        now_micros: i64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let mut last = self.last.lock().await;
        let newest = store.checkpoint(0).await?;
        let (size, root) = store.log_root().await?;
        let grew = newest.as_ref().is_none_or(|c| c.size < size);
        let due = last.is_none_or(|at| at.elapsed() >= self.interval);
        if !grew || !due {
            return Ok(newest);
        }
        store
            .save_checkpoint(size, now_micros, self.sign(size, root))
            .await?;
        *last = Some(Instant::now());
        store.checkpoint(size).await
    }

    fn sign(&self, size: u64, root: Hash) -> String {
        let body = Checkpoint {
            origin: self.origin().to_string(),
            size,
            root,
        }
        .body();
        self.signer.sign_note(&body)
    }

    /// The newest checkpoint that covers entry `index`, waiting for the next signing when
    /// none does yet (at most a few intervals).
    pub async fn covering(
        &self,
        store: &Store,
        index: u64,
        now_micros: i64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        for _ in 0..4 {
            if let Some(found) = store.checkpoint_covering(index).await? {
                return Ok(Some(found));
            }
            if let Some(signed) = self.refresh(store, now_micros).await?
                && signed.size > index
            {
                return Ok(Some(signed));
            }
            tokio::time::sleep(self.interval.max(Duration::from_millis(10))).await;
        }
        Ok(None)
    }
}
