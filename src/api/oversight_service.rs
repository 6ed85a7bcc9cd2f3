//! OversightService: prosecutors' compliance findings per unit, judged at a moment from what
//! the log, the rosters and the alerts held then, and the audit trail itself, streamed.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use super::{ApiError, AppState, Rpc, convert, deadline};
use crate::audit::{Entry, NewEntry};
use crate::config::Rules;
use crate::org::{Caller, Industry, Organisation, Role};
use crate::oversight::{Finding, UnitResult, evaluate};
use crate::proto;
use crate::proto::oversight_service_server::OversightService;
use crate::store::AuditFilter;

/// Entries a trail query returns unless it asks for fewer.
const TRAIL_DEFAULT: u64 = 10_000;
/// Longest action or outcome filter.
const MAX_WORD: usize = 64;

pub struct OversightApi {
    state: Arc<AppState>,
}

type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

impl OversightApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    async fn report(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::ComplianceRequest,
    ) -> Result<Stream<proto::ComplianceItem>, ApiError> {
        let state = &self.state;
        let now = state.now();
        let as_of = convert::moment("as_of", req.as_of.as_ref())?.unwrap_or(now);
        if as_of > now {
            return Err(ApiError::invalid("as_of", "is in the future"));
        }
        // A moment not yet past ends just before this report's own audit entry, so that the
        // same as_of always sees the same log.
        let own_entry = crate::clock::from_micros(entry.at_micros);
        let as_of = as_of.min(own_entry - time::Duration::microseconds(1));
        let prefix = convert::region_prefix(&req.region_prefix)?;
        let industry = convert::industry(req.industry)?;
        let units: Vec<Organisation> = state
            .orgs
            .all()
            .into_iter()
            .filter(|o| o.role == Role::Employer && o.enrolled_at <= as_of)
            .filter(|o| o.region.starts_with(&prefix))
            .filter(|o| industry.is_none_or(|i| o.industry == i))
            .filter(|o| caller.org.role != Role::Bureau || caller.may_act_for(o))
            .collect();
        let as_of_micros = crate::clock::to_micros(as_of);
        let head = state.store.audit_head_at(as_of_micros).await?;
        entry.outcome = "OK".into();
        entry.detail = format!(
            "as_of={as_of_micros} region={prefix} industry={} units={} head={}",
            industry.map(Industry::label).unwrap_or_default(),
            units.len(),
            head.seq
        );
        state.store.append_audit(entry.clone()).await?;
        let header = proto::ReportHeader {
            as_of: Some(convert::timestamp(as_of)),
            audit_seq: head.seq,
            audit_hash: hex::encode(head.hash),
            region_prefix: prefix,
            industry: industry.map(Industry::code).unwrap_or_default(),
            ..rules_to_proto(&state.rules)
        };
        let (out, items) = mpsc::channel(64);
        tokio::spawn(stream_report(Arc::clone(state), header, units, as_of, out));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(items)))
    }

    async fn trail(
        &self,
        entry: &mut NewEntry,
        filter: AuditFilter,
    ) -> Result<Stream<proto::AuditRecord>, ApiError> {
        entry.outcome = "OK".into();
        self.state.store.append_audit(entry.clone()).await?;
        let (entries, mut read) = mpsc::channel::<Entry>(256);
        let (out, records) = mpsc::channel(256);
        let state = Arc::clone(&self.state);
        let failed = out.clone();
        tokio::spawn(async move {
            if let Err(e) = state.store.walk_audit(filter, entries).await {
                let _ = failed.send(Err(ApiError::Store(e).into())).await;
            }
        });
        let idle = deadline::idle_limit(&self.state);
        let keys = Arc::clone(&self.state);
        // A reader that stops reading ends the walk (and its read transaction, which would
        // otherwise keep the WAL from being checkpointed).
        tokio::spawn(async move {
            while let Some(entry) = read.recv().await {
                if out
                    .send_timeout(Ok(record_to_proto(&keys.keys, entry)), idle)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(
            records,
        )))
    }

    fn audit_filter(req: &proto::AuditQuery) -> Result<AuditFilter, ApiError> {
        let organisation = match req.organisation.trim() {
            "" => None,
            text => Some(crate::identity::Uscc::parse(text)?.as_str().to_string()),
        };
        Ok(AuditFilter {
            organisation,
            from: convert::moment("from", req.from.as_ref())?.map(crate::clock::to_micros),
            to: convert::moment("to", req.to.as_ref())?.map(crate::clock::to_micros),
            action: word("action", &req.action)?,
            outcome: word("outcome", &req.outcome)?,
            subject: None,
            limit: if req.limit == 0 {
                TRAIL_DEFAULT
            } else {
                req.limit
            },
        })
    }
}

/// An action or outcome filter: a plain word, or none.
fn word(field: &str, text: &str) -> Result<Option<String>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_WORD
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(ApiError::invalid(
            field,
            format!(
                "a name like CheckService.Check or RECORD_FOUND, at most {MAX_WORD} characters"
            ),
        ));
    }
    Ok(Some(text.to_string()))
}

fn rules_to_proto(rules: &Rules) -> proto::ReportHeader {
    proto::ReportHeader {
        recheck_interval_days: rules.recheck_interval_days,
        hire_grace_days: rules.hire_grace_days,
        hit_on_staff_days: rules.hit_on_staff_days,
        alert_ack_days: rules.alert_ack_days,
        excess_query_ratio: rules.excess_query_ratio,
        excess_query_minimum: rules.excess_query_minimum,
        ..Default::default()
    }
}

type ReportOut = mpsc::Sender<Result<proto::ComplianceItem, Status>>;

/// Judges each unit in turn (one unit's facts in memory at a time) and streams the report.
async fn stream_report(
    state: Arc<AppState>,
    header: proto::ReportHeader,
    units: Vec<Organisation>,
    as_of: OffsetDateTime,
    out: ReportOut,
) {
    use proto::compliance_item::Item;
    let idle = deadline::idle_limit(&state);
    let send = |item: Item| {
        let out = out.clone();
        async move {
            out.send_timeout(Ok(proto::ComplianceItem { item: Some(item) }), idle)
                .await
                .is_ok()
        }
    };
    if !send(Item::Header(header)).await {
        return;
    }
    let as_of_micros = crate::clock::to_micros(as_of);
    let mut bureaus: BTreeMap<String, proto::GroupSummary> = BTreeMap::new();
    let mut regions: BTreeMap<String, proto::GroupSummary> = BTreeMap::new();
    let mut totals = proto::ReportTotals::default();
    let mut per_finding: BTreeMap<i32, u64> = BTreeMap::new();
    for unit in units {
        let facts = match state
            .store
            .unit_facts(unit.uscc.clone(), as_of_micros)
            .await
        {
            Ok(facts) => facts,
            Err(e) => {
                let _ = out
                    .send_timeout(Err(ApiError::Store(e).into()), deadline::idle_limit(&state))
                    .await;
                return;
            }
        };
        let result = evaluate(&facts, as_of, &state.rules);
        let bureau = unit.supervising_bureau.clone().unwrap_or_default();
        let bureau_name = state.orgs.get(&bureau).map(|b| b.name).unwrap_or_default();
        for (group, key, name) in [
            (&mut bureaus, bureau.clone(), bureau_name),
            (
                &mut regions,
                unit.region.clone(),
                crate::regions::full_name(&unit.region).unwrap_or_default(),
            ),
        ] {
            let summary = group.entry(key.clone()).or_insert(proto::GroupSummary {
                key,
                name,
                ..Default::default()
            });
            add_unit(summary, &result);
        }
        totals.units += 1;
        totals.units_with_findings += u64::from(!result.findings.is_empty());
        totals.current_members += result.current_members;
        totals.checked_in_time += result.checked_in_time;
        for evidence in &result.findings {
            *per_finding.entry(evidence.finding.code()).or_default() += 1;
        }
        if !send(Item::Unit(unit_to_proto(&unit, result))).await {
            return;
        }
    }
    for summary in bureaus.into_values() {
        if !send(Item::Bureau(summary)).await {
            return;
        }
    }
    for summary in regions.into_values() {
        if !send(Item::Region(summary)).await {
            return;
        }
    }
    totals.findings = Finding::ALL
        .iter()
        .map(|f| proto::FindingCount {
            kind: f.code(),
            units: per_finding.get(&f.code()).copied().unwrap_or(0),
        })
        .collect();
    send(Item::Totals(totals)).await;
}

fn add_unit(summary: &mut proto::GroupSummary, result: &UnitResult) {
    summary.units += 1;
    summary.units_with_findings += u64::from(!result.findings.is_empty());
    summary.current_members += result.current_members;
    summary.checked_in_time += result.checked_in_time;
}

fn unit_to_proto(unit: &Organisation, result: UnitResult) -> proto::UnitReport {
    proto::UnitReport {
        uscc: unit.uscc.clone(),
        name: unit.name.clone(),
        region: unit.region.clone(),
        industry: unit.industry.code(),
        supervising_bureau: unit.supervising_bureau.clone().unwrap_or_default(),
        findings: result
            .findings
            .into_iter()
            .map(|e| proto::Finding {
                kind: e.finding.code(),
                count: e.count,
                of: e.of,
                detail: e.detail,
            })
            .collect(),
        checks: result.checks,
        current_members: result.current_members,
        checked_in_time: result.checked_in_time,
    }
}

/// An entry as it leaves the server: the subject as its pseudonym, never the index key.
fn record_to_proto(keys: &crate::keys::Keys, entry: Entry) -> proto::AuditRecord {
    let body = entry.body;
    proto::AuditRecord {
        seq: entry.seq,
        at: Some(convert::timestamp_micros(body.at_micros)),
        caller: body.caller,
        role: body.role,
        action: body.action,
        employer: body.employer,
        subject_hash: body.subject.map(|s| keys.pseudonym(&s)).unwrap_or_default(),
        purpose: body.purpose,
        scope: body.scope,
        outcome: body.outcome,
        check_id: body.check_id,
        registry_version: body.registry_version,
        detail: body.detail,
        hash: hex::encode(entry.hash),
    }
}

#[tonic::async_trait]
impl OversightService for OversightApi {
    type ComplianceReportStream = Stream<proto::ComplianceItem>;
    type ListAuditEntriesStream = Stream<proto::AuditRecord>;
    type WhoCheckedStream = Stream<proto::AuditRecord>;

    async fn compliance_report(
        &self,
        request: Request<proto::ComplianceRequest>,
    ) -> Result<Response<Self::ComplianceReportStream>, Status> {
        let (caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::OVERSIGHT_REPORT)
            .await?;
        let result = self.report(&caller, &mut entry, request.into_inner()).await;
        self.state.finish(entry, result).await
    }

    async fn list_audit_entries(
        &self,
        request: Request<proto::AuditQuery>,
    ) -> Result<Response<Self::ListAuditEntriesStream>, Status> {
        let (_caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::OVERSIGHT_TRAIL)
            .await?;
        let req = request.into_inner();
        let result = match Self::audit_filter(&req) {
            Ok(filter) => {
                entry.detail = format!(
                    "organisation={} action={} outcome={} limit={}",
                    filter.organisation.as_deref().unwrap_or(""),
                    filter.action.as_deref().unwrap_or(""),
                    filter.outcome.as_deref().unwrap_or(""),
                    filter.limit
                );
                self.trail(&mut entry, filter).await
            }
            Err(e) => Err(e),
        };
        self.state.finish(entry, result).await
    }

    async fn who_checked(
        &self,
        request: Request<proto::WhoCheckedRequest>,
    ) -> Result<Response<Self::WhoCheckedStream>, Status> {
        let (_caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::OVERSIGHT_WHO_CHECKED)
            .await?;
        let req = request.into_inner();
        let today = crate::clock::calendar_date(self.state.now());
        let filter =
            convert::identity("subject", req.subject.as_ref(), today).and_then(|(document, _)| {
                let subject = self.state.keys.subject_key(&document);
                entry.subject = Some(subject);
                Ok(AuditFilter {
                    from: convert::moment("from", req.from.as_ref())?.map(crate::clock::to_micros),
                    to: convert::moment("to", req.to.as_ref())?.map(crate::clock::to_micros),
                    subject: Some(subject),
                    limit: u64::MAX >> 1,
                    ..AuditFilter::default()
                })
            });
        let result = match filter {
            Ok(filter) => self.trail(&mut entry, filter).await,
            Err(e) => Err(e),
        };
        self.state.finish(entry, result).await
    }
}
