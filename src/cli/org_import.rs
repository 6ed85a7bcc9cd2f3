//! `safehire org import FILE`: enrols every organisation in a file with the header of
//! `safehire gen orgs` (uscc,name,role,region,industry,supervising_bureau), one Enroll call per
//! row, so that each enrolment is checked and audited exactly as a single one is. A bad row is
//! reported and skipped; the rest of the file still goes in, because a bureau onboarding
//! hundreds of units should fix three rows, not start over.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;
use tonic::Code;
use tonic::transport::Channel;

use super::{CliError, exit, print_json, progress_bar};
use crate::org::{Industry, Role};
use crate::proto;
use crate::proto::organisation_service_client::OrganisationServiceClient;
use crate::tabular::{Encoding, Table, TableError};

const REQUIRED: &[&str] = &["uscc", "name", "role", "region"];
const OPTIONAL: &[&str] = &["industry", "supervising_bureau"];

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Organisations file: .csv (UTF-8, UTF-8 with BOM, GB18030/GBK) or .xlsx, with the header
    /// uscc,name,role,region and optionally industry,supervising_bureau (role and industry as
    /// slugs: employer, kindergarten, …).
    pub file: PathBuf,
    /// Encoding of a CSV file (utf-8, gb18030, gbk); detected when not given.
    #[arg(long)]
    pub encoding: Option<String>,
}

/// A row that was not enrolled, and why.
struct Rejection {
    row: u64,
    field: String,
    reason: String,
}

/// A row as read: ready to send, or already known to be bad.
type ReadRow = (u64, Result<proto::EnrollRequest, Rejection>);

#[derive(Default)]
struct Tally {
    created: u64,
    updated: u64,
    rejected: Vec<Rejection>,
}

pub async fn run(
    client: &mut OrganisationServiceClient<Channel>,
    args: ImportArgs,
    json: bool,
) -> Result<u8, CliError> {
    let encoding =
        match &args.encoding {
            None => None,
            Some(text) => Some(Encoding::parse(text).ok_or_else(|| {
                CliError::usage(format!("--encoding {text}: utf-8, gb18030 or gbk"))
            })?),
        };
    let path = args.file.clone();
    let rows = tokio::task::spawn_blocking(move || read(&path, encoding))
        .await
        .map_err(|e| CliError::new(exit::FAILED, format!("reading the file failed: {e}")))??;
    let mut known = enrolled(client).await?;

    let progress = progress_bar(rows.len() as u64, "enrolling");
    let mut tally = Tally::default();
    for (row, parsed) in rows {
        progress.inc(1);
        let outcome = match parsed {
            Err(rejection) => Err(rejection),
            // The server answers with the normalised USCC; a new one is a creation.
            Ok(request) => match client.enroll(request).await {
                Ok(org) => Ok(known.insert(org.into_inner().uscc)),
                Err(status) => Err(refusal(row, status, &tally)?),
            },
        };
        match outcome {
            Ok(true) => tally.created += 1,
            Ok(false) => tally.updated += 1,
            Err(rejection) => {
                if !json {
                    progress.suspend(|| {
                        println!(
                            "row {}: {}: {}",
                            rejection.row, rejection.field, rejection.reason
                        )
                    });
                }
                tally.rejected.push(rejection);
            }
        }
    }
    progress.finish_and_clear();
    print_tally(&args.file, &tally, json);
    Ok(if tally.rejected.is_empty() {
        exit::OK
    } else {
        exit::ROW_ERRORS
    })
}

/// The USCCs already enrolled (those the caller may see), to tell a creation from an update.
async fn enrolled(
    client: &mut OrganisationServiceClient<Channel>,
) -> Result<HashSet<String>, CliError> {
    let context = |status: tonic::Status| {
        let error = CliError::from(status);
        CliError::new(
            error.code,
            format!("listing the enrolled organisations: {}", error.message),
        )
    };
    let mut stream = client
        .list(proto::ListOrganisationsRequest::default())
        .await
        .map_err(context)?
        .into_inner();
    let mut known = HashSet::new();
    while let Some(org) = stream.message().await.map_err(context)? {
        known.insert(org.uscc);
    }
    Ok(known)
}

/// A refusal of one row's content becomes a rejection; anything else (the server gone, the
/// caller suspended) stops the import, saying how far it got.
fn refusal(row: u64, status: tonic::Status, tally: &Tally) -> Result<Rejection, CliError> {
    match status.code() {
        Code::InvalidArgument => {
            let (field, reason) = status
                .message()
                .split_once(": ")
                .unwrap_or(("row", status.message()));
            Ok(Rejection {
                row,
                field: field.to_string(),
                reason: reason.to_string(),
            })
        }
        Code::PermissionDenied => Ok(Rejection {
            row,
            field: "permission denied".into(),
            reason: status.message().to_string(),
        }),
        _ => {
            let error = CliError::from(status);
            Err(CliError::new(
                error.code,
                format!(
                    "row {row}: {}; stopped after {} created, {} updated, {} rejected",
                    error.message,
                    tally.created,
                    tally.updated,
                    tally.rejected.len()
                ),
            ))
        }
    }
}

/// Reads the whole file (organisation files are small) and turns each row into a request.
fn read(path: &Path, encoding: Option<Encoding>) -> Result<Vec<ReadRow>, CliError> {
    let invalid = CliError::from;
    let table = Table::open(path, encoding).map_err(invalid)?;
    let columns = table.columns(REQUIRED, OPTIONAL).map_err(invalid)?;
    let mut rows = table.rows();
    let mut out = Vec::new();
    while let Some(read) = rows.next() {
        match read {
            Ok(row) => {
                let get = |name: &str| columns.get(&row, name).trim().to_string();
                let parsed = match row.problems.first() {
                    Some((column, reason)) => Err(Rejection {
                        row: row.number,
                        field: column.clone(),
                        reason: reason.clone(),
                    }),
                    None => request(row.number, &get),
                };
                out.push((row.number, parsed));
            }
            Err(TableError::Format { reason, .. }) => {
                let row = rows.last_number();
                out.push((
                    row,
                    Err(Rejection {
                        row,
                        field: "row".into(),
                        reason,
                    }),
                ));
            }
            Err(other) => return Err(invalid(other)),
        }
    }
    Ok(out)
}

/// The Enroll request for one row; role and industry are slugs (or labels) the client knows,
/// everything else is for the server to judge.
fn request(row: u64, get: &dyn Fn(&str) -> String) -> Result<proto::EnrollRequest, Rejection> {
    let reject = |field: &str, reason: String| Rejection {
        row,
        field: field.into(),
        reason,
    };
    let role_text = get("role");
    let role = Role::parse(&role_text).ok_or_else(|| {
        reject(
            "role",
            format!("{role_text:?} is not one of {}", Role::slugs()),
        )
    })?;
    let industry = match get("industry").as_str() {
        "" => 0,
        text => Industry::parse(text)
            .ok_or_else(|| {
                reject(
                    "industry",
                    format!("{text:?} is not one of {}", Industry::slugs()),
                )
            })?
            .code(),
    };
    Ok(proto::EnrollRequest {
        uscc: get("uscc"),
        name: get("name"),
        role: role.code(),
        region: get("region"),
        industry,
        supervising_bureau: get("supervising_bureau"),
    })
}

fn print_tally(file: &Path, tally: &Tally, json: bool) {
    let rows = tally.created + tally.updated + tally.rejected.len() as u64;
    if json {
        print_json(&json!({
            "file": file.display().to_string(),
            "rows": rows,
            "created": tally.created,
            "updated": tally.updated,
            "rejected": tally.rejected.len(),
            "errors": tally.rejected.iter()
                .map(|r| json!({"row": r.row, "field": r.field, "reason": r.reason}))
                .collect::<Vec<_>>(),
        }));
    } else {
        println!(
            "{rows} rows: {} created, {} updated, {} rejected",
            tally.created,
            tally.updated,
            tally.rejected.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[(&str, &str)]) -> impl Fn(&str) -> String {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map_or(String::new(), |(_, v)| v.clone())
        }
    }

    #[test]
    fn role_and_industry_are_read_as_slugs() {
        let get = row(&[
            ("uscc", "X"),
            ("role", "employer"),
            ("industry", "kindergarten"),
        ]);
        let request = request(1, &get).map_err(|r| r.reason).unwrap();
        assert_eq!(request.role, Role::Employer.code());
        assert_eq!(request.industry, Industry::Kindergarten.code());
        let none = request_for(&[("role", "bureau")]);
        assert_eq!(none.map(|r| r.industry).ok(), Some(0));
    }

    fn request_for(fields: &[(&str, &str)]) -> Result<proto::EnrollRequest, Rejection> {
        request(3, &row(fields))
    }

    #[test]
    fn an_xlsx_file_reads_like_a_csv_and_bad_rows_keep_their_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orgs.xlsx");
        let row = |fields: [&str; 6]| fields.map(String::from).to_vec();
        crate::tabular::write_xlsx(
            &path,
            &crate::synth::ORGS_HEADER,
            [
                row([
                    "U1",
                    "阳光幼儿园",
                    "employer",
                    "150602",
                    "kindergarten",
                    "B1",
                ]),
                row(["U2", "星星学校", "school", "150602", "", ""]),
            ],
        )
        .unwrap();
        let rows = read(&path, None).map_err(|e| e.message).unwrap();
        assert_eq!(rows.len(), 2);
        let (number, first) = &rows[0];
        let first = first.as_ref().map_err(|r| r.reason.clone()).unwrap();
        assert_eq!(*number, 1);
        assert_eq!(
            (first.name.as_str(), first.supervising_bureau.as_str()),
            ("阳光幼儿园", "B1")
        );
        let (number, second) = &rows[1];
        assert_eq!(*number, 2);
        assert!(
            second
                .as_ref()
                .is_err_and(|r| r.row == 2 && r.field == "role")
        );
    }

    #[test]
    fn an_unknown_slug_names_its_field() {
        let bad = request_for(&[("role", "school")]).err().unwrap();
        assert_eq!((bad.row, bad.field.as_str()), (3, "role"));
        let bad = request_for(&[("role", "employer"), ("industry", "zoo")])
            .err()
            .unwrap();
        assert_eq!(bad.field, "industry");
        assert!(bad.reason.contains("kindergarten"), "{}", bad.reason);
    }
}
