//! Compliance findings for prosecutors (legal supervision): what a unit's own audit trail,
//! roster and alerts say about whether it checked its staff as the law requires, judged at a
//! given moment. Pure: the facts come in, the findings go out, so that a report can be
//! explained (and recomputed) from the log alone.

use std::collections::{HashMap, HashSet};

use time::{Date, Duration, OffsetDateTime};

use crate::check::Outcome;
use crate::clock::{calendar_date, from_micros, start_of_day};
use crate::coded::coded_enum;
use crate::config::Rules;
use crate::keys::SubjectKey;
use crate::roster::AlertAction;

coded_enum! {
    /// What a unit failed to do.
    Finding {
        /// Enrolled, and not one check ever.
        NeverChecked = 1, "never-checked", "NEVER_CHECKED";
        /// Enrolled, and never declared its staff.
        NoRoster = 2, "no-roster", "NO_ROSTER";
        /// Members with no check before (or within the grace period after) their hire date.
        UncheckedStaff = 3, "unchecked-staff", "UNCHECKED_STAFF";
        /// Current members whose last check is older than the yearly interval.
        OverdueRecheck = 4, "overdue-recheck", "OVERDUE_RECHECK";
        /// Members with a hit still on the roster after the allowed days.
        HitStillOnStaff = 5, "hit-still-on-staff", "HIT_STILL_ON_STAFF";
        /// Alerts not acknowledged within the allowed days.
        UnacknowledgedAlert = 6, "unacknowledged-alert", "UNACKNOWLEDGED_ALERT";
        /// Checks about people never on the roster, above the threshold for the unit's size.
        ExcessQueries = 7, "excess-queries", "EXCESS_QUERIES";
        /// Members declared and removed again within the churn window, above a share of
        /// everyone declared: strangers laundered through the roster.
        RosterChurn = 8, "roster-churn", "ROSTER_CHURN";
    }
}

/// One check counted for the unit.
#[derive(Debug, Clone, Copy)]
pub struct CheckFact {
    pub subject: SubjectKey,
    pub at_micros: i64,
    pub outcome: Outcome,
}

/// One person the unit declared, current or departed.
#[derive(Debug, Clone, Copy)]
pub struct MemberFact {
    pub subject: SubjectKey,
    pub hire_date: Date,
    pub departure_date: Option<Date>,
    /// When the unit declared the member.
    pub declared_at_micros: i64,
}

/// One alert raised for the unit.
#[derive(Debug, Clone, Copy)]
pub struct AlertFact {
    pub subject: SubjectKey,
    pub created_at_micros: i64,
    pub acknowledged_at_micros: Option<i64>,
    pub action: Option<AlertAction>,
}

/// Everything known about one unit up to the report's moment (facts after it already left out).
#[derive(Debug, Clone, Default)]
pub struct UnitFacts {
    pub checks: Vec<CheckFact>,
    /// When the unit first declared its staff, if it did.
    pub roster_declared_at: Option<i64>,
    pub members: Vec<MemberFact>,
    pub alerts: Vec<AlertFact>,
    /// Subjects of PERIODIC or RE_VERIFY checks refused because they were not on the roster.
    pub refused_not_staff: Vec<SubjectKey>,
    /// Subjects whose review case a registrar closed in the person's favour.
    pub cleared: HashSet<SubjectKey>,
}

/// A finding with the evidence behind it: how many, out of how many.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub finding: Finding,
    pub count: u64,
    pub of: u64,
    /// One line a reader understands without the code.
    pub detail: String,
}

/// A unit's findings and the figures the aggregates add up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnitResult {
    pub findings: Vec<Evidence>,
    pub checks: u64,
    pub current_members: u64,
    /// Current members checked before hire (or within grace) and within the yearly interval.
    pub checked_in_time: u64,
}

/// What each subject's checks add up to.
#[derive(Default, Clone, Copy)]
struct History {
    first: Option<i64>,
    last: Option<i64>,
    last_outcome: Option<Outcome>,
    first_hit: Option<i64>,
}

/// Judges one unit at `as_of` under `rules`.
pub fn evaluate(facts: &UnitFacts, as_of: OffsetDateTime, rules: &Rules) -> UnitResult {
    let today = calendar_date(as_of);
    let interval = Duration::days(i64::from(rules.recheck_interval_days));
    let mut history: HashMap<SubjectKey, History> = HashMap::new();
    for check in &facts.checks {
        let h = history.entry(check.subject).or_default();
        h.first = Some(h.first.map_or(check.at_micros, |f| f.min(check.at_micros)));
        if h.last.is_none_or(|l| check.at_micros >= l) {
            h.last = Some(check.at_micros);
            h.last_outcome = Some(check.outcome);
        }
        if check.outcome == Outcome::RecordFound {
            h.first_hit = Some(
                h.first_hit
                    .map_or(check.at_micros, |f| f.min(check.at_micros)),
            );
        }
    }
    let current: Vec<&MemberFact> = facts
        .members
        .iter()
        .filter(|m| m.hire_date <= today && m.departure_date.is_none_or(|d| d > today))
        .collect();
    let mut result = UnitResult {
        checks: facts.checks.len() as u64,
        current_members: current.len() as u64,
        ..UnitResult::default()
    };
    let mut add = |finding: Finding, count: u64, of: u64, detail: String| {
        if count > 0 {
            result.findings.push(Evidence {
                finding,
                count,
                of,
                detail,
            });
        }
    };

    add(
        Finding::NeverChecked,
        u64::from(facts.checks.is_empty()),
        1,
        "no check on record".into(),
    );
    add(
        Finding::NoRoster,
        u64::from(facts.roster_declared_at.is_none()),
        1,
        "staff never declared".into(),
    );

    let grace = Duration::days(i64::from(rules.hire_grace_days));
    // Staff already there when the unit came under supervision could not be checked before
    // their hire: for them the grace period runs from the unit's onboarding day instead.
    let onboarded = rules.supervision_start_date().or(facts
        .roster_declared_at
        .map(|t| calendar_date(from_micros(t))));
    let due_from = |m: &MemberFact| onboarded.map_or(m.hire_date, |day| m.hire_date.max(day));
    let checked_at_hire = |m: &MemberFact| {
        history
            .get(&m.subject)
            .and_then(|h| h.first)
            .is_some_and(|first| calendar_date(from_micros(first)) <= due_from(m) + grace)
    };
    let judged: Vec<&MemberFact> = facts
        .members
        .iter()
        .filter(|m| due_from(m) + grace < today)
        .collect();
    let unchecked: Vec<&&MemberFact> = judged.iter().filter(|m| !checked_at_hire(m)).collect();
    let never = unchecked
        .iter()
        .filter(|m| !history.contains_key(&m.subject) && m.departure_date.is_none_or(|d| d > today))
        .count();
    add(
        Finding::UncheckedStaff,
        unchecked.len() as u64,
        judged.len() as u64,
        format!(
            "{} of {} members without a check by {} days after their hire date (or after the unit came under supervision, for staff already there): {} hired without a pre-hire check, {never} on staff and never checked",
            unchecked.len(),
            judged.len(),
            rules.hire_grace_days,
            unchecked.len() - never
        ),
    );

    let recent = |m: &MemberFact| {
        history
            .get(&m.subject)
            .and_then(|h| h.last)
            .is_some_and(|last| {
                !crate::roster::recheck_due(
                    Some(from_micros(last)),
                    as_of,
                    rules.recheck_interval_days,
                )
            })
    };
    let overdue = current
        .iter()
        .filter(|m| !recent(m))
        .filter(|m| {
            history.contains_key(&m.subject) || start_of_day(m.hire_date) + interval <= as_of
        })
        .count() as u64;
    add(
        Finding::OverdueRecheck,
        overdue,
        result.current_members,
        format!(
            "{overdue} of {} current members not checked in the last {} days",
            result.current_members, rules.recheck_interval_days
        ),
    );
    result.checked_in_time = current
        .iter()
        .filter(|m| recent(m) && (due_from(m) + grace >= today || checked_at_hire(m)))
        .count() as u64;

    let hit_days = Duration::days(i64::from(rules.hit_on_staff_days));
    let mut first_alert: HashMap<SubjectKey, i64> = HashMap::new();
    for alert in &facts.alerts {
        if matches!(alert.action, Some(AlertAction::NotOurStaff)) {
            continue;
        }
        first_alert
            .entry(alert.subject)
            .and_modify(|t| *t = (*t).min(alert.created_at_micros))
            .or_insert(alert.created_at_micros);
    }
    let kept = current
        .iter()
        .filter(|m| !facts.cleared.contains(&m.subject))
        .filter(|m| {
            let h = history.get(&m.subject).copied().unwrap_or_default();
            // A later NO_RECORD (a record revoked, an identity corrected) ends the hit.
            let cleared_by_check = h.last_outcome == Some(Outcome::NoRecord);
            let hit = [h.first_hit, first_alert.get(&m.subject).copied()]
                .into_iter()
                .flatten()
                .min();
            let hit = if cleared_by_check && h.last.zip(hit).is_some_and(|(l, t)| l > t) {
                None
            } else {
                hit
            };
            hit.is_some_and(|t| as_of - from_micros(t) > hit_days)
        })
        .count() as u64;
    add(
        Finding::HitStillOnStaff,
        kept,
        result.current_members,
        format!(
            "{kept} members with a record found or an alert still on staff after {} days",
            rules.hit_on_staff_days
        ),
    );

    let ack_days = Duration::days(i64::from(rules.alert_ack_days));
    let due: Vec<&AlertFact> = facts
        .alerts
        .iter()
        .filter(|a| as_of - from_micros(a.created_at_micros) > ack_days)
        .collect();
    let late = due
        .iter()
        .filter(|a| {
            a.acknowledged_at_micros
                .is_none_or(|ack| from_micros(ack) - from_micros(a.created_at_micros) > ack_days)
        })
        .count() as u64;
    add(
        Finding::UnacknowledgedAlert,
        late,
        due.len() as u64,
        format!(
            "{late} of {} alerts not acknowledged within {} days",
            due.len(),
            rules.alert_ack_days
        ),
    );

    // Laundering: declared, checked, and removed again soon after. Such members count as
    // people checked who were never staff, and their churn is a finding of its own.
    let window = Duration::days(i64::from(rules.churn_window_days));
    let churned: HashSet<SubjectKey> = facts
        .members
        .iter()
        .filter(|m| {
            m.departure_date.is_some_and(|left| {
                left <= today && left - calendar_date(from_micros(m.declared_at_micros)) <= window
            })
        })
        .map(|m| m.subject)
        .collect();
    let declared: HashSet<SubjectKey> = facts.members.iter().map(|m| m.subject).collect();
    let churned_checked = churned.iter().filter(|s| history.contains_key(s)).count() as u64;
    let churn_threshold =
        (rules.churn_share * declared.len() as f64).max(f64::from(rules.excess_query_minimum));
    add(
        Finding::RosterChurn,
        if (churned.len() as f64) > churn_threshold {
            churned.len() as u64
        } else {
            0
        },
        declared.len() as u64,
        format!(
            "{} of {} people declared were removed within {} days of being declared; {churned_checked} of them were checked meanwhile",
            churned.len(),
            declared.len(),
            rules.churn_window_days
        ),
    );

    let mut strangers: HashSet<SubjectKey> = history
        .keys()
        .filter(|s| !declared.contains(s) || churned.contains(s))
        .copied()
        .collect();
    strangers.extend(
        facts
            .refused_not_staff
            .iter()
            .filter(|s| !declared.contains(s) || churned.contains(s)),
    );
    let strangers = strangers.len() as u64;
    let threshold = (rules.excess_query_ratio * result.current_members as f64)
        .max(f64::from(rules.excess_query_minimum));
    add(
        Finding::ExcessQueries,
        if (strangers as f64) > threshold {
            strangers
        } else {
            0
        },
        history.len() as u64,
        format!(
            "{strangers} people checked (or refused) who were never on the roster or were removed soon after being declared (threshold {threshold:.0} for {} members)",
            result.current_members
        ),
    );
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    const AS_OF: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

    fn subject(n: u8) -> SubjectKey {
        SubjectKey([n; 32])
    }

    fn at(t: OffsetDateTime) -> i64 {
        crate::clock::to_micros(t)
    }

    fn check(n: u8, t: OffsetDateTime, outcome: Outcome) -> CheckFact {
        CheckFact {
            subject: subject(n),
            at_micros: at(t),
            outcome,
        }
    }

    fn member(n: u8, hired: Date) -> MemberFact {
        MemberFact {
            subject: subject(n),
            hire_date: hired,
            departure_date: None,
            declared_at_micros: at(datetime!(2025-01-01 09:00 UTC)),
        }
    }

    fn kinds(result: &UnitResult) -> Vec<Finding> {
        result.findings.iter().map(|e| e.finding).collect()
    }

    fn compliant() -> UnitFacts {
        UnitFacts {
            checks: vec![
                check(1, datetime!(2025-08-30 09:00 UTC), Outcome::NoRecord),
                check(1, datetime!(2026-09-01 09:00 UTC), Outcome::NoRecord),
                check(2, datetime!(2026-09-01 09:00 UTC), Outcome::NoRecord),
            ],
            roster_declared_at: Some(at(datetime!(2026-09-02 09:00 UTC))),
            members: vec![
                member(1, date!(2025 - 09 - 01)),
                member(2, date!(2026 - 09 - 01)),
            ],
            ..UnitFacts::default()
        }
    }

    #[test]
    fn a_unit_that_checks_in_time_has_no_finding() {
        let facts = compliant();
        let result = evaluate(&facts, AS_OF, &Rules::default());
        assert_eq!(kinds(&result), []);
        assert_eq!((result.current_members, result.checked_in_time), (2, 2));
    }

    #[test]
    fn an_empty_unit_never_checked_and_has_no_roster() {
        let result = evaluate(&UnitFacts::default(), AS_OF, &Rules::default());
        assert_eq!(kinds(&result), [Finding::NeverChecked, Finding::NoRoster]);
    }

    #[test]
    fn a_hire_without_a_check_is_unchecked_staff() {
        let mut facts = compliant();
        facts.members.push(member(3, date!(2026 - 10 - 01)));
        let result = evaluate(&facts, AS_OF, &Rules::default());
        assert_eq!(kinds(&result), [Finding::UncheckedStaff]);
        assert_eq!((result.findings[0].count, result.findings[0].of), (1, 3));
        // Within the grace period it is not yet a finding.
        let mut fresh = compliant();
        fresh.members.push(member(3, date!(2026 - 11 - 20)));
        assert_eq!(kinds(&evaluate(&fresh, AS_OF, &Rules::default())), []);
    }

    #[test]
    fn staff_there_before_the_first_roster_count_once_checked_within_grace_of_it() {
        let mut facts = compliant();
        // Hired years before the unit declared its roster (2026-09-02), checked on 09-05.
        facts.members.push(member(3, date!(2019 - 03 - 01)));
        facts.members.push(member(4, date!(2018 - 03 - 01)));
        facts
            .checks
            .push(check(3, datetime!(2026-09-05 09:00 UTC), Outcome::NoRecord));
        let result = evaluate(&facts, AS_OF, &Rules::default());
        assert_eq!(
            kinds(&result),
            [Finding::UncheckedStaff, Finding::OverdueRecheck]
        );
        let finding = &result.findings[0];
        assert_eq!((finding.count, finding.of), (1, 4));
        assert!(
            finding
                .detail
                .ends_with("0 hired without a pre-hire check, 1 on staff and never checked"),
            "{}",
            finding.detail
        );
        facts
            .checks
            .push(check(4, datetime!(2026-09-30 09:00 UTC), Outcome::NoRecord));
        let late = evaluate(&facts, AS_OF, &Rules::default());
        assert!(
            late.findings[0]
                .detail
                .ends_with("1 hired without a pre-hire check, 0 on staff and never checked"),
            "checked after the grace period: {}",
            late.findings[0].detail
        );
        // A configured supervision start moves the onboarding day for every unit.
        let rules = Rules {
            supervision_start: "2026-09-25".into(),
            ..Rules::default()
        };
        assert_eq!(kinds(&evaluate(&facts, AS_OF, &rules)), []);
    }

    #[test]
    fn a_check_older_than_the_interval_is_overdue() {
        let facts = UnitFacts {
            checks: vec![check(1, datetime!(2025-10-01 09:00 UTC), Outcome::NoRecord)],
            roster_declared_at: Some(at(datetime!(2025-10-02 09:00 UTC))),
            members: vec![member(1, date!(2025 - 10 - 01))],
            ..UnitFacts::default()
        };
        let result = evaluate(&facts, AS_OF, &Rules::default());
        assert_eq!(kinds(&result), [Finding::OverdueRecheck]);
        assert_eq!(result.checked_in_time, 0);
    }

    #[test]
    fn a_hit_kept_beyond_the_allowed_days_is_a_finding_until_cleared() {
        let mut facts = compliant();
        facts.checks.push(check(
            2,
            datetime!(2026-10-10 09:00 UTC),
            Outcome::RecordFound,
        ));
        assert_eq!(
            kinds(&evaluate(&facts, AS_OF, &Rules::default())),
            [Finding::HitStillOnStaff]
        );
        assert_eq!(
            kinds(&evaluate(
                &facts,
                datetime!(2026-11-01 12:00 UTC),
                &Rules::default()
            )),
            [],
            "within 30 days"
        );
        facts.cleared.insert(subject(2));
        assert_eq!(kinds(&evaluate(&facts, AS_OF, &Rules::default())), []);
    }

    #[test]
    fn alerts_must_be_acknowledged_in_time() {
        let mut facts = compliant();
        facts.alerts.push(AlertFact {
            subject: subject(9),
            created_at_micros: at(datetime!(2026-11-01 09:00 UTC)),
            acknowledged_at_micros: None,
            action: None,
        });
        assert_eq!(
            kinds(&evaluate(&facts, AS_OF, &Rules::default())),
            [Finding::UnacknowledgedAlert]
        );
        facts.alerts[0].acknowledged_at_micros = Some(at(datetime!(2026-11-02 09:00 UTC)));
        facts.alerts[0].action = Some(AlertAction::Dismissed);
        assert_eq!(kinds(&evaluate(&facts, AS_OF, &Rules::default())), []);
    }

    #[test]
    fn checking_many_strangers_is_excess_queries() {
        let mut facts = compliant();
        for n in 10..=60 {
            facts
                .checks
                .push(check(n, datetime!(2026-10-01 09:00 UTC), Outcome::NoRecord));
        }
        let result = evaluate(&facts, AS_OF, &Rules::default());
        assert_eq!(kinds(&result), [Finding::ExcessQueries]);
        assert_eq!(result.findings[0].count, 51);
        facts.checks.pop();
        assert_eq!(kinds(&evaluate(&facts, AS_OF, &Rules::default())), []);
    }

    /// The B scenario: strangers declared, re-checked, then replaced by the real staff.
    #[test]
    fn strangers_laundered_through_the_roster_are_churn_and_excess_queries() {
        let mut facts = compliant();
        for n in 10..=70 {
            facts
                .checks
                .push(check(n, datetime!(2026-10-02 09:00 UTC), Outcome::NoRecord));
            facts.members.push(MemberFact {
                subject: subject(n),
                hire_date: date!(2026 - 10 - 02),
                departure_date: Some(date!(2026 - 10 - 15)),
                declared_at_micros: at(datetime!(2026-10-01 09:00 UTC)),
            });
        }
        let result = evaluate(&facts, AS_OF, &Rules::default());
        assert_eq!(
            kinds(&result),
            [Finding::RosterChurn, Finding::ExcessQueries]
        );
        assert!(result.findings.iter().all(|f| f.count == 61));
        // Members who stay are not churn.
        for m in &mut facts.members {
            m.departure_date = None;
        }
        assert_eq!(kinds(&evaluate(&facts, AS_OF, &Rules::default())), []);
    }

    #[test]
    fn refused_checks_of_strangers_count_as_excess_queries() {
        let mut facts = compliant();
        facts.refused_not_staff = (10..=60).map(subject).collect();
        let result = evaluate(&facts, AS_OF, &Rules::default());
        assert_eq!(kinds(&result), [Finding::ExcessQueries]);
        assert_eq!(result.findings[0].count, 51);
    }
}
