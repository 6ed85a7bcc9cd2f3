//! What a record in the registry is. Its identity is held only as keyed hashes; the rest is
//! what registrars manage and what scope filtering needs, never shown to an employer.

use time::Date;

use crate::coded::coded_enum;
use crate::keys::{NameTag, SubjectKey};

coded_enum! {
    /// Offence category.
    Category {
        /// Criminal Law arts. 236, 237 and related: rape, forced indecency, indecency with a child.
        Sexual = 1, "sexual", "SEXUAL";
        Abuse = 2, "abuse", "ABUSE";
        Trafficking = 3, "trafficking", "TRAFFICKING";
        ViolentInjury = 4, "violent-injury", "VIOLENT_INJURY";
        QualificationBan = 5, "qualification-ban", "QUALIFICATION_BAN";
    }
}

coded_enum! {
    /// Legal kind of a record.
    RecordKind {
        Conviction = 1, "conviction", "CONVICTION";
        /// Relative non-prosecution decision (相对不起诉).
        NonProsecution = 2, "non-prosecution", "NON_PROSECUTION";
        AdministrativePenalty = 3, "administrative-penalty", "ADMINISTRATIVE_PENALTY";
        QualificationBan = 4, "qualification-ban", "QUALIFICATION_BAN";
    }
}

/// Longest registrar reference accepted; it is stored in plaintext, so it must be an id, not prose.
pub const MAX_SOURCE_REF_LEN: usize = 64;

/// A record ready to store: identity already hashed.
#[derive(Debug, Clone)]
pub struct HashedRecord {
    pub source_ref: String,
    pub subject: SubjectKey,
    pub name_tag: NameTag,
    pub category: Category,
    pub kind: RecordKind,
    pub decided_on: Date,
    pub sealed: bool,
}

/// What an import did to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportEffect {
    Created,
    Updated,
    Unchanged,
}

pub fn parse_date(field: &'static str, text: &str) -> Result<Date, (&'static str, String)> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &format).map_err(|_| {
        (
            field,
            format!("not a date in the form YYYY-MM-DD: {:?}", text.trim()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_slugs_and_labels() {
        assert_eq!(
            Category::parse("violent-injury"),
            Some(Category::ViolentInjury)
        );
        assert_eq!(
            Category::parse("VIOLENT_INJURY"),
            Some(Category::ViolentInjury)
        );
        assert_eq!(RecordKind::from_code(2), Some(RecordKind::NonProsecution));
        assert_eq!(Category::parse("murder"), None);
    }
}
