//! `rack`, `racks` and `switch`: which racks are configured and which one is current.

use anyhow::bail;
use chrono::Utc;

use super::Context;
use crate::config::{RackEntry, SessionState};
use crate::racks::CredentialSource;

/// `rack`: the selected rack, its gateway URL, and a status line.
pub fn show_current(ctx: &Context) -> anyhow::Result<i32> {
    let config = ctx.config()?;
    let selection = ctx.select(&config)?;
    outln!("Current rack: {}", selection.label());
    outln!("Gateway URL: {}", selection.url);
    let api_token = if ctx.globals.api_token.is_some() {
        Some(CredentialSource::ApiTokenFlag)
    } else if ctx.env.api_token.is_some() {
        Some(CredentialSource::ApiTokenEnv)
    } else {
        None
    };
    match api_token {
        Some(CredentialSource::ApiTokenFlag) => {
            outln!("Status: Using the API token from --api-token")
        }
        Some(_) => outln!("Status: Using the API token from RACK_GATEWAY_API_TOKEN"),
        None => {
            for line in status_lines(selection.entry.as_ref()) {
                outln!("{line}");
            }
        }
    }
    Ok(0)
}

/// "Status: Not logged in" | "Status: Token expired" | "Status: Logged in as X" + "Token expires: …".
pub fn status_lines(entry: Option<&RackEntry>) -> Vec<String> {
    let Some(entry) = entry else {
        return vec!["Status: Not logged in".to_owned()];
    };
    match entry.session_state(Utc::now()) {
        SessionState::NotLoggedIn => vec!["Status: Not logged in".to_owned()],
        SessionState::Expired => vec!["Status: Token expired".to_owned()],
        SessionState::Usable { expires_at } => {
            let mut lines = vec![format!(
                "Status: Logged in as {}",
                entry.email.as_deref().unwrap_or("(unknown)")
            )];
            if let Some(at) = expires_at {
                lines.push(format!("Token expires: {}", at.to_rfc3339()));
            }
            if entry.mfa_verified == Some(false) {
                lines.push(
                    "MFA: this session is not MFA-verified (run: rack-gateway mfa verify, \
                     or rack-gateway mfa enroll totp if you have no method yet)"
                        .to_owned(),
                );
            }
            lines
        }
    }
}

/// `racks`: every configured rack, the current one marked with `*`.
pub fn list(ctx: &Context) -> anyhow::Result<i32> {
    let config = ctx.config()?;
    if config.gateways.is_empty() {
        outln!("No racks configured. Run: rack-gateway login <rack> <gateway-url>");
        return Ok(0);
    }
    let current = config.current.as_deref().unwrap_or_default();
    let name_width = config.gateways.keys().map(String::len).max().unwrap_or(0);
    let url_width = config
        .gateways
        .values()
        .map(|e| e.url.len())
        .max()
        .unwrap_or(0);
    for (name, entry) in &config.gateways {
        let marker = if name == current { '*' } else { ' ' };
        let status = match entry.session_state(Utc::now()) {
            SessionState::NotLoggedIn => "not logged in".to_owned(),
            SessionState::Expired => "token expired".to_owned(),
            SessionState::Usable { .. } => format!(
                "logged in as {}",
                entry.email.as_deref().unwrap_or("(unknown)")
            ),
        };
        outln!(
            "{marker} {name:<name_width$}  {url:<url_width$}  {status}",
            url = entry.url
        );
    }
    Ok(0)
}

/// `switch <rack>`: make a configured rack current.
pub fn switch(ctx: &Context, rack: &str) -> anyhow::Result<i32> {
    let mut config = ctx.config()?;
    let Some(entry) = config.gateways.get(rack) else {
        let known: Vec<&str> = config.gateways.keys().map(String::as_str).collect();
        if known.is_empty() {
            bail!("rack {rack} is not configured. Run: rack-gateway login {rack} <gateway-url>");
        }
        bail!(
            "rack {rack} is not configured (configured: {}). Run: rack-gateway login {rack} <gateway-url>",
            known.join(", ")
        );
    };
    let url = entry.url.clone();
    config.current = Some(rack.to_owned());
    ctx.store.save(&config)?;
    outln!("Switched to {rack} ({url})");
    Ok(0)
}
