//! Settings: read once from the environment (and an optional `.env` file), by
//! domain. Each domain's module reads its variables and, beside that, says how
//! each one is recorded in the public view — what `gateway.started` records
//! and fingerprints — so a new setting is an edit to one module, and a test
//! fails if a variable is read but not described. Names are a contract
//! (scripts and operators set them; none is renamed, aliases stay); secrets
//! are [`SecretString`] so they cannot reach a `Debug` log, and the view
//! records at most whether each is set.
//!
//! - `server`: port, public URL, TLS, dev mode, trusted proxies
//! - `audit`: the database, append timeout, checkpoints
//! - `rack`: the rack behind the gateway and how its certificate is trusted
//! - `auth`: sessions, OpenID Connect sign-in, the sign-in rate limit, seed users
//! - `archive`: shipping the chain to S3 with Object Lock
//! - `proxy`: the rack proxy's own limits
//! - `policy`: what the proxy refuses even when RBAC allows it
//! - `mfa`: second factors, the step-up window, trusted devices, the lock, WebAuthn

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use decision::policy::PolicySettings;
use secrecy::SecretString;
use serde::Serialize;

mod archive;
mod audit;
mod auth;
mod mfa;
mod policy;
mod proxy;
mod rack;
mod server;

pub use archive::{ArchiveSettings, ChecksumMode, LockMode};
pub use audit::AuditSettings;
pub use auth::{AuthSettings, OAuthSettings, SeedUser};
pub use mfa::{MfaSettings, YubicoSettings, FAILURE_WINDOW};
pub use proxy::ProxySettings;
pub use rack::RackSettings;
pub use server::ServerSettings;

#[derive(Debug, thiserror::Error)]
#[error("setting {name}: {message}")]
pub struct SettingsError {
    pub name: String,
    pub message: String,
}

fn bad(name: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        name: name.to_owned(),
        message: message.into(),
    }
}

/// The raw variables settings are parsed from: the process environment over a `.env` file.
#[derive(Debug, Clone, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    /// Process environment, with `.env` (or `RGW_ENV_FILE`) values underneath it.
    pub fn load() -> Env {
        let mut vars = HashMap::new();
        let file = std::env::var("RGW_ENV_FILE").unwrap_or_else(|_| ".env".into());
        if let Ok(iter) = dotenvy::from_path_iter(&file) {
            for (key, value) in iter.flatten() {
                vars.insert(key, value);
            }
        }
        vars.extend(std::env::vars());
        Env(vars)
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(key.to_owned(), value.into());
    }

    /// A variable, trimmed; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// Parses settings out of an [`Env`], noting every name it reads and every
/// alias, so that a test can hold the public view to them.
struct Reader<'e> {
    env: &'e Env,
    read: RefCell<BTreeSet<&'static str>>,
    /// alias → the name it stands for.
    aliases: RefCell<BTreeMap<&'static str, &'static str>>,
}

impl<'e> Reader<'e> {
    fn new(env: &'e Env) -> Reader<'e> {
        Reader {
            env,
            read: RefCell::default(),
            aliases: RefCell::default(),
        }
    }

    /// A variable, trimmed; empty counts as unset.
    fn get(&self, name: &'static str) -> Option<String> {
        self.read.borrow_mut().insert(name);
        self.env.get(name)
    }

    /// The name to read for a setting that has other names: `name` when it is
    /// set, else the first of `aliases` that is, else `name` (so the default
    /// applies). Errors then name the variable actually set.
    fn alias(&self, name: &'static str, aliases: &[&'static str]) -> &'static str {
        for alias in aliases {
            self.aliases.borrow_mut().insert(alias, name);
        }
        std::iter::once(&name)
            .chain(aliases)
            .find(|n| self.get(n).is_some())
            .copied()
            .unwrap_or(name)
    }

    fn string(&self, name: &'static str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    fn secret(&self, name: &'static str) -> Option<SecretString> {
        self.get(name).map(SecretString::from)
    }

    fn parse<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, SettingsError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|e| bad(name, format!("{text:?} is not valid: {e}"))),
        }
    }

    fn bool(&self, name: &'static str, default: bool) -> Result<bool, SettingsError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(bad(name, format!("{v:?} is not a boolean"))),
        }
    }

    /// A comma-separated list, trimmed, empty items dropped.
    fn list(&self, name: &'static str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// [`Reader::list`], or `default` when the variable is absent; set but
    /// empty, the list is empty.
    fn list_or(&self, name: &'static str, default: &[&str]) -> Vec<String> {
        let list = self.list(name);
        if self.env.0.contains_key(name) {
            list
        } else {
            default.iter().map(|s| (*s).to_owned()).collect()
        }
    }
}

/// The public view being built, and which variables each entry describes.
#[derive(Default)]
struct View {
    entries: BTreeMap<&'static str, serde_json::Value>,
    /// Variables recorded (under their name, or under another key).
    described: BTreeSet<&'static str>,
    /// Secrets not recorded at all, not even as set.
    unshown_secrets: BTreeSet<&'static str>,
    /// Variables, not secret, deliberately left out of the view.
    unrecorded: BTreeSet<&'static str>,
}

impl View {
    /// `name`'s value, recorded under its own name.
    fn show(&mut self, name: &'static str, value: impl Serialize) {
        self.show_as(name, &[name], value);
    }

    /// A value recorded under `key` that stands for the variables `names`.
    fn show_as(&mut self, key: &'static str, names: &[&'static str], value: impl Serialize) {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.entries.insert(key, value);
        self.described.extend(names);
    }

    /// A secret, recorded only as whether it is set, under `key`.
    fn secret(&mut self, key: &'static str, name: &'static str, set: bool) {
        self.show_as(key, &[name], set);
    }

    fn secret_unshown(&mut self, name: &'static str) {
        self.unshown_secrets.insert(name);
    }

    fn unrecorded(&mut self, name: &'static str) {
        self.unrecorded.insert(name);
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub audit: AuditSettings,
    pub rack: RackSettings,
    pub auth: AuthSettings,
    pub archive: ArchiveSettings,
    pub proxy: ProxySettings,
    pub policy: PolicySettings,
    pub mfa: MfaSettings,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Settings, SettingsError> {
        Settings::read(&Reader::new(env))
    }

    // In this order: the first bad setting is the one reported.
    fn read(r: &Reader) -> Result<Settings, SettingsError> {
        let server = server::read(r)?;
        let audit = audit::read(r)?;
        let rack = rack::read(r)?;
        let auth = auth::read(r, &server)?;
        let archive = archive::read(r)?;
        let proxy = proxy::read(r)?;
        let policy = policy::read(r)?;
        let mfa = mfa::read(r, &server)?;
        Ok(Settings {
            server,
            audit,
            rack,
            auth,
            archive,
            proxy,
            policy,
            mfa,
        })
    }

    /// Where the provider sends the browser back to, per login channel (`web` or `cli`).
    pub fn oauth_redirect_uri(&self, channel: &str) -> String {
        format!("{}/api/v1/auth/{channel}/callback", self.server.public_url)
    }

    /// What `gateway.started` records: every setting that shapes behaviour,
    /// never a secret (only whether each secret is set).
    pub fn public_view(&self) -> BTreeMap<&'static str, serde_json::Value> {
        self.view().entries
    }

    fn view(&self) -> View {
        let mut view = View::default();
        server::describe(&self.server, &mut view);
        audit::describe(&self.audit, &mut view);
        rack::describe(&self.rack, &mut view);
        auth::describe(&self.auth, &mut view);
        archive::describe(&self.archive, &mut view);
        proxy::describe(&self.proxy, &mut view);
        policy::describe(&self.policy, &mut view);
        mfa::describe(&self.mfa, &mut view);
        view
    }

    /// SHA-256 over the canonical JSON of [`Settings::public_view`].
    pub fn fingerprint(&self) -> String {
        let bytes = serde_json_canonicalizer::to_vec(&self.public_view()).unwrap_or_default();
        events::envelope::hash_hex(&bytes)
    }
}

#[cfg(test)]
mod tests;
