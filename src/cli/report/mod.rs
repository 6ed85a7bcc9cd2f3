//! A compliance report as the client holds it once the server's stream has ended, and the
//! forms it is written in: a text summary, JSON, a CSV of units for spreadsheets and one
//! self-contained HTML page for people who read it in a browser or print it.
//!
//! Every form states the audit head the report was computed at, so that a reader can have it
//! recomputed against the same log and pin the hash outside the system.

mod chart;
mod csv_file;
mod html;
mod text;

use serde_json::json;

use super::{CliError, exit, format_timestamp};
use crate::i18n::Lang;
use crate::org::Industry;
use crate::oversight::Finding;
use crate::proto;
use crate::proto::compliance_item::Item;

pub use csv_file::write_csv;
pub use html::write_html;
pub use text::print_summary;

/// The whole report, in the order the server sent it.
#[derive(Debug, Default)]
pub struct Report {
    pub header: proto::ReportHeader,
    /// Every unit, in USCC order.
    pub units: Vec<proto::UnitReport>,
    pub bureaus: Vec<proto::GroupSummary>,
    pub regions: Vec<proto::GroupSummary>,
    pub totals: proto::ReportTotals,
}

impl Report {
    /// Gathers the streamed items; a stream that ends before its totals is an error, because a
    /// truncated report would understate the findings.
    pub fn collect(items: Vec<proto::ComplianceItem>) -> Result<Self, CliError> {
        let mut report = Report::default();
        let (mut header, mut totals) = (false, false);
        for item in items.into_iter().filter_map(|i| i.item) {
            match item {
                Item::Header(h) => {
                    report.header = h;
                    header = true;
                }
                Item::Unit(u) => report.units.push(u),
                Item::Bureau(b) => report.bureaus.push(b),
                Item::Region(r) => report.regions.push(r),
                Item::Totals(t) => {
                    report.totals = t;
                    totals = true;
                }
            }
        }
        if !header || !totals {
            return Err(CliError::new(
                exit::FAILED,
                "the server's report ended early (no header or no totals); run it again",
            ));
        }
        Ok(report)
    }

    pub fn as_of(&self) -> String {
        format_timestamp(self.header.as_of.as_ref())
    }

    /// Units with at least one finding.
    pub fn flagged(&self) -> impl Iterator<Item = &proto::UnitReport> {
        self.units.iter().filter(|u| !u.findings.is_empty())
    }

    /// The filters the report was asked with, in words.
    pub fn filters(&self, lang: Lang) -> String {
        let region = match self.header.region_prefix.as_str() {
            "" => lang.t("report.all_regions").to_string(),
            prefix => lang.f("report.region", &[&prefix]),
        };
        let industry = match Industry::from_code(self.header.industry) {
            Some(industry) => {
                let name = lang
                    .lookup(&format!("industry.{}", industry.slug()))
                    .unwrap_or(industry.slug());
                lang.f("report.industry", &[&name])
            }
            None => lang.t("report.all_industries").to_string(),
        };
        format!("{region}{}{industry}", lang.t("report.sep"))
    }

    /// The rules the findings were judged by, one phrase each.
    pub fn rules(&self, lang: Lang) -> Vec<String> {
        let h = &self.header;
        vec![
            lang.f("report.rule.recheck", &[&h.recheck_interval_days]),
            lang.f("report.rule.grace", &[&h.hire_grace_days]),
            lang.f("report.rule.hit", &[&h.hit_on_staff_days]),
            lang.f("report.rule.ack", &[&h.alert_ack_days]),
            lang.f(
                "report.rule.excess",
                &[&h.excess_query_ratio, &h.excess_query_minimum],
            ),
        ]
    }

    /// The whole report as one JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        let h = &self.header;
        json!({
            "as_of": self.as_of(),
            "audit_seq": h.audit_seq,
            "audit_hash": h.audit_hash,
            "region_prefix": h.region_prefix,
            "industry": industry_slug(h.industry),
            "rules": {
                "recheck_interval_days": h.recheck_interval_days,
                "hire_grace_days": h.hire_grace_days,
                "hit_on_staff_days": h.hit_on_staff_days,
                "alert_ack_days": h.alert_ack_days,
                "excess_query_ratio": h.excess_query_ratio,
                "excess_query_minimum": h.excess_query_minimum,
            },
            "units": self.units.iter().map(unit_json).collect::<Vec<_>>(),
            "bureaus": self.bureaus.iter().map(group_json).collect::<Vec<_>>(),
            "regions": self.regions.iter().map(group_json).collect::<Vec<_>>(),
            "totals": {
                "units": self.totals.units,
                "units_with_findings": self.totals.units_with_findings,
                "current_members": self.totals.current_members,
                "checked_in_time": self.totals.checked_in_time,
                "findings": self.totals.findings.iter()
                    .map(|f| json!({"kind": finding_label(f.kind), "units": f.units}))
                    .collect::<Vec<_>>(),
            },
        })
    }
}

fn unit_json(u: &proto::UnitReport) -> serde_json::Value {
    json!({
        "uscc": u.uscc,
        "name": u.name,
        "region": u.region,
        "industry": industry_slug(u.industry),
        "supervising_bureau": u.supervising_bureau,
        "checks": u.checks,
        "current_members": u.current_members,
        "checked_in_time": u.checked_in_time,
        "findings": u.findings.iter().map(|f| json!({
            "kind": finding_label(f.kind),
            "count": f.count,
            "of": f.of,
            "detail": f.detail,
        })).collect::<Vec<_>>(),
    })
}

fn group_json(g: &proto::GroupSummary) -> serde_json::Value {
    json!({
        "key": g.key,
        "name": g.name,
        "units": g.units,
        "units_with_findings": g.units_with_findings,
        "current_members": g.current_members,
        "checked_in_time": g.checked_in_time,
    })
}

/// A finding kind's label; a kind this client does not know yet keeps its number visible.
pub fn finding_label(code: i32) -> String {
    Finding::from_code(code).map_or_else(|| format!("FINDING_{code}"), |f| f.label().into())
}

/// What a finding means, for readers who do not know the codes (the message catalogue the
/// portal shares).
pub fn finding_meaning(finding: Finding, lang: Lang) -> &'static str {
    lang.lookup(&format!("meaning.{}", finding.label()))
        .unwrap_or_default()
}

pub fn industry_slug(code: i32) -> &'static str {
    Industry::from_code(code).map_or("", Industry::slug)
}

/// "LABEL(count/of)" for each finding of a unit.
pub fn findings_short(unit: &proto::UnitReport) -> String {
    unit.findings
        .iter()
        .map(|f| format!("{}({}/{})", finding_label(f.kind), f.count, f.of))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The share of current staff checked in time, as a percentage; none without staff.
pub fn share(checked_in_time: u64, current_members: u64) -> Option<f64> {
    (current_members > 0).then(|| checked_in_time as f64 * 100.0 / current_members as f64)
}

/// [`share`] in words: "87.5% (7/8)" or "no current staff".
pub fn share_text(checked_in_time: u64, current_members: u64, lang: Lang) -> String {
    match share(checked_in_time, current_members) {
        Some(percent) => format!("{percent:.1}% ({checked_in_time}/{current_members})"),
        None => lang.t("report.no_staff").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_without_totals_is_refused() {
        let header = proto::ComplianceItem {
            item: Some(Item::Header(proto::ReportHeader::default())),
        };
        assert!(Report::collect(vec![header.clone()]).is_err());
        let totals = proto::ComplianceItem {
            item: Some(Item::Totals(proto::ReportTotals::default())),
        };
        assert!(Report::collect(vec![header, totals]).is_ok());
    }

    #[test]
    fn shares_and_labels_read_well() {
        assert_eq!(share_text(7, 8, Lang::En), "87.5% (7/8)");
        assert_eq!(share_text(0, 0, Lang::En), "no current staff");
        assert_eq!(share_text(0, 0, Lang::Zh), "无在职人员");
        assert_eq!(finding_label(1), "NEVER_CHECKED");
        assert_eq!(finding_label(99), "FINDING_99");
    }
}
