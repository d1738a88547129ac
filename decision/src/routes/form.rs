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
}

impl BodyError {
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE
    }
}

fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
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

pub(crate) fn parse_urlencoded(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
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
