//! The dev organisations (one per role, all in one fictitious district) and their
//! certificates, created on the first start in dev mode so that a newcomer can make a real
//! check over mTLS with no manual step.

use std::path::Path;

use crate::certs::{self, CertError, OrgCertRequest};
use crate::identity::uscc_check_char;
use crate::org::{Enrolment, EnrolmentError, Industry, Role};

/// The dev district: Dongsheng, Ordos (Inner Mongolia).
pub const DEV_REGION: &str = "150602";

/// A dev organisation: its role slug is also its certificate's file name.
#[derive(Debug, Clone)]
pub struct DevOrg {
    pub role: Role,
    pub uscc: String,
    pub name: &'static str,
}

/// The dev set: fixed codes, so that certificates and the registry agree across restarts.
pub fn dev_orgs() -> Vec<DevOrg> {
    [
        (
            Role::Operator,
            "11150602MB0000001",
            "safehire 运维中心 (dev)",
        ),
        (Role::Registrar, "11150602MB0000002", "东胜区公安分局 (dev)"),
        (Role::Bureau, "11150602MB0000003", "东胜区教育局 (dev)"),
        (Role::Employer, "12150602MB0000004", "东胜区第一小学 (dev)"),
        (
            Role::Prosecutor,
            "11150602MB0000005",
            "东胜区人民检察院 (dev)",
        ),
    ]
    .into_iter()
    .map(|(role, body, name)| DevOrg {
        role,
        uscc: with_check_char(body),
        name,
    })
    .collect()
}

fn with_check_char(body: &str) -> String {
    let check = uscc_check_char(body).unwrap_or('0');
    format!("{body}{check}")
}

/// The registry entries for the dev set; the dev school is supervised by the dev bureau.
pub fn dev_enrolments() -> Result<Vec<Enrolment>, EnrolmentError> {
    let orgs = dev_orgs();
    let bureau = orgs
        .iter()
        .find(|o| o.role == Role::Bureau)
        .map(|o| o.uscc.clone())
        .unwrap_or_default();
    orgs.iter()
        .map(|o| {
            let (industry, supervisor) = if o.role == Role::Employer {
                (Some(Industry::PrimarySecondarySchool), bureau.as_str())
            } else {
                (None, "")
            };
            Enrolment::new(&o.uscc, o.name, o.role, DEV_REGION, industry, supervisor)
        })
        .collect()
}

/// Writes the dev CA, server and per-role client certificates into `dir` unless a complete set
/// is already there.
pub fn ensure_dev_certs(dir: &Path, now: time::OffsetDateTime) -> Result<bool, CertError> {
    let orgs = dev_orgs();
    let requests: Vec<OrgCertRequest<'_>> = orgs
        .iter()
        .map(|o| OrgCertRequest {
            uscc: &o.uscc,
            name: o.name,
            role: o.role.slug(),
        })
        .collect();
    if certs::dev_set_complete(dir, &requests) {
        return Ok(false);
    }
    certs::write_dev_set(dir, &requests, now)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Uscc;

    #[test]
    fn dev_codes_are_valid_usccs_and_the_school_has_a_bureau() {
        for org in dev_orgs() {
            assert!(Uscc::parse(&org.uscc).is_ok(), "{}", org.uscc);
        }
        let enrolments = dev_enrolments().unwrap();
        let school = enrolments
            .iter()
            .find(|e| e.role == Role::Employer)
            .unwrap();
        assert!(school.supervising_bureau.is_some());
    }
}
