//! The operational table of MFA secrets (`mfa_secrets`, migration 0007):
//! a TOTP seed or a YubiKey binding, sealed under the AEAD key and bound to
//! its row, never in an event. A row is usable once its method is enrolled
//! (an `mfa_methods` row, from `mfa.method.enrolled`) and neither removed nor
//! disabled; until then it is an enrolment in progress.

use sqlx::PgPool;
use uuid::Uuid;

use super::verify::MfaRefusal;
use super::{MfaKeys, Sealed};
use crate::state::AppState;

/// Enrolments not confirmed within this long are deleted.
pub const PENDING_TTL_MINUTES: i32 = 30;

/// The associated data binding a sealed secret to its row.
pub(super) fn aad(method_id: Uuid, user_id: Uuid, kind: &str) -> Vec<u8> {
    format!("rack-gateway mfa secret\0{method_id}\0{user_id}\0{kind}").into_bytes()
}

/// An enrolment's secret before its first use confirms it.
pub struct Pending<'a> {
    pub method_id: Uuid,
    pub user_id: Uuid,
    pub kind: &'a str,
    pub plaintext: &'a [u8],
    /// A value unique across users (a YubiKey's keyed public id), if the kind needs one.
    pub lookup: Option<&'a str>,
    pub label: &'a str,
}

/// Store a new, unconfirmed secret (and drop this user's stale enrolments).
pub async fn insert_pending(
    pool: &PgPool,
    keys: &MfaKeys,
    pending: Pending<'_>,
) -> Result<(), MfaRefusal> {
    let Pending {
        method_id,
        user_id,
        kind,
        plaintext,
        lookup,
        label,
    } = pending;
    let sealed = keys
        .seal(plaintext, &aad(method_id, user_id, kind))
        .map_err(|_| MfaRefusal::Unavailable)?;
    sqlx::query(
        "DELETE FROM mfa_secrets WHERE user_id = $1 AND NOT confirmed \
         AND created_at < now() - make_interval(mins => $2)",
    )
    .bind(user_id)
    .bind(PENDING_TTL_MINUTES)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO mfa_secrets (method_id, user_id, kind, nonce, ciphertext, lookup, confirmed, pending_label) \
         VALUES ($1, $2, $3, $4, $5, $6, false, $7)",
    )
    .bind(method_id)
    .bind(user_id)
    .bind(kind)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(lookup)
    .bind(label)
    .execute(pool)
    .await?;
    Ok(())
}

/// An enrolment in progress of this user, opened, with its label.
pub async fn pending(
    pool: &PgPool,
    keys: &MfaKeys,
    method_id: Uuid,
    user_id: Uuid,
    kind: &str,
) -> Result<Option<(Vec<u8>, String)>, MfaRefusal> {
    let row: Option<(Vec<u8>, Vec<u8>, Option<String>)> = sqlx::query_as(
        "SELECT nonce, ciphertext, pending_label FROM mfa_secrets WHERE method_id = $1 AND user_id = $2 AND kind = $3 \
         AND NOT confirmed AND created_at > now() - make_interval(mins => $4)",
    )
    .bind(method_id)
    .bind(user_id)
    .bind(kind)
    .bind(PENDING_TTL_MINUTES)
    .fetch_optional(pool)
    .await?;
    row.map(|(nonce, ciphertext, label)| {
        Ok((
            open(keys, method_id, user_id, kind, nonce, ciphertext)?,
            label.unwrap_or_default(),
        ))
    })
    .transpose()
}

pub async fn mark_confirmed(pool: &PgPool, method_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mfa_secrets SET confirmed = true WHERE method_id = $1")
        .bind(method_id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn delete(pool: &PgPool, method_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM mfa_secrets WHERE method_id = $1")
        .bind(method_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The usable secrets of one kind of a user's enrolled methods, opened.
pub async fn confirmed(
    state: &AppState,
    keys: &MfaKeys,
    user_id: Uuid,
    kind: &str,
) -> Result<Vec<(Uuid, Vec<u8>)>, MfaRefusal> {
    let rows: Vec<(Uuid, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT s.method_id, s.nonce, s.ciphertext FROM mfa_secrets s \
         JOIN mfa_methods m ON m.id = s.method_id AND m.user_id = s.user_id \
         WHERE s.user_id = $1 AND s.kind = $2 AND m.removed_at IS NULL AND NOT m.disabled \
         ORDER BY m.created_seq",
    )
    .bind(user_id)
    .bind(kind)
    .fetch_all(&state.pool)
    .await?;
    rows.into_iter()
        .map(|(id, nonce, ciphertext)| Ok((id, open(keys, id, user_id, kind, nonce, ciphertext)?)))
        .collect()
}

fn open(
    keys: &MfaKeys,
    method_id: Uuid,
    user_id: Uuid,
    kind: &str,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
) -> Result<Vec<u8>, MfaRefusal> {
    keys.open(
        &Sealed { nonce, ciphertext },
        &aad(method_id, user_id, kind),
    )
    .map_err(|e| {
        tracing::error!(method_id = %method_id, error = %e, "an MFA secret could not be opened");
        MfaRefusal::Unavailable
    })
}
