//! The HTTP server: where it listens, its public URL, TLS, dev mode, and
//! which proxies may tell it the client's address.

use std::path::PathBuf;

use secrecy::SecretString;

use super::{bad, Reader, SettingsError, View};

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub port: u16,
    /// Bind address; loopback in tests, all interfaces by default.
    pub bind: String,
    pub public_url: String,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub app_secret_key: Option<SecretString>,
    pub dev_mode: bool,
    pub trusted_proxy_cidrs: Vec<String>,
}

pub(super) fn read(r: &Reader) -> Result<ServerSettings, SettingsError> {
    let dev_mode = r.bool("DEV_MODE", false)?;
    let port: u16 = r.parse("PORT", 8447)?;
    let server = ServerSettings {
        port,
        bind: r.string("BIND_ADDRESS", "0.0.0.0"),
        public_url: r
            .string("PUBLIC_URL", &format!("http://localhost:{port}"))
            .trim_end_matches('/')
            .to_owned(),
        tls_cert_file: r.get("TLS_CERT_FILE").map(PathBuf::from),
        tls_key_file: r.get("TLS_KEY_FILE").map(PathBuf::from),
        app_secret_key: r.secret("APP_SECRET_KEY"),
        dev_mode,
        trusted_proxy_cidrs: r.list("TRUSTED_PROXY_CIDRS"),
    };
    if server.tls_cert_file.is_some() != server.tls_key_file.is_some() {
        return Err(bad(
            "TLS_CERT_FILE",
            "TLS_CERT_FILE and TLS_KEY_FILE must be set together",
        ));
    }
    Ok(server)
}

pub(super) fn describe(s: &ServerSettings, view: &mut View) {
    view.show("PORT", s.port);
    // Where this process listens says nothing of how it behaves.
    view.unrecorded("BIND_ADDRESS");
    view.show("PUBLIC_URL", &s.public_url);
    view.show_as(
        "TLS",
        &["TLS_CERT_FILE", "TLS_KEY_FILE"],
        s.tls_cert_file.is_some(),
    );
    view.secret(
        "APP_SECRET_KEY_SET",
        "APP_SECRET_KEY",
        s.app_secret_key.is_some(),
    );
    view.show("DEV_MODE", s.dev_mode);
    view.show("TRUSTED_PROXY_CIDRS", &s.trusted_proxy_cidrs);
}
