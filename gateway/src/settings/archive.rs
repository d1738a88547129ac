//! Shipping the chain to S3 with Object Lock: the bucket and how to reach it,
//! the retention, and when a segment closes.

use std::time::Duration;

use secrecy::SecretString;

use super::{bad, Reader, SettingsError, View};

/// Object Lock retention mode of archived objects (`AUDIT_LOCK_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Compliance,
    Governance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }
}

impl std::str::FromStr for LockMode {
    type Err = String;
    fn from_str(text: &str) -> Result<LockMode, String> {
        match text.to_ascii_uppercase().as_str() {
            "COMPLIANCE" => Ok(LockMode::Compliance),
            "GOVERNANCE" => Ok(LockMode::Governance),
            _ => Err("must be COMPLIANCE or GOVERNANCE".into()),
        }
    }
}

/// How uploads carry a checksum the server verifies (`AUDIT_S3_CHECKSUM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumMode {
    /// `x-amz-checksum-sha256` and `Content-MD5` (AWS S3 verifies both).
    Sha256,
    /// `Content-MD5` only, for S3-compatible stores without the newer checksum headers.
    Md5,
}

/// Shipping the chain to S3 with Object Lock. Off unless `AUDIT_S3_BUCKET` is
/// set. Credentials are not settings: the AWS SDK reads them the way the AWS
/// tools do (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`,
/// then `AWS_PROFILE` and the shared files, web identity, the container and
/// instance metadata endpoints).
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    pub bucket: Option<String>,
    /// Key prefix without slashes at either end (`AUDIT_S3_PREFIX`, default `rack-gateway`).
    pub prefix: String,
    pub endpoint_url: Option<String>,
    /// `AUDIT_S3_REGION`, else `AWS_REGION`/`AWS_DEFAULT_REGION`, else the profile's, else us-east-1.
    pub region: Option<String>,
    /// Path-style addressing (`AUDIT_S3_FORCE_PATH_STYLE`; default: on when an endpoint URL is set).
    pub force_path_style: bool,
    pub checksum: ChecksumMode,
    /// Send `If-None-Match: *` on every upload so S3 itself refuses to
    /// replace a key (`AUDIT_S3_CONDITIONAL_WRITES`, default on).
    pub conditional_writes: bool,
    pub retention_days: u32,
    pub lock_mode: LockMode,
    /// A segment closes once this many events wait (`AUDIT_SEGMENT_MAX_EVENTS`, default 1000).
    pub segment_max_events: u64,
    /// ... or once the oldest waiting event is this old (`AUDIT_SEGMENT_MAX_AGE_MS`, default 5000).
    pub segment_max_age: Duration,
    /// Static credentials from the settings file or environment, when given there.
    pub access_key_id: Option<SecretString>,
    pub secret_access_key: Option<SecretString>,
    pub session_token: Option<SecretString>,
}

impl ArchiveSettings {
    pub fn enabled(&self) -> bool {
        self.bucket.is_some()
    }
}

pub(super) fn read(r: &Reader) -> Result<ArchiveSettings, SettingsError> {
    let endpoint_url = r.get("AUDIT_S3_ENDPOINT_URL");
    let retention_days: u32 = r.parse("AUDIT_RETENTION_DAYS", 2555)?;
    if retention_days == 0 {
        return Err(bad("AUDIT_RETENTION_DAYS", "must be at least 1"));
    }
    let checksum = match r
        .string("AUDIT_S3_CHECKSUM", "sha256")
        .to_ascii_lowercase()
        .as_str()
    {
        "sha256" => ChecksumMode::Sha256,
        "md5" => ChecksumMode::Md5,
        other => {
            return Err(bad(
                "AUDIT_S3_CHECKSUM",
                format!("{other:?} is not valid: sha256 or md5"),
            ))
        }
    };
    let segment_max_events: u64 = r.parse("AUDIT_SEGMENT_MAX_EVENTS", 1000)?;
    let segment_max_age_ms: u64 = r.parse("AUDIT_SEGMENT_MAX_AGE_MS", 5000)?;
    if segment_max_events == 0 || segment_max_age_ms == 0 {
        return Err(bad(
            "AUDIT_SEGMENT_MAX_EVENTS",
            "segment limits must be positive",
        ));
    }
    let access_key_id = r.secret("AWS_ACCESS_KEY_ID");
    let secret_access_key = r.secret("AWS_SECRET_ACCESS_KEY");
    if access_key_id.is_some() != secret_access_key.is_some() {
        return Err(bad(
            "AWS_ACCESS_KEY_ID",
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together",
        ));
    }
    let bucket = r.get("AUDIT_S3_BUCKET");
    if let Some(name) = &bucket {
        if name.contains('/') || name.len() < 3 || name.len() > 63 {
            return Err(bad(
                "AUDIT_S3_BUCKET",
                "a bucket name (3-63 characters, no slash; the key prefix is AUDIT_S3_PREFIX)",
            ));
        }
    }
    Ok(ArchiveSettings {
        bucket,
        prefix: r
            .string("AUDIT_S3_PREFIX", "rack-gateway")
            .trim_matches('/')
            .to_owned(),
        force_path_style: r.bool("AUDIT_S3_FORCE_PATH_STYLE", endpoint_url.is_some())?,
        endpoint_url,
        region: r.get(r.alias("AUDIT_S3_REGION", &["AWS_REGION", "AWS_DEFAULT_REGION"])),
        checksum,
        conditional_writes: r.bool("AUDIT_S3_CONDITIONAL_WRITES", true)?,
        retention_days,
        lock_mode: r.parse("AUDIT_LOCK_MODE", LockMode::Compliance)?,
        segment_max_events,
        segment_max_age: Duration::from_millis(segment_max_age_ms),
        access_key_id,
        secret_access_key,
        session_token: r.secret("AWS_SESSION_TOKEN"),
    })
}

pub(super) fn describe(s: &ArchiveSettings, view: &mut View) {
    view.show("AUDIT_S3_BUCKET", &s.bucket);
    view.show("AUDIT_S3_PREFIX", &s.prefix);
    view.show("AUDIT_S3_ENDPOINT_URL", &s.endpoint_url);
    view.show("AUDIT_S3_REGION", &s.region);
    view.show("AUDIT_S3_FORCE_PATH_STYLE", s.force_path_style);
    view.show(
        "AUDIT_S3_CHECKSUM",
        match s.checksum {
            ChecksumMode::Sha256 => "sha256",
            ChecksumMode::Md5 => "md5",
        },
    );
    view.show("AUDIT_S3_CONDITIONAL_WRITES", s.conditional_writes);
    view.show("AUDIT_RETENTION_DAYS", s.retention_days);
    view.show("AUDIT_LOCK_MODE", s.lock_mode.as_str());
    view.show("AUDIT_SEGMENT_MAX_EVENTS", s.segment_max_events);
    view.show(
        "AUDIT_SEGMENT_MAX_AGE_MS",
        s.segment_max_age.as_millis() as u64,
    );
    view.secret(
        "AWS_ACCESS_KEY_ID_SET",
        "AWS_ACCESS_KEY_ID",
        s.access_key_id.is_some(),
    );
    // Set together with the key id (checked above), which the view already shows as set.
    view.secret_unshown("AWS_SECRET_ACCESS_KEY");
    view.secret_unshown("AWS_SESSION_TOKEN");
}
