//! Serving HTTPS directly (`TLS_CERT_FILE` + `TLS_KEY_FILE`): the certificate
//! chain and private key in PEM, loaded once at start with the ring provider.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    #[error("TLS_CERT_FILE {path}: {message}")]
    Cert { path: String, message: String },
    #[error("TLS_KEY_FILE {path}: {message}")]
    Key { path: String, message: String },
    #[error("TLS certificate and key do not work together: {0}")]
    Config(String),
}

pub fn load(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, ServerTlsError> {
    let cert_error = |message: String| ServerTlsError::Cert {
        path: cert_file.display().to_string(),
        message,
    };
    let key_error = |message: String| ServerTlsError::Key {
        path: key_file.display().to_string(),
        message,
    };
    let pem = std::fs::read(cert_file).map_err(|e| cert_error(e.to_string()))?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(format!("not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(cert_error("holds no PEM certificate".into()));
    }
    let pem = std::fs::read(key_file).map_err(|e| key_error(e.to_string()))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| key_error(format!("not PEM: {e}")))?
        .ok_or_else(|| key_error("holds no PEM private key".into()))?;
    let mut config = ServerConfig::builder_with_provider(super::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerTlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ServerTlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
