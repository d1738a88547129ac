//! TOTP enrolment from the terminal: `enroll/totp/start` gives the secret and
//! the otpauth URL (shown as text and, on a terminal, as a QR code drawn with
//! Unicode half blocks), then the first code from the app confirms it with
//! `enroll/totp/confirm`. Without a terminal the two steps are two commands:
//! the first prints the method id, `--confirm <id> --mfa-code <code>` finishes.

use anyhow::{anyhow, bail};

use super::flow::ATTEMPTS;
use super::prompt::{normalise_code, Terminal};
use crate::api::mfa::TotpEnrollment;
use crate::api::{ApiError, GatewayClient};

/// What an enrolment ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolled {
    /// Confirmed: the method is active (and a session waiting to enrol is verified).
    Confirmed { method_id: String },
    /// Started only (no terminal): confirm later with the printed command.
    Started { method_id: String },
}

/// The QR code of `text` as lines of Unicode half blocks, light on dark, with
/// its quiet zone; `None` if the text is too long for a QR code.
pub fn qr_lines(text: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// Start an enrolment and, on a terminal, finish it.
pub async fn totp(
    client: &GatewayClient,
    terminal: &mut dyn Terminal,
    label: Option<&str>,
    flag_code: Option<&str>,
) -> anyhow::Result<Enrolled> {
    let started = client.totp_enroll_start(label).await?;
    show(&started, terminal);
    if !terminal.interactive() {
        if flag_code.is_some() {
            // A code cannot exist before the secret did; say so rather than send it.
            eprintln!("Note: --mfa-code is ignored when starting an enrolment (the app has no code for this secret yet)");
        }
        outln!(
            "Confirm with: rack-gateway mfa enroll totp --confirm {} --mfa-code CODE",
            started.method_id
        );
        return Ok(Enrolled::Started {
            method_id: started.method_id,
        });
    }
    confirm(client, terminal, &started.method_id, None).await
}

/// Confirm a started enrolment with the first code (`flag_code`, or typed).
pub async fn confirm(
    client: &GatewayClient,
    terminal: &mut dyn Terminal,
    method_id: &str,
    flag_code: Option<&str>,
) -> anyhow::Result<Enrolled> {
    if let Some(code) = flag_code {
        let code = normalise_code(code).map_err(|e| anyhow!("--mfa-code: {e}"))?;
        let answer = client
            .totp_enroll_confirm(method_id, &code)
            .await
            .map_err(refused)?;
        print_backup_codes(&answer);
        return Ok(Enrolled::Confirmed {
            method_id: method_id.to_owned(),
        });
    }
    if !terminal.interactive() {
        bail!(
            "confirming the enrolment needs the first code from your app and there is no terminal \
             to ask for it: pass --mfa-code CODE"
        );
    }
    let mut last: Option<ApiError> = None;
    for _ in 0..ATTEMPTS {
        let line = terminal
            .read_line("Enter the 6-digit code from your authenticator app: ")?
            .ok_or_else(|| anyhow!("no code was entered; the enrolment is not confirmed"))?;
        let code = match normalise_code(&line) {
            Ok(code) => code,
            Err(problem) => {
                terminal.say(&format!("{problem}; try again."));
                continue;
            }
        };
        match client.totp_enroll_confirm(method_id, &code).await {
            Ok(answer) => {
                print_backup_codes(&answer);
                return Ok(Enrolled::Confirmed {
                    method_id: method_id.to_owned(),
                });
            }
            Err(error)
                if error.status().is_some_and(|s| s.is_client_error())
                    && !error.is_unauthorized() =>
            {
                terminal.say(&format!("{error}; try again (wait for the next code)."));
                last = Some(error);
            }
            Err(error) => return Err(refused(error)),
        }
    }
    match last {
        Some(error) => Err(refused(error)),
        None => bail!("no valid code was entered; the enrolment is not confirmed"),
    }
}

/// The secret, the URL and (on a terminal) the QR code. These are the
/// person's own new secret, shown to them once to put in their app; stdout,
/// so a script that starts an enrolment can read them.
fn show(started: &TotpEnrollment, terminal: &mut dyn Terminal) {
    if terminal.interactive() {
        if let Some(qr) = qr_lines(&started.otpauth_url) {
            terminal.say("Scan this QR code with your authenticator app:");
            terminal.say(&qr);
        }
        terminal.say("Or enter the secret by hand.");
    }
    outln!("Method id: {}", started.method_id);
    outln!("Secret: {}", started.secret);
    outln!("otpauth URL: {}", started.otpauth_url);
}

/// Confirming the first method hands out the first set of backup codes
/// (`backup_codes` in the answer): printed here, once, as the gateway shows them once.
pub fn print_backup_codes(answer: &serde_json::Value) -> bool {
    let Some(codes) = answer.get("backup_codes").and_then(|c| c.as_array()) else {
        return false;
    };
    let codes: Vec<&str> = codes.iter().filter_map(|c| c.as_str()).collect();
    if codes.is_empty() {
        return false;
    }
    outln!("Your backup codes (each works once, for when your phone is not at hand):");
    for code in codes {
        outln!("  {code}");
    }
    outln!("Store them somewhere safe now: they will not be shown again.");
    true
}

fn refused(error: ApiError) -> anyhow::Error {
    anyhow!("TOTP enrolment not confirmed: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_drawn_with_half_blocks() {
        let qr = qr_lines("otpauth://totp/rack-gateway:dev%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=rack-gateway")
            .unwrap();
        let lines: Vec<&str> = qr.lines().collect();
        assert!(lines.len() > 10);
        // Square modules in half-height rows: as wide as twice its height, roughly.
        let width = lines[0].chars().count();
        assert!(width >= lines.len() * 2 - 2, "{width} x {}", lines.len());
        assert!(qr.chars().any(|c| matches!(c, '█' | '▀' | '▄' | ' ')));
    }

    #[test]
    fn text_too_long_for_a_qr_code_gives_none() {
        assert!(qr_lines(&"x".repeat(8000)).is_none());
    }
}
