//! The audit chain's store: the database, how long an append may wait, and
//! how often checkpoints are signed.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::{bad, Reader, SettingsError, View};

#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub database_url: SecretString,
    pub append_timeout: Duration,
    pub checkpoint_signing_key_file: Option<PathBuf>,
    pub checkpoint_every_events: u64,
    pub checkpoint_every_seconds: u64,
}

pub(super) fn read(r: &Reader) -> Result<AuditSettings, SettingsError> {
    let database_url = r
        .get(r.alias("DATABASE_URL", &["RGW_DATABASE_URL"]))
        .ok_or_else(|| bad("DATABASE_URL", "required (a postgres:// URL)"))?;
    let audit = AuditSettings {
        database_url: SecretString::from(database_url),
        append_timeout: Duration::from_millis(r.parse("AUDIT_APPEND_TIMEOUT_MS", 2000u64)?),
        checkpoint_signing_key_file: r.get("CHECKPOINT_SIGNING_KEY_FILE").map(PathBuf::from),
        checkpoint_every_events: r.parse("CHECKPOINT_EVERY_EVENTS", 1000u64)?,
        checkpoint_every_seconds: r.parse("CHECKPOINT_EVERY_SECONDS", 60u64)?,
    };
    if audit.append_timeout.is_zero() {
        return Err(bad("AUDIT_APPEND_TIMEOUT_MS", "must be positive"));
    }
    if audit.checkpoint_every_events == 0 || audit.checkpoint_every_seconds == 0 {
        return Err(bad(
            "CHECKPOINT_EVERY_EVENTS",
            "checkpoint intervals must be positive",
        ));
    }
    Ok(audit)
}

pub(super) fn describe(s: &AuditSettings, view: &mut View) {
    // Always set (the gateway does not start without it), and it carries the password.
    view.secret_unshown("DATABASE_URL");
    view.show(
        "AUDIT_APPEND_TIMEOUT_MS",
        s.append_timeout.as_millis() as u64,
    );
    // The key's public half is published in every checkpoint it signs.
    view.unrecorded("CHECKPOINT_SIGNING_KEY_FILE");
    view.show("CHECKPOINT_EVERY_EVENTS", s.checkpoint_every_events);
    view.show("CHECKPOINT_EVERY_SECONDS", s.checkpoint_every_seconds);
}
