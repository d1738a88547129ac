//! Where WebAuthn keeps its state (docs/mfa.md, "WebAuthn"):
//!
//! - ceremonies in progress (`mfa_webauthn_ceremonies`, migration 0010),
//!   each consumed once by `DELETE … RETURNING`, so a replayed `finish` and a
//!   `finish` on another replica both see exactly one owner of the state;
//! - credentials (`mfa_secrets`, kind `webauthn`): the webauthn-rs `Passkey`
//!   as JSON, sealed like every MFA secret, with the keyed lookup of its
//!   credential id in the table's UNIQUE `lookup` column, so one credential
//!   id can belong to one account only.
//!
//! A credential's counter is written back with a compare-and-swap on the
//! sealed bytes it was read as: of two assertions racing on one counter
//! value, one wins and the other is refused.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use webauthn_rs::prelude::Passkey;

use super::webauthn::{CeremonyKind, CeremonyState};
use super::{MfaKeyError, MfaKeys, Sealed};

/// How long a started ceremony may be finished (the browser's own timeout is 300 s).
pub const CEREMONY_TTL_SECONDS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Keys(#[from] MfaKeyError),
    #[error("a stored WebAuthn credential is not readable")]
    Corrupt,
    #[error("this security key is already registered")]
    DuplicateCredential,
}

/// A ceremony in progress, as read back (and deleted) at `finish`.
pub struct Ceremony {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub purpose: Option<String>,
    pub state: CeremonyState,
}

fn kind_str(kind: CeremonyKind) -> &'static str {
    match kind {
        CeremonyKind::Registration => "registration",
        CeremonyKind::Authentication => "authentication",
    }
}

/// Keep a started ceremony; its id goes to the browser, the state does not.
pub async fn save_ceremony(
    pool: &PgPool,
    user_id: Uuid,
    session_id: Uuid,
    purpose: Option<&str>,
    state: &CeremonyState,
    now: DateTime<Utc>,
) -> Result<(Uuid, DateTime<Utc>), StoreError> {
    let id = Uuid::new_v4();
    let expires_at = now + chrono::Duration::seconds(CEREMONY_TTL_SECONDS);
    // Abandoned ceremonies go first; a new start of the same kind on the same
    // session replaces the old one (only the newest challenge stays valid).
    sqlx::query(
        "DELETE FROM mfa_webauthn_ceremonies WHERE expires_at < $1 \
         OR (session_id = $2 AND kind = $3)",
    )
    .bind(now)
    .bind(session_id)
    .bind(kind_str(state.kind))
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO mfa_webauthn_ceremonies (id, user_id, session_id, kind, purpose, state, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(user_id)
    .bind(session_id)
    .bind(kind_str(state.kind))
    .bind(purpose)
    .bind(&state.json)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok((id, expires_at))
}

/// Take a ceremony: only the session that started it, only of `kind`, only
/// before it expires, and only once (the row is deleted by this read).
pub async fn take_ceremony(
    pool: &PgPool,
    id: Uuid,
    session_id: Uuid,
    kind: CeremonyKind,
    now: DateTime<Utc>,
) -> Result<Option<Ceremony>, StoreError> {
    let row: Option<(Uuid, Uuid, Option<String>, serde_json::Value)> = sqlx::query_as(
        "DELETE FROM mfa_webauthn_ceremonies WHERE id = $1 AND session_id = $2 AND kind = $3 \
         AND expires_at > $4 RETURNING user_id, session_id, purpose, state",
    )
    .bind(id)
    .bind(session_id)
    .bind(kind_str(kind))
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(user_id, session_id, purpose, json)| Ceremony {
        user_id,
        session_id,
        purpose,
        state: CeremonyState { kind, json },
    }))
}

fn aad(method_id: Uuid, user_id: Uuid) -> Vec<u8> {
    super::secrets::aad(method_id, user_id, "webauthn")
}

/// A sealed credential, opened and read back as webauthn-rs' `Passkey`.
fn open_passkey(
    keys: &MfaKeys,
    method_id: Uuid,
    user_id: Uuid,
    sealed: &Sealed,
) -> Result<Passkey, StoreError> {
    let plaintext = keys.open(sealed, &aad(method_id, user_id))?;
    serde_json::from_slice(&plaintext).map_err(|_| StoreError::Corrupt)
}

/// The unique lookup value of a credential id.
pub fn credential_lookup(keys: &MfaKeys, cred_id: &[u8]) -> String {
    keys.lookup("webauthn", cred_id)
}

/// Store a just-registered credential, not yet confirmed (its
/// `mfa.method.enrolled` event comes next). A credential id registered to
/// any account already is [`StoreError::DuplicateCredential`].
pub async fn insert_pending(
    pool: &PgPool,
    keys: &MfaKeys,
    method_id: Uuid,
    user_id: Uuid,
    passkey: &Passkey,
) -> Result<(), StoreError> {
    let plaintext = serde_json::to_vec(passkey).map_err(|_| StoreError::Corrupt)?;
    let sealed = keys.seal(&plaintext, &aad(method_id, user_id))?;
    let lookup = credential_lookup(keys, passkey.cred_id().as_ref());
    let inserted = sqlx::query(
        "INSERT INTO mfa_secrets (method_id, user_id, kind, nonce, ciphertext, lookup, confirmed) \
         VALUES ($1, $2, 'webauthn', $3, $4, $5, false) ON CONFLICT (lookup) DO NOTHING",
    )
    .bind(method_id)
    .bind(user_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(&lookup)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::DuplicateCredential);
    }
    Ok(())
}

/// One usable credential of a user, with the sealed bytes it was read from
/// (the compare-and-swap value of [`update_counter`]).
pub struct StoredKey {
    pub method_id: Uuid,
    pub passkey: Passkey,
    sealed: Sealed,
}

impl StoredKey {
    /// The counter stored with the credential (0 for authenticators without one).
    pub fn counter(&self) -> u64 {
        serde_json::to_value(&self.passkey)
            .ok()
            .and_then(|v| v["cred"]["counter"].as_u64())
            .unwrap_or(0)
    }
}

/// The user's WebAuthn credentials that may verify: confirmed, enrolled (a
/// method row), neither removed nor disabled.
pub async fn usable_keys(
    pool: &PgPool,
    keys: &MfaKeys,
    user_id: Uuid,
) -> Result<Vec<StoredKey>, StoreError> {
    let rows: Vec<(Uuid, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT s.method_id, s.nonce, s.ciphertext FROM mfa_secrets s \
         JOIN mfa_methods m ON m.id = s.method_id AND m.user_id = s.user_id \
         WHERE s.user_id = $1 AND s.kind = 'webauthn' AND s.confirmed \
         AND m.removed_at IS NULL AND NOT m.disabled ORDER BY m.created_seq",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(method_id, nonce, ciphertext)| {
            let sealed = Sealed { nonce, ciphertext };
            let passkey = open_passkey(keys, method_id, user_id, &sealed)?;
            Ok(StoredKey {
                method_id,
                passkey,
                sealed,
            })
        })
        .collect()
}

/// Every credential of the user, to exclude from a new registration
/// (a key already enrolled, even disabled, is not enrolled twice).
pub async fn all_keys(
    pool: &PgPool,
    keys: &MfaKeys,
    user_id: Uuid,
) -> Result<Vec<Passkey>, StoreError> {
    let rows: Vec<(Uuid, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT method_id, nonce, ciphertext FROM mfa_secrets \
         WHERE user_id = $1 AND kind = 'webauthn' AND confirmed",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(method_id, nonce, ciphertext)| {
            open_passkey(keys, method_id, user_id, &Sealed { nonce, ciphertext })
        })
        .collect()
}

/// Write the credential back with its advanced counter, only if nobody else
/// did since it was read. `false`: another assertion won the race.
pub async fn update_counter(
    pool: &PgPool,
    keys: &MfaKeys,
    user_id: Uuid,
    read: &StoredKey,
    updated: &Passkey,
) -> Result<bool, StoreError> {
    let plaintext = serde_json::to_vec(updated).map_err(|_| StoreError::Corrupt)?;
    let sealed = keys.seal(&plaintext, &aad(read.method_id, user_id))?;
    let done = sqlx::query(
        "UPDATE mfa_secrets SET nonce = $1, ciphertext = $2 \
         WHERE method_id = $3 AND user_id = $4 AND nonce = $5 AND ciphertext = $6",
    )
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(read.method_id)
    .bind(user_id)
    .bind(&read.sealed.nonce)
    .bind(&read.sealed.ciphertext)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The signature counter an assertion presents (authenticator data bytes
/// 33..37, big-endian: WebAuthn §6.1), for the regression event.
pub fn presented_counter(authenticator_data: &[u8]) -> Option<u64> {
    let bytes: [u8; 4] = authenticator_data.get(33..37)?.try_into().ok()?;
    Some(u64::from(u32::from_be_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_is_read_from_the_authenticator_data() {
        let mut data = vec![0u8; 37];
        data[32] = 0b0000_0101; // UP, UV
        data[33..37].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(presented_counter(&data), Some(7));
        assert_eq!(presented_counter(&data[..36]), None);
    }
}
