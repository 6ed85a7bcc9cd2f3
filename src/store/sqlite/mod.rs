//! The SQLite backend: one file in WAL mode, one writer thread that owns every change (and the
//! end of the audit chain), and a pool of read connections. WAL checkpointing, `VACUUM INTO`
//! backups and the offline file checks (`verify_file` and its kin) exist only here.

mod alerts;
pub(in crate::store) mod audit_sql;
mod backup;
mod batches;
mod certs;
mod checkpoint;
mod checks;
mod import_order;
mod name_tags;
mod orgs;
mod oversight;
mod records;
mod reviews;
mod rosters;
mod schema;
mod state_sql;
pub(in crate::store) mod tree_sql;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::tx::run_ready;
use super::units;

pub use alerts::{AlertRow, AlertViewer};
pub use backup::{BackupSummary, backup_file};
pub use batches::{BatchState, Recorded, RowAnswer};
pub use certs::RevokedCert;
pub use checks::CheckRecord;
pub use import_order::ImportOrder;
pub use oversight::AuditFilter;
pub use records::{FlagChange, ImportCounts, RecordFlag};
pub use reviews::{ReviewRow, ReviewViewer};
pub use rosters::{Application, Member, RosterCounts, RosterFacts, StagedMember};
pub use tree_sql::StoredCheckpoint;
pub use writer::{CommitObserver, WriteCtx};

use crate::audit::{Chain, Entry, Head, NewEntry, Verification};
use crate::check::Candidate;
use crate::keys::{NameBinder, SubjectKey};
use crate::org::{Enrolment, OrgStatus, Organisation};
use crate::registry::HashedRecord;
use crate::roster::{AlertAction, ReviewResolution};

/// The open database.
pub struct SqliteStore {
    path: PathBuf,
    /// Shared with async callers; `close` takes it out so that no new write starts.
    writer: tokio::sync::RwLock<Option<Arc<writer::Writer>>>,
    checkpointer: Mutex<checkpoint::Checkpointer>,
    readers: Arc<Readers>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies migrations, binds it to the
    /// master key named by `key_id`, clears what broken imports left, and starts the writer.
    pub fn open(path: &Path, key_id: &str) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut conn = Connection::open(path)?;
        restrict_permissions(path)?;
        configure_writer(&conn)?;
        schema::migrate(&mut conn)?;
        bind_key(&conn, key_id)?;
        let dropped = records::discard_all_staged(&conn)? + rosters::discard_all_staged(&conn)?;
        if dropped > 0 {
            tracing::warn!(
                rows = dropped,
                "discarded rows of imports and roster uploads that never finished"
            );
        }
        let head = audit_sql::head(&conn)?;
        let chain = Chain::new(head, tree_sql::catch_up(&conn, head)?);
        let writer = Arc::new(writer::Writer::start(conn, chain)?);
        Ok(Self {
            path: path.to_path_buf(),
            writer: tokio::sync::RwLock::new(Some(writer)),
            checkpointer: Mutex::new(checkpoint::Checkpointer::start(path)?),
            readers: Arc::new(Readers {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tells `observer` of every durable commit from now on (the server's metrics).
    pub async fn observe_commits(&self, observer: writer::CommitObserver) {
        if let Some(writer) = self.writer.read().await.as_ref() {
            writer.observe_commits(observer);
        }
    }

    /// The running writer; `WriterGone` once the store is closed.
    async fn writer(&self) -> Result<Arc<writer::Writer>, StoreError> {
        self.writer
            .read()
            .await
            .clone()
            .ok_or(StoreError::WriterGone)
    }

    /// Runs `job` in the writer's next group commit; resolves once it is durable.
    pub async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer().await?.run(job).await
    }

    /// Like [`Store::write`], without a savepoint, for a job that only appends (an audit entry,
    /// a check, a batch chunk's rows) and so fails only when the database does; such a failure
    /// fails every job of its commit (see `writer::Mode::Unguarded`).
    async fn write_unguarded<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer().await?.run_unguarded(job).await
    }

    /// Like [`Store::write`], in a transaction of its own: for a job that changes so much that
    /// keeping a savepoint for it (the originals of every page it touches) would cost more
    /// memory than rolling the transaction back.
    pub async fn write_alone<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer().await?.run_alone(job).await
    }

    /// Runs `job` on a read connection, off the async threads.
    pub async fn read<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || readers.with(job))
            .await
            .map_err(|_| StoreError::NotWritten)?
    }

    /// Waits for queued writes to commit and stops the writer. Later writes fail with
    /// `WriterGone`.
    pub async fn close(&self) {
        let Some(mut writer) = self.writer.write().await.take() else {
            return;
        };
        // Writes already under way hold a reference until their commit is reported.
        let mut writer = loop {
            match Arc::try_unwrap(writer) {
                Ok(writer) => break writer,
                Err(shared) => {
                    writer = shared;
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        };
        let checkpointer = self
            .checkpointer
            .lock()
            .ok()
            .map(|mut c| std::mem::replace(&mut *c, checkpoint::Checkpointer::stopped()));
        let stopped = tokio::task::spawn_blocking(move || {
            writer.close();
            if let Some(mut checkpointer) = checkpointer {
                checkpointer.close();
            }
        });
        if stopped.await.is_err() {
            tracing::error!("the database writer did not stop cleanly");
        }
    }

    // ---- audit ----

    /// Appends one entry; resolves once it is durable.
    pub async fn append_audit(&self, entry: NewEntry) -> Result<Entry, StoreError> {
        self.write_unguarded(move |ctx| ctx.audit(entry)).await
    }

    pub async fn audit_head(&self) -> Result<Head, StoreError> {
        self.read(audit_sql::head).await
    }

    pub async fn verify_audit(&self, from: u64, to: u64) -> Result<Verification, StoreError> {
        self.read(move |conn| audit_sql::verify(conn, from, to))
            .await
    }

    /// Binds the name tags of a database from before the binding to their documents, once, and
    /// logs each re-tagged record's state; returns how many records that re-tagged.
    pub async fn bind_name_tags(
        &self,
        binder: NameBinder,
        template: NewEntry,
    ) -> Result<u64, StoreError> {
        self.write_alone(move |ctx| name_tags::bind_all(ctx, &binder, &template))
            .await
    }

    /// Logs the state of every record and organisation once, for a database from before the
    /// state was bound to the log; returns how many entries that wrote (0 once done).
    pub async fn bind_state_baseline(&self, template: NewEntry) -> Result<u64, StoreError> {
        self.write_alone(move |ctx| state_sql::baseline(ctx, &template))
            .await
    }

    /// Every record and organisation whose stored state the log does not explain.
    pub async fn unexplained_state(&self) -> Result<Vec<String>, StoreError> {
        self.read(state_sql::unexplained).await
    }

    /// Compares the stored Merkle tree with one recomputed from the entries.
    pub async fn check_audit_tree(&self) -> Result<Option<String>, StoreError> {
        self.read(tree_sql::check_stored).await
    }

    /// The durable size of the log and the Merkle root over it, read together.
    pub async fn log_root(&self) -> Result<(u64, [u8; 32]), StoreError> {
        self.read(|conn| {
            let tx = conn.unchecked_transaction()?;
            let size = audit_sql::head(&tx)?.seq;
            let root = tree_sql::root(&tx, size)?;
            Ok((size, root))
        })
        .await
    }

    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        self.read(move |conn| tree_sql::inclusion(conn, index, size))
            .await
    }

    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, StoreError> {
        self.read(move |conn| tree_sql::consistency(conn, old, new))
            .await
    }

    pub async fn audit_entry(&self, seq: u64) -> Result<Option<Entry>, StoreError> {
        self.read(move |conn| tree_sql::entry(conn, seq)).await
    }

    pub async fn check_entry(&self, check_id: String) -> Result<Option<Entry>, StoreError> {
        self.read(move |conn| tree_sql::check_entry(conn, &check_id))
            .await
    }

    /// Keeps a signed checkpoint. Not audited: signing is the log's own bookkeeping, and an
    /// entry for it would make every checkpoint stale at once.
    pub async fn save_checkpoint(
        &self,
        size: u64,
        signed_at: i64,
        note: String,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| tree_sql::insert_checkpoint(ctx.conn, size, signed_at, &note))
            .await
    }

    /// The newest checkpoint (`size` 0) or the one of `size`, with its cosignatures.
    pub async fn checkpoint(&self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.read(move |conn| tree_sql::checkpoint(conn, size))
            .await
    }

    pub async fn checkpoint_covering(
        &self,
        index: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.read(move |conn| tree_sql::checkpoint_covering(conn, index))
            .await
    }

    /// Keeps a witness's cosignature of the checkpoint of `size`, audited with `audit`.
    pub async fn add_cosignature(
        &self,
        size: u64,
        witness: String,
        line: String,
        audit: NewEntry,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| {
            tree_sql::upsert_cosignature(ctx.conn, size, &witness, &line, audit.at_micros)?;
            ctx.audit(audit)?;
            Ok(())
        })
        .await
    }

    // ---- records ----

    pub async fn lookup(&self, subject: SubjectKey) -> Result<(u64, Vec<Candidate>), StoreError> {
        self.read(move |conn| records::lookup(conn, &subject)).await
    }

    /// Looks up many subjects in one read transaction, under one registry version.
    pub async fn lookup_many(
        &self,
        subjects: Vec<SubjectKey>,
    ) -> Result<(u64, Vec<Vec<Candidate>>), StoreError> {
        self.read(move |conn| records::lookup_many(conn, &subjects))
            .await
    }

    // ---- checks ----

    /// Records checks durably, each with its audit entry and, for a name mismatch, its hidden
    /// review case. Returns each check's entry, in order.
    pub async fn record_checks(&self, checks: Vec<CheckRecord>) -> Result<Vec<Entry>, StoreError> {
        self.write_unguarded(move |ctx| {
            checks
                .into_iter()
                .map(|check| checks::record(ctx, check))
                .collect()
        })
        .await
    }

    /// PRE_HIRE checks answered for `employer` since `since` (micros), for its daily quota.
    pub async fn pre_hire_rows_since(
        &self,
        employer: String,
        since: i64,
    ) -> Result<u64, StoreError> {
        self.read(move |conn| checks::pre_hire_rows_since(conn, &employer, since))
            .await
    }

    // ---- rosters ----

    pub async fn stage_roster(
        &self,
        upload: String,
        rows: Vec<(u64, StagedMember)>,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| rosters::stage(ctx.conn, &upload, &rows))
            .await
    }

    pub async fn discard_roster_upload(&self, upload: String) -> Result<(), StoreError> {
        self.write(move |ctx| rosters::discard(ctx.conn, &upload))
            .await
    }

    /// Applies a staged roster upload at once, audited with the entry `summarise` makes.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_roster(
        &self,
        upload: String,
        employer: String,
        how: rosters::Application,
        summarise: impl FnOnce(&RosterCounts) -> NewEntry + Send + 'static,
    ) -> Result<RosterCounts, StoreError> {
        // Its own transaction, like an import's publication: a whole staff file changes many
        // pages, which a savepoint inside a group commit would keep a second copy of in memory.
        self.write_alone(move |ctx| rosters::apply(ctx, &upload, &employer, &how, summarise))
            .await
    }

    /// A page of `employer`'s current members, after `after` in subject order.
    pub async fn roster_members(
        &self,
        employer: String,
        today: String,
        after: Option<SubjectKey>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        self.read(move |conn| rosters::current_members(conn, &employer, &today, after, limit))
            .await
    }

    /// Whether each subject is a current member of `employer`'s roster on `today`: only they
    /// may be checked PERIODIC or RE_VERIFY.
    pub async fn are_members(
        &self,
        employer: String,
        today: String,
        subjects: Vec<SubjectKey>,
    ) -> Result<Vec<bool>, StoreError> {
        self.read(move |conn| rosters::are_members(conn, &employer, &today, &subjects))
            .await
    }

    /// See [`rosters::unvetted_additions`].
    pub async fn unvetted_additions(
        &self,
        upload: String,
        employer: String,
    ) -> Result<u64, StoreError> {
        self.read(move |conn| rosters::unvetted_additions(conn, &upload, &employer))
            .await
    }

    pub async fn roster_facts(
        &self,
        employer: String,
        today: String,
    ) -> Result<RosterFacts, StoreError> {
        self.read(move |conn| rosters::facts(conn, &employer, &today))
            .await
    }

    /// When each current member (on `today`) was last checked for `employer`; see
    /// [`rosters::last_checks`].
    pub async fn last_checks(
        &self,
        employer: String,
        today: String,
    ) -> Result<std::collections::HashMap<SubjectKey, i64>, StoreError> {
        self.read(move |conn| rosters::last_checks(conn, &employer, &today))
            .await
    }

    /// Marks a re-check complete and audits its end.
    pub async fn finish_recheck(
        &self,
        employer: String,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| {
            rosters::set_recheck_done(ctx.conn, &employer, at_micros)?;
            ctx.audit(audit)?;
            Ok(())
        })
        .await
    }

    // ---- alerts ----

    pub async fn alerts(
        &self,
        viewer: AlertViewer,
        after: u64,
        unacknowledged_only: bool,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StoreError> {
        self.read(move |conn| alerts::list(conn, &viewer, after, unacknowledged_only, limit))
            .await
    }

    /// The alert and its employer, for authorisation before an acknowledgement.
    pub async fn alert(&self, id: u64) -> Result<Option<AlertRow>, StoreError> {
        self.read(move |conn| Ok(alerts::get(conn, id)?.map(|(alert, _)| alert)))
            .await
    }

    pub async fn acknowledge_alert(
        &self,
        id: u64,
        action: AlertAction,
        by: String,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<Option<AlertRow>, StoreError> {
        self.write(move |ctx| alerts::acknowledge(ctx, id, action, &by, at_micros, audit))
            .await
    }

    pub async fn latest_alert_id(&self) -> Result<u64, StoreError> {
        self.read(alerts::latest_id).await
    }

    // ---- reviews ----

    pub async fn reviews(
        &self,
        viewer: ReviewViewer,
        open_only: bool,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ReviewRow>, StoreError> {
        self.read(move |conn| reviews::list(conn, &viewer, open_only, after, limit))
            .await
    }

    pub async fn review(&self, id: u64) -> Result<Option<ReviewRow>, StoreError> {
        self.read(move |conn| Ok(reviews::get(conn, id)?.map(|(review, _)| review)))
            .await
    }

    pub async fn resolve_review(
        &self,
        id: u64,
        resolution: ReviewResolution,
        by: String,
        note: String,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<Option<(ReviewRow, bool)>, StoreError> {
        self.write(move |ctx| reviews::resolve(ctx, id, resolution, &by, &note, at_micros, audit))
            .await
    }

    /// Opens a DISPUTED case for a check counted for `employer`, when the check exists and
    /// found a record. `Ok(Err(outcome))` names what the check answered instead; `Ok(Ok(None))`
    /// means there is no such check.
    pub async fn dispute_check(
        &self,
        employer: String,
        check_id: String,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<Result<Option<ReviewRow>, String>, StoreError> {
        self.write(move |ctx| {
            run_ready(units::dispute_check(
                ctx, employer, check_id, at_micros, audit,
            ))
        })
        .await
    }

    // ---- oversight ----

    /// A unit's facts as they stood at `as_of` (micros).
    pub async fn unit_facts(
        &self,
        employer: String,
        as_of: i64,
    ) -> Result<crate::oversight::UnitFacts, StoreError> {
        self.read(move |conn| oversight::unit_facts(conn, &employer, as_of))
            .await
    }

    /// The last audit entry written at or before `as_of`.
    pub async fn audit_head_at(&self, as_of: i64) -> Result<Head, StoreError> {
        self.read(move |conn| oversight::head_at(conn, as_of)).await
    }

    /// Streams the audit entries `filter` keeps into `out`, oldest first, from a read
    /// connection held for the walk; stops early when the receiver goes away.
    pub async fn walk_audit(
        &self,
        filter: AuditFilter,
        out: tokio::sync::mpsc::Sender<Entry>,
    ) -> Result<(), StoreError> {
        self.read(move |conn| {
            oversight::walk(conn, &filter, |entry| out.blocking_send(entry).is_ok())
        })
        .await
    }

    // ---- batches ----

    #[allow(clippy::too_many_arguments)]
    pub async fn open_batch(
        &self,
        employer: String,
        client_batch_id: String,
        caller: String,
        purpose: i32,
        scope: i32,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<BatchState, StoreError> {
        self.write(move |ctx| {
            let state = batches::open(
                ctx,
                &employer,
                &client_batch_id,
                &caller,
                purpose,
                scope,
                at_micros,
            )?;
            let outcome = if state.resumed { "RESUMED" } else { "OPENED" };
            ctx.audit(NewEntry {
                outcome: outcome.into(),
                ..audit
            })?;
            Ok(state)
        })
        .await
    }

    /// Records a chunk of answered rows durably; returns, per answer, the check's audit
    /// sequence number (none for a row answered with an error).
    pub async fn record_batch_rows(
        &self,
        batch: i64,
        answers: Vec<(u64, RowAnswer)>,
    ) -> Result<Vec<Option<u64>>, StoreError> {
        self.write_unguarded(move |ctx| batches::record(ctx, batch, answers))
            .await
    }

    pub async fn recorded_rows(
        &self,
        batch: i64,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Recorded)>, StoreError> {
        self.read(move |conn| batches::recorded_range(conn, batch, from, to, limit))
            .await
    }

    pub async fn stage_import(
        &self,
        import_id: String,
        rows: Vec<(u64, HashedRecord)>,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| records::stage(ctx.conn, &import_id, &rows))
            .await
    }

    pub async fn discard_import(&self, import_id: String) -> Result<(), StoreError> {
        self.write(move |ctx| records::discard(ctx.conn, &import_id))
            .await
    }

    /// Publishes a staged import under a new registry version, auditing each change with a
    /// copy of `audit` and closing with the entry `summarise` makes.
    /// Publishes a staged import made by the registrar `owner`; refused as a whole
    /// ([`StoreError::NotOwner`]) when it would change another registrar's record.
    pub async fn finish_import(
        &self,
        import_id: String,
        owner: String,
        at_micros: i64,
        audit: NewEntry,
        summarise: impl FnOnce(&ImportCounts) -> NewEntry + Send + 'static,
    ) -> Result<ImportCounts, StoreError> {
        self.write_alone(move |ctx| {
            records::finish_import(ctx, &import_id, &owner, at_micros, &audit, summarise)
        })
        .await
    }

    /// Sets a flag on a record of the registrar `owner`.
    pub async fn set_record_flag(
        &self,
        source_ref: String,
        flag: RecordFlag,
        owner: String,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<Option<FlagChange>, StoreError> {
        self.write(move |ctx| records::set_flag(ctx, &source_ref, flag, &owner, at_micros, audit))
            .await
    }

    /// Gives a record to another registrar organisation (an operator's act); `None` when there
    /// is no such record.
    pub async fn transfer_record(
        &self,
        source_ref: String,
        new_owner: String,
        audit: NewEntry,
    ) -> Result<Option<u64>, StoreError> {
        self.write(move |ctx| records::transfer(ctx, &source_ref, &new_owner, audit))
            .await
    }

    // ---- organisations ----

    pub async fn organisations(&self) -> Result<Vec<Organisation>, StoreError> {
        self.read(orgs::all).await
    }

    /// Enrols (or updates) an organisation and audits it in the same transaction.
    pub async fn enroll(
        &self,
        enrolment: Enrolment,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<Organisation, StoreError> {
        self.write(move |ctx| {
            let org = orgs::upsert(ctx.conn, &enrolment, at_micros)?;
            let entry = state_sql::with_org_state(ctx.conn, enrolment.uscc.as_str(), audit)?;
            ctx.audit(entry)?;
            Ok(org)
        })
        .await
    }

    /// Enrols organisations only where they are missing; used for the dev set at start.
    pub async fn enroll_missing(
        &self,
        enrolments: Vec<Enrolment>,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<usize, StoreError> {
        self.write(move |ctx| {
            let mut added = 0;
            for e in &enrolments {
                if orgs::get(ctx.conn, e.uscc.as_str())?.is_none() {
                    orgs::upsert(ctx.conn, e, at_micros)?;
                    let entry = NewEntry {
                        employer: e.uscc.as_str().to_string(),
                        detail: format!("role={}", e.role.label()),
                        ..audit.clone()
                    };
                    ctx.audit(state_sql::with_org_state(ctx.conn, e.uscc.as_str(), entry)?)?;
                    added += 1;
                }
            }
            Ok(added)
        })
        .await
    }

    /// Sets an organisation's enrolled headcount, audited; `false` when there is no such
    /// organisation.
    pub async fn set_headcount(
        &self,
        uscc: String,
        headcount: u32,
        audit: NewEntry,
    ) -> Result<bool, StoreError> {
        self.write(move |ctx| {
            let found = orgs::set_headcount(ctx.conn, &uscc, headcount)?;
            let outcome = if found {
                audit.outcome.clone()
            } else {
                "NOT_FOUND".into()
            };
            let entry = NewEntry { outcome, ..audit };
            let entry = if found {
                state_sql::with_org_state(ctx.conn, &uscc, entry)?
            } else {
                entry
            };
            ctx.audit(entry)?;
            Ok(found)
        })
        .await
    }

    /// An organisation's enrolled headcount (0: not set).
    pub async fn headcount(&self, uscc: String) -> Result<u64, StoreError> {
        self.read(move |conn| orgs::headcount(conn, &uscc)).await
    }

    pub async fn set_org_status(
        &self,
        uscc: String,
        status: OrgStatus,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<Option<Organisation>, StoreError> {
        self.write(move |ctx| {
            let org = orgs::set_status(ctx.conn, &uscc, status, at_micros)?;
            let entry = if org.is_some() {
                state_sql::with_org_state(ctx.conn, &uscc, audit)?
            } else {
                NewEntry {
                    outcome: "NOT_FOUND".into(),
                    ..audit
                }
            };
            ctx.audit(entry)?;
            Ok(org)
        })
        .await
    }

    // ---- certificates ----

    /// The certificate deny list, oldest first.
    pub async fn revoked_certificates(&self) -> Result<Vec<RevokedCert>, StoreError> {
        self.read(certs::all).await
    }

    /// Puts a certificate on the deny list and audits it in the same transaction (outcome
    /// `UNCHANGED` when it was listed already). Returns the entry as it stands and whether it
    /// is new.
    pub async fn revoke_certificate(
        &self,
        revoked: RevokedCert,
        audit: NewEntry,
    ) -> Result<(RevokedCert, bool), StoreError> {
        self.write(move |ctx| {
            let (stored, added) = certs::insert(ctx.conn, &revoked)?;
            let outcome = if added {
                audit.outcome.clone()
            } else {
                "UNCHANGED".into()
            };
            ctx.audit(NewEntry { outcome, ..audit })?;
            Ok((stored, added))
        })
        .await
    }
}

/// Verifies the audit chain of a database file directly, without a server (read-only).
pub fn verify_file(path: &Path, from: u64, to: u64) -> Result<(Verification, Head), StoreError> {
    let conn = open_reader(path)?;
    Ok((audit_sql::verify(&conn, from, to)?, audit_sql::head(&conn)?))
}

/// Compares the stored Merkle tree of a database file with one recomputed from its entries.
pub fn check_tree_file(path: &Path) -> Result<Option<String>, StoreError> {
    tree_sql::check_stored(&open_reader(path)?)
}

/// Every record and organisation of a database file whose stored state its log does not explain.
pub fn unexplained_in_file(path: &Path) -> Result<Vec<String>, StoreError> {
    state_sql::unexplained(&open_reader(path)?)
}

/// Reads the audit head of a database file directly (read-only).
pub fn head_of_file(path: &Path) -> Result<Head, StoreError> {
    audit_sql::head(&open_reader(path)?)
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn with<T>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = job(&conn);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        result
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// The database holds only hashes, but who checked whom is still nobody else's business: the
/// file is readable by the service user alone (SQLite gives its -wal and -shm files the same mode).
fn restrict_permissions(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            },
        )?;
    }
    Ok(())
}

/// WAL lets readers run beside the one writer. `synchronous = FULL` fsyncs the WAL at every
/// commit, so an acknowledged audit entry survives a power cut, not only a process crash; group
/// commit is what keeps that affordable. Checkpoints run on their own thread (see
/// `checkpoint`), so the writer's automatic one is off; `journal_size_limit` gives the space of
/// a big burst back once the WAL restarts. A 64 MiB page cache keeps the indexes' inner pages in
/// memory, and the per-job savepoint journals stay in memory too instead of a temporary file.
fn configure_writer(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.pragma_update(None, "cache_size", -64 * 1024)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn bind_key(conn: &Connection, key_id: &str) -> Result<(), StoreError> {
    use rusqlite::OptionalExtension;
    let stored: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'key_id'", [], |row| {
            row.get(0)
        })
        .optional()?;
    match stored {
        Some(found) if found != key_id => Err(StoreError::WrongKey {
            expected: key_id.to_string(),
            found,
        }),
        Some(_) => Ok(()),
        None => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('key_id', ?1)",
                [key_id],
            )?;
            Ok(())
        }
    }
}
