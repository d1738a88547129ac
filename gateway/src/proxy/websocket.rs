//! Websockets: the upstream connection to the rack, and the two-way bridge.
//!
//! The rack upgrades before it authenticates, so the gateway authenticates and
//! authorises first, records `proxy.request`, connects to the rack, and only
//! then upgrades the client: a refusal or an unreachable rack is an ordinary
//! HTTP status the CLI can show.
//!
//! Upstream: `Authorization` is the rack's, `Origin` is the rack's own origin
//! (the rack's upgrader refuses an `Origin` whose host differs from `Host`),
//! and the option headers (`Command`, `Tty`, `Follow`, `Since`, ...) are
//! copied unchanged.
//!
//! The bridge runs both directions independently (a slow reader on one side
//! never stalls the other), and each awaits its sink before reading more, so
//! memory stays bounded by one frame per direction. Text stays text and binary
//! stays binary: Convox sends data in text frames and marks end of stream with
//! an *empty binary* frame, which passes like any other. Close frames pass
//! with their code and reason. Pings are answered by each side's own library
//! and not relayed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{self as axum_ws, WebSocket};
use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt};
use http::{HeaderMap, StatusCode};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::upstream::Rack;

pub type RackSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// After one side ends, how long the other gets to pass on its close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Largest single message relayed (both directions).
const MAX_MESSAGE: usize = 16 << 20;

#[derive(Debug)]
pub enum ConnectFailure {
    /// The rack answered without upgrading: relay its answer.
    Answered {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// The rack could not be reached (our own description).
    Unreachable(String),
}

/// Open the websocket to the rack for an authorised path.
pub async fn connect(
    rack: &Rack,
    path: &str,
    headers: HeaderMap,
) -> Result<RackSocket, ConnectFailure> {
    let url = rack.ws_url_for(path);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectFailure::Unreachable(format!("bad websocket URL: {e}")))?;
    for (name, value) in &headers {
        request.headers_mut().append(name.clone(), value.clone());
    }
    request
        .headers_mut()
        .insert(http::header::ORIGIN, rack.origin().clone());
    let connector = match rack.tls() {
        Some(config) => Connector::Rustls(config),
        None => Connector::Plain,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        true,
        Some(connector),
    );
    match tokio::time::timeout(rack.connect_timeout, connecting).await {
        Err(_) => Err(ConnectFailure::Unreachable(format!(
            "websocket handshake took longer than {:?}",
            rack.connect_timeout
        ))),
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let (parts, body) = response.into_parts();
            Err(ConnectFailure::Answered {
                status: parts.status,
                headers: super::forward::downstream_headers(&parts.headers),
                body: body.map(Bytes::from).unwrap_or_default(),
            })
        }
        Ok(Err(error)) => Err(ConnectFailure::Unreachable(describe(&error))),
    }
}

/// A tungstenite error in our words (no URL, no header values).
fn describe(error: &tungstenite::Error) -> String {
    use tungstenite::Error as E;
    match error {
        E::Io(e) => format!("io: {e}"),
        E::Tls(e) => format!("tls: {e}"),
        E::Url(e) => format!("url: {e}"),
        E::Protocol(e) => format!("protocol: {e}"),
        E::HttpFormat(e) => format!("http: {e}"),
        other => format!("websocket: {other}"),
    }
}

/// The gateway ending a session itself: re-authorisation failed.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// Why, in words (recorded on `proxy.response` and sent as the close reason).
    pub reason: String,
}

/// How a bridged session ended.
#[derive(Debug, Clone, Default)]
pub struct BridgeReport {
    /// `client`, `rack`, `gateway_shutdown`, `reauthorization` (closed with
    /// 1008), `idle_timeout`, or `error`.
    pub closed_by: &'static str,
    /// The gateway closed it: why.
    pub closed_reason: Option<String>,
    /// Client → rack.
    pub frames_in: u64,
    pub bytes_in: u64,
    /// Rack → client.
    pub frames_out: u64,
    pub bytes_out: u64,
    pub error: Option<String>,
}

#[derive(Default)]
struct Counters {
    frames: AtomicU64,
    bytes: AtomicU64,
}

/// How one direction ended.
#[derive(Debug)]
enum DirectionEnd {
    /// Its source sent a close frame (passed on) or simply ended.
    SourceClosed,
    /// Its source failed.
    SourceFailed(String),
    /// Its sink went away.
    SinkGone,
    /// The bridge asked it to stop.
    Stopped,
}

/// One frame's fate on its way across.
enum Relay<M> {
    Data(M, usize),
    Close(M),
    Skip,
}

/// Relay both ways until one side ends, then let the other pass on its close
/// and wait (bounded) for its peer's close. The gateway ends it itself when
/// it stops (`cut`), when `revoked` resolves (re-authorisation failed: 1008
/// with the reason), or after `idle` without a frame either way.
pub async fn bridge(
    client: WebSocket,
    rack: RackSocket,
    mut cut: watch::Receiver<bool>,
    revoked: impl std::future::Future<Output = Revoked>,
    idle: Duration,
) -> BridgeReport {
    let (client_tx, client_rx) = client.split();
    let (rack_tx, rack_rx) = rack.split();
    let (stop_tx, stop_rx) = watch::channel(None::<Option<CloseFrame>>);
    let up_counts = Arc::new(Counters::default());
    let down_counts = Arc::new(Counters::default());

    let up = pump(
        client_rx,
        rack_tx,
        to_rack,
        |frame: Option<CloseFrame>| Message::Close(frame),
        up_counts.clone(),
        stop_rx.clone(),
    );
    let down = pump(
        rack_rx,
        client_tx,
        to_client,
        |frame: Option<CloseFrame>| {
            axum_ws::Message::Close(frame.map(|f| axum_ws::CloseFrame {
                code: u16::from(f.code),
                reason: f.reason.as_str().into(),
            }))
        },
        down_counts.clone(),
        stop_rx,
    );
    let idle_watch = {
        let (up, down) = (up_counts.clone(), down_counts.clone());
        async move {
            let frames = || up.frames.load(Ordering::Relaxed) + down.frames.load(Ordering::Relaxed);
            let check = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
            let (mut seen, mut since) = (frames(), tokio::time::Instant::now());
            loop {
                tokio::time::sleep(check).await;
                let now = frames();
                if now != seen {
                    (seen, since) = (now, tokio::time::Instant::now());
                } else if since.elapsed() >= idle {
                    return;
                }
            }
        }
    };
    tokio::pin!(up, down, revoked, idle_watch);

    let mut closed_reason = None;
    let (closed_by, first, rest) = tokio::select! {
        end = &mut up => ("client", end, Rest::Down),
        end = &mut down => ("rack", end, Rest::Up),
        _ = async { let _ = cut.wait_for(|c| *c).await; } => {
            ("gateway_shutdown", DirectionEnd::Stopped, Rest::Both)
        }
        why = &mut revoked => {
            closed_reason = Some(why.reason);
            ("reauthorization", DirectionEnd::Stopped, Rest::Both)
        }
        _ = &mut idle_watch => {
            closed_reason = Some(format!("no frame either way for {}s", idle.as_secs()));
            ("idle_timeout", DirectionEnd::Stopped, Rest::Both)
        }
    };
    let close_frame = match closed_by {
        "gateway_shutdown" => Some(CloseFrame {
            code: CloseCode::Away,
            reason: "gateway stopping".into(),
        }),
        "reauthorization" => Some(CloseFrame {
            code: CloseCode::Policy,
            reason: close_reason(closed_reason.as_deref().unwrap_or("access revoked")).into(),
        }),
        "idle_timeout" => Some(CloseFrame {
            code: CloseCode::Away,
            reason: "idle timeout".into(),
        }),
        _ => None,
    };
    stop_tx.send_replace(Some(close_frame));
    let finish = async {
        match rest {
            Rest::Down => {
                (&mut down).await;
            }
            Rest::Up => {
                (&mut up).await;
            }
            Rest::Both => {
                futures::future::join(&mut up, &mut down).await;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, finish).await;

    let (closed_by, error) = match first {
        DirectionEnd::SourceFailed(e) => ("error", Some(e)),
        DirectionEnd::SinkGone => (
            "error",
            Some(format!(
                "the {} went away mid-frame",
                if closed_by == "client" {
                    "rack"
                } else {
                    "client"
                }
            )),
        ),
        DirectionEnd::SourceClosed | DirectionEnd::Stopped => (closed_by, None),
    };
    BridgeReport {
        closed_by,
        closed_reason,
        frames_in: up_counts.frames.load(Ordering::Relaxed),
        bytes_in: up_counts.bytes.load(Ordering::Relaxed),
        frames_out: down_counts.frames.load(Ordering::Relaxed),
        bytes_out: down_counts.bytes.load(Ordering::Relaxed),
        error,
    }
}

/// A close frame's reason holds at most 123 bytes (RFC 6455 §5.5).
fn close_reason(reason: &str) -> String {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    reason[..cut].to_owned()
}

enum Rest {
    Up,
    Down,
    Both,
}

/// Move frames from `source` to `sink` until the source ends or the bridge says stop.
async fn pump<In, Out, E, SinkE, Src, Snk>(
    mut source: Src,
    mut sink: Snk,
    convert: fn(In) -> Relay<Out>,
    close: impl Fn(Option<CloseFrame>) -> Out,
    counts: Arc<Counters>,
    mut stop: watch::Receiver<Option<Option<CloseFrame>>>,
) -> DirectionEnd
where
    Src: Stream<Item = Result<In, E>> + Unpin,
    Snk: Sink<Out, Error = SinkE> + Unpin,
    E: std::fmt::Display,
{
    loop {
        tokio::select! {
            biased;
            changed = stop.changed() => {
                let frame = if changed.is_ok() { stop.borrow().clone().flatten() } else { None };
                let _ = sink.send(close(frame)).await;
                // Read on until the source closes too (the caller bounds this): dropping a
                // socket with unread frames makes the kernel reset the connection, which can
                // destroy output the peer has not read yet.
                while let Some(Ok(message)) = source.next().await {
                    if matches!(convert(message), Relay::Close(_)) {
                        break;
                    }
                }
                return DirectionEnd::Stopped;
            }
            next = source.next() => match next {
                None => {
                    let _ = sink.send(close(None)).await;
                    return DirectionEnd::SourceClosed;
                }
                Some(Err(error)) => {
                    let _ = sink.send(close(None)).await;
                    return DirectionEnd::SourceFailed(error.to_string());
                }
                Some(Ok(message)) => match convert(message) {
                    Relay::Skip => {}
                    Relay::Close(message) => {
                        let _ = sink.send(message).await;
                        return DirectionEnd::SourceClosed;
                    }
                    Relay::Data(message, len) => {
                        if sink.send(message).await.is_err() {
                            return DirectionEnd::SinkGone;
                        }
                        counts.frames.fetch_add(1, Ordering::Relaxed);
                        counts.bytes.fetch_add(len as u64, Ordering::Relaxed);
                    }
                },
            },
        }
    }
}

fn to_rack(message: axum_ws::Message) -> Relay<Message> {
    match message {
        axum_ws::Message::Text(text) => {
            let len = text.len();
            let bytes = Bytes::from(text);
            match tungstenite::Utf8Bytes::try_from(bytes) {
                Ok(text) => Relay::Data(Message::Text(text), len),
                // Unreachable: axum only yields valid UTF-8 text.
                Err(_) => Relay::Skip,
            }
        }
        axum_ws::Message::Binary(data) => {
            let len = data.len();
            Relay::Data(Message::Binary(data), len)
        }
        axum_ws::Message::Close(frame) => Relay::Close(Message::Close(frame.map(|f| CloseFrame {
            code: CloseCode::from(f.code),
            reason: f.reason.as_str().into(),
        }))),
        axum_ws::Message::Ping(_) | axum_ws::Message::Pong(_) => Relay::Skip,
    }
}

fn to_client(message: Message) -> Relay<axum_ws::Message> {
    match message {
        Message::Text(text) => {
            let len = text.len();
            match axum_ws::Utf8Bytes::try_from(Bytes::from(text)) {
                Ok(text) => Relay::Data(axum_ws::Message::Text(text), len),
                Err(_) => Relay::Skip,
            }
        }
        Message::Binary(data) => {
            let len = data.len();
            Relay::Data(axum_ws::Message::Binary(data), len)
        }
        Message::Close(frame) => Relay::Close(axum_ws::Message::Close(frame.map(|f| {
            axum_ws::CloseFrame {
                code: u16::from(f.code),
                reason: f.reason.as_str().into(),
            }
        }))),
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Relay::Skip,
    }
}

/// The line that ends an exec session with its exit code (`<marker>:<code>\n`);
/// the CLI removes it from the output and exits with the code (convox
/// pkg/api/helpers.go).
pub const EXIT_MARKER: &str = "F1E49A85-0AD7-4AEF-A618-C249C6E6568D";

/// Refuse a websocket exec session in-band, the way the rack reports errors
/// on a websocket: a text frame `ERROR: <message>\n`, the exit marker with
/// code 1 (so the CLI exits non-zero), the empty binary frame that ends a
/// Convox stream, then close 1008 (policy violation). The CLI prints the
/// message; refused before the upgrade it could only say "bad handshake".
/// Nothing is ever connected upstream.
pub async fn refuse_in_band(mut client: WebSocket, message: String) {
    let _ = client
        .send(axum_ws::Message::Text(format!("ERROR: {message}\n").into()))
        .await;
    let _ = client
        .send(axum_ws::Message::Text(format!("{EXIT_MARKER}:1\n").into()))
        .await;
    let _ = client.send(axum_ws::Message::Binary(Bytes::new())).await;
    // Let the client read and hang up first (see `pump`), bounded.
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(message)) = client.next().await {
            if matches!(message, axum_ws::Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    let _ = client
        .send(axum_ws::Message::Close(Some(axum_ws::CloseFrame {
            code: 1008,
            reason: "refused by the gateway".into(),
        })))
        .await;
}
