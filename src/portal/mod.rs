//! The web portal, Chinese first, for units without IT staff, for bureaus and for prosecutors:
//! HTTPS on its own listener with the server's certificate and client CA, where the browser
//! logs the organisation in with its client certificate (as Chinese government portals do).
//!
//! The portal is only a face: every page calls the gRPC service implementations in-process,
//! with the caller worked out from the TLS connection exactly as the gRPC listener does
//! ([`PeerInfo`] in the request's extensions), so that authorisation, validation, quotas and
//! audit are the very same code. Identities travel only in POST bodies; nothing is kept in a
//! cookie or browser storage; every response is `no-store` under a strict CSP.

mod calls;
mod csrf;
mod employer;
mod oversight;
mod page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::admission::Admission;
use crate::api::AppState;
use crate::tls::PeerInfo;

pub use calls::Services;

/// Largest upload accepted (a staff file): 20 MiB is some 200,000 rows.
const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;
/// A browser idle this long on a kept-alive connection is let go.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// What the portal's pages share.
pub struct Portal {
    pub state: Arc<AppState>,
    pub services: Services,
    csrf: csrf::CsrfKey,
    results: employer::ResultFiles,
}

/// Serves the portal on `listener` until the task is aborted, admitting connections under
/// `admission` as the gRPC listener does. A browser without a client certificate is shown how
/// to install one, so its connection is served; it only counts among its address's few
/// certificate-less places.
pub fn start(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    admission: Admission,
) -> JoinHandle<()> {
    let portal = Arc::new(Portal {
        services: Services::new(Arc::clone(&state)),
        state,
        csrf: csrf::CsrfKey::random(),
        results: employer::ResultFiles::default(),
    });
    let router = router(portal);
    let acceptor = TlsAcceptor::from(tls);
    let admission = Arc::new(admission);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, remote)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Some((tcp, ticket)) = admission.admit_or_close(tcp, remote).await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            let admission = Arc::clone(&admission);
            tokio::spawn(async move {
                if let Some((tls, _ticket)) =
                    admission.handshake(&acceptor, tcp, remote, ticket).await
                {
                    serve_connection(tls, remote, router).await;
                }
            });
        }
    })
}

async fn serve_connection(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    remote: SocketAddr,
    router: Router,
) {
    let peer = PeerInfo::of(&tls);
    let app = router.layer(axum::Extension(peer));
    let service = hyper_util::service::TowerToHyperService::new(app);
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(%remote, error = %e, "portal connection ended");
    }
}

fn router(portal: Arc<Portal>) -> Router {
    Router::new()
        .route("/", get(page::home))
        .route(
            "/check",
            get(employer::check_form).post(employer::check_submit),
        )
        .route(
            "/staff",
            get(employer::staff_form).post(employer::staff_upload),
        )
        .route("/staff/results", post(employer::staff_results))
        .route("/roster", get(employer::roster))
        .route("/roster/recheck", post(employer::recheck))
        .route("/alerts", get(employer::alerts))
        .route("/alerts/ack", post(employer::acknowledge))
        .route("/reviews", get(employer::reviews))
        .route("/reviews/dispute", post(employer::dispute))
        .route("/oversight", get(oversight::dashboard))
        .route("/oversight/unit", get(oversight::unit))
        .route("/audit", get(oversight::audit))
        .route("/audit/who-checked", post(oversight::who_checked))
        .fallback(page::not_found)
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .layer(middleware::from_fn(require_certificate))
        .route("/portal.css", get(stylesheet))
        .layer(middleware::from_fn(security_headers))
        .with_state(portal)
}

/// Without a verified client certificate, every page is the one that explains how to get and
/// install one, and nothing else.
async fn require_certificate(request: Request, next: Next) -> Response {
    let certified = request
        .extensions()
        .get::<PeerInfo>()
        .is_some_and(|peer| peer.cert.is_some() && peer.cert_problem.is_none());
    if certified {
        next.run(request).await
    } else {
        let lang = page::lang_of_query(request.uri().query());
        (StatusCode::UNAUTHORIZED, page::no_certificate(lang)).into_response()
    }
}

/// Headers on every response: nothing cached, nothing framed, nothing loaded from elsewhere.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("portal.css"),
    )
        .into_response()
}
