//! `safehire check`: one check; prints the outcome word and exits with a code that says it.

use clap::Args;
use serde_json::json;

use super::{CliError, ConnectArgs, exit, format_timestamp, print_json};
use crate::check::Outcome;
use crate::i18n::Lang;
use crate::identity::DocType;
use crate::org::Role;
use crate::proto;
use crate::proto::check_service_client::CheckServiceClient;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Document number (a resident ID by default).
    #[arg(long)]
    pub doc_number: String,
    /// Name as on the document.
    #[arg(long)]
    pub name: String,
    /// Document type: cn-id, passport, hk-macao, taiwan, foreign-pr.
    #[arg(long, default_value = "cn-id")]
    pub doc_type: String,
    /// pre-hire, periodic or re-verify.
    #[arg(long)]
    pub purpose: String,
    /// sexual (teaching staff, 2020 opinion) or art62 (every category).
    #[arg(long, default_value = "art62")]
    pub scope: String,
    /// Your reference of the applicant's signed authorisation (required for pre-hire).
    #[arg(long, default_value = "")]
    pub consent: String,
    /// USCC of the employer a bureau checks for.
    #[arg(long, default_value = "")]
    pub on_behalf_of: String,
}

pub async fn run(connect: &ConnectArgs, args: CheckArgs, json: bool) -> Result<u8, CliError> {
    let doc_type = DocType::from_slug(&args.doc_type)
        .map_err(|e| CliError::usage(format!("--doc-type: {}", e.reason)))?;
    let (purpose, scope) = super::purpose_and_scope(&args.purpose, &args.scope)?;
    let mut client = CheckServiceClient::new(connect.connect(Role::Employer).await?);
    let reply = client
        .check(proto::CheckRequest {
            subject: Some(proto::Identity {
                doc_type: i32::from(doc_type.code()),
                doc_number: args.doc_number,
                name: args.name,
            }),
            purpose: purpose.code(),
            scope: scope.code(),
            consent_ref: args.consent,
            on_behalf_of: args.on_behalf_of,
        })
        .await?
        .into_inner();
    let outcome = Outcome::from_code(reply.outcome)
        .ok_or_else(|| CliError::new(exit::FAILED, "the server sent an unknown outcome"))?;
    let checked_at = format_timestamp(reply.checked_at.as_ref());
    if json {
        print_json(&json!({
            "outcome": outcome.label(),
            "check_id": reply.check_id,
            "checked_at": checked_at,
            "registry_version": reply.registry_version,
            "scope": scope.label(),
            "employer": reply.employer,
        }));
    } else {
        // The outcome's code stays first and untranslated: scripts and the README read it.
        println!("{}", outcome.label());
        let lang = Lang::from_env();
        if lang == Lang::Zh {
            println!("  {}", lang.t(&format!("outcome.{}", outcome.label())));
        }
        let line = |key: &str, value: &dyn std::fmt::Display| {
            println!("  {}{value}", crate::i18n::pad(lang.t(key), 18));
        };
        line("cli.check.check_id", &reply.check_id);
        line("cli.check.checked_at", &checked_at);
        line("cli.check.registry_version", &reply.registry_version);
        line("cli.check.scope", &scope.label());
        line("cli.check.employer", &reply.employer);
        if outcome == Outcome::NeedsReview {
            println!("  {}", lang.t("cli.check.needs_review"));
        }
    }
    Ok(match outcome {
        Outcome::NoRecord => exit::OK,
        Outcome::RecordFound => exit::RECORD_FOUND,
        Outcome::NeedsReview => exit::NEEDS_REVIEW,
    })
}
