//! What a bench run found: the figures, each target and whether it was met, as a JSON document
//! and as the table `safehire bench` prints.

use std::fmt::Write as _;

use serde::Serialize;

use super::load::Measured;
use super::oversight::{Seeded, Timings};
use super::server::{Stopped, WriterFigures};

/// Checks per second must keep this share of the health-check ceiling, and of themselves on
/// the small index when the index is large.
pub const RATIO_TARGET: f64 = 0.8;
/// Rows per second a bulk batch must reach, and records per second an import.
pub const RATE_TARGET: f64 = 100_000.0;
/// Peak server memory with the large index.
pub const MEMORY_TARGET_MIB: f64 = 300.0;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    /// Absent when the run was `--only oversight`.
    pub core: Option<Core>,
    /// Absent when the run was `--only core`.
    pub oversight: Option<Oversight>,
    pub elapsed_seconds: f64,
}

/// The service's own speed: single checks, index scaling, bulk, import, memory.
#[derive(Debug, Clone, Serialize)]
pub struct Core {
    pub sizes: Sizes,
    pub checks: Vec<CheckRow>,
    pub index_scaling: Scaling,
    pub bulk: Bulk,
    pub import: Import,
    pub memory: Vec<MemoryRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    /// "server on core 0, client on core 1", or why not.
    pub pinning: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    pub warmup_seconds: f64,
    pub measure_seconds: f64,
    pub small_index: u64,
    pub large_index: u64,
    pub import_records: u64,
    pub bulk_rows: u64,
}

/// A closed-loop run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub calls: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl From<&Measured> for Rate {
    fn from(m: &Measured) -> Self {
        Self {
            per_second: m.per_second(),
            p50_ms: m.p50_ms,
            p99_ms: m.p99_ms,
            calls: m.calls,
            errors: m.errors,
            first_error: m.first_error.clone(),
        }
    }
}

/// Group commit of the audit log over a scenario's writes (there is no non-durable mode to
/// compare with: every audited answer waits for an fsync).
#[derive(Debug, Clone, Serialize)]
pub struct Durability {
    pub commits: u64,
    pub commits_per_second: f64,
    pub entries_per_commit: f64,
    pub mean_commit_ms: f64,
    /// Share of the writing interval spent in COMMIT (the WAL fsync).
    pub commit_share: f64,
}

impl Durability {
    /// From the writer's figures over an interval of `seconds` of writing.
    pub fn new(writer: &WriterFigures, seconds: f64) -> Self {
        let per = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Self {
            commits: writer.commits,
            commits_per_second: per(writer.commits as f64, seconds),
            entries_per_commit: per(writer.audit_entries as f64, writer.commits as f64),
            mean_commit_ms: per(writer.commit_seconds * 1000.0, writer.commits as f64),
            commit_share: per(writer.commit_seconds, seconds),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub concurrency: usize,
    pub channels: usize,
    pub baseline: Rate,
    pub checks: Rate,
    pub ratio: f64,
    pub met: bool,
    pub peak_rss_mib: Option<f64>,
    pub durability: Option<Durability>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scaling {
    pub concurrency: usize,
    pub small_records: u64,
    pub large_records: u64,
    pub small: Rate,
    pub large: Rate,
    pub ratio: f64,
    pub met: bool,
    pub peak_rss_mib: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bulk {
    pub rows: u64,
    pub index_records: u64,
    pub end_to_end_per_second: f64,
    pub end_to_end_seconds: f64,
    pub in_process_per_second: f64,
    pub ratio: f64,
    pub met: bool,
    pub peak_rss_mib: Option<f64>,
    pub durability: Option<Durability>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Import {
    pub records: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub met: bool,
    /// Filling the large index with further imports of the same size, after the first.
    pub seeded_records: u64,
    pub seeding_seconds: f64,
    pub last_import_per_second: f64,
    pub peak_rss_mib: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryRow {
    pub scenario: String,
    pub index_records: u64,
    pub peak_rss_mib: Option<f64>,
    /// Only scenarios on the large index have a target.
    pub met: Option<bool>,
}

/// The prosecutor's questions over a province's worth of supervision data. No target: the
/// figures are the performance note, with the chain verification over the same log as the
/// baseline (both read every entry).
#[derive(Debug, Clone, Serialize)]
pub struct Oversight {
    pub units: u64,
    pub roster_members: u64,
    pub checks: u64,
    pub audit_entries: u64,
    pub seeding_seconds: f64,
    pub verify_seconds: f64,
    pub report_seconds: f64,
    pub report_first_unit_seconds: f64,
    /// Report time over verification time.
    pub ratio: f64,
    pub units_with_findings: u64,
    /// Units per finding, by the finding's name.
    pub findings: Vec<(String, u64)>,
    pub current_members: u64,
    pub city: String,
    pub city_units: u64,
    pub city_report_seconds: f64,
    pub who_checked_seconds: f64,
    pub who_checked_entries: u64,
    pub proofs: super::oversight::ProofTimes,
    pub peak_rss_mib: Option<f64>,
}

impl Oversight {
    pub fn new(seeded: &Seeded, t: &Timings, peak_rss_mib: Option<f64>) -> Self {
        Self {
            units: seeded.units,
            roster_members: seeded.members,
            checks: seeded.checks,
            audit_entries: t.audit_entries,
            seeding_seconds: seeded.seconds,
            verify_seconds: t.verify_seconds,
            report_seconds: t.report_seconds,
            report_first_unit_seconds: t.report_first_unit_seconds,
            ratio: ratio(t.report_seconds, t.verify_seconds),
            units_with_findings: t.units_with_findings,
            findings: t.findings.clone(),
            current_members: t.current_members,
            city: seeded.city.clone(),
            city_units: t.city_units,
            city_report_seconds: t.city_report_seconds,
            who_checked_seconds: t.who_checked_seconds,
            who_checked_entries: t.who_checked_entries,
            proofs: t.proofs,
            peak_rss_mib,
        }
    }
}

pub fn mib(stopped: &Stopped) -> Option<f64> {
    stopped.peak_rss_bytes.map(|b| b as f64 / (1024.0 * 1024.0))
}

pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn mark(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn rss(mib: Option<f64>) -> String {
    mib.map(|m| format!("{m:.0} MiB"))
        .unwrap_or_else(|| "n/a".into())
}

/// Thousands separated by commas, as the figures are quoted elsewhere.
fn count(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The report as the text table printed at the end of a run.
pub fn table(r: &Report) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "safehire bench, {} — {}, {} cores; {}; {} s in all",
        r.date,
        r.machine.cpu,
        r.machine.cores,
        r.machine.pinning,
        count(r.elapsed_seconds)
    );
    if let Some(core) = &r.core {
        core_table(&mut t, core);
    }
    if let Some(o) = &r.oversight {
        oversight_table(&mut t, o);
    }
    t
}

fn core_table(t: &mut String, r: &Core) {
    let s = &r.sizes;
    let _ = writeln!(
        t,
        "runs of {:.1} s after {:.1} s warm-up\n",
        s.measure_seconds, s.warmup_seconds
    );
    let _ = writeln!(
        t,
        "Single checks vs grpc.health.v1 Check, {}-record index (target ratio >= {RATIO_TARGET})",
        count(s.small_index as f64)
    );
    let _ = writeln!(
        t,
        "  conc chans | health/s  p50 ms  p99 ms | checks/s  p50 ms  p99 ms | ratio  target | server RSS"
    );
    for row in &r.checks {
        let _ = writeln!(
            t,
            "  {:>4} {:>5} | {:>8} {:>7.2} {:>7.2} | {:>8} {:>7.2} {:>7.2} | {:>5.2}  {:<6} | {}{}",
            row.concurrency,
            row.channels,
            count(row.baseline.per_second),
            row.baseline.p50_ms,
            row.baseline.p99_ms,
            count(row.checks.per_second),
            row.checks.p50_ms,
            row.checks.p99_ms,
            row.ratio,
            mark(row.met),
            rss(row.peak_rss_mib),
            errors_note(&row.checks, &row.baseline),
        );
    }

    let _ = writeln!(
        t,
        "\nDurability: audit group commit (synchronous = FULL; no non-durable mode exists)"
    );
    let _ = writeln!(
        t,
        "  scenario            | commits/s  entries/commit  mean commit ms  commit share"
    );
    let durable = r
        .checks
        .iter()
        .filter_map(|row| {
            row.durability
                .as_ref()
                .map(|d| (format!("checks, conc {}", row.concurrency), d))
        })
        .chain(
            r.bulk
                .durability
                .as_ref()
                .map(|d| ("bulk CheckBatch".to_string(), d)),
        );
    for (name, d) in durable {
        let _ = writeln!(
            t,
            "  {:<19} | {:>9} {:>15.1} {:>15.2} {:>12.0}%",
            name,
            count(d.commits_per_second),
            d.entries_per_commit,
            d.mean_commit_ms,
            d.commit_share * 100.0
        );
    }

    let x = &r.index_scaling;
    let _ = writeln!(
        t,
        "\nIndex scaling: single checks at concurrency {} (target ratio >= {RATIO_TARGET})",
        x.concurrency
    );
    let _ = writeln!(
        t,
        "  {:>10} records: {:>8} checks/s  p50 {:.2} ms  p99 {:.2} ms",
        count(x.small_records as f64),
        count(x.small.per_second),
        x.small.p50_ms,
        x.small.p99_ms
    );
    let _ = writeln!(
        t,
        "  {:>10} records: {:>8} checks/s  p50 {:.2} ms  p99 {:.2} ms  server RSS {}{}",
        count(x.large_records as f64),
        count(x.large.per_second),
        x.large.p50_ms,
        x.large.p99_ms,
        rss(x.peak_rss_mib),
        errors_note(&x.large, &x.small)
    );
    let _ = writeln!(t, "  ratio {:.2}: {}", x.ratio, mark(x.met));

    let b = &r.bulk;
    let _ = writeln!(
        t,
        "\nBulk: CheckBatch of {} rows, {}-record index (target >= {} rows/s)",
        count(b.rows as f64),
        count(b.index_records as f64),
        count(RATE_TARGET)
    );
    let _ = writeln!(
        t,
        "  end to end {} rows/s ({:.2} s): {}; in-process hashing + lookup {} rows/s; ratio {:.2}; server RSS {}",
        count(b.end_to_end_per_second),
        b.end_to_end_seconds,
        mark(b.met),
        count(b.in_process_per_second),
        b.ratio,
        rss(b.peak_rss_mib)
    );

    let i = &r.import;
    let _ = writeln!(
        t,
        "\nImport: {} records into an empty registry (target >= {} records/s)",
        count(i.records as f64),
        count(RATE_TARGET)
    );
    let _ = writeln!(
        t,
        "  {} records/s ({:.2} s): {}; filled to {} records in {:.0} s more, last import {} records/s; server RSS {}",
        count(i.per_second),
        i.seconds,
        mark(i.met),
        count(i.seeded_records as f64),
        i.seeding_seconds,
        count(i.last_import_per_second),
        rss(i.peak_rss_mib)
    );

    let _ = writeln!(
        t,
        "\nMemory: server peak RSS per scenario (target < {MEMORY_TARGET_MIB:.0} MiB with the large index)"
    );
    for m in &r.memory {
        let verdict = match m.met {
            Some(met) => mark(met),
            None => "",
        };
        let _ = writeln!(
            t,
            "  {:<34} {:>12} records  {:>9}  {}",
            m.scenario,
            count(m.index_records as f64),
            rss(m.peak_rss_mib),
            verdict
        );
    }
}

fn oversight_table(t: &mut String, o: &Oversight) {
    let _ = writeln!(
        t,
        "\nOversight: {} units, {} roster members, {} audit entries (seeded through the API in {:.0} s)",
        count(o.units as f64),
        count(o.roster_members as f64),
        count(o.audit_entries as f64),
        o.seeding_seconds
    );
    let _ = writeln!(
        t,
        "  verify the chain (baseline) {:>7.2} s\n  compliance report, all      {:>7.2} s (first unit after {:.2} s; {} units with findings, {} current members); ratio to verify {:.2}\n  compliance report, city {:<4} {:>6.2} s ({} units)\n  who checked one person      {:>7.2} s ({} entries)\n  server RSS {}",
        o.verify_seconds,
        o.report_seconds,
        o.report_first_unit_seconds,
        count(o.units_with_findings as f64),
        count(o.current_members as f64),
        o.ratio,
        o.city,
        o.city_report_seconds,
        count(o.city_units as f64),
        o.who_checked_seconds,
        o.who_checked_entries,
        rss(o.peak_rss_mib)
    );
    let findings: Vec<String> = o
        .findings
        .iter()
        .map(|(name, units)| format!("{name} {}", count(*units as f64)))
        .collect();
    let _ = writeln!(t, "  units per finding: {}", findings.join(", "));
    let p = &o.proofs;
    let _ = writeln!(
        t,
        "  inclusion proof (receipt)   p50 {:.2} ms, p99 {:.2} ms; consistency proof p50 {:.2} ms, p99 {:.2} ms ({} each)",
        p.inclusion_p50_ms,
        p.inclusion_p99_ms,
        p.consistency_p50_ms,
        p.consistency_p99_ms,
        p.samples
    );
}

fn errors_note(a: &Rate, b: &Rate) -> String {
    match a.first_error.as_ref().or(b.first_error.as_ref()) {
        Some(e) => format!("  ({} errors: {e})", a.errors + b.errors),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.4), "999");
        assert_eq!(count(1_000.0), "1,000");
        assert_eq!(count(10_000_000.0), "10,000,000");
    }

    #[test]
    fn durability_divides_safely() {
        let d = Durability::new(&WriterFigures::default(), 0.0);
        assert_eq!((d.commits_per_second, d.entries_per_commit), (0.0, 0.0));
        let d = Durability::new(
            &WriterFigures {
                commits: 100,
                jobs: 800,
                audit_entries: 800,
                commit_seconds: 0.5,
            },
            2.0,
        );
        assert_eq!(d.commits_per_second, 50.0);
        assert_eq!(d.entries_per_commit, 8.0);
        assert_eq!(d.mean_commit_ms, 5.0);
        assert_eq!(d.commit_share, 0.25);
    }
}
