//! `verify-chain`: the auditors' verifier (events.md §7, interfaces.md).
//!
//! It depends on the `events` crate only, streams every source in constant
//! memory, and never reports success on input it could not check.
//!
//! - this module: command line, key handling, the run, and what is printed
//!   (text or `--json`) with the exit codes 0 verified / 1 integrity failure /
//!   2 usage, connection or I/O error.
//! - [`database`]: a Postgres source (the `events` and `checkpoints` tables).

pub mod database;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Parser;
use events::note::Verifier;
use events::verify::{Failure, Summary};
use serde_json::json;

/// Exit codes (interfaces.md).
pub const EXIT_VERIFIED: i32 = 0;
pub const EXIT_INTEGRITY: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "verify-chain",
    version,
    about = "Prove that a rack-gateway audit log was not altered, truncated or reordered"
)]
pub struct Cli {
    /// A Postgres database holding the chain (read-only use).
    #[arg(long = "database-url", value_name = "URL")]
    pub database_urls: Vec<String>,
    /// Only this chain id (default: the database's own chain).
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

/// A usage, connection or I/O problem: nothing was proven either way (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunError(pub String);

impl RunError {
    pub fn new(message: impl Into<String>) -> Self {
        RunError(message.into())
    }
}

/// The outcome of a run over one or more sources.
pub enum Outcome {
    Verified {
        summary: Summary,
        keys_trusted: bool,
        sources: Vec<String>,
    },
    Failed {
        failure: Failure,
        events_checked: u64,
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

/// Progress on stderr, only when it is a terminal (never in `--json` or CI logs).
pub fn progress(total: Option<u64>, enabled: bool) -> indicatif::ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message("verifying");
    bar
}

pub async fn run(cli: Cli) -> Result<Outcome, RunError> {
    let trusted = parse_keys(&cli.keys)?;
    if cli.database_urls.is_empty() {
        return Err(RunError::new(
            "no source: give --database-url URL (or --s3 s3://BUCKET/PREFIX, --dir PATH)",
        ));
    }
    if cli.database_urls.len() > 1 {
        return Err(RunError::new("give at most one --database-url"));
    }
    let source =
        database::DatabaseSource::connect(&cli.database_urls[0], cli.chain.clone()).await?;
    let keys_trusted = !trusted.is_empty();
    let keys = if keys_trusted {
        trusted
    } else {
        source.published_keys().await?
    };
    match source.verify(keys, !cli.quiet && !cli.json).await? {
        Ok(summary) => Ok(Outcome::Verified {
            summary,
            keys_trusted,
            sources: vec!["database".into()],
        }),
        Err((failure, events_checked)) => Ok(Outcome::Failed {
            failure,
            events_checked,
        }),
    }
}

/// Print the outcome and return the exit code.
pub fn report(outcome: Result<Outcome, RunError>, as_json: bool) -> i32 {
    match outcome {
        Ok(Outcome::Verified {
            summary,
            keys_trusted,
            sources,
        }) => {
            if as_json {
                println!(
                    "{}",
                    json!({
                        "ok": true,
                        "chain": summary.chain,
                        "events": summary.events,
                        "head_seq": summary.head_seq,
                        "head_hash": summary.head_hash,
                        "checkpoint_size": summary.checkpoint_size,
                        "checkpoints": summary.checkpoints,
                        "signed_by": summary.signed_by,
                        "keys_trusted": keys_trusted,
                        "first_ts": summary.first_ts,
                        "last_ts": summary.last_ts,
                        "sources": sources,
                    })
                );
            } else {
                println!("verified: the chain is intact");
                println!(
                    "  chain       {}",
                    summary.chain.as_deref().unwrap_or("(empty)")
                );
                println!("  events      {}", summary.events);
                println!(
                    "  head        seq {} hash {}",
                    summary.head_seq, summary.head_hash
                );
                match summary.checkpoint_size {
                    Some(size) => println!(
                        "  checkpoint  newest size {size} ({} notes checked, signed by {})",
                        summary.checkpoints,
                        summary.signed_by.join(", ")
                    ),
                    None => println!(
                        "  checkpoint  none yet: only the hash chain vouches for these events"
                    ),
                }
                if let (Some(first), Some(last)) = (&summary.first_ts, &summary.last_ts) {
                    println!("  time span   {first} .. {last}");
                }
                println!("  sources     {}", sources.join(", "));
                if !keys_trusted {
                    println!(
                        "  keys        taken from the source itself and NOT independently trusted; pass --key to trust a key you hold"
                    );
                }
            }
            EXIT_VERIFIED
        }
        Ok(Outcome::Failed {
            failure,
            events_checked,
        }) => {
            if as_json {
                println!(
                    "{}",
                    json!({
                        "ok": false,
                        "check": failure.check,
                        "seq": failure.seq,
                        "object": failure.object,
                        "expected": failure.expected,
                        "found": failure.found,
                        "message": failure.message,
                        "events": events_checked,
                    })
                );
            } else {
                println!("FAILED: {failure}");
                println!(
                    "  check     {} ({})",
                    failure.check,
                    check_name(failure.check)
                );
                if let Some(seq) = failure.seq {
                    println!("  seq       {seq}");
                }
                if let Some(object) = &failure.object {
                    println!("  object    {object}");
                }
                println!("  expected  {}", failure.expected);
                println!("  found     {}", failure.found);
            }
            EXIT_INTEGRITY
        }
        Err(error) => {
            if as_json {
                println!("{}", json!({"ok": false, "error": error.0}));
            } else {
                eprintln!("Error: {error}");
            }
            EXIT_ERROR
        }
    }
}

pub fn check_name(check: u8) -> &'static str {
    match check {
        1 => "every event's hash is SHA-256 of its canonical bytes",
        2 => "seq starts at 1, has no gap or duplicate, and every prev links",
        3 => "every checkpoint is signed by a trusted key and matches the events",
        4 => "the database agrees with the archive",
        5 => "checkpoints are mutually consistent",
        _ => "unknown check",
    }
}
