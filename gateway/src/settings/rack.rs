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
    let host = r
        .get("RACK_HOST")
        .map(|h| h.trim_end_matches('/').to_owned());
    if host.as_deref().is_some_and(carries_userinfo) {
        // The value is not repeated: it holds a credential, and RACK_HOST is
        // otherwise shown in the public view that `gateway.started` records.
        return Err(super::bad(
            "RACK_HOST",
            "carries user-info (user:password@); give the rack's address only and its \
             password in RACK_TOKEN"
                .to_owned(),
        ));
    }
    Ok(RackSettings {
        name: r.string(r.alias("RACK_NAME", &["RACK"]), "default"),
        host,
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

/// `https://user:pw@rack:5443`, `user@rack`: an `@` in the authority.
fn carries_userinfo(host: &str) -> bool {
    let after_scheme = host.split_once("://").map_or(host, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    authority.contains('@')
}

#[cfg(test)]
mod tests {
    use super::carries_userinfo;

    #[test]
    fn userinfo_is_found_in_any_spelling() {
        for host in [
            "https://convox:secret@rack.example:5443",
            "https://token@rack.example",
            "convox:pw@10.0.0.1:5443",
            "http://a%40b:c@rack/x",
        ] {
            assert!(carries_userinfo(host), "{host}");
        }
        for host in [
            "https://rack.example:5443",
            "http://127.0.0.1:5443/path@x",
            "rack.internal",
        ] {
            assert!(!carries_userinfo(host), "{host}");
        }
    }
}
