//! `verify-chain`: the auditors' verifier (events.md §7, interfaces.md).
//!
//! It depends on the `events` crate only, streams every source in constant
//! memory, and never reports success on input it could not check.
//!
//! - this module: command line, key handling, the run, and what is printed
//!   (text or `--json`) with the exit codes 0 verified / 1 integrity failure /
//!   2 usage, connection or I/O error.
//! - [`database`]: a Postgres source (the `events` and `checkpoints` tables).
//! - [`archive`]: archive-layout sources, an S3 bucket ([`s3`]) or an export
//!   directory: listing, completeness and Object Lock checks, events.
//! - [`sources`]: several sources in lockstep (check 4 between them).
//! - [`proofs`]: `prove`, `consistency` and `verify-proof`.

pub mod archive;
pub mod database;
pub mod proofs;
pub mod s3;
pub mod sources;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
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
        /// Archived objects and their locks (S3 sources only).
        objects: Vec<archive::ObjectLock>,
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

/// Run a subcommand; returns the exit code.
pub async fn run_command(command: Command) -> i32 {
    let result = match command {
        Command::Prove {
            seq,
            size,
            database_url,
            dir,
            chain,
            keys,
        } => {
            proofs::prove(
                seq,
                size,
                database_url.as_deref(),
                dir.as_deref(),
                chain,
                &keys,
            )
            .await
        }
        Command::Consistency {
            old,
            new,
            database_url,
            dir,
            chain,
            keys,
        } => {
            proofs::consistency(
                &old,
                &new,
                database_url.as_deref(),
                dir.as_deref(),
                chain,
                &keys,
            )
            .await
        }
        Command::VerifyProof { file, keys, json } => Ok(proofs::verify_proof(&file, &keys, json)),
    };
    result.unwrap_or_else(|error| {
        eprintln!("Error: {error}");
        EXIT_ERROR
    })
}

/// The export directory under `path` (which may be the bundle root, the
/// prefix directory or the chain directory itself): a store rooted at `path`
/// and the prefix of the chain directory (or of the directory holding it).
pub async fn open_dir(
    path: &std::path::Path,
    chain: Option<&str>,
) -> Result<(archive::DirStore, String), RunError> {
    if !path.is_dir() {
        return Err(RunError::new(format!(
            "--dir {}: not a directory (extract a .tar.gz bundle first)",
            path.display()
        )));
    }
    // Chain directories: those holding segments/ or checkpoints/, at most three levels down.
    let mut found = Vec::new();
    let mut pending = vec![(path.to_path_buf(), String::new(), 0)];
    while let Some((dir, relative, depth)) = pending.pop() {
        if dir.join("segments").is_dir() || dir.join("checkpoints").is_dir() {
            found.push(relative);
            continue;
        }
        if depth == 3 {
            continue;
        }
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| RunError::new(format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let name = entry.file_name().to_string_lossy().into_owned();
                pending.push((entry.path(), format!("{relative}{name}/"), depth + 1));
            }
        }
    }
    if let Some(chain) = chain {
        found.retain(|relative| relative.trim_end_matches('/').rsplit('/').next() == Some(chain));
    }
    found.sort();
    let prefix = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(RunError::new(format!(
                "--dir {}: no chain directory (<chain>/segments/, <chain>/checkpoints/) found",
                path.display()
            )))
        }
        many => {
            return Err(RunError::new(format!(
                "--dir {}: several chains ({}); pass --chain",
                path.display(),
                many.join(", ")
            )))
        }
    };
    if prefix.is_empty() {
        // PATH is the chain directory itself: its name is the chain id.
        let path = path
            .canonicalize()
            .map_err(|e| RunError::new(format!("{}: {e}", path.display())))?;
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(RunError::new(format!(
                "--dir {}: no chain id",
                path.display()
            )));
        };
        return Ok((
            archive::DirStore::new(parent),
            format!("{}/", name.to_string_lossy()),
        ));
    }
    Ok((archive::DirStore::new(path), prefix))
}

pub async fn run(cli: Cli) -> Result<Outcome, RunError> {
    let trusted = parse_keys(&cli.keys)?;
    if cli.database_urls.is_empty() && cli.s3.is_empty() && cli.dirs.is_empty() {
        return Err(RunError::new(
            "no source: give --database-url URL, --s3 s3://BUCKET/PREFIX or --dir PATH",
        ));
    }
    if cli.database_urls.len() > 1 {
        return Err(RunError::new("give at most one --database-url"));
    }
    if cli.s3.is_empty() && cli.dirs.is_empty() {
        return run_database(cli, trusted).await;
    }
    let policy = archive::LockPolicy {
        mode: cli.lock_mode.to_ascii_uppercase(),
        min_retention_days: cli.min_retention_days,
    };
    if !matches!(policy.mode.as_str(), "COMPLIANCE" | "GOVERNANCE") {
        return Err(RunError::new(format!(
            "--lock-mode {}: COMPLIANCE or GOVERNANCE",
            cli.lock_mode
        )));
    }
    let mut sources = Vec::new();
    let mut chain = cli.chain.clone();
    if let Some(url) = cli.database_urls.first() {
        let db = database::DatabaseSource::connect(url, chain.clone()).await?;
        chain = Some(db.chain().to_owned());
        sources.push(sources::Source::Database(db));
    }
    let integrity = |failure| {
        Ok(Outcome::Failed {
            failure,
            events_checked: 0,
        })
    };
    for url in &cli.s3 {
        let store = s3::S3Store::connect(url, cli.s3_path_style).await?;
        let prefix = store.root_prefix();
        match archive::ArchiveSource::open(
            Box::new(store),
            &prefix,
            chain.as_deref(),
            Some(policy.clone()),
        )
        .await
        {
            Ok(source) => {
                chain = Some(source.chain.clone());
                sources.push(sources::Source::Archive(Box::new(source)));
            }
            Err(archive::OpenError::Integrity(failure)) => return integrity(failure),
            Err(archive::OpenError::Run(error)) => return Err(error),
        }
    }
    for dir in &cli.dirs {
        let (store, prefix) = open_dir(dir, chain.as_deref()).await?;
        match archive::ArchiveSource::open(Box::new(store), &prefix, chain.as_deref(), None).await {
            Ok(source) => {
                chain = Some(source.chain.clone());
                sources.push(sources::Source::Archive(Box::new(source)));
            }
            Err(archive::OpenError::Integrity(failure)) => return integrity(failure),
            Err(archive::OpenError::Run(error)) => return Err(error),
        }
    }
    sources::verify(sources, trusted, !cli.quiet && !cli.json).await
}

/// One database alone.
async fn run_database(cli: Cli, trusted: Vec<Verifier>) -> Result<Outcome, RunError> {
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
            objects: Vec::new(),
        }),
        Err((failure, events_checked)) => Ok(Outcome::Failed {
            failure,
            events_checked,
        }),
    }
}

/// Print the outcome and return the exit code.
pub fn report(outcome: Result<Outcome, RunError>, as_json: bool, list_objects: bool) -> i32 {
    match outcome {
        Ok(Outcome::Verified {
            summary,
            keys_trusted,
            sources,
            objects,
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
                        "objects": objects,
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
                if !objects.is_empty() {
                    print_locks(&objects, list_objects);
                }
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
        6 => "every archived object is present and under Object Lock as required",
        _ => "unknown check",
    }
}

/// The archive's Object Lock report: a summary, or every object.
fn print_locks(objects: &[archive::ObjectLock], every: bool) {
    let mut modes: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for object in objects {
        *modes
            .entry(object.lock_mode.clone().unwrap_or_else(|| "none".into()))
            .or_default() += 1;
    }
    let until: Vec<_> = objects.iter().filter_map(|o| o.retain_until).collect();
    let modes: Vec<String> = modes.iter().map(|(m, n)| format!("{n} {m}")).collect();
    println!(
        "  archive     {} objects locked: {}; retain-until {} .. {}",
        objects.len(),
        modes.join(", "),
        until
            .iter()
            .min()
            .map(|d| d.to_rfc3339())
            .unwrap_or_default(),
        until
            .iter()
            .max()
            .map(|d| d.to_rfc3339())
            .unwrap_or_default(),
    );
    if every {
        for object in objects {
            println!(
                "    {}  {}  retain-until {}",
                object.key,
                object.lock_mode.as_deref().unwrap_or("NOT LOCKED"),
                object
                    .retain_until
                    .map(|d| d.to_rfc3339())
                    .unwrap_or_else(|| "-".into())
            );
        }
    } else {
        println!(
            "              (--objects lists each object with its lock mode and retain-until date)"
        );
    }
}
