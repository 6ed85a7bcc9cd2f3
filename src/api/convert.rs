//! Translation between proto messages and domain values, with field-named errors.

use time::OffsetDateTime;

use super::ApiError;
use crate::check::{Outcome, Purpose, Scope};
use crate::identity::{DocType, Document, PersonName};
use crate::org::{Industry, OrgStatus, Organisation, Role};
use crate::proto;
use crate::registry::{Category, RecordKind};

/// A domain enum from a proto enum value, where 0 means the client left the field unset.
pub fn required<T>(
    field: &str,
    value: i32,
    from_code: fn(i32) -> Option<T>,
    slugs: fn() -> String,
) -> Result<T, ApiError> {
    if value == 0 {
        return Err(ApiError::invalid(
            field,
            format!("is required; one of: {}", slugs()),
        ));
    }
    from_code(value).ok_or_else(|| {
        ApiError::invalid(field, format!("unknown value {value}; one of: {}", slugs()))
    })
}

pub fn purpose(value: i32) -> Result<Purpose, ApiError> {
    required("purpose", value, Purpose::from_code, Purpose::slugs)
}

pub fn scope(value: i32) -> Result<Scope, ApiError> {
    required("scope", value, Scope::from_code, Scope::slugs)
}

pub fn category(value: i32) -> Result<Category, ApiError> {
    required("category", value, Category::from_code, Category::slugs)
}

pub fn record_kind(value: i32) -> Result<RecordKind, ApiError> {
    required("kind", value, RecordKind::from_code, RecordKind::slugs)
}

pub fn role(value: i32) -> Result<Role, ApiError> {
    required("role", value, Role::from_code, Role::slugs)
}

/// Industry is optional for non-employers: 0 is `None`.
pub fn industry(value: i32) -> Result<Option<Industry>, ApiError> {
    if value == 0 {
        return Ok(None);
    }
    Industry::from_code(value)
        .map(Some)
        .ok_or_else(|| ApiError::invalid("industry", format!("unknown value {value}")))
}

pub fn doc_type(value: i32) -> Result<DocType, ApiError> {
    match proto::DocType::try_from(value) {
        Ok(proto::DocType::CnResidentId) => Ok(DocType::CnResidentId),
        Ok(proto::DocType::Passport) => Ok(DocType::Passport),
        Ok(proto::DocType::HkMacaoPermit) => Ok(DocType::HkMacaoPermit),
        Ok(proto::DocType::TaiwanPermit) => Ok(DocType::TaiwanPermit),
        Ok(proto::DocType::ForeignPermanentResident) => Ok(DocType::ForeignPermanentResident),
        Ok(proto::DocType::Unspecified) => Err(ApiError::invalid("doc_type", "is required")),
        Err(_) => Err(ApiError::invalid(
            "doc_type",
            format!("unknown value {value}"),
        )),
    }
}

/// A validated, normalised identity from the wire, errors prefixed with `parent`.
pub fn identity(
    parent: &str,
    identity: Option<&proto::Identity>,
    today: time::Date,
) -> Result<(Document, PersonName), ApiError> {
    let identity = identity.ok_or_else(|| ApiError::invalid(parent, "is required"))?;
    let doc_type = doc_type(identity.doc_type).map_err(|e| e.within(parent))?;
    let document = Document::parse(doc_type, &identity.doc_number, today)
        .map_err(|e| ApiError::from(e).within(parent))?;
    let name = PersonName::parse(&identity.name).map_err(|e| ApiError::from(e).within(parent))?;
    Ok((document, name))
}

pub fn outcome_to_proto(outcome: Outcome) -> proto::Outcome {
    match outcome {
        Outcome::NoRecord => proto::Outcome::NoRecord,
        Outcome::RecordFound => proto::Outcome::RecordFound,
        Outcome::NeedsReview => proto::Outcome::NeedsReview,
    }
}

pub fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    }
}

pub fn timestamp_micros(micros: i64) -> prost_types::Timestamp {
    timestamp(crate::clock::from_micros(micros))
}

/// A time the caller sent; `None` when unset.
pub fn moment(
    field: &str,
    ts: Option<&prost_types::Timestamp>,
) -> Result<Option<OffsetDateTime>, ApiError> {
    let Some(ts) = ts else {
        return Ok(None);
    };
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(Some)
        .map_err(|_| ApiError::invalid(field, "not a representable time"))
}

/// A region prefix filter: at most 6 digits.
pub fn region_prefix(prefix: &str) -> Result<String, ApiError> {
    let prefix = prefix.trim();
    if prefix.len() > 6 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid("region_prefix", "at most 6 digits"));
    }
    Ok(prefix.to_string())
}

pub fn organisation(org: &Organisation) -> proto::Organisation {
    proto::Organisation {
        uscc: org.uscc.clone(),
        name: org.name.clone(),
        role: org.role.code(),
        region: org.region.clone(),
        industry: org.industry.code(),
        supervising_bureau: org.supervising_bureau.clone().unwrap_or_default(),
        status: match org.status {
            OrgStatus::Active => proto::OrgStatus::Active,
            OrgStatus::Suspended => proto::OrgStatus::Suspended,
        } as i32,
        enrolled_at: Some(timestamp(org.enrolled_at)),
    }
}

/// A note that goes into the audit log (a reason, an acknowledgement, a resolution, a
/// dispute), through the one free-text guard.
pub fn note(field: &str, text: &str) -> Result<String, ApiError> {
    crate::text::note(text)
        .map(str::to_string)
        .map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// A reference that is stored or audited (consent, staff, batch, source), through the one
/// free-text guard: a short ASCII token that is no identity in disguise.
pub fn reference(field: &str, text: &str, max_len: usize) -> Result<String, ApiError> {
    crate::text::reference(text, max_len)
        .map(str::to_string)
        .map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// An employer's staff reference: how results and alerts name a person.
pub fn staff_ref(text: &str) -> Result<String, ApiError> {
    reference("staff_ref", text, crate::text::MAX_REF_LEN)
}

/// Page size of a list call: `requested` (0 means `default`), at most `max`.
pub fn page_size(requested: u32, default: usize, max: usize) -> usize {
    match requested {
        0 => default,
        n => usize::try_from(n).unwrap_or(max).min(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roster::{AlertAction, ReviewReason, ReviewResolution};

    #[test]
    fn notes_and_staff_refs_refuse_identity_numbers() {
        assert!(note("note", "suspended from duty").is_ok());
        assert!(note("note", "id 110105 19491231 002X").is_err());
        assert!(note("note", &"a".repeat(201)).is_err());
        assert!(note("note", "ok\u{2028}forged").is_err());
        assert!(staff_ref("T-2026-0042").is_ok());
        assert!(staff_ref("").is_err());
        assert!(staff_ref("11010519491231002X").is_err());
        assert!(staff_ref("S 42").is_err());
    }

    /// The domain codes double as proto enum values; this keeps the two in step.
    #[test]
    fn domain_codes_match_proto_values() {
        for p in Purpose::ALL {
            let proto = proto::Purpose::try_from(p.code()).unwrap();
            assert_eq!(proto.as_str_name(), format!("PURPOSE_{}", p.label()));
        }
        for s in Scope::ALL {
            let proto = proto::Scope::try_from(s.code()).unwrap();
            assert_eq!(proto.as_str_name(), format!("SCOPE_{}", s.label()));
        }
        for c in Category::ALL {
            let proto = proto::Category::try_from(c.code()).unwrap();
            assert_eq!(proto.as_str_name(), format!("CATEGORY_{}", c.label()));
        }
        for k in RecordKind::ALL {
            let proto = proto::RecordKind::try_from(k.code()).unwrap();
            assert_eq!(proto.as_str_name(), format!("RECORD_KIND_{}", k.label()));
        }
        for r in Role::ALL {
            let proto = proto::Role::try_from(r.code()).unwrap();
            assert_eq!(proto.as_str_name(), format!("ROLE_{}", r.label()));
        }
        for i in Industry::ALL {
            let proto = proto::Industry::try_from(i.code()).unwrap();
            assert_eq!(proto.as_str_name(), format!("INDUSTRY_{}", i.label()));
        }
        for a in AlertAction::ALL {
            let proto = proto::AlertAction::try_from(a.code()).unwrap();
            assert_eq!(proto.as_str_name(), format!("ALERT_ACTION_{}", a.label()));
        }
        for r in ReviewReason::ALL {
            let proto = proto::ReviewReason::try_from(r.code()).unwrap();
            assert_eq!(proto.as_str_name(), format!("REVIEW_REASON_{}", r.label()));
        }
        for r in ReviewResolution::ALL {
            let proto = proto::ReviewResolution::try_from(r.code()).unwrap();
            assert_eq!(
                proto.as_str_name(),
                format!("REVIEW_RESOLUTION_{}", r.label())
            );
        }
        for o in Outcome::ALL {
            assert_eq!(
                outcome_to_proto(*o).as_str_name(),
                format!("OUTCOME_{}", o.label())
            );
        }
    }
}
