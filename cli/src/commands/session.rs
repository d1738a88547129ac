//! `login`, `logout` and `test-auth`: getting, dropping and checking a session.

use anyhow::{anyhow, bail};
use chrono::Utc;

use super::{human_time, refused, Context};
use crate::api::{CompleteLogin, GatewayClient, StartLogin};
use crate::args::LoginArgs;
use crate::config::{RackEntry, SessionState};
use crate::login::{write_auth_file, CliSecret, Device, PollSchedule, WaitingIndicator};
use crate::mfa::enroll::{self, Enrolled};
use crate::mfa::prompt::{confirm, Tty};
use crate::mfa::Verified;
use crate::racks::{GatewayUrl, Selection, NO_RACK_SELECTED};

/// `login [rack] [url]`: no argument re-authenticates the current rack, one a
/// configured rack (or one whose URL `RACK_GATEWAY_URL` gives), two a new rack.
pub async fn login(ctx: &Context, args: LoginArgs) -> anyhow::Result<i32> {
    let config = ctx.config()?;
    let rack = args
        .rack
        .clone()
        .or_else(|| ctx.globals.rack.clone())
        .or_else(|| ctx.env.rack.clone())
        .or_else(|| config.current.clone())
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| anyhow!(NO_RACK_SELECTED))?;
    let url_text = args
        .url
        .clone()
        .or_else(|| ctx.env.url.clone())
        .or_else(|| config.gateways.get(&rack).map(|e| e.url.clone()))
        .ok_or_else(|| {
            anyhow!("rack {rack} is not configured. Run: rack-gateway login {rack} <gateway-url>")
        })?;
    let url = GatewayUrl::parse(&url_text)?;

    let device = Device::this_machine(&config.machine_id);
    let secret = CliSecret::generate();
    let client = GatewayClient::new(&url, None)?;
    let started = client
        .start_login(&StartLogin {
            cli_secret_sha256: secret.sha256.clone(),
            device_id: device.id.clone(),
            device_name: device.name.clone(),
            device_os: device.os.clone(),
            client_version: device.client_version.clone(),
        })
        .await?;
    crate::login::check_auth_url(&started.auth_url)?;
    if let Some(path) = &args.auth_file {
        write_auth_file(path, &started)?;
    }

    if ctx.globals.no_open {
        outln!("Open this URL in your browser to sign in:");
        outln!("  {}", started.auth_url);
    } else {
        eprintln!("Opening browser for authentication...");
        if let Err(error) = webbrowser::open(&started.auth_url) {
            eprintln!("Could not open a browser ({error}).");
        }
        outln!("If the browser did not open, visit this URL to sign in:");
        outln!("  {}", started.auth_url);
    }
    if let Some(code) = &started.user_code {
        outln!("Your browser will show a code: confirm only if it is {code}");
    }

    let request = CompleteLogin {
        state: started.state.clone(),
        cli_secret: secret.secret,
        device_id: device.id,
        device_name: device.name,
        device_os: device.os,
        client_version: device.client_version,
    };
    let mut indicator = WaitingIndicator::start();
    let session =
        crate::login::wait_for_session(&client, &request, PollSchedule::default(), &mut indicator)
            .await?;

    // Read again: another command may have saved while the browser was open.
    let mut config = ctx.store.load()?;
    let previous = config.gateways.get(&rack);
    let extra = previous.map(|e| e.extra.clone()).unwrap_or_default();
    let mfa_preference = previous.and_then(|e| e.mfa_preference.clone());
    let token = session.token.clone();
    config.gateways.insert(
        rack.clone(),
        RackEntry {
            url: url.as_str().to_owned(),
            token: Some(session.token),
            email: Some(session.email.clone()),
            expires_at: session.expires_at,
            session_id: session.session_id,
            channel: session.channel,
            device_id: session.device_id,
            device_name: session.device_name,
            mfa_verified: session.mfa_verified,
            mfa_method: session.mfa_method,
            mfa_preference,
            extra,
        },
    );
    config.current = Some(rack.clone());
    ctx.store.save(&config)?;

    // The session is saved before MFA, so that a sign-in that must still
    // verify or enrol can be finished by `rack-gateway mfa …` later.
    let selection = Selection {
        rack: Some(rack.clone()),
        url: url.clone(),
        entry: config.gateways.get(&rack).cloned(),
    };
    let client = GatewayClient::new(&url, Some(&token))?;
    if session.enrollment_required {
        enrol_at_login(ctx, &selection, &client).await?;
    } else if session.mfa_required && session.mfa_verified != Some(true) {
        eprintln!("MFA verification required.");
        let mut terminal = Tty::detect();
        let mut mfa = ctx.mfa(&selection, &client, &mut terminal)?;
        let verified = async {
            let status = client.mfa_status().await?;
            mfa.verify_now(&status).await
        }
        .await
        .map_err(|e| {
            anyhow!(
                "{e:#}\nThe session is saved but waits for MFA: finish with \
                 rack-gateway mfa verify (with --mfa-code CODE where there is no terminal)"
            )
        })?;
        ctx.record_verified(&selection, &verified)?;
        eprintln!("MFA verified");
    }
    outln!("Logged in to {rack} as {}", session.email);
    Ok(0)
}

/// A sign-in of a person with no method yet: the session may only enrol. On a
/// terminal, offer the TOTP enrolment right here; otherwise say what to run.
async fn enrol_at_login(
    ctx: &Context,
    selection: &Selection,
    client: &GatewayClient,
) -> anyhow::Result<()> {
    eprintln!("MFA enrollment required: this gateway requires a second factor for your account.");
    let later = format!(
        "MFA enrollment required: the session is saved but may only enrol. Enrol with: \
         rack-gateway mfa enroll totp (or in the browser at {}/app/mfa/enroll)",
        selection.url
    );
    let mut terminal = Tty::detect();
    if !confirm(&mut terminal, "Enrol an authenticator app (TOTP) now?") {
        bail!(later);
    }
    match enroll::totp(client, &mut terminal, None, None).await? {
        Enrolled::Confirmed { .. } => {
            ctx.record_verified(
                selection,
                &Verified {
                    method: Some("totp".into()),
                    step_up_expires_at: None,
                },
            )?;
            eprintln!("TOTP enrolled; this session is verified.");
            eprintln!(
                "Keep backup codes for a lost phone: rack-gateway mfa backup-codes regenerate"
            );
            Ok(())
        }
        Enrolled::Started { .. } => bail!(later),
    }
}

/// `logout` (decision 3): revoke the session on the gateway, then clear the
/// token fields and keep the rack's URL. A gateway that cannot be reached does
/// not keep the secret on disk; the user is told the session may still be live.
pub async fn logout(ctx: &Context) -> anyhow::Result<i32> {
    let mut config = ctx.config()?;
    let selection = ctx.select(&config)?;
    let Some(rack) = selection.rack.clone() else {
        bail!("there is no stored session for a rack given only by RACK_GATEWAY_URL");
    };
    let Some(entry) = config.gateways.get_mut(&rack) else {
        outln!("Not logged in to {rack}");
        return Ok(0);
    };
    let Some(token) = entry.token().map(str::to_owned) else {
        outln!("Not logged in to {rack}");
        return Ok(0);
    };
    let state = entry.session_state(Utc::now());
    entry.clear_session();
    let outcome = match state {
        SessionState::Usable { .. } => {
            let client = GatewayClient::new(&selection.url, Some(&token))?;
            Some(client.logout().await)
        }
        // The gateway refuses it anyway; nothing to revoke.
        SessionState::Expired | SessionState::NotLoggedIn => None,
    };
    ctx.store.save(&config)?;
    match outcome {
        Some(Ok(())) => {
            outln!(
                "Logged out of {rack}: the session was revoked on the gateway and removed locally"
            )
        }
        Some(Err(error)) if error.is_unauthorized() => outln!(
            "Logged out of {rack}: the gateway had already ended the session; removed it locally"
        ),
        Some(Err(error)) => {
            eprintln!("Warning: could not revoke the session on the gateway: {error}");
            outln!(
                "Logged out of {rack} locally only: the session stays valid on the gateway until \
                 it expires or an admin revokes it"
            );
        }
        None => outln!("Logged out of {rack}: the session had expired; removed it locally"),
    }
    outln!("The rack's URL is kept; log in again with: rack-gateway login {rack}");
    Ok(0)
}

/// `test-auth`: ask the gateway who this credential is; `--mfa` also runs a step-up.
pub async fn test_auth(ctx: &Context, with_mfa: bool) -> anyhow::Result<i32> {
    let (selection, credential, client) = ctx.authenticated()?;
    let info = client
        .info()
        .await
        .map_err(|e| refused(e, &selection, &credential))?;
    let credential_info = info.credential.unwrap_or_default();
    let expires = credential_info
        .expires_at
        .or_else(|| {
            (!credential.is_api_token())
                .then(|| selection.entry.as_ref().and_then(|e| e.expires_at.clone()))
                .flatten()
        })
        .map(|t| human_time(&t));
    match &info.user {
        Some(user) if !credential.is_api_token() => outln!("Authenticated as {}", user.email),
        Some(user) => outln!(
            "Authenticated as {} (API token {})",
            user.email,
            credential_info.name.as_deref().unwrap_or("unnamed")
        ),
        None => outln!(
            "Authenticated with API token {}",
            credential_info.name.as_deref().unwrap_or("unnamed")
        ),
    }
    let role = credential_info
        .role
        .as_deref()
        .or_else(|| info.user.as_ref().and_then(|u| u.role.as_deref()));
    outln!("Role: {}", role.unwrap_or("unknown"));
    let label = if credential.is_api_token() {
        "Token expires"
    } else {
        "Session expires"
    };
    outln!("{label}: {}", expires.as_deref().unwrap_or("never"));
    if let Some(name) = info.rack.and_then(|r| r.name) {
        outln!("Rack: {name}");
    }
    if with_mfa {
        if credential.is_api_token() {
            outln!("MFA: API tokens are never asked for MFA");
            return Ok(0);
        }
        let mut terminal = Tty::detect();
        let mut mfa = ctx.mfa(&selection, &client, &mut terminal)?;
        let status = mfa
            .status()
            .await
            .map_err(|e| super::mfa::api_refused(e, &selection, &credential))?;
        let verified = mfa.verify_now(&status).await?;
        if let Some(session) = mfa.verified_session.take() {
            ctx.record_verified(&selection, &session)?;
        }
        super::mfa::print_verified(&verified);
    }
    Ok(0)
}
