//! Every type's JSON, pinned as the canonical bytes the chain hashes: a
//! renamed field, or a `null` that becomes absent, fails here. And the
//! catalogue against `docs/events.md`.

use std::collections::BTreeMap;

use serde_json::json;
use uuid::Uuid;

use super::accounts::*;
use super::auth::*;
use super::chain::*;
use super::mfa::*;
use super::proxy::*;
use super::*;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// `payload` serialises to exactly `expected` (RFC 8785), makes a valid
/// draft of its type, and reads back as itself.
fn pinned<P: EventPayload + PartialEq + std::fmt::Debug>(payload: &P, expected: &str) {
    let draft = payload.draft(crate::Actor::anonymous());
    assert_eq!(draft.event_type, P::TYPE);
    draft.validate().unwrap();
    let canonical = serde_json_canonicalizer::to_string(&draft.data).unwrap();
    assert_eq!(canonical, expected, "{}", P::TYPE);
    assert_eq!(&P::from_data(&draft.data).unwrap(), payload, "{}", P::TYPE);
    assert!(lookup(P::TYPE).is_some(), "{} is not in TYPES", P::TYPE);
}

#[test]
fn gateway_started() {
    pinned(
        &GatewayStarted {
            version: "0.1.0".into(),
            instance: "i-1".into(),
            settings_fingerprint: "ab12".into(),
            settings: BTreeMap::from([("PORT".into(), json!(8080)), ("TLS".into(), json!(false))]),
            checkpoint_key: "gw".into(),
            checkpoint_vkey: "gw+01020304+AQ".into(),
        },
        r#"{"checkpoint_key":"gw","checkpoint_vkey":"gw+01020304+AQ","instance":"i-1","settings":{"PORT":8080,"TLS":false},"settings_fingerprint":"ab12","version":"0.1.0"}"#,
    );
}

#[test]
fn login_started_has_device_fields_on_cli_logins_only() {
    pinned(
        &LoginStarted {
            login_id: id(1),
            channel: "web".into(),
            device_id: None,
            device_name: None,
            device_os: None,
            client_version: None,
        },
        r#"{"channel":"web","login_id":"00000000-0000-0000-0000-000000000001"}"#,
    );
    pinned(
        &LoginStarted {
            login_id: id(1),
            channel: "cli".into(),
            device_id: Some(None),
            device_name: Some(Some("laptop".into())),
            device_os: Some(None),
            client_version: Some(Some("3.19".into())),
        },
        r#"{"channel":"cli","client_version":"3.19","device_id":null,"device_name":"laptop","device_os":null,"login_id":"00000000-0000-0000-0000-000000000001"}"#,
    );
}

#[test]
fn login_succeeded() {
    pinned(
        &LoginSucceeded {
            login_id: id(1),
            channel: "cli".into(),
            email: "a@example.com".into(),
            user_id: id(3),
            session_id: id(2),
            mfa_verified: false,
        },
        r#"{"channel":"cli","email":"a@example.com","login_id":"00000000-0000-0000-0000-000000000001","mfa_verified":false,"session_id":"00000000-0000-0000-0000-000000000002","user_id":"00000000-0000-0000-0000-000000000003"}"#,
    );
}

#[test]
fn login_failed_keeps_its_nulls() {
    pinned(
        &LoginFailed {
            login_id: None,
            channel: "web".into(),
            reason: "invalid_state".into(),
            detail: None,
            email: None,
        },
        r#"{"channel":"web","detail":null,"email":null,"login_id":null,"reason":"invalid_state"}"#,
    );
    pinned(
        &LoginFailed {
            login_id: Some(id(1)),
            channel: "cli".into(),
            reason: "invalid_id_token".into(),
            detail: Some("audience".into()),
            email: Some("a@example.com".into()),
        },
        r#"{"channel":"cli","detail":"audience","email":"a@example.com","login_id":"00000000-0000-0000-0000-000000000001","reason":"invalid_id_token"}"#,
    );
}

#[test]
fn logout() {
    pinned(
        &Logout {
            session_id: id(2),
            channel: "web".into(),
        },
        r#"{"channel":"web","session_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn session_created() {
    pinned(
        &SessionCreated {
            session_id: id(2),
            user_id: id(3),
            email: "a@example.com".into(),
            channel: "cli".into(),
            token_sha256: "ab".into(),
            device_id: Some("d1".into()),
            device_name: None,
            device_os: None,
            client_version: None,
            expires_at: "2027-01-01T00:00:00Z".into(),
        },
        r#"{"channel":"cli","client_version":null,"device_id":"d1","device_name":null,"device_os":null,"email":"a@example.com","expires_at":"2027-01-01T00:00:00Z","session_id":"00000000-0000-0000-0000-000000000002","token_sha256":"ab","user_id":"00000000-0000-0000-0000-000000000003"}"#,
    );
}

#[test]
fn session_revoked() {
    pinned(
        &SessionRevoked {
            session_id: id(2),
            user_id: id(3),
            email: "a@example.com".into(),
            reason: "logout".into(),
        },
        r#"{"email":"a@example.com","reason":"logout","session_id":"00000000-0000-0000-0000-000000000002","user_id":"00000000-0000-0000-0000-000000000003"}"#,
    );
}

#[test]
fn rate_limit_exceeded_in_both_scopes() {
    pinned(
        &RateLimitExceeded::ProxyAuthFailures(ProxyAuthFailures {
            address: "192.0.2.1".into(),
            window_start: Some("2026-12-01T10:00:00Z".into()),
            window_seconds: 60,
            limit: 10,
            failures: 10,
            refused: 3,
        }),
        r#"{"address":"192.0.2.1","failures":10,"limit":10,"refused":3,"scope":"rack_proxy_authentication","window_seconds":60,"window_start":"2026-12-01T10:00:00Z"}"#,
    );
    pinned(
        &RateLimitExceeded::SignInRate(SignInRate {
            path: "/api/v1/auth/web/login".into(),
            limit_per_second: 10,
            burst: 20,
        }),
        r#"{"burst":20,"limit_per_second":10,"path":"/api/v1/auth/web/login","scope":"auth"}"#,
    );
}

#[test]
fn anonymous_events_aggregated() {
    pinned(
        &AnonymousEventsAggregated {
            window_start: "2026-12-01T10:00:00Z".into(),
            window_seconds: 60,
            per_address_limit: 20,
            global_limit: 300,
            counted: BTreeMap::from([
                ("auth.login.started".to_owned(), 580),
                ("rate_limit.exceeded".to_owned(), 2),
            ]),
            addresses: 2,
            top_addresses: vec![
                AddressCount {
                    address: "192.0.2.1".into(),
                    count: 570,
                },
                AddressCount {
                    address: "2001:db8::".into(),
                    count: 12,
                },
            ],
        },
        r#"{"addresses":2,"counted":{"auth.login.started":580,"rate_limit.exceeded":2},"global_limit":300,"per_address_limit":20,"top_addresses":[{"address":"192.0.2.1","count":570},{"address":"2001:db8::","count":12}],"window_seconds":60,"window_start":"2026-12-01T10:00:00Z"}"#,
    );
}

#[test]
fn user_events() {
    pinned(
        &UserCreated {
            user_id: id(3),
            email: "a@example.com".into(),
            name: None,
            role: "admin".into(),
        },
        r#"{"email":"a@example.com","name":null,"role":"admin","user_id":"00000000-0000-0000-0000-000000000003"}"#,
    );
    pinned(
        &UserRoleChanged {
            user_id: id(3),
            email: "a@example.com".into(),
            role: "deployer".into(),
            previous_role: "viewer".into(),
        },
        r#"{"email":"a@example.com","previous_role":"viewer","role":"deployer","user_id":"00000000-0000-0000-0000-000000000003"}"#,
    );
    pinned(
        &UserDisabled {
            user_id: id(3),
            email: "a@example.com".into(),
            reason: None,
        },
        r#"{"email":"a@example.com","reason":null,"user_id":"00000000-0000-0000-0000-000000000003"}"#,
    );
}

#[test]
fn api_token_events() {
    pinned(
        &ApiTokenCreated {
            token_id: id(4),
            name: "ci".into(),
            token_sha256: "ab".into(),
            role: "deployer".into(),
            user_id: None,
            user_email: None,
            expires_at: None,
        },
        r#"{"expires_at":null,"name":"ci","role":"deployer","token_id":"00000000-0000-0000-0000-000000000004","token_sha256":"ab","user_email":null,"user_id":null}"#,
    );
    pinned(
        &ApiTokenRevoked {
            token_id: id(4),
            name: "ci".into(),
            reason: Some("rotated".into()),
        },
        r#"{"name":"ci","reason":"rotated","token_id":"00000000-0000-0000-0000-000000000004"}"#,
    );
}

fn allowed_request() -> ProxyRequest {
    ProxyRequest {
        request_id: "r1".into(),
        rack: "prod".into(),
        method: "GET".into(),
        path: "/apps".into(),
        route: Some("AppList".into()),
        permission: Some("convox:app:list".into()),
        decision: Decision::Allow,
        reason: "convox:app:list allowed for role viewer".into(),
        websocket: false,
        params: json!({}),
        env_change: None,
        command: None,
        client_request_id: None,
        status: None,
        error: None,
        fault: None,
        delivered: None,
    }
}

#[test]
fn proxy_request_leaves_out_what_does_not_apply() {
    pinned(
        &allowed_request(),
        r#"{"decision":"allow","method":"GET","params":{},"path":"/apps","permission":"convox:app:list","rack":"prod","reason":"convox:app:list allowed for role viewer","request_id":"r1","route":"AppList","websocket":false}"#,
    );
    pinned(
        &ProxyRequest {
            method: "POST".into(),
            path: "/apps/web/environment".into(),
            route: Some("EnvironmentSet".into()),
            permission: Some("convox:env:set".into()),
            params: json!({"query": {"replace": "true"}}),
            env_change: Some(EnvChange::Keys {
                added: vec!["NEW".into()],
                removed: vec![],
                changed: vec!["OLD".into()],
            }),
            client_request_id: Some("c1".into()),
            ..allowed_request()
        },
        r#"{"client_request_id":"c1","decision":"allow","env_change":{"added":["NEW"],"changed":["OLD"],"removed":[]},"method":"POST","params":{"query":{"replace":"true"}},"path":"/apps/web/environment","permission":"convox:env:set","rack":"prod","reason":"convox:app:list allowed for role viewer","request_id":"r1","route":"EnvironmentSet","websocket":false}"#,
    );
    pinned(
        &ProxyRequest {
            env_change: Some(EnvChange::Unreadable {
                error: "the current env could not be read".into(),
                keys: vec!["A".into()],
            }),
            ..allowed_request()
        },
        r#"{"decision":"allow","env_change":{"error":"the current env could not be read","keys":["A"]},"method":"GET","params":{},"path":"/apps","permission":"convox:app:list","rack":"prod","reason":"convox:app:list allowed for role viewer","request_id":"r1","route":"AppList","websocket":false}"#,
    );
}

#[test]
fn env_changes_round_trip_as_their_own_variant() {
    for change in [
        EnvChange::Requested {
            keys: vec!["A".into()],
        },
        EnvChange::Unreadable {
            error: "e".into(),
            keys: vec!["A".into()],
        },
        EnvChange::Keys {
            added: vec![],
            removed: vec!["B".into()],
            changed: vec![],
        },
    ] {
        let text = serde_json::to_string(&change).unwrap();
        let back: EnvChange = serde_json::from_str(&text).unwrap();
        assert_eq!(back, change, "{text}");
    }
    pinned(
        &ProxyResponse {
            env_change: Some(EnvChange::Keys {
                added: vec!["NEW".into()],
                removed: vec![],
                changed: vec![],
            }),
            ..plain_response()
        },
        r#"{"bytes_in":0,"bytes_out":12,"env_change":{"added":["NEW"],"changed":[],"removed":[]},"kind":"http","latency_us":1234,"request_id":"r1","status":200}"#,
    );
}

#[test]
fn proxy_request_refusals() {
    pinned(
        &ProxyRequest {
            path: "/nope".into(),
            route: None,
            permission: None,
            decision: Decision::Deny,
            reason: "not found".into(),
            params: serde_json::Value::Null,
            status: Some(404),
            error: Some("unknown_route".into()),
            fault: Some("client".into()),
            ..allowed_request()
        },
        r#"{"decision":"deny","error":"unknown_route","fault":"client","method":"GET","params":null,"path":"/nope","permission":null,"rack":"prod","reason":"not found","request_id":"r1","route":null,"status":404,"websocket":false}"#,
    );
    pinned(
        &ProxyRequest {
            route: Some("ProcessExec".into()),
            permission: Some("convox:process:exec".into()),
            decision: Decision::Deny,
            reason: "forbidden".into(),
            websocket: true,
            command: Some("bash".into()),
            status: Some(403),
            error: Some("forbidden".into()),
            fault: Some("client".into()),
            delivered: Some("websocket_error_frame".into()),
            ..allowed_request()
        },
        r#"{"command":"bash","decision":"deny","delivered":"websocket_error_frame","error":"forbidden","fault":"client","method":"GET","params":{},"path":"/apps","permission":"convox:process:exec","rack":"prod","reason":"forbidden","request_id":"r1","route":"ProcessExec","status":403,"websocket":true}"#,
    );
}

fn plain_response() -> ProxyResponse {
    ProxyResponse {
        request_id: "r1".into(),
        status: 200,
        latency_us: 1234,
        bytes_in: 0,
        bytes_out: 12,
        kind: "http".into(),
        request_seq: None,
        duration_us: None,
        closed_by: None,
        closed_reason: None,
        frames_in: None,
        frames_out: None,
        rack_request_id: None,
        upstream_error: None,
        env_change: None,
    }
}

#[test]
fn proxy_response() {
    pinned(
        &plain_response(),
        r#"{"bytes_in":0,"bytes_out":12,"kind":"http","latency_us":1234,"request_id":"r1","status":200}"#,
    );
    pinned(
        &ProxyResponse {
            status: 101,
            kind: "websocket".into(),
            request_seq: Some(7),
            duration_us: Some(99),
            closed_by: Some("error".into()),
            frames_in: Some(3),
            frames_out: Some(4),
            rack_request_id: Some("rack-1".into()),
            upstream_error: Some(UpstreamError {
                code: "websocket_error".into(),
                detail: "reset".into(),
            }),
            ..plain_response()
        },
        r#"{"bytes_in":0,"bytes_out":12,"closed_by":"error","duration_us":99,"frames_in":3,"frames_out":4,"kind":"websocket","latency_us":1234,"rack_request_id":"rack-1","request_id":"r1","request_seq":7,"status":101,"upstream_error":{"code":"websocket_error","detail":"reset"}}"#,
    );
}

#[test]
fn checkpoint_created() {
    pinned(
        &CheckpointCreated {
            size: 10,
            root: "AAAA".into(),
            head: "ab".into(),
            key: "gw".into(),
            note: "rack-gateway/c\n10\nAAAA\nhead ab\n\n— gw x\n".into(),
        },
        r#"{"head":"ab","key":"gw","note":"rack-gateway/c\n10\nAAAA\nhead ab\n\n— gw x\n","root":"AAAA","size":10}"#,
    );
}

#[test]
fn archive_shipped() {
    pinned(
        &ArchiveShipped {
            bucket: "b".into(),
            key: "p/c/segments/1-2.jsonl".into(),
            first: 1,
            last: 2,
            sha256: "ab".into(),
            bytes: 100,
            checkpoint_size: 2,
            checkpoint_key: "p/c/checkpoints/2.note".into(),
            lock_mode: None,
            retain_until: None,
            recovered: false,
        },
        r#"{"bucket":"b","bytes":100,"checkpoint_key":"p/c/checkpoints/2.note","checkpoint_size":2,"first":1,"key":"p/c/segments/1-2.jsonl","last":2,"lock_mode":null,"recovered":false,"retain_until":null,"sha256":"ab"}"#,
    );
}

#[test]
fn audit_exported() {
    pinned(
        &AuditExported {
            via: "cli".into(),
            format: "directory".into(),
            requested_from: 1,
            requested_to: None,
            first_seq: 1,
            last_seq: 20,
            start_checkpoint: 0,
        },
        r#"{"first_seq":1,"format":"directory","last_seq":20,"requested_from":1,"requested_to":null,"start_checkpoint":0,"via":"cli"}"#,
    );
}

#[test]
fn append_in_doubt() {
    pinned(
        &AppendInDoubt::new(vec![CommittedButRefused {
            seq: 7,
            id: "0190".into(),
            event_type: "proxy.request".into(),
        }]),
        r#"{"committed_but_refused":[{"id":"0190","seq":7,"type":"proxy.request"}],"note":"these events committed although the append timed out for their callers; the actions they describe were refused"}"#,
    );
}

#[test]
fn every_type_once_with_fields() {
    let mut names: Vec<&str> = TYPES.iter().map(|t| t.name).collect();
    assert_eq!(names.len(), 35);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), TYPES.len(), "a type is listed twice");
    for t in TYPES {
        assert!(!t.fields().is_empty(), "{} has no fields", t.name);
    }
    assert_eq!(
        <RateLimitExceeded as EventPayload>::fields(),
        [
            "scope",
            "address",
            "window_start",
            "window_seconds",
            "limit",
            "failures",
            "refused",
            "path",
            "limit_per_second",
            "burst"
        ]
    );
}

#[test]
fn which_types_change_state() {
    let changing = |effect| {
        TYPES
            .iter()
            .filter(|t| t.effect == effect)
            .map(|t| t.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        changing(Effect::Projection),
        [
            "session.created",
            "session.revoked",
            "user.created",
            "user.role_changed",
            "user.disabled",
            "api_token.created",
            "api_token.revoked",
            "mfa.method.enrolled",
            "mfa.method.renamed",
            "mfa.method.removed",
            "mfa.preferred_method.set",
            "mfa.verification.succeeded",
            "mfa.backup_codes.generated",
            "mfa.backup_code.used",
            "mfa.trusted_device.trusted",
            "mfa.trusted_device.revoked",
            "mfa.webauthn.counter_regressed",
            "user.locked",
            "user.unlocked"
        ]
    );
    assert_eq!(
        bookkeeping_types(),
        ["checkpoint.created", "archive.shipped"]
    );
    assert_eq!(effect_of("proxy.request"), Effect::Record);
    assert_eq!(effect_of("no.such_type"), Effect::Record);
    assert!(Effect::Projection.changes_state() && Effect::Bookkeeping.changes_state());
    assert!(!Effect::Record.changes_state());
}

/// `docs/events.md` §6 as (type, effect, fields), in its order.
fn documented_types(doc: &str) -> Vec<(String, String, Vec<String>)> {
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("6. "))
        .expect("docs/events.md has a section 6 (event types)");
    let mut types = Vec::new();
    for block in section.split("\n### ").skip(1) {
        let mut lines = block.lines();
        let heading = lines.next().unwrap_or_default();
        let name = heading.trim().trim_matches('`').to_owned();
        let mut effect = String::new();
        let mut fields = Vec::new();
        for line in lines {
            if let Some(rest) = line.strip_prefix("Effect: ") {
                effect = rest
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            } else if let Some(row) = line.strip_prefix("| `") {
                if let Some((field, _)) = row.split_once('`') {
                    fields.push(field.to_owned());
                }
            }
        }
        types.push((name, effect, fields));
    }
    types
}

fn effect_word(effect: Effect) -> &'static str {
    match effect {
        Effect::Record => "record",
        Effect::Projection => "projection",
        Effect::Bookkeeping => "bookkeeping",
    }
}

/// Where `doc` (§6 of `docs/events.md`) and the catalogue disagree: a type on
/// one side only, a field missing on either side, another effect, another order.
fn disagreements(doc: &str) -> Vec<String> {
    let documented = documented_types(doc);
    let mut problems = Vec::new();
    for t in TYPES {
        let Some((_, effect, fields)) = documented.iter().find(|(name, ..)| name == t.name) else {
            problems.push(format!(
                "{}: in the catalogue, not in docs/events.md",
                t.name
            ));
            continue;
        };
        if effect != effect_word(t.effect) {
            problems.push(format!(
                "{}: the docs say effect {effect:?}, the catalogue {:?}",
                t.name,
                effect_word(t.effect)
            ));
        }
        let declared = t.fields();
        for field in &declared {
            if !fields.iter().any(|f| f == field) {
                problems.push(format!("{}: field {field} is not documented", t.name));
            }
        }
        for field in fields {
            if !declared.contains(&field.as_str()) {
                problems.push(format!(
                    "{}: documented field {field} is not in the payload",
                    t.name
                ));
            }
        }
    }
    for (name, ..) in &documented {
        if lookup(name).is_none() {
            problems.push(format!("{name}: in docs/events.md, not in the catalogue"));
        }
    }
    let order: Vec<&str> = documented.iter().map(|(name, ..)| name.as_str()).collect();
    let catalogue: Vec<&str> = TYPES.iter().map(|t| t.name).collect();
    if problems.is_empty() && order != catalogue {
        problems.push(format!(
            "docs/events.md lists the types as {order:?}, the catalogue as {catalogue:?}"
        ));
    }
    problems
}

#[test]
fn docs_events_md_lists_every_type_and_field_of_the_catalogue() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md");
    let doc = std::fs::read_to_string(path).expect("read docs/events.md");
    let problems = disagreements(&doc);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_docs_check_finds_each_kind_of_disagreement() {
    let doc = "# x\n\n## 6. Event types\n\n### `auth.logout`\n\nEffect: projection.\n\n\
               | field | type | meaning |\n|---|---|---|\n| `session_id` | string | x |\n| `extra` | string | x |\n\n\
               ### `no.such`\n\nEffect: record.\n\n## 7. Next\n\n### `ignored`\n";
    let problems = disagreements(doc);
    let expect = [
        "gateway.started: in the catalogue, not in docs/events.md",
        "auth.logout: the docs say effect \"projection\", the catalogue \"record\"",
        "auth.logout: field channel is not documented",
        "auth.logout: documented field extra is not in the payload",
        "no.such: in docs/events.md, not in the catalogue",
    ];
    for line in expect {
        assert!(
            problems.iter().any(|p| p == line),
            "{line:?} not in {problems:#?}"
        );
    }
    assert!(
        !problems.iter().any(|p| p.contains("ignored")),
        "section 7 is not read"
    );
}

// --- mfa ---

#[test]
fn mfa_method_enrolled() {
    pinned(
        &MfaMethodEnrolled {
            method_id: id(1),
            user_id: id(2),
            email: "a@example.com".into(),
            kind: "totp".into(),
            label: "Phone".into(),
            cli_compatible: true,
            fingerprint: "0a1b2c3d4e5f6071".into(),
        },
        r#"{"cli_compatible":true,"email":"a@example.com","fingerprint":"0a1b2c3d4e5f6071","kind":"totp","label":"Phone","method_id":"00000000-0000-0000-0000-000000000001","user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn mfa_method_renamed() {
    pinned(
        &MfaMethodRenamed {
            method_id: id(1),
            user_id: id(2),
            label: "Work phone".into(),
            previous_label: "Phone".into(),
        },
        r#"{"label":"Work phone","method_id":"00000000-0000-0000-0000-000000000001","previous_label":"Phone","user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn mfa_method_removed() {
    pinned(
        &MfaMethodRemoved {
            method_id: id(1),
            user_id: id(2),
            kind: "totp".into(),
            label: "Phone".into(),
            reason: "owner".into(),
        },
        r#"{"kind":"totp","label":"Phone","method_id":"00000000-0000-0000-0000-000000000001","reason":"owner","user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn mfa_preferred_method_set() {
    pinned(
        &MfaPreferredMethodSet {
            user_id: id(2),
            method_id: Some(id(1)),
        },
        r#"{"method_id":"00000000-0000-0000-0000-000000000001","user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn mfa_verification_succeeded() {
    pinned(
        &MfaVerificationSucceeded {
            user_id: id(2),
            email: "a@example.com".into(),
            session_id: Some(id(3)),
            method_id: Some(id(1)),
            kind: "totp".into(),
            purpose: "step_up".into(),
            channel: "proxy".into(),
            device: None,
            verifies_session: false,
            opens_step_up: true,
        },
        r#"{"channel":"proxy","device":null,"email":"a@example.com","kind":"totp","method_id":"00000000-0000-0000-0000-000000000001","opens_step_up":true,"purpose":"step_up","session_id":"00000000-0000-0000-0000-000000000003","user_id":"00000000-0000-0000-0000-000000000002","verifies_session":false}"#,
    );
}

#[test]
fn mfa_verification_failed() {
    pinned(
        &MfaVerificationFailed {
            user_id: id(2),
            email: "a@example.com".into(),
            session_id: None,
            method_id: None,
            kind: None,
            purpose: "login".into(),
            channel: "cli".into(),
            device: Some("laptop".into()),
            reason: "invalid_code".into(),
            recent_failures: 3,
        },
        r#"{"channel":"cli","device":"laptop","email":"a@example.com","kind":null,"method_id":null,"purpose":"login","reason":"invalid_code","recent_failures":3,"session_id":null,"user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn mfa_backup_codes_generated() {
    pinned(
        &MfaBackupCodesGenerated {
            user_id: id(2),
            set_id: id(4),
            code_hmacs: vec!["ab".into(), "cd".into()],
        },
        r#"{"code_hmacs":["ab","cd"],"set_id":"00000000-0000-0000-0000-000000000004","user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn mfa_backup_code_used() {
    pinned(
        &MfaBackupCodeUsed {
            user_id: id(2),
            set_id: id(4),
            index: 1,
            remaining: 9,
            session_id: Some(id(3)),
            purpose: "login".into(),
            channel: "web".into(),
        },
        r#"{"channel":"web","index":1,"purpose":"login","remaining":9,"session_id":"00000000-0000-0000-0000-000000000003","set_id":"00000000-0000-0000-0000-000000000004","user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn mfa_trusted_device_trusted() {
    pinned(
        &MfaTrustedDeviceTrusted {
            device_id: id(5),
            user_id: id(2),
            token_sha256: "e3b0".into(),
            label: None,
            expires_at: "2026-01-31T00:00:00Z".into(),
        },
        r#"{"device_id":"00000000-0000-0000-0000-000000000005","expires_at":"2026-01-31T00:00:00Z","label":null,"token_sha256":"e3b0","user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn mfa_trusted_device_revoked() {
    pinned(
        &MfaTrustedDeviceRevoked {
            device_id: id(5),
            user_id: id(2),
            reason: "owner".into(),
        },
        r#"{"device_id":"00000000-0000-0000-0000-000000000005","reason":"owner","user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn mfa_webauthn_counter_regressed() {
    pinned(
        &MfaWebauthnCounterRegressed {
            method_id: id(1),
            user_id: id(2),
            stored_counter: 7,
            presented_counter: 3,
        },
        r#"{"method_id":"00000000-0000-0000-0000-000000000001","presented_counter":3,"stored_counter":7,"user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn user_locked() {
    pinned(
        &UserLocked {
            user_id: id(2),
            email: "a@example.com".into(),
            reason: "mfa_failures".into(),
            failures: 10,
        },
        r#"{"email":"a@example.com","failures":10,"reason":"mfa_failures","user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn user_unlocked() {
    pinned(
        &UserUnlocked {
            user_id: id(2),
            email: "a@example.com".into(),
        },
        r#"{"email":"a@example.com","user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}

#[test]
fn security_alert() {
    pinned(
        &SecurityAlert {
            alert: "webauthn_counter_regression".into(),
            user_id: Some(id(2)),
            email: None,
            method_id: Some(id(1)),
            detail: "signature counter went from 7 to 3".into(),
        },
        r#"{"alert":"webauthn_counter_regression","detail":"signature counter went from 7 to 3","email":null,"method_id":"00000000-0000-0000-0000-000000000001","user_id":"00000000-0000-0000-0000-000000000002"}"#,
    );
}
