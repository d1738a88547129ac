//! The fixed roles. There are no custom roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only: apps, processes, logs, builds, rack status.
    Viewer,
    /// Viewer + restart apps, manage processes, view env.
    Ops,
    /// Ops + builds, releases, promote, env changes; nothing destructive.
    Deployer,
    /// Automation tokens only; never assigned to a person.
    Cicd,
    /// Everything, including users, tokens and approvals.
    Admin,
    /// Reads the audit log, timelines and exports; no rack access.
    Auditor,
}

impl Role {
    /// Every role, lowest first: the order in which a denial looks for "the
    /// lowest role that holds it" (auditor, outside the ladder, last).
    pub const ALL: [Role; 6] = [
        Role::Viewer,
        Role::Ops,
        Role::Deployer,
        Role::Cicd,
        Role::Admin,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Ops => "ops",
            Role::Deployer => "deployer",
            Role::Cicd => "cicd",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    /// `cicd` is for API tokens: a person with it would be an unattended account.
    pub fn assignable_to_people(self) -> bool {
        self != Role::Cicd
    }

    /// Parse a role a person will hold, refusing `cicd` with the reason.
    pub fn parse_for_person(text: &str) -> Result<Role, UnknownRole> {
        let role: Role = text.parse()?;
        if !role.assignable_to_people() {
            return Err(UnknownRole(format!(
                "role {role} is for API tokens only and cannot be given to a person"
            )));
        }
        Ok(role)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Role, UnknownRole> {
        let wanted = text.trim().to_ascii_lowercase();
        // "operations" is the original's label for ops.
        let wanted = if wanted == "operations" {
            "ops".to_owned()
        } else {
            wanted
        };
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                UnknownRole(format!(
                    "unknown role {text:?} (expected one of: {})",
                    names.join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_role_and_refuses_others() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert_eq!("Operations".parse::<Role>().unwrap(), Role::Ops);
        let e = "root".parse::<Role>().unwrap_err();
        assert!(e.0.contains("unknown role \"root\""), "{e}");
    }

    #[test]
    fn cicd_is_for_tokens_only() {
        assert!(Role::parse_for_person("cicd")
            .unwrap_err()
            .0
            .contains("API tokens only"));
        assert_eq!(Role::parse_for_person("auditor").unwrap(), Role::Auditor);
    }
}
