//! Path normalisation for the rack proxy: one strict reading of the request
//! path, used both to choose the route and as the exact string forwarded.
//!
//! The rack's router (gorilla/mux with `SkipClean(true)`, no `UseEncodedPath`)
//! matches on Go's *decoded* `URL.Path` and never cleans it: `%2F` becomes a
//! real `/`, `..` stays a segment, `//` stays an empty segment. So we decode
//! once, refuse anything that could be read two ways, and forward the decoded
//! segments re-joined with `/`. Every character we let through is a plain
//! RFC 3986 `pchar` that needs no escaping, so the rack decodes our forwarded
//! path to exactly the segments we authorised.
//!
//! Refused (400, each with its own [`PathError`]):
//! - encoded slashes (`%2F`/`%2f`) and backslashes, literal or encoded;
//! - `.` and `..` segments, literal or encoded (`%2e%2e`, `.%2e`), any `..`
//!   inside a segment, and segments ending in `.` (the trailing-dot tricks:
//!   some resolvers and file systems drop a trailing dot);
//! - empty segments (`/a//b`) and a trailing slash — except one leading
//!   doubled slash, see below;
//! - an encoded `%` (`%25`): double encoding would be decoded again by
//!   anything that treats the value as a URL further down;
//! - `;` (path parameters), `?`, `#`, control characters and NUL;
//! - any non-ASCII byte: every name the rack accepts (apps, services, pids,
//!   object keys the CLI makes, registry hosts) is ASCII, and Unicode
//!   look-alikes of `/` and `.` (U+2215, U+FF0F, U+FF0E, U+2024) could be
//!   folded into the real characters by something downstream;
//! - characters outside the RFC 3986 `pchar` set (space, quotes, `<>`,
//!   `{}`, `|`, `^`, backtick, `[]`).
//!
//! **Leading `//`.** The real CLI glues the API path onto RACK_URL's path, so a
//! RACK_URL ending in `/` (`…/api/v1/rack-proxy/`) sends `//apps`. We fold that
//! one leading doubled slash into one: no route starts with an empty segment,
//! and we forward the folded path, so the fold can never change which route is
//! chosen or what the rack sees. Anything more (`///apps`, `/a//b`) is refused.

use percent_encoding::percent_decode_str;

/// Longest raw path accepted; the rack's own paths are far shorter.
pub const MAX_PATH_BYTES: usize = 4096;

/// A path that passed every check: what to match on and what to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath {
    /// The exact string to forward upstream, e.g. `/apps/myapp/processes`.
    pub path: String,
    /// The decoded segments (no empty ones).
    pub segments: Vec<String>,
}

/// Why a path was refused. Each maps to 400 with its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("invalid path: it must start with '/'")]
    NotAbsolute,
    #[error("invalid path: longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    #[error("invalid path: malformed percent-encoding")]
    BadEncoding,
    #[error("invalid path: encoded slash (%2F) is not allowed")]
    EncodedSlash,
    #[error("invalid path: backslash is not allowed")]
    Backslash,
    #[error("invalid path: encoded '%' (%25) is not allowed (double encoding)")]
    DoubleEncoding,
    #[error("invalid path: '.' and '..' segments are not allowed")]
    DotSegment,
    #[error("invalid path: '..' is not allowed")]
    DotDot,
    #[error("invalid path: a segment may not end with '.'")]
    TrailingDot,
    #[error("invalid path: empty segment ('//' or trailing '/')")]
    EmptySegment,
    #[error("invalid path: ';' path parameters are not allowed")]
    Semicolon,
    #[error("invalid path: control characters are not allowed")]
    ControlChar,
    #[error("invalid path: non-ASCII characters are not allowed")]
    NonAscii,
    #[error("invalid path: character {0:?} is not allowed")]
    Disallowed(char),
}

impl PathError {
    /// Every path error is the client's: 400.
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::BAD_REQUEST
    }
}

/// Characters a decoded segment may hold: RFC 3986 unreserved plus the
/// sub-delims and `:`/`@`, minus `;`. None needs escaping in a path.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '_'
                | '~'
                | '!'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | '='
                | ':'
                | '@'
        )
}

/// Normalise `raw`, the request path after the `/api/v1/rack-proxy` prefix,
/// exactly as received (percent-encoded, without the query).
pub fn normalize(raw: &str) -> Result<NormalizedPath, PathError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    // The one fold we allow: a leading "//" from a RACK_URL with a trailing slash.
    let body = match raw.strip_prefix("//") {
        Some(rest) if !rest.starts_with('/') => rest,
        _ => &raw[1..],
    };
    if body.is_empty() {
        return Ok(NormalizedPath {
            path: "/".to_owned(),
            segments: Vec::new(),
        });
    }
    let mut segments = Vec::new();
    for raw_segment in body.split('/') {
        segments.push(segment(raw_segment)?);
    }
    Ok(NormalizedPath {
        path: format!("/{}", segments.join("/")),
        segments,
    })
}

fn segment(raw: &str) -> Result<String, PathError> {
    if raw.is_empty() {
        return Err(PathError::EmptySegment);
    }
    check_escapes(raw)?;
    let bytes: Vec<u8> = percent_decode_str(raw).collect();
    if bytes.iter().any(|b| !b.is_ascii()) {
        return Err(PathError::NonAscii);
    }
    // All ASCII, so this is lossless.
    let decoded: String = bytes.iter().map(|&b| b as char).collect();
    for c in decoded.chars() {
        match c {
            '/' => return Err(PathError::EncodedSlash),
            '\\' => return Err(PathError::Backslash),
            '%' => return Err(PathError::DoubleEncoding),
            ';' => return Err(PathError::Semicolon),
            c if c.is_ascii_control() => return Err(PathError::ControlChar),
            c if !allowed(c) => return Err(PathError::Disallowed(c)),
            _ => {}
        }
    }
    if decoded.chars().all(|c| c == '.') {
        return Err(PathError::DotSegment);
    }
    if decoded.contains("..") {
        return Err(PathError::DotDot);
    }
    if decoded.ends_with('.') {
        return Err(PathError::TrailingDot);
    }
    Ok(decoded)
}

/// Every `%` must start a two-hex-digit escape (Go refuses the request otherwise).
fn check_escapes(raw: &str) -> Result<(), PathError> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadEncoding)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(PathError::BadEncoding);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
}
