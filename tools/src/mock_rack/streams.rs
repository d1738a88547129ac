//! Websocket routes: app/service/process/build/system logs, process exec, instance shell.
//!
//! Framing as the rack's stdapi does it: data in text frames, an empty binary frame ends the
//! stream (in both directions), errors arrive in-band as `ERROR: <msg>\n`, and exec sessions
//! end with the exit marker line before the empty binary frame.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use chrono::{SecondsFormat, Utc};

use super::builds::build_log_lines;
use super::state::{ExecRecord, Process};
use super::{header_str, not_found_response, AuthFailed, Shared};

/// The line that carries an exec's exit code; the CLI strips it and exits with the code.
pub const EXIT_MARKER: &str = "F1E49A85-0AD7-4AEF-A618-C249C6E6568D";

/// How long a finished stream waits for the client to hang up first (see [`finish`]).
const DRAIN: Duration = Duration::from_secs(2);
/// The longest an interactive `cat` waits for the client's stdin to end.
const STDIN_LIMIT: Duration = Duration::from_secs(300);
/// Pause between build log lines, so the build looks like it streams.
const BUILD_LINE_PAUSE: Duration = Duration::from_millis(50);

type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

/// The checks the rack makes before upgrading: the route only matches a real upgrade request
/// (else 404), and gorilla's default upgrader refuses an `Origin` whose host is not `Host`.
fn prepare(ws: Upgrade, headers: &HeaderMap) -> Result<WebSocketUpgrade, Box<Response>> {
    let ws = ws.map_err(|_| Box::new(not_found_response()))?;
    if !same_origin(headers) {
        // gorilla writes "Forbidden", then stdapi appends its own error line.
        let mut res = Response::new(Body::from(
            "Forbidden\nERROR: websocket: request origin not allowed by Upgrader.CheckOrigin\n",
        ));
        *res.status_mut() = StatusCode::FORBIDDEN;
        res.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("13"));
        res.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Err(Box::new(res));
    }
    Ok(ws)
}

/// gorilla/websocket `checkSameOrigin`: no `Origin` is fine; otherwise its host (with port)
/// must equal `Host`, ignoring ASCII case.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin") else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some((_, rest)) = origin.split_once("://") else {
        return false;
    };
    let origin_host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let origin_host = origin_host.rsplit('@').next().unwrap_or(origin_host);
    let host = header_str(headers, "host").unwrap_or_default();
    origin_host.eq_ignore_ascii_case(&host)
}

/// Log options, read from headers exactly as named by the CLI (`Follow`, `Prefix`, …).
struct LogOptions {
    follow: bool,
    prefix: bool,
    filter: Option<String>,
    tail: Option<usize>,
}

impl LogOptions {
    fn from(headers: &HeaderMap) -> LogOptions {
        let flag = |name: &str| header_str(headers, name).map(|v| v == "true");
        LogOptions {
            // The rack follows unless told not to.
            follow: flag("Follow").unwrap_or(true),
            prefix: flag("Prefix").unwrap_or(false),
            filter: header_str(headers, "Filter").filter(|f| !f.is_empty()),
            tail: header_str(headers, "Tail").and_then(|t| t.parse().ok()),
        }
    }

    /// Formats `(source, message)` pairs as the rack does: `<time> <source> <message>` with
    /// `Prefix: true`, else the bare message.
    fn render(&self, entries: Vec<(String, String)>) -> Vec<String> {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut lines: Vec<String> = entries
            .into_iter()
            .filter(|(_, msg)| {
                self.filter
                    .as_ref()
                    .is_none_or(|f| msg.contains(f.as_str()))
            })
            .map(|(source, msg)| {
                if self.prefix {
                    format!("{now} {source} {msg}")
                } else {
                    msg
                }
            })
            .collect();
        if let Some(tail) = self.tail {
            let skip = lines.len().saturating_sub(tail);
            lines.drain(..skip);
        }
        lines
    }
}

fn process_log_entries(p: &Process) -> Vec<(String, String)> {
    let source = format!("service/{}/{}", p.name, p.id);
    let mut entries = vec![(
        source.clone(),
        format!("starting {} on release {}", p.name, p.release),
    )];
    if p.name == "web" {
        entries.push((source.clone(), "listening on port 3000".to_string()));
        entries.push((source, "GET / 200 1.2ms".to_string()));
    } else {
        entries.push((source, format!("{} ready", p.name)));
    }
    entries
}

/// Sends an error the way stdapi reports one inside a websocket, then ends the stream.
async fn send_error(mut socket: WebSocket, message: String) {
    let _ = socket
        .send(Message::Text(format!("ERROR: {message}\n").into()))
        .await;
    finish(socket).await;
}

/// Ends a stream: the empty binary frame, then wait (bounded) for the client to hang up first.
/// Closing our side while the client's frames sit unread in our receive buffer would make the
/// kernel send a reset, which can throw away output the client has not read yet.
async fn finish(mut socket: WebSocket) {
    if socket.send(Message::Binary(Bytes::new())).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(DRAIN, async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

async fn send_lines(socket: &mut WebSocket, lines: &[String], pause: Option<Duration>) -> bool {
    for line in lines {
        if socket
            .send(Message::Text(format!("{line}\n").into()))
            .await
            .is_err()
        {
            return false;
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
    true
}

/// Upgrades and sends `lines` (or the error). Without `Follow` (or with
/// `Follow: false`) the stream then ends; followed, it stays open as a rack's
/// does, a new line every `follow` interval, until the client leaves.
fn stream_lines(
    ws: WebSocketUpgrade,
    lines: Result<Vec<String>, String>,
    follow: Option<(Duration, String)>,
) -> Response {
    ws.on_upgrade(move |mut socket| async move {
        match lines {
            Err(message) => send_error(socket, message).await,
            Ok(lines) => {
                if !send_lines(&mut socket, &lines, None).await {
                    return;
                }
                match follow {
                    Some((every, prefix)) => {
                        follow_until_the_client_leaves(socket, every, prefix).await
                    }
                    None => finish(socket).await,
                }
            }
        }
    })
}

/// A followed stream: a line every `every` until the client closes, errs or goes away.
async fn follow_until_the_client_leaves(mut socket: WebSocket, every: Duration, prefix: String) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                n += 1;
                let line = format!("{prefix}still running ({n})\n");
                if socket.send(Message::Text(line.into())).await.is_err() {
                    return;
                }
            }
            message = socket.recv() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// How a log stream follows: `None` when it does not, else its line interval
/// and the prefix its lines carry (`<time> <source> ` with `Prefix: true`).
fn follow(shared: &Shared, opts: &LogOptions, source: &str) -> Option<(Duration, String)> {
    opts.follow.then(|| {
        let prefix = if opts.prefix {
            format!(
                "{} {source} ",
                Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
            )
        } else {
            String::new()
        };
        (shared.config.follow_interval, prefix)
    })
}

/// Common start of every websocket handler: route match, origin check, then (after upgrading,
/// as the rack does) the auth failure if any.
macro_rules! upgrade_or_return {
    ($ws:expr, $headers:expr, $auth:expr) => {{
        let ws = match prepare($ws, &$headers) {
            Ok(ws) => ws,
            Err(res) => return *res,
        };
        if $auth.is_some() {
            return ws
                .on_upgrade(|socket| send_error(socket, "invalid authentication".to_string()));
        }
        ws
    }};
}

/// `WS /apps/{app}/logs`: a few lines per process.
pub async fn app_logs(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
    auth: Option<Extension<AuthFailed>>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    let ws = upgrade_or_return!(ws, headers, auth);
    let opts = LogOptions::from(&headers);
    let lines = shared
        .with_app(&app, |a| {
            Ok(a.processes.iter().flat_map(process_log_entries).collect())
        })
        .map(|entries| opts.render(entries))
        .map_err(|e| e.message);
    let source = format!("app/{app}");
    stream_lines(ws, lines, follow(&shared, &opts, &source))
}

/// `WS /apps/{app}/services/{service}/logs`.
pub async fn service_logs(
    State(shared): State<Arc<Shared>>,
    Path((app, service)): Path<(String, String)>,
    auth: Option<Extension<AuthFailed>>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    let ws = upgrade_or_return!(ws, headers, auth);
    let opts = LogOptions::from(&headers);
    let lines = shared
        .with_app(&app, |a| {
            if !a.services.iter().any(|s| s.name == service) {
                return Err(super::ApiError::not_found(format!(
                    "service not found: {service}"
                )));
            }
            Ok(a.processes
                .iter()
                .filter(|p| p.name == service)
                .flat_map(process_log_entries)
                .collect())
        })
        .map(|entries| opts.render(entries))
        .map_err(|e| e.message);
    let source = format!("service/{service}");
    stream_lines(ws, lines, follow(&shared, &opts, &source))
}

/// `WS /apps/{app}/processes/{pid}/logs`.
pub async fn process_logs(
    State(shared): State<Arc<Shared>>,
    Path((app, pid)): Path<(String, String)>,
    auth: Option<Extension<AuthFailed>>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    let ws = upgrade_or_return!(ws, headers, auth);
    let opts = LogOptions::from(&headers);
    let lines = shared
        .with_app(&app, |a| {
            a.processes
                .iter()
                .find(|p| p.id == pid)
                .map(process_log_entries)
                .ok_or_else(|| super::ApiError::not_found(format!("process not found: {pid}")))
        })
        .map(|entries| opts.render(entries))
        .map_err(|e| e.message);
    let source = format!("process/{pid}");
    stream_lines(ws, lines, follow(&shared, &opts, &source))
}

/// `WS /system/logs` (`convox rack logs`).
pub async fn system_logs(
    State(shared): State<Arc<Shared>>,
    auth: Option<Extension<AuthFailed>>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    let ws = upgrade_or_return!(ws, headers, auth);
    let opts = LogOptions::from(&headers);
    let (version, procs) =
        shared.with_state(|s| (s.system.version.clone(), s.system_processes.clone()));
    let mut entries = Vec::new();
    for p in procs {
        let source = format!("system/k8s/{}", p.id);
        entries.push((
            source.clone(),
            format!("starting {} version {version}", p.name),
        ));
        entries.push((source, format!("{} ready", p.name)));
    }
    let lines = Ok(opts.render(entries));
    stream_lines(ws, lines, follow(&shared, &opts, "system"))
}

/// `WS /apps/{app}/builds/{id}/logs`: the build's output, a line at a time; once it has all
/// been sent the build is complete (with its release), then the stream ends. Reading the logs
/// of a finished build replays them at once (the CLI does that to catch lines it missed).
pub async fn build_logs(
    State(shared): State<Arc<Shared>>,
    Path((app, id)): Path<(String, String)>,
    auth: Option<Extension<AuthFailed>>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    let ws = upgrade_or_return!(ws, headers, auth);
    let found = shared.with_app(&app, |a| {
        a.builds
            .iter()
            .find(|b| b.id == id)
            .cloned()
            .ok_or_else(|| super::ApiError::not_found(format!("build not found: {id}")))
    });
    let build = match found {
        Ok(b) => b,
        Err(e) => return ws.on_upgrade(move |socket| send_error(socket, e.message)),
    };
    ws.on_upgrade(move |mut socket| async move {
        let running = build.status == "running" || build.status == "created";
        let pause = running.then_some(BUILD_LINE_PAUSE);
        if !send_lines(&mut socket, &build_log_lines(&build), pause).await {
            return;
        }
        if running {
            // The app may be gone by now; then there is nothing to complete.
            let _ = shared.with_app(&app, |a| {
                a.complete_build(&build.id);
                Ok(())
            });
        }
        finish(socket).await;
    })
}

/// `WS /apps/{app}/processes/{pid}/exec`: runs the `Command` header with the mock's command
/// semantics (see [`run_command`]).
pub async fn process_exec(
    State(shared): State<Arc<Shared>>,
    Path((app, pid)): Path<(String, String)>,
    auth: Option<Extension<AuthFailed>>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    let ws = upgrade_or_return!(ws, headers, auth);
    let exists = shared.with_app(&app, |a| {
        a.processes
            .iter()
            .any(|p| p.id == pid)
            .then_some(())
            .ok_or_else(|| super::ApiError::not_found(format!("process not found: {pid}")))
    });
    if let Err(e) = exists {
        return ws.on_upgrade(move |socket| send_error(socket, e.message));
    }
    exec_session(ws, shared, app, pid, &headers)
}

/// `WS /instances/{id}/shell`: a node shell, with the same command semantics as exec.
pub async fn instance_shell(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    auth: Option<Extension<AuthFailed>>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    let ws = upgrade_or_return!(ws, headers, auth);
    let exists = shared.with_state(|s| s.instances.iter().any(|i| i.id == id));
    if !exists {
        return ws
            .on_upgrade(move |socket| send_error(socket, format!("instance not found: {id}")));
    }
    exec_session(ws, shared, String::new(), id, &headers)
}

fn exec_session(
    ws: WebSocketUpgrade,
    shared: Arc<Shared>,
    app: String,
    pid: String,
    headers: &HeaderMap,
) -> Response {
    let command = header_str(headers, "Command").unwrap_or_default();
    let flag = |name: &str| header_str(headers, name).map(|v| v == "true");
    let tty = flag("Tty");
    let entrypoint = flag("Entrypoint");
    tracing::debug!(app, pid, command, "exec");
    ws.on_upgrade(move |mut socket| async move {
        let outcome = run_command(&mut socket, &command).await;
        // Record before the client can see the exit code, so a test that checks the record
        // right after its client finished never races this task.
        shared.with_state(|s| {
            s.execs.push(ExecRecord {
                app,
                pid,
                command,
                tty,
                entrypoint,
                stdin: outcome.stdin.clone(),
                exit_code: outcome.exit_code,
            })
        });
        if !outcome.client_gone {
            let marker = format!("{EXIT_MARKER}:{}\n", outcome.exit_code);
            if socket.send(Message::Text(marker.into())).await.is_ok() {
                finish(socket).await;
            }
        }
    })
}

struct Outcome {
    exit_code: i32,
    stdin: String,
    client_gone: bool,
}

/// The mock's "container": `echo <words>` prints the words; `cat` echoes stdin until the
/// client's end-of-input (an empty binary frame); `exit <n>` ends with code n; `sleep <s>`
/// lasts s seconds (the session with it); anything else prints `ran: <command>` and exits 0.
async fn run_command(socket: &mut WebSocket, command: &str) -> Outcome {
    let mut words = command.split_whitespace();
    let mut outcome = Outcome {
        exit_code: 0,
        stdin: String::new(),
        client_gone: false,
    };
    let output = match words.next() {
        Some("echo") => Some(format!("{}\n", words.collect::<Vec<_>>().join(" "))),
        Some("exit") => {
            outcome.exit_code = match words.next() {
                None => 0,
                Some(n) => n.parse::<i32>().unwrap_or(2),
            };
            None
        }
        Some("cat") if words.next().is_none() => {
            let copy = tokio::time::timeout(STDIN_LIMIT, async {
                loop {
                    match socket.recv().await {
                        Some(Ok(Message::Text(t))) => {
                            outcome.stdin.push_str(t.as_str());
                            if socket.send(Message::Text(t)).await.is_err() {
                                outcome.client_gone = true;
                                break;
                            }
                        }
                        // stdapi treats any binary frame from the client as end of input.
                        Some(Ok(Message::Binary(_))) => break,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            outcome.client_gone = true;
                            break;
                        }
                    }
                }
            })
            .await;
            if copy.is_err() {
                tracing::debug!("cat: stdin did not end in time");
            }
            None
        }
        // A command that lasts: the session stays open until it exits (or the client leaves).
        Some("sleep") => {
            let seconds: f64 = words.next().and_then(|n| n.parse().ok()).unwrap_or(1.0);
            let lasts = Duration::from_secs_f64(seconds.clamp(0.0, 3600.0));
            let client_left = tokio::time::timeout(lasts, async {
                loop {
                    match socket.recv().await {
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    }
                }
            })
            .await;
            outcome.client_gone = client_left.is_ok();
            None
        }
        _ => Some(format!("ran: {command}\n")),
    };
    if let Some(output) = output {
        if socket.send(Message::Text(output.into())).await.is_err() {
            outcome.client_gone = true;
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origin_must_match_host() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:5443")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:5443"),
            ("origin", "http://127.0.0.1:5443")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "Rack.Example:5443"),
            ("origin", "https://rack.example:5443")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "rack.internal:5443"),
            ("origin", "https://gateway.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a"),
            ("origin", "garbage")
        ])));
    }

    #[test]
    fn log_rendering_honours_prefix_filter_and_tail() {
        let entries = vec![
            ("service/web/w1".to_string(), "one".to_string()),
            ("service/web/w1".to_string(), "two".to_string()),
            ("service/web/w1".to_string(), "three".to_string()),
        ];
        let opts = LogOptions::from(&headers(&[("Prefix", "true"), ("Tail", "2")]));
        let lines = opts.render(entries.clone());
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with(" service/web/w1 two"), "{lines:?}");
        let opts = LogOptions::from(&headers(&[("Filter", "thr")]));
        assert_eq!(opts.render(entries), vec!["three".to_string()]);
        assert!(LogOptions::from(&HeaderMap::new()).follow);
        assert!(!LogOptions::from(&headers(&[("Follow", "false")])).follow);
    }
}
