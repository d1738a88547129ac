//! The redaction corpus end to end: every request in
//! `decision/tests/data/redaction_corpus.json` (secrets in every place the rack API
//! takes them) is replayed through the real `rack-gateway-server` binary,
//! once with the corpus's own (unknown) credential and once with a real admin
//! token, and the events table (canonical bytes), the gateway's stdout and its
//! stderr are searched for every secret: zero hits. Stdout also has exactly
//! one request line per request.

use std::net::SocketAddr;
use std::time::Duration;

use crate::helpers::{basic, raw, ServerProcess, PREFIX};
use serde::Deserialize;
use tools::mock_rack::{MockRack, MockRackConfig};

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    method: String,
    path: String,
    query: Option<String>,
    headers: serde_json::Map<String, serde_json::Value>,
    form: Option<Vec<(String, String)>>,
    body: Option<String>,
    secrets: Vec<String>,
    keys: Vec<String>,
}

/// The corpus's rack-token case asks for this to be the rack's password.
const CORPUS_RACK_TOKEN: &str = "rack-password-Corpus023-do-not-log";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_of_the_corpus_reaches_the_chain_stdout_or_stderr() {
    let corpus: Vec<Case> = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../decision/tests/data/redaction_corpus.json"
    )))
    .expect("the corpus parses");
    assert!(corpus.len() >= 20);

    let rack = MockRack::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        MockRackConfig {
            password: CORPUS_RACK_TOKEN.to_owned(),
            ..MockRackConfig::default()
        },
    )
    .await
    .expect("mock rack")
    .spawn();
    let mut gateway = ServerProcess::in_front_of(
        &rack.url(),
        CORPUS_RACK_TOKEN,
        &[
            ("RACK_NAME", "corpus"),
            // Everything the gateway logs, not only what it logs by default.
            ("LOG_LEVEL", "debug"),
        ],
    )
    .await;
    let admin = gateway.token("corpus-admin", "admin");
    let address = gateway.address.trim_start_matches("http://").to_owned();

    let mut sent = 0;
    let mut statuses = Vec::new();
    for case in &corpus {
        let target = match &case.query {
            Some(q) => format!("{PREFIX}{}?{q}", case.path),
            None => format!("{PREFIX}{}", case.path),
        };
        let body: Vec<u8> = match (&case.form, &case.body) {
            (Some(form), _) => serde_urlencoded::to_string(form).unwrap().into_bytes(),
            (None, Some(body)) => body.clone().into_bytes(),
            (None, None) => Vec::new(),
        };
        let headers: Vec<(String, String)> = case
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        // As written (the corpus's credentials are unknown to us: 401), then as an admin.
        for replay in ["as-is", "admin"] {
            let mut these: Vec<(&str, &str)> = Vec::new();
            let admin_auth = basic(&admin);
            for (k, v) in &headers {
                if replay == "admin" && k.eq_ignore_ascii_case("authorization") {
                    continue;
                }
                these.push((k.as_str(), v.as_str()));
            }
            if replay == "admin" {
                these.push(("Authorization", admin_auth.as_str()));
            }
            let response = raw(
                &format!("http://{address}"),
                &case.method,
                &target,
                &these,
                &body,
            )
            .await;
            statuses.push(format!("{replay} {}: {}", case.name, response.status));
            sent += 1;
        }
    }
    println!("{statuses:#?}");
    // The corpus's own credentials are unknown (401); the admin replays reach the decision,
    // and the ones policy allows reach the rack.
    assert!(
        statuses
            .iter()
            .filter(|s| s.starts_with("as-is"))
            .all(|s| s.ends_with(": 401")),
        "{statuses:#?}"
    );
    let forwarded = statuses
        .iter()
        .filter(|s| s.starts_with("admin") && !s.ends_with(": 403") && !s.ends_with(": 401"))
        .count();
    assert!(forwarded >= 10, "{statuses:#?}");
    // Let websocket sessions and their records finish, then stop the way SIGTERM does.
    tokio::time::sleep(Duration::from_millis(500)).await;
    gateway.stop().await;

    let stdout = gateway.stdout();
    let stderr = gateway.stderr();
    let pool = gateway.pool().await;
    let canonical: Vec<Vec<u8>> = sqlx::query_scalar("SELECT canonical FROM events ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    let chain: String = canonical
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<Vec<_>>()
        .join("\n");

    // Exactly one request line per request, each a JSON object with the seed's fields.
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line {l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), sent, "{statuses:#?}");
    for line in &lines {
        for field in [
            "ts",
            "user_email",
            "rack",
            "method",
            "path",
            "status",
            "latency_ms",
            "rbac_decision",
            "request_id",
            "client_ip",
        ] {
            assert!(line.get(field).is_some(), "{field} missing: {line}");
        }
        assert_eq!(line["rack"], "corpus");
    }
    assert!(stderr.lines().count() > 10, "debug logs were written");

    let mut checked = 0;
    let mut forbidden: Vec<(String, String)> = vec![
        ("the admin token".into(), admin.clone()),
        (
            "the admin Basic header".into(),
            basic(&admin).trim_start_matches("Basic ").to_owned(),
        ),
        ("the rack token".into(), CORPUS_RACK_TOKEN.to_owned()),
    ];
    for case in &corpus {
        for secret in &case.secrets {
            forbidden.push((case.name.clone(), secret.clone()));
        }
    }
    for (case, secret) in &forbidden {
        for (place, text) in [
            ("the events table", &chain),
            ("stdout", &stdout),
            ("stderr", &stderr),
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "{case}: secret {secret:?} found in {place}"
            );
            checked += 1;
        }
    }
    assert!(checked > 200, "{checked}");
    // Redaction keeps what an auditor needs: the names of what changed.
    for case in &corpus {
        for key in &case.keys {
            assert!(
                chain.contains(&format!("\"{key}\"")),
                "{}: key {key} not recorded",
                case.name
            );
        }
    }
    rack.shutdown().await.unwrap();
}
