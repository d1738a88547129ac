//! Permissions (`<scope>:<resource>:<action>`) and which roles hold them
//! One table; everything asks [`authorize`].
//!
//! A grant may use `*` for a whole segment (`convox:*:*`). A denial names the
//! permission and the lowest role that holds it, in the order
//! viewer < ops < deployer < cicd < admin (auditor stands apart).

use std::fmt;

use super::Role;

/// What each role holds. Roles that inherit list their parent's grants too
/// (spelled out, so the table reads on its own).
const VIEWER: &[&str] = &[
    "convox:app:list",
    "convox:app:read",
    "convox:process:list",
    "convox:process:read",
    "convox:instance:list",
    "convox:instance:read",
    "convox:log:read",
    "convox:build:list",
    "convox:build:read",
    "convox:rack:read",
];

/// A person's own second factors (enrol, verify, rename, remove, backup
/// codes, trusted devices): every role a person can hold has them. Resetting
/// someone else's methods (`auth:mfa_method:reset`) is admin only.
const SELF_SERVICE: &[&str] = &[
    "auth:mfa_method:create",
    "auth:mfa_method:update",
    "auth:mfa_method:delete",
    "auth:mfa_verification:create",
    "auth:mfa_backup_codes:generate",
    "auth:mfa_preferences:update",
    "auth:trusted_device:create",
    "auth:trusted_device:delete",
];

const OPS_EXTRA: &[&str] = &[
    "convox:app:restart",
    "convox:process:start",
    "convox:process:exec",
    "convox:process:terminate",
    "convox:release:list",
    // `convox env` reads the latest release by id (GET /apps/{app}/releases/{id});
    // ops "view env (via releases)" needs it.
    "convox:release:read",
    "convox:env:read",
];

const DEPLOYER_EXTRA: &[&str] = &[
    "convox:build:create",
    "convox:object:create",
    // Read back what they uploaded (object list/fetch/exists).
    "convox:object:read",
    "convox:release:create",
    "convox:release:promote",
    "convox:env:set",
    "convox:app:update",
    "gateway:deploy_approval_request:create",
    "gateway:deploy_approval_request:read",
];

const CICD: &[&str] = &[
    "convox:app:list",
    "convox:app:read",
    "convox:process:list",
    "convox:process:read",
    "convox:instance:list",
    "convox:instance:read",
    "convox:rack:read",
    "gateway:deploy_approval_request:create",
    "gateway:deploy_approval_request:read",
    "convox:deploy:deploy_with_approval",
];

const ADMIN: &[&str] = &["convox:*:*", "gateway:*:*", "auth:*:*", "security:*:*"];

const AUDITOR: &[&str] = &["gateway:audit_log:read"];

/// Every grant of a role.
pub fn grants(role: Role) -> Vec<&'static str> {
    match role {
        Role::Viewer => [VIEWER, SELF_SERVICE].concat(),
        Role::Ops => [VIEWER, SELF_SERVICE, OPS_EXTRA].concat(),
        Role::Deployer => [VIEWER, SELF_SERVICE, OPS_EXTRA, DEPLOYER_EXTRA].concat(),
        Role::Cicd => CICD.to_vec(),
        Role::Admin => ADMIN.to_vec(),
        Role::Auditor => [AUDITOR, SELF_SERVICE].concat(),
    }
}

fn grant_matches(grant: &str, permission: &str) -> bool {
    let mut g = grant.split(':');
    let mut p = permission.split(':');
    loop {
        match (g.next(), p.next()) {
            (None, None) => return true,
            (Some(gs), Some(ps)) if gs == "*" || gs == ps => {}
            _ => return false,
        }
    }
}

pub fn role_has(role: Role, permission: &str) -> bool {
    grants(role).iter().any(|g| grant_matches(g, permission))
}

/// Does `role` hold nothing that `bound` does not?
pub fn role_within(role: Role, bound: Role) -> bool {
    grants(role).iter().all(|grant| role_has(bound, grant))
}

/// What a token owned by a person may do: never more than the owner now may.
/// The lower of the two roles when one holds nothing the other lacks;
/// otherwise (e.g. a `cicd` token of a `viewer`) the token's role with the
/// owner's as a ceiling: each permission must then be held by both.
pub fn cap_token_role(token: Role, owner: Role) -> (Role, Option<Role>) {
    if role_within(token, owner) {
        (token, None)
    } else if role_within(owner, token) {
        (owner, None)
    } else {
        (token, Some(owner))
    }
}

/// The lowest role holding `permission` (admin holds every gateway-defined permission).
pub fn lowest_role_with(permission: &str) -> Option<Role> {
    Role::ALL.into_iter().find(|r| role_has(*r, permission))
}

/// Which layer refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialKind {
    /// The role does not hold the permission.
    Rbac,
    /// RBAC allowed it; a policy (destructive actions, rack-level operations,
    /// run/exec rules) refused it.
    Policy,
}

/// A refusal, phrased as users see it:
/// `permission denied: convox:app:delete requires admin role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub permission: String,
    pub message: String,
    pub kind: DenialKind,
}

impl Denial {
    /// The standard RBAC denial for `permission`.
    pub fn missing(permission: &str) -> Denial {
        let message = match lowest_role_with(permission) {
            Some(role) => format!("permission denied: {permission} requires {role} role"),
            None => format!("permission denied: {permission} is not granted to any role"),
        };
        Denial {
            permission: permission.to_owned(),
            message,
            kind: DenialKind::Rbac,
        }
    }

    /// A policy refusal (destructive actions, rack-level operations, run/exec rules).
    pub fn policy(permission: &str, message: impl Into<String>) -> Denial {
        Denial {
            permission: permission.to_owned(),
            message: message.into(),
            kind: DenialKind::Policy,
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Denial {}

pub fn authorize(role: Role, permission: &str) -> Result<(), Denial> {
    if role_has(role, permission) {
        Ok(())
    } else {
        Err(Denial::missing(permission))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_capped_at_its_owners_role() {
        use Role::*;
        assert_eq!(cap_token_role(Admin, Viewer), (Viewer, None));
        assert_eq!(cap_token_role(Deployer, Ops), (Ops, None));
        assert_eq!(cap_token_role(Viewer, Admin), (Viewer, None));
        assert_eq!(cap_token_role(Ops, Ops), (Ops, None));
        // Not ordered: both must hold each permission.
        assert_eq!(cap_token_role(Cicd, Viewer), (Cicd, Some(Viewer)));
        assert_eq!(cap_token_role(Admin, Auditor), (Auditor, None));
        assert_eq!(cap_token_role(Deployer, Auditor), (Deployer, Some(Auditor)));
        for token in Role::ALL {
            for owner in Role::ALL {
                let (role, ceiling) = cap_token_role(token, owner);
                for permission in grants(Admin).iter().chain(grants(token).iter()) {
                    let allowed = role_has(role, permission)
                        && ceiling.is_none_or(|c| role_has(c, permission));
                    if allowed {
                        assert!(
                            role_has(token, permission) && role_has(owner, permission),
                            "{token} token of {owner}: {permission}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn roles_inherit_and_admin_holds_everything() {
        assert!(role_has(Role::Viewer, "convox:app:list"));
        assert!(!role_has(Role::Viewer, "convox:process:exec"));
        assert!(role_has(Role::Ops, "convox:process:exec"));
        assert!(role_has(Role::Deployer, "convox:log:read"));
        assert!(role_has(Role::Deployer, "convox:release:promote"));
        assert!(!role_has(Role::Ops, "convox:release:promote"));
        assert!(role_has(Role::Admin, "convox:app:delete"));
        assert!(role_has(Role::Admin, "gateway:user:create"));
        assert!(!role_has(Role::Cicd, "convox:log:read"));
        assert!(role_has(Role::Cicd, "convox:deploy:deploy_with_approval"));
    }

    #[test]
    fn auditor_reads_the_log_and_touches_no_rack() {
        assert!(role_has(Role::Auditor, "gateway:audit_log:read"));
        assert!(role_has(Role::Admin, "gateway:audit_log:read"));
        for p in ["convox:app:list", "convox:rack:read", "convox:log:read"] {
            assert!(!role_has(Role::Auditor, p), "{p}");
        }
        assert!(!role_has(Role::Deployer, "gateway:audit_log:read"));
    }

    #[test]
    fn denials_name_the_lowest_role() {
        assert_eq!(
            authorize(Role::Deployer, "convox:app:delete")
                .unwrap_err()
                .message,
            "permission denied: convox:app:delete requires admin role"
        );
        assert_eq!(
            authorize(Role::Viewer, "convox:process:exec")
                .unwrap_err()
                .message,
            "permission denied: convox:process:exec requires ops role"
        );
        assert_eq!(
            authorize(Role::Viewer, "convox:env:set")
                .unwrap_err()
                .message,
            "permission denied: convox:env:set requires deployer role"
        );
        assert!(authorize(Role::Ops, "convox:process:exec").is_ok());
        assert_eq!(
            authorize(Role::Viewer, "convox:process:exec")
                .unwrap_err()
                .kind,
            DenialKind::Rbac
        );
        assert_eq!(
            Denial::policy("convox:app:delete", "no").kind,
            DenialKind::Policy
        );
    }

    #[test]
    fn ops_reads_env_through_releases_and_deployers_read_their_objects() {
        for p in [
            "convox:release:list",
            "convox:release:read",
            "convox:env:read",
        ] {
            assert!(role_has(Role::Ops, p), "{p}");
            assert!(!role_has(Role::Viewer, p), "{p}");
        }
        assert!(role_has(Role::Deployer, "convox:object:read"));
        assert!(!role_has(Role::Ops, "convox:object:read"));
        assert_eq!(
            authorize(Role::Viewer, "convox:release:read")
                .unwrap_err()
                .message,
            "permission denied: convox:release:read requires ops role"
        );
    }

    #[test]
    fn wildcards_match_whole_segments_only() {
        assert!(grant_matches("convox:*:*", "convox:app:list"));
        assert!(!grant_matches("convox:*:*", "convox:app"));
        assert!(!grant_matches("convox:*", "convox:app:list"));
        assert!(!grant_matches("convox:app:*", "convoxx:app:list"));
    }
}
