//! The PostgreSQL transaction as units of work see it (`store::tx::Tx` over [`PgTx`]): the
//! same rules as on SQLite, each primitive one statement in the group's transaction.

use std::future::Future;

use super::audit::PgTx;
use crate::audit::{Entry, NewEntry};
use crate::keys::SubjectKey;
use crate::roster::{ReviewReason, ReviewResolution};
use crate::store::sqlite::audit_sql::{from_i64, hash32, to_i64};
use crate::store::tx::{NewReview, Tx};
use crate::store::{ReviewRow, StoreError};

impl Tx for PgTx<'_> {
    fn audit(&mut self, entry: NewEntry) -> impl Future<Output = Result<Entry, StoreError>> {
        std::future::ready(Ok(PgTx::audit(self, entry)))
    }

    fn note_check(&mut self, check: &NewEntry) -> impl Future<Output = Result<(), StoreError>> {
        PgTx::note_check(self, check);
        std::future::ready(Ok(()))
    }

    async fn insert_review(&mut self, case: NewReview) -> Result<u64, StoreError> {
        let tx = self.transaction();
        let row = tx
            .query_one(
                &tx.prepare_cached(
                    "INSERT INTO reviews
                         (employer, subject, reason, check_id, alert_id, opened_at, note)
                     VALUES ($1, $2, $3, $4, $5, $6, '') RETURNING id",
                )
                .await
                .map_err(super::PgError::from)?,
                &[
                    &case.employer,
                    &case.subject.0.as_slice(),
                    &case.reason.code(),
                    &case.check_id,
                    &case.alert_id.map(to_i64),
                    &case.opened_at,
                ],
            )
            .await
            .map_err(super::PgError::from)?;
        Ok(from_i64(row.try_get(0).map_err(super::PgError::from)?))
    }

    async fn review(&mut self, id: u64) -> Result<Option<ReviewRow>, StoreError> {
        let tx = self.transaction();
        let row = tx
            .query_opt(
                &tx.prepare_cached(
                    "SELECT id, employer, reason, check_id, alert_id, opened_at, resolution,
                            resolved_at, resolved_by, note
                     FROM reviews WHERE id = $1",
                )
                .await
                .map_err(super::PgError::from)?,
                &[&to_i64(id)],
            )
            .await
            .map_err(super::PgError::from)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let review = (|| {
            Ok::<_, tokio_postgres::Error>(ReviewRow {
                id: from_i64(row.try_get(0)?),
                employer: row.try_get(1)?,
                reason: ReviewReason::from_code(row.try_get(2)?),
                check_id: row.try_get(3)?,
                alert_id: row.try_get::<_, Option<i64>>(4)?.map(from_i64),
                opened_at: row.try_get(5)?,
                resolution: row
                    .try_get::<_, Option<i32>>(6)?
                    .and_then(ReviewResolution::from_code),
                resolved_at: row.try_get(7)?,
                resolved_by: row.try_get::<_, Option<String>>(8)?.unwrap_or_default(),
                note: row.try_get(9)?,
                source_refs: Vec::new(),
            })
        })()
        .map_err(super::PgError::from)?;
        Ok(Some(review))
    }

    async fn find_check(
        &mut self,
        employer: &str,
        check_id: &str,
    ) -> Result<Option<(SubjectKey, String)>, StoreError> {
        // The check may be in this group, not yet written.
        self.flush().await?;
        let tx = self.transaction();
        let row = tx
            .query_opt(
                &tx.prepare_cached(
                    "SELECT subject, outcome FROM audit_log
                     WHERE employer = $1 AND check_id = $2 AND subject IS NOT NULL
                     ORDER BY seq LIMIT 1",
                )
                .await
                .map_err(super::PgError::from)?,
                &[&employer, &check_id],
            )
            .await
            .map_err(super::PgError::from)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let subject: Vec<u8> = row.try_get(0).map_err(super::PgError::from)?;
        let outcome: String = row.try_get(1).map_err(super::PgError::from)?;
        Ok(Some((SubjectKey(hash32(&subject)), outcome)))
    }
}
