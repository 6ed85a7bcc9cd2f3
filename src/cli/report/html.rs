//! The report as one self-contained HTML page: inline CSS and SVG, no script, no font or image
//! fetched from anywhere, so that it can be mailed, archived with a case file, opened offline
//! and printed as it is. Every piece of text from the server is escaped: unit names are
//! whatever an operator enrolled.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use super::chart::{Group, bar_chart};
use super::{Report, finding_label, finding_meaning, industry_slug, share, share_text};
use crate::cli::CliError;
use crate::oversight::Finding;
use crate::proto;

const STYLE: &str = include_str!("report.css");

/// Escapes text for HTML content and quoted attribute values alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn write_html(report: &Report, path: &Path) -> Result<(), CliError> {
    std::fs::write(path, page(report)).map_err(|e| CliError::io(path, e))
}

fn page(report: &Report) -> String {
    let as_of = escape(&readable(report.header.as_of.as_ref()));
    let mut html = String::new();
    let lang = if crate::i18n::Lang::from_env() == crate::i18n::Lang::Zh {
        "zh-CN"
    } else {
        "en"
    };
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Compliance report as of {as_of}</title>\n<style>\n{STYLE}</style>\n</head>\n\
         <body>\n<main>\n<h1>Compliance report <span>as of {as_of}</span></h1>\n\
         <p class=\"lede\">Whether units in close contact with minors checked their staff as the \
         Minors Protection Law (art. 62) requires, judged from the audit log, the rosters and the \
         alerts as they stood at this moment.</p>\n"
    );
    facts(&mut html, report);
    summary(&mut html, report);
    kinds(&mut html, report);
    charts(&mut html, report);
    findings_table(&mut html, report);
    let _ = write!(
        html,
        "<footer>Computed by safehire at audit entry {} (hash <code>{}</code>). To reproduce it \
         against the same log: <code>safehire oversight report --as-of {}</code> with the same \
         filters.</footer>\n</main>\n</body>\n</html>\n",
        report.header.audit_seq,
        escape(&report.header.audit_hash),
        escape(&report.as_of())
    );
    html
}

/// A moment to the second in Beijing time, for titles people read; the facts table gives it
/// exactly, in UTC.
fn readable(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|at| {
            at.to_offset(crate::clock::CALENDAR)
                .format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second] (UTC+8)"
                ))
                .ok()
        })
        .unwrap_or_default()
}

fn facts(html: &mut String, report: &Report) {
    let h = &report.header;
    let rules: String = report
        .rules()
        .iter()
        .map(|r| format!("<li>{}</li>", escape(r)))
        .collect();
    let _ = write!(
        html,
        "<table class=\"facts\">\n\
         <tr><th>As of</th><td>{}</td></tr>\n\
         <tr><th>Audit head</th><td>entry {} &middot; hash <code>{}</code></td></tr>\n\
         <tr><th>Filters</th><td>{}</td></tr>\n\
         <tr><th>Rules</th><td><ul>{rules}</ul></td></tr>\n</table>\n",
        escape(&report.as_of()),
        h.audit_seq,
        escape(&h.audit_hash),
        escape(&report.filters()),
    );
}

fn summary(html: &mut String, report: &Report) {
    let t = &report.totals;
    let flagged_share = if t.units > 0 {
        format!(
            "{:.1}% of units",
            t.units_with_findings as f64 * 100.0 / t.units as f64
        )
    } else {
        "no units".into()
    };
    let checked = share(t.checked_in_time, t.current_members)
        .map_or("–".to_string(), |p| format!("{p:.1}%"));
    let _ = write!(
        html,
        "<section class=\"cards\">\n\
         <div class=\"card\"><div class=\"figure\">{}</div><div>units</div></div>\n\
         <div class=\"card bad\"><div class=\"figure\">{}</div><div>units with findings ({flagged_share})</div></div>\n\
         <div class=\"card\"><div class=\"figure\">{checked}</div><div>of staff checked in time ({} of {})</div></div>\n\
         </section>\n",
        t.units, t.units_with_findings, t.checked_in_time, t.current_members
    );
}

fn kinds(html: &mut String, report: &Report) {
    html.push_str(
        "<h2>Findings by kind</h2>\n<table class=\"kinds\">\n\
         <tr><th>Finding</th><th>Meaning</th><th class=\"num\">Units</th></tr>\n",
    );
    for finding in Finding::ALL {
        let units = report
            .totals
            .findings
            .iter()
            .find(|f| f.kind == finding.code())
            .map_or(0, |f| f.units);
        let _ = writeln!(
            html,
            "<tr><td><span class=\"badge\">{}</span></td><td>{}</td><td class=\"num\">{units}</td></tr>",
            finding.label(),
            escape(finding_meaning(*finding))
        );
    }
    html.push_str("</table>\n");
}

fn charts(html: &mut String, report: &Report) {
    let regions = report
        .regions
        .iter()
        .map(|g| Group {
            label: match g.name.as_str() {
                "" => g.key.clone(),
                name => format!("{} {name}", g.key),
            },
            units: g.units,
            flagged: g.units_with_findings,
        })
        .collect();
    let bureaus = report
        .bureaus
        .iter()
        .map(|g| Group {
            label: match (g.key.as_str(), g.name.as_str()) {
                ("", _) => "(no supervising bureau)".into(),
                (key, "") => key.into(),
                (_, name) => name.into(),
            },
            units: g.units,
            flagged: g.units_with_findings,
        })
        .collect();
    let _ = write!(
        html,
        "<div class=\"charts\">\n<section><h2>Units with findings per region</h2>\n{}</section>\n\
         <section><h2>Units with findings per supervising bureau</h2>\n{}</section>\n</div>\n",
        bar_chart("Units and units with findings per region", regions),
        bar_chart(
            "Units and units with findings per supervising bureau",
            bureaus
        )
    );
}

fn findings_table(html: &mut String, report: &Report) {
    let flagged: Vec<&proto::UnitReport> = report.flagged().collect();
    let _ = writeln!(
        html,
        "<h2>Units with findings ({} of {})</h2>",
        flagged.len(),
        report.units.len()
    );
    if flagged.is_empty() {
        html.push_str("<p class=\"note\">No unit has a finding.</p>\n");
        return;
    }
    html.push_str(
        "<table class=\"findings\">\n<thead><tr><th class=\"unit\">Unit</th><th>Region</th>\
         <th>Industry</th><th class=\"unit\">Supervising bureau</th><th class=\"num\">Checks</th>\
         <th class=\"num\">Staff checked<br>in time</th><th>Findings and their evidence</th></tr></thead>\n\
         <tbody>\n",
    );
    // Bureau names by USCC, as the server reported them in the bureau groups.
    let names: HashMap<&str, &str> = report
        .bureaus
        .iter()
        .map(|b| (b.key.as_str(), b.name.as_str()))
        .collect();
    for unit in flagged {
        let name = names.get(unit.supervising_bureau.as_str()).copied();
        let bureau = match name.unwrap_or_default() {
            "" => escape(&unit.supervising_bureau),
            name => format!(
                "{}<br><small>{}</small>",
                escape(name),
                escape(&unit.supervising_bureau)
            ),
        };
        let findings: String = unit
            .findings
            .iter()
            .map(|f| {
                format!(
                    "<li><span class=\"badge\">{}</span> {}</li>",
                    escape(&finding_label(f.kind)),
                    escape(&f.detail)
                )
            })
            .collect();
        let _ = writeln!(
            html,
            "<tr><td>{}<br><small>{}</small></td><td>{}</td><td>{}</td><td>{bureau}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td><ul>{findings}</ul></td></tr>",
            escape(&unit.name),
            escape(&unit.uscc),
            escape(&unit.region),
            escape(industry_slug(unit.industry)),
            unit.checks,
            escape(&share_text(unit.checked_in_time, unit.current_members)),
        );
    }
    html.push_str("</tbody>\n</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let report = Report {
            units: vec![proto::UnitReport {
                uscc: "X".into(),
                name: "<script>alert(1)</script>幼儿园".into(),
                findings: vec![proto::Finding {
                    kind: Finding::NeverChecked.code(),
                    count: 1,
                    of: 1,
                    detail: "no check on record".into(),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let page = page(&report);
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;幼儿园"));
        assert!(page.contains("<meta charset=\"utf-8\">"));
    }
}
