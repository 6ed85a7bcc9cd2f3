// TEMPORARY STUB — replaced by the real generator.
pub const RECORDS_HEADER: [&str; 8] = ["source_ref","doc_type","doc_number","name","category","kind","decided_on","sealed"];
pub struct Generator;
impl Generator { pub fn new(_seed: u64, _today: time::Date) -> Self { Generator } }
pub fn write_people<W: std::io::Write>(_out: W, _g: &mut Generator, _n: u64) -> Result<(), csv::Error> { Ok(()) }
pub fn write_records<W: std::io::Write>(_out: W, _g: &mut Generator, _n: u64) -> Result<(), csv::Error> { Ok(()) }
pub fn write_orgs<W: std::io::Write>(_out: W, _g: &mut Generator, _n: u64) -> Result<(), csv::Error> { Ok(()) }
