//! Writes the seed corpora in `corpus/<target>/seed-*`: small valid and invalid inputs, all
//! synthetic (valid identities come from `safehire::synth`, which belong to nobody).
//!
//!     cargo run --example gen_seeds [CORPUS_DIR]     # default: corpus
//!
//! Deterministic: the same program writes the same files. Queue entries that afl found are
//! kept beside the seeds under other names and are not touched.

use std::path::{Path, PathBuf};

use safehire::identity::{resident_id_check_char, uscc_check_char};
use safehire::synth::{self, Generator, ORGS_HEADER, PEOPLE_HEADER};
use safehire::tabular::{Encoding, write_csv, write_xlsx};
use safehire_fuzz::TODAY;

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let mut g = Generator::new(20260315, TODAY);
    identity(&root.join("fuzz_identity"), &mut g);
    uscc(&root.join("fuzz_uscc"), &mut g);
    roster_csv(&root.join("fuzz_roster_csv"), &mut g);
    roster_xlsx(&root.join("fuzz_roster_xlsx"), &mut g);
    registry_csv(&root.join("fuzz_registry_csv"), &mut g);
    config(&root.join("fuzz_config"));
}

/// Writes `seed-NNN` files into `dir`.
struct Seeds {
    dir: PathBuf,
    next: usize,
}

impl Seeds {
    fn new(dir: &Path) -> Seeds {
        std::fs::create_dir_all(dir).expect("create the corpus folder");
        Seeds {
            dir: dir.to_path_buf(),
            next: 0,
        }
    }

    fn add(&mut self, data: impl AsRef<[u8]>) {
        self.add_named(&format!("seed-{:03}", self.next), data);
    }

    fn add_named(&mut self, name: &str, data: impl AsRef<[u8]>) {
        self.next += 1;
        std::fs::write(self.dir.join(name), data).expect("write a seed");
    }
}

fn with_check(first17: &str) -> String {
    format!(
        "{first17}{}",
        resident_id_check_char(first17).expect("17 digits")
    )
}

fn identity(dir: &Path, g: &mut Generator) {
    let mut s = Seeds::new(dir);
    for _ in 0..4 {
        s.add(g.resident_id());
    }
    for _ in 0..4 {
        s.add(g.name());
    }
    let id = g.resident_id();
    let full_width: String = id
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
        .collect();
    s.add(full_width);
    s.add(format!("\u{FEFF}{}\u{200B}{}", &id[..6], &id[6..]));
    s.add(format!(" {} {} ", &id[..6], &id[6..]));
    s.add(id.to_lowercase());
    // Legacy 15-digit form: division, YYMMDD, sequence.
    s.add(format!("{}{}", &id[..6], &id[8..17]));
    // Wrong check digit, impossible date, unknown province, bad lengths and characters.
    let wrong = if id.ends_with('0') { '1' } else { '0' };
    s.add(format!("{}{wrong}", &id[..17]));
    s.add(with_check("11010519900230001"));
    s.add(with_check("11010520240229001"));
    s.add(with_check("99010519491231002"));
    s.add(with_check("11010520900101001"));
    s.add(&id[..16]);
    s.add(format!("{id}1"));
    s.add("1101A519491231002X");
    // Other document types.
    for doc in [
        "E12345678",
        "ＰＥ１２３４５６７",
        "H12345678",
        "m 1234567890",
        "12345678",
        "usa110090612001",
        "91184019850101001x",
        "911840198501010016",
    ] {
        s.add(doc);
    }
    // Names: transliterated, Latin with dots and marks, invisibles, invalid.
    for name in [
        "艾力·买买提",
        "艾力.买买提",
        "John  Q. Smith",
        "José Ma\u{0301}ria O'Neil-Ng",
        "ǅemal ﬀoo ß",
        "张\u{200D}三",
        "王五3",
        "李\u{0007}四",
        "Anna@Mueller",
        "",
        "cn-id",
        "PASSPORT",
        " foreign_pr ",
    ] {
        s.add(name);
    }
    s.add("张".repeat(65));
}

fn uscc(dir: &Path, g: &mut Generator) {
    let mut s = Seeds::new(dir);
    let codes: Vec<String> = (0..4).map(|_| g.uscc()).collect();
    for code in &codes {
        s.add(code);
    }
    s.add(codes[0].to_lowercase());
    s.add(format!(" {} ", &codes[1]));
    let first17 = &codes[2][..17];
    let check = uscc_check_char(first17).expect("17 code characters");
    let wrong = if check == '0' { '1' } else { '0' };
    s.add(format!("{first17}{wrong}"));
    s.add("91350100M000100Y44");
    s.add("91350100I000100Y43");
    s.add("9135A100M000100Y43");
    s.add(&codes[3][..17]);
    // Whole Enroll requests: uscc, name, role, region, industry, supervising bureau.
    for _ in 0..3 {
        let o = g.org(0);
        s.add(format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            o.uscc, o.name, o.role, o.region, o.industry, codes[0]
        ));
    }
    let o = g.org(1);
    s.add(format!("{}\n{}\nbureau\n{}\n\n", o.uscc, o.name, o.region));
    s.add(format!(
        "{0}\n{1}\nEMPLOYER\n{2}\nnot-applicable\n{0}",
        o.uscc, o.name, o.region
    ));
    s.add(format!("{}\n \nemployer\n990101\nsports\n", o.uscc));
    s.add(format!("{}\nA\u{0007}B\noperator\n11010\n\n", o.uscc));
}

fn people_rows(g: &mut Generator, n: u64) -> Vec<Vec<String>> {
    (0..n)
        .map(|i| {
            let p = g.person(i);
            vec![
                p.doc_type.to_string(),
                p.doc_number,
                p.name,
                p.staff_ref,
                p.hire_date.to_string(),
            ]
        })
        .collect()
}

fn org_rows(g: &mut Generator, n: u64) -> Vec<Vec<String>> {
    (0..n)
        .map(|i| {
            let o = g.org(i);
            vec![
                o.uscc,
                o.name,
                o.role.to_string(),
                o.region,
                o.industry.to_string(),
                o.supervising_bureau,
            ]
        })
        .collect()
}

fn csv_bytes(header: &[&str], rows: Vec<Vec<String>>, encoding: Encoding, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_csv(&mut out, header, rows, encoding, bom).expect("write CSV");
    out
}

fn roster_csv(dir: &Path, g: &mut Generator) {
    let mut s = Seeds::new(dir);
    let mut people = Vec::new();
    synth::write_people(&mut people, g, 3).expect("write people");
    s.add(people);
    s.add(csv_bytes(
        &PEOPLE_HEADER,
        people_rows(g, 2),
        Encoding::Utf8,
        true,
    ));
    s.add(csv_bytes(
        &PEOPLE_HEADER,
        people_rows(g, 2),
        Encoding::Gb18030,
        false,
    ));
    s.add(csv_bytes(
        &PEOPLE_HEADER,
        people_rows(g, 2),
        Encoding::Gb18030,
        true,
    ));
    let mut orgs = Vec::new();
    synth::write_orgs(&mut orgs, g, 3).expect("write orgs");
    s.add(orgs);
    s.add(csv_bytes(
        &ORGS_HEADER,
        org_rows(g, 2),
        Encoding::Gb18030,
        false,
    ));
    // Departures, a consent column, ragged and blank rows, quotes, a duplicated column.
    let p = g.person(9);
    s.add(format!(
        "Doc_Type , DOC_NUMBER,name,staff_ref,hire_date,departure_date,consent_ref\n\
         {},{},\"{}\",S9,{},2026-01-31,C-1\n\
         ,,,,,,\n\
         passport,E12345678,\"Smith, \"\"Jo\"\"\",S10\n\
         cn-id,1,2,3,2026-02-30,1949-01-01,x,y,z\n",
        p.doc_type, p.doc_number, p.name, p.hire_date
    ));
    s.add("doc_type,doc_number,name,staff_ref,name\ncn-id,1,a,b,c\n");
    s.add("uscc,name,role,region\n");
    s.add("doc_type,doc_number\n\"unterminated\n");
    s.add(b"doc_type,doc_number,name,staff_ref\ncn-id,1,\xd5\xc5\xc8\xfd,S1\n".as_slice());
    s.add(b"\xef\xbb\xbfdoc_type,doc_number,name,staff_ref\ncn-id,1,\xff,S1\n".as_slice());
    s.add(b"\x84\x31\xa4\x37".as_slice());
    s.add("");
}

fn roster_xlsx(dir: &Path, g: &mut Generator) {
    let mut s = Seeds::new(dir);
    let scratch = std::env::temp_dir().join(format!("safehire-seeds-{}.xlsx", std::process::id()));
    let mut xlsx = |header: &[&str], rows: Vec<Vec<String>>| {
        write_xlsx(&scratch, header, rows).expect("write xlsx");
        s.add(std::fs::read(&scratch).expect("read xlsx"));
    };
    xlsx(&PEOPLE_HEADER, people_rows(g, 2));
    xlsx(&ORGS_HEADER, org_rows(g, 2));
    xlsx(&PEOPLE_HEADER, Vec::new());
    xlsx(&[], Vec::new());
    let _ = std::fs::remove_file(&scratch);
    s.add("not a zip");
}

fn registry_csv(dir: &Path, g: &mut Generator) {
    let mut s = Seeds::new(dir);
    let mut records = Vec::new();
    synth::write_records(&mut records, g, 3).expect("write records");
    s.add(records);
    let r = g.record(7);
    s.add(format!(
        "\u{feff}sealed,decided_on,kind,category,name,doc_number,doc_type,source_ref\n\
         yes,{},{},{},{},{},{},{}\n\
         maybe,2026-13-01,murder,SEXUAL,\"A\u{0007}\",1,cn-id,\"REC 1\"\n\
         ,,,,,,\n",
        r.decided_on, r.kind, r.category, r.name, r.doc_number, r.doc_type, r.source_ref
    ));
    s.add("source_ref,doc_type\nREC-1\n\"x\"y\",z\n");
    s.add(b"source_ref,doc_type,doc_number,name\nREC-1,cn-id,1,\xff\n".as_slice());
    s.add("");
}

fn config(dir: &Path) {
    let mut s = Seeds::new(dir);
    s.add(
        "listen = \"0.0.0.0:50051\"\ndata_dir = \"/var/lib/safehire\"\ndev_mode = false\n\
         master_key_file = \"/run/safehire/master.key\"\nlog_format = \"json\"\n\
         [tls]\ndev_dir = \"certs/dev\"\nclient_ca = \"ca.pem\"\nserver_cert = \"s.pem\"\n\
         server_key = \"s.key\"\n\
         [limits]\nmax_message_bytes = 4194304\nmax_import_chunk_records = 10000\n\
         max_batch_rows = 1000000\nmax_batch_chunk_rows = 5000\nmax_batch_row_bytes = 1024\n\
         handshake_timeout_secs = 10\n\
         [rules]\nrecheck_interval_days = 365\nhire_grace_days = 7\nexcess_query_ratio = 2.0\n\
         [metrics]\nenabled = true\nlisten = \"127.0.0.1:9464\"\n\
         [telemetry]\notlp_endpoint = \"\"\nservice_name = \"safehire\"\n\
         [bootstrap]\noperator_uscc = \"\"\n",
    );
    s.add("");
    s.add("listen = \"[::]:1\"\n[limits]\nmax_batch_row_bytes = 9999999999\n");
    s.add("[rules]\nexcess_query_ratio = nan\nrecheck_interval_days = 0\n");
    s.add("[telemetry]\notlp_endpoint = \"http://127.0.0.1:4317\"\n");
    s.add("bogus = 1\n");
    s.add("listen = 5\n[tls\n");
    s.add("data_dir = \"\"\n\0SAFEHIRE_LIMITS__MAX_MESSAGE_BYTES=1024\nSAFEHIRE_DEV_MODE=false\n");
    s.add("\0SAFEHIRE_LISTEN=127.0.0.1:7000\nSAFEHIRE_RULES__X__Y=1\nSAFEHIRE_=\nOTHER=1\n");
    s.add("\0SAFEHIRE_LISTEN__PORT=1\nSAFEHIRE_TLS=[1, 2]\nSAFEHIRE_LIMITS={a = 1}\n");
}
