//! Synthetic data for demos, load tests and benchmarks: resident IDs, names, organisations,
//! rosters and registry records that pass validation but belong to nobody.
//!
//! Every value is drawn from a seeded RNG and a fixed "today", so the same seed always gives
//! the same files — benchmark runs and bug reports stay reproducible.

use std::io::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::macros::date;
use time::{Date, Duration};

use crate::identity::{DocType, resident_id_check_char, uscc_check_char};

/// Real 6-digit administrative division codes (GB/T 2260) with their names, so generated IDs
/// and organisations look plausible and group by region like real data.
const DIVISIONS: [(&str, &str); 38] = [
    ("110101", "北京市东城区"),
    ("110105", "北京市朝阳区"),
    ("110108", "北京市海淀区"),
    ("120101", "天津市和平区"),
    ("130102", "石家庄市长安区"),
    ("140105", "太原市小店区"),
    ("150602", "鄂尔多斯市东胜区"),
    ("210102", "沈阳市和平区"),
    ("220102", "长春市南关区"),
    ("230103", "哈尔滨市南岗区"),
    ("310104", "上海市徐汇区"),
    ("310115", "上海市浦东新区"),
    ("320102", "南京市玄武区"),
    ("330106", "杭州市西湖区"),
    ("340104", "合肥市蜀山区"),
    ("350102", "福州市鼓楼区"),
    ("360102", "南昌市东湖区"),
    ("370102", "济南市历下区"),
    ("410105", "郑州市金水区"),
    ("420106", "武汉市武昌区"),
    ("430104", "长沙市岳麓区"),
    ("440106", "广州市天河区"),
    ("440305", "深圳市南山区"),
    ("450103", "南宁市青秀区"),
    ("460106", "海口市龙华区"),
    ("500103", "重庆市渝中区"),
    ("510104", "成都市锦江区"),
    ("520102", "贵阳市南明区"),
    ("520121", "贵阳市开阳县"),
    ("520526", "毕节市威宁彝族回族苗族自治县"),
    ("530102", "昆明市五华区"),
    ("530402", "玉溪市红塔区"),
    ("540102", "拉萨市城关区"),
    ("610113", "西安市雁塔区"),
    ("620102", "兰州市城关区"),
    ("630102", "西宁市城东区"),
    ("640104", "银川市兴庆区"),
    ("650102", "乌鲁木齐市天山区"),
];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "高", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏",
    "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹",
];

const DOUBLE_SURNAMES: &[&str] = &["欧阳", "司马", "诸葛", "上官", "皇甫", "司徒"];

const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "玉", "兰", "萍", "红", "建", "文", "辉", "力",
    "燕", "鹏", "飞", "鑫", "波", "宁", "斌", "宇", "浩", "凯", "健", "俊", "帆", "旭", "琳", "晨",
    "婷", "雪", "颖", "欣", "怡", "佳", "悦", "子", "涵", "梓", "轩", "博", "睿", "思", "雨", "泽",
    "宏", "志", "国", "海", "峰", "云", "春", "梅", "晓", "丹", "亮", "成", "龙", "东", "林", "琴",
    "莉", "阳", "新", "振", "嘉", "铭", "瑞", "彤", "诗", "然", "可", "心", "一", "诺", "安", "晴",
    "萱", "乐", "天", "航", "毅", "立", "倩",
];

/// Parts of transliterated Uyghur, Tibetan and Mongolian names, joined with `·`.
const TRANSLIT_GIVEN: &[&str] = &[
    "艾力",
    "古丽娜尔",
    "阿依古丽",
    "扎西",
    "买买提",
    "阿不都",
    "热依拉",
    "迪丽娜尔",
    "努尔",
    "次仁",
    "格桑",
    "巴特尔",
    "帕提古丽",
    "阿迪力",
    "吾买尔",
];
const TRANSLIT_FAMILY: &[&str] = &[
    "买买提",
    "吐尔逊",
    "艾山",
    "多吉",
    "卓玛",
    "热合曼",
    "玉素甫",
    "阿不都拉",
    "伊明",
    "尼亚孜",
    "旺堆",
    "克里木",
    "艾则孜",
];

const LATIN_GIVEN: &[&str] = &[
    "JOHN", "ANNA", "MARIA", "DAVID", "SOPHIE", "LUCAS", "EMMA", "NOAH",
];
const LATIN_FAMILY: &[&str] = &[
    "SMITH", "MÜLLER", "GARCIA", "TANAKA", "KIM", "DUBOIS", "ROSSI", "NGUYEN", "O'BRIEN",
];

/// ISO 3166 numeric country codes for the 2023 foreign permanent resident ID.
const COUNTRIES: &[&str] = &["840", "826", "276", "250", "392", "410", "036", "124"];

const BRANDS: &[&str] = &[
    "阳光",
    "蓝天",
    "小太阳",
    "启明星",
    "童心",
    "彩虹",
    "金色摇篮",
    "育才",
    "春苗",
    "小橡树",
    "向日葵",
    "星星",
    "新苗",
    "博雅",
    "知行",
    "乐学",
];

/// Industry slugs with their share of generated organisations (per mille).
const INDUSTRIES: [(&str, u32); 8] = [
    ("primary-secondary-school", 300),
    ("kindergarten", 250),
    ("off-campus-training", 150),
    ("childcare", 80),
    ("paediatric-medical", 50),
    ("sports", 70),
    ("welfare-institution", 30),
    ("other", 70),
];

/// USCC positions 1–2 (registering authority, organisation type): the authority from
/// "123456789ANY" and a type that authority issues.
const USCC_PREFIXES: &[&str] = &[
    "11", "12", "13", "19", "21", "31", "32", "41", "51", "52", "53", "61", "71", "81", "91", "92",
    "93", "A1", "N1", "N2", "Y1",
];

const CATEGORIES: [(&str, u32); 5] = [
    ("sexual", 50),
    ("abuse", 15),
    ("trafficking", 5),
    ("violent-injury", 20),
    ("qualification-ban", 10),
];

const KINDS: [(&str, u32); 3] = [
    ("conviction", 70),
    ("non-prosecution", 15),
    ("administrative-penalty", 15),
];

/// About 98% of people hold a mainland resident ID (per mille).
const DOC_TYPES: [(DocType, u32); 5] = [
    (DocType::CnResidentId, 980),
    (DocType::Passport, 8),
    (DocType::HkMacaoPermit, 5),
    (DocType::TaiwanPermit, 4),
    (DocType::ForeignPermanentResident, 3),
];

pub const PEOPLE_HEADER: [&str; 5] = ["doc_type", "doc_number", "name", "staff_ref", "hire_date"];
pub const RECORDS_HEADER: [&str; 8] = [
    "source_ref",
    "doc_type",
    "doc_number",
    "name",
    "category",
    "kind",
    "decided_on",
    "sealed",
];
pub const ORGS_HEADER: [&str; 6] = [
    "uscc",
    "name",
    "role",
    "region",
    "industry",
    "supervising_bureau",
];

/// Which kind of file an identity is drawn for. People and records take their numbers from
/// disjoint ranges (the last digits before a check character), so a generated staff file holds
/// nobody from a generated records file whatever the seeds: a newcomer's `batch` of generated
/// staff answers NO_RECORD throughout, and a hit is there only when planted on purpose
/// ([`plant_hits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Space {
    People,
    Records,
}

impl Space {
    /// The part of `0..n` this space draws from: people the first nine tenths, records the rest.
    fn range(self, n: u32) -> std::ops::Range<u32> {
        let split = n / 10 * 9;
        match self {
            Space::People => 0..split,
            Space::Records => split..n,
        }
    }
}

/// One roster line: a member of staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub doc_type: &'static str,
    pub doc_number: String,
    pub name: String,
    pub staff_ref: String,
    pub hire_date: Date,
}

/// One registry record as a registrar would import it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub source_ref: String,
    pub doc_type: &'static str,
    pub doc_number: String,
    pub name: String,
    pub category: &'static str,
    pub kind: &'static str,
    pub decided_on: Date,
    pub sealed: bool,
}

/// One organisation for the organisation registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRow {
    pub uscc: String,
    pub name: String,
    pub role: &'static str,
    pub region: String,
    pub industry: &'static str,
    /// Left empty: the caller knows which bureaus exist.
    pub supervising_bureau: String,
}

/// A seeded source of fictitious identities and organisations.
pub struct Generator {
    rng: StdRng,
    today: Date,
    /// Documents already handed out by `person` and `record`: one generated file never holds
    /// the same person twice (a staff file with duplicates would be rejected row by row).
    issued: std::collections::HashSet<(DocType, String)>,
}

impl Generator {
    pub fn new(seed: u64, today: Date) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            today,
            issued: std::collections::HashSet::new(),
        }
    }

    /// The RNG itself, for callers that need more randomness in the same reproducible stream.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// A valid 18-character resident ID: a real division code, a birth date between 1955
    /// and 2005 (never after today), a random sequence and the computed check character —
    /// so X appears as often as the check arithmetic makes it, about 1 in 11.
    pub fn resident_id(&mut self) -> String {
        self.resident_id_in(Space::People)
    }

    /// A resident ID whose sequence number lies in `space`'s part of 1..=999.
    fn resident_id_in(&mut self, space: Space) -> String {
        let to = self.today.min(date!(2005 - 12 - 31));
        let from = to.min(date!(1955 - 01 - 01));
        let birth = self.date_between(from, to);
        let (division, _) = self.pick(&DIVISIONS);
        let sequence = self.rng.random_range(space.range(1000)).max(1);
        let first17 = format!("{division}{}{sequence:03}", compact(birth));
        with_resident_check(first17)
    }

    /// A realistic Chinese name, already in canonical form; about 3% are transliterated
    /// names with an interpunct.
    pub fn name(&mut self) -> String {
        if self.rng.random_bool(0.03) {
            return format!(
                "{}·{}",
                self.pick(TRANSLIT_GIVEN),
                self.pick(TRANSLIT_FAMILY)
            );
        }
        let mut name = if self.rng.random_bool(0.02) {
            self.pick(DOUBLE_SURNAMES).to_owned()
        } else {
            self.pick(SURNAMES).to_owned()
        };
        name.push_str(self.pick(GIVEN));
        if self.rng.random_bool(0.7) {
            name.push_str(self.pick(GIVEN));
        }
        name
    }

    /// A valid unified social credit code registered in a random division.
    pub fn uscc(&mut self) -> String {
        let prefix = self.pick(USCC_PREFIXES);
        let (division, _) = self.pick(&DIVISIONS);
        self.uscc_for(prefix, division)
    }

    /// A fictitious organisation name in a random division, shaped by the industry slug
    /// (unknown slugs get a generic youth-centre name).
    pub fn org_name(&mut self, industry_hint: &str) -> String {
        let (_, place) = self.pick(&DIVISIONS);
        let ordinal = self.rng.random_range(1..=30);
        self.org_name_in(industry_hint, place, ordinal)
    }

    /// A uniformly random date in `from..=to` (the bounds may come in either order).
    pub fn date_between(&mut self, from: Date, to: Date) -> Date {
        let (lo, hi) = (from.min(to), from.max(to));
        let day = self
            .rng
            .random_range(lo.to_julian_day()..=hi.to_julian_day());
        Date::from_julian_day(day).unwrap_or(lo)
    }

    /// A member of staff: `staff_ref` is "S" and the zero-padded index; hired within the
    /// last ten years.
    pub fn person(&mut self, index: u64) -> PersonRow {
        let (doc_type, doc_number, name) = self.identity(Space::People);
        let hire_date = self.date_between(self.days_ago(3652), self.today);
        PersonRow {
            doc_type: doc_type.slug(),
            doc_number,
            name,
            staff_ref: format!("S{index:06}"),
            hire_date,
        }
    }

    /// A registry record decided within the last twenty years; about half are sexual
    /// offences and 3% are sealed juvenile records.
    pub fn record(&mut self, index: u64) -> RecordRow {
        let (doc_type, doc_number, name) = self.identity(Space::Records);
        let category = self.weighted(&CATEGORIES);
        let kind = if category == "qualification-ban" {
            "qualification-ban"
        } else {
            self.weighted(&KINDS)
        };
        let decided_on = self.date_between(self.days_ago(7305), self.today);
        RecordRow {
            source_ref: format!("REC-{}-{index:07}", decided_on.year()),
            doc_type: doc_type.slug(),
            doc_number,
            name,
            category,
            kind,
            decided_on,
            sealed: self.rng.random_bool(0.03),
        }
    }

    /// An employer in a random division; its USCC is registered in the same division and
    /// its type (public institution, private non-enterprise, company) fits the industry.
    pub fn org(&mut self, index: u64) -> OrgRow {
        let industry = self.weighted(&INDUSTRIES);
        let (division, place) = self.pick(&DIVISIONS);
        let prefix = match industry {
            "primary-secondary-school" | "paediatric-medical" | "welfare-institution" => {
                self.pick(&["12", "12", "12", "52"])
            }
            "kindergarten" | "childcare" | "sports" => self.pick(&["12", "52", "52", "91"]),
            "off-campus-training" => self.pick(&["91", "91", "52"]),
            _ => self.pick(&["12", "51", "52", "91"]),
        };
        // Schools are numbered by index, so names repeat only across divisions.
        let ordinal = index % 30 + 1;
        OrgRow {
            uscc: self.uscc_for(prefix, division),
            name: self.org_name_in(industry, place, ordinal),
            role: "employer",
            region: division.to_owned(),
            industry,
            supervising_bureau: String::new(),
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    /// Picks an item with probability proportional to its weight.
    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|&(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total);
        for &(item, weight) in items {
            if roll < weight {
                return item;
            }
            roll -= weight;
        }
        items[items.len() - 1].0
    }

    fn days_ago(&self, days: i64) -> Date {
        self.today
            .checked_sub(Duration::days(days))
            .unwrap_or(Date::MIN)
    }

    /// A document of a random type with a name that fits it.
    /// A fictitious person whose document this generator has not issued before.
    fn identity(&mut self, space: Space) -> (DocType, String, String) {
        loop {
            let (doc_type, number, name) = self.any_identity(space);
            if self.issued.insert((doc_type, number.clone())) {
                return (doc_type, number, name);
            }
        }
    }

    fn any_identity(&mut self, space: Space) -> (DocType, String, String) {
        let doc_type = self.weighted(&DOC_TYPES);
        let (number, name) = match doc_type {
            DocType::CnResidentId => (self.resident_id_in(space), self.name()),
            DocType::Passport => {
                if self.rng.random_bool(0.5) {
                    let n = self.rng.random_range(space.range(100_000_000));
                    (format!("E{n:08}"), self.name())
                } else {
                    let letters = format!("{}{}", self.letter(), self.letter());
                    let n = self.rng.random_range(space.range(10_000_000));
                    (format!("{letters}{n:07}"), self.latin_name())
                }
            }
            DocType::HkMacaoPermit => {
                let n = self.rng.random_range(space.range(100_000_000));
                (format!("{}{n:08}", self.pick(&['H', 'M'])), self.name())
            }
            DocType::TaiwanPermit => {
                let n = self.rng.random_range(space.range(100_000_000));
                (format!("{n:08}"), self.name())
            }
            DocType::ForeignPermanentResident => {
                let (division, _) = self.pick(&DIVISIONS);
                let country = self.pick(COUNTRIES);
                let birth = self.date_between(date!(1950 - 01 - 01), date!(2005 - 12 - 31));
                let sequence = self.rng.random_range(space.range(1000));
                let first17 = format!(
                    "9{}{country}{}{sequence:03}",
                    &division[..2],
                    compact(birth)
                );
                (with_resident_check(first17), self.latin_name())
            }
        };
        (doc_type, number, name)
    }

    fn letter(&mut self) -> char {
        char::from(self.rng.random_range(b'A'..=b'Z'))
    }

    fn latin_name(&mut self) -> String {
        format!("{} {}", self.pick(LATIN_GIVEN), self.pick(LATIN_FAMILY))
    }

    fn uscc_for(&mut self, prefix: &str, division: &str) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
        let mut code = format!("{prefix}{division}");
        for _ in 0..9 {
            code.push(char::from(self.pick(ALPHABET)));
        }
        // The prefix and division tables hold only alphabet characters, so this is always
        // Some; the fallback keeps the generator total without an unwrap.
        code.push(uscc_check_char(&code).unwrap_or('0'));
        code
    }

    fn org_name_in(&mut self, industry: &str, place: &str, ordinal: u64) -> String {
        let n = chinese_number(ordinal);
        let brand = self.pick(BRANDS);
        match industry {
            "primary-secondary-school" => {
                let kind = self.pick(&["小学", "中学", "初级中学", "实验小学"]);
                format!("{place}第{n}{kind}")
            }
            "kindergarten" => {
                if self.rng.random_bool(0.3) {
                    format!("{place}第{n}幼儿园")
                } else {
                    format!("{place}{brand}幼儿园")
                }
            }
            "off-campus-training" => {
                let kind = self.pick(&["教育科技有限公司", "艺术培训学校", "文化培训中心"]);
                format!("{place}{brand}{kind}")
            }
            "childcare" => format!("{place}{brand}托育中心"),
            "paediatric-medical" => format!("{place}{brand}儿童诊所"),
            "sports" => format!("{place}{brand}青少年体育俱乐部"),
            "welfare-institution" => format!("{place}{brand}儿童福利院"),
            _ => format!("{place}{brand}青少年活动中心"),
        }
    }
}

/// `YYYYMMDD`, as in a resident ID.
fn compact(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Appends the MOD 11-2 check character. `first17` is built from digits only, so the check
/// always exists; the fallback keeps the generator total without an unwrap.
fn with_resident_check(mut first17: String) -> String {
    let check = resident_id_check_char(&first17).unwrap_or('0');
    first17.push(check);
    first17
}

/// Chinese numerals for 1..=99 ("三", "十二", "二十"), as used in school names.
fn chinese_number(n: u64) -> String {
    const DIGITS: [&str; 10] = ["", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    let (tens, ones) = ((n / 10 % 10) as usize, (n % 10) as usize);
    match tens {
        0 => DIGITS[ones].to_owned(),
        1 => format!("十{}", DIGITS[ones]),
        _ => format!("{}十{}", DIGITS[tens], DIGITS[ones]),
    }
}

fn write_rows<W: Write, const N: usize>(
    out: W,
    header: [&str; N],
    n: u64,
    mut row: impl FnMut(u64) -> [String; N],
) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(header)?;
    for index in 0..n {
        writer.write_record(row(index))?;
    }
    writer.flush()?;
    Ok(())
}

/// Writes `n` roster rows as CSV with [`PEOPLE_HEADER`]; dates as YYYY-MM-DD.
pub fn write_people<W: Write>(out: W, generator: &mut Generator, n: u64) -> Result<(), csv::Error> {
    write_rows(out, PEOPLE_HEADER, n, |i| {
        let p = generator.person(i);
        [
            p.doc_type.to_owned(),
            p.doc_number,
            p.name,
            p.staff_ref,
            p.hire_date.to_string(),
        ]
    })
}

/// Writes `n` registry records as CSV with [`RECORDS_HEADER`]; sealed as true/false.
pub fn write_records<W: Write>(
    out: W,
    generator: &mut Generator,
    n: u64,
) -> Result<(), csv::Error> {
    write_rows(out, RECORDS_HEADER, n, |i| {
        let r = generator.record(i);
        [
            r.source_ref,
            r.doc_type.to_owned(),
            r.doc_number,
            r.name,
            r.category.to_owned(),
            r.kind.to_owned(),
            r.decided_on.to_string(),
            r.sealed.to_string(),
        ]
    })
}

/// The division `gen orgs` always covers: the dev organisations' (鄂尔多斯市东胜区), which the
/// README's report examples ask about.
pub const HOME_DIVISION: &str = "150602";

/// Units per generated bureau: a file of `n` units spans `n / UNITS_PER_BUREAU` regions (at
/// least one), each with its education bureau.
const UNITS_PER_BUREAU: u64 = 10;

impl Generator {
    /// The education bureau of `division`: a government organ (USCC type 11).
    pub fn bureau(&mut self, division: &str) -> OrgRow {
        let place = DIVISIONS
            .iter()
            .find(|(code, _)| *code == division)
            .map_or("", |(_, place)| place);
        OrgRow {
            uscc: self.uscc_for("11", division),
            name: format!("{place}教育局"),
            role: "bureau",
            region: division.to_owned(),
            industry: "",
            supervising_bureau: String::new(),
        }
    }

    /// `n` units spread over a few regions, [`HOME_DIVISION`] first, preceded by one bureau per
    /// region that supervises the region's units — in the order `org import` needs (a bureau
    /// before its units).
    pub fn orgs(&mut self, n: u64) -> Vec<OrgRow> {
        let regions = (n / UNITS_PER_BUREAU).clamp(1, DIVISIONS.len() as u64) as usize;
        let mut divisions = vec![HOME_DIVISION];
        while divisions.len() < regions {
            let (division, _) = self.pick(&DIVISIONS);
            if !divisions.contains(&division) {
                divisions.push(division);
            }
        }
        let bureaus: Vec<OrgRow> = divisions.iter().map(|d| self.bureau(d)).collect();
        let mut rows = bureaus.clone();
        for index in 0..n {
            let bureau = &bureaus[index as usize % bureaus.len()];
            let mut unit = self.org(index);
            let division = bureau.region.clone();
            let place = DIVISIONS
                .iter()
                .find(|(code, _)| *code == division)
                .map_or("", |(_, place)| place);
            let prefix = unit.uscc[..2].to_owned();
            unit.uscc = self.uscc_for(&prefix, &division);
            unit.name = self.org_name_in(unit.industry, place, index % 30 + 1);
            unit.region = division;
            unit.supervising_bureau = bureau.uscc.clone();
            rows.push(unit);
        }
        rows
    }
}

/// Writes `n` units and their bureaus ([`Generator::orgs`]) as CSV with [`ORGS_HEADER`].
pub fn write_orgs<W: Write>(out: W, generator: &mut Generator, n: u64) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(ORGS_HEADER)?;
    for o in generator.orgs(n) {
        writer.write_record([
            o.uscc,
            o.name,
            o.role.to_owned(),
            o.region,
            o.industry.to_owned(),
            o.supervising_bureau,
        ])?;
    }
    writer.flush()?;
    Ok(())
}

/// Which of `hits` planted hits row `index` of a `rows`-row staff file carries, if any: they
/// are evenly spaced, the k-th at row `k * (rows / hits)`, so that a demo or a test has known
/// hits among otherwise clean staff (`gen people --with-records FILE --hits N`).
pub fn hit_slot(index: u64, rows: u64, hits: u64) -> Option<usize> {
    let hits = hits.min(rows);
    if hits == 0 {
        return None;
    }
    let step = rows / hits;
    (index.is_multiple_of(step) && index / step < hits).then(|| (index / step) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Document, PersonName, Uscc};

    const TODAY: Date = date!(2026 - 03 - 15);
    const SAMPLES: u64 = 10_000;

    fn doc_type(slug: &str) -> DocType {
        DocType::from_slug(slug).unwrap()
    }

    #[test]
    fn a_generated_file_never_holds_the_same_person_twice() {
        // Resident IDs alone collide within tens of thousands (birthday paradox).
        let mut g = Generator::new(3, TODAY);
        let mut seen = std::collections::HashSet::new();
        for i in 0..60_000 {
            let p = g.person(i);
            assert!(
                seen.insert((p.doc_type, p.doc_number)),
                "row {i} repeats a person"
            );
        }
    }

    #[test]
    fn resident_ids_are_valid_and_x_is_not_biased() {
        let mut g = Generator::new(1, TODAY);
        let mut x = 0;
        for _ in 0..11_000 {
            let id = g.resident_id();
            let doc = Document::parse(DocType::CnResidentId, &id, TODAY).unwrap();
            assert_eq!(doc.number(), id);
            let birth = doc.birth_date().unwrap();
            assert!((date!(1955 - 01 - 01)..=date!(2005 - 12 - 31)).contains(&birth));
            x += usize::from(id.ends_with('X'));
        }
        // Expect about 1000 (1 in 11).
        assert!((800..1200).contains(&x), "{x} of 11000 end in X");
    }

    #[test]
    fn resident_ids_respect_an_early_today() {
        let today = date!(1990 - 06 - 01);
        let mut g = Generator::new(2, today);
        for _ in 0..1000 {
            Document::parse(DocType::CnResidentId, &g.resident_id(), today).unwrap();
        }
    }

    #[test]
    fn names_are_canonical_and_some_have_an_interpunct() {
        let mut g = Generator::new(3, TODAY);
        let mut interpunct = 0;
        for _ in 0..SAMPLES {
            let name = g.name();
            assert_eq!(PersonName::parse(&name).unwrap().as_str(), name);
            interpunct += usize::from(name.contains('·'));
        }
        // Expect about 300 (3%).
        assert!((150..500).contains(&interpunct), "{interpunct}");
    }

    #[test]
    fn usccs_are_valid() {
        let mut g = Generator::new(4, TODAY);
        for _ in 0..SAMPLES {
            let code = g.uscc();
            assert_eq!(Uscc::parse(&code).unwrap().as_str(), code);
            assert!("123456789ANY".contains(&code[..1]));
        }
    }

    #[test]
    fn people_records_and_orgs_are_valid() {
        let mut g = Generator::new(5, TODAY);
        let mut other_docs = 0;
        let mut sexual = 0;
        let mut sealed = 0;
        for i in 0..SAMPLES {
            let p = g.person(i);
            let doc = Document::parse(doc_type(p.doc_type), &p.doc_number, TODAY).unwrap();
            assert_eq!(doc.number(), p.doc_number);
            assert_eq!(PersonName::parse(&p.name).unwrap().as_str(), p.name);
            assert_eq!(p.staff_ref, format!("S{i:06}"));
            assert!(p.hire_date <= TODAY && p.hire_date >= TODAY - Duration::days(3652));
            other_docs += usize::from(p.doc_type != "cn-id");

            let r = g.record(i);
            let doc = Document::parse(doc_type(r.doc_type), &r.doc_number, TODAY).unwrap();
            assert_eq!(doc.number(), r.doc_number);
            assert_eq!(PersonName::parse(&r.name).unwrap().as_str(), r.name);
            assert_eq!(r.source_ref, format!("REC-{}-{i:07}", r.decided_on.year()));
            assert_eq!(
                r.category == "qualification-ban",
                r.kind == "qualification-ban"
            );
            assert!(r.decided_on <= TODAY && r.decided_on >= TODAY - Duration::days(7305));
            sexual += usize::from(r.category == "sexual");
            sealed += usize::from(r.sealed);

            let o = g.org(i);
            let uscc = Uscc::parse(&o.uscc).unwrap();
            assert_eq!(uscc.region(), o.region);
            assert!(INDUSTRIES.iter().any(|&(s, _)| s == o.industry));
            assert_eq!(o.role, "employer");
            assert!(o.supervising_bureau.is_empty());
            assert!(!o.name.is_empty());
        }
        assert!((100..350).contains(&other_docs), "{other_docs}");
        assert!((4500..5500).contains(&sexual), "{sexual}");
        assert!((150..450).contains(&sealed), "{sealed}");
    }

    #[test]
    fn org_names_follow_the_industry() {
        let mut g = Generator::new(6, TODAY);
        for (industry, _) in INDUSTRIES {
            let name = g.org_name(industry);
            assert!(
                DIVISIONS.iter().any(|(_, place)| name.starts_with(place)),
                "{name}"
            );
        }
        assert!(g.org_name("kindergarten").ends_with("幼儿园"));
        assert!(g.org_name("no-such-industry").ends_with("青少年活动中心"));
        assert_eq!(chinese_number(3), "三");
        assert_eq!(chinese_number(10), "十");
        assert_eq!(chinese_number(12), "十二");
        assert_eq!(chinese_number(30), "三十");
    }

    #[test]
    fn date_between_is_inclusive_and_order_free() {
        let mut g = Generator::new(7, TODAY);
        let (a, b) = (date!(2020 - 01 - 01), date!(2020 - 01 - 03));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(g.date_between(b, a));
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            [a, a.next_day().unwrap(), b]
        );
        assert_eq!(g.date_between(a, a), a);
    }

    fn csv_bytes(seed: u64) -> Vec<u8> {
        let mut g = Generator::new(seed, TODAY);
        let mut out = Vec::new();
        write_people(&mut out, &mut g, 200).unwrap();
        write_records(&mut out, &mut g, 200).unwrap();
        write_orgs(&mut out, &mut g, 200).unwrap();
        out
    }

    #[test]
    fn same_seed_same_output() {
        assert_eq!(csv_bytes(42), csv_bytes(42));
        assert_ne!(csv_bytes(42), csv_bytes(43));
    }

    #[test]
    fn csv_files_have_headers_and_formats() {
        let mut g = Generator::new(8, TODAY);
        let mut out = Vec::new();
        write_records(&mut out, &mut g, 50).unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        assert_eq!(reader.headers().unwrap(), RECORDS_HEADER.as_slice());
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let mut rows = 0;
        for row in reader.records() {
            let row = row.unwrap();
            Date::parse(&row[6], format).unwrap();
            assert!(&row[7] == "true" || &row[7] == "false");
            rows += 1;
        }
        assert_eq!(rows, 50);

        let mut out = Vec::new();
        write_people(&mut out, &mut g, 5).unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        assert_eq!(reader.headers().unwrap(), PEOPLE_HEADER.as_slice());
        for row in reader.records() {
            Date::parse(&row.unwrap()[4], format).unwrap();
        }

        let mut out = Vec::new();
        write_orgs(&mut out, &mut g, 5).unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        assert_eq!(reader.headers().unwrap(), ORGS_HEADER.as_slice());
        assert_eq!(reader.records().count(), 6, "5 units and their bureau");
    }

    #[test]
    fn people_and_records_never_overlap_whatever_the_seeds() {
        let mut records = std::collections::HashSet::new();
        for seed in [1, 2] {
            let mut g = Generator::new(seed, TODAY);
            for i in 0..20_000 {
                let r = g.record(i);
                records.insert((r.doc_type, r.doc_number));
            }
        }
        for seed in [1, 2, 42] {
            let mut g = Generator::new(seed, TODAY);
            for i in 0..20_000 {
                let p = g.person(i);
                assert!(
                    !records.contains(&(p.doc_type, p.doc_number.clone())),
                    "seed {seed} row {i}: {} is also a record",
                    p.doc_number
                );
            }
        }
    }

    #[test]
    fn orgs_come_with_their_bureaus_and_cover_the_home_division() {
        let mut g = Generator::new(9, TODAY);
        let rows = g.orgs(40);
        let bureaus: Vec<&OrgRow> = rows.iter().filter(|o| o.role == "bureau").collect();
        assert_eq!((bureaus.len(), rows.len()), (4, 44));
        assert_eq!(bureaus[0].region, HOME_DIVISION);
        for (i, unit) in rows
            .iter()
            .enumerate()
            .filter(|(_, o)| o.role == "employer")
        {
            let bureau = rows[..i]
                .iter()
                .find(|b| b.uscc == unit.supervising_bureau)
                .expect("a unit's bureau comes before it");
            assert_eq!((bureau.role, &bureau.region), ("bureau", &unit.region));
            assert_eq!(Uscc::parse(&unit.uscc).unwrap().region(), unit.region);
        }
        assert!(rows.iter().all(|o| Uscc::parse(&o.uscc).is_ok()));
    }

    #[test]
    fn hits_are_evenly_spaced_and_never_more_than_asked() {
        let slots: Vec<(u64, usize)> = (0..10)
            .filter_map(|i| hit_slot(i, 10, 3).map(|k| (i, k)))
            .collect();
        assert_eq!(slots, [(0, 0), (3, 1), (6, 2)]);
        assert_eq!((0..5).filter_map(|i| hit_slot(i, 5, 9)).count(), 5);
        assert_eq!((0..5).filter_map(|i| hit_slot(i, 5, 0)).count(), 0);
    }
}
