//! People: add, change role, disable.

use decision::rbac::Role;
use events::catalogue::{EventPayload, SessionRevoked, UserCreated, UserDisabled, UserRoleChanged};
use events::store::Appender;
use events::{Actor, Draft, Source};
use projections::users::{self, User};
use sqlx::PgPool;
use uuid::Uuid;

use super::{valid_email, AccountError};

/// Who asks, and from where: recorded on every event.
#[derive(Debug, Clone)]
pub struct Requester {
    pub actor: Actor,
    pub source: Source,
}

impl Requester {
    /// The event `payload`, caused by this requester.
    pub fn draft<P: EventPayload>(&self, payload: &P) -> Draft {
        payload
            .draft(self.actor.clone())
            .with_source(self.source.clone())
    }
}

pub async fn add(
    pool: &PgPool,
    appender: &Appender,
    by: &Requester,
    email: &str,
    role: &str,
    name: Option<&str>,
) -> Result<User, AccountError> {
    let email = valid_email(email)?;
    let role = Role::parse_for_person(role).map_err(|e| AccountError::Invalid(e.0))?;
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    if users::by_email(pool, &email).await?.is_some() {
        return Err(AccountError::Conflict(format!(
            "user {email} already exists"
        )));
    }
    let user_id = Uuid::new_v4();
    let payload = UserCreated {
        user_id,
        email: email.clone(),
        name,
        role: role.to_string(),
    };
    appender.append(by.draft(&payload)).await?;
    users::by_id(pool, user_id)
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("user {email} vanished")))
}

/// `Ok(None)` when the user already has that role: nothing to record.
pub async fn set_role(
    pool: &PgPool,
    appender: &Appender,
    by: &Requester,
    email: &str,
    role: &str,
) -> Result<Option<User>, AccountError> {
    let email = valid_email(email)?;
    let role = Role::parse_for_person(role).map_err(|e| AccountError::Invalid(e.0))?;
    let user = users::by_email(pool, &email)
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("no user {email}")))?;
    if user.role == role.as_str() {
        return Ok(None);
    }
    let payload = UserRoleChanged {
        user_id: user.id,
        email: email.clone(),
        role: role.to_string(),
        previous_role: user.role.clone(),
    };
    appender.append(by.draft(&payload)).await?;
    Ok(users::by_id(pool, user.id).await?)
}

/// Disable a user and revoke every live session of theirs, atomically: the
/// next request with any of their sessions is refused.
pub async fn disable(
    pool: &PgPool,
    appender: &Appender,
    by: &Requester,
    email: &str,
    reason: Option<&str>,
) -> Result<(User, usize), AccountError> {
    let email = valid_email(email)?;
    let user = users::by_email(pool, &email)
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("no user {email}")))?;
    if user.disabled {
        return Err(AccountError::Conflict(format!(
            "user {email} is already disabled"
        )));
    }
    let sessions =
        projections::sessions::active_for_user(pool, user.id, chrono::Utc::now()).await?;
    let mut drafts = vec![by.draft(&UserDisabled {
        user_id: user.id,
        email: email.clone(),
        reason: reason.map(str::to_owned),
    })];
    for session in &sessions {
        drafts.push(by.draft(&SessionRevoked {
            session_id: session.id,
            user_id: user.id,
            email: email.clone(),
            reason: "user_disabled".into(),
        }));
    }
    appender.append_all(drafts).await?;
    let user = users::by_id(pool, user.id)
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("no user {email}")))?;
    Ok((user, sessions.len()))
}
