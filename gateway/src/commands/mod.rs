//! `rack-gateway-server` subcommands (README "Operator commands"): serve, and the operator
//! commands that share its settings. Each operator command that changes
//! state appends its event (actor kind `system`, id = the OS user) and
//! refuses bad input with a clear message, writing nothing.

mod export;
pub mod keys;
mod operator;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rack-gateway-server",
    version,
    about = "Access gateway for a Convox rack, and its operator commands"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (applies migrations first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create an Ed25519 checkpoint signing key: private key to FILE (0600), verifier key on stdout.
    Keygen {
        #[arg(long)]
        name: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// People who may sign in.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens for automation.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Refold every projection from seq 1; with --check, compare with the live tables instead (exit 1 on any difference).
    RebuildProjections {
        #[arg(long)]
        check: bool,
    },
    /// Auditor bundle: the archive layout (segments, signed checkpoints, keys) with a README, to a directory or a .tar.gz.
    Export {
        /// A new directory, or a file ending in .tar.gz / .tgz.
        #[arg(long)]
        out: PathBuf,
        /// First event wanted; the bundle starts right after the signed checkpoint before it.
        #[arg(long)]
        from_seq: Option<u64>,
        /// Last event wanted; the bundle ends at the newest signed checkpoint at or below it.
        #[arg(long)]
        to_seq: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user: viewer, ops, deployer, admin or auditor.
    Add {
        email: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Change a user's role.
    SetRole { email: String, role: String },
    /// Disable a user and revoke their sessions.
    Disable {
        email: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TokenOutput {
    Text,
    Json,
    /// Only the secret, for scripts.
    Token,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; the secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        /// Owner of the token (an enabled user).
        #[arg(long)]
        user: Option<String>,
        /// RFC 3339 expiry, e.g. 2027-01-31T00:00:00Z (default: never).
        #[arg(long)]
        expires_at: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: TokenOutput,
    },
    /// Revoke a token by id.
    Revoke {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Run a command; the binary maps `Err` to `Error: ...` and exit 1, and
/// `Ok(code)` to that exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Keygen { name, out } => {
            keys::keygen(&name, &out)?;
            Ok(0)
        }
        Command::Serve => operator::serve().await,
        Command::Migrate => operator::migrate().await,
        Command::User(command) => operator::user(command).await,
        Command::Token(command) => operator::token(command).await,
        Command::RebuildProjections { check } => operator::rebuild(check).await,
        Command::Export {
            out,
            from_seq,
            to_seq,
        } => export::export(out, from_seq, to_seq).await,
    }
}
