//! The `safehire` binary: server and command-line client in one.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    safehire::tls::install_crypto_provider();
    let cli = safehire::cli::Cli::parse();
    if !matches!(
        cli.command,
        safehire::cli::Command::Serve(_) | safehire::cli::Command::Bench(_)
    ) {
        end_quietly_on_a_closed_pipe();
    }
    match safehire::cli::run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let lang = safehire::i18n::Lang::from_env();
            eprintln!("{}: {}", lang.t("cli.error"), e.message);
            ExitCode::from(e.code)
        }
    }
}

/// A client command piped into `head` should end when its reader goes, as Unix tools do, rather
/// than panic on its next line of output. Rust ignores SIGPIPE so that writes return an error;
/// the server and the benchmark keep that, since their sockets must never kill the process.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with SIG_DFL installs no handler code; it only restores the default
    // disposition, which is sound to do at any time from any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
