//! `--s3 s3://BUCKET/PREFIX`: the archive in S3, read as the AWS tools would
//! configure a client: endpoint from `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`,
//! credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
//! `AWS_SESSION_TOKEN`, `AWS_PROFILE` and the rest of the default chain,
//! region from `AWS_REGION` (us-east-1 if none); `--s3-path-style` for
//! S3-compatible stores that need path-style addressing. Read-only: List,
//! Get and nothing else. TLS is rustls with ring.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use s3_client::{Client, ClientOptions, TimeoutConfig};

use super::archive::{LineReader, Object, ObjectLock, Store, MAX_LINE};
use super::RunError;

/// `s3://bucket/prefix` → (bucket, prefix without slashes at the ends).
pub fn parse_url(url: &str) -> Result<(String, String), RunError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| RunError::new(format!("--s3 {url}: expected s3://BUCKET/PREFIX")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(RunError::new(format!("--s3 {url}: no bucket")));
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    /// Every page of a `/`-delimited listing under `dir`, reduced by `pick`, sorted.
    async fn list_delimited(
        &self,
        dir: &str,
        pick: impl Fn(&aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output) -> Vec<String>,
    ) -> Result<Vec<String>, RunError> {
        let mut names = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(dir)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("ListObjectsV2", dir, e))?;
            names.extend(pick(&page));
        }
        names.sort();
        Ok(names)
    }

    pub async fn connect(url: &str, path_style: bool) -> Result<S3Store, RunError> {
        let (bucket, prefix) = parse_url(url)?;
        // The endpoint, region and credentials are the default chain's, as for the AWS tools.
        let client = s3_client::client(ClientOptions {
            endpoint_url: None,
            region: None,
            force_path_style: path_style,
            credentials: None,
            // A segment streams for as long as it takes; only silence is an error.
            timeouts: TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(60))
                .build(),
        })
        .await;
        Ok(S3Store {
            client,
            bucket,
            prefix,
        })
    }

    /// The prefix under which chain directories live (`/`-terminated, or empty).
    pub fn root_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    fn error(&self, what: &str, name: &str, e: impl std::error::Error) -> RunError {
        RunError::new(format!(
            "s3://{}/{name}: {what}: {}",
            self.bucket,
            DisplayErrorContext(e)
        ))
    }
}

fn to_chrono(date: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<DateTime<Utc>> {
    date.and_then(s3_client::to_chrono)
}

/// How a fetched object is locked, as S3 says.
fn lock_of(name: &str, output: &GetObjectOutput) -> ObjectLock {
    ObjectLock {
        key: name.to_owned(),
        lock_mode: output.object_lock_mode().map(|m| m.as_str().to_owned()),
        retain_until: to_chrono(output.object_lock_retain_until_date()),
        last_modified: to_chrono(output.last_modified()),
    }
}

#[async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, RunError> {
        self.list_delimited(dir, |page| {
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect()
        })
        .await
    }

    async fn list_dirs(&self, dir: &str) -> Result<Vec<String>, RunError> {
        self.list_delimited(dir, |page| {
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned))
                .collect()
        })
        .await
    }

    async fn read(&self, name: &str) -> Result<Option<Object>, RunError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(name)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if matches!(e.code(), Some("NoSuchKey") | Some("NotFound")) => return Ok(None),
            Err(e) => return Err(self.error("GetObject", name, e)),
        };
        let lock = lock_of(name, &output);
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| self.error("read body", name, e))?
            .into_bytes()
            .to_vec();
        Ok(Some(Object { bytes, lock }))
    }

    async fn open_lines(&self, name: &str) -> Result<(Box<dyn LineReader>, ObjectLock), RunError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(name)
            .send()
            .await
            .map_err(|e| self.error("GetObject", name, e))?;
        let lock = lock_of(name, &output);
        Ok((
            Box::new(BodyLines {
                body: output.body,
                buffer: Vec::new(),
                start: 0,
                done: false,
                name: format!("s3://{}/{name}", self.bucket),
            }),
            lock,
        ))
    }

    fn has_locks(&self) -> bool {
        true
    }
}

/// Lines of a streamed object body, chunk by chunk.
struct BodyLines {
    body: ByteStream,
    buffer: Vec<u8>,
    start: usize,
    done: bool,
    name: String,
}

#[async_trait]
impl LineReader for BodyLines {
    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, RunError> {
        loop {
            if let Some(end) = self.buffer[self.start..].iter().position(|&b| b == b'\n') {
                let line = self.buffer[self.start..self.start + end].to_vec();
                self.start += end + 1;
                return Ok(Some(line));
            }
            if self.done {
                if self.start < self.buffer.len() {
                    let line = self.buffer[self.start..].to_vec();
                    self.start = self.buffer.len();
                    return Ok(Some(line));
                }
                return Ok(None);
            }
            if self.buffer.len() - self.start > MAX_LINE {
                return Err(RunError::new(format!(
                    "{}: a line longer than {MAX_LINE} bytes",
                    self.name
                )));
            }
            // Compact before reading more, so the buffer holds about one chunk.
            self.buffer.drain(..self.start);
            self.start = 0;
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    return Err(RunError::new(format!(
                        "{}: reading the body: {}",
                        self.name,
                        DisplayErrorContext(e)
                    )))
                }
                None => self.done = true,
            }
        }
    }
}
