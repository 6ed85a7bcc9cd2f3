//! The `safehire` binary: server and command-line client in one.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    safehire::tls::install_crypto_provider();
    let cli = safehire::cli::Cli::parse();
    match safehire::cli::run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
