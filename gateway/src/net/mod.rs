//! The network edges of the gateway.
//!
//! - [`client_addr`]: who the client is, honouring `X-Forwarded-For` only from `TRUSTED_PROXY_CIDRS`
//! - [`rack_tls`]: how the rack's (usually self-signed) certificate is trusted: a CA file or a pinned fingerprint
//! - [`serve`]: the accept loop on hyper, with a deadline for every request head (slowloris)
//! - [`server_tls`]: serving HTTPS ourselves when `TLS_CERT_FILE`/`TLS_KEY_FILE` are set

pub mod client_addr;
pub mod rack_tls;
pub mod serve;
pub mod server_tls;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The one TLS crypto provider the gateway uses (ring). Several providers are
/// linked into the binary through dependencies, so every TLS config names
/// this one explicitly, and it is also installed as the process default for
/// libraries that ask for the default.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Arc::new(rustls::crypto::ring::default_provider())
}
