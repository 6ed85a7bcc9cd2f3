//! Identity documents, personal names and organisation codes: parse, validate, normalise.
//!
//! Pure on purpose: no I/O and no clock ("today" is a parameter), so the same input always
//! gives the same canonical form — the hashed index depends on that — and tests can pin time.
//!
//! Error reasons never repeat the whole input (see [`IdentityError`]), because they travel
//! back to callers and into logs, where no plaintext identity may appear.

mod document;
mod error;
mod name;
#[cfg(test)]
mod proptests;
mod uscc;

pub use document::{DocType, Document, resident_id_check_char};
pub use error::IdentityError;
pub use name::{PersonName, normalize_name};
pub use uscc::{Uscc, uscc_check_char};

use unicode_normalization::UnicodeNormalization;

/// Characters that render as nothing (Unicode Cf and other default-ignorable code points).
///
/// They sneak in through copy and paste from web pages and word processors; two inputs that
/// look identical must hash identically, so they are dropped before anything else.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                  // soft hyphen
        | '\u{034F}'                // combining grapheme joiner
        | '\u{0600}'..='\u{0605}'   // Arabic number signs
        | '\u{061C}'                // Arabic letter mark
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{115F}'..='\u{1160}'   // Hangul fillers
        | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}'   // Mongolian variation selectors, vowel separator
        | '\u{200B}'..='\u{200F}'   // zero-width space, ZWNJ, ZWJ, LRM, RLM
        | '\u{202A}'..='\u{202E}'   // bidi embeddings and overrides
        | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, bidi isolates
        | '\u{3164}'                // Hangul filler
        | '\u{FE00}'..='\u{FE0F}'   // variation selectors
        | '\u{FEFF}'                // byte order mark
        | '\u{FFA0}'                // half-width Hangul filler
        | '\u{FFF0}'..='\u{FFFB}'   // interlinear annotation controls
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}' // Egyptian hieroglyph format controls
        | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
        | '\u{1D173}'..='\u{1D17A}' // musical format controls
        | '\u{E0000}'..='\u{E0FFF}' // tags, variation selectors supplement
    )
}

/// Drops invisible characters, then applies NFKC.
///
/// Dropping first lets a combining mark that was separated from its base by a zero-width
/// character compose with it, so the result does not depend on where the invisibles were.
fn strip_and_nfkc(raw: &str) -> String {
    let visible: String = raw.chars().filter(|&c| !is_invisible(c)).collect();
    visible.nfkc().filter(|&c| !is_invisible(c)).collect()
}

/// The canonical form of a code-like input (document numbers, USCC): NFKC (full-width
/// digits and letters become ASCII), no whitespace or invisibles, ASCII upper case.
fn normalize_code(raw: &str) -> String {
    strip_and_nfkc(raw)
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}
