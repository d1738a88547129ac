//! Second factors, folded: `mfa.*` events into `mfa_methods`,
//! `mfa_backup_codes`, `mfa_trusted_devices` and the MFA columns of `users`
//! (lock, preferred method) and `sessions` (verified, method, last step-up).
//! Migration `0006_mfa_projections.sql` declares the tables. No secret is
//! folded: the payloads carry none (see `events::catalogue::mfa`).

use chrono::{DateTime, Utc};
use events::catalogue::{
    EventPayload, MfaBackupCodeUsed, MfaBackupCodesGenerated, MfaMethodEnrolled, MfaMethodRemoved,
    MfaMethodRenamed, MfaPreferredMethodSet, MfaTrustedDeviceRevoked, MfaTrustedDeviceTrusted,
    MfaVerificationSucceeded, MfaWebauthnCounterRegressed, UserLocked, UserUnlocked,
};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::change::{
    checked_schema, expect_one_row, inserted, unique_violation, ApplyError, At, Change,
};
use crate::{FoldError, Rejection};

/// The kinds a method may have.
pub const METHOD_KINDS: &[&str] = &["totp", "webauthn", "yubikey"];

/// The row changes of the MFA events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MfaChange {
    InsertMethod {
        id: Uuid,
        user_id: Uuid,
        kind: String,
        label: String,
        cli_compatible: bool,
        fingerprint: String,
    },
    RenameMethod {
        id: Uuid,
        user_id: Uuid,
        label: String,
    },
    RemoveMethod {
        id: Uuid,
        user_id: Uuid,
        by: Option<String>,
    },
    DisableMethod {
        id: Uuid,
        user_id: Uuid,
        reason: String,
    },
    SetPreferred {
        user_id: Uuid,
        method_id: Option<Uuid>,
    },
    Verified {
        user_id: Uuid,
        session_id: Option<Uuid>,
        method_id: Option<Uuid>,
        kind: String,
        verifies_session: bool,
        opens_step_up: bool,
    },
    ReplaceBackupCodes {
        user_id: Uuid,
        set_id: Uuid,
        code_hmacs: Vec<String>,
    },
    UseBackupCode {
        user_id: Uuid,
        set_id: Uuid,
        index: u32,
    },
    TrustDevice {
        id: Uuid,
        user_id: Uuid,
        token_sha256: String,
        label: Option<String>,
        expires_at: DateTime<Utc>,
    },
    RevokeDevice {
        id: Uuid,
        user_id: Uuid,
        reason: String,
    },
    Lock {
        user_id: Uuid,
        reason: String,
    },
    Unlock {
        user_id: Uuid,
    },
}

fn one(change: MfaChange, at: At) -> Vec<Change> {
    vec![Change::Mfa { change, at }]
}

pub(crate) fn fold(
    event_type: &str,
    data: &serde_json::Value,
    actor: Option<String>,
    at: At,
) -> Result<Option<Vec<Change>>, FoldError> {
    let changes = match event_type {
        MfaMethodEnrolled::TYPE => {
            let p: MfaMethodEnrolled = crate::payload(data)?;
            if !METHOD_KINDS.contains(&p.kind.as_str()) {
                return Err(FoldError::new(
                    event_type,
                    format!("unknown kind {:?}", p.kind),
                ));
            }
            one(
                MfaChange::InsertMethod {
                    id: p.method_id,
                    user_id: p.user_id,
                    kind: p.kind,
                    label: p.label,
                    cli_compatible: p.cli_compatible,
                    fingerprint: p.fingerprint,
                },
                at,
            )
        }
        MfaMethodRenamed::TYPE => {
            let p: MfaMethodRenamed = crate::payload(data)?;
            one(
                MfaChange::RenameMethod {
                    id: p.method_id,
                    user_id: p.user_id,
                    label: p.label,
                },
                at,
            )
        }
        MfaMethodRemoved::TYPE => {
            let p: MfaMethodRemoved = crate::payload(data)?;
            one(
                MfaChange::RemoveMethod {
                    id: p.method_id,
                    user_id: p.user_id,
                    by: actor,
                },
                at,
            )
        }
        MfaPreferredMethodSet::TYPE => {
            let p: MfaPreferredMethodSet = crate::payload(data)?;
            one(
                MfaChange::SetPreferred {
                    user_id: p.user_id,
                    method_id: p.method_id,
                },
                at,
            )
        }
        MfaVerificationSucceeded::TYPE => {
            let p: MfaVerificationSucceeded = crate::payload(data)?;
            one(
                MfaChange::Verified {
                    user_id: p.user_id,
                    session_id: p.session_id,
                    method_id: p.method_id,
                    kind: p.kind,
                    verifies_session: p.verifies_session,
                    opens_step_up: p.opens_step_up,
                },
                at,
            )
        }
        MfaBackupCodesGenerated::TYPE => {
            let p: MfaBackupCodesGenerated = crate::payload(data)?;
            one(
                MfaChange::ReplaceBackupCodes {
                    user_id: p.user_id,
                    set_id: p.set_id,
                    code_hmacs: p.code_hmacs,
                },
                at,
            )
        }
        MfaBackupCodeUsed::TYPE => {
            let p: MfaBackupCodeUsed = crate::payload(data)?;
            one(
                MfaChange::UseBackupCode {
                    user_id: p.user_id,
                    set_id: p.set_id,
                    index: p.index,
                },
                at,
            )
        }
        MfaTrustedDeviceTrusted::TYPE => {
            let p: MfaTrustedDeviceTrusted = crate::payload(data)?;
            let expires_at = crate::optional_time(event_type, "expires_at", Some(&p.expires_at))?
                .ok_or_else(|| FoldError::new(event_type, "expires_at is required"))?;
            one(
                MfaChange::TrustDevice {
                    id: p.device_id,
                    user_id: p.user_id,
                    token_sha256: p.token_sha256,
                    label: p.label,
                    expires_at,
                },
                at,
            )
        }
        MfaTrustedDeviceRevoked::TYPE => {
            let p: MfaTrustedDeviceRevoked = crate::payload(data)?;
            one(
                MfaChange::RevokeDevice {
                    id: p.device_id,
                    user_id: p.user_id,
                    reason: p.reason,
                },
                at,
            )
        }
        MfaWebauthnCounterRegressed::TYPE => {
            let p: MfaWebauthnCounterRegressed = crate::payload(data)?;
            one(
                MfaChange::DisableMethod {
                    id: p.method_id,
                    user_id: p.user_id,
                    reason: format!(
                        "signature counter went from {} to {}",
                        p.stored_counter, p.presented_counter
                    ),
                },
                at,
            )
        }
        UserLocked::TYPE => {
            let p: UserLocked = crate::payload(data)?;
            one(
                MfaChange::Lock {
                    user_id: p.user_id,
                    reason: p.reason,
                },
                at,
            )
        }
        UserUnlocked::TYPE => {
            let p: UserUnlocked = crate::payload(data)?;
            one(MfaChange::Unlock { user_id: p.user_id }, at)
        }
        _ => return Ok(None),
    };
    Ok(Some(changes))
}

impl MfaChange {
    pub(crate) async fn apply(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        at: At,
    ) -> Result<(), ApplyError> {
        let s = checked_schema(schema)?;
        match self {
            MfaChange::InsertMethod {
                id,
                user_id,
                kind,
                label,
                cli_compatible,
                fingerprint,
            } => {
                let result = sqlx::query(&format!(
                    "INSERT INTO {s}.mfa_methods (id, user_id, kind, label, cli_compatible, fingerprint, disabled, created_at, created_seq, updated_at, updated_seq) \
                     SELECT $1, $2, $3, $4, $5, $6, false, $7, $8, $7, $8 \
                     WHERE EXISTS (SELECT 1 FROM {s}.users WHERE id = $2 AND NOT disabled)"
                ))
                .bind(id)
                .bind(user_id)
                .bind(kind)
                .bind(label)
                .bind(cli_compatible)
                .bind(fingerprint)
                .bind(at.ts)
                .bind(at.seq)
                .execute(&mut *conn)
                .await;
                match result {
                    Ok(done) => expect_one_row(done.rows_affected(), || {
                        format!("no enabled user with id {user_id}")
                    }),
                    Err(e) if unique_violation(&e) => {
                        Err(Rejection(format!("MFA method {id} already exists")).into())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            MfaChange::RenameMethod { id, user_id, label } => {
                let done = sqlx::query(&format!(
                    "UPDATE {s}.mfa_methods SET label = $3, updated_at = $4, updated_seq = $5 \
                     WHERE id = $1 AND user_id = $2 AND removed_at IS NULL"
                ))
                .bind(id)
                .bind(user_id)
                .bind(label)
                .bind(at.ts)
                .bind(at.seq)
                .execute(&mut *conn)
                .await?;
                expect_one_row(done.rows_affected(), || no_method(*id))
            }
            MfaChange::RemoveMethod { id, user_id, by } => {
                let done = sqlx::query(&format!(
                    "UPDATE {s}.mfa_methods SET removed_at = $3, removed_seq = $4, removed_by = $5, updated_at = $3, updated_seq = $4 \
                     WHERE id = $1 AND user_id = $2 AND removed_at IS NULL"
                ))
                .bind(id)
                .bind(user_id)
                .bind(at.ts)
                .bind(at.seq)
                .bind(by)
                .execute(&mut *conn)
                .await?;
                expect_one_row(done.rows_affected(), || no_method(*id))?;
                // A removed method is no longer anyone's preference.
                sqlx::query(&format!(
                    "UPDATE {s}.users SET mfa_preferred_method = NULL WHERE id = $1 AND mfa_preferred_method = $2"
                ))
                .bind(user_id)
                .bind(id)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
            MfaChange::DisableMethod {
                id,
                user_id,
                reason,
            } => {
                let done = sqlx::query(&format!(
                    "UPDATE {s}.mfa_methods SET disabled = true, disabled_reason = $3, updated_at = $4, updated_seq = $5 \
                     WHERE id = $1 AND user_id = $2 AND removed_at IS NULL"
                ))
                .bind(id)
                .bind(user_id)
                .bind(reason)
                .bind(at.ts)
                .bind(at.seq)
                .execute(&mut *conn)
                .await?;
                expect_one_row(done.rows_affected(), || no_method(*id))
            }
            MfaChange::SetPreferred { user_id, method_id } => {
                if let Some(method) = method_id {
                    let owned: Option<(Uuid,)> = sqlx::query_as(&format!(
                        "SELECT id FROM {s}.mfa_methods WHERE id = $1 AND user_id = $2 AND removed_at IS NULL"
                    ))
                    .bind(method)
                    .bind(user_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if owned.is_none() {
                        return Err(Rejection(no_method(*method)).into());
                    }
                }
                let done = sqlx::query(&format!(
                    "UPDATE {s}.users SET mfa_preferred_method = $2 WHERE id = $1"
                ))
                .bind(user_id)
                .bind(method_id)
                .execute(&mut *conn)
                .await?;
                expect_one_row(done.rows_affected(), || {
                    format!("no user with id {user_id}")
                })
            }
            MfaChange::Verified {
                user_id,
                session_id,
                method_id,
                kind,
                verifies_session,
                opens_step_up,
            } => {
                if let Some(session) = session_id {
                    let done = sqlx::query(&format!(
                        "UPDATE {s}.sessions SET \
                           mfa_verified = mfa_verified OR $3, \
                           mfa_method = CASE WHEN $3 THEN $4 ELSE mfa_method END, \
                           mfa_verified_at = CASE WHEN $3 THEN $5 ELSE mfa_verified_at END, \
                           recent_step_up_at = CASE WHEN $6 THEN $5 ELSE recent_step_up_at END \
                         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"
                    ))
                    .bind(session)
                    .bind(user_id)
                    .bind(verifies_session)
                    .bind(kind)
                    .bind(at.ts)
                    .bind(opens_step_up)
                    .execute(&mut *conn)
                    .await?;
                    expect_one_row(done.rows_affected(), || {
                        format!("no active session with id {session} for this user")
                    })?;
                }
                if let Some(method) = method_id {
                    let done = sqlx::query(&format!(
                        "UPDATE {s}.mfa_methods SET last_used_at = $3 \
                         WHERE id = $1 AND user_id = $2 AND removed_at IS NULL AND NOT disabled"
                    ))
                    .bind(method)
                    .bind(user_id)
                    .bind(at.ts)
                    .execute(&mut *conn)
                    .await?;
                    expect_one_row(done.rows_affected(), || no_method(*method))?;
                }
                Ok(())
            }
            MfaChange::ReplaceBackupCodes {
                user_id,
                set_id,
                code_hmacs,
            } => {
                sqlx::query(&format!(
                    "DELETE FROM {s}.mfa_backup_codes WHERE user_id = $1"
                ))
                .bind(user_id)
                .execute(&mut *conn)
                .await?;
                for (index, hmac) in code_hmacs.iter().enumerate() {
                    sqlx::query(&format!(
                        "INSERT INTO {s}.mfa_backup_codes (id, user_id, set_id, idx, code_hmac, created_at, created_seq) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    ))
                    .bind(backup_code_key(*set_id, index as u32))
                    .bind(user_id)
                    .bind(set_id)
                    .bind(index as i32)
                    .bind(hmac)
                    .bind(at.ts)
                    .bind(at.seq)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            }
            MfaChange::UseBackupCode {
                user_id,
                set_id,
                index,
            } => {
                let done = sqlx::query(&format!(
                    "UPDATE {s}.mfa_backup_codes SET used_at = $3, used_seq = $4 \
                     WHERE id = $1 AND user_id = $2 AND used_at IS NULL"
                ))
                .bind(backup_code_key(*set_id, *index))
                .bind(user_id)
                .bind(at.ts)
                .bind(at.seq)
                .execute(&mut *conn)
                .await?;
                expect_one_row(done.rows_affected(), || {
                    "that backup code was already used or replaced".to_owned()
                })
            }
            MfaChange::TrustDevice {
                id,
                user_id,
                token_sha256,
                label,
                expires_at,
            } => {
                let result = sqlx::query(&format!(
                    "INSERT INTO {s}.mfa_trusted_devices (id, user_id, token_sha256, label, created_at, created_seq, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)"
                ))
                .bind(id)
                .bind(user_id)
                .bind(token_sha256)
                .bind(label)
                .bind(at.ts)
                .bind(at.seq)
                .bind(expires_at)
                .execute(&mut *conn)
                .await;
                inserted(result, || format!("trusted device {id} already exists"))
            }
            MfaChange::RevokeDevice {
                id,
                user_id,
                reason,
            } => {
                let done = sqlx::query(&format!(
                    "UPDATE {s}.mfa_trusted_devices SET revoked_at = $3, revoked_seq = $4, revoke_reason = $5 \
                     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"
                ))
                .bind(id)
                .bind(user_id)
                .bind(at.ts)
                .bind(at.seq)
                .bind(reason)
                .execute(&mut *conn)
                .await?;
                expect_one_row(done.rows_affected(), || {
                    format!("no trusted device with id {id}")
                })
            }
            MfaChange::Lock { user_id, reason } => {
                let done = sqlx::query(&format!(
                    "UPDATE {s}.users SET locked_at = $2, locked_seq = $3, locked_reason = $4, updated_at = $2, updated_seq = $3 \
                     WHERE id = $1 AND locked_at IS NULL"
                ))
                .bind(user_id)
                .bind(at.ts)
                .bind(at.seq)
                .bind(reason)
                .execute(&mut *conn)
                .await?;
                expect_one_row(done.rows_affected(), || {
                    format!("no unlocked user with id {user_id}")
                })
            }
            MfaChange::Unlock { user_id } => {
                let done = sqlx::query(&format!(
                    "UPDATE {s}.users SET locked_at = NULL, locked_seq = NULL, locked_reason = NULL, updated_at = $2, updated_seq = $3 \
                     WHERE id = $1 AND locked_at IS NOT NULL"
                ))
                .bind(user_id)
                .bind(at.ts)
                .bind(at.seq)
                .execute(&mut *conn)
                .await?;
                expect_one_row(done.rows_affected(), || {
                    format!("no locked user with id {user_id}")
                })
            }
        }
    }
}

fn no_method(id: Uuid) -> String {
    format!("no MFA method with id {id}")
}

fn backup_code_key(set_id: Uuid, index: u32) -> String {
    format!("{set_id}:{index}")
}

/// A method, as listed to its owner and admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MfaMethod {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub label: String,
    pub cli_compatible: bool,
    pub fingerprint: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

const METHOD_COLUMNS: &str =
    "id, user_id, kind, label, cli_compatible, fingerprint, disabled, disabled_reason, created_at, last_used_at";

/// A user's methods that are not removed (disabled ones included, marked), oldest first.
pub async fn methods_of(pool: &PgPool, user_id: Uuid) -> Result<Vec<MfaMethod>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {METHOD_COLUMNS} FROM mfa_methods WHERE user_id = $1 AND removed_at IS NULL ORDER BY created_seq"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// One method of a user, not removed.
pub async fn method(
    pool: &PgPool,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<MfaMethod>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {METHOD_COLUMNS} FROM mfa_methods WHERE id = $1 AND user_id = $2 AND removed_at IS NULL"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

/// A user's MFA state beyond their methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UserMfaState {
    pub locked_at: Option<DateTime<Utc>>,
    pub locked_reason: Option<String>,
    pub mfa_preferred_method: Option<Uuid>,
}

pub async fn user_state(pool: &PgPool, user_id: Uuid) -> Result<Option<UserMfaState>, sqlx::Error> {
    sqlx::query_as("SELECT locked_at, locked_reason, mfa_preferred_method FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await
}

/// A session's MFA state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SessionMfaState {
    pub mfa_verified: bool,
    pub mfa_method: Option<String>,
    pub mfa_verified_at: Option<DateTime<Utc>>,
    pub recent_step_up_at: Option<DateTime<Utc>>,
}

pub async fn session_state(
    pool: &PgPool,
    session_id: Uuid,
) -> Result<Option<SessionMfaState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT mfa_verified, mfa_method, mfa_verified_at, recent_step_up_at FROM sessions WHERE id = $1",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await
}

/// The unused codes of a user's current set: (set id, index, HMAC).
pub async fn unused_backup_codes(
    pool: &PgPool,
    user_id: Uuid,
) -> Result<Vec<(Uuid, i32, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT set_id, idx, code_hmac FROM mfa_backup_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY idx",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// A live trusted device by its cookie's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TrustedDevice {
    pub id: Uuid,
    pub user_id: Uuid,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const DEVICE_COLUMNS: &str = "id, user_id, label, created_at, expires_at, revoked_at";

pub async fn trusted_device_by_sha256(
    pool: &PgPool,
    token_sha256: &str,
) -> Result<Option<TrustedDevice>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DEVICE_COLUMNS} FROM mfa_trusted_devices WHERE token_sha256 = $1"
    ))
    .bind(token_sha256)
    .fetch_optional(pool)
    .await
}

pub async fn trusted_devices_of(
    pool: &PgPool,
    user_id: Uuid,
) -> Result<Vec<TrustedDevice>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DEVICE_COLUMNS} FROM mfa_trusted_devices WHERE user_id = $1 ORDER BY created_seq DESC"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// What a session's caller has shown, read with the session on every call:
/// one query for the session's MFA columns, the user's lock and whether
/// they have a usable method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PrincipalMfaState {
    pub mfa_verified: bool,
    pub mfa_method: Option<String>,
    pub recent_step_up_at: Option<DateTime<Utc>>,
    pub locked_at: Option<DateTime<Utc>>,
    pub enrolled: bool,
}

pub async fn principal_state(
    pool: &PgPool,
    session_id: Uuid,
    user_id: Uuid,
) -> Result<PrincipalMfaState, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.mfa_verified, s.mfa_method, s.recent_step_up_at, u.locked_at, \
                EXISTS (SELECT 1 FROM mfa_methods m WHERE m.user_id = u.id AND m.removed_at IS NULL AND NOT m.disabled) AS enrolled \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND u.id = $2",
    )
    .bind(session_id)
    .bind(user_id)
    .fetch_one(pool)
    .await
}
