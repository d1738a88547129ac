//! The rack proxy (`ANY /api/v1/rack-proxy/*path`): every Convox API call a
//! user makes goes through here, is decided, recorded, then forwarded with the
//! real rack token.
//!
//! The pure decision core — no I/O, no database — is the `decision` crate:
//! [`decision::path`] (one strict reading of the path), [`decision::routes`]
//! (the rack API's table), [`decision::policy`] (RBAC, then the gateway's
//! policies) and [`decision::redact`] (what may be recorded or logged).
//!
//! How a handler uses them, in order:
//!
//! 1. `path::normalize(raw)` on the raw (still percent-encoded) path after the
//!    `/api/v1/rack-proxy` prefix — not a decoded extractor. Error → 400.
//!    Forward `NormalizedPath::path` plus the query exactly as received.
//! 2. `routes::match_route(method, &path, method == GET &&
//!    routes::is_websocket_upgrade(&headers))`. `NotFound` → 404 and a deny
//!    event, never forwarded; `WebSocketMismatch` → 400.
//! 3. `route.body_plan(content_type)`: `Buffer` → read at most
//!    `routes::FORM_BODY_LIMIT` bytes (413 beyond) and `routes::body_fields`;
//!    `Stream` → leave it; `Err` → 415.
//! 4. `let form = routes::request_form(query, Some(&fields))` — the form as the
//!    rack reads it (body, then query) — for every call below.
//! 5. `policy::decide(&settings.policy, role, &m, &headers, Some(&form))`;
//!    `redact::request_params(&m, query, &headers, Some(&form))` and
//!    `routes::command_of` (through `redact::redact_command`) for the event.
//! 6. `RouteKind::Probe` (`GET /machines`, `GET /racks`): once allowed, answer
//!    404 without forwarding and without a deny alarm.
//! 7. Before forwarding, remove `policy::STRIP_REQUEST_HEADERS`, set
//!    `Convox-Actor`, rewrite or drop `Origin` on websockets. Never record the
//!    reply body of a route with `reply_has_secrets`; pass upstream error text
//!    through a `redact::Scrubber` holding the rack token and the presented
//!    credential.

// Around it, with I/O: the phases of a request (`handler`) over its
// `context`; what every request shares (`parts`: the rack client, the
// `auth_failure_limit`er, the request log, the streams `inflight`);
// forwarding, websockets, and the records (`record`, `pending`).
pub mod auth_failure_limit;
pub mod context;
pub mod error;
pub mod forward;
pub mod handler;
pub mod inflight;
pub mod parts;
pub mod pending;
pub mod record;
pub mod upstream;
pub mod websocket;
