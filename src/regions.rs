//! Names of administrative divisions (GB/T 2260), so that reports show 鄂尔多斯市东胜区 and not
//! only 150602. The table ships as data (`regions/gbt2260.tsv`, where it came from is in its
//! header) and is compiled in: a report never depends on a file beside the binary.

use std::collections::HashMap;
use std::sync::LazyLock;

static TABLE: &str = include_str!("regions/gbt2260.tsv");

/// Code (2, 4 or 6 digits) → the name the standard gives it.
static NAMES: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
    TABLE
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('\t'))
        .collect()
});

/// Placeholders the standard uses for a level a municipality or province skips.
const NO_NAME: [&str; 4] = [
    "市辖区",
    "县",
    "省直辖县级行政区划",
    "自治区直辖县级行政区划",
];

/// The full name of a division code or code prefix — province, city and county as far as the
/// code goes ("15" 内蒙古自治区, "1506" 内蒙古自治区鄂尔多斯市, "150602"
/// 内蒙古自治区鄂尔多斯市东胜区) — or `None` for a code the standard does not list.
pub fn full_name(code: &str) -> Option<String> {
    if !matches!(code.len(), 2 | 4 | 6) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let own = NAMES.get(code)?;
    let mut name = String::new();
    for level in [2, 4].into_iter().filter(|&l| l < code.len()) {
        if let Some(part) = NAMES.get(&code[..level]).filter(|n| !NO_NAME.contains(n)) {
            name.push_str(part);
        }
    }
    if !NO_NAME.contains(own) || name.is_empty() {
        name.push_str(own);
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compose_down_the_levels() {
        assert_eq!(full_name("15").as_deref(), Some("内蒙古自治区"));
        assert_eq!(full_name("1506").as_deref(), Some("内蒙古自治区鄂尔多斯市"));
        assert_eq!(
            full_name("150602").as_deref(),
            Some("内蒙古自治区鄂尔多斯市东胜区")
        );
        // A municipality's 市辖区 level is no part of the name.
        assert_eq!(full_name("110105").as_deref(), Some("北京市朝阳区"));
        assert_eq!(
            full_name("520526").as_deref(),
            Some("贵州省毕节市威宁彝族回族苗族自治县")
        );
        assert_eq!(full_name("81").as_deref(), Some("香港特别行政区"));
        assert_eq!(full_name("999999"), None);
        assert_eq!(full_name("15060"), None);
    }

    #[test]
    fn the_table_covers_every_province_and_thousands_of_counties() {
        let counties = NAMES.keys().filter(|c| c.len() == 6).count();
        assert!(counties > 2_800, "{counties}");
        for province in [11, 15, 31, 44, 54, 65, 71, 81, 82] {
            assert!(
                NAMES.contains_key(province.to_string().as_str()),
                "{province}"
            );
        }
    }
}
