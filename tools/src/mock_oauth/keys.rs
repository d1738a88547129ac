//! The RSA key that signs ID tokens, and its public half as a JWK.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
    RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// 2048 bits: what Google uses for its ID-token keys, and the smallest size
/// relying-party libraries accept without complaint.
const KEY_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("generate RSA key: {0}")]
    Generate(#[from] rsa::Error),
    #[error("encode RSA key as PKCS#1: {0}")]
    Encode(#[from] rsa::pkcs1::Error),
}

/// A private signing key with its key id and public JWK.
pub struct SigningKey {
    encoding: EncodingKey,
    kid: String,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    // The private half never appears in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key. CPU-bound for a noticeable fraction of a second: call it off the async runtime.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)?;
        SigningKey::from_private(&private)
    }

    fn from_private(private: &RsaPrivateKey) -> Result<SigningKey, KeyError> {
        let der = private.to_pkcs1_der()?;
        let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
        let kid = rfc7638_thumbprint(&n, &e);
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::RS256),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n,
                e,
            }),
        };
        Ok(SigningKey {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            kid,
            jwk,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document served at the `jwks_uri`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    /// An RS256 JWT over `claims`, with this key's `kid` in the header.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }
}

/// The RFC 7638 JWK thumbprint: stable for a given key, so the `kid` names the key itself.
fn rfc7638_thumbprint(n: &str, e: &str) -> String {
    // Members in lexicographic order, no whitespace, as the RFC requires.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The same token with its signature bytes altered, so it no longer verifies under any key
/// while header and claims stay well-formed (the point is to test the signature check alone).
pub fn corrupt_signature(token: &str) -> String {
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return token.to_owned();
    };
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    match bytes.first_mut() {
        Some(first) => *first ^= 0x01,
        None => bytes.push(0),
    }
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `at_hash`: base64url of the left half of SHA-256 of the access token (OIDC Core 3.1.3.6).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // The worked example of RFC 7638 section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            rfc7638_thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn signed_token_verifies_with_published_jwk_and_corrupted_one_does_not() {
        let key = SigningKey::generate().expect("generate key");
        let jwks = key.jwks();
        let jwk = jwks.find(key.kid()).expect("jwks holds the kid");
        let decoding = DecodingKey::from_jwk(jwk).expect("jwk is a usable RSA key");

        let claims = serde_json::json!({"sub": "x", "exp": 4_000_000_000u64});
        let token = key.sign(&claims).expect("sign");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.kid.as_deref(), Some(key.kid()));

        let validation = Validation::new(Algorithm::RS256);
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
            .expect("genuine token verifies");
        let bad = corrupt_signature(&token);
        assert_ne!(bad, token);
        let err = jsonwebtoken::decode::<serde_json::Value>(&bad, &decoding, &validation)
            .expect_err("corrupted token must not verify");
        assert_eq!(
            err.kind(),
            &jsonwebtoken::errors::ErrorKind::InvalidSignature
        );
    }

    #[test]
    fn at_hash_matches_oidc_example() {
        // OIDC Core appendix A.3: access token and its at_hash.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
