// TEMPORARY STUB — replaced by the real identity module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct IdentityError { pub field: &'static str, pub reason: String }
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocType { CnResidentId, Passport, HkMacaoPermit, TaiwanPermit, ForeignPermanentResident }
impl DocType {
    pub const ALL: [DocType; 5] = [DocType::CnResidentId, DocType::Passport, DocType::HkMacaoPermit, DocType::TaiwanPermit, DocType::ForeignPermanentResident];
    pub fn slug(self) -> &'static str { match self { DocType::CnResidentId => "cn-id", DocType::Passport => "passport", DocType::HkMacaoPermit => "hk-macao", DocType::TaiwanPermit => "taiwan", DocType::ForeignPermanentResident => "foreign-pr" } }
    pub fn from_slug(s: &str) -> Result<DocType, IdentityError> { Self::ALL.iter().copied().find(|d| d.slug() == s).ok_or(IdentityError { field: "doc_type", reason: "unknown".into() }) }
    pub fn code(self) -> u8 { 1 }
}
pub struct Document { doc_type: DocType, number: String }
impl Document {
    pub fn parse(doc_type: DocType, raw: &str, _today: time::Date) -> Result<Document, IdentityError> { Ok(Document { doc_type, number: raw.trim().to_string() }) }
    pub fn doc_type(&self) -> DocType { self.doc_type }
    pub fn number(&self) -> &str { &self.number }
}
pub struct PersonName(String);
impl PersonName { pub fn parse(raw: &str) -> Result<PersonName, IdentityError> { Ok(PersonName(raw.trim().to_string())) } pub fn as_str(&self) -> &str { &self.0 } }
#[derive(Debug, Clone)]
pub struct Uscc(String);
impl Uscc { pub fn parse(raw: &str) -> Result<Uscc, IdentityError> { Ok(Uscc(raw.trim().to_string())) } pub fn as_str(&self) -> &str { &self.0 } }
pub fn uscc_check_char(_first17: &str) -> Option<char> { Some('0') }
