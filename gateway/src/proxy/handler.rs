//! `ANY /api/v1/rack-proxy/*path`: one request through the proxy, as a
//! sequence of phases over a [`RequestContext`], in the order [`proxy`] runs them:
//!
//! 1. [`authenticate`]: no browser cookies, credentials (401; a failing one
//!    past its address's failure limit: 429);
//! 2. [`match_route`]: normalise the path (400), match the route (404, never forwarded);
//!    then [`refuse_browser_requests`] (403: a browser's cross-site websocket or write);
//! 3. [`read_decision_inputs`]: the form where the decision needs it
//!    (413/415), the redacted parameters and command;
//! 4. [`authorize`]: RBAC, then policy (403; exec sessions are told in-band);
//!    then [`require_mfa`]: the sign-in gate and the permission's MFA level
//!    (403 naming what is needed; a code on the request is checked here);
//! 5. the CLI's pre-websocket probe is answered 404 here, unrecorded;
//! 6. [`prepare_upstream`]: the rack (503 if none), its headers, the upgrade;
//! 7. [`audit_request`]: **commit `proxy.request`** (503 if the chain will
//!    not take it: nothing is forwarded);
//! 8. [`forward`]: HTTP or websocket.
//!
//! Any phase may end the request with a [`ProxyError`]. Whatever the ending,
//! [`finish`] runs last, and is the only place that records the answer
//! (`proxy.response`, or the refusal via [`refuse`]), stamps our request id
//! and writes the request's one line on stdout ([`RequestLine`]). Streams and
//! websockets record their `proxy.response` when they end; an allowed request
//! cancelled half-way records its own (499, see [`PendingResponse`]).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::response::Response;
use bytes::Bytes;
use decision::routes::{self, BodyPlan, RouteError, RouteKind, RouteMatch};
use decision::{path, policy, redact};
use events::catalogue::proxy::EnvChange;
use events::catalogue::Decision;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use super::auth_failure_limit::{unix_now, Gate};
use super::context::RequestContext;
use super::error::ProxyError;
use super::forward::{self, Outgoing, OutgoingBody, Reply, ReplyMode, StreamEnd};
use super::pending::PendingResponse;
use super::record::{self, Exchange, RequestLine};
use super::upstream::Rack;
use super::websocket::{self, ConnectFailure};
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
    let mut ctx = request_context(&state, peer, &parts);
    let mut accept = HeaderMap::new();
    if let Some(value) = parts.headers.get(header::ACCEPT) {
        accept.insert(header::ACCEPT, value.clone());
    }
    // Set once proxy.request is committed; records the end if this future is dropped.
    let mut cancelled = None;
    let ending = proxy(&state, &mut ctx, parts, body, &mut cancelled).await;
    let response = finish(&state, &ctx, ending, &accept).await;
    if let Some(guard) = cancelled.take() {
        guard.disarm();
    }
    response
}

/// The phases, in order. Any of them may end the request; [`finish`] then
/// records and answers whatever the ending.
async fn proxy(
    state: &AppState,
    ctx: &mut RequestContext,
    mut parts: Parts,
    body: Body,
    cancelled: &mut Option<PendingResponse>,
) -> Result<Ending, ProxyError> {
    let mfa_proof = authenticate(state, ctx, &parts.headers).await?;
    let matched = match_route(ctx, &parts.method)?;
    refuse_browser_requests(ctx, &parts)?;
    let (body, form) = read_decision_inputs(state, ctx, &matched, &parts.headers, body).await?;
    if let Err(refusal) = authorize(state, ctx, &matched, &parts.headers, &form) {
        return refuse_exec_in_band(state, ctx, &matched, &mut parts, refusal).await;
    }
    if let Err(refusal) = require_mfa(state, ctx, mfa_proof.as_deref()).await {
        return refuse_exec_in_band(state, ctx, &matched, &mut parts, refusal).await;
    }
    // Approvals will be one more phase here: it may still end the request
    // before anything is recorded as allowed.
    if matched.route.kind == RouteKind::Probe {
        return Ok(answer_probe(&parts.headers));
    }
    let upstream = prepare_upstream(state, ctx, &mut parts).await?;
    audit_request(state, ctx, &matched, &form, &upstream, cancelled).await?;
    forward(state, ctx, upstream, &parts, &matched, body).await
}

/// How a request the proxy did not refuse ended; [`finish`] does the rest.
enum Ending {
    /// The rack's whole answer: its `proxy.response` is recorded in [`finish`].
    Answered {
        response: Response,
        exchange: Exchange,
    },
    /// A stream or websocket under way: its [`PendingResponse`] records it when it ends.
    Streaming { response: Response, status: u16 },
    /// Allowed and answered here, without the rack (the CLI's probe): nothing to record.
    Probe(Response),
    /// An exec session refused in-band: the denial is recorded, and `status`
    /// is the one the refusal would have had.
    RefusedInBand { response: Response, status: u16 },
}

/// The last phase, which always runs (as pingora's `logging`): records the
/// response (or the refusal), stamps our request id on the answer, and
/// writes the request's one stdout line.
async fn finish(
    state: &AppState,
    ctx: &RequestContext,
    ending: Result<Ending, ProxyError>,
    accept: &HeaderMap,
) -> Response {
    let (mut response, status, decision) = match ending {
        Ok(Ending::Answered { response, exchange }) => {
            record_response(state, ctx, &exchange).await;
            (response, exchange.status, Decision::Allow)
        }
        Ok(Ending::Streaming { response, status }) => (response, status, Decision::Allow),
        Ok(Ending::Probe(response)) => {
            let status = response.status().as_u16();
            (response, status, Decision::Allow)
        }
        Ok(Ending::RefusedInBand { response, status }) => (response, status, Decision::Deny),
        Err(error) => refuse(state, ctx, error, accept).await,
    };
    if let Ok(value) = HeaderValue::from_str(&ctx.request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    state.proxy.request_log.write(&RequestLine::new(
        ctx,
        &state.settings.rack.name,
        status,
        decision,
    ));
    response
}

/// `proxy.response` for an exchange the rack completed, or one that failed
/// after `proxy.request` was committed. The rack has acted (or may have):
/// hiding its answer would help nobody, so a failure to record is logged loudly, not returned.
async fn record_response(state: &AppState, ctx: &RequestContext, exchange: &Exchange) {
    let draft = record::response_event(ctx, ctx.elapsed_us(), exchange);
    if let Err(error) = state.appender.append(draft).await {
        tracing::error!(request_id = %ctx.request_id, error = %error, "could not record proxy.response");
    }
}

/// The request as the phases will fill it in: our request id, the client's address and headers.
fn request_context(state: &AppState, peer: SocketAddr, parts: &Parts) -> RequestContext {
    // Only a GET can be a websocket upgrade (an `Upgrade` header on anything
    // else is a hop-by-hop header, dropped like any other).
    let websocket = parts.method == Method::GET && routes::is_websocket_upgrade(&parts.headers);
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
    ctx
}

/// No browser session cookie, then the credentials (401; 503 when they cannot
/// be checked). A valid credential always passes; a failing one from an
/// address past its failure limit gets 429 instead (the failed-authentication
/// gate), so others' failures from the same address never lock a valid caller out.
async fn authenticate(
    state: &AppState,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
) -> Result<Option<String>, ProxyError> {
    let limiter = &state.proxy.auth_failure_limiter;
    let failed = |failure: AuthFailure| {
        if let Gate::Closed { retry_after_secs } = limiter.check(ctx.client_ip, unix_now()) {
            return ProxyError::RateLimited { retry_after_secs };
        }
        limiter.record_failure(ctx.client_ip, unix_now());
        ProxyError::Unauthenticated(failure)
    };
    if carries_session_cookie(headers) {
        return Err(failed(AuthFailure::CookieNotAllowed));
    }
    let presented = principal::secret_from_headers(headers)
        .map_err(failed)?
        .ok_or_else(|| failed(AuthFailure::Missing))?;
    ctx.scrubber.add(&presented);
    // `RACK_URL=https://convox:<token>.totp.<code>@…`: the code rides on the token.
    let (secret, inline_proof) = principal::split_inline_proof(&presented);
    let header_proof = headers
        .get(crate::mfa::require::TOTP_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let proof = header_proof.or(inline_proof).map(str::to_owned);
    if let Some(code) = &proof {
        ctx.scrubber.add(code);
    }
    let secret = secret.to_owned();
    ctx.scrubber.add(&secret);
    let rules = SessionRules {
        web_idle_timeout: state.settings.auth.web_session_idle_timeout,
    };
    match principal::authenticate(&state.pool, rules, &secret).await {
        Ok(found) => {
            ctx.principal = Some(found);
            Ok(proof)
        }
        Err(AuthFailure::Unavailable) => Err(ProxyError::AuthUnavailable),
        Err(failure) => {
            // As on the API path: a web session seen idle or expired is revoked.
            crate::auth::sessions::revoke_when_seen(
                &state.pool,
                &state.appender,
                &secret,
                failure,
                &ctx.source(),
            )
            .await;
            Err(failed(failure))
        }
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

/// Normalise the path (400) and match it to the rack's route table (404:
/// never forwarded).
fn match_route(ctx: &mut RequestContext, method: &Method) -> Result<RouteMatch, ProxyError> {
    let normalized =
        path::normalize(&ctx.raw_path).map_err(|e| ProxyError::BadPath(e.to_string()))?;
    ctx.path = Some(normalized.path.clone());
    let matched = routes::match_route(method, &normalized, ctx.websocket).map_err(|e| match e {
        RouteError::NotFound => ProxyError::UnknownRoute(format!(
            "{method} {}",
            redact::redact_value(&normalized.path)
        )),
        RouteError::WebSocketMismatch => ProxyError::WebSocketMismatch,
    })?;
    ctx.route = Some(matched.name());
    Ok(matched)
}

/// No browser rides a cached credential: a websocket or a state-changing
/// request (anything but GET and HEAD) carrying `Sec-Fetch-Site: cross-site`
/// or `same-site`, or an `Origin` that is not this gateway's own host, is
/// refused (403). The convox CLI sends no `Sec-Fetch-*` header, and on
/// websockets an `Origin` naming the host it was given, which is the `Host`
/// it sends (see the README, "Security model").
fn refuse_browser_requests(ctx: &RequestContext, parts: &Parts) -> Result<(), ProxyError> {
    let state_changing = !matches!(parts.method, Method::GET | Method::HEAD);
    if !(ctx.websocket || state_changing) {
        return Ok(());
    }
    let headers = &parts.headers;
    for site in headers.get_all("sec-fetch-site") {
        let site = String::from_utf8_lossy(site.as_bytes())
            .trim()
            .to_ascii_lowercase();
        if site == "cross-site" || site == "same-site" {
            return Err(ProxyError::BrowserRequest(format!(
                "a {site} browser request (Sec-Fetch-Site)"
            )));
        }
    }
    let host = headers
        .get(header::HOST)
        .map(|h| {
            String::from_utf8_lossy(h.as_bytes())
                .trim()
                .to_ascii_lowercase()
        })
        .or_else(|| {
            parts
                .uri
                .authority()
                .map(|a| a.as_str().to_ascii_lowercase())
        });
    for origin in headers.get_all(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes())
            .trim()
            .to_ascii_lowercase();
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .map(|rest| rest.trim_end_matches('/'));
        if authority.is_none() || authority != host.as_deref() {
            return Err(ProxyError::BrowserRequest(
                "a request from a page of another origin (Origin)".to_owned(),
            ));
        }
    }
    Ok(())
}

/// Read what the decision needs: the form (bounded: 413; not inspectable:
/// 415) where the route's permission or policy depends on it, and the
/// redacted parameters and command the record will hold. Returns the body
/// to forward and the form as the rack reads it.
async fn read_decision_inputs(
    state: &AppState,
    ctx: &mut RequestContext,
    matched: &RouteMatch,
    headers: &HeaderMap,
    body: Body,
) -> Result<(OutgoingBody, Vec<(String, String)>), ProxyError> {
    let content_type =
        routes::content_type(matched.route, headers).map_err(ProxyError::FormUnreadable)?;
    let plan = matched
        .route
        .body_plan(content_type.as_deref())
        .map_err(ProxyError::FormUnreadable)?;
    let (outgoing_body, fields) = match plan {
        BodyPlan::Stream => (OutgoingBody::Stream(body), None),
        BodyPlan::Buffer => {
            let limit = state
                .settings
                .proxy
                .max_form_bytes
                .min(routes::FORM_BODY_LIMIT);
            let within = state.settings.proxy.client_body_timeout;
            let bytes = tokio::time::timeout(within, read_form(body, limit))
                .await
                .map_err(|_| ProxyError::ClientBodyTimeout {
                    seconds: within.as_secs(),
                })??;
            let fields = routes::body_fields(matched.route, content_type.as_deref(), &bytes)
                .map_err(ProxyError::FormUnreadable)?;
            (OutgoingBody::Buffered(bytes), Some(fields))
        }
    };
    // A websocket is forwarded without its query (the rack never sees it),
    // so a query `command` must not stand in for the `Command` header.
    let forwarded_query = if ctx.websocket {
        None
    } else {
        ctx.query.as_deref()
    };
    let form = routes::request_form(forwarded_query, fields.as_deref());
    ctx.params = redact::request_params(matched, ctx.query.as_deref(), headers, Some(&form));
    ctx.command =
        routes::command_of(matched, headers, Some(&form)).map(|c| redact::redact_command(&c));
    Ok((outgoing_body, form))
}

/// RBAC, then the gateway's policies (403). Sets the permission either way.
fn authorize(
    state: &AppState,
    ctx: &mut RequestContext,
    matched: &RouteMatch,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<(), ProxyError> {
    let (role, ceiling) =
        ctx.principal
            .as_ref()
            .map(|p| (p.role, p.ceiling))
            .ok_or(ProxyError::Internal(
                "no principal after authentication".into(),
            ))?;
    let decide = |role| policy::decide(&state.settings.policy, role, matched, headers, Some(form));
    // A token whose owner's role is not ordered with its own: both must allow.
    let decided = decide(role).and_then(|permission| match ceiling {
        Some(owner) => decide(owner),
        None => Ok(permission),
    });
    match decided {
        Ok(permission) => {
            ctx.permission = Some(permission.to_owned());
            Ok(())
        }
        Err(denial) => {
            ctx.permission = Some(denial.permission.clone());
            Err(ProxyError::Forbidden(denial))
        }
    }
}

/// The MFA the permission needs (`crate::mfa::require`): people only, API
/// tokens are never asked. A code on the request is checked and recorded
/// here, before `proxy.request`; a refusal is recorded as its `deny`.
async fn require_mfa(
    state: &AppState,
    ctx: &RequestContext,
    proof: Option<&str>,
) -> Result<(), ProxyError> {
    let (Some(principal), Some(permission)) = (ctx.principal.as_ref(), ctx.permission.as_deref())
    else {
        return Err(ProxyError::Internal(
            "no principal or permission before MFA".into(),
        ));
    };
    let asking = crate::mfa::require::Asking {
        principal,
        requester: crate::accounts::users::Requester {
            actor: ctx.actor(),
            source: ctx.source(),
        },
        channel: crate::mfa::verify::Channel::Proxy,
        device: ctx.user_agent.clone(),
        proof,
    };
    crate::mfa::require::check(state, &asking, permission)
        .await
        .map_err(ProxyError::Mfa)
}

/// Where an allowed request goes and how: the rack (503 when none is
/// configured), the headers it gets, and the client's websocket upgrade.
struct Upstream<'a> {
    rack: &'a Rack,
    headers: HeaderMap,
    upgrade: Option<WebSocketUpgrade>,
}

async fn prepare_upstream<'a>(
    state: &'a AppState,
    ctx: &RequestContext,
    parts: &mut Parts,
) -> Result<Upstream<'a>, ProxyError> {
    let rack = state
        .proxy
        .rack
        .as_ref()
        .ok_or(ProxyError::RackNotConfigured)?;
    let mut headers = forward::upstream_headers(&parts.headers, ctx.websocket);
    let acting_as = ctx.acting_as();
    forward::add_gateway_headers(&mut headers, rack, &ctx.request_id, acting_as.as_deref());
    let upgrade = if ctx.websocket {
        let upgrade = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(|e| ProxyError::BadUpgrade(e.body_text()))?;
        Some(upgrade)
    } else {
        None
    };
    Ok(Upstream {
        rack,
        headers,
        upgrade,
    })
}

/// Commit `proxy.request` (decision `allow`) before anything is forwarded:
/// if the chain will not take it, nothing is (503), not even a read. From
/// here on, the request owes a `proxy.response`; `cancelled` records it if
/// the client hangs up. An env change then reads the rack's current env, to
/// record on its `proxy.response` which keys it changes; if that read
/// failed, the change is not sent.
async fn audit_request(
    state: &AppState,
    ctx: &mut RequestContext,
    matched: &RouteMatch,
    form: &[(String, String)],
    upstream: &Upstream<'_>,
    cancelled: &mut Option<PendingResponse>,
) -> Result<(), ProxyError> {
    let new_env = env_change_of(ctx, matched, form);
    if let Some((_, new_env)) = new_env {
        ctx.env_change = Some(EnvChange::Requested {
            keys: redact::env_keys(new_env),
        });
    }
    let role = ctx.principal.as_ref().map(|p| p.role.to_string());
    let reason = format!(
        "{} allowed for role {}",
        ctx.permission.as_deref().unwrap_or_default(),
        role.unwrap_or_default()
    );
    let committed = state
        .appender
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
        state.appender.clone(),
        ctx.clone(),
        state.proxy.inflight.enter(),
        CLIENT_CLOSED_REQUEST,
        "http",
    ));
    match new_env {
        Some((app, new_env)) => {
            read_env_change(upstream.rack, ctx, app, new_env, &upstream.headers).await
        }
        None => Ok(()),
    }
}

/// Send the request on: a websocket bridge, or HTTP.
async fn forward(
    state: &AppState,
    ctx: &mut RequestContext,
    upstream: Upstream<'_>,
    parts: &Parts,
    matched: &RouteMatch,
    body: OutgoingBody,
) -> Result<Ending, ProxyError> {
    match upstream.upgrade {
        Some(upgrade) => {
            let reauthorize = reauthorization(state, ctx, matched, &parts.headers);
            forward_websocket(
                state,
                ctx,
                upstream.rack,
                upgrade,
                upstream.headers,
                reauthorize,
            )
            .await
        }
        None => {
            forward_http(
                state,
                ctx,
                upstream.rack,
                parts,
                matched,
                upstream.headers,
                body,
            )
            .await
        }
    }
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

/// An env change's app and new env (the `env` field as the rack reads it).
fn env_change_of<'f>(
    ctx: &RequestContext,
    matched: &'f RouteMatch,
    form: &'f [(String, String)],
) -> Option<(&'f str, &'f str)> {
    if ctx.permission.as_deref() != Some("convox:env:set") {
        return None;
    }
    let app = matched.param("app")?;
    let new_env = form
        .iter()
        .find(|(k, _)| k == "env")
        .map(|(_, v)| v.as_str())?;
    Some((app, new_env))
}

/// For an env change, the keys it adds, removes and changes (from the rack's
/// current env), for its `proxy.response`. Read only after `proxy.request`
/// is committed: the rack sees nothing the chain does not hold. The error
/// (the env could not be read) ends the request unsent.
async fn read_env_change(
    rack: &Rack,
    ctx: &mut RequestContext,
    app: &str,
    new_env: &str,
    headers: &HeaderMap,
) -> Result<(), ProxyError> {
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
            ctx.env_diff = Some(EnvChange::Keys {
                added: change.added,
                removed: change.removed,
                changed: change.changed,
            });
            Ok(())
        }
        Err(detail) => {
            ctx.env_diff = Some(EnvChange::Unreadable {
                error: "the current env could not be read".to_owned(),
                keys: redact::env_keys(new_env),
            });
            Err(ProxyError::EnvUnreadable(detail))
        }
    }
}

/// The CLI's throwaway `GET /machines` / `GET /racks`: authenticated and
/// allowed, answered 404 as a rack would; no event (it does nothing), one line.
fn answer_probe(headers: &HeaderMap) -> Ending {
    Ending::Probe(super::error::error_response(
        StatusCode::NOT_FOUND,
        "404 page not found",
        headers,
    ))
}

async fn forward_http(
    state: &AppState,
    ctx: &mut RequestContext,
    rack: &Rack,
    parts: &Parts,
    matched: &RouteMatch,
    headers: HeaderMap,
    body: OutgoingBody,
) -> Result<Ending, ProxyError> {
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
    // Quick calls get their head soon; uploads, downloads, proxies and builds may take long.
    let slow = matched.route.kind != RouteKind::Json
        || matched.route.handler == decision::routes::handler::BUILD_CREATE;
    let head_timeout = if slow {
        state.settings.proxy.rack_slow_response_timeout
    } else {
        state.settings.proxy.rack_response_timeout
    };
    let outgoing = Outgoing {
        rack,
        method: parts.method.clone(),
        path: ctx.path.as_deref().unwrap_or("/"),
        query: ctx.query.as_deref(),
        headers,
        body,
        mode,
        head_timeout,
        body_idle_timeout: state.settings.proxy.client_body_timeout,
    };
    let reply = match forward::send(outgoing, on_end).await {
        Ok(reply) => reply,
        Err(forward::ForwardFailure::Rack { error, .. }) => return Err(error),
        Err(forward::ForwardFailure::ClientBody { .. }) => {
            return Err(ProxyError::ClientBodyBroken)
        }
    };
    match reply {
        Reply::Complete { response, exchange } => Ok(Ending::Answered { response, exchange }),
        Reply::Streaming { response, status } => {
            let pending = PendingResponse::new(
                state.appender.clone(),
                ctx.clone(),
                state.proxy.inflight.enter(),
                status,
                "stream",
            );
            if let Ok(mut slot) = pending_slot.lock() {
                *slot = Some(pending);
            }
            Ok(Ending::Streaming { response, status })
        }
    }
}

/// An open websocket's re-authorisation: every `STREAM_REAUTHORIZE_SECONDS`
/// the credential is read again by its id and the decision made again; the
/// future resolves, with the reason, once either refuses. (A websocket's form
/// is empty: its body is frames, and its query is never forwarded.)
fn reauthorization(
    state: &AppState,
    ctx: &RequestContext,
    matched: &RouteMatch,
    headers: &HeaderMap,
) -> impl std::future::Future<Output = websocket::Revoked> + Send + 'static {
    let pool = state.pool.clone();
    let policy = state.settings.policy.clone();
    let every = state.settings.proxy.stream_reauthorize_every;
    let principal = ctx.principal.clone();
    let matched = matched.clone();
    let headers = headers.clone();
    async move {
        let Some(principal) = principal else {
            return websocket::Revoked {
                reason: "no principal".to_owned(),
            };
        };
        loop {
            tokio::time::sleep(every).await;
            let now = match principal::recheck(&pool, &principal).await {
                Ok(now) => now,
                // The database did not answer: keep the session, ask again next time.
                Err(AuthFailure::Unavailable) => continue,
                Err(failure) => {
                    return websocket::Revoked {
                        reason: failure.to_string(),
                    }
                }
            };
            let decide = |role| policy::decide(&policy, role, &matched, &headers, Some(&[]));
            let decided = decide(now.role).and_then(|p| match now.ceiling {
                Some(owner) => decide(owner),
                None => Ok(p),
            });
            if let Err(denial) = decided {
                return websocket::Revoked {
                    reason: format!("no longer allowed: {}", denial.message),
                };
            }
        }
    }
}

async fn forward_websocket(
    state: &AppState,
    ctx: &mut RequestContext,
    rack: &Rack,
    upgrade: WebSocketUpgrade,
    headers: HeaderMap,
    reauthorize: impl std::future::Future<Output = websocket::Revoked> + Send + 'static,
) -> Result<Ending, ProxyError> {
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
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            return Ok(Ending::Answered { response, exchange });
        }
    };
    let pending = PendingResponse::new(
        state.appender.clone(),
        ctx.clone(),
        state.proxy.inflight.enter(),
        StatusCode::SWITCHING_PROTOCOLS.as_u16(),
        "websocket",
    );
    let cut = state.proxy.inflight.cut_signal();
    let scrubber = ctx.scrubber.clone();
    let idle = state.settings.proxy.websocket_idle_timeout;
    let response = upgrade
        .max_message_size(16 << 20)
        .on_upgrade(move |client| async move {
            let report = websocket::bridge(client, socket, cut, reauthorize, idle).await;
            if let Some(reason) = &report.closed_reason {
                tracing::info!(closed_by = report.closed_by, reason = %reason, "websocket closed by the gateway");
            }
            let error = report
                .error
                .map(|e| ("websocket_error", scrubber.scrub(&e)));
            pending.finish(Exchange {
                bytes_in: report.bytes_in,
                bytes_out: report.bytes_out,
                frames_in: Some(report.frames_in),
                frames_out: Some(report.frames_out),
                closed_by: Some(report.closed_by),
                closed_reason: report.closed_reason,
                upstream_error: error,
                ..Exchange::default()
            });
        });
    Ok(Ending::Streaming {
        response,
        status: StatusCode::SWITCHING_PROTOCOLS.as_u16(),
    })
}

/// Websockets whose output the CLI reads for an exit code (exec, `run`'s
/// attach, instance shells): refused in-band so the reason is shown and the
/// exit code is non-zero. Other websockets (logs) are refused with an
/// ordinary 403 before the upgrade, which the CLI reports as a failed
/// handshake with a non-zero exit.
fn is_exec_session(matched: &RouteMatch) -> bool {
    use decision::routes::handler;
    matched.is_exec()
        || matches!(
            matched.route.handler,
            handler::INSTANCE_SHELL | handler::INSTANCE_SHELL_V2 | handler::RUN_ATTACHED_V2
        )
}

/// A refused exec session (see [`is_exec_session`]) is recorded like any
/// denial, then told in-band (see [`websocket::refuse_in_band`]). Any other
/// refusal, or an exec session whose upgrade is malformed, goes on to
/// [`refuse`] as an ordinary 403; so does a denial that cannot be recorded, as 503.
async fn refuse_exec_in_band(
    state: &AppState,
    ctx: &RequestContext,
    matched: &RouteMatch,
    parts: &mut Parts,
    refusal: ProxyError,
) -> Result<Ending, ProxyError> {
    if !(ctx.websocket && is_exec_session(matched)) {
        return Err(refusal);
    }
    let Ok(upgrade) = WebSocketUpgrade::from_request_parts(parts, state).await else {
        return Err(refusal);
    };
    let draft = record::in_band_refusal_event(ctx, &state.settings.rack.name, &refusal);
    if let Err(append) = state.appender.append(draft).await {
        return Err(ProxyError::AuditUnavailable(append.to_string()));
    }
    tracing::info!(
        request_id = %ctx.request_id,
        code = refusal.code(),
        "rack proxy websocket refused in-band"
    );
    let status = refusal.status().as_u16();
    let reason = refusal.public_message();
    let response = upgrade.on_upgrade(move |socket| websocket::refuse_in_band(socket, reason));
    Ok(Ending::RefusedInBand { response, status })
}

/// End a request the proxy refused or could not complete: record it, and
/// give [`finish`] the answer, its status and the decision for the request line.
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
) -> (Response, u16, Decision) {
    let rack = &state.settings.rack.name;
    let decision = if ctx.request_seq.is_some() {
        let exchange = Exchange {
            status: error.status().as_u16(),
            kind: "http",
            upstream_error: Some((error.code(), ctx.scrubber.scrub(&error.detail()))),
            ..Exchange::default()
        };
        record_response(state, ctx, &exchange).await;
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
            if let Err(append) = state.appender.append(draft).await {
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
    (
        error.into_response(request_headers, &ctx.request_id),
        status,
        decision,
    )
}
