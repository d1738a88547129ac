//! A 1 GiB object upload streams through the mock in constant memory. In a test binary of its
//! own, so no other test's allocations move the process's peak RSS while it runs.

mod mock_rack_support;

use std::time::Duration;

use base64::Engine as _;
use mock_rack_support::{start_rack, PASSWORD};
use sha2::{Digest, Sha256};

fn basic(password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("convox:{password}"))
    )
}

/// The process's peak resident set size so far (`VmHWM`): a body buffered in memory, even
/// briefly, raises it for good, where the current RSS may already have dropped again.
#[cfg(target_os = "linux")]
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .expect("VmHWM")
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_gib_upload_streams_in_constant_memory() {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 1024; // 1 GiB
    let rack = start_rack().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .expect("http client");

    let mut pattern = vec![0u8; CHUNK];
    for (i, b) in pattern.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let pattern = bytes::Bytes::from(pattern);
    let mut expected = Sha256::new();
    for _ in 0..CHUNKS {
        expected.update(&pattern);
    }
    let expected = hex::encode(expected.finalize());

    let before = peak_rss_kib();
    let body = futures::stream::iter((0..CHUNKS).map({
        let pattern = pattern.clone();
        move |_| Ok::<_, std::io::Error>(pattern.clone())
    }));
    let res = http
        .post(format!("{}/apps/myapp/objects/tmp/big.tgz", rack.url()))
        .header("Authorization", basic(PASSWORD))
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 200);
    let after = peak_rss_kib();

    let upload = rack.uploads().pop().expect("upload recorded");
    assert_eq!(upload.bytes, (CHUNK * CHUNKS) as u64);
    assert_eq!(upload.sha256, expected);
    assert_eq!(upload.key, "tmp/big.tgz");
    let grown_mib = after.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 128,
        "peak RSS grew by {grown_mib} MiB during a 1 GiB upload"
    );
}
