//! AlertService: the alerts raised when a record starts to apply to someone on a current
//! roster. Employers see their own, bureaus those of the units they supervise; a watch streams
//! what is already there after the cursor and then wakes on every new commit of alerts.

use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use super::{ApiError, AppState, Rpc, convert, deadline};
use crate::audit::NewEntry;
use crate::org::{Caller, Role};
use crate::proto;
use crate::proto::alert_service_server::AlertService;
use crate::roster::AlertAction;
use crate::store::{AlertRow, AlertViewer};
use crate::tls::PeerInfo;

const LIST_DEFAULT: usize = 1_000;
const LIST_MAX: usize = 10_000;
/// Alerts read per query while a watch catches up.
const WATCH_PAGE: usize = 500;

pub struct AlertApi {
    state: Arc<AppState>,
}

type AlertStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<proto::Alert, Status>> + Send>>;

impl AlertApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    async fn list(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::ListAlertsRequest,
    ) -> Result<proto::ListAlertsResponse, ApiError> {
        let limit = convert::page_size(req.limit, LIST_DEFAULT, LIST_MAX);
        let mut alerts = self
            .state
            .store
            .alerts(
                viewer(caller),
                req.after_id,
                req.unacknowledged_only,
                limit + 1,
            )
            .await?;
        let more = alerts.len() > limit;
        alerts.truncate(limit);
        entry.outcome = "OK".into();
        entry.detail = format!("after={} returned={}", req.after_id, alerts.len());
        self.state.store.append_audit(entry.clone()).await?;
        Ok(proto::ListAlertsResponse {
            alerts: alerts.into_iter().map(alert_to_proto).collect(),
            more,
        })
    }

    async fn watch(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        peer: Option<PeerInfo>,
        req: proto::WatchAlertsRequest,
    ) -> Result<AlertStream, ApiError> {
        entry.outcome = "WATCHING".into();
        entry.detail = format!("after={}", req.after_id);
        self.state.store.append_audit(entry.clone()).await?;
        let (out, alerts) = mpsc::channel(64);
        tokio::spawn(watch(
            Arc::clone(&self.state),
            Watcher {
                viewer: viewer(caller),
                peer,
                entry: entry.clone(),
            },
            req.after_id,
            out,
        ));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(
            alerts,
        )))
    }

    async fn acknowledge(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::AcknowledgeRequest,
    ) -> Result<proto::Alert, ApiError> {
        let state = &self.state;
        let action = convert::required(
            "action",
            req.action,
            AlertAction::from_code,
            AlertAction::slugs,
        )?;
        let note = convert::note("note", &req.note)?;
        entry.detail = format!("alert={} note={note}", req.alert_id);
        // Another unit's alert answers as one that is not there, and is audited under the
        // caller alone: otherwise the answer would tell which ids exist, and the log would put
        // the refusal on the other unit's record.
        let not_found = || ApiError::NotFound(format!("no alert {} of yours", req.alert_id));
        let alert = state
            .store
            .alert(req.alert_id)
            .await?
            .ok_or_else(not_found)?;
        let visible = match caller.org.role {
            Role::Employer => alert.employer == caller.org.uscc,
            _ => state
                .orgs
                .get(&alert.employer)
                .is_some_and(|employer| caller.may_act_for(&employer)),
        };
        if !visible {
            return Err(not_found());
        }
        entry.employer = alert.employer.clone();
        if let Some(done) = alert.action {
            return Err(ApiError::FailedPrecondition(format!(
                "alert {} was already acknowledged as {}",
                req.alert_id,
                done.label()
            )));
        }
        let acknowledged = state
            .store
            .acknowledge_alert(
                req.alert_id,
                action,
                caller.org.uscc.clone(),
                state.now_micros(),
                entry.clone(),
            )
            .await?
            .ok_or_else(|| {
                ApiError::FailedPrecondition(format!(
                    "alert {} was acknowledged meanwhile",
                    req.alert_id
                ))
            })?;
        Ok(alert_to_proto(acknowledged))
    }
}

fn viewer(caller: &Caller) -> AlertViewer {
    match caller.org.role {
        Role::Bureau => AlertViewer::Bureau(caller.org.uscc.clone()),
        _ => AlertViewer::Employer(caller.org.uscc.clone()),
    }
}

/// Who is watching: what they may see, their connection (whose standing is asked again on
/// every alert and every second), and their call's audit entry.
struct Watcher {
    viewer: AlertViewer,
    peer: Option<PeerInfo>,
    entry: NewEntry,
}

/// How often a quiet watch asks again whether its caller still stands.
const STANDING_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Streams alerts after `cursor` until the client goes away, the caller's standing ends (a
/// revoked or expired certificate, a suspended organisation) or the server stops; the last
/// two end the stream with a status that says why. The bus is subscribed before the first
/// read, so an alert committed between a read and the wait still wakes the watch.
async fn watch(
    state: Arc<AppState>,
    watcher: Watcher,
    mut cursor: u64,
    out: mpsc::Sender<Result<proto::Alert, Status>>,
) {
    let mut bus = state.alert_bus.subscribe();
    let mut stopping = state.stopping.subscribe();
    let mut standing = tokio::time::interval(STANDING_EVERY);
    standing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = |status: Status| async {
        let _ = out
            .send_timeout(Err(status), deadline::idle_limit(&state))
            .await;
    };
    loop {
        bus.mark_unchanged();
        let page = match state
            .store
            .alerts(watcher.viewer.clone(), cursor, false, WATCH_PAGE)
            .await
        {
            Ok(page) => page,
            Err(e) => return end(ApiError::Store(e).into()).await,
        };
        let full = page.len() == WATCH_PAGE;
        for alert in page {
            if let Err(e) = state.identify(watcher.peer.as_ref()) {
                return end(ended(&state, &watcher, e).await).await;
            }
            cursor = alert.id;
            // A watcher that stops reading is let go rather than held for ever.
            if out
                .send_timeout(Ok(alert_to_proto(alert)), deadline::idle_limit(&state))
                .await
                .is_err()
            {
                return;
            }
        }
        if full {
            continue;
        }
        loop {
            tokio::select! {
                changed = bus.changed() => if changed.is_err() { return } else { break },
                _ = out.closed() => return,
                // The flag only ever turns on.
                _ = stopping.changed() => {
                    return end(Status::unavailable(format!(
                        "the server is stopping; watch again after alert {cursor}"
                    )))
                    .await;
                }
                _ = standing.tick() => {
                    if let Err(e) = state.identify(watcher.peer.as_ref()) {
                        return end(ended(&state, &watcher, e).await).await;
                    }
                }
            }
        }
    }
}

/// Audits the end of a watch whose caller no longer stands, and says why to the watcher.
async fn ended(state: &AppState, watcher: &Watcher, why: ApiError) -> Status {
    let entry = NewEntry {
        at_micros: state.now_micros(),
        ..watcher.entry.clone()
    };
    let status = state.refuse(entry, why).await;
    Status::new(
        status.code(),
        format!("the watch has ended: {}", status.message()),
    )
}

pub fn alert_to_proto(alert: AlertRow) -> proto::Alert {
    proto::Alert {
        id: alert.id,
        employer: alert.employer,
        staff_ref: alert.staff_ref,
        created_at: Some(convert::timestamp_micros(alert.created_at)),
        registry_version: alert.registry_version,
        action: alert.action.map(AlertAction::code).unwrap_or_default(),
        acknowledged_at: alert.acknowledged_at.map(convert::timestamp_micros),
        acknowledged_by: alert.acknowledged_by,
        review_id: alert.review_id.unwrap_or_default(),
        check_id: alert.check_id,
    }
}

#[tonic::async_trait]
impl AlertService for AlertApi {
    type WatchAlertsStream = AlertStream;

    async fn watch_alerts(
        &self,
        request: Request<proto::WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::ALERT_WATCH).await?;
        let peer = request.extensions().get::<PeerInfo>().cloned();
        let result = self
            .watch(&caller, &mut entry, peer, request.into_inner())
            .await;
        self.state.finish(entry, result).await
    }

    async fn list_alerts(
        &self,
        request: Request<proto::ListAlertsRequest>,
    ) -> Result<Response<proto::ListAlertsResponse>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::ALERT_LIST).await?;
        let result = self.list(&caller, &mut entry, request.into_inner()).await;
        self.state.finish(entry, result).await
    }

    async fn acknowledge_alert(
        &self,
        request: Request<proto::AcknowledgeRequest>,
    ) -> Result<Response<proto::Alert>, Status> {
        let (caller, mut entry) = self
            .state
            .authorize(&request, &Rpc::ALERT_ACKNOWLEDGE)
            .await?;
        let result = self
            .acknowledge(&caller, &mut entry, request.into_inner())
            .await;
        self.state.finish(entry, result).await
    }
}
