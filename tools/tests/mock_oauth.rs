//! The provider in-process, driven the way the gateway drives it: no browser, reqwest only.

mod mock_oauth_support;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, KeyAlgorithm, PublicKeyUse};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tools::mock_oauth::{
    MockOAuth, MockOAuthConfig, MockOAuthHandle, Tamper, DEV_CLIENT_ID, DEV_CLIENT_SECRET,
};

use mock_oauth_support::*;

async fn start(config: MockOAuthConfig) -> MockOAuthHandle {
    let addr = "127.0.0.1:0".parse().expect("address");
    let provider = tokio::time::timeout(TIMEOUT, MockOAuth::bind(addr, config))
        .await
        .expect("bind within the timeout")
        .expect("bind");
    provider.spawn()
}

async fn start_default() -> MockOAuthHandle {
    start(MockOAuthConfig::default()).await
}

async fn start_with_test_controls() -> MockOAuthHandle {
    start(MockOAuthConfig {
        test_controls: true,
        ..MockOAuthConfig::default()
    })
    .await
}

/// Authorize as `email` and redeem the code with the dev client; returns the token response.
async fn sign_in(base: &str, request: &AuthRequest) -> Value {
    let client = client();
    let code = obtain_code(&client, base, request).await;
    let response = exchange(
        &client,
        base,
        &code,
        &request.redirect_uri,
        &request.pkce.verifier,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await
}

#[tokio::test]
async fn discovery_document_describes_the_flow() {
    let provider = start_default().await;
    let base = provider.url();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert_eq!(provider.issuer(), base, "default issuer is the bound URL");
    let port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert_ne!(port, 0);
    assert_eq!(provider.local_addr().port(), port);

    let client = client();
    let doc = json(
        client
            .get(format!("{base}/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery"),
    )
    .await;
    assert_eq!(doc["issuer"], base.as_str());
    assert_eq!(doc["authorization_endpoint"], format!("{base}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{base}/token"));
    assert_eq!(doc["userinfo_endpoint"], format!("{base}/userinfo"));
    assert_eq!(doc["jwks_uri"], format!("{base}/jwks"));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_post", "client_secret_basic"])
    );
    assert_eq!(
        doc["scopes_supported"],
        serde_json::json!(["openid", "email", "profile"])
    );
    let claims = doc["claims_supported"]
        .as_array()
        .expect("claims_supported");
    for claim in ["sub", "email", "email_verified", "name", "hd", "nonce"] {
        assert!(
            claims.iter().any(|c| c == claim),
            "claims_supported lacks {claim}"
        );
    }

    let jwks = fetch_jwks(&client, &base).await;
    assert_eq!(jwks.keys.len(), 1);
    let key = &jwks.keys[0];
    assert_eq!(key.common.key_algorithm, Some(KeyAlgorithm::RS256));
    assert_eq!(key.common.public_key_use, Some(PublicKeyUse::Signature));
    assert!(key.common.key_id.as_deref().is_some_and(|k| !k.is_empty()));
    match &key.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            assert_eq!(rsa.e, "AQAB");
            // 2048-bit modulus: 256 bytes.
            assert_eq!(
                URL_SAFE_NO_PAD.decode(&rsa.n).expect("base64url n").len(),
                256
            );
        }
        other => panic!("expected an RSA key, got {other:?}"),
    }
    provider.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn login_hint_redirects_at_once_with_code_and_state() {
    let provider = start_default().await;
    let client = client();
    let mut request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"));
    // A redirect URI with its own query keeps it, and state survives odd characters.
    request.redirect_uri = "http://localhost:9999/cb?keep=1".to_owned();
    request.state = "s p&a=c/e".to_owned();
    let response = request.send(&client, &provider.url()).await;
    let params = redirect_params(&response, &request.redirect_uri);
    assert_eq!(param(&params, "keep"), Some("1"));
    assert_eq!(param(&params, "state"), Some("s p&a=c/e"));
    let code = param(&params, "code").expect("code");
    assert!(code.len() >= 32, "code is long enough to be unguessable");
}

#[tokio::test]
async fn every_test_user_gets_a_verifiable_id_token_with_their_claims() {
    let provider = start_default().await;
    let base = provider.url();
    let client = client();
    let jwks = fetch_jwks(&client, &base).await;
    let users = MockOAuth::users();
    let emails: Vec<&str> = users.iter().map(|u| u.email).collect();
    assert_eq!(
        emails,
        [
            "admin@example.com",
            "deployer@example.com",
            "ops@example.com",
            "viewer@example.com",
            "unauthorized@wrongdomain.com",
            "unverified@example.com",
        ]
    );

    for user in users {
        let request = AuthRequest::new(DEV_CLIENT_ID, Some(user.email));
        let tokens = sign_in(&base, &request).await;
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 3600);
        assert_eq!(tokens["scope"], "openid email profile");
        let access_token = tokens["access_token"].as_str().expect("access_token");
        let id_token = tokens["id_token"].as_str().expect("id_token");

        let data = verify(
            &jwks,
            id_token,
            &validation(&provider.issuer(), DEV_CLIENT_ID),
        )
        .unwrap_or_else(|e| panic!("{}: ID token must verify: {e}", user.email));
        let claims = data.claims;
        assert_eq!(claims["iss"], provider.issuer().as_str());
        assert_eq!(claims["aud"], DEV_CLIENT_ID);
        assert_eq!(claims["azp"], DEV_CLIENT_ID);
        assert_eq!(claims["sub"], user.sub);
        assert_eq!(claims["nonce"], request.nonce.as_deref().expect("nonce"));
        assert_eq!(claims["email"], user.email);
        assert_eq!(claims["email_verified"], user.email_verified);
        assert_eq!(claims["name"], user.name);
        assert_eq!(claims["hd"], user.hd.expect("every test user has a domain"));
        let iat = claims["iat"].as_i64().expect("iat");
        let exp = claims["exp"].as_i64().expect("exp");
        assert_eq!(exp - iat, 3600);
        assert!((iat - chrono::Utc::now().timestamp()).abs() < 60);
        let digest = Sha256::digest(access_token.as_bytes());
        assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));

        let userinfo = json(
            client
                .get(format!("{base}/userinfo"))
                .bearer_auth(access_token)
                .send()
                .await
                .expect("userinfo"),
        )
        .await;
        for claim in ["sub", "email", "email_verified", "name", "hd"] {
            assert_eq!(
                userinfo[claim], claims[claim],
                "{}: userinfo {claim}",
                user.email
            );
        }
    }

    // The expectations the gateway relies on, spelled out rather than read back from the table.
    let unverified = users
        .iter()
        .find(|u| u.email == "unverified@example.com")
        .expect("unverified user");
    assert!(!unverified.email_verified);
    let outsider = users
        .iter()
        .find(|u| u.email == "unauthorized@wrongdomain.com")
        .expect("outsider");
    assert!(outsider.email_verified);
    assert_eq!(outsider.hd, Some("wrongdomain.com"));
    assert_eq!(users[0].name, "Admin User");
}

#[tokio::test]
async fn subject_is_stable_across_sign_ins() {
    let provider = start_default().await;
    let base = provider.url();
    let first = sign_in(
        &base,
        &AuthRequest::new(DEV_CLIENT_ID, Some("ops@example.com")),
    )
    .await;
    let second = sign_in(
        &base,
        &AuthRequest::new(DEV_CLIENT_ID, Some("ops@example.com")),
    )
    .await;
    let sub = |tokens: &Value| {
        let token = tokens["id_token"].as_str().expect("id_token");
        let payload = token.split('.').nth(1).expect("payload");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        claims["sub"].clone()
    };
    assert_eq!(sub(&first), sub(&second));
    assert_ne!(first["access_token"], second["access_token"]);
}

#[tokio::test]
async fn nonce_is_omitted_when_none_was_sent_and_scopes_limit_claims() {
    let provider = start_default().await;
    let client = client();
    let jwks = fetch_jwks(&client, &provider.url()).await;
    let mut request = AuthRequest::new(DEV_CLIENT_ID, Some("viewer@example.com"));
    request.nonce = None;
    request.scope = "openid email".to_owned();
    let tokens = sign_in(&provider.url(), &request).await;
    let claims = verify(
        &jwks,
        tokens["id_token"].as_str().expect("id_token"),
        &validation(&provider.issuer(), DEV_CLIENT_ID),
    )
    .expect("verifies")
    .claims;
    assert!(claims.get("nonce").is_none());
    assert_eq!(claims["email"], "viewer@example.com");
    assert!(claims.get("name").is_none(), "no profile scope, no name");
    assert_eq!(tokens["scope"], "openid email");
}

#[tokio::test]
async fn client_secret_basic_is_accepted_and_a_wrong_one_is_401() {
    let provider = start_default().await;
    let base = provider.url();
    let client = client();
    let token_request = |code: String, request: &AuthRequest, secret: &str| {
        client
            .post(format!("{base}/token"))
            .basic_auth(DEV_CLIENT_ID, Some(secret))
            .form(&[
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("redirect_uri", request.redirect_uri.clone()),
                ("code_verifier", request.pkce.verifier.clone()),
            ])
            .send()
    };

    let request = AuthRequest::new(DEV_CLIENT_ID, Some("deployer@example.com"));
    let code = obtain_code(&client, &base, &request).await;
    let response = token_request(code, &request, DEV_CLIENT_SECRET)
        .await
        .expect("token");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(json(response).await["id_token"].is_string());

    let request = AuthRequest::new(DEV_CLIENT_ID, Some("deployer@example.com"));
    let code = obtain_code(&client, &base, &request).await;
    let response = token_request(code, &request, "not-the-secret")
        .await
        .expect("token");
    assert!(response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .is_some_and(|v| v.to_str().unwrap_or_default().starts_with("Basic")));
    let (error, _) = token_error(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(error, "invalid_client");
}

/// A fresh code plus the request that produced it, for one refused exchange each.
async fn fresh_code(base: &str) -> (String, AuthRequest) {
    let request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"));
    let code = obtain_code(&client(), base, &request).await;
    (code, request)
}

#[tokio::test]
async fn token_exchange_refuses_bad_requests() {
    let provider = start_default().await;
    let base = provider.url();
    let client = client();

    // Wrong PKCE verifier (well-formed, just not the one).
    let (code, request) = fresh_code(&base).await;
    let other = Pkce::new();
    let response = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &other.verifier,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    let (error, description) = token_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_grant");
    assert!(description.contains("PKCE"), "{description}");

    // Wrong client secret in the body.
    let (code, request) = fresh_code(&base).await;
    let response = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &request.pkce.verifier,
        DEV_CLIENT_ID,
        "wrong-secret",
    )
    .await;
    let (error, _) = token_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_client");

    // Wrong client id with the right secret.
    let (code, request) = fresh_code(&base).await;
    let response = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &request.pkce.verifier,
        "someone-else",
        DEV_CLIENT_SECRET,
    )
    .await;
    let (error, _) = token_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_client");

    // A redirect_uri other than the authorize request's.
    let (code, request) = fresh_code(&base).await;
    let response = exchange(
        &client,
        &base,
        &code,
        "http://127.0.0.1:8765/other",
        &request.pkce.verifier,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    let (error, description) = token_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_grant");
    assert!(description.contains("redirect_uri"), "{description}");

    // No verifier at all.
    let (code, request) = fresh_code(&base).await;
    let response = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        "",
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    let (error, _) = token_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_request");

    // A code that never existed.
    let request = AuthRequest::new(DEV_CLIENT_ID, None);
    let response = exchange(
        &client,
        &base,
        "made-up-code",
        &request.redirect_uri,
        &request.pkce.verifier,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    let (error, _) = token_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_grant");

    // Another grant type.
    let response = client
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", DEV_CLIENT_ID),
            ("client_secret", DEV_CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("token");
    let (error, _) = token_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "unsupported_grant_type");

    // Basic and client_secret together.
    let (code, request) = fresh_code(&base).await;
    let response = client
        .post(format!("{base}/token"))
        .basic_auth(DEV_CLIENT_ID, Some(DEV_CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("code_verifier", request.pkce.verifier.as_str()),
            ("client_secret", DEV_CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("token");
    let (error, _) = token_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_request");

    // No client authentication at all.
    let (code, request) = fresh_code(&base).await;
    let response = client
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("code_verifier", request.pkce.verifier.as_str()),
            ("client_id", DEV_CLIENT_ID),
        ])
        .send()
        .await
        .expect("token");
    let (error, _) = token_error(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(error, "invalid_client");
}

#[tokio::test]
async fn a_failed_exchange_still_burns_the_code() {
    let provider = start_default().await;
    let base = provider.url();
    let client = client();
    let (code, request) = fresh_code(&base).await;
    let wrong = Pkce::new();
    let response = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &wrong.verifier,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // The right verifier no longer helps: no guessing the verifier against one code.
    let response = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &request.pkce.verifier,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    let (error, _) = token_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_grant");
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_the_first_access_token() {
    let provider = start_default().await;
    let base = provider.url();
    let client = client();
    let (code, request) = fresh_code(&base).await;
    let first = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &request.pkce.verifier,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    let access_token = json(first).await["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let userinfo = |token: String| {
        client
            .get(format!("{base}/userinfo"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        userinfo(access_token.clone())
            .await
            .expect("userinfo")
            .status(),
        StatusCode::OK
    );

    let again = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &request.pkce.verifier,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    let (error, description) = token_error(again, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_grant");
    assert!(description.contains("already used"), "{description}");
    assert_eq!(
        userinfo(access_token).await.expect("userinfo").status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let provider = start(MockOAuthConfig {
        code_ttl: Duration::from_secs(1),
        ..MockOAuthConfig::default()
    })
    .await;
    let base = provider.url();
    let client = client();

    // Within the lifetime the same setup works, so the refusal below is the clock's doing.
    let (code, request) = fresh_code(&base).await;
    let response = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &request.pkce.verifier,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);

    let (code, request) = fresh_code(&base).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let response = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &request.pkce.verifier,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    let (error, _) = token_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_grant");
}

#[tokio::test]
async fn userinfo_requires_a_valid_bearer_token() {
    let provider = start_default().await;
    let client = client();
    let url = format!("{}/userinfo", provider.url());
    let response = client.get(&url).send().await.expect("userinfo");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .is_some());
    let response = client
        .get(&url)
        .bearer_auth("nonsense")
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn expect_error_page(response: reqwest::Response, needle: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(reqwest::header::LOCATION).is_none());
    let body = response.text().await.expect("body");
    assert!(
        body.contains(needle),
        "error page should mention {needle:?}: {body}"
    );
}

/// Parameters to replace in a request; `None` removes the parameter.
type Overrides = &'static [(&'static str, Option<&'static str>)];

#[tokio::test]
async fn authorize_errors_redirect_only_to_a_valid_redirect_uri() {
    let provider = start(MockOAuthConfig {
        redirect_uris: vec![REDIRECT_URI.to_owned()],
        ..MockOAuthConfig::default()
    })
    .await;
    let base = provider.url();
    let client = client();

    // Bad client or redirect URI: a 400 page, never a redirect.
    let request = AuthRequest::new("unknown-client", Some("admin@example.com"));
    expect_error_page(request.send(&client, &base).await, "invalid_client").await;
    let mut request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"));
    request.redirect_uri = "http://127.0.0.1:8765/not-registered".to_owned();
    expect_error_page(request.send(&client, &base).await, "redirect_uri_mismatch").await;
    let response = client
        .get(format!("{base}/authorize"))
        .query(&[("response_type", "code"), ("client_id", DEV_CLIENT_ID)])
        .send()
        .await
        .expect("authorize");
    expect_error_page(response, "redirect_uri is required").await;

    // An unknown test user is a page too: the RP did nothing wrong, the test did.
    let request = AuthRequest::new(DEV_CLIENT_ID, Some("nobody@example.com"));
    expect_error_page(request.send(&client, &base).await, "not a test user").await;

    // With a valid redirect URI, errors go back to the client with state. Each case replaces
    // (or, with None, removes) parameters of an otherwise good request: repeating a parameter
    // would itself be an error and hide the one under test.
    let cases: [(&str, Overrides); 8] = [
        ("invalid_request", &[("code_challenge", None)]),
        ("invalid_request", &[("code_challenge_method", None)]),
        (
            "invalid_request",
            &[("code_challenge_method", Some("plain"))],
        ),
        ("invalid_request", &[("code_challenge", Some("too-short"))]),
        ("invalid_request", &[("response_type", None)]),
        (
            "unsupported_response_type",
            &[("response_type", Some("token"))],
        ),
        ("invalid_scope", &[("scope", Some("email profile"))]),
        ("invalid_scope", &[("scope", Some("openid admin"))]),
    ];
    let cancel: (&str, Overrides) = ("access_denied", &[("action", Some("cancel"))]);
    for (expected, overrides) in cases.into_iter().chain([cancel]) {
        let request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"));
        let mut query = request.query();
        for (name, value) in overrides {
            query.retain(|(key, _)| key != name);
            if let Some(value) = value {
                query.push((name.to_string(), value.to_string()));
            }
        }
        let response = client
            .get(format!("{base}/authorize"))
            .query(&query)
            .send()
            .await
            .expect("authorize");
        let params = redirect_params(&response, REDIRECT_URI);
        assert_eq!(
            param(&params, "error"),
            Some(expected),
            "{overrides:?}: {params:?}"
        );
        assert_eq!(param(&params, "state"), Some(request.state.as_str()));
        assert_eq!(param(&params, "code"), None);
    }

    // The registered URI itself works.
    let request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"));
    obtain_code(&client, &base, &request).await;
}

#[tokio::test]
async fn without_registered_uris_only_loopback_http_redirects_are_allowed() {
    let provider = start_default().await;
    let base = provider.url();
    let client = client();
    for allowed in [
        "http://localhost/cb",
        "http://localhost:3000/auth/callback",
        "http://127.0.0.1:9/x?y=z",
    ] {
        let mut request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"));
        request.redirect_uri = allowed.to_owned();
        obtain_code(&client, &base, &request).await;
    }
    for refused in [
        "https://localhost/cb",
        "http://localhost.evil.example/cb",
        "http://example.com/cb",
        "http://127.0.0.1.nip.io/cb",
        "http://localhost/cb#fragment",
        "not a url",
    ] {
        let mut request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"));
        request.redirect_uri = refused.to_owned();
        expect_error_page(request.send(&client, &base).await, "redirect_uri").await;
    }
}

#[tokio::test]
async fn each_tamper_control_breaks_exactly_its_check() {
    let provider = start_with_test_controls().await;
    let base = provider.url();
    let issuer = provider.issuer();
    let client = client();
    let jwks = fetch_jwks(&client, &base).await;

    for tamper in Tamper::ALL {
        let request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"))
            .with("mock_tamper", tamper.as_str());
        let tokens = sign_in(&base, &request).await;
        let token = tokens["id_token"].as_str().expect("id_token");
        let nonce = request.nonce.as_deref().expect("nonce");
        let strict = validation(&issuer, DEV_CLIENT_ID);
        let name = tamper.as_str();

        // With the one check that should fail switched off, the token is otherwise perfect:
        // proof the control breaks that check and nothing else.
        let (kind, mut relaxed) = match tamper {
            Tamper::Signature => (Some(ErrorKind::InvalidSignature), strict.clone()),
            Tamper::Expired => (Some(ErrorKind::ExpiredSignature), {
                let mut v = strict.clone();
                v.validate_exp = false;
                v
            }),
            Tamper::WrongAud => (Some(ErrorKind::InvalidAudience), {
                let mut v = strict.clone();
                v.validate_aud = false;
                v
            }),
            Tamper::WrongIss => (Some(ErrorKind::InvalidIssuer), {
                let mut v = strict.clone();
                v.iss = None;
                v
            }),
            Tamper::WrongNonce | Tamper::NoEmailVerified => (None, strict.clone()),
        };
        let result = verify(&jwks, token, &strict);
        match kind {
            Some(kind) => {
                let error = result.expect_err(&format!("{name}: strict validation must fail"));
                assert_eq!(error.kind(), &kind, "{name}");
            }
            None => {
                result.unwrap_or_else(|e| panic!("{name}: JWT checks should pass: {e}"));
            }
        }

        let claims = if tamper == Tamper::Signature {
            relaxed.insecure_disable_signature_validation();
            jsonwebtoken::decode::<Value>(
                token,
                &jsonwebtoken::DecodingKey::from_secret(b"unused"),
                &relaxed,
            )
        } else {
            verify(&jwks, token, &relaxed)
        }
        .unwrap_or_else(|e| panic!("{name}: relaxed validation should pass: {e}"))
        .claims;

        let nonce_ok = claims["nonce"] == nonce;
        let verified_claim = claims.get("email_verified").cloned();
        match tamper {
            Tamper::WrongNonce => {
                assert!(!nonce_ok, "wrong_nonce must not carry the sent nonce");
                assert!(claims["nonce"].is_string(), "a nonce is still present");
                assert_eq!(verified_claim, Some(Value::Bool(true)));
            }
            Tamper::NoEmailVerified => {
                assert!(nonce_ok);
                assert_eq!(verified_claim, None, "email_verified must be absent");
                assert_eq!(claims["email"], "admin@example.com");
            }
            _ => {
                assert!(nonce_ok, "{name}: nonce untouched");
                assert_eq!(verified_claim, Some(Value::Bool(true)), "{name}");
            }
        }
    }

    // An untampered token from the same provider passes every check.
    let request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"));
    let tokens = sign_in(&base, &request).await;
    let claims = verify(
        &jwks,
        tokens["id_token"].as_str().expect("id_token"),
        &validation(&issuer, DEV_CLIENT_ID),
    )
    .expect("genuine token verifies")
    .claims;
    assert_eq!(claims["nonce"], request.nonce.as_deref().expect("nonce"));
    assert_eq!(claims["email_verified"], true);
}

#[tokio::test]
async fn tamper_controls_are_refused_unless_enabled() {
    let provider = start_default().await;
    let client = client();
    for tamper in Tamper::ALL {
        // Both the headless path and the picker path refuse.
        let request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"))
            .with("mock_tamper", tamper.as_str());
        expect_error_page(
            request.send(&client, &provider.url()).await,
            "--test-controls",
        )
        .await;
        let request = AuthRequest::new(DEV_CLIENT_ID, None).with("mock_tamper", tamper.as_str());
        expect_error_page(
            request.send(&client, &provider.url()).await,
            "--test-controls",
        )
        .await;
    }

    let enabled = start_with_test_controls().await;
    let request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"))
        .with("mock_tamper", "everything");
    expect_error_page(
        request.send(&client, &enabled.url()).await,
        "unknown mock_tamper",
    )
    .await;
}

/// The hidden inputs and buttons of the picker form, unescaped as a browser would.
struct PickerForm {
    action: String,
    hidden: Vec<(String, String)>,
    buttons: Vec<(String, String)>,
}

fn html_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(html_unescape(&tag[start..end]))
}

fn parse_picker(html: &str) -> PickerForm {
    let tags = |prefix: &str| -> Vec<String> {
        html.match_indices(prefix)
            .map(|(at, _)| {
                let end = html[at..].find('>').expect("tag closes") + at;
                html[at..end].to_owned()
            })
            .collect()
    };
    let form = tags("<form").pop().expect("a form");
    assert_eq!(attribute(&form, "method").as_deref(), Some("post"));
    let hidden = tags("<input")
        .iter()
        .filter(|t| attribute(t, "type").as_deref() == Some("hidden"))
        .map(|t| {
            (
                attribute(t, "name").expect("name"),
                attribute(t, "value").expect("value"),
            )
        })
        .collect();
    let buttons = tags("<button")
        .iter()
        .map(|t| {
            (
                attribute(t, "name").expect("name"),
                attribute(t, "value").expect("value"),
            )
        })
        .collect();
    PickerForm {
        action: attribute(&form, "action").expect("action"),
        hidden,
        buttons,
    }
}

#[tokio::test]
async fn picker_page_lists_every_user_and_completes_the_sign_in() {
    let provider = start_default().await;
    let base = provider.url();
    let client = client();
    let jwks = fetch_jwks(&client, &base).await;
    let mut request = AuthRequest::new(DEV_CLIENT_ID, None);
    // Characters that must survive HTML escaping in the hidden fields.
    request.state = r#"st<a>te&"quoted"'/"#.to_owned();

    let response = request.send(&client, &base).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap_or_default().starts_with("text/html")));
    let html = response.text().await.expect("page");
    assert!(!html.contains("<a>"), "state must be escaped in the page");
    for user in MockOAuth::users() {
        assert!(html.contains(user.email), "page lists {}", user.email);
        assert!(html.contains(user.name), "page shows {}", user.name);
    }

    let form = parse_picker(&html);
    assert_eq!(form.action, format!("{base}/authorize"));
    let user_buttons: Vec<&str> = form
        .buttons
        .iter()
        .filter(|(name, _)| name == "login_hint")
        .map(|(_, value)| value.as_str())
        .collect();
    let emails: Vec<&str> = MockOAuth::users().iter().map(|u| u.email).collect();
    assert_eq!(user_buttons, emails);
    let state_field = form
        .hidden
        .iter()
        .find(|(n, _)| n == "state")
        .map(|(_, v)| v.as_str());
    assert_eq!(state_field, Some(request.state.as_str()));

    // Press "Ops User": post the hidden fields plus the button's name and value.
    let mut fields = form.hidden.clone();
    fields.push(("login_hint".to_owned(), "ops@example.com".to_owned()));
    let response = client
        .post(&form.action)
        .form(&fields)
        .send()
        .await
        .expect("submit");
    let params = redirect_params(&response, &request.redirect_uri);
    assert_eq!(param(&params, "state"), Some(request.state.as_str()));
    let code = param(&params, "code").expect("code");
    let response = exchange(
        &client,
        &base,
        code,
        &request.redirect_uri,
        &request.pkce.verifier,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = json(response).await;
    let claims = verify(
        &jwks,
        tokens["id_token"].as_str().expect("id_token"),
        &validation(&provider.issuer(), DEV_CLIENT_ID),
    )
    .expect("verifies")
    .claims;
    assert_eq!(claims["email"], "ops@example.com");
    assert_eq!(claims["nonce"], request.nonce.as_deref().expect("nonce"));

    // The Cancel button returns access_denied.
    let mut fields = form.hidden;
    let cancel = form
        .buttons
        .iter()
        .find(|(name, _)| name == "action")
        .expect("a cancel button")
        .clone();
    fields.push(cancel);
    let response = client
        .post(&form.action)
        .form(&fields)
        .send()
        .await
        .expect("cancel");
    let params = redirect_params(&response, &request.redirect_uri);
    assert_eq!(param(&params, "error"), Some("access_denied"));
}

#[tokio::test]
async fn a_configured_issuer_with_a_path_is_used_everywhere() {
    let issuer = "http://oidc.rack-gateway.test/mock".to_owned();
    let provider = start(MockOAuthConfig {
        issuer: Some(issuer.clone()),
        client_id: "custom-client".to_owned(),
        client_secret: "custom-secret".to_owned(),
        ..MockOAuthConfig::default()
    })
    .await;
    assert_eq!(provider.issuer(), issuer);
    let base = provider.url();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/mock"),
        "{base}"
    );

    let client = client();
    let doc = json(
        client
            .get(format!("{base}/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery"),
    )
    .await;
    assert_eq!(doc["issuer"], issuer.as_str());
    assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
    // Nothing is served outside the issuer's path.
    let root = base.trim_end_matches("/mock");
    let response = client
        .get(format!("{root}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("root discovery");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let jwks = fetch_jwks(&client, &base).await;
    let request = AuthRequest::new("custom-client", Some("admin@example.com"));
    let code = obtain_code(&client, &base, &request).await;
    let response = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &request.pkce.verifier,
        "custom-client",
        "custom-secret",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = json(response).await;
    verify(
        &jwks,
        tokens["id_token"].as_str().expect("id_token"),
        &validation(&issuer, "custom-client"),
    )
    .expect("issuer and audience are the configured ones");
    // The dev defaults are not also accepted.
    let request = AuthRequest::new(DEV_CLIENT_ID, Some("admin@example.com"));
    expect_error_page(request.send(&client, &base).await, "invalid_client").await;
}

#[tokio::test]
async fn bad_configuration_is_refused_at_bind() {
    let addr = "127.0.0.1:0".parse().expect("address");
    for issuer in ["ftp://x", "http://x/?q=1", "not a url"] {
        let result = MockOAuth::bind(
            addr,
            MockOAuthConfig {
                issuer: Some(issuer.to_owned()),
                ..MockOAuthConfig::default()
            },
        )
        .await;
        assert!(result.is_err(), "issuer {issuer:?} should be refused");
    }
    let result = MockOAuth::bind(
        addr,
        MockOAuthConfig {
            redirect_uris: vec!["relative/path".to_owned()],
            ..MockOAuthConfig::default()
        },
    )
    .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let provider = start_default().await;
    let url = format!("{}/jwks", provider.url());
    let client = client();
    assert!(client
        .get(&url)
        .send()
        .await
        .expect("up")
        .status()
        .is_success());
    drop(provider);
    // Graceful shutdown is asynchronous; poll, bounded.
    let stopped = tokio::time::timeout(TIMEOUT, async {
        loop {
            if client.get(&url).send().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        stopped.is_ok(),
        "server still answering after the handle was dropped"
    );
}
