//! WebAuthn ceremonies (security keys and passkeys) with user verification
//! required, on `webauthn-rs` (docs/mfa.md).
//!
//! Why the passkey API for security keys too: webauthn-rs' security-key
//! ceremony asks for user verification only as `Preferred`; its passkey
//! ceremony asks for `Required` and does not require a resident key, so a
//! plain USB key enrols through it as well.
//!
//! The state between `start` and `finish` is returned as an opaque
//! [`CeremonyState`] (JSON) for the caller to keep SERVER-SIDE, in a database
//! row consumed once: a client-held state would let an attacker replay an old
//! challenge and signature. This module is not wired into routes yet; nothing
//! calls it from a request path.

use std::sync::Arc;

use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// Why a ceremony did not succeed. Messages never carry key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CeremonyError {
    #[error("WebAuthn is misconfigured: {0}")]
    Config(String),
    #[error("the ceremony state is missing, expired, already used or of the wrong kind")]
    BadState,
    #[error("the authenticator did not verify the user (PIN or biometric required)")]
    UserVerificationRequired,
    #[error("the credential's sign counter went backwards: possible cloned authenticator")]
    CounterRegression,
    #[error("the credential is not registered for this user")]
    UnknownCredential,
    #[error("the WebAuthn response was refused")]
    Rejected,
}

impl From<WebauthnError> for CeremonyError {
    fn from(e: WebauthnError) -> Self {
        match e {
            WebauthnError::CredentialPossibleCompromise => Self::CounterRegression,
            WebauthnError::UserNotVerified => Self::UserVerificationRequired,
            WebauthnError::CredentialNotFound => Self::UnknownCredential,
            _ => Self::Rejected,
        }
    }
}

/// Which ceremony a stored state belongs to; a state is only accepted by
/// the `finish` of its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CeremonyKind {
    Registration,
    Authentication,
}

/// Server-side ceremony state, serialised for a database row.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CeremonyState {
    pub kind: CeremonyKind,
    pub json: serde_json::Value,
}

/// The relying party, built once and shared (it has no mutable state).
#[derive(Clone)]
pub struct Ceremonies {
    webauthn: Arc<Webauthn>,
}

impl Ceremonies {
    /// `rp_id` must be the origin's host or a parent domain of it, and the
    /// origin must carry its port (`http://localhost:8447`).
    pub fn new(rp_id: &str, origin: &str) -> Result<Self, CeremonyError> {
        let url = Url::parse(origin)
            .map_err(|e| CeremonyError::Config(format!("WEBAUTHN_ORIGIN: {e}")))?;
        let webauthn = WebauthnBuilder::new(rp_id, &url)
            .and_then(|b| b.rp_name("rack-gateway").build())
            .map_err(|e| {
                CeremonyError::Config(format!(
                    "WEBAUTHN_RP_ID {rp_id:?} / WEBAUTHN_ORIGIN {origin:?}: {e}"
                ))
            })?;
        Ok(Self {
            webauthn: Arc::new(webauthn),
        })
    }

    /// Starts enrolling a key for `user_id` (the stable id, never the email).
    /// `existing` are the user's keys, excluded so one key is not enrolled twice.
    pub fn start_registration(
        &self,
        user_id: Uuid,
        user_name: &str,
        display_name: &str,
        existing: &[Passkey],
    ) -> Result<(CreationChallengeResponse, CeremonyState), CeremonyError> {
        let exclude: Vec<CredentialID> = existing.iter().map(|k| k.cred_id().clone()).collect();
        let (ccr, state) = self.webauthn.start_passkey_registration(
            user_id,
            user_name,
            display_name,
            (!exclude.is_empty()).then_some(exclude),
        )?;
        let json = serde_json::to_value(&state).map_err(|_| CeremonyError::BadState)?;
        Ok((
            ccr,
            CeremonyState {
                kind: CeremonyKind::Registration,
                json,
            },
        ))
    }

    /// Finishes an enrolment. The caller must check that the credential id is
    /// not registered to any account (a UNIQUE constraint does it).
    pub fn finish_registration(
        &self,
        response: &RegisterPublicKeyCredential,
        state: &CeremonyState,
    ) -> Result<Passkey, CeremonyError> {
        let state: PasskeyRegistration = decode(state, CeremonyKind::Registration)?;
        Ok(self
            .webauthn
            .finish_passkey_registration(response, &state)?)
    }

    /// Starts a verification against the user's enabled keys.
    pub fn start_authentication(
        &self,
        keys: &[Passkey],
    ) -> Result<(RequestChallengeResponse, CeremonyState), CeremonyError> {
        if keys.is_empty() {
            return Err(CeremonyError::UnknownCredential);
        }
        let (rcr, state) = self.webauthn.start_passkey_authentication(keys)?;
        let json = serde_json::to_value(&state).map_err(|_| CeremonyError::BadState)?;
        Ok((
            rcr,
            CeremonyState {
                kind: CeremonyKind::Authentication,
                json,
            },
        ))
    }

    /// Finishes a verification and returns the key that signed, with its
    /// counter advanced. A counter that did not advance (clone) is
    /// [`CeremonyError::CounterRegression`]: the caller raises
    /// `security.alert` and disables that credential. The caller persists the
    /// new counter with a compare-and-swap on the old one, so two concurrent
    /// assertions with the same counter cannot both pass.
    pub fn finish_authentication(
        &self,
        response: &PublicKeyCredential,
        state: &CeremonyState,
        keys: &[Passkey],
    ) -> Result<(Passkey, u32), CeremonyError> {
        let state: PasskeyAuthentication = decode(state, CeremonyKind::Authentication)?;
        let result = self
            .webauthn
            .finish_passkey_authentication(response, &state)?;
        if !result.user_verified() {
            return Err(CeremonyError::UserVerificationRequired);
        }
        let mut key = keys
            .iter()
            .find(|k| k.cred_id() == result.cred_id())
            .cloned()
            .ok_or(CeremonyError::UnknownCredential)?;
        key.update_credential(&result);
        Ok((key, result.counter()))
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    state: &CeremonyState,
    kind: CeremonyKind,
) -> Result<T, CeremonyError> {
    if state.kind != kind {
        return Err(CeremonyError::BadState);
    }
    serde_json::from_value(state.json.clone()).map_err(|_| CeremonyError::BadState)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp() -> Ceremonies {
        Ceremonies::new("localhost", "http://localhost:8447").expect("rp")
    }

    #[test]
    fn rp_id_must_be_an_effective_domain_of_the_origin() {
        assert!(Ceremonies::new("example.com", "https://idm.example.com").is_ok());
        assert!(matches!(
            Ceremonies::new("other.com", "https://idm.example.com"),
            Err(CeremonyError::Config(_))
        ));
        assert!(matches!(
            Ceremonies::new("localhost", "not a url"),
            Err(CeremonyError::Config(_))
        ));
    }

    #[test]
    fn registration_requires_user_verification_and_no_resident_key() {
        let (ccr, state) = rp()
            .start_registration(Uuid::new_v4(), "ada@example.com", "Ada", &[])
            .expect("start");
        let v = serde_json::to_value(&ccr).expect("json");
        let sel = &v["publicKey"]["authenticatorSelection"];
        assert_eq!(sel["userVerification"], "required", "{v}");
        assert_eq!(sel["requireResidentKey"], false, "{v}");
        assert_eq!(v["publicKey"]["rp"]["id"], "localhost");
        assert_eq!(state.kind, CeremonyKind::Registration);
    }

    #[test]
    fn two_starts_have_different_challenges() {
        let id = Uuid::new_v4();
        let (a, _) = rp().start_registration(id, "a", "a", &[]).expect("a");
        let (b, _) = rp().start_registration(id, "a", "a", &[]).expect("b");
        assert_ne!(a.public_key.challenge, b.public_key.challenge);
    }

    #[test]
    fn authentication_needs_at_least_one_key() {
        assert_eq!(
            rp().start_authentication(&[]).err(),
            Some(CeremonyError::UnknownCredential)
        );
    }

    #[test]
    fn a_state_is_only_accepted_by_its_own_kind_and_shape() {
        let (_, mut state) = rp()
            .start_registration(Uuid::new_v4(), "a", "a", &[])
            .expect("start");
        state.kind = CeremonyKind::Authentication;
        assert_eq!(
            decode::<PasskeyAuthentication>(&state, CeremonyKind::Registration).err(),
            Some(CeremonyError::BadState)
        );
        // Right label, wrong body: still refused, never half-read.
        assert_eq!(
            decode::<PasskeyAuthentication>(&state, CeremonyKind::Authentication).err(),
            Some(CeremonyError::BadState)
        );
        let garbage = CeremonyState {
            kind: CeremonyKind::Registration,
            json: serde_json::json!({"x": 1}),
        };
        assert_eq!(
            decode::<PasskeyRegistration>(&garbage, CeremonyKind::Registration).err(),
            Some(CeremonyError::BadState)
        );
    }

    #[test]
    fn a_state_survives_a_database_round_trip() {
        let (_, state) = rp()
            .start_registration(Uuid::new_v4(), "a", "a", &[])
            .expect("start");
        let text = serde_json::to_string(&state).expect("ser");
        let back: CeremonyState = serde_json::from_str(&text).expect("de");
        assert!(decode::<PasskeyRegistration>(&back, CeremonyKind::Registration).is_ok());
    }

    #[test]
    fn library_errors_map_to_what_the_caller_must_do() {
        assert_eq!(
            CeremonyError::from(WebauthnError::CredentialPossibleCompromise),
            CeremonyError::CounterRegression
        );
        assert_eq!(
            CeremonyError::from(WebauthnError::UserNotVerified),
            CeremonyError::UserVerificationRequired
        );
        assert_eq!(
            CeremonyError::from(WebauthnError::CredentialNotFound),
            CeremonyError::UnknownCredential
        );
        assert_eq!(
            CeremonyError::from(WebauthnError::ChallengeNotFound),
            CeremonyError::Rejected
        );
    }
}
