//! The report as text on a terminal: the facts it rests on, the units with findings, then the
//! per-bureau and per-region lines and the totals, so that the worst news comes first and the
//! overview last, where the prompt returns.

use super::{Report, finding_label, findings_short, share_text};
use crate::proto;

pub fn print_summary(report: &Report) {
    let h = &report.header;
    println!("compliance report as of {}", report.as_of());
    println!("  audit head  {} {}", h.audit_seq, h.audit_hash);
    println!("  filters     {}", report.filters());
    println!("  rules       {}", report.rules().join("; "));
    println!();

    let flagged: Vec<&proto::UnitReport> = report.flagged().collect();
    println!(
        "units with findings: {} of {}",
        flagged.len(),
        report.units.len()
    );
    for unit in flagged {
        println!(
            "  {}  {}  {}  {}",
            unit.uscc,
            unit.name,
            unit.region,
            findings_short(unit)
        );
    }

    println!();
    println!("by supervising bureau:");
    for group in &report.bureaus {
        let who = match (group.key.as_str(), group.name.as_str()) {
            ("", _) => "(no bureau)".to_string(),
            (key, "") => key.to_string(),
            (key, name) => format!("{key}  {name}"),
        };
        println!("  {who}: {}", group_line(group));
    }
    println!("by region:");
    for group in &report.regions {
        let region = match group.name.as_str() {
            "" => group.key.clone(),
            name => format!("{}  {name}", group.key),
        };
        println!("  {region}: {}", group_line(group));
    }
    if report.units.is_empty() {
        println!("  (no units)");
    }

    let t = &report.totals;
    println!();
    println!(
        "totals: {} units, {} with findings; staff checked in time {}",
        t.units,
        t.units_with_findings,
        share_text(t.checked_in_time, t.current_members)
    );
    let per_kind: Vec<String> = t
        .findings
        .iter()
        .filter(|f| f.units > 0)
        .map(|f| format!("{} {}", finding_label(f.kind), f.units))
        .collect();
    if !per_kind.is_empty() {
        println!("units per finding: {}", per_kind.join(", "));
    }
}

fn group_line(group: &proto::GroupSummary) -> String {
    format!(
        "{} units, {} with findings, staff checked in time {}",
        group.units,
        group.units_with_findings,
        share_text(group.checked_in_time, group.current_members)
    )
}
