//! Archive test support: the local S3 Object Lock peer that `./scripts/test`
//! starts (`RGW_TEST_S3_ENDPOINT`), uniquely named buckets on it, a moto
//! server of a test's own that it can stop and bring back with its state
//! (`RGW_TEST_MOTO_SERVER`), reading what the bucket holds, and running
//! `verify-chain`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::types::ChecksumMode;
use aws_sdk_s3::Client;
use serde_json::Value;

use super::app::TestApp;

pub const ACCESS_KEY: &str = "rgw-local-access-key";
pub const SECRET_KEY: &str = "rgw-local-secret-key";
pub const REGION: &str = "us-east-1";

/// The shared peer's URL, or a panic that says how to get one.
pub fn endpoint() -> String {
    std::env::var("RGW_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "RGW_TEST_S3_ENDPOINT is not set: archive tests need the local S3 Object Lock peer \
             that ./scripts/test starts (or: source scripts/lib/postgres.sh scripts/lib/archive.sh; \
             rgw_archive_start /tmp/s3; export RGW_TEST_S3_ENDPOINT=$RGW_ARCHIVE_ENDPOINT)"
        )
    })
}

pub fn client(endpoint: &str) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    Client::from_conf(config)
}

/// A new bucket with a unique name; with Object Lock (and so versioning) when `lock`.
pub async fn bucket(client: &Client, lock: bool) -> String {
    let name = format!(
        "rgw-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    client
        .create_bucket()
        .bucket(&name)
        .object_lock_enabled_for_bucket(lock)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
    name
}

/// The settings that point a gateway at `bucket` on the peer at `endpoint`.
pub fn archive_settings(endpoint: &str, bucket: &str) -> [(&'static str, String); 5] {
    [
        ("AUDIT_S3_BUCKET", bucket.to_owned()),
        ("AUDIT_S3_ENDPOINT_URL", endpoint.to_owned()),
        ("AUDIT_S3_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
    ]
}

/// Every key under `prefix`, sorted.
pub async fn keys(client: &Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.expect("list objects");
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    keys.sort();
    keys
}

pub async fn get(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e:?}"))
        .body
        .collect()
        .await
        .expect("read body")
        .into_bytes()
        .to_vec()
}

/// (lock mode, retain-until seconds, stored SHA-256) of the current version.
pub async fn lock_of(
    client: &Client,
    bucket: &str,
    key: &str,
) -> (Option<String>, Option<i64>, Option<String>) {
    let head = client
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap_or_else(|e| panic!("head {key}: {e:?}"));
    (
        head.object_lock_mode().map(|m| m.as_str().to_owned()),
        head.object_lock_retain_until_date().map(|d| d.secs()),
        head.checksum_sha256().map(str::to_owned),
    )
}

/// The archive of one chain as the bucket holds it.
pub struct Archived {
    /// (first, last, key) in order.
    pub segments: Vec<(u64, u64, String)>,
    /// size → note.
    pub notes: BTreeMap<u64, String>,
    pub keys: Vec<String>,
}

pub async fn archived(client: &Client, bucket: &str, chain: &str) -> Archived {
    let root = format!("rack-gateway/{chain}/");
    let mut segments = Vec::new();
    for key in keys(client, bucket, &format!("{root}segments/")).await {
        let name = key
            .rsplit('/')
            .next()
            .unwrap()
            .strip_suffix(".jsonl")
            .unwrap();
        let (first, last) = name.split_once('-').unwrap();
        segments.push((first.parse().unwrap(), last.parse().unwrap(), key));
    }
    let mut notes = BTreeMap::new();
    for key in keys(client, bucket, &format!("{root}checkpoints/")).await {
        let size: u64 = key
            .rsplit('/')
            .next()
            .unwrap()
            .strip_suffix(".note")
            .unwrap()
            .parse()
            .unwrap();
        notes.insert(
            size,
            String::from_utf8(get(client, bucket, &key).await).unwrap(),
        );
    }
    Archived {
        segments,
        notes,
        keys: keys(client, bucket, &format!("{root}keys/")).await,
    }
}

/// The segments must be contiguous from 1; returns every archived line, in order.
pub async fn archived_lines(client: &Client, bucket: &str, archived: &Archived) -> Vec<Vec<u8>> {
    let mut expected = 1;
    let mut lines = Vec::new();
    for (first, last, key) in &archived.segments {
        assert_eq!(*first, expected, "segments contiguous: {key}");
        let body = get(client, bucket, key).await;
        assert!(body.ends_with(b"\n"), "{key} ends with a newline");
        let count = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64;
        assert_eq!(count, last - first + 1, "{key} holds first..last");
        lines.extend(
            body.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
        expected = last + 1;
    }
    lines
}

/// The database's events as archive lines, in seq order.
pub async fn database_lines(pool: &sqlx::PgPool) -> Vec<Vec<u8>> {
    let rows: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT canonical, hash FROM events ORDER BY seq")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.iter()
        .map(|(c, h)| events::Event::from_canonical(c, h).unwrap().to_line())
        .collect()
}

/// Highest seq recorded as shipped, and the last seq that is not archive bookkeeping.
pub async fn progress(pool: &sqlx::PgPool) -> (i64, i64) {
    let shipped: Option<i64> = sqlx::query_scalar("SELECT max(last_seq) FROM archive_segments")
        .fetch_one(pool)
        .await
        .unwrap();
    let real: Option<i64> = sqlx::query_scalar(
        "SELECT max(seq) FROM events WHERE type NOT IN ('archive.shipped', 'checkpoint.created')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    (shipped.unwrap_or(0), real.unwrap_or(0))
}

/// Wait (bounded) until every event but trailing bookkeeping is recorded as shipped.
pub async fn wait_shipped(pool: &sqlx::PgPool, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (shipped, real) = progress(pool).await;
        if real > 0 && shipped >= real {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not shipped within {within:?}: shipped up to {shipped}, events up to {real}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `verify-chain` (built by `cargo build --workspace --bins`) with the peer's endpoint and credentials.
pub fn verify_chain(endpoint: &str, args: &[&str]) -> Output {
    let bin = testkit::workspace_bin("verify-chain");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (./scripts/test does)",
        bin.display()
    );
    Command::new(bin)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL_S3", endpoint)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run verify-chain")
}

/// Run with `--json`; (exit code, the JSON object).
pub fn verify_json(endpoint: &str, args: &[&str]) -> (i32, Value) {
    let mut args = args.to_vec();
    args.push("--json");
    let out = verify_chain(endpoint, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "verify-chain --json prints one object ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), value)
}

/// `s3://<bucket>/rack-gateway`: where a test gateway archives.
pub fn s3_url(bucket: &str) -> String {
    format!("s3://{bucket}/rack-gateway")
}

/// `verify-chain --json` over the archive in `bucket` alone.
pub fn verify_bucket(endpoint: &str, bucket: &str, extra: &[&str]) -> (i32, Value) {
    let url = s3_url(bucket);
    let mut args = vec!["--s3", &url, "--s3-path-style"];
    args.extend_from_slice(extra);
    verify_json(endpoint, &args)
}

/// `verify-chain --json` over `app`'s database and its archive in `bucket`, with `app`'s key.
pub fn verify_both(endpoint: &str, app: &TestApp, bucket: &str, extra: &[&str]) -> (i32, Value) {
    let url = s3_url(bucket);
    let mut args = vec![
        "--database-url",
        &app.database_url,
        "--s3",
        &url,
        "--s3-path-style",
        "--key",
        &app.vkey,
    ];
    args.extend_from_slice(extra);
    verify_json(endpoint, &args)
}

/// A moto server of the test's own, recording every request, so it can be
/// stopped (SIGKILL: an outage) and brought back with the same buckets and
/// object versions (its recording replayed).
pub struct OwnPeer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<testkit::ChildGuard>,
}

impl OwnPeer {
    pub async fn start() -> OwnPeer {
        let mut peer = OwnPeer {
            port: testkit::free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        peer.spawn().await;
        peer
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn recording(&self) -> PathBuf {
        self.dir.path().join("recording.jsonl")
    }

    async fn spawn(&mut self) {
        let bin = std::env::var("RGW_TEST_MOTO_SERVER").unwrap_or_else(|_| {
            panic!("RGW_TEST_MOTO_SERVER is not set: ./scripts/test points it at the venv's moto_server")
        });
        let log = std::fs::File::create(self.dir.path().join("moto.log")).unwrap();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", self.recording())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        self.child = Some(testkit::ChildGuard(child));
        let url = format!("{}/moto-api/", self.endpoint());
        let client = reqwest::Client::new();
        testkit::wait_for("the own S3 peer", Duration::from_secs(30), || {
            let request = client.get(&url).send();
            async move { request.await.is_ok() }
        })
        .await;
    }

    /// Stop at once (SIGKILL).
    pub fn kill(&mut self) {
        self.child = None;
    }

    /// Start again on the same port and replay everything it had recorded.
    pub async fn restart(&mut self) {
        self.spawn().await;
        let replayed = reqwest::Client::new()
            .post(format!(
                "{}/moto-api/recorder/replay-recording",
                self.endpoint()
            ))
            .send()
            .await
            .expect("replay the recording");
        assert!(
            replayed.status().is_success(),
            "replay: {}",
            replayed.status()
        );
    }
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
