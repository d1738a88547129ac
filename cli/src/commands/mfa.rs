//! `mfa list | enroll totp | backup-codes [regenerate] | verify`: a person's
//! own methods, from the terminal.

use super::{human_time, refused, Context};
use crate::api::mfa::MfaStatus;
use crate::api::ApiError;
use crate::args::{BackupCodesCommand, EnrollCommand, MfaCommand};
use crate::mfa::enroll::{self, Enrolled};
use crate::mfa::prompt::Tty;
use crate::mfa::Verified;
use crate::racks::{Credential, Selection};

/// The permission `backup-codes regenerate` needs (its level is the gateway's: `step_up`).
const REGENERATE: &str = "auth:mfa_backup_codes:generate";

pub async fn run(ctx: &Context, command: MfaCommand) -> anyhow::Result<i32> {
    let (selection, credential, client) = ctx.authenticated()?;
    let refused = |e: ApiError| refused(e, &selection, &credential);
    match command {
        MfaCommand::List => {
            let status = client.mfa_status().await.map_err(refused)?;
            print_status(&status);
        }
        MfaCommand::Enroll(EnrollCommand::Totp { label, confirm }) => {
            let mut terminal = Tty::detect();
            let code = ctx.globals.mfa_code.as_deref();
            let enrolled = match confirm {
                Some(method_id) => {
                    enroll::confirm(&client, &mut terminal, &method_id, code).await?
                }
                None => enroll::totp(&client, &mut terminal, label.as_deref(), code).await?,
            };
            if let Enrolled::Confirmed { method_id } = enrolled {
                outln!("TOTP method {method_id} enrolled.");
                // Enrolling the first method verifies a session that was waiting to enrol.
                if let Ok(status) = client.mfa_status().await {
                    if status.mfa_verified {
                        ctx.record_verified(
                            &selection,
                            &Verified {
                                method: status.mfa_method.or(Some("totp".into())),
                                step_up_expires_at: None,
                            },
                        )?;
                    }
                    if status.backup_codes_remaining.unwrap_or(0) == 0 {
                        outln!("Keep backup codes for a lost phone: rack-gateway mfa backup-codes regenerate");
                    }
                }
            }
        }
        MfaCommand::BackupCodes { command: None } => {
            let status = client.mfa_status().await.map_err(refused)?;
            outln!(
                "Backup codes remaining: {}",
                status.backup_codes_remaining.unwrap_or(0)
            );
            outln!("New set (replaces the old one): rack-gateway mfa backup-codes regenerate");
        }
        MfaCommand::BackupCodes {
            command: Some(BackupCodesCommand::Regenerate),
        } => {
            let codes = ctx
                .with_mfa(
                    &selection,
                    &credential,
                    &client,
                    REGENERATE,
                    |client| async move { client.regenerate_backup_codes().await },
                )
                .await?;
            outln!("Your new backup codes (each works once; the old ones no longer work):");
            for code in &codes.codes {
                outln!("  {code}");
            }
            outln!("Store them somewhere safe now: they will not be shown again.");
        }
        MfaCommand::Verify => {
            let mut terminal = Tty::detect();
            let mut mfa = ctx.mfa(&selection, &client, &mut terminal)?;
            let status = mfa
                .status()
                .await
                .map_err(|e| api_refused(e, &selection, &credential))?;
            let verified = mfa.verify_now(&status).await?;
            if let Some(session) = mfa.verified_session.take() {
                ctx.record_verified(&selection, &session)?;
            }
            print_verified(&verified);
        }
    }
    Ok(0)
}

/// [`refused`] for an error that came through `anyhow`.
pub fn api_refused(
    error: anyhow::Error,
    selection: &Selection,
    credential: &Credential,
) -> anyhow::Error {
    match error.downcast::<ApiError>() {
        Ok(api) => refused(api, selection, credential),
        Err(other) => other,
    }
}

pub fn print_verified(verified: &Verified) {
    let how = verified
        .method
        .as_deref()
        .map(|m| format!(" with {m}"))
        .unwrap_or_default();
    match &verified.step_up_expires_at {
        Some(until) => outln!(
            "MFA verified{how}; step-up window open until {}",
            human_time(until)
        ),
        None => outln!("MFA verified{how}"),
    }
}

fn print_status(status: &MfaStatus) {
    if status.methods.is_empty() {
        outln!("No MFA methods enrolled. Enrol with: rack-gateway mfa enroll totp");
    } else {
        outln!("MFA methods:");
        for method in &status.methods {
            let mut notes = Vec::new();
            if status.preferred_method.as_deref() == Some(method.id.as_str()) {
                notes.push("preferred".to_owned());
            }
            if !method.cli_compatible {
                notes.push("not usable from the CLI".to_owned());
            }
            if method.disabled {
                notes.push("disabled".to_owned());
            }
            if method.confirmed == Some(false) {
                notes.push("not confirmed".to_owned());
            }
            if let Some(at) = &method.last_used_at {
                notes.push(format!("last used {}", human_time(at)));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", notes.join(", "))
            };
            outln!(
                "  {:<9} {:<20} {}{notes}",
                method.kind,
                method.label.as_deref().unwrap_or("-"),
                method.id
            );
        }
    }
    outln!(
        "Backup codes remaining: {}",
        status.backup_codes_remaining.unwrap_or(0)
    );
    let session = if status.mfa_verified {
        match &status.mfa_method {
            Some(method) => format!("verified with {method}"),
            None => "verified".to_owned(),
        }
    } else if status.enrollment_required {
        "waiting for enrolment".to_owned()
    } else if status.mfa_required {
        "waiting for verification (rack-gateway mfa verify)".to_owned()
    } else {
        "not verified".to_owned()
    };
    outln!("This session: {session}");
    match &status.recent_step_up_expires_at {
        Some(until) if crate::mfa::flow::window_is_fresh(status, chrono::Utc::now()) => {
            outln!("Step-up window: open until {}", human_time(until))
        }
        _ => outln!("Step-up window: closed"),
    }
    if status.locked {
        outln!("Account: LOCKED after repeated MFA failures; an admin must unlock it");
    }
}
