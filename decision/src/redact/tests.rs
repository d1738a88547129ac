use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use http::{HeaderMap, Method};
use percent_encoding::utf8_percent_encode;
use serde::Deserialize;
use serde_json::json;

use super::scrubber::USERINFO;
use super::*;
use crate::path::normalize;
use crate::routes::{body_fields, match_route, request_form};

#[test]
fn secret_names_are_recognised() {
    for name in [
        "password",
        "DB_PASSWORD",
        "passwd",
        "src-creds-pass",
        "SECRET_KEY_BASE",
        "api-key",
        "API_KEY",
        "apikey",
        "x-api-key",
        "access_token",
        "Authorization",
        "Cookie",
        "Set-Cookie",
        "session",
        "Private-Key",
        "private",
        "credentials",
        "bearer",
        "jwt",
        "SENTRY_DSN",
        "X-Amz-Signature",
        "key",
        "pw",
        "db-pwd",
        "otp_code",
    ] {
        assert!(is_secret_name(name), "{name}");
    }
    for name in [
        "limit",
        "name",
        "service",
        "version",
        "description",
        "url",
        "count",
    ] {
        assert!(!is_secret_name(name), "{name}");
    }
}

#[test]
fn env_keys_follow_convox_parsing() {
    assert_eq!(
        env_keys("A=1\nB=two=2\r\n  C =3\n\n# comment\nnot a var\n=orphan\nA=again\nbad key=1"),
        ["A", "B", "C"]
    );
    assert!(env_keys("").is_empty());
    // A pasted secret without a name is not a key.
    assert!(env_keys("sk_live_abc def").is_empty());
}

#[test]
fn env_change_names_keys_only() {
    let change = env_change("A=1\nB=2\nC=3", "A=1\nB=20\nD=4");
    assert_eq!(
        change,
        EnvChange {
            added: vec!["D".into()],
            removed: vec!["C".into()],
            changed: vec!["B".into()],
        }
    );
    let text = serde_json::to_string(&change).unwrap();
    assert!(!text.contains("20") && !text.contains('4'), "{text}");
    assert_eq!(env_change("A=1", "A=1"), EnvChange::default());
}

#[test]
fn values_lose_their_secret_parts() {
    assert_eq!(
        redact_value("postgres://app:s3cret@db:5432/app"),
        "postgres://[REDACTED]@db:5432/app"
    );
    assert_eq!(
        redact_value("https://tok123@gw.example/x"),
        "https://[REDACTED]@gw.example/x"
    );
    assert_eq!(
        redact_value("object://myapp/tmp/a.tgz"),
        "object://myapp/tmp/a.tgz"
    );
    assert_eq!(
        redact_value("use rgw_token_AbC-dEf_123 now"),
        "use [REDACTED] now"
    );
    assert_eq!(
        redact_value("t=eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoieCJ9.c2lnbmF0dXJl"),
        "t=[REDACTED]"
    );
    assert_eq!(redact_value("AKIAABCDEFGHIJKLMNOP x"), "[REDACTED] x");
    assert_eq!(
        redact_value("Authorization: Basic Y29udm94OnMzY3IzdA=="),
        "Authorization: Basic [REDACTED]"
    );
    assert_eq!(redact_value("bearer abc.def"), "bearer [REDACTED]");
    assert_eq!(
        redact_value("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"),
        REDACTED
    );
    assert_eq!(redact_value("web-1 3.19.0 ok"), "web-1 3.19.0 ok");
}

#[test]
fn urls_keep_no_query_values_and_no_userinfo() {
    assert_eq!(
        redact_value("https://example.com/hook?sig=abc123&x=1&flag#frag"),
        "https://example.com/hook?sig=[REDACTED]&x=[REDACTED]&flag#frag"
    );
    assert_eq!(
        redact_value("curl 'https://user:pw@h.example/a?t=zz' -o x"),
        "curl 'https://[REDACTED]@h.example/a?t=[REDACTED]' -o x"
    );
    assert_eq!(
        redact_value("https://ci.example/build/42"),
        "https://ci.example/build/42"
    );
    assert_eq!(
        redact_value("s3://bucket/key?X-Amz-Signature=deadbeef and more"),
        "s3://bucket/key?X-Amz-Signature=[REDACTED] and more"
    );
}

#[test]
fn well_known_token_shapes_are_masked_in_free_text() {
    let cases = [
        (
            "GH ghp_16C7e42F292c6912E7710c838347Ae178B4a end",
            "GH [REDACTED] end",
        ),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "[REDACTED]",
        ),
        (
            "slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
            "slack [REDACTED]",
        ),
        ("xapp-1-A0123456789-0123456789012-abcdef", "[REDACTED]"),
        (
            "STRIPE=sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "STRIPE=[REDACTED]",
        ),
        ("rk_test_51Habcdefghijklmnop and", "[REDACTED] and"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "[REDACTED]"),
        ("key AKIAIOSFODNN7EXAMPLE", "key [REDACTED]"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-abc_def",
            "jwt [REDACTED]",
        ),
        (
            "cert -----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE----- done",
            "cert [REDACTED] done",
        ),
        (
            "half -----BEGIN OPENSSH PUBLIC KEY----- MIIB",
            "half [REDACTED]",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(redact_value(text), want, "{text}");
        assert_eq!(redact_command(text), want, "{text}");
    }
    // Words that merely share a prefix are kept.
    for text in ["sk_test_helper.rb", "ghp_x", "xoxb-", "rake work_test_all"] {
        assert_eq!(redact_value(text), text);
    }
}

#[test]
fn commands_keep_their_shape() {
    assert_eq!(redact_command("sleep 3600"), "sleep 3600");
    assert_eq!(
        redact_command("rake db:migrate VERSION=0"),
        "rake db:migrate VERSION=0"
    );
    assert_eq!(
        redact_command("psql postgres://admin:hunter2@db/app -c 'select 1'"),
        "psql postgres://[REDACTED]@db/app -c 'select 1'"
    );
    assert_eq!(
        redact_command("API_KEY=abc123 ./run --password hunter2 --token=xyz -v"),
        "API_KEY=[REDACTED] ./run --password [REDACTED] --token=[REDACTED] -v"
    );
}

#[test]
fn queries_and_headers_for_log_lines() {
    assert_eq!(
        redact_query("limit=1&access_token=abc&env=A%3D1&service=web&zzz=1"),
        "limit=1&access_token=[REDACTED]&env=[REDACTED]&service=web&zzz=[REDACTED]"
    );
    assert_eq!(redact_query(""), "");
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        "Basic Y29udm94OnMzY3IzdA==".parse().unwrap(),
    );
    h.insert("cookie", "session_token=abc".parse().unwrap());
    h.insert("private-key", "LS0tLS1CRUdJTg==".parse().unwrap());
    h.insert("user-agent", "convox.go/dev".parse().unwrap());
    h.insert("environment", "A=1&B_TOKEN=zzz".parse().unwrap());
    h.insert("command", "sleep 3600".parse().unwrap());
    h.insert("x-custom", "whatever".parse().unwrap());
    let v = redact_headers(&h);
    assert_eq!(v["authorization"], REDACTED);
    assert_eq!(v["cookie"], REDACTED);
    assert_eq!(v["private-key"], REDACTED);
    assert_eq!(v["x-custom"], REDACTED);
    assert_eq!(v["user-agent"], "convox.go/dev");
    assert_eq!(v["command"], "sleep 3600");
    assert_eq!(v["environment"], json!({"keys": ["A", "B_TOKEN"]}));
}

#[test]
fn request_params_record_query_form_and_options_once() {
    let m = match_route(
        &Method::POST,
        &normalize("/apps/myapp/releases").unwrap(),
        false,
    )
    .unwrap();
    let body = vec![
        ("env".to_owned(), "A=1\nB=2".to_owned()),
        ("description".to_owned(), "env set".to_owned()),
    ];
    let form = request_form(Some("parent-release=R1"), Some(&body));
    let mut h = HeaderMap::new();
    h.insert("authorization", "Basic eA==".parse().unwrap());
    h.insert("follow", "false".parse().unwrap());
    let v = request_params(&m, Some("parent-release=R1"), &h, Some(&form));
    assert_eq!(
        v,
        json!({
            "query": {"parent-release": "R1"},
            "form": {"env": {"keys": ["A", "B"]}, "description": "env set"},
            "headers": {"Follow": "false"},
        })
    );
    // Repeated fields become arrays; nothing at all gives an empty object.
    let form = vec![
        ("force".to_owned(), "true".to_owned()),
        ("force".to_owned(), "false".to_owned()),
    ];
    let v = request_params(&m, None, &HeaderMap::new(), Some(&form));
    assert_eq!(v, json!({"form": {"force": ["true", "false"]}}));
    assert_eq!(request_params(&m, None, &HeaderMap::new(), None), json!({}));
}

#[test]
fn the_scrubber_removes_known_secrets_in_their_encodings() {
    let token = "rack-T0ken/with+odd=chars";
    let mut s = Scrubber::new();
    s.add_basic("convox", token).add("ab");
    let b64 = base64::engine::general_purpose::STANDARD;
    let header = format!("Basic {}", b64.encode(format!("convox:{token}")));
    let pct = utf8_percent_encode(token, USERINFO).to_string();
    for text in [
        format!("dial upstream: 401 for {token}"),
        format!("auth header was {header}"),
        format!("url https://convox:{pct}@rack.internal"),
        format!("b64 {}", b64.encode(token)),
    ] {
        let out = s.scrub(&text);
        assert!(!out.contains(token), "{out}");
        assert!(!out.contains(&pct), "{out}");
        assert!(!out.contains(&b64.encode(token)), "{out}");
        assert!(out.contains(REDACTED), "{out}");
    }
    // Too-short secrets are ignored rather than shredding every message.
    assert_eq!(s.scrub("about"), "about");
    assert!(!format!("{s:?}").contains(token));
    assert_eq!(
        Scrubber::with(&["abcdef"]).scrub("x abcdef y"),
        "x [REDACTED] y"
    );
}

#[derive(Deserialize)]
struct CorpusEntry {
    name: String,
    method: String,
    path: String,
    query: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    form: Option<Vec<(String, String)>>,
    body: Option<String>,
    secrets: Vec<String>,
    #[serde(default)]
    keys: Vec<String>,
}

#[test]
fn the_redaction_corpus_leaks_nothing() {
    let corpus: Vec<CorpusEntry> =
        serde_json::from_str(include_str!("../../tests/data/redaction_corpus.json"))
            .expect("corpus parses");
    assert!(corpus.len() >= 20);
    let mut all_secrets = BTreeSet::new();
    for entry in &corpus {
        let method = Method::from_bytes(entry.method.as_bytes()).unwrap();
        let path = normalize(&entry.path).unwrap();
        let mut headers = HeaderMap::new();
        for (k, v) in &entry.headers {
            headers.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        let websocket = crate::routes::is_websocket_upgrade(&headers);
        let m = match_route(&method, &path, websocket)
            .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
        let content_type = entry
            .headers
            .iter()
            .find_map(|(k, v)| k.eq_ignore_ascii_case("content-type").then_some(v.as_str()));
        let fields = match (&entry.form, &entry.body) {
            (Some(form), None) => form.clone(),
            (None, Some(body)) => body_fields(m.route, content_type, body.as_bytes()).unwrap(),
            (None, None) => Vec::new(),
            _ => panic!("{}: form or body, not both", entry.name),
        };
        let form = request_form(entry.query.as_deref(), Some(&fields));
        let mut out = serde_json::to_string(&request_params(
            &m,
            entry.query.as_deref(),
            &headers,
            Some(&form),
        ))
        .unwrap();
        out.push_str(&redact_headers(&headers).to_string());
        if let Some(q) = &entry.query {
            out.push_str(&redact_query(q));
        }
        if let Some(c) = crate::routes::command_of(&m, &headers, Some(&form)) {
            out.push_str(&redact_command(&c));
        }
        assert!(!entry.secrets.is_empty(), "{}: no secrets", entry.name);
        for secret in &entry.secrets {
            assert!(
                secret.len() >= 6,
                "{}: secret too short to test",
                entry.name
            );
            assert!(
                all_secrets.insert(secret.clone()),
                "{}: secrets must be distinct across the corpus: {secret}",
                entry.name
            );
            assert!(
                !out.contains(secret.as_str()),
                "{}: secret {secret:?} leaked into {out}",
                entry.name
            );
        }
        for key in &entry.keys {
            assert!(
                out.contains(&format!("\"{key}\"")),
                "{}: key {key} missing from {out}",
                entry.name
            );
        }
    }
}
