//! TOTP (RFC 6238) with `totp-rs`: SHA-1, 6 digits, 30-second steps, one step
//! of skew either way. `totp-rs` returns the matched step and leaves replay to
//! us: each step is accepted once per user (`mfa_totp_used_steps`, migration
//! 0007), claimed by an `INSERT … ON CONFLICT DO NOTHING` that must insert one
//! row, so two concurrent uses of one code cannot both pass.

use qrcode::render::svg;
use qrcode::QrCode;
use sqlx::PgPool;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use uuid::Uuid;

/// 160-bit seeds, as RFC 4226 recommends.
pub const SEED_BYTES: usize = 20;
pub const ISSUER: &str = "rack-gateway";

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("the TOTP secret could not be built")]
    Build,
    #[error("the operating system's random source failed")]
    Random,
}

/// A fresh random seed.
pub fn new_seed() -> Result<Vec<u8>, TotpError> {
    let mut seed = vec![0u8; SEED_BYTES];
    getrandom::getrandom(&mut seed).map_err(|_| TotpError::Random)?;
    Ok(seed)
}

/// The generator for a seed; `account` appears in the authenticator app.
pub fn totp(seed: &[u8], account: &str) -> Result<Totp, TotpError> {
    // `:` is refused in account names by the otpauth format.
    let account = account.replace(':', "_");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(Secret::from(seed.to_vec()))
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|_| TotpError::Build)
}

/// What enrolment shows once: the secret (base32), the `otpauth://` URL and
/// its QR code as SVG.
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_url: String,
    pub qr_svg: String,
}

pub fn enrolment(seed: &[u8], account: &str) -> Result<Enrolment, TotpError> {
    let t = totp(seed, account)?;
    let otpauth_url = t.to_url().map_err(|_| TotpError::Build)?;
    let qr_svg = QrCode::new(otpauth_url.as_bytes())
        .map_err(|_| TotpError::Build)?
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(Enrolment {
        secret_base32: Secret::from(seed.to_vec()).to_base32(),
        otpauth_url,
        qr_svg,
    })
}

/// Whether `code` has the shape of a TOTP code (6 ASCII digits).
pub fn looks_like_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// The step `code` matches at `unix_seconds` (±1 step), if any.
pub fn matching_step(seed: &[u8], code: &str, unix_seconds: u64) -> Option<u64> {
    if !looks_like_code(code) {
        return None;
    }
    totp(seed, "check").ok()?.check(code, unix_seconds)
}

/// Claim `step` for `user_id`: true only the first time.
pub async fn claim_step(pool: &PgPool, user_id: Uuid, step: u64) -> Result<bool, sqlx::Error> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let done = sqlx::query(
        "INSERT INTO mfa_totp_used_steps (user_id, step) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(step)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The current code for a seed (tests and the dev tools).
pub fn code_at(seed: &[u8], unix_seconds: u64) -> Result<String, TotpError> {
    Ok(totp(seed, "code")?.generate(unix_seconds).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 vectors (8 digits; the seed is the
    /// 20-byte ASCII string), computed by the same `totp-rs` code path with
    /// 8 digits, and our 6-digit codes are their last 6 digits.
    #[test]
    fn rfc_6238_vectors() {
        let seed = b"12345678901234567890";
        let eight = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(8)
            .with_step_duration(30)
            .with_skew(0)
            .with_secret(Secret::from(seed.to_vec()))
            .build_noncompliant();
        for (time, expected) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(eight.generate(time).to_string(), expected, "t={time}");
            assert_eq!(code_at(seed, time).unwrap(), expected[2..], "t={time}");
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_the_matched_step() {
        let seed = new_seed().unwrap();
        let now = 1_700_000_000u64;
        let step = now / 30;
        let code = code_at(&seed, now).unwrap();
        assert_eq!(matching_step(&seed, &code, now), Some(step));
        assert_eq!(matching_step(&seed, &code, now + 30), Some(step));
        assert_eq!(matching_step(&seed, &code, now - 30), Some(step));
        assert_eq!(matching_step(&seed, &code, now + 90), None);
        assert_eq!(matching_step(&seed, "12345", now), None);
        assert_eq!(matching_step(&seed, "12345a", now), None);
        assert_eq!(
            matching_step(&new_seed().unwrap(), &code, now + 5 * 30),
            None
        );
    }

    #[test]
    fn enrolment_shows_secret_url_and_qr() {
        let seed = new_seed().unwrap();
        let e = enrolment(&seed, "dee@example.com").unwrap();
        assert_eq!(e.secret_base32.len(), 32);
        assert!(
            e.otpauth_url
                .starts_with("otpauth://totp/rack-gateway:dee%40example.com?"),
            "{}",
            e.otpauth_url
        );
        assert!(e
            .otpauth_url
            .contains(&format!("secret={}", e.secret_base32)));
        assert!(e.qr_svg.contains("<svg"));
    }
}
