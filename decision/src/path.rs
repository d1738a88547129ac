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
mod tests;
