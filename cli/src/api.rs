//! The gateway's HTTP API as the CLI uses it (README "Signing in"): CLI login,
//! logout, `/info`, `/health`, the API-token endpoints, and (in [`mfa`]) the
//! MFA routes under `/api/v1/auth/mfa/`.
//!
//! Every error the gateway answers with (`{"error": "..."}`, plus
//! `X-Error-Reason` on a 401) becomes an [`ApiError::Status`] whose text is the
//! gateway's own message, so the user sees `Error: email domain not allowed`
//! rather than a status code. Redirects are not followed: a bearer secret must
//! not be replayed somewhere the user did not name.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::racks::GatewayUrl;

pub mod mfa;

/// The header that carries a TOTP, YubiKey OTP or backup code on one request.
pub const MFA_CODE_HEADER: &str = "X-MFA-TOTP";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No HTTP answer at all (DNS, refused, TLS, timeout).
    #[error("cannot reach the gateway at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// The gateway answered with an error status.
    #[error("{message}")]
    Status {
        status: StatusCode,
        message: String,
        reason: Option<String>,
    },
    /// A success status with a body we cannot read.
    #[error("unexpected answer from the gateway at {url}: {detail}")]
    Decode { url: String, detail: String },
}

impl ApiError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(StatusCode::UNAUTHORIZED)
    }

    /// The gateway's `X-Error-Reason`, if it sent one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ApiError::Status { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }

    /// Worth polling again: the gateway is briefly unreachable or overloaded.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Unreachable { .. } => true,
            ApiError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Decode { .. } => false,
        }
    }
}

/// `POST /api/v1/auth/cli/start`.
#[derive(Debug, Clone, Serialize)]
pub struct StartLogin {
    pub cli_secret_sha256: String,
    pub device_id: String,
    pub device_name: String,
    pub device_os: String,
    pub client_version: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoginStarted {
    pub auth_url: String,
    pub state: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    /// The code the gateway's confirmation page shows: the person confirms
    /// only if it matches the one printed here.
    #[serde(default)]
    pub user_code: Option<String>,
}

/// `POST /api/v1/auth/cli/complete`. Holds the CLI secret: no `Debug`.
#[derive(Clone, Serialize)]
pub struct CompleteLogin {
    pub state: String,
    pub cli_secret: String,
    pub device_id: String,
    pub device_name: String,
    pub device_os: String,
    pub client_version: String,
}

/// The session a completed login hands over. Holds the token: no `Debug`.
#[derive(Clone, Deserialize)]
pub struct NewSession {
    pub token: String,
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub session_id: Option<Value>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default)]
    pub device_name: Option<String>,
    #[serde(default)]
    pub mfa_verified: Option<bool>,
    /// The person has a method: this session may only verify until it does.
    #[serde(default)]
    pub mfa_required: bool,
    /// The person has no method yet: this session may only enrol.
    #[serde(default)]
    pub enrollment_required: bool,
    #[serde(default)]
    pub mfa_method: Option<String>,
}

pub enum LoginPoll {
    Pending,
    Complete(Box<NewSession>),
}

/// `GET /api/v1/info`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Info {
    #[serde(default)]
    pub user: Option<InfoUser>,
    #[serde(default)]
    pub credential: Option<InfoCredential>,
    #[serde(default)]
    pub rack: Option<InfoRack>,
    #[serde(default)]
    pub version: Option<InfoVersion>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct InfoUser {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct InfoCredential {
    #[serde(default)]
    pub kind: String,
    /// The role this credential acts with (an API token's own role).
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct InfoRack {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct InfoVersion {
    #[serde(default)]
    pub gateway: Option<String>,
}

/// `POST /api/v1/api-tokens`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateApiToken {
    pub name: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A client for one gateway, optionally carrying a bearer secret.
#[derive(Clone)]
pub struct GatewayClient {
    base: GatewayUrl,
    bearer: Option<String>,
    /// Sent as `X-MFA-TOTP` on every request of this client (see [`GatewayClient::with_mfa_code`]).
    mfa_code: Option<String>,
    http: reqwest::Client,
}

impl GatewayClient {
    pub fn new(base: &GatewayUrl, bearer: Option<&str>) -> anyhow::Result<GatewayClient> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("rack-gateway-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(GatewayClient {
            base: base.clone(),
            bearer: bearer.map(str::to_owned),
            mfa_code: None,
            http,
        })
    }

    /// The same client, sending `code` as MFA proof on each of its requests.
    /// Codes are single use: make one for the one call that needs it.
    pub fn with_mfa_code(&self, code: &str) -> GatewayClient {
        GatewayClient {
            mfa_code: Some(code.to_owned()),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &GatewayUrl {
        &self.base
    }

    pub async fn start_login(&self, body: &StartLogin) -> Result<LoginStarted, ApiError> {
        self.json(Method::POST, "/api/v1/auth/cli/start", Some(body))
            .await
    }

    /// One poll: `202` is pending, `200` hands over the session, anything else is an error.
    pub async fn complete_login(&self, body: &CompleteLogin) -> Result<LoginPoll, ApiError> {
        let (status, value) = self
            .send(Method::POST, "/api/v1/auth/cli/complete", Some(body))
            .await?;
        if status == StatusCode::ACCEPTED {
            return Ok(LoginPoll::Pending);
        }
        let session: NewSession = decode(&self.base.endpoint("/api/v1/auth/cli/complete"), value)?;
        Ok(LoginPoll::Complete(Box::new(session)))
    }

    /// Revoke the caller's own session.
    pub async fn logout(&self) -> Result<(), ApiError> {
        self.send::<()>(Method::POST, "/api/v1/auth/logout", None)
            .await
            .map(|_| ())
    }

    pub async fn info(&self) -> Result<Info, ApiError> {
        self.json::<(), _>(Method::GET, "/api/v1/info", None).await
    }

    /// `GET /health` (no credential needed).
    pub async fn health(&self) -> Result<Value, ApiError> {
        self.json::<(), _>(Method::GET, "/health", None).await
    }

    pub async fn list_api_tokens(&self) -> Result<Value, ApiError> {
        self.json::<(), _>(Method::GET, "/api/v1/api-tokens", None)
            .await
    }

    pub async fn get_api_token(&self, id: &str) -> Result<Value, ApiError> {
        self.json::<(), _>(Method::GET, &token_path(id), None).await
    }

    pub async fn create_api_token(&self, body: &CreateApiToken) -> Result<Value, ApiError> {
        self.json(Method::POST, "/api/v1/api-tokens", Some(body))
            .await
    }

    pub async fn delete_api_token(&self, id: &str) -> Result<Value, ApiError> {
        self.json::<(), _>(Method::DELETE, &token_path(id), None)
            .await
    }

    pub(crate) async fn json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let (_, value) = self.send(method, path, body).await?;
        decode(&self.base.endpoint(path), value)
    }

    /// Send one request; a 2xx gives its status and JSON body (`null` when empty).
    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, Value), ApiError> {
        let url = self.base.endpoint(path);
        let mut request = self
            .http
            .request(method, &url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(secret) = &self.bearer {
            request = request.bearer_auth(secret);
        }
        if let Some(code) = &self.mfa_code {
            request = request.header(MFA_CODE_HEADER, code);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| ApiError::Unreachable {
            url: url.clone(),
            detail: error_chain(&e.without_url()),
        })?;
        let status = response.status();
        let reason = response
            .headers()
            .get("x-error-reason")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.map_err(|e| ApiError::Unreachable {
            url: url.clone(),
            detail: error_chain(&e.without_url()),
        })?;
        let value: Option<Value> = if bytes.is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        if status.is_success() {
            return value.map(|v| (status, v)).ok_or_else(|| ApiError::Decode {
                url,
                detail: format!("HTTP {status} with a body that is not JSON"),
            });
        }
        let message = value
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| match (status.is_redirection(), location) {
                (true, Some(to)) => format!(
                    "the gateway at {} redirects to {to}; use that URL instead",
                    self.base
                ),
                _ => format!("the gateway answered HTTP {status} for {url}"),
            });
        Err(ApiError::Status {
            status,
            message,
            reason,
        })
    }
}

fn token_path(id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    // form encoding writes spaces as '+'; in a path they must be %20.
    format!("/api/v1/api-tokens/{}", encoded.replace('+', "%20"))
}

fn decode<T: DeserializeOwned>(url: &str, value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::Decode {
        url: url.to_owned(),
        detail: e.to_string(),
    })
}

/// `reqwest`'s top-level message is vague ("error sending request"); the cause is in the chain.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_are_escaped_in_paths() {
        assert_eq!(token_path("abc-123"), "/api/v1/api-tokens/abc-123");
        assert_eq!(token_path("a b/c"), "/api/v1/api-tokens/a%20b%2Fc");
    }

    #[test]
    fn transient_errors_are_the_ones_worth_retrying() {
        let status = |s: u16| ApiError::Status {
            status: StatusCode::from_u16(s).unwrap(),
            message: String::new(),
            reason: None,
        };
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(400).is_transient());
        assert!(!status(403).is_transient());
        assert!(status(401).is_unauthorized());
    }
}
