//! Personal names: one canonical spelling per name, so that the name tag matches however the
//! name was typed (full-width, with invisible characters, any interpunct, any spacing).

use std::fmt;

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

use super::{IdentityError, strip_and_nfkc};

const FIELD: &str = "name";
const MAX_CHARS: usize = 64;

/// The one interpunct kept in canonical names (U+00B7 MIDDLE DOT).
const INTERPUNCT: char = '\u{00B7}';

/// A validated, normalised personal name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

/// Redacted, so that a stray `{:?}` in a log line cannot leak a name.
impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName(<redacted>)")
    }
}

impl PersonName {
    /// Normalises with [`normalize_name`], then validates: not empty, at most 64 characters,
    /// no control characters, no digits; only letters, combining marks, `·`, space, `'`, `-`.
    pub fn parse(raw: &str) -> Result<PersonName, IdentityError> {
        let name = normalize_name(raw);
        if name.is_empty() {
            return Err(IdentityError::new(FIELD, "must not be empty"));
        }
        if name.chars().count() > MAX_CHARS {
            return Err(IdentityError::new(
                FIELD,
                format!("too long: at most {MAX_CHARS} characters"),
            ));
        }
        for (i, c) in name.chars().enumerate() {
            let position = i + 1;
            if c.is_control() {
                return Err(IdentityError::new(
                    FIELD,
                    format!("control character at position {position}"),
                ));
            }
            // Letter numbers such as 〇 are alphabetic and belong in names.
            if c.is_numeric() && !c.is_alphabetic() {
                return Err(IdentityError::new(
                    FIELD,
                    "digits are not allowed in a name",
                ));
            }
            let allowed = c.is_alphabetic()
                || is_combining_mark(c)
                || matches!(c, INTERPUNCT | ' ' | '\'' | '-');
            if !allowed {
                return Err(IdentityError::invalid_char(FIELD, c, position));
            }
        }
        Ok(PersonName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The canonical spelling of a name, without validation. Idempotent.
///
/// NFKC; invisible characters dropped; Latin letters upper-cased; every interpunct variant
/// (and an ASCII `.` between two letters) becomes `·` with no space around it; apostrophe and
/// hyphen variants become `'` and `-`; whitespace trimmed and collapsed to one space, and
/// removed entirely when the name contains a Han character ("张 三" is "张三").
pub fn normalize_name(raw: &str) -> String {
    let mapped: Vec<char> = strip_and_nfkc(raw)
        .chars()
        .flat_map(upper_latin)
        .map(map_punctuation)
        .collect();
    let has_han = mapped.iter().any(|&c| is_han(c));
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for (i, &c) in mapped.iter().enumerate() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        let c = if c == '.' && dot_between_letters(&mapped, i) {
            INTERPUNCT
        } else {
            c
        };
        if pending_space && !has_han && c != INTERPUNCT && !out.ends_with(INTERPUNCT) {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    // Removing spaces and upper-casing can leave a base letter next to a combining mark or
    // marks out of canonical order; composing again keeps the result a fixed point.
    out.nfkc().collect()
}

/// Upper-cases Latin letters only: case carries no meaning in Latin-script names on
/// documents, while other scripts (Greek, Cyrillic) are left as written.
fn upper_latin(c: char) -> UpperLatin {
    if is_latin(c) {
        UpperLatin::Upper(c.to_uppercase())
    } else {
        UpperLatin::Same(Some(c))
    }
}

enum UpperLatin {
    Upper(std::char::ToUppercase),
    Same(Option<char>),
}

impl Iterator for UpperLatin {
    type Item = char;
    fn next(&mut self) -> Option<char> {
        match self {
            UpperLatin::Upper(it) => it.next(),
            UpperLatin::Same(c) => c.take(),
        }
    }
}

fn is_latin(c: char) -> bool {
    matches!(c,
        'a'..='z'
        | '\u{00C0}'..='\u{024F}'   // Latin-1 Supplement letters, Extended-A and -B
        | '\u{0250}'..='\u{02AF}'   // IPA extensions
        | '\u{1E00}'..='\u{1EFF}'   // Latin Extended Additional
        | '\u{2C60}'..='\u{2C7F}'   // Latin Extended-C
        | '\u{A720}'..='\u{A7FF}'   // Latin Extended-D
        | '\u{AB30}'..='\u{AB6F}'   // Latin Extended-E
    )
}

/// Interpunct, apostrophe and hyphen variants to their one canonical form. ASCII `.` is
/// handled separately, because it is only an interpunct between letters.
fn map_punctuation(c: char) -> char {
    match c {
        '\u{0387}' // Greek ano teleia
        | '\u{16EB}' // runic single punctuation
        | '\u{2022}' // bullet
        | '\u{2027}' // hyphenation point
        | '\u{2219}' // bullet operator
        | '\u{22C5}' // dot operator
        | '\u{2E31}' // word separator middle dot
        | '\u{2E33}' // raised dot
        | '\u{30FB}' // katakana middle dot (U+FF65 becomes this under NFKC)
        | '\u{A78F}' // Latin letter sinological dot
        | '\u{10101}' // Aegean word separator dot
        => INTERPUNCT,
        '\u{2018}' | '\u{2019}' | '\u{02BC}' | '\u{02BB}' | '\u{2032}' | '`' => '\'',
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2212}' => '-',
        c => c,
    }
}

/// Whether the nearest non-space characters on both sides of position `i` are letters (or
/// combining marks, which belong to a letter). "艾力.买买提" and "艾力 . 买买提" both qualify.
fn dot_between_letters(chars: &[char], i: usize) -> bool {
    let letter_like = |c: &char| *c != INTERPUNCT && (c.is_alphabetic() || is_combining_mark(*c));
    let mut before = chars[..i].iter().rev().filter(|c| !c.is_whitespace());
    let mut after = chars[i + 1..].iter().filter(|c| !c.is_whitespace());
    before.next().is_some_and(letter_like) && after.next().is_some_and(letter_like)
}

/// CJK unified ideographs and the few other Han characters used in names.
fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3005}' | '\u{3007}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}'
        | '\u{30000}'..='\u{323AF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> String {
        PersonName::parse(raw).unwrap().as_str().to_owned()
    }

    fn reason(raw: &str) -> String {
        let e = PersonName::parse(raw).unwrap_err();
        assert_eq!(e.field, "name");
        e.reason
    }

    #[test]
    fn interpunct_variants_normalise_alike() {
        let want = "艾力·买买提";
        for sep in [
            "\u{00B7}",
            "\u{2022}",
            "\u{30FB}",
            "\u{FF65}",
            "\u{FF0E}",
            ".",
            "\u{2027}",
            "\u{2219}",
            "\u{22C5}",
            "\u{0387}",
            "\u{16EB}",
            "\u{2E31}",
            "\u{10101}",
            "\u{FE52}",
            "\u{2024}",
            "\u{A78F}",
            " · ",
            " . ",
            "\u{3000}•\u{3000}",
        ] {
            assert_eq!(parsed(&format!("艾力{sep}买买提")), want, "{sep:?}");
        }
    }

    #[test]
    fn whitespace_in_chinese_names_is_removed() {
        assert_eq!(parsed("张 三"), "张三");
        assert_eq!(parsed("  张\u{3000}三 丰 "), "张三丰");
        assert_eq!(parsed("艾力 · 买买提"), "艾力·买买提");
        assert_eq!(parsed("欧阳\t娜娜"), "欧阳娜娜");
    }

    #[test]
    fn invisible_characters_are_removed() {
        assert_eq!(parsed("\u{FEFF}张\u{200B}三\u{200D}"), "张三");
        assert_eq!(parsed("王\u{00AD}\u{200E}五\u{2066}\u{2069}"), "王五");
        assert_eq!(parsed("\u{202E}李四\u{202C}"), "李四");
    }

    #[test]
    fn latin_names_ignore_case_width_and_spacing() {
        assert_eq!(parsed("John SMITH"), "JOHN SMITH");
        assert_eq!(parsed("  john   smith "), "JOHN SMITH");
        assert_eq!(parsed("Ｊｏｈｎ　Ｓｍｉｔｈ"), "JOHN SMITH");
        assert_eq!(parsed("Anna Müller"), "ANNA MÜLLER");
        assert_eq!(parsed("Anna Mu\u{0308}ller"), "ANNA MÜLLER");
        assert_eq!(parsed("Sean O’Brien"), "SEAN O'BRIEN");
        assert_eq!(parsed("Jean‐Luc Picard"), "JEAN-LUC PICARD");
        assert_eq!(parsed("John.Smith"), "JOHN·SMITH");
        assert_eq!(parsed("J. Smith"), "J·SMITH");
        // Other scripts keep their case.
        assert_eq!(parsed("Анна Иванова"), "Анна Иванова");
    }

    #[test]
    fn normalisation_is_idempotent_on_examples() {
        for raw in [
            "艾力 . 买买提",
            "a \u{301}张",
            "ǰ\u{323}",
            "Straße",
            " ŉ ",
            "x.\u{A78F}y",
        ] {
            let once = normalize_name(raw);
            assert_eq!(normalize_name(&once), once, "{raw:?}");
        }
    }

    #[test]
    fn validation_errors() {
        assert_eq!(reason(""), "must not be empty");
        assert_eq!(reason(" \u{200B}\u{3000} "), "must not be empty");
        assert_eq!(reason(&"张".repeat(65)), "too long: at most 64 characters");
        assert!(PersonName::parse(&"张".repeat(64)).is_ok());
        assert_eq!(reason("张三3"), "digits are not allowed in a name");
        assert_eq!(reason("张三３"), "digits are not allowed in a name");
        assert_eq!(reason("王\u{0007}五"), "control character at position 2");
        assert_eq!(reason("王五!"), "invalid character '!' at position 3");
        assert_eq!(reason("王五@x"), "invalid character '@' at position 3");
        assert_eq!(reason("Smith."), "invalid character '.' at position 6");
        assert_eq!(reason("..张三"), "invalid character '.' at position 1");
    }

    #[test]
    fn allowed_characters() {
        assert_eq!(parsed("宋〇"), "宋〇");
        assert_eq!(parsed("D'Angelo-Smith"), "D'ANGELO-SMITH");
        assert_eq!(parsed("古丽娜尔·吐尔逊"), "古丽娜尔·吐尔逊");
    }

    #[test]
    fn debug_output_is_redacted() {
        let n = PersonName::parse("张三").unwrap();
        assert!(!format!("{n:?}").contains("张三"));
    }
}
