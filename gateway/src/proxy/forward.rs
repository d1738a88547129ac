//! Forwarding one authorised HTTP request to the rack and relaying its reply.
//!
//! Headers pass through unchanged (the CLI's `Version` and option headers such
//! as `Command` or `Follow` are read by exact name on the rack) except:
//! hop-by-hop headers, the client's credentials and cookies, method-override
//! headers, and any client-supplied actor or request id. The gateway adds the
//! rack's Basic credentials, our `X-Request-Id`, and `Convox-Actor`.
//!
//! Bodies stream both ways in constant memory. Small JSON replies are read
//! whole (bounded) so `proxy.response` is committed before the client sees
//! the answer; downloads and proxied streams are relayed as they arrive and
//! recorded when they end.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};

use super::error::ProxyError;
use super::record::Exchange;
use super::upstream::{describe_reqwest_error, Rack};

/// Largest reply read whole before it is answered; longer ones are relayed as a stream.
pub const BUFFERED_REPLY_LIMIT: usize = 1 << 20;

/// Hop-by-hop headers (RFC 9110 §7.6.1) and their old companions.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Never forwarded to the rack: credentials, cookies, method overrides,
/// names the client could use to choose who the rack's audit log blames, the
/// client's own request id (ours replaces it), and its forwarding chain.
const STRIPPED_UPSTREAM: [&str; 18] = [
    "host",
    "authorization",
    "cookie",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "convox-actor",
    "x-convox-actor",
    "x-request-id",
    "x-mfa-totp",
    "x-mfa-webauthn",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "expect",
    "content-length",
];

/// Also dropped on websocket upgrades: the handshake is the gateway's own.
const STRIPPED_WEBSOCKET: [&str; 6] = [
    "origin",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "sec-websocket-accept",
];

/// Never relayed to the client: the rack's cookies and its auth challenge
/// (a 401 from the rack means the gateway's rack token is wrong, not the user's).
const STRIPPED_DOWNSTREAM: [&str; 2] = ["set-cookie", "www-authenticate"];

fn named_in_connection(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// The client's headers as the rack gets them (without what the gateway adds).
pub fn upstream_headers(client: &HeaderMap, websocket: bool) -> HeaderMap {
    let listed = named_in_connection(client);
    let mut out = HeaderMap::with_capacity(client.len());
    for (name, value) in client {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || STRIPPED_UPSTREAM.contains(&n)
            || decision::policy::STRIP_REQUEST_HEADERS.contains(&n)
            || listed.iter().any(|l| l == n)
            || (websocket && STRIPPED_WEBSOCKET.contains(&n))
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// What the gateway adds on every request to the rack.
pub fn add_gateway_headers(
    headers: &mut HeaderMap,
    rack: &Rack,
    request_id: &str,
    acting_as: Option<&str>,
) {
    headers.insert(header::AUTHORIZATION, rack.authorization().clone());
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
    // An email or token name from our own records; refuse anything a header cannot carry.
    if let Some(v) = acting_as.and_then(|a| HeaderValue::from_str(a).ok()) {
        headers.insert(HeaderName::from_static("convox-actor"), v);
    }
}

/// The rack's reply headers as the client gets them.
pub fn downstream_headers(rack: &HeaderMap) -> HeaderMap {
    let listed = named_in_connection(rack);
    let mut out = HeaderMap::with_capacity(rack.len());
    for (name, value) in rack {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || STRIPPED_DOWNSTREAM.contains(&n)
            || listed.iter().any(|l| l == n)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The request body to send.
pub enum OutgoingBody {
    /// Already read (an inspected form).
    Buffered(Bytes),
    /// Relayed as it arrives.
    Stream(Body),
}

/// How the reply body is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Read whole (up to [`BUFFERED_REPLY_LIMIT`]) before answering.
    Buffer,
    /// Relay as it arrives.
    Stream,
}

/// Counts bytes of a body stream, and notes whether the stream itself failed.
pub struct Counted<S> {
    inner: S,
    bytes: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
    /// A client body that sends nothing for this long is cut off.
    idle: std::time::Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl<S> Counted<S> {
    fn new(
        inner: S,
        bytes: Arc<AtomicU64>,
        failed: Arc<AtomicBool>,
        idle: std::time::Duration,
    ) -> Self {
        Counted {
            inner,
            bytes,
            failed,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl<S> Stream for Counted<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                self.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                let deadline = tokio::time::Instant::now() + self.idle;
                self.timer.as_mut().reset(deadline);
            }
            Poll::Ready(Some(Err(_))) => self.failed.store(true, Ordering::Relaxed),
            Poll::Pending => {
                if std::future::Future::poll(self.timer.as_mut(), cx).is_ready() {
                    self.failed.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client body stalled",
                    )))));
                }
            }
            Poll::Ready(None) => {}
        }
        polled
    }
}

/// How a relayed reply stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every byte went to the client.
    Complete,
    /// The rack's side broke off.
    RackFailed(String),
    /// The client went away (or the gateway stopped) before the end.
    Abandoned,
}

type EndHook = Box<dyn FnOnce(StreamEnd, u64) + Send>;

/// A reply relayed to the client as it arrives; tells `on_end` how it ended
/// (exactly once, also when dropped half-way) and how many bytes went out.
pub struct RelayedReply {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>,
    bytes: u64,
    on_end: Option<EndHook>,
}

impl RelayedReply {
    pub fn new(
        prefix: Option<Bytes>,
        rest: impl Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
        on_end: EndHook,
    ) -> RelayedReply {
        let inner: Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>> = match prefix
        {
            Some(prefix) if !prefix.is_empty() => {
                Box::pin(futures::stream::once(async move { Ok(prefix) }).chain(rest))
            }
            _ => Box::pin(rest),
        };
        RelayedReply {
            inner,
            bytes: 0,
            on_end: Some(on_end),
        }
    }

    fn end(&mut self, how: StreamEnd) {
        if let Some(hook) = self.on_end.take() {
            hook(how, self.bytes);
        }
    }
}

impl Stream for RelayedReply {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.bytes += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let detail = describe_reqwest_error(&e);
                self.end(StreamEnd::RackFailed(detail));
                Poll::Ready(Some(Err(std::io::Error::other(
                    "the rack's reply broke off",
                ))))
            }
            Poll::Ready(None) => {
                self.end(StreamEnd::Complete);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for RelayedReply {
    fn drop(&mut self) {
        self.end(StreamEnd::Abandoned);
    }
}

/// What came back from the rack.
pub enum Reply {
    /// Read whole: record, then answer.
    Complete {
        response: Response,
        exchange: Exchange,
    },
    /// Relayed as it arrives: answer now; `on_end` records the end.
    Streaming { response: Response, status: u16 },
}

/// Everything [`send`] needs.
pub struct Outgoing<'a> {
    pub rack: &'a Rack,
    pub method: http::Method,
    /// The authorised path, encoded for the URL.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: HeaderMap,
    pub body: OutgoingBody,
    pub mode: ReplyMode,
    /// The rack's response head must come within this long (504 otherwise).
    pub head_timeout: std::time::Duration,
    /// A streamed client body that sends nothing for this long is cut off.
    pub body_idle_timeout: std::time::Duration,
}

/// Send one request to the rack. `on_end` is called only for [`Reply::Streaming`],
/// with how the stream ended and the bytes in (so far) and out.
pub async fn send(
    outgoing: Outgoing<'_>,
    on_end: impl FnOnce(StreamEnd, u64, u64, Option<String>) + Send + 'static,
) -> Result<Reply, ForwardFailure> {
    let url = outgoing.rack.url_for(outgoing.path, outgoing.query);
    let bytes_in = Arc::new(AtomicU64::new(0));
    let client_body_failed = Arc::new(AtomicBool::new(false));
    let mut request = outgoing
        .rack
        .http
        .request(outgoing.method.clone(), url)
        .headers(outgoing.headers);
    match outgoing.body {
        OutgoingBody::Buffered(bytes) => {
            bytes_in.store(bytes.len() as u64, Ordering::Relaxed);
            if !bytes.is_empty() {
                request = request.body(bytes);
            }
        }
        OutgoingBody::Stream(body) => {
            let hint = axum::body::HttpBody::size_hint(&body);
            if hint.exact() != Some(0) {
                if let Some(length) = hint.exact() {
                    request = request.header(header::CONTENT_LENGTH, length);
                }
                let counted = Counted::new(
                    body.into_data_stream(),
                    bytes_in.clone(),
                    client_body_failed.clone(),
                    outgoing.body_idle_timeout,
                );
                request = request.body(reqwest::Body::wrap_stream(counted));
            }
        }
    }
    let head_timeout = outgoing.head_timeout;
    let reply = match tokio::time::timeout(head_timeout, request.send()).await {
        Err(_elapsed) => {
            return Err(ForwardFailure::Rack {
                error: ProxyError::RackTimeout(format!(
                    "no response head from the rack within {}s",
                    head_timeout.as_secs()
                )),
                bytes_in: bytes_in.load(Ordering::Relaxed),
            })
        }
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => {
            let bytes_in = bytes_in.load(Ordering::Relaxed);
            return Err(if client_body_failed.load(Ordering::Relaxed) {
                ForwardFailure::ClientBody { bytes_in }
            } else {
                ForwardFailure::Rack {
                    error: ProxyError::RackUnreachable(describe_reqwest_error(&error)),
                    bytes_in,
                }
            });
        }
    };
    let status = reply.status();
    if status == http::StatusCode::UNAUTHORIZED {
        tracing::error!(
            "the rack refused the gateway's credentials: check RACK_TOKEN and RACK_USERNAME"
        );
    }
    let rack_request_id = reply
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(64).collect::<String>());
    let headers = downstream_headers(reply.headers());
    let mut body_stream = reply.bytes_stream();
    let mut buffered = BytesMut::new();
    if outgoing.mode == ReplyMode::Buffer {
        loop {
            match body_stream.next().await {
                Some(Ok(chunk)) => {
                    buffered.extend_from_slice(&chunk);
                    if buffered.len() > BUFFERED_REPLY_LIMIT {
                        break;
                    }
                }
                Some(Err(error)) => {
                    return Err(ForwardFailure::Rack {
                        error: ProxyError::RackReplyBroken(describe_reqwest_error(&error)),
                        bytes_in: bytes_in.load(Ordering::Relaxed),
                    });
                }
                None => {
                    let body = buffered.freeze();
                    let exchange = Exchange {
                        status: status.as_u16(),
                        bytes_in: bytes_in.load(Ordering::Relaxed),
                        bytes_out: body.len() as u64,
                        kind: "http",
                        rack_request_id,
                        ..Exchange::default()
                    };
                    let mut response = Response::new(Body::from(body));
                    *response.status_mut() = status;
                    *response.headers_mut() = headers;
                    return Ok(Reply::Complete { response, exchange });
                }
            }
        }
    }
    let counter = bytes_in.clone();
    let relayed = RelayedReply::new(
        Some(buffered.freeze()),
        body_stream,
        Box::new(move |how, bytes_out| {
            on_end(
                how,
                counter.load(Ordering::Relaxed),
                bytes_out,
                rack_request_id,
            )
        }),
    );
    let mut response = Response::new(Body::from_stream(relayed));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(Reply::Streaming {
        response,
        status: status.as_u16(),
    })
}

/// Why nothing (or only part) came back.
#[derive(Debug)]
pub enum ForwardFailure {
    /// The rack could not be reached, or its reply broke off.
    Rack { error: ProxyError, bytes_in: u64 },
    /// The client's own body failed while it was being sent.
    ClientBody { bytes_in: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn credentials_overrides_and_actor_headers_never_reach_the_rack() {
        let client = map(&[
            ("authorization", "Basic Y29udm94OnNlY3JldA=="),
            ("cookie", "session_token=abc"),
            ("x-http-method-override", "DELETE"),
            ("x-method-override", "DELETE"),
            ("convox-actor", "someone-else@example.com"),
            ("x-convox-actor", "someone-else@example.com"),
            ("x-request-id", "client-chosen"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("host", "gateway.example"),
            ("version", "dev"),
            ("command", "bin/rails db:migrate"),
            ("follow", "false"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", "https://gateway.example"),
        ]);
        let out = upstream_headers(&client, false);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            ["version", "command", "follow", "content-type", "origin"]
        );
        assert_eq!(out["command"], "bin/rails db:migrate");
        let ws = upstream_headers(&client, true);
        assert!(ws.get("origin").is_none());
        assert_eq!(ws["follow"], "false");
    }

    #[test]
    fn rack_cookies_and_hop_headers_never_reach_the_client() {
        let rack = map(&[
            ("set-cookie", "x=1"),
            ("www-authenticate", "Basic realm=\"convox\""),
            ("connection", "close"),
            ("content-type", "application/json"),
            ("request-id", "abcdefabcdef"),
        ]);
        let out = downstream_headers(&rack);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type", "request-id"]);
    }

    #[tokio::test]
    async fn a_relayed_reply_reports_its_end_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        let chunks: Vec<Result<Bytes, reqwest::Error>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"de")),
        ];
        let mut reply = RelayedReply::new(
            Some(Bytes::from_static(b"12")),
            futures::stream::iter(chunks),
            Box::new(move |how, bytes| tx.send((how, bytes)).unwrap()),
        );
        let mut all = Vec::new();
        while let Some(chunk) = reply.next().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        drop(reply);
        assert_eq!(all, b"12abcde");
        assert_eq!(rx.recv().unwrap(), (StreamEnd::Complete, 7));
        assert!(rx.try_recv().is_err(), "reported once");

        let (tx, rx) = std::sync::mpsc::channel();
        let chunks: Vec<Result<Bytes, reqwest::Error>> = vec![Ok(Bytes::from_static(b"abc"))];
        let mut reply = RelayedReply::new(
            None,
            futures::stream::iter(chunks),
            Box::new(move |how, bytes| tx.send((how, bytes)).unwrap()),
        );
        let _ = reply.next().await;
        drop(reply);
        assert_eq!(rx.recv().unwrap(), (StreamEnd::Abandoned, 3));
    }
}
