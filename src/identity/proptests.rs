//! Properties of the whole identity module: no panics on any input, idempotent
//! normalisation, check characters that catch every single-character error, and error
//! reasons that never repeat the input.

use proptest::prelude::*;
use time::Date;
use time::macros::date;

use super::*;

const TODAY: Date = date!(2026 - 03 - 15);

/// Characters that exercise the normaliser's special cases, mixed into arbitrary text.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        any::<char>(),
        prop::sample::select(vec![
            ' ', '\u{3000}', '\t', '.', '\u{00B7}', '\u{2022}', '\u{30FB}', '\u{FF65}', '\u{FF0E}',
            '\u{A78F}', '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{0301}', '\u{0308}', '\u{0323}',
            '\u{030C}', '\u{02BC}', '\u{00B4}', 'ǰ', 'ß', 'ŉ', 'ǅ', 'ﬀ', 'a', 'Z', 'é', '张', '三',
            '〇', '\u{F900}', 'Ａ', '１', 'x', 'X', '0', '9', 'Σ', 'ς', 'İ',
        ]),
    ]
}

fn tricky_string() -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..40).prop_map(|v| v.into_iter().collect())
}

/// Asserts the privacy rule for one rejected input: the reason must not contain the
/// normalised input. Inputs shorter than four characters are skipped, since a reason
/// like "got 17" unavoidably contains short digit strings.
fn assert_private(normalised: &str, err: &IdentityError) {
    if normalised.chars().count() >= 4 {
        assert!(
            !err.reason.contains(normalised),
            "reason {:?} repeats input {normalised:?}",
            err.reason
        );
    }
}

fn code_form(raw: &str) -> String {
    super::normalize_code(raw)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn name_normalisation_is_idempotent(raw in tricky_string()) {
        let once = normalize_name(&raw);
        prop_assert_eq!(normalize_name(&once), once);
    }

    #[test]
    fn name_normalisation_is_idempotent_on_any_string(raw in any::<String>()) {
        let once = normalize_name(&raw);
        prop_assert_eq!(normalize_name(&once), once);
    }

    #[test]
    fn parsers_never_panic_and_keep_privacy(raw in prop_oneof![any::<String>(), tricky_string()]) {
        if let Err(e) = PersonName::parse(&raw) {
            assert_private(&normalize_name(&raw), &e);
        }
        if let Err(e) = Uscc::parse(&raw) {
            assert_private(&code_form(&raw), &e);
        }
        for t in DocType::ALL {
            if let Err(e) = Document::parse(t, &raw, TODAY) {
                assert_private(&code_form(&raw), &e);
            }
        }
        let _ = DocType::from_slug(&raw);
    }

    #[test]
    fn digit_strings_never_leak(raw in "[0-9X]{4,20}", t in prop::sample::select(DocType::ALL.to_vec())) {
        if let Err(e) = Document::parse(t, &raw, TODAY) {
            assert_private(&raw, &e);
        }
    }

    #[test]
    fn parsed_names_are_fixed_points(raw in tricky_string()) {
        if let Ok(name) = PersonName::parse(&raw) {
            let again = PersonName::parse(name.as_str()).unwrap();
            prop_assert_eq!(again.as_str(), name.as_str());
        }
    }

    #[test]
    fn resident_id_catches_single_digit_errors(
        province in prop::sample::select(vec!["11", "31", "44", "65", "82"]),
        area in 0u32..10_000,
        days in 0i64..40_000,
        seq in 0u32..1000,
        pos in 0usize..17,
        delta in 1u8..10,
    ) {
        let birth = date!(1910 - 01 - 01) + time::Duration::days(days);
        prop_assume!(birth <= TODAY);
        let first17 = format!(
            "{province}{area:04}{:04}{:02}{:02}{seq:03}",
            birth.year(), u8::from(birth.month()), birth.day()
        );
        let check = resident_id_check_char(&first17).unwrap();
        let id = format!("{first17}{check}");
        let doc = Document::parse(DocType::CnResidentId, &id, TODAY).unwrap();
        prop_assert_eq!(doc.birth_date(), Some(birth));

        // Change one of the first 17 digits: the number must be rejected (by the province,
        // the date or the check digit), never accepted as someone else.
        let mut bytes = id.clone().into_bytes();
        bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assert!(Document::parse(DocType::CnResidentId, &mutated, TODAY).is_err());
    }

    #[test]
    fn uscc_catches_single_character_errors(
        body in "[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{9}",
        pos in 0usize..17,
        delta in 1usize..31,
    ) {
        let alphabet = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
        let code = format!("{body}{}", uscc_check_char(&body).unwrap());
        let uscc = Uscc::parse(&code).unwrap();
        prop_assert_eq!(uscc.region(), &body[2..8]);

        let mut bytes = code.into_bytes();
        let old = alphabet.iter().position(|&a| a == bytes[pos]).unwrap();
        bytes[pos] = alphabet[(old + delta) % 31];
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assert!(Uscc::parse(&mutated).is_err());
    }
}

/// The privacy rule over a table of realistic bad inputs of every kind.
#[test]
fn error_reasons_never_contain_the_input() {
    let documents = [
        (DocType::CnResidentId, "110105194912310021"),
        (DocType::CnResidentId, "11010519900230001X"),
        (DocType::CnResidentId, "110105209001010019"),
        (DocType::CnResidentId, "990105194912310021"),
        (DocType::CnResidentId, "11010519491231002"),
        (DocType::CnResidentId, "1101A519491231002X"),
        (
            DocType::CnResidentId,
            "１１０１０５１９４９１２３１００２１",
        ),
        (DocType::CnResidentId, "110105900230002"),
        (DocType::CnResidentId, "440524188001010014"),
        (
            DocType::CnResidentId,
            "11010519491231002X11010519491231002X",
        ),
        (DocType::Passport, "E1234-5678"),
        (DocType::Passport, "E123456789012345678"),
        (DocType::Passport, "E12.3"),
        (DocType::HkMacaoPermit, "A12345678"),
        (DocType::HkMacaoPermit, "H1234X678"),
        (DocType::HkMacaoPermit, "H123456789"),
        (DocType::TaiwanPermit, "1234567A"),
        (DocType::TaiwanPermit, "123456789"),
        (DocType::ForeignPermanentResident, "US1110090612001"),
        (DocType::ForeignPermanentResident, "911840198501010016"),
        (DocType::ForeignPermanentResident, "811840198501010015"),
    ];
    for (t, raw) in documents {
        let e = Document::parse(t, raw, TODAY).unwrap_err();
        assert_eq!(e.field, "doc_number");
        assert!(!e.reason.contains(raw), "{raw}: {}", e.reason);
        assert!(!e.reason.contains(&code_form(raw)), "{raw}: {}", e.reason);
        // Not even the 17 digits before a check character.
        let first17: String = code_form(raw).chars().take(17).collect();
        if first17.chars().count() == 17 {
            assert!(!e.reason.contains(&first17), "{raw}: {}", e.reason);
        }
    }

    let names = [
        "张三3",
        "王五!",
        "李\u{0007}四",
        "Smith.",
        "John Smith 2nd",
        "Anna@Mueller",
        &"张".repeat(65),
        "艾力·买买提1",
    ];
    for raw in names {
        let e = PersonName::parse(raw).unwrap_err();
        assert_eq!(e.field, "name");
        assert!(!e.reason.contains(raw), "{raw}: {}", e.reason);
        assert!(
            !e.reason.contains(&normalize_name(raw)),
            "{raw}: {}",
            e.reason
        );
        assert!(!e.to_string().contains(&normalize_name(raw)));
    }

    for raw in [
        "91350100M000100Y44",
        "91350100I000100Y43",
        "9135A100M000100Y43",
    ] {
        let e = Uscc::parse(raw).unwrap_err();
        assert!(!e.reason.contains(raw), "{raw}: {}", e.reason);
    }
}
