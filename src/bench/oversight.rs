//! Legal supervision at a province's scale: units enrolled, rosters declared and checks run,
//! all through the API as a bureau would (for its units), then the prosecutor's compliance
//! report over all of it, timed against a full verification of the audit chain on the same
//! server (the one other question that reads the whole log), and "who checked this person",
//! which scans the log because the log keeps no index by subject.
//!
//! Each unit plays a part, so that every rule has work to do: one in twenty never checks, one
//! in twenty checks strangers only, one in twenty checks only half its staff; the rest check
//! each member several times (hire, then re-checks). A few members are in the registry.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use time::macros::date;

use super::BenchError;
use super::data::{self, Population};
use super::server::ServerProcess;
use crate::devset::dev_orgs;
use crate::org::{Industry, Role};
use crate::proto;
use crate::proto::audit_service_client::AuditServiceClient;
use crate::proto::check_batch_request::Item as BatchItem;
use crate::proto::check_service_client::CheckServiceClient;
use crate::proto::compliance_item::Item as ReportItem;
use crate::proto::organisation_service_client::OrganisationServiceClient;
use crate::proto::oversight_service_client::OversightServiceClient;
use crate::proto::roster_service_client::RosterServiceClient;
use crate::proto::roster_upload::Item as RosterItem;
use crate::synth::Generator;

/// Registry records imported first, so that some members are hits.
const REGISTRY_RECORDS: u64 = 10_000;
/// One member in this many (in the units that check) is a person in the registry.
const MEMBER_HIT_EVERY: u64 = 250;
/// Unary enrolments in flight, and roster uploads in flight.
const ENROL_TASKS: usize = 16;
const ROSTER_TASKS: usize = 8;
/// Batches in flight: the server's default per-organisation limit.
const BATCH_TASKS: usize = 4;
/// Members checked were hired this many days before the run at most (fewer than the hire grace days).
const HIRED_WITHIN_DAYS: u64 = 5;
/// Rows per batch message.
const CHUNK_ROWS: u64 = 500;
/// Strangers (people a unit checks but never employed) are applicants from this index on,
/// past every roster member.
const STRANGERS_FROM: u64 = data::CAPACITY / 2;

/// The size of the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub units: u64,
    pub members_per_unit: u64,
    /// Check entries to write in all, spread over the units that check.
    pub checks: u64,
}

/// What a unit does in the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    NeverChecks,
    ChecksStrangers,
    ChecksHalf,
    ChecksAll,
}

fn part(unit: u64) -> Part {
    match unit % 20 {
        0 => Part::NeverChecks,
        1 => Part::ChecksStrangers,
        2 => Part::ChecksHalf,
        _ => Part::ChecksAll,
    }
}

/// A unit of the scenario: its code, and the region it was enrolled in.
#[derive(Debug, Clone)]
struct Unit {
    uscc: String,
    region: String,
}

/// The seeded server's contents.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub units: u64,
    pub members: u64,
    pub checks: u64,
    pub seconds: f64,
    /// A city (4-digit prefix) holding some of the units, for the filtered report.
    pub city: String,
    /// A member who was checked, for "who checked".
    pub checked_member: proto::Identity,
}

/// Enrols the units, declares their rosters and runs their checks, as the dev bureau.
pub async fn seed(
    server: &ServerProcess,
    scale: Scale,
    say: &impl Fn(String),
) -> Result<Seeded, BenchError> {
    if scale.units * scale.members_per_unit > STRANGERS_FROM {
        return Err(BenchError::new(format!(
            "oversight: at most {STRANGERS_FROM} roster members in all"
        )));
    }
    let started = Instant::now();
    super::import::import(server, 0..REGISTRY_RECORDS).await?;
    let units = Arc::new(enrol(server, scale.units).await?);
    say(format!(
        "oversight: enrolled {} units ({:.0} s)",
        units.len(),
        started.elapsed().as_secs_f64()
    ));
    let members = declare_rosters(server, &units, scale.members_per_unit).await?;
    say(format!(
        "oversight: declared {members} roster members ({:.0} s)",
        started.elapsed().as_secs_f64()
    ));
    let checking = units
        .iter()
        .enumerate()
        .filter(|(u, _)| part(*u as u64) != Part::NeverChecks)
        .count() as u64;
    let per_unit = scale.checks.div_ceil(checking.max(1));
    if STRANGERS_FROM + (scale.units / 20 + 1) * per_unit > data::CAPACITY {
        return Err(BenchError::new(
            "oversight: too many checks per unit for distinct strangers",
        ));
    }
    let checks = run_checks(server, &units, scale.members_per_unit, per_unit).await?;
    say(format!(
        "oversight: ran {checks} checks for {checking} units ({:.0} s)",
        started.elapsed().as_secs_f64()
    ));
    let city = units
        .first()
        .map(|u| u.region[..4].to_string())
        .unwrap_or_default();
    Ok(Seeded {
        units: units.len() as u64,
        members,
        checks,
        seconds: started.elapsed().as_secs_f64(),
        city,
        checked_member: member(3, 0, scale.members_per_unit),
    })
}

/// Unit `unit`'s member `k`: an applicant with no record, or now and then a registry person.
fn member(unit: u64, k: u64, members_per_unit: u64) -> proto::Identity {
    let n = unit * members_per_unit + k;
    if n.is_multiple_of(MEMBER_HIT_EVERY) && part(unit) == Part::ChecksAll {
        data::identity(Population::Registry, n % REGISTRY_RECORDS)
    } else {
        data::identity(Population::Applicants, n)
    }
}

/// Unit `unit`'s member `k` was hired in the last days before `today` when the unit checks
/// them (the checks the seeding runs now fall within the hire grace period), and years ago
/// when it never does (so they are staff never checked).
fn hire_date(today: time::Date, unit: u64, k: u64, members_per_unit: u64) -> String {
    let n = unit * members_per_unit + k;
    let checked = match part(unit) {
        Part::ChecksAll => true,
        Part::ChecksHalf => k < members_per_unit.div_ceil(2),
        Part::NeverChecks | Part::ChecksStrangers => false,
    };
    let days_ago = if checked {
        n.wrapping_mul(37) % HIRED_WITHIN_DAYS
    } else {
        30 + n.wrapping_mul(37) % 3_650
    };
    crate::roster::date_text(today - time::Duration::days(days_ago as i64))
}

fn failed(what: &'static str) -> impl Fn(tonic::Status) -> BenchError {
    move |s| BenchError::new(format!("{what}: {:?}: {}", s.code(), s.message()))
}

async fn enrol(server: &ServerProcess, count: u64) -> Result<Vec<Unit>, BenchError> {
    let bureau = dev_orgs()
        .into_iter()
        .find(|o| o.role == Role::Bureau)
        .map(|o| o.uscc)
        .ok_or_else(|| BenchError::new("the dev set has no bureau"))?;
    let mut generator = Generator::new(20_261_124, date!(2026 - 11 - 24));
    let mut seen = HashSet::new();
    let mut requests = Vec::with_capacity(count as usize);
    let mut index = 0;
    while (requests.len() as u64) < count {
        let row = generator.org(index);
        index += 1;
        if !seen.insert(row.uscc.clone()) {
            continue;
        }
        requests.push(proto::EnrollRequest {
            uscc: row.uscc,
            name: row.name,
            role: proto::Role::Employer as i32,
            region: row.region,
            industry: Industry::parse(row.industry).map_or(0, Industry::code),
            supervising_bureau: bureau.clone(),
        });
    }
    let requests = Arc::new(requests);
    let channel = server.channel(Role::Bureau).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..ENROL_TASKS {
        let (requests, channel) = (Arc::clone(&requests), channel.clone());
        tasks.spawn(async move {
            let mut client = OrganisationServiceClient::new(channel);
            for request in requests.iter().skip(task).step_by(ENROL_TASKS) {
                client
                    .enroll(request.clone())
                    .await
                    .map_err(failed("enrol"))?;
            }
            Ok::<_, BenchError>(())
        });
    }
    join_all(tasks).await?;
    Ok(requests
        .iter()
        .map(|r| Unit {
            uscc: r.uscc.clone(),
            region: r.region.clone(),
        })
        .collect())
}

async fn declare_rosters(
    server: &ServerProcess,
    units: &Arc<Vec<Unit>>,
    per_unit: u64,
) -> Result<u64, BenchError> {
    let today = time::OffsetDateTime::now_utc().date();
    let channel = server.channel(Role::Bureau).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..ROSTER_TASKS {
        let (units, channel) = (Arc::clone(units), channel.clone());
        tasks.spawn(async move {
            let mut client = RosterServiceClient::new(channel);
            let mut declared = 0;
            for (u, unit) in units.iter().enumerate().skip(task).step_by(ROSTER_TASKS) {
                let u = u as u64;
                let header = proto::RosterUpload {
                    item: Some(RosterItem::Header(proto::RosterHeader {
                        on_behalf_of: unit.uscc.clone(),
                        ..Default::default()
                    })),
                };
                let members = proto::RosterUpload {
                    item: Some(RosterItem::Members(proto::RosterMembers {
                        members: (0..per_unit)
                            .map(|k| proto::RosterMember {
                                row: k + 1,
                                subject: Some(member(u, k, per_unit)),
                                staff_ref: format!("S{k:05}"),
                                hire_date: hire_date(today, u, k, per_unit),
                                departure_date: String::new(),
                            })
                            .collect(),
                    })),
                };
                let summary = client
                    .replace_roster(tokio_stream::iter([header, members]))
                    .await
                    .map_err(failed("roster"))?
                    .into_inner();
                if summary.added != per_unit {
                    return Err(BenchError::new(format!(
                        "roster of {}: {} of {per_unit} members added",
                        unit.uscc, summary.added
                    )));
                }
                declared += summary.added;
            }
            Ok::<_, BenchError>(declared)
        });
    }
    Ok(join_all(tasks).await?.into_iter().sum())
}

/// The subject of unit `u`'s check number `j`.
fn checked(u: u64, j: u64, per_unit: u64, members_per_unit: u64) -> proto::Identity {
    match part(u) {
        Part::ChecksStrangers => data::identity(
            Population::Applicants,
            STRANGERS_FROM + u / 20 * per_unit + j,
        ),
        Part::ChecksHalf => member(u, j % members_per_unit.div_ceil(2), members_per_unit),
        Part::ChecksAll | Part::NeverChecks => member(u, j % members_per_unit, members_per_unit),
    }
}

async fn run_checks(
    server: &ServerProcess,
    units: &Arc<Vec<Unit>>,
    members_per_unit: u64,
    per_unit: u64,
) -> Result<u64, BenchError> {
    let channel = server.channel(Role::Bureau).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..BATCH_TASKS {
        let (units, channel) = (Arc::clone(units), channel.clone());
        tasks.spawn(async move {
            let mut client = CheckServiceClient::new(channel);
            let mut answered = 0;
            for (u, unit) in units.iter().enumerate().skip(task).step_by(BATCH_TASKS) {
                let u = u as u64;
                if part(u) == Part::NeverChecks {
                    continue;
                }
                // Strangers are applicants (a yearly re-check is only for roster members).
                let (purpose, consent_policy, consent_ref) = if part(u) == Part::ChecksStrangers {
                    (
                        proto::Purpose::PreHire,
                        proto::ConsentPolicy::Batch,
                        "CONSENT-BENCH-001",
                    )
                } else {
                    (
                        proto::Purpose::Periodic,
                        proto::ConsentPolicy::NotRequired,
                        "",
                    )
                };
                let header = proto::CheckBatchRequest {
                    item: Some(BatchItem::Header(proto::BatchHeader {
                        batch_id: format!("oversight-{u}"),
                        purpose: purpose as i32,
                        scope: proto::Scope::Art62 as i32,
                        consent_policy: consent_policy as i32,
                        consent_ref: consent_ref.into(),
                        on_behalf_of: unit.uscc.clone(),
                    })),
                };
                let chunks = (0..per_unit)
                    .step_by(CHUNK_ROWS as usize)
                    .map(move |first| proto::CheckBatchRequest {
                        item: Some(BatchItem::Rows(proto::BatchRows {
                            rows: (first..(first + CHUNK_ROWS).min(per_unit))
                                .map(|j| proto::BatchRow {
                                    row: j + 1,
                                    subject: Some(checked(u, j, per_unit, members_per_unit)),
                                    consent_ref: String::new(),
                                })
                                .collect(),
                        })),
                    });
                let mut responses = client
                    .check_batch(tokio_stream::iter(std::iter::once(header).chain(chunks)))
                    .await
                    .map_err(failed("batch"))?
                    .into_inner();
                let mut rows = 0;
                while let Some(message) = responses.message().await.map_err(failed("batch"))? {
                    if let Some(proto::check_batch_response::Item::Results(results)) = message.item
                    {
                        for result in results.results {
                            if !matches!(result.result, Some(proto::batch_result::Result::Check(_)))
                            {
                                return Err(BenchError::new(format!(
                                    "batch for {}: row {} was refused",
                                    unit.uscc, result.row
                                )));
                            }
                            rows += 1;
                        }
                    }
                }
                if rows != per_unit {
                    return Err(BenchError::new(format!(
                        "batch for {}: {rows} of {per_unit} rows answered",
                        unit.uscc
                    )));
                }
                answered += rows;
            }
            Ok::<_, BenchError>(answered)
        });
    }
    Ok(join_all(tasks).await?.into_iter().sum())
}

async fn join_all<T: 'static>(
    mut tasks: tokio::task::JoinSet<Result<T, BenchError>>,
) -> Result<Vec<T>, BenchError> {
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        out.push(joined.map_err(|e| BenchError::new(format!("task: {e}")))??);
    }
    Ok(out)
}

/// The timed questions over a seeded server.
#[derive(Debug, Clone)]
pub struct Timings {
    pub audit_entries: u64,
    pub verify_seconds: f64,
    pub report_seconds: f64,
    pub report_first_unit_seconds: f64,
    pub report_units: u64,
    pub units_with_findings: u64,
    /// Units per finding, by the finding's name.
    pub findings: Vec<(String, u64)>,
    pub current_members: u64,
    pub city_report_seconds: f64,
    pub city_units: u64,
    pub who_checked_seconds: f64,
    pub who_checked_entries: u64,
    pub proofs: ProofTimes,
}

/// Latencies of the verifiable log's proofs on the seeded log, in milliseconds: each call is
/// a whole audited RPC (its own audit entry included).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ProofTimes {
    pub samples: usize,
    pub inclusion_p50_ms: f64,
    pub inclusion_p99_ms: f64,
    pub consistency_p50_ms: f64,
    pub consistency_p99_ms: f64,
}

/// Proofs taken for the timings, spread over the whole log.
const PROOF_SAMPLES: u64 = 200;

async fn measure_proofs(channel: tonic::transport::Channel) -> Result<ProofTimes, BenchError> {
    let mut audit = AuditServiceClient::new(channel);
    let size = audit
        .checkpoint(proto::CheckpointRequest { size: 0 })
        .await
        .map_err(failed("checkpoint"))?
        .into_inner()
        .size;
    if size < 2 {
        return Ok(ProofTimes::default());
    }
    let (mut inclusion, mut consistency) = (Vec::new(), Vec::new());
    for i in 0..PROOF_SAMPLES {
        // A stride coprime to most sizes visits the log evenly without a random generator.
        let index = (i * 7_919_003 + 13) % size;
        let started = Instant::now();
        audit
            .inclusion_proof(proto::InclusionProofRequest {
                entry: Some(proto::inclusion_proof_request::Entry::Index(index)),
            })
            .await
            .map_err(failed("inclusion proof"))?;
        inclusion.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        audit
            .consistency_proof(proto::ConsistencyProofRequest {
                old_size: index.max(1),
                new_size: size,
            })
            .await
            .map_err(failed("consistency proof"))?;
        consistency.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let (i50, i99) = percentiles(&mut inclusion);
    let (c50, c99) = percentiles(&mut consistency);
    Ok(ProofTimes {
        samples: inclusion.len(),
        inclusion_p50_ms: i50,
        inclusion_p99_ms: i99,
        consistency_p50_ms: c50,
        consistency_p99_ms: c99,
    })
}

fn percentiles(ms: &mut [f64]) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

/// Verifies the whole chain, then runs the report for everything and for one city, then asks
/// who checked one member; as the dev prosecutor, on one connection.
pub async fn measure(server: &ServerProcess, seeded: &Seeded) -> Result<Timings, BenchError> {
    let channel = server.channel(Role::Prosecutor).await?;
    let started = Instant::now();
    let verified = AuditServiceClient::new(channel.clone())
        .verify(proto::VerifyRequest::default())
        .await
        .map_err(failed("verify"))?
        .into_inner();
    let verify_seconds = started.elapsed().as_secs_f64();
    if !verified.ok {
        return Err(BenchError::new("the audit chain did not verify"));
    }
    let proofs = measure_proofs(channel.clone()).await?;
    let mut oversight = OversightServiceClient::new(channel);
    let everything = report(&mut oversight, "").await?;
    if everything.units < seeded.units {
        return Err(BenchError::new(format!(
            "the report judged {} units of {}",
            everything.units, seeded.units
        )));
    }
    let city = report(&mut oversight, &seeded.city).await?;
    let started = Instant::now();
    let mut trail = oversight
        .who_checked(proto::WhoCheckedRequest {
            subject: Some(seeded.checked_member.clone()),
            from: None,
            to: None,
        })
        .await
        .map_err(failed("who checked"))?
        .into_inner();
    let mut who_checked_entries = 0;
    while trail
        .message()
        .await
        .map_err(failed("who checked"))?
        .is_some()
    {
        who_checked_entries += 1;
    }
    let who_checked_seconds = started.elapsed().as_secs_f64();
    if who_checked_entries == 0 {
        return Err(BenchError::new(
            "who checked found no check of a checked member",
        ));
    }
    Ok(Timings {
        audit_entries: verified.entries_checked,
        verify_seconds,
        report_seconds: everything.seconds,
        report_first_unit_seconds: everything.first_unit_seconds,
        report_units: everything.units,
        units_with_findings: everything.units_with_findings,
        findings: everything.findings,
        current_members: everything.current_members,
        city_report_seconds: city.seconds,
        city_units: city.units,
        who_checked_seconds,
        who_checked_entries,
        proofs,
    })
}

struct ReportRun {
    seconds: f64,
    first_unit_seconds: f64,
    units: u64,
    units_with_findings: u64,
    findings: Vec<(String, u64)>,
    current_members: u64,
}

async fn report(
    client: &mut OversightServiceClient<tonic::transport::Channel>,
    region_prefix: &str,
) -> Result<ReportRun, BenchError> {
    let started = Instant::now();
    let mut items = client
        .compliance_report(proto::ComplianceRequest {
            as_of: None,
            region_prefix: region_prefix.to_string(),
            industry: 0,
        })
        .await
        .map_err(failed("report"))?
        .into_inner();
    let mut first_unit_seconds = 0.0;
    let mut units = 0;
    let mut totals = None;
    while let Some(item) = items.message().await.map_err(failed("report"))? {
        match item.item {
            Some(ReportItem::Unit(_)) => {
                if units == 0 {
                    first_unit_seconds = started.elapsed().as_secs_f64();
                }
                units += 1;
            }
            Some(ReportItem::Totals(t)) => totals = Some(t),
            _ => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let totals = totals.ok_or_else(|| BenchError::new("the report ended without its totals"))?;
    if totals.units != units {
        return Err(BenchError::new(format!(
            "the report listed {units} units and totalled {}",
            totals.units
        )));
    }
    Ok(ReportRun {
        seconds,
        first_unit_seconds,
        units,
        units_with_findings: totals.units_with_findings,
        findings: totals
            .findings
            .iter()
            .map(|f| {
                let name = proto::FindingKind::try_from(f.kind)
                    .map_or("UNKNOWN", |k| k.as_str_name())
                    .trim_start_matches("FINDING_KIND_")
                    .to_string();
                (name, f.units)
            })
            .collect(),
        current_members: totals.current_members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_is_played_and_strangers_are_never_members() {
        let parts: HashSet<_> = (0..20).map(|u| format!("{:?}", part(u))).collect();
        assert_eq!(parts.len(), 4);
        let members: HashSet<String> = (0..40)
            .flat_map(|u| (0..10).map(move |k| member(u, k, 10).doc_number))
            .collect();
        let strangers = (0..50).map(|j| checked(21, j, 50, 10).doc_number);
        assert!(strangers.into_iter().all(|s| !members.contains(&s)));
        let registry = |u: u64| {
            (0..10)
                .filter(|&k| member(u, k, 10).doc_number.starts_with("110101"))
                .count()
        };
        assert_eq!(registry(25), 1, "member 250 is a registry person");
        assert_eq!(registry(0), 0, "member 0 would be, but unit 0 never checks");
        let today = date!(2026 - 11 - 24);
        assert_eq!(hire_date(today, 3, 0, 10), "2026-11-24");
        assert!(hire_date(today, 0, 0, 10).as_str() < "2026-10-26");
    }
}
