//! The YubiKey OTP: `<public id: 12 modhex><token: 32 modhex>`, the token
//! being AES-128-ECB over private id (6 bytes), use counter (2, little
//! endian), timestamp (3, little endian), session counter (1), random (2) and
//! a CRC-16 (2) whose residue over all 16 bytes is `0xf0b8`.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes128;

/// Modhex: the 16 letters that are at the same place on most keyboard layouts.
const MODHEX: &[u8; 16] = b"cbdefghijklnrtuv";

/// Length of a full OTP with the default 12-character public id.
pub const OTP_LEN: usize = 44;
/// Length of the public id at the start of an OTP.
pub const PUBLIC_ID_LEN: usize = 12;
const CRC_RESIDUE: u16 = 0xf0b8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtpError {
    #[error("a YubiKey OTP is 44 modhex characters")]
    Format,
    #[error("the OTP does not decrypt under this key (CRC mismatch)")]
    Crc,
    #[error("the OTP belongs to another key (private id mismatch)")]
    PrivateId,
}

/// An OTP as typed: the key's public id and its encrypted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Otp {
    pub public_id: String,
    token: [u8; 16],
}

/// The token's fields after decryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub private_id: [u8; 6],
    /// Power-ups counter (non-volatile).
    pub use_counter: u16,
    /// 8 Hz timer since power-up, 24 bits.
    pub timestamp: u32,
    /// OTPs since power-up.
    pub session_counter: u8,
    pub random: u16,
}

impl Token {
    /// The counter pair a validation server orders OTPs by: a replay, or an
    /// older OTP, has a pair no greater than the last one accepted.
    pub fn counter(&self) -> (u16, u8) {
        (self.use_counter, self.session_counter)
    }
}

impl Otp {
    /// Parse a typed OTP (case-insensitive modhex, surrounding spaces ignored).
    pub fn parse(text: &str) -> Result<Otp, OtpError> {
        let text = text.trim().to_ascii_lowercase();
        if text.len() != OTP_LEN || !text.bytes().all(|b| MODHEX.contains(&b)) {
            return Err(OtpError::Format);
        }
        let (public_id, token) = text.split_at(PUBLIC_ID_LEN);
        let bytes = modhex_decode(token).ok_or(OtpError::Format)?;
        let token: [u8; 16] = bytes.try_into().map_err(|_| OtpError::Format)?;
        Ok(Otp {
            public_id: public_id.to_owned(),
            token,
        })
    }

    /// Whether `text` has the shape of an OTP (44 modhex characters), so that a
    /// code typed where a TOTP is asked can be tried as one.
    pub fn looks_like(text: &str) -> bool {
        Otp::parse(text).is_ok()
    }

    /// Decrypt with the key's AES key and check the CRC and private id.
    pub fn decrypt(&self, aes_key: &[u8; 16], private_id: &[u8; 6]) -> Result<Token, OtpError> {
        let mut block = aes::Block::from(self.token);
        Aes128::new(aes_key.into()).decrypt_block(&mut block);
        let plain: [u8; 16] = block.into();
        if crc16(&plain) != CRC_RESIDUE {
            return Err(OtpError::Crc);
        }
        let token = Token {
            private_id: plain[0..6].try_into().map_err(|_| OtpError::Crc)?,
            use_counter: u16::from_le_bytes([plain[6], plain[7]]),
            timestamp: u32::from_le_bytes([plain[8], plain[9], plain[10], 0]),
            session_counter: plain[11],
            random: u16::from_le_bytes([plain[12], plain[13]]),
        };
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &token.private_id[..],
            &private_id[..],
        )) {
            return Err(OtpError::PrivateId);
        }
        Ok(token)
    }

    /// The OTP a key with these secrets would type for `token` (test keys only:
    /// mock-yubico mints OTPs with it).
    pub fn mint(public_id: &str, aes_key: &[u8; 16], token: &Token) -> Result<String, OtpError> {
        if public_id.len() != PUBLIC_ID_LEN || !public_id.bytes().all(|b| MODHEX.contains(&b)) {
            return Err(OtpError::Format);
        }
        let mut plain = [0u8; 16];
        plain[0..6].copy_from_slice(&token.private_id);
        plain[6..8].copy_from_slice(&token.use_counter.to_le_bytes());
        plain[8..11].copy_from_slice(&token.timestamp.to_le_bytes()[..3]);
        plain[11] = token.session_counter;
        plain[12..14].copy_from_slice(&token.random.to_le_bytes());
        let crc = !crc16(&plain[..14]);
        plain[14..16].copy_from_slice(&crc.to_le_bytes());
        let mut block = aes::Block::from(plain);
        Aes128::new(aes_key.into()).encrypt_block(&mut block);
        let cipher: [u8; 16] = block.into();
        Ok(format!("{public_id}{}", modhex_encode(&cipher)))
    }
}

/// Modhex of `bytes` (two letters a byte, high nibble first).
pub fn modhex_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| [MODHEX[(b >> 4) as usize], MODHEX[(b & 0xf) as usize]])
        .map(char::from)
        .collect()
}

/// The bytes of a modhex string; `None` if it is not modhex of whole bytes.
pub fn modhex_decode(text: &str) -> Option<Vec<u8>> {
    let nibble = |c: u8| MODHEX.iter().position(|&m| m == c).map(|p| p as u8);
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// ISO 13239 CRC-16 as the YubiKey computes it (initial 0xffff, polynomial
/// 0x8408 reflected, no final inversion).
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for &byte in bytes {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            let lsb = crc & 1;
            crc >>= 1;
            if lsb != 0 {
                crc ^= 0x8408;
            }
        }
    }
    crc
}

#[cfg(test)]
mod tests;
