//! Unified social credit code (统一社会信用代码, GB 32100-2015): how an organisation is named
//! in its client certificate and in the organisation registry.

use super::{IdentityError, normalize_code};

const FIELD: &str = "uscc";

/// The 31 characters of the code, in value order 0..=30 (no I, O, S, V, Z).
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// 3^i mod 31, as listed in GB 32100-2015.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A validated unified social credit code in canonical (upper-case ASCII) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uscc(String);

impl Uscc {
    /// Normalises (NFKC, no whitespace or invisibles, upper case) and validates: 18
    /// characters of the code alphabet, a 6-digit division code at positions 3–8, and the
    /// check character.
    pub fn parse(raw: &str) -> Result<Uscc, IdentityError> {
        let s = normalize_code(raw);
        if s.is_empty() {
            return Err(IdentityError::new(FIELD, "must not be empty"));
        }
        let n = s.chars().count();
        if n != 18 {
            return Err(IdentityError::new(
                FIELD,
                format!("should be 18 characters, got {n}"),
            ));
        }
        for (i, c) in s.chars().enumerate() {
            if value(c).is_none() {
                return Err(IdentityError::invalid_char(FIELD, c, i + 1));
            }
            if (2..8).contains(&i) && !c.is_ascii_digit() {
                return Err(IdentityError::new(
                    FIELD,
                    format!(
                        "invalid character '{c}' at position {}: the division code is digits",
                        i + 1
                    ),
                ));
            }
        }
        let expected = check_char(&s.as_bytes()[..17]);
        if !s.ends_with(expected) {
            return Err(IdentityError::new(
                FIELD,
                format!("check character should be {expected}"),
            ));
        }
        Ok(Uscc(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Characters 3–8: the administrative division code of the registering authority.
    pub fn region(&self) -> &str {
        &self.0[2..8]
    }
}

/// The check character for the first 17 characters of a code, or `None` unless they are
/// exactly 17 characters of the code alphabet (upper case).
pub fn uscc_check_char(first17: &str) -> Option<char> {
    let b = first17.as_bytes();
    (b.len() == 17 && b.iter().all(|&c| value(char::from(c)).is_some())).then(|| check_char(b))
}

fn value(c: char) -> Option<u32> {
    u8::try_from(c)
        .ok()
        .and_then(|b| ALPHABET.iter().position(|&a| a == b))
        .map(|v| v as u32)
}

/// check = alphabet[(31 − Σ value_i × weight_i mod 31) mod 31]. The caller has checked
/// that every byte is in the alphabet.
fn check_char(first17: &[u8]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(&c, w)| value(char::from(c)).unwrap_or(0) * w)
        .sum();
    char::from(ALPHABET[((31 - sum % 31) % 31) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(raw: &str) -> String {
        let e = Uscc::parse(raw).unwrap_err();
        assert_eq!(e.field, "uscc");
        e.reason
    }

    #[test]
    fn weights_are_powers_of_three() {
        let mut w = 1;
        for weight in WEIGHTS {
            assert_eq!(weight, w);
            w = w * 3 % 31;
        }
    }

    #[test]
    fn published_examples_are_valid() {
        // Codes used as valid fixtures in public validator test suites (e.g. Hutool).
        for code in [
            "91350100M000100Y43",
            "91350500676532779B",
            "91510100350611266D",
            "91370100780603055K",
            "91310110666007217T",
            "91510100MA6BKY6U36",
        ] {
            let u = Uscc::parse(code).unwrap();
            assert_eq!(u.as_str(), code);
            assert_eq!(uscc_check_char(&code[..17]), code.chars().last());
        }
        assert_eq!(
            Uscc::parse("91350100M000100Y43").unwrap().region(),
            "350100"
        );
    }

    #[test]
    fn normalisation() {
        let want = Uscc::parse("91350100M000100Y43").unwrap();
        for raw in [
            "91350100m000100y43",
            " 9135 0100 M000 100Y 43 ",
            "９１３５０１００Ｍ０００１００Ｙ４３",
            "\u{FEFF}91350100M000\u{200B}100Y43",
        ] {
            assert_eq!(Uscc::parse(raw).unwrap(), want, "{raw:?}");
        }
    }

    #[test]
    fn errors() {
        for (raw, want) in [
            ("", "must not be empty"),
            ("91350100M000100Y4", "should be 18 characters, got 17"),
            ("91350100M000100Y435", "should be 18 characters, got 19"),
            ("91350100I000100Y43", "invalid character 'I' at position 9"),
            ("91350100O000100Y43", "invalid character 'O' at position 9"),
            ("S1350100M000100Y43", "invalid character 'S' at position 1"),
            ("91350100M000100Y4Z", "invalid character 'Z' at position 18"),
            ("913501-0M000100Y43", "invalid character '-' at position 7"),
            (
                "9135A100M000100Y43",
                "invalid character 'A' at position 5: the division code is digits",
            ),
            ("91350100M000100Y44", "check character should be 3"),
            ("91350500676532779C", "check character should be B"),
        ] {
            assert_eq!(reason(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn check_char_rejects_bad_input() {
        assert_eq!(uscc_check_char("91350100M000100Y"), None);
        assert_eq!(uscc_check_char("91350100m000100Y4"), None);
        assert_eq!(uscc_check_char("91350100I000100Y4"), None);
        assert_eq!(uscc_check_char("91350100M000100Y4"), Some('3'));
    }
}
