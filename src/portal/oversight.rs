//! Prosecutor (and bureau) pages: the compliance report as a dashboard to filter and sort by
//! finding, region and bureau; a unit's findings with their evidence from the audit trail;
//! the log's verification status and who-checked searches.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::Portal;
use super::calls::{collect, request, traced};
use super::page::{Viewer, link, moment};
use crate::cli::report::{Report, share_text};
use crate::i18n::Lang;
use crate::identity::DocType;
use crate::org::Role;
use crate::oversight::Finding;
use crate::proto;
use crate::proto::audit_service_server::AuditService;
use crate::proto::oversight_service_server::OversightService;
use crate::tls::PeerInfo;

/// Most audit entries shown as one unit's evidence or as the recent trail.
const EVIDENCE_ENTRIES: u64 = 200;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DashboardQuery {
    lang: String,
    finding: String,
    region: String,
    bureau: String,
    sort: String,
}

async fn report(portal: &Portal, peer: &PeerInfo, region: &str) -> Result<Report, tonic::Status> {
    traced("/safehire.v1.OversightService/ComplianceReport", async {
        let response = portal
            .services
            .oversight
            .compliance_report(request(
                peer,
                proto::ComplianceRequest {
                    as_of: None,
                    region_prefix: region.trim().to_string(),
                    industry: 0,
                },
            ))
            .await?;
        let items = collect(response.into_inner()).await?;
        Report::collect(items).map_err(|e| tonic::Status::internal(e.message))
    })
    .await
}

fn finding_name(lang: Lang, code: i32) -> String {
    Finding::from_code(code).map_or_else(
        || format!("FINDING_{code}"),
        |f| lang.t(&format!("finding.{}", f.label())).to_string(),
    )
}

fn findings_of(lang: Lang, unit: &proto::UnitReport) -> Markup {
    html! {
        @for f in &unit.findings {
            span.badge data-finding=(Finding::from_code(f.kind).map_or("", |k| k.label())) {
                (finding_name(lang, f.kind)) " " (f.count) "/" (f.of)
            }
        }
    }
}

/// Bars of units per finding kind, as inline SVG (no script, nothing fetched).
fn chart(viewer: &Viewer<'_>, report: &Report) -> Markup {
    let counts: Vec<(Finding, u64)> = Finding::ALL
        .iter()
        .map(|f| {
            let units = report
                .totals
                .findings
                .iter()
                .find(|c| c.kind == f.code())
                .map_or(0, |c| c.units);
            (*f, units)
        })
        .collect();
    let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let row_height = 28;
    let height = row_height * counts.len();
    html! {
        figure.chart {
            figcaption { (viewer.t("oversight.by_kind")) }
            svg xmlns="http://www.w3.org/2000/svg" width="640" height=(height) role="img" {
                @for (i, (finding, units)) in counts.iter().enumerate() {
                    @let y = i * row_height;
                    @let width = 1 + (*units * 360 / most);
                    text x="0" y=(y + 18) font-size="13" { (viewer.t(&format!("finding.{}", finding.label()))) }
                    rect x="220" y=(y + 4) width=(width) height="18" fill="#c0392b" {}
                    text x=(230 + width) y=(y + 18) font-size="13" { (units) }
                }
            }
        }
    }
}

pub async fn dashboard(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Query(query): Query<DashboardQuery>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, Lang::parse(&query.lang));
    let report = match report(&portal, &peer, &query.region).await {
        Ok(report) => report,
        Err(status) => return viewer.refused("/oversight", &status),
    };
    let wanted = Finding::parse(&query.finding);
    let mut units: Vec<&proto::UnitReport> = report
        .units
        .iter()
        .filter(|u| wanted.is_none_or(|f| u.findings.iter().any(|x| x.kind == f.code())))
        .filter(|u| query.bureau.is_empty() || u.supervising_bureau == query.bureau)
        .collect();
    match query.sort.as_str() {
        "region" => units.sort_by(|a, b| a.region.cmp(&b.region)),
        "name" => units.sort_by(|a, b| a.name.cmp(&b.name)),
        "uscc" => {}
        _ => units
            .sort_by_key(|u| std::cmp::Reverse(u.findings.iter().map(|f| f.count).sum::<u64>())),
    }
    let t = &report.totals;
    let lang = viewer.lang;
    let body = html! {
        section.cards {
            div.card { div.figure #units { (t.units) } div { (viewer.t("oversight.units")) } }
            div.card.bad { div.figure #flagged { (t.units_with_findings) } div { (viewer.t("oversight.flagged")) } }
            div.card { div.figure { (share_text(t.checked_in_time, t.current_members, viewer.lang)) } div { (viewer.t("oversight.checked_share")) } }
        }
        p.hint {
            (viewer.t("oversight.as_of")) " " (moment(report.header.as_of.as_ref())) " · "
            (viewer.t("oversight.audit_head")) " " (report.header.audit_seq) " "
            code { (report.header.audit_hash) }
        }
        (chart(&viewer, &report))
        form.filters method="get" action="/oversight" {
            input type="hidden" name="lang" value=(lang.code());
            label { (viewer.t("oversight.findings"))
                select name="finding" {
                    option value="" { (viewer.t("form.all")) }
                    @for f in Finding::ALL {
                        option value=(f.label()) selected[wanted == Some(*f)] { (viewer.t(&format!("finding.{}", f.label()))) }
                    }
                }
            }
            label { (viewer.t("oversight.region")) input name="region" value=(query.region) maxlength="6"; }
            label { (viewer.t("oversight.bureau"))
                select name="bureau" {
                    option value="" { (viewer.t("form.all")) }
                    @for b in &report.bureaus {
                        @if !b.key.is_empty() {
                            option value=(b.key) selected[query.bureau == b.key] { (b.name) }
                        }
                    }
                }
            }
            label { (viewer.t("oversight.sort"))
                select name="sort" {
                    option value="findings" { (viewer.t("oversight.findings")) }
                    option value="region" selected[query.sort == "region"] { (viewer.t("oversight.region")) }
                    option value="name" selected[query.sort == "name"] { (viewer.t("oversight.unit")) }
                    option value="uscc" selected[query.sort == "uscc"] { (viewer.t("oversight.uscc")) }
                }
            }
            button type="submit" { (viewer.t("form.filter")) }
        }
        @if units.is_empty() {
            p { (viewer.t("oversight.no_units")) }
        } @else {
            table.rows #units-table {
                thead { tr {
                    th { (viewer.t("oversight.unit")) } th { (viewer.t("oversight.uscc")) }
                    th { (viewer.t("oversight.region")) } th { (viewer.t("oversight.findings")) }
                    th { (viewer.t("oversight.checks")) } th { (viewer.t("oversight.checked_share")) }
                } }
                tbody {
                    @for u in &units {
                        tr data-uscc=(u.uscc) {
                            td { a.unit href=(format!("{}{}uscc={}", link(lang, "/oversight/unit"), if lang == Lang::En { "&" } else { "?" }, u.uscc)) { (u.name) } }
                            td { code { (u.uscc) } }
                            td { (u.region) }
                            td { (findings_of(lang, u)) }
                            td.num { (u.checks) }
                            td { (share_text(u.checked_in_time, u.current_members, viewer.lang)) }
                        }
                    }
                }
            }
        }
    };
    viewer.page("/oversight", &viewer.t("nav.oversight"), body)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UnitQuery {
    lang: String,
    uscc: String,
}

fn audit_table(viewer: &Viewer<'_>, records: &[proto::AuditRecord]) -> Markup {
    html! {
        @if records.is_empty() {
            p { (viewer.t("audit.none")) }
        } @else {
            table.rows.audit {
                thead { tr {
                    th { (viewer.t("audit.seq")) } th { (viewer.t("audit.at")) } th { (viewer.t("audit.caller")) }
                    th { (viewer.t("audit.action")) } th { (viewer.t("audit.employer")) } th { (viewer.t("audit.purpose")) }
                    th { (viewer.t("audit.outcome")) } th { (viewer.t("form.check_id")) }
                } }
                tbody {
                    @for r in records {
                        tr {
                            td.num { (r.seq) } td { (moment(r.at.as_ref())) } td { code { (r.caller) } }
                            td { (r.action) } td { code { (r.employer) } } td { (r.purpose) }
                            td { (r.outcome) } td { code { (r.check_id) } }
                        }
                    }
                }
            }
        }
    }
}

async fn audit_entries(
    portal: &Portal,
    peer: &PeerInfo,
    query: proto::AuditQuery,
) -> Result<Vec<proto::AuditRecord>, tonic::Status> {
    traced("/safehire.v1.OversightService/ListAuditEntries", async {
        let response = portal
            .services
            .oversight
            .list_audit_entries(request(peer, query))
            .await?;
        collect(response.into_inner()).await
    })
    .await
}

pub async fn unit(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Query(query): Query<UnitQuery>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, Lang::parse(&query.lang));
    let report = match report(&portal, &peer, "").await {
        Ok(report) => report,
        Err(status) => return viewer.refused("/oversight", &status),
    };
    let Some(unit) = report.units.iter().find(|u| u.uscc == query.uscc) else {
        return viewer.refused(
            "/oversight",
            &tonic::Status::not_found("no such unit in the report"),
        );
    };
    let evidence = if viewer.role() == Some(Role::Prosecutor) {
        let query = proto::AuditQuery {
            organisation: unit.uscc.clone(),
            limit: EVIDENCE_ENTRIES,
            ..Default::default()
        };
        match audit_entries(&portal, &peer, query).await {
            Ok(records) => Some(records),
            Err(status) => return viewer.refused("/oversight", &status),
        }
    } else {
        None
    };
    let lang = viewer.lang;
    let body = html! {
        table.facts {
            tr { th { (viewer.t("oversight.uscc")) } td { code #uscc { (unit.uscc) } } }
            tr { th { (viewer.t("oversight.region")) } td { (unit.region) } }
            tr { th { (viewer.t("oversight.bureau")) } td { code { (unit.supervising_bureau) } } }
            tr { th { (viewer.t("roster.current")) } td { (unit.current_members) } }
            tr { th { (viewer.t("oversight.checks")) } td { (unit.checks) } }
            tr { th { (viewer.t("oversight.checked_share")) } td { (share_text(unit.checked_in_time, unit.current_members, viewer.lang)) } }
        }
        h3 { (viewer.t("oversight.findings")) }
        ul.findings {
            @for f in &unit.findings {
                li data-finding=(Finding::from_code(f.kind).map_or("", |k| k.label())) {
                    strong { (finding_name(lang, f.kind)) } " " (f.count) "/" (f.of) " — "
                    (Finding::from_code(f.kind).map_or(String::new(), |k| viewer.t(&format!("meaning.{}", k.label()))))
                    @if !f.detail.is_empty() { " (" (f.detail) ")" }
                }
            }
        }
        @if let Some(records) = &evidence {
            h3 { (viewer.t("oversight.evidence")) }
            (audit_table(&viewer, records))
        }
    };
    viewer.page("/oversight", &unit.name, body)
}

pub async fn audit(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Query(query): Query<super::page::LangQuery>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, query.lang());
    audit_page(&portal, &viewer, None).await
}

async fn audit_page(
    portal: &Portal,
    viewer: &Viewer<'_>,
    found: Option<Vec<proto::AuditRecord>>,
) -> Response {
    let verified = traced(
        "/safehire.v1.AuditService/Verify",
        portal.services.audit.verify(request(
            viewer.peer,
            proto::VerifyRequest {
                from_sequence: 0,
                to_sequence: 0,
            },
        )),
    )
    .await;
    let verified = match verified {
        Ok(v) => v.into_inner(),
        Err(status) => return viewer.refused("/audit", &status),
    };
    let since = portal.state.now() - time::Duration::days(7);
    let recent = audit_entries(
        portal,
        viewer.peer,
        proto::AuditQuery {
            from: Some(prost_types::Timestamp {
                seconds: since.unix_timestamp(),
                nanos: 0,
            }),
            limit: EVIDENCE_ENTRIES,
            ..Default::default()
        },
    )
    .await;
    let recent = match recent {
        Ok(records) => records,
        Err(status) => return viewer.refused("/audit", &status),
    };
    let body = html! {
        section.verify.(if verified.ok { "ok" } else { "bad" }) #verify {
            h3 { (viewer.t("audit.verify")) }
            p.status { (viewer.t(if verified.ok { "audit.ok" } else { "audit.broken" })) }
            p { (viewer.t("audit.entries_checked")) " " (verified.entries_checked)
                @if let Some(head) = &verified.head { " · " (viewer.t("oversight.audit_head")) " " (head.sequence) " " code { (head.hash) } }
                @if !verified.ok { " · " (verified.first_broken_sequence) " " (verified.problem) }
            }
        }
        h3 { (viewer.t("audit.who_checked")) }
        form method="post" action="/audit/who-checked" autocomplete="off" {
            (viewer.form_fields())
            label { (viewer.t("form.doc_type"))
                select name="doc_type" {
                    @for doc_type in DocType::ALL {
                        option value=(doc_type.slug()) {
                            @if viewer.lang == Lang::Zh { (doc_type.name_zh()) } @else { (doc_type.slug()) }
                        }
                    }
                }
            }
            label { (viewer.t("form.doc_number")) input name="doc_number" required maxlength="64" spellcheck="false"; }
            label { (viewer.t("form.name")) input name="name" maxlength="128"; }
            button type="submit" { (viewer.t("form.search")) }
        }
        @if let Some(found) = &found {
            section #who-checked { (audit_table(viewer, found)) }
        }
        h3 { (viewer.t("audit.recent")) }
        (audit_table(viewer, &recent))
    };
    viewer.page("/audit", &viewer.t("nav.audit"), body)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WhoCheckedForm {
    csrf: String,
    lang: String,
    doc_type: String,
    doc_number: String,
    name: String,
}

pub async fn who_checked(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Form(form): Form<WhoCheckedForm>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, Lang::parse(&form.lang));
    if !portal.csrf.verify(&peer, &form.csrf) {
        return viewer.bad_form("/audit", "error.csrf");
    }
    let doc_type = DocType::from_slug(&form.doc_type).map_or(0, |d| i32::from(d.code()));
    let message = proto::WhoCheckedRequest {
        subject: Some(proto::Identity {
            doc_type,
            doc_number: form.doc_number,
            name: form.name,
        }),
        from: None,
        to: None,
    };
    let found = traced("/safehire.v1.OversightService/WhoChecked", async {
        let response = portal
            .services
            .oversight
            .who_checked(request(&peer, message))
            .await?;
        collect(response.into_inner()).await
    })
    .await;
    match found {
        Ok(found) => audit_page(&portal, &viewer, Some(found)).await,
        Err(status) => viewer.refused("/audit", &status),
    }
}
