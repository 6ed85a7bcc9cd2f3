//! Organisations: who a caller is (from its certificate's USCC) and what it may do (from the
//! server's own registry, never from the caller's claim).

use time::OffsetDateTime;

use crate::coded::coded_enum;
use crate::identity::{IdentityError, Uscc};

coded_enum! {
    Role {
        Operator = 1, "operator", "OPERATOR";
        Registrar = 2, "registrar", "REGISTRAR";
        Bureau = 3, "bureau", "BUREAU";
        Employer = 4, "employer", "EMPLOYER";
        Prosecutor = 5, "prosecutor", "PROSECUTOR";
    }
}

coded_enum! {
    /// Kinds of unit in close contact with minors (Minors Protection Law art. 130).
    Industry {
        PrimarySecondarySchool = 1, "primary-secondary-school", "PRIMARY_SECONDARY_SCHOOL";
        Kindergarten = 2, "kindergarten", "KINDERGARTEN";
        OffCampusTraining = 3, "off-campus-training", "OFF_CAMPUS_TRAINING";
        Childcare = 4, "childcare", "CHILDCARE";
        PaediatricMedical = 5, "paediatric-medical", "PAEDIATRIC_MEDICAL";
        Sports = 6, "sports", "SPORTS";
        WelfareInstitution = 7, "welfare-institution", "WELFARE_INSTITUTION";
        Other = 8, "other", "OTHER";
        /// Bureaus, registrars and the like, which are not supervised units.
        NotApplicable = 9, "not-applicable", "NOT_APPLICABLE";
    }
}

coded_enum! {
    OrgStatus {
        Active = 1, "active", "ACTIVE";
        Suspended = 2, "suspended", "SUSPENDED";
    }
}

/// Longest organisation name accepted.
pub const MAX_ORG_NAME_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub uscc: String,
    pub name: String,
    pub role: Role,
    pub region: String,
    pub industry: Industry,
    pub supervising_bureau: Option<String>,
    pub status: OrgStatus,
    pub enrolled_at: OffsetDateTime,
}

/// An enrolment as asked for, before it is checked against the registry.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub uscc: Uscc,
    pub name: String,
    pub role: Role,
    pub region: String,
    pub industry: Industry,
    pub supervising_bureau: Option<Uscc>,
}

/// A field-level reason an enrolment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct EnrolmentError {
    pub field: &'static str,
    pub reason: String,
}

impl From<IdentityError> for EnrolmentError {
    fn from(e: IdentityError) -> Self {
        Self {
            field: e.field,
            reason: e.reason,
        }
    }
}

impl Enrolment {
    pub fn new(
        uscc: &str,
        name: &str,
        role: Role,
        region: &str,
        industry: Option<Industry>,
        supervising_bureau: &str,
    ) -> Result<Self, EnrolmentError> {
        let uscc = Uscc::parse(uscc)?;
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(err("name", "must not be empty"));
        }
        if name.chars().count() > MAX_ORG_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(err(
                "name",
                &format!("at most {MAX_ORG_NAME_CHARS} printable characters"),
            ));
        }
        let region = region.trim().to_string();
        validate_region(&region)?;
        let industry = match (role, industry) {
            (Role::Employer, None | Some(Industry::NotApplicable)) => {
                return Err(err(
                    "industry",
                    &format!(
                        "an employer needs its industry, one of: {}",
                        Industry::slugs()
                    ),
                ));
            }
            (Role::Employer, Some(industry)) => industry,
            (_, _) => Industry::NotApplicable,
        };
        let supervising_bureau = match supervising_bureau.trim() {
            "" => None,
            code => {
                let bureau = Uscc::parse(code).map_err(|e| err("supervising_bureau", &e.reason))?;
                if bureau.as_str() == uscc.as_str() {
                    return Err(err(
                        "supervising_bureau",
                        "an organisation cannot supervise itself",
                    ));
                }
                Some(bureau)
            }
        };
        Ok(Self {
            uscc,
            name,
            role,
            region,
            industry,
            supervising_bureau,
        })
    }
}

/// A 6-digit administrative division code with a plausible province.
pub fn validate_region(region: &str) -> Result<(), EnrolmentError> {
    if region.len() != 6 || !region.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            "region",
            "must be a 6-digit administrative division code",
        ));
    }
    let province: u32 = region[..2].parse().unwrap_or(0);
    if !matches!(province, 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82)
    {
        return Err(err(
            "region",
            &format!("unknown province code {}", &region[..2]),
        ));
    }
    Ok(())
}

fn err(field: &'static str, reason: &str) -> EnrolmentError {
    EnrolmentError {
        field,
        reason: reason.to_string(),
    }
}

/// The organisation behind a connection, as established from its certificate and the registry.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org: Organisation,
    pub cert_fingerprint: String,
}

impl Caller {
    /// Whether this caller may act for `employer`: an employer for itself, a bureau for the
    /// units it supervises.
    pub fn may_act_for(&self, employer: &Organisation) -> bool {
        match self.org.role {
            Role::Employer => employer.uscc == self.org.uscc,
            Role::Bureau => employer.supervising_bureau.as_deref() == Some(self.org.uscc.as_str()),
            _ => false,
        }
    }
}
