//! The run: sources opened from the command line, then verified alone (one
//! database) or in lockstep ([`crate::sources`]); and the subcommands.

use events::note::Verifier;
use events::verify::{Failure, Summary};

use crate::cli::{parse_keys, Cli, Command};
use crate::report::EXIT_ERROR;
use crate::{archive, database, dir, proofs, s3, sources};

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
    for url in &cli.s3 {
        let store = s3::S3Store::connect(url, cli.s3_path_style).await?;
        let prefix = store.root_prefix();
        let opened = archive::ArchiveSource::open(
            Box::new(store),
            &prefix,
            chain.as_deref(),
            Some(policy.clone()),
        )
        .await;
        if let Some(failure) = add_archive(&mut sources, &mut chain, opened)? {
            return Ok(opening_failed(failure));
        }
    }
    for dir in &cli.dirs {
        let (store, prefix) = dir::open_dir(dir, chain.as_deref()).await?;
        let opened =
            archive::ArchiveSource::open(Box::new(store), &prefix, chain.as_deref(), None).await;
        if let Some(failure) = add_archive(&mut sources, &mut chain, opened)? {
            return Ok(opening_failed(failure));
        }
    }
    sources::verify(sources, trusted, !cli.quiet && !cli.json).await
}

/// Add an archive as opened (its chain is the one the next sources must
/// hold); the integrity failure opening found, if any.
fn add_archive(
    sources: &mut Vec<sources::Source>,
    chain: &mut Option<String>,
    opened: Result<archive::ArchiveSource, archive::OpenError>,
) -> Result<Option<Failure>, RunError> {
    match opened {
        Ok(source) => {
            *chain = Some(source.chain.clone());
            sources.push(sources::Source::Archive(Box::new(source)));
            Ok(None)
        }
        Err(archive::OpenError::Integrity(failure)) => Ok(Some(failure)),
        Err(archive::OpenError::Run(error)) => Err(error),
    }
}

/// A source found incomplete before any event was read.
fn opening_failed(failure: Failure) -> Outcome {
    Outcome::Failed {
        failure,
        events_checked: 0,
    }
}

/// One database alone.
async fn run_database(cli: Cli, trusted: Vec<Verifier>) -> Result<Outcome, RunError> {
    let source =
        database::DatabaseSource::connect(&cli.database_urls[0], cli.chain.clone()).await?;
    let (keys, keys_trusted) = source.keys(trusted).await?;
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
