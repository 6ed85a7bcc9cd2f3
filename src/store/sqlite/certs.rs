//! SQL for the certificate deny list.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;

/// A client certificate the server refuses, by its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCert {
    /// Lower-case hex SHA-256 of the certificate's DER.
    pub fingerprint: String,
    /// Microseconds since the Unix epoch.
    pub revoked_at: i64,
    pub reason: String,
}

fn from_row(row: &Row<'_>) -> Result<RevokedCert, rusqlite::Error> {
    Ok(RevokedCert {
        fingerprint: row.get(0)?,
        revoked_at: row.get(1)?,
        reason: row.get(2)?,
    })
}

/// The whole list, oldest first.
pub fn all(conn: &Connection) -> Result<Vec<RevokedCert>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT fingerprint, revoked_at, reason FROM revoked_certs
         ORDER BY revoked_at, fingerprint",
    )?;
    let revoked = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(revoked)
}

/// Adds `revoked` unless its fingerprint is already listed. Returns the entry as it stands
/// (the first revocation wins, so its time and reason are never rewritten) and whether it is
/// new.
pub fn insert(conn: &Connection, revoked: &RevokedCert) -> Result<(RevokedCert, bool), StoreError> {
    let added =
        conn.prepare_cached(
            "INSERT INTO revoked_certs (fingerprint, revoked_at, reason) VALUES (?1, ?2, ?3)
             ON CONFLICT (fingerprint) DO NOTHING",
        )?
        .execute(params![
            revoked.fingerprint,
            revoked.revoked_at,
            revoked.reason
        ])? > 0;
    let stored = conn
        .prepare_cached(
            "SELECT fingerprint, revoked_at, reason FROM revoked_certs WHERE fingerprint = ?1",
        )?
        .query_row([&revoked.fingerprint], from_row)
        .optional()?
        .ok_or(StoreError::NotWritten)?;
    Ok((stored, added))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::sqlite::schema::migrate(&mut conn).unwrap();
        conn
    }

    fn revoked(fingerprint: &str, at: i64, reason: &str) -> RevokedCert {
        RevokedCert {
            fingerprint: fingerprint.into(),
            revoked_at: at,
            reason: reason.into(),
        }
    }

    #[test]
    fn the_first_revocation_stands() {
        let conn = conn();
        let first = revoked(&"a".repeat(64), 20, "key leaked");
        assert_eq!(insert(&conn, &first).unwrap(), (first.clone(), true));
        let again = revoked(&"a".repeat(64), 30, "again");
        assert_eq!(insert(&conn, &again).unwrap(), (first.clone(), false));
        let older = revoked(&"b".repeat(64), 10, "laptop stolen");
        insert(&conn, &older).unwrap();
        assert_eq!(all(&conn).unwrap(), [older, first]);
    }
}
