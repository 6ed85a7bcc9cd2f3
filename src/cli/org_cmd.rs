//! `safehire org`: enrol (one, or a whole file), suspend, reinstate and list organisations.

use clap::Subcommand;
use serde_json::json;
use tokio_stream::StreamExt;

use super::org_import::{self, ImportArgs};
use super::{CliError, ConnectArgs, exit, format_timestamp, print_json};
use crate::i18n::Lang;
use crate::org::{Industry, OrgStatus, Role};
use crate::proto;
use crate::proto::organisation_service_client::OrganisationServiceClient;

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Enrol an organisation, or update its details (operator).
    Enroll {
        /// Unified social credit code.
        #[arg(long)]
        uscc: String,
        #[arg(long)]
        name: String,
        /// operator, registrar, bureau, employer or prosecutor.
        #[arg(long)]
        role: String,
        /// 6-digit administrative division code.
        #[arg(long)]
        region: String,
        /// For employers: primary-secondary-school, kindergarten, off-campus-training,
        /// childcare, paediatric-medical, sports, welfare-institution, other.
        #[arg(long)]
        industry: Option<String>,
        /// USCC of the supervising bureau.
        #[arg(long, default_value = "")]
        bureau: String,
        /// For employers: the staff it employs; its roster may not grow past it (plus the
        /// server's margin).
        #[arg(long)]
        headcount: Option<u32>,
    },
    /// Enrol every organisation in a file with the header of `safehire gen orgs` (operator; a
    /// bureau for the employers it supervises). Exit 10 when some rows were rejected.
    Import(ImportArgs),
    /// Suspend an organisation: its calls are refused from the next one on (operator).
    Suspend {
        uscc: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift a suspension (operator).
    Reinstate {
        uscc: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// List organisations (operator, prosecutor; a bureau sees its own units).
    List {
        #[arg(long)]
        role: Option<String>,
        /// Region prefix: "15" a province, "1506" a city, "150602" a district.
        #[arg(long, default_value = "")]
        region: String,
    },
}

pub async fn run(connect: &ConnectArgs, cmd: OrgCommand, json: bool) -> Result<u8, CliError> {
    let mut client = OrganisationServiceClient::new(connect.connect(Role::Operator).await?);
    match cmd {
        OrgCommand::Enroll {
            uscc,
            name,
            role,
            region,
            industry,
            bureau,
            headcount,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                CliError::usage(format!("--role {role}: one of {}", Role::slugs()))
            })?;
            let industry = match industry {
                None => 0,
                Some(text) => Industry::parse(&text)
                    .ok_or_else(|| {
                        CliError::usage(format!("--industry {text}: one of {}", Industry::slugs()))
                    })?
                    .code(),
            };
            let org = client
                .enroll(proto::EnrollRequest {
                    uscc,
                    name,
                    role: role.code(),
                    region,
                    industry,
                    supervising_bureau: bureau,
                })
                .await?
                .into_inner();
            if let Some(headcount) = headcount {
                client
                    .set_headcount(proto::SetHeadcountRequest {
                        uscc: org.uscc.clone(),
                        headcount,
                    })
                    .await?;
            }
            print_orgs(&[org], json);
        }
        OrgCommand::Import(args) => return org_import::run(&mut client, args, json).await,
        OrgCommand::Suspend { uscc, reason } => {
            let org = client
                .suspend(proto::StatusChangeRequest { uscc, reason })
                .await?
                .into_inner();
            print_orgs(&[org], json);
        }
        OrgCommand::Reinstate { uscc, reason } => {
            let org = client
                .reinstate(proto::StatusChangeRequest { uscc, reason })
                .await?
                .into_inner();
            print_orgs(&[org], json);
        }
        OrgCommand::List { role, region } => {
            let role = match role {
                None => 0,
                Some(text) => Role::parse(&text)
                    .ok_or_else(|| {
                        CliError::usage(format!("--role {text}: one of {}", Role::slugs()))
                    })?
                    .code(),
            };
            let mut stream = client
                .list(proto::ListOrganisationsRequest {
                    role,
                    region_prefix: region,
                })
                .await?
                .into_inner();
            let mut orgs = Vec::new();
            while let Some(org) = stream.next().await {
                orgs.push(org?);
            }
            print_orgs(&orgs, json);
        }
    }
    Ok(exit::OK)
}

fn label<T: Copy>(
    code: i32,
    from_code: fn(i32) -> Option<T>,
    name: fn(T) -> &'static str,
) -> &'static str {
    from_code(code).map(name).unwrap_or("?")
}

fn print_orgs(orgs: &[proto::Organisation], json: bool) {
    if json {
        let list: Vec<serde_json::Value> = orgs
            .iter()
            .map(|o| {
                json!({
                    "uscc": o.uscc,
                    "name": o.name,
                    "role": label(o.role, Role::from_code, Role::label),
                    "region": o.region,
                    "industry": label(o.industry, Industry::from_code, Industry::label),
                    "supervising_bureau": o.supervising_bureau,
                    "status": label(o.status, OrgStatus::from_code, OrgStatus::label),
                    "enrolled_at": format_timestamp(o.enrolled_at.as_ref()),
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(list));
        return;
    }
    for o in orgs {
        println!(
            "{}  {:<10} {:<9} {}  {}{}",
            o.uscc,
            label(o.role, Role::from_code, Role::label),
            label(o.status, OrgStatus::from_code, OrgStatus::label),
            o.region,
            o.name,
            if o.supervising_bureau.is_empty() {
                String::new()
            } else {
                format!("  (bureau {})", o.supervising_bureau)
            }
        );
    }
    if orgs.len() != 1 {
        println!("{}", Lang::from_env().f("cli.org.count", &[&orgs.len()]));
    }
}
