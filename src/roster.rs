//! Rosters, alerts and reviews as the domain sees them: what a member's dates must satisfy,
//! when a member is due for the yearly re-check, and the words employers and registrars use to
//! close an alert or a review.

use time::{Date, Duration, OffsetDateTime};

use crate::coded::coded_enum;
use crate::registry::parse_date;

coded_enum! {
    /// What an employer did about an alert.
    AlertAction {
        Dismissed = 1, "dismissed", "DISMISSED";
        SuspendedPendingReview = 2, "suspended-pending-review", "SUSPENDED_PENDING_REVIEW";
        /// The employer disputes the match: opens a review case.
        Disputed = 3, "disputed", "DISPUTED";
        NotOurStaff = 4, "not-our-staff", "NOT_OUR_STAFF";
    }
}

coded_enum! {
    /// Why a review case was opened.
    ReviewReason {
        /// The document matched a record and the name did not.
        NeedsReview = 1, "needs-review", "NEEDS_REVIEW";
        /// The employer disputes a hit or an alert.
        Disputed = 2, "disputed", "DISPUTED";
    }
}

coded_enum! {
    /// How a registrar closed a review case.
    ReviewResolution {
        Confirmed = 1, "confirmed", "CONFIRMED";
        Cleared = 2, "cleared", "CLEARED";
        IdentityCorrected = 3, "identity-corrected", "IDENTITY_CORRECTED";
    }
}

impl ReviewResolution {
    /// What the resolution does to later checks of the person, in words for the employer and
    /// the registrar: checks answer from the registry, so a case closed in the person's favour
    /// changes later answers only once the record is corrected or revoked.
    pub fn effect(self) -> &'static str {
        match self {
            ReviewResolution::Confirmed => {
                "later checks keep answering RECORD_FOUND: the record is this person's"
            }
            ReviewResolution::Cleared => {
                "later checks still answer from the record until a registrar corrects it (re-import) or revokes it (registry revoke); the cleared case excuses the unit from keeping this hit on staff"
            }
            ReviewResolution::IdentityCorrected => "later checks answer from the corrected record",
        }
    }
}

/// How a roster upload changes the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RosterChange {
    /// The upload is the whole current staff; whoever is missing has left.
    Replace,
    Hires,
    Departures,
}

impl RosterChange {
    pub fn label(self) -> &'static str {
        match self {
            RosterChange::Replace => "REPLACE",
            RosterChange::Hires => "HIRES",
            RosterChange::Departures => "DEPARTURES",
        }
    }
}

/// Earliest hire date accepted: older ones are typing errors, not staff.
const EARLIEST_HIRE: Date = time::macros::date!(1950 - 01 - 01);
/// How far ahead a date may be: a hire or a departure agreed for a later start.
const MOST_DAYS_AHEAD: i64 = 366;

/// A hire and a departure date, each present when the change carries it.
pub type MemberDates = (Option<Date>, Option<Date>);

/// A member's dates as validated for `change`: the hire date (required for a replacement or a
/// hire) and the departure date (required for a departure). A problem names the field.
pub fn member_dates(
    change: RosterChange,
    hire_date: &str,
    departure_date: &str,
    today: Date,
) -> Result<MemberDates, (&'static str, String)> {
    let latest = today + Duration::days(MOST_DAYS_AHEAD);
    let hire = match (change, hire_date.trim()) {
        (RosterChange::Departures, "") => None,
        (_, "") => return Err(("hire_date", "is required".into())),
        (_, text) => Some(parse_date("hire_date", text)?),
    };
    if let Some(hire) = hire
        && !(EARLIEST_HIRE..=latest).contains(&hire)
    {
        return Err((
            "hire_date",
            format!("must be between {EARLIEST_HIRE} and {latest}"),
        ));
    }
    let departure = match (change, departure_date.trim()) {
        (RosterChange::Departures, "") => return Err(("departure_date", "is required".into())),
        (RosterChange::Departures, text) => Some(parse_date("departure_date", text)?),
        (_, "") => None,
        (_, _) => {
            return Err((
                "departure_date",
                "only departures carry one; record leavers with a departure upload".into(),
            ));
        }
    };
    if let Some(departure) = departure {
        if departure > latest {
            return Err(("departure_date", format!("must not be after {latest}")));
        }
        if hire.is_some_and(|hire| departure < hire) {
            return Err(("departure_date", "is before the hire date".into()));
        }
    }
    Ok((hire, departure))
}

/// Whether a member whose last check was at `last_check` is due for the re-check at `now`.
/// The interval counts Beijing calendar days, as the law's "once a year" is read: checked on
/// any hour of 2026-03-02, due from the first instant of 2027-03-03 with 365 days.
pub fn recheck_due(
    last_check: Option<OffsetDateTime>,
    now: OffsetDateTime,
    interval_days: u32,
) -> bool {
    match last_check {
        None => true,
        Some(at) => {
            let days =
                (crate::clock::calendar_date(now) - crate::clock::calendar_date(at)).whole_days();
            days > i64::from(interval_days)
        }
    }
}

/// The form dates are stored and compared in (`YYYY-MM-DD` sorts as text).
/// Whether an upload with `rejected` rows applies at all. All or nothing unless the caller asked
/// for a partial apply: a replacement with one typo (or every row rejected) must not depart the
/// whole staff.
pub fn applies(rejected: u64, partial: bool) -> bool {
    rejected == 0 || partial
}

pub fn date_text(date: Date) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    date.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn dates_are_required_where_they_mean_something() {
        let today = date!(2026 - 11 - 24);
        assert_eq!(
            member_dates(RosterChange::Replace, "2020-09-01", "", today),
            Ok((Some(date!(2020 - 09 - 01)), None))
        );
        assert_eq!(
            member_dates(RosterChange::Hires, "", "", today)
                .unwrap_err()
                .0,
            "hire_date"
        );
        assert_eq!(
            member_dates(RosterChange::Departures, "", "", today)
                .unwrap_err()
                .0,
            "departure_date"
        );
        assert_eq!(
            member_dates(RosterChange::Replace, "2020-09-01", "2021-01-01", today)
                .unwrap_err()
                .0,
            "departure_date"
        );
        assert_eq!(
            member_dates(RosterChange::Departures, "2022-01-01", "2021-01-01", today)
                .unwrap_err()
                .1,
            "is before the hire date"
        );
        assert!(member_dates(RosterChange::Hires, "1900-01-01", "", today).is_err());
        assert!(member_dates(RosterChange::Hires, "2030-01-01", "", today).is_err());
        assert!(member_dates(RosterChange::Hires, "2026-02-30", "", today).is_err());
    }

    #[test]
    fn a_member_is_due_after_the_interval_or_when_never_checked() {
        let now = datetime!(2026-11-24 12:00 UTC);
        assert!(recheck_due(None, now, 365));
        assert!(!recheck_due(Some(now - Duration::days(365)), now, 365));
        assert!(recheck_due(Some(now - Duration::days(366)), now, 365));
        // Calendar days in Beijing, not 24-hour periods: a check late on 2026-03-02 (Beijing)
        // is due from 2027-03-03 00:00 there, though 365 × 24 h have not passed yet.
        let late = datetime!(2026-03-02 23:30 +8);
        assert!(!recheck_due(
            Some(late),
            datetime!(2027-03-02 23:59 +8),
            365
        ));
        assert!(recheck_due(Some(late), datetime!(2027-03-03 00:00 +8), 365));
        let early = datetime!(2026-03-02 00:10 +8);
        assert!(recheck_due(
            Some(early),
            datetime!(2027-03-03 00:00 +8),
            365
        ));
    }
}
