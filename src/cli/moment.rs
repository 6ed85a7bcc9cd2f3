//! Moments given on the command line (`--as-of`, `--from`, `--to`): a plain date, as people
//! write it, or a full RFC 3339 time when a second matters. A date alone stands for the start
//! or the end of that day in China Standard Time (the service's calendar), depending on which
//! end of a range it bounds, so that `--from 2026-11-01 --to 2026-11-30` covers the whole of
//! both days as people there count them.

use time::format_description::well_known::Rfc3339;
use time::macros::{format_description, time};
use time::{Date, OffsetDateTime, Time};

use super::CliError;

/// Which end of a range a date-only moment bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// 00:00:00 of the day.
    Start,
    /// The last microsecond of the day (the server's resolution), so that nothing logged in
    /// the day's final second is left out of an inclusive bound.
    End,
}

/// A parsed moment, remembering whether it was a date alone (then "today" may mean "now").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub at: OffsetDateTime,
    pub date_only: bool,
}

/// Parses `YYYY-MM-DD` (at `edge` of that day, China Standard Time) or an RFC 3339 time; `flag` names the
/// option in the error.
pub fn parse(flag: &str, text: &str, edge: Edge) -> Result<Moment, CliError> {
    let text = text.trim();
    if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        let time = match edge {
            Edge::Start => Time::MIDNIGHT,
            Edge::End => time!(23:59:59.999_999),
        };
        return Ok(Moment {
            at: date.with_time(time).assume_offset(crate::clock::CALENDAR),
            date_only: true,
        });
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|at| Moment {
            at,
            date_only: false,
        })
        .map_err(|_| {
            CliError::usage(format!(
                "{flag} {text}: a date (2026-11-24) or an RFC 3339 time (2026-11-24T08:00:00Z)"
            ))
        })
}

/// An optional bound, ready for a request.
pub fn optional(
    flag: &str,
    text: Option<&str>,
    edge: Edge,
) -> Result<Option<prost_types::Timestamp>, CliError> {
    text.map(|t| parse(flag, t, edge).map(|m| timestamp(m.at)))
        .transpose()
}

pub fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_date_is_the_start_or_the_end_of_its_day_in_china_standard_time() {
        let start = parse("--from", "2026-11-24", Edge::Start).unwrap();
        assert_eq!(start.at, datetime!(2026-11-23 16:00 UTC));
        assert!(start.date_only);
        let end = parse("--to", "2026-11-24", Edge::End).unwrap();
        assert_eq!(end.at, datetime!(2026-11-24 15:59:59.999999 UTC));
    }

    #[test]
    fn rfc3339_keeps_its_offset_and_anything_else_is_a_usage_error() {
        let at = parse("--as-of", "2026-11-24T08:00:00+08:00", Edge::End).unwrap();
        assert_eq!(at.at, datetime!(2026-11-24 00:00 UTC));
        assert!(!at.date_only);
        let error = parse("--as-of", "24/11/2026", Edge::End).unwrap_err();
        assert_eq!(error.code, super::super::exit::USAGE);
        assert!(error.message.starts_with("--as-of 24/11/2026:"));
    }
}
