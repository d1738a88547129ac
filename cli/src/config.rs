//! The CLI's own state: `config.json` in the config directory (README "The `rack-gateway` CLI").
//!
//! The file holds session secrets, so the directory is kept at 0700 and the file
//! at 0600, and every save is atomic: a temporary file is created with mode 0600
//! *before* anything is written to it, then renamed over `config.json`. A reader
//! (or a crash) sees the old file or the new one, never half of either. Fields
//! this version does not know (`notification_sound`, `all_racks_exclude`, ...) are
//! carried through untouched.
//!
//! MFA: `mfa_preference` (`default` | `webauthn` | `totp`) globally and per rack
//! (the rack's wins) is a person's choice of method; `mfa_verified` and
//! `mfa_method` record how the stored session was verified at sign-in.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const CONFIG_FILE: &str = "config.json";
/// A file the original CLI kept next to `config.json`; its job moved into `current`.
pub const LEGACY_CURRENT_FILE: &str = "current";
pub const DEFAULT_MFA_PREFERENCE: &str = "default";

/// The whole `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub gateways: BTreeMap<String, RackEntry>,
    #[serde(default)]
    pub machine_id: String,
    #[serde(default)]
    pub mfa_preference: String,
    /// Everything else in the file, written back as it was read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One configured rack: its gateway URL and, while logged in, the session.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RackEntry {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// RFC 3339; kept as text so one odd value cannot make the whole file unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The gateway's id for the session (a number in the original, a string in ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_verified: Option<bool>,
    /// The kind of method that verified the session (`totp`, `webauthn`, `yubikey`, `backup_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_method: Option<String>,
    /// This rack's MFA preference; overrides the global one when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_preference: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `mfa_preference`: which kind of method the person would rather use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaPreference {
    /// No preference: the gateway's preferred method, else the first enrolled.
    Default,
    Webauthn,
    Totp,
}

impl MfaPreference {
    /// A value from `config.json`; anything else is an error that names the field.
    pub fn parse(text: &str, field: &str) -> anyhow::Result<MfaPreference> {
        match text.trim() {
            "" | "default" => Ok(MfaPreference::Default),
            "webauthn" => Ok(MfaPreference::Webauthn),
            "totp" => Ok(MfaPreference::Totp),
            other => anyhow::bail!(
                "{field} in config.json is {other:?}; it must be default, webauthn or totp"
            ),
        }
    }
}

impl Config {
    /// The preference for `rack`: the rack's own `mfa_preference` when it says
    /// something other than `default`, else the global one.
    pub fn mfa_preference_for(&self, rack: Option<&str>) -> anyhow::Result<MfaPreference> {
        if let Some(entry) = rack.and_then(|r| self.gateways.get(r)) {
            if let Some(text) = entry.mfa_preference.as_deref() {
                let field = format!("gateways.{}.mfa_preference", rack.unwrap_or_default());
                match MfaPreference::parse(text, &field)? {
                    MfaPreference::Default => {}
                    chosen => return Ok(chosen),
                }
            }
        }
        MfaPreference::parse(&self.mfa_preference, "mfa_preference")
    }
}

/// What a stored session is good for right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// No token stored (never logged in, or logged out).
    NotLoggedIn,
    /// A token whose `expires_at` has passed (or cannot be read).
    Expired,
    /// A token the gateway may still accept.
    Usable { expires_at: Option<DateTime<Utc>> },
}

impl RackEntry {
    pub fn new(url: impl Into<String>) -> RackEntry {
        RackEntry {
            url: url.into(),
            ..RackEntry::default()
        }
    }

    /// The stored token, if there is a non-empty one.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref().filter(|t| !t.is_empty())
    }

    /// Empty or past `expires_at` counts as unusable; a timestamp that does not
    /// parse is treated as expired rather than trusted.
    pub fn session_state(&self, now: DateTime<Utc>) -> SessionState {
        if self.token().is_none() {
            return SessionState::NotLoggedIn;
        }
        match self.expires_at.as_deref().filter(|s| !s.is_empty()) {
            None => SessionState::Usable { expires_at: None },
            Some(text) => match DateTime::parse_from_rfc3339(text) {
                Ok(at) if at.with_timezone(&Utc) > now => SessionState::Usable {
                    expires_at: Some(at.with_timezone(&Utc)),
                },
                _ => SessionState::Expired,
            },
        }
    }

    /// Logout (decision 3): forget the session, keep the rack and its URL.
    pub fn clear_session(&mut self) {
        self.token = None;
        self.email = None;
        self.expires_at = None;
        self.session_id = None;
        self.channel = None;
        self.device_id = None;
        self.device_name = None;
        self.mfa_verified = None;
        self.mfa_method = None;
    }
}

/// Never shows the token, so an entry can be logged or asserted on safely.
impl fmt::Debug for RackEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RackEntry")
            .field("url", &self.url)
            .field("token", &self.token().map(|_| "<redacted>"))
            .field("email", &self.email)
            .field("expires_at", &self.expires_at)
            .field("session_id", &self.session_id)
            .field("channel", &self.channel)
            .field("device_id", &self.device_id)
            .field("device_name", &self.device_name)
            .field("mfa_verified", &self.mfa_verified)
            .field("mfa_method", &self.mfa_method)
            .field("mfa_preference", &self.mfa_preference)
            .field("extra", &self.extra)
            .finish()
    }
}

/// Reads and writes `config.json` in one directory.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    dir: PathBuf,
}

impl ConfigStore {
    pub fn new(dir: impl Into<PathBuf>) -> ConfigStore {
        ConfigStore { dir: dir.into() }
    }

    /// `--config`, else `GATEWAY_CLI_CONFIG_DIR`, else `$HOME/.config/rack-gateway`
    /// (`USERPROFILE` when there is no `HOME`).
    pub fn locate(
        flag: Option<&Path>,
        env_dir: Option<&str>,
        home: Option<&str>,
    ) -> anyhow::Result<ConfigStore> {
        if let Some(dir) = flag {
            return Ok(ConfigStore::new(dir));
        }
        if let Some(dir) = env_dir.filter(|d| !d.is_empty()) {
            return Ok(ConfigStore::new(dir));
        }
        let home = home.filter(|h| !h.is_empty()).context(
            "cannot find the config directory: HOME is not set (use --config or GATEWAY_CLI_CONFIG_DIR)",
        )?;
        Ok(ConfigStore::new(
            Path::new(home).join(".config").join("rack-gateway"),
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// The config, with `machine_id` and `mfa_preference` filled in and saved the
    /// first time they are missing (so the device id stays stable across runs).
    /// A failed first save is reported as a warning: read-only commands still work.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = self.read()?;
        let mut created = false;
        if config.machine_id.is_empty() {
            config.machine_id = uuid::Uuid::new_v4().to_string();
            created = true;
        }
        if config.mfa_preference.is_empty() {
            config.mfa_preference = DEFAULT_MFA_PREFERENCE.to_owned();
            created = true;
        }
        if created {
            if let Err(error) = self.save(&config) {
                eprintln!(
                    "Warning: could not save {}: {error:#}",
                    self.path().display()
                );
            }
        }
        Ok(config)
    }

    /// The file as it is, or an empty config when there is none yet.
    pub fn read(&self) -> anyhow::Result<Config> {
        let path = self.path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a valid config file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Atomic save; also tightens the directory to 0700 and removes the legacy `current` file.
    pub fn save(&self, config: &Config) -> anyhow::Result<()> {
        self.prepare_dir()?;
        let mut body = serde_json::to_vec_pretty(config).context("encode config")?;
        body.push(b'\n');
        // tempfile creates the file with mode 0600 before we write a byte into it.
        let mut temp = tempfile::Builder::new()
            .prefix(".config.json.")
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .with_context(|| format!("cannot create a file in {}", self.dir.display()))?;
        set_mode(temp.path(), 0o600)?;
        temp.write_all(&body)
            .and_then(|()| temp.as_file().sync_all())
            .with_context(|| format!("cannot write {}", temp.path().display()))?;
        let path = self.path();
        temp.persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        let legacy = self.dir.join(LEGACY_CURRENT_FILE);
        match std::fs::remove_file(&legacy) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", legacy.display())),
        }
        Ok(())
    }

    fn prepare_dir(&self) -> anyhow::Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        // An existing directory keeps its old mode through create(); tighten it.
        set_mode(&self.dir, 0o700)
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use serde_json::json;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn logged_in_entry() -> RackEntry {
        RackEntry {
            url: "https://gateway.example.com".into(),
            token: Some("rgw_sess_abc".into()),
            email: Some("developer@company.com".into()),
            expires_at: Some("2099-02-15T10:30:00Z".into()),
            session_id: Some(json!(1024)),
            channel: Some("cli".into()),
            device_id: Some("8f4c4b8c-1".into()),
            device_name: Some("dev-mbp".into()),
            mfa_verified: Some(true),
            mfa_method: Some("totp".into()),
            mfa_preference: None,
            extra: Map::new(),
        }
    }

    #[test]
    fn saved_file_has_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path().join("rg"));
        let mut config = store.load().unwrap();
        config.current = Some("production".into());
        config
            .gateways
            .insert("production".into(), logged_in_entry());
        store.save(&config).unwrap();

        let on_disk: Value = serde_json::from_slice(&std::fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(on_disk["current"], "production");
        assert_eq!(on_disk["mfa_preference"], "default");
        assert!(uuid::Uuid::parse_str(on_disk["machine_id"].as_str().unwrap()).is_ok());
        assert_eq!(
            on_disk["gateways"]["production"],
            json!({
                "url": "https://gateway.example.com",
                "token": "rgw_sess_abc",
                "email": "developer@company.com",
                "expires_at": "2099-02-15T10:30:00Z",
                "session_id": 1024,
                "channel": "cli",
                "device_id": "8f4c4b8c-1",
                "device_name": "dev-mbp",
                "mfa_verified": true,
                "mfa_method": "totp"
            })
        );
        assert_eq!(store.read().unwrap(), config);
    }

    #[cfg(unix)]
    #[test]
    fn directory_is_0700_and_file_0600_even_when_the_directory_existed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let config_dir = dir.path().join("rg");
        std::fs::create_dir(&config_dir).unwrap();
        std::fs::set_permissions(&config_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = ConfigStore::new(&config_dir);
        store.save(&Config::default()).unwrap();
        assert_eq!(mode(&config_dir), 0o700);
        assert_eq!(mode(&store.path()), 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&config_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(CONFIG_FILE)]);
    }

    #[cfg(unix)]
    #[test]
    fn a_fresh_directory_is_created_0700() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path().join("a").join("rack-gateway"));
        store.load().unwrap();
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&store.path()), 0o600);
    }

    #[test]
    fn legacy_current_file_is_removed_on_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path());
        std::fs::write(dir.path().join(LEGACY_CURRENT_FILE), "staging\n").unwrap();
        store.save(&Config::default()).unwrap();
        assert!(!dir.path().join(LEGACY_CURRENT_FILE).exists());
        assert!(store.path().exists());
    }

    #[test]
    fn machine_id_is_created_once_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path());
        assert!(!store.path().exists());
        let first = store.load().unwrap();
        assert!(uuid::Uuid::parse_str(&first.machine_id).is_ok());
        assert_eq!(first.mfa_preference, "default");
        assert!(store.path().exists(), "the first load persists the new id");
        let second = store.load().unwrap();
        assert_eq!(first.machine_id, second.machine_id);
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path());
        std::fs::write(
            store.path(),
            json!({
                "current": "prod",
                "machine_id": "m-1",
                "mfa_preference": "totp",
                "sound_volume": 0.6,
                "all_racks_exclude": ["sandbox"],
                "gateways": {"prod": {"url": "https://gw", "notification_sound": "disabled"}}
            })
            .to_string(),
        )
        .unwrap();
        let config = store.load().unwrap();
        assert_eq!(config.machine_id, "m-1");
        assert_eq!(config.mfa_preference, "totp");
        store.save(&config).unwrap();
        let on_disk: Value = serde_json::from_slice(&std::fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(on_disk["sound_volume"], 0.6);
        assert_eq!(on_disk["all_racks_exclude"], json!(["sandbox"]));
        assert_eq!(
            on_disk["gateways"]["prod"]["notification_sound"],
            "disabled"
        );
    }

    #[test]
    fn a_broken_file_is_an_error_not_an_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path());
        std::fs::write(store.path(), "{not json").unwrap();
        let error = store.load().unwrap_err();
        assert!(format!("{error:#}").contains("not a valid config file"));
    }

    #[test]
    fn session_state_follows_token_and_expiry() {
        let now = Utc::now();
        let mut entry = logged_in_entry();
        entry.expires_at = Some((now + Duration::hours(1)).to_rfc3339());
        assert!(matches!(
            entry.session_state(now),
            SessionState::Usable {
                expires_at: Some(_)
            }
        ));
        entry.expires_at = Some((now - Duration::seconds(1)).to_rfc3339());
        assert_eq!(entry.session_state(now), SessionState::Expired);
        entry.expires_at = Some("next tuesday".into());
        assert_eq!(entry.session_state(now), SessionState::Expired);
        entry.expires_at = None;
        assert_eq!(
            entry.session_state(now),
            SessionState::Usable { expires_at: None }
        );
        entry.token = Some(String::new());
        assert_eq!(entry.session_state(now), SessionState::NotLoggedIn);
        entry.token = None;
        assert_eq!(entry.session_state(now), SessionState::NotLoggedIn);
    }

    #[test]
    fn clearing_the_session_keeps_the_url_the_preference_and_unknown_fields() {
        let mut entry = logged_in_entry();
        entry.mfa_preference = Some("webauthn".into());
        entry
            .extra
            .insert("notification_sound".into(), json!("disabled"));
        entry.clear_session();
        let value = serde_json::to_value(&entry).unwrap();
        assert_eq!(
            value,
            json!({"url": "https://gateway.example.com", "mfa_preference": "webauthn",
                   "notification_sound": "disabled"})
        );
    }

    #[test]
    fn mfa_preference_of_the_rack_overrides_the_global_one() {
        let mut config = Config {
            mfa_preference: "totp".into(),
            ..Config::default()
        };
        let mut entry = logged_in_entry();
        config.gateways.insert("prod".into(), entry.clone());
        assert_eq!(
            config.mfa_preference_for(Some("prod")).unwrap(),
            MfaPreference::Totp
        );
        assert_eq!(
            config.mfa_preference_for(None).unwrap(),
            MfaPreference::Totp
        );
        entry.mfa_preference = Some("webauthn".into());
        config.gateways.insert("prod".into(), entry.clone());
        assert_eq!(
            config.mfa_preference_for(Some("prod")).unwrap(),
            MfaPreference::Webauthn
        );
        assert_eq!(
            config.mfa_preference_for(Some("other")).unwrap(),
            MfaPreference::Totp
        );
        // A rack saying "default" defers to the global value.
        entry.mfa_preference = Some("default".into());
        config.gateways.insert("prod".into(), entry.clone());
        assert_eq!(
            config.mfa_preference_for(Some("prod")).unwrap(),
            MfaPreference::Totp
        );
        config.mfa_preference = "default".into();
        assert_eq!(
            config.mfa_preference_for(Some("prod")).unwrap(),
            MfaPreference::Default
        );
    }

    #[test]
    fn a_bad_mfa_preference_is_an_error_naming_the_field() {
        let mut config = Config {
            mfa_preference: "sms".into(),
            ..Config::default()
        };
        let error = config.mfa_preference_for(None).unwrap_err().to_string();
        assert!(
            error.contains("mfa_preference") && error.contains("\"sms\""),
            "{error}"
        );
        config.mfa_preference = "default".into();
        let mut entry = logged_in_entry();
        entry.mfa_preference = Some("yubikey".into());
        config.gateways.insert("prod".into(), entry);
        let error = config
            .mfa_preference_for(Some("prod"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("gateways.prod.mfa_preference"), "{error}");
    }

    #[test]
    fn per_rack_mfa_fields_are_read_from_the_file() {
        let entry: RackEntry = serde_json::from_value(json!({
            "url": "https://gw", "token": "t", "mfa_verified": true, "mfa_method": "webauthn",
            "mfa_preference": "totp"
        }))
        .unwrap();
        assert_eq!(entry.mfa_method.as_deref(), Some("webauthn"));
        assert_eq!(entry.mfa_preference.as_deref(), Some("totp"));
        assert!(entry.extra.is_empty());
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let text = format!("{:?}", logged_in_entry());
        assert!(!text.contains("rgw_sess_abc"));
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn locate_prefers_flag_then_env_then_home() {
        let flag = Path::new("/flag");
        assert_eq!(
            ConfigStore::locate(Some(flag), Some("/env"), Some("/home/u"))
                .unwrap()
                .dir(),
            Path::new("/flag")
        );
        assert_eq!(
            ConfigStore::locate(None, Some("/env"), Some("/home/u"))
                .unwrap()
                .dir(),
            Path::new("/env")
        );
        assert_eq!(
            ConfigStore::locate(None, None, Some("/home/u"))
                .unwrap()
                .dir(),
            Path::new("/home/u/.config/rack-gateway")
        );
        assert!(ConfigStore::locate(None, None, None).is_err());
    }
}
