//! Employer (and bureau) pages: a pre-hire check, a staff file checked or declared as the
//! roster with a results file to download, the roster with who is due for the yearly
//! re-check, alerts to acknowledge, reviews and disputes. Each is one call (or one stream) to
//! the service the gRPC API serves.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Form, Multipart, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use tokio_stream::StreamExt;

use super::Portal;
use super::calls::{collect, request, traced};
use super::page::{LangQuery, Viewer, link, moment, short};
use crate::cli::staff_file::{Line, StaffFile, StaffRow};
use crate::i18n::Lang;
use crate::identity::DocType;
use crate::org::Role;
use crate::proto;
use crate::proto::alert_service_server::AlertService;
use crate::proto::check_service_server::CheckService;
use crate::proto::review_service_server::ReviewService;
use crate::proto::roster_service_server::RosterService;
use crate::tabular::{Encoding, chinese_header, write_csv};
use crate::tls::PeerInfo;

/// Results files kept for download, and for how long: long enough to click the link, short
/// enough that the server does not become a store of them.
const RESULT_FILES_KEPT: usize = 32;
const RESULT_FILE_LIFETIME: Duration = Duration::from_secs(30 * 60);
const RESULTS_HEADER: [&str; 6] = [
    "row",
    "staff_ref",
    "outcome",
    "check_id",
    "checked_at",
    "error",
];

/// Recent batches' results files, each only for the certificate that uploaded the batch. They
/// hold row numbers, staff references, outcomes and receipts: no identity.
#[derive(Default)]
pub struct ResultFiles {
    files: Mutex<VecDeque<ResultFile>>,
}

/// (certificate/batch key, when it was made, the file).
type ResultFile = (String, Instant, Arc<Vec<u8>>);

impl ResultFiles {
    fn key(peer: &PeerInfo, batch_id: &str) -> String {
        let fingerprint = peer
            .cert
            .as_ref()
            .map_or("", |c| c.fingerprint_sha256.as_str());
        format!("{fingerprint}/{batch_id}")
    }

    fn put(&self, peer: &PeerInfo, batch_id: &str, file: Vec<u8>) {
        let mut files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        files.retain(|(_, at, _)| at.elapsed() < RESULT_FILE_LIFETIME);
        while files.len() >= RESULT_FILES_KEPT {
            files.pop_front();
        }
        files.push_back((Self::key(peer, batch_id), Instant::now(), Arc::new(file)));
    }

    fn get(&self, peer: &PeerInfo, batch_id: &str) -> Option<Arc<Vec<u8>>> {
        let key = Self::key(peer, batch_id);
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(k, at, _)| *k == key && at.elapsed() < RESULT_FILE_LIFETIME)
            .map(|(_, _, file)| Arc::clone(file))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CheckForm {
    csrf: String,
    lang: String,
    doc_type: String,
    doc_number: String,
    name: String,
    consent_ref: String,
    scope: String,
    on_behalf_of: String,
}

fn scope_code(text: &str) -> i32 {
    match text {
        "SEXUAL" => proto::Scope::Sexual as i32,
        _ => proto::Scope::Art62 as i32,
    }
}

fn outcome_name(code: i32) -> &'static str {
    proto::Outcome::try_from(code).map_or("UNSPECIFIED", |o| short(o.as_str_name(), "OUTCOME_"))
}

fn on_behalf_field(viewer: &Viewer<'_>) -> Markup {
    html! {
        @if viewer.role() == Some(Role::Bureau) {
            label { (viewer.t("form.on_behalf_of"))
                input name="on_behalf_of" required autocomplete="off" maxlength="18";
            }
        }
    }
}

fn check_form_markup(viewer: &Viewer<'_>) -> Markup {
    html! {
        form method="post" action="/check" autocomplete="off" {
            (viewer.form_fields())
            (on_behalf_field(viewer))
            label { (viewer.t("form.doc_type"))
                select name="doc_type" {
                    @for doc_type in DocType::ALL {
                        option value=(doc_type.slug()) {
                            @if viewer.lang == Lang::Zh { (doc_type.name_zh()) } @else { (doc_type.slug()) }
                        }
                    }
                }
            }
            label { (viewer.t("form.doc_number"))
                input name="doc_number" required autocomplete="off" maxlength="64" spellcheck="false";
            }
            label { (viewer.t("form.name"))
                input name="name" required autocomplete="off" maxlength="128";
            }
            label { (viewer.t("form.consent_ref"))
                input name="consent_ref" required autocomplete="off" maxlength="64";
                small { (viewer.t("form.consent_hint")) }
            }
            label { (viewer.t("form.scope"))
                select name="scope" {
                    option value="ART62" { (viewer.t("scope.ART62")) }
                    option value="SEXUAL" { (viewer.t("scope.SEXUAL")) }
                }
            }
            button type="submit" { (viewer.t("form.submit_check")) }
        }
    }
}

pub async fn check_form(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Query(query): Query<LangQuery>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, query.lang());
    viewer.page("/check", &viewer.t("nav.check"), check_form_markup(&viewer))
}

pub async fn check_submit(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Form(form): Form<CheckForm>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, Lang::parse(&form.lang));
    if !portal.csrf.verify(&peer, &form.csrf) {
        return viewer.bad_form("/check", "error.csrf");
    }
    let doc_type = DocType::from_slug(&form.doc_type).map_or(0, |d| i32::from(d.code()));
    let message = proto::CheckRequest {
        subject: Some(proto::Identity {
            doc_type,
            doc_number: form.doc_number,
            name: form.name,
        }),
        purpose: proto::Purpose::PreHire as i32,
        scope: scope_code(&form.scope),
        consent_ref: form.consent_ref,
        on_behalf_of: form.on_behalf_of,
    };
    let answered = traced(
        "/safehire.v1.CheckService/Check",
        portal.services.check.check(request(&peer, message)),
    )
    .await;
    let answer = match answered {
        Ok(answer) => answer.into_inner(),
        Err(status) => return viewer.refused("/check", &status),
    };
    let outcome = outcome_name(answer.outcome);
    let body = html! {
        section.answer.(outcome.to_ascii_lowercase()) data-outcome=(outcome) {
            p.outcome { (viewer.t(&format!("outcome.{outcome}"))) }
            table.facts {
                tr { th { (viewer.t("result.receipt")) } td { code.receipt { (answer.check_id) } } }
                tr { th { (viewer.t("result.checked_at")) } td { (moment(answer.checked_at.as_ref())) } }
                tr { th { (viewer.t("result.registry_version")) } td { (answer.registry_version) } }
                @if answer.review_id > 0 {
                    tr { th { (viewer.t("result.review_id")) } td { (answer.review_id) } }
                }
            }
            p.hint { (viewer.t("result.as_of_note")) }
        }
        h3 { (viewer.t("nav.check")) }
        (check_form_markup(&viewer))
    };
    viewer.page("/check", &viewer.t("result.title"), body)
}

fn staff_form_markup(viewer: &Viewer<'_>) -> Markup {
    html! {
        form method="post" action="/staff" enctype="multipart/form-data" {
            (viewer.form_fields())
            (on_behalf_field(viewer))
            label { (viewer.t("form.file"))
                input type="file" name="file" required accept=".csv,.xlsx";
                small { (viewer.t("form.file_hint")) }
            }
            fieldset {
                legend { (viewer.t("form.mode")) }
                label.inline { input type="radio" name="mode" value="pre_hire" checked; (viewer.t("mode.pre_hire")) }
                label.inline { input type="radio" name="mode" value="roster"; (viewer.t("mode.roster")) }
            }
            label { (viewer.t("form.consent_ref"))
                input name="consent_ref" autocomplete="off" maxlength="64";
                small { (viewer.t("form.consent_hint")) }
            }
            button type="submit" { (viewer.t("form.upload")) }
        }
    }
}

pub async fn staff_form(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Query(query): Query<LangQuery>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, query.lang());
    viewer.page("/staff", &viewer.t("nav.staff"), staff_form_markup(&viewer))
}

/// An upload as the form sent it.
#[derive(Default)]
struct Upload {
    fields: HashMap<String, String>,
    file_name: String,
    file: Vec<u8>,
}

async fn read_upload(mut multipart: Multipart) -> Option<Upload> {
    let mut upload = Upload::default();
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            // Only the extension matters (CSV or .xlsx); the name itself could be anything.
            let extension = field
                .file_name()
                .and_then(|n| n.rsplit_once('.'))
                .map(|(_, ext)| ext.to_ascii_lowercase())
                .unwrap_or_default();
            upload.file_name = format!("upload.{extension}");
            upload.file = field.bytes().await.ok()?.to_vec();
        } else {
            upload.fields.insert(name, field.text().await.ok()?);
        }
    }
    Some(upload)
}

pub async fn staff_upload(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    multipart: Multipart,
) -> Response {
    let upload = read_upload(multipart).await.unwrap_or_default();
    let field = |name: &str| upload.fields.get(name).cloned().unwrap_or_default();
    let viewer = Viewer::new(&portal, &peer, Lang::parse(&field("lang")));
    if !portal.csrf.verify(&peer, &field("csrf")) {
        return viewer.bad_form("/staff", "error.csrf");
    }
    if upload.file.is_empty() {
        return viewer.bad_form("/staff", "error.bad_form");
    }
    let (lines, rows, staff_ref_column) = match read_staff(&upload.file_name, upload.file).await {
        Ok(read) => read,
        Err(message) => {
            return viewer.refused("/staff", &tonic::Status::invalid_argument(message));
        }
    };
    if field("mode") == "roster" {
        declare_roster(&portal, &viewer, &field("on_behalf_of"), rows).await
    } else {
        let header = BatchInput {
            on_behalf_of: field("on_behalf_of"),
            consent_ref: field("consent_ref"),
        };
        check_batch(&portal, &viewer, header, lines, rows, staff_ref_column).await
    }
}

/// Every line of the file and the rows to send, read by the command line's own reader.
async fn read_staff(
    name: &str,
    bytes: Vec<u8>,
) -> Result<(Vec<Line>, Vec<StaffRow>, Option<usize>), String> {
    let file = StaffFile::from_bytes(name, bytes).map_err(|e| e.message)?;
    let staff_ref = file
        .header
        .iter()
        .position(|h| crate::tabular::header_names(h, "staff_ref"));
    let mut chunks = file.chunks(1_000);
    let (mut lines, mut rows) = (Vec::new(), Vec::new());
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.map_err(|e| e.message)?;
        lines.extend(chunk.lines);
        rows.extend(chunk.rows);
    }
    Ok((lines, rows, staff_ref))
}

struct BatchInput {
    on_behalf_of: String,
    consent_ref: String,
}

async fn check_batch(
    portal: &Arc<Portal>,
    viewer: &Viewer<'_>,
    input: BatchInput,
    lines: Vec<Line>,
    rows: Vec<StaffRow>,
    staff_ref_column: Option<usize>,
) -> Response {
    let batch_id = uuid::Uuid::now_v7().to_string();
    let consent_policy = if input.consent_ref.trim().is_empty() {
        proto::ConsentPolicy::PerRow
    } else {
        proto::ConsentPolicy::Batch
    };
    let mut messages = vec![proto::CheckBatchRequest {
        item: Some(proto::check_batch_request::Item::Header(
            proto::BatchHeader {
                batch_id: batch_id.clone(),
                purpose: proto::Purpose::PreHire as i32,
                scope: proto::Scope::Art62 as i32,
                consent_policy: consent_policy as i32,
                consent_ref: input.consent_ref,
                on_behalf_of: input.on_behalf_of,
            },
        )),
    }];
    let chunk_rows = portal.state.limits.max_batch_chunk_rows.max(1);
    let batch_rows: Vec<proto::BatchRow> = rows
        .into_iter()
        .map(|row| proto::BatchRow {
            row: row.number,
            subject: Some(row.identity),
            consent_ref: row.consent_ref,
        })
        .collect();
    for chunk in batch_rows.chunks(chunk_rows) {
        messages.push(proto::CheckBatchRequest {
            item: Some(proto::check_batch_request::Item::Rows(proto::BatchRows {
                rows: chunk.to_vec(),
            })),
        });
    }
    let stream = portal.services.stream_of(messages);
    let answered = traced(
        "/safehire.v1.CheckService/CheckBatch",
        portal
            .services
            .check
            .check_batch(request(viewer.peer, stream)),
    )
    .await;
    let responses = match answered {
        Ok(responses) => responses.into_inner(),
        Err(status) => return viewer.refused("/staff", &status),
    };
    // The page is sent as the results come: a progress line per answered chunk, then the
    // summary, the table and the download form (no script needed for progress).
    let (head, foot) = viewer.page_parts("/staff", &viewer.t("staff.summary"));
    let (sender, body) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, Infallible>>(16);
    let portal = Arc::clone(portal);
    let peer = viewer.peer.clone();
    let lang = viewer.lang;
    tokio::spawn(async move {
        let send = |text: String| {
            let sender = sender.clone();
            async move { sender.send(Ok(bytes::Bytes::from(text))).await.is_ok() }
        };
        let viewer = Viewer::new(&portal, &peer, lang);
        let total = lines.len();
        if !send(format!("{head}<div class=\"progress\">")).await {
            return;
        }
        let mut results: HashMap<u64, proto::BatchResult> = HashMap::new();
        let mut summary = proto::BatchSummary::default();
        let mut failure = None;
        let mut responses = std::pin::pin!(responses);
        while let Some(response) = responses.next().await {
            match response.map(|r| r.item) {
                Ok(Some(proto::check_batch_response::Item::Results(r))) => {
                    results.extend(r.results.into_iter().map(|r| (r.row, r)));
                    let line = html! {
                        p.progress-line { (viewer.t("staff.progress")) " " (results.len()) " / " (total) }
                    };
                    if !send(line.into_string()).await {
                        return;
                    }
                }
                Ok(Some(proto::check_batch_response::Item::Summary(s))) => summary = s,
                Ok(_) => {}
                Err(status) => {
                    failure = Some(status);
                    break;
                }
            }
        }
        let answered = Answered {
            results,
            summary,
            failure,
        };
        let rest = batch_results(
            &portal,
            &viewer,
            &lines,
            &answered,
            staff_ref_column,
            &batch_id,
        );
        let _ = send(format!("</div>{}{foot}", rest.into_string())).await;
    });
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body)),
    )
        .into_response()
}

/// What the batch stream answered: each row's result, the summary, or why it ended early.
struct Answered {
    results: HashMap<u64, proto::BatchResult>,
    summary: proto::BatchSummary,
    failure: Option<tonic::Status>,
}

/// The end of a batch's page: its summary, the results file to download and the table.
fn batch_results(
    portal: &Portal,
    viewer: &Viewer<'_>,
    lines: &[Line],
    answered: &Answered,
    staff_ref_column: Option<usize>,
    batch_id: &str,
) -> Markup {
    let Answered {
        results,
        summary,
        failure,
    } = answered;
    let table: Vec<Vec<String>> = lines
        .iter()
        .map(|line| result_row(line, results.get(&line.number), staff_ref_column))
        .collect();
    let header: Vec<&str> = RESULTS_HEADER
        .iter()
        .map(|h| match viewer.lang {
            Lang::Zh => chinese_header(h),
            Lang::En => h,
        })
        .collect();
    let mut file = Vec::new();
    // UTF-8 with a byte-order mark: what Excel and WPS open without garbling Chinese.
    let written = write_csv(&mut file, &header, table.clone(), Encoding::Utf8, true).is_ok();
    if written {
        portal.results.put(viewer.peer, batch_id, file);
    }
    let local_errors = lines.iter().filter(|l| l.problem.is_some()).count();
    html! {
        @if let Some(status) = failure {
            div.error role="alert" {
                h2 { (viewer.t("error.refused")) }
                p { code { (format!("{:?}", status.code())) } " " (status.message()) }
            }
        }
        section.summary {
            table.facts {
                tr { th { (viewer.t("staff.rows")) } td #rows { (lines.len()) } }
                tr { th { (viewer.t("outcome.NO_RECORD")) } td #no-record { (summary.no_record) } }
                tr { th { (viewer.t("outcome.RECORD_FOUND")) } td #record-found { (summary.record_found) } }
                @if summary.needs_review > 0 {
                    tr { th { (viewer.t("outcome.NEEDS_REVIEW")) } td { (summary.needs_review) } }
                }
                tr { th { (viewer.t("staff.errors")) } td #errors { (summary.errors + local_errors as u64) } }
            }
            @if written {
                form method="post" action="/staff/results" {
                    (viewer.form_fields())
                    input type="hidden" name="batch_id" value=(batch_id);
                    button #download type="submit" { (viewer.t("form.download")) }
                }
            }
        }
        table.rows {
            thead { tr { @for h in &header { th { (h) } } } }
            tbody {
                @for row in &table {
                    tr { @for cell in row { td { (cell) } } }
                }
            }
        }
    }
}

fn result_row(
    line: &Line,
    result: Option<&proto::BatchResult>,
    staff_ref: Option<usize>,
) -> Vec<String> {
    let staff_ref = staff_ref
        .and_then(|i| line.fields.get(i))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mut row = vec![line.number.to_string(), staff_ref];
    match (&line.problem, result.and_then(|r| r.result.as_ref())) {
        (Some(problem), _) => row.extend([
            "ERROR".into(),
            String::new(),
            String::new(),
            problem.clone(),
        ]),
        (None, Some(proto::batch_result::Result::Check(check))) => row.extend([
            outcome_name(check.outcome).to_string(),
            check.check_id.clone(),
            crate::cli::format_timestamp(check.checked_at.as_ref()),
            String::new(),
        ]),
        (None, Some(proto::batch_result::Result::Error(error))) => row.extend([
            "ERROR".into(),
            String::new(),
            String::new(),
            format!("{}: {}", error.field, error.reason),
        ]),
        (None, None) => row.extend([
            "ERROR".into(),
            String::new(),
            String::new(),
            "no answer".into(),
        ]),
    }
    row
}

async fn declare_roster(
    portal: &Portal,
    viewer: &Viewer<'_>,
    on_behalf_of: &str,
    rows: Vec<StaffRow>,
) -> Response {
    let mut messages = vec![proto::RosterUpload {
        // All or nothing, as the CLI without --partial: a file with a rejected row changes no
        // roster.
        item: Some(proto::roster_upload::Item::Header(proto::RosterHeader {
            on_behalf_of: on_behalf_of.to_string(),
            partial: false,
        })),
    }];
    let members: Vec<proto::RosterMember> = rows
        .into_iter()
        .map(|row| proto::RosterMember {
            row: row.number,
            subject: Some(row.identity),
            staff_ref: row.staff_ref,
            hire_date: row.hire_date,
            departure_date: row.departure_date,
        })
        .collect();
    for chunk in members.chunks(portal.state.limits.max_batch_chunk_rows.max(1)) {
        messages.push(proto::RosterUpload {
            item: Some(proto::roster_upload::Item::Members(proto::RosterMembers {
                members: chunk.to_vec(),
            })),
        });
    }
    let stream = portal.services.stream_of(messages);
    let answered = traced(
        "/safehire.v1.RosterService/ReplaceRoster",
        portal
            .services
            .roster
            .replace_roster(request(viewer.peer, stream)),
    )
    .await;
    let summary = match answered {
        Ok(summary) => summary.into_inner(),
        Err(status) => return viewer.refused("/staff", &status),
    };
    let body = html! {
        table.facts {
            tr { th { "received" } td { (summary.received) } }
            tr { th { "added" } td { (summary.added) } }
            tr { th { "updated" } td { (summary.updated) } }
            tr { th { "unchanged" } td { (summary.unchanged) } }
            tr { th { "departed" } td { (summary.departed) } }
            tr { th { "rejected" } td { (summary.rejected) } }
            tr { th { (viewer.t("roster.current")) } td { (summary.current_members) } }
        }
        @if !summary.errors.is_empty() {
            table.rows {
                thead { tr { th { "row" } th { "field" } th { (viewer.t("staff.errors")) } } }
                tbody { @for e in &summary.errors { tr { td { (e.row) } td { (e.field) } td { (e.reason) } } } }
            }
        }
        p { a href=(link(viewer.lang, "/roster")) { (viewer.t("nav.roster")) } }
    };
    viewer.page("/staff", &viewer.t("staff.summary"), body)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BatchRef {
    csrf: String,
    lang: String,
    batch_id: String,
}

pub async fn staff_results(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Form(form): Form<BatchRef>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, Lang::parse(&form.lang));
    if !portal.csrf.verify(&peer, &form.csrf) {
        return viewer.bad_form("/staff", "error.csrf");
    }
    let Some(file) = portal.results.get(&peer, &form.batch_id) else {
        return viewer.bad_form("/staff", "error.no_results");
    };
    let name: String = form
        .batch_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"results-{name}.csv\""),
            ),
        ],
        file.as_ref().clone(),
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PlainForm {
    csrf: String,
    lang: String,
    on_behalf_of: String,
}

pub async fn roster(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Query(query): Query<LangQuery>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, query.lang());
    let answered = traced(
        "/safehire.v1.RosterService/GetRoster",
        portal.services.roster.get_roster(request(
            &peer,
            proto::RosterQuery {
                on_behalf_of: String::new(),
                max_due: 1_000,
            },
        )),
    )
    .await;
    let status = match answered {
        Ok(status) => status.into_inner(),
        Err(status) => return viewer.refused("/roster", &status),
    };
    let body = html! {
        @if !status.declared {
            p { (viewer.t("roster.not_declared")) " " a href=(link(viewer.lang, "/staff")) { (viewer.t("nav.staff")) } }
        } @else {
            table.facts {
                tr { th { (viewer.t("roster.current")) } td #current { (status.current_members) } }
                tr { th { (viewer.t("roster.due")) } td #due { (status.due_count) } }
                tr { th { (viewer.t("roster.interval")) } td { (status.recheck_interval_days) } }
            }
            form method="post" action="/roster/recheck" {
                (viewer.form_fields())
                button #recheck type="submit" { (viewer.t("form.recheck")) }
            }
            table.rows {
                thead { tr { th { (viewer.t("roster.staff_ref")) } th { (viewer.t("roster.hire_date")) } th { (viewer.t("roster.last_checked")) } } }
                tbody {
                    @for member in &status.due {
                        tr {
                            td { (member.staff_ref) }
                            td { (member.hire_date) }
                            td { @if member.last_checked_at.is_some() { (moment(member.last_checked_at.as_ref())) } @else { (viewer.t("roster.never")) } }
                        }
                    }
                }
            }
        }
    };
    viewer.page("/roster", &viewer.t("nav.roster"), body)
}

pub async fn recheck(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Form(form): Form<PlainForm>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, Lang::parse(&form.lang));
    if !portal.csrf.verify(&peer, &form.csrf) {
        return viewer.bad_form("/roster", "error.csrf");
    }
    let answered = traced("/safehire.v1.RosterService/RunRecheck", async {
        let response = portal
            .services
            .roster
            .run_recheck(request(
                &peer,
                proto::RecheckRequest {
                    on_behalf_of: form.on_behalf_of.clone(),
                    scope: proto::Scope::Art62 as i32,
                },
            ))
            .await?;
        collect(response.into_inner()).await
    })
    .await;
    let items = match answered {
        Ok(items) => items,
        Err(status) => return viewer.refused("/roster", &status),
    };
    let mut members = Vec::new();
    let mut summary = proto::RecheckSummary::default();
    for item in items.into_iter().filter_map(|i| i.item) {
        match item {
            proto::recheck_result::Item::Member(m) => members.push(m),
            proto::recheck_result::Item::Summary(s) => summary = s,
        }
    }
    let body = html! {
        table.facts {
            tr { th { (viewer.t("roster.current")) } td #members { (summary.members) } }
            tr { th { (viewer.t("outcome.NO_RECORD")) } td { (summary.no_record) } }
            tr { th { (viewer.t("outcome.RECORD_FOUND")) } td { (summary.record_found) } }
        }
        table.rows {
            thead { tr { th { (viewer.t("roster.staff_ref")) } th { (viewer.t("result.title")) } th { (viewer.t("result.receipt")) } } }
            tbody {
                @for m in &members {
                    tr { td { (m.staff_ref) } td { (viewer.t(&format!("outcome.{}", outcome_name(m.outcome)))) } td { code { (m.check_id) } } }
                }
            }
        }
    };
    viewer.page("/roster", &viewer.t("roster.recheck_done"), body)
}

const ACTIONS: [proto::AlertAction; 4] = [
    proto::AlertAction::SuspendedPendingReview,
    proto::AlertAction::Dismissed,
    proto::AlertAction::Disputed,
    proto::AlertAction::NotOurStaff,
];

fn action_name(code: i32) -> &'static str {
    proto::AlertAction::try_from(code)
        .map_or("UNSPECIFIED", |a| short(a.as_str_name(), "ALERT_ACTION_"))
}

pub async fn alerts(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Query(query): Query<LangQuery>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, query.lang());
    alerts_page(&portal, &viewer, None).await
}

async fn alerts_page(portal: &Portal, viewer: &Viewer<'_>, notice: Option<Markup>) -> Response {
    let answered = traced(
        "/safehire.v1.AlertService/ListAlerts",
        portal.services.alerts.list_alerts(request(
            viewer.peer,
            proto::ListAlertsRequest {
                after_id: 0,
                unacknowledged_only: false,
                limit: 1_000,
            },
        )),
    )
    .await;
    let list = match answered {
        Ok(list) => list.into_inner(),
        Err(status) => return viewer.refused("/alerts", &status),
    };
    let body = html! {
        @if let Some(notice) = notice { (notice) }
        @if list.alerts.is_empty() {
            p { (viewer.t("alerts.none")) }
        } @else {
            table.rows {
                thead { tr {
                    th { (viewer.t("alerts.id")) } th { (viewer.t("roster.staff_ref")) }
                    th { (viewer.t("alerts.created")) } th { (viewer.t("alerts.action")) }
                } }
                tbody {
                    @for alert in &list.alerts {
                        tr.alert data-alert=(alert.id) {
                            td { (alert.id) }
                            td { (alert.staff_ref) }
                            td { (moment(alert.created_at.as_ref())) }
                            td {
                                @if alert.action == 0 {
                                    form.ack method="post" action="/alerts/ack" {
                                        (viewer.form_fields())
                                        input type="hidden" name="alert_id" value=(alert.id);
                                        select name="action" {
                                            @for action in ACTIONS {
                                                option value=(action as i32) { (viewer.t(&format!("action.{}", action_name(action as i32)))) }
                                            }
                                        }
                                        input name="note" maxlength="200" placeholder=(viewer.t("form.note"));
                                        button type="submit" { (viewer.t("form.ack")) }
                                    }
                                } @else {
                                    span.acked { (viewer.t(&format!("action.{}", action_name(alert.action)))) }
                                    " · " (moment(alert.acknowledged_at.as_ref()))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    viewer.page("/alerts", &viewer.t("nav.alerts"), body)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AckForm {
    csrf: String,
    lang: String,
    alert_id: u64,
    action: i32,
    note: String,
}

pub async fn acknowledge(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Form(form): Form<AckForm>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, Lang::parse(&form.lang));
    if !portal.csrf.verify(&peer, &form.csrf) {
        return viewer.bad_form("/alerts", "error.csrf");
    }
    let answered = traced(
        "/safehire.v1.AlertService/AcknowledgeAlert",
        portal.services.alerts.acknowledge_alert(request(
            &peer,
            proto::AcknowledgeRequest {
                alert_id: form.alert_id,
                action: form.action,
                note: form.note,
            },
        )),
    )
    .await;
    match answered {
        Ok(_) => alerts_page(&portal, &viewer, None).await,
        Err(status) => viewer.refused("/alerts", &status),
    }
}

fn review_label(viewer: &Viewer<'_>, prefix: &str, name: &str, strip: &str) -> String {
    viewer.t(&format!("{prefix}.{}", short(name, strip)))
}

pub async fn reviews(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Query(query): Query<LangQuery>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, query.lang());
    reviews_page(&portal, &viewer).await
}

async fn reviews_page(portal: &Portal, viewer: &Viewer<'_>) -> Response {
    let answered = traced(
        "/safehire.v1.ReviewService/ListReviews",
        portal.services.reviews.list_reviews(request(
            viewer.peer,
            proto::ListReviewsRequest {
                open_only: false,
                after_id: 0,
                limit: 1_000,
            },
        )),
    )
    .await;
    let list = match answered {
        Ok(list) => list.into_inner(),
        Err(status) => return viewer.refused("/reviews", &status),
    };
    let body = html! {
        form method="post" action="/reviews/dispute" autocomplete="off" {
            (viewer.form_fields())
            label { (viewer.t("form.check_id")) input name="check_id" required maxlength="64"; }
            label { (viewer.t("form.note")) input name="note" maxlength="200"; }
            button type="submit" { (viewer.t("form.dispute")) }
        }
        @if list.reviews.is_empty() {
            p { (viewer.t("reviews.none")) }
        } @else {
            table.rows {
                thead { tr {
                    th { "#" } th { (viewer.t("reviews.reason")) } th { (viewer.t("form.check_id")) }
                    th { (viewer.t("reviews.opened")) } th { (viewer.t("reviews.resolution")) } th { (viewer.t("form.note")) }
                } }
                tbody {
                    @for r in &list.reviews {
                        tr {
                            td { (r.id) }
                            td { (review_label(viewer, "reason", proto::ReviewReason::try_from(r.reason).map_or("", |x| x.as_str_name()), "REVIEW_REASON_")) }
                            td { code { (r.check_id) } }
                            td { (moment(r.opened_at.as_ref())) }
                            td { (review_label(viewer, "resolution", proto::ReviewResolution::try_from(r.resolution).map_or("", |x| x.as_str_name()), "REVIEW_RESOLUTION_")) }
                            td { (r.note) }
                        }
                    }
                }
            }
        }
    };
    viewer.page("/reviews", &viewer.t("nav.reviews"), body)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DisputeForm {
    csrf: String,
    lang: String,
    check_id: String,
    note: String,
    on_behalf_of: String,
}

pub async fn dispute(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Form(form): Form<DisputeForm>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, Lang::parse(&form.lang));
    if !portal.csrf.verify(&peer, &form.csrf) {
        return viewer.bad_form("/reviews", "error.csrf");
    }
    let answered = traced(
        "/safehire.v1.ReviewService/DisputeCheck",
        portal.services.reviews.dispute_check(request(
            &peer,
            proto::DisputeCheckRequest {
                check_id: form.check_id,
                on_behalf_of: form.on_behalf_of,
                note: form.note,
            },
        )),
    )
    .await;
    match answered {
        Ok(_) => reviews_page(&portal, &viewer).await,
        Err(status) => viewer.refused("/reviews", &status),
    }
}
