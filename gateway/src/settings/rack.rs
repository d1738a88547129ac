//! The rack behind the gateway: its name, address, token, and how its
//! (usually self-signed) certificate is trusted.

use std::path::PathBuf;

use secrecy::SecretString;

use super::{Reader, SettingsError, View};

#[derive(Debug, Clone)]
pub struct RackSettings {
    pub name: String,
    pub host: Option<String>,
    pub token: Option<SecretString>,
    pub username: String,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_fingerprint: Option<String>,
}

pub(super) fn read(r: &Reader) -> Result<RackSettings, SettingsError> {
    Ok(RackSettings {
        name: r.string(r.alias("RACK_NAME", &["RACK"]), "default"),
        host: r
            .get("RACK_HOST")
            .map(|h| h.trim_end_matches('/').to_owned()),
        token: r.secret("RACK_TOKEN"),
        username: r.string("RACK_USERNAME", "convox"),
        tls_ca_file: r.get("RACK_TLS_CA_FILE").map(PathBuf::from),
        tls_fingerprint: r.get("RACK_TLS_FINGERPRINT"),
    })
}

pub(super) fn describe(s: &RackSettings, view: &mut View) {
    view.show("RACK_NAME", &s.name);
    view.show("RACK_HOST", &s.host);
    view.secret("RACK_TOKEN_SET", "RACK_TOKEN", s.token.is_some());
    view.show("RACK_USERNAME", &s.username);
    view.show("RACK_TLS_CA_FILE", &s.tls_ca_file);
    view.show("RACK_TLS_FINGERPRINT", &s.tls_fingerprint);
}
