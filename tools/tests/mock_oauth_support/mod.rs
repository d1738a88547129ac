//! The relying party's side of the flow, shared by the mock-oauth test files.

// Each test crate uses a different part of this module.
#![allow(dead_code)]

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, TokenData, Validation};
use rand::RngCore as _;
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const TIMEOUT: Duration = Duration::from_secs(20);
pub const REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

/// A client that, like a relying party's back end, does not follow redirects.
pub fn client() -> Client {
    // reqwest is built without a default rustls provider; plain-http tests still need one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
        .expect("build reqwest client")
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// One authorization request as a relying party would make it.
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub nonce: Option<String>,
    pub pkce: Pkce,
    pub login_hint: Option<String>,
    pub extra: Vec<(String, String)>,
}

impl AuthRequest {
    pub fn new(client_id: &str, login_hint: Option<&str>) -> AuthRequest {
        AuthRequest {
            client_id: client_id.to_owned(),
            redirect_uri: REDIRECT_URI.to_owned(),
            scope: "openid email profile".to_owned(),
            state: format!("state-{}", random_string()),
            nonce: Some(format!("nonce-{}", random_string())),
            pkce: Pkce::new(),
            login_hint: login_hint.map(str::to_owned),
            extra: Vec::new(),
        }
    }

    pub fn with(mut self, name: &str, value: &str) -> AuthRequest {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn query(&self) -> Vec<(String, String)> {
        let mut query = vec![
            ("response_type".to_owned(), "code".to_owned()),
            ("client_id".to_owned(), self.client_id.clone()),
            ("redirect_uri".to_owned(), self.redirect_uri.clone()),
            ("scope".to_owned(), self.scope.clone()),
            ("state".to_owned(), self.state.clone()),
            ("code_challenge".to_owned(), self.pkce.challenge.clone()),
            ("code_challenge_method".to_owned(), "S256".to_owned()),
        ];
        if let Some(nonce) = &self.nonce {
            query.push(("nonce".to_owned(), nonce.clone()));
        }
        if let Some(hint) = &self.login_hint {
            query.push(("login_hint".to_owned(), hint.clone()));
        }
        query.extend(self.extra.iter().cloned());
        query
    }

    pub async fn send(&self, client: &Client, base: &str) -> Response {
        client
            .get(format!("{base}/authorize"))
            .query(&self.query())
            .send()
            .await
            .expect("authorize request")
    }
}

pub fn random_string() -> String {
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The query parameters of a 302's Location, after checking it goes to `redirect_uri`.
pub fn redirect_params(response: &Response, redirect_uri: &str) -> Vec<(String, String)> {
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "expected a 302 redirect"
    );
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .expect("Location header")
        .to_str()
        .expect("ASCII Location");
    let location = url::Url::parse(location).expect("absolute Location");
    let expected = url::Url::parse(redirect_uri).expect("redirect URI");
    assert_eq!(location.origin(), expected.origin());
    assert_eq!(location.path(), expected.path());
    location.query_pairs().into_owned().collect()
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Authorize headlessly and return the code, checking state came back.
pub async fn obtain_code(client: &Client, base: &str, request: &AuthRequest) -> String {
    let response = request.send(client, base).await;
    let params = redirect_params(&response, &request.redirect_uri);
    assert_eq!(param(&params, "state"), Some(request.state.as_str()));
    assert_eq!(param(&params, "error"), None, "{params:?}");
    param(&params, "code").expect("code in redirect").to_owned()
}

/// The token request, client authenticated with `client_secret_post`.
pub async fn exchange(
    client: &Client,
    base: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
    client_id: &str,
    client_secret: &str,
) -> Response {
    client
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ])
        .send()
        .await
        .expect("token request")
}

pub async fn json(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

/// The OAuth error code of a failed token response, after checking its status.
pub async fn token_error(response: Response, status: StatusCode) -> (String, String) {
    assert_eq!(response.status(), status);
    let body = json(response).await;
    (
        body["error"].as_str().unwrap_or_default().to_owned(),
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

pub async fn fetch_jwks(client: &Client, base: &str) -> JwkSet {
    let discovery = json(
        client
            .get(format!("{base}/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery"),
    )
    .await;
    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
    // The jwks_uri may name a configured issuer's host; fetch it through the local address.
    let path = url::Url::parse(jwks_uri)
        .expect("jwks_uri URL")
        .path()
        .to_owned();
    let local = url::Url::parse(base).expect("base URL");
    let local_jwks = format!("{}{path}", local.origin().ascii_serialization());
    client
        .get(local_jwks)
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JWKS JSON")
}

/// What a careful relying party checks: RS256 under the JWKS key named by `kid`, `iss`, `aud`, `exp`.
pub fn validation(issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    validation
}

pub fn decoding_key(jwks: &JwkSet, token: &str) -> DecodingKey {
    let header = jsonwebtoken::decode_header(token).expect("JWT header");
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("kid in header");
    let jwk = jwks.find(&kid).expect("kid is in the JWKS");
    DecodingKey::from_jwk(jwk).expect("usable JWK")
}

pub fn verify(
    jwks: &JwkSet,
    token: &str,
    validation: &Validation,
) -> jsonwebtoken::errors::Result<TokenData<Value>> {
    jsonwebtoken::decode::<Value>(token, &decoding_key(jwks, token), validation)
}
