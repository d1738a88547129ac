//! Backup codes: 10 codes of 12 uppercase hex characters (6 random bytes
//! each), shown once, recorded only as HMAC-SHA256 under the pepper
//! (`mfa.backup_codes.generated`), each usable once (`mfa.backup_code.used`,
//! folded so a second use of one code is rejected).

use events::catalogue::MfaBackupCodesGenerated;
use uuid::Uuid;

use super::MfaKeys;

pub const COUNT: usize = 10;
pub const LENGTH: usize = 12;

/// Whether `code` (normalised) has the shape of a backup code.
pub fn looks_like(code: &str) -> bool {
    code.len() == LENGTH && code.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A fresh set: the codes to show once, and the event recording their HMACs.
pub fn generate(
    keys: &MfaKeys,
    user_id: Uuid,
) -> Result<(Vec<String>, MfaBackupCodesGenerated), getrandom::Error> {
    let mut codes = Vec::with_capacity(COUNT);
    for _ in 0..COUNT {
        let mut bytes = [0u8; LENGTH / 2];
        getrandom::getrandom(&mut bytes)?;
        codes.push(hex::encode_upper(bytes));
    }
    let event = MfaBackupCodesGenerated {
        user_id,
        set_id: Uuid::new_v4(),
        code_hmacs: codes.iter().map(|c| keys.backup_code_hmac(c)).collect(),
    };
    Ok((codes, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn ten_codes_of_twelve_uppercase_hex_recorded_only_as_hmacs() {
        let keys = MfaKeys::from_app_secret(Some(&SecretString::from("k".to_owned()))).unwrap();
        let (codes, event) = generate(&keys, Uuid::new_v4()).unwrap();
        assert_eq!(codes.len(), 10);
        let recorded = serde_json::to_string(&event).unwrap();
        for (code, hmac) in codes.iter().zip(&event.code_hmacs) {
            assert!(looks_like(code), "{code}");
            assert_eq!(code.to_ascii_uppercase(), *code);
            assert!(keys.backup_code_matches(code, hmac));
            assert!(!recorded.contains(code.as_str()));
        }
        assert!(!looks_like("12345"));
        assert!(!looks_like("GHIJKLMNOPQR"));
    }
}
