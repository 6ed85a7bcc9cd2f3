//! The daily PRE_HIRE quota of each employer, counted in rows (a batch row is one check), so
//! that consent references alone do not let an employer enumerate documents: a school's hiring
//! season fits in it, a sweep of a birth date's thousand numbers does not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::Date;

use super::{ApiError, AppState};

/// One employer's count: the calendar day counted and the PRE_HIRE rows used on it (`None`
/// until counted from the log).
type Count = Arc<tokio::sync::Mutex<Option<(Date, u64)>>>;

/// Rows used per employer on the current calendar day. Counted from the audit log on first use
/// each day, so a restart does not hand out a fresh quota; the count is taken under the
/// employer's own lock, so that the first checks after a restart wait for one count instead of
/// each running its own scan of the employer's entries (64 concurrent first checks once took
/// the server to six checks a second).
#[derive(Default)]
pub struct PreHireQuota {
    employers: Mutex<HashMap<String, Count>>,
}

impl PreHireQuota {
    /// Takes up to `rows` PRE_HIRE rows of `employer`'s quota for today; returns how many were
    /// granted (fewer once it is spent).
    pub async fn take(&self, state: &AppState, employer: &str, rows: u64) -> Result<u64, ApiError> {
        let today = crate::clock::calendar_date(state.now());
        let count = self.count_of(employer)?;
        let mut count = count.lock().await;
        let used = match *count {
            Some((day, used)) if day == today => used,
            _ => {
                let since = crate::clock::to_micros(crate::clock::start_of_day(today));
                let used = state
                    .store
                    .pre_hire_rows_since(employer.to_string(), since)
                    .await?;
                // Observable, so that a test can tell one count per employer and day from one
                // per concurrent first check.
                state.metrics.quota_count_read();
                used
            }
        };
        let limit = state.rules.pre_hire_rows_per_day_for(employer);
        let granted = rows.min(limit.saturating_sub(used));
        *count = Some((today, used + granted));
        Ok(granted)
    }

    /// Returns rows taken for work that was then refused.
    pub async fn give_back(&self, employer: &str, rows: u64) -> Result<(), ApiError> {
        let count = self.count_of(employer)?;
        if let Some((_, used)) = count.lock().await.as_mut() {
            *used = used.saturating_sub(rows);
        }
        Ok(())
    }

    fn count_of(&self, employer: &str) -> Result<Count, ApiError> {
        let mut employers = self
            .employers
            .lock()
            .map_err(|_| ApiError::ResourceExhausted("the pre-hire quota is unavailable".into()))?;
        Ok(Arc::clone(
            employers.entry(employer.to_string()).or_default(),
        ))
    }
}

/// Why a PRE_HIRE check was refused once the quota is spent, with the time to retry.
pub fn spent(state: &AppState, employer: &str) -> String {
    let today = crate::clock::calendar_date(state.now());
    let retry = today
        .next_day()
        .map(crate::clock::start_of_day)
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    format!(
        "the daily quota of {} PRE_HIRE rows is spent; retry after {retry}",
        state.rules.pre_hire_rows_per_day_for(employer)
    )
}
