use super::*;

fn ok(raw: &str) -> String {
    normalize(raw).unwrap_or_else(|e| panic!("{raw}: {e}")).path
}

fn err(raw: &str) -> PathError {
    match normalize(raw) {
        Ok(p) => panic!("{raw} was accepted as {}", p.path),
        Err(e) => e,
    }
}

#[test]
fn ordinary_paths_pass_unchanged() {
    for p in [
        "/apps",
        "/apps/myapp/processes",
        "/apps/myapp/processes/web-5b7c9d-x2x4z/exec",
        "/apps/myapp/objects/tmp/5f2b3c4d5e6f7a8b9c0d1e2f3a4b5c.tgz",
        "/apps/myapp/builds/BABCDEF.tgz",
        "/registries/registry.example.com:5000",
        "/v2/myapp/manifests/sha256:abc",
        "/system",
    ] {
        assert_eq!(ok(p), p);
    }
    let n = normalize("/apps/my-app/releases").unwrap();
    assert_eq!(n.segments, ["apps", "my-app", "releases"]);
    assert_eq!(ok("/"), "/");
    assert!(normalize("/").unwrap().segments.is_empty());
}

#[test]
fn harmless_escapes_are_decoded_and_forwarded_plain() {
    assert_eq!(ok("/app%73/my%61pp"), "/apps/myapp");
    assert_eq!(ok("/registries/host%3A5000"), "/registries/host:5000");
}

#[test]
fn a_leading_double_slash_is_folded_once() {
    // What the CLI sends when RACK_URL ends in '/'.
    assert_eq!(ok("//apps"), "/apps");
    assert_eq!(ok("//apps/myapp/processes"), "/apps/myapp/processes");
    assert_eq!(err("///apps"), PathError::EmptySegment);
    assert_eq!(err("/apps//myapp"), PathError::EmptySegment);
    assert_eq!(err("/apps/"), PathError::EmptySegment);
    assert_eq!(ok("//"), "/");
}

#[test]
fn dot_segments_in_every_spelling_are_refused() {
    for raw in [
        "/apps/../system",
        "/apps/./x",
        "/apps/myapp/..",
        "/apps/%2e%2e/system",
        "/apps/%2E%2e/system",
        "/apps/%2e%2E/system",
        "/apps/.%2e/system",
        "/apps/%2e./system",
        "/apps/%2e/system",
        "/apps/.../system",
    ] {
        assert_eq!(err(raw), PathError::DotSegment, "{raw}");
    }
    assert_eq!(
        err("/apps/myapp/objects/tmp/..%2fx"),
        PathError::EncodedSlash
    );
    assert_eq!(err("/apps/myapp/objects/a..b"), PathError::DotDot);
    assert_eq!(err("/apps/myapp./processes"), PathError::TrailingDot);
    assert_eq!(err("/apps/myapp%2e/processes"), PathError::TrailingDot);
}

#[test]
fn encoded_slashes_and_backslashes_are_refused() {
    assert_eq!(err("/apps/my%2fapp"), PathError::EncodedSlash);
    assert_eq!(err("/apps/my%2Fapp"), PathError::EncodedSlash);
    assert_eq!(err("/apps/my\\app"), PathError::Backslash);
    assert_eq!(err("/apps/my%5capp"), PathError::Backslash);
    assert_eq!(err("/apps/%5c..%5csystem"), PathError::Backslash);
}

#[test]
fn double_encoding_is_refused() {
    assert_eq!(err("/apps/%252e%252e/system"), PathError::DoubleEncoding);
    assert_eq!(err("/apps/my%252fapp"), PathError::DoubleEncoding);
}

#[test]
fn malformed_escapes_are_refused() {
    assert_eq!(err("/apps/%zz"), PathError::BadEncoding);
    assert_eq!(err("/apps/%2"), PathError::BadEncoding);
    assert_eq!(err("/apps/%"), PathError::BadEncoding);
}

#[test]
fn semicolons_controls_and_odd_characters_are_refused() {
    assert_eq!(err("/apps;x=1"), PathError::Semicolon);
    assert_eq!(err("/apps/myapp;/processes"), PathError::Semicolon);
    assert_eq!(err("/apps/%3b"), PathError::Semicolon);
    assert_eq!(err("/apps/a%00b"), PathError::ControlChar);
    assert_eq!(err("/apps/a%0ab"), PathError::ControlChar);
    assert_eq!(err("/apps/a\tb"), PathError::ControlChar);
    assert_eq!(err("/apps/a%20b"), PathError::Disallowed(' '));
    assert_eq!(err("/apps/a%3fb"), PathError::Disallowed('?'));
    assert_eq!(err("/apps/a%23b"), PathError::Disallowed('#'));
    assert_eq!(err("/apps/a\"b"), PathError::Disallowed('"'));
    assert_eq!(err("apps"), PathError::NotAbsolute);
    assert_eq!(err(""), PathError::NotAbsolute);
    assert_eq!(err(&format!("/{}", "a".repeat(5000))), PathError::TooLong);
}

#[test]
fn unicode_look_alikes_are_refused() {
    // Fullwidth solidus, division slash, fullwidth full stop, one-dot leader.
    for raw in [
        "/apps/%EF%BC%8F",
        "/apps/%E2%88%95system",
        "/apps/%EF%BC%8E%EF%BC%8E/system",
        "/apps/%E2%80%A4%E2%80%A4",
        "/apps/\u{ff0f}system",
        "/apps/caf%C3%A9",
        "/apps/%ff",
    ] {
        assert_eq!(err(raw), PathError::NonAscii, "{raw}");
    }
}

#[test]
fn every_error_is_a_400() {
    assert_eq!(
        PathError::DotSegment.status(),
        http::StatusCode::BAD_REQUEST
    );
}
