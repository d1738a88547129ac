//! The S3 side of the archive: the client (the shared `s3_client` configuration), the
//! Object Lock check, and uploads that can never replace anything.
//!
//! Every upload is one PUT (never multipart: a multipart upload can lose the
//! lock on some S3-compatible stores) carrying the retention mode, the
//! retain-until date and a checksum the server verifies (`x-amz-checksum-sha256`
//! and `Content-MD5`, or `Content-MD5` alone). [`ObjectStore::put_once`] first
//! asks whether the key exists and, if it does, only compares: identical
//! content is "already shipped", different content is [`S3Error::Diverged`],
//! which the shipper treats as an alarm. The PUT itself carries
//! `If-None-Match: *`, so even a race with another writer cannot make S3
//! replace a key. Nothing here ever deletes.

use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode as S3ChecksumMode, ObjectLockEnabled, ObjectLockMode,
};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use s3_client::to_chrono;
use s3_client::{Client, ClientOptions, Credentials, TimeoutConfig};
use secrecy::ExposeSecret;

use super::segments::digests;
use crate::settings::{ArchiveSettings, ChecksumMode, LockMode};

/// What went wrong talking to S3.
#[derive(Debug, Clone, thiserror::Error)]
pub enum S3Error {
    /// Network, timeout, throttling, 5xx, credentials: try again later.
    #[error("S3 unavailable: {0}")]
    Unavailable(String),
    /// S3 answered with a refusal (4xx) that retrying as-is will not fix by itself.
    #[error("S3 refused {operation} of {key}: {message}")]
    Refused {
        operation: &'static str,
        key: String,
        message: String,
    },
    /// The bucket holds different content under a key we would write: never "fix" it.
    #[error("{key}: the bucket holds different content ({message})")]
    Diverged { key: String, message: String },
}

/// What a HEAD says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: Option<i64>,
    /// base64 SHA-256 of the whole object, when it was uploaded with one.
    pub sha256_base64: Option<String>,
    pub etag: Option<String>,
    pub lock_mode: Option<String>,
    pub retain_until: Option<DateTime<Utc>>,
}

/// How [`ObjectStore::put_once`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Uploaded {
        lock_mode: String,
        retain_until: DateTime<Utc>,
    },
    /// The key already held exactly these bytes; nothing was written.
    AlreadyThere {
        lock_mode: Option<String>,
        retain_until: Option<DateTime<Utc>>,
    },
}

impl PutOutcome {
    pub fn lock_mode(&self) -> Option<&str> {
        match self {
            PutOutcome::Uploaded { lock_mode, .. } => Some(lock_mode),
            PutOutcome::AlreadyThere { lock_mode, .. } => lock_mode.as_deref(),
        }
    }

    pub fn retain_until(&self) -> Option<DateTime<Utc>> {
        match self {
            PutOutcome::Uploaded { retain_until, .. } => Some(*retain_until),
            PutOutcome::AlreadyThere { retain_until, .. } => *retain_until,
        }
    }
}

/// The bucket the chain is shipped to, with its upload rules.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    client: Client,
    bucket: String,
    lock_mode: LockMode,
    retention_days: u32,
    checksum: ChecksumMode,
    conditional_writes: bool,
}

/// An S3 client as the AWS tools would configure it, with the archive's overrides.
pub async fn client(settings: &ArchiveSettings) -> Client {
    s3_client::client(ClientOptions {
        endpoint_url: settings.endpoint_url.clone(),
        region: settings.region.clone(),
        force_path_style: settings.force_path_style,
        credentials: match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(id), Some(secret)) => Some(Credentials::new(
                id.expose_secret(),
                secret.expose_secret(),
                settings
                    .session_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
                None,
                "rack-gateway-settings",
            )),
            _ => None,
        },
        timeouts: TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(30))
            .operation_timeout(Duration::from_secs(60))
            .build(),
    })
    .await
}

impl ObjectStore {
    pub async fn connect(settings: &ArchiveSettings) -> Option<ObjectStore> {
        let bucket = settings.bucket.clone()?;
        Some(ObjectStore {
            client: client(settings).await,
            bucket,
            lock_mode: settings.lock_mode,
            retention_days: settings.retention_days,
            checksum: settings.checksum,
            conditional_writes: settings.conditional_writes,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the bucket has Object Lock enabled (which implies versioning).
    pub async fn object_lock_enabled(&self) -> Result<bool, S3Error> {
        match self
            .client
            .get_object_lock_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(output) => Ok(output
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                == Some(&ObjectLockEnabled::Enabled)),
            Err(error) => match error.code() {
                Some("ObjectLockConfigurationNotFoundError") => Ok(false),
                _ => Err(classify("GetObjectLockConfiguration", &self.bucket, &error)),
            },
        }
    }

    /// Every key under `prefix` after `start_after`, in S3's (lexicographic) order.
    pub async fn list_keys(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<String>, S3Error> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_owned))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListObjectsV2", prefix, &e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        Ok(keys)
    }

    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, S3Error> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(S3ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(head) => Ok(Some(ObjectInfo {
                size: head.content_length(),
                sha256_base64: head.checksum_sha256().map(str::to_owned),
                etag: head.e_tag().map(str::to_owned),
                lock_mode: head.object_lock_mode().map(|m| m.as_str().to_owned()),
                retain_until: head.object_lock_retain_until_date().and_then(to_chrono),
            })),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(classify("HeadObject", key, &error)),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, S3Error> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("GetObject", key, &e))?;
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| S3Error::Unavailable(format!("GetObject {key}: {e}")))?;
        Ok(body.into_bytes().to_vec())
    }

    /// Write `body` at `key` unless it is there already; never replace (see the module doc).
    pub async fn put_once(
        &self,
        key: &str,
        body: &[u8],
        content_type: &str,
    ) -> Result<PutOutcome, S3Error> {
        let (sha256, md5) = digests(body);
        if let Some(existing) = self.head(key).await? {
            return self.compare(key, body, &sha256, &md5, existing).await;
        }
        let retain_until = Utc::now() + chrono::Duration::days(i64::from(self.retention_days));
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(body.len() as i64)
            .content_md5(BASE64.encode(md5))
            .object_lock_mode(match self.lock_mode {
                LockMode::Compliance => ObjectLockMode::Compliance,
                LockMode::Governance => ObjectLockMode::Governance,
            })
            .object_lock_retain_until_date(aws_smithy_types::DateTime::from_secs(
                retain_until.timestamp(),
            ))
            .body(ByteStream::from(body.to_vec()));
        if self.checksum == ChecksumMode::Sha256 {
            // The algorithm header too: some S3-compatible stores keep the
            // checksum (and return it on HEAD) only when it is named.
            put = put
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(BASE64.encode(sha256));
        }
        if self.conditional_writes {
            put = put.if_none_match("*");
        }
        match put.send().await {
            Ok(output) => {
                if let Some(echoed) = output.checksum_sha256() {
                    if echoed != BASE64.encode(sha256) {
                        return Err(S3Error::Diverged {
                            key: key.to_owned(),
                            message: format!(
                                "S3 stored SHA-256 {echoed}, we sent {}",
                                BASE64.encode(sha256)
                            ),
                        });
                    }
                }
                Ok(PutOutcome::Uploaded {
                    lock_mode: self.lock_mode.as_str().to_owned(),
                    retain_until: DateTime::from_timestamp(retain_until.timestamp(), 0)
                        .unwrap_or(retain_until),
                })
            }
            // Someone wrote the key between our HEAD and our PUT: compare, never replace.
            Err(error)
                if error.code() == Some("PreconditionFailed") || status(&error) == Some(412) =>
            {
                match self.head(key).await? {
                    Some(existing) => self.compare(key, body, &sha256, &md5, existing).await,
                    None => Err(S3Error::Unavailable(format!(
                        "PutObject {key}: precondition failed but the key is absent"
                    ))),
                }
            }
            Err(error) => Err(classify("PutObject", key, &error)),
        }
    }

    /// Same bytes? By SHA-256 when S3 has it, else by a plain (single-part) ETag, else by content.
    async fn compare(
        &self,
        key: &str,
        body: &[u8],
        sha256: &[u8; 32],
        md5: &[u8; 16],
        existing: ObjectInfo,
    ) -> Result<PutOutcome, S3Error> {
        let diverged = |message: String| S3Error::Diverged {
            key: key.to_owned(),
            message,
        };
        if let Some(size) = existing.size {
            if size != body.len() as i64 {
                return Err(diverged(format!(
                    "{size} bytes there, {} bytes in the database",
                    body.len()
                )));
            }
        }
        let same = if let Some(stored) = &existing.sha256_base64 {
            *stored == BASE64.encode(sha256)
        } else if let Some(etag) = existing
            .etag
            .as_deref()
            .map(|e| e.trim_matches('"'))
            .filter(|e| e.len() == 32 && e.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            etag.eq_ignore_ascii_case(&hex::encode(md5))
        } else {
            self.get(key).await? == body
        };
        if !same {
            return Err(diverged(
                "its checksum is not the SHA-256 of the database's bytes".into(),
            ));
        }
        Ok(PutOutcome::AlreadyThere {
            lock_mode: existing.lock_mode,
            retain_until: existing.retain_until,
        })
    }
}

fn status<E>(error: &SdkError<E, HttpResponse>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

fn is_not_found<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    matches!(error.code(), Some("NotFound") | Some("NoSuchKey")) || status(error) == Some(404)
}

/// Transient (retry) or a refusal, with enough words to act on, never credentials.
fn classify<E>(operation: &'static str, key: &str, error: &SdkError<E, HttpResponse>) -> S3Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown");
            let message = service.err().message().unwrap_or_default();
            let server_side = status(error).is_some_and(|s| s >= 500);
            if server_side || matches!(code, "SlowDown" | "ServiceUnavailable" | "InternalError") {
                S3Error::Unavailable(format!("{operation} {key}: {code} {message}"))
            } else {
                S3Error::Refused {
                    operation,
                    key: key.to_owned(),
                    message: format!("{code}: {message}"),
                }
            }
        }
        other => S3Error::Unavailable(format!(
            "{operation} {key}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(other)
        )),
    }
}
