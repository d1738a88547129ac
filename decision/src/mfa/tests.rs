use super::*;
use crate::rbac::{permissions::grants, Role};
use crate::routes::{handler, permission_for, RouteMatch, ROUTES};
use std::collections::BTreeSet;

/// Every permission the proxy can check for a rack route: the route's own,
/// and what reading its form can turn it into.
fn every_rack_permission() -> BTreeSet<&'static str> {
    let forms: [&[(&str, &str)]; 4] = [
        &[],
        &[("env", "A=1")],
        &[("parameters", "x=1")],
        &[("count", "2")],
    ];
    let mut all = BTreeSet::new();
    for route in ROUTES {
        let method = if route.method == "*" {
            "POST"
        } else {
            route.method
        };
        let m = RouteMatch {
            route,
            method: http::Method::from_bytes(method.as_bytes()).unwrap(),
            params: Vec::new(),
        };
        for form in forms {
            let form: Vec<(String, String)> = form
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            all.insert(permission_for(&m, Some(&form)));
        }
        all.insert(permission_for(&m, None));
    }
    all
}

#[test]
fn every_rack_route_and_every_grant_has_a_level() {
    let mut missing = Vec::new();
    for permission in every_rack_permission() {
        if level_of(permission).is_err() {
            missing.push(permission.to_owned());
        }
    }
    for role in Role::ALL {
        for grant in grants(role) {
            if !grant.contains('*') && level_of(grant).is_err() {
                missing.push(format!("{grant} (granted to {role})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "write permissions without an MFA level: {missing:?}"
    );
    // The walk really reaches the form-dependent permissions.
    let all = every_rack_permission();
    assert!(all.contains("convox:env:set") && all.contains("convox:rack:manage"));
    assert!(ROUTES.iter().any(|r| r.handler == handler::RELEASE_CREATE));
}

#[test]
fn a_write_without_a_level_is_refused() {
    assert_eq!(
        level_of("convox:app:frobnicate"),
        Err(Unlisted("convox:app:frobnicate".into()))
    );
    assert_eq!(
        level_of("convox:app:frobnicate").unwrap_err().to_string(),
        "no MFA level is defined for convox:app:frobnicate; refused (fail closed)"
    );
    // Reads are none by rule.
    assert_eq!(level_of("convox:app:list"), Ok(Level::None));
    assert_eq!(level_of("gateway:audit_log:read"), Ok(Level::None));
    // A permission whose last segment merely contains "read" is not a read.
    assert!(level_of("convox:app:unread").is_err());
}

#[test]
fn levels_are_those_of_the_reference_table() {
    use Level::*;
    for (p, l) in [
        ("convox:app:delete", Always),
        ("convox:instance:terminate", Always),
        ("gateway:deploy_approval_request:approve", Always),
        ("gateway:api_token:create", Always),
        ("gateway:user:update", Always),
        ("security:secret:update", Always),
        ("auth:mfa_method:delete", Always),
        ("convox:env:set", StepUp),
        ("convox:release:promote", StepUp),
        ("convox:process:exec", StepUp),
        ("convox:build:create", StepUp),
        ("auth:mfa_backup_codes:generate", StepUp),
        ("auth:trusted_device:create", StepUp),
        ("convox:object:create", None),
        ("auth:mfa_method:create", None),
        ("auth:mfa_verification:create", None),
        ("gateway:deploy_approval_request:create", None),
        // Decision 5: rack-level operations only with proof on the request.
        ("convox:rack:update", Always),
    ] {
        assert_eq!(level_of(p), Ok(l), "{p}");
    }
}

#[test]
fn the_table_names_each_permission_once() {
    let mut seen = BTreeSet::new();
    for (p, _) in LEVELS {
        assert!(seen.insert(*p), "{p} listed twice");
        assert_eq!(p.split(':').count(), 3, "{p}");
    }
}
