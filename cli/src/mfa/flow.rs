//! The MFA conversations of the CLI: before an action that needs a step-up,
//! finishing a sign-in that waits for MFA, and verifying on request.
//!
//! - `none`: nothing is asked.
//! - `step_up`: `GET status`; a prompt only when `recent_step_up_expires_at`
//!   is missing or less than [`FRESH_MARGIN`] away. A code (typed, or from
//!   `--mfa-code`) is sent with the action itself: the `.totp.<code>` password
//!   suffix for convox, `X-MFA-TOTP` for the CLI's own calls. WebAuthn goes
//!   through the gateway's browser page, which opens the window; the action
//!   then needs nothing more.
//! - `always`: a code on every such action (the window does not count, so the
//!   browser page, which only opens a window, cannot serve).
//!
//! A session still waiting for its sign-in verification is verified first
//! (`POST verify`, or the browser page for WebAuthn). Without a terminal and
//! without `--mfa-code`, the answer is an error that names `--mfa-code`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use chrono::{DateTime, Utc};
use decision::mfa::Level;

use super::choice::{choose, Choice, ChoiceError};
use super::prompt::{normalise_code, Terminal};
use crate::api::mfa::{BrowserPurpose, MfaMethod, MfaStatus};
use crate::api::{ApiError, GatewayClient};
use crate::args::MfaMethodFlag;
use crate::config::MfaPreference;

/// A window that ends sooner than this is treated as closed: the action
/// would otherwise race its end.
pub const FRESH_MARGIN: chrono::Duration = chrono::Duration::seconds(10);
/// How often the browser verification is checked for.
pub const BROWSER_POLL: Duration = Duration::from_secs(1);
/// How long to wait for the browser when the gateway gives no expiry.
pub const BROWSER_WAIT: Duration = Duration::from_secs(300);
/// Typed codes that are checked at once (`verify`, enrolment) get this many tries.
pub const ATTEMPTS: usize = 3;

/// Is the step-up window open for at least [`FRESH_MARGIN`] more?
pub fn window_is_fresh(status: &MfaStatus, now: DateTime<Utc>) -> bool {
    status
        .step_up_expires_at()
        .is_some_and(|end| end - now >= FRESH_MARGIN)
}

/// The prompt for a code method.
pub fn code_prompt(method: Option<&MfaMethod>) -> &'static str {
    match method.map(|m| m.kind.as_str()) {
        Some("yubikey") => "Touch your YubiKey (or enter a backup code): ",
        Some("totp") => "Enter TOTP code (or a backup code): ",
        _ => "Enter MFA code (TOTP, YubiKey or backup code): ",
    }
}

/// How a verification went, for the caller to record in `config.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The kind of method, when the gateway says.
    pub method: Option<String>,
    /// When the step-up window now ends.
    pub step_up_expires_at: Option<String>,
}

/// One command's MFA state: the session's client, the flags, the preference, the terminal.
pub struct Mfa<'a> {
    pub client: &'a GatewayClient,
    /// `--mfa-code`, used at most once (codes are single use).
    pub flag_code: Option<String>,
    pub flag_method: Option<MfaMethodFlag>,
    pub preference: MfaPreference,
    pub no_open: bool,
    pub terminal: &'a mut dyn Terminal,
    /// Set when this command verified a session that was waiting for MFA at sign-in.
    pub verified_session: Option<Verified>,
    pub poll: Duration,
}

impl<'a> Mfa<'a> {
    pub fn new(client: &'a GatewayClient, terminal: &'a mut dyn Terminal) -> Mfa<'a> {
        Mfa {
            client,
            flag_code: None,
            flag_method: None,
            preference: MfaPreference::Default,
            no_open: false,
            terminal,
            verified_session: None,
            poll: BROWSER_POLL,
        }
    }

    fn take_flag_code(&mut self) -> anyhow::Result<Option<String>> {
        self.flag_code
            .take()
            .map(|c| normalise_code(&c).map_err(|e| anyhow!("--mfa-code: {e}")))
            .transpose()
    }

    pub async fn status(&self) -> anyhow::Result<MfaStatus> {
        Ok(self.client.mfa_status().await?)
    }

    /// What to send with an action at `level` (`what` names its permission):
    /// `Some(code)` to send with it, `None` when nothing is needed.
    pub async fn before(&mut self, level: Level, what: &str) -> anyhow::Result<Option<String>> {
        if level == Level::None {
            return Ok(None);
        }
        let mut status = match self.client.mfa_status().await {
            Ok(status) => status,
            // A gateway without MFA routes: nothing to prepare; a code given is still sent.
            Err(error) if error.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                return self.take_flag_code();
            }
            // No answer at all: convox will meet the same gateway and say so in
            // its own words; a code given is still sent.
            Err(error @ ApiError::Unreachable { .. }) => {
                self.terminal
                    .say(&format!("Warning: could not check MFA ({error})"));
                return self.take_flag_code();
            }
            Err(error) => return Err(error.into()),
        };
        refuse_unusable(&status)?;
        // No method, and the gateway does not make this person have one
        // (`MFA_REQUIRE_ALL_USERS=false`): it asks nothing, so neither do we.
        if !status.enrolled && !status.enrollment_required && !status.mfa_required {
            return Ok(None);
        }
        if status.mfa_required && !status.mfa_verified {
            self.terminal
                .say("This session is waiting for MFA verification (sign-in).");
            self.verify_now(&status).await?;
            status = self.status().await?;
        }
        match level {
            Level::None => Ok(None),
            Level::StepUp => {
                if window_is_fresh(&status, Utc::now()) {
                    return Ok(None);
                }
                if let Some(code) = self.take_flag_code()? {
                    return Ok(Some(code));
                }
                match choose(self.flag_method, &status, self.preference)? {
                    Choice::Code { method } => {
                        self.terminal
                            .say(&format!("MFA step-up required for {what}."));
                        self.ask_code(Some(&method), what).map(Some)
                    }
                    Choice::Webauthn { .. } => {
                        self.require_browser_allowed(what)?;
                        self.terminal.say(&format!(
                            "MFA step-up required for {what}: verify with your security key in the browser."
                        ));
                        self.browser(BrowserPurpose::StepUp, &status).await?;
                        Ok(None)
                    }
                }
            }
            Level::Always => {
                if let Some(code) = self.take_flag_code()? {
                    return Ok(Some(code));
                }
                let backup_codes = status.backup_codes_remaining.unwrap_or(0) > 0;
                let method = match choose(self.flag_method, &status, self.preference) {
                    Ok(Choice::Code { method }) => Some(method),
                    Ok(Choice::Webauthn { .. }) => match code_method(&status) {
                        Some(method) => Some(method),
                        None if backup_codes => None,
                        None => bail!(
                            "{what} needs MFA proof on the request itself, which the browser cannot \
                             give: pass --mfa-code with a TOTP, YubiKey or backup code"
                        ),
                    },
                    Err(ChoiceError::NoCliCompatible { .. }) if backup_codes => None,
                    Err(error) => return Err(error.into()),
                };
                self.terminal.say(&format!(
                    "{what} needs MFA on every request (the step-up window does not count)."
                ));
                self.ask_code(method.as_ref(), what).map(Some)
            }
        }
    }

    /// Verify now: with `--mfa-code`, a typed code (`POST verify`), or the
    /// browser page for WebAuthn. Completes a sign-in waiting for MFA and
    /// opens the step-up window.
    pub async fn verify_now(&mut self, status: &MfaStatus) -> anyhow::Result<Verified> {
        refuse_unusable(status)?;
        let login = status.mfa_required && !status.mfa_verified;
        let verified = if let Some(code) = self.take_flag_code()? {
            self.client.mfa_verify(&code).await.map_err(code_refused)?;
            self.verified_from_status().await?
        } else {
            match choose(self.flag_method, status, self.preference)? {
                Choice::Code { method } => self.verify_typed(Some(&method), "").await?,
                Choice::Webauthn { .. } => {
                    self.require_browser_allowed("")?;
                    self.terminal
                        .say("Verify with your security key in the browser.");
                    let purpose = if login {
                        BrowserPurpose::Login
                    } else {
                        BrowserPurpose::StepUp
                    };
                    self.browser(purpose, status).await?;
                    self.verified_from_status().await?
                }
            }
        };
        if login {
            self.verified_session = Some(verified.clone());
        }
        Ok(verified)
    }

    /// Prompt, `POST verify`, and try again on a refused code (up to [`ATTEMPTS`]).
    async fn verify_typed(
        &mut self,
        method: Option<&MfaMethod>,
        what: &str,
    ) -> anyhow::Result<Verified> {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let code = self.ask_code(method, what)?;
            match self.client.mfa_verify(&code).await {
                Ok(_) => return self.verified_from_status().await,
                Err(error) if retryable_code_error(&error) => {
                    self.terminal.say(&format!("{error}; try again."));
                    last = Some(error);
                }
                Err(error) => return Err(code_refused(error)),
            }
        }
        Err(code_refused(last.unwrap_or(ApiError::Decode {
            url: String::new(),
            detail: "no attempt made".into(),
        })))
    }

    async fn verified_from_status(&self) -> anyhow::Result<Verified> {
        let status = self.status().await?;
        Ok(Verified {
            method: status.mfa_method.clone(),
            step_up_expires_at: status.recent_step_up_expires_at.clone(),
        })
    }

    /// Read a code from the terminal, or explain that `--mfa-code` is needed.
    pub fn ask_code(&mut self, method: Option<&MfaMethod>, what: &str) -> anyhow::Result<String> {
        if !self.terminal.interactive() {
            bail!(no_terminal(what));
        }
        for _ in 0..ATTEMPTS {
            let line = self
                .terminal
                .read_line(code_prompt(method))
                .context("reading the MFA code")?
                .ok_or_else(|| anyhow!("no MFA code was entered"))?;
            match normalise_code(&line) {
                Ok(code) => return Ok(code),
                Err(problem) => self.terminal.say(&format!("{problem}; try again.")),
            }
        }
        bail!("no valid MFA code was entered")
    }

    /// The browser page needs a person at a browser: without a terminal it is
    /// used only when asked for by `--mfa-method webauthn`.
    fn require_browser_allowed(&self, what: &str) -> anyhow::Result<()> {
        if self.terminal.interactive() || self.flag_method == Some(MfaMethodFlag::Webauthn) {
            return Ok(());
        }
        bail!(
            "{}, or --mfa-method webauthn to verify in the browser",
            no_terminal(what)
        )
    }

    /// Open the gateway's WebAuthn page for this session and wait until the
    /// status shows the verification: `mfa_verified` (sign-in) or a step-up
    /// window that ends later than before.
    async fn browser(&mut self, purpose: BrowserPurpose, before: &MfaStatus) -> anyhow::Result<()> {
        let started = self.client.webauthn_browser_start(purpose).await?;
        crate::login::check_auth_url(&started.url)?;
        if self.no_open {
            self.terminal
                .say("Open this URL in your browser to verify:");
        } else {
            if let Err(error) = webbrowser::open(&started.url) {
                self.terminal
                    .say(&format!("Could not open a browser ({error})."));
            }
            self.terminal
                .say("If the browser did not open, visit this URL to verify:");
        }
        self.terminal.say(&format!("  {}", started.url));
        self.terminal
            .say("Waiting for the verification in the browser… (Ctrl-C to cancel)");
        let wait = started
            .expires_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| (t.with_timezone(&Utc) - Utc::now()).to_std().ok())
            .unwrap_or(BROWSER_WAIT)
            .min(BROWSER_WAIT);
        let deadline = tokio::time::Instant::now() + wait;
        let previous = before.step_up_expires_at();
        loop {
            tokio::time::sleep(self.poll).await;
            match self.client.mfa_status().await {
                Ok(status) => {
                    let done = match purpose {
                        BrowserPurpose::Login => status.mfa_verified,
                        BrowserPurpose::StepUp => {
                            status.step_up_expires_at() != previous
                                && window_is_fresh(&status, Utc::now())
                        }
                    };
                    if done {
                        self.terminal.say("MFA verified");
                        return Ok(());
                    }
                }
                Err(error) if error.is_transient() => {}
                Err(error) => return Err(error.into()),
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("timed out waiting for the WebAuthn verification in the browser");
            }
        }
    }
}

/// A locked account or one that must enrol first cannot verify at all.
fn refuse_unusable(status: &MfaStatus) -> anyhow::Result<()> {
    if status.locked {
        bail!("your account is locked after repeated MFA failures; ask an admin to unlock it");
    }
    if status.enrollment_required || (!status.enrolled && status.mfa_required) {
        bail!(
            "MFA enrollment required: enrol a method first with: rack-gateway mfa enroll totp \
             (or in the browser at /app/mfa/enroll)"
        );
    }
    Ok(())
}

/// A code method to prompt for when the preferred one is WebAuthn.
fn code_method(status: &MfaStatus) -> Option<MfaMethod> {
    status
        .methods
        .iter()
        .find(|m| {
            !m.disabled
                && m.confirmed != Some(false)
                && m.cli_compatible
                && matches!(m.kind.as_str(), "totp" | "yubikey")
        })
        .cloned()
}

/// `what` names the action needing MFA; empty when the verification is the command itself.
fn no_terminal(what: &str) -> String {
    let how = "pass --mfa-code CODE (a TOTP, YubiKey or backup code)";
    if what.is_empty() {
        format!("there is no terminal to ask for an MFA code: {how}")
    } else {
        format!("{what} needs MFA and there is no terminal to ask for a code: {how}")
    }
}

/// A refused code (wrong, replayed, expired) is worth another try at the
/// prompt; a locked account or a gone session is not.
fn retryable_code_error(error: &ApiError) -> bool {
    match error {
        ApiError::Status { status, reason, .. } => {
            status.is_client_error()
                && !error.is_unauthorized()
                && reason.as_deref() != Some("mfa_locked")
                && *status != reqwest::StatusCode::TOO_MANY_REQUESTS
        }
        _ => false,
    }
}

fn code_refused(error: ApiError) -> anyhow::Error {
    anyhow!("MFA verification failed: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_ending_in(seconds: i64) -> MfaStatus {
        MfaStatus {
            recent_step_up_expires_at: Some(
                (Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339(),
            ),
            ..MfaStatus::default()
        }
    }

    #[test]
    fn a_window_is_fresh_only_with_ten_seconds_left() {
        let now = Utc::now();
        assert!(window_is_fresh(&status_ending_in(300), now));
        assert!(window_is_fresh(&status_ending_in(11), now));
        assert!(!window_is_fresh(&status_ending_in(9), now));
        assert!(!window_is_fresh(&status_ending_in(-60), now));
        assert!(!window_is_fresh(&MfaStatus::default(), now));
    }

    #[test]
    fn prompts_name_the_method() {
        let totp = MfaMethod {
            kind: "totp".into(),
            ..MfaMethod::default()
        };
        assert!(code_prompt(Some(&totp)).starts_with("Enter TOTP code"));
        let key = MfaMethod {
            kind: "yubikey".into(),
            ..MfaMethod::default()
        };
        assert!(code_prompt(Some(&key)).contains("YubiKey"));
        assert!(code_prompt(None).contains("backup code"));
    }

    #[test]
    fn a_locked_or_unenrolled_account_is_refused_before_any_prompt() {
        let locked = MfaStatus {
            locked: true,
            ..MfaStatus::default()
        };
        assert!(refuse_unusable(&locked)
            .unwrap_err()
            .to_string()
            .contains("locked"));
        let enrol = MfaStatus {
            enrollment_required: true,
            ..MfaStatus::default()
        };
        assert!(refuse_unusable(&enrol)
            .unwrap_err()
            .to_string()
            .contains("rack-gateway mfa enroll totp"));
        assert!(refuse_unusable(&MfaStatus::default()).is_ok());
    }

    #[test]
    fn only_plain_refusals_of_a_code_are_retried() {
        let status = |s: u16, reason: Option<&str>| ApiError::Status {
            status: reqwest::StatusCode::from_u16(s).unwrap(),
            message: "invalid MFA code".into(),
            reason: reason.map(str::to_owned),
        };
        assert!(retryable_code_error(&status(400, None)));
        assert!(retryable_code_error(&status(403, Some("mfa_invalid"))));
        assert!(!retryable_code_error(&status(403, Some("mfa_locked"))));
        assert!(!retryable_code_error(&status(401, None)));
        assert!(!retryable_code_error(&status(429, None)));
        assert!(!retryable_code_error(&status(503, None)));
    }

    #[test]
    fn without_a_terminal_the_error_names_mfa_code() {
        let client = GatewayClient::new(
            &crate::racks::GatewayUrl::parse("http://127.0.0.1:9").unwrap(),
            None,
        )
        .unwrap();
        let mut nobody = super::super::prompt::Scripted::nobody();
        let mut mfa = Mfa::new(&client, &mut nobody);
        let error = mfa
            .ask_code(None, "convox:env:set")
            .unwrap_err()
            .to_string();
        assert!(error.contains("--mfa-code CODE"), "{error}");
        assert!(error.starts_with("convox:env:set needs MFA"), "{error}");
    }

    #[test]
    fn typed_codes_are_cleaned_and_retried_when_malformed() {
        let client = GatewayClient::new(
            &crate::racks::GatewayUrl::parse("http://127.0.0.1:9").unwrap(),
            None,
        )
        .unwrap();
        let mut terminal = super::super::prompt::Scripted::new(&["12:34", " 123 456 "]);
        let mut mfa = Mfa::new(&client, &mut terminal);
        assert_eq!(mfa.ask_code(None, "x").unwrap(), "123456");
        drop(mfa);
        assert_eq!(terminal.prompts.len(), 2);
        assert!(terminal.said[0].contains("letters and digits"));
    }
}
