//! `safehire alerts`: the alerts raised when a record starts to apply to someone on a current
//! roster: list them, watch for new ones, record what was done (employer, bureau).

use std::io::Write;

use clap::Subcommand;
use serde_json::json;

use super::{CliError, ConnectArgs, exit, format_timestamp, print_json};
use crate::i18n::Lang;
use crate::org::Role;
use crate::proto;
use crate::proto::alert_service_client::AlertServiceClient;
use crate::roster::AlertAction;

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List alerts (an employer its own, a bureau those of the units it supervises).
    List {
        /// Only alerts with a greater id.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Only alerts not yet acknowledged.
        #[arg(long)]
        unacknowledged: bool,
        /// Most alerts listed (server default 1,000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Print alerts as they are raised, until the server ends the stream or Ctrl-C.
    Watch {
        /// Start after this alert id (the last one seen) to resume without a gap.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Record what was done about an alert; disputed opens a review case.
    Ack {
        id: u64,
        /// dismissed, suspended-pending-review, disputed or not-our-staff.
        #[arg(long)]
        action: String,
        /// Free text for the audit log (no identity numbers or names).
        #[arg(long, default_value = "")]
        note: String,
    },
}

pub async fn run(connect: &ConnectArgs, cmd: AlertsCommand, json: bool) -> Result<u8, CliError> {
    match cmd {
        AlertsCommand::List {
            after,
            unacknowledged,
            limit,
        } => {
            let mut client = AlertServiceClient::new(connect.connect(Role::Employer).await?);
            let reply = client
                .list_alerts(proto::ListAlertsRequest {
                    after_id: after,
                    unacknowledged_only: unacknowledged,
                    limit: limit.unwrap_or(0),
                })
                .await?
                .into_inner();
            if json {
                let alerts: Vec<serde_json::Value> = reply.alerts.iter().map(alert_json).collect();
                print_json(&json!({"alerts": alerts, "more": reply.more}));
            } else {
                for alert in &reply.alerts {
                    println!("{}", alert_line(alert));
                }
                let lang = Lang::from_env();
                match reply.alerts.last() {
                    Some(last) if reply.more => {
                        println!("{}", lang.f("cli.alerts.more", &[&last.id]))
                    }
                    _ => println!("{}", lang.f("cli.alerts.count", &[&reply.alerts.len()])),
                }
            }
            Ok(exit::OK)
        }
        AlertsCommand::Watch { after } => watch(connect, after, json).await,
        AlertsCommand::Ack { id, action, note } => {
            let action = AlertAction::parse(&action).ok_or_else(|| {
                CliError::usage(format!(
                    "--action {action}: one of {}",
                    AlertAction::slugs()
                ))
            })?;
            let mut client = AlertServiceClient::new(connect.connect(Role::Employer).await?);
            let alert = client
                .acknowledge_alert(proto::AcknowledgeRequest {
                    alert_id: id,
                    action: action.code(),
                    note,
                })
                .await?
                .into_inner();
            if json {
                print_json(&alert_json(&alert));
            } else {
                println!("{}", alert_line(&alert));
                if alert.review_id != 0 {
                    println!(
                        "{}",
                        Lang::from_env().f("cli.alerts.review_opened", &[&alert.review_id])
                    );
                }
            }
            Ok(exit::OK)
        }
    }
}

/// Prints each alert as it arrives (one JSON object a line with --json), flushing every line
/// so that a pipe sees it at once.
async fn watch(connect: &ConnectArgs, after: u64, json: bool) -> Result<u8, CliError> {
    let mut client = AlertServiceClient::new(connect.connect(Role::Employer).await?);
    let mut stream = client
        .watch_alerts(proto::WatchAlertsRequest { after_id: after })
        .await?
        .into_inner();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let alert = tokio::select! {
            _ = &mut interrupted => return Ok(exit::OK),
            next = stream.message() => match next? {
                Some(alert) => alert,
                None => return Ok(exit::OK),
            },
        };
        let line = if json {
            alert_json(&alert).to_string()
        } else {
            alert_line(&alert)
        };
        let mut stdout = std::io::stdout();
        // A reader that went away (a closed pipe) ends the watch.
        if writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return Ok(exit::OK);
        }
    }
}

fn action_label(alert: &proto::Alert) -> Option<&'static str> {
    AlertAction::from_code(alert.action).map(AlertAction::label)
}

fn alert_line(alert: &proto::Alert) -> String {
    format!(
        "{}  {}  {}  {}  {}",
        alert.id,
        alert.employer,
        alert.staff_ref,
        format_timestamp(alert.created_at.as_ref()),
        action_label(alert).unwrap_or("unacknowledged")
    )
}

fn alert_json(alert: &proto::Alert) -> serde_json::Value {
    json!({
        "id": alert.id,
        "employer": alert.employer,
        "staff_ref": alert.staff_ref,
        "created_at": format_timestamp(alert.created_at.as_ref()),
        "registry_version": alert.registry_version,
        "action": action_label(alert),
        "acknowledged_at": alert.acknowledged_at.as_ref().map(|t| format_timestamp(Some(t))),
        "acknowledged_by": alert.acknowledged_by,
        "review_id": alert.review_id,
    })
}
