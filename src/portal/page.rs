//! The page frame and what every page shares: the language (a `lang` query or form field, never
//! a cookie), the navigation for the caller's role, forms with their CSRF token, and the page
//! shown for a refused call. maud escapes every value it inserts, so a unit's name or a note
//! cannot become markup.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::Portal;
use crate::i18n::Lang;
use crate::org::{Organisation, Role};
use crate::tls::PeerInfo;

#[derive(Debug, Default, Deserialize)]
pub struct LangQuery {
    #[serde(default)]
    pub lang: String,
}

impl LangQuery {
    pub fn lang(&self) -> Lang {
        Lang::parse(&self.lang)
    }
}

/// The language asked for in a raw query string (`lang=en`); Chinese otherwise.
pub fn lang_of_query(query: Option<&str>) -> Lang {
    query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("lang="))
        .map_or(Lang::Zh, Lang::parse)
}

/// `path` in `lang`: the language rides in the query string, which holds nothing else.
pub fn link(lang: Lang, path: &str) -> String {
    match lang {
        Lang::Zh => path.to_string(),
        Lang::En => format!("{path}?lang=en"),
    }
}

/// What a page knows of who is looking at it, for the frame and the forms.
pub struct Viewer<'a> {
    pub lang: Lang,
    pub org: Option<Organisation>,
    pub token: String,
    pub peer: &'a PeerInfo,
}

impl<'a> Viewer<'a> {
    pub fn new(portal: &Portal, peer: &'a PeerInfo, lang: Lang) -> Self {
        let org = peer
            .cert
            .as_ref()
            .and_then(|cert| cert.uscc_claim.as_deref())
            .and_then(|uscc| portal.state.orgs.get(uscc));
        Viewer {
            lang,
            org,
            token: portal.csrf.token(peer),
            peer,
        }
    }

    pub fn t(&self, key: &str) -> String {
        self.lang.t(key).to_string()
    }

    pub fn role(&self) -> Option<Role> {
        self.org.as_ref().map(|o| o.role)
    }

    /// The hidden fields every form carries.
    pub fn form_fields(&self) -> Markup {
        html! {
            input type="hidden" name="csrf" value=(self.token);
            input type="hidden" name="lang" value=(self.lang.code());
        }
    }

    /// A whole page: the frame, the navigation and `body`.
    pub fn page(&self, path: &str, title: &str, body: Markup) -> Response {
        Html(frame(self.lang, path, title, &self.nav(), body).into_string()).into_response()
    }

    /// The frame of a page whose body is sent in pieces: what goes before it and after it.
    pub fn page_parts(&self, path: &str, title: &str) -> (String, String) {
        const BODY: &str = "<!--body-->";
        let page = frame(
            self.lang,
            path,
            title,
            &self.nav(),
            maud::PreEscaped(BODY.into()),
        )
        .into_string();
        match page.split_once(BODY) {
            Some((head, foot)) => (head.to_string(), foot.to_string()),
            None => (page, String::new()),
        }
    }

    fn nav(&self) -> Markup {
        let items: &[(&str, &str)] = match self.role() {
            Some(Role::Employer) => &[
                ("/check", "nav.check"),
                ("/staff", "nav.staff"),
                ("/roster", "nav.roster"),
                ("/alerts", "nav.alerts"),
                ("/reviews", "nav.reviews"),
            ],
            Some(Role::Bureau) => &[
                ("/oversight", "nav.oversight"),
                ("/check", "nav.check"),
                ("/alerts", "nav.alerts"),
            ],
            Some(Role::Prosecutor) => &[("/oversight", "nav.oversight"), ("/audit", "nav.audit")],
            _ => &[],
        };
        html! {
            nav {
                a href=(link(self.lang, "/")) { (self.t("nav.home")) }
                @for (path, key) in items {
                    a href=(link(self.lang, path)) { (self.t(key)) }
                }
                @if let Some(org) = &self.org {
                    span.who { (org.name) " · " (self.t(&format!("role.{}", org.role.label()))) }
                }
            }
        }
    }

    /// The page for a call the service refused: its status code and message, as the gRPC
    /// client would have seen them (the services never put an identity in a message).
    pub fn refused(&self, path: &str, status: &tonic::Status) -> Response {
        let body = html! {
            div.error role="alert" {
                h2 { (self.t("error.refused")) }
                p { code { (format!("{:?}", status.code())) } " " (status.message()) }
            }
        };
        let mut response = self.page(path, &self.t("error.refused"), body);
        *response.status_mut() = http_status(status.code());
        response
    }

    /// A page for a form that is not the portal's own (no valid token) or is incomplete.
    pub fn bad_form(&self, path: &str, key: &str) -> Response {
        let body = html! { div.error role="alert" { p { (self.t(key)) } } };
        let mut response = self.page(path, &self.t("error.refused"), body);
        *response.status_mut() = StatusCode::FORBIDDEN;
        response
    }
}

fn http_status(code: tonic::Code) -> StatusCode {
    match code {
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => StatusCode::BAD_REQUEST,
        tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::FailedPrecondition | tonic::Code::AlreadyExists => StatusCode::CONFLICT,
        tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn frame(lang: Lang, path: &str, title: &str, nav: &Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · " (lang.t("app.title")) }
                link rel="stylesheet" href="/portal.css";
            }
            body {
                header {
                    h1 { (lang.t("app.title")) }
                    a.lang href=(link(lang.other(), path)) lang=(lang.other().code()) {
                        (lang.t("lang.switch"))
                    }
                }
                (nav)
                main {
                    h2 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The caller's home page: who the certificate names and where to go from here.
pub async fn home(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Query(query): Query<LangQuery>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, query.lang());
    let body = match &viewer.org {
        None => html! { p.error { (viewer.t("home.not_enrolled")) } },
        Some(org) => html! {
            p.lede { (viewer.t("app.lede")) }
            table.facts {
                tr { th { (viewer.t("home.signed_in")) } td { (org.name) " (" (org.uscc) ")" } }
                tr { th { (viewer.t("home.role")) } td { (viewer.t(&format!("role.{}", org.role.label()))) } }
                tr { th { (viewer.t("home.region")) } td { (org.region) } }
            }
            @if !matches!(org.role, Role::Employer | Role::Bureau | Role::Prosecutor) {
                p { (viewer.t("home.no_pages")) }
            }
        },
    };
    viewer.page("/", &viewer.t("nav.home"), body)
}

/// The only page a browser without a client certificate gets.
pub fn no_certificate(lang: Lang) -> Html<String> {
    let nav = html! {};
    let body = html! {
        p.lede { (lang.t("nocert.body")) }
        ol.steps {
            li { (lang.t("nocert.step1")) }
            li { (lang.t("nocert.step2")) }
            li { (lang.t("nocert.step3")) }
        }
        p.hint { code { (lang.t("nocert.operator")) } }
    };
    Html(frame(lang, "/", lang.t("nocert.title"), &nav, body).into_string())
}

pub async fn not_found(
    State(portal): State<Arc<Portal>>,
    Extension(peer): Extension<PeerInfo>,
    Query(query): Query<LangQuery>,
) -> Response {
    let viewer = Viewer::new(&portal, &peer, query.lang());
    let mut response = viewer.page("/", "404", html! { p { "404" } });
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// A moment in Beijing time to the second, as people read it.
pub fn moment(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|at| {
            at.to_offset(crate::clock::CALENDAR)
                .format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .ok()
        })
        .unwrap_or_else(|| "–".into())
}

/// The label of a proto enum value without its prefix (`OUTCOME_NO_RECORD` → `NO_RECORD`).
pub fn short<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
}
