//! Identity documents: mainland resident ID and the other document types a check accepts.

use std::fmt;

use time::{Date, Month};

use super::{IdentityError, normalize_code};

const FIELD: &str = "doc_number";

/// The kind of identity document. The slug appears in CSV files and on the command line; the
/// code is part of the hashed subject, so neither may ever change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocType {
    CnResidentId,
    Passport,
    HkMacaoPermit,
    TaiwanPermit,
    ForeignPermanentResident,
}

impl DocType {
    pub const ALL: [DocType; 5] = [
        DocType::CnResidentId,
        DocType::Passport,
        DocType::HkMacaoPermit,
        DocType::TaiwanPermit,
        DocType::ForeignPermanentResident,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            DocType::CnResidentId => "cn-id",
            DocType::Passport => "passport",
            DocType::HkMacaoPermit => "hk-macao",
            DocType::TaiwanPermit => "taiwan",
            DocType::ForeignPermanentResident => "foreign-pr",
        }
    }

    /// The document's name in Chinese, as printed on it and as Chinese staff files write it.
    pub fn name_zh(self) -> &'static str {
        match self {
            DocType::CnResidentId => "居民身份证",
            DocType::Passport => "护照",
            DocType::HkMacaoPermit => "港澳居民来往内地通行证",
            DocType::TaiwanPermit => "台湾居民来往大陆通行证",
            DocType::ForeignPermanentResident => "外国人永久居留身份证",
        }
    }

    /// Accepts the slugs, the Chinese names and a few obvious aliases of both, ignoring case,
    /// surrounding whitespace and `_` versus `-`, because roster files are typed by hand. The
    /// reason does not echo the input: a shifted CSV column could put a document number here.
    pub fn from_slug(s: &str) -> Result<DocType, IdentityError> {
        let key = s.trim().to_ascii_lowercase().replace('_', "-");
        match key.as_str() {
            "cn-id" | "cnid" | "resident-id" | "id-card" | "居民身份证" | "身份证" => {
                Ok(DocType::CnResidentId)
            }
            "passport" | "护照" => Ok(DocType::Passport),
            "hk-macao" | "hk-macao-permit" | "hkmo" | "港澳居民来往内地通行证" | "港澳通行证" => {
                Ok(DocType::HkMacaoPermit)
            }
            "taiwan" | "taiwan-permit" | "tw" | "台湾居民来往大陆通行证" | "台胞证" => {
                Ok(DocType::TaiwanPermit)
            }
            "foreign-pr" | "foreign-permanent-resident" | "fpr" | "外国人永久居留身份证" => {
                Ok(DocType::ForeignPermanentResident)
            }
            _ => Err(IdentityError::new(
                "doc_type",
                "unknown document type; expected cn-id (居民身份证), passport (护照), hk-macao \
                 (港澳居民来往内地通行证), taiwan (台湾居民来往大陆通行证) or foreign-pr \
                 (外国人永久居留身份证)",
            )),
        }
    }

    /// Stable numeric code used when hashing a subject.
    pub fn code(self) -> u8 {
        match self {
            DocType::CnResidentId => 1,
            DocType::Passport => 2,
            DocType::HkMacaoPermit => 3,
            DocType::TaiwanPermit => 4,
            DocType::ForeignPermanentResident => 5,
        }
    }
}

/// A validated identity document in canonical form: the same document always yields the
/// same `number`, whatever width, case, spacing or legacy form it was typed in.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Document {
    doc_type: DocType,
    number: String,
    birth_date: Option<Date>,
}

/// Redacted, so that a stray `{:?}` in a log line cannot leak a document number.
impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("doc_type", &self.doc_type)
            .field("number", &"<redacted>")
            .finish()
    }
}

impl Document {
    /// Normalises (NFKC, no whitespace or invisibles, upper case) and validates `raw`.
    /// `today` bounds a resident ID's birth date.
    pub fn parse(doc_type: DocType, raw: &str, today: Date) -> Result<Document, IdentityError> {
        let s = normalize_code(raw);
        if s.is_empty() {
            return Err(err("must not be empty"));
        }
        let (number, birth_date) = match doc_type {
            DocType::CnResidentId => {
                let (number, birth) = resident_id(&s, today)?;
                (number, Some(birth))
            }
            DocType::Passport => (passport(s)?, None),
            DocType::HkMacaoPermit => (hk_macao(s)?, None),
            DocType::TaiwanPermit => (taiwan(s)?, None),
            DocType::ForeignPermanentResident => (foreign_pr(s)?, None),
        };
        Ok(Document {
            doc_type,
            number,
            birth_date,
        })
    }

    pub fn doc_type(&self) -> DocType {
        self.doc_type
    }

    /// The canonical number (a legacy 15-digit resident ID comes back as its 18-digit form).
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The birth date encoded in a resident ID; `None` for other document types.
    pub fn birth_date(&self) -> Option<Date> {
        self.birth_date
    }
}

/// The ISO 7064 MOD 11-2 check character of a resident ID, or `None` unless `first17` is
/// exactly 17 ASCII digits.
pub fn resident_id_check_char(first17: &str) -> Option<char> {
    let digits = first17.as_bytes();
    (digits.len() == 17 && digits.iter().all(u8::is_ascii_digit)).then(|| mod11_2(digits))
}

/// ISO 7064 MOD 11-2 over 17 ASCII digits (GB 11643-1999). The caller has checked them.
fn mod11_2(digits: &[u8]) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

fn err(reason: impl Into<String>) -> IdentityError {
    IdentityError::new(FIELD, reason)
}

/// The first character (1-based position) that `ok` rejects, as an error.
fn check_chars(s: &str, ok: impl Fn(usize, char) -> bool) -> Result<(), IdentityError> {
    match s.chars().enumerate().find(|&(i, c)| !ok(i, c)) {
        Some((i, c)) => Err(IdentityError::invalid_char(FIELD, c, i + 1)),
        None => Ok(()),
    }
}

/// Validates an 18-character or legacy 15-digit resident ID; returns the 18-character form.
/// Order: length and characters, province, birth date, check character — so the reason
/// names the first thing a person would want to fix.
fn resident_id(s: &str, today: Date) -> Result<(String, Date), IdentityError> {
    match s.chars().count() {
        18 => {
            check_chars(s, |i, c| c.is_ascii_digit() || (i == 17 && c == 'X'))?;
            let b = s.as_bytes();
            check_province(&b[..2])?;
            let birth = birth_date(&b[6..14], today)?;
            let expected = mod11_2(&b[..17]);
            if char::from(b[17]) != expected {
                return Err(err(format!("check digit should be {expected}")));
            }
            Ok((s.to_owned(), birth))
        }
        15 => {
            check_chars(s, |_, c| c.is_ascii_digit())?;
            let mut long = format!("{}19{}", &s[..6], &s[6..]);
            let b = long.as_bytes();
            check_province(&b[..2])?;
            let birth = birth_date(&b[6..14], today)?;
            long.push(mod11_2(long.as_bytes()));
            Ok((long, birth))
        }
        n => Err(err(format!(
            "should be 18 characters (or 15 for a legacy number), got {n}"
        ))),
    }
}

/// Value of a run of ASCII digits (already checked).
fn number_of(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
}

fn check_province(digits: &[u8]) -> Result<(), IdentityError> {
    let code = number_of(digits);
    if matches!(code, 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82) {
        Ok(())
    } else {
        Err(err(format!("unknown province code {code:02}")))
    }
}

const EARLIEST_BIRTH: Date = time::macros::date!(1900 - 01 - 01);

/// Eight ASCII digits `YYYYMMDD`: a real calendar date, not before 1900, not after `today`.
fn birth_date(digits: &[u8], today: Date) -> Result<Date, IdentityError> {
    let (year, month, day) = (
        number_of(&digits[..4]),
        number_of(&digits[4..6]),
        number_of(&digits[6..8]),
    );
    let text = format!("{year:04}-{month:02}-{day:02}");
    // Every part is at most 9999, so the narrowing casts are exact.
    let date = Month::try_from(month as u8)
        .ok()
        .and_then(|m| Date::from_calendar_date(year as i32, m, day as u8).ok())
        .ok_or_else(|| err(format!("no such date {text}")))?;
    if date < EARLIEST_BIRTH {
        Err(err(format!("birth date {text} is before 1900-01-01")))
    } else if date > today {
        Err(err(format!("birth date {text} is in the future")))
    } else {
        Ok(date)
    }
}

fn passport(s: String) -> Result<String, IdentityError> {
    let n = s.chars().count();
    if !(5..=17).contains(&n) {
        return Err(err(format!("should be 5 to 17 characters, got {n}")));
    }
    check_chars(&s, |_, c| c.is_ascii_uppercase() || c.is_ascii_digit())?;
    Ok(s)
}

/// Mainland travel permit for Hong Kong and Macao residents: H or M, then 8 or 10 digits.
fn hk_macao(s: String) -> Result<String, IdentityError> {
    let n = s.chars().count();
    if n != 9 && n != 11 {
        return Err(err(format!(
            "should be 9 or 11 characters (H or M, then 8 or 10 digits), got {n}"
        )));
    }
    if !s.starts_with(['H', 'M']) {
        return Err(err("should start with H or M"));
    }
    check_chars(&s, |i, c| i == 0 || c.is_ascii_digit())?;
    Ok(s)
}

/// Mainland travel permit for Taiwan residents: 8 digits, or 10 in the older long form.
fn taiwan(s: String) -> Result<String, IdentityError> {
    let n = s.chars().count();
    if n != 8 && n != 10 {
        return Err(err(format!("should be 8 or 10 digits, got {n}")));
    }
    check_chars(&s, |_, c| c.is_ascii_digit())?;
    Ok(s)
}

/// Foreign permanent resident ID: the old 15-character form (3 letters, 12 digits) or the
/// 2023 18-character form (starts with 9, MOD 11-2 check character like a resident ID).
fn foreign_pr(s: String) -> Result<String, IdentityError> {
    match s.chars().count() {
        15 => {
            check_chars(&s, |i, c| {
                if i < 3 {
                    c.is_ascii_uppercase()
                } else {
                    c.is_ascii_digit()
                }
            })?;
            Ok(s)
        }
        18 => {
            check_chars(&s, |i, c| c.is_ascii_digit() || (i == 17 && c == 'X'))?;
            if !s.starts_with('9') {
                return Err(err("the 18-character form should start with 9"));
            }
            let expected = mod11_2(&s.as_bytes()[..17]);
            if !s.ends_with(expected) {
                return Err(err(format!("check digit should be {expected}")));
            }
            Ok(s)
        }
        n => Err(err(format!("should be 15 or 18 characters, got {n}"))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chinese_document_names_are_read_and_written() {
        for doc_type in DocType::ALL {
            assert_eq!(DocType::from_slug(doc_type.name_zh()).ok(), Some(doc_type));
        }
        for (alias, doc_type) in [
            ("身份证", DocType::CnResidentId),
            (" 港澳通行证 ", DocType::HkMacaoPermit),
            ("台胞证", DocType::TaiwanPermit),
        ] {
            assert_eq!(DocType::from_slug(alias).ok(), Some(doc_type), "{alias}");
        }
        assert!(DocType::from_slug("驾驶证").is_err());
    }

    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 03 - 15);

    fn id(raw: &str) -> Result<Document, IdentityError> {
        Document::parse(DocType::CnResidentId, raw, TODAY)
    }

    fn reason(doc_type: DocType, raw: &str) -> String {
        match Document::parse(doc_type, raw, TODAY) {
            Ok(d) => panic!("{raw:?} should be rejected, got {d:?}"),
            Err(e) => {
                assert_eq!(e.field, "doc_number");
                e.reason
            }
        }
    }

    #[test]
    fn check_char_matches_published_examples() {
        // The GB 11643-1999 worked example and widely used test numbers.
        assert_eq!(resident_id_check_char("11010519491231002"), Some('X'));
        assert_eq!(resident_id_check_char("44052418800101001"), Some('4'));
        assert_eq!(resident_id_check_char("11010119900307299"), Some('X'));
        assert_eq!(resident_id_check_char("1101051949123100"), None);
        assert_eq!(resident_id_check_char("1101051949123100A"), None);
        assert_eq!(resident_id_check_char("110105194912310021"), None);
        assert_eq!(
            resident_id_check_char("１１０１０５１９４９１２３１００２"),
            None
        );
    }

    #[test]
    fn valid_resident_ids() {
        for raw in [
            "11010519491231002X",
            "11010119900307299X",
            "110101200002290018",
        ] {
            let d = id(raw).unwrap();
            assert_eq!(d.number(), raw);
            assert_eq!(d.doc_type(), DocType::CnResidentId);
        }
        assert_eq!(
            id("11010519491231002X").unwrap().birth_date(),
            Some(date!(1949 - 12 - 31))
        );
    }

    #[test]
    fn wrong_check_digit_names_the_right_one() {
        assert_eq!(
            reason(DocType::CnResidentId, "110105194912310021"),
            "check digit should be X"
        );
        assert_eq!(
            reason(DocType::CnResidentId, "11010520000229001X"),
            format!(
                "check digit should be {}",
                resident_id_check_char("11010520000229001").unwrap()
            )
        );
    }

    #[test]
    fn impossible_and_leap_dates() {
        let with_check =
            |first17: &str| format!("{first17}{}", resident_id_check_char(first17).unwrap());
        assert_eq!(
            reason(DocType::CnResidentId, &with_check("11010519900230001")),
            "no such date 1990-02-30"
        );
        assert_eq!(
            reason(DocType::CnResidentId, &with_check("11010520230229001")),
            "no such date 2023-02-29"
        );
        assert_eq!(
            reason(DocType::CnResidentId, &with_check("11010519901301001")),
            "no such date 1990-13-01"
        );
        assert_eq!(
            reason(DocType::CnResidentId, &with_check("11010519900001001")),
            "no such date 1990-00-01"
        );
        assert_eq!(
            reason(DocType::CnResidentId, &with_check("11010519000229001")),
            "no such date 1900-02-29"
        );
        let leap = with_check("11010520240229001");
        assert_eq!(id(&leap).unwrap().birth_date(), Some(date!(2024 - 02 - 29)));
        let leap_2000 = with_check("11010520000229001");
        assert!(id(&leap_2000).is_ok());
    }

    #[test]
    fn birth_date_bounds() {
        assert_eq!(
            reason(DocType::CnResidentId, "110105209001010019"),
            "birth date 2090-01-01 is in the future"
        );
        assert_eq!(
            reason(DocType::CnResidentId, "440524188001010014"),
            "birth date 1880-01-01 is before 1900-01-01"
        );
        // Born today is fine; born tomorrow is not.
        let today = "11010520260315001";
        let tomorrow = "11010520260316001";
        assert!(
            id(&format!(
                "{today}{}",
                resident_id_check_char(today).unwrap()
            ))
            .is_ok()
        );
        assert_eq!(
            reason(
                DocType::CnResidentId,
                &format!("{tomorrow}{}", resident_id_check_char(tomorrow).unwrap())
            ),
            "birth date 2026-03-16 is in the future"
        );
    }

    #[test]
    fn lengths_and_characters() {
        for (raw, want) in [
            (
                "11010519491231002",
                "should be 18 characters (or 15 for a legacy number), got 17",
            ),
            (
                "11010519491231002X1",
                "should be 18 characters (or 15 for a legacy number), got 19",
            ),
            ("1101A5194912310021", "invalid character 'A' at position 5"),
            ("11010519491231X021", "invalid character 'X' at position 15"),
            ("110105-19491231002", "invalid character '-' at position 7"),
            ("11010519491231002Y", "invalid character 'Y' at position 18"),
            ("   ", "must not be empty"),
            ("\u{200B}", "must not be empty"),
        ] {
            assert_eq!(reason(DocType::CnResidentId, raw), want, "{raw:?}");
        }
    }

    #[test]
    fn province_codes() {
        for (prefix, ok) in [
            ("11", true),
            ("15", true),
            ("16", false),
            ("20", false),
            ("23", true),
            ("37", true),
            ("38", false),
            ("46", true),
            ("47", false),
            ("54", true),
            ("65", true),
            ("66", false),
            ("71", true),
            ("72", false),
            ("81", true),
            ("82", true),
            ("83", false),
            ("99", false),
            ("00", false),
        ] {
            let first17 = format!("{prefix}010519491231002");
            let raw = format!("{first17}{}", resident_id_check_char(&first17).unwrap());
            match id(&raw) {
                Ok(_) => assert!(ok, "{prefix} should be rejected"),
                Err(e) => {
                    assert!(!ok, "{prefix} should be accepted: {e}");
                    assert_eq!(e.reason, format!("unknown province code {prefix}"));
                }
            }
        }
    }

    #[test]
    fn normalisation() {
        let ascii = id("11010519491231002X").unwrap();
        for raw in [
            "１１０１０５１９４９１２３１００２Ｘ",
            "１１０１０５１９４９１２３１００２ｘ",
            "11010519491231002x",
            " 110105 19491231 002X\t",
            "\u{FEFF}110105\u{200B}19491231\u{200D}002\u{00AD}X\u{202E}",
            "110105\u{3000}19491231002X",
        ] {
            assert_eq!(id(raw).unwrap(), ascii, "{raw:?}");
        }
    }

    #[test]
    fn legacy_15_digit_numbers_convert() {
        // 15-digit 110105491231002 is 18-digit 11010519491231002X.
        let d = id("110105491231002").unwrap();
        assert_eq!(d.number(), "11010519491231002X");
        assert_eq!(d.birth_date(), Some(date!(1949 - 12 - 31)));
        assert_eq!(d, id("11010519491231002X").unwrap());
        assert_eq!(
            reason(DocType::CnResidentId, "110105900230002"),
            "no such date 1990-02-30"
        );
        assert_eq!(
            reason(DocType::CnResidentId, "990105491231002"),
            "unknown province code 99"
        );
        assert_eq!(
            reason(DocType::CnResidentId, "11010549123100X"),
            "invalid character 'X' at position 15"
        );
    }

    #[test]
    fn other_document_types() {
        for (t, raw, canonical) in [
            (DocType::Passport, "e12345678", "E12345678"),
            (DocType::Passport, "G1234", "G1234"),
            (DocType::Passport, "ＰＥ１２３４５６７", "PE1234567"),
            (DocType::HkMacaoPermit, "H12345678", "H12345678"),
            (DocType::HkMacaoPermit, "m 1234567890", "M1234567890"),
            (DocType::TaiwanPermit, "12345678", "12345678"),
            (DocType::TaiwanPermit, "1234567890", "1234567890"),
            (
                DocType::ForeignPermanentResident,
                "usa110090612001",
                "USA110090612001",
            ),
            (
                DocType::ForeignPermanentResident,
                "91184019850101001x",
                "91184019850101001X",
            ),
        ] {
            let d = Document::parse(t, raw, TODAY).unwrap();
            assert_eq!(d.number(), canonical);
            assert_eq!(d.birth_date(), None);
        }
    }

    #[test]
    fn other_document_type_errors() {
        for (t, raw, want) in [
            (
                DocType::Passport,
                "E123",
                "should be 5 to 17 characters, got 4",
            ),
            (
                DocType::Passport,
                "E1234567890123456789",
                "should be 5 to 17 characters, got 20",
            ),
            (
                DocType::Passport,
                "E1234-5678",
                "invalid character '-' at position 6",
            ),
            (
                DocType::HkMacaoPermit,
                "H1234567",
                "should be 9 or 11 characters (H or M, then 8 or 10 digits), got 8",
            ),
            (
                DocType::HkMacaoPermit,
                "A12345678",
                "should start with H or M",
            ),
            (
                DocType::HkMacaoPermit,
                "H1234567A",
                "invalid character 'A' at position 9",
            ),
            (
                DocType::TaiwanPermit,
                "123456789",
                "should be 8 or 10 digits, got 9",
            ),
            (
                DocType::TaiwanPermit,
                "1234567A",
                "invalid character 'A' at position 8",
            ),
            (
                DocType::ForeignPermanentResident,
                "USA11009061200",
                "should be 15 or 18 characters, got 14",
            ),
            (
                DocType::ForeignPermanentResident,
                "US1110090612001",
                "invalid character '1' at position 3",
            ),
            (
                DocType::ForeignPermanentResident,
                "811840198501010015",
                "the 18-character form should start with 9",
            ),
            (
                DocType::ForeignPermanentResident,
                "911840198501010016",
                "check digit should be X",
            ),
        ] {
            assert_eq!(reason(t, raw), want, "{t:?} {raw:?}");
        }
    }

    #[test]
    fn slugs_round_trip() {
        for t in DocType::ALL {
            assert_eq!(DocType::from_slug(t.slug()), Ok(t));
            assert_eq!(DocType::from_slug(&t.slug().to_uppercase()), Ok(t));
        }
        assert_eq!(DocType::from_slug(" CN_ID "), Ok(DocType::CnResidentId));
        assert_eq!(DocType::from_slug("resident-id"), Ok(DocType::CnResidentId));
        let codes: Vec<u8> = DocType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(codes, [1, 2, 3, 4, 5]);
        let e = DocType::from_slug("11010519491231002X").unwrap_err();
        assert_eq!(e.field, "doc_type");
        assert!(!e.reason.contains("11010519491231002X"));
    }

    #[test]
    fn debug_output_is_redacted() {
        let d = id("11010519491231002X").unwrap();
        assert!(!format!("{d:?}").contains("1101"));
    }
}
