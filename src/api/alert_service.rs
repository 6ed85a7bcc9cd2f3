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
        req: proto::WatchAlertsRequest,
    ) -> Result<AlertStream, ApiError> {
        entry.outcome = "WATCHING".into();
        entry.detail = format!("after={}", req.after_id);
        self.state.store.append_audit(entry.clone()).await?;
        let (out, alerts) = mpsc::channel(64);
        tokio::spawn(watch(
            Arc::clone(&self.state),
            viewer(caller),
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
        let alert = state
            .store
            .alert(req.alert_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no alert {}", req.alert_id)))?;
        entry.employer = alert.employer.clone();
        let visible = match caller.org.role {
            Role::Employer => alert.employer == caller.org.uscc,
            _ => state
                .orgs
                .get(&alert.employer)
                .is_some_and(|employer| caller.may_act_for(&employer)),
        };
        if !visible {
            return Err(ApiError::PermissionDenied(format!(
                "alert {} concerns another employer's staff",
                req.alert_id
            )));
        }
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

/// Streams alerts after `cursor` until the client goes away. The bus is subscribed before the
/// first read, so an alert committed between a read and the wait still wakes the watch.
async fn watch(
    state: Arc<AppState>,
    viewer: AlertViewer,
    mut cursor: u64,
    out: mpsc::Sender<Result<proto::Alert, Status>>,
) {
    let mut bus = state.alert_bus.subscribe();
    loop {
        bus.mark_unchanged();
        let page = match state
            .store
            .alerts(viewer.clone(), cursor, false, WATCH_PAGE)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                let _ = out
                    .send_timeout(Err(ApiError::Store(e).into()), deadline::idle_limit(&state))
                    .await;
                return;
            }
        };
        let full = page.len() == WATCH_PAGE;
        for alert in page {
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
        tokio::select! {
            changed = bus.changed() => if changed.is_err() { return },
            _ = out.closed() => return,
        }
    }
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
        let result = self.watch(&caller, &mut entry, request.into_inner()).await;
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
