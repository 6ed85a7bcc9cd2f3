//! The schema, as an ordered list of migrations. `PRAGMA user_version` records how many have
//! been applied; each runs once, in its own transaction, at start.

use rusqlite::Connection;

use super::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: organisations, records, imports in progress, the audit log.
    "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;

    CREATE TABLE organisations (
        uscc               TEXT PRIMARY KEY,
        name               TEXT NOT NULL,
        role               INTEGER NOT NULL,
        region             TEXT NOT NULL,
        industry           INTEGER NOT NULL,
        supervising_bureau TEXT,
        status             INTEGER NOT NULL,
        enrolled_at        INTEGER NOT NULL,
        updated_at         INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX organisations_bureau ON organisations (supervising_bureau);

    CREATE TABLE registry_state (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    ) STRICT;
    INSERT INTO registry_state (id, version) VALUES (1, 0);

    CREATE TABLE records (
        id         INTEGER PRIMARY KEY,
        source_ref TEXT NOT NULL UNIQUE,
        subject    BLOB NOT NULL,
        name_tag   BLOB NOT NULL,
        category   INTEGER NOT NULL,
        kind       INTEGER NOT NULL,
        decided_on TEXT NOT NULL,
        sealed     INTEGER NOT NULL,
        revoked    INTEGER NOT NULL DEFAULT 0,
        version    INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX records_subject ON records (subject);

    CREATE TABLE import_staging (
        import_id  TEXT NOT NULL,
        row        INTEGER NOT NULL,
        source_ref TEXT NOT NULL,
        subject    BLOB NOT NULL,
        name_tag   BLOB NOT NULL,
        category   INTEGER NOT NULL,
        kind       INTEGER NOT NULL,
        decided_on TEXT NOT NULL,
        sealed     INTEGER NOT NULL,
        PRIMARY KEY (import_id, row)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE audit_log (
        seq              INTEGER PRIMARY KEY,
        at               INTEGER NOT NULL,
        caller           TEXT NOT NULL,
        cert_fingerprint TEXT NOT NULL,
        role             TEXT NOT NULL,
        action           TEXT NOT NULL,
        employer         TEXT NOT NULL,
        subject          BLOB,
        purpose          TEXT NOT NULL,
        scope            TEXT NOT NULL,
        outcome          TEXT NOT NULL,
        check_id         TEXT NOT NULL,
        registry_version INTEGER NOT NULL,
        detail           TEXT NOT NULL,
        prev_hash        BLOB NOT NULL,
        hash             BLOB NOT NULL
    ) STRICT;
    CREATE INDEX audit_log_employer ON audit_log (employer, at);
    CREATE INDEX audit_log_subject ON audit_log (subject) WHERE subject IS NOT NULL;
    ",
    // 2: batches of checks, and what each of their rows was answered, for resuming.
    "
    CREATE TABLE batches (
        id              INTEGER PRIMARY KEY,
        employer        TEXT NOT NULL,
        client_batch_id TEXT NOT NULL,
        caller          TEXT NOT NULL,
        purpose         INTEGER NOT NULL,
        scope           INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        UNIQUE (employer, client_batch_id)
    ) STRICT;

    -- A row answered with a check points at the check's audit entry; a refused row keeps the
    -- field and reason it was refused for (reasons never hold a whole number or name).
    CREATE TABLE batch_rows (
        batch        INTEGER NOT NULL,
        row          INTEGER NOT NULL,
        audit_seq    INTEGER,
        error_field  TEXT,
        error_reason TEXT,
        PRIMARY KEY (batch, row)
    ) STRICT, WITHOUT ROWID;
    ",
    // 3: the audit log keeps only indexes that grow at their end. An index on the subject hash
    // puts every check on a random page, so each group commit rewrote about one page per row
    // and bulk checks ran at the speed of that write amplification. Questions by subject are
    // answered per employer (through `audit_log_employer`) or by a streamed scan.
    "
    DROP INDEX audit_log_subject;
    ",
    // 4: rosters, alerts and review cases.
    "
    -- An employer that declared its staff at least once (never declaring is a finding).
    CREATE TABLE rosters (
        employer        TEXT PRIMARY KEY,
        declared_at     INTEGER NOT NULL,
        replaced_at     INTEGER,
        last_recheck_at INTEGER
    ) STRICT;

    -- One row per person an employer ever declared; departure_date is NULL while on staff, and
    -- departed members stay as the roster's history. Dates are YYYY-MM-DD.
    CREATE TABLE roster_members (
        employer       TEXT NOT NULL,
        subject        BLOB NOT NULL,
        name_tag       BLOB NOT NULL,
        staff_ref      TEXT NOT NULL,
        hire_date      TEXT NOT NULL,
        departure_date TEXT,
        declared_at    INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (employer, subject)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX roster_members_subject ON roster_members (subject);

    -- Rows of a roster upload still streaming in; applied in one transaction at its end.
    CREATE TABLE roster_staging (
        upload         TEXT NOT NULL,
        row            INTEGER NOT NULL,
        subject        BLOB NOT NULL,
        name_tag       BLOB NOT NULL,
        staff_ref      TEXT NOT NULL,
        hire_date      TEXT NOT NULL,
        departure_date TEXT NOT NULL,
        PRIMARY KEY (upload, row)
    ) STRICT, WITHOUT ROWID;

    -- An alert names the staff member by the employer's reference; the subject hash only links
    -- it to the roster and never leaves the server.
    CREATE TABLE alerts (
        id               INTEGER PRIMARY KEY,
        employer         TEXT NOT NULL,
        bureau           TEXT,
        subject          BLOB NOT NULL,
        staff_ref        TEXT NOT NULL,
        created_at       INTEGER NOT NULL,
        registry_version INTEGER NOT NULL,
        action           INTEGER,
        acknowledged_at  INTEGER,
        acknowledged_by  TEXT,
        review_id        INTEGER
    ) STRICT;
    CREATE INDEX alerts_employer ON alerts (employer, id);
    CREATE INDEX alerts_bureau ON alerts (bureau, id) WHERE bureau IS NOT NULL;

    CREATE TABLE reviews (
        id          INTEGER PRIMARY KEY,
        employer    TEXT NOT NULL,
        subject     BLOB NOT NULL,
        reason      INTEGER NOT NULL,
        check_id    TEXT NOT NULL,
        alert_id    INTEGER,
        opened_at   INTEGER NOT NULL,
        resolution  INTEGER,
        resolved_at INTEGER,
        resolved_by TEXT,
        note        TEXT NOT NULL
    ) STRICT;
    CREATE INDEX reviews_employer ON reviews (employer, id);
    ",
    // 5: the certificate deny list: a leaked certificate is refused by its SHA-256
    // fingerprint (lower-case hex of the DER) without suspending its organisation.
    "
    CREATE TABLE revoked_certs (
        fingerprint TEXT PRIMARY KEY,
        revoked_at  INTEGER NOT NULL,
        reason      TEXT NOT NULL
    ) STRICT;
    ",
    // 6: earlier versions of roster members' dates. A rehire, a corrected hire date or a
    // recorded departure changes a member's row in place; the row it replaces is kept here with
    // the time it held from and until, so that a report for an earlier `as_of` sees the roster
    // as it was declared then. `dates_from` is when the row's current dates took effect; the
    // trigger keeps both, so no write path can forget them.
    "
    ALTER TABLE roster_members ADD COLUMN dates_from INTEGER NOT NULL DEFAULT 0;
    UPDATE roster_members SET dates_from = declared_at;

    CREATE TABLE roster_member_versions (
        employer       TEXT NOT NULL,
        subject        BLOB NOT NULL,
        hire_date      TEXT NOT NULL,
        departure_date TEXT,
        valid_from     INTEGER NOT NULL,
        valid_to       INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX roster_member_versions_employer
        ON roster_member_versions (employer, valid_to);

    CREATE TRIGGER roster_member_dates_changed
    AFTER UPDATE OF hire_date, departure_date ON roster_members
    WHEN OLD.hire_date IS NOT NEW.hire_date OR OLD.departure_date IS NOT NEW.departure_date
    BEGIN
        INSERT INTO roster_member_versions
            (employer, subject, hire_date, departure_date, valid_from, valid_to)
        VALUES
            (OLD.employer, OLD.subject, OLD.hire_date, OLD.departure_date, OLD.dates_from,
             NEW.updated_at);
        UPDATE roster_members SET dates_from = NEW.updated_at
        WHERE employer = NEW.employer AND subject = NEW.subject;
    END;
    ",
    // 7: the verifiable log (issue 15). `audit_tree` holds every complete subtree of the RFC 6962
    // Merkle tree over the entries (level 0 the leaves), written by the writer in the same
    // transaction as its entries, so that a proof on any size reads O(log n) rows; a database
    // from before this migration gets its tree built over the entries it holds at the next
    // start (`tree_sql::catch_up`). Signed checkpoints are kept, with the witnesses'
    // cosignatures. Check ids are time-ordered (UUIDv7), so their index grows at its end.
    "
    CREATE TABLE audit_tree (
        level INTEGER NOT NULL,
        idx   INTEGER NOT NULL,
        hash  BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE audit_checkpoints (
        size      INTEGER PRIMARY KEY,
        signed_at INTEGER NOT NULL,
        note      TEXT NOT NULL
    ) STRICT;

    CREATE TABLE audit_cosignatures (
        size     INTEGER NOT NULL,
        witness  TEXT NOT NULL,
        line     TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (size, witness)
    ) STRICT, WITHOUT ROWID;

    CREATE INDEX audit_log_check ON audit_log (check_id) WHERE check_id <> '';
    ",
    // 8: the check a registrar's confirmation of a name mismatch turned into an alert.
    "
    ALTER TABLE alerts ADD COLUMN check_id TEXT NOT NULL DEFAULT '';
    ",
    // 9: the registrar organisation a record belongs to, from the audit entry of its
    // creation (NULL when none is on record: only an operator's transfer then gives it one).
    "
    ALTER TABLE records ADD COLUMN owner TEXT;
    UPDATE records SET owner = (
        SELECT a.caller FROM audit_log a
        WHERE a.subject = records.subject AND a.action = 'RegistryService.Import'
          AND a.outcome = 'CREATED' AND a.detail = 'source_ref=' || records.source_ref
        ORDER BY a.seq LIMIT 1);
    ",
    // 10: the headcount a unit was enrolled with, which bounds its roster (0: not set).
    "
    ALTER TABLE organisations ADD COLUMN headcount INTEGER NOT NULL DEFAULT 0;
    ",
    // 11 (issue 17): each roster member's last check by its employer, kept on the member row
    // by the writer in the transaction of the check's entry (a primary-key point update), so
    // that GetRoster reads the roster alone instead of every check the employer ever made —
    // the audit log has no index on the subject (migration 3). Filled here once from the log.
    "
    ALTER TABLE roster_members ADD COLUMN last_checked_at INTEGER;
    UPDATE roster_members SET last_checked_at = (
        SELECT MAX(a.at) FROM audit_log a
        WHERE a.employer = roster_members.employer AND a.subject = roster_members.subject
          AND a.check_id <> '');
    ",
    // 12: the tree keeps its nodes from level 4 up (`tree_sql::STORED_FROM_LEVEL`: the lower
    // ones are hashed from the entries under them), in a table without rowids, so that an
    // entry costs an eighth of a B-tree insert instead of four (two nodes, each in the table
    // and in its primary-key index).
    "
    CREATE TABLE audit_tree_stored (
        level INTEGER NOT NULL,
        idx   INTEGER NOT NULL,
        hash  BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID;
    INSERT INTO audit_tree_stored (level, idx, hash)
        SELECT level, idx, hash FROM audit_tree WHERE level >= 4;
    DROP TABLE audit_tree;
    ALTER TABLE audit_tree_stored RENAME TO audit_tree;
    ",
];

/// Brings the schema up to date; refuses a database written by a newer safehire.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let applied: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::SchemaTooNew {
            found: applied,
            known: MIGRATIONS.len(),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(index + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}
