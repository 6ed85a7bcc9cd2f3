//! Synthetic people, records and requests, made from an index so that ten million of them need
//! no memory and no uniqueness bookkeeping: person `i` of a population is always the same
//! valid resident ID and name, and two indexes never share a document.

use crate::identity::resident_id_check_char;
use crate::proto;

/// Who a person is: someone in the registry, or an applicant who is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Population {
    Registry,
    Applicants,
}

/// Birth dates run over this many days from 1960-01-01 (to late 2003, never in the future).
const BIRTH_DAYS: u64 = 16_000;
/// Sequence numbers per birth date and division.
const SEQUENCES: u64 = 999;
/// People one population holds before documents would repeat.
pub const CAPACITY: u64 = BIRTH_DAYS * SEQUENCES;

const SURNAMES: [&str; 24] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高", "郑", "梁", "谢", "宋",
];
const GIVEN: [&str; 40] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "建", "文", "辉", "玲", "燕", "宁", "欣", "浩",
    "宇", "晨", "阳", "婷", "雪", "琳", "博", "鑫",
];

/// Person `index` of `population`: a valid 18-character resident ID and a name. The two
/// populations live in different divisions, so they never share a document.
pub fn person(population: Population, index: u64) -> (String, String) {
    let division = match population {
        Population::Registry => "110101",
        Population::Applicants => "310104",
    };
    let index = index % CAPACITY;
    let birth = time::macros::date!(1960 - 01 - 01)
        + time::Duration::days(i64::try_from(index / SEQUENCES).unwrap_or(0));
    let first17 = format!(
        "{division}{:04}{:02}{:02}{:03}",
        birth.year(),
        u8::from(birth.month()),
        birth.day(),
        index % SEQUENCES + 1
    );
    let check = resident_id_check_char(&first17).unwrap_or('0');
    let given = GIVEN[(index / 24 % 40) as usize];
    let second = GIVEN[(index / 960 % 40) as usize];
    let name = format!("{}{given}{second}", SURNAMES[(index % 24) as usize]);
    (format!("{first17}{check}"), name)
}

/// The wire form of a person.
pub fn identity(population: Population, index: u64) -> proto::Identity {
    let (doc_number, name) = person(population, index);
    proto::Identity {
        doc_type: proto::DocType::CnResidentId as i32,
        doc_number,
        name,
    }
}

/// Registry record `index`: an unsealed sexual-offence conviction of registry person `index`.
pub fn record(index: u64) -> proto::ImportRecord {
    proto::ImportRecord {
        row: index + 1,
        source_ref: format!("BENCH-{index:09}"),
        subject: Some(identity(Population::Registry, index)),
        category: proto::Category::Sexual as i32,
        kind: proto::RecordKind::Conviction as i32,
        decided_on: "2019-05-20".into(),
        sealed: false,
    }
}

/// One request in ten is for someone in the registry (a hit, which also reads the record);
/// the rest are applicants with no record.
pub const HIT_EVERY: u64 = 10;

/// The person asked about by request `n` against an index of `index_size` records, and
/// whether the answer must be a hit. Hits are spread over the whole index.
pub fn subject(n: u64, index_size: u64) -> (proto::Identity, bool) {
    if n.is_multiple_of(HIT_EVERY) && index_size > 0 {
        let record = n.wrapping_mul(7_919) % index_size;
        (identity(Population::Registry, record), true)
    } else {
        (identity(Population::Applicants, n), false)
    }
}

/// A pre-hire request, with its consent reference, for request number `n`: the check any
/// employer may make of anyone (a yearly re-check is only for roster members).
pub fn check_request(n: u64, index_size: u64) -> (proto::CheckRequest, bool) {
    let (subject, hit) = subject(n, index_size);
    let request = proto::CheckRequest {
        subject: Some(subject),
        purpose: proto::Purpose::PreHire as i32,
        scope: proto::Scope::Art62 as i32,
        consent_ref: format!("CONSENT-BENCH-{n}"),
        on_behalf_of: String::new(),
    };
    (request, hit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{DocType, Document, PersonName};

    #[test]
    fn people_are_valid_and_distinct() {
        let today = time::macros::date!(2026 - 11 - 24);
        let mut seen = std::collections::HashSet::new();
        for population in [Population::Registry, Population::Applicants] {
            for index in (0..2_000).chain([CAPACITY - 1, 9_999_999]) {
                let (number, name) = person(population, index);
                Document::parse(DocType::CnResidentId, &number, today).unwrap();
                PersonName::parse(&name).unwrap();
                assert!(
                    seen.insert(number),
                    "{population:?} {index} repeats a document"
                );
            }
        }
    }

    #[test]
    fn one_request_in_ten_is_a_hit_inside_the_index() {
        let hits = (0..100).filter(|&n| subject(n, 10_000).1).count();
        assert_eq!(hits, 10);
        assert!(!subject(0, 0).1, "an empty index has nothing to hit");
    }
}
