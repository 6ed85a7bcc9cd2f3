//! The benchmark suite behind `safehire bench`: the real server as a child process on loopback
//! with real mTLS, synthetic data, and every figure as a ratio against a baseline measured in
//! the same run, because the machines it runs on are shared and noisy (absolute figures are
//! reported, not asserted). What each scenario means is in BENCHMARKS.md.

mod bulk;
mod checks;
mod data;
mod import;
mod load;
pub mod oversight;
mod report;
mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use report::{Report, table};

use load::{Measured, Phases};
use report::{Durability, MemoryRow, RATE_TARGET, RATIO_TARGET, mib, ratio};
use server::{Launch, ServerProcess, Stopped};

/// A failed run: what went wrong, in one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(String);

impl BenchError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Sizes and durations of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub warmup: Duration,
    pub measure: Duration,
    pub concurrencies: Vec<usize>,
    pub small_index: u64,
    pub large_index: u64,
    pub import_records: u64,
    pub bulk_rows: u64,
    /// Run the single-check, scaling, bulk, import and memory scenarios.
    pub core: bool,
    /// The legal-supervision scenario: units, their rosters and their checks (none: skipped).
    pub oversight: oversight::Scale,
    /// Pin the server to core 0 and this process to core 1 (when there are two cores).
    pub pin: bool,
    /// Where the servers' data goes; a temporary folder, removed afterwards, when `None`.
    pub work_dir: Option<PathBuf>,
    /// The `safehire` binary that serves (`None`: this one). Another build serves the same
    /// requests from the same client, so that two builds compare on equal terms.
    pub server_binary: Option<PathBuf>,
}

impl Settings {
    /// The full suite: 10,000,000 records, a 1,000,000-row batch and import, 5 s runs.
    pub fn full() -> Self {
        Self {
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(5),
            concurrencies: vec![1, 16, 64],
            small_index: 10_000,
            large_index: 10_000_000,
            import_records: 1_000_000,
            bulk_rows: 1_000_000,
            core: true,
            oversight: oversight::Scale {
                units: 10_000,
                members_per_unit: 100,
                checks: 5_000_000,
            },
            pin: true,
            work_dir: None,
            server_binary: None,
        }
    }

    /// A try-out in about a minute: the same scenarios, small sizes, short runs.
    pub fn quick() -> Self {
        Self {
            warmup: Duration::from_millis(500),
            measure: Duration::from_secs(3),
            large_index: 300_000,
            import_records: 100_000,
            bulk_rows: 100_000,
            oversight: oversight::Scale {
                units: 1_000,
                members_per_unit: 100,
                checks: 500_000,
            },
            ..Self::full()
        }
    }

    fn phases(&self) -> Phases {
        Phases {
            warmup: self.warmup,
            measure: self.measure,
        }
    }
}

/// Runs every scenario and returns the report; `progress` hears one line per step.
pub async fn run(settings: Settings, progress: impl Fn(&str)) -> Result<Report, BenchError> {
    let started = Instant::now();
    let say = |line: String| {
        progress(&format!(
            "[{:>4.0} s] {line}",
            started.elapsed().as_secs_f64()
        ))
    };
    let binary = match &settings.server_binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe()
            .map_err(|e| BenchError::new(format!("cannot find the safehire binary: {e}")))?,
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let (server_core, pinning) = if !settings.pin {
        (None, "not pinned (--no-pin)".to_string())
    } else if cores < 2 {
        (None, "not pinned (one core)".to_string())
    } else {
        match pin_this_process(1) {
            Ok(()) => (
                Some(0),
                "server pinned to core 0, client to core 1".to_string(),
            ),
            Err(e) => (None, format!("not pinned ({e})")),
        }
    };
    let work = WorkDir::new(settings.work_dir.clone())?;
    let launch = Launch {
        binary,
        work_dir: work.path.clone(),
        core: server_core,
        other_build: settings.server_binary.is_some(),
    };
    let core = if settings.core {
        Some(core(&settings, &launch, &work, &say).await?)
    } else {
        None
    };
    let oversight = if settings.oversight.units > 0 {
        Some(supervision(&settings, &launch, &work, &say).await?)
    } else {
        None
    };

    Ok(Report {
        date: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        machine: report::Machine {
            cpu: cpu_model(),
            cores,
            pinning,
        },
        core,
        oversight,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Single checks, index scaling, bulk, import and memory.
async fn core(
    settings: &Settings,
    launch: &Launch,
    work: &WorkDir,
    say: &impl Fn(String),
) -> Result<report::Core, BenchError> {
    let small_dir = work.path.join("index-small");
    let large_dir = work.path.join("index-large");
    let phases = settings.phases();
    let mut memory = Vec::new();

    // The small index.
    let server = ServerProcess::start(launch, &small_dir).await?;
    import::import(&server, 0..settings.small_index).await?;
    server.stop().await?;
    say(format!(
        "seeded the small index ({} records)",
        settings.small_index
    ));

    // Single checks against their ceiling, one server per concurrency.
    let mut check_rows = Vec::new();
    for &concurrency in &settings.concurrencies {
        let server = ServerProcess::start(launch, &small_dir).await?;
        let baseline = checks::health(&server, concurrency, phases).await?;
        let checked = checks::checks(&server, concurrency, phases, settings.small_index).await?;
        let stopped = server.stop().await?;
        say(format!(
            "concurrency {concurrency}: health {:.0}/s, checks {:.0}/s",
            baseline.per_second(),
            checked.per_second()
        ));
        memory.push(memory_row(
            format!("single checks, concurrency {concurrency}"),
            settings.small_index,
            &stopped,
            false,
        ));
        check_rows.push(check_row(&baseline, &checked, &stopped, phases));
    }

    // A whole staff file in one batch, then the same work in process.
    let server = ServerProcess::start(launch, &small_dir).await?;
    let batch = bulk::check_batch(&server, settings.bulk_rows, settings.small_index).await?;
    let stopped = server.stop().await?;
    // The in-process ceiling runs this build's code on the data, which another build's server
    // may have laid out differently: it is left out when one serves (and reported as 0).
    let floor_per_second = if launch.other_build {
        0.0
    } else {
        bulk::in_process(&small_dir, settings.bulk_rows, settings.small_index)
            .await?
            .per_second()
    };
    say(format!(
        "bulk: {:.0} rows/s end to end, {floor_per_second:.0} rows/s in process",
        batch.per_second(),
    ));
    memory.push(memory_row(
        format!("bulk CheckBatch, {} rows", settings.bulk_rows),
        settings.small_index,
        &stopped,
        false,
    ));
    let bulk = report::Bulk {
        rows: batch.rows,
        index_records: settings.small_index,
        end_to_end_per_second: batch.per_second(),
        end_to_end_seconds: batch.seconds,
        in_process_per_second: floor_per_second,
        ratio: ratio(batch.per_second(), floor_per_second),
        met: batch.per_second() >= RATE_TARGET,
        peak_rss_mib: mib(&stopped),
        durability: stopped.writer.map(|w| Durability::new(&w, batch.seconds)),
    };

    // Import into an empty registry, then fill the large index with more of the same.
    let server = ServerProcess::start(launch, &large_dir).await?;
    let first_size = settings.import_records.min(settings.large_index).max(1);
    let first = import::import(&server, 0..first_size).await?;
    say(format!(
        "imported {first_size} records: {:.0}/s",
        first.per_second()
    ));
    let (mut seeded, mut seeding_seconds, mut last) = (first_size, 0.0, first);
    while seeded < settings.large_index {
        let next = (seeded + first_size).min(settings.large_index);
        last = import::import(&server, seeded..next).await?;
        seeding_seconds += last.seconds;
        seeded = next;
        say(format!(
            "filled the large index to {seeded} records (last import {:.0}/s)",
            last.per_second()
        ));
    }
    let stopped = server.stop().await?;
    memory.push(memory_row(
        format!("import, filling to {seeded} records"),
        seeded,
        &stopped,
        true,
    ));
    let import = report::Import {
        records: first.records,
        seconds: first.seconds,
        per_second: first.per_second(),
        met: first.per_second() >= RATE_TARGET,
        seeded_records: seeded,
        seeding_seconds,
        last_import_per_second: last.per_second(),
        peak_rss_mib: mib(&stopped),
    };
    say(settle_disk());

    // Index scaling: the small and the large index back to back, on a settled disk.
    let concurrency = settings.concurrencies.iter().copied().max().unwrap_or(1);
    let server = ServerProcess::start(launch, &small_dir).await?;
    let small = checks::checks(&server, concurrency, phases, settings.small_index).await?;
    server.stop().await?;
    let server = ServerProcess::start(launch, &large_dir).await?;
    let large = checks::checks(&server, concurrency, phases, seeded).await?;
    let stopped = server.stop().await?;
    say(format!(
        "concurrency {concurrency}: checks {:.0}/s on {} records, {:.0}/s on {seeded}",
        small.per_second(),
        settings.small_index,
        large.per_second()
    ));
    memory.push(memory_row(
        format!("single checks, concurrency {concurrency}"),
        seeded,
        &stopped,
        true,
    ));
    let scaling_ratio = ratio(large.per_second(), small.per_second());
    let index_scaling = report::Scaling {
        concurrency,
        small_records: settings.small_index,
        large_records: seeded,
        small: (&small).into(),
        large: (&large).into(),
        ratio: scaling_ratio,
        met: scaling_ratio >= RATIO_TARGET && large.errors == 0 && small.errors == 0,
        peak_rss_mib: mib(&stopped),
    };

    Ok(report::Core {
        sizes: report::Sizes {
            warmup_seconds: settings.warmup.as_secs_f64(),
            measure_seconds: settings.measure.as_secs_f64(),
            small_index: settings.small_index,
            large_index: seeded,
            import_records: first.records,
            bulk_rows: settings.bulk_rows,
        },
        checks: check_rows,
        index_scaling,
        bulk,
        import,
        memory,
    })
}

/// Legal supervision: seed, settle, then the prosecutor's questions on a fresh server.
async fn supervision(
    settings: &Settings,
    launch: &Launch,
    work: &WorkDir,
    say: &impl Fn(String),
) -> Result<report::Oversight, BenchError> {
    let oversight_dir = work.path.join("oversight");
    let server = ServerProcess::start(launch, &oversight_dir).await?;
    let supervised = oversight::seed(&server, settings.oversight, say).await?;
    server.stop().await?;
    say(settle_disk());
    let server = ServerProcess::start(launch, &oversight_dir).await?;
    let timings = oversight::measure(&server, &supervised).await?;
    let stopped = server.stop().await?;
    say(format!(
        "oversight: report over {} units in {:.1} s, chain verified in {:.1} s",
        timings.report_units, timings.report_seconds, timings.verify_seconds
    ));
    Ok(report::Oversight::new(&supervised, &timings, mib(&stopped)))
}

fn check_row(
    baseline: &Measured,
    checked: &Measured,
    stopped: &Stopped,
    phases: Phases,
) -> report::CheckRow {
    let check_ratio = ratio(checked.per_second(), baseline.per_second());
    // The writer wrote only during the checks: their warm-up and measured run.
    let writing = (phases.warmup + phases.measure).as_secs_f64();
    report::CheckRow {
        concurrency: checked.concurrency,
        channels: checked.channels,
        baseline: baseline.into(),
        checks: checked.into(),
        ratio: check_ratio,
        met: check_ratio >= RATIO_TARGET && checked.errors == 0,
        peak_rss_mib: mib(stopped),
        durability: stopped.writer.map(|w| Durability::new(&w, writing)),
    }
}

fn memory_row(scenario: String, index_records: u64, stopped: &Stopped, large: bool) -> MemoryRow {
    let peak = mib(stopped);
    MemoryRow {
        scenario,
        index_records,
        peak_rss_mib: peak,
        met: large.then(|| peak.is_some_and(|m| m < report::MEMORY_TARGET_MIB)),
    }
}

/// Waits until the kernel has written back what the seeding left dirty (gigabytes, for the
/// large index), so that the write-back does not slow the fsyncs of the runs that follow.
fn settle_disk() -> String {
    let started = Instant::now();
    match std::process::Command::new("sync").status() {
        Ok(status) if status.success() => format!(
            "disk settled (sync took {:.1} s)",
            started.elapsed().as_secs_f64()
        ),
        Ok(status) => format!("sync exited with {status}; the runs that follow may be slower"),
        Err(e) => format!("sync: {e}; the runs that follow may be slower"),
    }
}

/// Pins every thread of this process to `core` (the server gets the other one).
fn pin_this_process(core: usize) -> Result<(), String> {
    let status = std::process::Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &core.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("taskset exited with {status}"))
    }
}

/// The CPU model, as `lscpu` names it.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The folder of a run: given (new or empty), and kept; or temporary, and removed when the run
/// ends, however it ends.
struct WorkDir {
    path: PathBuf,
    temporary: bool,
}

impl WorkDir {
    fn new(given: Option<PathBuf>) -> Result<Self, BenchError> {
        let (path, temporary) = match given {
            Some(path) => {
                let used =
                    std::fs::read_dir(&path).is_ok_and(|mut entries| entries.next().is_some());
                if used {
                    return Err(BenchError::new(format!(
                        "{} is not empty: give a new folder, the suite seeds its own data",
                        path.display()
                    )));
                }
                (path, false)
            }
            None => (
                std::env::temp_dir().join(format!("safehire-bench-{}", uuid::Uuid::now_v7())),
                true,
            ),
        };
        std::fs::create_dir_all(&path)
            .map_err(|e| BenchError::new(format!("{}: {e}", path.display())))?;
        Ok(Self { path, temporary })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
