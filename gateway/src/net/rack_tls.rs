//! Trust for the rack's TLS certificate. Convox racks serve a self-signed
//! certificate made at startup, so the usual web PKI does not apply. In order:
//!
//! - `RACK_TLS_FINGERPRINT`: pin the SHA-256 of the leaf certificate's DER
//!   (hex, colons allowed). Any chain and any name are accepted *if* the leaf
//!   is exactly that certificate; the handshake signature is still checked
//!   against its key, so only the holder of the private key passes.
//! - `RACK_TLS_CA_FILE`: a PEM file of CA certificates (or the rack's own
//!   certificate) to verify the chain and the host name against.
//! - neither: the system's root certificates (a rack behind a public certificate).
//!   Only with `DEV_MODE` does "neither" mean "accept any certificate".
//!
//! Setting both is refused: it is not clear which the operator meant.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum RackTlsError {
    #[error("RACK_TLS_FINGERPRINT: {0}")]
    Fingerprint(String),
    #[error("RACK_TLS_CA_FILE {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("set only one of RACK_TLS_FINGERPRINT and RACK_TLS_CA_FILE")]
    Both,
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// How the rack's certificate is trusted (recorded in logs, never secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RackTrust {
    Fingerprint,
    CaFile,
    SystemRoots,
    /// `DEV_MODE` without any trust setting: every certificate is accepted.
    DevAcceptAny,
}

impl RackTrust {
    pub fn as_str(self) -> &'static str {
        match self {
            RackTrust::Fingerprint => "fingerprint",
            RackTrust::CaFile => "ca_file",
            RackTrust::SystemRoots => "system_roots",
            RackTrust::DevAcceptAny => "dev_accept_any",
        }
    }
}

/// Parse `ab:cd:...` or `abcd...` (64 hex digits, any case) into 32 bytes.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], RackTlsError> {
    let hex_digits: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bytes = hex::decode(&hex_digits)
        .map_err(|_| RackTlsError::Fingerprint("not hexadecimal".into()))?;
    bytes.try_into().map_err(|_| {
        RackTlsError::Fingerprint("a SHA-256 fingerprint has 32 bytes (64 hex digits)".into())
    })
}

/// The client TLS configuration for talking to the rack (HTTP and websockets).
/// No ALPN: the rack is spoken to over HTTP/1.1, which websockets need too.
pub fn client_config(
    provider: Arc<CryptoProvider>,
    ca_file: Option<&Path>,
    fingerprint: Option<&str>,
    dev_mode: bool,
) -> Result<(Arc<ClientConfig>, RackTrust), RackTlsError> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RackTlsError::Config(e.to_string()))?;
    let (config, trust) = match (fingerprint, ca_file) {
        (Some(_), Some(_)) => return Err(RackTlsError::Both),
        (Some(fingerprint), None) => {
            let verifier = CustomVerifier {
                accept: Accept::Pinned(parse_fingerprint(fingerprint)?),
                provider,
            };
            let config = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            (config, RackTrust::Fingerprint)
        }
        (None, Some(path)) => {
            let roots = roots_from_pem_file(path)?;
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| RackTlsError::Config(e.to_string()))?;
            let config = builder.with_webpki_verifier(verifier).with_no_client_auth();
            (config, RackTrust::CaFile)
        }
        (None, None) if dev_mode => {
            let config = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(CustomVerifier {
                    accept: Accept::DevAny,
                    provider,
                }))
                .with_no_client_auth();
            (config, RackTrust::DevAcceptAny)
        }
        (None, None) => {
            let mut roots = RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // A broken system certificate is skipped, as browsers do.
                let _ = roots.add(cert);
            }
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| {
                    RackTlsError::Config(format!(
                        "no usable system root certificates ({e}); set RACK_TLS_CA_FILE or RACK_TLS_FINGERPRINT"
                    ))
                })?;
            let config = builder.with_webpki_verifier(verifier).with_no_client_auth();
            (config, RackTrust::SystemRoots)
        }
    };
    Ok((Arc::new(config), trust))
}

fn roots_from_pem_file(path: &Path) -> Result<RootCertStore, RackTlsError> {
    let bad = |message: String| RackTlsError::CaFile {
        path: path.display().to_string(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let mut count = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("unusable certificate: {e}")))?;
        count += 1;
    }
    if count == 0 {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(roots)
}

/// Which leaf certificates a custom verifier accepts. Handshake signatures
/// are checked the same way in both cases.
#[derive(Debug)]
enum Accept {
    /// Exactly one leaf certificate, by the SHA-256 of its DER.
    Pinned([u8; 32]),
    /// `DEV_MODE` only: any certificate (the connection is still encrypted to
    /// whoever holds the key).
    DevAny,
}

#[derive(Debug)]
struct CustomVerifier {
    accept: Accept,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for CustomVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.accept {
            Accept::DevAny => Ok(ServerCertVerified::assertion()),
            Accept::Pinned(sha256) => {
                let presented = Sha256::digest(end_entity.as_ref());
                if bool::from(presented.as_slice().ct_eq(sha256)) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::ApplicationVerificationFailure,
                    ))
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let plain = "AB".repeat(32);
        assert_eq!(parse_fingerprint(&plain).unwrap(), [0xab; 32]);
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons).unwrap(), [0xab; 32]);
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn both_trust_settings_are_refused_and_missing_files_named() {
        let provider = crate::net::crypto_provider();
        let fp = "ab".repeat(32);
        let err = client_config(
            provider.clone(),
            Some(Path::new("/x.pem")),
            Some(&fp),
            false,
        )
        .unwrap_err();
        assert!(matches!(err, RackTlsError::Both));
        let err = client_config(
            provider.clone(),
            Some(Path::new("/nonexistent/ca.pem")),
            None,
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let (_, trust) = client_config(provider.clone(), None, Some(&fp), false).unwrap();
        assert_eq!(trust, RackTrust::Fingerprint);
        let (_, trust) = client_config(provider, None, None, true).unwrap();
        assert_eq!(trust, RackTrust::DevAcceptAny);
    }
}
