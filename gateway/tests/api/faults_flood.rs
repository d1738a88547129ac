//! An unauthenticated flood from many addresses cannot grow the chain
//! without bound: past each address's budget, and past the budget of all
//! addresses together, anonymous sign-in events are counted into one
//! `auth.anonymous_events.aggregated` per window. The requests themselves
//! are still served.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_flood_from_many_addresses_is_aggregated() {
    let app = TestApp::build()
        .sign_in()
        // The test is every address: it names them through X-Forwarded-For.
        .env("TRUSTED_PROXY_CIDRS", "127.0.0.0/8")
        .env("ANONYMOUS_EVENT_WINDOW_SECONDS", "2")
        .env("ANONYMOUS_EVENTS_PER_ADDRESS", "3")
        .env("ANONYMOUS_EVENTS_PER_WINDOW", "20")
        .spawn()
        .await;
    let started = std::time::Instant::now();
    // 50 addresses × 4 starts, and one IPv6 /64 rotating through 20 hosts (its sign-in burst).
    let addresses: Vec<String> = (0..200)
        .map(|i| format!("198.51.100.{}", i % 50))
        .chain((0..20).map(|i| format!("2001:db8:7:7::{:x}", i + 1)))
        .collect();
    let statuses = futures::stream::iter(addresses)
        .map(|address| {
            let app = &app;
            async move {
                app.client
                    .post(app.url("/api/v1/auth/cli/start"))
                    .header("x-forwarded-for", address)
                    .json(&json!({"cli_secret_sha256": "ab".repeat(32), "device_name": "flood"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<u16>>()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    // The budget changes only how starts are recorded, never whether they are served.
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let windows = (elapsed / 2.0).ceil() + 1.0;
    // Every start is either its own event or counted in an aggregate, once the
    // windows of the flood have ended.
    let tally = || async {
        let individual = app.events_of("auth.login.started").await.len();
        let aggregates = app.events_of("auth.anonymous_events.aggregated").await;
        let counted: u64 = aggregates
            .iter()
            .filter_map(|a| a["data"]["counted"]["auth.login.started"].as_u64())
            .sum();
        (individual, aggregates, counted)
    };
    testkit::wait_for(
        "the flood's windows aggregated",
        Duration::from_secs(30),
        || async {
            let (individual, _, counted) = tally().await;
            individual as u64 + counted == 220
        },
    )
    .await;
    let (individual, aggregates, _) = tally().await;
    assert!(
        (individual as f64) <= 20.0 * windows,
        "{individual} starts recorded one by one in {elapsed:.1}s"
    );
    assert!(!aggregates.is_empty());
    for aggregate in &aggregates {
        assert_eq!(aggregate["actor"]["kind"], "system", "{aggregate}");
        let data = &aggregate["data"];
        assert_eq!(data["window_seconds"], 2);
        assert_eq!(data["per_address_limit"], 3);
        assert_eq!(data["global_limit"], 20);
        assert!(data["top_addresses"].as_array().unwrap().len() <= 10);
    }
    // The rotating IPv6 hosts are one /64: at most 3 of their starts a window are their own events.
    let v6 = app
        .events_of("auth.login.started")
        .await
        .into_iter()
        .filter(|e| {
            e["source"]["ip"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("2001:db8:7:7:"))
        })
        .count();
    assert!(
        (v6 as f64) <= 3.0 * windows,
        "{v6} starts of one /64 recorded"
    );
    app.assert_projections_rebuild().await;
}
