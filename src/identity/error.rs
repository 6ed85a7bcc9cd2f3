//! The one error type of the identity module.

/// A rejected identity input: which field, and why.
///
/// The reason goes back to the caller and may be logged, so it never contains the whole
/// document number or name — at most one offending character, a position, a length or a
/// birth date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct IdentityError {
    /// One of "doc_type", "doc_number", "name", "uscc".
    pub field: &'static str,
    /// Short, lower-case, precise: "check digit should be 7".
    pub reason: String,
}

impl IdentityError {
    pub(super) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }

    /// `position` is 1-based and counts characters of the normalised input. The character
    /// is escaped so that a control or bidi character cannot garble a log line.
    pub(super) fn invalid_char(field: &'static str, c: char, position: usize) -> Self {
        Self::new(
            field,
            format!(
                "invalid character '{}' at position {position}",
                c.escape_debug()
            ),
        )
    }
}
