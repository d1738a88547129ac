//! Users and API tokens: the operations operators (CLI) and admins (API) run.
//! Each checks its input, then appends one event (or an atomic group); the
//! projections apply it in the same transaction.
//!
//! - [`users`]: add, change role, disable (which revokes the user's sessions too)
//! - [`api_tokens`]: create (the secret is returned once), revoke

pub mod api_tokens;
pub mod users;

use events::store::AppendError;

/// Why an account operation was refused. Maps to an HTTP status in one place.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Bad input: nothing was written.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// Conflicts with current state (duplicate email, already revoked...): nothing was written.
    #[error("{0}")]
    Conflict(String),
    /// The audit chain did not take the event, so the change did not happen.
    #[error("{0}")]
    Audit(AppendError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<AppendError> for AccountError {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::Rejected(message) => AccountError::Conflict(message),
            AppendError::Invalid(message) => AccountError::Invalid(message),
            other => AccountError::Audit(other),
        }
    }
}

impl AccountError {
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            AccountError::Invalid(_) => StatusCode::BAD_REQUEST,
            AccountError::NotFound(_) => StatusCode::NOT_FOUND,
            AccountError::Conflict(_) => StatusCode::CONFLICT,
            AccountError::Audit(_) => StatusCode::SERVICE_UNAVAILABLE,
            AccountError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// A plausible email address, lower-cased; refuses what would never sign in.
pub fn valid_email(text: &str) -> Result<String, AccountError> {
    let email = projections::users::normalize_email(text);
    let invalid = || AccountError::Invalid(format!("{text:?} is not an email address"));
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && email.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(email)
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            valid_email(" Admin@Example.COM ").unwrap(),
            "admin@example.com"
        );
        for bad in [
            "",
            "admin",
            "admin@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@example.com",
            "a@example.",
        ] {
            assert!(valid_email(bad).is_err(), "{bad:?} accepted");
        }
    }
}
