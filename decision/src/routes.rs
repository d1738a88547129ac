//! The whole Convox rack API as data: one ordered table ([`ROUTES`]) giving,
//! for every route the rack serves, its permission, how its body and reply
//! travel, and — for the routes the gateway refuses by default — why.
//! Anything not in the table is 404 and never forwarded.
//!
//! In `routes/`: `table.rs` (the table, one route per line, and why each
//! refused route is refused), `matcher.rs` (choosing a route the way the
//! rack's router does), `form.rs` (which bodies are read, and the form every
//! decision reads).
//!
//! Matching follows the rack's router (gorilla/mux, via `stdapi`): routes are
//! tried in order, `{x}` is one non-empty segment, `{x...}` is the rest of the
//! path (one or more segments, rejoined with `/`), `{id}.tgz` is a segment
//! with a literal suffix, a websocket route matches only a `GET` carrying an
//! upgrade, and `*` as a method means any method.
//!
//! Permissions use the [`rbac`](crate::rbac) module's
//! `convox:<resource>:<action>` names. The form matters for two routes
//! ([`permission_for`]): `POST /apps/{app}/releases` with an `env` field is an
//! env change, and `PUT /system` splits version updates from parameter and
//! scaling changes.
//!
//! **"Form"** everywhere in this module and in `policy`/`redact` means what
//! Go's `r.Form` holds on the rack: the url-encoded body fields (POST/PUT/PATCH
//! only) followed by the URL query fields — the rack's option parser reads
//! `param` options from both, first value wins. Build it with [`request_form`];
//! otherwise `POST /apps/x/releases?env=...` would change env unseen.

use http::{HeaderMap, Method};

mod form;
mod matcher;
mod table;

pub(crate) use form::parse_urlencoded;
pub use form::{body_fields, content_type, request_form, BodyError, BodyPlan, FORM_BODY_LIMIT};
use form::{first, has};
pub use matcher::{is_websocket_upgrade, match_route, RouteError};
pub use table::ROUTES;

/// How a route's request and reply travel; tells the engine how to proxy it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Small request (form or nothing), JSON or `ok` reply.
    Json,
    /// Raw request body streamed to the rack (objects, archives, dumps).
    Upload,
    /// Raw reply streamed from the rack (exports, files, object fetch).
    Download,
    /// Websocket: logs, exec, consoles, tunnels.
    WebSocket,
    /// Reverse proxy in both directions (`/v2`, `/custom/http/proxy`).
    Proxy,
    /// The CLI's throwaway `GET /machines` / `GET /racks` sent before each
    /// websocket "to trigger session authentication"; a real rack answers 404
    /// and the CLI ignores the answer. The gateway authenticates it like any
    /// request, then answers 404 itself: never forwarded, never a deny alarm.
    Probe,
}

/// What the request body is, for the engine and the form readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// No body is read by the rack (GET, HEAD, OPTIONS, DELETE).
    None,
    /// A url-encoded form (or nothing): buffer it and read it.
    Form,
    /// A url-encoded form (v3) or a multipart upload (old racks): buffer and
    /// read the form; stream the multipart.
    FormOrMultipart,
    /// Raw bytes, streamed, never read.
    Raw,
    /// Raw `K=V` lines (legacy `POST /apps/{app}/environment`): buffer it and
    /// read it as the `env` field.
    EnvLines,
    /// Anything, streamed both ways (proxies).
    Passthrough,
}

/// A setting that lifts a route's default refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySwitch {
    /// `ALLOW_RACK_UPDATE`: admins may `PUT /system`.
    AllowRackUpdate,
}

/// One rack route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST`, ...; `*` matches any method (the rack's `ANY`).
    pub method: &'static str,
    /// The path, as the rack's router spells it, e.g. `/apps/{app}/processes/{pid}/exec`.
    pub pattern: &'static str,
    /// The rack's handler (pkg/api/controllers.go); `…V2` for legacy v2 paths.
    pub handler: &'static str,
    /// The permission RBAC checks (before [`permission_for`] reads the form).
    pub permission: &'static str,
    pub kind: RouteKind,
    /// Matches only a `GET` with `Upgrade: websocket`; a plain GET does not.
    pub websocket: bool,
    /// The engine must buffer the (small) body — url-encoded form or env
    /// lines, up to [`FORM_BODY_LIMIT`] — so permission, policy and
    /// redaction can read it. See the `body` field and [`body_fields`].
    pub inspect_form: bool,
    pub body: BodyFormat,
    /// Refused by default, with the reason (after RBAC allowed it).
    pub refused: Option<&'static str>,
    /// The setting that lifts `refused`, if any.
    pub opened_by: Option<PolicySwitch>,
    /// The reply carries secrets (env values, credentials, tokens, data):
    /// never log or record its body.
    pub reply_has_secrets: bool,
    /// A v2-rack path the current CLI still calls (its `sdk/compat.go`).
    pub legacy: bool,
}

impl Route {
    /// `METHOD pattern`, as recorded in events.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.pattern)
    }
}

/// Handlers the policy and the proxy single out.
pub mod handler {
    pub const RELEASE_CREATE: &str = "ReleaseCreate";
    pub const SYSTEM_UPDATE: &str = "SystemUpdate";
    pub const PROCESS_STOP: &str = "ProcessStop";
    pub const BUILD_CREATE: &str = "BuildCreate";
    pub const PROCESS_RUN: &str = "ProcessRun";
    pub const PROCESS_EXEC: &str = "ProcessExec";
    pub const RUN_ATTACHED_V2: &str = "ProcessRunAttachedV2";
    pub const RUN_DETACHED_V2: &str = "ProcessRunDetachedV2";
    pub const INSTANCE_SHELL: &str = "InstanceShell";
    pub const INSTANCE_SHELL_V2: &str = "InstanceShellV2";
}

/// A route chosen for a request, with its path parameters (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub route: &'static Route,
    /// The request's real method (differs from `route.method` only for `*`).
    pub method: Method,
    pub params: Vec<(&'static str, String)>,
}

impl RouteMatch {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `GET /apps/{app}/processes`, for events (the real method for `*` routes).
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.route.pattern)
    }

    /// Starts a one-off process (`convox run`), v3 or v2.
    pub fn is_run(&self) -> bool {
        matches!(
            self.route.handler,
            handler::PROCESS_RUN | handler::RUN_ATTACHED_V2 | handler::RUN_DETACHED_V2
        )
    }

    /// Runs a command in a process (`convox exec`, and `run`'s second step).
    pub fn is_exec(&self) -> bool {
        self.route.handler == handler::PROCESS_EXEC
    }
}

/// The permission to check, after reading the form where it changes the
/// meaning of the request.
pub fn permission_for(m: &RouteMatch, form: Option<&[(String, String)]>) -> &'static str {
    match m.route.handler {
        // Any `env` field, even empty, replaces the whole environment.
        handler::RELEASE_CREATE if has(form, "env") => "convox:env:set",
        // `rack params set` and `rack scale` change the rack itself;
        // `rack update` (version) is `convox:rack:update`.
        handler::SYSTEM_UPDATE
            if has(form, "parameters") || has(form, "count") || has(form, "type") =>
        {
            "convox:rack:manage"
        }
        _ => m.route.permission,
    }
}

/// The command of run and exec, as the rack will read it; `None` when the
/// route has none.
///
/// - exec (`ProcessExec`, v2 run): the rack's `c.Value("command")` — the form
///   (for a websocket: the query) first, when not empty, then the `Command`
///   header;
/// - run (`ProcessRun`), instance shells: the `Command` header only.
pub fn command_of(
    m: &RouteMatch,
    headers: &HeaderMap,
    form: Option<&[(String, String)]>,
) -> Option<String> {
    let header = || {
        headers
            .get("command")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    match m.route.handler {
        handler::PROCESS_EXEC | handler::RUN_ATTACHED_V2 | handler::RUN_DETACHED_V2 => {
            first(form, "command")
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .or_else(header)
        }
        handler::PROCESS_RUN | handler::INSTANCE_SHELL | handler::INSTANCE_SHELL_V2 => header(),
        _ => None,
    }
}

/// Every command a request carries for run/exec (all `command` form fields and
/// all `Command` headers), so the policy judges each one, not only the one the
/// rack is expected to pick.
pub fn command_candidates(
    m: &RouteMatch,
    headers: &HeaderMap,
    form: Option<&[(String, String)]>,
) -> Vec<String> {
    if !(m.is_run() || m.is_exec()) {
        return Vec::new();
    }
    let mut all: Vec<String> = form
        .unwrap_or_default()
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    all.extend(
        headers
            .get_all("command")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    );
    all
}

#[cfg(test)]
mod tests;
