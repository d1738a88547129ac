//! `ANY /api/v1/rack-proxy/*path`: one request through the proxy, as a
//! sequence of phases over a [`RequestContext`]. Any phase may end the
//! request with a [`ProxyError`]; [`refuse`] records and answers it.
//!
//! accept → context → rate-limit gate → refuse browser cookies → authenticate
//! → normalise the path (400) → match the route (404, never forwarded) → read
//! the form where the decision needs it (413/415) → decide: RBAC then policy
//! (403) → [the CLI's pre-websocket probe: answered 404 here] → read the
//! current env for an env change → **commit `proxy.request`** (503 if the
//! chain will not take it: nothing is forwarded) → forward (HTTP or
//! websocket) → commit `proxy.response` → answer. Streams and websockets
//! record their `proxy.response` when they end.
//!
//! Every request leaves exactly one line on stdout ([`RequestLine`]).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::response::Response;
use bytes::Bytes;
use events::catalogue::proxy::EnvChange;
use events::catalogue::Decision;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, StatusCode};

use super::context::RequestContext;
use super::engine::unix_now;
use super::error::ProxyError;
use super::forward::{self, Outgoing, OutgoingBody, Reply, ReplyMode, StreamEnd};
use super::pending::PendingResponse;
use super::ratelimit::Gate;
use super::record::{self, Exchange, RequestLine};
use super::routes::{self, BodyPlan, RouteError, RouteKind, RouteMatch};
use super::upstream::Rack;
use super::websocket::{self, ConnectFailure};
use super::{path, policy, redact};
use crate::auth::principal::{self, AuthFailure, SessionRules};
use crate::state::AppState;

/// Where the proxy is mounted.
pub const PREFIX: &str = "/api/v1/rack-proxy";

/// Recorded when the client hangs up before the answer (nginx's convention).
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// The browser session cookie, refused on CLI routes.
const SESSION_COOKIE: &str = "session_token";

/// The proxy's routes: the bare prefix and everything under it, any method.
pub fn router() -> axum::Router<AppState> {
    use axum::routing::any;
    axum::Router::new()
        .route(PREFIX, any(handle))
        .route(&format!("{PREFIX}/"), any(handle))
        .route(&format!("{PREFIX}/{{*path}}"), any(handle))
}

pub async fn handle(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    // Only a GET can be a websocket upgrade (an `Upgrade` header on anything
    // else is a hop-by-hop header, dropped like any other).
    let websocket =
        parts.method == http::Method::GET && routes::is_websocket_upgrade(&parts.headers);
    let client_ip = state
        .proxy
        .trusted_proxies
        .client_ip(peer.ip(), &parts.headers);
    let raw_path = match parts.uri.path().strip_prefix(PREFIX) {
        Some("") | None => "/".to_owned(),
        Some(rest) => rest.to_owned(),
    };
    let mut ctx = RequestContext::new(
        parts.method.clone(),
        raw_path,
        parts.uri.query().map(str::to_owned),
        &parts.headers,
        client_ip,
        websocket,
    );
    ctx.scrubber = state.proxy.scrubber.clone();
    let mut accept = HeaderMap::new();
    if let Some(value) = parts.headers.get(header::ACCEPT) {
        accept.insert(header::ACCEPT, value.clone());
    }
    // Set once proxy.request is committed; records the end if this future is dropped.
    let mut cancelled = None;
    let outcome = proxy(&state, &mut ctx, parts, body, &mut cancelled).await;
    let response = match outcome {
        Ok(response) => response,
        Err(error) => refuse(&state, &ctx, error, &accept).await,
    };
    if let Some(guard) = cancelled.take() {
        guard.disarm();
    }
    response
}

/// The phases, in order.
async fn proxy(
    state: &AppState,
    ctx: &mut RequestContext,
    mut parts: Parts,
    body: Body,
    cancelled: &mut Option<PendingResponse>,
) -> Result<Response, ProxyError> {
    authenticate(state, ctx, &parts.headers).await?;

    let normalized =
        path::normalize(&ctx.raw_path).map_err(|e| ProxyError::BadPath(e.to_string()))?;
    ctx.path = Some(normalized.path.clone());

    let matched =
        routes::match_route(&parts.method, &normalized, ctx.websocket).map_err(|e| match e {
            RouteError::NotFound => ProxyError::UnknownRoute(format!(
                "{} {}",
                parts.method,
                redact::redact_value(&normalized.path)
            )),
            RouteError::WebSocketMismatch => ProxyError::WebSocketMismatch,
        })?;
    ctx.route = Some(matched.name());

    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let plan = matched
        .route
        .body_plan(content_type.as_deref())
        .map_err(|e| ProxyError::FormUnreadable(e.to_string()))?;
    let (outgoing_body, fields) = match plan {
        BodyPlan::Stream => (OutgoingBody::Stream(body), None),
        BodyPlan::Buffer => {
            let limit = state
                .settings
                .proxy
                .max_form_bytes
                .min(routes::FORM_BODY_LIMIT);
            let bytes = read_form(body, limit).await?;
            let fields = routes::body_fields(matched.route, content_type.as_deref(), &bytes)
                .map_err(|e| ProxyError::FormUnreadable(e.to_string()))?;
            (OutgoingBody::Buffered(bytes), Some(fields))
        }
    };
    let form = routes::request_form(ctx.query.as_deref(), fields.as_deref());
    ctx.params =
        redact::request_params(&matched, ctx.query.as_deref(), &parts.headers, Some(&form));
    ctx.command = routes::command_of(&matched, &parts.headers, Some(&form))
        .map(|c| redact::redact_command(&c));

    let role = ctx
        .principal
        .as_ref()
        .map(|p| p.role)
        .ok_or(ProxyError::Internal(
            "no principal after authentication".into(),
        ))?;
    let permission = match policy::decide(
        &state.settings.policy,
        role,
        &matched,
        &parts.headers,
        Some(&form),
    ) {
        Ok(permission) => permission,
        Err(denial) => {
            ctx.permission = Some(denial.permission.clone());
            let refusal = ProxyError::Forbidden(denial);
            if ctx.websocket && is_exec_session(&matched) {
                if let Ok(upgrade) = WebSocketUpgrade::from_request_parts(&mut parts, state).await {
                    return refuse_websocket(state, ctx, refusal, upgrade, &parts.headers).await;
                }
            }
            return Err(refusal);
        }
    };
    ctx.permission = Some(permission.to_owned());

    if matched.route.kind == RouteKind::Probe {
        return Ok(answer_probe(state, ctx, &parts.headers));
    }

    let rack = state
        .proxy
        .rack
        .as_ref()
        .ok_or(ProxyError::RackNotConfigured)?;
    let mut upstream_headers = forward::upstream_headers(&parts.headers, ctx.websocket);
    let acting_as = ctx.acting_as();
    forward::add_gateway_headers(
        &mut upstream_headers,
        rack,
        &ctx.request_id,
        acting_as.as_deref(),
    );

    let upgrade = if ctx.websocket {
        let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, state)
            .await
            .map_err(|e| ProxyError::BadUpgrade(e.body_text()))?;
        Some(upgrade)
    } else {
        None
    };

    let env_read = read_env_change(rack, ctx, &matched, &form, &upstream_headers).await;

    let reason = format!(
        "{} allowed for role {role}",
        ctx.permission.as_deref().unwrap_or_default()
    );
    let committed = state
        .audit
        .append(record::request_event(
            ctx,
            &state.settings.rack.name,
            Decision::Allow,
            &reason,
            None,
        ))
        .await
        .map_err(|e| ProxyError::AuditUnavailable(e.to_string()))?;
    ctx.request_seq = Some(committed.seq);
    *cancelled = Some(PendingResponse::new(
        state.audit.clone(),
        ctx.clone(),
        state.proxy.inflight.enter(),
        CLIENT_CLOSED_REQUEST,
        "http",
    ));
    env_read?;

    if let Some(upgrade) = upgrade {
        return forward_websocket(state, ctx, rack, upgrade, upstream_headers).await;
    }
    forward_http(
        state,
        ctx,
        rack,
        &parts,
        &matched,
        upstream_headers,
        outgoing_body,
    )
    .await
}

/// Rate-limit gate, cookie refusal, credentials.
async fn authenticate(
    state: &AppState,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
) -> Result<(), ProxyError> {
    let limiter = &state.proxy.limiter;
    if let Gate::Closed { retry_after_secs } = limiter.check(ctx.client_ip, unix_now()) {
        return Err(ProxyError::RateLimited { retry_after_secs });
    }
    let failed = |failure: AuthFailure| {
        limiter.record_failure(ctx.client_ip, unix_now());
        ProxyError::Unauthenticated(failure)
    };
    if carries_session_cookie(headers) {
        return Err(failed(AuthFailure::CookieNotAllowed));
    }
    let secret = principal::secret_from_headers(headers)
        .map_err(failed)?
        .ok_or_else(|| failed(AuthFailure::Missing))?;
    ctx.scrubber.add(&secret);
    let rules = SessionRules {
        web_idle_timeout: state.settings.auth.web_session_idle_timeout,
    };
    match principal::authenticate(&state.pool, rules, &secret).await {
        Ok(found) => {
            ctx.principal = Some(found);
            Ok(())
        }
        Err(AuthFailure::Unavailable) => Err(ProxyError::AuthUnavailable),
        Err(failure) => Err(failed(failure)),
    }
}

fn carries_session_cookie(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .any(|(name, _)| name.trim() == SESSION_COOKIE)
}

/// Read a form the decision needs, bounded.
async fn read_form(body: Body, limit: usize) -> Result<Bytes, ProxyError> {
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(error) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                Err(ProxyError::FormTooLarge { limit })
            } else {
                Err(ProxyError::ClientBodyBroken)
            }
        }
    }
}

/// For an env change, the keys it adds, removes and changes (from the rack's
/// current env); set on the context before `proxy.request` is written. The
/// error (the env could not be read) is returned after the request is recorded.
async fn read_env_change(
    rack: &Rack,
    ctx: &mut RequestContext,
    matched: &RouteMatch,
    form: &[(String, String)],
    headers: &HeaderMap,
) -> Result<(), ProxyError> {
    if ctx.permission.as_deref() != Some("convox:env:set") {
        return Ok(());
    }
    let (Some(app), Some(new_env)) = (
        matched.param("app"),
        form.iter()
            .find(|(k, _)| k == "env")
            .map(|(_, v)| v.as_str()),
    ) else {
        return Ok(());
    };
    // The reads carry this request's id and actor; the rack client adds its own credentials.
    let mut read_headers = HeaderMap::new();
    for name in ["x-request-id", "convox-actor", "user-agent", "version"] {
        if let Some(value) = headers.get(name) {
            read_headers.insert(name, value.clone());
        }
    }
    match rack.current_env(app, &read_headers).await {
        Ok(old_env) => {
            let change = redact::env_change(&old_env, new_env);
            ctx.env_change = Some(EnvChange::Keys {
                added: change.added,
                removed: change.removed,
                changed: change.changed,
            });
            Ok(())
        }
        Err(detail) => {
            ctx.env_change = Some(EnvChange::Unreadable {
                error: "the current env could not be read".to_owned(),
                keys: redact::env_keys(new_env),
            });
            Err(ProxyError::EnvUnreadable(detail))
        }
    }
}

/// The CLI's throwaway `GET /machines` / `GET /racks`: authenticated and
/// allowed, answered 404 as a rack would; no event (it does nothing), one line.
fn answer_probe(state: &AppState, ctx: &RequestContext, headers: &HeaderMap) -> Response {
    let mut response =
        super::error::error_response(StatusCode::NOT_FOUND, "404 page not found", headers);
    stamp_request_id(&mut response, &ctx.request_id);
    state.proxy.request_log.write(&RequestLine::new(
        ctx,
        &state.settings.rack.name,
        404,
        Decision::Allow,
    ));
    response
}

async fn forward_http(
    state: &AppState,
    ctx: &mut RequestContext,
    rack: &Rack,
    parts: &Parts,
    matched: &RouteMatch,
    headers: HeaderMap,
    body: OutgoingBody,
) -> Result<Response, ProxyError> {
    let mode = match matched.route.kind {
        RouteKind::Download | RouteKind::Proxy => ReplyMode::Stream,
        _ => ReplyMode::Buffer,
    };
    // The stream's end is recorded by a pending response created once the head is known.
    let pending_slot: std::sync::Arc<std::sync::Mutex<Option<PendingResponse>>> =
        Default::default();
    let slot = pending_slot.clone();
    let scrubber = ctx.scrubber.clone();
    let on_end =
        move |how: StreamEnd, bytes_in: u64, bytes_out: u64, rack_request_id: Option<String>| {
            let pending = slot.lock().ok().and_then(|mut p| p.take());
            if let Some(pending) = pending {
                let (closed_by, upstream_error) = match how {
                    StreamEnd::Complete => ("rack", None),
                    StreamEnd::RackFailed(detail) => (
                        "error",
                        Some(("rack_reply_broken", scrubber.scrub(&detail))),
                    ),
                    StreamEnd::Abandoned => ("client", None),
                };
                pending.finish(Exchange {
                    bytes_in,
                    bytes_out,
                    closed_by: Some(closed_by),
                    rack_request_id,
                    upstream_error,
                    ..Exchange::default()
                });
            }
        };
    let outgoing = Outgoing {
        rack,
        method: parts.method.clone(),
        path: ctx.path.as_deref().unwrap_or("/"),
        query: ctx.query.as_deref(),
        headers,
        body,
        mode,
    };
    let reply = match forward::send(outgoing, on_end).await {
        Ok(reply) => reply,
        Err(forward::ForwardFailure::Rack { error, .. }) => return Err(error),
        Err(forward::ForwardFailure::ClientBody { .. }) => {
            return Err(ProxyError::ClientBodyBroken)
        }
    };
    match reply {
        Reply::Complete {
            mut response,
            exchange,
        } => {
            let draft = record::response_event(ctx, ctx.elapsed_us(), &exchange);
            if let Err(error) = state.audit.append(draft).await {
                // The rack has acted; hiding its answer would help nobody. Say so loudly.
                tracing::error!(request_id = %ctx.request_id, error = %error, "could not record proxy.response");
            }
            stamp_request_id(&mut response, &ctx.request_id);
            write_line(state, ctx, exchange.status, Decision::Allow);
            Ok(response)
        }
        Reply::Streaming {
            mut response,
            status,
        } => {
            let pending = PendingResponse::new(
                state.audit.clone(),
                ctx.clone(),
                state.proxy.inflight.enter(),
                status,
                "stream",
            );
            if let Ok(mut slot) = pending_slot.lock() {
                *slot = Some(pending);
            }
            stamp_request_id(&mut response, &ctx.request_id);
            write_line(state, ctx, status, Decision::Allow);
            Ok(response)
        }
    }
}

async fn forward_websocket(
    state: &AppState,
    ctx: &mut RequestContext,
    rack: &Rack,
    upgrade: WebSocketUpgrade,
    headers: HeaderMap,
) -> Result<Response, ProxyError> {
    let path = ctx.path.clone().unwrap_or_else(|| "/".to_owned());
    let socket = match websocket::connect(rack, &path, headers).await {
        Ok(socket) => socket,
        Err(ConnectFailure::Unreachable(detail)) => {
            return Err(ProxyError::RackUnreachable(detail))
        }
        Err(ConnectFailure::Answered {
            status,
            headers,
            body,
        }) => {
            // The rack refused the upgrade with an ordinary answer: pass it on.
            let exchange = Exchange {
                status: status.as_u16(),
                bytes_out: body.len() as u64,
                kind: "http",
                ..Exchange::default()
            };
            let draft = record::response_event(ctx, ctx.elapsed_us(), &exchange);
            if let Err(error) = state.audit.append(draft).await {
                tracing::error!(request_id = %ctx.request_id, error = %error, "could not record proxy.response");
            }
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            stamp_request_id(&mut response, &ctx.request_id);
            write_line(state, ctx, status.as_u16(), Decision::Allow);
            return Ok(response);
        }
    };
    let pending = PendingResponse::new(
        state.audit.clone(),
        ctx.clone(),
        state.proxy.inflight.enter(),
        StatusCode::SWITCHING_PROTOCOLS.as_u16(),
        "websocket",
    );
    let cut = state.proxy.inflight.cut_signal();
    let scrubber = ctx.scrubber.clone();
    let mut response = upgrade
        .max_message_size(16 << 20)
        .on_upgrade(move |client| async move {
            let report = websocket::bridge(client, socket, cut).await;
            let error = report
                .error
                .map(|e| ("websocket_error", scrubber.scrub(&e)));
            pending.finish(Exchange {
                bytes_in: report.bytes_in,
                bytes_out: report.bytes_out,
                frames_in: Some(report.frames_in),
                frames_out: Some(report.frames_out),
                closed_by: Some(report.closed_by),
                upstream_error: error,
                ..Exchange::default()
            });
        });
    stamp_request_id(&mut response, &ctx.request_id);
    write_line(
        state,
        ctx,
        StatusCode::SWITCHING_PROTOCOLS.as_u16(),
        Decision::Allow,
    );
    Ok(response)
}

/// Websockets whose output the CLI reads for an exit code (exec, `run`'s
/// attach, instance shells): refused in-band so the reason is shown and the
/// exit code is non-zero. Other websockets (logs) are refused with an
/// ordinary 403 before the upgrade, which the CLI reports as a failed
/// handshake with a non-zero exit.
fn is_exec_session(matched: &RouteMatch) -> bool {
    use super::routes::handler;
    matched.is_exec()
        || matches!(
            matched.route.handler,
            handler::INSTANCE_SHELL | handler::INSTANCE_SHELL_V2 | handler::RUN_ATTACHED_V2
        )
}

/// A refused exec session: recorded like any denial, then told in-band (see
/// [`websocket::refuse_in_band`]). If the denial cannot be recorded, the
/// answer is an ordinary 503.
async fn refuse_websocket(
    state: &AppState,
    ctx: &RequestContext,
    refusal: ProxyError,
    upgrade: WebSocketUpgrade,
    headers: &HeaderMap,
) -> Result<Response, ProxyError> {
    let reason = refusal.public_message();
    let draft = record::in_band_refusal_event(ctx, &state.settings.rack.name, &refusal);
    if let Err(append) = state.audit.append(draft).await {
        let error = ProxyError::AuditUnavailable(append.to_string());
        write_line(state, ctx, error.status().as_u16(), Decision::Deny);
        return Ok(error.into_response(headers, &ctx.request_id));
    }
    tracing::info!(
        request_id = %ctx.request_id,
        code = refusal.code(),
        "rack proxy websocket refused in-band"
    );
    write_line(state, ctx, refusal.status().as_u16(), Decision::Deny);
    let mut response = upgrade.on_upgrade(move |socket| websocket::refuse_in_band(socket, reason));
    stamp_request_id(&mut response, &ctx.request_id);
    Ok(response)
}

/// End a request the proxy refused or could not complete: record it, then answer.
///
/// - Before `proxy.request` was committed: a `deny` record with the status we
///   answer (except rate-limit refusals, counted into one event per window,
///   and failures of the audit store itself). If that record cannot be
///   committed, the answer is 503.
/// - After: a `proxy.response` recording the failure, so no `allow` stands
///   unexplained for a request the rack did not get.
async fn refuse(
    state: &AppState,
    ctx: &RequestContext,
    mut error: ProxyError,
    request_headers: &HeaderMap,
) -> Response {
    let rack = &state.settings.rack.name;
    let decision = if ctx.request_seq.is_some() {
        let exchange = Exchange {
            status: error.status().as_u16(),
            kind: "http",
            upstream_error: Some((error.code(), ctx.scrubber.scrub(&error.detail()))),
            ..Exchange::default()
        };
        let draft = record::response_event(ctx, ctx.elapsed_us(), &exchange);
        if let Err(append) = state.audit.append(draft).await {
            tracing::error!(request_id = %ctx.request_id, error = %append, "could not record proxy.response");
        }
        Decision::Allow
    } else {
        let recorded = !matches!(
            error,
            ProxyError::RateLimited { .. }
                | ProxyError::AuditUnavailable(_)
                | ProxyError::AuthUnavailable
        );
        if recorded {
            let reason = error.public_message();
            let draft = record::request_event(ctx, rack, Decision::Deny, &reason, Some(&error));
            if let Err(append) = state.audit.append(draft).await {
                error = ProxyError::AuditUnavailable(append.to_string());
            }
        }
        Decision::Deny
    };
    let fault = error.fault();
    if error.status().is_server_error() {
        tracing::error!(
            request_id = %ctx.request_id,
            fault = fault.as_str(),
            code = error.code(),
            detail = %ctx.scrubber.scrub(&error.detail()),
            "rack proxy request failed"
        );
    } else {
        tracing::info!(
            request_id = %ctx.request_id,
            fault = fault.as_str(),
            code = error.code(),
            "rack proxy request refused"
        );
    }
    let status = error.status().as_u16();
    write_line(state, ctx, status, decision);
    error.into_response(request_headers, &ctx.request_id)
}

fn write_line(state: &AppState, ctx: &RequestContext, status: u16, decision: Decision) {
    state.proxy.request_log.write(&RequestLine::new(
        ctx,
        &state.settings.rack.name,
        status,
        decision,
    ));
}

fn stamp_request_id(response: &mut Response, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
}
