//! The fixed cast of test users the provider can sign in.
//!
//! The gateway's tests depend on these exact identities (its default test config
//! maps `admin@example.com` to the admin role and so on), so they are constants,
//! not configuration.

use serde::Serialize;

/// One identity the provider can sign in as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TestUser {
    /// Stable subject identifier. Numeric strings, the way Google's `sub` looks, so a
    /// gateway that (wrongly) keys users by email rather than `sub` can't tell the difference.
    pub sub: &'static str,
    pub email: &'static str,
    pub email_verified: bool,
    pub name: &'static str,
    pub given_name: &'static str,
    pub family_name: &'static str,
    /// Google Workspace hosted domain; `None` for consumer-style accounts.
    pub hd: Option<&'static str>,
}

/// Every test user, in the order the picker page lists them.
pub static TEST_USERS: &[TestUser] = &[
    TestUser {
        sub: "100000000000000000001",
        email: "admin@example.com",
        email_verified: true,
        name: "Admin User",
        given_name: "Admin",
        family_name: "User",
        hd: Some("example.com"),
    },
    TestUser {
        sub: "100000000000000000002",
        email: "deployer@example.com",
        email_verified: true,
        name: "Deployer User",
        given_name: "Deployer",
        family_name: "User",
        hd: Some("example.com"),
    },
    TestUser {
        sub: "100000000000000000003",
        email: "ops@example.com",
        email_verified: true,
        name: "Ops User",
        given_name: "Ops",
        family_name: "User",
        hd: Some("example.com"),
    },
    TestUser {
        sub: "100000000000000000004",
        email: "viewer@example.com",
        email_verified: true,
        name: "Viewer User",
        given_name: "Viewer",
        family_name: "User",
        hd: Some("example.com"),
    },
    TestUser {
        sub: "100000000000000000005",
        email: "unauthorized@wrongdomain.com",
        email_verified: true,
        name: "Unauthorized User",
        given_name: "Unauthorized",
        family_name: "User",
        hd: Some("wrongdomain.com"),
    },
    TestUser {
        sub: "100000000000000000006",
        email: "unverified@example.com",
        email_verified: false,
        name: "Unverified User",
        given_name: "Unverified",
        family_name: "User",
        hd: Some("example.com"),
    },
];

/// The test user with this email (compared case-insensitively, as mail providers do).
pub fn find_user(email: &str) -> Option<&'static TestUser> {
    TEST_USERS
        .iter()
        .find(|user| user.email.eq_ignore_ascii_case(email.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn subjects_and_emails_are_unique() {
        let subs: HashSet<_> = TEST_USERS.iter().map(|u| u.sub).collect();
        let emails: HashSet<_> = TEST_USERS.iter().map(|u| u.email).collect();
        assert_eq!(subs.len(), TEST_USERS.len());
        assert_eq!(emails.len(), TEST_USERS.len());
    }

    #[test]
    fn hosted_domain_matches_email_domain() {
        for user in TEST_USERS {
            let domain = user.email.rsplit('@').next();
            assert_eq!(user.hd, domain, "{}", user.email);
        }
    }

    #[test]
    fn lookup_ignores_case_and_rejects_strangers() {
        assert_eq!(
            find_user("Admin@Example.com").map(|u| u.sub),
            Some("100000000000000000001")
        );
        assert!(find_user("nobody@example.com").is_none());
        assert!(find_user("").is_none());
    }
}
