//! A person's methods: enrol (TOTP, YubiKey OTP), rename, remove, prefer;
//! new backup codes; an admin's reset. Every change is an event; the secrets
//! go to the sealed operational table ([`super::secrets`]), never an event.
//!
//! Confirming a person's first method verifies the session it was enrolled
//! on for sign-in (it opens no step-up window) and gives them their first
//! set of backup codes.

use chrono::Utc;
use events::catalogue::{
    MfaBackupCodesGenerated, MfaMethodEnrolled, MfaMethodRemoved, MfaMethodRenamed,
    MfaPreferredMethodSet, MfaVerificationSucceeded, UserUnlocked,
};
use events::store::AppendError;
use projections::mfa::MfaMethod;
use uuid::Uuid;

use super::verify::{self, Attempt, MfaRefusal, Purpose};
use super::{backup_codes, secrets, totp, yubikey, MfaKeys};
use crate::accounts::users::Requester;
use crate::state::AppState;

/// Longest label a method may have.
pub const MAX_LABEL: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Refused(#[from] MfaRefusal),
}

impl From<sqlx::Error> for MethodError {
    fn from(e: sqlx::Error) -> MethodError {
        MethodError::Refused(e.into())
    }
}

impl From<AppendError> for MethodError {
    fn from(e: AppendError) -> MethodError {
        match e {
            AppendError::Rejected(message) => MethodError::Conflict(message),
            other => MethodError::Refused(other.into()),
        }
    }
}

fn keys(state: &AppState) -> Result<&MfaKeys, MethodError> {
    state
        .mfa
        .keys
        .as_ref()
        .ok_or(MethodError::Refused(MfaRefusal::NoKeys))
}

/// A label as given, or the kind's default.
pub fn label(given: Option<&str>, default: &str) -> Result<String, MethodError> {
    let label = given
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or(default);
    if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(MethodError::Invalid(format!(
            "a method's label is at most {MAX_LABEL} printable characters"
        )));
    }
    Ok(label.to_owned())
}

/// What TOTP enrolment shows once.
pub struct TotpStarted {
    pub method_id: Uuid,
    pub enrolment: totp::Enrolment,
}

/// Begin a TOTP enrolment: a fresh seed, sealed, pending until its first code.
pub async fn start_totp(
    state: &AppState,
    user_id: Uuid,
    email: &str,
    given_label: Option<&str>,
) -> Result<TotpStarted, MethodError> {
    let keys = keys(state)?;
    let label = label(given_label, "Authenticator app")?;
    let seed = totp::new_seed().map_err(|_| MethodError::Refused(MfaRefusal::Unavailable))?;
    let enrolment =
        totp::enrolment(&seed, email).map_err(|_| MethodError::Refused(MfaRefusal::Unavailable))?;
    let method_id = Uuid::new_v4();
    let pending = secrets::Pending {
        method_id,
        user_id,
        kind: "totp",
        plaintext: &seed,
        lookup: None,
        label: &label,
    };
    secrets::insert_pending(&state.pool, keys, pending).await?;
    Ok(TotpStarted {
        method_id,
        enrolment,
    })
}

/// What confirming a method answers: the method, and the first backup codes
/// (shown once) when the person had none.
pub struct Enrolled {
    pub method: MfaMethod,
    pub backup_codes: Option<Vec<String>>,
}

/// Confirm a pending TOTP enrolment with its first code.
pub async fn confirm_totp(
    state: &AppState,
    attempt: &Attempt,
    method_id: Uuid,
    code: &str,
) -> Result<Enrolled, MethodError> {
    let keys = keys(state)?;
    let (seed, label) = secrets::pending(&state.pool, keys, method_id, attempt.user_id, "totp")
        .await?
        .ok_or_else(|| {
            MethodError::NotFound(format!(
                "no TOTP enrolment {method_id} in progress (it may have expired after {} minutes: start again)",
                secrets::PENDING_TTL_MINUTES
            ))
        })?;
    let code = verify::normalize_code(code);
    let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    let Some(step) = totp::matching_step(&seed, &code, now) else {
        let reason = if totp::looks_like_code(&code) {
            "invalid_code"
        } else {
            "malformed_code"
        };
        return Err(
            verify::record_failure(state, attempt, Some("totp"), None, reason)
                .await
                .into(),
        );
    };
    if !totp::claim_step(&state.pool, attempt.user_id, step).await? {
        return Err(
            verify::record_failure(state, attempt, Some("totp"), None, "replayed_code")
                .await
                .into(),
        );
    }
    let enrolled = MfaMethodEnrolled {
        method_id,
        user_id: attempt.user_id,
        email: attempt.email.clone(),
        kind: "totp".into(),
        label,
        cli_compatible: true,
        fingerprint: keys.fingerprint("totp", &seed),
    };
    finish_enrolment(state, attempt, keys, enrolled).await
}

/// Enrol a YubiKey with an OTP it typed: the service accepts it, and its
/// public id is bound to this person (refused if bound to anyone already).
pub async fn enrol_yubikey(
    state: &AppState,
    attempt: &Attempt,
    otp: &str,
    given_label: Option<&str>,
) -> Result<Enrolled, MethodError> {
    let keys = keys(state)?;
    let label = label(given_label, "YubiKey")?;
    let otp = verify::normalize_code(otp);
    let Some(public_id) = yubikey::public_id(&otp).map(str::to_owned) else {
        return Err(MethodError::Invalid(
            "not a YubiKey OTP: touch the key to type its 44-character code".into(),
        ));
    };
    let validator = state.mfa.yubico.as_ref().ok_or_else(|| {
        MethodError::Invalid(
            "YubiKey OTP is not configured on this gateway (YUBICO_CLIENT_ID, YUBICO_SECRET_KEY)"
                .into(),
        )
    })?;
    let lookup = yubikey::lookup(keys, &public_id);
    let taken: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM mfa_secrets s JOIN mfa_methods m ON m.id = s.method_id \
         WHERE s.lookup = $1 AND m.removed_at IS NULL)",
    )
    .bind(&lookup)
    .fetch_one(&state.pool)
    .await?;
    if taken {
        return Err(MethodError::Conflict(
            "this YubiKey is already enrolled (by you or someone else)".into(),
        ));
    }
    if let Err(refused) = validator.validate(&otp).await {
        let reason = match refused {
            yubikey::Refused::Replayed => "replayed_code",
            yubikey::Refused::Invalid => "invalid_code",
            yubikey::Refused::Untrusted => "yubikey_unavailable",
        };
        return Err(
            verify::record_failure(state, attempt, Some("yubikey"), None, reason)
                .await
                .into(),
        );
    }
    let method_id = Uuid::new_v4();
    // A lookup left by a removed or abandoned enrolment of this key is freed first.
    sqlx::query(
        "DELETE FROM mfa_secrets s WHERE s.lookup = $1 AND NOT EXISTS \
         (SELECT 1 FROM mfa_methods m WHERE m.id = s.method_id AND m.removed_at IS NULL)",
    )
    .bind(&lookup)
    .execute(&state.pool)
    .await?;
    let pending = secrets::Pending {
        method_id,
        user_id: attempt.user_id,
        kind: "yubikey",
        plaintext: public_id.as_bytes(),
        lookup: Some(&lookup),
        label: &label,
    };
    secrets::insert_pending(&state.pool, keys, pending)
        .await
        .map_err(|e| match e {
            MfaRefusal::Unavailable => {
                MethodError::Conflict("this YubiKey could not be bound (already enrolled?)".into())
            }
            other => other.into(),
        })?;
    let enrolled = MfaMethodEnrolled {
        method_id,
        user_id: attempt.user_id,
        email: attempt.email.clone(),
        kind: "yubikey".into(),
        label,
        cli_compatible: true,
        fingerprint: keys.fingerprint("yubikey", public_id.as_bytes()),
    };
    finish_enrolment(state, attempt, keys, enrolled).await
}

/// Record the enrolment (with the session's sign-in verification, and the
/// first backup codes when the person has none), then mark the secret usable.
pub(super) async fn finish_enrolment(
    state: &AppState,
    attempt: &Attempt,
    keys: &MfaKeys,
    enrolled: MfaMethodEnrolled,
) -> Result<Enrolled, MethodError> {
    let method_id = enrolled.method_id;
    let kind = enrolled.kind.clone();
    let mut drafts = vec![attempt.requester.draft(&enrolled)];
    if let Some(session_id) = attempt.session_id {
        drafts.push(attempt.requester.draft(&MfaVerificationSucceeded {
            user_id: attempt.user_id,
            email: attempt.email.clone(),
            session_id: Some(session_id),
            method_id: Some(method_id),
            kind,
            purpose: Purpose::Login.as_str().into(),
            channel: attempt.channel.as_str().into(),
            device: attempt.device.clone(),
            verifies_session: true,
            opens_step_up: false,
        }));
    }
    let had_codes = !projections::mfa::unused_backup_codes(&state.pool, attempt.user_id)
        .await?
        .is_empty();
    let mut codes = None;
    if !had_codes {
        let (new_codes, generated) = new_backup_codes(keys, attempt.user_id)?;
        drafts.push(attempt.requester.draft(&generated));
        codes = Some(new_codes);
    }
    state.appender.append_all(drafts).await?;
    secrets::mark_confirmed(&state.pool, method_id).await?;
    let method = projections::mfa::method(&state.pool, attempt.user_id, method_id)
        .await?
        .ok_or_else(|| MethodError::NotFound(format!("method {method_id} vanished")))?;
    Ok(Enrolled {
        method,
        backup_codes: codes,
    })
}

fn new_backup_codes(
    keys: &MfaKeys,
    user_id: Uuid,
) -> Result<(Vec<String>, MfaBackupCodesGenerated), MethodError> {
    backup_codes::generate(keys, user_id).map_err(|_| MethodError::Refused(MfaRefusal::Unavailable))
}

/// A new set of backup codes replacing the old (the caller checked step-up).
pub async fn regenerate_backup_codes(
    state: &AppState,
    by: &Requester,
    user_id: Uuid,
) -> Result<Vec<String>, MethodError> {
    let keys = keys(state)?;
    if projections::mfa::methods_of(&state.pool, user_id)
        .await?
        .is_empty()
    {
        return Err(MfaRefusal::NoMethod.into());
    }
    let (codes, generated) = new_backup_codes(keys, user_id)?;
    state.appender.append(by.draft(&generated)).await?;
    Ok(codes)
}

async fn owned(state: &AppState, user_id: Uuid, id: Uuid) -> Result<MfaMethod, MethodError> {
    projections::mfa::method(&state.pool, user_id, id)
        .await?
        .ok_or_else(|| MethodError::NotFound(format!("no MFA method {id} of yours")))
}

pub async fn rename(
    state: &AppState,
    by: &Requester,
    user_id: Uuid,
    id: Uuid,
    new_label: &str,
) -> Result<MfaMethod, MethodError> {
    let method = owned(state, user_id, id).await?;
    let new_label = label(Some(new_label), "")?;
    if new_label.is_empty() {
        return Err(MethodError::Invalid("a label must not be empty".into()));
    }
    if new_label != method.label {
        state
            .appender
            .append(by.draft(&MfaMethodRenamed {
                method_id: id,
                user_id,
                label: new_label,
                previous_label: method.label,
            }))
            .await?;
    }
    owned(state, user_id, id).await
}

/// Remove one method (`owner`) or every method of a person (`admin_reset`).
pub async fn remove(
    state: &AppState,
    by: &Requester,
    user_id: Uuid,
    ids: &[Uuid],
    reason: &str,
) -> Result<Vec<MfaMethod>, MethodError> {
    let mut removed = Vec::new();
    for id in ids {
        removed.push(owned(state, user_id, *id).await?);
    }
    if removed.is_empty() {
        return Ok(removed);
    }
    let drafts = removed
        .iter()
        .map(|m| {
            by.draft(&MfaMethodRemoved {
                method_id: m.id,
                user_id,
                kind: m.kind.clone(),
                label: m.label.clone(),
                reason: reason.to_owned(),
            })
        })
        .collect();
    state.appender.append_all(drafts).await?;
    for method in &removed {
        secrets::delete(&state.pool, method.id).await?;
    }
    Ok(removed)
}

pub async fn set_preferred(
    state: &AppState,
    by: &Requester,
    user_id: Uuid,
    method_id: Option<Uuid>,
) -> Result<(), MethodError> {
    if let Some(id) = method_id {
        owned(state, user_id, id).await?;
    }
    state
        .appender
        .append(by.draft(&MfaPreferredMethodSet { user_id, method_id }))
        .await?;
    Ok(())
}

/// After an admin reset: the backup codes replaced by an empty set, and
/// every live trusted device revoked, so nothing of the old factors remains.
pub async fn forget_backup_codes_and_devices(
    state: &AppState,
    by: &Requester,
    user_id: Uuid,
) -> Result<(), MethodError> {
    let mut drafts = Vec::new();
    if !projections::mfa::unused_backup_codes(&state.pool, user_id)
        .await?
        .is_empty()
    {
        drafts.push(by.draft(&MfaBackupCodesGenerated {
            user_id,
            set_id: Uuid::new_v4(),
            code_hmacs: Vec::new(),
        }));
    }
    for device in projections::mfa::trusted_devices_of(&state.pool, user_id).await? {
        if device.revoked_at.is_none() {
            drafts.push(by.draft(&events::catalogue::MfaTrustedDeviceRevoked {
                device_id: device.id,
                user_id,
                reason: "admin".into(),
            }));
        }
    }
    if !drafts.is_empty() {
        state.appender.append_all(drafts).await?;
    }
    Ok(())
}

/// An admin lifts a lock (the failures counted so far are forgotten).
pub async fn unlock(
    state: &AppState,
    by: &Requester,
    user_id: Uuid,
    email: &str,
) -> Result<(), MethodError> {
    let locked = projections::mfa::user_state(&state.pool, user_id)
        .await?
        .is_some_and(|u| u.locked_at.is_some());
    if !locked {
        return Err(MethodError::Conflict(format!("{email} is not locked")));
    }
    state
        .appender
        .append(by.draft(&UserUnlocked {
            user_id,
            email: email.to_owned(),
        }))
        .await?;
    sqlx::query("DELETE FROM mfa_failures WHERE user_id = $1")
        .bind(user_id)
        .execute(&state.pool)
        .await?;
    Ok(())
}
