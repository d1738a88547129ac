//! Which enrolled method the CLI uses, in this order: `--mfa-method`, the
//! gateway's `preferred_method`, the config's `mfa_preference` (a rack's value
//! over the global one), then the first enrolled method. Only methods the
//! gateway marks CLI compatible are offered; disabled methods and enrolments
//! not yet confirmed are skipped.
//!
//! Two ways to verify come out of it: a **code** typed on the terminal (TOTP,
//! or YubiKey OTP, which is typed by touching the key; a backup code is always
//! accepted at the same prompt), or **WebAuthn** through a browser page.

use crate::api::mfa::{MfaMethod, MfaStatus};
use crate::args::MfaMethodFlag;
use crate::config::MfaPreference;

pub const NOT_ENROLLED: &str = "MFA not enrolled - this command requires MFA";
pub const ENROL_HINT: &str = "enrol with: rack-gateway mfa enroll totp";

/// How to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Prompt for a code (TOTP, YubiKey OTP or backup code).
    Code { method: MfaMethod },
    /// Open the gateway's WebAuthn page in the browser.
    Webauthn { method: MfaMethod },
}

impl Choice {
    pub fn method(&self) -> &MfaMethod {
        match self {
            Choice::Code { method } | Choice::Webauthn { method } => method,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("{NOT_ENROLLED} ({ENROL_HINT})")]
    NotEnrolled,
    #[error(
        "no CLI-compatible MFA methods found ({count} enrolled, none usable from the CLI): {ENROL_HINT}, \
         or pass a backup code with --mfa-code"
    )]
    NoCliCompatible { count: usize },
    #[error(
        "--mfa-method {flag}: no CLI-compatible {what} method is enrolled (enrolled: {enrolled})"
    )]
    FlagNotEnrolled {
        flag: &'static str,
        what: &'static str,
        enrolled: String,
    },
}

/// A code method (typed on the terminal) or a WebAuthn one (the browser).
fn is_code_kind(kind: &str) -> bool {
    matches!(kind, "totp" | "yubikey")
}

fn choice_for(method: &MfaMethod) -> Choice {
    if is_code_kind(&method.kind) {
        Choice::Code {
            method: method.clone(),
        }
    } else {
        Choice::Webauthn {
            method: method.clone(),
        }
    }
}

fn usable(method: &MfaMethod) -> bool {
    !method.disabled
        && method.confirmed != Some(false)
        && method.cli_compatible
        && (is_code_kind(&method.kind) || method.kind == "webauthn")
}

/// Apply the order above to what `status` says is enrolled.
pub fn choose(
    flag: Option<MfaMethodFlag>,
    status: &MfaStatus,
    preference: MfaPreference,
) -> Result<Choice, ChoiceError> {
    let enrolled: Vec<&MfaMethod> = status
        .methods
        .iter()
        .filter(|m| !m.disabled && m.confirmed != Some(false))
        .collect();
    if enrolled.is_empty() {
        return Err(ChoiceError::NotEnrolled);
    }
    let offered: Vec<&MfaMethod> = enrolled.iter().copied().filter(|m| usable(m)).collect();
    let first_code = offered.iter().find(|m| is_code_kind(&m.kind));
    let first_webauthn = offered.iter().find(|m| m.kind == "webauthn");

    match flag {
        Some(MfaMethodFlag::Totp) => {
            return first_code
                .map(|m| choice_for(m))
                .ok_or_else(|| ChoiceError::FlagNotEnrolled {
                    flag: "totp",
                    what: "TOTP or YubiKey",
                    enrolled: kinds(&enrolled),
                })
        }
        Some(MfaMethodFlag::Webauthn) => {
            return first_webauthn.map(|m| choice_for(m)).ok_or_else(|| {
                ChoiceError::FlagNotEnrolled {
                    flag: "webauthn",
                    what: "WebAuthn",
                    enrolled: kinds(&enrolled),
                }
            })
        }
        None => {}
    }
    if let Some(preferred) = status
        .preferred_method
        .as_deref()
        .and_then(|id| offered.iter().find(|m| m.id == id))
    {
        return Ok(choice_for(preferred));
    }
    let by_preference = match preference {
        MfaPreference::Totp => first_code,
        MfaPreference::Webauthn => first_webauthn,
        MfaPreference::Default => None,
    };
    if let Some(method) = by_preference.or(offered.first()) {
        return Ok(choice_for(method));
    }
    Err(ChoiceError::NoCliCompatible {
        count: enrolled.len(),
    })
}

fn kinds(methods: &[&MfaMethod]) -> String {
    methods
        .iter()
        .map(|m| {
            if m.cli_compatible {
                m.kind.clone()
            } else {
                format!("{} (not CLI compatible)", m.kind)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(id: &str, kind: &str, cli_compatible: bool) -> MfaMethod {
        MfaMethod {
            id: id.into(),
            kind: kind.into(),
            cli_compatible,
            ..MfaMethod::default()
        }
    }

    fn status(methods: Vec<MfaMethod>, preferred: Option<&str>) -> MfaStatus {
        MfaStatus {
            enrolled: !methods.is_empty(),
            methods,
            preferred_method: preferred.map(str::to_owned),
            ..MfaStatus::default()
        }
    }

    fn id(choice: Result<Choice, ChoiceError>) -> String {
        choice.unwrap().method().id.clone()
    }

    #[test]
    fn the_flag_wins_over_everything() {
        let s = status(
            vec![method("w", "webauthn", true), method("t", "totp", true)],
            Some("w"),
        );
        assert_eq!(
            id(choose(
                Some(MfaMethodFlag::Totp),
                &s,
                MfaPreference::Webauthn
            )),
            "t"
        );
        let s = status(
            vec![method("t", "totp", true), method("w", "webauthn", true)],
            Some("t"),
        );
        assert!(matches!(
            choose(Some(MfaMethodFlag::Webauthn), &s, MfaPreference::Totp),
            Ok(Choice::Webauthn { .. })
        ));
    }

    #[test]
    fn a_yubikey_answers_the_totp_flag_it_is_a_code_too() {
        let s = status(vec![method("y", "yubikey", true)], None);
        assert!(matches!(
            choose(Some(MfaMethodFlag::Totp), &s, MfaPreference::Default),
            Ok(Choice::Code { .. })
        ));
    }

    #[test]
    fn then_the_servers_preferred_method() {
        let s = status(
            vec![method("t", "totp", true), method("w", "webauthn", true)],
            Some("w"),
        );
        assert_eq!(id(choose(None, &s, MfaPreference::Totp)), "w");
    }

    #[test]
    fn a_preferred_method_that_is_not_offered_is_passed_over() {
        let s = status(
            vec![method("t", "totp", true), method("p", "webauthn", false)],
            Some("p"),
        );
        assert_eq!(id(choose(None, &s, MfaPreference::Webauthn)), "t");
    }

    #[test]
    fn then_the_config_preference_then_the_first_enrolled() {
        let s = status(
            vec![method("w", "webauthn", true), method("t", "totp", true)],
            None,
        );
        assert_eq!(id(choose(None, &s, MfaPreference::Totp)), "t");
        assert_eq!(id(choose(None, &s, MfaPreference::Webauthn)), "w");
        assert_eq!(id(choose(None, &s, MfaPreference::Default)), "w");
        // A preference nothing enrolled matches falls through to the first.
        let s = status(vec![method("w", "webauthn", true)], None);
        assert_eq!(id(choose(None, &s, MfaPreference::Totp)), "w");
    }

    #[test]
    fn disabled_and_unconfirmed_methods_are_skipped() {
        let mut disabled = method("d", "totp", true);
        disabled.disabled = true;
        let mut pending = method("p", "totp", true);
        pending.confirmed = Some(false);
        let s = status(
            vec![disabled, pending, method("w", "webauthn", true)],
            Some("d"),
        );
        assert_eq!(id(choose(None, &s, MfaPreference::Totp)), "w");
    }

    #[test]
    fn nothing_enrolled_is_the_documented_error() {
        let error = choose(None, &status(vec![], None), MfaPreference::Default).unwrap_err();
        assert_eq!(error, ChoiceError::NotEnrolled);
        assert!(error
            .to_string()
            .starts_with("MFA not enrolled - this command requires MFA"));
        let mut pending = method("p", "totp", true);
        pending.confirmed = Some(false);
        assert_eq!(
            choose(None, &status(vec![pending], None), MfaPreference::Default),
            Err(ChoiceError::NotEnrolled)
        );
    }

    #[test]
    fn only_cli_compatible_methods_are_offered() {
        let s = status(vec![method("p", "webauthn", false)], Some("p"));
        let error = choose(None, &s, MfaPreference::Default).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("no CLI-compatible MFA methods found"));
        let error = choose(Some(MfaMethodFlag::Webauthn), &s, MfaPreference::Default).unwrap_err();
        assert!(
            error.to_string().contains("webauthn (not CLI compatible)"),
            "{error}"
        );
        let error = choose(Some(MfaMethodFlag::Totp), &s, MfaPreference::Default).unwrap_err();
        assert!(
            error.to_string().starts_with("--mfa-method totp"),
            "{error}"
        );
    }
}
