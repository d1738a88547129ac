//! The environment variables the CLI reads, captured once at start so that the
//! decisions made from them (rack selection, credential, config directory) are
//! plain functions that tests can drive without touching the process environment.

use std::ffi::OsString;
use std::path::PathBuf;

pub const API_TOKEN_ENV: &str = "RACK_GATEWAY_API_TOKEN";
pub const RACK_ENV: &str = "RACK_GATEWAY_RACK";
pub const URL_ENV: &str = "RACK_GATEWAY_URL";
pub const CONFIG_DIR_ENV: &str = "GATEWAY_CLI_CONFIG_DIR";
pub const CONVOX_BIN_ENV: &str = "CONVOX_BIN";

#[derive(Clone, Default)]
pub struct Environment {
    /// `RACK_GATEWAY_API_TOKEN`: beats the stored session; `--api-token` beats it.
    pub api_token: Option<String>,
    /// `RACK_GATEWAY_RACK`: the rack, after `--rack`.
    pub rack: Option<String>,
    /// `RACK_GATEWAY_URL`: the gateway URL, over the stored one.
    pub url: Option<String>,
    /// `GATEWAY_CLI_CONFIG_DIR`.
    pub config_dir: Option<String>,
    /// `HOME`, or `USERPROFILE` where there is no `HOME`.
    pub home: Option<String>,
    /// `CONVOX_BIN`: the convox CLI to run, before `PATH`.
    pub convox_bin: Option<PathBuf>,
    /// `PATH`, to find `convox`.
    pub path: Option<OsString>,
}

impl Environment {
    pub fn from_process() -> Environment {
        Environment {
            api_token: var(API_TOKEN_ENV),
            rack: var(RACK_ENV),
            url: var(URL_ENV),
            config_dir: var(CONFIG_DIR_ENV),
            home: var("HOME").or_else(|| var("USERPROFILE")),
            convox_bin: std::env::var_os(CONVOX_BIN_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            path: std::env::var_os("PATH"),
        }
    }
}

/// A set, non-blank variable; blank counts as unset, as a shell `VAR=` usually means.
fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The API token is a secret: it never appears in debug output.
impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("rack", &self.rack)
            .field("url", &self.url)
            .field("config_dir", &self.config_dir)
            .field("home", &self.home)
            .field("convox_bin", &self.convox_bin)
            .finish()
    }
}
