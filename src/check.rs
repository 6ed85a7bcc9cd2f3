//! What a check is: its purpose and scope, and the rule that turns the records found for a
//! document into the only answer an employer may learn.

use crate::coded::coded_enum;
use crate::keys::NameTag;
use crate::registry::Category;

coded_enum! {
    /// Why a check is made; PRE_HIRE needs the applicant's consent.
    Purpose {
        PreHire = 1, "pre-hire", "PRE_HIRE";
        Periodic = 2, "periodic", "PERIODIC";
        ReVerify = 3, "re-verify", "RE_VERIFY";
    }
}

coded_enum! {
    /// Which categories of record a check looks at.
    Scope {
        /// The 2020 entry-inquiry opinion for teaching staff: sexual offences of every kind.
        Sexual = 1, "sexual", "SEXUAL";
        /// Minors Protection Law art. 62: every category.
        Art62 = 2, "art62", "ART62";
    }
}

coded_enum! {
    /// The only thing an employer ever learns about a person.
    Outcome {
        NoRecord = 1, "no-record", "NO_RECORD";
        RecordFound = 2, "record-found", "RECORD_FOUND";
        /// No longer answered (a name mismatch answers NO_RECORD); kept because checks
        /// recorded before that rule carry it.
        NeedsReview = 3, "needs-review", "NEEDS_REVIEW";
    }
}

coded_enum! {
    /// How a batch attests the applicants' consent.
    ConsentPolicy {
        PerRow = 1, "per-row", "PER_ROW";
        Batch = 2, "batch", "BATCH";
        NotRequired = 3, "not-required", "NOT_REQUIRED";
    }
}

impl Scope {
    pub fn covers(self, category: Category) -> bool {
        match self {
            Scope::Sexual => category == Category::Sexual,
            Scope::Art62 => true,
        }
    }
}

/// A record stored under the checked document, as far as matching needs to know it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub name_tag: NameTag,
    pub category: Category,
    pub sealed: bool,
    pub revoked: bool,
}

/// What matching found: the only answer the caller may learn, and whether the document
/// matched a live record under another name. A mismatch answers exactly like no record — else
/// any name with a guessed document would reveal that a record exists — and opens a registrar's
/// review that the caller cannot see (a legal name change, or a data error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub name_mismatch: bool,
}

/// Matching is by document, the name a second factor: sealed and revoked records and records
/// outside the scope never count; a live record under the same name is a hit; under another
/// name the answer is NO_RECORD and the mismatch goes to a registrar.
pub fn decide(scope: Scope, name: NameTag, candidates: &[Candidate]) -> Decision {
    let mut live = candidates
        .iter()
        .filter(|c| !c.sealed && !c.revoked && scope.covers(c.category))
        .peekable();
    if live.peek().is_none() {
        return Decision {
            outcome: Outcome::NoRecord,
            name_mismatch: false,
        };
    }
    if live.any(|c| c.name_tag == name) {
        Decision {
            outcome: Outcome::RecordFound,
            name_mismatch: false,
        }
    } else {
        Decision {
            outcome: Outcome::NoRecord,
            name_mismatch: true,
        }
    }
}

/// PERIODIC and RE_VERIFY checks are for the employer's current staff only (不得申请查询非应聘
///人员); anyone else may be checked only PRE_HIRE, as an applicant who consented.
pub fn staff_only(purpose: Purpose) -> bool {
    purpose != Purpose::PreHire
}

/// Why a PERIODIC or RE_VERIFY check of someone not on the roster is refused.
pub const NOT_STAFF: &str = "is not a current member of this employer's roster: PERIODIC and RE_VERIFY checks are for current staff only; check an applicant PRE_HIRE with a consent reference";

/// A PRE_HIRE check must name the applicant's signed authorisation the employer holds.
pub fn consent_required(purpose: Purpose) -> bool {
    purpose == Purpose::PreHire
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: u8, category: Category) -> Candidate {
        Candidate {
            name_tag: NameTag([name; 32]),
            category,
            sealed: false,
            revoked: false,
        }
    }

    #[test]
    fn document_and_name_decide_the_outcome() {
        let me = NameTag([1; 32]);
        assert_eq!(decide(Scope::Art62, me, &[]).outcome, Outcome::NoRecord);
        assert_eq!(
            decide(Scope::Art62, me, &[candidate(1, Category::Abuse)]).outcome,
            Outcome::RecordFound
        );
        // A mismatch answers exactly like no record; only the flag (never sent) differs.
        let mismatch = decide(Scope::Art62, me, &[candidate(2, Category::Abuse)]);
        assert_eq!(mismatch.outcome, Outcome::NoRecord);
        assert!(mismatch.name_mismatch);
        assert!(!decide(Scope::Art62, me, &[]).name_mismatch);
        assert_eq!(
            decide(
                Scope::Art62,
                me,
                &[
                    candidate(2, Category::Abuse),
                    candidate(1, Category::Sexual)
                ]
            )
            .outcome,
            Outcome::RecordFound
        );
    }

    #[test]
    fn sealed_revoked_and_out_of_scope_records_never_hit() {
        let me = NameTag([1; 32]);
        let mut sealed = candidate(1, Category::Sexual);
        sealed.sealed = true;
        let mut revoked = candidate(1, Category::Sexual);
        revoked.revoked = true;
        assert_eq!(
            decide(Scope::Art62, me, &[sealed, revoked]),
            Decision {
                outcome: Outcome::NoRecord,
                name_mismatch: false
            }
        );
        assert_eq!(
            decide(Scope::Sexual, me, &[candidate(1, Category::Abuse)]).outcome,
            Outcome::NoRecord
        );
        assert_eq!(
            decide(Scope::Sexual, me, &[candidate(1, Category::Sexual)]).outcome,
            Outcome::RecordFound
        );
    }
}
