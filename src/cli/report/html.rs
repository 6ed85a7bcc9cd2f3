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
use crate::i18n::Lang;
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

/// Writes the page in `lang`; every word on it comes from the message catalogue.
pub fn write_html(report: &Report, path: &Path, lang: Lang) -> Result<(), CliError> {
    std::fs::write(path, page(report, lang)).map_err(|e| CliError::io(path, e))
}

fn page(report: &Report, lang: Lang) -> String {
    let as_of = escape(&readable(report.header.as_of.as_ref()));
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n\
         <body>\n<main>\n<h1>{} <span>{}</span></h1>\n<p class=\"lede\">{}</p>\n",
        lang.code(),
        lang.f("report.page_title", &[&as_of]),
        lang.t("report.title"),
        lang.f("report.as_of", &[&as_of]),
        lang.t("report.lede"),
    );
    facts(&mut html, report, lang);
    summary(&mut html, report, lang);
    kinds(&mut html, report, lang);
    charts(&mut html, report, lang);
    findings_table(&mut html, report, lang);
    let _ = write!(
        html,
        "<footer>{}</footer>\n</main>\n</body>\n</html>\n",
        lang.f(
            "report.footer",
            &[
                &report.header.audit_seq,
                &escape(&report.header.audit_hash),
                &escape(&report.as_of())
            ]
        ),
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

fn facts(html: &mut String, report: &Report, lang: Lang) {
    let h = &report.header;
    let rules: String = report
        .rules(lang)
        .iter()
        .map(|r| format!("<li>{}</li>", escape(r)))
        .collect();
    let _ = write!(
        html,
        "<table class=\"facts\">\n\
         <tr><th>{}</th><td>{}</td></tr>\n\
         <tr><th>{}</th><td>{} <code>{}</code></td></tr>\n\
         <tr><th>{}</th><td>{}</td></tr>\n\
         <tr><th>{}</th><td><ul>{rules}</ul></td></tr>\n</table>\n",
        lang.t("oversight.as_of"),
        escape(&report.as_of()),
        lang.t("oversight.audit_head"),
        lang.f("report.audit_entry", &[&h.audit_seq]),
        escape(&h.audit_hash),
        lang.t("report.filters"),
        escape(&report.filters(lang)),
        lang.t("report.rules"),
    );
}

fn summary(html: &mut String, report: &Report, lang: Lang) {
    let t = &report.totals;
    let flagged_share = if t.units > 0 {
        let percent = format!(
            "{:.1}",
            t.units_with_findings as f64 * 100.0 / t.units as f64
        );
        lang.f("report.share_of_units", &[&percent])
    } else {
        lang.t("report.no_units").into()
    };
    let checked = share(t.checked_in_time, t.current_members)
        .map_or("–".to_string(), |p| format!("{p:.1}%"));
    let _ = write!(
        html,
        "<section class=\"cards\">\n\
         <div class=\"card\"><div class=\"figure\">{}</div><div>{}</div></div>\n\
         <div class=\"card bad\"><div class=\"figure\">{}</div><div>{}</div></div>\n\
         <div class=\"card\"><div class=\"figure\">{checked}</div><div>{}</div></div>\n\
         </section>\n",
        t.units,
        lang.t("report.card.units"),
        t.units_with_findings,
        lang.f("report.card.flagged", &[&flagged_share]),
        lang.f(
            "report.card.checked",
            &[&t.checked_in_time, &t.current_members]
        ),
    );
}

fn kinds(html: &mut String, report: &Report, lang: Lang) {
    let _ = write!(
        html,
        "<h2>{}</h2>\n<table class=\"kinds\">\n\
         <tr><th>{}</th><th>{}</th><th class=\"num\">{}</th></tr>\n",
        lang.t("oversight.by_kind"),
        lang.t("report.col.finding"),
        lang.t("report.col.meaning"),
        lang.t("oversight.units"),
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
            "<tr><td><span class=\"badge\">{}</span><br><small>{}</small></td><td>{}</td><td class=\"num\">{units}</td></tr>",
            finding.label(),
            escape(lang.t(&format!("finding.{}", finding.label()))),
            escape(finding_meaning(*finding, lang))
        );
    }
    html.push_str("</table>\n");
}

fn charts(html: &mut String, report: &Report, lang: Lang) {
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
                ("", _) => lang.t("report.no_bureau").into(),
                (key, "") => key.into(),
                (_, name) => name.into(),
            },
            units: g.units,
            flagged: g.units_with_findings,
        })
        .collect();
    let _ = write!(
        html,
        "<div class=\"charts\">\n<section><h2>{}</h2>\n{}</section>\n\
         <section><h2>{}</h2>\n{}</section>\n</div>\n",
        lang.t("report.chart.region"),
        bar_chart(lang.t("report.chart.region_title"), regions, lang),
        lang.t("report.chart.bureau"),
        bar_chart(lang.t("report.chart.bureau_title"), bureaus, lang)
    );
}

fn findings_table(html: &mut String, report: &Report, lang: Lang) {
    let flagged: Vec<&proto::UnitReport> = report.flagged().collect();
    let _ = writeln!(
        html,
        "<h2>{}</h2>",
        lang.f(
            "report.flagged_heading",
            &[&flagged.len(), &report.units.len()]
        )
    );
    if flagged.is_empty() {
        let _ = writeln!(
            html,
            "<p class=\"note\">{}</p>",
            lang.t("report.none_flagged")
        );
        return;
    }
    let _ = write!(
        html,
        "<table class=\"findings\">\n<thead><tr><th class=\"unit\">{}</th><th>{}</th>\
         <th>{}</th><th class=\"unit\">{}</th><th class=\"num\">{}</th>\
         <th class=\"num\">{}</th><th>{}</th></tr></thead>\n<tbody>\n",
        lang.t("oversight.unit"),
        lang.t("oversight.region"),
        lang.t("report.col.industry"),
        lang.t("oversight.bureau"),
        lang.t("oversight.checks"),
        lang.t("report.col.checked"),
        lang.t("report.col.findings"),
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
                    escape(&finding_evidence(f, lang))
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
            escape(industry_name(unit.industry, lang)),
            unit.checks,
            escape(&share_text(
                unit.checked_in_time,
                unit.current_members,
                lang
            )),
        );
    }
    html.push_str("</tbody>\n</table>\n");
}

/// An industry as the reader's language names it; the English page keeps the slug the CSV and
/// the `--industry` flag use.
fn industry_name(code: i32, lang: Lang) -> &'static str {
    let slug = industry_slug(code);
    lang.lookup(&format!("industry.{slug}")).unwrap_or(slug)
}

/// A finding's evidence in words. The server's detail is an English sentence; in another
/// language the finding's name from the catalogue and its counts stand in for it.
fn finding_evidence(finding: &proto::Finding, lang: Lang) -> String {
    match (lang, Finding::from_code(finding.kind)) {
        (Lang::En, _) | (_, None) => finding.detail.clone(),
        (_, Some(kind)) => format!(
            "{}（{}）",
            lang.t(&format!("finding.{}", kind.label())),
            lang.f("report.finding_count", &[&finding.count, &finding.of])
        ),
    }
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
        for lang in [Lang::Zh, Lang::En] {
            let page = page(&report, lang);
            assert!(!page.contains("<script"), "{page}");
            assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;幼儿园"));
            assert!(page.contains("<meta charset=\"utf-8\">"));
        }
    }

    #[test]
    fn the_page_speaks_the_language_asked_for() {
        let report = Report::default();
        let zh = page(&report, Lang::Zh);
        assert!(zh.contains("<html lang=\"zh-CN\">"));
        assert!(zh.contains("<h1>合规情况报告"), "{zh}");
        assert!(zh.contains("判定规则") && zh.contains("每 0 天复查一次"));
        assert!(!zh.contains("Units with findings"), "{zh}");
        let en = page(&report, Lang::En);
        assert!(en.contains("<html lang=\"en\">"));
        assert!(en.contains("<h1>Compliance report"), "{en}");
        assert!(en.contains("Units with findings (0 of 0)"));
        assert!(!en.contains("合规"), "{en}");
    }
}
