//! `rack-gateway`: the users' CLI. It signs people in to a rack's gateway in
//! the browser, keeps their sessions in `config.json`, manages API tokens, and
//! runs every other command through the real `convox` CLI against the gateway's
//! rack proxy.
//!
//! - [`args`]: the command line (clap derive).
//! - [`environment`]: the environment variables, read once.
//! - [`config`]: `config.json` (0700/0600, atomic saves).
//! - [`racks`]: rack selection order, gateway URLs, which credential to send.
//! - [`api`]: the gateway's HTTP API (README "Signing in").
//! - [`login`]: CLI secret, device, polling `/complete` with a waiting state.
//! - [`convox`]: finding convox, `RACK_URL`, passthrough with the exit code kept.
//! - [`mfa`]: levels of wrapped commands, method choice, prompts, step-up, enrolment.
//! - [`commands`]: one function per command.

/// `println!` for command output, except that a reader who has gone away
/// (`rack-gateway api-token list | head -1`) ends the process quietly, as
/// SIGPIPE does for other Unix tools, instead of a panic. (Rust ignores SIGPIPE
/// so that sockets report EPIPE as an error; restoring it would let a closed
/// TLS connection kill the process.)
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_stdout(format!($($arg)*).as_bytes(), true)
    };
}

pub mod api;
pub mod args;
pub mod commands;
pub mod config;
pub mod convox;
pub mod environment;
pub mod login;
pub mod mfa;
pub mod racks;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser as _;

/// rustls needs one process-wide crypto provider; reqwest is built without a default.
pub(crate) fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The binary: parse, run, and print any error as `Error: <message>` with exit code 1.
pub fn main_entry() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version: clap prints them and exits 0.
            error.exit()
        }
        Err(error) if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // No command at all: the help is the answer, not an error.
            outln!("{}", error.render().to_string().trim_end());
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let text = error.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            eprintln!("Error: {}", text.trim_end());
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("Error: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(cli, environment::Environment::from_process()));
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Write command output to stdout; on a closed pipe, exit at once with 141 (128 + SIGPIPE).
pub(crate) fn write_stdout(bytes: &[u8], newline: bool) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let result = stdout
        .write_all(bytes)
        .and_then(|()| {
            if newline {
                stdout.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| stdout.flush());
    if let Err(error) = result {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("Error: cannot write to stdout: {error}");
        std::process::exit(1);
    }
}
