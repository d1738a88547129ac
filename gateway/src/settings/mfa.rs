//! Second factors: whether everyone must have one, the step-up window, trusted
//! devices, the lock after repeated failures, and the WebAuthn relying party.
//! What each permission needs is `decision::mfa` (see `docs/mfa.md`).

use std::time::Duration;

use super::{bad, Reader, ServerSettings, SettingsError, View};

#[derive(Debug, Clone)]
pub struct MfaSettings {
    /// `MFA_REQUIRE_ALL_USERS` (default true): a person must enrol a method,
    /// and verify it at sign-in, before anything else.
    pub require_all_users: bool,
    /// `MFA_STEP_UP_WINDOW_MINUTES` (default 10): how long a verification
    /// satisfies `step_up` permissions on that session.
    pub step_up_window: Duration,
    /// `MFA_TRUSTED_DEVICE_TTL_DAYS` (default 30).
    pub trusted_device_ttl: Duration,
    /// `MFA_MAX_FAILURES` (default 10): failed verifications in
    /// [`FAILURE_WINDOW`] that lock the user until an admin unlocks them.
    pub max_failures: u32,
    /// `WEBAUTHN_RP_ID` (default: the host of `PUBLIC_URL`).
    pub webauthn_rp_id: String,
    /// `WEBAUTHN_ORIGIN` (default: the origin of `PUBLIC_URL`).
    pub webauthn_origin: String,
    pub yubico: YubicoSettings,
}

/// The YubiKey OTP validation service (protocol 2.0).
#[derive(Debug, Clone)]
pub struct YubicoSettings {
    /// `YUBICO_API_URL` (default YubiCloud's `https://api.yubico.com/wsapi/2.0/verify`).
    pub api_url: String,
    /// `YUBICO_CLIENT_ID`; without it and the secret, YubiKey OTP is off.
    pub client_id: Option<String>,
    /// `YUBICO_SECRET_KEY` (base64), signs requests and checks answers.
    pub secret_key: Option<secrecy::SecretString>,
}

pub const YUBICLOUD_URL: &str = "https://api.yubico.com/wsapi/2.0/verify";

/// The window `MFA_MAX_FAILURES` counts in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

pub(super) fn read(r: &Reader, server: &ServerSettings) -> Result<MfaSettings, SettingsError> {
    let require_all_users = r.bool("MFA_REQUIRE_ALL_USERS", true)?;
    let window_minutes: u64 = r.parse("MFA_STEP_UP_WINDOW_MINUTES", 10)?;
    if window_minutes == 0 || window_minutes > 24 * 60 {
        return Err(bad(
            "MFA_STEP_UP_WINDOW_MINUTES",
            "must be between 1 and 1440 minutes",
        ));
    }
    let ttl_days: u64 = r.parse("MFA_TRUSTED_DEVICE_TTL_DAYS", 30)?;
    if ttl_days == 0 || ttl_days > 365 {
        return Err(bad(
            "MFA_TRUSTED_DEVICE_TTL_DAYS",
            "must be between 1 and 365 days",
        ));
    }
    let max_failures: u32 = r.parse("MFA_MAX_FAILURES", 10)?;
    if max_failures == 0 {
        return Err(bad("MFA_MAX_FAILURES", "must be positive"));
    }
    let public = url::Url::parse(&server.public_url)
        .map_err(|e| bad("PUBLIC_URL", format!("not a URL: {e}")))?;
    let webauthn_origin = match r.get("WEBAUTHN_ORIGIN") {
        Some(origin) => {
            let parsed = url::Url::parse(&origin)
                .map_err(|e| bad("WEBAUTHN_ORIGIN", format!("{origin:?} is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.path() != "/" {
                return Err(bad(
                    "WEBAUTHN_ORIGIN",
                    format!("{origin:?} must be an origin: scheme://host[:port], no path"),
                ));
            }
            origin.trim_end_matches('/').to_owned()
        }
        None => public.origin().ascii_serialization(),
    };
    let webauthn_rp_id = match r.get("WEBAUTHN_RP_ID") {
        Some(id) => id.to_ascii_lowercase(),
        None => public.host_str().unwrap_or("localhost").to_owned(),
    };
    // The origin's host must be the RP id or a subdomain of it (WebAuthn §5.1.4).
    let origin_host = url::Url::parse(&webauthn_origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if origin_host != webauthn_rp_id && !origin_host.ends_with(&format!(".{webauthn_rp_id}")) {
        return Err(bad(
            "WEBAUTHN_RP_ID",
            format!("{webauthn_rp_id:?} must be the host of WEBAUTHN_ORIGIN ({origin_host:?}) or a parent domain of it"),
        ));
    }
    let yubico = YubicoSettings {
        api_url: r
            .get("YUBICO_API_URL")
            .unwrap_or_else(|| YUBICLOUD_URL.to_owned()),
        client_id: r.get("YUBICO_CLIENT_ID"),
        secret_key: r.secret("YUBICO_SECRET_KEY"),
    };
    if url::Url::parse(&yubico.api_url).is_err() {
        return Err(bad(
            "YUBICO_API_URL",
            format!("{:?} is not a URL", yubico.api_url),
        ));
    }
    if yubico.client_id.is_some() != yubico.secret_key.is_some() {
        return Err(bad(
            "YUBICO_CLIENT_ID",
            "YUBICO_CLIENT_ID and YUBICO_SECRET_KEY are set together or not at all",
        ));
    }
    Ok(MfaSettings {
        yubico,
        require_all_users,
        step_up_window: Duration::from_secs(window_minutes * 60),
        trusted_device_ttl: Duration::from_secs(ttl_days * 86_400),
        max_failures,
        webauthn_rp_id,
        webauthn_origin,
    })
}

pub(super) fn describe(s: &MfaSettings, view: &mut View) {
    view.show("MFA_REQUIRE_ALL_USERS", s.require_all_users);
    view.show(
        "MFA_STEP_UP_WINDOW_MINUTES",
        s.step_up_window.as_secs() / 60,
    );
    view.show(
        "MFA_TRUSTED_DEVICE_TTL_DAYS",
        s.trusted_device_ttl.as_secs() / 86_400,
    );
    view.show("MFA_MAX_FAILURES", s.max_failures);
    view.show("WEBAUTHN_RP_ID", &s.webauthn_rp_id);
    view.show("WEBAUTHN_ORIGIN", &s.webauthn_origin);
    view.show("YUBICO_API_URL", &s.yubico.api_url);
    view.show(
        "YUBICO_CLIENT_ID",
        s.yubico
            .client_id
            .as_deref()
            .unwrap_or("(not set: YubiKey OTP off)"),
    );
    view.secret(
        "YUBICO_SECRET_KEY_SET",
        "YUBICO_SECRET_KEY",
        s.yubico.secret_key.is_some(),
    );
}
