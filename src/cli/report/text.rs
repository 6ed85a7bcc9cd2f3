//! The report as text on a terminal: the facts it rests on, the units with findings, then the
//! per-bureau and per-region lines and the totals, so that the worst news comes first and the
//! overview last, where the prompt returns.

use super::{Report, finding_label, findings_short, share_text};
use crate::i18n::Lang;
use crate::proto;

pub fn print_summary(report: &Report, lang: Lang) {
    let h = &report.header;
    let label = |key: &str| format!("  {}", crate::i18n::pad(lang.t(key), 12));
    println!("{}", lang.f("report.text.head", &[&report.as_of()]));
    println!(
        "{}{} {}",
        label("report.text.audit_head"),
        h.audit_seq,
        h.audit_hash
    );
    println!("{}{}", label("report.text.filters"), report.filters(lang));
    println!(
        "{}{}",
        label("report.text.rules"),
        report.rules(lang).join(lang.t("report.rule_sep"))
    );
    println!();

    let flagged: Vec<&proto::UnitReport> = report.flagged().collect();
    println!(
        "{}",
        lang.f(
            "report.text.flagged",
            &[&flagged.len(), &report.units.len()]
        )
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
    println!("{}", lang.t("report.text.by_bureau"));
    for group in &report.bureaus {
        let who = match (group.key.as_str(), group.name.as_str()) {
            ("", _) => lang.t("report.text.no_bureau").to_string(),
            (key, "") => key.to_string(),
            (key, name) => format!("{key}  {name}"),
        };
        println!("  {who}: {}", group_line(group, lang));
    }
    println!("{}", lang.t("report.text.by_region"));
    for group in &report.regions {
        let region = match group.name.as_str() {
            "" => group.key.clone(),
            name => format!("{}  {name}", group.key),
        };
        println!("  {region}: {}", group_line(group, lang));
    }
    if report.units.is_empty() {
        println!("  {}", lang.t("report.text.no_units"));
    }

    let t = &report.totals;
    println!();
    println!(
        "{}",
        lang.f(
            "report.text.totals",
            &[
                &t.units,
                &t.units_with_findings,
                &share_text(t.checked_in_time, t.current_members, lang)
            ]
        )
    );
    let per_kind: Vec<String> = t
        .findings
        .iter()
        .filter(|f| f.units > 0)
        .map(|f| format!("{} {}", finding_label(f.kind), f.units))
        .collect();
    if !per_kind.is_empty() {
        println!(
            "{}",
            lang.f(
                "report.text.per_kind",
                &[&per_kind.join(lang.t("report.sep"))]
            )
        );
    }
}

fn group_line(group: &proto::GroupSummary, lang: Lang) -> String {
    lang.f(
        "report.text.group",
        &[
            &group.units,
            &group.units_with_findings,
            &share_text(group.checked_in_time, group.current_members, lang),
        ],
    )
}
