//! What the web and CLI logins share: why a login fails (stable reasons), who
//! may sign in (verified email, allowed domain, an enabled user), and the
//! events every attempt leaves: `auth.login.started`, then
//! `auth.login.succeeded` (atomically with its `session.created`) or
//! `auth.login.failed`. No event carries the state, the nonce, the code, an ID
//! token or a session secret; a login is named by its `login_id`.
//!
//! MFA (a later issue) slots in after [`admit`]: a login then waits in
//! `login_states` until the second factor is verified, before [`open_session`].

use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use events::catalogue::{EventPayload, LoginFailed, LoginStarted, LoginSucceeded};
use events::store::AppendError;
use events::{Actor, ActorKind, Source};
use projections::users::User;
use uuid::Uuid;

use super::client::ClientInfo;
use super::oidc::VerifiedIdentity;
use super::sessions;
use crate::settings::OAuthSettings;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Web,
    Cli,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Cli => "cli",
        }
    }
}

/// Which check an ID token failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenCheck {
    /// The token response had no `id_token`.
    Missing,
    Malformed,
    Algorithm,
    UnknownKey,
    Signature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    AuthorizedParty,
    MissingClaim,
    /// No `email` claim (the `email` scope is requested, so a provider must send it).
    Email,
}

impl IdTokenCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            IdTokenCheck::Missing => "missing",
            IdTokenCheck::Malformed => "malformed",
            IdTokenCheck::Algorithm => "algorithm",
            IdTokenCheck::UnknownKey => "unknown_key",
            IdTokenCheck::Signature => "signature",
            IdTokenCheck::Expired => "expired",
            IdTokenCheck::NotYetValid => "not_yet_valid",
            IdTokenCheck::Issuer => "issuer",
            IdTokenCheck::Audience => "audience",
            IdTokenCheck::AuthorizedParty => "authorized_party",
            IdTokenCheck::MissingClaim => "missing_claim",
            IdTokenCheck::Email => "email",
        }
    }

    const ALL: [IdTokenCheck; 12] = [
        IdTokenCheck::Missing,
        IdTokenCheck::Malformed,
        IdTokenCheck::Algorithm,
        IdTokenCheck::UnknownKey,
        IdTokenCheck::Signature,
        IdTokenCheck::Expired,
        IdTokenCheck::NotYetValid,
        IdTokenCheck::Issuer,
        IdTokenCheck::Audience,
        IdTokenCheck::AuthorizedParty,
        IdTokenCheck::MissingClaim,
        IdTokenCheck::Email,
    ];
}

/// Why a login was refused. [`LoginFailure::reason`] is stable: it goes in
/// `auth.login.failed`, the error page's `?error=` and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginFailure {
    DomainNotAllowed,
    EmailNotVerified,
    UnknownUser,
    UserDisabled,
    /// Locked after repeated failed MFA verifications, until an admin unlocks.
    UserLocked,
    /// No such login (or, on the web, not this browser's).
    InvalidState,
    ExpiredState,
    /// The login was already used.
    ReplayedState,
    /// `/complete` from a client that does not hold the login's `cli_secret`.
    ClientMismatch,
    InvalidIdToken(IdTokenCheck),
    NonceMismatch,
    /// The code exchange failed (detail: the provider's error code, or what went wrong).
    ExchangeFailed(String),
    /// The provider sent the browser back with an error, or could not be used (detail says which).
    ProviderError(String),
    NotConfigured,
    /// The audit chain or the database did not answer: nothing was granted.
    Unavailable,
}

impl LoginFailure {
    pub fn reason(&self) -> &'static str {
        match self {
            LoginFailure::DomainNotAllowed => "domain_not_allowed",
            LoginFailure::EmailNotVerified => "email_not_verified",
            LoginFailure::UnknownUser => "unknown_user",
            LoginFailure::UserDisabled => "user_disabled",
            LoginFailure::UserLocked => "user_locked",
            LoginFailure::InvalidState => "invalid_state",
            LoginFailure::ExpiredState => "expired_state",
            LoginFailure::ReplayedState => "replayed_state",
            LoginFailure::ClientMismatch => "client_mismatch",
            LoginFailure::InvalidIdToken(_) => "invalid_id_token",
            LoginFailure::NonceMismatch => "nonce_mismatch",
            LoginFailure::ExchangeFailed(_) => "exchange_failed",
            LoginFailure::ProviderError(_) => "provider_error",
            LoginFailure::NotConfigured => "not_configured",
            LoginFailure::Unavailable => "unavailable",
        }
    }

    /// More precise than the reason, where there is more to say (never a secret).
    pub fn detail(&self) -> Option<String> {
        match self {
            LoginFailure::InvalidIdToken(check) => Some(check.as_str().to_owned()),
            LoginFailure::ExchangeFailed(detail) | LoginFailure::ProviderError(detail) => {
                Some(detail.clone())
            }
            _ => None,
        }
    }

    /// Rebuild a failure stored in `login_states` (reason and detail columns).
    pub fn from_stored(reason: &str, detail: Option<&str>) -> LoginFailure {
        let detail = detail.unwrap_or_default().to_owned();
        match reason {
            "domain_not_allowed" => LoginFailure::DomainNotAllowed,
            "email_not_verified" => LoginFailure::EmailNotVerified,
            "unknown_user" => LoginFailure::UnknownUser,
            "user_disabled" => LoginFailure::UserDisabled,
            "user_locked" => LoginFailure::UserLocked,
            "invalid_state" => LoginFailure::InvalidState,
            "expired_state" => LoginFailure::ExpiredState,
            "replayed_state" => LoginFailure::ReplayedState,
            "client_mismatch" => LoginFailure::ClientMismatch,
            "invalid_id_token" => LoginFailure::InvalidIdToken(
                IdTokenCheck::ALL
                    .into_iter()
                    .find(|c| c.as_str() == detail)
                    .unwrap_or(IdTokenCheck::Malformed),
            ),
            "nonce_mismatch" => LoginFailure::NonceMismatch,
            "exchange_failed" => LoginFailure::ExchangeFailed(detail),
            "not_configured" => LoginFailure::NotConfigured,
            "unavailable" => LoginFailure::Unavailable,
            _ => LoginFailure::ProviderError(detail),
        }
    }

    /// The short message of the identity contract (CLI `/complete` bodies).
    pub fn message(&self) -> &'static str {
        match self {
            LoginFailure::DomainNotAllowed => "email domain not allowed",
            LoginFailure::EmailNotVerified => "email not verified",
            LoginFailure::UnknownUser | LoginFailure::UserDisabled => "user not authorized",
            LoginFailure::UserLocked => {
                "this account is locked after repeated failed MFA verifications; an admin must unlock it"
            }
            LoginFailure::InvalidState
            | LoginFailure::ExpiredState
            | LoginFailure::ReplayedState => "invalid or expired state",
            LoginFailure::ClientMismatch => "login was started by a different client",
            LoginFailure::InvalidIdToken(_) => {
                "the sign-in provider's ID token failed verification"
            }
            LoginFailure::NonceMismatch => {
                "the ID token does not belong to this login (nonce mismatch)"
            }
            LoginFailure::ExchangeFailed(_) => {
                "the sign-in provider did not accept the authorization code"
            }
            LoginFailure::ProviderError(_) => "the sign-in provider reported an error",
            LoginFailure::NotConfigured => "sign-in is not configured on this gateway",
            LoginFailure::Unavailable => {
                "the gateway cannot record sign-ins right now; nothing was granted, try again"
            }
        }
    }

    /// The status `/complete` answers with when the login failed this way.
    pub fn status(&self) -> StatusCode {
        match self {
            LoginFailure::DomainNotAllowed
            | LoginFailure::EmailNotVerified
            | LoginFailure::UserLocked
            | LoginFailure::ClientMismatch => StatusCode::FORBIDDEN,
            LoginFailure::UnknownUser | LoginFailure::UserDisabled => StatusCode::UNAUTHORIZED,
            LoginFailure::InvalidState
            | LoginFailure::ExpiredState
            | LoginFailure::ReplayedState
            | LoginFailure::InvalidIdToken(_)
            | LoginFailure::NonceMismatch => StatusCode::BAD_REQUEST,
            LoginFailure::ExchangeFailed(_) | LoginFailure::ProviderError(_) => {
                StatusCode::BAD_GATEWAY
            }
            LoginFailure::NotConfigured | LoginFailure::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

/// What the client says about itself (CLI logins); free text, bounded.
/// Stored as the `device_*` and `client_version` columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Device {
    #[sqlx(rename = "device_id")]
    pub id: Option<String>,
    #[sqlx(rename = "device_name")]
    pub name: Option<String>,
    #[sqlx(rename = "device_os")]
    pub os: Option<String>,
    pub client_version: Option<String>,
}

impl Device {
    /// Trim, drop empties, cut at 200 characters, refuse control characters.
    pub fn clean(
        id: Option<&str>,
        name: Option<&str>,
        os: Option<&str>,
        client_version: Option<&str>,
    ) -> Result<Device, String> {
        fn field(label: &str, value: Option<&str>) -> Result<Option<String>, String> {
            let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            if value.chars().any(char::is_control) {
                return Err(format!("{label} must not contain control characters"));
            }
            Ok(Some(value.chars().take(200).collect()))
        }
        Ok(Device {
            id: field("device_id", id)?,
            name: field("device_name", name)?,
            os: field("device_os", os)?,
            client_version: field("client_version", client_version)?,
        })
    }

    /// Fields given later (at `/complete`) win over those given at start.
    pub fn or(self, earlier: Device) -> Device {
        Device {
            id: self.id.or(earlier.id),
            name: self.name.or(earlier.name),
            os: self.os.or(earlier.os),
            client_version: self.client_version.or(earlier.client_version),
        }
    }
}

/// The actor of events a signed-in user causes.
pub fn user_actor(user: &User) -> Actor {
    Actor {
        kind: ActorKind::User,
        id: Some(user.id.to_string()),
        email: Some(user.email.clone()),
        role: Some(user.role.clone()),
    }
}

/// Who may sign in: a verified email in an allowed domain (and `hd`, when the
/// provider sends it, in one too) that belongs to an enabled user.
pub async fn admit(
    state: &AppState,
    oauth: &OAuthSettings,
    identity: &VerifiedIdentity,
) -> Result<User, LoginFailure> {
    let email = identity
        .email
        .as_deref()
        .ok_or(LoginFailure::InvalidIdToken(IdTokenCheck::Email))?;
    if !identity.email_verified {
        return Err(LoginFailure::EmailNotVerified);
    }
    let allowed = |domain: &str| oauth.allowed_domains.iter().any(|d| d == domain);
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if !allowed(domain) {
        return Err(LoginFailure::DomainNotAllowed);
    }
    if identity
        .hosted_domain
        .as_deref()
        .is_some_and(|hd| !allowed(hd))
    {
        return Err(LoginFailure::DomainNotAllowed);
    }
    let user = projections::users::by_email(&state.pool, email)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "user lookup failed during sign-in");
            LoginFailure::Unavailable
        })?
        .ok_or(LoginFailure::UnknownUser)?;
    if user.disabled {
        return Err(LoginFailure::UserDisabled);
    }
    let locked = projections::mfa::user_state(&state.pool, user.id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "lock lookup failed during sign-in");
            LoginFailure::Unavailable
        })?
        .is_some_and(|u| u.locked_at.is_some());
    if locked {
        return Err(LoginFailure::UserLocked);
    }
    Ok(user)
}

/// `auth.login.started`: recorded before the browser is sent to the provider
/// (or, past the client's budget of anonymous events, counted into the
/// window's `auth.anonymous_events.aggregated`: see [`super::anonymous_events`]).
pub async fn record_started(
    state: &AppState,
    client: &ClientInfo,
    login_id: Uuid,
    channel: Channel,
    device: &Device,
) -> Result<(), AppendError> {
    // A CLI says what it runs on (each field null where it did not); a browser says nothing.
    let told = |field: &Option<String>| (channel == Channel::Cli).then(|| field.clone());
    if !state
        .identity
        .anonymous_events
        .admit(LoginStarted::TYPE, client.ip)
    {
        return Ok(());
    }
    let started = LoginStarted {
        login_id,
        channel: channel.as_str().to_owned(),
        device_id: told(&device.id),
        device_name: told(&device.name),
        device_os: told(&device.os),
        client_version: told(&device.client_version),
    };
    state
        .appender
        .append(
            started
                .draft(Actor::anonymous())
                .with_source(client.source.clone()),
        )
        .await
        .map(|_| ())
}

/// `auth.login.failed`. The refusal stands whether or not this is written, so
/// a failure to record is logged, not returned. A failure no provider vouched
/// for (no email: a forged or replayed callback, a bad start) is anonymous
/// and goes through the budget of [`super::anonymous_events`].
pub async fn record_failed(
    state: &AppState,
    source: &Source,
    login_id: Option<Uuid>,
    channel: Channel,
    failure: &LoginFailure,
    email: Option<&str>,
) {
    tracing::info!(
        reason = failure.reason(),
        detail = failure.detail(),
        channel = channel.as_str(),
        "login refused"
    );
    if email.is_none() {
        let ip = source
            .ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        if !state.identity.anonymous_events.admit(LoginFailed::TYPE, ip) {
            return;
        }
    }
    let draft = LoginFailed {
        login_id,
        channel: channel.as_str().to_owned(),
        reason: failure.reason().to_owned(),
        detail: failure.detail(),
        email: email.map(str::to_owned),
    }
    .draft(Actor::anonymous())
    .with_source(source.clone());
    if let Err(e) = state.appender.append(draft).await {
        tracing::error!(error = %e, reason = failure.reason(), "could not record auth.login.failed");
    }
}

/// A session just opened: the secret goes to the client once and nowhere else.
pub struct OpenedSession {
    pub session_id: Uuid,
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

impl OpenedSession {
    pub fn expires_at_text(&self) -> String {
        self.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

/// Open the user's session: `session.created` and `auth.login.succeeded`,
/// appended together (both or neither).
pub async fn open_session(
    state: &AppState,
    source: &Source,
    login_id: Uuid,
    channel: Channel,
    user: &User,
    device: &Device,
) -> Result<OpenedSession, LoginFailure> {
    let lifetime = match channel {
        Channel::Web => state.settings.auth.web_session_lifetime,
        Channel::Cli => state.settings.auth.cli_session_lifetime,
    };
    let (payload, secret) = sessions::new_session(user, channel, device, lifetime, Utc::now())
        .map_err(|e| {
            tracing::error!(error = %e, "no randomness for a session secret");
            LoginFailure::Unavailable
        })?;
    let actor = user_actor(user);
    let created = payload.draft(actor.clone()).with_source(source.clone());
    let succeeded = LoginSucceeded {
        login_id,
        channel: channel.as_str().to_owned(),
        email: user.email.clone(),
        user_id: user.id,
        session_id: payload.session_id,
        mfa_verified: false,
    }
    .draft(actor)
    .with_source(source.clone());
    state
        .appender
        .append_all(vec![created, succeeded])
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not record the new session; sign-in refused");
            LoginFailure::Unavailable
        })?;
    let expires_at = DateTime::parse_from_rfc3339(&payload.expires_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now());
    Ok(OpenedSession {
        session_id: payload.session_id,
        secret,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_failures_come_back_with_their_reason_and_detail() {
        let all = [
            LoginFailure::DomainNotAllowed,
            LoginFailure::EmailNotVerified,
            LoginFailure::UnknownUser,
            LoginFailure::UserDisabled,
            LoginFailure::UserLocked,
            LoginFailure::InvalidState,
            LoginFailure::ExpiredState,
            LoginFailure::ReplayedState,
            LoginFailure::ClientMismatch,
            LoginFailure::InvalidIdToken(IdTokenCheck::Audience),
            LoginFailure::NonceMismatch,
            LoginFailure::ExchangeFailed("invalid_grant".into()),
            LoginFailure::ProviderError("access_denied".into()),
            LoginFailure::NotConfigured,
            LoginFailure::Unavailable,
        ];
        for failure in all {
            let back = LoginFailure::from_stored(failure.reason(), failure.detail().as_deref());
            assert_eq!(back, failure);
        }
    }

    #[test]
    fn contract_messages_and_statuses() {
        assert_eq!(
            LoginFailure::DomainNotAllowed.message(),
            "email domain not allowed"
        );
        assert_eq!(
            LoginFailure::DomainNotAllowed.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(LoginFailure::UserDisabled.message(), "user not authorized");
        assert_eq!(LoginFailure::UnknownUser.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            LoginFailure::ClientMismatch.message(),
            "login was started by a different client"
        );
        assert_eq!(
            LoginFailure::ReplayedState.status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn device_fields_are_bounded_and_refuse_control_characters() {
        let long = "x".repeat(500);
        let d = Device::clean(Some(" id "), Some(&long), None, Some("")).unwrap();
        assert_eq!(d.id.as_deref(), Some("id"));
        assert_eq!(d.name.as_ref().map(String::len), Some(200));
        assert_eq!(d.client_version, None);
        assert!(Device::clean(Some("a\nb"), None, None, None).is_err());
        let later = Device::clean(None, Some("laptop"), None, None).unwrap();
        let merged = later.or(d);
        assert_eq!(merged.id.as_deref(), Some("id"));
        assert_eq!(merged.name.as_deref(), Some("laptop"));
    }
}
