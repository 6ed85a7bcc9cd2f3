//! Storage behind one seam. [`Store`] is the only type the rest of the server holds; it
//! speaks domain types and delegates every call to the backend it was opened on.
//!
//! # Layout
//!
//! - `sqlite/`: the embedded backend (one file, one writer thread, read connections), with
//!   what only it can do: WAL checkpoints, `VACUUM INTO` backups, offline file checks.
//! - `postgres/`: the PostgreSQL backend (a pool, the audit log sequenced by a locked head row,
//!   a group-commit writer).
//! - `tx.rs`: the transaction interface both backends implement; `units.rs`: the business rules
//!   that need a transaction, written once over it.
//! - this file: the facade, the error type both backends report through.

pub mod postgres;
pub mod sqlite;
pub mod tx;
pub mod units;

use std::path::{Path, PathBuf};

pub use sqlite::{
    AlertRow, AlertViewer, Application, AuditFilter, BackupSummary, BatchState, CheckRecord,
    CommitObserver, FlagChange, ImportCounts, ImportOrder, Member, RecordFlag, Recorded, ReviewRow,
    ReviewViewer, RevokedCert, RosterCounts, RosterFacts, RowAnswer, StagedMember,
    StoredCheckpoint, backup_file, check_tree_file, head_of_file, unexplained_in_file, verify_file,
};

use crate::audit::{Entry, Head, NewEntry, Verification};
use crate::check::Candidate;
use crate::keys::{NameBinder, SubjectKey};
use crate::org::{Enrolment, OrgStatus, Organisation};
use crate::registry::HashedRecord;
use crate::roster::{AlertAction, ReviewResolution};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(#[from] postgres::PgError),
    #[error(
        "the database was written by a newer safehire (schema {found}, this build knows {known})"
    )]
    SchemaTooNew { found: usize, known: usize },
    #[error(
        "the database belongs to another master key (key id {found}, this server has {expected}); \
         refusing to start, since every check would silently miss"
    )]
    WrongKey { expected: String, found: String },
    #[error("the write could not be committed: {0}")]
    CommitFailed(String),
    #[error("the write was not carried out")]
    NotWritten,
    #[error("the database writer has stopped")]
    WriterGone,
    /// A roster change would hold more members than its unit's headcount allows.
    #[error(
        "the roster would hold {members} members, more than the {max} its unit's enrolled headcount allows; ask the unit's bureau or an operator to correct the headcount"
    )]
    OverHeadcount { members: u64, max: u64 },
    /// A registrar acted on a record that belongs to another registrar organisation.
    #[error(
        "record {0} belongs to another registrar; only its owner changes it (an operator can transfer it)"
    )]
    NotOwner(String),
    #[error("audit entry {0} does not exist")]
    NoSuchEntry(u64),
    #[error("the audit log's Merkle tree has no node at level {0}, index {1}")]
    TreeIncomplete(u8, u64),
    #[error(
        "the audit log's Merkle tree holds {tree} leaves but the log only {log} entries \
         (entries were removed from the database)"
    )]
    TreeAhead { tree: u64, log: u64 },
    #[error("could not start the database writer: {0}")]
    Thread(std::io::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the copy's audit chain does not verify ({problem}); it was not kept")]
    BackupUnverified { path: PathBuf, problem: String },
}

/// The open database, on whichever backend it was opened.
pub struct Store {
    backend: Backend,
}

/// The backends a store can sit on (neon's `GenericRemoteStorage` pattern: callers never see
/// which, and never a generic).
enum Backend {
    Sqlite(sqlite::SqliteStore),
}

/// Runs `$call` on the backend `$s` is bound to; every backend has the same inherent methods.
macro_rules! on_backend {
    ($self:ident, $s:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($s) => $call,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`, applies migrations, binds it to
    /// the master key named by `key_id`, clears what broken imports left, and starts the writer.
    pub fn open(path: &Path, key_id: &str) -> Result<Self, StoreError> {
        Ok(Self {
            backend: Backend::Sqlite(sqlite::SqliteStore::open(path, key_id)?),
        })
    }

    /// Tells `observer` of every durable commit from now on (the server's metrics).
    pub async fn observe_commits(&self, observer: CommitObserver) {
        on_backend!(self, s => s.observe_commits(observer).await)
    }

    /// Waits for queued writes to commit and stops the writer. Later writes fail with
    /// `WriterGone`.
    pub async fn close(&self) {
        on_backend!(self, s => s.close().await)
    }

    /// Appends one entry; resolves once it is durable.
    pub async fn append_audit(&self, entry: NewEntry) -> Result<Entry, StoreError> {
        on_backend!(self, s => s.append_audit(entry).await)
    }

    pub async fn audit_head(&self) -> Result<Head, StoreError> {
        on_backend!(self, s => s.audit_head().await)
    }

    pub async fn verify_audit(&self, from: u64, to: u64) -> Result<Verification, StoreError> {
        on_backend!(self, s => s.verify_audit(from, to).await)
    }

    /// Binds the name tags of a database from before the binding to their documents, once, and
    /// logs each re-tagged record's state; returns how many records that re-tagged.
    pub async fn bind_name_tags(
        &self,
        binder: NameBinder,
        template: NewEntry,
    ) -> Result<u64, StoreError> {
        on_backend!(self, s => s.bind_name_tags(binder, template).await)
    }

    /// Logs the state of every record and organisation once, for a database from before the
    /// state was bound to the log; returns how many entries that wrote (0 once done).
    pub async fn bind_state_baseline(&self, template: NewEntry) -> Result<u64, StoreError> {
        on_backend!(self, s => s.bind_state_baseline(template).await)
    }

    /// Every record and organisation whose stored state the log does not explain.
    pub async fn unexplained_state(&self) -> Result<Vec<String>, StoreError> {
        on_backend!(self, s => s.unexplained_state().await)
    }

    /// Compares the stored Merkle tree with one recomputed from the entries.
    pub async fn check_audit_tree(&self) -> Result<Option<String>, StoreError> {
        on_backend!(self, s => s.check_audit_tree().await)
    }

    /// The durable size of the log and the Merkle root over it, read together.
    pub async fn log_root(&self) -> Result<(u64, [u8; 32]), StoreError> {
        on_backend!(self, s => s.log_root().await)
    }

    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        on_backend!(self, s => s.inclusion_proof(index, size).await)
    }

    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, StoreError> {
        on_backend!(self, s => s.consistency_proof(old, new).await)
    }

    pub async fn audit_entry(&self, seq: u64) -> Result<Option<Entry>, StoreError> {
        on_backend!(self, s => s.audit_entry(seq).await)
    }

    pub async fn check_entry(&self, check_id: String) -> Result<Option<Entry>, StoreError> {
        on_backend!(self, s => s.check_entry(check_id).await)
    }

    /// Keeps a signed checkpoint. Not audited: signing is the log's own bookkeeping, and an
    /// entry for it would make every checkpoint stale at once.
    pub async fn save_checkpoint(
        &self,
        size: u64,
        signed_at: i64,
        note: String,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.save_checkpoint(size, signed_at, note).await)
    }

    /// The newest checkpoint (`size` 0) or the one of `size`, with its cosignatures.
    pub async fn checkpoint(&self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
        on_backend!(self, s => s.checkpoint(size).await)
    }

    pub async fn checkpoint_covering(
        &self,
        index: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        on_backend!(self, s => s.checkpoint_covering(index).await)
    }

    /// Keeps a witness's cosignature of the checkpoint of `size`, audited with `audit`.
    pub async fn add_cosignature(
        &self,
        size: u64,
        witness: String,
        line: String,
        audit: NewEntry,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.add_cosignature(size, witness, line, audit).await)
    }

    pub async fn lookup(&self, subject: SubjectKey) -> Result<(u64, Vec<Candidate>), StoreError> {
        on_backend!(self, s => s.lookup(subject).await)
    }

    /// Looks up many subjects in one read transaction, under one registry version.
    pub async fn lookup_many(
        &self,
        subjects: Vec<SubjectKey>,
    ) -> Result<(u64, Vec<Vec<Candidate>>), StoreError> {
        on_backend!(self, s => s.lookup_many(subjects).await)
    }

    /// Records checks durably, each with its audit entry and, for a name mismatch, its hidden
    /// review case. Returns each check's entry, in order.
    pub async fn record_checks(&self, checks: Vec<CheckRecord>) -> Result<Vec<Entry>, StoreError> {
        on_backend!(self, s => s.record_checks(checks).await)
    }

    /// PRE_HIRE checks answered for `employer` since `since` (micros), for its daily quota.
    pub async fn pre_hire_rows_since(
        &self,
        employer: String,
        since: i64,
    ) -> Result<u64, StoreError> {
        on_backend!(self, s => s.pre_hire_rows_since(employer, since).await)
    }

    pub async fn stage_roster(
        &self,
        upload: String,
        rows: Vec<(u64, StagedMember)>,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.stage_roster(upload, rows).await)
    }

    pub async fn discard_roster_upload(&self, upload: String) -> Result<(), StoreError> {
        on_backend!(self, s => s.discard_roster_upload(upload).await)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn apply_roster(
        &self,
        upload: String,
        employer: String,
        how: Application,
        summarise: impl FnOnce(&RosterCounts) -> NewEntry + Send + 'static,
    ) -> Result<RosterCounts, StoreError> {
        on_backend!(self, s => s.apply_roster(upload, employer, how, summarise).await)
    }

    /// A page of `employer`'s current members, after `after` in subject order.
    pub async fn roster_members(
        &self,
        employer: String,
        today: String,
        after: Option<SubjectKey>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        on_backend!(self, s => s.roster_members(employer, today, after, limit).await)
    }

    /// Whether each subject is a current member of `employer`'s roster on `today`: only they
    /// may be checked PERIODIC or RE_VERIFY.
    pub async fn are_members(
        &self,
        employer: String,
        today: String,
        subjects: Vec<SubjectKey>,
    ) -> Result<Vec<bool>, StoreError> {
        on_backend!(self, s => s.are_members(employer, today, subjects).await)
    }

    /// See [`rosters::unvetted_additions`].
    pub async fn unvetted_additions(
        &self,
        upload: String,
        employer: String,
    ) -> Result<u64, StoreError> {
        on_backend!(self, s => s.unvetted_additions(upload, employer).await)
    }

    pub async fn roster_facts(
        &self,
        employer: String,
        today: String,
    ) -> Result<RosterFacts, StoreError> {
        on_backend!(self, s => s.roster_facts(employer, today).await)
    }

    /// When each current member (on `today`) was last checked for `employer`; see
    /// [`rosters::last_checks`].
    pub async fn last_checks(
        &self,
        employer: String,
        today: String,
    ) -> Result<std::collections::HashMap<SubjectKey, i64>, StoreError> {
        on_backend!(self, s => s.last_checks(employer, today).await)
    }

    /// Marks a re-check complete and audits its end.
    pub async fn finish_recheck(
        &self,
        employer: String,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.finish_recheck(employer, at_micros, audit).await)
    }

    pub async fn alerts(
        &self,
        viewer: AlertViewer,
        after: u64,
        unacknowledged_only: bool,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StoreError> {
        on_backend!(self, s => s.alerts(viewer, after, unacknowledged_only, limit).await)
    }

    /// The alert and its employer, for authorisation before an acknowledgement.
    pub async fn alert(&self, id: u64) -> Result<Option<AlertRow>, StoreError> {
        on_backend!(self, s => s.alert(id).await)
    }

    pub async fn acknowledge_alert(
        &self,
        id: u64,
        action: AlertAction,
        by: String,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<Option<AlertRow>, StoreError> {
        on_backend!(self, s => s.acknowledge_alert(id, action, by, at_micros, audit).await)
    }

    pub async fn latest_alert_id(&self) -> Result<u64, StoreError> {
        on_backend!(self, s => s.latest_alert_id().await)
    }

    pub async fn reviews(
        &self,
        viewer: ReviewViewer,
        open_only: bool,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ReviewRow>, StoreError> {
        on_backend!(self, s => s.reviews(viewer, open_only, after, limit).await)
    }

    pub async fn review(&self, id: u64) -> Result<Option<ReviewRow>, StoreError> {
        on_backend!(self, s => s.review(id).await)
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
        on_backend!(self, s => s.resolve_review(id, resolution, by, note, at_micros, audit).await)
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
        on_backend!(self, s => s.dispute_check(employer, check_id, at_micros, audit).await)
    }

    /// A unit's facts as they stood at `as_of` (micros).
    pub async fn unit_facts(
        &self,
        employer: String,
        as_of: i64,
    ) -> Result<crate::oversight::UnitFacts, StoreError> {
        on_backend!(self, s => s.unit_facts(employer, as_of).await)
    }

    /// The last audit entry written at or before `as_of`.
    pub async fn audit_head_at(&self, as_of: i64) -> Result<Head, StoreError> {
        on_backend!(self, s => s.audit_head_at(as_of).await)
    }

    /// Streams the audit entries `filter` keeps into `out`, oldest first, from a read
    /// connection held for the walk; stops early when the receiver goes away.
    pub async fn walk_audit(
        &self,
        filter: AuditFilter,
        out: tokio::sync::mpsc::Sender<Entry>,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.walk_audit(filter, out).await)
    }

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
        on_backend!(self, s => s.open_batch(employer, client_batch_id, caller, purpose, scope, at_micros, audit).await)
    }

    /// Records a chunk of answered rows durably; returns, per answer, the check's audit
    /// sequence number (none for a row answered with an error).
    pub async fn record_batch_rows(
        &self,
        batch: i64,
        answers: Vec<(u64, RowAnswer)>,
    ) -> Result<Vec<Option<u64>>, StoreError> {
        on_backend!(self, s => s.record_batch_rows(batch, answers).await)
    }

    pub async fn recorded_rows(
        &self,
        batch: i64,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Recorded)>, StoreError> {
        on_backend!(self, s => s.recorded_rows(batch, from, to, limit).await)
    }

    pub async fn stage_import(
        &self,
        import_id: String,
        rows: Vec<(u64, HashedRecord)>,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.stage_import(import_id, rows).await)
    }

    pub async fn discard_import(&self, import_id: String) -> Result<(), StoreError> {
        on_backend!(self, s => s.discard_import(import_id).await)
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
        on_backend!(self, s => s.finish_import(import_id, owner, at_micros, audit, summarise).await)
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
        on_backend!(self, s => s.set_record_flag(source_ref, flag, owner, at_micros, audit).await)
    }

    /// Gives a record to another registrar organisation (an operator's act); `None` when there
    /// is no such record.
    pub async fn transfer_record(
        &self,
        source_ref: String,
        new_owner: String,
        audit: NewEntry,
    ) -> Result<Option<u64>, StoreError> {
        on_backend!(self, s => s.transfer_record(source_ref, new_owner, audit).await)
    }

    pub async fn organisations(&self) -> Result<Vec<Organisation>, StoreError> {
        on_backend!(self, s => s.organisations().await)
    }

    /// Enrols (or updates) an organisation and audits it in the same transaction.
    pub async fn enroll(
        &self,
        enrolment: Enrolment,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<Organisation, StoreError> {
        on_backend!(self, s => s.enroll(enrolment, at_micros, audit).await)
    }

    /// Enrols organisations only where they are missing; used for the dev set at start.
    pub async fn enroll_missing(
        &self,
        enrolments: Vec<Enrolment>,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<usize, StoreError> {
        on_backend!(self, s => s.enroll_missing(enrolments, at_micros, audit).await)
    }

    /// Sets an organisation's enrolled headcount, audited; `false` when there is no such
    /// organisation.
    pub async fn set_headcount(
        &self,
        uscc: String,
        headcount: u32,
        audit: NewEntry,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.set_headcount(uscc, headcount, audit).await)
    }

    /// An organisation's enrolled headcount (0: not set).
    pub async fn headcount(&self, uscc: String) -> Result<u64, StoreError> {
        on_backend!(self, s => s.headcount(uscc).await)
    }

    pub async fn set_org_status(
        &self,
        uscc: String,
        status: OrgStatus,
        at_micros: i64,
        audit: NewEntry,
    ) -> Result<Option<Organisation>, StoreError> {
        on_backend!(self, s => s.set_org_status(uscc, status, at_micros, audit).await)
    }

    /// The certificate deny list, oldest first.
    pub async fn revoked_certificates(&self) -> Result<Vec<RevokedCert>, StoreError> {
        on_backend!(self, s => s.revoked_certificates().await)
    }

    /// Puts a certificate on the deny list and audits it in the same transaction (outcome
    /// `UNCHANGED` when it was listed already). Returns the entry as it stands and whether it
    /// is new.
    pub async fn revoke_certificate(
        &self,
        revoked: RevokedCert,
        audit: NewEntry,
    ) -> Result<(RevokedCert, bool), StoreError> {
        on_backend!(self, s => s.revoke_certificate(revoked, audit).await)
    }
}
