//! `verify-chain`: the auditors' verifier (docs/events.md §7; README "verify-chain").
//!
//! It depends on the `events` crate (the format) and `s3-client` only,
//! streams every source in constant memory, and never reports success on
//! input it could not check.
//!
//! - [`cli`]: the command line and `--key` values.
//! - [`run`]: the run over the sources given, and the subcommands.
//! - [`report`]: what is printed (text or `--json`) and the exit codes
//!   0 verified / 1 integrity failure / 2 usage, connection or I/O error.
//! - [`database`]: a Postgres source (the `events` and `checkpoints` tables).
//! - [`archive`]: archive-layout sources, an S3 bucket ([`s3`]) or an export
//!   directory ([`dir`]): listing, completeness and Object Lock checks, events.
//! - [`sources`]: several sources in lockstep, check by check.
//! - [`pipeline`]: reading the next batch of events while the last is checked on every core.
//! - [`proofs`]: `prove`, `consistency` and `verify-proof`.

pub mod archive;
pub mod cli;
pub mod database;
pub mod dir;
pub mod pipeline;
pub mod proofs;
pub mod report;
pub mod run;
pub mod s3;
pub mod sources;

pub use cli::{parse_keys, Cli, Command};
pub use report::{check_name, progress, report, EXIT_ERROR, EXIT_INTEGRITY, EXIT_VERIFIED};
pub use run::{run, run_command, Outcome, RunError};
