//! Where the domain gets the time. Every rule that depends on time reads it from a [`Clock`]
//! so that tests can move a year forward without waiting for one.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::macros::offset;
use time::{Date, OffsetDateTime, Time, UtcOffset};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// The real wall clock, in UTC.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until told to move; shared between a test and the server it runs.
#[derive(Debug, Clone)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(to_micros(start))),
        }
    }

    pub fn set(&self, at: OffsetDateTime) {
        self.micros.store(to_micros(at), Ordering::SeqCst);
    }

    pub fn advance(&self, by: time::Duration) {
        let step = i64::try_from(by.whole_microseconds()).unwrap_or(i64::MAX);
        self.micros.fetch_add(step, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        from_micros(self.micros.load(Ordering::SeqCst))
    }
}

/// China Standard Time, UTC+8 all year (no daylight saving since 1991). Every date the rules
/// speak of (a hire date, "today", a report's `as_of` day, a yearly re-check) is a date in
/// this calendar: a check made at 07:00 in Beijing belongs to that Beijing day, not to the UTC
/// day before it. Instants are still stored and sent as UTC.
pub const CALENDAR: UtcOffset = offset!(+8);

/// The calendar date of an instant, as people where the service runs write it.
pub fn calendar_date(at: OffsetDateTime) -> Date {
    at.to_offset(CALENDAR).date()
}

/// The first instant of a calendar date.
pub fn start_of_day(date: Date) -> OffsetDateTime {
    date.with_time(Time::MIDNIGHT).assume_offset(CALENDAR)
}

/// Microseconds since the Unix epoch: the unit timestamps are stored in.
pub fn to_micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

pub fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn dates_are_beijing_dates() {
        assert_eq!(
            calendar_date(datetime!(2026-08-31 23:30 UTC)),
            date!(2026 - 09 - 01)
        );
        assert_eq!(
            calendar_date(datetime!(2026-09-01 15:59 UTC)),
            date!(2026 - 09 - 01)
        );
        assert_eq!(
            calendar_date(datetime!(2026-09-01 16:00 UTC)),
            date!(2026 - 09 - 02)
        );
        assert_eq!(
            start_of_day(date!(2026 - 09 - 01)),
            datetime!(2026-08-31 16:00 UTC)
        );
    }
}
