//! What is shown: progress on a terminal, the outcome as text or `--json`,
//! and the exit code (README "verify-chain").

use std::io::IsTerminal;

use serde_json::json;

use crate::archive::ObjectLock;
use crate::{Outcome, RunError};

/// Exit codes (README "verify-chain").
pub const EXIT_VERIFIED: i32 = 0;
pub const EXIT_INTEGRITY: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

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
fn print_locks(objects: &[ObjectLock], every: bool) {
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
