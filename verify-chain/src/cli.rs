//! The command line (README "verify-chain": flags and subcommands are a contract),
//! and `--key` values.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use events::note::Verifier;

use crate::RunError;

#[derive(Debug, Parser)]
#[command(
    name = "verify-chain",
    version,
    about = "Prove that a rack-gateway audit log was not altered, truncated or reordered",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// A Postgres database holding the chain (read-only use).
    #[arg(long = "database-url", value_name = "URL")]
    pub database_urls: Vec<String>,
    /// An archive in S3 (s3://BUCKET/PREFIX); endpoint, region and credentials as the AWS tools read them. Repeatable.
    #[arg(long = "s3", value_name = "s3://BUCKET/PREFIX")]
    pub s3: Vec<String>,
    /// An export directory (extract a .tar.gz bundle first). Repeatable.
    #[arg(long = "dir", value_name = "PATH")]
    pub dirs: Vec<PathBuf>,
    /// Path-style S3 addressing (S3-compatible stores, the local peer).
    #[arg(long = "s3-path-style", env = "AUDIT_S3_FORCE_PATH_STYLE")]
    pub s3_path_style: bool,
    /// Object Lock mode every archived object must have.
    #[arg(
        long,
        env = "AUDIT_LOCK_MODE",
        default_value = "COMPLIANCE",
        value_name = "MODE"
    )]
    pub lock_mode: String,
    /// Every archived object must be retained at least this many days after it was written.
    #[arg(
        long,
        env = "AUDIT_RETENTION_DAYS",
        default_value_t = 2555,
        value_name = "DAYS"
    )]
    pub min_retention_days: u32,
    /// List every archived object with its lock mode and retain-until date.
    #[arg(long)]
    pub objects: bool,
    /// Only this chain id (default: the database's own chain, or the only one in the archive).
    #[arg(long)]
    pub chain: Option<String>,
    /// A trusted verifier key (`name+hexid+base64`), or a file holding one. Repeatable.
    #[arg(long = "key", value_name = "VKEY")]
    pub keys: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Never show a progress bar (it is shown only on a terminal anyway).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print an RFC 9162 inclusion proof (JSON) of event N against a signed checkpoint, and check it.
    Prove {
        #[arg(long)]
        seq: u64,
        /// The checkpoint to prove against (default: the newest).
        #[arg(long)]
        size: Option<u64>,
        #[arg(long = "database-url", value_name = "URL")]
        database_url: Option<String>,
        #[arg(long, value_name = "PATH")]
        dir: Option<PathBuf>,
        #[arg(long)]
        chain: Option<String>,
        #[arg(long = "key", value_name = "VKEY")]
        keys: Vec<String>,
    },
    /// Print an RFC 9162 consistency proof (JSON) that NEW's log extends OLD's, and check it.
    Consistency {
        old: PathBuf,
        new: PathBuf,
        #[arg(long = "database-url", value_name = "URL")]
        database_url: Option<String>,
        #[arg(long, value_name = "PATH")]
        dir: Option<PathBuf>,
        #[arg(long)]
        chain: Option<String>,
        #[arg(long = "key", value_name = "VKEY")]
        keys: Vec<String>,
    },
    /// Check a proof printed by `prove` or `consistency`, from the file alone.
    VerifyProof {
        file: PathBuf,
        #[arg(long = "key", value_name = "VKEY")]
        keys: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Parse `--key` values: a vkey string, or a path to a file holding one.
pub fn parse_keys(values: &[String]) -> Result<Vec<Verifier>, RunError> {
    values
        .iter()
        .map(|value| {
            let text = if std::path::Path::new(value).is_file() {
                std::fs::read_to_string(PathBuf::from(value))
                    .map_err(|e| RunError::new(format!("--key {value}: {e}")))?
            } else {
                value.clone()
            };
            Verifier::from_vkey(text.trim())
                .map_err(|e| RunError::new(format!("--key {value}: not a verifier key: {e}")))
        })
        .collect()
}
