//! The daily PRE_HIRE quota of each employer, counted in rows (a batch row is one check), so
//! that consent references alone do not let an employer enumerate documents: a school's hiring
//! season fits in it, a sweep of a birth date's thousand numbers does not.

use std::collections::HashMap;
use std::sync::Mutex;

use time::Date;

use super::{ApiError, AppState};

/// Per employer: the calendar day counted and the PRE_HIRE rows used on it.
type Used = HashMap<String, (Date, u64)>;

/// Rows used per employer on the current calendar day. Filled from the audit log on first use
/// each day, so a restart does not hand out a fresh quota.
#[derive(Default)]
pub struct PreHireQuota {
    used: Mutex<Used>,
}

impl PreHireQuota {
    /// Takes up to `rows` PRE_HIRE rows of `employer`'s quota for today; returns how many were
    /// granted (fewer once it is spent).
    pub async fn take(&self, state: &AppState, employer: &str, rows: u64) -> Result<u64, ApiError> {
        let now = state.now();
        let today = crate::clock::calendar_date(now);
        let known = self
            .lock()?
            .get(employer)
            .is_some_and(|(day, _)| *day == today);
        if !known {
            let since = crate::clock::to_micros(crate::clock::start_of_day(today));
            let counted = state
                .store
                .pre_hire_rows_since(employer.to_string(), since)
                .await?;
            let mut used = self.lock()?;
            let entry = used.entry(employer.to_string()).or_insert((today, counted));
            if entry.0 != today {
                *entry = (today, counted);
            }
        }
        let limit = state.rules.pre_hire_rows_per_day_for(employer);
        let mut used = self.lock()?;
        let entry = used.entry(employer.to_string()).or_insert((today, 0));
        let granted = rows.min(limit.saturating_sub(entry.1));
        entry.1 += granted;
        Ok(granted)
    }

    /// Returns rows taken for work that was then refused.
    pub fn give_back(&self, employer: &str, rows: u64) -> Result<(), ApiError> {
        if let Some(entry) = self.lock()?.get_mut(employer) {
            entry.1 = entry.1.saturating_sub(rows);
        }
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Used>, ApiError> {
        self.used
            .lock()
            .map_err(|_| ApiError::ResourceExhausted("the pre-hire quota is unavailable".into()))
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
