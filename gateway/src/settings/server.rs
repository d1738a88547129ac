//! The HTTP server: where it listens, its public URL, TLS, dev mode, and
//! which proxies may tell it the client's address.

use std::path::PathBuf;
use std::time::Duration;

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
    /// A connection's request head (and its TLS handshake) must arrive within
    /// this long, else the connection is closed (`HEADER_READ_TIMEOUT_SECONDS`, 10).
    pub header_read_timeout: Duration,
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
        header_read_timeout: Duration::from_secs(r.parse("HEADER_READ_TIMEOUT_SECONDS", 10u64)?),
    };
    if server.header_read_timeout.is_zero() {
        return Err(bad("HEADER_READ_TIMEOUT_SECONDS", "must be positive"));
    }
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
    view.show(
        "HEADER_READ_TIMEOUT_SECONDS",
        s.header_read_timeout.as_secs(),
    );
}
