//! YubiKey OTP: a key's public id (the OTP's first 12 characters) is bound
//! to its user at enrolment — sealed in `mfa_secrets`, with a keyed lookup
//! value unique across users — and each OTP is validated against
//! `YUBICO_API_URL` with the signed protocol 2.0 (`yubico-otp`): the answer
//! must be signed by our client secret and echo our OTP and fresh nonce.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;
use yubico_otp::{Answer, Otp, Status, VerifyRequest};

use super::secrets;
use super::verify::{Checked, MfaRefusal};
use super::MfaKeys;
use crate::settings::YubicoSettings;
use crate::state::AppState;

/// The validation service, when `YUBICO_CLIENT_ID` and `YUBICO_SECRET_KEY` are set.
pub struct Validator {
    url: String,
    client_id: String,
    secret: SecretString,
    http: reqwest::Client,
}

/// Why an OTP was not accepted by the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Replayed,
    Invalid,
    /// No answer, or one that is not signed by our secret or echoes another OTP or nonce.
    Untrusted,
}

impl Validator {
    pub fn new(settings: &YubicoSettings) -> Option<Validator> {
        let (client_id, secret) = (settings.client_id.clone()?, settings.secret_key.clone()?);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("rack-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok()?;
        Some(Validator {
            url: settings.api_url.clone(),
            client_id,
            secret,
            http,
        })
    }

    /// Ask the service about one OTP.
    pub async fn validate(&self, otp: &str) -> Result<(), Refused> {
        let mut nonce = [0u8; 16];
        getrandom::getrandom(&mut nonce).map_err(|_| Refused::Untrusted)?;
        let request = VerifyRequest {
            client_id: self.client_id.clone(),
            otp: otp.to_owned(),
            nonce: hex::encode(nonce),
        };
        let query = request
            .query(self.secret.expose_secret())
            .map_err(|_| Refused::Untrusted)?;
        let separator = if self.url.contains('?') { '&' } else { '?' };
        let response = self
            .http
            .get(format!("{}{separator}{query}", self.url))
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e.without_url(), "YubiKey validation service unreachable");
                Refused::Untrusted
            })?;
        let body = response.text().await.map_err(|_| Refused::Untrusted)?;
        match Answer::parse(&body).check(self.secret.expose_secret(), &request) {
            Ok(Status::Ok) => Ok(()),
            Ok(Status::ReplayedOtp) => Err(Refused::Replayed),
            Ok(status) => {
                tracing::info!(
                    status = status.as_str(),
                    "YubiKey OTP refused by the service"
                );
                Err(Refused::Invalid)
            }
            Err(e) => {
                tracing::warn!(error = %e, "YubiKey validation answer not trusted");
                Err(Refused::Untrusted)
            }
        }
    }
}

/// The public id of a well-formed OTP.
pub fn public_id(otp: &str) -> Option<&str> {
    Otp::parse(otp).ok()?;
    otp.get(..12)
}

pub fn lookup(keys: &MfaKeys, public_id: &str) -> String {
    keys.lookup("yubikey", public_id.as_bytes())
}

/// Check `otp` against the user's bound keys, then the service.
pub(super) async fn check(
    state: &AppState,
    keys: &MfaKeys,
    user_id: Uuid,
    otp: &str,
) -> Result<Checked, MfaRefusal> {
    let bound = secrets::confirmed(state, keys, user_id, "yubikey").await?;
    if bound.is_empty() {
        return Ok(Checked::NoMethod);
    }
    let Some(presented) = public_id(otp) else {
        return Ok(Checked::Failed {
            method_id: None,
            reason: "malformed_code",
        });
    };
    // Another person's key, or an unbound one: refused before asking the service.
    let Some((method_id, _)) = bound
        .iter()
        .find(|(_, binding)| binding.as_slice() == presented.as_bytes())
    else {
        return Ok(Checked::Failed {
            method_id: None,
            reason: "invalid_code",
        });
    };
    let validator = state.mfa.yubico.as_ref().ok_or(MfaRefusal::Invalid {
        reason: "yubikey_unavailable",
    })?;
    Ok(match validator.validate(otp).await {
        Ok(()) => Checked::Passed(*method_id),
        Err(Refused::Replayed) => Checked::Failed {
            method_id: Some(*method_id),
            reason: "replayed_code",
        },
        Err(Refused::Invalid) => Checked::Failed {
            method_id: Some(*method_id),
            reason: "invalid_code",
        },
        Err(Refused::Untrusted) => Checked::Failed {
            method_id: Some(*method_id),
            reason: "yubikey_unavailable",
        },
    })
}
