//! The OpenID Connect relying party: discovery, the authorization request
//! (code flow, PKCE S256, `state`, `nonce`, scopes `openid email profile`),
//! the code exchange (`oauth2` crate) and the ID token check (`jsonwebtoken`):
//! RS256 signature against the issuer's JWKS, `iss`, `aud` (and `azp`), `exp`,
//! and the `nonce` of this login.
//!
//! Discovery (`<issuer>/.well-known/openid-configuration`) is cached for an
//! hour; the JWKS for an hour too, and fetched again as soon as an ID token
//! names a key it does not hold. The HTTP client follows no
//! redirects and gives up after ten seconds.
//!
//! What the identity then may do (domain, verified email, the user) is
//! decided in [`super::login`], not here.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::RwLock;

use super::login::{IdTokenCheck, LoginFailure};
use crate::settings::OAuthSettings;

const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
const JWKS_TTL: Duration = Duration::from_secs(3600);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock skew allowed on `exp`.
const LEEWAY_SECONDS: u64 = 60;

/// The token response: the standard fields plus the OIDC `id_token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdTokenFields {
    #[serde(default)]
    id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenFields {}

type OidcClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenFields, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

struct Cached<T> {
    value: T,
    fetched: Instant,
}

/// An authorization request ready to send the browser to. The state, nonce
/// and verifier are secrets of this login: stored in `login_states`, never logged.
pub struct AuthorizationRequest {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// What a valid ID token says about the person.
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// Google Workspace hosted domain (`hd`).
    pub hosted_domain: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    /// A boolean; some providers have sent the string "true".
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    hd: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

pub struct Provider {
    issuer: String,
    client_id: String,
    client_secret: SecretString,
    http: reqwest::Client,
    discovery: RwLock<Option<Cached<Discovery>>>,
    jwks: RwLock<Option<Cached<Vec<Jwk>>>>,
}

impl Provider {
    pub fn new(settings: &OAuthSettings) -> Result<Provider, reqwest::Error> {
        let http = reqwest::Client::builder()
            // Never follow a redirect from the provider's endpoints (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("rack-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Provider {
            issuer: settings.issuer_url.clone(),
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            http,
            discovery: RwLock::new(None),
            jwks: RwLock::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Start a login: a fresh state, nonce and PKCE pair, and the URL to send the browser to.
    pub async fn authorization_request(
        &self,
        redirect_uri: &str,
        login_hint: Option<&str>,
    ) -> Result<AuthorizationRequest, LoginFailure> {
        let discovery = self.discovery().await?;
        let client = self.client(&discovery, redirect_uri)?;
        let state = random_token().map_err(|_| provider_error("no randomness available"))?;
        let nonce = random_token().map_err(|_| provider_error("no randomness available"))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state_for_request = state.clone();
        let mut request = client
            .authorize_url(move || CsrfToken::new(state_for_request))
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .add_extra_param("nonce", nonce.clone());
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_owned());
        }
        let (url, _) = request.url();
        Ok(AuthorizationRequest {
            url: url.to_string(),
            state,
            nonce,
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Redeem an authorization code and check the ID token that comes back.
    pub async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
        expected_nonce: &str,
    ) -> Result<VerifiedIdentity, LoginFailure> {
        let discovery = self.discovery().await?;
        let client = self.client(&discovery, redirect_uri)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|error| {
                let detail = match &error {
                    RequestTokenError::ServerResponse(response) => response.error().to_string(),
                    RequestTokenError::Request(_) => "token endpoint unreachable".to_owned(),
                    RequestTokenError::Parse(..) => "unreadable token response".to_owned(),
                    RequestTokenError::Other(_) => "unexpected token response".to_owned(),
                };
                tracing::warn!(%detail, "authorization code exchange failed");
                LoginFailure::ExchangeFailed(detail)
            })?;
        let id_token = response
            .extra_fields()
            .id_token
            .clone()
            .ok_or(LoginFailure::InvalidIdToken(IdTokenCheck::Missing))?;
        self.verify_id_token(&id_token, expected_nonce, &discovery)
            .await
    }

    async fn verify_id_token(
        &self,
        token: &str,
        expected_nonce: &str,
        discovery: &Discovery,
    ) -> Result<VerifiedIdentity, LoginFailure> {
        let invalid = LoginFailure::InvalidIdToken;
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| invalid(IdTokenCheck::Malformed))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid(IdTokenCheck::Algorithm));
        }
        let kid = header.kid.ok_or(invalid(IdTokenCheck::UnknownKey))?;
        let jwk = self.key(&kid, discovery).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| invalid(IdTokenCheck::UnknownKey))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&self.accepted_issuers(discovery));
        validation.set_audience(&[self.client_id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
            .map_err(|e| invalid(check_of(e.kind())))?
            .claims;
        if claims
            .azp
            .as_deref()
            .is_some_and(|azp| azp != self.client_id)
        {
            return Err(invalid(IdTokenCheck::AuthorizedParty));
        }
        let nonce_ok = claims.nonce.as_deref().is_some_and(|nonce| {
            nonce.len() == expected_nonce.len()
                && bool::from(nonce.as_bytes().ct_eq(expected_nonce.as_bytes()))
        });
        if !nonce_ok {
            return Err(LoginFailure::NonceMismatch);
        }
        let email_verified = match &claims.email_verified {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        Ok(VerifiedIdentity {
            subject: claims.sub,
            email: claims.email.map(|e| e.trim().to_lowercase()),
            email_verified,
            hosted_domain: claims.hd.map(|d| d.trim().to_lowercase()),
            name: claims.name.filter(|n| !n.trim().is_empty()),
        })
    }

    /// The issuer as discovery states it; Google also issues tokens with `iss`
    /// `accounts.google.com` (without the scheme), which it documents as equivalent.
    fn accepted_issuers(&self, discovery: &Discovery) -> Vec<String> {
        let mut issuers = vec![discovery.issuer.clone()];
        if discovery.issuer == "https://accounts.google.com" {
            issuers.push("accounts.google.com".to_owned());
        }
        issuers
    }

    fn client(
        &self,
        discovery: &Discovery,
        redirect_uri: &str,
    ) -> Result<OidcClient, LoginFailure> {
        let auth_url = AuthUrl::new(discovery.authorization_endpoint.clone())
            .map_err(|_| provider_error("discovery: bad authorization_endpoint"))?;
        let token_url = TokenUrl::new(discovery.token_endpoint.clone())
            .map_err(|_| provider_error("discovery: bad token_endpoint"))?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|_| provider_error("PUBLIC_URL does not make a valid redirect URI"))?;
        Ok(oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url)
            .set_redirect_uri(redirect))
    }

    async fn discovery(&self) -> Result<Discovery, LoginFailure> {
        if let Some(cached) = self.discovery.read().await.as_ref() {
            if cached.fetched.elapsed() < DISCOVERY_TTL {
                return Ok(cached.value.clone());
            }
        }
        let mut slot = self.discovery.write().await;
        if let Some(cached) = slot.as_ref() {
            if cached.fetched.elapsed() < DISCOVERY_TTL {
                return Ok(cached.value.clone());
            }
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let document: Discovery = self.get_json(&url).await.map_err(|e| {
            tracing::error!(%url, error = %e, "OpenID discovery failed");
            provider_error("discovery failed")
        })?;
        // OpenID Connect Discovery 4.3: the document must name the issuer we asked.
        if document.issuer.trim_end_matches('/') != self.issuer {
            tracing::error!(
                expected = %self.issuer,
                found = %document.issuer,
                "OpenID discovery names another issuer; check OAUTH_ISSUER_URL"
            );
            return Err(provider_error("discovery names another issuer"));
        }
        *slot = Some(Cached {
            value: document.clone(),
            fetched: Instant::now(),
        });
        Ok(document)
    }

    /// The signing key `kid`, fetching the JWKS again when it is unknown or stale.
    /// (ID tokens come from the token endpoint, not from the browser, so an
    /// unknown `kid` means the provider rotated its keys, not an attack.)
    async fn key(&self, kid: &str, discovery: &Discovery) -> Result<Jwk, LoginFailure> {
        if let Some(key) = find_key(self.jwks.read().await.as_ref(), kid) {
            return Ok(key);
        }
        let mut slot = self.jwks.write().await;
        // Another login may have fetched the new keys while this one waited.
        if let Some(key) = find_key(slot.as_ref(), kid) {
            return Ok(key);
        }
        let set: serde_json::Value = self.get_json(&discovery.jwks_uri).await.map_err(|e| {
            tracing::error!(url = %discovery.jwks_uri, error = %e, "JWKS fetch failed");
            provider_error("JWKS fetch failed")
        })?;
        *slot = Some(Cached {
            value: parse_jwks(&set),
            fetched: Instant::now(),
        });
        find_key(slot.as_ref(), kid).ok_or(LoginFailure::InvalidIdToken(IdTokenCheck::UnknownKey))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .http
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        response.json::<T>().await.map_err(|e| e.to_string())
    }
}

/// Key `kid` from a cached JWKS that is not stale.
fn find_key(cached: Option<&Cached<Vec<Jwk>>>, kid: &str) -> Option<Jwk> {
    cached
        .filter(|c| c.fetched.elapsed() < JWKS_TTL)?
        .value
        .iter()
        .find(|k| k.common.key_id.as_deref() == Some(kid))
        .cloned()
}

/// The keys of a JWKS that `jsonwebtoken` understands; others (new key types) are skipped.
fn parse_jwks(set: &serde_json::Value) -> Vec<Jwk> {
    if let Ok(all) = serde_json::from_value::<JwkSet>(set.clone()) {
        return all.keys;
    }
    set.get("keys")
        .and_then(|k| k.as_array())
        .map(|keys| {
            keys.iter()
                .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn check_of(kind: &jsonwebtoken::errors::ErrorKind) -> IdTokenCheck {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::InvalidSignature => IdTokenCheck::Signature,
        ErrorKind::ExpiredSignature => IdTokenCheck::Expired,
        ErrorKind::InvalidIssuer => IdTokenCheck::Issuer,
        ErrorKind::InvalidAudience => IdTokenCheck::Audience,
        ErrorKind::InvalidAlgorithm => IdTokenCheck::Algorithm,
        ErrorKind::ImmatureSignature => IdTokenCheck::NotYetValid,
        ErrorKind::MissingRequiredClaim(_) => IdTokenCheck::MissingClaim,
        _ => IdTokenCheck::Malformed,
    }
}

fn provider_error(detail: &str) -> LoginFailure {
    LoginFailure::ProviderError(detail.to_owned())
}

/// 256 random bits, base64url: states and nonces.
pub fn random_token() -> Result<String, getrandom::Error> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_with_unknown_key_types_keeps_the_ones_it_understands() {
        let set = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "use": "sig", "alg": "RS256", "n": "sXch", "e": "AQAB"},
            {"kty": "FUTURE", "kid": "b"}
        ]});
        let keys = parse_jwks(&set);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].common.key_id.as_deref(), Some("a"));
        assert!(parse_jwks(&serde_json::json!({"nothing": 1})).is_empty());
    }

    #[test]
    fn validation_errors_name_their_check() {
        use jsonwebtoken::errors::ErrorKind;
        assert_eq!(
            check_of(&ErrorKind::InvalidSignature),
            IdTokenCheck::Signature
        );
        assert_eq!(
            check_of(&ErrorKind::ExpiredSignature),
            IdTokenCheck::Expired
        );
        assert_eq!(
            check_of(&ErrorKind::InvalidAudience),
            IdTokenCheck::Audience
        );
        assert_eq!(check_of(&ErrorKind::InvalidIssuer), IdTokenCheck::Issuer);
        assert_eq!(check_of(&ErrorKind::InvalidToken), IdTokenCheck::Malformed);
    }
}
