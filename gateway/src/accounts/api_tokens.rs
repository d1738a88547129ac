//! API tokens for automation: create (the secret is shown once), revoke.

use chrono::{DateTime, Utc};
use decision::rbac::Role;
use events::catalogue::{ApiTokenCreated, ApiTokenRevoked};
use events::store::Appender;
use projections::api_tokens::{self, ApiToken};
use sqlx::PgPool;
use uuid::Uuid;

use super::users::Requester;
use super::{valid_email, AccountError};
use crate::auth::secrets::{self, SecretKind};

pub struct CreatedToken {
    pub token: ApiToken,
    /// The secret: returned to the caller once, never stored or logged.
    pub secret: String,
}

pub struct NewToken<'a> {
    pub name: &'a str,
    pub role: &'a str,
    /// Owner; must be an enabled user.
    pub user_email: Option<&'a str>,
    /// RFC 3339; must be in the future.
    pub expires_at: Option<&'a str>,
}

pub fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, AccountError> {
    let at = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| {
            AccountError::Invalid(format!(
                "--expires-at {text:?} is not an RFC 3339 time (e.g. 2027-01-31T00:00:00Z): {e}"
            ))
        })?
        .with_timezone(&Utc);
    if at <= now {
        return Err(AccountError::Invalid(format!(
            "--expires-at {text} is in the past"
        )));
    }
    Ok(at)
}

pub async fn create(
    pool: &PgPool,
    appender: &Appender,
    by: &Requester,
    new: NewToken<'_>,
) -> Result<CreatedToken, AccountError> {
    let name = new.name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(AccountError::Invalid(
            "token name must be 1-100 printable characters".into(),
        ));
    }
    let role: Role = new
        .role
        .parse()
        .map_err(|e: decision::rbac::roles::UnknownRole| AccountError::Invalid(e.0))?;
    let expires_at = new
        .expires_at
        .map(|text| parse_expiry(text, Utc::now()))
        .transpose()?;
    let owner = match new.user_email {
        Some(email) => {
            let email = valid_email(email)?;
            let user = projections::users::by_email(pool, &email)
                .await?
                .ok_or_else(|| AccountError::NotFound(format!("no user {email}")))?;
            if user.disabled {
                return Err(AccountError::Invalid(format!("user {email} is disabled")));
            }
            Some(user)
        }
        None => None,
    };
    if api_tokens::active_by_name(pool, name).await?.is_some() {
        return Err(AccountError::Conflict(format!(
            "an active API token named {name:?} already exists"
        )));
    }
    let generated = secrets::generate(SecretKind::ApiToken)
        .map_err(|e| AccountError::Invalid(format!("no randomness available: {e}")))?;
    let token_id = Uuid::new_v4();
    let payload = ApiTokenCreated {
        token_id,
        name: name.to_owned(),
        token_sha256: generated.sha256,
        role: role.to_string(),
        user_id: owner.as_ref().map(|u| u.id),
        user_email: owner.as_ref().map(|u| u.email.clone()),
        expires_at: expires_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    };
    appender.append(by.draft(&payload)).await?;
    let token = api_tokens::by_id(pool, token_id)
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("token {token_id} vanished")))?;
    Ok(CreatedToken {
        token,
        secret: generated.secret,
    })
}

pub async fn revoke(
    pool: &PgPool,
    appender: &Appender,
    by: &Requester,
    id: &str,
    reason: Option<&str>,
) -> Result<ApiToken, AccountError> {
    let token_id = Uuid::parse_str(id.trim()).map_err(|_| {
        AccountError::Invalid(format!(
            "{id:?} is not a token id (a UUID; see `token list`)"
        ))
    })?;
    let token = api_tokens::by_id(pool, token_id)
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("no API token {token_id}")))?;
    if token.revoked_at.is_some() {
        return Err(AccountError::Conflict(format!(
            "API token {token_id} is already revoked"
        )));
    }
    let payload = ApiTokenRevoked {
        token_id,
        name: token.name.clone(),
        reason: reason.map(str::to_owned),
    };
    appender.append(by.draft(&payload)).await?;
    api_tokens::by_id(pool, token_id)
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("no API token {token_id}")))
}
