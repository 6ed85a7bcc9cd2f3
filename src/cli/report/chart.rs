//! Inline SVG bar charts for the HTML report: no script and no library, so that the page opens
//! anywhere, offline, and prints. Bars are horizontal because group labels (bureau names,
//! region codes) are long and there may be many; only the groups with the most units with
//! findings are drawn, and a note says what was left out. A chart is drawn at half a page's
//! width, so that two stand side by side at their natural size and the findings table still
//! starts on the first screen.

use std::fmt::Write;

use super::html::escape;
use crate::i18n::Lang;

/// Groups drawn at most; more would make the chart taller than a screen.
pub const MAX_BARS: usize = 30;

const WIDTH: u32 = 640;
/// Right edge of the label column.
const LABEL_RIGHT: u32 = 184;
const PLOT_LEFT: u32 = 192;
const PLOT_WIDTH: u32 = 370;
const ROW: u32 = 22;
const BAR: u32 = 14;
const TOP: u32 = 60;
const BOTTOM: u32 = 44;
/// Rough pixel widths at the chart's 13px font, to shorten labels that would overflow.
const WIDE_CHAR_PX: u32 = 13;
const NARROW_CHAR_PX: u32 = 7;

/// One bar: a group of units and how many of them have findings.
pub struct Group {
    pub label: String,
    pub units: u64,
    pub flagged: u64,
}

/// A chart of units (grey) and units with findings (red, drawn over them) per group.
pub fn bar_chart(title: &str, mut groups: Vec<Group>, lang: Lang) -> String {
    if groups.is_empty() {
        return format!("<p class=\"note\">{}</p>\n", lang.t("report.chart.none"));
    }
    groups.sort_by(|a, b| {
        b.flagged
            .cmp(&a.flagged)
            .then(b.units.cmp(&a.units))
            .then(a.label.cmp(&b.label))
    });
    let hidden = groups.split_off(groups.len().min(MAX_BARS));
    let max = groups.iter().map(|g| g.units).max().unwrap_or(1).max(1);
    let step = tick_step(max);
    let axis_max = max.div_ceil(step) * step;
    let x = |value: u64| PLOT_LEFT as f64 + value as f64 * PLOT_WIDTH as f64 / axis_max as f64;
    let rows = groups.len() as u32;
    let height = TOP + rows * ROW + BOTTOM;
    let plot_bottom = TOP + rows * ROW;

    let mut svg = String::new();
    // Inline SVG in HTML needs no namespace declaration, and the page then names no URL at all.
    let _ = writeln!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" \
         aria-label=\"{}\">",
        escape(title)
    );
    let _ = writeln!(svg, "<title>{}</title>", escape(title));
    // Legend.
    let _ = writeln!(
        svg,
        "<rect x=\"{PLOT_LEFT}\" y=\"8\" width=\"14\" height=\"14\" class=\"units\"/>\
         <text x=\"{}\" y=\"20\">{}</text>\
         <rect x=\"{}\" y=\"8\" width=\"14\" height=\"14\" class=\"flagged\"/>\
         <text x=\"{}\" y=\"20\">{}</text>",
        PLOT_LEFT + 20,
        lang.t("report.chart.units"),
        PLOT_LEFT + 90,
        PLOT_LEFT + 110,
        lang.t("report.chart.flagged"),
    );
    // Grid and axis labels.
    let mut tick = 0;
    while tick <= axis_max {
        let tx = x(tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{plot_bottom}\" class=\"grid\"/>\
             <text x=\"{tx:.1}\" y=\"{}\" class=\"tick\">{tick}</text>\
             <text x=\"{tx:.1}\" y=\"{}\" class=\"tick\">{tick}</text>",
            TOP - 6,
            TOP - 10,
            plot_bottom + 16
        );
        tick += step;
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" class=\"axis\">{}</text>",
        PLOT_LEFT + PLOT_WIDTH / 2,
        plot_bottom + 36,
        lang.t("report.chart.axis"),
    );
    for (i, group) in groups.iter().enumerate() {
        let top = TOP + i as u32 * ROW;
        let bar_y = top + (ROW - BAR) / 2;
        let text_y = bar_y + BAR - 3;
        let _ = writeln!(
            svg,
            "<g><title>{}</title>\
             <text x=\"{}\" y=\"{text_y}\" class=\"label\">{}</text>\
             <rect x=\"{PLOT_LEFT}\" y=\"{bar_y}\" width=\"{:.1}\" height=\"{BAR}\" class=\"units\"/>\
             <rect x=\"{PLOT_LEFT}\" y=\"{bar_y}\" width=\"{:.1}\" height=\"{BAR}\" class=\"flagged\"/>\
             <text x=\"{:.1}\" y=\"{text_y}\" class=\"value\">{}</text></g>",
            lang.f(
                "report.chart.bar",
                &[&escape(&group.label), &group.units, &group.flagged]
            ),
            LABEL_RIGHT,
            escape(&fit(&group.label, LABEL_RIGHT - 10)),
            x(group.units) - PLOT_LEFT as f64,
            x(group.flagged) - PLOT_LEFT as f64,
            x(group.units) + 6.0,
            lang.f("report.chart.value", &[&group.flagged, &group.units]),
        );
    }
    svg.push_str("</svg>\n");
    if !hidden.is_empty() {
        let units: u64 = hidden.iter().map(|g| g.units).sum();
        let flagged: u64 = hidden.iter().map(|g| g.flagged).sum();
        let _ = writeln!(
            svg,
            "<p class=\"note\">{}</p>",
            lang.f(
                "report.chart.hidden",
                &[
                    &counted(groups.len() as u64, "report.chart.group", lang),
                    &counted(hidden.len() as u64, "report.chart.hold", lang),
                    &counted(units, "report.chart.unit", lang),
                    &flagged,
                ]
            )
        );
    }
    svg
}

/// "1 group", "3 groups": `key.one` or `key.many` of the catalogue with the number.
fn counted(n: u64, key: &str, lang: Lang) -> String {
    let form = if n == 1 { "one" } else { "many" };
    lang.f(&format!("{key}.{form}"), &[&n])
}

/// A round step (1, 2 or 5 times a power of ten) giving at most about eight ticks.
fn tick_step(max: u64) -> u64 {
    let raw = max.div_ceil(8).max(1);
    let mut magnitude = 1;
    while magnitude * 10 <= raw {
        magnitude *= 10;
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= raw)
        .unwrap_or(magnitude * 10)
}

/// The label shortened with an ellipsis to about `max_px` pixels; Chinese characters are
/// about twice as wide as Latin ones.
fn fit(label: &str, max_px: u32) -> String {
    let width = |c: char| {
        if c.is_ascii() {
            NARROW_CHAR_PX
        } else {
            WIDE_CHAR_PX
        }
    };
    if label.chars().map(width).sum::<u32>() <= max_px {
        return label.to_string();
    }
    let mut used = width('…');
    let mut out = String::new();
    for c in label.chars() {
        used += width(c);
        if used > max_px {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(tick_step(1), 1);
        assert_eq!(tick_step(8), 1);
        assert_eq!(tick_step(9), 2);
        assert_eq!(tick_step(37), 5);
        assert_eq!(tick_step(120), 20);
        assert_eq!(tick_step(5000), 1000);
    }

    #[test]
    fn long_labels_are_shortened_and_escaped() {
        assert_eq!(fit("150602", 300), "150602");
        let long = "鄂尔多斯市东胜区教育体育局校外培训监管科".repeat(2);
        let short = fit(&long, 100);
        assert!(
            short.ends_with('…') && short.chars().count() < 10,
            "{short}"
        );
        let chart = bar_chart(
            "by <bureau>",
            vec![Group {
                label: "A&B".into(),
                units: 3,
                flagged: 1,
            }],
            Lang::En,
        );
        assert!(chart.contains("A&amp;B") && chart.contains("by &lt;bureau&gt;"));
        assert!(!chart.contains("<p"), "no note for a short chart");
    }

    #[test]
    fn only_the_worst_groups_are_drawn_and_the_rest_is_summed_up() {
        let groups = |n| {
            (0..n)
                .map(|i| Group {
                    label: format!("g{i}"),
                    units: 10,
                    flagged: i,
                })
                .collect()
        };
        let chart = bar_chart("t", groups(40), Lang::En);
        assert!(chart.contains(">g39<") && !chart.contains(">g9<"));
        assert!(chart.contains(
            "Showing the 30 groups with the most units with findings; the other 10 groups hold \
             100 units, 45 of them with findings."
        ));
        let chinese = bar_chart("t", groups(31), Lang::Zh);
        assert!(
            chinese.contains(
                "仅显示存在问题单位最多的 30 组；其余 1 组共有 10 个单位，其中 0 个存在问题。"
            ),
            "{chinese}"
        );
    }
}
