//! YubiKey OTP and the Yubico validation protocol 2.0, both halves, with no I/O.
//!
//! - [`otp`]: the 44-character OTP — a 12-character public id and a 16-byte
//!   AES-128 token in modhex — decrypted, CRC-checked and (for test keys) minted.
//! - [`protocol`]: the signed `verify` request a client sends, the signed answer
//!   a validation server returns, and the checks a client must make of it
//!   (signature, the OTP and nonce echoed, the status).
//!
//! The gateway uses the client half against `YUBICO_API_URL`; `mock-yubico`
//! (tools) uses the server half, so dev and tests speak the real protocol.
//! References: Yubico's "OTPs Explained" and "Validation Protocol Version 2.0".

pub mod otp;
pub mod protocol;

pub use otp::{Otp, OtpError, Token};
pub use protocol::{Answer, ProtocolError, Status, VerifyRequest};
