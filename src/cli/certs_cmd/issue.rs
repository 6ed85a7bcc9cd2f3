//! `safehire certs issue` and `safehire certs sign-csr`: an organisation's client certificate
//! from the operator CA, written as `<USCC>.pem` (and `<USCC>.key`) for handing over.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::{cert_error, file_error, rfc3339};
use crate::certs::csr::SigningRequest;
use crate::certs::{self, CertAuthority, LEAF_VALIDITY_DAYS, OrgCertRequest};
use crate::cli::{CliError, ConnectArgs, exit, print_json};
use crate::identity::Uscc;
use crate::org::Role;

/// Where issued certificates go by default; `certs status` looks there too.
pub const DEFAULT_OUT_DIR: &str = "certs/issued";

#[derive(Debug, Args)]
pub struct SigningArgs {
    /// The organisation's unified social credit code: the certificate's SAN URI
    /// `urn:uscc:<USCC>` and subject CN.
    #[arg(long, value_name = "USCC")]
    org: String,
    /// Its role (operator, registrar, bureau, employer, prosecutor), written into the
    /// certificate for people reading it; the server takes the role from its registry
    /// (`safehire org enroll`).
    #[arg(long)]
    role: String,
    /// The organisation's name (subject O); by default none for `issue`, the request's own for
    /// `sign-csr`.
    #[arg(long)]
    name: Option<String>,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = LEAF_VALIDITY_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(LEAF_VALIDITY_DAYS)))]
    days: u32,
    /// The operator CA's certificate (default: ca.pem in --certs-dir, the dev CA).
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// The operator CA's private key, PKCS#8 PEM (default: ca.key in --certs-dir).
    #[arg(long, value_name = "PEM")]
    ca_key: Option<PathBuf>,
    /// Folder for `<USCC>.pem` and `<USCC>.key` (created with mode 0700).
    #[arg(long, default_value = DEFAULT_OUT_DIR)]
    out_dir: PathBuf,
    /// Replace the files already issued for this USCC.
    #[arg(long)]
    force: bool,
    /// Also write the certificate, its key and the CA as a password-protected PKCS#12 file
    /// (`issue` only), for import into a browser to use the web portal.
    #[arg(long, value_name = "FILE", requires = "p12_password_file")]
    p12: Option<PathBuf>,
    /// File holding the PKCS#12 password (first line; at least 8 characters). A file, not an
    /// argument, so that the password is in no shell history or process list.
    #[arg(long, value_name = "FILE")]
    p12_password_file: Option<PathBuf>,
}

/// The organisation to sign for and the CA to sign with; the code and role are checked
/// before the CA key is read.
struct Signing {
    uscc: Uscc,
    role: Role,
    ca_path: PathBuf,
    ca: CertAuthority,
}

impl Signing {
    fn new(connect: &ConnectArgs, args: &SigningArgs) -> Result<Self, CliError> {
        let uscc = Uscc::parse(&args.org)
            .map_err(|e| CliError::usage(format!("--org {}: {e}", args.org)))?;
        let role = Role::parse(&args.role).ok_or_else(|| {
            CliError::usage(format!("--role {}: one of {}", args.role, Role::slugs()))
        })?;
        let ca_path = args
            .ca_cert
            .clone()
            .unwrap_or_else(|| connect.certs_dir.join(certs::CA_CERT_FILE));
        let key_path = args
            .ca_key
            .clone()
            .unwrap_or_else(|| connect.certs_dir.join(certs::CA_KEY_FILE));
        let ca = CertAuthority::from_pem(&read(&ca_path)?, &read(&key_path)?)
            .map_err(|e| file_error(&ca_path, e))?;
        Ok(Self {
            uscc,
            role,
            ca_path,
            ca,
        })
    }

    fn request<'a>(&'a self, name: &'a str) -> OrgCertRequest<'a> {
        OrgCertRequest {
            uscc: self.uscc.as_str(),
            name,
            role: self.role.slug(),
        }
    }
}

pub fn issue(connect: &ConnectArgs, args: SigningArgs, json: bool) -> Result<u8, CliError> {
    let signing = Signing::new(connect, &args)?;
    let name = args.name.clone().unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    let pair = signing
        .ca
        .issue_client(&signing.request(&name), args.days, now)
        .map_err(cert_error)?;
    let written = certs::write_issued(
        &args.out_dir,
        signing.uscc.as_str(),
        &pair.cert_pem,
        Some(&pair.key_pem),
        args.force,
    )
    .map_err(cert_error)?;
    let mut written = written;
    if let (Some(p12), Some(password_file)) = (&args.p12, &args.p12_password_file) {
        let password = read(password_file)?;
        let password = password.lines().next().unwrap_or_default();
        let bytes = certs::pkcs12::pkcs12(
            &pair.cert_pem,
            &pair.key_pem,
            &signing.ca.cert_pem(),
            password,
            signing.uscc.as_str(),
        )
        .map_err(|e| CliError::usage(format!("--p12: {e}")))?;
        write_private(p12, &bytes)?;
        written.push(p12.clone());
    }
    report(&signing, &pair.cert_pem, &written, now, json)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
        .map_err(|e| CliError::io(path, e))
}

pub fn sign_csr(
    connect: &ConnectArgs,
    csr: &Path,
    args: SigningArgs,
    json: bool,
) -> Result<u8, CliError> {
    if args.p12.is_some() {
        return Err(CliError::usage(
            "--p12 needs the private key, which sign-csr never sees: the organisation keeps it",
        ));
    }
    let request = SigningRequest::from_pem(&read(csr)?).map_err(|e| file_error(csr, e))?;
    let signing = Signing::new(connect, &args)?;
    request
        .check_names(signing.uscc.as_str())
        .map_err(|e| file_error(csr, e))?;
    let name = args
        .name
        .clone()
        .or_else(|| request.organisation.clone())
        .unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    let cert_pem = signing
        .ca
        .certify_client_key(
            &signing.request(&name),
            request.public_key(),
            args.days,
            now,
        )
        .map_err(cert_error)?;
    let written = certs::write_issued(
        &args.out_dir,
        signing.uscc.as_str(),
        &cert_pem,
        None,
        args.force,
    )
    .map_err(cert_error)?;
    report(&signing, &cert_pem, &written, now, json)
}

/// Prints what was written, the fingerprint the server will audit and revoke by, and the
/// expiry; then the step that makes the certificate usable.
fn report(
    signing: &Signing,
    cert_pem: &str,
    written: &[PathBuf],
    now: time::OffsetDateTime,
    json: bool,
) -> Result<u8, CliError> {
    let info = certs::cert_der_from_pem(cert_pem)
        .and_then(|der| certs::peer_cert_info(&der))
        .map_err(cert_error)?;
    // The certificate's times are whole seconds and `now` is a little later than the moment it
    // was issued at, so round: whole days would print 824 for an 825-day certificate.
    let days = ((info.not_after - now).as_seconds_f64() / 86_400.0).round();
    let (cert_file, key_file) = (written.first(), written.get(1));
    let p12_file = written.get(2);
    if json {
        print_json(&json!({
            "uscc": signing.uscc.as_str(),
            "role": signing.role.slug(),
            "certificate": cert_file.map(|p| p.display().to_string()),
            "key": key_file.map(|p| p.display().to_string()),
            "pkcs12": p12_file.map(|p| p.display().to_string()),
            "fingerprint": info.fingerprint_sha256,
            "not_after": rfc3339(info.not_after),
            "ca": signing.ca_path.display().to_string(),
        }));
        return Ok(exit::OK);
    }
    println!(
        "issued a client certificate for {} ({}), valid until {} ({days} days)",
        signing.uscc.as_str(),
        signing.role.slug(),
        rfc3339(info.not_after)
    );
    if let Some(path) = cert_file {
        println!("  certificate  {}", path.display());
    }
    if let Some(path) = key_file {
        println!(
            "  private key  {} (mode 0600: hand it over in person or encrypted, then delete this copy)",
            path.display()
        );
    }
    if let Some(path) = p12_file {
        println!(
            "  PKCS#12      {} (for a browser: the portal's login)",
            path.display()
        );
    }
    println!("  fingerprint  {}", info.fingerprint_sha256);
    println!("  signed by    {}", signing.ca_path.display());
    println!(
        "It authenticates nobody until the organisation is enrolled: safehire org enroll --uscc {} --role {} ...",
        signing.uscc.as_str(),
        signing.role.slug()
    );
    Ok(exit::OK)
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))
}
