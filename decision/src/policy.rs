//! The proxy's decision: RBAC first — a permission error always wins — then
//! the gateway's policies, in this order (the settings: [`PolicySettings`]):
//!
//! 1. **RBAC** on [`permission_for`] (the form can raise it: env changes,
//!    rack parameters). The auditor holds no `convox:*` permission, so every
//!    rack route is an RBAC denial for it.
//! 2. **Rack-level operations** ([`Route::refused`](crate::routes::Route)):
//!    refused for everyone; `PUT /system` opens to admins with
//!    `ALLOW_RACK_UPDATE`.
//! 3. **Destructive actions**: with `ALLOW_DESTRUCTIVE_ACTIONS` off (default),
//!    every DELETE except stopping a process — which `convox run` sends when
//!    it finishes — is refused: `Destructive rack actions are disabled by policy`.
//! 4. **run**: no one-off processes in `RUN_BLOCKED_SERVICES` (default `web`,
//!    `worker`; the rule is "never", so it binds admins too), and
//!    privileged one-off processes (`Privileged: true`, which gives the
//!    container the node's kernel) are admin-only.
//! 5. **run and exec commands** in `ADMIN_ONLY_COMMANDS` are admin-only,
//!    matched word by word the way a shell would split them (how, and what it
//!    does not catch: [`admin_only_match`]); a command using shell syntax
//!    the matching cannot see through is admin-only unless listed exactly in
//!    `SHELL_COMMANDS_ALLOWED` ([`uses_shell_syntax`]).
//!
//! ## Request hygiene
//!
//! The decision uses the request's real method only; method-override headers
//! and `_method` fields are ignored here and by the rack. The engine strips
//! [`STRIP_REQUEST_HEADERS`] anyway before forwarding.

use http::{HeaderMap, Method};

use crate::rbac::{authorize, Denial, Role};
use crate::routes::{command_candidates, handler, permission_for, PolicySwitch, RouteMatch};

mod commands;
mod settings;

pub use commands::{admin_only_match, command_words, shell_syntax_allowed, uses_shell_syntax};
pub use settings::{PolicySettings, DEFAULT_ADMIN_ONLY_COMMANDS, DEFAULT_RUN_BLOCKED_SERVICES};

/// The destructive-action refusal, word for word as users have always seen it.
pub const DESTRUCTIVE_DENIED: &str = "Destructive rack actions are disabled by policy";

/// Request headers the engine removes before forwarding:
/// - credentials and identity the gateway replaces (`Authorization`, and the
///   actor headers the rack writes to its own audit log — the engine sets
///   `Convox-Actor` itself);
/// - method overrides: neither we nor the rack honour them; strip them so no
///   layer in between ever does;
/// - console-routing headers (`Rack`, `Session`), which carry a Convox Console
///   session, and cookies: meaningless to a self-hosted rack.
pub const STRIP_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "convox-actor",
    "x-convox-actor",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "rack",
    "session",
];

/// May `role` make this request? `Ok(permission)` or the denial.
/// `form`: the request's form as the rack reads it (`routes::request_form`).
pub fn decide(
    settings: &PolicySettings,
    role: Role,
    m: &RouteMatch,
    headers: &HeaderMap,
    form: Option<&[(String, String)]>,
) -> Result<&'static str, Denial> {
    let permission = permission_for(m, form);
    authorize(role, permission)?;
    let refuse = |why: String| Err(Denial::policy(permission, why));

    if let Some(reason) = m.route.refused {
        let opened = match m.route.opened_by {
            Some(PolicySwitch::AllowRackUpdate) => {
                settings.rack_update_for_admin && role == Role::Admin
            }
            None => false,
        };
        if !opened {
            return refuse(format!("refused by gateway policy: {reason}"));
        }
    }

    if is_destructive(m) && !settings.allow_destructive_actions {
        return refuse(DESTRUCTIVE_DENIED.to_owned());
    }

    if m.is_run() {
        if let Some(service) = m.param("service") {
            if settings
                .run_blocked_services
                .iter()
                .any(|s| s.trim().eq_ignore_ascii_case(service))
            {
                return refuse(format!(
                    "refused by gateway policy: convox run may not start processes in service \
                     {service:?} (RUN_BLOCKED_SERVICES)"
                ));
            }
        }
        if role != Role::Admin && privileged(headers, form) {
            return refuse(
                "refused by gateway policy: privileged processes require admin role".to_owned(),
            );
        }
    }

    if (m.is_run() || m.is_exec()) && role != Role::Admin {
        for command in command_candidates(m, headers, form) {
            if let Some(listed) = admin_only_match(settings, &command) {
                return refuse(format!(
                    "refused by gateway policy: {listed:?} commands require admin role \
                     (ADMIN_ONLY_COMMANDS)"
                ));
            }
            if !shell_syntax_allowed(settings, &command) {
                return refuse(
                    "refused by gateway policy: commands using shell syntax ($, backticks, ;, \
                     &&, ||, |, redirections, globs, quotes) require admin role unless listed \
                     exactly in SHELL_COMMANDS_ALLOWED"
                        .to_owned(),
                );
            }
        }
    }

    Ok(permission)
}

/// Every DELETE but stopping a process.
pub fn is_destructive(m: &RouteMatch) -> bool {
    m.method == Method::DELETE && m.route.handler != handler::PROCESS_STOP
}

/// `Privileged: true` in any header or `privileged` form field.
fn privileged(headers: &HeaderMap, form: Option<&[(String, String)]>) -> bool {
    let truthy = |v: &str| v.trim().eq_ignore_ascii_case("true");
    headers
        .get_all("privileged")
        .iter()
        .any(|v| v.to_str().is_ok_and(truthy))
        || form
            .unwrap_or_default()
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("privileged") && truthy(v))
}

#[cfg(test)]
mod tests;
