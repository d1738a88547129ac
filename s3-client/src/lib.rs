//! The one S3 client configuration of the project, shared by the gateway's
//! archive shipper and by `verify-chain`: the AWS SDK's default chain for
//! credentials, region and endpoint (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL_S3`, …), with the caller's overrides, path
//! style for S3-compatible stores, us-east-1 when no region is found, three
//! attempts, checksums only where S3 requires them (callers send their own),
//! and TLS by rustls on ring (no aws-lc).
//!
//! A crate of its own so that `verify-chain` shares it without linking the
//! gateway, and `events` stays free of the AWS SDK.

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use chrono::Utc;

pub use aws_config::timeout::TimeoutConfig;
pub use aws_sdk_s3::config::Credentials;
pub use aws_sdk_s3::Client;

/// The region used when neither the caller nor the default chain names a region.
pub const DEFAULT_REGION: &str = "us-east-1";

/// What a caller sets on top of the default chain.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Overrides the endpoint the default chain finds (`AWS_ENDPOINT_URL_S3`, …).
    pub endpoint_url: Option<String>,
    /// Overrides the region the default chain finds.
    pub region: Option<String>,
    /// Path-style addressing (S3-compatible stores, the local peer).
    pub force_path_style: bool,
    /// Static credentials instead of the default chain's.
    pub credentials: Option<Credentials>,
    pub timeouts: TimeoutConfig,
}

/// Install the ring provider for rustls (idempotent): the project builds no aws-lc.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An S3 client as the AWS tools would configure one, with `options` on top.
pub async fn client(options: ClientOptions) -> Client {
    install_crypto_provider();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(options.timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    // Without an override the loader's default chain (AWS_REGION, the
    // profile, instance metadata) decides, through our HTTP client.
    if let Some(region) = options.region {
        loader = loader.region(Region::new(region));
    }
    if let Some(credentials) = options.credentials {
        loader = loader.credentials_provider(credentials);
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        config = config.region(Region::new(DEFAULT_REGION));
    }
    let mut config = config
        .force_path_style(options.force_path_style)
        // Callers compute and send their own checksums; no SDK-added trailers (aws-chunked).
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(endpoint) = options.endpoint_url {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}

/// An S3 date (Last-Modified, retain-until) as chrono's.
pub fn to_chrono(date: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<Utc>> {
    chrono::DateTime::from_timestamp(date.secs(), date.subsec_nanos())
}
