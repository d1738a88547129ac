//! The MFA level of every permission: what a signed-in person must prove,
//! beyond holding the permission, before the gateway acts.
//!
//! - [`Level::None`]: nothing more (reads, enrolling, verifying).
//! - [`Level::StepUp`]: a verification on this session within the step-up
//!   window (`MFA_STEP_UP_WINDOW_MINUTES`).
//! - [`Level::Always`]: proof on the request itself; the window does not count.
//!
//! Reads (`…:list`, `…:read`) are `None` by rule; every other permission must
//! be named in [`LEVELS`]. One that is not is [`Unlisted`], and the gateway
//! refuses it (fail closed): a new write permission cannot slip through
//! without a level. The tests walk every rack route (and the permissions the
//! form can turn it into) and every grant to prove nothing is missing.
//!
//! API tokens are never asked for MFA; that is the gateway's rule, not a level.
//! The table and the reasons for the levels not taken from the original are in
//! `docs/mfa.md`.

use std::fmt;

/// What a permission needs beyond RBAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    None,
    StepUp,
    Always,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::StepUp => "step_up",
            Level::Always => "always",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A write permission with no level: refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no MFA level is defined for {0}; refused (fail closed)")]
pub struct Unlisted(pub String);

use Level::{Always, None as Nothing, StepUp};

/// Every permission that is not a plain read, with its level.
pub const LEVELS: &[(&str, Level)] = &[
    // --- the rack (convox:*) ---
    ("convox:app:create", StepUp),
    ("convox:app:update", StepUp),
    ("convox:app:restart", StepUp),
    ("convox:app:delete", Always),
    // Budgets: change what an app may spend, or shut it down.
    ("convox:app:manage", StepUp),
    ("convox:build:create", StepUp),
    ("convox:build:update", StepUp),
    ("convox:release:create", StepUp),
    ("convox:release:promote", StepUp),
    ("convox:process:exec", StepUp),
    ("convox:process:terminate", StepUp),
    ("convox:process:start", StepUp),
    ("convox:process:stop", StepUp),
    ("convox:env:set", StepUp),
    ("convox:env:unset", StepUp),
    ("convox:object:create", Nothing),
    ("convox:object:delete", StepUp),
    ("convox:event:create", StepUp),
    // Rack-level operations: refused by default; where a setting opens them,
    // only with proof on the request.
    ("convox:rack:update", Always),
    ("convox:rack:manage", Always),
    ("convox:rack:proxy", Always),
    ("convox:instance:terminate", Always),
    ("convox:instance:exec", Always),
    ("convox:instance:keyroll", Always),
    ("convox:cert:create", Always),
    ("convox:cert:generate", Always),
    ("convox:cert:update", Always),
    ("convox:cert:delete", Always),
    ("convox:cert:manage", Always),
    ("convox:registry:add", Always),
    ("convox:registry:remove", Always),
    ("convox:resource:create", Always),
    ("convox:resource:update", Always),
    ("convox:resource:delete", Always),
    ("convox:resource:import", Always),
    ("convox:resource:export", StepUp),
    ("convox:resource:exec", StepUp),
    // Only automation holds it, and API tokens are never asked.
    ("convox:deploy:deploy_with_approval", StepUp),
    // --- the gateway (gateway:*) ---
    ("gateway:deploy_approval_request:create", Nothing),
    ("gateway:deploy_approval_request:approve", Always),
    ("gateway:api_token:create", Always),
    ("gateway:api_token:update", Always),
    ("gateway:api_token:delete", Always),
    ("gateway:user:create", Always),
    ("gateway:user:update", Always),
    ("gateway:user:delete", Always),
    ("gateway:user:update_name", StepUp),
    ("gateway:integration:create", StepUp),
    ("gateway:integration:update", StepUp),
    ("gateway:integration:delete", StepUp),
    ("gateway:job:update", StepUp),
    ("gateway:job:delete", StepUp),
    ("gateway:setting_group:allow_destructive_actions", Always),
    ("gateway:setting_group:deploy_approvals", Always),
    ("gateway:setting_group:mfa_configuration", Always),
    ("gateway:setting_group:session_configuration", StepUp),
    ("gateway:setting_group:vcs_and_ci_defaults", StepUp),
    ("gateway:setting_group:vcs_ci_deploy", Always),
    ("gateway:setting:github_verification", Always),
    ("gateway:setting:require_pr_for_branch", Always),
    ("gateway:setting:allow_deploy_from_default_branch", StepUp),
    ("gateway:setting:approved_deploy_commands", StepUp),
    ("gateway:setting:circleci_auto_approve_on_approval", StepUp),
    ("gateway:setting:protected_env_vars", StepUp),
    ("gateway:setting:secret_env_vars", StepUp),
    ("gateway:setting:service_image_patterns", StepUp),
    ("gateway:setting:verify_git_commit_mode", StepUp),
    ("gateway:setting:ci_provider", Nothing),
    ("gateway:setting:circleci_approval_job_name", Nothing),
    ("gateway:setting:default_branch", Nothing),
    ("gateway:setting:github_post_pr_comment", Nothing),
    ("gateway:setting:vcs_provider", Nothing),
    ("gateway:setting:vcs_repo", Nothing),
    // --- sign-in and MFA itself (auth:*) ---
    ("auth:mfa_method:create", Nothing),
    ("auth:mfa_verification:create", Nothing),
    ("auth:mfa_method:update", StepUp),
    ("auth:mfa_method:delete", Always),
    ("auth:mfa_backup_codes:generate", StepUp),
    ("auth:mfa_preferences:update", StepUp),
    ("auth:trusted_device:create", StepUp),
    ("auth:trusted_device:delete", StepUp),
    // An admin resetting (removing) another person's methods.
    ("auth:mfa_method:reset", Always),
    // Unlocking a person locked after repeated MFA failures.
    ("gateway:user:unlock", Always),
    // --- secrets ---
    ("security:secret:update", Always),
];

/// A plain read: `…:list`, `…:read`.
fn is_read(permission: &str) -> bool {
    matches!(permission.rsplit(':').next(), Some("list" | "read"))
}

/// The level of `permission`; a write with no level is [`Unlisted`].
pub fn level_of(permission: &str) -> Result<Level, Unlisted> {
    if let Some((_, level)) = LEVELS.iter().find(|(p, _)| *p == permission) {
        return Ok(*level);
    }
    if is_read(permission) {
        Ok(Level::None)
    } else {
        Err(Unlisted(permission.to_owned()))
    }
}

#[cfg(test)]
mod tests;
