//! Calling the gateway's JSON API and pages as somebody: [`TestApp::as_`]
//! (a Bearer secret), [`TestApp::with_cookie`] (a browser's session cookie),
//! [`TestApp::anonymous`]; a method per endpoint, each answering an
//! [`Answer`]. Also a raw HTTP/1.1 client for requests no URL library would
//! send as written, and readers for the headers tests check.

use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::app::TestApp;

/// A JSON API answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The JSON body (`null` when there is none).
    pub body: Value,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.json().await.unwrap_or(Value::Null),
        }
    }

    /// `X-Error-Reason`, or "".
    pub fn reason(&self) -> String {
        error_reason(&self.headers)
    }
}

enum Credential {
    None,
    Bearer(String),
    Cookie {
        session: String,
        csrf: Option<String>,
    },
}

/// Somebody calling the gateway; see [`TestApp::as_`].
pub struct Caller<'a> {
    app: &'a TestApp,
    credential: Credential,
}

impl TestApp {
    /// Calls with `Authorization: Bearer <secret>` (a session or an API token).
    pub fn as_(&self, secret: &str) -> Caller<'_> {
        Caller {
            app: self,
            credential: Credential::Bearer(secret.to_owned()),
        }
    }

    /// Calls as a browser does: the `session_token` cookie, and no CSRF token unless [`Caller::csrf`].
    pub fn with_cookie(&self, session: &str) -> Caller<'_> {
        Caller {
            app: self,
            credential: Credential::Cookie {
                session: session.to_owned(),
                csrf: None,
            },
        }
    }

    /// Calls with no credential at all.
    pub fn anonymous(&self) -> Caller<'_> {
        Caller {
            app: self,
            credential: Credential::None,
        }
    }
}

impl Caller<'_> {
    /// Also send `X-CSRF-Token` (cookie callers).
    pub fn csrf(mut self, token: &str) -> Self {
        if let Credential::Cookie { csrf, .. } = &mut self.credential {
            *csrf = Some(token.to_owned());
        }
        self
    }

    /// A request to `path` with this caller's credential, to finish and send.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.app.client.request(method, self.app.url(path));
        match &self.credential {
            Credential::None => request,
            Credential::Bearer(secret) => request.bearer_auth(secret),
            Credential::Cookie { session, csrf } => {
                let request = request.header("cookie", format!("session_token={session}"));
                match csrf {
                    Some(token) => request.header("x-csrf-token", token),
                    None => request,
                }
            }
        }
    }

    /// Any JSON API call, with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Answer::read(request.send().await.expect("the gateway answers")).await
    }

    /// A page (or any GET), as it came.
    pub async fn page(&self, path: &str) -> reqwest::Response {
        self.request(Method::GET, path)
            .send()
            .await
            .expect("the gateway answers")
    }

    /// `GET /api/v1/info`: who the credential is.
    pub async fn info(&self) -> Answer {
        self.call(Method::GET, "/api/v1/info", None).await
    }

    /// `POST /api/v1/auth/logout`.
    pub async fn logout(&self) -> Answer {
        self.call(Method::POST, "/api/v1/auth/logout", None).await
    }

    /// `GET /api/v1/users`.
    pub async fn users(&self) -> Answer {
        self.call(Method::GET, "/api/v1/users", None).await
    }

    /// `GET /api/v1/users/<email>`.
    pub async fn user(&self, email: &str) -> Answer {
        self.call(Method::GET, &format!("/api/v1/users/{email}"), None)
            .await
    }

    /// `POST /api/v1/users` with `user` as the body.
    pub async fn create_user(&self, user: Value) -> Answer {
        self.call(Method::POST, "/api/v1/users", Some(user)).await
    }

    /// `PUT /api/v1/users/<email>` with `change` as the body.
    pub async fn update_user(&self, email: &str, change: Value) -> Answer {
        self.call(Method::PUT, &format!("/api/v1/users/{email}"), Some(change))
            .await
    }

    /// `POST /api/v1/users/<email>/disable` with no reason.
    pub async fn disable_user(&self, email: &str) -> Answer {
        self.call(
            Method::POST,
            &format!("/api/v1/users/{email}/disable"),
            None,
        )
        .await
    }

    /// `POST /api/v1/users/<email>/disable` giving a reason.
    pub async fn disable_user_because(&self, email: &str, reason: &str) -> Answer {
        self.call(
            Method::POST,
            &format!("/api/v1/users/{email}/disable"),
            Some(json!({ "reason": reason })),
        )
        .await
    }

    /// `GET /api/v1/users/<email>/sessions`.
    pub async fn sessions_of(&self, email: &str) -> Answer {
        self.call(
            Method::GET,
            &format!("/api/v1/users/{email}/sessions"),
            None,
        )
        .await
    }

    /// `POST /api/v1/users/<email>/sessions/<id>/revoke`.
    pub async fn revoke_session(&self, email: &str, session_id: &str) -> Answer {
        let path = format!("/api/v1/users/{email}/sessions/{session_id}/revoke");
        self.call(Method::POST, &path, None).await
    }

    /// `POST /api/v1/users/<email>/sessions/revoke_all`.
    pub async fn revoke_all_sessions(&self, email: &str) -> Answer {
        let path = format!("/api/v1/users/{email}/sessions/revoke_all");
        self.call(Method::POST, &path, None).await
    }

    /// `POST /api/v1/api-tokens` with `token` as the body.
    pub async fn create_api_token(&self, token: Value) -> Answer {
        self.call(Method::POST, "/api/v1/api-tokens", Some(token))
            .await
    }

    /// `GET /api/v1/api-tokens`.
    pub async fn api_tokens(&self) -> Answer {
        self.call(Method::GET, "/api/v1/api-tokens", None).await
    }

    /// `GET /api/v1/api-tokens/<id>`.
    pub async fn api_token(&self, id: &str) -> Answer {
        self.call(Method::GET, &format!("/api/v1/api-tokens/{id}"), None)
            .await
    }

    /// `DELETE /api/v1/api-tokens/<id>`.
    pub async fn revoke_api_token(&self, id: &str) -> Answer {
        self.call(Method::DELETE, &format!("/api/v1/api-tokens/{id}"), None)
            .await
    }

    /// `POST /api/v1/auth/web/logout`, as the sign-out form sends it (with its `csrf_token` field, if given).
    pub async fn web_logout(&self, csrf_field: Option<&str>) -> reqwest::Response {
        let mut request = self.request(Method::POST, "/api/v1/auth/web/logout");
        if let Some(token) = csrf_field {
            request = request.form(&[("csrf_token", token)]);
        }
        request.send().await.expect("the gateway answers")
    }

    /// `GET /api/v1/audit/export?<query>`: the bundle as it came.
    pub async fn export_audit(&self, query: &str) -> reqwest::Response {
        self.page(&format!("/api/v1/audit/export?{query}")).await
    }
}

/// Every `Set-Cookie` header of a response.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// The `Set-Cookie` header that sets `name`, if any.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The value in a `Set-Cookie` header.
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on a {} response", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// `X-Error-Reason`, or "".
pub fn error_reason(headers: &HeaderMap) -> String {
    headers
        .get("x-error-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// An answer read by [`raw`].
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Send one HTTP/1.1 request exactly as written (method, target, headers),
/// with `Connection: close`, and read the answer. A `101` answer is returned
/// after its head (the connection is then dropped).
pub async fn raw(
    address: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let host = address.trim_start_matches("http://");
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(host))
            .await
            .expect("connect in time")
            .expect("connect");
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        request.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write body");
    let mut buffer = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        loop {
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                if buffer.starts_with(b"HTTP/1.1 101") {
                    buffer.truncate(end + 4);
                    break;
                }
                let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                let length = head.lines().find_map(|l| {
                    l.strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                });
                let body = buffer.len() - end - 4;
                if length.is_some_and(|l| body >= l)
                    || (head.contains("transfer-encoding: chunked")
                        && buffer.ends_with(b"0\r\n\r\n"))
                {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("answer in time");
    let end = find(&buffer, b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = buffer[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    RawResponse { status, head, body }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(data, b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}
