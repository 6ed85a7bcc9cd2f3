//! Starting and stopping the server: keys, database, dev bootstrap, mTLS listener, services,
//! health and reflection, and a graceful stop that drains calls and flushes the audit log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use crate::admission::{Admission, AdmissionLimits};
use crate::api::{
    AlertApi, AppState, AuditApi, CheckApi, OrgApi, OrgDirectory, OversightApi, RegistryApi,
    ReviewApi, RevokedCerts, RosterApi,
};
use crate::audit::NewEntry;
use crate::clock::Clock;
use crate::config::Config;
use crate::keys::Keys;
use crate::metrics::{Listener, Metrics};
use crate::proto;
use crate::store::Store;
use crate::tls::{self, PeerStream};
use crate::{devset, store};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    LogKey(#[from] crate::audit::signing::SigningKeyError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("dev certificates: {0}")]
    Certs(#[from] crate::certs::CertError),
    #[error("dev organisations: {0}")]
    DevOrgs(#[from] crate::org::EnrolmentError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// Usually a second instance on the host: it needs a metrics port of its own.
    #[error(
        "cannot listen for metrics on {addr}: {source} (another instance? give this one \
         --metrics-listen ADDR, SAFEHIRE_METRICS__LISTEN, or metrics.enabled = false)"
    )]
    MetricsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A server that is up and listening.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `GET /metrics` answers, when metrics are on.
    pub metrics_addr: Option<SocketAddr>,
    /// Where the web portal answers (HTTPS), when it is on.
    pub portal_addr: Option<SocketAddr>,
    portal_task: Option<JoinHandle<()>>,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
    metrics_task: Option<JoinHandle<()>>,
    checkpoint_task: JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, lets calls under way finish, flushes the audit log, and returns.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        // Streams that never end on their own (alert watches) are ended first, or the drain
        // would wait for them.
        self.state.stopping.send_replace(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await
    }

    /// Runs until the server stops on its own (it does not, short of an error or `shutdown`).
    pub async fn wait(self) -> Result<(), ServerError> {
        let served = match self.task.await {
            Ok(result) => result,
            Err(join) => {
                tracing::error!(error = %join, "server task failed");
                Ok(())
            }
        };
        if let Some(metrics) = &self.metrics_task {
            metrics.abort();
        }
        self.checkpoint_task.abort();
        if let Some(portal) = &self.portal_task {
            portal.abort();
        }
        self.state.store.close().await;
        served
    }

    /// Shared state, for in-process tests and tools.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }
}

/// Brings the server up on `config.listen` (port 0 picks a free one) with time from `clock`.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<RunningServer, ServerError> {
    tls::install_crypto_provider();
    let now = clock.now();
    if config.dev_mode && devset::ensure_dev_certs(&config.tls.dev_dir, now)? {
        tracing::info!(dir = %config.tls.dev_dir.display(), "generated dev certificates");
    }
    let keys = Keys::load(&config.master_key_path(), config.dev_mode)?;
    let log_signer = crate::audit::signing::load_log_signer(
        &config.log_signing_key_path(),
        &config.master_key_path(),
        &config.audit_log.origin,
        config.dev_mode,
    )?;
    let store = Store::open(&config.database_path(), &keys.key_id_hex())?;
    let system_entry = |action: &str, outcome: &str| NewEntry {
        at_micros: crate::clock::to_micros(now),
        role: "SYSTEM".into(),
        action: action.into(),
        outcome: outcome.into(),
        ..NewEntry::default()
    };
    // Before the baseline: a database that predates both logs each record once, in its new form.
    let retagged = store
        .bind_name_tags(
            keys.name_binder(),
            system_entry("server.name_tags_bound", "OK"),
        )
        .await?;
    if retagged > 0 {
        tracing::info!(records = retagged, "bound the name tags to their documents");
    }
    let baseline = store
        .bind_state_baseline(system_entry("server.state_baseline", "OK"))
        .await?;
    if baseline > 0 {
        tracing::info!(
            entries = baseline,
            "logged the state of the records and organisations"
        );
    }
    if config.dev_mode {
        let added = store
            .enroll_missing(
                devset::dev_enrolments()?,
                crate::clock::to_micros(now),
                system_entry("server.dev_enroll", "CREATED"),
            )
            .await?;
        if added > 0 {
            tracing::info!(added, "enrolled dev organisations");
        }
    }
    let first = &config.bootstrap;
    if !first.operator_uscc.trim().is_empty() {
        let operator = crate::org::Enrolment::new(
            &first.operator_uscc,
            &first.operator_name,
            crate::org::Role::Operator,
            &first.operator_region,
            None,
            "",
        )?;
        if store
            .enroll_missing(
                vec![operator],
                crate::clock::to_micros(now),
                system_entry("server.bootstrap_operator", "CREATED"),
            )
            .await?
            > 0
        {
            tracing::info!(uscc = %first.operator_uscc.trim(), "enrolled the first operator");
        }
    }
    let orgs = OrgDirectory::new(store.organisations().await?);
    let revoked_certs = RevokedCerts::new(
        store
            .revoked_certificates()
            .await?
            .into_iter()
            .map(|r| r.fingerprint),
    );
    let tls_config = tls::server_config(
        &config.client_ca_path(),
        &config.server_cert_path(),
        &config.server_key_path(),
    )?;
    warn_of_expiry(&[config.client_ca_path(), config.server_cert_path()], now);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let metrics = Arc::new(Metrics::new(config.database_path()));
    let metrics_listener =
        match crate::metrics::bind(config.metrics.enabled.then_some(config.metrics.listen)).await {
            Ok(listener) => listener,
            Err(source) => {
                return Err(ServerError::MetricsBind {
                    addr: config.metrics.listen,
                    source,
                });
            }
        };
    let observed = Arc::clone(&metrics);
    store
        .observe_commits(Box::new(move |took, jobs| observed.commit(took, jobs)))
        .await;
    let metrics_addr = metrics_listener
        .as_ref()
        .and_then(|listener| listener.local_addr().ok());
    store
        .append_audit(NewEntry {
            detail: format!("listen={addr} dev_mode={}", config.dev_mode),
            ..system_entry("server.start", "OK")
        })
        .await?;

    let state = Arc::new(AppState {
        store,
        keys,
        clock,
        orgs,
        revoked_certs,
        limits: config.limits.clone(),
        rules: config.rules.clone(),
        batch_slots: Default::default(),
        upload_slots: Default::default(),
        pre_hire_quota: Default::default(),
        alert_bus: tokio::sync::watch::channel(0).0,
        stopping: tokio::sync::watch::channel(false).0,
        metrics: Arc::clone(&metrics),
        call_rates: crate::throttle::RateLimiter::new(
            config.limits.calls_per_second_per_org,
            config.limits.call_burst_per_org,
        ),
        refusals: crate::throttle::AuditSampler::new(crate::throttle::REFUSALS_FOLDED_FOR),
        log: crate::checkpoints::LogSigner::new(
            log_signer,
            Duration::from_millis(config.audit_log.checkpoint_interval_ms),
        ),
    });
    let checkpoint_task = tokio::spawn(sign_checkpoints(Arc::clone(&state)));
    let metrics_task = metrics_listener.map(|listener| {
        tracing::info!(addr = ?metrics_addr, "metrics on GET /metrics");
        tokio::spawn(crate::metrics::serve(listener, Arc::clone(&metrics)))
    });
    let (portal_addr, portal_task) = if config.portal_enabled() {
        let (addr, task) = start_portal(&config, Arc::clone(&state)).await?;
        (Some(addr), Some(task))
    } else {
        (None, None)
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let connections = accept_loop(
        listener,
        TlsAcceptor::from(tls_config),
        Arc::clone(&state),
        &config.limits,
    );
    let router = build_router(&state, &config.limits)?;
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(connections, async {
                let _ = stopped.await;
            })
            .await?;
        Ok(())
    });
    tracing::info!(%addr, "safehire listening (mTLS, TLS 1.3)");
    Ok(RunningServer {
        addr,
        metrics_addr,
        portal_addr,
        portal_task,
        state,
        stop: Some(stop),
        task,
        metrics_task,
        checkpoint_task,
    })
}

/// Signs a checkpoint every interval while entries arrive (the signer skips an unchanged log).
async fn sign_checkpoints(state: Arc<AppState>) {
    let mut ticks = tokio::time::interval(state.log.interval().max(Duration::from_millis(100)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = state.log.refresh(&state.store, state.now_micros()).await {
            tracing::warn!(error = %e, "could not sign a checkpoint; will retry");
        }
    }
}

/// The web portal on `[portal] listen`, with the server's certificate and client CA.
async fn start_portal(
    config: &Config,
    state: Arc<AppState>,
) -> Result<(SocketAddr, JoinHandle<()>), ServerError> {
    let tls = tls::portal_config(
        &config.client_ca_path(),
        &config.server_cert_path(),
        &config.server_key_path(),
    )?;
    let bind_error = |source| ServerError::Bind {
        addr: config.portal.listen,
        source,
    };
    let listener = TcpListener::bind(config.portal.listen)
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    // The same rule as the gRPC listener's, with the portal's own places (browsers keep
    // several connections each) and the same handshake deadline.
    let admission = Admission::new(
        Listener::Portal,
        AdmissionLimits {
            max_connections: config.portal.max_connections,
            per_address: config.portal.max_connections_per_address,
            anonymous_per_address: config.portal.max_anonymous_connections_per_address,
            handshake_timeout: Duration::from_secs(config.limits.handshake_timeout_secs),
        },
        Arc::clone(&state),
    );
    tracing::info!(%addr, "portal listening (HTTPS, client certificates)");
    Ok((addr, crate::portal::start(listener, tls, state, admission)))
}

/// How long before its end the server's own certificate or CA is worth a warning at start.
const EXPIRY_WARNING_DAYS: u32 = 30;

/// Logs a warning for each of the server's own certificates (its CA bundle, its certificate)
/// that has expired or ends within [`EXPIRY_WARNING_DAYS`]: when they run out, every client is
/// locked out at once. The files were just loaded, so a read failure here only goes unwarned.
fn warn_of_expiry(paths: &[std::path::PathBuf], now: time::OffsetDateTime) {
    use crate::certs::expiry::{Standing, summarise_file};
    for cert in paths
        .iter()
        .filter_map(|p| summarise_file(p).ok())
        .flatten()
    {
        let standing = cert.standing(now, EXPIRY_WARNING_DAYS);
        if standing != Standing::Valid {
            let not_after = cert
                .not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            tracing::warn!(
                path = %cert.path.display(),
                kind = cert.kind.label(),
                subject = %cert.subject,
                not_after,
                days_left = cert.days_left(now),
                "{}",
                if standing == Standing::Expired {
                    "certificate has expired"
                } else {
                    "certificate expires soon: replace it before then"
                },
            );
        }
    }
}

fn build_router(
    state: &Arc<AppState>,
    limits: &crate::config::Limits,
) -> Result<
    tonic::transport::server::Router<
        tower_layer::Stack<crate::api::UnservedLayer, tower_layer::Identity>,
    >,
    ServerError,
> {
    let max_message = limits.max_message_bytes;
    let keepalive = Duration::from_secs(limits.keepalive_secs);
    use proto::alert_service_server::AlertServiceServer;
    use proto::audit_service_server::AuditServiceServer;
    use proto::check_service_server::CheckServiceServer;
    use proto::organisation_service_server::OrganisationServiceServer;
    use proto::oversight_service_server::OversightServiceServer;
    use proto::registry_service_server::RegistryServiceServer;
    use proto::review_service_server::ReviewServiceServer;
    use proto::roster_service_server::RosterServiceServer;

    let (health_reporter, health) = tonic_health::server::health_reporter();
    // Both reflection versions: grpcurl speaks v1, Python's grpcio-reflection only v1alpha.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;
    let check = CheckServiceServer::new(CheckApi::new(Arc::clone(state)))
        .max_decoding_message_size(max_message);
    let registry = RegistryServiceServer::new(RegistryApi::new(Arc::clone(state)))
        .max_decoding_message_size(max_message);
    let orgs = OrganisationServiceServer::new(OrgApi::new(Arc::clone(state)))
        .max_decoding_message_size(max_message);
    let audit = AuditServiceServer::new(AuditApi::new(Arc::clone(state)))
        .max_decoding_message_size(max_message);
    let rosters = RosterServiceServer::new(RosterApi::new(Arc::clone(state)))
        .max_decoding_message_size(max_message);
    let alerts = AlertServiceServer::new(AlertApi::new(Arc::clone(state)))
        .max_decoding_message_size(max_message);
    let reviews = ReviewServiceServer::new(ReviewApi::new(Arc::clone(state)))
        .max_decoding_message_size(max_message);
    let oversight = OversightServiceServer::new(OversightApi::new(Arc::clone(state)))
        .max_decoding_message_size(max_message);
    tokio::spawn(async move {
        health_reporter
            .set_serving::<CheckServiceServer<CheckApi>>()
            .await;
        health_reporter
            .set_serving::<RegistryServiceServer<RegistryApi>>()
            .await;
        health_reporter
            .set_serving::<OrganisationServiceServer<OrgApi>>()
            .await;
        health_reporter
            .set_serving::<AuditServiceServer<AuditApi>>()
            .await;
        health_reporter
            .set_serving::<RosterServiceServer<RosterApi>>()
            .await;
        health_reporter
            .set_serving::<AlertServiceServer<AlertApi>>()
            .await;
        health_reporter
            .set_serving::<ReviewServiceServer<ReviewApi>>()
            .await;
        health_reporter
            .set_serving::<OversightServiceServer<OversightApi>>()
            .await;
    });
    Ok(tonic::transport::Server::builder()
        .trace_fn(call_span)
        .layer(crate::api::UnservedLayer::new(Arc::clone(state)))
        // A peer gone without a word (a cut cable, a suspended laptop) is found by pings.
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(keepalive))
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(check)
        .add_service(registry)
        .add_service(orgs)
        .add_service(audit)
        .add_service(rosters)
        .add_service(alerts)
        .add_service(reviews)
        .add_service(oversight))
}

/// Every call runs in a span with its own request id and the method; `authorize` adds the
/// calling organisation. Log lines inside the call carry all three, and never an identity.
fn call_span(request: &tonic::codegen::http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "call",
        request_id = %uuid::Uuid::now_v7(),
        method = %request.uri().path(),
        caller = tracing::field::Empty,
    );
    crate::telemetry::continue_trace(&span, request.headers());
    span
}

/// Accepts TCP connections and completes TLS handshakes off the accept path, admitting each
/// under `[limits]` ([`Admission`]: global and per-address limits, the handshake deadline, few
/// connections without a certificate per address, refusals audited folded). An admitted
/// connection is closed if it sends nothing within `first_request_timeout_secs`.
fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<AppState>,
    limits: &crate::config::Limits,
) -> ReceiverStream<Result<PeerStream, std::io::Error>> {
    let (ready, connections) = mpsc::channel(64);
    let first_request_timeout = Duration::from_secs(limits.first_request_timeout_secs);
    let admission = Arc::new(Admission::new(
        Listener::Grpc,
        AdmissionLimits {
            max_connections: limits.max_connections,
            per_address: limits.max_connections_per_address,
            anonymous_per_address: limits.max_anonymous_connections_per_address,
            handshake_timeout: Duration::from_secs(limits.handshake_timeout_secs),
        },
        state,
    ));
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = ready.closed() => break,
            };
            let Some((tcp, ticket)) = admission.admit_or_close(tcp, remote).await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let ready = ready.clone();
            let admission = Arc::clone(&admission);
            tokio::spawn(async move {
                if let Some((stream, ticket)) =
                    admission.handshake(&acceptor, tcp, remote, ticket).await
                {
                    let stream =
                        PeerStream::new(stream, vec![Box::new(ticket)], first_request_timeout);
                    let _ = ready.send(Ok(stream)).await;
                }
            });
        }
    });
    ReceiverStream::new(connections)
}
