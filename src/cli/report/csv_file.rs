//! The report's units as a CSV for spreadsheets: one row per unit, one column per finding kind
//! (its count, empty when the unit does not have it) so that a reader can filter and sort on
//! any finding. UTF-8 with a byte-order mark, or spreadsheet software garbles Chinese names.

use std::io::Write;
use std::path::Path;

use super::{Report, finding_label, industry_slug};
use crate::cli::CliError;
use crate::oversight::Finding;

const FIXED: [&str; 8] = [
    "uscc",
    "name",
    "region",
    "industry",
    "supervising_bureau",
    "checks",
    "current_members",
    "checked_in_time",
];

pub fn write_csv(report: &Report, path: &Path) -> Result<(), CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::io(path, e);
    let file = std::fs::File::create(path).map_err(|e| failed(&e))?;
    let mut out = std::io::BufWriter::new(file);
    out.write_all("\u{feff}".as_bytes())
        .map_err(|e| failed(&e))?;
    let mut csv = csv::Writer::from_writer(out);
    let header = FIXED
        .iter()
        .copied()
        .chain(Finding::ALL.iter().map(|f| f.label()))
        .chain(["findings"]);
    csv.write_record(header).map_err(|e| failed(&e))?;
    for unit in &report.units {
        let mut row = vec![
            unit.uscc.clone(),
            unit.name.clone(),
            unit.region.clone(),
            industry_slug(unit.industry).to_string(),
            unit.supervising_bureau.clone(),
            unit.checks.to_string(),
            unit.current_members.to_string(),
            unit.checked_in_time.to_string(),
        ];
        row.extend(Finding::ALL.iter().map(|kind| {
            unit.findings
                .iter()
                .find(|f| f.kind == kind.code())
                .map_or(String::new(), |f| f.count.to_string())
        }));
        row.push(
            unit.findings
                .iter()
                .map(|f| finding_label(f.kind))
                .collect::<Vec<_>>()
                .join("; "),
        );
        csv.write_record(&row).map_err(|e| failed(&e))?;
    }
    csv.flush().map_err(|e| failed(&e))
}
