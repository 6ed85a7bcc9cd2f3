//! `safehire review`: review cases (复查) opened by NEEDS_REVIEW outcomes and disputes. An
//! employer lists its cases and disputes a RECORD_FOUND check; a registrar resolves them.

use clap::Subcommand;
use serde_json::json;

use super::{CliError, ConnectArgs, exit, format_timestamp, print_json};
use crate::i18n::Lang;
use crate::org::Role;
use crate::proto;
use crate::proto::review_service_client::ReviewServiceClient;
use crate::roster::{ReviewReason, ReviewResolution};

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// List review cases (employer: its own; bureau: its units'; registrar: all).
    List {
        /// Only cases not yet resolved.
        #[arg(long)]
        open: bool,
        /// Only cases with a greater id.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Most cases listed (server default 1,000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Close a case (registrar).
    Resolve {
        id: u64,
        /// confirmed, cleared or identity-corrected.
        #[arg(long)]
        resolution: String,
        /// Note to the employer (no identity numbers or names).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Dispute a RECORD_FOUND check by its check id: opens a case with the registrars.
    Dispute {
        check_id: String,
        /// Free text for the audit log (no identity numbers or names).
        #[arg(long, default_value = "")]
        note: String,
        /// USCC of the employer a bureau disputes for.
        #[arg(long, default_value = "")]
        on_behalf_of: String,
    },
}

pub async fn run(connect: &ConnectArgs, cmd: ReviewCommand, json: bool) -> Result<u8, CliError> {
    match cmd {
        ReviewCommand::List { open, after, limit } => {
            let mut client = ReviewServiceClient::new(connect.connect(Role::Employer).await?);
            let reply = client
                .list_reviews(proto::ListReviewsRequest {
                    open_only: open,
                    after_id: after,
                    limit: limit.unwrap_or(0),
                })
                .await?
                .into_inner();
            if json {
                let reviews: Vec<serde_json::Value> =
                    reply.reviews.iter().map(review_json).collect();
                print_json(&json!({"reviews": reviews, "more": reply.more}));
            } else {
                for review in &reply.reviews {
                    println!("{}", review_line(review));
                }
                let lang = Lang::from_env();
                match reply.reviews.last() {
                    Some(last) if reply.more => {
                        println!("{}", lang.f("cli.reviews.more", &[&last.id]))
                    }
                    _ => println!("{}", lang.f("cli.reviews.count", &[&reply.reviews.len()])),
                }
            }
        }
        ReviewCommand::Resolve {
            id,
            resolution,
            note,
        } => {
            let resolution = ReviewResolution::parse(&resolution).ok_or_else(|| {
                CliError::usage(format!(
                    "--resolution {resolution}: one of {}",
                    ReviewResolution::slugs()
                ))
            })?;
            let mut client = ReviewServiceClient::new(connect.connect(Role::Registrar).await?);
            let review = client
                .resolve_review(proto::ResolveReviewRequest {
                    review_id: id,
                    resolution: resolution.code(),
                    note,
                })
                .await?
                .into_inner();
            print_one(&review, json);
        }
        ReviewCommand::Dispute {
            check_id,
            note,
            on_behalf_of,
        } => {
            let mut client = ReviewServiceClient::new(connect.connect(Role::Employer).await?);
            let review = client
                .dispute_check(proto::DisputeCheckRequest {
                    check_id,
                    on_behalf_of,
                    note,
                })
                .await?
                .into_inner();
            print_one(&review, json);
        }
    }
    Ok(exit::OK)
}

fn print_one(review: &proto::Review, json: bool) {
    if json {
        print_json(&review_json(review));
    } else {
        println!("{}", review_line(review));
    }
}

fn reason_label(review: &proto::Review) -> &'static str {
    ReviewReason::from_code(review.reason).map_or("?", ReviewReason::label)
}

fn resolution_label(review: &proto::Review) -> Option<&'static str> {
    ReviewResolution::from_code(review.resolution).map(ReviewResolution::label)
}

/// What opened the case: a check or an alert.
fn origin(review: &proto::Review) -> String {
    if review.alert_id != 0 {
        format!("alert {}", review.alert_id)
    } else {
        format!("check {}", review.check_id)
    }
}

fn review_line(review: &proto::Review) -> String {
    let mut line = format!(
        "{} {} {} {} opened {}  {}",
        review.id,
        review.employer,
        reason_label(review),
        origin(review),
        format_timestamp(review.opened_at.as_ref()),
        resolution_label(review).unwrap_or("open"),
    );
    if !review.note.is_empty() {
        line.push_str(&format!("  {}", review.note));
    }
    if !review.source_refs.is_empty() {
        line.push_str(&format!("  records: {}", review.source_refs.join(",")));
    }
    if !review.effect.is_empty() {
        line.push_str(&format!("\n    {}", review.effect));
    }
    line
}

fn review_json(review: &proto::Review) -> serde_json::Value {
    json!({
        "id": review.id,
        "employer": review.employer,
        "reason": reason_label(review),
        "check_id": review.check_id,
        "alert_id": review.alert_id,
        "opened_at": format_timestamp(review.opened_at.as_ref()),
        "resolution": resolution_label(review),
        "resolved_at": review.resolved_at.as_ref().map(|t| format_timestamp(Some(t))),
        "resolved_by": review.resolved_by,
        "note": review.note,
        "source_refs": review.source_refs,
        "effect": review.effect,
    })
}
