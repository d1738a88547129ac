//! A measurement, not a check of timing: a 1 GiB object upload through the
//! gateway (a subprocess, so its memory is its own), printing the gateway's
//! peak RSS growth. The target is < 64 MB: bodies stream, nothing buffers.
//!
//! `cargo test -p gateway --test api proxy_upload -- --ignored --nocapture`

use std::time::{Duration, Instant};

use crate::helpers::{basic, memory_kib, Rack, ServerProcess, PREFIX, RACK_TOKEN};
use sha2::{Digest, Sha256};

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn a_one_gib_upload_through_the_gateway_in_constant_memory() {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 1024;
    let rack = Rack::start().await;
    let mut gateway =
        ServerProcess::in_front_of(&rack.url(), RACK_TOKEN, &[("REQUEST_LOG", "off")]).await;
    let deployer = gateway.token("uploader", "deployer");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    // Warm up (pool, first request) so the figure is the upload's.
    let warm = http
        .get(format!("{}{PREFIX}/apps", gateway.address))
        .header("Authorization", basic(&deployer))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);

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

    let pid = gateway.pid();
    let (rss_before, peak_before) = memory_kib(pid);
    let body = futures::stream::iter((0..CHUNKS).map({
        let pattern = pattern.clone();
        move |_| Ok::<_, std::io::Error>(pattern.clone())
    }));
    let started = Instant::now();
    let response = http
        .post(format!(
            "{}{PREFIX}/apps/myapp/objects/tmp/big.tgz",
            gateway.address
        ))
        .header("Authorization", basic(&deployer))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", (CHUNK * CHUNKS).to_string())
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("upload");
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    let (rss_after, peak_after) = memory_kib(pid);

    let upload = rack.uploads().pop().expect("upload recorded");
    assert_eq!(upload.bytes, (CHUNK * CHUNKS) as u64);
    assert_eq!(upload.sha256, expected);
    let pool = gateway.pool().await;
    let bytes_in: i64 = sqlx::query_scalar(
        "SELECT (body->'data'->>'bytes_in')::bigint FROM events WHERE type = 'proxy.response' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(bytes_in, (CHUNK * CHUNKS) as i64);
    gateway.stop().await;

    let growth_mib = peak_after.saturating_sub(peak_before) as f64 / 1024.0;
    println!(
        "1 GiB upload through the gateway in {:.1}s ({:.0} MiB/s): gateway VmHWM {} -> {} KiB \
         (peak growth {growth_mib:.1} MiB, target < 64 MB); VmRSS {} -> {} KiB",
        elapsed.as_secs_f64(),
        1024.0 / elapsed.as_secs_f64(),
        peak_before,
        peak_after,
        rss_before,
        rss_after,
    );
}
