//! The one guard for free text that is stored or audited: references (consent, staff, batch,
//! source) and notes (reasons, acknowledgements, resolutions, disputes). What is written there
//! can never be removed without breaking the audit chain, so an identity number, a birth-date
//! run, a name in a reference or a character that forges log lines must never get in.

use unicode_normalization::UnicodeNormalization;

/// Runs of this many identity characters (digits and `X`) are refused: a resident ID is 18, a
/// legacy one 15, and a division code plus a birth date alone is 14.
pub const IDENTITY_RUN: usize = 14;
/// Longest note (a reason, an acknowledgement, a resolution, a dispute).
pub const MAX_NOTE_CHARS: usize = 200;
/// Longest reference.
pub const MAX_REF_LEN: usize = 64;

/// Why a text was refused; the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("is required")]
    Empty,
    #[error("too long: at most {0} characters")]
    TooLong(usize),
    #[error("must not contain Chinese characters: a reference is an id, never a name")]
    Han,
    #[error(
        "invalid character U+{0:04X} at position {1}; use letters, digits and - _ . / : # only"
    )]
    NotToken(u32, usize),
    #[error("contains a line or paragraph separator or a bidirectional control (U+{0:04X})")]
    Forging(u32),
    #[error("contains a control character (U+{0:04X})")]
    Control(u32),
    #[error(
        "looks like an identity number or birth date ({IDENTITY_RUN} or more digits once separators are removed); use your own reference"
    )]
    Identity,
}

/// A reference: a short ASCII token (letters, digits, `- _ . / : #`) that is no identity in
/// disguise. Returns it trimmed.
pub fn reference(text: &str, max_len: usize) -> Result<&str, TextError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TextError::Empty);
    }
    if let Some((pos, c)) = text.chars().enumerate().find(|(_, c)| !is_token(*c)) {
        return Err(if is_han(c) {
            TextError::Han
        } else if is_forging(c) {
            TextError::Forging(u32::from(c))
        } else {
            TextError::NotToken(u32::from(c), pos + 1)
        });
    }
    if text.len() > max_len {
        return Err(TextError::TooLong(max_len));
    }
    if longest_identity_run(text) >= IDENTITY_RUN {
        return Err(TextError::Identity);
    }
    Ok(text)
}

/// A note: at most [`MAX_NOTE_CHARS`] printable characters, any script, but no control
/// characters, no line or paragraph separators, no bidirectional controls and no identity run.
/// Returns it trimmed; empty is allowed (callers that need a note say so).
pub fn note(text: &str) -> Result<&str, TextError> {
    let text = text.trim();
    if let Some(c) = text.chars().find(|c| is_forging(*c)) {
        return Err(TextError::Forging(u32::from(c)));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(TextError::Control(u32::from(c)));
    }
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(TextError::TooLong(MAX_NOTE_CHARS));
    }
    if longest_identity_run(text) >= IDENTITY_RUN {
        return Err(TextError::Identity);
    }
    Ok(text)
}

fn is_token(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '#')
}

fn is_han(c: char) -> bool {
    matches!(u32::from(c),
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

/// Characters that break or reorder lines when a log is shown: NEL, the Unicode line and
/// paragraph separators, and every bidirectional mark, embedding, override and isolate.
fn is_forging(c: char) -> bool {
    matches!(u32::from(c),
        0x0085 | 0x2028 | 0x2029 | 0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069)
}

/// The longest run of identity characters (any decimal digit after NFKC, and `X`) once every
/// separator — anything that is neither a letter nor a digit — is removed; letters other than
/// `X` end a run.
fn longest_identity_run(text: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in text.nfkc() {
        if c.is_numeric() || c == 'X' || c == 'x' {
            run += 1;
            longest = longest.max(run);
        } else if c.is_alphabetic() {
            run = 0;
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_examples_from_the_attack_are_refused() {
        assert_eq!(
            reference("140105.19560718.3079", MAX_REF_LEN),
            Err(TextError::Identity)
        );
        assert_eq!(
            reference("110105-19491231-002X", MAX_REF_LEN),
            Err(TextError::Identity)
        );
        assert_eq!(
            reference("吕建_140105_19560718_3079", MAX_REF_LEN),
            Err(TextError::Han)
        );
        assert_eq!(
            reference("140105195607183079.csv", MAX_REF_LEN),
            Err(TextError::Identity)
        );
        assert_eq!(note("id 110105 19491231 002X"), Err(TextError::Identity));
        assert_eq!(note("ok\u{2028}forged"), Err(TextError::Forging(0x2028)));
        assert_eq!(note("ok\u{202E}txt"), Err(TextError::Forging(0x202E)));
    }

    #[test]
    fn ordinary_references_and_notes_pass() {
        for ok in [
            "CONSENT-2026-001",
            "REC-2019-0000001",
            "S000042",
            "T-2026-0042",
            "0190b6f2-7a1c-7d3e-9c55-1f2e3d4c5b6a",
        ] {
            assert_eq!(reference(ok, MAX_REF_LEN), Ok(ok));
        }
        assert_eq!(note("  已停职，等待复查  "), Ok("已停职，等待复查"));
        assert_eq!(note(""), Ok(""));
        assert_eq!(reference("", MAX_REF_LEN), Err(TextError::Empty));
        assert_eq!(
            reference(&"A".repeat(65), MAX_REF_LEN),
            Err(TextError::TooLong(64))
        );
        assert_eq!(note(&"a".repeat(201)), Err(TextError::TooLong(200)));
    }

    const ID: &str = "11010519491231002X";

    /// Separators people (or attackers) put between digit groups, ASCII and Unicode.
    fn separator() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                " ", "-", ".", "_", "/", ":", "#", "\u{3000}", "\u{00A0}", "\u{200B}", "\u{2060}",
                "·", "、", "，", "－", "—", "\t",
            ]),
            0..3,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        /// However an ID is split, and whatever digits it is written in, no note carries it.
        #[test]
        fn an_id_split_by_any_separators_is_refused_in_notes(
            cuts in prop::collection::vec(separator(), ID.len() - 1),
            full_width in any::<bool>(),
            prefix in "[a-z ]{0,8}",
        ) {
            let mut text = prefix;
            for (i, c) in ID.chars().enumerate() {
                let c = if full_width {
                    char::from_u32(u32::from(c) - 0x21 + 0xFF01).unwrap_or(c)
                } else {
                    c
                };
                text.push(c);
                if let Some(cut) = cuts.get(i) {
                    text.push_str(cut);
                }
            }
            prop_assert!(note(&text).is_err(), "{text:?} passed");
        }

        /// In a reference an ID is refused whichever token separators split it.
        #[test]
        fn an_id_split_by_token_separators_is_refused_in_references(
            cuts in prop::collection::vec(prop::sample::select(vec!["", "-", ".", "_", "/", ":", "#"]), ID.len() - 1),
        ) {
            let mut text = String::new();
            for (i, c) in ID.chars().enumerate() {
                text.push(c);
                if let Some(cut) = cuts.get(i) {
                    text.push_str(cut);
                }
            }
            prop_assert!(reference(&text, 200).is_err(), "{text:?} passed");
        }

        /// Whatever Unicode goes in, nothing that forges lines or reorders text comes out.
        #[test]
        fn accepted_text_has_no_forging_characters(text in "\\PC{0,40}", extra in any::<char>()) {
            let text = format!("{text}{extra}");
            for accepted in [note(&text).ok(), reference(&text, MAX_REF_LEN).ok()].into_iter().flatten() {
                prop_assert!(!accepted.chars().any(|c| is_forging(c) || c.is_control()));
                prop_assert!(longest_identity_run(accepted) < IDENTITY_RUN);
            }
            if let Ok(accepted) = reference(&text, MAX_REF_LEN) {
                prop_assert!(accepted.is_ascii());
            }
        }

        /// Short digit groups (dates, counts, staff numbers) stay usable.
        #[test]
        fn short_digit_groups_pass(groups in prop::collection::vec("[0-9]{1,4}", 1..4)) {
            let text = format!("REF-{}", groups.join("-"));
            prop_assume!(text.chars().filter(char::is_ascii_digit).count() < IDENTITY_RUN);
            prop_assert_eq!(reference(&text, MAX_REF_LEN), Ok(text.as_str()));
        }
    }
}
