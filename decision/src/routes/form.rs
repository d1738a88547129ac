//! Go's form, read the way the rack reads it: which bodies are buffered,
//! which fields they hold, and the form (body, then query) every decision reads.

use super::{BodyFormat, Route};

/// Largest body the engine buffers for [`Route::inspect_form`] routes: Go's
/// own limit for url-encoded forms (`net/http` `maxFormSize`), so anything the
/// rack would read, we read too. Larger bodies are refused (413).
pub const FORM_BODY_LIMIT: usize = 10 << 20;

/// What the engine does with a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// Stream it to the rack unread.
    Stream,
    /// Read it whole (at most [`FORM_BODY_LIMIT`]), pass it to [`body_fields`].
    Buffer,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// 415: the rack would read form fields from this body that we cannot.
    #[error(
        "unsupported content type for this route: send an application/x-www-form-urlencoded form"
    )]
    UnsupportedMediaType,
    /// 415: a `Content-Type` with bytes outside printable ASCII. Go's
    /// `mime.ParseMediaType` lower-cases and trims it with Unicode rules
    /// (`applİcation/…` and a trailing no-break space still name a form), so
    /// on a route whose form decides, we refuse what we cannot read the same way.
    #[error(
        "the Content-Type header is not printable ASCII: send application/x-www-form-urlencoded"
    )]
    UndecodableContentType,
    /// 400: several `Content-Type` headers. Go reads the first; a proxy in
    /// between may read another: on a route whose form decides, send one.
    #[error("more than one Content-Type header: send exactly one")]
    DuplicateContentType,
}

impl BodyError {
    pub fn status(&self) -> http::StatusCode {
        match self {
            BodyError::DuplicateContentType => http::StatusCode::BAD_REQUEST,
            BodyError::UnsupportedMediaType | BodyError::UndecodableContentType => {
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
        }
    }
}

/// The media type as Go's `mime.ParseMediaType` returns it: the part before
/// the first `;`, lower-cased and trimmed (parameters, even malformed, do not
/// change it: `net/http` parses the form whatever `ParseMediaType`'s error).
/// For the printable-ASCII values [`content_type`] lets through on form
/// routes, ASCII lower-casing and trimming are exactly Go's.
fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The request's `Content-Type`, as the body readers take it. On a route
/// whose form the decision reads ([`Route::inspect_form`]), a value the rack
/// could read differently is refused: several headers (400), or bytes
/// outside printable ASCII (415). Elsewhere the first value, lossily.
pub fn content_type(route: &Route, headers: &http::HeaderMap) -> Result<Option<String>, BodyError> {
    let mut values = headers.get_all(http::header::CONTENT_TYPE).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if !route.inspect_form {
        return Ok(Some(String::from_utf8_lossy(first.as_bytes()).into_owned()));
    }
    if values.next().is_some() {
        return Err(BodyError::DuplicateContentType);
    }
    let bytes = first.as_bytes();
    if !bytes
        .iter()
        .all(|b| *b == b'\t' || (0x20..0x7f).contains(b))
    {
        return Err(BodyError::UndecodableContentType);
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// Go's `net/http` reads a form from the body only for these methods
/// (`parsePostForm`); for any other, `r.Form` is the query alone.
fn method_reads_body_form(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH")
}

impl Route {
    /// Buffer or stream the body, from the route and the request's `Content-Type`.
    pub fn body_plan(&self, content_type: Option<&str>) -> Result<BodyPlan, BodyError> {
        let media = media_type(content_type);
        match self.body {
            BodyFormat::Form if media == "multipart/form-data" => {
                Err(BodyError::UnsupportedMediaType)
            }
            BodyFormat::Form | BodyFormat::EnvLines => Ok(BodyPlan::Buffer),
            BodyFormat::FormOrMultipart if media == "multipart/form-data" => Ok(BodyPlan::Stream),
            BodyFormat::FormOrMultipart => Ok(BodyPlan::Buffer),
            BodyFormat::None | BodyFormat::Raw | BodyFormat::Passthrough => Ok(BodyPlan::Stream),
        }
    }
}

/// The fields of a buffered body, as the rack reads them: a url-encoded form
/// is parsed (Go parses nothing else into the form); legacy env lines become
/// the one field `env`.
pub fn body_fields(
    route: &Route,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<(String, String)>, BodyError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    if route.body != BodyFormat::EnvLines && !method_reads_body_form(route.method) {
        return Ok(Vec::new());
    }
    match (route.body, media_type(content_type).as_str()) {
        (BodyFormat::EnvLines, _) => Ok(vec![(
            "env".to_owned(),
            String::from_utf8_lossy(body).into_owned(),
        )]),
        (_, "multipart/form-data") if route.body == BodyFormat::Form => {
            Err(BodyError::UnsupportedMediaType)
        }
        (BodyFormat::Form | BodyFormat::FormOrMultipart, "application/x-www-form-urlencoded") => {
            Ok(parse_urlencoded(body))
        }
        _ => Ok(Vec::new()),
    }
}

/// Go's `r.Form` for a request: body fields first, then the query's.
pub fn request_form(
    query: Option<&str>,
    body_fields: Option<&[(String, String)]>,
) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = body_fields.unwrap_or_default().to_vec();
    if let Some(q) = query {
        all.extend(parse_urlencoded(q.as_bytes()));
    }
    all
}

/// Go's `url.ParseQuery`, pair for pair: split on `&` only; a pair holding a
/// `;` anywhere, or a malformed `%` escape in its name or value, is skipped
/// (Go reports an error and `r.Form` goes on without it); `+` is a space.
/// Empty pairs are skipped; a pair without `=` is a name with an empty value.
/// Bytes that are not UTF-8 after unescaping are kept as U+FFFD.
pub(crate) fn parse_urlencoded(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty() && !pair.contains(&b';'))
        .filter_map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            Some((query_unescape(name)?, query_unescape(value)?))
        })
        .collect()
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; any other `%` fails.
fn query_unescape(bytes: &[u8]) -> Option<String> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let high = hex(*bytes.get(i + 1)?)?;
                let low = hex(*bytes.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}
/// A field's first value, as Go's `r.FormValue` reads it.
pub(super) fn first<'a>(form: Option<&'a [(String, String)]>, name: &str) -> Option<&'a str> {
    form?
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The field is present, even empty.
pub(super) fn has(form: Option<&[(String, String)]>, name: &str) -> bool {
    first(form, name).is_some()
}
