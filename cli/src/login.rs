//! The mechanics of the browser login (contract "CLI login", decision 9): the
//! CLI secret, the device description, the `--auth-file`, and polling
//! `/complete` with a visible waiting state until the browser step is done.
//!
//! The CLI makes `cli_secret` itself and sends only its SHA-256 to `/start`; the
//! secret goes to `/complete` alone, so whoever finishes the browser step cannot
//! collect the session without also holding this process's memory.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::api::{ApiError, CompleteLogin, GatewayClient, LoginPoll, LoginStarted, NewSession};

pub const WAITING: &str = "Waiting for browser authentication…";
pub const TIMED_OUT: &str = "login timed out waiting for browser authentication";

/// The secret that binds `/complete` to this process. Never printed.
pub struct CliSecret {
    pub secret: String,
    pub sha256: String,
}

impl CliSecret {
    /// 32 bytes from the operating system's CSPRNG, base64url without padding.
    pub fn generate() -> CliSecret {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret = URL_SAFE_NO_PAD.encode(bytes);
        let sha256 = hex::encode(Sha256::digest(secret.as_bytes()));
        CliSecret { secret, sha256 }
    }
}

/// What the CLI tells the gateway about the machine it runs on.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub os: String,
    pub client_version: String,
}

impl Device {
    /// `id` is the config's `machine_id`; `name` the host name.
    pub fn this_machine(machine_id: &str) -> Device {
        Device {
            id: machine_id.to_owned(),
            name: hostname().unwrap_or_else(|| "unknown".to_owned()),
            os: std::env::consts::OS.to_owned(),
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

#[cfg(unix)]
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call;
    // gethostname writes at most `len` bytes into it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(not(unix))]
fn hostname() -> Option<String> {
    std::env::var("COMPUTERNAME").ok().filter(|n| !n.is_empty())
}

/// The sign-in URL is opened in the user's browser, so only http(s) is accepted:
/// a gateway must not be able to make the CLI open `file:` or an app's own scheme.
pub fn check_auth_url(auth_url: &str) -> anyhow::Result<()> {
    match url::Url::parse(auth_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(()),
        _ => anyhow::bail!(
            "the gateway answered with a sign-in URL that is not http(s): {auth_url:?}"
        ),
    }
}

/// `--auth-file`: `AUTH_URL=`, `STATE=` and `EXPIRES_AT=` lines for automation,
/// mode 0600, written atomically. The CLI secret is not in it.
pub fn write_auth_file(path: &Path, started: &LoginStarted) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".rack-gateway-auth.")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create the auth file in {}", dir.display()))?;
    let mut body = format!("AUTH_URL={}\nSTATE={}\n", started.auth_url, started.state);
    if let Some(expires_at) = &started.expires_at {
        body.push_str(&format!("EXPIRES_AT={expires_at}\n"));
    }
    if let Some(code) = &started.user_code {
        body.push_str(&format!("USER_CODE={code}\n"));
    }
    temp.write_all(body.as_bytes())
        .with_context(|| format!("cannot write {}", temp.path().display()))?;
    temp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// How often and how long to poll `/complete`: every second for two minutes.
#[derive(Debug, Clone, Copy)]
pub struct PollSchedule {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for PollSchedule {
    fn default() -> Self {
        PollSchedule {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(120),
        }
    }
}

/// Poll until the gateway hands over the session, refuses the login, or the
/// schedule runs out. Brief outages (no answer, 5xx, 429) are polled through;
/// the gateway's refusals end the wait with its message.
pub async fn wait_for_session(
    client: &GatewayClient,
    request: &CompleteLogin,
    schedule: PollSchedule,
    indicator: &mut WaitingIndicator,
) -> anyhow::Result<NewSession> {
    let deadline = tokio::time::Instant::now() + schedule.timeout;
    loop {
        let attempt = tokio::time::timeout_at(deadline, client.complete_login(request)).await;
        match attempt {
            Err(_elapsed) => break,
            Ok(Ok(LoginPoll::Complete(session))) => {
                indicator.finish();
                return Ok(*session);
            }
            Ok(Ok(LoginPoll::Pending)) => {}
            Ok(Err(error)) if error.is_transient() => indicator.note_retry(&error),
            Ok(Err(error)) => {
                indicator.finish();
                return Err(error.into());
            }
        }
        indicator.tick();
        let next = tokio::time::Instant::now() + schedule.interval;
        if next >= deadline {
            tokio::time::sleep_until(deadline).await;
            break;
        }
        tokio::time::sleep_until(next).await;
    }
    indicator.finish();
    anyhow::bail!(TIMED_OUT)
}

/// The visible waiting state: the waiting line once, then a spinner with the
/// elapsed time on a terminal, or a plain progress line every 15 s otherwise
/// (logs of CI jobs and scripts stay readable).
pub struct WaitingIndicator {
    spinner: Option<ProgressBar>,
    started: Instant,
    last_plain_line: Instant,
    last_retry_note: Option<Instant>,
    finished: bool,
}

const PLAIN_LINE_EVERY: Duration = Duration::from_secs(15);

impl WaitingIndicator {
    /// Print the waiting line now; a spinner follows when stderr is a terminal.
    pub fn start() -> WaitingIndicator {
        WaitingIndicator::start_with(std::io::stderr().is_terminal())
    }

    pub fn start_with(terminal: bool) -> WaitingIndicator {
        eprintln!("{WAITING}");
        let spinner = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message("waiting for the browser sign-in to finish (Ctrl-C to cancel)");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let now = Instant::now();
        WaitingIndicator {
            spinner,
            started: now,
            last_plain_line: now,
            last_retry_note: None,
            finished: false,
        }
    }

    fn tick(&mut self) {
        if self.spinner.is_some() {
            return;
        }
        if self.last_plain_line.elapsed() >= PLAIN_LINE_EVERY {
            self.last_plain_line = Instant::now();
            eprintln!(
                "Still waiting for browser authentication ({}s elapsed)",
                self.started.elapsed().as_secs()
            );
        }
    }

    /// Mention a failing poll, at most every 15 s, without ending the wait.
    fn note_retry(&mut self, error: &ApiError) {
        if self
            .last_retry_note
            .is_some_and(|at| at.elapsed() < PLAIN_LINE_EVERY)
        {
            return;
        }
        self.last_retry_note = Some(Instant::now());
        let line = format!("Warning: {error}; still trying");
        match &self.spinner {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for WaitingIndicator {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_secret_is_256_bits_base64url_and_hashed_as_sent() {
        let a = CliSecret::generate();
        let b = CliSecret::generate();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a.secret).unwrap().len(), 32);
        assert_eq!(a.sha256.len(), 64);
        assert_eq!(a.sha256, hex::encode(Sha256::digest(a.secret.as_bytes())));
    }

    #[test]
    fn only_http_sign_in_urls_are_opened() {
        assert!(check_auth_url("https://accounts.google.com/o/oauth2/auth?x=1").is_ok());
        assert!(check_auth_url("http://127.0.0.1:3345/authorize").is_ok());
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "slack://open",
            "not a url",
        ] {
            assert!(check_auth_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn device_describes_this_machine() {
        let device = Device::this_machine("m-1");
        assert_eq!(device.id, "m-1");
        assert!(!device.name.is_empty());
        assert_eq!(device.os, std::env::consts::OS);
        assert_eq!(device.client_version, env!("CARGO_PKG_VERSION"));
    }

    #[cfg(unix)]
    #[test]
    fn auth_file_has_the_lines_and_mode_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.env");
        let started = LoginStarted {
            auth_url: "https://gw/authorize?x=1".into(),
            state: "st-1".into(),
            expires_at: Some("2030-01-01T00:00:00Z".into()),
            user_code: Some("ACDE-FG23".into()),
        };
        write_auth_file(&path, &started).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "AUTH_URL=https://gw/authorize?x=1\nSTATE=st-1\nEXPIRES_AT=2030-01-01T00:00:00Z\nUSER_CODE=ACDE-FG23\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
