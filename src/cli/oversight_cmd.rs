//! `safehire oversight`: the prosecutors' compliance report (a bureau gets the same for the
//! units it supervises), as text, JSON, a CSV of units and a self-contained HTML page.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use time::OffsetDateTime;

use super::moment::{self, Edge};
use super::report::{self, Report};
use super::{CliError, ConnectArgs, exit, print_json};
use crate::clock::calendar_date;
use crate::i18n::Lang;
use crate::org::{Industry, Role};
use crate::proto;
use crate::proto::oversight_service_client::OversightServiceClient;

#[derive(Debug, Subcommand)]
pub enum OversightCommand {
    /// Compliance findings per unit at a moment (prosecutor; a bureau for its own units).
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The moment judged: a date (its end, Beijing time) or an RFC 3339 time; default now.
    #[arg(long, value_name = "DATE|DATETIME")]
    pub as_of: Option<String>,
    /// Only units whose region starts with this ("15", "1506", "150602").
    #[arg(long, value_name = "CODE", default_value = "")]
    pub region: String,
    /// Only units of this industry: primary-secondary-school, kindergarten,
    /// off-campus-training, childcare, paediatric-medical, sports, welfare-institution, other.
    #[arg(long, value_name = "SLUG")]
    pub industry: Option<String>,
    /// Write one row per unit to this CSV file (UTF-8 with BOM).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the report as one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// The language of the HTML page and the text (zh or en); default the locale's (`LANG`).
    #[arg(long, value_name = "LANG", value_parser = ["zh", "en"])]
    pub lang: Option<String>,
}

pub async fn run(connect: &ConnectArgs, cmd: OversightCommand, json: bool) -> Result<u8, CliError> {
    match cmd {
        OversightCommand::Report(args) => report(connect, args, json).await,
    }
}

async fn report(connect: &ConnectArgs, args: ReportArgs, json: bool) -> Result<u8, CliError> {
    let request = request(&args, OffsetDateTime::now_utc())?;
    let mut client = OversightServiceClient::new(connect.connect(Role::Prosecutor).await?);
    let mut stream = client.compliance_report(request).await?.into_inner();
    let mut items = Vec::new();
    while let Some(item) = stream.message().await? {
        items.push(item);
    }
    let report = Report::collect(items)?;
    let lang = args
        .lang
        .as_deref()
        .map_or_else(Lang::from_env, Lang::parse);

    if let Some(path) = &args.out {
        report::write_csv(&report, path)?;
    }
    if let Some(path) = &args.html {
        report::write_html(&report, path, lang)?;
    }
    if json {
        print_json(&report.to_json());
    } else if args.out.is_none() && args.html.is_none() {
        report::print_summary(&report, lang);
    } else {
        let written: Vec<String> = [&args.out, &args.html]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect();
        println!(
            "{}",
            lang.f(
                "report.written",
                &[
                    &report.as_of(),
                    &report.header.audit_seq,
                    &report.totals.units,
                    &report.totals.units_with_findings,
                    &written.join(lang.t("report.and")),
                ]
            )
        );
    }
    Ok(exit::OK)
}

/// The request for these flags at `now`. Today's date means "now": its end is still to come,
/// which the server refuses, and today's report is what the user wants. A later date goes to
/// the server as it is, to be refused there rather than quietly read as today.
fn request(args: &ReportArgs, now: OffsetDateTime) -> Result<proto::ComplianceRequest, CliError> {
    let as_of = match &args.as_of {
        None => None,
        Some(text) => {
            let m = moment::parse("--as-of", text, Edge::End)?;
            (!m.date_only || calendar_date(m.at) != calendar_date(now))
                .then(|| moment::timestamp(m.at))
        }
    };
    let industry = match &args.industry {
        None => 0,
        Some(text) => Industry::parse(text)
            .ok_or_else(|| {
                CliError::usage(format!("--industry {text}: one of {}", Industry::slugs()))
            })?
            .code(),
    };
    Ok(proto::ComplianceRequest {
        as_of,
        region_prefix: args.region.trim().to_string(),
        industry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn args(as_of: Option<&str>, industry: Option<&str>) -> ReportArgs {
        ReportArgs {
            as_of: as_of.map(String::from),
            region: "1506".into(),
            industry: industry.map(String::from),
            out: None,
            html: None,
            lang: None,
        }
    }

    #[test]
    fn today_means_now_and_a_past_date_its_last_moment() {
        let now = datetime!(2026-11-24 10:00 UTC);
        let today = request(&args(Some("2026-11-24"), None), now).unwrap();
        assert_eq!(today.as_of, None);
        let past = request(&args(Some("2026-11-23"), Some("kindergarten")), now).unwrap();
        assert_eq!(
            past.as_of.map(|t| t.seconds),
            Some(datetime!(2026-11-23 23:59:59 +8).unix_timestamp())
        );
        assert_eq!(past.industry, Industry::Kindergarten.code());
        assert_eq!(past.region_prefix, "1506");
        let later = request(&args(Some("2026-11-25"), None), now).unwrap();
        assert!(later.as_of.is_some(), "for the server to refuse");
        let beijing_evening = datetime!(2026-11-24 17:00 UTC);
        let tomorrow_there = request(&args(Some("2026-11-25"), None), beijing_evening).unwrap();
        assert_eq!(tomorrow_there.as_of, None, "01:00 on the 25th in Beijing");
    }

    #[test]
    fn an_unknown_industry_is_a_usage_error() {
        let now = datetime!(2026-11-24 10:00 UTC);
        let error = request(&args(None, Some("zoo")), now).unwrap_err();
        assert_eq!(error.code, exit::USAGE);
    }
}
