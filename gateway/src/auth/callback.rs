//! The provider's redirect back to us (`GET /api/v1/auth/{web,cli}/callback`),
//! up to the point where the person is known and admitted: claim the login
//! by its state (once), exchange the code, check the ID token, admit the
//! user. Every refusal on the way is recorded (`auth.login.failed`) and, when
//! the login is known, stored on it so the CLI's `/complete` can say why.

use chrono::Utc;
use projections::users::User;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::client::ClientInfo;
use super::login::{self, Channel, LoginFailure};
use super::login_state::{self, Claim, LoginRow};
use super::oidc::VerifiedIdentity;
use super::secrets;
use crate::state::AppState;

/// The query of the redirect (RFC 6749 4.1.2 and 4.1.2.1).
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// A login whose person is known and may sign in.
pub struct Admitted {
    pub login: LoginRow,
    pub user: User,
    pub identity: VerifiedIdentity,
}

/// Run the callback. `browser_state` (web only) is the state the login
/// cookie holds: the callback must come back to the browser that started it.
pub async fn admit(
    state: &AppState,
    client: &ClientInfo,
    channel: Channel,
    params: &CallbackParams,
    browser_state: Option<Option<&str>>,
) -> Result<Admitted, LoginFailure> {
    let source = &client.source;
    let fail = |failure: LoginFailure, login: Option<&LoginRow>, email: Option<String>| {
        refuse(state, client, channel, failure, login.map(|l| l.id), email)
    };

    let (Some(provider), Some(oauth)) = (&state.identity.oidc, &state.settings.auth.oauth) else {
        return Err(fail(LoginFailure::NotConfigured, None, None).await);
    };
    let Some(presented_state) = params.state.as_deref().filter(|s| !s.is_empty()) else {
        return Err(fail(LoginFailure::InvalidState, None, None).await);
    };
    if let Some(cookie) = browser_state {
        let same = cookie.is_some_and(|c| {
            c.len() == presented_state.len()
                && bool::from(c.as_bytes().ct_eq(presented_state.as_bytes()))
        });
        if !same {
            tracing::warn!("web callback without this browser's login cookie");
            return Err(fail(LoginFailure::InvalidState, None, None).await);
        }
    }
    let hash = secrets::sha256_hex(presented_state);
    let claim = login_state::claim_for_callback(&state.pool, &hash, channel, Utc::now()).await;
    let login = match claim {
        Ok(Claim::Claimed(login)) => login,
        Ok(Claim::Unknown) => return Err(fail(LoginFailure::InvalidState, None, None).await),
        Ok(Claim::Expired(login)) => {
            login::record_failed(
                state,
                source,
                Some(login.id),
                channel,
                &LoginFailure::ExpiredState,
                None,
            )
            .await;
            return Err(LoginFailure::ExpiredState);
        }
        Ok(Claim::Used(login)) => {
            // The login keeps its own outcome; only the replay is recorded.
            login::record_failed(
                state,
                source,
                Some(login.id),
                channel,
                &LoginFailure::ReplayedState,
                None,
            )
            .await;
            return Err(LoginFailure::ReplayedState);
        }
        Err(e) => {
            tracing::error!(error = %e, "login state lookup failed");
            return Err(fail(LoginFailure::Unavailable, None, None).await);
        }
    };

    if let Some(error) = params.error.as_deref() {
        return Err(fail(
            LoginFailure::ProviderError(error_code(error)),
            Some(&login),
            None,
        )
        .await);
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(fail(
            LoginFailure::ProviderError("missing_code".into()),
            Some(&login),
            None,
        )
        .await);
    };
    let redirect_uri = state.settings.oauth_redirect_uri(channel.as_str());
    let identity = match provider
        .exchange(code, &login.pkce_verifier, &redirect_uri, &login.nonce)
        .await
    {
        Ok(identity) => identity,
        Err(failure) => return Err(fail(failure, Some(&login), None).await),
    };
    match login::admit(state, oauth, &identity).await {
        Ok(user) => Ok(Admitted {
            login,
            user,
            identity,
        }),
        Err(failure) => {
            let email = identity.email.clone();
            Err(fail(failure, Some(&login), email).await)
        }
    }
}

/// Store the failure on the login (when known) and record `auth.login.failed`.
async fn refuse(
    state: &AppState,
    client: &ClientInfo,
    channel: Channel,
    failure: LoginFailure,
    login_id: Option<uuid::Uuid>,
    email: Option<String>,
) -> LoginFailure {
    if let Some(id) = login_id {
        if let Err(e) =
            login_state::mark_failed(&state.pool, id, &failure, email.as_deref(), Utc::now()).await
        {
            tracing::error!(error = %e, "could not store a login's failure");
        }
    }
    login::record_failed(
        state,
        &client.source,
        login_id,
        channel,
        &failure,
        email.as_deref(),
    )
    .await;
    failure
}

/// A provider's `error` parameter, kept only if it looks like an OAuth error code.
fn error_code(error: &str) -> String {
    let ok = !error.is_empty()
        && error.len() <= 64
        && error
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        error.to_owned()
    } else {
        "unrecognised_error".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_error_codes_are_kept_only_when_they_look_like_codes() {
        assert_eq!(error_code("access_denied"), "access_denied");
        assert_eq!(error_code("<script>"), "unrecognised_error");
        assert_eq!(error_code(&"a".repeat(65)), "unrecognised_error");
    }
}
