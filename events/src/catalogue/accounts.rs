//! People and automation: `user.*` and `api_token.*`. All folded into the
//! projections. Absent optional values are `null`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `user.created`: a person who may sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreated {
    pub user_id: Uuid,
    /// Lower-cased.
    pub email: String,
    pub name: Option<String>,
    pub role: String,
}

/// `user.role_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRoleChanged {
    pub user_id: Uuid,
    pub email: String,
    pub role: String,
    pub previous_role: String,
}

/// `user.disabled`: the user can no longer sign in (their sessions are
/// revoked by `session.revoked` events appended with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDisabled {
    pub user_id: Uuid,
    pub email: String,
    pub reason: Option<String>,
}

/// `api_token.created`: holds the SHA-256 of the secret only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenCreated {
    pub token_id: Uuid,
    pub name: String,
    /// hex SHA-256 of the secret; the secret itself never enters the chain.
    pub token_sha256: String,
    pub role: String,
    pub user_id: Option<Uuid>,
    pub user_email: Option<String>,
    /// RFC 3339; `null` means the token does not expire.
    pub expires_at: Option<String>,
}

/// `api_token.revoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRevoked {
    pub token_id: Uuid,
    pub name: String,
    pub reason: Option<String>,
}
